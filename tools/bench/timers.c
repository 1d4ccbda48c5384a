/*
 * timers.c - the timers suite: Keel's durable timers (lib/keel.h, the
 * "timers" section) measured in memory mode, beside Redis sorted sets, the
 * usual way to build timers (timers_redis.c).
 *
 * Phases, in the order they run
 * -----------------------------
 *   load       N timers (--keys; 1M by default) set one keel_timer_set at a
 *              time into an empty store, due one to 31 days ahead with a
 *              32-byte payload (timers.h).  Figures: the set rate of new
 *              timers and arena_bytes_used growth per timer, against 56 B
 *              (16 B name + 32 B payload + 8 B due time).  Each of the
 *              --runs loads goes into a store of its own; the last one stays
 *              for the phases below, so they run with N timers pending.
 *   set        forked workers (1 and 2) reschedule random pending timers
 *              (keel_timer_set of an existing name, a new due time), as the
 *              put suite does with keys.
 *   claim+ack  a pool of P = N due timers in another partition; forked
 *              workers (1 and 4) each claim (keel_timer_claim, no wait) and
 *              then ack (keel_timer_ack), until the pool is empty or the
 *              phase ends.  The pool is refilled before each run.
 *   lateness   one process waits in keel_timer_claim (timeout 250 ms, in a
 *              loop) and acks what it gets; another sets K timers spread
 *              evenly over one phase (--duration; K = 1000 per second, 200
 *              at the least), each due 5 to 1000 ms after it is set.  The
 *              waiter records, per timer, fire time (wall clock when the
 *              claim returns) minus due time: p50, p99 and max.  A control
 *              process beside them sleeps (clock_nanosleep, no Keel call)
 *              to the same planned due times and records how late it woke:
 *              the machine's own scheduling noise in the same seconds (p99),
 *              to read the waiter's tail against.
 *   redelivery a process claims a due timer with a 10-minute lease and is
 *              SIGKILLed (and reaped at once, as a supervisor would); another
 *              process, already waiting in keel_timer_claim, must get the
 *              same timer.  The kill comes 20 to 70 ms (random, from --seed)
 *              after the waiter started, so that it falls at no fixed phase
 *              of any periodic wake-up of the waiter.  The figure is the
 *              time from kill() to the return of that claim, over 10 kills
 *              per run (3 with --quick): p50 and max.
 *   redis      redis-server in memory (no AOF): N members ZADDed (used_memory
 *              growth per timer); ZADD rescheduling with 1 and --redis-clients
 *              connections; claim (a script moving the earliest due member to
 *              the end of its lease) then ack (ZREM) with 1 and 4 processes.
 *
 * Every phase checks what it did: the loads with keel_timer_stat and a
 * sample of keel_timer_get; the reschedules keep the pending count; the
 * claim+ack runs must leave exactly P - acks timers pending and none
 * claimed (a timer handed out twice, or lost, shows there), and every
 * claimed payload must belong to its name; lateness needs every timer
 * fired exactly once and none before its due time; redelivery needs the
 * same timer with delivery count 2, then gone after the ack, and the
 * store's redelivered counter up by one per kill.  A failed check is an
 * error of the run, not a figure.
 *
 * Processes: workers of the rate phases are runner.c's; the lateness and
 * redelivery processes are forked here, die with keel-bench
 * (PR_SET_PDEATHSIG) and are killed and reaped on any failure.  No handle
 * crosses a fork: every child opens its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "timers.h"

#define T_PART_PENDING T_ZSET_PENDING
#define T_PART_CLAIM T_ZSET_CLAIM
#define T_PART_LATE "timers.late"
#define T_PART_REDELIVER "timers.redeliver"

#define T_PENDING_AHEAD_MS T_DAY_MS
#define T_PENDING_SPREAD_MS (30 * T_DAY_MS)
#define T_SETS_PER_BATCH 64u
#define T_CLAIMS_PER_BATCH 16u
#define T_PROGRESS_EVERY (1u << 16)        /* sets between interrupt checks */

#define T_LATE_PER_S 1000u
#define T_LATE_MIN 200u
#define T_LATE_MAX 20000u
#define T_LATE_AHEAD_MS_MIN 5u
#define T_LATE_AHEAD_MS_MAX 1000u
#define T_LATE_CLAIM_TIMEOUT_MS 250
#define T_LATE_GRACE_MS 3000u              /* the waiter gives up this long after the last due */

#define T_KILLS 10u
#define T_KILLS_QUICK 3u
#define T_KILL_LEASE_MS 600000u
#define T_KILL_SETTLE_MS 20u               /* the rescuer is waiting by then ... */
#define T_KILL_PHASE_MS 50u                /* ... plus a random 0..49 ms: see kill_once */
#define T_KILL_WAIT_MS 10000u              /* no redelivery by then is a failure */
#define T_CHILD_START_MS 30000u            /* a child must be ready by then */

#define T_MSG_BYTES 232

/* The suite's state, for bench_timers_cleanup. */
static struct {
	struct bench_keel k;      /* the store of the last load: N pending */
	int k_open;
	struct t_redis redis;
} ts;

/* ---- timers: names, due times, payloads ---------------------------------------------- */

uint64_t t_pending_due(uint64_t base_ms, uint64_t i)
{
	uint64_t st = i ^ 0x54494d45ull;

	return base_ms + T_PENDING_AHEAD_MS + bench_rand_next(&st) % T_PENDING_SPREAD_MS;
}

uint64_t t_pool_due(uint64_t base_ms, uint64_t i, uint64_t p)
{
	return base_ms - 1000 + (uint64_t)(((unsigned __int128)i * 999) / (p ? p : 1));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Payload of timer `index`: index and due time (LE), then 16 bytes of a
 * pattern of the index. */
static void t_payload(uint64_t index, uint64_t due_ms, uint8_t out[T_PAYLOAD_BYTES])
{
	uint64_t st = index;

	put_le64(out, index);
	put_le64(out + 8, due_ms);
	put_le64(out + 16, bench_rand_next(&st));
	put_le64(out + 24, bench_rand_next(&st));
}

/*
 * The payload of a claimed (or listed) timer belongs to its name: its index
 * names the key, its pattern matches; *index gets the index and *due_ms the
 * due time it carries.
 */
static int t_payload_check(const char *what, const void *key, size_t klen, const uint8_t *pl,
			   size_t plen, uint64_t *index, uint64_t *due_ms)
{
	uint8_t want[T_PAYLOAD_BYTES], k[BENCH_KEY_BYTES];
	uint64_t i;

	if (plen != T_PAYLOAD_BYTES)
		return bench_fail(KEEL_E_CORRUPT, "%s: payload of %zu bytes, expected %u", what, plen,
				  T_PAYLOAD_BYTES);
	i = get_le64(pl);
	bench_key(i, k);
	t_payload(i, get_le64(pl + 8), want);
	if (klen != BENCH_KEY_BYTES || memcmp(key, k, BENCH_KEY_BYTES) != 0 ||
	    memcmp(pl, want, T_PAYLOAD_BYTES) != 0)
		return bench_fail(KEEL_E_CORRUPT, "%s: timer %.*s carries the payload of timer "
				  "%llu (%.16s) or a damaged one", what, (int)klen,
				  (const char *)key, (unsigned long long)i, (const char *)k);
	*index = i;
	*due_ms = get_le64(pl + 8);
	return 0;
}

static int t_stat(keel_t *h, keel_timer_stat_t *st, const char *what)
{
	int rc = keel_timer_stat(h, st);

	return rc ? bench_keel_fail(rc, "%s: keel_timer_stat", what) : 0;
}

static int fig1(const char *key, const char *label, const char *unit, double v)
{
	return bench_fig_add(key, label, unit, &v, 1);
}

static void sleep_ms(unsigned ms)
{
	struct timespec left = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&left, &left) != 0 && errno == EINTR && !bench_stop_signal)
		;
}

static uint64_t real_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The q-quantile of n sorted values (nearest rank). */
static double quantile(const double *v, size_t n, double q)
{
	size_t r = (size_t)(q * (double)n + 0.999999);

	if (r == 0)
		r = 1;
	return v[(r > n ? n : r) - 1];
}

/* ---- load: N new timers into an empty store ------------------------------------------- */

/* Checks the count, the earliest due time and a sample of timers. */
static int load_check(keel_t *h, uint64_t n, uint64_t base, uint64_t min_due)
{
	uint64_t st = bench_cfg.seed ^ 0x4c4f4144ull;
	keel_timer_stat_t ts_;
	int rc = t_stat(h, &ts_, "timers after load");

	if (rc)
		return rc;
	if (ts_.pending != n || ts_.claimed || ts_.dead || ts_.next_due_ms != min_due)
		return bench_fail(KEEL_E_STATE, "timers after load: keel_timer_stat says %llu "
				  "pending, %llu claimed, %llu dead, next due %llu; expected %llu, 0, "
				  "0, %llu", (unsigned long long)ts_.pending,
				  (unsigned long long)ts_.claimed, (unsigned long long)ts_.dead,
				  (unsigned long long)ts_.next_due_ms, (unsigned long long)n,
				  (unsigned long long)min_due);
	for (unsigned s = 0; s < BENCH_VERIFY_SAMPLES; s++) {
		uint64_t i = bench_rand_next(&st) % n, idx, due;
		uint8_t key[BENCH_KEY_BYTES], buf[T_PAYLOAD_BYTES + 8];
		keel_timer_info_t info;

		bench_key(i, key);
		rc = keel_timer_get(h, T_PART_PENDING, key, sizeof(key), &info, buf, sizeof(buf));
		if (rc)
			return bench_keel_fail(rc, "timers after load: keel_timer_get of %.16s",
					       (const char *)key);
		rc = t_payload_check("timers after load", key, sizeof(key), buf, info.plen, &idx,
				     &due);
		if (rc)
			return rc;
		if (idx != i || info.due_ms != t_pending_due(base, i) || due != info.due_ms ||
		    info.state != KEEL_TIMER_PENDING || info.deliveries != 0)
			return bench_fail(KEEL_E_STATE, "timers after load: timer %.16s is due %llu "
					  "in state %u with %u deliveries; expected due %llu, pending, "
					  "0", (const char *)key, (unsigned long long)info.due_ms,
					  info.state, info.deliveries,
					  (unsigned long long)t_pending_due(base, i));
	}
	return 0;
}

/* One load into a new store; on success it is ts.k. */
static int load_run(unsigned r, double *rate, double *bytes)
{
	uint8_t key[BENCH_KEY_BYTES], pl[T_PAYLOAD_BYTES];
	uint64_t n = bench_cfg.keys, base, min_due = UINT64_MAX, t0, t1;
	keel_stat_t s0, s1;
	char dir[PATH_MAX], name[32];
	int rc;

	if (ts.k_open) {
		ts.k_open = 0;
		rc = bench_keel_close(&ts.k);
		if (rc)
			return rc;
	}
	snprintf(name, sizeof(name), "keel-timers.%u", r + 1);
	rc = bench_path(dir, bench_cfg.dir, name);
	rc = rc ? rc : bench_keel_open(&ts.k, dir, KEEL_DURABILITY_MEMORY);
	ts.k_open = 1;            /* a failed open may leave an arena */
	rc = rc ? rc : bench_keel_stat(&ts.k, &s0);
	if (rc)
		return rc;
	base = keel_now_ms();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t due = t_pending_due(base, i);

		if (i % T_PROGRESS_EVERY == 0 && (rc = bench_interrupted_check()))
			return rc;
		bench_key(i, key);
		t_payload(i, due, pl);
		rc = keel_timer_set(ts.k.h, T_PART_PENDING, key, sizeof(key), due, pl, sizeof(pl));
		if (rc)
			return bench_keel_fail(rc, "keel_timer_set of new timer %llu (%.16s)",
					       (unsigned long long)i, (const char *)key);
		if (due < min_due)
			min_due = due;
	}
	t1 = bench_now_ns();
	rc = bench_keel_stat(&ts.k, &s1);
	rc = rc ? rc : load_check(ts.k.h, n, base, min_due);
	if (rc)
		return rc;
	*rate = (double)n * 1e9 / (double)(t1 - t0);
	*bytes = ((double)s1.arena_bytes_used - (double)s0.arena_bytes_used) / (double)n;
	return 0;
}

static int phase_load(void)
{
	double rates[BENCH_RUNS_MAX], bytes[BENCH_RUNS_MAX];
	char label[80], a[32];
	int rc = 0;

	for (unsigned r = 0; r < bench_cfg.runs && !rc; r++) {
		bench_progress("  timers load: %llu new timers (run %u/%u)",
			       (unsigned long long)bench_cfg.keys, r + 1, bench_cfg.runs);
		rc = load_run(r, &rates[r], &bytes[r]);
		if (!rc)
			bench_progress("  keel_timer_set of %llu new timers: %s sets/s, %.1f arena "
				       "bytes per timer", (unsigned long long)bench_cfg.keys,
				       bench_fmt_si(rates[r], a), bytes[r]);
	}
	if (rc)
		return rc;
	snprintf(label, sizeof(label), "keel_timer_set of %llu new timers, 1 process",
		 (unsigned long long)bench_cfg.keys);
	rc = bench_fig_add("timers.keel.set_new.1p", label, "ops/s", rates, bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.keel.bytes_per_timer",
				     "keel arena_bytes_used growth / pending timer", "B/timer",
				     bytes, bench_cfg.runs);
	rc = rc ? rc : fig1("timers.raw.bytes_per_timer", "raw timer (16 B name + 32 B payload + "
			    "8 B due)", "B/timer", T_RAW_BYTES);
	return rc;
}

/* ---- rate workers: reschedule, claim+ack ------------------------------------------------ */

struct tw_state {
	keel_t *h;
	size_t pos;
	uint64_t gen, base;
};

static int tw_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	const struct bench_keel *k = ctx;
	struct tw_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "timers worker: out of memory");
	rc = keel_open(k->dir, &k->opt, &s->h);
	if (rc) {
		free(s);
		return bench_keel_fail(rc, "timers worker %u: keel_open %s", wid, k->dir);
	}
	s->pos = bench_seq_start(wid, n);
	s->gen = (uint64_t)(wid + 1) << 40;
	s->base = keel_now_ms();
	*state = s;
	return 0;
}

static int tw_teardown(void *state)
{
	struct tw_state *s = state;
	int rc;

	if (!s)
		return 0;
	rc = keel_close(s->h);
	free(s);
	return rc ? bench_keel_fail(rc, "timers worker: keel_close") : 0;
}

/* Reschedules the next pending timers of the sequence to new due times. */
static int tw_set_batch(void *state, uint64_t *ops)
{
	struct tw_state *s = state;
	uint8_t pl[T_PAYLOAD_BYTES];

	for (unsigned i = 0; i < T_SETS_PER_BATCH; i++) {
		const uint8_t *key = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
		uint32_t idx = bench_seq.index[s->pos];
		uint64_t due = t_pending_due(s->base, idx ^ ++s->gen);
		int rc;

		t_payload(idx, due, pl);
		rc = keel_timer_set(s->h, T_PART_PENDING, key, BENCH_KEY_BYTES, due, pl, sizeof(pl));
		if (rc)
			return bench_keel_fail(rc, "keel_timer_set (reschedule) of timer %u", idx);
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += T_SETS_PER_BATCH;
	return 0;
}

/* Claims the earliest due timer of the pool, checks it, acks it. */
static int tw_claim_batch(void *state, uint64_t *ops)
{
	static const char *const parts[] = { T_PART_CLAIM };
	struct tw_state *s = state;
	uint8_t buf[T_PAYLOAD_BYTES + 8];

	for (unsigned i = 0; i < T_CLAIMS_PER_BATCH; i++) {
		keel_claim_t c;
		uint64_t idx, due;
		int rc = keel_timer_claim(s->h, parts, 1, T_LEASE_MS, 0, &c, buf, sizeof(buf));

		if (rc == KEEL_E_TIMEOUT)
			return BENCH_BATCH_DONE;  /* the pool is empty */
		if (rc)
			return bench_keel_fail(rc, "keel_timer_claim");
		rc = t_payload_check("keel_timer_claim", c.key, c.klen, buf, c.plen, &idx, &due);
		if (rc)
			return rc;
		if (c.due_ms != due || c.deliveries != 1 || strcmp(c.part, T_PART_CLAIM) != 0)
			return bench_fail(KEEL_E_STATE, "keel_timer_claim: timer %.16s of partition "
					  "%s, due %llu, delivery %u; expected %s, due %llu, delivery 1",
					  (const char *)c.key, c.part, (unsigned long long)c.due_ms,
					  c.deliveries, T_PART_CLAIM, (unsigned long long)due);
		rc = keel_timer_ack(s->h, &c);
		if (rc)
			return bench_keel_fail(rc, "keel_timer_ack of timer %.16s", (const char *)c.key);
		(*ops)++;
	}
	return 0;
}

static const struct bench_worker tw_set_worker = {
	.name = "keel_timer_set",
	.setup = tw_setup,
	.batch = tw_set_batch,
	.teardown = tw_teardown,
};

static const struct bench_worker tw_claim_worker = {
	.name = "keel_timer_claim+ack",
	.setup = tw_setup,
	.batch = tw_claim_batch,
	.teardown = tw_teardown,
};

static int phase_set(void)
{
	keel_timer_stat_t a, b;
	int rc = t_stat(ts.k.h, &a, "before the reschedules");

	for (unsigned n = 1; !rc && n <= 2; n++) {
		char key[32], label[64];

		snprintf(key, sizeof(key), "timers.keel.set.%up", n);
		snprintf(label, sizeof(label), "keel_timer_set reschedule, %u process%s", n,
			 n > 1 ? "es" : "");
		rc = bench_measure(key, label, &tw_set_worker, &ts.k, n);
	}
	rc = rc ? rc : t_stat(ts.k.h, &b, "after the reschedules");
	if (!rc && (b.pending != a.pending || b.claimed != a.claimed))
		rc = bench_fail(KEEL_E_STATE, "reschedules changed the pending count from %llu to "
				"%llu (claimed %llu to %llu): a set of an existing timer must be an "
				"upsert", (unsigned long long)a.pending, (unsigned long long)b.pending,
				(unsigned long long)a.claimed, (unsigned long long)b.claimed);
	return rc;
}

/* Sets the pool: timers 0..p-1 of T_PART_CLAIM, all due (an upsert of any
 * left from the run before). */
static int pool_refill(keel_t *h, uint64_t p)
{
	uint8_t key[BENCH_KEY_BYTES], pl[T_PAYLOAD_BYTES];
	uint64_t base = keel_now_ms();

	for (uint64_t i = 0; i < p; i++) {
		uint64_t due = t_pool_due(base, i, p);
		int rc;

		if (i % T_PROGRESS_EVERY == 0 && (rc = bench_interrupted_check()))
			return rc;
		bench_key(i, key);
		t_payload(i, due, pl);
		rc = keel_timer_set(h, T_PART_CLAIM, key, sizeof(key), due, pl, sizeof(pl));
		if (rc)
			return bench_keel_fail(rc, "claim pool: keel_timer_set of timer %llu",
					       (unsigned long long)i);
	}
	return 0;
}

/*
 * Runs claim+ack with n processes --runs times, refilling the pool before
 * each, and records figure `key`.  After each run the store must hold
 * exactly the unacked rest of the pool, nothing claimed.
 */
static int measure_claims(const char *key, const char *label, unsigned n, uint64_t p)
{
	double samples[BENCH_RUNS_MAX];
	char a[32];
	int rc;

	for (unsigned r = 0; r < bench_cfg.runs; r++) {
		keel_timer_stat_t before, after;
		struct bench_rate rate;

		rc = pool_refill(ts.k.h, p);
		rc = rc ? rc : t_stat(ts.k.h, &before, "claim pool after refill");
		rc = rc ? rc : bench_run(&tw_claim_worker, &ts.k, n, bench_cfg.duration_s, &rate);
		rc = rc ? rc : t_stat(ts.k.h, &after, "claim pool after the run");
		if (rc)
			return rc;
		if (after.claimed != before.claimed || after.pending + rate.ops != before.pending)
			return bench_fail(KEEL_E_STATE, "%s: %llu acked of %llu pending (pool %llu) "
					  "should leave %llu pending and %llu claimed; keel_timer_stat "
					  "says %llu and %llu (a timer claimed twice, lost, or an ack "
					  "that did not delete)", label, (unsigned long long)rate.ops,
					  (unsigned long long)before.pending, (unsigned long long)p,
					  (unsigned long long)(before.pending - rate.ops),
					  (unsigned long long)before.claimed,
					  (unsigned long long)after.pending,
					  (unsigned long long)after.claimed);
		samples[r] = rate.rate;
		bench_progress("  %s: %s claim+acks/s (%llu in %.3f s%s)", label,
			       bench_fmt_si(rate.rate, a),
			       (unsigned long long)rate.ops, rate.secs,
			       rate.ops == p ? ", pool emptied" : "");
	}
	return bench_fig_add(key, label, "ops/s", samples, bench_cfg.runs);
}

static int phase_claim(void)
{
	uint64_t p = bench_cfg.keys;
	int rc;

	bench_progress("  timers claim+ack: pools of %llu due timers", (unsigned long long)p);
	rc = measure_claims("timers.keel.claim_ack.1p", "keel_timer_claim then ack, 1 process",
			    1, p);
	rc = rc ? rc : measure_claims("timers.keel.claim_ack.4p",
				      "keel_timer_claim then ack, 4 processes", 4, p);
	return rc;
}

/* ---- child processes ------------------------------------------------------------------- */

/* Where a child leaves its failure for the parent (in shared memory). */
struct t_child_msg {
	int32_t rc;
	char msg[T_MSG_BYTES];
};

/*
 * Forks a child that runs fn(arg) and exits 0 or 1 (after leaving its
 * failure in *slot).  It dies with keel-bench.  The child first closes the
 * nclose descriptors of close_fds (the parent's pipe ends: a child holding
 * the write end of a pipe it reads would never see its end of file).
 * > 0 the pid, < 0 a failure.
 */
static pid_t t_fork(int (*fn)(void *), void *arg, struct t_child_msg *slot,
		    const int *close_fds, unsigned nclose)
{
	pid_t self = getpid(), pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return bench_fail(KEEL_E_OS, "fork: %s", strerror(errno));
	if (pid == 0) {
		int rc;

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != self)
			_exit(3);
		for (unsigned i = 0; i < nclose; i++)
			if (close_fds[i] >= 0)
				close(close_fds[i]);
		rc = fn(arg);
		if (rc) {
			slot->rc = rc;
			snprintf(slot->msg, sizeof(slot->msg), "%s", bench_errmsg());
		}
		_exit(rc ? 1 : 0);
	}
	return pid;
}

/* Kills (if still there) and reaps a child; *pid becomes 0. */
static void t_kill(pid_t *pid)
{
	if (*pid <= 0)
		return;
	kill(*pid, SIGKILL);
	while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
		;
	*pid = 0;
}

/*
 * Waits up to ms for a child to exit, then judges it: 0 when it exited 0,
 * else its failure.  Kills it at the limit or on a stop signal.
 */
static int t_join(pid_t *pid, unsigned ms, const struct t_child_msg *slot, const char *who)
{
	uint64_t limit = bench_now_ns() + (uint64_t)ms * 1000000ull;
	int status = 0, rc;

	for (;;) {
		pid_t w = waitpid(*pid, &status, WNOHANG);

		if (w == *pid)
			break;
		if (w < 0 && errno != EINTR) {
			*pid = 0;
			return bench_fail(KEEL_E_OS, "%s: waitpid: %s", who, strerror(errno));
		}
		rc = bench_interrupted_check();
		if (!rc && bench_now_ns() > limit)
			rc = bench_fail(KEEL_E_TIMEOUT, "%s: still running after %u ms; killed", who,
					ms);
		if (rc) {
			t_kill(pid);
			return rc;
		}
		sleep_ms(1);
	}
	*pid = 0;
	if (slot->rc)
		return bench_fail(slot->rc, "%s: %s", who, slot->msg);
	if (WIFSIGNALED(status))
		return bench_fail(KEEL_E_OS, "%s: killed by signal %d", who, WTERMSIG(status));
	if (WEXITSTATUS(status) != 0)
		return bench_fail(KEEL_E_OS, "%s: exit status %d", who, WEXITSTATUS(status));
	return 0;
}

/* Waits up to ms for one byte on fd (a child's "ready" or "done").  A child
 * that exits first closes the pipe: KEEL_E_STATE. */
static int t_wait_byte(int fd, unsigned ms, const char *what)
{
	uint64_t limit = bench_now_ns() + (uint64_t)ms * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = bench_now_ns();
		int left = now >= limit ? 0 : (int)((limit - now) / 1000000ull) + 1;
		int rc = bench_interrupted_check();
		char c;
		ssize_t r;

		if (rc)
			return rc;
		if (left == 0)
			return bench_fail(KEEL_E_TIMEOUT, "%s: nothing after %u ms", what, ms);
		rc = poll(&p, 1, left > 200 ? 200 : left);
		if (rc < 0 && errno != EINTR)
			return bench_fail(KEEL_E_OS, "%s: poll: %s", what, strerror(errno));
		if (rc <= 0)
			continue;
		r = read(fd, &c, 1);
		if (r == 1)
			return 0;
		if (r == 0)
			return bench_fail(KEEL_E_STATE, "%s: the process exited first", what);
		if (errno != EINTR)
			return bench_fail(KEEL_E_OS, "%s: read: %s", what, strerror(errno));
	}
}

static int t_signal_byte(int fd)
{
	char c = '.';

	return write(fd, &c, 1) == 1 ? 0 : bench_fail(KEEL_E_OS, "write: %s", strerror(errno));
}

/* ---- lateness: a waiting claimer, timers set from another process --------------------- */

struct late_shared {
	struct t_child_msg setter, waiter, control;
	uint32_t k;               /* timers the setter sets */
	uint32_t received;        /* claimed by the waiter (written by it) */
	uint64_t start_ns;        /* monotonic: the setter's t0 (parent, before go) */
	uint64_t span_ns;         /* the setter spreads its sets over this */
	uint64_t seed;
	int ready_fd, go_fd;      /* the children's ends */
	uint64_t set_real_ns[T_LATE_MAX];  /* wall clock of each set (setter) */
	uint64_t ctl_plan_ns[T_LATE_MAX];  /* control: the planned due times, monotonic */
	uint64_t ctl_late_ns[T_LATE_MAX];  /* control: how late it woke for each */
	uint64_t due_ms[T_LATE_MAX];       /* setter */
	uint64_t fired_real_ns[T_LATE_MAX];/* waiter: when its claim returned */
	uint32_t fires[T_LATE_MAX];        /* waiter */
	const struct bench_keel *k_;
};

static int child_open(const struct bench_keel *k, keel_t **h, const char *who)
{
	int rc = keel_open(k->dir, &k->opt, h);

	return rc ? bench_keel_fail(rc, "%s: keel_open %s", who, k->dir) : 0;
}

/* Both children: open, say ready, wait for the parent's go (end of file). */
static int late_start(struct late_shared *sh, keel_t **h, const char *who)
{
	char c;
	int rc = child_open(sh->k_, h, who);

	rc = rc ? rc : t_signal_byte(sh->ready_fd);
	while (!rc && read(sh->go_fd, &c, 1) < 0 && errno == EINTR)
		;
	return rc;
}

static int late_setter(void *arg)
{
	struct late_shared *sh = arg;
	uint64_t st = sh->seed;
	keel_t *h = NULL;
	int rc = late_start(sh, &h, "lateness setter");

	for (uint32_t i = 0; !rc && i < sh->k; i++) {
		uint64_t at = sh->start_ns + (uint64_t)((unsigned __int128)sh->span_ns * i / sh->k);
		struct timespec when = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) };
		uint8_t key[BENCH_KEY_BYTES], pl[T_PAYLOAD_BYTES];
		uint64_t due;

		/* at is on bench_now_ns's clock, CLOCK_MONOTONIC */
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR)
			;
		due = keel_now_ms() + T_LATE_AHEAD_MS_MIN +
		      bench_rand_next(&st) % (T_LATE_AHEAD_MS_MAX - T_LATE_AHEAD_MS_MIN + 1);
		sh->due_ms[i] = due;
		sh->set_real_ns[i] = real_ns();
		bench_key(i, key);
		t_payload(i, due, pl);
		rc = keel_timer_set(h, T_PART_LATE, key, sizeof(key), due, pl, sizeof(pl));
		if (rc)
			rc = bench_keel_fail(rc, "lateness setter: keel_timer_set of timer %u", i);
	}
	if (h)
		keel_close(h);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/*
 * The control: no Keel call.  It draws the setter's delays from the same
 * seed, so it knows when each timer is planned to fall due (the setter's
 * planned set time + delay, on the monotonic clock), sleeps to each of
 * those instants in time order with clock_nanosleep, and records how late
 * it woke: what the machine alone does to a process that sleeps until a
 * due time, in the same seconds as the waiter.
 */
static int late_control(void *arg)
{
	struct late_shared *sh = arg;
	uint64_t st = sh->seed;
	char c;
	int rc = t_signal_byte(sh->ready_fd);

	while (!rc && read(sh->go_fd, &c, 1) < 0 && errno == EINTR)
		;
	for (uint32_t i = 0; !rc && i < sh->k; i++)
		sh->ctl_plan_ns[i] = sh->start_ns +
				     (uint64_t)((unsigned __int128)sh->span_ns * i / sh->k) +
				     (T_LATE_AHEAD_MS_MIN + bench_rand_next(&st) %
				      (T_LATE_AHEAD_MS_MAX - T_LATE_AHEAD_MS_MIN + 1)) * 1000000ull;
	qsort(sh->ctl_plan_ns, sh->k, sizeof(uint64_t), cmp_u64);
	for (uint32_t i = 0; !rc && i < sh->k; i++) {
		uint64_t at = sh->ctl_plan_ns[i];
		struct timespec when = { (time_t)(at / 1000000000ull), (long)(at % 1000000000ull) };

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR)
			;
		sh->ctl_late_ns[i] = bench_now_ns() - at;
	}
	return rc;
}

static int late_waiter(void *arg)
{
	static const char *const parts[] = { T_PART_LATE };
	struct late_shared *sh = arg;
	uint8_t buf[T_PAYLOAD_BYTES + 8];
	keel_t *h = NULL;
	int rc = late_start(sh, &h, "lateness waiter");
	/* start_ns is read after the go (late_start) */
	uint64_t give_up = sh->start_ns + sh->span_ns +
			   (uint64_t)(T_LATE_AHEAD_MS_MAX + T_LATE_GRACE_MS) * 1000000ull;

	while (!rc && sh->received < sh->k && bench_now_ns() < give_up) {
		uint64_t fired, idx, due;
		keel_claim_t c;

		rc = keel_timer_claim(h, parts, 1, T_LEASE_MS, T_LATE_CLAIM_TIMEOUT_MS, &c, buf,
				      sizeof(buf));
		fired = real_ns();
		if (rc == KEEL_E_TIMEOUT) {
			rc = 0;
			continue;
		}
		if (rc) {
			rc = bench_keel_fail(rc, "lateness waiter: keel_timer_claim");
			break;
		}
		rc = t_payload_check("lateness waiter", c.key, c.klen, buf, c.plen, &idx, &due);
		if (!rc && (idx >= sh->k || due != c.due_ms))
			rc = bench_fail(KEEL_E_STATE, "lateness waiter: claimed timer %llu due %llu "
					"(payload says due %llu; %u timers were set)",
					(unsigned long long)idx, (unsigned long long)c.due_ms,
					(unsigned long long)due, sh->k);
		if (rc)
			break;
		if (sh->fires[idx]++ == 0)
			sh->fired_real_ns[idx] = fired;
		sh->received++;
		rc = keel_timer_ack(h, &c);
		if (rc)
			rc = bench_keel_fail(rc, "lateness waiter: keel_timer_ack of timer %llu",
					     (unsigned long long)idx);
	}
	if (h)
		keel_close(h);
	return rc;
}

/* Judges one lateness run: every timer fired once, none early.  *lat gets
 * fire - due in ms, sorted. */
static int late_judge(const struct late_shared *sh, double *lat)
{
	uint32_t missing = 0, twice = 0, early = 0, first_bad = UINT32_MAX;

	for (uint32_t i = 0; i < sh->k; i++) {
		if (sh->fires[i] != 1) {
			missing += sh->fires[i] == 0;
			twice += sh->fires[i] > 1;
			if (first_bad == UINT32_MAX)
				first_bad = i;
			lat[i] = 0;
			continue;
		}
		lat[i] = ((double)sh->fired_real_ns[i] - (double)sh->due_ms[i] * 1e6) / 1e6;
		if (lat[i] < 0) {
			early++;
			if (first_bad == UINT32_MAX)
				first_bad = i;
		}
	}
	if (missing || twice || early)
		return bench_fail(KEEL_E_STATE, "lateness: of %u timers %u never fired, %u fired "
				  "more than once, %u fired before their due time (first: timer %u, "
				  "due %llu ms, set at %.3f ms, fired %u times, at %.3f ms)", sh->k,
				  missing, twice, early, first_bad,
				  (unsigned long long)sh->due_ms[first_bad],
				  (double)sh->set_real_ns[first_bad] / 1e6, sh->fires[first_bad],
				  (double)sh->fired_real_ns[first_bad] / 1e6);
	qsort(lat, sh->k, sizeof(double), cmp_double);
	return 0;
}

static int late_run(unsigned r, double *p50, double *p99, double *max, double *noise99)
{
	struct late_shared *sh;
	int ready[2] = { -1, -1 }, go[2] = { -1, -1 }, rc = 0;
	pid_t setter = 0, waiter = 0, control = 0;
	double *lat = NULL;
	uint32_t k;

	k = (uint32_t)(bench_cfg.duration_s * T_LATE_PER_S);
	k = k < T_LATE_MIN ? T_LATE_MIN : k > T_LATE_MAX ? T_LATE_MAX : k;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return bench_fail(KEEL_E_OS, "lateness: mmap: %s", strerror(errno));
	lat = calloc(k, sizeof(double));
	if (!lat || pipe2(ready, O_CLOEXEC) || pipe2(go, O_CLOEXEC)) {
		rc = bench_fail(KEEL_E_OS, "lateness: %s", lat ? strerror(errno) : "out of memory");
		goto out;
	}
	sh->k = k;
	sh->span_ns = (uint64_t)((double)k / T_LATE_PER_S * 1e9);
	sh->seed = bench_cfg.seed ^ (0x4c415445ull + r);
	sh->ready_fd = ready[1];
	sh->go_fd = go[0];
	sh->k_ = &ts.k;
	{
		const int parent_ends[] = { ready[0], go[1] };

		waiter = t_fork(late_waiter, sh, &sh->waiter, parent_ends, 2);
		setter = waiter > 0 ? t_fork(late_setter, sh, &sh->setter, parent_ends, 2) : 0;
		control = setter > 0 ? t_fork(late_control, sh, &sh->control, parent_ends, 2) : 0;
	}
	if (waiter < 0 || setter < 0 || control < 0) {
		rc = waiter < 0 ? waiter : setter < 0 ? setter : control;
		waiter = waiter < 0 ? 0 : waiter;
		setter = setter < 0 ? 0 : setter;
		control = 0;
		goto out;
	}
	close(ready[1]);
	close(go[0]);
	ready[1] = go[0] = -1;
	for (int i = 0; i < 3 && !rc; i++)
		rc = t_wait_byte(ready[0], T_CHILD_START_MS, "lateness: a process starting");
	if (rc)
		goto out;
	/* The start: stores to sh happen before the close; the children read
	 * them after their read() of `go` returns end of file. */
	sh->start_ns = bench_now_ns() + 20000000ull;
	close(go[1]);
	go[1] = -1;
	{
		unsigned limit = (unsigned)(sh->span_ns / 1000000ull) + T_LATE_AHEAD_MS_MAX +
				 T_LATE_GRACE_MS + 20000u;

		rc = t_join(&setter, limit, &sh->setter, "lateness setter");
		rc = rc ? rc : t_join(&waiter, limit, &sh->waiter, "lateness waiter");
		rc = rc ? rc : t_join(&control, limit, &sh->control, "lateness control");
	}
	rc = rc ? rc : late_judge(sh, lat);
	if (!rc) {
		*p50 = quantile(lat, k, 0.50);
		*p99 = quantile(lat, k, 0.99);
		*max = lat[k - 1];
		bench_progress("  lateness of %u timers (due 5..1000 ms after set): p50 %.3f ms, "
			       "p99 %.3f ms, max %.3f ms", k, *p50, *p99, *max);
		for (uint32_t i = 0; i < k; i++)
			lat[i] = (double)sh->ctl_late_ns[i] / 1e6;
		qsort(lat, k, sizeof(double), cmp_double);
		*noise99 = quantile(lat, k, 0.99);
		bench_progress("  control, clock_nanosleep to the same due times: p50 %.3f ms, "
			       "p99 %.3f ms, max %.3f ms", quantile(lat, k, 0.5), *noise99, lat[k - 1]);
	}
out:
	t_kill(&setter);
	t_kill(&waiter);
	t_kill(&control);
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	free(lat);
	munmap(sh, sizeof(*sh));
	return rc;
}

static int phase_lateness(void)
{
	double p50[BENCH_RUNS_MAX], p99[BENCH_RUNS_MAX], max[BENCH_RUNS_MAX];
	double noise[BENCH_RUNS_MAX];
	keel_timer_stat_t st;
	int rc = 0;

	for (unsigned r = 0; r < bench_cfg.runs && !rc; r++)
		rc = late_run(r, &p50[r], &p99[r], &max[r], &noise[r]);
	rc = rc ? rc : t_stat(ts.k.h, &st, "after the lateness runs");
	if (!rc && st.claimed != 0)
		rc = bench_fail(KEEL_E_STATE, "after the lateness runs %llu timers are still "
				"claimed; every claim was acked", (unsigned long long)st.claimed);
	rc = rc ? rc : bench_fig_add("timers.keel.late.p50_ms", "fire lateness of a waiting "
				     "claimer: p50", "ms", p50, bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.keel.late.p99_ms", "fire lateness of a waiting "
				     "claimer: p99", "ms", p99, bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.keel.late.max_ms", "fire lateness of a waiting "
				     "claimer: max", "ms", max, bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.sys.sleep_late.p99_ms", "control: clock_nanosleep "
				     "to the same due times: p99", "ms", noise, bench_cfg.runs);
	return rc;
}

/* ---- redelivery: a claimer SIGKILLed, another process waiting ------------------------- */

struct kill_shared {
	struct t_child_msg victim, rescuer;
	const struct bench_keel *k_;
	uint8_t key[BENCH_KEY_BYTES];
	int victim_fd, rescuer_fd;       /* the children's write ends */
	uint32_t victim_deliveries;
	uint32_t rescuer_deliveries;
	uint64_t rescued_ns;             /* monotonic, when the rescuer's claim returned */
	int32_t rescuer_same;            /* it got the victim's timer */
};

static int kill_victim(void *arg)
{
	static const char *const parts[] = { T_PART_REDELIVER };
	struct kill_shared *sh = arg;
	uint8_t buf[T_PAYLOAD_BYTES + 8];
	keel_claim_t c;
	keel_t *h;
	int rc = child_open(sh->k_, &h, "victim");

	if (rc)
		return rc;
	rc = keel_timer_claim(h, parts, 1, T_KILL_LEASE_MS, (int)T_KILL_WAIT_MS, &c, buf,
			      sizeof(buf));
	if (rc)
		return bench_keel_fail(rc, "victim: keel_timer_claim");
	if (c.klen != BENCH_KEY_BYTES || memcmp(c.key, sh->key, BENCH_KEY_BYTES) != 0)
		return bench_fail(KEEL_E_STATE, "victim: claimed %.*s, expected %.16s",
				  (int)c.klen, (const char *)c.key, (const char *)sh->key);
	sh->victim_deliveries = c.deliveries;
	rc = t_signal_byte(sh->victim_fd);
	while (!rc)               /* hold the claim until SIGKILL */
		pause();
	return rc;
}

static int kill_rescuer(void *arg)
{
	static const char *const parts[] = { T_PART_REDELIVER };
	struct kill_shared *sh = arg;
	uint64_t give_up = bench_now_ns() + (uint64_t)T_KILL_WAIT_MS * 2000000ull;
	uint8_t buf[T_PAYLOAD_BYTES + 8];
	keel_claim_t c;
	keel_t *h;
	int rc = child_open(sh->k_, &h, "rescuer");

	rc = rc ? rc : t_signal_byte(sh->rescuer_fd);
	while (!rc) {
		rc = keel_timer_claim(h, parts, 1, T_LEASE_MS, 1000, &c, buf, sizeof(buf));
		if (rc != KEEL_E_TIMEOUT)
			break;
		rc = bench_now_ns() > give_up ? rc : 0;
	}
	if (rc)
		return bench_keel_fail(rc, "rescuer: keel_timer_claim");
	sh->rescued_ns = bench_now_ns();
	sh->rescuer_deliveries = c.deliveries;
	sh->rescuer_same = c.klen == BENCH_KEY_BYTES && !memcmp(c.key, sh->key, BENCH_KEY_BYTES);
	rc = keel_timer_ack(h, &c);
	if (rc)
		return bench_keel_fail(rc, "rescuer: keel_timer_ack");
	rc = t_signal_byte(sh->rescuer_fd);
	keel_close(h);
	return rc;
}

/* One kill: *ms gets the time from kill() to the rescuer's claim. */
static int kill_once(unsigned r, unsigned i, uint64_t *rng, double *ms)
{
	struct kill_shared *sh;
	int vp[2] = { -1, -1 }, rp[2] = { -1, -1 }, rc;
	pid_t victim = 0, rescuer = 0;
	uint8_t pl[T_PAYLOAD_BYTES];
	uint64_t kill_ns, idx = ((uint64_t)r << 20) | i;
	keel_timer_info_t info;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return bench_fail(KEEL_E_OS, "redelivery: mmap: %s", strerror(errno));
	sh->k_ = &ts.k;
	bench_key(idx, sh->key);
	t_payload(idx, keel_now_ms() - 1, pl);
	rc = keel_timer_set(ts.k.h, T_PART_REDELIVER, sh->key, BENCH_KEY_BYTES, get_le64(pl + 8),
			    pl, sizeof(pl));
	if (rc) {
		rc = bench_keel_fail(rc, "redelivery: keel_timer_set");
		goto out;
	}
	if (pipe2(vp, O_CLOEXEC) || pipe2(rp, O_CLOEXEC)) {
		rc = bench_fail(KEEL_E_OS, "redelivery: pipe: %s", strerror(errno));
		goto out;
	}
	sh->victim_fd = vp[1];
	sh->rescuer_fd = rp[1];
	{
		const int others[] = { vp[0], rp[0], rp[1] };

		victim = t_fork(kill_victim, sh, &sh->victim, others, 3);
	}
	if (victim < 0) {
		rc = victim;
		victim = 0;
		goto out;
	}
	close(vp[1]);
	vp[1] = -1;
	rc = t_wait_byte(vp[0], T_CHILD_START_MS, "redelivery: the victim's claim");
	if (rc) {
		if (rc == KEEL_E_STATE && t_join(&victim, 1000, &sh->victim, "victim"))
			rc = bench_fail_ctx(KEEL_E_STATE, "redelivery");
		goto out;
	}
	if (sh->victim_deliveries != 1) {
		rc = bench_fail(KEEL_E_STATE, "redelivery: the victim's claim is delivery %u, "
				"expected 1", sh->victim_deliveries);
		goto out;
	}
	{
		const int others[] = { vp[0], rp[0] };

		rescuer = t_fork(kill_rescuer, sh, &sh->rescuer, others, 2);
	}
	if (rescuer < 0) {
		rc = rescuer;
		rescuer = 0;
		goto out;
	}
	close(rp[1]);
	rp[1] = -1;
	rc = t_wait_byte(rp[0], T_CHILD_START_MS, "redelivery: the rescuer starting");
	if (rc)
		goto out;
	/* The rescuer is asleep in its claim by now.  A waiter may wake on a
	 * period of its own to look for dead holders; a fixed delay would put
	 * every kill at the same phase of that period and measure the phase,
	 * so the delay has a random part spanning several periods. */
	sleep_ms(T_KILL_SETTLE_MS + (unsigned)(bench_rand_next(rng) % T_KILL_PHASE_MS));
	kill_ns = bench_now_ns();
	t_kill(&victim);          /* SIGKILL, then reaped at once */
	rc = t_wait_byte(rp[0], T_KILL_WAIT_MS, "redelivery: the rescuer's claim after the kill");
	if (rc) {
		if (rc == KEEL_E_STATE || rc == KEEL_E_TIMEOUT) {
			int jrc = t_join(&rescuer, 2000, &sh->rescuer, "rescuer");

			if (jrc)
				rc = bench_fail_ctx(jrc, "redelivery after a SIGKILL");
		}
		goto out;
	}
	*ms = (double)(sh->rescued_ns - kill_ns) / 1e6;
	rc = t_join(&rescuer, T_CHILD_START_MS, &sh->rescuer, "rescuer");
	if (!rc && (!sh->rescuer_same || sh->rescuer_deliveries != 2))
		rc = bench_fail(KEEL_E_STATE, "redelivery: the rescuer claimed %s timer with "
				"delivery count %u; expected the victim's (%.16s), delivery 2",
				sh->rescuer_same ? "the victim's" : "another", sh->rescuer_deliveries,
				(const char *)sh->key);
	if (!rc) {
		int grc = keel_timer_get(ts.k.h, T_PART_REDELIVER, sh->key, BENCH_KEY_BYTES, &info,
					 NULL, 0);

		if (grc != KEEL_E_NOTFOUND)
			rc = bench_fail(KEEL_E_STATE, "redelivery: timer %.16s still there after the "
					"rescuer's ack (keel_timer_get: %s)", (const char *)sh->key,
					keel_strerror(grc));
	}
out:
	t_kill(&victim);
	t_kill(&rescuer);
	for (int j = 0; j < 2; j++) {
		if (vp[j] >= 0)
			close(vp[j]);
		if (rp[j] >= 0)
			close(rp[j]);
	}
	munmap(sh, sizeof(*sh));
	return rc;
}

static int phase_redelivery(void)
{
	double p50[BENCH_RUNS_MAX], max[BENCH_RUNS_MAX], ms[T_KILLS];
	unsigned kills = bench_cfg.quick ? T_KILLS_QUICK : T_KILLS;
	uint64_t rng = bench_cfg.seed ^ 0x4b494c4cull;
	keel_timer_stat_t a, b;
	int rc = t_stat(ts.k.h, &a, "before the kills");

	for (unsigned r = 0; r < bench_cfg.runs && !rc; r++) {
		for (unsigned i = 0; i < kills && !rc; i++)
			rc = kill_once(r, i, &rng, &ms[i]);
		if (rc)
			break;
		qsort(ms, kills, sizeof(double), cmp_double);
		p50[r] = quantile(ms, kills, 0.5);
		max[r] = ms[kills - 1];
		bench_progress("  redelivery after SIGKILL of the claimer, %u kills: p50 %.2f ms, "
			       "max %.2f ms", kills, p50[r], max[r]);
	}
	rc = rc ? rc : t_stat(ts.k.h, &b, "after the kills");
	if (!rc && b.redelivered - a.redelivered != (uint64_t)kills * bench_cfg.runs)
		rc = bench_fail(KEEL_E_STATE, "keel_timer_stat counts %llu redeliveries for %u "
				"claims lost to a SIGKILL", (unsigned long long)(b.redelivered -
				a.redelivered), kills * bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.keel.redeliver.p50_ms", "redelivery after the "
				     "claimer's SIGKILL: p50", "ms", p50, bench_cfg.runs);
	rc = rc ? rc : bench_fig_add("timers.keel.redeliver.max_ms", "redelivery after the "
				     "claimer's SIGKILL: max", "ms", max, bench_cfg.runs);
	return rc;
}

/* ---- the Redis peer ----------------------------------------------------------------------- */

static int redis_claims(const char *key, const char *label, unsigned n, uint64_t p)
{
	double samples[BENCH_RUNS_MAX];
	char a[32];
	int rc;

	for (unsigned r = 0; r < bench_cfg.runs; r++) {
		struct bench_rate rate;
		uint64_t left = 0;

		rc = t_redis_refill_pool(&ts.redis, p);
		rc = rc ? rc : bench_run(&t_redis_claim_worker, &ts.redis, n, bench_cfg.duration_s,
					 &rate);
		rc = rc ? rc : t_redis_card(&ts.redis, T_ZSET_CLAIM, &left);
		if (rc)
			return rc;
		if (left + rate.ops != p)
			return bench_fail(KEEL_E_STATE, "%s: %llu acked of %llu leaves %llu, but ZCARD "
					  "says %llu", label, (unsigned long long)rate.ops,
					  (unsigned long long)p, (unsigned long long)(p - rate.ops),
					  (unsigned long long)left);
		samples[r] = rate.rate;
		bench_progress("  %s: %s claim+acks/s (%llu in %.3f s)", label,
			       bench_fmt_si(rate.rate, a), (unsigned long long)rate.ops, rate.secs);
	}
	return bench_fig_add(key, label, "ops/s", samples, bench_cfg.runs);
}

static int phase_redis(void)
{
	char dir[PATH_MAX], label[80];
	double bytes = 0;
	uint64_t card = 0;
	int rc = bench_path(dir, bench_cfg.dir, "redis-timers");

	rc = rc ? rc : t_redis_start(&ts.redis, dir);
	if (rc == KEEL_E_NOTFOUND) {
		bench_note("redis timers: not available (%s)", bench_errmsg());
		return 0;
	}
	if (rc)
		return rc;
	bench_progress("  Redis: ZADD of %llu timers", (unsigned long long)bench_cfg.keys);
	rc = t_redis_load_pending(&ts.redis, bench_cfg.keys, &bytes);
	rc = rc ? rc : fig1("timers.redis.bytes_per_timer", "Redis used_memory growth / timer "
			    "(name and due only)", "B/timer", bytes);
	ts.redis.clients = 1;
	rc = rc ? rc : bench_measure("timers.redis.zadd.1c", "Redis ZADD reschedule, 1 client",
				     &t_redis_zadd_worker, &ts.redis, 1);
	ts.redis.clients = bench_cfg.redis_clients;
	snprintf(label, sizeof(label), "Redis ZADD reschedule, %u clients",
		 bench_cfg.redis_clients);
	rc = rc ? rc : bench_measure("timers.redis.zadd.many", label, &t_redis_zadd_worker,
				     &ts.redis, 1);
	rc = rc ? rc : t_redis_card(&ts.redis, T_ZSET_PENDING, &card);
	if (!rc && card != bench_cfg.keys)
		rc = bench_fail(KEEL_E_STATE, "Redis: ZCARD %s is %llu after the reschedules, "
				"expected %llu", T_ZSET_PENDING, (unsigned long long)card,
				(unsigned long long)bench_cfg.keys);
	rc = rc ? rc : redis_claims("timers.redis.claim_ack.1c", "Redis claim script then ZREM, "
				    "1 process", 1, bench_cfg.keys);
	rc = rc ? rc : redis_claims("timers.redis.claim_ack.4c", "Redis claim script then ZREM, "
				    "4 processes", 4, bench_cfg.keys);
	if (rc) {
		t_redis_stop(&ts.redis);
		return rc;
	}
	return t_redis_stop(&ts.redis);
}

/* ---- the suite ------------------------------------------------------------------------------ */

/* Reports a phase's failure; 1 when the run must stop (a signal). */
static int phase_failed(int rc, const char *phase)
{
	if (rc >= 0)
		return 0;
	bench_error("timers suite, %s: %s", phase, bench_errmsg());
	return bench_stop_signal != 0;
}

int bench_timers_suite(void)
{
	static const struct { const char *name; int (*fn)(void); } keel_phases[] = {
		{ "set", phase_set },
		{ "claim+ack", phase_claim },
		{ "lateness", phase_lateness },
		{ "redelivery", phase_redelivery },
	};
	int rc = phase_load();

	if (phase_failed(rc, "load"))
		return bench_interrupted_check();
	/* The other Keel phases need the loaded store; each is independent of
	 * the others' figures, so one failing does not stop the next. */
	for (size_t i = 0; !rc && i < sizeof(keel_phases) / sizeof(keel_phases[0]); i++) {
		bench_progress("  timers %s", keel_phases[i].name);
		if (phase_failed(keel_phases[i].fn(), keel_phases[i].name))
			return bench_interrupted_check();
	}
	rc = phase_redis();
	if (phase_failed(rc, "Redis"))
		return bench_interrupted_check();
	bench_timers_cleanup();
	return 0;
}

void bench_timers_cleanup(void)
{
	if (t_redis_stop(&ts.redis))
		bench_error("timers cleanup: %s", bench_errmsg());
	if (ts.k_open) {
		ts.k_open = 0;
		if (bench_keel_close(&ts.k))
			bench_error("timers cleanup: %s", bench_errmsg());
	}
}
