/*
 * lock.c - robust process-shared mutexes; see lock.h for the contract.
 */
#include "shm/lock.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/syscall.h>

#include "shm/err.h"
#include "shm/registry.h"

static __thread uint32_t tid_cached;
static uint32_t pid_cached;

uint32_t shm_tid(void)
{
	if (!tid_cached)
		tid_cached = (uint32_t)syscall(SYS_gettid);
	return tid_cached;
}

/* A forked child must not reuse the parent's cached tid. */
static void reset_tid(void)
{
	tid_cached = 0;
	pid_cached = (uint32_t)getpid();
}

/*
 * The mutex kind that shm_lock_init gives every lock (robust, process-shared,
 * normal), read from a template.  glibc trusts the kind stored in the mutex:
 * a damaged one can send pthread_mutex_trylock or _timedlock down the
 * priority-protect path, whose priority ceiling (from the lock word) fails
 * an assertion and aborts the process.  So every acquisition first checks
 * the kind, and a lock whose kind is not the template's is damage.  (The
 * field is glibc's __data.__kind; Keel builds on glibc only.)
 */
static int kind_expected = -1;

static int lock_attr_init(pthread_mutexattr_t *a)
{
	int rc = pthread_mutexattr_init(a);

	if (rc)
		return rc;
	pthread_mutexattr_setpshared(a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(a, PTHREAD_MUTEX_ROBUST);
	return 0;
}

static int kind_ok(const shm_lock_t *l)
{
	return __atomic_load_n(&l->m.__data.__kind, __ATOMIC_RELAXED) == kind_expected;
}

int shm_lock_sane(const shm_lock_t *l)
{
	return kind_ok(l);
}

int shm_lock_err(const shm_lock_t *l, int rc, const char *what)
{
	if (rc == -EDEADLK)
		return shm_err(KEEL_E_CORRUPT, "the %s is damaged (%s); 'keel verify' reports it", what,
			       kind_ok(l) ? "held by a process or thread that is gone, and not handed over"
					     : "its mutex is not a robust process-shared one");
	return shm_err(KEEL_E_OS, "%s: %s", what, strerror(-rc));
}

__attribute__((constructor)) static void lock_module_init(void)
{
	pthread_mutexattr_t a;
	pthread_mutex_t t;

	pid_cached = (uint32_t)getpid();
	pthread_atfork(NULL, NULL, reset_tid);
	if (lock_attr_init(&a) == 0) {
		if (pthread_mutex_init(&t, &a) == 0) {
			kind_expected = t.__data.__kind;
			pthread_mutex_destroy(&t);
		}
		pthread_mutexattr_destroy(&a);
	}
}

int shm_lock_init(shm_lock_t *l)
{
	pthread_mutexattr_t a;
	int rc;

	if ((rc = lock_attr_init(&a)))
		return -rc;
	rc = pthread_mutex_init(&l->m, &a);
	pthread_mutexattr_destroy(&a);
	l->holder_pid = 0;
	l->holder_tid = 0;
	l->acquisitions = 0;
	l->repairs = 0;
	return -rc;
}

static int after_lock(shm_lock_t *l, int rc)
{
	if (rc == 0 || rc == EOWNERDEAD) {
		l->holder_pid = pid_cached;
		l->holder_tid = shm_tid();
		l->acquisitions++;
		if (rc == EOWNERDEAD) {
			l->repairs++;
			return SHM_LOCK_DIED;
		}
		return SHM_LOCK_OK;
	}
	if (rc == EBUSY)
		return SHM_LOCK_BUSY;
	return -rc;
}

/* Wait in slices of LOCK_SLICE_NS.  A lock that stays held across
 * LOCK_DEAD_SLICES_MAX slices while its recorded holder is gone is damage (a
 * dead holder's robust lock would have been handed over by the kernel), so
 * the wait ends with -EDEADLK instead of hanging on a hostile arena. */
#define LOCK_SLICE_NS 250000000ll
#define LOCK_SPINS 256   /* pause-and-look rounds before sleeping: a few microseconds */
#define LOCK_DEAD_SLICES_MAX 4

#define DAMAGED_LOCKS_MAX 16
static const shm_lock_t *damaged[DAMAGED_LOCKS_MAX];   /* this process's verdicts */
static unsigned ndamaged;

static int is_damaged(const shm_lock_t *l)
{
	for (unsigned i = 0; i < __atomic_load_n(&ndamaged, __ATOMIC_ACQUIRE) && i < DAMAGED_LOCKS_MAX; i++)
		if (damaged[i] == l)
			return 1;
	return 0;
}

int shm_stall_note_due(void)
{
	static uint64_t last;   /* per process: enough for a rate limit */
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	uint64_t prev = __atomic_load_n(&last, __ATOMIC_RELAXED);
	if (prev && now - prev < SHM_STALL_NOTE_EVERY_NS)
		return 0;
	return __atomic_compare_exchange_n(&last, &prev, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

uint32_t shm_lock_stopped_holder(const shm_lock_t *l)
{
	uint32_t pid = l->holder_pid, tid = l->holder_tid;

	return pid && pid != pid_cached && shm_pid_stopped(pid, tid) ? pid : 0;
}

/* A wait of `slices` slices so far: if its holder is stopped, say so once. */
static void note_stopped_holder(const shm_lock_t *l, int slices, int *noted)
{
	uint32_t pid;

	if (*noted || (uint64_t)slices * LOCK_SLICE_NS < SHM_STALL_NOTE_NS || !(pid = shm_lock_stopped_holder(l)))
		return;
	*noted = 1;
	if (shm_stall_note_due())
		fprintf(stderr, "keel: waited %.1f s for a lock of the store: process %u is stopped (a "
			"signal or a debugger) while it holds the lock, and whatever needs the lock waits "
			"for it; continue it (kill -CONT %u) or kill it\n", (double)slices * LOCK_SLICE_NS / 1e9,
			pid, pid);
}

/* No process or thread has this id (kill(2) takes a thread's id too). */
static int gone(uint32_t id)
{
	return kill((pid_t)id, 0) != 0 && errno == ESRCH;
}

int shm_lock_acquire(shm_lock_t *l)
{
	int dead_slices = 0, slices = 0, noted = 0;

	if (__builtin_expect(ndamaged != 0, 0) && is_damaged(l))
		return -EDEADLK;
	if (!kind_ok(l))
		return -EDEADLK;
	/* A free lock is taken without reading the clock: the deadline of a
	 * timed wait costs a clock_gettime, about 4% of a memory-mode put when
	 * paid on every uncontended acquisition. */
	int rc0 = pthread_mutex_trylock(&l->m);
	if (rc0 != EBUSY)
		return after_lock(l, rc0);
	/* Held: the holder is most likely inside a short critical section on
	 * another CPU, so watch the lock word for a while before sleeping in
	 * the kernel (a robust mutex never spins by itself, and a futex sleep
	 * plus the holder's wake-up cost far more than a partition's commit).
	 * Measured with processes putting into one partition (memory mode,
	 * 2-core host): 2 processes 1.18M -> 1.97-2.04M puts/s, 4 processes
	 * 1.07-1.13M -> 1.48-1.78M, 8 processes 0.75M -> 1.17-1.27M; processes
	 * in their own partitions unchanged.  A dead holder's word is never 0
	 * (the kernel sets FUTEX_OWNER_DIED), so the timed wait below hands
	 * its lock over as before. */
	for (int i = 0; i < LOCK_SPINS; i++) {
		__builtin_ia32_pause();
		if (__atomic_load_n(&l->m.__data.__lock, __ATOMIC_RELAXED) == 0 &&
		    (rc0 = pthread_mutex_trylock(&l->m)) != EBUSY)
			return after_lock(l, rc0);
	}

	for (;;) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += LOCK_SLICE_NS;
		if (ts.tv_nsec >= 1000000000l) {
			ts.tv_sec += ts.tv_nsec / 1000000000l;
			ts.tv_nsec %= 1000000000l;
		}
		int rc = pthread_mutex_timedlock(&l->m, &ts);
		if (rc != ETIMEDOUT)
			return after_lock(l, rc);
		note_stopped_holder(l, ++slices, &noted);
		/* Gone: the recorded holder, or the thread the mutex word names
		 * (a damaged word can name a thread that never existed, whose
		 * death the kernel will never report, while holder_pid names a
		 * live process). */
		uint32_t pid = l->holder_pid;
		uint32_t tid = __atomic_load_n(&l->m.__data.__lock, __ATOMIC_RELAXED) & FUTEX_TID_MASK;
		if (pid == 0 || gone(pid) || (tid != 0 && gone(tid)))
			dead_slices++;
		else
			dead_slices = 0;
		if (dead_slices >= LOCK_DEAD_SLICES_MAX) {
			unsigned i = __atomic_fetch_add(&ndamaged, 1, __ATOMIC_ACQ_REL);
			if (i < DAMAGED_LOCKS_MAX)
				damaged[i] = l;
			return -EDEADLK;
		}
	}
}

int shm_lock_try(shm_lock_t *l)
{
	if (!kind_ok(l))
		return -EDEADLK;
	return after_lock(l, pthread_mutex_trylock(&l->m));
}

int shm_lock_holder_died(const shm_lock_t *l)
{
	return (__atomic_load_n(&l->m.__data.__lock, __ATOMIC_RELAXED) & FUTEX_OWNER_DIED) != 0;
}

void shm_lock_consistent(shm_lock_t *l)
{
	pthread_mutex_consistent(&l->m);
}

void shm_lock_release(shm_lock_t *l)
{
	l->holder_pid = 0;
	l->holder_tid = 0;
	pthread_mutex_unlock(&l->m);
}
