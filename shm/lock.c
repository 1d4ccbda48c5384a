/*
 * lock.c - robust process-shared mutexes; see lock.h for the contract.
 */
#include "shm/lock.h"

#include <errno.h>
#include <unistd.h>
#include <sys/syscall.h>

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

__attribute__((constructor)) static void lock_module_init(void)
{
	pid_cached = (uint32_t)getpid();
	pthread_atfork(NULL, NULL, reset_tid);
}

int shm_lock_init(shm_lock_t *l)
{
	pthread_mutexattr_t a;
	int rc;

	if ((rc = pthread_mutexattr_init(&a)))
		return -rc;
	pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
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

int shm_lock_acquire(shm_lock_t *l)
{
	return after_lock(l, pthread_mutex_lock(&l->m));
}

int shm_lock_try(shm_lock_t *l)
{
	return after_lock(l, pthread_mutex_trylock(&l->m));
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
