/*
 * err.h - the per-thread detail message behind keel_errmsg().
 *
 * shm_err(code, fmt, ...) formats a message that says what happened, where,
 * expected vs found, and what to do, stores it for this thread and returns
 * `code`, so a failure path reads `return shm_err(KEEL_E_FULL, "...")`.
 */
#ifndef SHM_ERR_H
#define SHM_ERR_H

#include "lib/keel.h"

int shm_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Add context in front of the current message: "ctx: old message". */
int shm_err_ctx(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void shm_err_clear(void);
const char *shm_errmsg(void);

/* Always-on assertion for invariants whose failure would corrupt data. */
#define SHM_VERIFY(cond)                                                      \
	do {                                                                  \
		if (__builtin_expect(!(cond), 0))                             \
			shm_verify_fail(#cond, __FILE__, __LINE__);          \
	} while (0)
void shm_verify_fail(const char *what, const char *file, int line) __attribute__((noreturn));

#ifdef KEEL_DEBUG
#define SHM_ASSERT(cond) SHM_VERIFY(cond)
#else
#define SHM_ASSERT(cond) ((void)0)
#endif

#endif
