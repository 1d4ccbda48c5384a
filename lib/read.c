/*
 * read.c - lock-free reads: pins, copying and zero-copy gets, read scopes,
 * iterators and listings.
 *
 * Each thread keeps, per handle, one reader slot (registry.h) in a small
 * thread-local cache.  Entering a read pins the slot (shm_pin) unless the
 * thread is already inside a scope of that handle, in which case the outer
 * pin already protects everything at or after its snapshot.  A get writes
 * nothing shared: only its own slot's cache line.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/internal.h"

#define TLS_SLOTS 8
#define GET_MANY_GROUP 16   /* keys whose lookups keel_get_many overlaps */

struct tls_slot {
	uint64_t serial;      /* handle serial (never reused in a process) */
	uint32_t slot;
	uint32_t depth;
	uint64_t last_use;
};

static __thread struct tls_slot tls[TLS_SLOTS];
static __thread uint64_t tls_clock;
static __thread struct tls_slot *tls_last;   /* the slot found last: most reads hit it */

static struct tls_slot *tls_find(keel_t *h)
{
	struct tls_slot *victim = NULL;

	for (int i = 0; i < TLS_SLOTS; i++) {
		if (tls[i].serial == h->serial) {
			tls[i].last_use = ++tls_clock;
			return &tls[i];
		}
	}
	for (int i = 0; i < TLS_SLOTS; i++) {
		if (tls[i].depth)
			continue;
		if (!victim || tls[i].serial == 0 || tls[i].last_use < victim->last_use)
			victim = &tls[i];
	}
	if (!victim)
		return NULL;
	uint32_t idx;
	if (shm_reader_claim(&h->a, h->proc, &idx))
		return NULL;
	pthread_mutex_lock(&h->mu);
	if (h->nreaders < sizeof(h->readers) / sizeof(h->readers[0]))
		h->readers[h->nreaders++] = idx;
	pthread_mutex_unlock(&h->mu);
	shm_reader_slot(&h->a, idx)->tid = shm_tid();
	victim->serial = h->serial;
	victim->slot = idx;
	victim->depth = 0;
	victim->last_use = ++tls_clock;
	return victim;
}

/* This thread's slot cache entry for handle h (claiming a reader slot the
 * first time), or NULL when none is free.  Two lookups per get (enter and
 * leave), so the last entry found is tried first. */
static inline struct tls_slot *tls_for(keel_t *h)
{
	struct tls_slot *t = tls_last;
	if (__builtin_expect(t != NULL && t->serial == h->serial, 1))
		return t;
	if ((t = tls_find(h)))
		tls_last = t;
	return t;
}

struct shm_reader *reader_enter(keel_t *h, struct snap *snap)
{
	struct tls_slot *t = tls_for(h);
	if (!t)
		return NULL;
	struct shm_reader *r = shm_reader_slot(&h->a, t->slot);
	if (t->depth++ == 0) {
		snap->w = shm_pin(r, &h->root->applied_lsn, &h->root->gen);
	} else {
		if (__builtin_expect(shm_load32(&r->novis) != 0, 0)) {
			/* Inside a checkpoint's pin, which reads no visibility
			 * states: this snapshot does, so the slot counts again. */
			shm_store32(&r->novis, 0);
			shm_fence();
		}
		snap->w = shm_load_acq(&h->root->applied_lsn);   /* the outer pin covers it */
	}
	shm_load_pair(&h->root->visx, &snap->v, &snap->x);   /* A9: after w */
	return r;
}

/*
 * A pin for a snapshot that reads no visibility states: a checkpoint's
 * {s, 0, 0} (every LSN <= s, nothing else).  Its slot is marked novis
 * before the pin, so the pin holds back the reuse of superseded blocks as
 * any pin does, but not the reuse of visibility-state slots.  Without the
 * mark a checkpoint of a large store, pinned for a second or more, stopped
 * every commit once VIS_STATES LSNs had passed its snapshot (measured:
 * async puts stalled 0.6-1.4 s at every checkpoint of a 1M-key store).
 * Inside a scope of the same handle the outer pin stands, unmarked.
 */
struct shm_reader *reader_enter_novis(keel_t *h, struct snap *snap)
{
	struct tls_slot *t = tls_for(h);
	if (!t)
		return NULL;
	if (t->depth == 0)
		shm_store32(&shm_reader_slot(&h->a, t->slot)->novis, 1);   /* ordered before the pin's release */
	return reader_enter(h, snap);
}

void reader_leave(keel_t *h, struct shm_reader *r)
{
	struct tls_slot *t = tls_for(h);
	if (t && --t->depth == 0) {
		shm_unpin(r);
		if (shm_load32(&r->novis))
			shm_store32_rel(&r->novis, 0);   /* after the unpin */
	}
}

static int enter_or_fail(keel_t *h, struct shm_reader **r, struct snap *snap)
{
	*r = reader_enter(h, snap);
	if (!*r)
		return shm_err(KEEL_E_LIMIT, "no reader slot for this thread: %s", shm_errmsg());
	return 0;
}

static int check_key(const void *key, size_t klen)
{
	if (!key)
		return shm_err(KEEL_E_INVAL, "key is NULL");
	if (klen == 0 || klen > KEEL_KEY_MAX)
		return shm_err(KEEL_E_KEYSIZE, "key of %zu bytes; keys are 1 to %u bytes", klen, KEEL_KEY_MAX);
	return 0;
}

static void fill_meta(keel_meta_t *m, const struct node *n)
{
	if (m) {
		m->version = n->version;
		m->mtime_ns = n->mtime_ns;
		m->lsn = n->lsn;
	}
}

/* Look a key up at the pinned snapshot; NULL with rc 0 when absent. */
static int lookup(keel_t *h, const char *part, const void *key, size_t klen, const struct snap *snap,
		  const struct node **out)
{
	struct part *p;
	int rc = part_find(h, part, &p);

	*out = NULL;
	if (rc)
		return rc;
	if (p)
		*out = table_get(h, p, key, klen, key_hash(key, klen), snap);
	return 0;
}

int keel_get(keel_t *h, const char *part, const void *key, size_t klen, void *buf, size_t cap,
	     size_t *vlen, keel_meta_t *meta)
{
	struct shm_reader *r;
	const struct node *n;
	struct snap snap;
	int rc;

	if ((rc = handle_ok(h)) || (rc = check_key(key, klen)))
		return rc;
	if (cap && !buf)
		return shm_err(KEEL_E_INVAL, "buffer is NULL with capacity %zu", cap);
	/* The partition and the bucket first: the bucket's cache miss then
	 * overlaps the pin (which ends in a full fence). */
	struct part *p;
	uint64_t hash = key_hash(key, klen);
	if ((rc = part_find(h, part, &p)))
		return rc;
	const struct dummy *bk = p ? table_bucket_start(h, p, hash) : NULL;
	if ((rc = enter_or_fail(h, &r, &snap)))
		return rc;
	n = bk ? table_get_at(h, p, bk, key, klen, hash, &snap) : NULL;
	if (n) {
		if (cap)
			memcpy(buf, node_val(n), n->vlen < cap ? n->vlen : cap);
		if (vlen)
			*vlen = n->vlen;
		fill_meta(meta, n);
	} else if (rc == 0) {
		rc = KEEL_E_NOTFOUND;
	}
	reader_leave(h, r);
	return rc == KEEL_E_NOTFOUND ? shm_err(rc, "key not found in partition \"%s\"", part) : rc;
}

int keel_get_alloc(keel_t *h, const char *part, const void *key, size_t klen, void **val, size_t *vlen,
		   keel_meta_t *meta)
{
	struct shm_reader *r;
	const struct node *n;
	struct snap snap;
	int rc;

	if ((rc = handle_ok(h)) || (rc = check_key(key, klen)))
		return rc;
	if (!val)
		return shm_err(KEEL_E_INVAL, "val is NULL");
	if ((rc = enter_or_fail(h, &r, &snap)))
		return rc;
	rc = lookup(h, part, key, klen, &snap, &n);
	if (rc == 0 && n) {
		*val = malloc(n->vlen ? n->vlen : 1);
		if (!*val) {
			rc = shm_err(KEEL_E_NOMEM, "out of memory for a %u-byte value", n->vlen);
		} else {
			memcpy(*val, node_val(n), n->vlen);
			if (vlen)
				*vlen = n->vlen;
			fill_meta(meta, n);
		}
	} else if (rc == 0) {
		rc = shm_err(KEEL_E_NOTFOUND, "key not found in partition \"%s\"", part);
	}
	reader_leave(h, r);
	return rc;
}

int keel_contains(keel_t *h, const char *part, const void *key, size_t klen, int *found)
{
	struct shm_reader *r;
	const struct node *n;
	struct snap snap;
	int rc;

	if ((rc = handle_ok(h)) || (rc = check_key(key, klen)))
		return rc;
	if (!found)
		return shm_err(KEEL_E_INVAL, "found is NULL");
	if ((rc = enter_or_fail(h, &r, &snap)))
		return rc;
	rc = lookup(h, part, key, klen, &snap, &n);
	*found = rc == 0 && n != NULL;
	reader_leave(h, r);
	return rc;
}

int keel_exists(keel_t *h, const char *part, int *found)
{
	struct part *p;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (!found)
		return shm_err(KEEL_E_INVAL, "found is NULL");
	if ((rc = part_find(h, part, &p)))
		return rc;
	*found = p != NULL;
	return 0;
}

int keel_count(keel_t *h, const char *part, uint64_t *count)
{
	struct part *p;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (!count)
		return shm_err(KEEL_E_INVAL, "count is NULL");
	if ((rc = part_find(h, part, &p)))
		return rc;
	*count = p ? shm_load(&p->count) : 0;
	return 0;
}

int keel_get_many(keel_t *h, const char *part, size_t n, const void *const *keys, const size_t *klens,
		  keel_get_fn fn, void *ctx, size_t *found)
{
	struct shm_reader *r;
	struct part *p;
	struct snap snap;
	size_t nf = 0;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (n && (!keys || !klens))
		return shm_err(KEEL_E_INVAL, "keel_get_many: NULL array");
	for (size_t i = 0; i < n; i++)
		if ((rc = check_key(keys[i], klens[i])))
			return shm_err_ctx(rc, "key %zu", i);
	if ((rc = part_find(h, part, &p)))
		return rc;
	if ((rc = enter_or_fail(h, &r, &snap)))
		return rc;
	/* In groups of GET_MANY_GROUP keys, one step at a time for the whole
	 * group: every bucket's load starts, then every first node's, then the
	 * lookups run.  A lone get waits for its bucket, then for its node;
	 * here the group's misses are in flight together. */
	int stop = 0;
	for (size_t base = 0; p && base < n && !stop; base += GET_MANY_GROUP) {
		size_t m = n - base < GET_MANY_GROUP ? n - base : GET_MANY_GROUP;
		const struct dummy *bk[GET_MANY_GROUP];
		uint64_t hash[GET_MANY_GROUP];

		for (size_t j = 0; j < m; j++) {
			hash[j] = key_hash(keys[base + j], klens[base + j]);
			bk[j] = table_bucket_start(h, p, hash[j]);
		}
		for (size_t j = 0; j < m; j++)
			if (bk[j])
				table_prefetch_from(h, bk[j]);
		for (size_t j = 0; j < m && !stop; j++) {
			const struct node *v = bk[j] ? table_get_at(h, p, bk[j], keys[base + j], klens[base + j],
								      hash[j], &snap) : NULL;
			if (!v)
				continue;
			nf++;
			if (fn) {
				keel_meta_t mt;
				fill_meta(&mt, v);
				stop = fn(ctx, base + j, node_val(v), v->vlen, &mt) != 0;
			}
		}
	}
	reader_leave(h, r);
	if (found)
		*found = nf;
	return 0;
}

/* ---- read scopes --------------------------------------------------------------------------------- */

struct keel_read {
	keel_t *h;
	struct shm_reader *r;
	struct snap snap;
};

int keel_read_begin(keel_t *h, keel_read_t **out)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	if (!out)
		return shm_err(KEEL_E_INVAL, "out is NULL");
	struct keel_read *s = malloc(sizeof(*s));
	if (!s)
		return shm_err(KEEL_E_NOMEM, "out of memory for a read scope");
	s->h = h;
	if ((rc = enter_or_fail(h, &s->r, &s->snap))) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int keel_read_get(keel_read_t *s, const char *part, const void *key, size_t klen, const void **val,
		  size_t *vlen, keel_meta_t *meta)
{
	const struct node *n;
	int rc;

	if (!s)
		return shm_err(KEEL_E_INVAL, "NULL read scope");
	if ((rc = handle_ok(s->h)) || (rc = check_key(key, klen)))
		return rc;
	if ((rc = lookup(s->h, part, key, klen, &s->snap, &n)))
		return rc;
	if (!n)
		return shm_err(KEEL_E_NOTFOUND, "key not found in partition \"%s\"", part);
	if (val)
		*val = node_val(n);
	if (vlen)
		*vlen = n->vlen;
	fill_meta(meta, n);
	return 0;
}

uint64_t keel_read_lsn(const keel_read_t *s)
{
	return s ? s->snap.w : 0;
}

void keel_read_end(keel_read_t *s)
{
	if (!s)
		return;
	reader_leave(s->h, s->r);
	free(s);
}

/* ---- iterators ------------------------------------------------------------------------------------ */

struct keel_iter {
	keel_t *h;
	struct part *p;
	struct shm_reader *r;
	struct snap snap;
	uint64_t cur;
	uint64_t steps;
	uint8_t *prefix;
	size_t plen;
};

int keel_iter_open(keel_t *h, const char *part, const void *prefix, size_t plen, keel_iter_t **out)
{
	struct keel_iter *it;
	int rc;

	if ((rc = handle_ok(h)))
		return rc;
	if (!out || (plen && !prefix))
		return shm_err(KEEL_E_INVAL, "keel_iter_open: NULL argument");
	it = calloc(1, sizeof(*it) + plen);
	if (!it)
		return shm_err(KEEL_E_NOMEM, "out of memory for an iterator");
	it->h = h;
	if ((rc = part_find(h, part, &it->p)) || (rc = enter_or_fail(h, &it->r, &it->snap))) {
		free(it);
		return rc;
	}
	it->prefix = (uint8_t *)(it + 1);
	it->plen = plen;
	if (plen)
		memcpy(it->prefix, prefix, plen);
	it->cur = it->p ? it->p->head : 0;
	*out = it;
	return 0;
}

int keel_iter_next(keel_iter_t *it, const void **key, size_t *klen, const void **val, size_t *vlen,
		   keel_meta_t *meta)
{
	if (!it)
		return shm_err(KEEL_E_INVAL, "NULL iterator");
	while (it->cur && it->steps++ < walk_max(it->h)) {
		const struct dummy *d = shm_ptr(&it->h->a, it->cur, sizeof(struct dummy));
		if (!d)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": list link %llu outside the arena",
				       it->p->name, (unsigned long long)it->cur);
		uint64_t here = it->cur;
		it->cur = shm_load_acq(&d->next);   /* A5 */
		if (!(d->sokey & 1))
			continue;
		const struct node *n = shm_ptr(&it->h->a, here, sizeof(struct node));
		if (!n || n->klen == 0 || n->klen > KEEL_KEY_MAX || n->vlen > KEEL_VALUE_MAX ||
		    !shm_ptr(&it->h->a, here, node_bytes(n->klen, n->vlen)))
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": bad node at %llu", it->p->name,
				       (unsigned long long)here);
		const struct node *v = node_visible(it->h, n, &it->snap);
		if (!v || v->klen < it->plen || memcmp(node_key(v), it->prefix, it->plen) != 0)
			continue;
		if (key)
			*key = node_key(v);
		if (klen)
			*klen = v->klen;
		if (val)
			*val = node_val(v);
		if (vlen)
			*vlen = v->vlen;
		fill_meta(meta, v);
		return 1;
	}
	return 0;
}

void keel_iter_close(keel_iter_t *it)
{
	if (!it)
		return;
	reader_leave(it->h, it->r);
	free(it);
}

int keel_partitions(keel_t *h, keel_partition_fn fn, void *ctx)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "callback is NULL");
	uint32_t n = shm_load32_acq(&h->root->nparts);
	for (uint32_t i = 0; i < n && i < SHM_PARTS_MAX; i++) {
		struct part *p = part_by_id(h, i);
		if (!p || !p->ready || p->name_len > KEEL_PARTITION_NAME_MAX || part_is_timers(p))
			continue;
		char name[KEEL_PARTITION_NAME_MAX + 1];
		memcpy(name, p->name, p->name_len);
		name[p->name_len] = 0;
		if ((rc = fn(ctx, name, shm_load(&p->count))))
			return rc > 0 ? 0 : rc;
	}
	return 0;
}
