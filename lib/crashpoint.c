/*
 * crashpoint.c - kill (or stop) this process at a named point of the commit
 * path, for testing crash recovery and stalls (keel_crash_at, keel_stop_at
 * and KEEL_CRASH_AT in keel.h).
 *
 * What it is for.  A worker's own crash test wants the worst moments, not
 * random ones: the commit half written, half applied, visible but still
 * holding its locks, the journal written but durable LSN not advanced, a
 * checkpoint written but not installed.  The points are listed, with the
 * state each leaves, in crashpoint.h; keel.h gives their public names.
 *
 * State.  All of it is process-local (nothing lives in the arena or on
 * disk):
 *   crash_armed    the armed point, CP_NONE when none; the word every point
 *                  compares against (crashpoint.h)
 *   crash_left     arrivals at the armed point still to pass before dying
 *   crash_nth      the nth it was armed with (for the message)
 *   crash_pid      the process that armed it.  fork() copies the words into
 *                  the child, but arming is for "this process": a child that
 *                  reaches an inherited point disarms it and goes on.
 *   crash_env_pid  the process that has read KEEL_CRASH_AT; the variable is
 *                  read at the first keel_open of each process (a fork child
 *                  and an exec'd program are new processes), so a second
 *                  open does not reset the count
 * Arming writes crash_left and crash_pid, then crash_armed with a release
 * store (R1); crash_reached, entered only after a point saw its own number
 * in crash_armed, reads them after an acquire load of crash_armed (A1).
 * Arming is meant to be done before the work it targets, from one thread:
 * two threads arming at once get one of the two armings.
 *
 * Dying.  raise(SIGKILL), as kill -9 from outside would: no exit handler,
 * no stdio flush, no unlock, no close, no journal flush.  Just before, one
 * line goes to standard error with write(2) (no stdio buffer is touched) so
 * that a test log says why the process died.  Every thread of the process
 * dies with it; the one that reached the point may be a handle's background
 * thread (the flush points) as well as a committer.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crashpoint.h"
#include "lib/keel.h"
#include "shm/err.h"

#define CRASH_ENV "KEEL_CRASH_AT"
#define CRASH_MSG_BYTES_MAX 256u

uint32_t crash_armed;
static uint32_t crash_stop;   /* 1: stop with SIGSTOP instead of dying (keel_stop_at, ":stop") */
static uint32_t crash_left;
static uint32_t crash_nth;
static pid_t crash_pid;
static pid_t crash_env_pid;

/* Indexed by enum crash_point; the public names of keel.h. */
static const char *const crash_names[CP_COUNT] = {
	[CP_NONE] = NULL,
	[CP_COMMIT_RESERVED] = "commit.reserved",
	[CP_COMMIT_COMPLETE] = "commit.complete",
	[CP_COMMIT_MID_APPLY] = "commit.mid_apply",
	[CP_COMMIT_APPLIED] = "commit.applied",
	[CP_COMMIT_VISIBLE] = "commit.visible",
	[CP_COMMIT_DONE] = "commit.done",
	[CP_FLUSH_WRITTEN] = "flush.written",
	[CP_FLUSH_SYNCED] = "flush.synced",
	[CP_CHECKPOINT_WRITTEN] = "checkpoint.written",
};
_Static_assert(CP_COUNT == 10, "a new point needs a name above and a line in keel.h");

#define CRASH_LIST "commit.reserved, commit.complete, commit.mid_apply, commit.applied, " \
		   "commit.visible, commit.done, flush.written, flush.synced, checkpoint.written"

const char *crash_point_name(uint32_t cp)
{
	return cp > CP_NONE && cp < CP_COUNT ? crash_names[cp] : NULL;
}

/* The point named by the first len bytes of s, or CP_NONE. */
static uint32_t crash_lookup(const char *s, size_t len)
{
	for (uint32_t cp = CP_NONE + 1; cp < CP_COUNT; cp++)
		if (strlen(crash_names[cp]) == len && memcmp(crash_names[cp], s, len) == 0)
			return cp;
	return CP_NONE;
}

static void crash_disarm(void)
{
	__atomic_store_n(&crash_armed, CP_NONE, __ATOMIC_RELEASE);
}

static void crash_arm(uint32_t cp, uint32_t nth, uint32_t stop)
{
	SHM_ASSERT(cp > CP_NONE && cp < CP_COUNT);
	SHM_ASSERT(nth > 0);
	crash_disarm();   /* no point fires on a half-written arming */
	__atomic_store_n(&crash_stop, stop, __ATOMIC_RELAXED);
	__atomic_store_n(&crash_left, nth, __ATOMIC_RELAXED);
	__atomic_store_n(&crash_nth, nth, __ATOMIC_RELAXED);
	__atomic_store_n(&crash_pid, getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&crash_armed, cp, __ATOMIC_RELEASE);   /* R1: pairs with A1 */
}

static int arm_at(const char *fn, const char *point, uint32_t nth, uint32_t stop)
{
	if (!point) {
		crash_disarm();
		return 0;
	}
	uint32_t cp = crash_lookup(point, strlen(point));
	if (cp == CP_NONE)
		return shm_err(KEEL_E_INVAL, "%s: unknown crash point \"%.64s\"; the points are " CRASH_LIST, fn,
			       point);
	if (nth == 0)
		return shm_err(KEEL_E_INVAL, "%s(\"%s\", 0): nth counts arrivals from 1 (1 = the first)", fn,
			       crash_names[cp]);
	crash_arm(cp, nth, stop);
	return 0;
}

int keel_crash_at(const char *point, uint32_t nth)
{
	return arm_at("keel_crash_at", point, nth, 0);
}

int keel_stop_at(const char *point, uint32_t nth)
{
	return arm_at("keel_stop_at", point, nth, 1);
}

/* Decimal 1..UINT32_MAX, digits only. */
static int crash_parse_nth(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (size_t i = 0; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

int crash_env_arm(void)
{
	pid_t me = getpid(), seen = __atomic_load_n(&crash_env_pid, __ATOMIC_ACQUIRE);

	if (seen == me || !__atomic_compare_exchange_n(&crash_env_pid, &seen, me, 0, __ATOMIC_ACQ_REL,
						       __ATOMIC_ACQUIRE))
		return 0;   /* read already in this process */
	const char *e = getenv(CRASH_ENV);
	if (!e || !e[0])
		return 0;
	/* POINT[:NTH][:stop] */
	char buf[96];
	snprintf(buf, sizeof(buf), "%s", e);
	uint32_t stop = 0;
	size_t blen = strlen(buf);
	if (blen > 5 && strcmp(buf + blen - 5, ":stop") == 0) {
		stop = 1;
		buf[blen - 5] = 0;
	}
	const char *colon = strchr(buf, ':');
	size_t len = colon ? (size_t)(colon - buf) : strlen(buf);
	uint32_t cp = crash_lookup(buf, len), nth = 1;
	int rc = 0;
	if (strlen(e) >= sizeof(buf))
		rc = shm_err(KEEL_E_INVAL, CRASH_ENV "=\"%.64s...\": too long for POINT[:NTH][:stop]", e);
	else if (cp == CP_NONE)
		rc = shm_err(KEEL_E_INVAL, CRASH_ENV "=\"%.64s\": unknown crash point \"%.*s\"; the points are " CRASH_LIST
			     "; write POINT, POINT:NTH or either with \":stop\" after it, or unset it",
			     e, (int)(len < 64 ? len : 64), buf);
	else if (colon && crash_parse_nth(colon + 1, &nth))
		rc = shm_err(KEEL_E_INVAL, CRASH_ENV "=\"%.64s\": \"%.16s\" after the colon is not a count from 1 to %u or \"stop\" (POINT[:NTH][:stop], 1 = the first arrival)",
			     e, colon + 1, UINT32_MAX);
	if (rc) {
		/* Every open of this process refuses the same way, rather than a
		 * later one going on without the crash the test asked for. */
		__atomic_store_n(&crash_env_pid, 0, __ATOMIC_RELEASE);
		return rc;
	}
	crash_arm(cp, nth, stop);
	return 0;
}

/* The stop action: the whole process stops (SIGSTOP stops every thread)
 * right here, holding whatever the point holds, as a debugger or ^Z would
 * stop it; after SIGCONT it goes on from the point as if nothing happened.
 * One line first, as for a crash. */
static void crash_stop_here(uint32_t cp, uint32_t nth)
{
	char msg[CRASH_MSG_BYTES_MAX];
	int n = snprintf(msg, sizeof(msg), "keel: stop point %s reached (arrival %u): process %d stops itself with SIGSTOP; continue it with kill -CONT %d\n",
			 crash_names[cp], nth, (int)getpid(), (int)getpid());
	if (n > 0) {
		ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
		(void)w;
	}
	raise(SIGSTOP);
}

static void crash_die(uint32_t cp, uint32_t nth) __attribute__((noreturn));
static void crash_die(uint32_t cp, uint32_t nth)
{
	char msg[CRASH_MSG_BYTES_MAX];
	int n = snprintf(msg, sizeof(msg), "keel: crash point %s reached (arrival %u): process %d kills itself with SIGKILL\n",
			 crash_names[cp], nth, (int)getpid());
	if (n > 0) {
		ssize_t w = write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
		(void)w;   /* a closed stderr does not stop the crash */
	}
	raise(SIGKILL);
	for (;;)
		pause();   /* not reached: SIGKILL cannot be blocked or caught */
}

void crash_reached(uint32_t cp)
{
	SHM_ASSERT(cp > CP_NONE && cp < CP_COUNT);
	if (__atomic_load_n(&crash_armed, __ATOMIC_ACQUIRE) != cp)   /* A1: pairs with R1 */
		return;   /* disarmed or re-armed since the point looked */
	if (__atomic_load_n(&crash_pid, __ATOMIC_RELAXED) != getpid()) {
		/* Armed by the parent before fork(): not this process's. */
		uint32_t expect = cp;
		__atomic_compare_exchange_n(&crash_armed, &expect, CP_NONE, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		return;
	}
	/* Count down to 1 and claim it: exactly one arrival dies, even when
	 * several threads reach the point together. */
	uint32_t left = __atomic_load_n(&crash_left, __ATOMIC_RELAXED);
	for (;;) {
		if (left == 0)
			return;   /* another thread took the last arrival */
		if (__atomic_compare_exchange_n(&crash_left, &left, left - 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			break;
	}
	if (left != 1)
		return;
	if (__atomic_load_n(&crash_stop, __ATOMIC_RELAXED)) {
		crash_disarm();   /* stops once; after SIGCONT the process goes on */
		crash_stop_here(cp, __atomic_load_n(&crash_nth, __ATOMIC_RELAXED));
		return;
	}
	crash_die(cp, __atomic_load_n(&crash_nth, __ATOMIC_RELAXED));
}
