/*
 * flow_demo.c - keel-demo: a multi-process flow engine on one durable Keel
 * store, taken through a worker's death and a power loss, with a check that
 * no acknowledged step was lost or done twice.
 *
 * The engine
 * ----------
 * A flow is a sequence of S steps.  N worker processes share one durable
 * store and advance the flows: each worker claims due timers
 * (keel_timer_claim, blocking on the store's futex when nothing is due, up
 * to CLAIM_BATCH_MAX at a time) and turns each claim into one step.  A step
 * is one transaction, committed with SYNC durability (group-committed across
 * the workers):
 *
 *   keel_txn_get     state                 the flow's progress, version v
 *   keel_txn_put_if  s/NNNNN, ABSENT       the step's effect, only if new
 *   keel_txn_put_if  state, v              progress + 1, only if unchanged
 *   keel_txn_timer_ack   the claim         the timer that asked for the step
 *   keel_txn_timer_set   next              the next step (none after the last)
 *
 * All of it commits or none of it, so the state change, the timer ack and
 * the next timer can never part.  After a successful commit the worker
 * appends one line to its own log file (O_APPEND, one write()): that log is
 * what the worker was told was committed.
 *
 * What lives where
 * ----------------
 *   WORK/store                the Keel store (journal, checkpoints); arena in /dev/shm
 *     partition flow.NNNNN    one per flow (NNNNN: flow index from 0)
 *       key "state"           "step=K/S": K steps done of S.  Written only by
 *                             a step transaction, conditional on its version.
 *       key "s/NNNNN"         "pid=P worker=W delivery=D": the effect of step
 *                             NNNNN (from 1), written once (put_if ABSENT) by
 *                             worker W, process P, on delivery D of its timer.
 *       timer "next"          payload "step=N": the step to do next, N = K+1;
 *                             absent once K == S.  Set by the setup, then by
 *                             each step; acked by the step that consumes it.
 *   WORK/acked/worker-WW.log  "flow.NNNNN STEP PID LSN\n" per acknowledged
 *                             step, appended only by worker slot WW.  (The
 *                             power loss is simulated, so the page cache of
 *                             these files survives it; a real client would
 *                             fsync its log.)
 *   a MAP_SHARED anonymous page, the "board": per worker slot, counters the
 *   worker writes and the parent reads for progress and checks.
 *
 * The run
 * -------
 * The parent process is the operator, not part of the engine.  It creates
 * the flows, starts the workers and watches progress through a read-only
 * handle (a read-only handle flushes nothing, so the power loss stays a
 * power loss).  At 30% of the steps it SIGKILLs one worker at a moment it
 * holds claims, and measures how fast the others claim the orphaned timers
 * (the lease is 30 s, so only the store seeing the death explains a fast
 * pickup).  At 65% it cuts the power: every worker is SIGKILLed, the arena
 * is removed from /dev/shm without a flush (commits not yet durable are
 * gone), and the store is reopened, which rebuilds it from checkpoint and
 * journal.  It checks the recovered store against the logs, restarts the
 * workers and lets them finish every flow.
 *
 * The checks
 * ----------
 * Each can fail, and --fault makes two of them fail on purpose:
 *   - every acknowledged step (each log line) is in the store, written by the
 *     process that logged it, at the LSN it was told: at the power loss and
 *     at the end;  --fault async commits with ASYNC durability but still
 *     logs each step as acknowledged, and the power loss loses some;
 *   - no step was delivered again after it committed: the put_if ABSENT on
 *     the step key, and the state's step number, catch a redelivered step;
 *     --fault split-ack commits the effect and the timer ack in two
 *     transactions (the bug the one-transaction step prevents), and a kill
 *     between them makes the step come back;
 *   - no step was acknowledged twice (no duplicate across all logs);
 *   - every flow's state, step records and timer agree, after the power loss
 *     and at the end, when every flow has all S steps and no timer is left;
 *   - the killed worker's claims were picked up by the others within
 *     PICKUP_MS_MAX;
 *   - the arena audit (keel_check) is sound.
 * The program exits 1 when a check fails, 0 when all pass.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keel.h"

/* ---- limits and tunables ----------------------------------------------------- */
#define WORKERS_MAX 32u
#define SLOTS_MAX (2u * WORKERS_MAX)         /* the first crew, then the restarted one */
#define FLOWS_MAX 10000u
#define STEPS_MAX 10000u
#define FLOW_STEPS_TOTAL_MAX 2000000u        /* flows x steps: log bookkeeping is per step */
#define CLAIM_BATCH_MAX 4u                   /* claims a worker holds at once */
#define LEASE_MS 30000u                      /* long: a fast pickup must come from death detection */
#define CLAIM_WAIT_MS 100                    /* a worker looks at the stop flag this often */
#define PICKUP_MS_MAX 1000.0                 /* check: orphaned claims picked up within this */
#define PICKUP_WAIT_MS 5000.0                /* stop watching orphaned claims after this */
#define KILL_SEARCH_MS 300.0                 /* look this long for a worker caught mid-step */
#define KILL_HOLD_WAIT_MS 3000.0             /* wait this long for the victim to hold a claim */
#define STALL_MS_MAX 30000.0                 /* no progress for this long: the run fails */
#define STOP_WAIT_MS 15000.0                 /* workers must exit this soon after stop */
#define SPLIT_GAP_US 2000                    /* --fault split-ack: work between its commits */
#define KILL_AT_PERMILLE 300u                /* kill a worker at 30% of the steps */
#define POWER_AT_PERMILLE 650u               /* cut the power at 65% */
#define SNAP_MAX 16u                         /* victim claims remembered */
#define LOG_LINE_MAX 96u
#define POLL_MS 5                            /* the operator looks at progress this often */
#define SETUP_TXN_FLOWS 16u                  /* flows created per transaction */
#define CHECKS_MAX 16u
#define DEFAULT_WORKERS 4u
#define DEFAULT_FLOWS 256u
#define DEFAULT_STEPS 100u
#define DEFAULT_DELAY_MS 4u
#define QUICK_WORKERS 3u
#define QUICK_FLOWS 40u
#define QUICK_STEPS 25u

_Static_assert(SETUP_TXN_FLOWS < KEEL_TXN_PARTITIONS_MAX, "a setup transaction's partitions");
_Static_assert(CLAIM_BATCH_MAX <= SNAP_MAX, "a victim's claims fit the snapshot");
_Static_assert(FLOWS_MAX <= KEEL_PARTITIONS_MAX, "one partition per flow");
_Static_assert(FLOWS_MAX <= 99999u && STEPS_MAX <= 99999u, "five-digit names");
_Static_assert(KILL_AT_PERMILLE < POWER_AT_PERMILLE && POWER_AT_PERMILLE < 1000u, "phase order");

static const char *const KEY_STATE = "state";
static const char *const TIMER_NEXT = "next";

enum fault { FAULT_NONE = 0, FAULT_SPLIT_ACK = 1, FAULT_ASYNC = 2 };

/* ---- the board: shared between the parent and the workers ------------------
 * Each slot is written by its worker only (relaxed atomic stores: the parent
 * reads figures for progress and the final sums after waitpid, which orders
 * everything), except `killed`, written by the parent before it kills.
 * `stop` is written by the parent: W1 (release) pairs with A1 (acquire) in
 * worker_main, so a worker that sees it also sees the board as it was. */
enum slot_state { SLOT_UNUSED = 0, SLOT_RUNNING, SLOT_DONE, SLOT_KILLED, SLOT_FAILED };

struct slot {
	uint64_t acked;          /* steps committed and logged */
	uint64_t lost_claims;    /* commits refused with KEEL_E_STATE: the claim was lost */
	uint64_t redelivered;    /* a step delivered again after it committed */
	uint64_t skipped;        /* a timer ahead of the flow's state */
	uint64_t conflicts;      /* the state changed under a held claim */
	uint64_t commit_us_max;  /* the slowest step commit */
	int32_t pid;
	int32_t state;           /* enum slot_state */
};

struct board {
	struct slot s[SLOTS_MAX];
	int stop;
};

/* ---- the run ------------------------------------------------------------------ */
struct cfg {
	unsigned workers, flows, steps, delay_ms;
	const char *dir;
	int keep, json, quick;
	int fault;               /* enum fault */
	uint64_t seed;
};

struct check {
	char name[96];
	int status;              /* 1 passed, 0 failed, -1 not applicable */
	char detail[320];
};

struct snap {                /* a claim the victim held when it was killed */
	char part[KEEL_PARTITION_NAME_MAX + 1];
	unsigned step;
	uint32_t deliveries;
	int state;               /* 0 watching, 1 picked up, 2 finished by the victim itself */
	double ms;               /* when it was picked up, after the kill */
	pid_t by;
};

struct demo {
	struct cfg c;
	char work[PATH_MAX], store[PATH_MAX + 16], logs[PATH_MAX + 16];
	int made_work;           /* we created WORK, so we may remove it */
	keel_options_t opt;
	keel_t *h;               /* read-only until the power loss, then read-write */
	struct board *b;
	unsigned slots;          /* slots used so far */
	FILE *out;               /* progress: stdout, or stderr with --json */
	double t0;               /* program start: progress times */
	double run_t0;           /* workers started: steps per second */
	uint64_t total;          /* flows x steps */
	struct check checks[CHECKS_MAX];
	unsigned nchecks;
	/* Figures for the report. */
	unsigned victim;
	pid_t victim_pid;
	struct snap snap[SNAP_MAX];
	unsigned nsnap, orphaned, picked;
	double pickup_ms_max, kill_ms, watch_gap_ms;
	uint64_t redelivered_delta;
	int killed_mid_step;
	uint64_t pl_durable_lsn, pl_not_durable, pl_acked, pl_unacked;
	double recovery_ms, run_s, commit_ms_max;
	unsigned workers_killed_at_pl;
	uint64_t flows_done, steps_done, acked_total, lost_claims;
	int aborted;             /* a worker failed or the run stalled */
	char abort_why[256];
};

static volatile sig_atomic_t interrupted;

/* ---- small helpers ---------------------------------------------------------------- */
static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double elapsed_s(const struct demo *d)
{
	return (now_ms() - d->t0) / 1e3;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);   /* splitmix64 */

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void say(struct demo *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct demo *d, const char *fmt, ...)
{
	va_list ap;

	fprintf(d->out, "  [%5.1f s] ", elapsed_s(d));
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	fflush(d->out);
}

static int store_err(const char *what, int rc)
{
	const char *m = keel_errmsg();

	fprintf(stderr, "keel-demo: %s: %s%s%s\n", what, keel_strerror(rc), m && m[0] ? "\n  " : "",
		m ? m : "");
	return rc;
}

static void add_check(struct demo *d, const char *name, int status, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void add_check(struct demo *d, const char *name, int status, const char *fmt, ...)
{
	va_list ap;
	struct check *k;

	if (d->nchecks >= CHECKS_MAX)
		return;
	k = &d->checks[d->nchecks++];
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->status = status;
	va_start(ap, fmt);
	vsnprintf(k->detail, sizeof(k->detail), fmt, ap);
	va_end(ap);
	fprintf(d->out, "             check %s: %s (%s)\n", status > 0 ? "passed" : status == 0 ? "FAILED" : "n/a",
		k->name, k->detail);
	fflush(d->out);
}

static void flow_name(unsigned f, char *buf, size_t cap)
{
	snprintf(buf, cap, "flow.%05u", f);
}

/* "flow.NNNNN" -> f; -1 if it is not one of ours. */
static int parse_flow(const char *part, unsigned flows, unsigned *f)
{
	char *end;
	unsigned long v;

	if (strncmp(part, "flow.", 5) != 0 || strlen(part) != 10)
		return -1;
	errno = 0;
	v = strtoul(part + 5, &end, 10);
	if (errno || *end || v >= flows)
		return -1;
	*f = (unsigned)v;
	return 0;
}

static size_t step_key(unsigned n, char *buf, size_t cap)
{
	return (size_t)snprintf(buf, cap, "s/%05u", n);
}

/* "step=N" (a timer payload) -> N. */
static int parse_payload(const void *p, size_t len, unsigned *n)
{
	char buf[32];
	unsigned v;
	int used = 0;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (sscanf(buf, "step=%u%n", &v, &used) != 1 || (size_t)used != len)
		return -1;
	*n = v;
	return 0;
}

/* "step=K/S" (a flow's state) -> K, S. */
static int parse_state(const char *p, size_t len, unsigned *k, unsigned *s)
{
	char buf[32];
	int used = 0;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (sscanf(buf, "step=%u/%u%n", k, s, &used) != 2 || (size_t)used != len || *k > *s)
		return -1;
	return 0;
}

/* "pid=P worker=W delivery=D" (a step's effect) -> P. */
static int parse_effect(const char *p, size_t len, long *pid)
{
	char buf[96];
	unsigned w, dl;
	int used = 0;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, p, len);
	buf[len] = 0;
	if (sscanf(buf, "pid=%ld worker=%u delivery=%u%n", pid, &w, &dl, &used) != 3 ||
	    (size_t)used != len)
		return -1;
	return 0;
}

/* The effect of step n of partition part: 0 and *pid and *lsn, NOTFOUND, or an error. */
static int read_effect(keel_t *h, const char *part, unsigned n, long *pid, uint64_t *lsn)
{
	char key[16], val[96];
	size_t klen = step_key(n, key, sizeof(key)), vlen;
	keel_meta_t m;
	int rc = keel_get(h, part, key, klen, val, sizeof(val), &vlen, &m);

	if (rc < 0)
		return rc;
	if (vlen >= sizeof(val) || parse_effect(val, vlen, pid) < 0)
		return KEEL_E_CORRUPT;
	if (lsn)
		*lsn = m.lsn;
	return 0;
}

/* ---- the worker --------------------------------------------------------------- */
struct worker {
	struct demo *d;
	unsigned slot;
	keel_t *h;
	int logfd;
	uint64_t rng;
	struct slot *me;
};

static void worker_die(struct worker *w, const char *what, int rc) __attribute__((noreturn));
static void worker_die(struct worker *w, const char *what, int rc)
{
	fprintf(stderr, "keel-demo: worker %u (pid %d): %s: %s\n  %s\n", w->slot, (int)getpid(), what,
		keel_strerror(rc), keel_errmsg());
	__atomic_store_n(&w->me->state, SLOT_FAILED, __ATOMIC_RELAXED);
	_exit(3);
}

static void bump(uint64_t *c)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static void log_ack(struct worker *w, const char *part, unsigned n, uint64_t lsn)
{
	char line[LOG_LINE_MAX];
	int len = snprintf(line, sizeof(line), "%s %u %d %" PRIu64 "\n", part, n, (int)getpid(), lsn);

	if (len <= 0 || (size_t)len >= sizeof(line) || write(w->logfd, line, (size_t)len) != len) {
		fprintf(stderr, "keel-demo: worker %u: cannot append to its log: %s\n", w->slot,
			strerror(errno));
		__atomic_store_n(&w->me->state, SLOT_FAILED, __ATOMIC_RELAXED);
		_exit(3);
	}
	bump(&w->me->acked);
}

static uint64_t next_due(struct worker *w)
{
	unsigned delay = w->d->c.delay_ms;

	return keel_now_ms() + (delay ? rng_next(&w->rng) % (2u * delay + 1u) : 0);
}

/* Schedule step n of flow `part` (none when n > steps) and ack claim c, in t. */
static int add_ack_and_next(struct worker *w, keel_txn_t *t, const keel_claim_t *c, unsigned n)
{
	char pay[32];
	int plen, rc;

	if ((rc = keel_txn_timer_ack(t, c)) < 0)
		return rc;
	if (n > w->d->c.steps)
		return 0;
	plen = snprintf(pay, sizeof(pay), "step=%u", n);
	return keel_txn_timer_set(t, c->part, TIMER_NEXT, strlen(TIMER_NEXT), next_due(w), pay,
				  (size_t)plen);
}

/* A claim that does not match the flow's state: count it, and put the flow
 * back on its feet (ack the stray timer, schedule the step the state asks
 * for) so that the run ends and the checks can say what happened. */
static void heal(struct worker *w, const keel_claim_t *c, unsigned k)
{
	keel_txn_t *t;
	int rc = keel_txn_begin(w->h, KEEL_DURABILITY_SYNC, &t);

	if (rc < 0)
		worker_die(w, "begin a repair transaction", rc);
	if ((rc = add_ack_and_next(w, t, c, k + 1)) < 0) {
		keel_txn_abort(t);
		worker_die(w, "build a repair transaction", rc);
	}
	rc = keel_txn_commit(t, NULL);
	if (rc == KEEL_E_STATE)
		bump(&w->me->lost_claims);
	else if (rc < 0)
		worker_die(w, "commit a repair transaction", rc);
}

/* One step: claim c (payload "step=N") of flow c->part. */
static void flow_step(struct worker *w, const keel_claim_t *c, const char *pay)
{
	const struct cfg *cfg = &w->d->c;
	int dur = cfg->fault == FAULT_ASYNC ? KEEL_DURABILITY_ASYNC : KEEL_DURABILITY_SYNC;
	char st[32], key[16], eff[96];
	unsigned f, n, k, s;
	size_t stlen, klen;
	keel_meta_t m;
	keel_txn_t *t;
	uint64_t lsn = 0;
	int rc, elen;

	if (parse_flow(c->part, cfg->flows, &f) < 0 || c->plen >= 32 || parse_payload(pay, c->plen, &n) < 0 ||
	    n < 1 || n > cfg->steps) {
		fprintf(stderr, "keel-demo: worker %u: a timer that is not ours: %s, payload of %zu bytes\n",
			w->slot, c->part, c->plen);
		worker_die(w, "claim", KEEL_E_CORRUPT);
	}
	if ((rc = keel_txn_begin(w->h, dur, &t)) < 0)
		worker_die(w, "begin", rc);
	rc = keel_txn_get(t, c->part, KEY_STATE, strlen(KEY_STATE), st, sizeof(st), &stlen, &m);
	if (rc < 0 || stlen >= sizeof(st) || parse_state(st, stlen, &k, &s) < 0 || s != cfg->steps) {
		keel_txn_abort(t);
		worker_die(w, "read the flow state", rc < 0 ? rc : KEEL_E_CORRUPT);
	}
	if (n != k + 1) {
		/* n <= k: this step committed already and came back. */
		keel_txn_abort(t);
		bump(n <= k ? &w->me->redelivered : &w->me->skipped);
		heal(w, c, k);
		return;
	}
	klen = step_key(n, key, sizeof(key));
	elen = snprintf(eff, sizeof(eff), "pid=%d worker=%u delivery=%u", (int)getpid(), w->slot,
			c->deliveries);
	snprintf(st, sizeof(st), "step=%u/%u", n, s);
	if ((rc = keel_txn_put_if(t, c->part, key, klen, eff, (size_t)elen, KEEL_VERSION_ABSENT)) < 0 ||
	    (rc = keel_txn_put_if(t, c->part, KEY_STATE, strlen(KEY_STATE), st, strlen(st), m.version)) < 0)
		goto fail_build;
	if (cfg->fault != FAULT_SPLIT_ACK && (rc = add_ack_and_next(w, t, c, n + 1)) < 0)
		goto fail_build;
	double t0 = now_ms();
	rc = keel_txn_commit(t, &lsn);
	uint64_t us = (uint64_t)((now_ms() - t0) * 1e3);
	if (us > w->me->commit_us_max)
		__atomic_store_n(&w->me->commit_us_max, us, __ATOMIC_RELAXED);
	if (rc == 0) {
		log_ack(w, c->part, n, lsn);
		if (cfg->fault == FAULT_SPLIT_ACK) {
			/* The bug on purpose: the ack in a second commit. */
			usleep(SPLIT_GAP_US);
			if ((rc = keel_txn_begin(w->h, dur, &t)) < 0)
				worker_die(w, "begin", rc);
			if ((rc = add_ack_and_next(w, t, c, n + 1)) < 0)
				goto fail_build;
			rc = keel_txn_commit(t, NULL);
			if (rc == KEEL_E_STATE)
				bump(&w->me->lost_claims);
			else if (rc < 0)
				worker_die(w, "commit the ack", rc);
		}
		return;
	}
	if (rc == KEEL_E_STATE) {
		bump(&w->me->lost_claims);   /* the claim was lost: nothing applied */
		return;
	}
	if (rc == KEEL_E_CONFLICT) {
		keel_conflict_t cf;

		keel_last_conflict(&cf);
		/* op 0, the step key, exists: the step committed before. */
		bump(cf.op_index == 0 ? &w->me->redelivered : &w->me->conflicts);
		if ((rc = keel_timer_release(w->h, c, 0)) < 0 && rc != KEEL_E_STATE)
			worker_die(w, "release", rc);
		return;
	}
	worker_die(w, "commit a step", rc);
fail_build:
	keel_txn_abort(t);
	worker_die(w, "build a step transaction", rc);
}

static void worker_main(struct demo *d, unsigned slot, pid_t parent) __attribute__((noreturn));
static void worker_main(struct demo *d, unsigned slot, pid_t parent)
{
	struct worker w = { .d = d, .slot = slot, .me = &d->b->s[slot] };
	char path[PATH_MAX + 64];
	keel_options_t o;
	int rc;

	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);   /* the operator gone: stop */
	if (getppid() != parent)
		_exit(3);
	w.rng = d->c.seed ^ (0x9e3779b97f4a7c15ull * (slot + 1));
	snprintf(path, sizeof(path), "%s/worker-%02u.log", d->logs, slot);
	w.logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (w.logfd < 0) {
		fprintf(stderr, "keel-demo: worker %u: cannot open %s: %s\n", slot, path, strerror(errno));
		_exit(3);
	}
	keel_options_init(&o);
	if ((rc = keel_open(d->store, &o, &w.h)) < 0)
		worker_die(&w, "open", rc);
	while (!__atomic_load_n(&d->b->stop, __ATOMIC_ACQUIRE)) {   /* A1: pairs with W1 */
		keel_claim_t c[CLAIM_BATCH_MAX];
		char pay[CLAIM_BATCH_MAX][32];
		unsigned got = 0;

		rc = keel_timer_claim(w.h, NULL, 0, LEASE_MS, CLAIM_WAIT_MS, &c[0], pay[0], sizeof(pay[0]));
		if (rc == KEEL_E_TIMEOUT)
			continue;
		if (rc < 0)
			worker_die(&w, "claim", rc);
		for (got = 1; got < CLAIM_BATCH_MAX; got++) {
			rc = keel_timer_claim(w.h, NULL, 0, LEASE_MS, 0, &c[got], pay[got], sizeof(pay[got]));
			if (rc == KEEL_E_TIMEOUT)
				break;
			if (rc < 0)
				worker_die(&w, "claim", rc);
		}
		for (unsigned i = 0; i < got; i++)
			flow_step(&w, &c[i], pay[i]);
	}
	if ((rc = keel_close(w.h)) < 0)
		worker_die(&w, "close", rc);
	close(w.logfd);
	__atomic_store_n(&w.me->state, SLOT_DONE, __ATOMIC_RELAXED);
	_exit(0);
}

/* ---- the operator: workers ------------------------------------------------------ */
static int spawn_worker(struct demo *d)
{
	unsigned slot = d->slots;
	pid_t parent = getpid(), p;

	if (slot >= SLOTS_MAX)
		return KEEL_E_LIMIT;
	fflush(NULL);   /* the child must not print the parent's buffers again */
	p = fork();
	if (p < 0) {
		fprintf(stderr, "keel-demo: fork: %s\n", strerror(errno));
		return KEEL_E_OS;
	}
	if (p == 0)
		worker_main(d, slot, parent);
	d->b->s[slot].pid = p;
	__atomic_store_n(&d->b->s[slot].state, SLOT_RUNNING, __ATOMIC_RELAXED);
	d->slots++;
	return 0;
}

static int slot_of(const struct demo *d, pid_t p)
{
	for (unsigned i = 0; i < d->slots; i++)
		if (d->b->s[i].pid == p)
			return (int)i;
	return -1;
}

/* Reap workers that exited.  One that exits without being told to, or
 * fails, aborts the run. */
static void reap(struct demo *d)
{
	int status;
	pid_t p;

	while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
		int s = slot_of(d, p);

		if (s < 0)
			continue;
		if (d->b->s[s].state == SLOT_KILLED)
			continue;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && d->b->stop)
			continue;
		d->b->s[s].state = SLOT_FAILED;
		d->aborted = 1;
		if (WIFSIGNALED(status))
			snprintf(d->abort_why, sizeof(d->abort_why), "worker %d (pid %d) died of signal %d",
				 s, (int)p, WTERMSIG(status));
		else
			snprintf(d->abort_why, sizeof(d->abort_why), "worker %d (pid %d) exited with status %d",
				 s, (int)p, WEXITSTATUS(status));
	}
}

static unsigned live_workers(const struct demo *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < d->slots; i++)
		n += d->b->s[i].state == SLOT_RUNNING;
	return n;
}

static uint64_t acked_sum(const struct demo *d)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < d->slots; i++)
		n += __atomic_load_n(&d->b->s[i].acked, __ATOMIC_RELAXED);
	return n;
}

/* SIGKILL one worker and wait until it is gone. */
static void kill_worker(struct demo *d, unsigned slot)
{
	pid_t p = d->b->s[slot].pid;

	d->b->s[slot].state = SLOT_KILLED;
	kill(p, SIGKILL);
	while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- the operator: progress --------------------------------------------------------- */
enum until { UNTIL_ACKED, UNTIL_DONE };

/* Run until `acked` steps are acknowledged (UNTIL_ACKED) or no timer is left
 * pending or claimed (UNTIL_DONE), printing progress each second.  0, or a
 * negative code when the run aborted (a worker failed, it stalled, ^C). */
static int run_until(struct demo *d, enum until u, uint64_t acked)
{
	double last_print = now_ms(), last_change = now_ms();
	uint64_t last_acked = acked_sum(d), print_acked = last_acked;

	for (;;) {
		uint64_t a;

		usleep(POLL_MS * 1000);
		reap(d);
		if (d->aborted)
			return KEEL_E_STATE;
		if (interrupted) {
			snprintf(d->abort_why, sizeof(d->abort_why), "interrupted");
			d->aborted = 1;
			return KEEL_E_STATE;
		}
		a = acked_sum(d);
		if (a != last_acked) {
			last_acked = a;
			last_change = now_ms();
		} else if (now_ms() - last_change > STALL_MS_MAX) {
			keel_timer_stat_t ts = { 0 };

			keel_timer_stat(d->h, &ts);
			snprintf(d->abort_why, sizeof(d->abort_why),
				 "no step acknowledged for %.0f s (timers: %" PRIu64 " pending, %" PRIu64
				 " claimed, %" PRIu64 " dead)", STALL_MS_MAX / 1e3, ts.pending, ts.claimed, ts.dead);
			d->aborted = 1;
			return KEEL_E_TIMEOUT;
		}
		if (now_ms() - last_print >= 1000.0) {
			double dt = (now_ms() - last_print) / 1e3;

			say(d, "%7" PRIu64 " / %" PRIu64 " steps acknowledged, %6.0f steps/s, %u workers", a,
			    d->total, (double)(a - print_acked) / dt, live_workers(d));
			last_print = now_ms();
			print_acked = a;
		}
		if (u == UNTIL_ACKED && a >= acked)
			return 0;
		if (u == UNTIL_DONE) {
			keel_timer_stat_t ts;
			int rc = keel_timer_stat(d->h, &ts);

			if (rc < 0)
				return store_err("timer statistics", rc);
			if (ts.pending + ts.claimed == 0)
				return 0;
		}
	}
}

/* ---- the operator: setup ------------------------------------------------------------ */
static int setup_flows(struct demo *d)
{
	keel_t *h;
	keel_options_t o;
	int rc;

	keel_options_init(&o);   /* a new durable store: SYNC by default */
	if ((rc = keel_open(d->store, &o, &h)) < 0)
		return store_err("create the store", rc);
	for (unsigned f0 = 0; f0 < d->c.flows; f0 += SETUP_TXN_FLOWS) {
		keel_txn_t *t;

		if ((rc = keel_txn_begin(h, KEEL_DURABILITY_SYNC, &t)) < 0)
			goto fail;
		for (unsigned f = f0; f < d->c.flows && f < f0 + SETUP_TXN_FLOWS; f++) {
			char part[32], st[32];
			int n = snprintf(st, sizeof(st), "step=0/%u", d->c.steps);

			flow_name(f, part, sizeof(part));
			if ((rc = keel_txn_put_if(t, part, KEY_STATE, strlen(KEY_STATE), st, (size_t)n,
						  KEEL_VERSION_ABSENT)) < 0 ||
			    (rc = keel_txn_timer_set(t, part, TIMER_NEXT, strlen(TIMER_NEXT), keel_now_ms(),
						     "step=1", 6)) < 0) {
				keel_txn_abort(t);
				goto fail;
			}
		}
		if ((rc = keel_txn_commit(t, NULL)) < 0)
			goto fail;
	}
	if ((rc = keel_close(h)) < 0)
		return store_err("close the store after setup", rc);
	return 0;
fail:
	store_err("create the flows", rc);
	keel_close(h);
	return rc;
}

static int open_monitor(struct demo *d)
{
	keel_options_t o;
	int rc;

	keel_options_init(&o);
	o.flags = KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY;
	if ((rc = keel_open(d->store, &o, &d->h)) < 0)
		return store_err("open the store read-only to watch it", rc);
	return 0;
}

/* ---- the operator: the worker's death ------------------------------------------------ */
struct held {
	struct demo *d;
	pid_t pid;
	struct snap *s;
	unsigned n;
};

static int held_cb(void *ctx, const keel_timer_info_t *t)
{
	struct held *hc = ctx;
	unsigned n;

	if (t->holder != hc->pid || hc->n >= SNAP_MAX || parse_payload(t->payload, t->plen, &n) < 0)
		return 0;
	snprintf(hc->s[hc->n].part, sizeof(hc->s[hc->n].part), "%s", t->part);
	hc->s[hc->n].step = n;
	hc->s[hc->n].deliveries = t->deliveries;
	hc->s[hc->n].state = 0;
	hc->n++;
	return 0;
}

/* Resolve one orphaned claim: picked up by another process, finished by the
 * victim before it died, or still waiting. */
static void watch_snap(struct demo *d, struct snap *s, double ms)
{
	keel_timer_info_t ti;
	char pay[32];
	unsigned n;
	long pid;
	int rc = keel_timer_get(d->h, s->part, TIMER_NEXT, strlen(TIMER_NEXT), &ti, pay, sizeof(pay));

	if (rc == 0 && parse_payload(pay, ti.plen < sizeof(pay) ? ti.plen : 0, &n) == 0 && n == s->step) {
		if (ti.state == KEEL_TIMER_CLAIMED && ti.holder != d->victim_pid) {
			s->state = 1;
			s->ms = ms;
			s->by = ti.holder;
		}
		return;
	}
	/* The timer moved on: step s->step committed.  By whom? */
	if (read_effect(d->h, s->part, s->step, &pid, NULL) < 0)
		return;
	s->state = pid == d->victim_pid ? 2 : 1;
	s->ms = ms;
	s->by = (pid_t)pid;
}

static int kill_phase(struct demo *d)
{
	struct held hc = { .d = d, .s = d->snap };
	keel_timer_stat_t ts0, ts1;
	double start = now_ms(), tk;
	uint64_t r = d->c.seed;
	int rc;

	/* Do not let the search eat the run: kill by halfway to the power loss
	 * if the victim holds a claim then, and by the power loss whatever. */
	uint64_t late = d->total * (KILL_AT_PERMILLE + POWER_AT_PERMILLE) / 2000;
	uint64_t latest = d->total * POWER_AT_PERMILLE / 1000;

	d->victim = (unsigned)(rng_next(&r) % d->c.workers);
	d->victim_pid = hc.pid = d->b->s[d->victim].pid;
	/* Look for the worst moment: a claim whose step is already visible
	 * (possible only if the effect and the ack can part); else any moment
	 * the victim holds claims. */
	for (;;) {
		double waited = now_ms() - start;

		hc.n = 0;
		if ((rc = keel_timers(d->h, NULL, KEEL_TIMER_CLAIMED, held_cb, &hc)) < 0)
			return store_err("list the claimed timers", rc);
		for (unsigned i = 0; i < hc.n && !d->killed_mid_step; i++) {
			keel_timer_info_t ti;
			char pay[32];
			unsigned n;
			long pid;

			/* Effect first, then the timer: a step that committed
			 * in between shows its effect and no claim. */
			if (read_effect(d->h, hc.s[i].part, hc.s[i].step, &pid, NULL) == 0 &&
			    keel_timer_get(d->h, hc.s[i].part, TIMER_NEXT, strlen(TIMER_NEXT), &ti, pay,
					   sizeof(pay)) == 0 &&
			    ti.state == KEEL_TIMER_CLAIMED && ti.holder == hc.pid &&
			    parse_payload(pay, ti.plen < sizeof(pay) ? ti.plen : 0, &n) == 0 && n == hc.s[i].step)
				d->killed_mid_step = 1;
		}
		if (d->killed_mid_step || (hc.n > 0 && (waited >= KILL_SEARCH_MS || acked_sum(d) >= late)) ||
		    waited >= KILL_HOLD_WAIT_MS || acked_sum(d) >= latest)
			break;
		usleep(200);
	}
	d->nsnap = hc.n;
	keel_timer_stat(d->h, &ts0);
	tk = now_ms();
	kill_worker(d, d->victim);
	d->kill_ms = now_ms() - tk;
	say(d, "SIGKILL worker %u (pid %d) while it held %u claim%s%s (kill and reap: %.2f ms)", d->victim, (int)d->victim_pid,
	    d->nsnap, d->nsnap == 1 ? "" : "s",
	    d->killed_mid_step ? ", one of them with its effect already visible" : "", d->kill_ms);
	for (unsigned i = 0; i < d->nsnap; i++)
		fprintf(d->out, "             claim: %s step %u (delivery %u)\n", d->snap[i].part, d->snap[i].step,
			d->snap[i].deliveries);
	/* Watch the orphaned claims until every one is resolved. */
	for (double prev = 0;;) {
		double ms = now_ms() - tk;
		unsigned open = 0;

		if (ms - prev > d->watch_gap_ms)
			d->watch_gap_ms = ms - prev;   /* the resolution of the pickup times */
		prev = ms;

		for (unsigned i = 0; i < d->nsnap; i++)
			if (d->snap[i].state == 0)
				watch_snap(d, &d->snap[i], ms);
		for (unsigned i = 0; i < d->nsnap; i++)
			open += d->snap[i].state == 0;
		if (open == 0 || ms > PICKUP_WAIT_MS)
			break;
		usleep(100);
	}
	fprintf(d->out, "             (watched every %.2f ms at worst)\n", d->watch_gap_ms);
	keel_timer_stat(d->h, &ts1);
	d->redelivered_delta = ts1.redelivered - ts0.redelivered;
	for (unsigned i = 0; i < d->nsnap; i++) {
		struct snap *s = &d->snap[i];

		if (s->state == 2) {
			fprintf(d->out, "             %s step %u: finished by the victim just before it died\n",
				s->part, s->step);
			continue;
		}
		d->orphaned++;
		if (s->state == 1) {
			d->picked++;
			if (s->ms > d->pickup_ms_max)
				d->pickup_ms_max = s->ms;
			fprintf(d->out, "             %s step %u: picked up by pid %d %.2f ms after the kill\n",
				s->part, s->step, (int)s->by, s->ms);
		} else {
			fprintf(d->out, "             %s step %u: NOT picked up within %.0f ms\n", s->part, s->step,
				PICKUP_WAIT_MS);
		}
	}
	say(d, "the store saw the death: %u orphaned claim%s re-armed (redelivered +%" PRIu64
	    "), %u picked up by the %u other workers (lease %u ms)", d->orphaned, d->orphaned == 1 ? "" : "s",
	    d->redelivered_delta, d->picked, live_workers(d), LEASE_MS);
	if (d->orphaned == 0)
		add_check(d, "the killed worker's claims were picked up by the others", -1,
			  "it held no claim that was still open when it died");
	else
		add_check(d, "the killed worker's claims were picked up by the others", d->picked == d->orphaned && d->pickup_ms_max <= PICKUP_MS_MAX,
			  "%u of %u within %.2f ms (limit %.0f ms; the lease is %u ms)", d->picked, d->orphaned,
			  d->pickup_ms_max, PICKUP_MS_MAX, LEASE_MS);
	return 0;
}

/* ---- the logs: what the workers were told ------------------------------------------- */
struct acks {
	uint64_t n;              /* log lines */
	uint64_t dups;           /* (flow, step) logged more than once */
	uint64_t bad;            /* malformed lines */
	uint64_t partial;        /* a last line without its newline */
	int32_t *pid;            /* [flow * steps + step - 1]: logging pid, 0 if none */
	uint64_t *lsn;
	char first_bad[160];
};

static void acks_free(struct acks *a)
{
	free(a->pid);
	free(a->lsn);
	memset(a, 0, sizeof(*a));
}

static int acks_line(struct demo *d, struct acks *a, const char *line, const char *file)
{
	char part[32];
	unsigned f, n;
	long pid;
	uint64_t lsn;
	int used = 0;

	if (sscanf(line, "%31s %u %ld %" SCNu64 "%n", part, &n, &pid, &lsn, &used) != 4 ||
	    line[used] != 0 || parse_flow(part, d->c.flows, &f) < 0 || n < 1 || n > d->c.steps || pid <= 0) {
		if (!a->bad++)
			snprintf(a->first_bad, sizeof(a->first_bad), "%.60s: \"%.80s\"", file, line);
		return 0;
	}
	a->n++;
	size_t i = (size_t)f * d->c.steps + (n - 1);
	if (a->pid[i]) {
		a->dups++;
		return 0;
	}
	a->pid[i] = (int32_t)pid;
	a->lsn[i] = lsn;
	return 0;
}

static int acks_load(struct demo *d, struct acks *a)
{
	memset(a, 0, sizeof(*a));
	a->pid = calloc(d->total, sizeof(*a->pid));
	a->lsn = calloc(d->total, sizeof(*a->lsn));
	if (!a->pid || !a->lsn) {
		acks_free(a);
		fprintf(stderr, "keel-demo: out of memory for %" PRIu64 " steps\n", d->total);
		return KEEL_E_NOMEM;
	}
	for (unsigned s = 0; s < d->slots; s++) {
		char path[PATH_MAX + 64], line[LOG_LINE_MAX + 2];
		FILE *fp;

		snprintf(path, sizeof(path), "%s/worker-%02u.log", d->logs, s);
		if (!(fp = fopen(path, "r"))) {
			if (errno == ENOENT)
				continue;   /* killed before it logged anything */
			fprintf(stderr, "keel-demo: cannot read %s: %s\n", path, strerror(errno));
			acks_free(a);
			return KEEL_E_OS;
		}
		while (fgets(line, sizeof(line), fp)) {
			size_t len = strlen(line);

			if (len == 0 || line[len - 1] != '\n') {
				if (feof(fp))
					a->partial++;
				else if (!a->bad++)
					snprintf(a->first_bad, sizeof(a->first_bad), "%.100s: a line over %u bytes", path,
						 LOG_LINE_MAX);
				/* skip the rest of an overlong line */
				while (!feof(fp) && len && line[len - 1] != '\n' && fgets(line, sizeof(line), fp))
					len = strlen(line);
				continue;
			}
			line[len - 1] = 0;
			acks_line(d, a, line, path);
		}
		fclose(fp);
	}
	return 0;
}

/* Every logged step is in the store, by the same process, at the same LSN.
 * Returns how many are missing or differ; *first says the first. */
static int acks_verify(struct demo *d, const struct acks *a, uint64_t *missing, uint64_t *differ, char *first,
		       size_t cap)
{
	*missing = *differ = 0;
	first[0] = 0;
	for (unsigned f = 0; f < d->c.flows; f++) {
		char part[32];

		flow_name(f, part, sizeof(part));
		for (unsigned n = 1; n <= d->c.steps; n++) {
			size_t i = (size_t)f * d->c.steps + (n - 1);
			long pid;
			uint64_t lsn;
			int rc;

			if (!a->pid[i])
				continue;
			rc = read_effect(d->h, part, n, &pid, &lsn);
			if (rc == KEEL_E_NOTFOUND) {
				if (!(*missing)++ && !first[0])
					snprintf(first, cap, "%s step %u (pid %d, LSN %" PRIu64 ") is missing", part, n,
						 (int)a->pid[i], a->lsn[i]);
			} else if (rc < 0) {
				return store_err("read a step", rc);
			} else if (pid != a->pid[i] || lsn != a->lsn[i]) {
				if (!(*differ)++ && !first[0])
					snprintf(first, cap, "%s step %u: logged by pid %d at LSN %" PRIu64
						 ", stored by pid %ld at LSN %" PRIu64, part, n, (int)a->pid[i], a->lsn[i],
						 pid, lsn);
			}
		}
	}
	return 0;
}

/* ---- the store's own consistency ----------------------------------------------------- */
struct flows_audit {
	uint64_t steps;          /* steps recorded, all flows */
	uint64_t done;           /* flows at step S */
	uint64_t bad;            /* flows whose state, steps and timer disagree */
	char first[200];
};

static void audit_bad(struct flows_audit *fa, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void audit_bad(struct flows_audit *fa, const char *fmt, ...)
{
	va_list ap;

	if (fa->bad++)
		return;
	va_start(ap, fmt);
	vsnprintf(fa->first, sizeof(fa->first), fmt, ap);
	va_end(ap);
}

/* For every flow: state K; steps 1..K recorded and K+1 not; K+1 keys in
 * all; a pending, unclaimed timer for step K+1 unless K == S.  `quiet`
 * (after the power loss) requires no claim to be held. */
static int audit_flows(struct demo *d, struct flows_audit *fa, int quiet)
{
	memset(fa, 0, sizeof(*fa));
	for (unsigned f = 0; f < d->c.flows; f++) {
		char part[32], st[32], pay[32];
		unsigned k, s, n;
		size_t stlen;
		uint64_t keys;
		keel_timer_info_t ti;
		long pid;
		int rc;

		flow_name(f, part, sizeof(part));
		rc = keel_get(d->h, part, KEY_STATE, strlen(KEY_STATE), st, sizeof(st), &stlen, NULL);
		if (rc < 0 && rc != KEEL_E_NOTFOUND)
			return store_err("read a flow state", rc);
		if (rc < 0 || stlen >= sizeof(st) || parse_state(st, stlen, &k, &s) < 0 || s != d->c.steps) {
			audit_bad(fa, "%s: state missing or malformed", part);
			continue;
		}
		fa->steps += k;
		fa->done += k == s;
		for (n = 1; n <= k; n++)
			if ((rc = read_effect(d->h, part, n, &pid, NULL)) < 0)
				break;
		if (n <= k) {
			audit_bad(fa, "%s: state says %u steps, step %u %s", part, k, n,
				  rc == KEEL_E_NOTFOUND ? "is missing" : "is malformed");
			continue;
		}
		if (k < s && read_effect(d->h, part, k + 1, &pid, NULL) != KEEL_E_NOTFOUND) {
			audit_bad(fa, "%s: state says %u steps, but step %u is recorded", part, k, k + 1);
			continue;
		}
		if ((rc = keel_count(d->h, part, &keys)) < 0)
			return store_err("count a flow's keys", rc);
		if (keys != (uint64_t)k + 1) {
			audit_bad(fa, "%s: %" PRIu64 " keys, expected %u (state and %u steps)", part, keys, k + 1, k);
			continue;
		}
		rc = keel_timer_get(d->h, part, TIMER_NEXT, strlen(TIMER_NEXT), &ti, pay, sizeof(pay));
		if (k == s) {
			if (rc != KEEL_E_NOTFOUND)
				audit_bad(fa, "%s: finished, but its timer is still there", part);
			continue;
		}
		if (rc < 0) {
			audit_bad(fa, "%s: at step %u of %u, but it has no timer (%s)", part, k, s, keel_strerror(rc));
			continue;
		}
		if (parse_payload(pay, ti.plen < sizeof(pay) ? ti.plen : 0, &n) < 0 || n != k + 1)
			audit_bad(fa, "%s: at step %u, but its timer asks for another step", part, k);
		else if (ti.state == KEEL_TIMER_DEAD)
			audit_bad(fa, "%s: its timer for step %u was dead-lettered", part, n);
		else if (quiet && ti.state != KEEL_TIMER_PENDING)
			audit_bad(fa, "%s: its timer is claimed (pid %d) though nobody runs", part, (int)ti.holder);
	}
	return 0;
}

/* ---- the operator: the power loss ------------------------------------------------------ */
static int power_loss(struct demo *d)
{
	keel_inspect_header_t ih;
	char arena[PATH_MAX];
	unsigned killed = 0;
	int rc;

	/* Everything stops at once: SIGKILL every worker first, then wait. */
	for (unsigned i = 0; i < d->slots; i++)
		if (d->b->s[i].state == SLOT_RUNNING) {
			d->b->s[i].state = SLOT_KILLED;
			kill(d->b->s[i].pid, SIGKILL);
			killed++;
		}
	for (unsigned i = 0; i < d->slots; i++)
		if (d->b->s[i].state == SLOT_KILLED)
			while (waitpid(d->b->s[i].pid, NULL, 0) < 0 && errno == EINTR)
				;
	d->workers_killed_at_pl = killed;
	/* What the journal holds, read without a lock; then drop the arena
	 * without flushing anything (this handle is read-only). */
	if ((rc = keel_inspect_header(d->h, &ih)) < 0)
		return store_err("read the store header", rc);
	keel_close(d->h);
	d->h = NULL;
	d->pl_durable_lsn = ih.durable_lsn;
	d->pl_not_durable = ih.next_lsn - 1 > ih.durable_lsn ? ih.next_lsn - 1 - ih.durable_lsn : 0;
	if ((rc = keel_arena_path(d->store, &d->opt, arena, sizeof(arena))) < 0)
		return store_err("find the arena", rc);
	if ((rc = keel_unlink_arena(d->store, &d->opt, 1)) < 0)
		return store_err("remove the arena", rc);
	say(d, "POWER LOSS: all %u workers SIGKILLed, arena %s removed without a flush", killed, arena);
	fprintf(d->out, "             the journal is durable up to LSN %" PRIu64 "; %" PRIu64
		" later commit%s not durable and gone\n", d->pl_durable_lsn, d->pl_not_durable,
		d->pl_not_durable == 1 ? " was" : "s were");
	return 0;
}

static int recover_phase(struct demo *d)
{
	struct acks a;
	struct flows_audit fa;
	keel_stat_t st;
	uint64_t missing, differ;
	char first[240];
	double t = now_ms();
	int rc;

	if ((rc = keel_open(d->store, &d->opt, &d->h)) < 0)
		return store_err("reopen the store after the power loss", rc);
	d->recovery_ms = now_ms() - t;
	if ((rc = keel_stat(d->h, &st)) < 0)
		return store_err("store statistics", rc);
	say(d, "store reopened in %.1f ms: rebuilt from checkpoint and journal up to LSN %" PRIu64, d->recovery_ms,
	    st.applied_lsn);
	if ((rc = acks_load(d, &a)) < 0)
		return rc;
	if ((rc = acks_verify(d, &a, &missing, &differ, first, sizeof(first))) < 0 ||
	    (rc = audit_flows(d, &fa, 1)) < 0) {
		acks_free(&a);
		return rc;
	}
	d->pl_acked = a.n - a.dups;
	d->pl_unacked = fa.steps > d->pl_acked ? fa.steps - d->pl_acked : 0;
	add_check(d, "after the power loss, every acknowledged step is back", missing == 0 && differ == 0,
		  "%" PRIu64 " acknowledged, %" PRIu64 " missing, %" PRIu64 " differ%s%s", d->pl_acked, missing, differ,
		  first[0] ? ": " : "", first);
	add_check(d, "after the power loss, states, steps and timers agree", fa.bad == 0,
		  "%" PRIu64 " steps in %u flows; %" PRIu64 " committed but never acknowledged (redone: no); "
		  "%" PRIu64 " flows inconsistent%s%s", fa.steps, d->c.flows, d->pl_unacked, fa.bad,
		  fa.first[0] ? ": " : "", fa.first);
	acks_free(&a);
	/* Back to a read-only handle before workers are forked again: a
	 * writable one runs a background thread, and a process forked from a
	 * multi-threaded one may inherit a lock that thread held, and hang. */
	if ((rc = keel_close(d->h)) < 0)
		return store_err("close the store after the checks", rc);
	d->h = NULL;
	return open_monitor(d);
}

/* ---- the operator: the end ------------------------------------------------------------- */
/* Where a worker that does not stop is: each thread's kernel wait channel
 * and user stack pointer (for a report that can be acted on). */
static void print_stuck(struct demo *d, pid_t pid)
{
	char path[96], buf[256];
	DIR *dir;
	struct dirent *e;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if (!(dir = opendir(path)))
		return;
	while ((e = readdir(dir))) {
		FILE *f;
		char wchan[64] = "?", sys[128] = "?";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/wchan", (int)pid, e->d_name);
		if ((f = fopen(path, "r"))) {
			if (!fgets(wchan, sizeof(wchan), f))
				wchan[0] = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "/proc/%d/task/%.20s/syscall", (int)pid, e->d_name);
		if ((f = fopen(path, "r"))) {
			if (fgets(buf, sizeof(buf), f)) {
				buf[strcspn(buf, "\n")] = 0;
				snprintf(sys, sizeof(sys), "%.120s", buf);
			}
			fclose(f);
		}
		fprintf(d->out, "             worker pid %d thread %s did not stop: wchan %s, syscall %s\n", (int)pid,
			e->d_name, wchan, sys);
	}
	closedir(dir);
}

static int stop_workers(struct demo *d)
{
	double t = now_ms();

	__atomic_store_n(&d->b->stop, 1, __ATOMIC_RELEASE);   /* W1: pairs with A1 */
	while (live_workers(d) > 0) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);

		if (p > 0) {
			int s = slot_of(d, p);

			if (s >= 0 && d->b->s[s].state == SLOT_RUNNING)
				d->b->s[s].state = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? SLOT_DONE : SLOT_FAILED;
			if (s >= 0 && d->b->s[s].state == SLOT_FAILED && !d->aborted) {
				d->aborted = 1;
				snprintf(d->abort_why, sizeof(d->abort_why), "worker %d (pid %d) failed at exit", s,
					 (int)p);
			}
			continue;
		}
		if (now_ms() - t > STOP_WAIT_MS) {
			for (unsigned i = 0; i < d->slots; i++)
				if (d->b->s[i].state == SLOT_RUNNING) {
					print_stuck(d, d->b->s[i].pid);
					kill_worker(d, i);
				}
			snprintf(d->abort_why, sizeof(d->abort_why), "workers did not stop within %.0f s",
				 STOP_WAIT_MS / 1e3);
			d->aborted = 1;
			return KEEL_E_TIMEOUT;
		}
		usleep(5 * 1000);
	}
	return 0;
}

static void check_report(void *ctx, const char *where, const char *what)
{
	struct demo *d = ctx;

	fprintf(d->out, "             audit: %s: %s\n", where, what);
}

static int final_checks(struct demo *d)
{
	struct acks a;
	struct flows_audit fa;
	keel_timer_stat_t ts;
	uint64_t missing, differ, redelivered = 0, skipped = 0, conflicts = 0;
	char first[240];
	int rc;

	for (unsigned i = 0; i < d->slots; i++) {
		redelivered += d->b->s[i].redelivered;
		skipped += d->b->s[i].skipped;
		conflicts += d->b->s[i].conflicts;
		d->lost_claims += d->b->s[i].lost_claims;
		if (d->b->s[i].commit_us_max / 1e3 > d->commit_ms_max)
			d->commit_ms_max = d->b->s[i].commit_us_max / 1e3;
	}
	if ((rc = audit_flows(d, &fa, 1)) < 0)
		return rc;
	d->flows_done = fa.done;
	d->steps_done = fa.steps;
	add_check(d, "every flow completed, its state, steps and timer agreeing",
		  fa.done == d->c.flows && fa.bad == 0,
		  "%" PRIu64 " of %u flows at step %u, %" PRIu64 " steps recorded; %" PRIu64 " inconsistent%s%s",
		  fa.done, d->c.flows, d->c.steps, fa.steps, fa.bad, fa.first[0] ? ": " : "", fa.first);
	if ((rc = acks_load(d, &a)) < 0)
		return rc;
	if ((rc = acks_verify(d, &a, &missing, &differ, first, sizeof(first))) < 0) {
		acks_free(&a);
		return rc;
	}
	d->acked_total = a.n - a.dups;
	add_check(d, "every acknowledged step is in the store, as its worker was told",
		  missing == 0 && differ == 0 && a.bad == 0,
		  "%" PRIu64 " log lines, %" PRIu64 " missing, %" PRIu64 " with another pid or LSN, %" PRIu64
		  " malformed%s%s%s%s", a.n, missing, differ, a.bad, first[0] ? ": " : "", first,
		  a.first_bad[0] ? "; " : "", a.first_bad);
	add_check(d, "no step acknowledged twice", a.dups == 0, "%" PRIu64 " duplicate log lines", a.dups);
	add_check(d, "no step done twice", redelivered == 0 && skipped == 0 && conflicts == 0,
		  "%" PRIu64 " deliveries of a committed step, %" PRIu64 " timers ahead of their flow, %" PRIu64
		  " state conflicts under a claim", redelivered, skipped, conflicts);
	acks_free(&a);
	if ((rc = keel_timer_stat(d->h, &ts)) < 0)
		return store_err("timer statistics", rc);
	add_check(d, "no timer left over or dead-lettered", ts.pending + ts.claimed + ts.dead == 0,
		  "%" PRIu64 " pending, %" PRIu64 " claimed, %" PRIu64 " dead", ts.pending, ts.claimed, ts.dead);
	rc = keel_check(d->h, KEEL_CHECK_REPAIR, check_report, d);
	add_check(d, "the arena audit (keel_check) finds it sound", rc == 0, "%s",
		  rc == 0 ? "sound" : keel_strerror(rc));
	return 0;
}

/* ---- keel-dump ----------------------------------------------------------------------------- */
static int find_keel_dump(char *buf, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	if (n <= 0)
		return -1;
	exe[n] = 0;
	if (!(slash = strrchr(exe, '/')))
		return -1;
	*slash = 0;
	if ((size_t)snprintf(buf, cap, "%s/keel-dump", exe) >= cap || access(buf, X_OK) != 0)
		return -1;
	return 0;
}

/* Run keel-dump --view header,journal [--json] on the store.  With --json
 * its output is captured into *out (malloc'd); else it goes to our stdout.
 * Returns its exit status, or -1. */
static int run_keel_dump(struct demo *d, const char *kd, char **out)
{
	int pfd[2] = { -1, -1 }, status;
	pid_t p;

	if (out && pipe(pfd) != 0)
		return -1;
	fflush(NULL);
	p = fork();
	if (p < 0)
		return -1;
	if (p == 0) {
		if (out) {
			dup2(pfd[1], 1);
			close(pfd[0]);
			close(pfd[1]);
		}
		if (out)
			execl(kd, kd, "--json", "--view", "header,journal", d->store, (char *)NULL);
		else
			execl(kd, kd, "--view", "header,journal", d->store, (char *)NULL);
		_exit(127);
	}
	if (out) {
		size_t len = 0, cap = 65536;
		char *buf = malloc(cap);
		ssize_t r;

		close(pfd[1]);
		while (buf && (r = read(pfd[0], buf + len, cap - len - 1)) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				break;
			}
			len += (size_t)r;
			if (cap - len < 4096) {
				char *nb = realloc(buf, cap * 2);

				if (!nb)
					break;
				buf = nb;
				cap *= 2;
			}
		}
		close(pfd[0]);
		if (buf)
			buf[len] = 0;
		*out = buf;
	}
	while (waitpid(p, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- the report -------------------------------------------------------------------------- */
static unsigned checks_passed(const struct demo *d, unsigned *failed)
{
	unsigned p = 0;

	*failed = 0;
	for (unsigned i = 0; i < d->nchecks; i++) {
		p += d->checks[i].status == 1;
		*failed += d->checks[i].status == 0;
	}
	return p;
}

static const char *fault_name(int f)
{
	return f == FAULT_SPLIT_ACK ? "split-ack" : f == FAULT_ASYNC ? "async" : "none";
}

static void report_text(struct demo *d, int ok)
{
	unsigned failed, passed = checks_passed(d, &failed);
	double sps = d->run_s > 0 ? (double)d->steps_done / d->run_s : 0;

	printf("\nkeel-demo report\n");
	printf("  flows completed   %" PRIu64 " of %u (%u steps each)\n", d->flows_done, d->c.flows, d->c.steps);
	printf("  steps             %" PRIu64 " committed in %.1f s: %.0f steps/s with %u workers, %s commits\n",
	       d->steps_done, d->run_s, sps, d->c.workers, d->c.fault == FAULT_ASYNC ? "async" : "sync");
	printf("  acknowledged      %" PRIu64 " (the rest committed just before a SIGKILL, unlogged)\n",
	       d->acked_total);
	printf("  recoveries        2: a worker SIGKILLed (%u of %u orphaned claims picked up, the last "
	       "after %.2f ms);\n                    a power loss (%" PRIu64 " commits not durable dropped, "
	       "reopened in %.1f ms)\n", d->picked, d->orphaned, d->pickup_ms_max, d->pl_not_durable,
	       d->recovery_ms);
	printf("  lost claims       %" PRIu64 " (commits refused because the claim had been lost)\n",
	       d->lost_claims);
	printf("  slowest commit    %.1f ms\n", d->commit_ms_max);
	if (d->c.fault)
		printf("  fault injected    %s\n", fault_name(d->c.fault));
	printf("  checks            %u of %u passed%s\n", passed, d->nchecks,
	       passed + failed < d->nchecks ? " (the rest do not apply)" : "");
	for (unsigned i = 0; i < d->nchecks; i++) {
		printf("    [%s] %s\n", d->checks[i].status > 0 ? " ok " : d->checks[i].status == 0 ? "FAIL" : "n/a ",
		       d->checks[i].name);
		if (d->checks[i].status == 0 && d->checks[i].detail[0])   /* a failure says what it found */
			printf("           %s\n", d->checks[i].detail);
	}
	if (d->aborted)
		printf("  aborted           %s\n", d->abort_why);
	printf("  result            %s\n", ok ? "all checks passed" : "CHECK FAILED");
}

static void report_json(struct demo *d, int ok, const char *dump)
{
	unsigned failed, passed = checks_passed(d, &failed);
	json_object *o = json_object_new_object(), *rec = json_object_new_object(), *ch = json_object_new_array();

	json_object_object_add(o, "schema", json_object_new_string("keel-demo/1"));
	json_object_object_add(o, "result", json_object_new_string(ok ? "pass" : "fail"));
	json_object_object_add(o, "store", json_object_new_string(d->store));
	json_object_object_add(o, "kept", json_object_new_boolean(d->c.keep || !ok));
	json_object_object_add(o, "seed", json_object_new_uint64(d->c.seed));
	json_object_object_add(o, "fault", json_object_new_string(fault_name(d->c.fault)));
	json_object_object_add(o, "workers", json_object_new_int((int)d->c.workers));
	json_object_object_add(o, "flows", json_object_new_int((int)d->c.flows));
	json_object_object_add(o, "steps_per_flow", json_object_new_int((int)d->c.steps));
	json_object_object_add(o, "durability",
			       json_object_new_string(d->c.fault == FAULT_ASYNC ? "async" : "sync"));
	json_object_object_add(o, "flows_completed", json_object_new_uint64(d->flows_done));
	json_object_object_add(o, "steps_committed", json_object_new_uint64(d->steps_done));
	json_object_object_add(o, "steps_acknowledged", json_object_new_uint64(d->acked_total));
	json_object_object_add(o, "seconds", json_object_new_double(d->run_s));
	json_object_object_add(o, "steps_per_second",
			       json_object_new_double(d->run_s > 0 ? (double)d->steps_done / d->run_s : 0));
	json_object_object_add(o, "lost_claims", json_object_new_uint64(d->lost_claims));
	json_object_object_add(o, "commit_ms_max", json_object_new_double(d->commit_ms_max));
	json_object_object_add(rec, "total", json_object_new_int(2));
	json_object_object_add(rec, "worker_deaths", json_object_new_int(1));
	json_object_object_add(rec, "power_losses", json_object_new_int(1));
	json_object_object_add(rec, "victim_pid", json_object_new_int((int)d->victim_pid));
	json_object_object_add(rec, "claims_orphaned", json_object_new_int((int)d->orphaned));
	json_object_object_add(rec, "claims_picked_up", json_object_new_int((int)d->picked));
	json_object_object_add(rec, "pickup_ms_max", json_object_new_double(d->pickup_ms_max));
	json_object_object_add(rec, "killed_mid_step", json_object_new_boolean(d->killed_mid_step));
	json_object_object_add(rec, "durable_lsn_at_power_loss", json_object_new_uint64(d->pl_durable_lsn));
	json_object_object_add(rec, "commits_not_durable", json_object_new_uint64(d->pl_not_durable));
	json_object_object_add(rec, "steps_acknowledged_before_power_loss", json_object_new_uint64(d->pl_acked));
	json_object_object_add(rec, "steps_unacknowledged_before_power_loss", json_object_new_uint64(d->pl_unacked));
	json_object_object_add(rec, "recovery_ms", json_object_new_double(d->recovery_ms));
	json_object_object_add(o, "recoveries", rec);
	for (unsigned i = 0; i < d->nchecks; i++) {
		json_object *k = json_object_new_object();

		json_object_object_add(k, "name", json_object_new_string(d->checks[i].name));
		json_object_object_add(k, "passed",
				       d->checks[i].status < 0 ? NULL : json_object_new_boolean(d->checks[i].status));
		json_object_object_add(k, "detail", json_object_new_string(d->checks[i].detail));
		json_object_array_add(ch, k);
	}
	json_object_object_add(o, "checks", ch);
	json_object_object_add(o, "checks_passed", json_object_new_int((int)passed));
	json_object_object_add(o, "checks_failed", json_object_new_int((int)failed));
	json_object_object_add(o, "checks_total", json_object_new_int((int)d->nchecks));
	json_object_object_add(o, "aborted", d->aborted ? json_object_new_string(d->abort_why) : NULL);
	if (dump) {
		json_object *kd = json_tokener_parse(dump);

		json_object_object_add(o, "keel_dump", kd ? kd : json_object_new_string(dump));
	} else {
		json_object_object_add(o, "keel_dump", NULL);
	}
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* ---- the work directory ------------------------------------------------------------------ */
static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		fprintf(stderr, "keel-demo: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void rm_tree(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_work(struct demo *d)
{
	struct stat st;

	if (d->c.dir) {
		if ((size_t)snprintf(d->work, sizeof(d->work), "%s", d->c.dir) >= sizeof(d->work) - 32) {
			fprintf(stderr, "keel-demo: --dir: path too long\n");
			return KEEL_E_INVAL;
		}
		if (mkdir(d->work, 0700) == 0)
			d->made_work = 1;
		else if (errno != EEXIST || stat(d->work, &st) != 0 || !S_ISDIR(st.st_mode)) {
			fprintf(stderr, "keel-demo: --dir %s: cannot make the directory: %s\n", d->work,
				strerror(errno == EEXIST ? ENOTDIR : errno));
			return KEEL_E_INVAL;
		}
	} else {
		snprintf(d->work, sizeof(d->work), "/tmp/keel-demo.XXXXXX");
		if (!mkdtemp(d->work)) {
			fprintf(stderr, "keel-demo: cannot make a directory in /tmp: %s\n", strerror(errno));
			return KEEL_E_OS;
		}
		d->made_work = 1;
	}
	snprintf(d->store, sizeof(d->store), "%s/store", d->work);
	snprintf(d->logs, sizeof(d->logs), "%s/acked", d->work);
	if (lstat(d->store, &st) == 0 || lstat(d->logs, &st) == 0) {
		fprintf(stderr, "keel-demo: --dir %s already holds a demo run (store/ or acked/); give a new "
			"directory, or remove that one (keel destroy %s)\n", d->work, d->store);
		return KEEL_E_BUSY;
	}
	if (mkdir(d->logs, 0700) != 0) {
		fprintf(stderr, "keel-demo: cannot make %s: %s\n", d->logs, strerror(errno));
		return KEEL_E_OS;
	}
	return 0;
}

static void remove_work(struct demo *d)
{
	keel_unlink_arena(d->store, &d->opt, 1);
	rm_tree(d->store);
	rm_tree(d->logs);
	if (d->made_work)
		rmdir(d->work);
}

/* ---- options ------------------------------------------------------------------------------ */
static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    keel-demo - a flow engine on a durable Keel store, through a worker's\n"
		"    death and a power loss\n"
		"\n"
		"SYNOPSIS\n"
		"    keel-demo [--workers N] [--flows N] [--steps N] [--dir DIR] [--keep]\n"
		"              [--json] [--quick] [--seed N] [--fault split-ack|async]\n"
		"    keel-demo --help\n"
		"\n"
		"DESCRIPTION\n"
		"    N worker processes advance flow instances.  Each flow's state lives in\n"
		"    its own partition, and each step is one SYNC transaction that records\n"
		"    the step (put_if absent), advances the state (put_if version), acks the\n"
		"    timer that asked for the step and sets the timer of the next one.\n"
		"    Workers block in keel_timer_claim until a timer is due.  After each\n"
		"    commit a worker appends the step to its own log: what it was told.\n"
		"\n"
		"    While it runs, the demo SIGKILLs one worker holding claims and shows the\n"
		"    others picking them up; then cuts the power (every worker SIGKILLed, the\n"
		"    arena removed from /dev/shm unflushed), reopens the store (recovery\n"
		"    from checkpoint and journal), checks it against the logs, restarts the\n"
		"    workers and finishes every flow.  It ends with a keel-dump summary and\n"
		"    a report: flows completed, steps per second, recoveries, checks.\n"
		"\n"
		"OPTIONS\n"
		"    --workers N  worker processes, 2 to %u (default %u)\n"
		"    --flows N    flow instances, one partition each, 1 to %u (default %u)\n"
		"    --steps N    steps per flow, 2 to %u (default %u)\n"
		"    --dir DIR    work directory: the store goes to DIR/store and the\n"
		"                 workers' logs to DIR/acked (default: a new directory\n"
		"                 /tmp/keel-demo.XXXXXX).  DIR must not hold a run already.\n"
		"    --keep       keep the store and the logs (they are kept anyway when a\n"
		"                 check fails, without the arena)\n"
		"    --json       the report as one JSON object on stdout (keel-dump's JSON\n"
		"                 inside); progress goes to stderr\n"
		"    --quick      a small run for tests: %u workers, %u flows of %u steps\n"
		"                 (explicit options win)\n"
		"    --seed N     the seed of the step delays and of which worker dies\n"
		"    --fault F    break the engine on purpose, to see the checks fail:\n"
		"                 split-ack  the ack goes in a second transaction after the\n"
		"                            step's (the kill lands between them: a step\n"
		"                            comes back after it committed)\n"
		"                 async      ASYNC commits logged as acknowledged (the power\n"
		"                            loss takes some of them)\n"
		"\n"
		"EXIT STATUS\n"
		"    0  every check passed\n"
		"    1  a check failed (the report says which)\n"
		"    2  usage error\n"
		"    3  a store or system error\n"
		"\n"
		"EXAMPLES\n"
		"    keel-demo\n"
		"    keel-demo --workers 8 --flows 1000 --steps 20 --keep --dir /tmp/flows\n"
		"    keel-demo --quick --json | jq .checks\n"
		"    keel-demo --quick --fault split-ack; echo $?    # 1\n",
		WORKERS_MAX, DEFAULT_WORKERS, FLOWS_MAX, DEFAULT_FLOWS, STEPS_MAX, DEFAULT_STEPS, QUICK_WORKERS,
		QUICK_FLOWS, QUICK_STEPS);
}

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi) {
		fprintf(stderr, "keel-demo: %s %s: expected a whole number from %u to %u (try --help)\n", opt, s,
			lo, hi);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

static int parse_args(struct demo *d, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "help", no_argument, NULL, 'h' },   { "workers", required_argument, NULL, 'w' },
		{ "flows", required_argument, NULL, 'f' }, { "steps", required_argument, NULL, 's' },
		{ "dir", required_argument, NULL, 'd' },   { "keep", no_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },        { "quick", no_argument, NULL, 'q' },
		{ "seed", required_argument, NULL, 'S' },  { "fault", required_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned w = 0, f = 0, s = 0;
	int o, seed_set = 0;

	opterr = 0;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'h': usage(stdout); exit(0);
		case 'w': if (parse_uint("--workers", optarg, 2, WORKERS_MAX, &w)) return -1; break;
		case 'f': if (parse_uint("--flows", optarg, 1, FLOWS_MAX, &f)) return -1; break;
		case 's': if (parse_uint("--steps", optarg, 2, STEPS_MAX, &s)) return -1; break;
		case 'd':
			if (!optarg[0]) {
				fprintf(stderr, "keel-demo: --dir: empty path\n");
				return -1;
			}
			d->c.dir = optarg;
			break;
		case 'k': d->c.keep = 1; break;
		case 'j': d->c.json = 1; break;
		case 'q': d->c.quick = 1; break;
		case 'S': {
			char *end;

			errno = 0;
			d->c.seed = strtoull(optarg, &end, 10);
			if (!optarg[0] || *end || errno || optarg[0] == '-') {
				fprintf(stderr, "keel-demo: --seed %s: expected a whole number\n", optarg);
				return -1;
			}
			seed_set = 1;
			break;
		}
		case 'F':
			if (!strcmp(optarg, "split-ack"))
				d->c.fault = FAULT_SPLIT_ACK;
			else if (!strcmp(optarg, "async"))
				d->c.fault = FAULT_ASYNC;
			else {
				fprintf(stderr, "keel-demo: --fault %s: expected split-ack or async\n", optarg);
				return -1;
			}
			break;
		default:
			if (optopt)
				fprintf(stderr, "keel-demo: option --%s needs a value, or -%c is unknown (try --help)\n",
					argv[optind - 1] + 2, optopt);
			else
				fprintf(stderr, "keel-demo: unknown option %s (try --help)\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "keel-demo: unexpected argument %s (try --help)\n", argv[optind]);
		return -1;
	}
	d->c.workers = w ? w : d->c.quick ? QUICK_WORKERS : DEFAULT_WORKERS;
	d->c.flows = f ? f : d->c.quick ? QUICK_FLOWS : DEFAULT_FLOWS;
	d->c.steps = s ? s : d->c.quick ? QUICK_STEPS : DEFAULT_STEPS;
	d->c.delay_ms = DEFAULT_DELAY_MS;
	if ((uint64_t)d->c.flows * d->c.steps > FLOW_STEPS_TOTAL_MAX) {
		fprintf(stderr, "keel-demo: --flows %u x --steps %u is %" PRIu64 " steps; at most %u\n", d->c.flows,
			d->c.steps, (uint64_t)d->c.flows * d->c.steps, FLOW_STEPS_TOTAL_MAX);
		return -1;
	}
	if (!seed_set)
		d->c.seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
	return 0;
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* ---- main ------------------------------------------------------------------------------------ */
static int run(struct demo *d)
{
	int rc;

	if ((rc = setup_flows(d)) < 0 || (rc = open_monitor(d)) < 0)
		return rc;
	say(d, "%u flows created, each a partition with its state and a timer for step 1", d->c.flows);
	d->run_t0 = now_ms();
	for (unsigned i = 0; i < d->c.workers; i++)
		if ((rc = spawn_worker(d)) < 0)
			return rc;
	say(d, "%u workers started (pids %d..%d); each blocks in keel_timer_claim until a timer is due",
	    d->c.workers, (int)d->b->s[0].pid, (int)d->b->s[d->c.workers - 1].pid);
	if ((rc = run_until(d, UNTIL_ACKED, d->total * KILL_AT_PERMILLE / 1000)) < 0)
		return rc;
	if ((rc = kill_phase(d)) < 0)
		return rc;
	if ((rc = run_until(d, UNTIL_ACKED, d->total * POWER_AT_PERMILLE / 1000)) < 0)
		return rc;
	if ((rc = power_loss(d)) < 0 || (rc = recover_phase(d)) < 0)
		return rc;
	for (unsigned i = 0; i < d->c.workers; i++)
		if ((rc = spawn_worker(d)) < 0)
			return rc;
	say(d, "%u workers restarted", d->c.workers);
	if ((rc = run_until(d, UNTIL_DONE, 0)) < 0)
		return rc;
	if ((rc = stop_workers(d)) < 0)
		return rc;
	d->run_s = (now_ms() - d->run_t0) / 1e3;
	say(d, "no timer left: every flow has run its %u steps; workers stopped", d->c.steps);
	return final_checks(d);
}

int main(int argc, char **argv)
{
	static struct demo demo;
	struct demo *d = &demo;
	unsigned failed;
	char kd[PATH_MAX], *dump = NULL;
	int rc, ok, kd_status = -1;

	if (parse_args(d, argc, argv) < 0)
		return 2;
	d->out = d->c.json ? stderr : stdout;
	d->total = (uint64_t)d->c.flows * d->c.steps;
	keel_options_init(&d->opt);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	d->b = mmap(NULL, sizeof(*d->b), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (d->b == MAP_FAILED) {
		fprintf(stderr, "keel-demo: mmap: %s\n", strerror(errno));
		return 3;
	}
	if ((rc = make_work(d)) < 0)
		return rc == KEEL_E_INVAL || rc == KEEL_E_BUSY ? 2 : 3;
	fprintf(d->out, "keel-demo: a flow engine on Keel: %u workers, %u flows x %u steps, %s commits%s%s\n",
		d->c.workers, d->c.flows, d->c.steps, d->c.fault == FAULT_ASYNC ? "async" : "sync",
		d->c.fault ? ", fault injected: " : "", d->c.fault ? fault_name(d->c.fault) : "");
	fprintf(d->out, "  store %s, logs %s, seed %" PRIu64 "\n", d->store, d->logs, d->c.seed);
	d->t0 = now_ms();
	rc = run(d);
	if (rc < 0 && !d->aborted) {
		d->aborted = 1;
		snprintf(d->abort_why, sizeof(d->abort_why), "%s", keel_strerror(rc));
	}
	if (d->aborted) {
		for (unsigned i = 0; i < d->slots; i++)
			if (d->b->s[i].state == SLOT_RUNNING)
				kill_worker(d, i);
		fprintf(stderr, "keel-demo: the run stopped: %s\n", d->abort_why);
	}
	if (d->h && find_keel_dump(kd, sizeof(kd)) == 0) {
		if (!d->c.json)
			printf("\nkeel-dump summary (%s --view header,journal %s)\n", kd, d->store);
		kd_status = run_keel_dump(d, kd, d->c.json ? &dump : NULL);
		if (kd_status != 0)
			fprintf(stderr, "keel-demo: keel-dump exited with status %d\n", kd_status);
	} else if (d->h) {
		fprintf(stderr, "keel-demo: keel-dump not found next to this program: no summary\n");
	}
	checks_passed(d, &failed);
	ok = !d->aborted && failed == 0 && d->nchecks > 0;
	if (d->c.json)
		report_json(d, ok, dump);
	else
		report_text(d, ok);
	free(dump);
	if (d->h)
		keel_close(d->h);
	d->h = NULL;
	if (ok && !d->c.keep) {
		remove_work(d);
	} else if (!ok && !d->c.keep) {
		keel_unlink_arena(d->store, &d->opt, 1);
		fprintf(stderr, "keel-demo: kept %s for inspection (the store reopens from its journal)\n",
			d->work);
	} else {
		fprintf(stderr, "keel-demo: kept %s (keel destroy %s removes the store)\n", d->work, d->store);
	}
	if (interrupted)
		return 130;
	if (d->aborted && rc < 0 && rc != KEEL_E_STATE && rc != KEEL_E_TIMEOUT)
		return 3;
	return ok ? 0 : 1;
}
