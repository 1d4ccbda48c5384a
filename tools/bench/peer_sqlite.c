/*
 * peer_sqlite.c - SQLite as a peer: a WAL-mode database with one table,
 *
 *     CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID
 *
 * loaded once (synchronous=OFF, a 256 MiB page cache, transactions of
 * SQLITE_LOAD_TXN_ROWS rows, in key order: the same key set, only a
 * quicker load), checkpointed, and checked (row count and a random sample
 * of values).
 * It serves the put suite (synchronous=NORMAL) and the sync suite
 * (synchronous=FULL).
 *
 * Put workers open their own connection after fork (SQLite forbids
 * carrying one across fork()), set the synchronous level and a busy
 * timeout, prepare one upsert statement, and run one transaction per put
 * (the statement in autocommit mode: one implicit transaction each).  With
 * synchronous=FULL each put's latency is recorded.
 *
 * Without HAVE_SQLITE the peer reports itself as not built.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#ifdef HAVE_SQLITE
#include <sqlite3.h>

#define SQLITE_LOAD_TXN_ROWS 10000u
#define SQLITE_BUSY_MS 30000
#define SQLITE_NORMAL_PUTS_PER_BATCH 16u

static const char sql_upsert[] =
	"INSERT INTO kv(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v";

int bench_sqlite_built(void)
{
	return 1;
}

static int sqlite_fail(sqlite3 *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sqlite_fail(sqlite3 *db, const char *fmt, ...)
{
	char what[512];
	int err = db ? sqlite3_errcode(db) : SQLITE_ERROR;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return bench_fail(err == SQLITE_FULL ? KEEL_E_NOSPC : err == SQLITE_NOMEM ? KEEL_E_NOMEM
			  : KEEL_E_IO, "SQLite: %s: %s", what,
			  db ? sqlite3_errmsg(db) : "cannot allocate a connection");
}

static int exec(sqlite3 *db, const char *sql)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return sqlite_fail(db, "%s", sql);
	return 0;
}

static int db_open(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int rc;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
	    != SQLITE_OK) {
		rc = sqlite_fail(db, "open %s", path);
		sqlite3_close(db);
		return rc;
	}
	sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
	*out = db;
	return 0;
}

static int sqlite_verify(sqlite3 *db)
{
	uint64_t st = bench_cfg.seed ^ 0x53514c33ull;
	sqlite3_stmt *q = NULL;
	int rc = 0;

	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &q, NULL) != SQLITE_OK ||
	    sqlite3_step(q) != SQLITE_ROW) {
		rc = sqlite_fail(db, "count rows after load");
	} else if ((uint64_t)sqlite3_column_int64(q, 0) != bench_cfg.keys) {
		rc = bench_fail(KEEL_E_CORRUPT, "SQLite holds %lld rows after load, expected %llu",
				(long long)sqlite3_column_int64(q, 0),
				(unsigned long long)bench_cfg.keys);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (!rc && sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1, &q, NULL)
	    != SQLITE_OK)
		rc = sqlite_fail(db, "prepare the check query");
	for (unsigned n = 0; !rc && n < BENCH_VERIFY_SAMPLES; n++) {
		uint64_t i = bench_rand_next(&st) % bench_cfg.keys;
		uint8_t key[BENCH_KEY_BYTES];

		bench_key(i, key);
		sqlite3_bind_blob(q, 1, key, BENCH_KEY_BYTES, SQLITE_STATIC);
		if (sqlite3_step(q) != SQLITE_ROW)
			rc = sqlite_fail(db, "key %llu missing after load", (unsigned long long)i);
		else
			rc = bench_value_check(i, sqlite3_column_blob(q, 0),
					       (size_t)sqlite3_column_bytes(q, 0));
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	return rc;
}

int bench_sqlite_load(struct bench_sqlite *s, const char *dir)
{
	uint8_t key[BENCH_KEY_BYTES], val[BENCH_VALUE_BYTES];
	uint64_t t0 = bench_now_ns();
	sqlite3_stmt *ins = NULL;
	const uint32_t *order;
	sqlite3 *db;
	int rc;

	memset(s, 0, sizeof(*s));
	s->synchronous = 1;
	rc = bench_sorted_order(&order);
	rc = rc ? rc : bench_path(s->path, dir, "sqlite.db");
	if (rc)
		return rc;
	rc = db_open(s->path, &db);
	if (rc)
		return rc;
	rc = exec(db, "PRAGMA journal_mode=WAL");
	rc = rc ? rc : exec(db, "PRAGMA synchronous=OFF");
	/* A big page cache for the load only; the timed connections keep
	 * SQLite's default. */
	rc = rc ? rc : exec(db, "PRAGMA cache_size=-262144");
	rc = rc ? rc : exec(db, "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID");
	if (!rc && sqlite3_prepare_v2(db, sql_upsert, -1, &ins, NULL) != SQLITE_OK)
		rc = sqlite_fail(db, "prepare %s", sql_upsert);
	for (uint64_t i = 0; i < bench_cfg.keys && !rc;) {
		rc = bench_interrupted_check();
		rc = rc ? rc : exec(db, "BEGIN");
		for (unsigned j = 0; !rc && j < SQLITE_LOAD_TXN_ROWS && i < bench_cfg.keys; j++, i++) {
			bench_key(order[i], key);
			bench_value(order[i], 0, val);
			sqlite3_bind_blob(ins, 1, key, BENCH_KEY_BYTES, SQLITE_STATIC);
			sqlite3_bind_blob(ins, 2, val, BENCH_VALUE_BYTES, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE)
				rc = sqlite_fail(db, "load key %u", order[i]);
			sqlite3_reset(ins);
		}
		rc = rc ? rc : exec(db, "COMMIT");
	}
	sqlite3_finalize(ins);
	rc = rc ? rc : exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	rc = rc ? rc : sqlite_verify(db);
	if (sqlite3_close(db) != SQLITE_OK && !rc)
		rc = bench_fail(KEEL_E_STATE, "SQLite: close after load: busy");
	if (!rc) {
		s->loaded = 1;
		bench_progress("  SQLite: loaded %llu keys in %.2f s",
			       (unsigned long long)bench_cfg.keys, (double)(bench_now_ns() - t0) / 1e9);
	}
	return rc;
}

struct sqlite_state {
	sqlite3 *db;
	sqlite3_stmt *put;
	unsigned puts_per_batch;
	size_t pos;
	uint64_t gen;
};

static int sqlite_put_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	const struct bench_sqlite *cfg = ctx;
	struct sqlite_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "SQLite worker: out of memory");
	rc = db_open(cfg->path, &s->db);
	if (rc) {
		free(s);
		return rc;
	}
	rc = exec(s->db, cfg->synchronous >= 2 ? "PRAGMA synchronous=FULL"
					       : "PRAGMA synchronous=NORMAL");
	if (!rc && sqlite3_prepare_v2(s->db, sql_upsert, -1, &s->put, NULL) != SQLITE_OK)
		rc = sqlite_fail(s->db, "prepare %s", sql_upsert);
	if (rc) {
		sqlite3_close(s->db);
		free(s);
		return rc;
	}
	s->pos = bench_seq_start(wid, n);
	s->gen = (uint64_t)(wid + 1) << 40;
	s->puts_per_batch = cfg->synchronous >= 2 ? 1 : SQLITE_NORMAL_PUTS_PER_BATCH;
	*state = s;
	return 0;
}

static int sqlite_put_batch(void *state, uint64_t *ops)
{
	struct sqlite_state *s = state;
	uint8_t val[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < s->puts_per_batch; i++) {
		uint32_t idx = bench_seq.index[s->pos];
		uint64_t t0 = bench_now_ns();
		int src;

		bench_value(idx, ++s->gen, val);
		sqlite3_bind_blob(s->put, 1, bench_seq.keys + s->pos * BENCH_KEY_BYTES,
				  BENCH_KEY_BYTES, SQLITE_STATIC);
		sqlite3_bind_blob(s->put, 2, val, BENCH_VALUE_BYTES, SQLITE_STATIC);
		src = sqlite3_step(s->put);
		sqlite3_reset(s->put);
		if (src != SQLITE_DONE)
			return sqlite_fail(s->db, "put key %u", idx);
		if (s->puts_per_batch == 1)
			bench_lat_record(bench_now_ns() - t0);
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += s->puts_per_batch;
	return 0;
}

static int sqlite_put_teardown(void *state)
{
	struct sqlite_state *s = state;

	if (!s)
		return 0;
	sqlite3_finalize(s->put);
	sqlite3_close(s->db);
	free(s);
	return 0;
}

#else /* !HAVE_SQLITE */

int bench_sqlite_built(void)
{
	return 0;
}

int bench_sqlite_load(struct bench_sqlite *s, const char *dir)
{
	(void)s;
	(void)dir;
	return bench_fail(KEEL_E_STATE, "SQLite: keel-bench was built without libsqlite3");
}

static int sqlite_put_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	return bench_sqlite_load(ctx, "");
}

static int sqlite_put_batch(void *state, uint64_t *ops)
{
	return KEEL_E_STATE;
}

static int sqlite_put_teardown(void *state)
{
	return 0;
}

#endif /* HAVE_SQLITE */

const struct bench_worker bench_sqlite_put_worker = {
	.name = "SQLite put",
	.setup = sqlite_put_setup,
	.batch = sqlite_put_batch,
	.teardown = sqlite_put_teardown,
};
