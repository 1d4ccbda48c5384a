/*
 * peer_keel.c - Keel as keel-bench drives it, through lib/keel.h only.
 *
 * A struct bench_keel is one store directory under the bench directory,
 * opened by the parent with one durability mode (memory for get/put/mem,
 * async, sync; sync or async for recovery).  The parent's handle keeps the
 * arena attached for the whole run and serves keel_stat.  Every timed
 * worker is a forked child that opens its own handle with the same options
 * (a handle is refused after fork) and closes it in teardown.
 *
 * Loading writes keys 0..N-1 with keel_put_many in BENCH_LOAD_BATCH pairs
 * per commit into partition BENCH_PART, then checks keel_count and a
 * random sample of values, so a store that loses or mixes up values fails
 * the run instead of producing a figure.
 *
 * Workers
 *   get    keel_get into a stack buffer, 64 gets per batch
 *   read   keel_read_begin, BENCH_KEEL_READS_PER_SCOPE keel_read_get
 *          (zero-copy; the first and last byte are read), keel_read_end
 *   many   keel_get_many of BENCH_KEEL_GET_MANY keys of the sequence per
 *          call (the callback copies the value, as keel_get does), 4
 *          calls per batch; every key must be found
 *   put    keel_put of a random existing key with a new generation, in
 *          the store's durability mode; 64 per batch in memory and async
 *          mode, 1 in sync mode, where each put's latency is recorded and
 *          teardown checks that the store's durable LSN covers the last
 *          LSN a put returned.
 *
 * At the end, bench_keel_close closes the handle and removes the arena
 * with keel_unlink_arena; the directory itself goes with the bench tree.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define KEEL_OPS_PER_BATCH 64u

static const char *durability_name(int d)
{
	switch (d) {
	case KEEL_DURABILITY_MEMORY: return "memory";
	case KEEL_DURABILITY_ASYNC: return "async";
	case KEEL_DURABILITY_SYNC: return "sync";
	default: return "default";
	}
}

int bench_keel_open(struct bench_keel *k, const char *dir, int durability)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if (snprintf(k->dir, sizeof(k->dir), "%s", dir) >= (int)sizeof(k->dir))
		return bench_fail(KEEL_E_INVAL, "store directory %s is too long", dir);
	keel_options_init(&k->opt);
	k->opt.durability = durability;
	k->durability = durability;
	if (bench_cfg.arena_dir[0]) {
		const char *base = strrchr(dir, '/');
		if (snprintf(k->arena, sizeof(k->arena), "%s/keel-bench-%d-%s.arena", bench_cfg.arena_dir,
			     (int)getpid(), base ? base + 1 : dir) >= (int)sizeof(k->arena))
			return bench_fail(KEEL_E_INVAL, "--arena-dir %s is too long", bench_cfg.arena_dir);
		k->opt.arena_path = k->arena;
	}
	k->arena_made = 1;        /* even a failed open may leave one */
	rc = keel_open(k->dir, &k->opt, &k->h);
	if (rc) {
		k->h = NULL;
		return bench_keel_fail(rc, "keel_open %s (durability %s)", k->dir,
				       durability_name(durability));
	}
	return 0;
}

int bench_keel_stat(struct bench_keel *k, keel_stat_t *st)
{
	int rc = keel_stat(k->h, st);

	return rc ? bench_keel_fail(rc, "keel_stat %s", k->dir) : 0;
}

/* Checks BENCH_VERIFY_SAMPLES random keys of h.  0 or a failure. */
static int keel_verify(keel_t *h, const char *what)
{
	uint64_t st = bench_cfg.seed ^ 0x4b45454cull;
	uint8_t key[BENCH_KEY_BYTES], val[BENCH_VALUE_BYTES + 16];

	for (unsigned n = 0; n < BENCH_VERIFY_SAMPLES; n++) {
		uint64_t i = bench_rand_next(&st) % bench_cfg.keys;
		size_t vlen = 0;
		int rc;

		bench_key(i, key);
		rc = keel_get(h, BENCH_PART, key, sizeof(key), val, sizeof(val), &vlen, NULL);
		if (rc)
			return bench_keel_fail(rc, "%s: keel_get of key %llu (%.16s)", what,
					       (unsigned long long)i, (const char *)key);
		rc = bench_value_check(i, val, vlen);
		if (rc)
			return bench_fail_ctx(rc, "%s", what);
	}
	return 0;
}

static int keel_check_count(keel_t *h, const char *what)
{
	uint64_t count = 0;
	int rc = keel_count(h, BENCH_PART, &count);

	if (rc)
		return bench_keel_fail(rc, "%s: keel_count", what);
	if (count != bench_cfg.keys)
		return bench_fail(KEEL_E_CORRUPT, "%s: keel_count says %llu keys, expected %llu",
				  what, (unsigned long long)count,
				  (unsigned long long)bench_cfg.keys);
	return 0;
}

int bench_keel_load(struct bench_keel *k)
{
	static uint8_t keys[BENCH_LOAD_BATCH][BENCH_KEY_BYTES];
	static uint8_t vals[BENCH_LOAD_BATCH][BENCH_VALUE_BYTES];
	const void *kp[BENCH_LOAD_BATCH], *vp[BENCH_LOAD_BATCH];
	size_t kl[BENCH_LOAD_BATCH], vl[BENCH_LOAD_BATCH];
	uint64_t t0 = bench_now_ns();
	char a[32];
	int rc;

	for (unsigned j = 0; j < BENCH_LOAD_BATCH; j++) {
		kp[j] = keys[j];
		vp[j] = vals[j];
		kl[j] = BENCH_KEY_BYTES;
		vl[j] = BENCH_VALUE_BYTES;
	}
	for (uint64_t i = 0; i < bench_cfg.keys; i += BENCH_LOAD_BATCH) {
		uint64_t n = bench_cfg.keys - i;

		if (n > BENCH_LOAD_BATCH)
			n = BENCH_LOAD_BATCH;
		rc = bench_interrupted_check();
		if (rc)
			return rc;
		for (unsigned j = 0; j < n; j++) {
			bench_key(i + j, keys[j]);
			bench_value(i + j, 0, vals[j]);
		}
		rc = keel_put_many(k->h, BENCH_PART, (size_t)n, kp, kl, vp, vl, NULL);
		if (rc)
			return bench_keel_fail(rc, "loading %s: keel_put_many of keys %llu..%llu",
					       k->dir, (unsigned long long)i,
					       (unsigned long long)(i + n - 1));
	}
	bench_progress("  keel (%s): loaded %llu keys in %.2f s (%s puts/s in batches of %u)",
		       durability_name(k->durability), (unsigned long long)bench_cfg.keys,
		       (double)(bench_now_ns() - t0) / 1e9,
		       bench_fmt_si((double)bench_cfg.keys * 1e9 / (double)(bench_now_ns() - t0), a),
		       BENCH_LOAD_BATCH);
	rc = bench_keel_check(k, "after load");
	if (!rc)
		k->loaded = 1;
	return rc;
}

int bench_keel_check(struct bench_keel *k, const char *what)
{
	int rc = keel_check_count(k->h, what);

	return rc ? rc : keel_verify(k->h, what);
}

int bench_keel_recover(struct bench_keel *k, double *secs)
{
	char arena[PATH_MAX];
	uint64_t t0, t1;
	int rc;

	rc = keel_sync(k->h);
	if (rc)
		return bench_keel_fail(rc, "recovery: keel_sync before close");
	rc = keel_close(k->h);
	k->h = NULL;
	if (rc)
		return bench_keel_fail(rc, "recovery: keel_close");
	rc = keel_arena_path(k->dir, &k->opt, arena, sizeof(arena));
	if (rc)
		return bench_keel_fail(rc, "recovery: keel_arena_path %s", k->dir);
	rc = keel_unlink_arena(k->dir, &k->opt, 0);
	if (rc)
		return bench_keel_fail(rc, "recovery: keel_unlink_arena %s", k->dir);
	if (access(arena, F_OK) == 0 || errno != ENOENT)
		return bench_fail(KEEL_E_STATE, "recovery: arena %s still there after "
				  "keel_unlink_arena", arena);
	t0 = bench_now_ns();
	rc = keel_open(k->dir, &k->opt, &k->h);
	t1 = bench_now_ns();
	if (rc) {
		k->h = NULL;
		return bench_keel_fail(rc, "recovery: keel_open %s without its arena", k->dir);
	}
	*secs = (double)(t1 - t0) / 1e9;
	return bench_keel_check(k, "after recovery");
}

int bench_keel_close(struct bench_keel *k)
{
	int rc = 0, rc2;

	if (k->h) {
		rc = keel_close(k->h);
		k->h = NULL;
		if (rc)
			bench_keel_fail(rc, "keel_close %s", k->dir);
	}
	if (!k->arena_made)
		return rc;
	k->arena_made = 0;
	rc2 = keel_unlink_arena(k->dir, &k->opt, 0);
	if (rc2 == KEEL_E_BUSY) {
		/* Every process of this run has closed or exited; whatever is
		 * still registered is dead. */
		rc2 = keel_unlink_arena(k->dir, &k->opt, 1);
	}
	if (rc2 && rc2 != KEEL_E_NOTFOUND && !rc)
		rc = bench_keel_fail(rc2, "keel_unlink_arena %s", k->dir);
	return rc;
}

/* ---- workers --------------------------------------------------------------------- */

struct keel_state {
	keel_t *h;
	const struct bench_keel *k;
	size_t pos;
	uint64_t sink;
	uint64_t gen;             /* put: (worker + 1) << 40 | count */
	uint64_t last_lsn;
	uint64_t puts;
};

static int keel_worker_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	const struct bench_keel *k = ctx;
	struct keel_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "keel worker: out of memory");
	rc = keel_open(k->dir, &k->opt, &s->h);
	if (rc) {
		free(s);
		return bench_keel_fail(rc, "keel worker %u: keel_open %s", wid, k->dir);
	}
	s->k = k;
	s->pos = bench_seq_start(wid, n);
	s->gen = (uint64_t)(wid + 1) << 40;
	*state = s;
	return 0;
}

static int keel_worker_teardown(void *state)
{
	struct keel_state *s = state;
	int rc = 0, crc;

	if (!s)
		return 0;
	__asm__ volatile("" : : "r"(s->sink));
	if (s->k->durability == KEEL_DURABILITY_SYNC && s->puts) {
		keel_stat_t st;

		rc = keel_stat(s->h, &st);
		if (rc)
			bench_keel_fail(rc, "sync put worker: keel_stat");
		else if (st.durable_lsn < s->last_lsn)
			rc = bench_fail(KEEL_E_STATE, "sync put returned LSN %llu but the durable "
					"LSN is %llu: a sync commit returned before it was durable",
					(unsigned long long)s->last_lsn,
					(unsigned long long)st.durable_lsn);
	}
	crc = keel_close(s->h);
	if (crc && !rc)
		rc = bench_keel_fail(crc, "keel worker: keel_close");
	free(s);
	return rc;
}

static int keel_get_batch(void *state, uint64_t *ops)
{
	struct keel_state *s = state;
	uint8_t buf[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < KEEL_OPS_PER_BATCH; i++) {
		const uint8_t *key = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
		size_t vlen;
		int rc = keel_get(s->h, BENCH_PART, key, BENCH_KEY_BYTES, buf, sizeof(buf),
				  &vlen, NULL);

		if (rc)
			return bench_keel_fail(rc, "keel_get of key %u", bench_seq.index[s->pos]);
		if (vlen != BENCH_VALUE_BYTES)
			return bench_fail(KEEL_E_CORRUPT, "keel_get of key %u: length %zu, "
					  "expected %u", bench_seq.index[s->pos], vlen,
					  BENCH_VALUE_BYTES);
		s->sink += buf[0] + buf[BENCH_VALUE_BYTES - 1];
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += KEEL_OPS_PER_BATCH;
	return 0;
}

static int keel_read_batch(void *state, uint64_t *ops)
{
	struct keel_state *s = state;
	keel_read_t *r;
	int rc = keel_read_begin(s->h, &r);

	if (rc)
		return bench_keel_fail(rc, "keel_read_begin");
	for (unsigned i = 0; i < BENCH_KEEL_READS_PER_SCOPE; i++) {
		const uint8_t *key = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
		const void *val;
		size_t vlen;

		rc = keel_read_get(r, BENCH_PART, key, BENCH_KEY_BYTES, &val, &vlen, NULL);
		if (rc) {
			rc = bench_keel_fail(rc, "keel_read_get of key %u", bench_seq.index[s->pos]);
			break;
		}
		if (vlen != BENCH_VALUE_BYTES) {
			rc = bench_fail(KEEL_E_CORRUPT, "keel_read_get of key %u: length %zu, "
					"expected %u", bench_seq.index[s->pos], vlen,
					BENCH_VALUE_BYTES);
			break;
		}
		s->sink += ((const uint8_t *)val)[0] + ((const uint8_t *)val)[vlen - 1];
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	keel_read_end(r);
	if (!rc)
		*ops += BENCH_KEEL_READS_PER_SCOPE;
	return rc;
}

struct many_sink {
	uint64_t sum;
	unsigned bad;   /* values of the wrong length */
};

static int keel_many_cb(void *ctx, size_t index, const void *val, size_t vlen, const keel_meta_t *meta)
{
	struct many_sink *m = ctx;
	uint8_t buf[BENCH_VALUE_BYTES];

	(void)index;
	(void)meta;
	if (vlen != BENCH_VALUE_BYTES) {
		m->bad++;
		return 1;
	}
	memcpy(buf, val, sizeof(buf));
	m->sum += buf[0] + buf[BENCH_VALUE_BYTES - 1];
	return 0;
}

static int keel_many_batch(void *state, uint64_t *ops)
{
	struct keel_state *s = state;

	for (unsigned c = 0; c < KEEL_OPS_PER_BATCH / BENCH_KEEL_GET_MANY; c++) {
		const void *keys[BENCH_KEEL_GET_MANY];
		size_t klens[BENCH_KEEL_GET_MANY], found = 0;
		struct many_sink m = { 0, 0 };
		size_t first = s->pos;

		for (unsigned i = 0; i < BENCH_KEEL_GET_MANY; i++) {
			keys[i] = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
			klens[i] = BENCH_KEY_BYTES;
			s->pos = (s->pos + 1) & bench_seq.mask;
		}
		int rc = keel_get_many(s->h, BENCH_PART, BENCH_KEEL_GET_MANY, keys, klens, keel_many_cb,
				       &m, &found);
		if (rc)
			return bench_keel_fail(rc, "keel_get_many from key %u", bench_seq.index[first]);
		if (m.bad || found != BENCH_KEEL_GET_MANY)
			return bench_fail(KEEL_E_CORRUPT, "keel_get_many from key %u: %zu of %u found, "
					  "%u of the wrong length", bench_seq.index[first], found,
					  BENCH_KEEL_GET_MANY, m.bad);
		s->sink += m.sum;
	}
	*ops += KEEL_OPS_PER_BATCH;
	return 0;
}

static int keel_put_batch(void *state, uint64_t *ops)
{
	struct keel_state *s = state;
	unsigned n = s->k->durability == KEEL_DURABILITY_SYNC ? 1 : KEEL_OPS_PER_BATCH;
	uint8_t val[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < n; i++) {
		const uint8_t *key = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
		uint32_t idx = bench_seq.index[s->pos];
		uint64_t lsn = 0, t0 = n == 1 ? bench_now_ns() : 0;
		int rc;

		bench_value(idx, ++s->gen, val);
		rc = keel_put(s->h, BENCH_PART, key, BENCH_KEY_BYTES, val, sizeof(val), &lsn);
		if (rc)
			return bench_keel_fail(rc, "keel_put of key %u", idx);
		if (n == 1)
			bench_lat_record(bench_now_ns() - t0);
		if (lsn > s->last_lsn)
			s->last_lsn = lsn;
		s->puts++;
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += n;
	return 0;
}

const struct bench_worker bench_keel_get_worker = {
	.name = "keel_get",
	.setup = keel_worker_setup,
	.batch = keel_get_batch,
	.teardown = keel_worker_teardown,
};

const struct bench_worker bench_keel_read_worker = {
	.name = "keel_read_get",
	.setup = keel_worker_setup,
	.batch = keel_read_batch,
	.teardown = keel_worker_teardown,
};

const struct bench_worker bench_keel_many_worker = {
	.name = "keel_get_many",
	.setup = keel_worker_setup,
	.batch = keel_many_batch,
	.teardown = keel_worker_teardown,
};

const struct bench_worker bench_keel_put_worker = {
	.name = "keel_put",
	.setup = keel_worker_setup,
	.batch = keel_put_batch,
	.teardown = keel_worker_teardown,
};
