/*
 * repair.c - putting a partition right after its writer died, the
 * structural audit behind keel_check / keel-dump --check, and reclaim.
 *
 * Repair runs in the process that took the partition lock from a dead
 * holder, with the lock held.  It is a decision table over what it finds:
 *
 *   what it finds                               what it does
 *   blocks on no list and unreachable           returns them (mark-sweep)
 *   an old version reachable but not retired    puts it on the retire list
 *   a tombstone in the list but not retired     puts it on the retire list
 *   retired items never stamped                 stamps them now
 *   marker -> record RESERVED                   voids it: nothing was applied
 *   marker -> record COMPLETE                   redoes this partition's ops
 *                                               (idempotent by LSN); marks the
 *                                               record APPLIED once no partition
 *                                               carries its marker
 *   marker -> record APPLIED or VOID            clears the marker
 *   marker -> record damaged                    refuses: KEEL_E_CORRUPT
 * Counts and byte totals are recomputed from the list.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "lib/internal.h"

struct stamp_list {
	uint64_t *v;
	size_t n, cap;
};

static void stamp_push(struct stamp_list *s, uint64_t off)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return;   /* left unstamped: only delays reuse until the next repair */
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = off;
}

static void append_retired(keel_t *h, struct part *p, struct node *n, uint16_t kind, uint64_t stamp)
{
	uint64_t off = shm_off(&h->a, n);
	n->stamp = stamp;
	n->retire_next = 0;
	n->flags = (uint16_t)((n->flags & ~NODE_KINDS) | kind | NODE_RETIRED);
	if (p->retire_tail)
		((struct node *)shm_at(&h->a, p->retire_tail))->retire_next = off;
	else
		p->retire_head = off;
	p->retire_tail = off;
	p->retire_count++;
}

static const struct node *valid_node(keel_t *h, uint64_t off)
{
	const struct node *n = shm_ptr(&h->a, off, sizeof(struct node));
	if (!n || n->klen == 0 || n->klen > KEEL_KEY_MAX || n->vlen > KEEL_VALUE_MAX ||
	    !shm_ptr(&h->a, off, node_bytes(n->klen, n->vlen)))
		return NULL;
	return n;
}

/* An older version of x: the same key with a smaller LSN.  A link that
 * fails this points at memory reused after no reader could need it. */
static int same_key(const struct node *y, const struct node *x)
{
	return y->lsn < x->lsn && y->klen == x->klen && y->sokey == x->sokey &&
	       memcmp(node_key(y), node_key(x), x->klen) == 0;
}

/* Mark the bucket directory and its segments as blocks in use.  Returns 0,
 * or -1 with a description of the damage in `why`. */
static int mark_buckets(keel_t *h, struct part *p, struct shm_sweep *sw, char *why, size_t cap)
{
	uint64_t log2;
	const struct bucket_dir *dir = table_dir(h, p, &log2);

	if (!dir) {
		snprintf(why, cap, "bucket directory at %llu is invalid", (unsigned long long)p->buckets);
		return -1;
	}
	if (shm_sweep_mark(sw, p->buckets) != 0) {
		snprintf(why, cap, "bucket directory at %llu is not a block of the partition",
			 (unsigned long long)p->buckets);
		return -1;
	}
	for (uint32_t s = 0; s < BSEG_MAX; s++) {
		uint64_t seg = dir->seg[s];
		int needed = s <= log2 - SHM_BUCKETS_LOG2_MIN;
		if (!seg && !needed)
			continue;
		if (!seg || table_bucket_off(h, dir, bseg_first(s)) == 0 || shm_sweep_mark(sw, seg) != 0) {
			snprintf(why, cap, "bucket segment %u at %llu is %s", s, (unsigned long long)seg,
				 seg ? "not a block of the partition" : "missing");
			return -1;
		}
	}
	return 0;
}

/* A dummy node reached in the list must be its bucket, in its segment (one
 * of the 2^log2 in use, or of the next segment, which a grow cut short may
 * have linked). */
static int dummy_in_place(keel_t *h, const struct bucket_dir *dir, uint64_t log2, uint64_t off,
			  uint64_t sokey)
{
	uint64_t i = rev64(sokey);
	return dir && (sokey & 1) == 0 && i < (2ull << log2) && table_bucket_off(h, dir, i) == off;
}

/* Mark-sweep with repairs; see the table above. */
static int sweep_part(keel_t *h, struct part *p)
{
	struct shm_sweep *sw;
	struct shm_sweep_result res;
	struct stamp_list stamps = { 0 };
	uint64_t lh = lsn_horizon(h), count = 0, bytes = 0, steps = 0, last = 0, n_retired = 0;
	int rc = shm_sweep_begin(&h->a, &p->heap, &sw);

	if (rc)
		return rc;
	/* The retire list first, so that "already marked" means "retired". */
	uint64_t *link = &p->retire_head;
	while (*link && steps++ < walk_max(h)) {
		struct node *n = (struct node *)valid_node(h, *link);
		if (!n || shm_sweep_mark(sw, *link) != 0) {
			*link = 0;   /* cut a damaged or cyclic list */
			break;
		}
		if ((n->flags & NODE_KIND_UNLINKED) && n->stamp == UINT64_MAX)
			stamp_push(&stamps, *link);
		last = *link;
		n_retired++;
		link = &n->retire_next;
	}
	p->retire_tail = last;
	p->retire_count = n_retired;
	/* The bucket directory and its segments (the dummies live in them). */
	char why[160];
	uint64_t log2 = 0;
	const struct bucket_dir *dir = table_dir(h, p, &log2);
	if (mark_buckets(h, p, sw, why, sizeof(why)) != 0) {
		shm_sweep_end(sw, 0, &res);
		free(stamps.v);
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": %s", p->name, why);
	}
	/* The list: dummies and newest versions, and old versions still visible. */
	uint64_t cur = p->head;
	steps = 0;
	while (cur && steps++ < walk_max(h)) {
		struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		if (!d) {
			rc = shm_err(KEEL_E_CORRUPT, "partition \"%s\": list link %llu outside the arena",
				     p->name, (unsigned long long)cur);
			break;
		}
		if (!(d->sokey & 1)) {
			if (!dummy_in_place(h, dir, log2, cur, link_sokey(d))) {
				rc = shm_err(KEEL_E_CORRUPT, "partition \"%s\": list node %llu is no bucket of the partition",
					     p->name, (unsigned long long)cur);
				break;
			}
			table_hint_refresh(h, cur);   /* the list may have been relinked */
			cur = d->next;
			continue;
		}
		int m = shm_sweep_mark(sw, cur);
		if (m < 0) {
			rc = shm_err(KEEL_E_CORRUPT, "partition \"%s\": list node %llu is not a block of this partition",
				     p->name, (unsigned long long)cur);
			break;
		}
		if (d->sokey & 1) {
			struct node *n = (struct node *)valid_node(h, cur);
			if (!n) {
				rc = shm_err(KEEL_E_CORRUPT, "partition \"%s\": bad node at %llu", p->name,
					     (unsigned long long)cur);
				break;
			}
			if (n->flags & NODE_TOMB) {
				if (m == 0)
					append_retired(h, p, n, NODE_KIND_TOMB, n->lsn);
			} else {
				count++;
				bytes += n->klen + n->vlen;
			}
			for (struct node *x = n; x->lsn > lh && x->prev_ver;) {
				struct node *y = (struct node *)valid_node(h, x->prev_ver);
				if (!y || !same_key(y, x))
					break;   /* reused since: nothing older is needed */
				int my = shm_sweep_mark(sw, x->prev_ver);
				if (my < 0)
					break;
				if (my == 0)
					append_retired(h, p, y, NODE_KIND_VERSION, x->lsn);
				x = y;
			}
		}
		cur = d->next;
	}
	shm_sweep_end(sw, rc == 0, &res);
	if (rc == 0) {
		p->count = count;
		p->bytes = bytes;
	}
	uint64_t g0 = shm_faa(&h->root->gen, 1);
	for (size_t i = 0; i < stamps.n; i++)
		((struct node *)shm_at(&h->a, stamps.v[i]))->stamp = g0;
	free(stamps.v);
	return rc;
}

static int rec_check(keel_t *h, struct part *p, uint64_t pos, struct rec *r, uint64_t lsn)
{
	if (!rec_fits(h, pos, r, h->a.ring_bytes) || r->lsn != lsn || r->len < sizeof(struct rec) ||
	    r->nparts > REC_PARTS_MAX || sizeof(*r) + (uint64_t)r->nparts * 4 > r->len)
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": its applying marker names LSN %llu, but the ring record there (offset %llu of the %llu-byte ring) has magic %08x LSN %llu length %u, not a whole record of it",
			       p->name, (unsigned long long)lsn,
			       (unsigned long long)(pos % h->a.ring_bytes),
			       (unsigned long long)h->a.ring_bytes, r->magic, (unsigned long long)r->lsn, r->len);
	return 0;
}

/*
 * A dead owner's record, whose part in one partition was just redone: redo
 * its other parts too, then publish it.  Until every part is in, the record
 * is not visible, but the caller holds the partition and goes on at once.
 * For the timer partition that is a claim, and the timer index is not
 * versioned: it holds the redone part already, so a claim could hand out a
 * timer set by a transaction whose other writes nobody can read yet (seen
 * in keel-demo as a step claimed ahead of its flow's state; test_timers
 * mid_apply).  So the other partitions are taken now with trylock, which a
 * dead owner's lock always yields to (taking it redoes that part: lock_taken
 * in part.c); trylock never waits, so this cannot deadlock with the lock the
 * caller holds.  A part that another process is redoing at this moment (its
 * lock busy) is waited for, up to FINISH_WAIT_NS: a repairer only ever
 * trylocks, so it does not wait for the lock held here.
 */
#define FINISH_WAIT_NS (1000ull * 1000 * 1000)
static void finish_record(keel_t *h, struct rec *r, uint64_t lsn)
{
	const uint32_t *ids = (const uint32_t *)r->body;
	uint32_t n = r->nparts <= REC_PARTS_MAX ? r->nparts : 0;
	uint64_t t0 = 0;

	for (;;) {
		int all_clear = 1;
		for (uint32_t i = 0; i < n; i++) {
			struct part *q = part_by_id(h, ids[i]);
			if (!q || shm_load_acq(&q->applying_lsn) != lsn)
				continue;
			if (part_trylock(h, q) == 0)
				part_unlock(h, q);   /* taking it redid the part */
			if (shm_load_acq(&q->applying_lsn) == lsn)
				all_clear = 0;
		}
		if (all_clear) {
			publish_visible(h, lsn);
			shm_cas32(&r->state, REC_COMPLETE, REC_APPLIED);
			return;
		}
		uint64_t now = shm_mono_ns();
		if (!t0)
			t0 = now;
		else if (now - t0 > FINISH_WAIT_NS)
			return;   /* the last repairer publishes it */
		sched_yield();
	}
}

/* The marker half of the table. */
static int repair_marker(keel_t *h, struct part *p)
{
	uint64_t lsn = p->applying_lsn;
	struct rec *r;
	int rc;

	if (!lsn)
		return 0;
	r = rec_at(h, p->applying_pos);
	if ((rc = rec_check(h, p, p->applying_pos, r, lsn)))
		return rc;
	uint32_t st = shm_load32_acq(&r->state);
	if (st == REC_RESERVED) {
		if (shm_cas32(&r->state, REC_RESERVED, REC_VOID))
			shm_faa(&h->root->voided, 1);
		st = shm_load32_acq(&r->state);
	}
	if (st == REC_COMPLETE) {
		uint64_t sum = XXH3_64bits(r->body, r->len - sizeof(struct rec));
		if (sum != r->checksum)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": ring record LSN %llu has checksum %016llx, expected %016llx; cannot redo it",
				       p->name, (unsigned long long)lsn, (unsigned long long)sum,
				       (unsigned long long)r->checksum);
		if ((rc = apply_part(h, p, r, NULL, NULL, NULL)))
			return shm_err_ctx(rc, "redo of LSN %llu in partition \"%s\"", (unsigned long long)lsn, p->name);
		shm_faa(&h->root->redone, 1);
	}
	shm_store_rel(&p->applying_lsn, 0);
	if (st == REC_COMPLETE)
		finish_record(h, r, lsn);
	return 0;
}

int part_sweep(keel_t *h, struct part *p)
{
	return sweep_part(h, p);
}

int part_repair(keel_t *h, struct part *p)
{
	struct timer_salvage *sv = NULL;
	int rc;
	shm_faa(&h->root->repairs, 1);
	if (part_is_timers(p)) {
		/* The timer index is derived state: read the claims it still
		 * holds, let the sweep take its blocks, build it again. */
		sv = timer_salvage(h, p);
		timer_reset(h);
	}
	if ((rc = sweep_part(h, p)) == 0)
		rc = repair_marker(h, p);
	if (part_is_timers(p) && rc == 0)
		timer_build(h, p, sv);
	else
		timer_salvage_free(sv);
	return rc;
}

/* ---- the audit ------------------------------------------------------------------------------------- */

struct audit {
	keel_t *h;
	keel_report_fn fn;
	void *ctx;
	uint64_t problems;
};

static void report(struct audit *au, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void report(struct audit *au, const char *where, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	au->problems++;
	if (au->fn)
		au->fn(au->ctx, where, what);
}

static void audit_note(void *ctx, const char *what)
{
	report(ctx, "timer index", "%s", what);
}

static void audit_part(struct audit *au, struct part *p, int repair)
{
	keel_t *h = au->h;
	struct shm_sweep *sw;
	struct shm_sweep_result res;
	char where[128];
	uint64_t lh = lsn_horizon(h), count = 0, bytes = 0, steps = 0, prev_sk = 0;

	snprintf(where, sizeof(where), "partition \"%.*s\" (id %u)", (int)p->name_len, p->name, p->id);
	if (p->applying_lsn)
		report(au, where, "applying marker set to LSN %llu with the lock free", (unsigned long long)p->applying_lsn);
	if (shm_sweep_begin(&h->a, &p->heap, &sw)) {
		report(au, where, "cannot walk its pages: %s", shm_errmsg());
		return;
	}
	for (uint64_t off = p->retire_head; off && steps++ < walk_max(h);) {
		const struct node *n = valid_node(h, off);
		if (!n) {
			report(au, where, "retire list: bad node at offset %llu", (unsigned long long)off);
			break;
		}
		if (shm_sweep_mark(sw, off) != 0) {
			report(au, where, "retire list: node %llu is not a block of the partition or is listed twice",
			       (unsigned long long)off);
			break;
		}
		if (!(n->flags & NODE_RETIRED) || !(n->flags & NODE_KINDS))
			report(au, where, "retire list: node %llu has flags %#x, expected a retired kind",
			       (unsigned long long)off, n->flags);
		off = n->retire_next;
	}
	char why[160];
	uint64_t log2 = 0, dummies = 0;
	const struct bucket_dir *dir = table_dir(h, p, &log2);
	int buckets_ok = mark_buckets(h, p, sw, why, sizeof(why)) == 0;
	if (!buckets_ok)
		report(au, where, "%s", why);
	steps = 0;
	for (uint64_t cur = p->head; cur && steps++ < walk_max(h);) {
		const struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		if (!d) {
			report(au, where, "list link %llu outside the arena", (unsigned long long)cur);
			break;
		}
		if (!(d->sokey & 1)) {
			uint64_t dsk = link_sokey(d);
			if (!dummy_in_place(h, dir, log2, cur, dsk)) {
				report(au, where, "list node %llu is no bucket of the partition (a dummy outside the bucket segments)",
				       (unsigned long long)cur);
				break;
			}
			if (dsk < prev_sk)
				report(au, where, "list out of order at %llu", (unsigned long long)cur);
			prev_sk = dsk;
			dummies += rev64(dsk) < (1ull << log2);
			cur = d->next;
			continue;
		}
		int m = shm_sweep_mark(sw, cur);
		const struct node *tn = valid_node(h, cur);
		int retired_tomb = tn && (tn->flags & NODE_TOMB) && (tn->flags & NODE_KIND_TOMB);
		if (m < 0 || (m == 1 && !retired_tomb)) {
			report(au, where, "list node %llu %s", (unsigned long long)cur,
			       m < 0 ? "is not a block of this partition" : "is reached twice (a cycle, or a retired node still in the list)");
			break;
		}
		if ((d->sokey & 1) && tn && (tn->flags & NODE_TOMB) && m == 0)
			report(au, where, "tombstone %llu is in the list but not on the retire list", (unsigned long long)cur);
		if (d->sokey < prev_sk)
			report(au, where, "list out of order at %llu", (unsigned long long)cur);
		prev_sk = d->sokey;
		if (d->sokey & 1) {
			const struct node *n = valid_node(h, cur);
			if (!n) {
				report(au, where, "bad node at %llu", (unsigned long long)cur);
				break;
			}
			if (n->sokey != sokey_regular(key_hash(node_key(n), n->klen)))
				report(au, where, "node %llu: sort key does not match its key's hash", (unsigned long long)cur);
			if (!(n->flags & NODE_TOMB)) {
				count++;
				bytes += n->klen + n->vlen;
			}
			/* Older versions are followed only from versions newer than
			 * every applied commit: below that a link may point at memory
			 * reused since (readers no longer need it), and old versions
			 * still in use are on the retire list, checked above. */
			uint64_t w = shm_load_acq(&h->root->applied_lsn);
			(void)lh;
			for (const struct node *x = n; x->lsn > w && x->prev_ver;) {
				const struct node *y = valid_node(h, x->prev_ver);
				if (!y || !same_key(y, x)) {
					/* Only a version newer than every applied commit
					 * surely still needs its predecessor. */
					if (x->lsn > w)
						report(au, where, "node %llu: bad older version at %llu", (unsigned long long)cur,
						       (unsigned long long)x->prev_ver);
					break;
				}
				if (shm_sweep_mark(sw, x->prev_ver) == 0 && x->lsn > w)
					report(au, where, "old version %llu is visible but not on the retire list",
					       (unsigned long long)x->prev_ver);
				x = y;
			}
		}
		cur = d->next;
	}
	if (buckets_ok && steps <= walk_max(h) && dummies != (1ull << log2))
		report(au, where, "the list holds %llu of the %llu bucket dummies", (unsigned long long)dummies,
		       (unsigned long long)(1ull << log2));
	if (part_is_timers(p))
		timer_audit(h, p, sw, audit_note, au);
	shm_sweep_end(sw, 0, &res);
	if (res.blocks_leaked)
		report(au, where, "%llu blocks (%llu bytes) are allocated but unreachable (leaked)",
		       (unsigned long long)res.blocks_leaked, (unsigned long long)res.bytes_leaked);
	if (res.bad_links || res.double_free)
		report(au, where, "free lists: %llu bad links, %llu blocks both free and in use",
		       (unsigned long long)res.bad_links, (unsigned long long)res.double_free);
	if (count != p->count || bytes != p->bytes)
		report(au, where, "counts say %llu keys / %llu bytes, the list holds %llu / %llu",
		       (unsigned long long)p->count, (unsigned long long)p->bytes, (unsigned long long)count,
		       (unsigned long long)bytes);
	(void)repair;
}

/* What a dead process left is a repair still to do, not damage by itself. */
#define DEAD_NOTE " (a repair still to do: the next process to take its lock does it; keel_reclaim, keeld or 'keel verify --repair' do it now)"

/* A lock whose mutex kind is not the one shm_lock_init set is never handed
 * to pthreads (glibc trusts the kind): report it.  0 when the kind is sane. */
static int check_lock_kind(struct audit *au, const shm_lock_t *l, const char *name)
{
	if (shm_lock_sane(l))
		return 0;
	report(au, name, "damaged: its mutex is not a robust process-shared one (kind %d)", l->m.__data.__kind);
	return -1;
}

static void check_lock(struct audit *au, shm_lock_t *l, const char *name, int repair, struct part *p)
{
	if (check_lock_kind(au, l, name))
		return;
	uint32_t pid = l->holder_pid;
	if (!pid || shm_pid_alive(pid, 0))
		return;
	if (repair) {
		/* Taking the lock repairs what it protects. */
		if (p) {
			if (part_lock(au->h, p) == 0)
				part_unlock(au->h, p);
		} else {
			int rc = shm_lock_try(l);
			if (rc == SHM_LOCK_DIED)
				shm_lock_consistent(l);
			if (rc == SHM_LOCK_OK || rc == SHM_LOCK_DIED)
				shm_lock_release(l);
		}
		pid = l->holder_pid;
		if (!pid || shm_pid_alive(pid, 0))
			return;
	}
	report(au, name, "held by dead process %u" DEAD_NOTE, pid);
}

static void reap_locks(keel_t *h)
{
	struct audit au = { .h = h };
	char where[96];
	uint32_t n = shm_load32_acq(&h->root->nparts);

	check_lock(&au, &h->root->apply_lock, "apply lock", 1, NULL);
	check_lock(&au, &h->a.hdr->galloc_lock, "allocator lock", 1, NULL);
	if (h->root->dir_lock.holder_pid && !shm_pid_alive(h->root->dir_lock.holder_pid, 0)) {
		/* dir_lock's repair lives in part.c: a create does it. */
		int rc = shm_lock_try(&h->root->dir_lock);
		if (rc == SHM_LOCK_DIED)
			shm_lock_consistent(&h->root->dir_lock);
		if (rc == SHM_LOCK_OK || rc == SHM_LOCK_DIED)
			shm_lock_release(&h->root->dir_lock);
	}
	for (uint32_t i = 0; i < n && i < SHM_PARTS_MAX; i++) {
		struct part *p = part_by_id(h, i);
		if (p) {
			snprintf(where, sizeof(where), "partition %u", i);
			check_lock(&au, &p->lock, where, 1, p);
		}
	}
	/* Records left by dead owners. */
	for (int k = 0; k < 4; k++) {
		advance_applied(h);
		if (shm_load_acq(&h->root->applied_pos) >= ring_head(h->root))
			break;
		help_record(h, shm_load_acq(&h->root->applied_pos), 0);
	}
}

void store_trim(keel_t *h)
{
	uint32_t n = shm_load32_acq(&h->root->nparts);
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < n && i < SHM_PARTS_MAX; i++) {
			struct part *p = part_by_id(h, i);
			if (!p || part_lock(h, p))
				continue;
			table_reclaim(h, p, 0);
			if (pass == 1)
				shm_heap_trim(&h->a, &p->heap);
			part_unlock(h, p);
		}
	}
}

int keel_reclaim(keel_t *h)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	int reaped = shm_reap(&h->a, NULL, NULL);
	reap_locks(h);
	if (!h->readonly)
		timer_reap(h);   /* claims of dead holders are due again at once */
	store_trim(h);
	store_trim(h);   /* tombstones unlinked in the first wait one generation */
	return reaped;
}

int keel_check(keel_t *h, unsigned flags, keel_report_fn fn, void *ctx)
{
	struct audit au = { .h = h, .fn = fn, .ctx = ctx };
	struct shm_page_stat ps;
	char where[96];
	int rc = handle_ok(h), repair = !!(flags & KEEL_CHECK_REPAIR);

	if (rc)
		return rc;
	if (repair) {
		shm_reap(&h->a, NULL, NULL);
		reap_locks(h);
		shm_reap(&h->a, NULL, NULL);   /* slots whose reservation just settled */
	}
	{   /* the regions' places, against what this process validated at attach */
		const struct shm_hdr *hd = h->a.hdr;
		const shm_arena_t *a = &h->a;
		if (hd->procs_off != a->procs_off || hd->readers_off != a->readers_off ||
		    hd->user_off != a->user_off || hd->ring_off != a->ring_off ||
		    hd->ring_bytes != a->ring_bytes || hd->heap_off != a->heap_off)
			report(&au, "arena header", "region fields changed since attach (ring %llu bytes at %llu, heap at %llu; were %llu at %llu, %llu); this process goes on with the ones it checked",
			       (unsigned long long)hd->ring_bytes, (unsigned long long)hd->ring_off,
			       (unsigned long long)hd->heap_off, (unsigned long long)a->ring_bytes,
			       (unsigned long long)a->ring_off, (unsigned long long)a->heap_off);
		struct stat sb;
		if (fstat(a->fd, &sb) == 0 && shm_load(&hd->arena_bytes) > (uint64_t)sb.st_size)
			report(&au, "arena header", "size %llu is past the file's end (%llu bytes)",
			       (unsigned long long)shm_load(&hd->arena_bytes), (unsigned long long)sb.st_size);
	}
	uint32_t hi = shm_load32(&h->a.hdr->procs_hi);
	for (uint32_t i = 0; i < hi && i < SHM_PROCS_MAX; i++) {
		uint32_t pid;
		struct shm_proc *sp = shm_proc_slot(&h->a, i);
		uint64_t rsv = shm_load_acq(&sp->rsv_lsn);
		if (!shm_proc_live(&h->a, i, &pid) && pid && pid != SHM_PID_REAPING &&
		    (!rsv || rsv <= shm_load_acq(&h->root->applied_lsn))) {
			if (repair) {   /* its reservation settled just now: reap it */
				shm_reap(&h->a, NULL, NULL);
				uint32_t again = shm_load32_acq(&sp->pid);
				if (again == 0 || again == SHM_PID_REAPING || again != pid)
					continue;
			}
			snprintf(where, sizeof(where), "process slot %u", i);
			report(&au, where, "pid %u is dead but still registered", pid);
		}
	}
	if (shm_page_stat(&h->a, h->readonly, &ps))
		report(&au, "page headers", "%s", shm_errmsg());
	check_lock(&au, &h->root->apply_lock, "apply lock", 0, NULL);
	check_lock(&au, &h->root->dir_lock, "directory lock", 0, NULL);
	/* A dead flusher's lock is taken over by the next flush: only its kind. */
	check_lock_kind(&au, &h->root->flush_lock, "flush lock");
	check_lock(&au, &h->a.hdr->galloc_lock, "allocator lock", 0, NULL);
	uint32_t n = shm_load32_acq(&h->root->nparts);
	for (uint32_t i = 0; i < n && i < SHM_PARTS_MAX; i++) {
		struct part *p = part_by_id(h, i);
		snprintf(where, sizeof(where), "partition %u", i);
		if (!p || !p->ready || p->id != i) {
			report(&au, where, "descriptor missing or not initialised");
			continue;
		}
		uint32_t holder = p->lock.holder_pid;
		if (holder && !shm_pid_alive(holder, 0)) {
			report(&au, where, "lock held by dead process %u" DEAD_NOTE, holder);
			continue;
		}
		if ((rc = part_lock(h, p))) {
			if (rc == KEEL_E_READONLY && h->readonly && p->applying_lsn)
				report(&au, where, "applying marker set to LSN %llu: its writer died mid-commit; a read-only "
				       "handle does not repair it, a read-write one does",
				       (unsigned long long)p->applying_lsn);
			else if (rc == KEEL_E_READONLY && h->readonly)
				report(&au, where, "lock left held by a writer that died; a read-only handle does not "
				       "repair it, a read-write one does");
			else
				report(&au, where, "cannot lock: %s", shm_errmsg());
			rc = 0;
			continue;
		}
		audit_part(&au, p, repair);
		part_unlock(h, p);
	}
	uint64_t rb = h->a.ring_bytes, head = ring_head(h->root);
	uint64_t pos = shm_load_acq(&h->root->applied_pos);
	uint64_t expect = shm_load_acq(&h->root->applied_lsn) + 1;
	for (uint64_t steps = 0; pos < head && steps < rb / REC_ALIGN; steps++) {
		struct rec *r = rec_at(h, pos);
		if (shm_load_acq(&r->lsn) != expect)
			break;   /* reserved, header not written yet: a commit in flight */
		struct rec copy = *r;
		/* Writers may have lapped this walk: trust what was read only if
		 * the tail has not passed it since. */
		if (shm_load_acq(&h->root->applied_pos) > pos)
			break;
		r = &copy;
		if (!rec_fits(h, pos, r, rb)) {
			snprintf(where, sizeof(where), "ring position %llu", (unsigned long long)pos);
			report(&au, where, "bad record header (magic %08x, length %u)", r->magic, r->len);
			break;
		}
		uint32_t st = shm_load32_acq(&r->state);
		if (repair && (st == REC_RESERVED || st == REC_COMPLETE) && !shm_pid_alive(r->pid, r->start_time)) {
			/* Behind a live process's commit in flight, the repair at
			 * the start did not reach it: settle it here. */
			struct rec *live = rec_at(h, pos);
			help_record(h, pos, 0);
			advance_applied(h);
			st = shm_load32_acq(&live->state);
		}
		if ((st == REC_RESERVED || st == REC_COMPLETE) && !shm_pid_alive(r->pid, r->start_time)) {
			snprintf(where, sizeof(where), "ring record LSN %llu", (unsigned long long)r->lsn);
			report(&au, where, "%s by dead process %u" DEAD_NOTE, st == REC_RESERVED ? "reserved" : "complete but not applied",
			       r->pid);
		}
		if (st != REC_PAD)
			expect++;
		pos += r->len;
	}
	if (shm_load(&h->root->applied_lsn) >= next_lsn(h->root))
		report(&au, "root", "applied LSN %llu is not below the next LSN %llu",
		       (unsigned long long)h->root->applied_lsn, (unsigned long long)next_lsn(h->root));
	return au.problems ? shm_err(KEEL_E_CORRUPT, "%llu problems found", (unsigned long long)au.problems) : 0;
}
