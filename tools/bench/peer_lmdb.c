/*
 * peer_lmdb.c - LMDB as a peer, configured the way its documentation
 * recommends for each job.
 *
 * One environment (a directory under the bench directory, unnamed main
 * database, map size N KiB + 256 MiB) serves the get, put and sync suites.
 * It is loaded once with MDB_NOSYNC in transactions of LMDB_LOAD_TXN_PUTS
 * puts, in key order (the same key set; it only makes the load quicker),
 * synced, and checked (entry count and a random sample of values).
 *
 * Workers open their own environment after fork (LMDB forbids using an
 * environment across fork()):
 *   get   one read-only transaction per get, the usual way: it is
 *         allocated once, then mdb_txn_renew / mdb_get / mdb_txn_reset per
 *         get; the value is copied to a stack buffer, as keel_get does
 *   put   one write transaction per put (begin, mdb_put, commit); the
 *         environment flags are MDB_NOSYNC for the memory-mode comparison
 *         (put suite) or 0, LMDB's default full sync (sync suite, where
 *         each commit's latency is recorded)
 *
 * Without HAVE_LMDB the peer reports itself as not built.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef HAVE_LMDB
#include <lmdb.h>

#define LMDB_LOAD_TXN_PUTS 10000u
#define LMDB_OPS_PER_BATCH 64u
#define LMDB_NOSYNC_PUTS_PER_BATCH 16u

int bench_lmdb_built(void)
{
	return 1;
}

static int lmdb_fail(int mrc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lmdb_fail(int mrc, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return bench_fail(mrc == MDB_MAP_FULL || mrc == ENOMEM ? KEEL_E_FULL : KEEL_E_IO,
			  "LMDB: %s: %s", what, mdb_strerror(mrc));
}

static int env_open(const struct bench_lmdb *l, unsigned flags, MDB_env **out, MDB_dbi *dbi)
{
	MDB_env *env = NULL;
	MDB_txn *t = NULL;
	int mrc;

	mrc = mdb_env_create(&env);
	if (mrc)
		return lmdb_fail(mrc, "mdb_env_create");
	mrc = mdb_env_set_mapsize(env, l->map_bytes);
	if (!mrc)
		mrc = mdb_env_set_maxreaders(env, BENCH_WORKERS_MAX + 16);
	if (!mrc)
		mrc = mdb_env_open(env, l->dir, flags, 0600);
	if (mrc) {
		mdb_env_close(env);
		return lmdb_fail(mrc, "open environment %s (flags 0x%x)", l->dir, flags);
	}
	mrc = mdb_txn_begin(env, NULL, flags & MDB_RDONLY, &t);
	if (!mrc)
		mrc = mdb_dbi_open(t, NULL, 0, dbi);
	if (!mrc)
		mrc = mdb_txn_commit(t);
	else if (t)
		mdb_txn_abort(t);
	if (mrc) {
		mdb_env_close(env);
		return lmdb_fail(mrc, "open main database of %s", l->dir);
	}
	*out = env;
	return 0;
}

static int lmdb_verify(MDB_env *env, MDB_dbi dbi)
{
	uint64_t st = bench_cfg.seed ^ 0x4c4d4442ull;
	MDB_txn *t;
	MDB_stat ms;
	int mrc, rc = 0;

	mrc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
	if (mrc)
		return lmdb_fail(mrc, "begin read txn to check the load");
	mrc = mdb_stat(t, dbi, &ms);
	if (mrc)
		rc = lmdb_fail(mrc, "mdb_stat");
	else if (ms.ms_entries != bench_cfg.keys)
		rc = bench_fail(KEEL_E_CORRUPT, "LMDB holds %zu entries after load, expected %llu",
				ms.ms_entries, (unsigned long long)bench_cfg.keys);
	for (unsigned n = 0; !rc && n < BENCH_VERIFY_SAMPLES; n++) {
		uint64_t i = bench_rand_next(&st) % bench_cfg.keys;
		uint8_t key[BENCH_KEY_BYTES];
		MDB_val k = { BENCH_KEY_BYTES, key }, v;

		bench_key(i, key);
		mrc = mdb_get(t, dbi, &k, &v);
		if (mrc)
			rc = lmdb_fail(mrc, "get key %llu after load", (unsigned long long)i);
		else
			rc = bench_value_check(i, v.mv_data, v.mv_size);
	}
	mdb_txn_abort(t);
	return rc;
}

int bench_lmdb_load(struct bench_lmdb *l, const char *dir)
{
	uint8_t key[BENCH_KEY_BYTES], val[BENCH_VALUE_BYTES];
	uint64_t t0 = bench_now_ns();
	const uint32_t *order;
	MDB_env *env;
	MDB_dbi dbi;
	int rc, mrc = 0;

	memset(l, 0, sizeof(*l));
	if (snprintf(l->dir, sizeof(l->dir), "%s", dir) >= (int)sizeof(l->dir))
		return bench_fail(KEEL_E_INVAL, "LMDB directory %s is too long", dir);
	l->map_bytes = (size_t)bench_cfg.keys * 1024 + (256u << 20);
	l->put_flags = MDB_NOSYNC;
	rc = bench_sorted_order(&order);
	rc = rc ? rc : bench_mkdir(l->dir);
	if (rc)
		return rc;
	rc = env_open(l, MDB_NOSYNC, &env, &dbi);
	if (rc)
		return rc;
	for (uint64_t i = 0; i < bench_cfg.keys && !rc;) {
		MDB_txn *t;

		rc = bench_interrupted_check();
		if (rc)
			break;
		mrc = mdb_txn_begin(env, NULL, 0, &t);
		if (mrc) {
			rc = lmdb_fail(mrc, "begin load txn");
			break;
		}
		for (unsigned j = 0; j < LMDB_LOAD_TXN_PUTS && i < bench_cfg.keys; j++, i++) {
			MDB_val k = { BENCH_KEY_BYTES, key }, v = { BENCH_VALUE_BYTES, val };

			bench_key(order[i], key);
			bench_value(order[i], 0, val);
			mrc = mdb_put(t, dbi, &k, &v, 0);
			if (mrc)
				break;
		}
		if (mrc) {
			mdb_txn_abort(t);
			rc = lmdb_fail(mrc, "load put near position %llu of the key order", (unsigned long long)i);
			break;
		}
		mrc = mdb_txn_commit(t);
		if (mrc)
			rc = lmdb_fail(mrc, "commit load txn near position %llu of the key order", (unsigned long long)i);
	}
	if (!rc) {
		mrc = mdb_env_sync(env, 1);
		if (mrc)
			rc = lmdb_fail(mrc, "mdb_env_sync after load");
	}
	if (!rc)
		rc = lmdb_verify(env, dbi);
	mdb_env_close(env);
	if (!rc) {
		l->loaded = 1;
		bench_progress("  LMDB: loaded %llu keys in %.2f s", (unsigned long long)bench_cfg.keys,
			       (double)(bench_now_ns() - t0) / 1e9);
	}
	return rc;
}

void bench_lmdb_set_sync(struct bench_lmdb *l, int sync)
{
	l->put_flags = sync ? 0 : MDB_NOSYNC;
}

struct lmdb_state {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn;            /* get: reset between gets */
	unsigned puts_per_batch;
	size_t pos;
	uint64_t gen;
	uint64_t sink;
};

static int lmdb_setup(void *ctx, unsigned wid, unsigned n, unsigned flags, void **state)
{
	const struct bench_lmdb *l = ctx;
	struct lmdb_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "LMDB worker: out of memory");
	rc = env_open(l, flags, &s->env, &s->dbi);
	if (rc) {
		free(s);
		return rc;
	}
	s->pos = bench_seq_start(wid, n);
	s->gen = (uint64_t)(wid + 1) << 40;
	s->puts_per_batch = (flags & MDB_NOSYNC) ? LMDB_NOSYNC_PUTS_PER_BATCH : 1;
	*state = s;
	return 0;
}

static int lmdb_get_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	struct lmdb_state *s;
	int rc = lmdb_setup(ctx, wid, n, MDB_RDONLY, state), mrc;

	if (rc)
		return rc;
	s = *state;
	mrc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn);
	if (mrc) {
		mdb_env_close(s->env);
		free(s);
		return lmdb_fail(mrc, "begin the reader txn");
	}
	mdb_txn_reset(s->rtxn);
	return 0;
}

static int lmdb_put_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	const struct bench_lmdb *l = ctx;

	return lmdb_setup(ctx, wid, n, l->put_flags, state);
}

static int lmdb_teardown(void *state)
{
	struct lmdb_state *s = state;

	if (!s)
		return 0;
	__asm__ volatile("" : : "r"(s->sink));
	if (s->rtxn)
		mdb_txn_abort(s->rtxn);
	mdb_env_close(s->env);
	free(s);
	return 0;
}

static int lmdb_get_batch(void *state, uint64_t *ops)
{
	struct lmdb_state *s = state;
	uint8_t buf[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < LMDB_OPS_PER_BATCH; i++) {
		MDB_val k = { BENCH_KEY_BYTES, bench_seq.keys + s->pos * BENCH_KEY_BYTES }, v;
		int mrc = mdb_txn_renew(s->rtxn);

		if (mrc)
			return lmdb_fail(mrc, "mdb_txn_renew");
		mrc = mdb_get(s->rtxn, s->dbi, &k, &v);
		if (mrc) {
			mdb_txn_reset(s->rtxn);
			return lmdb_fail(mrc, "get key %u", bench_seq.index[s->pos]);
		}
		if (v.mv_size != BENCH_VALUE_BYTES) {
			mdb_txn_reset(s->rtxn);
			return bench_fail(KEEL_E_CORRUPT, "LMDB get of key %u: length %zu",
					  bench_seq.index[s->pos], v.mv_size);
		}
		memcpy(buf, v.mv_data, v.mv_size);
		mdb_txn_reset(s->rtxn);
		s->sink += buf[0] + buf[BENCH_VALUE_BYTES - 1];
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += LMDB_OPS_PER_BATCH;
	return 0;
}

static int lmdb_put_batch(void *state, uint64_t *ops)
{
	struct lmdb_state *s = state;
	uint8_t val[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < s->puts_per_batch; i++) {
		uint32_t idx = bench_seq.index[s->pos];
		MDB_val k = { BENCH_KEY_BYTES, bench_seq.keys + s->pos * BENCH_KEY_BYTES };
		MDB_val v = { BENCH_VALUE_BYTES, val };
		uint64_t t0 = bench_now_ns();
		MDB_txn *t;
		int mrc;

		bench_value(idx, ++s->gen, val);
		mrc = mdb_txn_begin(s->env, NULL, 0, &t);
		if (mrc)
			return lmdb_fail(mrc, "begin put txn");
		mrc = mdb_put(t, s->dbi, &k, &v, 0);
		if (mrc) {
			mdb_txn_abort(t);
			return lmdb_fail(mrc, "put key %u", idx);
		}
		mrc = mdb_txn_commit(t);
		if (mrc)
			return lmdb_fail(mrc, "commit put of key %u", idx);
		if (s->puts_per_batch == 1)
			bench_lat_record(bench_now_ns() - t0);
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += s->puts_per_batch;
	return 0;
}

#else /* !HAVE_LMDB */

int bench_lmdb_built(void)
{
	return 0;
}

int bench_lmdb_load(struct bench_lmdb *l, const char *dir)
{
	(void)l;
	(void)dir;
	return bench_fail(KEEL_E_STATE, "LMDB: keel-bench was built without liblmdb");
}

void bench_lmdb_set_sync(struct bench_lmdb *l, int sync)
{
	(void)l;
	(void)sync;
}

static int lmdb_get_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	return bench_lmdb_load(ctx, "");
}

#define lmdb_put_setup lmdb_get_setup

static int lmdb_get_batch(void *state, uint64_t *ops)
{
	return KEEL_E_STATE;
}

#define lmdb_put_batch lmdb_get_batch

static int lmdb_teardown(void *state)
{
	return 0;
}

#endif /* HAVE_LMDB */

const struct bench_worker bench_lmdb_get_worker = {
	.name = "LMDB get",
	.setup = lmdb_get_setup,
	.batch = lmdb_get_batch,
	.teardown = lmdb_teardown,
};

const struct bench_worker bench_lmdb_put_worker = {
	.name = "LMDB put",
	.setup = lmdb_put_setup,
	.batch = lmdb_put_batch,
	.teardown = lmdb_teardown,
};
