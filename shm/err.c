/*
 * err.c - per-thread detail messages; see err.h.
 */
#include "shm/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRMSG_BYTES_MAX 1024

static __thread char errmsg[ERRMSG_BYTES_MAX];

int shm_err(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int shm_err_ctx(int code, const char *fmt, ...)
{
	char old[ERRMSG_BYTES_MAX];
	char ctx[ERRMSG_BYTES_MAX];
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* "ctx: old", cut short when longer than the buffer */
	size_t len = 0;
	const char *parts[] = { ctx, ": ", old };
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		size_t n = strnlen(parts[i], sizeof(errmsg) - 1 - len);
		memcpy(errmsg + len, parts[i], n);
		len += n;
	}
	errmsg[len] = 0;
	return code;
}

void shm_err_clear(void)
{
	errmsg[0] = 0;
}

const char *shm_errmsg(void)
{
	return errmsg;
}

void shm_verify_fail(const char *what, const char *file, int line)
{
	fprintf(stderr, "keel: invariant failed: %s at %s:%d\n", what, file, line);
	abort();
}
