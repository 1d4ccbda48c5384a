/*
 * lock.h - robust, process-shared locks.
 *
 * A shm_lock is a pthread mutex with PTHREAD_MUTEX_ROBUST and
 * PTHREAD_PROCESS_SHARED, plus the holder's pid for inspection.  When a holder
 * dies, the kernel marks the futex and the next acquirer gets SHM_LOCK_DIED:
 * it now holds the lock, must repair what the lock protects, and then call
 * shm_lock_consistent().  Only `holder_pid` is written outside the mutex
 * (just after acquiring, just before releasing); readers of it (keel-dump,
 * audits) treat it as a hint and confirm with a trylock.
 *
 * Layout (64 bytes, host byte order):
 *   0  pthread_mutex_t m      (40 bytes on x86-64 glibc)
 *   40 uint32 holder_pid      0 when free
 *   44 uint32 holder_tid
 *   48 uint64 acquisitions    statistics
 *   56 uint64 repairs         times a dead holder was found
 */
#ifndef SHM_LOCK_H
#define SHM_LOCK_H

#include <pthread.h>
#include <stdint.h>

typedef struct shm_lock {
	pthread_mutex_t m;
	volatile uint32_t holder_pid;
	volatile uint32_t holder_tid;
	volatile uint64_t acquisitions;
	volatile uint64_t repairs;
} __attribute__((aligned(64))) shm_lock_t;

_Static_assert(sizeof(pthread_mutex_t) <= 40, "pthread_mutex_t fits");
_Static_assert(sizeof(shm_lock_t) == 64, "shm_lock_t is one cache line");

enum { SHM_LOCK_OK = 0, SHM_LOCK_DIED = 1, SHM_LOCK_BUSY = 2 };

int shm_lock_init(shm_lock_t *l);
/* 0 (SHM_LOCK_OK), SHM_LOCK_DIED (held; repair, then consistent), or -errno:
 * -EDEADLK for a damaged lock (its mutex kind is not the one shm_lock_init
 * set, or it stayed held by a holder that is gone). */
int shm_lock_acquire(shm_lock_t *l);
/* Like acquire, or SHM_LOCK_BUSY. */
int shm_lock_try(shm_lock_t *l);
void shm_lock_consistent(shm_lock_t *l);
/* 1 when the last holder of l died holding it and nobody has taken it since
 * (the kernel's FUTEX_OWNER_DIED mark): the next acquirer gets
 * SHM_LOCK_DIED.  Lets a caller that must not repair decline the lock. */
int shm_lock_holder_died(const shm_lock_t *l);
/* 1 when the mutex kind is the one shm_lock_init set (audits). */
int shm_lock_sane(const shm_lock_t *l);
/* The KEEL_E_* error for a negative result rc of acquire or try on lock l,
 * named `what`: CORRUPT for a damaged lock, else OS; sets the message. */
int shm_lock_err(const shm_lock_t *l, int rc, const char *what);
/*
 * Waits held up by a stopped process.  A lock waited for SHM_STALL_NOTE_NS
 * whose holder is alive but stopped (a signal, ^Z or a debugger) is said on
 * stderr, naming the holder, since nothing else would end the wait.  The
 * store's other waits (a sync commit waiting for the journal) say theirs
 * through shm_stall_note_due(), so one process says at most one such line
 * per SHM_STALL_NOTE_EVERY_NS.
 */
#define SHM_STALL_NOTE_NS (2ull * 1000 * 1000 * 1000)
#define SHM_STALL_NOTE_EVERY_NS (10ull * 1000 * 1000 * 1000)
/* 1 when this process may say a stall line now (and counts it as said). */
int shm_stall_note_due(void);
/* The pid holding lock l when that is another process and it is stopped,
 * else 0 (reads /proc: for waits that have lasted SHM_STALL_NOTE_NS). */
uint32_t shm_lock_stopped_holder(const shm_lock_t *l);
void shm_lock_release(shm_lock_t *l);
/* This thread's tid (cached). */
uint32_t shm_tid(void);

#endif
