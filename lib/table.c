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
 * Bucket segments are never freed while the partition lives: a resize only
 * adds one (struct bucket_dir).
 * The retire list is FIFO per partition; reclaim stops at the first item not
 * yet free, which keeps each pass bounded and cheap.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/internal.h"

const struct bucket_dir *table_dir(keel_t *h, const struct part *p, uint64_t *log2_out)
{
	uint64_t off = shm_load_acq(&p->buckets);   /* A5 */
	const struct bucket_dir *d = off < h->a.heap_off ? NULL : shm_ptr(&h->a, off, sizeof(*d));
	if (!d)
		return NULL;
	uint64_t log2 = shm_load_acq(&d->log2);   /* A5: the segments before it */
	if (log2 < SHM_BUCKETS_LOG2_MIN || log2 > SHM_BUCKETS_LOG2_MAX)
		return NULL;
	*log2_out = log2;
	return d;
}

uint64_t table_bucket_off(keel_t *h, const struct bucket_dir *d, uint64_t i)
{
	uint64_t first;
	uint32_t s = bseg_of(i, &first);
	uint64_t seg = s < BSEG_MAX ? d->seg[s] : 0;

	if (seg < h->a.heap_off || !shm_ptr(&h->a, seg, bseg_len(s) * sizeof(struct dummy)))
		return 0;
	return seg + (i - first) * sizeof(struct dummy);
}

/* Bucket i's dummy (i below the published count, or in a segment being
 * linked), or NULL when damaged. */
static struct dummy *bucket_dummy(keel_t *h, const struct bucket_dir *d, uint64_t i)
{
	uint64_t off = table_bucket_off(h, d, i);
	return off ? shm_at(&h->a, off) : NULL;
}

/* The bucket (dummy) a hash falls in, or NULL when damaged. */
static struct dummy *hash_bucket(keel_t *h, const struct part *p, uint64_t hash)
{
	uint64_t log2;
	const struct bucket_dir *dir = table_dir(h, p, &log2);
	return dir ? bucket_dummy(h, dir, hash & ((1ull << log2) - 1)) : NULL;
}

/* Start loading the node a dummy's hint names (two links on). */
static inline void prefetch_hinted(keel_t *h, const struct dummy *d)
{
	uint64_t off = dummy_hint(d);
	const char *n = off ? shm_ptr(&h->a, off, 128) : NULL;
	if (n) {
		__builtin_prefetch(n);
		__builtin_prefetch(n + 64);
	}
}

const struct dummy *table_bucket_start(keel_t *h, const struct part *p, uint64_t hash)
{
	const struct dummy *bk = hash_bucket(h, p, hash);

	if (bk)
		__builtin_prefetch(bk);
	return bk;
}

const struct dummy *table_prefetch(keel_t *h, const struct part *p, uint64_t hash)
{
	const struct dummy *bk = table_bucket_start(h, p, hash);
	if (p->retire_head) {   /* the next reclaim reads it, and frees it */
		uint64_t off = p->retire_head;
		const void *n = shm_ptr(&h->a, off, sizeof(struct node));
		const void *pg = shm_ptr(&h->a, off / SHM_PAGE_BYTES * SHM_PAGE_BYTES, SHM_PAGE_HEADER_BYTES);
		if (n)
			__builtin_prefetch(n);
		if (pg)   /* shm_free reads the page header of the block */
			__builtin_prefetch(pg);
	}
	return bk;
}

/* Start loading the first `lines` cache lines of bucket bk's first node
 * (reads the bucket) and the node its hint names. */
static void prefetch_chain(keel_t *h, const struct dummy *bk, unsigned lines)
{
	const char *n = shm_ptr(&h->a, shm_load(&bk->next), (size_t)lines * 64);

	for (unsigned i = 0; n && i < lines; i++)
		__builtin_prefetch(n + 64 * i);
	prefetch_hinted(h, bk);
}

void table_prefetch_first(keel_t *h, const struct dummy *bk)
{
	if (bk)   /* the header: a commit's walk reads the key later, under the lock */
		prefetch_chain(h, bk, 1);
}

void table_prefetch_from(keel_t *h, const struct dummy *bk)
{
	prefetch_chain(h, bk, 3);   /* header, key and a small value: what table_get_at reads */
}

/* Every node lives in the heap: an offset below it is damage, never a node. */
static struct dummy *link_node(keel_t *h, uint64_t off)
{
	if (off < h->a.heap_off)
		return NULL;
	return shm_ptr(&h->a, off, sizeof(struct dummy));
}

/* Store `v` into the `next` of list node `prev` (R5). */
_Static_assert(offsetof(struct dummy, next) == 0 && offsetof(struct node, next) == 0,
	       "a link pointer is its node's address");
static void set_link(struct dummy *prev, uint64_t v)
{
	shm_store_rel(&prev->next, v);   /* R5 */
}

/* Recompute dummy d's prefetch hint (struct dummy); under the lock.  Only
 * a bucket whose first node is a key has one: an empty bucket's lookup ends
 * at the next dummy, and leaving its hint 0 means an insert right after a
 * dummy never changes the hint of the dummy before that one. */
static void hint_refresh(keel_t *h, struct dummy *d)
{
	uint64_t w = shm_load(&d->sokey), second = 0;
	if (w & 1)
		return;
	const struct dummy *first = link_node(h, shm_load(&d->next));
	if (first && (shm_load(&first->sokey) & 1))
		second = shm_load(&first->next);
	uint64_t hint = (second & 15) == 0 && second < SHM_ARENA_BYTES_MAX ? second >> 4 : 0;
	shm_store(&d->sokey, (w & DUMMY_SOKEY_MASK) | (hint << 1));
}

/* set_link, then the hints that name prev's old successor: prev's own if it
 * is a dummy, else bucket's (the dummy the walk to prev started from) if
 * prev is the key right after it.  A dummy right after bucket leaves
 * bucket's hint 0, so only a key prev needs the bucket. */
static void set_link_hinted(keel_t *h, struct dummy *prev, uint64_t v, struct dummy *bucket)
{
	set_link(prev, v);
	if (!(shm_load(&prev->sokey) & 1))
		hint_refresh(h, prev);
	else if (bucket && shm_load(&bucket->next) == shm_off(&h->a, prev))
		hint_refresh(h, bucket);
}

void table_hint_refresh(keel_t *h, uint64_t off)
{
	struct dummy *d = link_node(h, off);
	if (d)
		hint_refresh(h, d);
}

/* Link the dummy of bucket i (its segment allocated), walking from its
 * parent's dummy; a dummy already in the list is left as it is. */
static int ensure_dummy(keel_t *h, struct part *p, const struct bucket_dir *dir, uint64_t i)
{
	uint64_t parent = i ? i & ~(1ull << (63 - __builtin_clzll(i))) : 0;
	uint64_t sk = sokey_dummy(i), off = table_bucket_off(h, dir, i);
	struct dummy *prev = bucket_dummy(h, dir, parent);
	uint64_t steps = 0, cur;

	if (!prev || !off)
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": bucket %llu or its parent has a bad segment",
			       p->name, (unsigned long long)i);
	while ((cur = prev->next) != 0 && steps++ < walk_max(h)) {
		struct dummy *c = link_node(h, cur);
		if (!c)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": list link %llu outside the arena",
				       p->name, (unsigned long long)cur);
		uint64_t csk = link_sokey(c);
		if (csk == sk) {   /* linked by an earlier, interrupted grow */
			if (cur != off)
				return shm_err(KEEL_E_CORRUPT, "partition \"%s\": the list holds bucket %llu's dummy at %llu, not in its segment",
					       p->name, (unsigned long long)i, (unsigned long long)cur);
			hint_refresh(h, c);
			return 0;
		}
		if (csk > sk)
			break;
		prev = c;
	}
	struct dummy *d = shm_at(&h->a, off);
	d->sokey = sk;
	d->next = cur;
	hint_refresh(h, d);   /* before it is linked: readers find it set */
	set_link_hinted(h, prev, off, bucket_dummy(h, dir, parent));
	return 0;
}

/* Allocate segment s unless an interrupted grow left it; its offset is
 * stored before any of its dummies is linked. */
static int ensure_segment(keel_t *h, struct part *p, struct bucket_dir *dir, uint32_t s)
{
	uint64_t off;

	if (dir->seg[s])
		return 0;
	int rc = shm_alloc(&h->a, &p->heap, bseg_len(s) * sizeof(struct dummy), 0, &off);
	if (rc)
		return rc;
	dir->seg[s] = off;
	return 0;
}

int table_init(keel_t *h, struct part *p)
{
	uint64_t n = 1ull << SHM_BUCKETS_LOG2_MIN, doff;
	int rc = shm_alloc(&h->a, &p->heap, sizeof(struct bucket_dir), 0, &doff);

	if (rc)
		return rc;
	struct bucket_dir *dir = shm_at(&h->a, doff);
	memset(dir, 0, sizeof(*dir));
	dir->log2 = SHM_BUCKETS_LOG2_MIN;
	if ((rc = ensure_segment(h, p, dir, 0))) {
		shm_free(&h->a, &p->heap, doff);
		return rc;
	}
	struct dummy *d0 = shm_at(&h->a, dir->seg[0]);
	d0->sokey = 0;
	d0->next = 0;
	for (uint64_t i = 1; i < n; i++)
		if ((rc = ensure_dummy(h, p, dir, i)))
			return rc;   /* the caller abandons the descriptor */
	p->head = dir->seg[0];
	shm_store_rel(&p->buckets, doff);
	return 0;
}

static inline const struct node *full_node(keel_t *h, uint64_t off)
{
	const struct node *n = off < h->a.heap_off ? NULL : shm_ptr(&h->a, off, sizeof(struct node));
	if (!n || n->klen == 0 || n->klen > KEEL_KEY_MAX || n->vlen > KEEL_VALUE_MAX)
		return NULL;
	if (!shm_ptr(&h->a, off, node_bytes(n->klen, n->vlen)))
		return NULL;
	return n;
}

const struct node *node_visible_older(keel_t *h, const struct node *n, const struct snap *snap)
{
	uint64_t max = walk_max(h);
	for (uint64_t steps = 0; n && steps < max; steps++) {
		if (steps && lsn_visible(h, n->lsn, snap))
			return (n->flags & NODE_TOMB) ? NULL : n;
		uint64_t prev = shm_load_acq(&n->prev_ver);   /* A5 */
		if (!prev)
			return NULL;
		const struct node *older = full_node(h, prev);
		if (older && older->lsn >= n->lsn)
			return NULL;   /* damaged: each older version has a lower LSN (a cycle cannot) */
		n = older;
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
	return table_get_at(h, p, hash_bucket(h, p, hash), key, klen, hash, snap);
}

const struct node *table_get_at(keel_t *h, struct part *p, const struct dummy *bk, const void *key,
				size_t klen, uint64_t hash, const struct snap *snap)
{
	uint64_t sk = sokey_regular(hash), cur, steps = 0, max = walk_max(h);

	if (!bk)
		return NULL;
	cur = shm_load_acq(&bk->next);   /* A5 */
	prefetch_hinted(h, bk);
	while (cur && steps++ < max) {
		const struct dummy *d = link_node(h, cur);
		if (!d)
			return NULL;
		/* A node's key and value lie in its next two cache lines: fetch
		 * them with the first, not one after the other. */
		__builtin_prefetch((const char *)d + 64);
		__builtin_prefetch((const char *)d + 128);
		uint64_t dsk = link_sokey(d);
		if (dsk > sk)
			return NULL;
		if (dsk == sk) {
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
	uint64_t sk = sokey_regular(hash), steps = 0, max = walk_max(h);
	struct dummy *prev = hash_bucket(h, p, hash);

	*link = NULL;
	if (!prev)
		return NULL;
	prefetch_hinted(h, prev);
	for (uint64_t cur = prev->next; cur && steps++ < max;) {
		struct dummy *d = link_node(h, cur);
		uint64_t dsk = d ? link_sokey(d) : 0;
		if (!d || dsk > sk)
			break;
		if (dsk == sk) {
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

int table_link_hinted(keel_t *h, struct part *p, struct node *n, uint64_t hash,
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

	if (!link)
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": its bucket table is damaged; 'keel verify --repair' reports it",
			       p->name);
	n->sokey = sokey_regular(hash);
	n->retire_next = 0;
	n->stamp = 0;
	/* The bucket, for its hint, only when the link is in a key (see
	 * set_link_hinted): most puts link right after their bucket's dummy. */
	struct dummy *prev = (struct dummy *)link;   /* next is at offset 0 */
	struct dummy *bucket = (shm_load(&prev->sokey) & 1) ? hash_bucket(h, p, hash) : NULL;
	if (old) {
		n->next = old->next;
		n->prev_ver = shm_off(&h->a, old);
		set_link_hinted(h, prev, off, bucket);
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
		set_link_hinted(h, prev, off, bucket);
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
	return 0;
}

void table_maybe_grow(keel_t *h, struct part *p)
{
	uint64_t log2;
	struct bucket_dir *dir = (struct bucket_dir *)table_dir(h, p, &log2);

	if (!dir || log2 >= SHM_BUCKETS_LOG2_MAX || p->count <= (1ull << log2))
		return;
	uint64_t n = 1ull << log2;
	if (ensure_segment(h, p, dir, (uint32_t)(log2 - SHM_BUCKETS_LOG2_MIN + 1)))
		return;   /* no room to grow: lookups just walk longer chains */
	for (uint64_t i = n; i < 2 * n; i++)
		if (ensure_dummy(h, p, dir, i))
			return;   /* linked dummies stay; the next grow goes on */
	shm_store_rel(&dir->log2, log2 + 1);   /* R5: after every dummy */
}

static void unlink_tomb(keel_t *h, struct part *p, struct node *t)
{
	uint64_t off = shm_off(&h->a, t), steps = 0;
	struct dummy *bucket = hash_bucket(h, p, rev64(t->sokey));   /* the hash, top bit set */
	struct dummy *prev = bucket;

	for (uint64_t cur; prev && (cur = prev->next) != 0 && steps++ < walk_max(h);) {
		if (cur == off) {
			set_link_hinted(h, prev, t->next, bucket);
			return;
		}
		struct dummy *d = link_node(h, cur);
		if (!d || link_sokey(d) > t->sokey)
			return;
		prev = d;
	}
}

uint64_t lsn_horizon(keel_t *h)
{
	uint64_t ms, mg, w = shm_load_acq(&h->root->applied_lsn);
	shm_readers_horizon(&h->a, &ms, &mg, NULL);
	return ms < w ? ms : w;
}

uint64_t vis_horizon(keel_t *h)
{
	uint64_t ms, mg, mv, w = shm_load_acq(&h->root->applied_lsn);
	shm_readers_horizon(&h->a, &ms, &mg, &mv);
	return mv < w ? mv : w;
}

#define UNLINK_BATCH_MAX 256

void table_reclaim(keel_t *h, struct part *p, uint64_t budget)
{
	uint64_t ms, mg, lh, w, examined = 0, prev_off = 0;
	uint64_t unlinked[UNLINK_BATCH_MAX];
	uint32_t nunlinked = 0;
	uint64_t *link = &p->retire_head;

	if (!p->retire_head)
		return;
	w = shm_load_acq(&h->root->applied_lsn);
	shm_readers_horizon(&h->a, &ms, &mg, NULL);
	lh = ms < w ? ms : w;
	uint64_t max = walk_max(h);
	while (*link && (budget == 0 || examined < budget)) {
		uint64_t off = *link;
		struct node *n = shm_ptr(&h->a, off, sizeof(struct node));
		if (!n || examined >= max || n->retire_next == off) {
			*link = 0;   /* damaged (outside the arena, or a cycle): repair rebuilds the list */
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
