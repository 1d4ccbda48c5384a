/*
 * table.c - a partition's table: a split-ordered list with MVCC versions.
 *
 * Writers hold the partition lock; readers hold nothing but a pin
 * (registry.h).  Every change a reader can observe is one release store of
 * a link (R5: node contents before the link), paired with the acquire loads
 * of links in the reader walks (A5).  So a reader always walks a well-formed
 * list, and it picks the version of each key whose LSN is at or below its
 * snapshot.  Readers never write.
 *
 * Memory that readers may still reach is retired, not freed:
 *   - a superseded version (kind VERSION) is reachable only by readers whose
 *     snapshot is older than its successor, so it is freed once the LSN
 *     horizon (min of applied_lsn and every pinned snapshot) reaches the
 *     successor's LSN;
 *   - a tombstone (kind TOMB) stays in the list until the LSN horizon passes
 *     it, is then unlinked, and becomes kind UNLINKED, freed once every
 *     pinned reader has a later generation than the unlink;
 *   - a replaced bucket array likewise waits for the generation.
 * The retire list is FIFO per partition; reclaim stops at the first item not
 * yet free, which keeps each pass bounded and cheap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/internal.h"

#define BLOCK_HDR sizeof(struct bucket_block)

static struct bucket_block *bucket_block(keel_t *h, uint64_t off)
{
	struct bucket_block *b = off < h->a.hdr->heap_off ? NULL : shm_ptr(&h->a, off, BLOCK_HDR);
	if (!b || b->log2 > SHM_BUCKETS_LOG2_MAX)
		return NULL;
	if (!shm_ptr(&h->a, off, BLOCK_HDR + (sizeof(struct bucket) << b->log2)))
		return NULL;
	return b;
}

/* Every node lives in the heap: an offset below it is damage, never a node. */
static struct dummy *link_node(keel_t *h, uint64_t off)
{
	if (off < h->a.hdr->heap_off)
		return NULL;
	return shm_ptr(&h->a, off, sizeof(struct dummy));
}

/* Store `v` into the `next` of list node `prev` (R5), keeping the current
 * bucket array's `first` copy right when `prev` is a bucket's dummy. */
_Static_assert(offsetof(struct dummy, next) == 0 && offsetof(struct node, next) == 0,
	       "a link pointer is its node's address");
static void set_link(keel_t *h, struct part *p, struct dummy *prev, uint64_t v)
{
	shm_store_rel(&prev->next, v);   /* R5 */
	if (prev->sokey & 1)
		return;
	uint64_t j = rev64(prev->sokey);
	struct bucket_block *b = bucket_block(h, p->buckets);   /* none yet during table_init */
	if (b && j < (1ull << b->log2) && b->b[j].dummy == shm_off(&h->a, prev))
		shm_store_rel(&b->b[j].first, v);   /* R5 */
}

/* Set every bucket's `first` from its dummy (a block not yet published). */
static void fill_firsts(keel_t *h, struct bucket_block *b)
{
	for (uint64_t i = 0; i < (1ull << b->log2); i++) {
		struct dummy *d = shm_at(&h->a, b->b[i].dummy);
		b->b[i].first = d->next;
	}
}

void table_fix_firsts(keel_t *h, struct part *p)
{
	struct bucket_block *b = bucket_block(h, p->buckets);
	if (!b)
		return;
	for (uint64_t i = 0; i < (1ull << b->log2); i++) {
		struct dummy *d = link_node(h, b->b[i].dummy);
		if (d && b->b[i].first != d->next)
			shm_store_rel(&b->b[i].first, d->next);
	}
}

/* Insert (or find) the dummy of bucket i, walking from its parent's dummy. */
static int ensure_dummy(keel_t *h, struct part *p, struct bucket_block *b, uint64_t i)
{
	uint64_t parent = i ? i & ~(1ull << (63 - __builtin_clzll(i))) : 0;
	uint64_t sk = sokey_dummy(i);
	struct dummy *prev = link_node(h, b->b[parent].dummy);
	uint64_t steps = 0, cur, off;

	if (!prev)
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": bucket %llu has a bad dummy", p->name,
			       (unsigned long long)parent);
	while ((cur = prev->next) != 0 && steps++ < walk_max(h)) {
		struct dummy *c = link_node(h, cur);
		if (!c)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": list link %llu outside the arena",
				       p->name, (unsigned long long)cur);
		if (c->sokey == sk) {   /* left by an earlier, interrupted grow */
			b->b[i].dummy = cur;
			return 0;
		}
		if (c->sokey > sk)
			break;
		prev = c;
	}
	int rc = shm_alloc(&h->a, &p->heap, sizeof(struct dummy), 0, &off);
	if (rc)
		return rc;
	struct dummy *d = shm_at(&h->a, off);
	d->sokey = sk;
	d->next = cur;
	set_link(h, p, prev, off);
	b->b[i].dummy = off;
	return 0;
}

int table_init(keel_t *h, struct part *p)
{
	uint64_t n = 1ull << SHM_BUCKETS_LOG2_MIN, boff, doff;
	int rc = shm_alloc(&h->a, &p->heap, BLOCK_HDR + sizeof(struct bucket) * n, 0, &boff);

	if (rc)
		return rc;
	if ((rc = shm_alloc(&h->a, &p->heap, sizeof(struct dummy), 0, &doff))) {
		shm_free(&h->a, &p->heap, boff);
		return rc;
	}
	struct bucket_block *b = shm_at(&h->a, boff);
	struct dummy *d = shm_at(&h->a, doff);
	memset(b, 0, BLOCK_HDR + sizeof(struct bucket) * n);
	b->log2 = SHM_BUCKETS_LOG2_MIN;
	d->sokey = 0;
	d->next = 0;
	b->b[0].dummy = doff;
	for (uint64_t i = 1; i < n; i++)
		if ((rc = ensure_dummy(h, p, b, i)))
			return rc;   /* the caller abandons the descriptor */
	fill_firsts(h, b);
	p->head = doff;
	shm_store_rel(&p->buckets, boff);
	return 0;
}

static inline const struct node *full_node(keel_t *h, uint64_t off)
{
	const struct node *n = off < h->a.hdr->heap_off ? NULL : shm_ptr(&h->a, off, sizeof(struct node));
	if (!n || n->klen == 0 || n->klen > KEEL_KEY_MAX || n->vlen > KEEL_VALUE_MAX)
		return NULL;
	if (!shm_ptr(&h->a, off, node_bytes(n->klen, n->vlen)))
		return NULL;
	return n;
}

const struct node *node_visible(keel_t *h, const struct node *n, const struct snap *snap)
{
	uint64_t max = walk_max(h);
	for (uint64_t steps = 0; n && steps < max; steps++) {
		if (lsn_visible(h, n->lsn, snap))
			return (n->flags & NODE_TOMB) ? NULL : n;
		uint64_t prev = shm_load_acq(&n->prev_ver);   /* A5 */
		if (!prev)
			return NULL;
		n = full_node(h, prev);
	}
	return NULL;
}

/* KEEL_TRACE_INVISIBLE=1: report on stderr every key found with no version
 * visible to the reader (a diagnostic for tests; off by default). */
static int debug_invisible;
__attribute__((constructor)) static void table_module_init(void)
{
	debug_invisible = getenv("KEEL_TRACE_INVISIBLE") != NULL;
}

static void trace_invisible(keel_t *h, struct part *p, const struct node *n, const struct snap *snap)
{
	char line[1024];
	int len = snprintf(line, sizeof(line), "keel: trace: pid %d partition %s key %.*s invisible at w %llu v %llu x %llu (applied %llu):",
			   (int)getpid(), p->name, n->klen, (const char *)node_key(n), (unsigned long long)snap->w,
			   (unsigned long long)snap->v, (unsigned long long)snap->x,
			   (unsigned long long)shm_load(&h->root->applied_lsn));
	for (int i = 0; n && i < 6 && len < (int)sizeof(line) - 120; i++) {
		const struct vis_state *st = &h->vis_states[n->lsn % VIS_STATES];
		len += snprintf(line + len, sizeof(line) - len, " [lsn %llu ver %llu fl %#x slot %llu/%llu prev %llu]",
				(unsigned long long)n->lsn, (unsigned long long)n->version, n->flags,
				(unsigned long long)st->lsn, (unsigned long long)st->v, (unsigned long long)n->prev_ver);
		n = n->prev_ver ? full_node(h, n->prev_ver) : NULL;
	}
	fprintf(stderr, "%s\n", line);
}

const struct node *table_get(keel_t *h, struct part *p, const void *key, size_t klen,
			     uint64_t hash, const struct snap *snap)
{
	struct bucket_block *b = bucket_block(h, shm_load_acq(&p->buckets));   /* A5 */
	uint64_t sk = sokey_regular(hash), cur, steps = 0, max = walk_max(h);

	if (!b)
		return NULL;
	cur = shm_load_acq(&b->b[hash & ((1ull << b->log2) - 1)].first);   /* A5 */
	while (cur && steps++ < max) {
		const struct dummy *d = link_node(h, cur);
		if (!d || d->sokey > sk)
			return NULL;
		if (d->sokey == sk) {
			const struct node *n = full_node(h, cur);
			if (n && n->klen == klen && memcmp(node_key(n), key, klen) == 0) {
				const struct node *v = node_visible(h, n, snap);
				if (__builtin_expect(!v, 0) && debug_invisible)
					trace_invisible(h, p, n, snap);
				return v;
			}
		}
		cur = shm_load_acq(&d->next);   /* A5 */
	}
	return NULL;
}

struct node *table_find_locked(keel_t *h, struct part *p, const void *key, size_t klen,
			       uint64_t hash, volatile uint64_t **link)
{
	struct bucket_block *b = bucket_block(h, p->buckets);
	uint64_t sk = sokey_regular(hash), steps = 0, max = walk_max(h);
	struct dummy *prev;

	*link = NULL;
	if (!b)
		return NULL;
	struct bucket *bk = &b->b[hash & ((1ull << b->log2) - 1)];
	if (!(prev = link_node(h, bk->dummy)))
		return NULL;
	/* Start at the bucket's copy of dummy->next: the dummy's own cache line
	 * is needed only when a new first node is linked. */
	for (uint64_t cur = bk->first; cur && steps++ < max;) {
		struct dummy *d = link_node(h, cur);
		if (!d || d->sokey > sk)
			break;
		if (d->sokey == sk) {
			const struct node *n = full_node(h, cur);
			if (n && n->klen == klen && memcmp(node_key(n), key, klen) == 0) {
				*link = &prev->next;
				return (struct node *)n;
			}
		}
		prev = d;
		cur = d->next;
	}
	*link = &prev->next;
	return NULL;
}

static void retire(keel_t *h, struct part *p, struct node *n, uint16_t kind, uint64_t stamp)
{
	uint64_t off = shm_off(&h->a, n);

	n->stamp = stamp;
	n->retire_next = 0;
	n->flags = (uint16_t)((n->flags & ~NODE_KINDS) | kind | NODE_RETIRED);
	if (p->retire_tail) {
		struct node *t = shm_ptr(&h->a, p->retire_tail, sizeof(struct node));
		if (t)
			t->retire_next = off;
		else
			p->retire_head = off;   /* damaged tail: restart the list here */
	} else {
		p->retire_head = off;
	}
	p->retire_tail = off;
	p->retire_count++;
}

void table_link_hinted(keel_t *h, struct part *p, struct node *n, uint64_t hash,
		       const struct link_hint *hint)
{
	volatile uint64_t *link;
	struct node *old;

	if (hint && hint->link && *hint->link == hint->val) {
		link = hint->link;
		old = hint->replace ? shm_at(&h->a, hint->val) : NULL;
	} else {
		old = table_find_locked(h, p, node_key(n), n->klen, hash, &link);
	}
	uint64_t off = shm_off(&h->a, n);
	int was_live = old && !(old->flags & NODE_TOMB);
	int is_live = !(n->flags & NODE_TOMB);

	SHM_VERIFY(link != NULL);
	n->sokey = sokey_regular(hash);
	n->retire_next = 0;
	n->stamp = 0;
	if (old) {
		n->next = old->next;
		n->prev_ver = shm_off(&h->a, old);
		set_link(h, p, (struct dummy *)link, off);   /* next is at offset 0 */
		if (old->flags & NODE_RETIRED) {
			/* A tombstone waiting to be unlinked is now just an old version. */
			old->stamp = n->lsn;
			old->flags = (uint16_t)((old->flags & ~NODE_KINDS) | NODE_KIND_VERSION);
		} else {
			retire(h, p, old, NODE_KIND_VERSION, n->lsn);
		}
	} else {
		n->next = *link;
		n->prev_ver = 0;
		set_link(h, p, (struct dummy *)link, off);
	}
	if (!is_live)
		retire(h, p, n, NODE_KIND_TOMB, n->lsn);
	if (was_live && !is_live) {
		p->count--;
		p->bytes -= old->klen + old->vlen;
	} else if (!was_live && is_live) {
		p->count++;
		p->bytes += n->klen + n->vlen;
	} else if (was_live) {
		p->bytes += (uint64_t)n->vlen - old->vlen;
	}
	if (n->lsn > p->last_lsn)
		p->last_lsn = n->lsn;
}

void table_maybe_grow(keel_t *h, struct part *p)
{
	struct bucket_block *b = bucket_block(h, p->buckets), *nb;
	uint64_t n, noff;

	if (!b || b->log2 >= SHM_BUCKETS_LOG2_MAX || p->count <= (1ull << b->log2))
		return;
	n = 1ull << b->log2;
	if (shm_alloc(&h->a, &p->heap, BLOCK_HDR + sizeof(struct bucket) * 2 * n, 0, &noff))
		return;   /* no room to grow: lookups just walk longer chains */
	nb = shm_at(&h->a, noff);
	memset(nb, 0, BLOCK_HDR);
	nb->log2 = b->log2 + 1;
	memcpy(nb->b, b->b, sizeof(struct bucket) * n);
	for (uint64_t i = n; i < 2 * n; i++) {
		if (ensure_dummy(h, p, nb, i)) {
			shm_free(&h->a, &p->heap, noff);   /* dummies stay; reused next time */
			return;
		}
	}
	fill_firsts(h, nb);
	/* The old array goes on the retired chain first (stamp "never"), so a
	 * death between here and the stamp leaves it findable by repair. */
	b->stamp = UINT64_MAX;
	b->retire_next = p->old_buckets;
	p->old_buckets = shm_off(&h->a, b);
	shm_store_rel(&p->buckets, noff);   /* R5 */
	b->stamp = shm_faa(&h->root->gen, 1);
}

static void unlink_tomb(keel_t *h, struct part *p, struct node *t)
{
	uint64_t off = shm_off(&h->a, t);
	struct bucket_block *b = bucket_block(h, p->buckets);
	uint64_t steps = 0;
	struct dummy *prev;

	if (!b)
		return;
	prev = link_node(h, b->b[rev64(t->sokey) & ((1ull << b->log2) - 1)].dummy);
	for (uint64_t cur; prev && (cur = prev->next) != 0 && steps++ < walk_max(h);) {
		if (cur == off) {
			set_link(h, p, prev, t->next);
			return;
		}
		struct dummy *d = link_node(h, cur);
		if (!d || d->sokey > t->sokey)
			return;
		prev = d;
	}
}

uint64_t lsn_horizon(keel_t *h)
{
	uint64_t ms, mg, w = shm_load_acq(&h->root->applied_lsn);
	shm_readers_horizon(&h->a, &ms, &mg);
	return ms < w ? ms : w;
}

#define UNLINK_BATCH_MAX 256

void table_reclaim(keel_t *h, struct part *p, uint64_t budget)
{
	uint64_t ms, mg, lh, w, examined = 0, prev_off = 0;
	uint64_t unlinked[UNLINK_BATCH_MAX];
	uint32_t nunlinked = 0;
	uint64_t *link = &p->retire_head;

	if (!p->retire_head && !p->old_buckets)
		return;
	w = shm_load_acq(&h->root->applied_lsn);
	shm_readers_horizon(&h->a, &ms, &mg);
	lh = ms < w ? ms : w;
	while (*link && (budget == 0 || examined < budget)) {
		uint64_t off = *link;
		struct node *n = shm_ptr(&h->a, off, sizeof(struct node));
		if (!n) {
			*link = 0;   /* damaged: repair rebuilds the list */
			p->retire_tail = prev_off;
			break;
		}
		examined++;
		uint16_t kind = n->flags & NODE_KINDS;
		if (kind == NODE_KIND_TOMB && n->stamp <= lh && nunlinked < UNLINK_BATCH_MAX) {
			unlink_tomb(h, p, n);
			n->stamp = UINT64_MAX;   /* stamped below, after the unlink stores */
			n->flags = (uint16_t)((n->flags & ~NODE_KINDS) | NODE_KIND_UNLINKED);
			unlinked[nunlinked++] = off;
		} else if ((kind == NODE_KIND_VERSION && n->stamp <= lh) ||
			   (kind == NODE_KIND_UNLINKED && n->stamp != UINT64_MAX && mg > n->stamp)) {
			*link = n->retire_next;
			if (p->retire_tail == off)
				p->retire_tail = prev_off;
			p->retire_count--;
			shm_free(&h->a, &p->heap, off);
			continue;
		} else if (kind == NODE_KIND_VERSION && budget) {
			break;   /* FIFO: the rest were superseded later still */
		}
		prev_off = off;
		link = &n->retire_next;
	}
	if (nunlinked) {
		uint64_t g0 = shm_faa(&h->root->gen, 1);   /* full fence after the unlinks */
		for (uint32_t i = 0; i < nunlinked; i++)
			((struct node *)shm_at(&h->a, unlinked[i]))->stamp = g0;
	}
	uint64_t *blink = &p->old_buckets;
	for (uint64_t steps = 0; *blink && steps < 64; steps++) {
		struct bucket_block *b = shm_ptr(&h->a, *blink, BLOCK_HDR);
		if (!b) {
			*blink = 0;
			break;
		}
		if (b->stamp != UINT64_MAX && mg > b->stamp) {
			uint64_t off = *blink;
			*blink = b->retire_next;
			shm_free(&h->a, &p->heap, off);
			continue;
		}
		blink = &b->retire_next;
	}
}

int table_scan(keel_t *h, struct part *p, const struct snap *snap, table_visit_fn fn, void *ctx)
{
	uint64_t cur = p->head, steps = 0;

	while (cur && steps++ < walk_max(h)) {
		const struct dummy *d = link_node(h, cur);
		if (!d)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": list link %llu outside the arena",
				       p->name, (unsigned long long)cur);
		if (d->sokey & 1) {
			const struct node *n = full_node(h, cur);
			if (!n)
				return shm_err(KEEL_E_CORRUPT, "partition \"%s\": bad node at %llu", p->name,
					       (unsigned long long)cur);
			const struct node *v = node_visible(h, n, snap);
			if (v) {
				int rc = fn(ctx, v);
				if (rc)
					return rc;
			}
		}
		cur = shm_load_acq(&d->next);   /* A5 */
	}
	return 0;
}
