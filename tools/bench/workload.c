/*
 * workload.c - keys, values, the random key sequence, and the small
 * services every module of keel-bench uses: the clock, paths and temp
 * trees, messages, and the stop flag set by SIGINT/SIGTERM.
 *
 * Key and value formats (see also bench.h)
 * ----------------------------------------
 *   key i    16 bytes: lowercase hex of mix64(i), most significant first.
 *            mix64 is the splitmix64 finaliser, a bijection on 64 bits, so
 *            distinct indices give distinct keys.
 *   value i  100 bytes:
 *              offset  size  field
 *                   0     8  i, little-endian
 *                   8     8  generation, little-endian (0 when loaded)
 *                  16    84  byte j = (uint8_t)(mix64(i) >> (8 * (j % 8))) ^ j
 *            Valid for key i if and only if the length is 100, bytes 0..7
 *            hold i and bytes 16..99 match the pattern.
 *
 * The sequence is bench_seq: len = the smallest power of two >= 2N, at
 * least 2^16 and at most 2^22 entries, drawn from splitmix64(seed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>

#include "bench.h"

struct bench_config bench_cfg;
struct bench_seq bench_seq;
volatile sig_atomic_t bench_stop_signal;

#define SEQ_LEN_MIN (1u << 16)
#define SEQ_LEN_MAX (1u << 22)
#define ERRMSG_BYTES_MAX 1024

static char errmsg[ERRMSG_BYTES_MAX];
static uint32_t *sorted_index;            /* bench_sorted_order() */

/* ---- keys and values -------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t bench_rand_next(uint64_t *state)
{
	*state += 0x9e3779b97f4a7c15ull;
	return mix64(*state);
}

void bench_key(uint64_t index, uint8_t out[BENCH_KEY_BYTES])
{
	static const char hex[16] = "0123456789abcdef";
	uint64_t x = mix64(index);

	for (int i = BENCH_KEY_BYTES - 1; i >= 0; i--) {
		out[i] = (uint8_t)hex[x & 15];
		x >>= 4;
	}
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
		v = (v << 8) | p[i];
	return v;
}

static uint8_t pattern_byte(uint64_t m, unsigned j)
{
	return (uint8_t)((m >> (8 * (j % 8))) ^ j);
}

void bench_value(uint64_t index, uint64_t gen, uint8_t out[BENCH_VALUE_BYTES])
{
	uint64_t m = mix64(index);

	put_le64(out, index);
	put_le64(out + 8, gen);
	for (unsigned j = 16; j < BENCH_VALUE_BYTES; j++)
		out[j] = pattern_byte(m, j);
}

int bench_value_check(uint64_t index, const void *val, size_t vlen)
{
	const uint8_t *v = val;
	uint64_t m = mix64(index);

	if (vlen != BENCH_VALUE_BYTES)
		return bench_fail(KEEL_E_CORRUPT, "value of key %llu: length %zu, expected %u",
				  (unsigned long long)index, vlen, BENCH_VALUE_BYTES);
	if (get_le64(v) != index)
		return bench_fail(KEEL_E_CORRUPT,
				  "value of key %llu: holds index %llu (another key's value)",
				  (unsigned long long)index, (unsigned long long)get_le64(v));
	for (unsigned j = 16; j < BENCH_VALUE_BYTES; j++)
		if (v[j] != pattern_byte(m, j))
			return bench_fail(KEEL_E_CORRUPT,
					  "value of key %llu: byte %u is 0x%02x, expected 0x%02x",
					  (unsigned long long)index, j, v[j], pattern_byte(m, j));
	return 0;
}

int bench_seq_build(void)
{
	uint64_t n = bench_cfg.keys, st = bench_cfg.seed;
	size_t len = SEQ_LEN_MIN;

	while (len < 2 * n && len < SEQ_LEN_MAX)
		len <<= 1;
	bench_seq.keys = malloc(len * BENCH_KEY_BYTES);
	bench_seq.index = malloc(len * sizeof(uint32_t));
	if (!bench_seq.keys || !bench_seq.index) {
		bench_seq_free();
		return bench_fail(KEEL_E_NOMEM, "key sequence: cannot allocate %zu entries", len);
	}
	bench_seq.len = len;
	bench_seq.mask = len - 1;
	for (size_t i = 0; i < len; i++) {
		/* Multiply-shift maps 64 random bits onto [0, n) without the
		 * bias of a modulo. */
		uint64_t r = bench_rand_next(&st);
		uint32_t idx = (uint32_t)(((unsigned __int128)r * n) >> 64);

		bench_seq.index[i] = idx;
		bench_key(idx, bench_seq.keys + i * BENCH_KEY_BYTES);
	}
	return 0;
}

void bench_seq_free(void)
{
	free(sorted_index);
	sorted_index = NULL;
	free(bench_seq.keys);
	free(bench_seq.index);
	memset(&bench_seq, 0, sizeof(bench_seq));
}

static int cmp_key_index(const void *a, const void *b)
{
	uint8_t ka[BENCH_KEY_BYTES], kb[BENCH_KEY_BYTES];

	bench_key(*(const uint32_t *)a, ka);
	bench_key(*(const uint32_t *)b, kb);
	return memcmp(ka, kb, BENCH_KEY_BYTES);
}

int bench_sorted_order(const uint32_t **out)
{
	if (!sorted_index) {
		uint32_t *idx = malloc(bench_cfg.keys * sizeof(uint32_t));

		if (!idx)
			return bench_fail(KEEL_E_NOMEM, "sorted key order: cannot allocate %llu "
					  "entries", (unsigned long long)bench_cfg.keys);
		for (uint64_t i = 0; i < bench_cfg.keys; i++)
			idx[i] = (uint32_t)i;
		qsort(idx, bench_cfg.keys, sizeof(uint32_t), cmp_key_index);
		sorted_index = idx;
	}
	*out = sorted_index;
	return 0;
}

size_t bench_seq_start(unsigned wid, unsigned nworkers)
{
	return (size_t)(((unsigned __int128)bench_seq.len * wid) / nworkers) & bench_seq.mask;
}

/* ---- clock and files ------------------------------------------------------------- */

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bench_path(char *out, const char *dir, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);

	if (n < 0 || n >= PATH_MAX)
		return bench_fail(KEEL_E_INVAL, "path %s/%s is longer than %d bytes", dir, name,
				  PATH_MAX - 1);
	return 0;
}

int bench_mkdir(const char *path)
{
	if (mkdir(path, 0700) != 0)
		return bench_fail(KEEL_E_OS, "mkdir %s: %s", path, strerror(errno));
	return 0;
}

static int rmtree_failed;

static int rmtree_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (remove(path) != 0 && errno != ENOENT) {
		bench_fail(KEEL_E_OS, "remove %s: %s (type %d)", path, strerror(errno), type);
		rmtree_failed = 1;
		return -1;
	}
	return 0;
}

int bench_rmtree(const char *path)
{
	if (!path[0])
		return 0;
	rmtree_failed = 0;
	if (nftw(path, rmtree_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		if (rmtree_failed)
			return KEEL_E_OS;
		if (errno == ENOENT)
			return 0;
		return bench_fail(KEEL_E_OS, "remove tree %s: %s", path, strerror(errno));
	}
	return 0;
}

int bench_on_tmpfs(const char *path)
{
	struct statfs sf;

	if (statfs(path, &sf) != 0)
		return bench_fail(KEEL_E_OS, "statfs %s: %s", path, strerror(errno));
	return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

int bench_huge_kib(const char *path, uint64_t *rss_kib, uint64_t *huge_kib)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[PATH_MAX + 128];
	size_t plen = strlen(path);
	int in = 0, found = 0;

	*rss_kib = *huge_kib = 0;
	if (!f)
		return bench_fail(KEEL_E_OS, "open /proc/self/smaps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		unsigned long long v, lo, hi;

		if (n && line[n - 1] == '\n')
			line[--n] = 0;
		if (sscanf(line, "%llx-%llx ", &lo, &hi) == 2) {   /* a mapping's header */
			in = n > plen && strcmp(line + n - plen, path) == 0 && line[n - plen - 1] == ' ';
			found |= in;
			continue;
		}
		if (in && sscanf(line, "Rss: %llu kB", &v) == 1)
			*rss_kib += v;
		else if (in && sscanf(line, "ShmemPmdMapped: %llu kB", &v) == 1)
			*huge_kib += v;
	}
	fclose(f);
	return found ? 0 : bench_fail(KEEL_E_NOTFOUND, "%s is not mapped by this process", path);
}

int bench_which(const char *prog, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	const char *p, *end;

	if (!path || !path[0])
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		size_t n;

		end = strchr(p, ':');
		if (!end)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (n == 0)
			continue;
		if ((size_t)snprintf(out, cap, "%.*s/%s", (int)n, p, prog) >= cap)
			continue;
		if (access(out, X_OK) == 0)
			return 0;
	}
	out[0] = 0;
	return bench_fail(KEEL_E_NOTFOUND, "%s is not on PATH (%s)", prog, path);
}

/* ---- messages ------------------------------------------------------------------ */

int bench_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return code;
}

int bench_keel_fail(int rc, const char *fmt, ...)
{
	char what[512];
	const char *detail = keel_errmsg();
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (detail && detail[0])
		snprintf(errmsg, sizeof(errmsg), "%s: %s (%s)", what, keel_strerror(rc), detail);
	else
		snprintf(errmsg, sizeof(errmsg), "%s: %s", what, keel_strerror(rc));
	return rc;
}

int bench_fail_ctx(int code, const char *fmt, ...)
{
	char old[ERRMSG_BYTES_MAX], ctx[512];
	va_list ap;

	memcpy(old, errmsg, sizeof(old));
	va_start(ap, fmt);
	vsnprintf(ctx, sizeof(ctx), fmt, ap);
	va_end(ap);
	/* A message too long for the buffer keeps its start, which says
	 * where the failure happened. */
	if (snprintf(errmsg, sizeof(errmsg), "%s: %s", ctx, old) < 0)
		errmsg[0] = 0;
	return code;
}

const char *bench_errmsg(void)
{
	return errmsg;
}

void bench_progress(const char *fmt, ...)
{
	va_list ap;

	fputs("keel-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int bench_interrupted_check(void)
{
	if (bench_stop_signal)
		return bench_fail(KEEL_E_OS, "interrupted by signal %d", (int)bench_stop_signal);
	return 0;
}
