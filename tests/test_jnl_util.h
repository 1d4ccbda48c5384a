/*
 * test_jnl_util.h - small helpers shared by the journal-layer tests
 * (tests/test_jnl_*.c) and the fuzz drivers: assertion macros, the seed,
 * deterministic payloads and a scan collector.
 *
 * These tests use only the journal layer (jio, journal, ckptfile) and
 * keel.h's error codes, so they build and run before the rest of libkeel.
 * A failed CHECK prints the place, the expression, the code name, the
 * journal layer's message and the seed to rerun with, then exits 1.
 * Every random choice comes from tju_rand(), seeded once by tju_seed_init
 * (--seed N, else clock and pid), so the printed seed reproduces a run.
 *
 * Included by one translation unit per program: functions are static.
 */
#ifndef KEEL_TEST_JNL_UTIL_H
#define KEEL_TEST_JNL_UTIL_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jio.h"
#include "journal.h"

#define TJU_UNUSED __attribute__((unused))

static uint64_t tju_seed TJU_UNUSED;
static uint64_t tju_state TJU_UNUSED;
static const char *tju_prog TJU_UNUSED = "test";

static TJU_UNUSED void tju_fail(const char *file, int line, const char *expr, long long code)
{
	fprintf(stderr, "%s: FAIL at %s:%d: %s", tju_prog, file, line, expr);
	if (code)
		fprintf(stderr, " (rc %lld %s)", code, jio_code_name((int)code));
	fprintf(stderr, "\n  journal message: %s\n  seed: %" PRIu64 " (rerun: %s --seed %" PRIu64 ")\n",
		jio_errmsg(), tju_seed, tju_prog, tju_seed);
	exit(1);
}

#define CHECK(cond)                                                   \
	do {                                                          \
		if (!(cond))                                          \
			tju_fail(__FILE__, __LINE__, #cond, 0);       \
	} while (0)

/* expr must return exactly `want`. */
#define CHECK_RC(expr, want)                                                  \
	do {                                                                  \
		long long rc_ = (long long)(expr);                            \
		if (rc_ != (long long)(want))                                 \
			tju_fail(__FILE__, __LINE__, #expr " == " #want, rc_); \
	} while (0)

#define CHECK_OK(expr) CHECK_RC(expr, 0)

static TJU_UNUSED uint64_t tju_rand(void)
{
	uint64_t z = (tju_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static TJU_UNUSED uint64_t tju_below(uint64_t n) { return n ? tju_rand() % n : 0; }

/* Parse --seed N and --long; print the seed. Returns 1 if --long was given. */
static TJU_UNUSED int tju_init(int argc, char **argv, const char *usage)
{
	int lng = 0;

	tju_prog = argv[0];
	tju_seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			char *end;

			tju_seed = strtoull(argv[++i], &end, 0);
			if (*end) {
				fprintf(stderr, "%s: --seed needs a number, got %s\n", argv[0], argv[i]);
				exit(2);
			}
		} else if (!strcmp(argv[i], "--long")) {
			lng = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: %s [--seed N] [--long]\n%s\n", argv[0], usage);
			exit(0);
		} else {
			fprintf(stderr, "%s: unknown argument %s (try --help)\n", argv[0], argv[i]);
			exit(2);
		}
	}
	tju_state = tju_seed;
	printf("%s: seed %" PRIu64 "\n", argv[0], tju_seed);
	fflush(stdout);
	return lng;
}

static const uint8_t tju_uuid[JNL_UUID_BYTES] TJU_UNUSED = {
	0x6b, 0x65, 0x65, 0x6c, 0x2d, 0x74, 0x65, 0x73, 0x74, 0x2d, 0x75, 0x75, 0x69, 0x64, 0x01, 0x02,
};

/* The payload of record `lsn` for a given salt: its length is in
 * 0..len_max and its bytes a function of (salt, lsn), so a reader can
 * verify what it gets without keeping copies. */
static TJU_UNUSED size_t tju_payload(uint64_t salt, uint64_t lsn, size_t len_max, uint8_t *buf)
{
	uint64_t s = salt * 0x9e3779b97f4a7c15ull ^ lsn;
	size_t len;

	s ^= s >> 29;
	s *= 0xbf58476d1ce4e5b9ull;
	len = (size_t)((s >> 7) % (len_max + 1));
	for (size_t i = 0; i < len; i++) {
		s = s * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = (uint8_t)(s >> 56);
	}
	return len;
}

/* Scan collector: checks LSNs are consecutive and payloads as made by
 * tju_payload with `salt`. */
struct tju_collect {
	uint64_t salt;
	size_t len_max;
	uint64_t first, last, count;
	int bad;              /* a payload or LSN was wrong */
	uint8_t buf[1 << 16];
};

static TJU_UNUSED int tju_collect_fn(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
	struct tju_collect *c = ctx;
	size_t want;

	if (c->count && lsn != c->last + 1)
		c->bad = 1;
	if (!c->count)
		c->first = lsn;
	c->last = lsn;
	c->count++;
	if (c->len_max <= sizeof c->buf) {
		want = tju_payload(c->salt, lsn, c->len_max, c->buf);
		if (want != len || memcmp(c->buf, payload, len))
			c->bad = 1;
	}
	return 0;
}

static TJU_UNUSED void tju_collect_init(struct tju_collect *c, uint64_t salt, size_t len_max)
{
	memset(c, 0, sizeof *c);
	c->salt = salt;
	c->len_max = len_max;
}

/* Append records first..last with tju_payload. */
static TJU_UNUSED int tju_append_range(jnl_t *j, uint64_t salt, size_t len_max, uint64_t first,
				       uint64_t last)
{
	static uint8_t buf[1 << 16];

	for (uint64_t l = first; l <= last; l++) {
		size_t len = tju_payload(salt, l, len_max, buf);
		int rc = jnl_append(j, l, buf, len);

		if (rc)
			return rc;
	}
	return 0;
}

#endif /* KEEL_TEST_JNL_UTIL_H */
