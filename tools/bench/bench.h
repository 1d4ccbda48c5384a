/*
 * bench.h - what the modules of keel-bench share.
 *
 * keel-bench measures Keel side by side with its peers in one run, on one
 * workload, and prints the ratios that DESIGN.md sets as targets.  The
 * modules are split by concern:
 *
 *   main.c         command line, the suites and their order, clean-up;
 *                  the JSON schema is documented at its top
 *   workload.c     keys, values, the precomputed random key sequence, the
 *                  clock, temp directories, messages and the stop flag
 *   runner.c       forked workers behind a start barrier, for a fixed
 *                  duration; the median over --runs
 *   report.c       figures, ratios, targets, and the text or JSON output
 *   peer_keel.c    Keel itself (memory, async and sync stores; recovery)
 *   peer_raw.c     the raw peers: a shared-memory hash table (the upper
 *                  bound for gets) and pwrite+fdatasync on a zeroed file
 *   peer_lmdb.c    LMDB (when built with HAVE_LMDB)
 *   peer_sqlite.c  SQLite in WAL mode (when built with HAVE_SQLITE)
 *   peer_redis.c   a redis-server started for the run, driven over RESP
 *   timers.c       the timers suite: Keel's durable timers (set, claim and
 *                  ack, fire lateness, redelivery after a SIGKILL)
 *   timers_redis.c its peer: Redis sorted sets (timers.h joins the two)
 *
 * The workload
 * ------------
 * N keys (default 1M) of BENCH_KEY_BYTES bytes and values of
 * BENCH_VALUE_BYTES bytes.  Key i is the 16 lowercase hex digits of a
 * bijective mix of i, so keys are distinct, printable and spread evenly by
 * any hash.  Value i carries i in its first 8 bytes (little-endian), a
 * generation in the next 8 and a pattern derived from i after that, so a
 * reader can check that the value it got belongs to the key it asked for.
 * Every peer loads keys 0..N-1 before it is timed.
 *
 * The timed loops read keys from one sequence of uniformly random key
 * indices, drawn once from --seed and stored as the keys themselves (and
 * their indices), so no key is formatted inside a timed loop and the
 * sequence is read front to back, which the prefetcher hides.  Worker w of
 * n starts at position w*len/n and wraps around.  Forked workers share the
 * sequence copy-on-write; nobody writes it after it is built.
 *
 * Conventions
 * -----------
 * Functions return 0 or a negative KEEL_E_* code.  A failing function sets
 * a message for this process with bench_fail() (what, where, expected vs
 * found) and returns the code; the caller adds context or reports it.  A
 * peer that is not there (not built, not on PATH, a Keel mode the library
 * does not offer yet) is reported as a note and the run goes on; a peer
 * that fails once it runs is an error and makes the exit status 1.
 */
#ifndef KEEL_BENCH_H
#define KEEL_BENCH_H

#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "keel.h"

/* ---- workload -------------------------------------------------------------- */
#define BENCH_KEY_BYTES 16u
#define BENCH_VALUE_BYTES 100u
#define BENCH_RAW_ENTRY_BYTES (BENCH_KEY_BYTES + BENCH_VALUE_BYTES) /* 116 */
#define BENCH_PART "bench"                 /* the one partition used */
#define BENCH_KEYS_DEFAULT 1000000u
#define BENCH_KEYS_QUICK 100000u
#define BENCH_KEYS_MIN 1000u
#define BENCH_KEYS_MAX (1u << 30)          /* indices are stored as uint32 */
#define BENCH_LOAD_BATCH 1000u             /* keys per loading transaction */
#define BENCH_VERIFY_SAMPLES 1000u         /* keys checked after each load */
#define BENCH_RUNS_MAX 99u
#define BENCH_WORKERS_MAX 64u
#define BENCH_DURATION_S_DEFAULT 2.0
#define BENCH_DURATION_S_QUICK 0.25

_Static_assert(BENCH_KEY_BYTES == 16, "keys are 16 hex digits of a 64-bit mix");
_Static_assert(BENCH_VALUE_BYTES >= 24, "a value holds index, generation, pattern");
_Static_assert(BENCH_KEYS_MAX <= UINT32_MAX, "the sequence stores indices as uint32");

/* Everything the command line sets.  One instance, bench_cfg, read by all. */
struct bench_config {
	uint64_t keys;            /* N */
	uint64_t seed;            /* of the random key sequence */
	unsigned runs;            /* each timed phase runs this often; median */
	double duration_s;        /* of one timed phase */
	int quick;
	int json;
	int check_targets;
	unsigned redis_clients;   /* connections driving Redis (50) */
	char dir_parent[PATH_MAX];/* --dir, or /var/tmp */
	char dir[PATH_MAX];       /* the temp dir made for this run under it */
	char arena_dir[PATH_MAX]; /* --arena-dir: arenas and the raw table; "" = /dev/shm */
};
extern struct bench_config bench_cfg;

/* The random key sequence (see the essay above). */
struct bench_seq {
	uint8_t *keys;            /* len * BENCH_KEY_BYTES */
	uint32_t *index;          /* len key indices, each < N */
	size_t len;               /* a power of two */
	size_t mask;              /* len - 1 */
};
extern struct bench_seq bench_seq;

void bench_key(uint64_t index, uint8_t out[BENCH_KEY_BYTES]);
void bench_value(uint64_t index, uint64_t gen, uint8_t out[BENCH_VALUE_BYTES]);
/* 0 if val is a value written for key `index` (any generation), else
 * KEEL_E_CORRUPT with a message saying what differs. */
int bench_value_check(uint64_t index, const void *val, size_t vlen);
/* Builds bench_seq for bench_cfg.keys and bench_cfg.seed. */
int bench_seq_build(void);
void bench_seq_free(void);
/* Key indices 0..N-1 in byte order of their keys (built on first use,
 * freed by bench_seq_free).  B-tree peers load in this order. */
int bench_sorted_order(const uint32_t **out);
/* A small deterministic generator (splitmix64) for samples. */
uint64_t bench_rand_next(uint64_t *state);

/* ---- clock, files, messages ----------------------------------------------- */
uint64_t bench_now_ns(void);              /* CLOCK_MONOTONIC */
/* dir/name into out (PATH_MAX); KEEL_E_INVAL if it does not fit. */
int bench_path(char *out, const char *dir, const char *name);
int bench_mkdir(const char *path);        /* mode 0700; exists is an error */
/* Removes a tree this run made (no symlinks followed). */
int bench_rmtree(const char *path);
/* 1 if path is on a tmpfs (e.g. /dev/shm), 0 if not, <0 on error. */
int bench_on_tmpfs(const char *path);
/* Of this process's mapping of `path`: resident KiB, and how much of it is
 * mapped with huge pages (ShmemPmdMapped in /proc/self/smaps).  0 when
 * found, else an error. */
int bench_huge_kib(const char *path, uint64_t *rss_kib, uint64_t *huge_kib);
/* Absolute path of an executable found on PATH into out, or NOTFOUND. */
int bench_which(const char *prog, char *out, size_t cap);

/* Sets this process's failure message and returns code. */
int bench_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For a failed Keel call: "<what>: <keel_strerror(rc)> (<keel_errmsg()>)". */
int bench_keel_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Puts "<context>: " in front of the current message; returns code. */
int bench_fail_ctx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *bench_errmsg(void);
/* A progress line on stderr: "keel-bench: ...". */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Set by SIGINT/SIGTERM; long loops call bench_interrupted_check(). */
extern volatile sig_atomic_t bench_stop_signal;
int bench_interrupted_check(void);        /* 0, or KEEL_E_OS when set */

/* ---- runner ------------------------------------------------------------------ */
/*
 * A timed worker.  runner.c forks `nworkers` children; each calls setup()
 * (open its own handles: no handle crosses fork), waits at the start
 * barrier, calls batch() until the shared deadline passes, then calls
 * teardown(), which may check what the worker did.  batch() runs a few
 * operations (a bounded amount of work: the deadline is checked between
 * batches) and adds how many it completed to *ops.  A worker that consumes
 * a finite pool (the timers suite's claims) returns BENCH_BATCH_DONE when
 * the pool is empty: it stops there, before the deadline, and its end time
 * is then, so the rate counts only the time it had work.
 */
#define BENCH_BATCH_DONE 1
struct bench_worker {
	const char *name;
	int (*setup)(void *ctx, unsigned wid, unsigned nworkers, void **state);
	int (*batch)(void *state, uint64_t *ops);
	int (*teardown)(void *state);
};

struct bench_rate {
	uint64_t ops;             /* completed by all workers */
	double secs;              /* start barrier to the last worker's end */
	double rate;              /* ops / secs */
	uint64_t lat_count;       /* latencies recorded (0: the worker records none) */
	double lat_p50_us;        /* over all workers, to within 1/8 of a power of 2 */
	double lat_p99_us;
};

/*
 * A worker whose operations are slow enough (durable commits) records the
 * latency of each one here; the runner gathers a histogram per worker and
 * bench_measure reports p50 and p99 as figures "<key>.p50_us", "<key>.p99_us".
 */
void bench_lat_record(uint64_t ns);

/* One timed phase.  0 or the first worker's failure (message set). */
int bench_run(const struct bench_worker *w, void *ctx, unsigned nworkers,
	      double duration_s, struct bench_rate *out);
/*
 * bench_cfg.runs phases of w with nworkers; records figure `key` (unit
 * ops/s, the median rate) with the label given, and the latency figures
 * when the worker records latencies.  0 or the failure.
 */
int bench_measure(const char *key, const char *label, const struct bench_worker *w,
		  void *ctx, unsigned nworkers);

/* One phase of bench_measure_alternating. */
struct bench_phase {
	const char *key, *label;
	const struct bench_worker *w;
	void *ctx;
	unsigned nworkers;
};
/*
 * Like bench_measure for each of nph phases, but in rounds: round r runs
 * every phase once, in order, so the phases a ratio compares are measured
 * seconds apart, at the same moment of the machine, instead of each phase's
 * runs in a block minutes away from the other's.  The machine's speed
 * drifts over minutes (a shared host: the disk's sync latency, memory
 * latency); a ratio of two blocks measures the drift as well.
 */
int bench_measure_alternating(const struct bench_phase *ph, unsigned nph);
/*
 * How fast the machine passes one cache line between two processes: two
 * forked processes take turns incrementing a shared word for secs seconds;
 * *per_s gets the turns per second.  Anything two processes write in
 * common (a lock, a shared counter) moves at this pace, and on a virtual
 * machine it can change by several times from one minute to the next, as
 * the host places the virtual CPUs.  0 or KEEL_E_OS.
 */
int bench_handoffs(double secs, double *per_s);
/* The position in bench_seq where worker wid of n starts. */
size_t bench_seq_start(unsigned wid, unsigned nworkers);

/* ---- report ------------------------------------------------------------------ */
#define BENCH_FIGURES_MAX 96u
#define BENCH_NOTES_MAX 48u

struct bench_fig {
	char key[48];             /* "suite.peer.variant", e.g. "get.raw.1p" */
	char label[80];           /* for people */
	char unit[12];            /* "ops/s", "B/entry", "s" */
	double value;             /* the median of samples */
	double samples[BENCH_RUNS_MAX];
	unsigned nsamples;
};

/* Adds a figure; value = median of samples.  0 or KEEL_E_LIMIT. */
int bench_fig_add(const char *key, const char *label, const char *unit,
		  const double *samples, unsigned nsamples);
const struct bench_fig *bench_fig_get(const char *key);
/* v with an SI suffix ("2.31M", "38.2k", "912") into buf; returns buf. */
const char *bench_fmt_si(double v, char buf[32]);
/* A note (a peer or a mode that is not there); also printed on stderr. */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error; also printed on stderr.  Any error makes the exit status 1. */
void bench_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bench_error_count(void);
/* Prints the results (text or JSON) on stdout; *fails gets the number of
 * targets that FAILed.  0 or KEEL_E_NOMEM / KEEL_E_OS. */
int bench_report(const char *const *suites, unsigned nsuites, unsigned *fails);

/* ---- peers --------------------------------------------------------------------- */

/* Keel (peer_keel.c).  One struct per store directory used by the run. */
struct bench_keel {
	char dir[PATH_MAX];
	char arena[PATH_MAX];     /* opt.arena_path with --arena-dir */
	keel_options_t opt;       /* durability set; children open with it */
	keel_t *h;                /* the parent's handle (keeps the arena) */
	int durability;           /* KEEL_DURABILITY_* */
	int loaded;
	int arena_made;           /* an arena may exist: unlink it at the end */
};
/* Opens (creating) a store in dir with the durability given. */
int bench_keel_open(struct bench_keel *k, const char *dir, int durability);
/* Loads keys 0..N-1 (put_many batches) and checks count and a sample. */
int bench_keel_load(struct bench_keel *k);
/* Stat of the parent's handle. */
int bench_keel_stat(struct bench_keel *k, keel_stat_t *st);
/* keel_count is N and a random sample of values is right.  0 or failure. */
int bench_keel_check(struct bench_keel *k, const char *what);
/* Sync, close, unlink the arena, time the reopen and check the keys. */
int bench_keel_recover(struct bench_keel *k, double *secs);
/* Closes the handle and unlinks the arena (if any). */
int bench_keel_close(struct bench_keel *k);
extern const struct bench_worker bench_keel_get_worker;   /* keel_get, stack buffer */
extern const struct bench_worker bench_keel_read_worker;  /* keel_read_get in a scope */
extern const struct bench_worker bench_keel_put_worker;   /* keel_put, store's mode */
#define BENCH_KEEL_READS_PER_SCOPE 64u
extern const struct bench_worker bench_keel_many_worker;  /* keel_get_many of a group */
#define BENCH_KEEL_GET_MANY 16u

/* The raw shared-memory hash table (peer_raw.c). */
struct bench_raw {
	char path[PATH_MAX];      /* in /dev/shm */
	int fd;
	int unlinked;             /* the name is gone; the mapping stays */
	void *map;
	size_t map_bytes;
	uint64_t slots;           /* a power of two */
	uint64_t count;
};
int bench_raw_create(struct bench_raw *r);
int bench_raw_load(struct bench_raw *r);
void bench_raw_destroy(struct bench_raw *r);
extern const struct bench_worker bench_raw_get_worker;

/* pwrite + fdatasync on a preallocated zero-filled file (peer_raw.c). */
struct bench_disk {
	char path[PATH_MAX];
	int fd;
	uint64_t bytes;           /* file size, a multiple of the block */
};
#define BENCH_DISK_BLOCK 4096u
int bench_disk_create(struct bench_disk *d, const char *dir);
void bench_disk_destroy(struct bench_disk *d);
extern const struct bench_worker bench_disk_sync_worker;

/* LMDB (peer_lmdb.c).  Workers open their own environment. */
struct bench_lmdb {
	char dir[PATH_MAX];
	size_t map_bytes;
	unsigned put_flags;       /* env flags of put workers: MDB_NOSYNC or 0 */
	int loaded;
};
int bench_lmdb_built(void);
int bench_lmdb_load(struct bench_lmdb *l, const char *dir);
extern const struct bench_worker bench_lmdb_get_worker;
extern const struct bench_worker bench_lmdb_put_worker;
void bench_lmdb_set_sync(struct bench_lmdb *l, int sync); /* 0: NOSYNC */

/* SQLite (peer_sqlite.c). */
struct bench_sqlite {
	char path[PATH_MAX];
	int synchronous;          /* 1 NORMAL, 2 FULL: set before a put run */
	int loaded;
};
int bench_sqlite_built(void);
int bench_sqlite_load(struct bench_sqlite *s, const char *dir);
extern const struct bench_worker bench_sqlite_put_worker;

/* Redis (peer_redis.c). */
struct bench_redis {
	pid_t pid;                /* of redis-server, 0 when not running */
	int port;
	char dir[PATH_MAX];
	char exe[PATH_MAX];
	unsigned clients;         /* connections in the SET phase */
	int loaded;
};
/* A blocking RESP connection to the bench's redis-server on loopback, with an
 * input buffer (peer_redis.c); every failure is reported with bench_fail. */
#define BENCH_REDIS_LINE_MAX 512u   /* longest reply line read */
struct bench_rconn {
	int fd;
	size_t have, off;
	char in[8192];
};
int bench_rconn_open(int port, struct bench_rconn *c);
void bench_rconn_close(struct bench_rconn *c);
int bench_rconn_send(struct bench_rconn *c, const void *buf, size_t len);
/* One reply line without its CRLF (cut to cap - 1 bytes, NUL-terminated). */
int bench_rconn_line(struct bench_rconn *c, char *line, size_t cap);
/* Exactly n bytes of reply. */
int bench_rconn_bytes(struct bench_rconn *c, void *out, size_t n);

/* KEEL_E_NOTFOUND (message set) when redis-server is not on PATH. */
int bench_redis_start(struct bench_redis *r, const char *dir);
int bench_redis_load(struct bench_redis *r);
int bench_redis_stop(struct bench_redis *r);
extern const struct bench_worker bench_redis_set_worker;

/* The timers suite (timers.c).  Runs every phase of the suite, records its
 * figures and reports its failures with bench_error; returns 0, or a
 * negative code when the run must stop (a signal). */
int bench_timers_suite(void);
/* Closes the suite's stores, stops its redis-server; safe to call twice. */
void bench_timers_cleanup(void);

#endif
