/*
 * timer.c - durable timers shared by worker processes.
 *
 * Where timers live (see also internal.h, "timers"):
 *
 *   the table   rows of the internal partition "~timers", written by
 *               ordinary commits: set = put, cancel and ack = delete,
 *               dead-lettering and a release with a new due time = put.
 *               So timers are journaled, checkpointed and recovered with
 *               everything else, and share transactions with key-value
 *               writes.  The row is the truth.
 *   the index   arena-only, under the same partition lock: a struct tent per
 *               live row (node->stamp of the row's newest node points at it,
 *               tent->node points back), a heap of pending tents per user
 *               partition (struct tpart), a heap of tparts by their earliest
 *               tent, a heap of claimed tents by lease end, and an
 *               open-addressing table of tparts by name.
 *
 * Claims change only the index: claim, extend and a plain release take the
 * partition lock, edit a tent and return, with no journal write.  Acks and
 * reschedules are commits whose ops carry a claim condition (TCOND_CLAIM),
 * checked in prepare under the lock, so "ack + state change" applies only
 * while the claim still holds: that is the exactly-once effect.
 *
 * The apply hook (timer_applied) keeps the index in step with every put and
 * delete of the timer partition.  It cannot fail the commit: if it cannot get
 * memory it marks the index invalid, and the next holder of the lock rebuilds
 * it from the table (timer_reindex: read the claims still readable, sweep the
 * partition, which frees every block the table does not reach, and build).
 * The same happens after a process died holding the lock (repair.c) and in a
 * fresh arena after recovery, where the index starts invalid.
 *
 * Lost claims.  A claim whose lease has run out, or whose holder (pid + start
 * time) is dead, is re-armed by whoever next looks under the lock: claim and
 * wait do, at most every LIVE_CHECK_NS for the liveness part (a /proc read per
 * distinct holder), and keel_reclaim does at once.  A waiter that sleeps while
 * other processes hold claims wakes every WAIT_TICK_NS to look, so a dead
 * holder's timer is redelivered within about that long even when nobody else
 * calls in; with no claims outstanding a waiter sleeps until the next due time.
 *
 * Waiting.  root->timers.wake is a futex word, bumped under the lock whenever
 * a timer becomes pending at the head of its partition's heap, or a claim is
 * lost or released; waiters read it under the lock, unlock, and FUTEX_WAIT on
 * that value until the earliest due time they care about.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/internal.h"

#define TV_DEAD 1u
#define LIVE_CHECK_NS (5ull * 1000000ull)
#define WAIT_TICK_NS (10ull * 1000000ull)
#define POS_NONE UINT32_MAX

/* The row's value header (host byte order, like every arena and journal field). */
struct tval {
	uint64_t due_ms;
	uint32_t flags;
	uint32_t deliveries;
};

struct tpart {
	struct tvec heap;        /* pending tents by (due_ms, seq) */
	uint32_t top_pos;        /* position in root->timers.top, POS_NONE if heap empty */
	uint32_t nlen;
	char name[KEEL_PARTITION_NAME_MAX + 8];
};

struct tent {
	uint64_t node;           /* the row's newest node */
	uint64_t tp;             /* its struct tpart */
	uint64_t due_ms;
	uint64_t seq;            /* order among equal due times: set order */
	uint64_t token;          /* CLAIMED: the claim */
	uint64_t lease_end_ns;   /* CLAIMED: CLOCK_MONOTONIC */
	uint64_t holder_start;
	uint32_t holder_pid;
	uint32_t state;          /* KEEL_TIMER_PENDING, _CLAIMED or _DEAD */
	uint32_t deliveries;
	uint32_t pos;            /* PENDING: in tp->heap; CLAIMED: in the lease heap */
};

enum { HK_DUE, HK_LEASE, HK_TOP };

/* ---- checked access ---------------------------------------------------------------------------- */

/* Offsets in the index come from the arena: a bad one flags the index
 * broken (it is then rebuilt) and reads a scratch block instead. */
static __thread int tbroken;
static __thread uint64_t scratch[16];

static void *at(keel_t *h, uint64_t off, size_t n)
{
	void *p = off ? shm_ptr(&h->a, off, n) : NULL;
	if (!p) {
		tbroken = 1;
		memset(scratch, 0, sizeof(scratch));
		return scratch;
	}
	return p;
}
#define TENT(off) ((struct tent *)at(h, (off), sizeof(struct tent)))
#define TPART(off) ((struct tpart *)at(h, (off), sizeof(struct tpart)))

static struct timer_root *TR(keel_t *h) { return &h->root->timers; }

/*
 * A heap slot holds its entry's sort key beside the entry's offset: the due
 * time (pending timers), the lease end (claims), or the due time of the
 * partition's earliest timer (the top heap; UINT64_MAX when it has none).
 * A sift then compares keys inside the heap's own array, whose two children
 * share a cache line, instead of loading two entries per level from all over
 * the arena; only equal keys look at the entries (their seq).  A reschedule
 * with 1M pending timers sifts about 20 levels, so that was some 40 misses.
 * A slot's key is set whenever a sift places its entry; every change of an
 * entry's key is followed by a sift of that entry (as the heap order needs
 * anyway), so the keys in the slots are always current.
 */
struct hslot {
	uint64_t key;
	uint64_t off;
};
/* The heaps are 4-ary: half the levels of a binary heap, and a node's four
 * children (64 bytes of slots) lie side by side, so a level of a sift costs
 * one or two adjacent cache lines and one moved entry, not two levels' worth.
 * In a profile of reschedules with 1M pending timers the sifts went from
 * 17.8% to 14.7% of the time. */
#define HEAP_ARITY TIMER_HEAP_ARITY
_Static_assert(sizeof(struct hslot) == TIMER_HEAP_SLOT_BYTES, "the layout signature counts the slot size");

/* The heap's array, bounds-checked once for all its slots; NULL (and the
 * index flagged broken) if the arena says otherwise. */
static struct hslot *vbase(keel_t *h, const struct tvec *v)
{
	struct hslot *s = v->off ? shm_ptr(&h->a, v->off, (uint64_t)v->cap * sizeof(struct hslot)) : NULL;
	if (!s || v->n > v->cap) {
		tbroken = 1;
		return NULL;
	}
	return s;
}

/* The heap's slots if entry i is in it; else NULL, the index flagged broken. */
static struct hslot *vslots(keel_t *h, const struct tvec *v, uint32_t i)
{
	struct hslot *s = i < v->n ? vbase(h, v) : NULL;
	if (!s)
		tbroken = 1;
	return s;
}

/* The offset of entry i (0 when the heap is broken). */
static uint64_t vget(keel_t *h, const struct tvec *v, uint32_t i)
{
	struct hslot *s = vslots(h, v, i);
	return s ? s[i].off : 0;
}

static int vgrow(keel_t *h, struct part *p, struct tvec *v, uint32_t need)
{
	uint64_t cap = v->cap ? v->cap : 8;
	uint64_t off;
	int rc;

	if (need <= v->cap)
		return 0;
	while (cap < need)
		cap *= 2;
	if (cap > UINT32_MAX || v->n > v->cap) {   /* a damaged count: rebuild the index */
		tbroken = 1;
		return 0;
	}
	if ((rc = shm_alloc(&h->a, &p->heap, (uint64_t)cap * sizeof(struct hslot), 1, &off)))
		return rc;
	if (v->n) {
		struct hslot *src = vbase(h, v);
		if (src)
			memcpy(shm_at(&h->a, off), src, (size_t)v->n * sizeof(struct hslot));
	}
	if (v->off)
		shm_free(&h->a, &p->heap, v->off);
	v->off = off;
	v->cap = (uint32_t)cap;
	return 0;
}

/* ---- heaps -------------------------------------------------------------------------------------- */

/* Entry a before entry b: the whole order, read from the entries. */
static int less(keel_t *h, int kind, uint64_t a, uint64_t b)
{
	if (kind == HK_TOP) {
		struct tpart *x = TPART(a), *y = TPART(b);
		a = x->heap.n ? vget(h, &x->heap, 0) : 0;
		b = y->heap.n ? vget(h, &y->heap, 0) : 0;
		if (!a || !b)
			return a != 0;
		kind = HK_DUE;
	}
	struct tent *x = TENT(a), *y = TENT(b);
	if (kind == HK_LEASE)
		return x->lease_end_ns < y->lease_end_ns ||
		       (x->lease_end_ns == y->lease_end_ns && x->seq < y->seq);
	return x->due_ms < y->due_ms || (x->due_ms == y->due_ms && x->seq < y->seq);
}

/* The sort key of entry e, read from the entry. */
static uint64_t key_of(keel_t *h, int kind, uint64_t e)
{
	if (kind == HK_TOP) {
		struct tpart *tp = TPART(e);
		struct hslot *s = tp->heap.n ? vbase(h, &tp->heap) : NULL;
		return s ? s[0].key : UINT64_MAX;
	}
	struct tent *t = TENT(e);
	return kind == HK_LEASE ? t->lease_end_ns : t->due_ms;
}

static inline int slot_less(keel_t *h, int kind, const struct hslot *a, const struct hslot *b)
{
	return a->key < b->key || (a->key == b->key && less(h, kind, a->off, b->off));
}

static void setpos(keel_t *h, int kind, uint64_t e, uint32_t i)
{
	if (kind == HK_TOP)
		TPART(e)->top_pos = i;
	else
		TENT(e)->pos = i;
}

static uint32_t getpos(keel_t *h, int kind, uint64_t e)
{
	return kind == HK_TOP ? TPART(e)->top_pos : TENT(e)->pos;
}

/* Move entry i up or down to its place; its slot's key is read anew from
 * the entry first (the entry's key may just have changed). */
static void sift_up(keel_t *h, struct tvec *v, int kind, uint32_t i)
{
	struct hslot *s = vslots(h, v, i);
	if (!s)
		return;
	struct hslot e = s[i];
	e.key = key_of(h, kind, e.off);
	while (i > 0 && !tbroken) {
		uint32_t up = (i - 1) / HEAP_ARITY;
		if (!slot_less(h, kind, &e, &s[up]))
			break;
		s[i] = s[up];
		setpos(h, kind, s[i].off, i);
		i = up;
	}
	s[i] = e;
	setpos(h, kind, e.off, i);
}

static void sift_down(keel_t *h, struct tvec *v, int kind, uint32_t i)
{
	struct hslot *s = vslots(h, v, i);
	if (!s)
		return;
	struct hslot e = s[i];
	e.key = key_of(h, kind, e.off);
	for (;;) {
		uint64_t first = (uint64_t)HEAP_ARITY * i + 1, end = first + HEAP_ARITY;
		uint32_t m = i;
		const struct hslot *me = &e;
		if (tbroken || first >= v->n)
			break;
		if (end > v->n)
			end = v->n;
		for (uint32_t c = (uint32_t)first; c < end; c++) {
			if (slot_less(h, kind, &s[c], me)) {
				m = c;
				me = &s[c];
			}
		}
		if (m == i)
			break;
		s[i] = *me;
		setpos(h, kind, s[i].off, i);
		i = m;
	}
	s[i] = e;
	setpos(h, kind, e.off, i);
}

static int heap_push(keel_t *h, struct part *p, struct tvec *v, int kind, uint64_t e)
{
	int rc = vgrow(h, p, v, v->n + 1);
	struct hslot *s;
	if (rc)
		return rc;
	if (!(s = vbase(h, v)) || v->n >= v->cap) {   /* damaged, or vgrow could not add a slot */
		tbroken = 1;
		return 0;   /* broken: rebuilt by the caller's check */
	}
	s[v->n].off = e;
	v->n++;
	sift_up(h, v, kind, v->n - 1);
	return 0;
}

static void heap_del(keel_t *h, struct tvec *v, int kind, uint32_t i)
{
	struct hslot *s = vslots(h, v, i);
	if (!s)
		return;
	uint64_t last = s[v->n - 1].off;
	v->n--;
	if (i == v->n)
		return;
	s[i].off = last;
	sift_down(h, v, kind, i);
	sift_up(h, v, kind, getpos(h, kind, last));
}

/* ---- partitions of timers ------------------------------------------------------------------------- */

static uint32_t name_slot(const char *name, size_t len, uint32_t cap)
{
	return (uint32_t)(XXH3_64bits(name, len) & (cap - 1));
}

static uint64_t tpart_find(keel_t *h, const char *name, size_t len)
{
	struct timer_root *tr = TR(h);
	if (!tr->tparts_cap)
		return 0;
	uint32_t s = name_slot(name, len, tr->tparts_cap);
	for (uint32_t i = 0; i < tr->tparts_cap && !tbroken; i++) {
		uint64_t off = *(uint64_t *)at(h, tr->tparts + (uint64_t)s * 8, 8);
		if (!off)
			return 0;
		struct tpart *tp = TPART(off);
		if (tp->nlen == len && memcmp(tp->name, name, len) == 0)
			return off;
		s = (s + 1) & (tr->tparts_cap - 1);
	}
	return 0;
}

static void tparts_put(keel_t *h, uint64_t arr, uint32_t cap, uint64_t off)
{
	struct tpart *tp = TPART(off);
	if (tp->nlen > KEEL_PARTITION_NAME_MAX) {   /* damaged: the rebuild makes the table again */
		tbroken = 1;
		return;
	}
	uint32_t s = name_slot(tp->name, tp->nlen, cap);
	for (uint32_t i = 0; i < cap && !tbroken; i++) {
		uint64_t *slot = at(h, arr + (uint64_t)s * 8, 8);
		if (!*slot) {
			*slot = off;
			return;
		}
		s = (s + 1) & (cap - 1);
	}
	tbroken = 1;
}

static int tpart_get(keel_t *h, struct part *p, const char *name, size_t len, uint64_t *out)
{
	struct timer_root *tr = TR(h);
	uint64_t off;
	int rc;

	if ((*out = tpart_find(h, name, len)))
		return 0;
	if (2 * (tr->ntparts + 1) > tr->tparts_cap) {   /* keep the load under a half */
		uint32_t cap = tr->tparts_cap ? tr->tparts_cap * 2 : 16;
		uint64_t arr;
		if ((rc = shm_alloc(&h->a, &p->heap, (uint64_t)cap * 8, 1, &arr)))
			return rc;
		memset(shm_at(&h->a, arr), 0, (size_t)cap * 8);
		for (uint32_t i = 0; i < tr->tparts_cap; i++) {
			uint64_t e = *(uint64_t *)at(h, tr->tparts + (uint64_t)i * 8, 8);
			if (e)
				tparts_put(h, arr, cap, e);
		}
		if (tr->tparts)
			shm_free(&h->a, &p->heap, tr->tparts);
		tr->tparts = arr;
		tr->tparts_cap = cap;
	}
	if ((rc = shm_alloc(&h->a, &p->heap, sizeof(struct tpart), 1, &off)))
		return rc;
	struct tpart *tp = shm_at(&h->a, off);
	memset(tp, 0, sizeof(*tp));
	tp->top_pos = POS_NONE;
	tp->nlen = (uint32_t)len;
	memcpy(tp->name, name, len);
	tparts_put(h, tr->tparts, tr->tparts_cap, off);
	tr->ntparts++;
	*out = off;
	return 0;
}

/* After tp's heap changed: its place in the top heap. */
static int top_update(keel_t *h, struct part *p, uint64_t tpo)
{
	struct timer_root *tr = TR(h);
	struct tpart *tp = TPART(tpo);

	if (tp->heap.n == 0) {
		if (tp->top_pos != POS_NONE) {
			heap_del(h, &tr->top, HK_TOP, tp->top_pos);
			tp->top_pos = POS_NONE;
		}
		return 0;
	}
	if (tp->top_pos == POS_NONE)
		return heap_push(h, p, &tr->top, HK_TOP, tpo);
	sift_down(h, &tr->top, HK_TOP, tp->top_pos);
	sift_up(h, &tr->top, HK_TOP, tp->top_pos);
	return 0;
}

void timer_wake(keel_t *h)
{
	struct timer_root *tr = TR(h);
	shm_faa32(&tr->wake, 1);
	if (shm_load32(&tr->waiters))
		syscall(SYS_futex, &tr->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- tent states ------------------------------------------------------------------------------------ */

static int pend(keel_t *h, struct part *p, uint64_t te)
{
	struct tent *t = TENT(te);
	struct tpart *tp = TPART(t->tp);
	int rc;

	t->state = KEEL_TIMER_PENDING;
	t->token = 0;
	if ((rc = heap_push(h, p, &tp->heap, HK_DUE, te)))
		return rc;
	TR(h)->pending++;
	rc = top_update(h, p, t->tp);
	if (t->pos == 0)   /* the new head of its partition: waiters look again */
		timer_wake(h);
	return rc;
}

/* Take a tent out of whatever heap its state puts it in. */
static void detach(keel_t *h, struct part *p, uint64_t te)
{
	struct timer_root *tr = TR(h);
	struct tent *t = TENT(te);

	if (t->state == KEEL_TIMER_PENDING) {
		struct tpart *tp = TPART(t->tp);
		heap_del(h, &tp->heap, HK_DUE, t->pos);
		top_update(h, p, t->tp);
		tr->pending--;
	} else if (t->state == KEEL_TIMER_CLAIMED) {
		heap_del(h, &tr->lease, HK_LEASE, t->pos);
		tr->claimed--;
	} else if (t->state == KEEL_TIMER_DEAD) {
		tr->dead--;
	}
	t->state = 0;
	t->token = 0;
}

/* A claim is lost (holder dead or lease out) or handed back: due again. */
static void rearm(keel_t *h, struct part *p, uint64_t te, int lost)
{
	if (TENT(te)->state != KEEL_TIMER_CLAIMED) {
		tbroken = 1;   /* a lease entry that is no claim: rebuild the index */
		return;
	}
	detach(h, p, te);
	if (pend(h, p, te))
		tbroken = 1;
	if (lost)
		TR(h)->redelivered++;
	timer_wake(h);
}

/* ---- decoding a row ----------------------------------------------------------------------------------- */

struct row {
	const char *part;
	size_t plen;
	const uint8_t *key;
	size_t klen;
	struct tval tv;
	const uint8_t *payload;
	size_t paylen;
};

static int row_decode(const struct node *n, struct row *r)
{
	const uint8_t *k = node_key(n);
	if (n->klen < 2 || k[0] == 0 || k[0] > KEEL_PARTITION_NAME_MAX || (size_t)k[0] + 1 >= n->klen ||
	    (uint32_t)n->klen - 1u - k[0] > KEEL_TIMER_KEY_MAX || n->vlen < sizeof(struct tval))
		return -1;   /* not a timer's row (damaged): callers treat it as such */
	r->plen = k[0];
	r->part = (const char *)k + 1;
	r->key = k + 1 + r->plen;
	r->klen = n->klen - 1 - r->plen;
	memcpy(&r->tv, node_val(n), sizeof(r->tv));
	r->payload = node_val(n) + sizeof(struct tval);
	r->paylen = n->vlen - sizeof(struct tval);
	return 0;
}

uint64_t timer_tent_of(keel_t *h, const struct node *n)
{
	uint64_t te = n->stamp;
	const struct tent *t = te ? shm_ptr(&h->a, te, sizeof(*t)) : NULL;
	if (!t || t->node != shm_off(&h->a, n))
		return 0;
	return te;
}

/* ---- the apply hook --------------------------------------------------------------------------------- */

static void broken(keel_t *h)
{
	/* The table is the truth; the next lock holder rebuilds the index. */
	TR(h)->valid = 0;
	tbroken = 0;
}

void timer_applied(keel_t *h, struct part *p, uint64_t te, struct node *n, int del)
{
	struct timer_root *tr = TR(h);
	struct row r;

	if (!tr->valid)
		return;
	tbroken = 0;
	if (del) {
		if (te) {
			detach(h, p, te);
			shm_free(&h->a, &p->heap, te);
		}
		if (tbroken)
			broken(h);
		return;
	}
	if (row_decode(n, &r)) {
		broken(h);
		return;
	}
	if (te && TENT(te)->state == KEEL_TIMER_PENDING && !(r.tv.flags & TV_DEAD)) {
		/* A pending timer rescheduled: move it within its heap. */
		struct tent *t = TENT(te);
		struct tpart *tp = TPART(t->tp);
		uint64_t old_due = t->due_ms;
		uint32_t old_head = vget(h, &tp->heap, 0) == te;
		t->node = shm_off(&h->a, n);
		t->due_ms = r.tv.due_ms;
		t->seq = ++tr->seq;
		t->deliveries = r.tv.deliveries;
		n->stamp = te;
		if (t->due_ms < old_due)
			sift_up(h, &tp->heap, HK_DUE, t->pos);
		else
			sift_down(h, &tp->heap, HK_DUE, t->pos);
		if (old_head || t->pos == 0)
			top_update(h, p, t->tp);
		if (t->pos == 0 && t->due_ms < old_due)
			timer_wake(h);   /* earlier than before, at the head: waiters look again */
		if (tbroken)
			broken(h);
		return;
	}
	if (te) {
		detach(h, p, te);
	} else {
		uint64_t tpo;
		if (tpart_get(h, p, r.part, r.plen, &tpo) || shm_alloc(&h->a, &p->heap, sizeof(struct tent), 1, &te)) {
			broken(h);
			return;
		}
		struct tent *t = shm_at(&h->a, te);
		memset(t, 0, sizeof(*t));
		t->tp = tpo;
	}
	struct tent *t = TENT(te);
	t->node = shm_off(&h->a, n);
	t->due_ms = r.tv.due_ms;
	t->seq = ++tr->seq;
	t->deliveries = r.tv.deliveries;
	n->stamp = te;
	if (r.tv.flags & TV_DEAD) {
		t->state = KEEL_TIMER_DEAD;
		tr->dead++;
	} else if (pend(h, p, te)) {
		tbroken = 1;
	}
	if (tbroken)
		broken(h);
}

/* ---- rebuilding the index ------------------------------------------------------------------------------- */

struct salvaged {
	uint64_t node, token, lease_end_ns, holder_start;
	uint32_t holder_pid, state, deliveries;
};
struct timer_salvage {
	struct salvaged *v;
	size_t n, cap;
};

void timer_salvage_free(struct timer_salvage *sv)
{
	if (sv) {
		free(sv->v);
		free(sv);
	}
}

/* Walk the list's newest rows and copy what their tents say, where the tent
 * still points back at the row. */
struct timer_salvage *timer_salvage(keel_t *h, struct part *p)
{
	struct timer_salvage *sv = calloc(1, sizeof(*sv));
	uint64_t cur = p->head, steps = 0;

	if (!sv)
		return NULL;
	while (cur && steps++ < walk_max(h)) {
		const struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		if (!d)
			break;
		const struct node *n = (d->sokey & 1) ? shm_ptr(&h->a, cur, sizeof(struct node)) : NULL;
		if (n && !(n->flags & NODE_TOMB)) {
			uint64_t te = timer_tent_of(h, n);
			const struct tent *t = te ? shm_at(&h->a, te) : NULL;
			if (t && (t->state == KEEL_TIMER_CLAIMED || t->deliveries)) {
				if (sv->n == sv->cap) {
					size_t cap = sv->cap ? sv->cap * 2 : 64;
					struct salvaged *v = realloc(sv->v, cap * sizeof(*v));
					if (!v)
						break;
					sv->v = v;
					sv->cap = cap;
				}
				struct salvaged *s = &sv->v[sv->n++];
				s->node = cur;
				s->state = t->state;
				s->token = t->token;
				s->lease_end_ns = t->lease_end_ns;
				s->holder_start = t->holder_start;
				s->holder_pid = t->holder_pid;
				s->deliveries = t->deliveries;
			}
		}
		cur = d->next;
	}
	return sv;
}

void timer_reset(keel_t *h)
{
	struct timer_root *tr = TR(h);
	tr->valid = 0;
	memset(&tr->top, 0, sizeof(tr->top));
	memset(&tr->lease, 0, sizeof(tr->lease));
	tr->tparts = 0;
	tr->tparts_cap = 0;
	tr->ntparts = 0;
	tr->pending = tr->claimed = tr->dead = 0;
}

static int cmp_salvaged(const void *a, const void *b)
{
	uint64_t x = ((const struct salvaged *)a)->node, y = ((const struct salvaged *)b)->node;
	return x < y ? -1 : x > y;
}

struct build_ctx {
	keel_t *h;
	struct part *p;
	struct timer_salvage *sv;
	uint64_t now;
	int rc;
};

static int build_one(void *ctx, const struct node *cn)
{
	struct build_ctx *b = ctx;
	keel_t *h = b->h;
	struct node *n = (struct node *)cn;
	struct row r;
	uint64_t tpo, te;
	int rc;

	if (row_decode(n, &r))
		return 0;   /* not a timer row: the audit reports it */
	if ((rc = tpart_get(h, b->p, r.part, r.plen, &tpo)) ||
	    (rc = shm_alloc(&h->a, &b->p->heap, sizeof(struct tent), 1, &te)))
		return b->rc = rc;
	struct tent *t = shm_at(&h->a, te);
	memset(t, 0, sizeof(*t));
	t->tp = tpo;
	t->node = shm_off(&h->a, n);
	t->due_ms = r.tv.due_ms;
	t->seq = ++TR(h)->seq;
	t->deliveries = r.tv.deliveries;
	n->stamp = te;
	struct salvaged key = { .node = t->node }, *s = NULL;
	if (b->sv && b->sv->n)
		s = bsearch(&key, b->sv->v, b->sv->n, sizeof(key), cmp_salvaged);
	if (s && s->deliveries > t->deliveries)
		t->deliveries = s->deliveries;
	if (r.tv.flags & TV_DEAD) {
		t->state = KEEL_TIMER_DEAD;
		TR(h)->dead++;
		return 0;
	}
	if (s && s->state == KEEL_TIMER_CLAIMED && s->token && shm_pid_alive(s->holder_pid, s->holder_start)) {
		t->state = KEEL_TIMER_CLAIMED;
		t->token = s->token;
		t->lease_end_ns = s->lease_end_ns;
		t->holder_pid = s->holder_pid;
		t->holder_start = s->holder_start;
		if ((rc = heap_push(h, b->p, &TR(h)->lease, HK_LEASE, te)))
			return b->rc = rc;
		TR(h)->claimed++;
		return 0;
	}
	if (s && s->state == KEEL_TIMER_CLAIMED)
		TR(h)->redelivered++;
	if ((rc = pend(h, b->p, te)))
		return b->rc = rc;
	return 0;
}

void timer_build(keel_t *h, struct part *p, struct timer_salvage *sv)
{
	struct build_ctx b = { .h = h, .p = p, .sv = sv };

	timer_reset(h);
	tbroken = 0;
	if (sv && sv->n)
		qsort(sv->v, sv->n, sizeof(sv->v[0]), cmp_salvaged);
	table_scan(h, p, &SNAP_NEWEST, build_one, &b);
	timer_salvage_free(sv);
	TR(h)->valid = b.rc == 0 && !tbroken;
	tbroken = 0;
	timer_wake(h);
}

int timer_reindex(keel_t *h, struct part *p)
{
	struct timer_salvage *sv = timer_salvage(h, p);
	int rc;

	timer_reset(h);
	if ((rc = part_sweep(h, p))) {   /* frees every block the table does not reach */
		timer_salvage_free(sv);
		return rc;
	}
	timer_build(h, p, sv);
	if (!TR(h)->valid)
		return shm_err(KEEL_E_FULL, "the timer index could not be rebuilt: the arena is full (%s)",
			       shm_errmsg());
	return 0;
}

/* ---- audit ------------------------------------------------------------------------------------------ */

static void mark_vec(keel_t *h, struct shm_sweep *sw, const struct tvec *v, const char *what,
		     void (*report)(void *, const char *), void *ctx)
{
	char msg[160];
	if (!v->off)
		return;
	if (v->n > v->cap || !shm_ptr(&h->a, v->off, (uint64_t)v->cap * sizeof(struct hslot)) ||
	    shm_sweep_mark(sw, v->off) != 0) {
		snprintf(msg, sizeof(msg), "%s array at %llu (%u of %u) is not a block of the partition", what,
			 (unsigned long long)v->off, v->n, v->cap);
		report(ctx, msg);
	}
}

/* The audit's check of one heap: each slot's entry points back at the slot,
 * its key is the entry's, and no entry sorts before its parent.  Reports
 * the first problem found. */
static void check_heap(keel_t *h, const struct tvec *v, int kind, const char *what,
		       void (*report)(void *, const char *), void *ctx)
{
	struct hslot *s = v->n ? vbase(h, v) : NULL;
	char msg[240];

	if (v->n && !s) {
		snprintf(msg, sizeof(msg), "%s: its array is not in the arena", what);
		report(ctx, msg);
		return;
	}
	for (uint32_t i = 0; i < v->n && !tbroken; i++) {
		uint32_t pos = getpos(h, kind, s[i].off);
		uint64_t key = key_of(h, kind, s[i].off);
		if (pos != i)
			snprintf(msg, sizeof(msg), "%s is out of order: entry %u says it is at position %u", what, i, pos);
		else if (s[i].key != key)
			snprintf(msg, sizeof(msg), "%s is out of order: entry %u has key %llu in its slot, %llu in its record",
				 what, i, (unsigned long long)s[i].key, (unsigned long long)key);
		else if (i && slot_less(h, kind, &s[i], &s[(i - 1) / HEAP_ARITY]))
			snprintf(msg, sizeof(msg), "%s is out of order: entry %u sorts before its parent", what, i);
		else
			continue;
		report(ctx, msg);
		return;
	}
	if (tbroken) {
		snprintf(msg, sizeof(msg), "%s: an entry is not in the arena", what);
		report(ctx, msg);
	}
}

void timer_audit(keel_t *h, struct part *p, struct shm_sweep *sw, void (*report)(void *, const char *),
		 void *ctx)
{
	struct timer_root *tr = TR(h);
	uint64_t pending = 0, claimed = 0, dead = 0, cur = p->head, steps = 0;
	char msg[200];

	if (!tr->valid)
		return;   /* rebuilt before use; its blocks are garbage the next sweep frees */
	int was_broken = tbroken;
	mark_vec(h, sw, &tr->top, "top heap", report, ctx);
	mark_vec(h, sw, &tr->lease, "lease heap", report, ctx);
	check_heap(h, &tr->top, HK_TOP, "the heap of timer partitions", report, ctx);
	check_heap(h, &tr->lease, HK_LEASE, "the lease heap", report, ctx);
	if (tr->tparts) {
		if (!shm_ptr(&h->a, tr->tparts, (uint64_t)tr->tparts_cap * 8) || shm_sweep_mark(sw, tr->tparts) != 0) {
			report(ctx, "partition table is not a block of the partition");
		} else {
			for (uint32_t i = 0; i < tr->tparts_cap; i++) {
				uint64_t off = ((uint64_t *)shm_at(&h->a, tr->tparts))[i];
				const struct tpart *tp = off ? shm_ptr(&h->a, off, sizeof(*tp)) : NULL;
				if (!off)
					continue;
				if (!tp || shm_sweep_mark(sw, off) != 0) {
					report(ctx, "a timer partition record is not a block of the partition");
					continue;
				}
				mark_vec(h, sw, &tp->heap, "partition heap", report, ctx);
				check_heap(h, &tp->heap, HK_DUE, "a partition's timer heap", report, ctx);
			}
		}
	}
	while (cur && steps++ < walk_max(h)) {
		const struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		if (!d)
			break;
		const struct node *n = (d->sokey & 1) ? shm_ptr(&h->a, cur, sizeof(struct node)) : NULL;
		if (n && !(n->flags & NODE_TOMB)) {
			uint64_t te = timer_tent_of(h, n);
			const struct tent *t = te ? shm_at(&h->a, te) : NULL;
			if (!t) {
				snprintf(msg, sizeof(msg), "timer row %llu has no index entry", (unsigned long long)cur);
				report(ctx, msg);
			} else {
				if (shm_sweep_mark(sw, te) != 0)
					report(ctx, "a timer index entry is not a block of the partition, or is shared");
				pending += t->state == KEEL_TIMER_PENDING;
				claimed += t->state == KEEL_TIMER_CLAIMED;
				dead += t->state == KEEL_TIMER_DEAD;
			}
		}
		cur = d->next;
	}
	if (pending != tr->pending || claimed != tr->claimed || dead != tr->dead) {
		snprintf(msg, sizeof(msg),
			 "counts say %llu pending / %llu claimed / %llu dead, the rows hold %llu / %llu / %llu",
			 (unsigned long long)tr->pending, (unsigned long long)tr->claimed,
			 (unsigned long long)tr->dead, (unsigned long long)pending, (unsigned long long)claimed,
			 (unsigned long long)dead);
		report(ctx, msg);
	}
	if (tr->lease.n != claimed) {
		snprintf(msg, sizeof(msg), "lease heap holds %u claims, the rows %llu", tr->lease.n,
			 (unsigned long long)claimed);
		report(ctx, msg);
	}
	tbroken = was_broken;   /* the audit reports; it does not flag the index */
}

/* ---- locking and lookup --------------------------------------------------------------------------- */

uint64_t keel_now_ms(void)
{
	return shm_now_ns() / 1000000ull;
}

/* Set by tlock on a read-only handle that found the index invalid (after a
 * recovery, before any writer touched a timer): it does not rebuild it, and
 * the listing calls read the rows alone (every timer PENDING or DEAD). */
static __thread int tnoindex;

/* Lock the timer partition, with a whole index.  *pp is NULL (and nothing
 * is locked) when the store has never had a timer. */
static int tlock(keel_t *h, struct part **pp)
{
	int rc = part_timers(h, 0, pp);
	tnoindex = 0;
	if (rc || !*pp)
		return rc;
	if ((rc = part_lock(h, *pp)))
		return rc;
	if (!TR(h)->valid && h->readonly) {
		tnoindex = 1;
		tbroken = 0;
		return 0;
	}
	if (!TR(h)->valid && (rc = timer_reindex(h, *pp))) {
		part_unlock(h, *pp);
		return rc;
	}
	tbroken = 0;
	return 0;
}

static void tunlock(keel_t *h, struct part *p)
{
	if (tbroken)
		broken(h);
	part_unlock(h, p);
}

#define EKEY_MAX (1 + KEEL_PARTITION_NAME_MAX + KEEL_TIMER_KEY_MAX)

static int enc_key(const char *part, const void *key, size_t klen, uint8_t *out, size_t *olen)
{
	size_t plen;
	int rc = part_name_check(part, &plen);
	if (rc)
		return rc;
	if (!key && klen)
		return shm_err(KEEL_E_INVAL, "timer key is NULL");
	if (klen == 0)
		return shm_err(KEEL_E_KEYSIZE, "timer key is empty; timer keys are 1 to %u bytes", KEEL_TIMER_KEY_MAX);
	if (klen > KEEL_TIMER_KEY_MAX)
		return shm_err(KEEL_E_KEYSIZE, "timer key of %zu bytes is over the limit of %u bytes", klen,
			       KEEL_TIMER_KEY_MAX);
	out[0] = (uint8_t)plen;
	memcpy(out + 1, part, plen);
	memcpy(out + 1 + plen, key, klen);
	*olen = 1 + plen + klen;
	return 0;
}

static int check_set(uint64_t due_ms, const void *payload, size_t plen)
{
	if (due_ms > KEEL_TIMER_DUE_MAX)
		return shm_err(KEEL_E_INVAL, "due time %llu ms is past the limit %llu (9999-12-31T23:59:59.999Z)",
			       (unsigned long long)due_ms, (unsigned long long)KEEL_TIMER_DUE_MAX);
	if (plen > KEEL_TIMER_PAYLOAD_MAX)
		return shm_err(KEEL_E_VALSIZE, "timer payload of %zu bytes is over the limit of %u bytes", plen,
			       KEEL_TIMER_PAYLOAD_MAX);
	if (!payload && plen)
		return shm_err(KEEL_E_INVAL, "timer payload is NULL with length %zu", plen);
	return 0;
}

/* Under the lock: the tent of a timer row, 0 if there is none. */
static uint64_t find(keel_t *h, struct part *p, const uint8_t *ek, size_t eklen, struct node **np)
{
	volatile uint64_t *link;
	struct node *n = table_find_locked(h, p, ek, eklen, key_hash(ek, eklen), &link);
	if (!n || (n->flags & NODE_TOMB))
		return 0;
	*np = n;
	return timer_tent_of(h, n);
}

static int claim_ok(keel_t *h, const struct tent *t, uint64_t token)
{
	if (t->state != KEEL_TIMER_CLAIMED || t->token != token)
		return shm_err(KEEL_E_STATE, "the claim (token %llu) is no longer held: the timer was claimed again, "
			       "released, set or its claim lost since; nothing was applied",
			       (unsigned long long)token);
	if (t->lease_end_ns <= shm_mono_ns())
		return shm_err(KEEL_E_STATE, "the claim (token %llu) is no longer held: its lease ran out; another "
			       "process may have the timer now; nothing was applied", (unsigned long long)token);
	return 0;
}

int timer_check_cond(keel_t *h, const struct node *ex, int tcond, uint64_t token)
{
	if ((!ex || (ex->flags & NODE_TOMB)) && tcond == TCOND_DEAD)
		return shm_err(KEEL_E_NOTFOUND, "no such timer; nothing was applied");
	if (!ex || (ex->flags & NODE_TOMB))
		return shm_err(KEEL_E_STATE, "the timer does not exist (cancelled, acked or never set); nothing was applied");
	uint64_t te = timer_tent_of(h, ex);
	if (!te || !TR(h)->valid)
		return shm_err(KEEL_E_STATE, "the timer index is being rebuilt; claims are unknown; nothing was applied");
	const struct tent *t = shm_at(&h->a, te);
	if (tcond == TCOND_CLAIM)
		return claim_ok(h, t, token);
	if (tcond == TCOND_DEAD && t->state != KEEL_TIMER_DEAD)
		return shm_err(KEEL_E_STATE, "the timer is not dead-lettered; nothing was applied");
	return 0;
}

/* ---- set, cancel ------------------------------------------------------------------------------------ */

int keel_timer_set(keel_t *h, const char *part, const void *key, size_t klen, uint64_t due_ms,
		   const void *payload, size_t plen)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	struct tval tv = { .due_ms = due_ms };
	int rc;

	if ((rc = handle_ok(h)) || (rc = enc_key(part, key, klen, ek, &eklen)) || (rc = check_set(due_ms, payload, plen)))
		return rc;
	return commit_one(h, TIMER_PART, OP_PUT, ek, eklen, &tv, sizeof(tv), payload, plen, TCOND_NONE, 0, NULL);
}

int keel_timer_cancel(keel_t *h, const char *part, const void *key, size_t klen, int *existed)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = handle_ok(h)) || (rc = enc_key(part, key, klen, ek, &eklen)))
		return rc;
	return commit_one(h, TIMER_PART, OP_DEL, ek, eklen, NULL, 0, NULL, 0, TCOND_NONE, 0, existed);
}

int keel_txn_timer_set(keel_txn_t *t, const char *part, const void *key, size_t klen, uint64_t due_ms,
		       const void *payload, size_t plen)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	struct tval tv = { .due_ms = due_ms };
	int rc;

	if ((rc = enc_key(part, key, klen, ek, &eklen)) || (rc = check_set(due_ms, payload, plen)))
		return rc;
	return txn_add_op(t, TIMER_PART, OP_PUT, ek, eklen, &tv, sizeof(tv), payload, plen, 0, 0, TCOND_NONE, 0);
}

int keel_txn_timer_restore(keel_txn_t *t, const char *part, const void *key, size_t klen, uint64_t due_ms,
			   const void *payload, size_t plen, unsigned state, uint32_t deliveries)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	struct tval tv = { .due_ms = due_ms, .deliveries = deliveries };
	int rc;

	if (state != KEEL_TIMER_PENDING && state != KEEL_TIMER_DEAD)
		return shm_err(KEEL_E_INVAL, "a restored timer is PENDING or DEAD, not state %#x", state);
	if (state == KEEL_TIMER_DEAD)
		tv.flags = TV_DEAD;
	if ((rc = enc_key(part, key, klen, ek, &eklen)) || (rc = check_set(due_ms, payload, plen)))
		return rc;
	return txn_add_op(t, TIMER_PART, OP_PUT, ek, eklen, &tv, sizeof(tv), payload, plen, 0, 0, TCOND_NONE, 0);
}

int keel_txn_timer_cancel(keel_txn_t *t, const char *part, const void *key, size_t klen)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = enc_key(part, key, klen, ek, &eklen)))
		return rc;
	return txn_add_op(t, TIMER_PART, OP_DEL, ek, eklen, NULL, 0, NULL, 0, 0, 0, TCOND_NONE, 0);
}

/* ---- lost claims ------------------------------------------------------------------------------------- */

/* Under the lock: re-arm claims whose lease ran out, and (at most every
 * LIVE_CHECK_NS unless forced) those whose holder died.  Returns how many. */
static int lost_claims(keel_t *h, struct part *p, int force)
{
	struct timer_root *tr = TR(h);
	uint64_t now = shm_mono_ns();
	int lost = 0;

	/* Bounded: each turn takes one entry out of the heap. */
	for (uint32_t k = 0, kmax = tr->lease.n; k < kmax && tr->lease.n && !tbroken; k++) {
		uint64_t te = vget(h, &tr->lease, 0);
		if (TENT(te)->lease_end_ns > now)
			break;
		rearm(h, p, te, 1);
		lost++;
	}
	if (!tr->lease.n || (!force && now - tr->live_check_ns < LIVE_CHECK_NS))
		return lost;
	tr->live_check_ns = now;
	for (int round = 0; round < 1000 && !tbroken; round++) {
		struct {
			uint32_t pid;
			uint64_t start;
			int alive;
		} cache[16];
		uint64_t dead[64];
		size_t nc = 0, nd = 0;
		int more = 0;

		for (uint32_t i = 0; i < tr->lease.n && !tbroken; i++) {
			uint64_t te = vget(h, &tr->lease, i);
			struct tent *t = TENT(te);
			int alive = -1;
			if (t->holder_pid == h->pid)
				continue;
			for (size_t k = 0; k < nc && alive < 0; k++)
				if (cache[k].pid == t->holder_pid && cache[k].start == t->holder_start)
					alive = cache[k].alive;
			if (alive < 0) {
				alive = shm_pid_alive(t->holder_pid, t->holder_start);
				if (nc < 16)
					cache[nc++] = (typeof(cache[0])){ t->holder_pid, t->holder_start, alive };
			}
			if (!alive) {
				if (nd == 64) {
					more = 1;
					break;
				}
				dead[nd++] = te;
			}
		}
		for (size_t k = 0; k < nd; k++) {
			rearm(h, p, dead[k], 1);
			lost++;
		}
		if (!more)
			break;
	}
	return lost;
}

int timer_reap(keel_t *h)
{
	struct part *p;
	int rc = tlock(h, &p), n;
	if (rc || !p)
		return rc;
	n = lost_claims(h, p, 1);
	tunlock(h, p);
	return n;
}

/* ---- claim and wait ----------------------------------------------------------------------------------- */

static int check_parts(const char *const *parts, size_t nparts)
{
	size_t len;
	if (nparts && !parts)
		return shm_err(KEEL_E_INVAL, "partition list is NULL with %zu entries", nparts);
	for (size_t i = 0; i < nparts; i++) {
		int rc = part_name_check(parts[i], &len);
		if (rc)
			return rc;
	}
	return 0;
}

/* Under the lock: the earliest pending tent of the partitions asked for. */
static uint64_t pick(keel_t *h, const char *const *parts, size_t nparts)
{
	struct timer_root *tr = TR(h);
	uint64_t best = 0;

	if (nparts == 0) {
		if (!tr->top.n)
			return 0;
		struct tpart *tp = TPART(vget(h, &tr->top, 0));
		return tp->heap.n ? vget(h, &tp->heap, 0) : 0;
	}
	for (size_t i = 0; i < nparts; i++) {
		uint64_t tpo = tpart_find(h, parts[i], strlen(parts[i]));
		if (!tpo)
			continue;
		struct tpart *tp = TPART(tpo);
		if (!tp->heap.n)
			continue;
		uint64_t e = vget(h, &tp->heap, 0);
		if (!best || less(h, HK_DUE, e, best))
			best = e;
	}
	return best;
}

/* Under the lock: how long a waiter may sleep (ns, UINT64_MAX: no limit). */
static uint64_t sleep_ns(keel_t *h, uint64_t best)
{
	struct timer_root *tr = TR(h);
	uint64_t ns = UINT64_MAX, now = shm_mono_ns();

	if (best) {
		uint64_t due_ns = TENT(best)->due_ms * 1000000ull, real = shm_now_ns();
		ns = due_ns > real ? due_ns - real : 0;
	}
	if (tr->lease.n) {
		uint64_t end = TENT(vget(h, &tr->lease, 0))->lease_end_ns;
		uint64_t d = end > now ? end - now : 0;
		if (d < ns)
			ns = d;
		if (WAIT_TICK_NS < ns)   /* look at the holders' liveness now and then */
			ns = WAIT_TICK_NS;
	}
	return ns;
}

static void futex_sleep(keel_t *h, uint32_t seq, uint64_t ns)
{
	struct timer_root *tr = TR(h);
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	shm_faa32(&tr->waiters, 1);
	syscall(SYS_futex, &tr->wake, FUTEX_WAIT, seq, ns == UINT64_MAX ? NULL : &ts, NULL, 0);
	shm_faa32(&tr->waiters, (uint32_t)-1);
}

/* Sleep until woken or ns passes, but not past the deadline (monotonic ns,
 * UINT64_MAX: none).  Returns TIMEOUT once the deadline has passed. */
static int wait_round(keel_t *h, uint32_t seq, uint64_t ns, uint64_t deadline)
{
	uint64_t now = shm_mono_ns();
	if (deadline != UINT64_MAX) {
		if (now >= deadline)
			return KEEL_E_TIMEOUT;
		if (deadline - now < ns)
			ns = deadline - now;
	}
	futex_sleep(h, seq, ns);
	return 0;
}

static uint64_t deadline_of(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : shm_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

static uint64_t my_start(keel_t *h)
{
	return shm_proc_slot(&h->a, h->proc)->start_time;
}

/* Fill c and buf from a claimed tent's row. */
static void claim_out(keel_t *h, const struct tent *t, const struct node *n, keel_claim_t *c, void *buf,
		      size_t cap, uint32_t lease_ms)
{
	struct row r;
	memset(c, 0, sizeof(*c));
	if (row_decode(n, &r))
		return;
	memcpy(c->part, r.part, r.plen);
	c->part[r.plen] = 0;
	memcpy(c->key, r.key, r.klen);
	c->klen = r.klen;
	c->due_ms = t->due_ms;
	c->deliveries = t->deliveries;
	c->token = t->token;
	c->lease_ms = lease_ms;
	c->plen = r.paylen;
	if (buf && cap)
		memcpy(buf, r.payload, r.paylen < cap ? r.paylen : cap);
}

/* Move a timer past its delivery limit to the dead letters: a journaled put
 * of its row with the DEAD flag, made under a claim taken for the purpose so
 * nobody else acts on it meanwhile. */
static int dead_letter(keel_t *h, const struct node *n, const struct tent *t)
{
	struct tval tv = { .due_ms = t->due_ms, .flags = TV_DEAD, .deliveries = t->deliveries - 1 };

	return commit_one(h, TIMER_PART, OP_PUT, node_key(n), n->klen, &tv, sizeof(tv),
			  node_val(n) + sizeof(struct tval), n->vlen - sizeof(struct tval), TCOND_CLAIM, t->token,
			  NULL);
}

/* One look under the lock: claim a due timer (0), or say how long to sleep
 * (1, with *seq and *ns). */
static int claim_once(keel_t *h, const char *const *parts, size_t nparts, uint32_t lease_ms, keel_claim_t *c,
		      void *buf, size_t cap, uint32_t *seq, uint64_t *ns)
{
	struct timer_root *tr = TR(h);
	struct part *p;
	int rc;

	/* Bounded: a turn either returns or dead-letters one timer. */
	for (int turn = 0;; turn++) {
		if (turn == 1000)
			return shm_err(KEEL_E_BUSY, "1000 timers in a row went to the dead letters in one claim; try again");
		if ((rc = tlock(h, &p)))
			return rc;
		if (!p) {
			*seq = shm_load32(&tr->wake);
			*ns = UINT64_MAX;
			return 1;
		}
		lost_claims(h, p, 0);
		uint64_t te = pick(h, parts, nparts);
		if ((!te || TENT(te)->due_ms > keel_now_ms()) && tr->claimed && lost_claims(h, p, 1))
			te = pick(h, parts, nparts);   /* nothing due: are claims held by the dead? */
		if (!te || TENT(te)->due_ms > keel_now_ms() || tbroken) {
			*seq = shm_load32(&tr->wake);
			*ns = sleep_ns(h, te);
			tunlock(h, p);
			return 1;
		}
		struct tent *t = TENT(te);
		const struct node *n = shm_ptr(&h->a, t->node, sizeof(struct node));
		struct row row;
		if (!n || !shm_ptr(&h->a, t->node, node_bytes(n->klen, n->vlen)) || row_decode(n, &row)) {
			tbroken = 1;
			tunlock(h, p);
			return shm_err(KEEL_E_CORRUPT, "timer index entry points outside the arena or at no timer's row; it is rebuilt at the next call");
		}
		detach(h, p, te);
		t->deliveries++;
		t->state = KEEL_TIMER_CLAIMED;
		t->token = ++tr->token;
		t->holder_pid = h->pid;
		t->holder_start = my_start(h);
		t->lease_end_ns = shm_mono_ns() + (uint64_t)lease_ms * 1000000ull;
		if ((rc = heap_push(h, p, &tr->lease, HK_LEASE, te))) {
			t->state = 0;
			if (pend(h, p, te))
				tbroken = 1;
			tunlock(h, p);
			return rc;
		}
		tr->claimed++;
		tr->claims++;
		if (t->deliveries > h->timer_max_deliveries) {
			/* Copy what the put needs, then commit it without the lock. */
			struct tent snap = *t;
			size_t bytes = node_bytes(n->klen, n->vlen);
			struct node *nc = malloc(bytes);
			if (!nc) {
				tunlock(h, p);
				return shm_err(KEEL_E_NOMEM, "out of memory dead-lettering a timer");
			}
			memcpy(nc, n, bytes);
			tunlock(h, p);
			rc = dead_letter(h, nc, &snap);
			free(nc);
			if (rc == 0)
				shm_faa(&tr->dead_lettered, 1);
			else if (rc != KEEL_E_STATE)
				return rc;
			continue;
		}
		claim_out(h, t, n, c, buf, cap, lease_ms);
		tunlock(h, p);
		return 0;
	}
}

int keel_timer_claim(keel_t *h, const char *const *parts, size_t nparts, uint32_t lease_ms, int timeout_ms,
		     keel_claim_t *c, void *buf, size_t cap)
{
	uint64_t deadline = deadline_of(timeout_ms), ns = 0;
	uint32_t seq = 0;
	int rc;

	if ((rc = handle_ok(h)) || (rc = check_parts(parts, nparts)))
		return rc;
	if (!c)
		return shm_err(KEEL_E_INVAL, "keel_timer_claim: claim is NULL");
	if (!buf && cap)
		return shm_err(KEEL_E_INVAL, "keel_timer_claim: buffer is NULL with capacity %zu", cap);
	if (lease_ms == 0 || lease_ms > KEEL_TIMER_LEASE_MAX)
		return shm_err(KEEL_E_INVAL, "lease of %u ms: leases are 1 to %u ms", lease_ms, KEEL_TIMER_LEASE_MAX);
	if (h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only: claims change the store");
	for (;;) {
		rc = claim_once(h, parts, nparts, lease_ms, c, buf, cap, &seq, &ns);
		if (rc <= 0)
			return rc;
		if (timeout_ms == 0 || wait_round(h, seq, ns, deadline) == KEEL_E_TIMEOUT)
			return shm_err(KEEL_E_TIMEOUT, "no timer due%s", timeout_ms ? " within the timeout" : "");
	}
}

int keel_timer_wait(keel_t *h, const char *const *parts, size_t nparts, int timeout_ms)
{
	uint64_t deadline = deadline_of(timeout_ms);
	struct part *p;
	int rc;

	if ((rc = handle_ok(h)) || (rc = check_parts(parts, nparts)))
		return rc;
	for (;;) {
		uint32_t seq;
		uint64_t ns = UINT64_MAX;

		if ((rc = tlock(h, &p)))
			return rc;
		if (p && tnoindex) {
			part_unlock(h, p);
			return shm_err(KEEL_E_STATE, "the timer index is not built yet (a fresh arena); a read-only handle "
				       "cannot build it: open read-write, or let a writer touch a timer first");
		}
		if (p) {
			if (!h->readonly)
				lost_claims(h, p, 0);
			uint64_t te = pick(h, parts, nparts);
			if ((!te || TENT(te)->due_ms > keel_now_ms()) && !h->readonly && TR(h)->claimed &&
			    lost_claims(h, p, 1))
				te = pick(h, parts, nparts);
			if (te && TENT(te)->due_ms <= keel_now_ms() && !tbroken) {
				tunlock(h, p);
				return 0;
			}
			ns = sleep_ns(h, te);
		}
		seq = shm_load32(&TR(h)->wake);
		if (p)
			tunlock(h, p);
		if (wait_round(h, seq, ns, deadline) == KEEL_E_TIMEOUT)
			return shm_err(KEEL_E_TIMEOUT, "no timer due within the timeout");
	}
}

/* ---- ack, extend, release ------------------------------------------------------------------------------- */

static int claim_key(const keel_claim_t *c, uint8_t *ek, size_t *eklen)
{
	if (!c)
		return shm_err(KEEL_E_INVAL, "claim is NULL");
	if (strnlen(c->part, sizeof(c->part)) == sizeof(c->part))
		return shm_err(KEEL_E_NAME, "claim's partition name is not terminated");
	if (c->token == 0)
		return shm_err(KEEL_E_STATE, "claim token 0 is no claim");
	return enc_key(c->part, c->key, c->klen, ek, eklen);
}

int keel_timer_ack(keel_t *h, const keel_claim_t *c)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = handle_ok(h)) || (rc = claim_key(c, ek, &eklen)))
		return rc;
	return commit_one(h, TIMER_PART, OP_DEL, ek, eklen, NULL, 0, NULL, 0, TCOND_CLAIM, c->token, NULL);
}

int keel_txn_timer_ack(keel_txn_t *t, const keel_claim_t *c)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = claim_key(c, ek, &eklen)))
		return rc;
	return txn_add_op(t, TIMER_PART, OP_DEL, ek, eklen, NULL, 0, NULL, 0, 0, 0, TCOND_CLAIM, c->token);
}

/* Lock and find the tent a claim names; on success the lock is held. */
static int claimed_locked(keel_t *h, const keel_claim_t *c, struct part **pp, uint64_t *tep, struct node **np)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = handle_ok(h)) || (rc = claim_key(c, ek, &eklen)))
		return rc;
	if (h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = tlock(h, pp)))
		return rc;
	if (!*pp)
		return shm_err(KEEL_E_STATE, "the store has no timers; the claim is not held");
	/* No lost_claims() first: the token is the capability, and a claim
	 * made by a process that has since exited (a CLI) stays good until
	 * someone re-arms it, as it does for an ack. */
	*tep = find(h, *pp, ek, eklen, np);
	if (!*tep) {
		tunlock(h, *pp);
		return shm_err(KEEL_E_STATE, "the timer does not exist (cancelled or acked); the claim is not held");
	}
	if ((rc = claim_ok(h, TENT(*tep), c->token))) {
		tunlock(h, *pp);
		return rc;
	}
	return 0;
}

int keel_timer_extend(keel_t *h, const keel_claim_t *c, uint32_t lease_ms)
{
	struct part *p;
	struct node *n;
	uint64_t te;
	int rc;

	if (lease_ms == 0 || lease_ms > KEEL_TIMER_LEASE_MAX)
		return shm_err(KEEL_E_INVAL, "lease of %u ms: leases are 1 to %u ms", lease_ms, KEEL_TIMER_LEASE_MAX);
	if ((rc = claimed_locked(h, c, &p, &te, &n)))
		return rc;
	struct tent *t = TENT(te);
	t->lease_end_ns = shm_mono_ns() + (uint64_t)lease_ms * 1000000ull;
	t->holder_pid = h->pid;   /* whoever extends holds it now */
	t->holder_start = my_start(h);
	sift_down(h, &TR(h)->lease, HK_LEASE, t->pos);
	sift_up(h, &TR(h)->lease, HK_LEASE, t->pos);
	tunlock(h, p);
	return 0;
}

int keel_timer_release(keel_t *h, const keel_claim_t *c, uint64_t due_ms)
{
	struct part *p;
	struct node *n;
	uint64_t te;
	int rc;

	if (due_ms > KEEL_TIMER_DUE_MAX)
		return check_set(due_ms, NULL, 0);
	if ((rc = claimed_locked(h, c, &p, &te, &n)))
		return rc;
	if (due_ms == 0) {   /* arena only: due again at its old time */
		rearm(h, p, te, 0);
		tunlock(h, p);
		return 0;
	}
	/* A journaled reschedule that keeps the delivery count. */
	struct tval tv = { .due_ms = due_ms, .deliveries = TENT(te)->deliveries };
	size_t bytes = node_bytes(n->klen, n->vlen);
	struct node *nc = malloc(bytes);
	if (!nc) {
		tunlock(h, p);
		return shm_err(KEEL_E_NOMEM, "out of memory releasing a timer");
	}
	memcpy(nc, n, bytes);
	tunlock(h, p);
	rc = commit_one(h, TIMER_PART, OP_PUT, node_key(nc), nc->klen, &tv, sizeof(tv),
			node_val(nc) + sizeof(struct tval), nc->vlen - sizeof(struct tval), TCOND_CLAIM, c->token, NULL);
	free(nc);
	return rc;
}

/* ---- listing ----------------------------------------------------------------------------------------- */

/* The tent of a row, or (read-only, no index) what the row alone says. */
static const struct tent *tent_or_row(keel_t *h, const struct node *n, const struct row *r, struct tent *fake)
{
	if (!tnoindex) {
		uint64_t te = timer_tent_of(h, n);
		return te ? shm_at(&h->a, te) : NULL;
	}
	memset(fake, 0, sizeof(*fake));
	fake->due_ms = r->tv.due_ms;
	fake->deliveries = r->tv.deliveries;
	fake->state = (r->tv.flags & TV_DEAD) ? KEEL_TIMER_DEAD : KEEL_TIMER_PENDING;
	return fake;
}

struct item {
	char part[KEEL_PARTITION_NAME_MAX + 1];
	uint8_t *key;            /* key, then payload */
	size_t klen, plen;
	uint64_t due_ms, seq;
	unsigned state;
	uint32_t deliveries;
	pid_t holder;
	int64_t lease_left_ms;
};

static void item_of(keel_t *h, const struct tent *t, const struct row *r, struct item *it, uint64_t now)
{
	memcpy(it->part, r->part, r->plen);
	it->part[r->plen] = 0;
	it->klen = r->klen;
	it->plen = r->paylen;
	it->due_ms = t->due_ms;
	it->seq = t->seq;
	it->state = t->state;
	it->deliveries = t->deliveries;
	it->holder = t->state == KEEL_TIMER_CLAIMED ? (pid_t)t->holder_pid : 0;
	it->lease_left_ms = t->state == KEEL_TIMER_CLAIMED ? ((int64_t)t->lease_end_ns - (int64_t)now) / 1000000 : 0;
	(void)h;
}

static void info_of(const struct item *it, keel_timer_info_t *info)
{
	info->part = it->part;
	info->key = it->key;
	info->klen = it->klen;
	info->due_ms = it->due_ms;
	info->state = it->state;
	info->deliveries = it->deliveries;
	info->holder = it->holder;
	info->lease_left_ms = it->lease_left_ms;
	info->payload = it->key + it->klen;
	info->plen = it->plen;
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;
	int c = strcmp(x->part, y->part);
	if (c)
		return c;
	if (x->due_ms != y->due_ms)
		return x->due_ms < y->due_ms ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int keel_timers(keel_t *h, const char *part, unsigned states, keel_timer_fn fn, void *ctx)
{
	struct item *v = NULL;
	size_t n = 0, cap = 0, plen = 0;
	struct part *p;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "callback is NULL");
	if (part && (rc = part_name_check(part, &plen)))
		return rc;
	if (states == 0 || (states & ~(unsigned)KEEL_TIMER_ALL))
		return shm_err(KEEL_E_INVAL, "state mask %#x: use KEEL_TIMER_PENDING, _CLAIMED, _DEAD or _ALL", states);
	if ((rc = tlock(h, &p)))
		return rc;
	if (!p)
		return 0;
	if (!h->readonly)
		lost_claims(h, p, 0);
	uint64_t cur = p->head, steps = 0, now = shm_mono_ns();
	while (cur && steps++ < walk_max(h) && rc == 0) {
		const struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		if (!d)
			break;
		const struct node *nd = (d->sokey & 1) ? shm_ptr(&h->a, cur, sizeof(struct node)) : NULL;
		struct row r;
		struct tent fake;
		const struct tent *t;
		cur = d->next;
		if (!nd || (nd->flags & NODE_TOMB) || !shm_ptr(&h->a, shm_off(&h->a, nd), node_bytes(nd->klen, nd->vlen)) ||
		    row_decode(nd, &r) || !(t = tent_or_row(h, nd, &r, &fake)))
			continue;
		if (!(t->state & states) || (part && (r.plen != plen || memcmp(r.part, part, plen))))
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct item *nv = realloc(v, nc * sizeof(*nv));
			if (!nv) {
				rc = shm_err(KEEL_E_NOMEM, "out of memory listing timers");
				break;
			}
			v = nv;
			cap = nc;
		}
		struct item *it = &v[n];
		item_of(h, t, &r, it, now);
		it->key = malloc(r.klen + r.paylen + 1);
		if (!it->key) {
			rc = shm_err(KEEL_E_NOMEM, "out of memory listing timers");
			break;
		}
		memcpy(it->key, r.key, r.klen);
		memcpy(it->key + r.klen, r.payload, r.paylen);
		n++;
	}
	tunlock(h, p);
	if (rc == 0 && n)
		qsort(v, n, sizeof(v[0]), cmp_item);
	for (size_t i = 0; i < n && rc == 0; i++) {
		keel_timer_info_t info;
		info_of(&v[i], &info);
		rc = fn(ctx, &info);
		if (rc > 0) {
			rc = 0;
			break;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return rc;
}

/* A copy of one timer, by name; the lock is not held on return. */
static int get_item(keel_t *h, const char *part, const void *key, size_t klen, struct item *it,
		    uint8_t **rowcopy)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	struct part *p;
	struct node *n = NULL;
	struct row r;
	int rc;

	if ((rc = handle_ok(h)) || (rc = enc_key(part, key, klen, ek, &eklen)))
		return rc;
	if ((rc = tlock(h, &p)))
		return rc;
	if (!p)
		return shm_err(KEEL_E_NOTFOUND, "no timer \"%.*s\" in partition \"%s\"", (int)(klen > 64 ? 64 : klen),
			       (const char *)key, part);
	if (!h->readonly)
		lost_claims(h, p, 0);
	volatile uint64_t *link;
	struct tent fake;
	const struct tent *t = NULL;
	n = table_find_locked(h, p, ek, eklen, key_hash(ek, eklen), &link);
	if (n && !(n->flags & NODE_TOMB) && row_decode(n, &r) == 0)
		t = tent_or_row(h, n, &r, &fake);
	if (!t) {
		tunlock(h, p);
		return shm_err(KEEL_E_NOTFOUND, "no timer \"%.*s\" in partition \"%s\"", (int)(klen > 64 ? 64 : klen),
			       (const char *)key, part);
	}
	item_of(h, t, &r, it, shm_mono_ns());
	*rowcopy = malloc(node_bytes(n->klen, n->vlen));
	if (!*rowcopy) {
		tunlock(h, p);
		return shm_err(KEEL_E_NOMEM, "out of memory reading a timer");
	}
	memcpy(*rowcopy, n, node_bytes(n->klen, n->vlen));
	tunlock(h, p);
	return 0;
}

int keel_timer_get(keel_t *h, const char *part, const void *key, size_t klen, keel_timer_info_t *info,
		   void *buf, size_t cap)
{
	struct item it;
	uint8_t *row;
	struct row r;
	int rc;

	if (!buf && cap)
		return shm_err(KEEL_E_INVAL, "keel_timer_get: buffer is NULL with capacity %zu", cap);
	if ((rc = get_item(h, part, key, klen, &it, &row)))
		return rc;
	row_decode((struct node *)row, &r);
	if (buf && cap)
		memcpy(buf, r.payload, r.paylen < cap ? r.paylen : cap);
	free(row);
	if (info) {
		memset(info, 0, sizeof(*info));
		info->part = NULL;   /* pointers into a copy that is gone: the caller has them */
		info->key = NULL;
		info->due_ms = it.due_ms;
		info->state = it.state;
		info->deliveries = it.deliveries;
		info->holder = it.holder;
		info->lease_left_ms = it.lease_left_ms;
		info->payload = buf;
		info->plen = it.plen;
	}
	return 0;
}

/* ---- dead letters -------------------------------------------------------------------------------------- */

int keel_timer_requeue(keel_t *h, const char *part, const void *key, size_t klen, uint64_t due_ms)
{
	struct item it;
	uint8_t *row;
	struct row r;
	int rc;

	if (due_ms > KEEL_TIMER_DUE_MAX)
		return check_set(due_ms, NULL, 0);
	if ((rc = get_item(h, part, key, klen, &it, &row)))
		return rc;
	if (it.state != KEEL_TIMER_DEAD) {
		free(row);
		return shm_err(KEEL_E_STATE, "timer is %s, not dead-lettered; nothing changed",
			       it.state == KEEL_TIMER_CLAIMED ? "claimed" : "pending");
	}
	const struct node *n = (const struct node *)row;
	row_decode(n, &r);
	struct tval tv = { .due_ms = due_ms ? due_ms : keel_now_ms() };
	rc = commit_one(h, TIMER_PART, OP_PUT, node_key(n), n->klen, &tv, sizeof(tv), r.payload, r.paylen,
			TCOND_DEAD, 0, NULL);
	free(row);
	return rc;
}

int keel_timer_drop(keel_t *h, const char *part, const void *key, size_t klen)
{
	uint8_t ek[EKEY_MAX];
	size_t eklen;
	int rc;

	if ((rc = handle_ok(h)) || (rc = enc_key(part, key, klen, ek, &eklen)))
		return rc;
	return commit_one(h, TIMER_PART, OP_DEL, ek, eklen, NULL, 0, NULL, 0, TCOND_DEAD, 0, NULL);
}

int keel_timer_stat(keel_t *h, keel_timer_stat_t *st)
{
	struct timer_root *tr;
	struct part *p;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (!st)
		return shm_err(KEEL_E_INVAL, "st is NULL");
	memset(st, 0, sizeof(*st));
	if ((rc = tlock(h, &p)) || !p)
		return rc;
	if (tnoindex) {   /* from the rows */
		uint64_t cur = p->head, steps = 0;
		while (cur && steps++ < walk_max(h)) {
			const struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
			if (!d)
				break;
			const struct node *nd = (d->sokey & 1) ? shm_ptr(&h->a, cur, sizeof(struct node)) : NULL;
			struct row r;
			cur = d->next;
			if (!nd || (nd->flags & NODE_TOMB) || !shm_ptr(&h->a, shm_off(&h->a, nd), node_bytes(nd->klen, nd->vlen)) ||
			    row_decode(nd, &r))
				continue;
			if (r.tv.flags & TV_DEAD) {
				st->dead++;
			} else {
				st->pending++;
				if (!st->next_due_ms || r.tv.due_ms < st->next_due_ms)
					st->next_due_ms = r.tv.due_ms;
			}
		}
		part_unlock(h, p);
		return 0;
	}
	if (!h->readonly)
		lost_claims(h, p, 0);
	tr = TR(h);
	st->pending = tr->pending;
	st->claimed = tr->claimed;
	st->dead = tr->dead;
	st->claims = tr->claims;
	st->redelivered = tr->redelivered;
	st->dead_lettered = tr->dead_lettered;
	uint64_t te = pick(h, NULL, 0);
	if (te)
		st->next_due_ms = TENT(te)->due_ms;
	tunlock(h, p);
	return 0;
}
