/*
 * main.c - keel-bench: Keel measured side by side with its peers, in one
 * run, on one workload, with the ratios DESIGN.md sets as targets.
 *
 * The machine is shared and noisy, so an absolute figure from one run says
 * little; a ratio between two peers measured minutes apart on the same
 * machine says more.  keel-bench therefore runs every peer it compares
 * with in the same run, on the same keys, and reports ratios and target
 * verdicts next to the figures.  The phases a target's ratio compares run
 * in alternation, one run of each in turn (bench_measure_alternating):
 * keel_get and LMDB's gets (1 and 2 processes), one sync committer and raw
 * pwrite+fdatasync, 16 committers and Redis.  So both sides of a ratio see
 * the same moments of the machine, which drifts over minutes.
 *
 * Suites, in the order they run (whatever order they are named in)
 * ------------------------------------------------------------------
 *   raw       the shared-memory hash table peer: gets with 1 and 2
 *             processes; bytes per entry (16 + 100 = 116)
 *   get       random gets, 1 and 2 processes: keel_get (stack buffer),
 *             keel_read_get (zero-copy, 64 gets per read scope),
 *             keel_get_many (16 keys per call), LMDB (read-only txn per
 *             get).  Runs `raw` too for its ratios.
 *   mem       keel_stat arena_bytes_used / N after loading N keys, vs 116
 *   put       memory-mode puts, 1 and 2 processes, vs LMDB (MDB_NOSYNC,
 *             one txn per put) and SQLite (WAL, synchronous=NORMAL, one
 *             txn per put, prepared statement)
 *   sync      durable commits of one put with 1, 2, 4, 8, 16 committing
 *             processes (KEEL_DURABILITY_SYNC), vs raw pwrite+fdatasync of
 *             4 KiB on a zero-filled file, LMDB default sync, SQLite WAL
 *             synchronous=FULL (1 process each), and Redis (appendfsync
 *             always) driven by 50 connections
 *   async     puts with KEEL_DURABILITY_ASYNC, 1 process; then keel_sync
 *   recovery  reopen of a durable store of N keys after keel_unlink_arena
 *   timers    durable timers in memory mode (timers.c): N pending timers
 *             (set rate, arena bytes per timer), reschedules with 1 and 2
 *             processes, claim then ack with 1 and 4, fire lateness of a
 *             waiting claimer, redelivery after the claimer's SIGKILL; vs
 *             Redis sorted sets (ZADD; a claim script then ZREM)
 * The get, mem and put suites share one memory-mode store; LMDB and SQLite
 * each load one database shared by the suites that use them.  A Keel mode
 * that keel_open refuses is reported as "keel <suite>: not available
 * (<keel_strerror>)" and the peers run anyway.
 *
 * Files: everything lives in one temp directory, <dir>/keel-bench.XXXXXX
 * (dir: --dir, default /var/tmp, never a tmpfs when a durable suite runs),
 * plus the raw table and Keel's arenas in /dev/shm.  All of it is removed
 * at the end, also after an error or SIGINT/SIGTERM.
 *
 * JSON output (--json): one document on stdout, schema_version 1
 * ----------------------------------------------------------------
 *   {
 *     "tool": "keel-bench",
 *     "schema_version": 1,
 *     "config": { "keys": N, "key_bytes": 16, "value_bytes": 100,
 *                 "seed": S, "runs": R, "duration_s": D, "quick": bool,
 *                 "redis_clients": 50, "dir": "/var/tmp",
 *                 "suites": ["raw", "get", ...] },
 *     "figures": {                  every measured figure, by key
 *       "<suite>.<peer>.<variant>": {
 *         "label": "keel_get, 1 process", "unit": "ops/s" | "B/entry" |
 *         "B/timer" | "B" | "s" | "ms" | "us", "value": median,
 *         "samples": [one per run] } },
 *     "ratios": { "<name>": number, or null when a figure is missing },
 *     "targets": [ { "target": "get, 1 process >= 0.8 x raw hash table",
 *                    "measure": ratio or figure key, "measured": number
 *                    or null, "cmp": ">=" | "<=", "limit": number,
 *                    "unit": "x" | "ops/s" | "s" | "ms",
 *                    "verdict": "PASS" | "FAIL" | "n.a.",
 *                    "note": why n.a., or "" } ],
 *     "target_fails": number of FAIL verdicts,
 *     "notes": [ peers or modes not available, suites added ],
 *     "errors": [ failures; any makes the exit status 1 ],
 *     "ok": true when there were no errors
 *   }
 * Figure keys: raw.get.{1p,2p}, raw.bytes_per_entry,
 * raw.mapped_bytes_per_entry,
 * get.{keel_get,keel_read_get,keel_get_many,lmdb}.{1p,2p},
 * mem.keel.{bytes_per_entry,bytes_per_entry_net,arena_bytes_used,
 * arena_bytes_used_empty,arena_bytes}, mem.raw.bytes_per_entry,
 * put.{keel,lmdb,sqlite}.{1p,2p}, put.handoffs.{before_2p,after_2p},
 * sync.keel.{1p,2p,4p,8p,16p},
 * sync.{raw_fdatasync,lmdb,sqlite}.1p, sync.redis, async.keel.1p,
 * async.keel.sync_after_s, recovery.keel.seconds,
 * timers.keel.{set_new.1p,set.1p,set.2p,claim_ack.1p,claim_ack.4p},
 * timers.keel.bytes_per_timer, timers.raw.bytes_per_timer,
 * timers.keel.late.{p50_ms,p99_ms,max_ms},
 * timers.keel.redeliver.{p50_ms,max_ms}, timers.sys.sleep_late.p99_ms,
 * timers.redis.bytes_per_timer,
 * timers.redis.{zadd.1c,zadd.many,claim_ack.1c,claim_ack.4c}, and for every sync
 * figure K (one op per durable commit) K.p50_us and K.p99_us, the commit
 * latency.  Rates are aggregate operations per second over all processes
 * of a phase.
 *
 * Exit status: 0 success (missed targets included), 1 an error, or a FAIL
 * verdict with --check-targets, 2 a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define SEED_DEFAULT 42u
#define DURATION_S_MAX 600.0
#define REDIS_CLIENTS_DEFAULT 50u
#define REDIS_CLIENTS_MAX 1000u
#define EXIT_ERROR 1
#define EXIT_USAGE 2

enum suite { S_RAW, S_GET, S_MEM, S_PUT, S_SYNC, S_ASYNC, S_RECOVERY, S_TIMERS, S_COUNT };

static const char *const suite_names[S_COUNT] = {
	"raw", "get", "mem", "put", "sync", "async", "recovery", "timers",
};

static const unsigned sync_procs[] = { 1, 2, 4, 8, 16 };

/* Everything a run sets up, so that cleanup() can undo it from anywhere. */
static struct run {
	int want[S_COUNT];
	int dir_made;
	struct bench_raw raw;
	/* need_*() state: 0 untried, 1 ready, 2 not there or failed before
	 * (already reported, so a later suite does not report it again). */
	int raw_state;
	struct bench_keel kmem;
	int kmem_state;
	uint64_t kmem_used_empty; /* arena_bytes_used before loading */
	struct bench_keel ksync, kasync, krec;
	struct bench_lmdb lmdb;
	int lmdb_state;
	struct bench_sqlite sqlite;
	int sqlite_state;
	struct bench_redis redis;
	struct bench_disk disk;
} run;

static void usage(FILE *f)
{
	fprintf(f,
"Usage: keel-bench [OPTIONS] [SUITE...]\n"
"\n"
"Measures Keel side by side with its peers in one run (1M keys of 16 B,\n"
"values of 100 B, uniformly random keys) and judges the performance targets\n"
"of DESIGN.md on the ratios.  With no SUITE, or with --all, runs them all.\n"
"\n"
"Suites (they run in this order):\n"
"  raw       shared-memory hash table (open addressing, /dev/shm, forked\n"
"            readers): gets with 1 and 2 processes, bytes per entry (116)\n"
"  get       random gets, 1 and 2 processes: keel_get, keel_read_get (64\n"
"            gets per read scope), keel_get_many (16 keys per call), raw\n"
"            table, LMDB (read-only txn per get)\n"
"  mem       Keel arena bytes per entry after loading N keys, vs raw 116 B\n"
"  put       memory-mode puts, 1 and 2 processes, vs LMDB NOSYNC and SQLite\n"
"            WAL synchronous=NORMAL (one transaction per put); the machine's\n"
"            cache-line handoffs between 2 processes before and after the\n"
"            2-process puts (on a VM they can change several times over)\n"
"  sync      durable commits of 1 put, 1/2/4/8/16 committing processes, vs\n"
"            raw pwrite+fdatasync, LMDB sync, SQLite WAL FULL and Redis\n"
"            (appendfsync always, 50 connections; redis-server from PATH)\n"
"  async     puts with KEEL_DURABILITY_ASYNC, 1 process\n"
"  recovery  time to reopen a durable store of N keys without its arena\n"
"  timers    durable timers, memory mode: set N new timers (rate, arena\n"
"            bytes per timer), reschedule (1, 2 processes), claim then ack\n"
"            (1, 4 processes), fire lateness of a process waiting in\n"
"            keel_timer_claim, redelivery after the claimer is SIGKILLed;\n"
"            vs Redis sorted sets in memory (ZADD; claim script + ZREM)\n"
"\n"
"Options:\n"
"  --all              run every suite (the default)\n"
"  --quick            100k keys and %.2f s phases, for the test suite\n"
"  --keys N           keys to load (default %u; %u..%u)\n"
"  --seed S           seed of the random key sequence (default %u)\n"
"  --runs R           repeat each timed phase R times, report the median\n"
"                     (default 1; 1..%u); the two sides of a target's ratio\n"
"                     run in turn, one run of each\n"
"  --duration SECS    length of one timed phase (default %.1f)\n"
"  --dir DIR          make the bench directory under DIR (default /var/tmp);\n"
"                     the durable suites refuse a tmpfs\n"
"  --arena-dir DIR    put Keel's arenas and the raw table in DIR instead of\n"
"                     /dev/shm (keel_options_t.arena_path): a tmpfs mounted\n"
"                     with huge=always gives them huge pages (README: Huge\n"
"                     pages); the mem suite reports how much was huge\n"
"  --redis-clients N  connections driving Redis (default %u)\n"
"  --json             print one JSON document (schema in tools/bench/main.c)\n"
"  --check-targets    exit 1 when a target FAILs\n"
"  --help             this help\n"
"\n"
"Progress goes to stderr; the results (text, or JSON with --json) to stdout.\n"
"Peers that are missing (LMDB or SQLite not built in, redis-server not on\n"
"PATH) and Keel modes that keel_open refuses are reported as notes.\n"
"\n"
"Exit status: 0 success (a missed target is reported, not an error),\n"
"1 an error (or a FAIL with --check-targets), 2 a usage error.\n",
		BENCH_DURATION_S_QUICK, BENCH_KEYS_DEFAULT, BENCH_KEYS_MIN, BENCH_KEYS_MAX,
		SEED_DEFAULT, BENCH_RUNS_MAX, BENCH_DURATION_S_DEFAULT, REDIS_CLIENTS_DEFAULT);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("keel-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'keel-bench --help'.\n", stderr);
	return KEEL_E_INVAL;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return usage_error("%s: \"%s\" is not a whole number in %llu..%llu", opt, s,
				   (unsigned long long)lo, (unsigned long long)hi);
	*out = v;
	return 0;
}

static int parse_args(int argc, char **argv)
{
	enum { O_ALL = 256, O_QUICK, O_KEYS, O_SEED, O_RUNS, O_DURATION, O_DIR, O_ARENA_DIR, O_REDIS,
	       O_JSON, O_CHECK, O_HELP };
	static const struct option opts[] = {
		{ "all", no_argument, NULL, O_ALL },
		{ "quick", no_argument, NULL, O_QUICK },
		{ "keys", required_argument, NULL, O_KEYS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "runs", required_argument, NULL, O_RUNS },
		{ "duration", required_argument, NULL, O_DURATION },
		{ "dir", required_argument, NULL, O_DIR },
		{ "arena-dir", required_argument, NULL, O_ARENA_DIR },
		{ "redis-clients", required_argument, NULL, O_REDIS },
		{ "json", no_argument, NULL, O_JSON },
		{ "check-targets", no_argument, NULL, O_CHECK },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int keys_set = 0, duration_set = 0, all = 0, any = 0, c, rc = 0;
	uint64_t v;

	bench_cfg.keys = BENCH_KEYS_DEFAULT;
	bench_cfg.seed = SEED_DEFAULT;
	bench_cfg.runs = 1;
	bench_cfg.duration_s = BENCH_DURATION_S_DEFAULT;
	bench_cfg.redis_clients = REDIS_CLIENTS_DEFAULT;
	snprintf(bench_cfg.dir_parent, sizeof(bench_cfg.dir_parent), "/var/tmp");
	opterr = 0;
	while (!rc && (c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (c) {
		case O_ALL: all = 1; break;
		case O_QUICK: bench_cfg.quick = 1; break;
		case O_KEYS:
			rc = parse_u64("--keys", optarg, BENCH_KEYS_MIN, BENCH_KEYS_MAX, &bench_cfg.keys);
			keys_set = 1;
			break;
		case O_SEED: rc = parse_u64("--seed", optarg, 0, UINT64_MAX, &bench_cfg.seed); break;
		case O_RUNS:
			rc = parse_u64("--runs", optarg, 1, BENCH_RUNS_MAX, &v);
			bench_cfg.runs = (unsigned)v;
			break;
		case O_DURATION: {
			char *end;

			errno = 0;
			bench_cfg.duration_s = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(bench_cfg.duration_s >= 0.01) ||
			    bench_cfg.duration_s > DURATION_S_MAX)
				rc = usage_error("--duration: \"%s\" is not a number of seconds in "
						 "0.01..%.0f", optarg, DURATION_S_MAX);
			duration_set = 1;
			break;
		}
		case O_DIR:
			if (!optarg[0] || strlen(optarg) > PATH_MAX - 64)
				rc = usage_error("--dir: \"%s\" is empty or longer than %d bytes",
						 optarg, PATH_MAX - 64);
			else
				snprintf(bench_cfg.dir_parent, sizeof(bench_cfg.dir_parent), "%s",
					 optarg);
			break;
		case O_ARENA_DIR:
			if (!optarg[0] || strlen(optarg) > PATH_MAX - 128)
				rc = usage_error("--arena-dir: \"%s\" is empty or longer than %d bytes",
						 optarg, PATH_MAX - 128);
			else
				snprintf(bench_cfg.arena_dir, sizeof(bench_cfg.arena_dir), "%s", optarg);
			break;
		case O_REDIS:
			rc = parse_u64("--redis-clients", optarg, 1, REDIS_CLIENTS_MAX, &v);
			bench_cfg.redis_clients = (unsigned)v;
			break;
		case O_JSON: bench_cfg.json = 1; break;
		case O_CHECK: bench_cfg.check_targets = 1; break;
		case O_HELP: usage(stdout); exit(0);
		case ':':
			rc = usage_error("option %s needs a value", argv[optind - 1]);
			break;
		default:
			rc = usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (rc)
		return rc;
	for (int i = optind; i < argc; i++) {
		int found = 0;

		for (int s = 0; s < S_COUNT; s++)
			if (strcmp(argv[i], suite_names[s]) == 0) {
				run.want[s] = found = any = 1;
			}
		if (!found)
			return usage_error("unknown suite \"%s\" (suites: raw get mem put sync async "
					   "recovery timers)", argv[i]);
	}
	if (all || !any)
		for (int s = 0; s < S_COUNT; s++)
			run.want[s] = 1;
	if (bench_cfg.quick && !keys_set)
		bench_cfg.keys = BENCH_KEYS_QUICK;
	if (bench_cfg.quick && !duration_set)
		bench_cfg.duration_s = BENCH_DURATION_S_QUICK;
	return 0;
}

/* ---- signals and the bench directory ------------------------------------------------ */

static void on_signal(int sig)
{
	bench_stop_signal = sig;
}

static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked waitpid/poll/read returns EINTR and its
	 * loop sees the flag. */
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGHUP, &sa, NULL))
		return bench_fail(KEEL_E_OS, "sigaction: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int make_bench_dir(void)
{
	int durable = run.want[S_SYNC] || run.want[S_ASYNC] || run.want[S_RECOVERY];
	int tmpfs = bench_on_tmpfs(bench_cfg.dir_parent);

	if (tmpfs < 0)
		return bench_fail_ctx(KEEL_E_INVAL, "--dir");
	if (tmpfs && durable)
		return bench_fail(KEEL_E_INVAL, "--dir %s is on a tmpfs: the sync, async and "
				  "recovery suites need a disk (a journal never goes to /dev/shm); "
				  "choose another --dir or leave those suites out",
				  bench_cfg.dir_parent);
	if (snprintf(bench_cfg.dir, sizeof(bench_cfg.dir), "%s/keel-bench.XXXXXX",
		     bench_cfg.dir_parent) >= (int)sizeof(bench_cfg.dir))
		return bench_fail(KEEL_E_INVAL, "--dir %s is too long", bench_cfg.dir_parent);
	if (!mkdtemp(bench_cfg.dir)) {
		int e = errno;

		bench_cfg.dir[0] = 0;
		return bench_fail(KEEL_E_OS, "making the bench directory under %s: %s",
				  bench_cfg.dir_parent, strerror(e));
	}
	run.dir_made = 1;
	return 0;
}

static void cleanup(void)
{
	struct bench_keel *ks[] = { &run.kmem, &run.ksync, &run.kasync, &run.krec };

	if (bench_redis_stop(&run.redis))
		bench_error("cleanup: %s", bench_errmsg());
	bench_timers_cleanup();
	bench_raw_destroy(&run.raw);
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
		if (bench_keel_close(ks[i]))
			bench_error("cleanup: %s", bench_errmsg());
	bench_disk_destroy(&run.disk);
	if (run.dir_made && bench_rmtree(bench_cfg.dir))
		bench_error("cleanup: %s", bench_errmsg());
	run.dir_made = 0;
	bench_seq_free();
}

/* ---- peers, prepared on first use -------------------------------------------------- */

static int sub_path(char *out, const char *name)
{
	return bench_path(out, bench_cfg.dir, name);
}

static int need_raw(void)
{
	int rc;

	if (run.raw_state)
		return run.raw_state == 1 ? 0 : 1;
	bench_progress("raw table: loading %llu keys", (unsigned long long)bench_cfg.keys);
	rc = bench_raw_create(&run.raw);
	if (!rc)
		rc = bench_raw_load(&run.raw);
	run.raw_state = rc ? 2 : 1;
	return rc;
}

static int need_kmem(void)
{
	char dir[PATH_MAX];
	keel_stat_t st;
	int rc;

	if (run.kmem_state)
		return run.kmem_state == 1 ? 0 : 1;
	bench_progress("keel (memory): opening and loading %llu keys",
		       (unsigned long long)bench_cfg.keys);
	rc = sub_path(dir, "keel-memory");
	rc = rc ? rc : bench_keel_open(&run.kmem, dir, KEEL_DURABILITY_MEMORY);
	rc = rc ? rc : bench_keel_stat(&run.kmem, &st);
	if (!rc)
		run.kmem_used_empty = st.arena_bytes_used;
	rc = rc ? rc : bench_keel_load(&run.kmem);
	run.kmem_state = rc ? 2 : 1;
	return rc;
}

/*
 * The need_*() functions prepare a peer on first use.  They return 0 when
 * it is ready, 1 when it is not there or failed before (reported then),
 * or a new failure.
 */
static int need_lmdb(void)
{
	char dir[PATH_MAX];
	int rc;

	if (run.lmdb_state)
		return run.lmdb_state == 1 ? 0 : 1;
	if (!bench_lmdb_built()) {
		bench_note("lmdb: not available (keel-bench was built without liblmdb)");
		run.lmdb_state = 2;
		return 1;
	}
	bench_progress("LMDB: loading %llu keys (MDB_NOSYNC)", (unsigned long long)bench_cfg.keys);
	rc = sub_path(dir, "lmdb");
	rc = rc ? rc : bench_lmdb_load(&run.lmdb, dir);
	run.lmdb_state = rc ? 2 : 1;
	return rc;
}

static int need_sqlite(void)
{
	int rc;

	if (run.sqlite_state)
		return run.sqlite_state == 1 ? 0 : 1;
	if (!bench_sqlite_built()) {
		bench_note("sqlite: not available (keel-bench was built without libsqlite3)");
		run.sqlite_state = 2;
		return 1;
	}
	bench_progress("SQLite: loading %llu keys (WAL)", (unsigned long long)bench_cfg.keys);
	rc = bench_sqlite_load(&run.sqlite, bench_cfg.dir);
	run.sqlite_state = rc ? 2 : 1;
	return rc;
}

/*
 * Opens a durable Keel store for `suite`.  0 ready, 1 not available (the
 * note is printed), <0 a failure after a successful open.
 */
static int need_keel_durable(struct bench_keel *k, const char *suite, const char *name,
			     int durability)
{
	char dir[PATH_MAX];
	int rc = sub_path(dir, name);

	if (rc)
		return rc;
	rc = bench_keel_open(k, dir, durability);
	if (rc) {
		bench_note("keel %s: not available (%s)", suite, keel_strerror(rc));
		bench_progress("  (%s)", bench_errmsg());
		bench_keel_close(k);
		return 1;
	}
	bench_progress("keel (%s): loading %llu keys", suite, (unsigned long long)bench_cfg.keys);
	return bench_keel_load(k);
}

/* Records a failure of one part of a suite; 1 if the run must stop. */
static int failed(int rc, const char *suite, const char *part)
{
	if (rc >= 0)
		return 0;
	bench_error("%s suite, %s: %s", suite, part, bench_errmsg());
	return bench_stop_signal != 0;
}

static int fig1(const char *key, const char *label, const char *unit, double v)
{
	return bench_fig_add(key, label, unit, &v, 1);
}

/* ---- suites ------------------------------------------------------------------------------ */

static int suite_raw(void)
{
	int rc = need_raw();

	if (failed(rc, "raw", "loading the table") || rc)
		return rc;
	rc = bench_measure("raw.get.1p", "raw table get, 1 process", &bench_raw_get_worker,
			   &run.raw, 1);
	if (failed(rc, "raw", "gets"))
		return rc;
	rc = bench_measure("raw.get.2p", "raw table get, 2 processes", &bench_raw_get_worker,
			   &run.raw, 2);
	if (failed(rc, "raw", "gets"))
		return rc;
	rc = fig1("raw.bytes_per_entry", "raw payload per entry (key + value)", "B/entry",
		  BENCH_RAW_ENTRY_BYTES);
	rc = rc ? rc : fig1("raw.mapped_bytes_per_entry", "raw table mapping / N", "B/entry",
			    (double)run.raw.map_bytes / (double)bench_cfg.keys);
	failed(rc, "raw", "figures");
	return 0;
}

static int suite_get(void)
{
	static const struct { const char *key, *label; const struct bench_worker *w;
			      unsigned n; } runs[] = {
		{ "get.keel_get.1p", "keel_get, 1 process", &bench_keel_get_worker, 1 },
		{ "get.keel_get.2p", "keel_get, 2 processes", &bench_keel_get_worker, 2 },
		{ "get.keel_read_get.1p", "keel_read_get (64 per scope), 1 process",
		  &bench_keel_read_worker, 1 },
		{ "get.keel_read_get.2p", "keel_read_get (64 per scope), 2 processes",
		  &bench_keel_read_worker, 2 },
		{ "get.keel_get_many.1p", "keel_get_many (16 keys per call), 1 process",
		  &bench_keel_many_worker, 1 },
		{ "get.keel_get_many.2p", "keel_get_many (16 keys per call), 2 processes",
		  &bench_keel_many_worker, 2 },
	};
	static const struct bench_phase lmdb[2] = {
		{ "get.lmdb.1p", "LMDB get (txn per get), 1 process", &bench_lmdb_get_worker, &run.lmdb, 1 },
		{ "get.lmdb.2p", "LMDB get (txn per get), 2 processes", &bench_lmdb_get_worker, &run.lmdb, 2 },
	};
	int krc = need_kmem(), lrc, rc;

	if (failed(krc, "get", "keel memory store"))
		return krc;
	/* LMDB first, so that its gets alternate with keel_get's. */
	lrc = need_lmdb();
	if (failed(lrc, "get", "LMDB load"))
		return lrc;
	for (size_t i = 0; !krc && i < sizeof(runs) / sizeof(runs[0]); i++) {
		struct bench_phase ph[2] = { { runs[i].key, runs[i].label, runs[i].w, &run.kmem,
					       runs[i].n } };
		unsigned nph = 1;

		if (runs[i].w == &bench_keel_get_worker && !lrc)
			ph[nph++] = lmdb[runs[i].n - 1];
		rc = bench_measure_alternating(ph, nph);
		if (failed(rc, "get", runs[i].label))
			return rc;
	}
	if (krc && !lrc) {   /* no Keel store: LMDB's figures alone */
		rc = bench_measure_alternating(lmdb, 2);
		if (failed(rc, "get", "LMDB gets"))
			return rc;
	}
	return 0;
}

static int suite_mem(void)
{
	keel_stat_t st;
	double n = (double)bench_cfg.keys;
	int rc = need_kmem();

	if (failed(rc, "mem", "keel memory store"))
		return rc;
	rc = rc ? rc : bench_keel_stat(&run.kmem, &st);
	if (failed(rc, "mem", "keel_stat"))
		return rc;
	if (rc)
		return 0;
	bench_progress("mem: arena_bytes_used %llu (empty store %llu), arena file %llu bytes",
		       (unsigned long long)st.arena_bytes_used,
		       (unsigned long long)run.kmem_used_empty, (unsigned long long)st.arena_bytes);
	rc = fig1("mem.keel.bytes_per_entry", "keel arena_bytes_used / N", "B/entry",
		  (double)st.arena_bytes_used / n);
	rc = rc ? rc : fig1("mem.keel.bytes_per_entry_net",
			    "keel (arena_bytes_used - empty store) / N", "B/entry",
			    ((double)st.arena_bytes_used - (double)run.kmem_used_empty) / n);
	rc = rc ? rc : fig1("mem.keel.arena_bytes_used", "keel arena_bytes_used", "B",
			    (double)st.arena_bytes_used);
	rc = rc ? rc : fig1("mem.keel.arena_bytes_used_empty", "keel arena_bytes_used, empty",
			    "B", (double)run.kmem_used_empty);
	rc = rc ? rc : fig1("mem.keel.arena_bytes", "keel arena file size", "B",
			    (double)st.arena_bytes);
	rc = rc ? rc : fig1("mem.raw.bytes_per_entry", "raw entry (16 B key + 100 B value)",
			    "B/entry", BENCH_RAW_ENTRY_BYTES);
	/* How much of the arena the kernel maps with huge pages: none on a
	 * tmpfs without huge=, the default of /dev/shm (see --arena-dir). */
	uint64_t rss, huge;
	char arena[PATH_MAX];
	if (!rc && keel_arena_path(run.kmem.dir, &run.kmem.opt, arena, sizeof(arena)) == 0 &&
	    bench_huge_kib(arena, &rss, &huge) == 0) {
		bench_progress("mem: arena %s: %llu KiB resident, %llu KiB of it in huge pages", arena,
			       (unsigned long long)rss, (unsigned long long)huge);
		rc = fig1("mem.keel.arena_huge_pct", "keel arena resident in huge pages", "%",
			  rss ? 100.0 * (double)huge / (double)rss : 0.0);
	}
	failed(rc, "mem", "figures");
	return 0;
}

/* The machine's cache-line handoff rate, as a figure: two processes putting
 * into one partition pass its lock and their shared lines at this pace. */
static int handoffs(const char *key, const char *when)
{
	char label[80];
	double v;
	int rc = bench_handoffs(0.2, &v);

	if (rc)   /* reported; the puts go on without this figure */
		return failed(rc, "put", "cache-line handoffs") ? rc : 0;
	snprintf(label, sizeof(label), "cache-line handoffs between 2 processes, %s", when);
	bench_progress("put: cache-line handoffs between 2 processes (%s the 2-process puts): %.1fM/s",
		       when, v / 1e6);
	return fig1(key, label, "1/s", v);
}

static int suite_put(void)
{
	int rc = need_kmem();

	if (failed(rc, "put", "keel memory store"))
		return rc;
	for (unsigned n = 1; !rc && n <= 2; n++) {
		char key[32], label[64];

		snprintf(key, sizeof(key), "put.keel.%up", n);
		snprintf(label, sizeof(label), "keel_put memory mode, %u process%s", n,
			 n > 1 ? "es" : "");
		if (n == 2 && (rc = handoffs("put.handoffs.before_2p", "before")))
			return rc;
		rc = bench_measure(key, label, &bench_keel_put_worker, &run.kmem, n);
		if (failed(rc, "put", label))
			return rc;
		if (n == 2 && (rc = handoffs("put.handoffs.after_2p", "after")))
			return rc;
	}
	if (!rc) {
		rc = bench_keel_check(&run.kmem, "keel memory store after puts");
		if (failed(rc, "put", "check"))
			return rc;
	}
	rc = need_lmdb();
	if (!failed(rc, "put", "LMDB load") && !rc) {
		bench_lmdb_set_sync(&run.lmdb, 0);
		for (unsigned n = 1; n <= 2; n++) {
			char key[32], label[64];

			snprintf(key, sizeof(key), "put.lmdb.%up", n);
			snprintf(label, sizeof(label), "LMDB put NOSYNC (txn per put), %u process%s",
				 n, n > 1 ? "es" : "");
			rc = bench_measure(key, label, &bench_lmdb_put_worker, &run.lmdb, n);
			if (failed(rc, "put", label))
				return rc;
		}
	}
	if (bench_stop_signal)
		return bench_interrupted_check();
	rc = need_sqlite();
	if (!failed(rc, "put", "SQLite load") && !rc) {
		run.sqlite.synchronous = 1;
		for (unsigned n = 1; n <= 2; n++) {
			char key[32], label[64];

			snprintf(key, sizeof(key), "put.sqlite.%up", n);
			snprintf(label, sizeof(label), "SQLite put WAL NORMAL (txn per put), %u "
				 "process%s", n, n > 1 ? "es" : "");
			rc = bench_measure(key, label, &bench_sqlite_put_worker, &run.sqlite, n);
			if (failed(rc, "put", label))
				return rc;
		}
	}
	return 0;
}

static const struct bench_phase raw_sync_phase = {
	"sync.raw_fdatasync.1p", "raw pwrite+fdatasync 4 KiB, 1 process", &bench_disk_sync_worker,
	&run.disk, 1
};

/* Raw pwrite+fdatasync on a preallocated file of the bench directory,
 * alternating with `with` (NULL: alone): the rate one sync committer is
 * judged against. */
static int sync_raw(const struct bench_phase *with)
{
	struct bench_phase ph[2] = { raw_sync_phase };

	bench_progress("sync: raw pwrite+fdatasync of %u B blocks%s", BENCH_DISK_BLOCK,
		       with ? ", alternating with one committer" : "");
	if (with)
		ph[1] = *with;
	int rc = bench_disk_create(&run.disk, bench_cfg.dir);
	rc = rc ? rc : bench_measure_alternating(ph, with ? 2 : 1);
	bench_disk_destroy(&run.disk);
	return failed(rc, "sync", "raw fdatasync") ? rc : 0;
}

/* Starts Redis and loads it: 0, 1 when there is no redis-server, or the
 * failure. */
static int redis_up(void)
{
	char dir[PATH_MAX];
	int rc = sub_path(dir, "redis");

	rc = rc ? rc : bench_redis_start(&run.redis, dir);
	if (rc == KEEL_E_NOTFOUND) {
		bench_note("redis: not available (%s)", bench_errmsg());
		return 1;
	}
	if (!rc) {
		bench_progress("Redis: loading %llu keys (MSET of %u)",
			       (unsigned long long)bench_cfg.keys, BENCH_LOAD_BATCH);
		rc = bench_redis_load(&run.redis);
	}
	return rc;
}

/* The committers' phases; the first alternates with raw fdatasync and the
 * last (16) with Redis, when there is one (redis: its phase or NULL). */
static int suite_sync_keel(const struct bench_phase *redis)
{
	enum { NPROCS = sizeof(sync_procs) / sizeof(sync_procs[0]) };
	static char keys[NPROCS][32], labels[NPROCS][64];
	int rc = need_keel_durable(&run.ksync, "sync", "keel-sync", KEEL_DURABILITY_SYNC);
	const size_t nprocs = NPROCS;

	if (failed(rc, "sync", "keel load") || rc)
		return rc < 0 ? rc : 0;
	for (size_t i = 0; i < nprocs; i++) {
		unsigned n = sync_procs[i];
		struct bench_phase ph[2] = { { keys[i], labels[i], &bench_keel_put_worker, &run.ksync, n } };
		unsigned nph = 1;

		snprintf(keys[i], sizeof(keys[i]), "sync.keel.%up", n);
		snprintf(labels[i], sizeof(labels[i]), "keel_put sync, %u committer%s", n, n > 1 ? "s" : "");
		if (i == 0) {   /* the disk's latency drifts over minutes; the ratio should not */
			if ((rc = sync_raw(&ph[0])))
				return rc;
			continue;
		}
		if (i == nprocs - 1 && redis)
			ph[nph++] = *redis;
		rc = bench_measure_alternating(ph, nph);
		if (failed(rc, "sync", labels[i]))
			return rc;
	}
	rc = bench_keel_check(&run.ksync, "keel sync store after puts");
	failed(rc, "sync", "check");
	/* Closed now: its background thread would otherwise write checkpoints
	 * of the journal just written while later suites measure. */
	int crc = bench_keel_close(&run.ksync);
	failed(crc, "sync", "close");
	return rc ? rc : crc;
}

static int suite_sync(void)
{
	static char redis_label[64];
	struct bench_phase redis = { "sync.redis", redis_label, &bench_redis_set_worker, &run.redis, 1 };
	int rc, redis_rc;

	snprintf(redis_label, sizeof(redis_label), "Redis SET appendfsync always, %u clients",
		 bench_cfg.redis_clients);
	/* Redis first, so that its runs alternate with 16 committers'. */
	redis_rc = redis_up();
	if (failed(redis_rc, "sync", "Redis"))
		return redis_rc;
	rc = suite_sync_keel(redis_rc ? NULL : &redis);
	if (bench_stop_signal)
		return bench_interrupted_check();
	if (!bench_fig_get("sync.raw_fdatasync.1p") && (rc = sync_raw(NULL)))
		return rc;
	rc = need_lmdb();
	if (!failed(rc, "sync", "LMDB load") && !rc) {
		bench_lmdb_set_sync(&run.lmdb, 1);
		rc = bench_measure("sync.lmdb.1p", "LMDB put, default sync, 1 process",
				   &bench_lmdb_put_worker, &run.lmdb, 1);
		if (failed(rc, "sync", "LMDB"))
			return rc;
	}
	rc = need_sqlite();
	if (!failed(rc, "sync", "SQLite load") && !rc) {
		run.sqlite.synchronous = 2;
		rc = bench_measure("sync.sqlite.1p", "SQLite put WAL FULL, 1 process",
				   &bench_sqlite_put_worker, &run.sqlite, 1);
		if (failed(rc, "sync", "SQLite"))
			return rc;
	}
	if (bench_stop_signal)
		return bench_interrupted_check();
	if (redis_rc == 0 && !bench_fig_get("sync.redis")) {   /* no Keel run to alternate with */
		rc = bench_measure_alternating(&redis, 1);
		if (failed(rc, "sync", "Redis"))
			return rc;
	}
	rc = bench_redis_stop(&run.redis);
	failed(rc, "sync", "stopping Redis");
	return 0;
}

static int suite_async(void)
{
	uint64_t t0;
	int rc = need_keel_durable(&run.kasync, "async", "keel-async", KEEL_DURABILITY_ASYNC);

	if (failed(rc, "async", "keel load") || rc)
		return rc < 0 ? rc : 0;
	rc = bench_measure("async.keel.1p", "keel_put async, 1 process", &bench_keel_put_worker,
			   &run.kasync, 1);
	if (failed(rc, "async", "puts"))
		return rc;
	t0 = bench_now_ns();
	rc = keel_sync(run.kasync.h);
	if (rc) {
		bench_keel_fail(rc, "keel_sync after async puts");
		failed(rc, "async", "keel_sync");
		return rc;
	}
	rc = fig1("async.keel.sync_after_s", "keel_sync after the async puts", "s",
		  (double)(bench_now_ns() - t0) / 1e9);
	rc = rc ? rc : bench_keel_check(&run.kasync, "keel async store after puts");
	failed(rc, "async", "check");
	int crc = bench_keel_close(&run.kasync);   /* as in the sync suite */
	failed(crc, "async", "close");
	return rc ? rc : crc;
}

static int suite_recovery(void)
{
	double samples[BENCH_RUNS_MAX];
	char dir[PATH_MAX], label[80];
	int rc, rc_sync;

	rc = sub_path(dir, "keel-recovery");
	if (failed(rc, "recovery", "path"))
		return rc;
	rc = rc_sync = bench_keel_open(&run.krec, dir, KEEL_DURABILITY_SYNC);
	if (rc) {
		bench_keel_close(&run.krec);
		rc = bench_keel_open(&run.krec, dir, KEEL_DURABILITY_ASYNC);
	}
	if (rc) {
		bench_note("keel recovery: not available (%s)", keel_strerror(rc_sync));
		bench_progress("  (%s)", bench_errmsg());
		bench_keel_close(&run.krec);
		return 0;
	}
	bench_progress("keel (recovery): loading %llu keys", (unsigned long long)bench_cfg.keys);
	rc = bench_keel_load(&run.krec);
	if (failed(rc, "recovery", "keel load"))
		return rc;
	for (unsigned r = 0; r < bench_cfg.runs; r++) {
		rc = bench_keel_recover(&run.krec, &samples[r]);
		if (failed(rc, "recovery", "reopen"))
			return rc;
		bench_progress("  recovery of %llu keys: %.3f s", (unsigned long long)bench_cfg.keys,
			       samples[r]);
	}
	snprintf(label, sizeof(label), "keel reopen without arena, %llu keys",
		 (unsigned long long)bench_cfg.keys);
	rc = bench_fig_add("recovery.keel.seconds", label, "s", samples, bench_cfg.runs);
	failed(rc, "recovery", "figures");
	return rc;
}

static int (*const suite_fns[S_COUNT])(void) = {
	suite_raw, suite_get, suite_mem, suite_put, suite_sync, suite_async, suite_recovery,
	bench_timers_suite,
};

int main(int argc, char **argv)
{
	const char *ran[S_COUNT];
	unsigned nran = 0, fails = 0;
	int rc;

	run.raw.fd = -1;
	run.disk.fd = -1;
	rc = parse_args(argc, argv);
	if (rc)
		return EXIT_USAGE;
	if (run.want[S_GET] && !run.want[S_RAW]) {
		run.want[S_RAW] = 1;
		bench_note("suite raw added: the get ratios need it");
	}
	rc = install_signals();
	rc = rc ? rc : make_bench_dir();
	if (rc == KEEL_E_INVAL) {
		usage_error("%s", bench_errmsg());
		return EXIT_USAGE;
	}
	rc = rc ? rc : bench_seq_build();
	if (rc) {
		fprintf(stderr, "keel-bench: %s\n", bench_errmsg());
		cleanup();
		return EXIT_ERROR;
	}
	bench_progress("%llu keys, seed %llu, %u run%s of %.2f s per phase, directory %s",
		       (unsigned long long)bench_cfg.keys, (unsigned long long)bench_cfg.seed,
		       bench_cfg.runs, bench_cfg.runs > 1 ? "s" : "", bench_cfg.duration_s,
		       bench_cfg.dir);
	for (int s = 0; s < S_COUNT && !bench_stop_signal; s++) {
		if (!run.want[s])
			continue;
		bench_progress("suite %s", suite_names[s]);
		ran[nran++] = suite_names[s];
		suite_fns[s]();
	}
	if (bench_stop_signal)
		bench_error("interrupted by signal %d; cleaning up", (int)bench_stop_signal);
	cleanup();
	rc = bench_report(ran, nran, &fails);
	if (rc)
		fprintf(stderr, "keel-bench: %s\n", bench_errmsg());
	if (rc || bench_error_count())
		return EXIT_ERROR;
	if (bench_cfg.check_targets && fails) {
		fprintf(stderr, "keel-bench: %u target%s FAILed (--check-targets)\n", fails,
			fails > 1 ? "s" : "");
		return EXIT_ERROR;
	}
	return 0;
}
