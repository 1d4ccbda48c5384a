/*
 * runner.c - one timed phase: forked workers, a start barrier, a fixed
 * duration, and the aggregate rate.
 *
 * How a phase runs
 * ----------------
 *   1. The parent maps one shared anonymous page set (struct runner_shared)
 *      and makes two pipes, `ready` and `go`, then forks the workers.
 *   2. Each worker runs setup() (it opens its own handles: no handle
 *      crosses fork), writes one byte to `ready` and blocks reading `go`.
 *   3. Once it has read one byte per worker, the parent stores t0 and the
 *      deadline in the shared page and closes its end of `go`: every worker
 *      reads end-of-file at once and starts.
 *   4. A worker calls batch() until the clock passes the deadline (or
 *      batch() says BENCH_BATCH_DONE: its pool of work is empty), stores
 *      its op count and end time in its own slot, runs teardown() and exits.
 *   5. The parent reaps every worker.  The rate is the sum of the ops over
 *      (the latest end time - t0), so a worker that started late or ran
 *      long counts against the rate, never for it.  A worker that records
 *      latencies (bench_lat_record) leaves a histogram in its slot; the
 *      parent adds them up and reads p50 and p99 from the sum.
 *
 * Ordering: the parent's stores of t0 and the deadline happen before its
 * close() of `go`, and a worker reads them after its read() of `go` returns
 * end-of-file; the pipe's lock in the kernel orders the two.  A worker's
 * stores to its slot happen before its _exit(), and the parent reads them
 * after waitpid() has returned that exit; the kernel orders those too.  No
 * field of the shared page is written by two processes.
 *
 * Limits: at most BENCH_WORKERS_MAX workers; setup must finish within
 * RUNNER_SETUP_S_MAX seconds, and a worker must stop within
 * RUNNER_GRACE_S_MAX seconds after the deadline, or the phase fails and
 * every worker is killed.  Workers die with the parent (PR_SET_PDEATHSIG).
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

#include "bench.h"

#define RUNNER_SETUP_S_MAX 300
#define RUNNER_GRACE_S_MAX 60
#define RUNNER_MSG_BYTES 232
#define LAT_SUB_BITS 3u                     /* 8 buckets per power of two */
#define LAT_BUCKETS (64u << LAT_SUB_BITS)

struct runner_slot {
	uint64_t ops;             /* written by its worker only */
	uint64_t end_ns;
	int32_t rc;
	int32_t pad;
	char msg[RUNNER_MSG_BYTES];
	uint32_t lat[LAT_BUCKETS];/* latency histogram, see lat_bucket() */
} __attribute__((aligned(64)));
_Static_assert(sizeof(struct runner_slot) == 256 + 4 * LAT_BUCKETS, "slot layout");

/* This worker's histogram (a child's copy; the parent never records). */
static uint32_t lat_hist[LAT_BUCKETS];

/*
 * Log-linear buckets: bucket (e << 3) + m holds the values whose highest
 * set bit is e and whose next three bits are m (values below 8 map to
 * themselves), so a bucket spans 1/8 of its power of two.
 */
static unsigned lat_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < (1u << LAT_SUB_BITS))
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns);
	return (e << LAT_SUB_BITS) + (unsigned)((ns >> (e - LAT_SUB_BITS)) & 7u);
}

/* The middle of bucket b, in ns. */
static double lat_value(unsigned b)
{
	unsigned e = b >> LAT_SUB_BITS, m = b & 7u;

	if (e < LAT_SUB_BITS)
		return (double)b;
	return ((double)(8u + m) + 0.5) * (double)(1ull << (e - LAT_SUB_BITS));
}

void bench_lat_record(uint64_t ns)
{
	lat_hist[lat_bucket(ns)]++;
}

/* The value below which a fraction q of the samples of h lie. */
static double lat_quantile(const uint64_t *h, uint64_t count, double q)
{
	uint64_t want = (uint64_t)(q * (double)count + 0.999999), seen = 0;

	for (unsigned b = 0; b < LAT_BUCKETS; b++) {
		seen += h[b];
		if (seen >= want && seen > 0)
			return lat_value(b);
	}
	return 0;
}

struct runner_shared {
	uint64_t t0_ns;           /* written by the parent before `go` closes */
	uint64_t deadline_ns;
	int32_t abort;            /* 1: a worker failed setup, do not start */
	struct runner_slot slot[BENCH_WORKERS_MAX];
};

static void slot_fail(struct runner_slot *s, int rc)
{
	s->rc = rc;
	snprintf(s->msg, sizeof(s->msg), "%s", bench_errmsg());
}

static void __attribute__((noreturn))
worker_main(const struct bench_worker *w, void *ctx, unsigned wid, unsigned n,
	    struct runner_shared *sh, int ready_fd, int go_fd, pid_t parent)
{
	struct runner_slot *s = &sh->slot[wid];
	void *state = NULL;
	uint64_t ops = 0, now, deadline;
	char c = 'r';
	int rc, trc;
	ssize_t r;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(3);
	rc = w->setup(ctx, wid, n, &state);
	if (rc)
		slot_fail(s, rc);
	if (write(ready_fd, &c, 1) != 1 || rc)
		_exit(1);
	do
		r = read(go_fd, &c, 1);
	while (r < 0 && errno == EINTR);
	if (sh->abort) {
		if (w->teardown)
			w->teardown(state);
		_exit(2);
	}
	deadline = sh->deadline_ns;
	do {
		rc = w->batch(state, &ops);
		now = bench_now_ns();
	} while (!rc && now < deadline);
	if (rc == BENCH_BATCH_DONE)
		rc = 0;           /* its pool ran dry: it stops early, see bench.h */
	s->ops = ops;
	s->end_ns = now;
	memcpy(s->lat, lat_hist, sizeof(s->lat));
	if (rc)
		slot_fail(s, rc);
	trc = w->teardown ? w->teardown(state) : 0;
	if (!rc && trc) {
		rc = trc;
		slot_fail(s, rc);
	}
	_exit(rc ? 1 : 0);
}

static void kill_all(const pid_t *pids, const int *reaped, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (pids[i] > 0 && !reaped[i])
			kill(pids[i], SIGKILL);
}

/* Blocking reap of every worker not reaped yet (after kill_all). */
static void reap_all(const pid_t *pids, int *reaped, int *status, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		if (pids[i] <= 0 || reaped[i])
			continue;
		while (waitpid(pids[i], &status[i], 0) < 0 && errno == EINTR)
			;
		reaped[i] = 1;
	}
}

static void sleep_until(uint64_t when_ns)
{
	struct timespec ts = { (time_t)(when_ns / 1000000000ull),
			       (long)(when_ns % 1000000000ull) };

	/* Returns early on a signal; the caller's loop checks the stop flag. */
	clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* A worker that exited before the start (it crashed in setup, say). */
static int exited_early(const struct runner_shared *sh, const pid_t *pids, int *reaped,
			int *status, unsigned n, const char *name)
{
	for (unsigned i = 0; i < n; i++) {
		if (reaped[i] || waitpid(pids[i], &status[i], WNOHANG) != pids[i])
			continue;
		reaped[i] = 1;
		if (sh->slot[i].rc)
			return bench_fail(sh->slot[i].rc, "%s worker %u setup: %s", name, i,
					  sh->slot[i].msg);
		if (WIFSIGNALED(status[i]))
			return bench_fail(KEEL_E_OS, "%s worker %u: killed by signal %d during setup",
					  name, i, WTERMSIG(status[i]));
		return bench_fail(KEEL_E_OS, "%s worker %u: exited (status %d) during setup", name,
				  i, WEXITSTATUS(status[i]));
	}
	return 0;
}

/* Waits for the `ready` bytes of n workers.  0 or a failure. */
static int wait_ready(int fd, const struct runner_shared *sh, const pid_t *pids,
		      int *reaped, int *status, unsigned n, const char *name)
{
	uint64_t limit = bench_now_ns() + RUNNER_SETUP_S_MAX * 1000000000ull;
	unsigned got = 0;

	while (got < n) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		char buf[BENCH_WORKERS_MAX];
		ssize_t r;
		int rc = bench_interrupted_check();

		if (rc)
			return rc;
		if (bench_now_ns() > limit)
			return bench_fail(KEEL_E_TIMEOUT, "%s: %u of %u workers not ready after %d s",
					  name, n - got, n, RUNNER_SETUP_S_MAX);
		if (poll(&p, 1, 200) <= 0) {
			/* A worker that failed setup cleanly wrote its byte
			 * first; one that did not write it has died. */
			rc = exited_early(sh, pids, reaped, status, n, name);
			if (rc)
				return rc;
			continue;
		}
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return bench_fail(KEEL_E_OS, "%s: read of the ready pipe: %s", name,
					  strerror(errno));
		if (r == 0) {
			/* Every worker closed its end: they are exiting. */
			for (int t = 0; t < 100; t++) {
				rc = exited_early(sh, pids, reaped, status, n, name);
				if (rc)
					return rc;
				sleep_until(bench_now_ns() + 10000000ull);
			}
			return bench_fail(KEEL_E_OS, "%s: a worker died during setup", name);
		}
		got += (unsigned)r;
	}
	return 0;
}

/* Reaps every worker; kills them all on stop or at `limit`. */
static int wait_done(const pid_t *pids, int *reaped, int *status, unsigned n,
		     uint64_t deadline, uint64_t limit, const char *name)
{
	unsigned left = n;

	sleep_until(deadline);
	while (left > 0) {
		int rc = bench_interrupted_check();

		for (unsigned i = 0; i < n; i++) {
			if (reaped[i])
				continue;
			if (waitpid(pids[i], &status[i], WNOHANG) == pids[i]) {
				reaped[i] = 1;
				left--;
			}
		}
		if (left == 0)
			break;
		if (!rc && bench_now_ns() > limit)
			rc = bench_fail(KEEL_E_TIMEOUT,
					"%s: %u workers still running %d s after the deadline; "
					"killed", name, left, RUNNER_GRACE_S_MAX);
		if (rc) {
			kill_all(pids, reaped, n);
			reap_all(pids, reaped, status, n);
			return rc;
		}
		sleep_until(bench_now_ns() + 1000000ull);
	}
	return 0;
}

/* The first worker failure, from the slots and exit statuses. */
static int worker_verdict(const struct runner_shared *sh, const int *status, unsigned n,
			  const char *name)
{
	for (unsigned i = 0; i < n; i++) {
		if (sh->slot[i].rc)
			return bench_fail(sh->slot[i].rc, "%s worker %u: %s", name, i,
					  sh->slot[i].msg);
		if (WIFSIGNALED(status[i]))
			return bench_fail(KEEL_E_OS, "%s worker %u: killed by signal %d", name, i,
					  WTERMSIG(status[i]));
		if (!WIFEXITED(status[i]) || WEXITSTATUS(status[i]) != 0)
			return bench_fail(KEEL_E_OS, "%s worker %u: exit status %d", name, i,
					  WEXITSTATUS(status[i]));
	}
	return 0;
}

int bench_run(const struct bench_worker *w, void *ctx, unsigned n, double duration_s,
	      struct bench_rate *out)
{
	struct runner_shared *sh;
	pid_t pids[BENCH_WORKERS_MAX] = { 0 };
	int reaped[BENCH_WORKERS_MAX] = { 0 }, status[BENCH_WORKERS_MAX] = { 0 };
	int ready[2] = { -1, -1 }, go[2] = { -1, -1 };
	pid_t self = getpid();
	uint64_t t0, deadline, end = 0, ops = 0;
	static uint64_t lat[LAT_BUCKETS];
	unsigned forked = 0;
	int rc = 0;

	if (n == 0 || n > BENCH_WORKERS_MAX || !(duration_s > 0))
		return bench_fail(KEEL_E_INVAL, "%s: %u workers for %.3f s (1..%u workers, > 0 s)",
				  w->name, n, duration_s, BENCH_WORKERS_MAX);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return bench_fail(KEEL_E_OS, "%s: mmap of the shared page: %s", w->name,
				  strerror(errno));
	if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(go, O_CLOEXEC) != 0) {
		rc = bench_fail(KEEL_E_OS, "%s: pipe: %s", w->name, strerror(errno));
		goto fail;
	}
	fflush(stdout);
	fflush(stderr);
	for (; forked < n; forked++) {
		pid_t pid = fork();

		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			worker_main(w, ctx, forked, n, sh, ready[1], go[0], self);
		}
		if (pid < 0) {
			rc = bench_fail(KEEL_E_OS, "%s: fork of worker %u: %s", w->name, forked,
					strerror(errno));
			goto fail;
		}
		pids[forked] = pid;
	}
	close(ready[1]);
	close(go[0]);
	ready[1] = go[0] = -1;
	rc = wait_ready(ready[0], sh, pids, reaped, status, n, w->name);
	if (rc)
		goto fail;
	for (unsigned i = 0; i < n; i++)
		if (sh->slot[i].rc) {
			rc = bench_fail(sh->slot[i].rc, "%s worker %u setup: %s", w->name, i,
					sh->slot[i].msg);
			goto fail;
		}
	t0 = bench_now_ns();
	deadline = t0 + (uint64_t)(duration_s * 1e9);
	sh->t0_ns = t0;
	sh->deadline_ns = deadline;
	close(go[1]);             /* the start barrier: see the essay above */
	go[1] = -1;
	rc = wait_done(pids, reaped, status, n, deadline,
		       deadline + RUNNER_GRACE_S_MAX * 1000000000ull, w->name);
	if (!rc)
		rc = worker_verdict(sh, status, n, w->name);
	if (rc)
		goto fail;
	memset(out, 0, sizeof(*out));
	memset(lat, 0, sizeof(lat));
	for (unsigned i = 0; i < n; i++) {
		ops += sh->slot[i].ops;
		if (sh->slot[i].end_ns > end)
			end = sh->slot[i].end_ns;
		for (unsigned b = 0; b < LAT_BUCKETS; b++) {
			lat[b] += sh->slot[i].lat[b];
			out->lat_count += sh->slot[i].lat[b];
		}
	}
	if (out->lat_count) {
		out->lat_p50_us = lat_quantile(lat, out->lat_count, 0.50) / 1e3;
		out->lat_p99_us = lat_quantile(lat, out->lat_count, 0.99) / 1e3;
	}
	if (end <= t0) {
		rc = bench_fail(KEEL_E_STATE, "%s: workers report no elapsed time", w->name);
		goto fail;
	}
	out->ops = ops;
	out->secs = (double)(end - t0) / 1e9;
	out->rate = (double)ops / out->secs;
fail:
	if (rc && forked) {
		sh->abort = 1;
		if (go[1] >= 0) {
			close(go[1]);
			go[1] = -1;
		}
		kill_all(pids, reaped, forked);
		reap_all(pids, reaped, status, forked);
	}
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (go[i] >= 0)
			close(go[i]);
	}
	munmap(sh, sizeof(*sh));
	return rc;
}

static const char *run_tag(unsigned r, unsigned runs, char buf[32])
{
	buf[0] = 0;
	if (runs > 1)
		snprintf(buf, 32, "run %u/%u: ", r + 1, runs);
	return buf;
}

static const char *lat_tag(const struct bench_rate *rate, char buf[64])
{
	buf[0] = 0;
	if (rate->lat_count)
		snprintf(buf, 64, ", latency p50 %.0f us, p99 %.0f us", rate->lat_p50_us,
			 rate->lat_p99_us);
	return buf;
}

/* The samples of one phase, gathered over the rounds. */
struct phase_samples {
	double rate[BENCH_RUNS_MAX], p50[BENCH_RUNS_MAX], p99[BENCH_RUNS_MAX];
	unsigned lat_runs;
};

static int phase_run(const struct bench_phase *ph, unsigned r, unsigned runs,
		     struct phase_samples *s)
{
	struct bench_rate rate;
	char a[32], b[32], c[64];
	int rc = bench_run(ph->w, ph->ctx, ph->nworkers, bench_cfg.duration_s, &rate);

	if (rc)
		return rc;
	s->rate[r] = rate.rate;
	if (rate.lat_count) {
		s->p50[s->lat_runs] = rate.lat_p50_us;
		s->p99[s->lat_runs++] = rate.lat_p99_us;
	}
	bench_progress("  %s: %s%s ops/s (%llu ops in %.3f s)%s", ph->label, run_tag(r, runs, b),
		       bench_fmt_si(rate.rate, a), (unsigned long long)rate.ops, rate.secs,
		       lat_tag(&rate, c));
	return 0;
}

static int phase_figures(const struct bench_phase *ph, unsigned runs, const struct phase_samples *s)
{
	char a[32];
	int rc = bench_fig_add(ph->key, ph->label, "ops/s", s->rate, runs);

	if (!rc && s->lat_runs == runs) {
		char k[64], l[96];

		snprintf(k, sizeof(k), "%s.p50_us", ph->key);
		snprintf(l, sizeof(l), "%s: latency p50", ph->label);
		rc = bench_fig_add(k, l, "us", s->p50, runs);
		snprintf(k, sizeof(k), "%s.p99_us", ph->key);
		snprintf(l, sizeof(l), "%s: latency p99", ph->label);
		rc = rc ? rc : bench_fig_add(k, l, "us", s->p99, runs);
	}
	if (rc)
		return rc;
	if (runs > 1)
		bench_progress("  %s: median %s ops/s", ph->label,
			       bench_fmt_si(bench_fig_get(ph->key)->value, a));
	return 0;
}

int bench_measure_alternating(const struct bench_phase *ph, unsigned nph)
{
	unsigned runs = bench_cfg.runs;
	struct phase_samples *s = calloc(nph, sizeof(*s));
	int rc = s ? 0 : KEEL_E_NOMEM;

	if (!s)
		return bench_fail(rc, "out of memory for %u phases' samples", nph);
	for (unsigned r = 0; r < runs && !rc; r++)
		for (unsigned i = 0; i < nph && !rc; i++)
			rc = phase_run(&ph[i], r, runs, &s[i]);
	for (unsigned i = 0; i < nph && !rc; i++)
		rc = phase_figures(&ph[i], runs, &s[i]);
	free(s);
	return rc;
}

int bench_measure(const char *key, const char *label, const struct bench_worker *w,
		  void *ctx, unsigned n)
{
	struct bench_phase ph = { key, label, w, ctx, n };

	return bench_measure_alternating(&ph, 1);
}

/* ---- cache-line handoffs ----------------------------------------------------------------- */

struct handoff_page {
	volatile uint64_t turn;      /* worker turn % 2 increments it next */
	uint8_t pad[56];
	volatile uint32_t stop;
};

static void handoff_child(struct handoff_page *pg, uint64_t me)
{
	while (!__atomic_load_n(&pg->stop, __ATOMIC_RELAXED)) {
		uint64_t t = __atomic_load_n(&pg->turn, __ATOMIC_ACQUIRE);
		if (t % 2 == me)
			__atomic_store_n(&pg->turn, t + 1, __ATOMIC_RELEASE);
		else
			__builtin_ia32_pause();
	}
	_exit(0);
}

int bench_handoffs(double secs, double *per_s)
{
	struct handoff_page *pg = mmap(NULL, sizeof(*pg), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				       -1, 0);
	pid_t pid[2] = { -1, -1 };
	int rc = 0;

	*per_s = 0;
	if (pg == MAP_FAILED)
		return bench_fail(KEEL_E_OS, "handoffs: mmap: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		pid[i] = fork();
		if (pid[i] == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			handoff_child(pg, (uint64_t)i);
		}
		if (pid[i] < 0) {
			rc = bench_fail(KEEL_E_OS, "handoffs: fork: %s", strerror(errno));
			break;
		}
	}
	if (rc == 0) {
		struct timespec ts = { (time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9) };
		uint64_t t0 = bench_now_ns(), n0 = __atomic_load_n(&pg->turn, __ATOMIC_ACQUIRE);
		nanosleep(&ts, NULL);
		uint64_t n1 = __atomic_load_n(&pg->turn, __ATOMIC_ACQUIRE), t1 = bench_now_ns();
		*per_s = (double)(n1 - n0) / ((double)(t1 - t0) / 1e9);
	}
	__atomic_store_n(&pg->stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 2; i++)
		if (pid[i] > 0)
			waitpid(pid[i], NULL, 0);
	munmap(pg, sizeof(*pg));
	return rc;
}
