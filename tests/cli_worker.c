/*
 * cli_worker.c - helper for test_cli.sh: processes and checks the shell
 * cannot make with the keel CLI alone.
 *
 *   cli_worker hold STORE
 *       Open STORE, print "ready", and stay attached until killed.
 *   cli_worker work STORE PARTITION ACKFILE
 *       Open STORE and put keys w1, w2, ... (value "v<i>") one commit each,
 *       appending "i" to ACKFILE after each put returns: ACKFILE lists
 *       acknowledged commits.  Prints "ready" after the first; runs until
 *       killed (or 10^6 puts).
 *   cli_worker transfer STORE
 *       Commit, again and again, one transaction that sets key "x" of
 *       partition "ta" to i and of partition "tb" to -i (decimal text), for
 *       i = 1, 2, ...: any one snapshot has ta/x + tb/x == 0.  Prints
 *       "ready" after the first; runs until killed (or 10^6 commits).
 *   cli_worker steps STORE
 *       Commit, again and again, one transaction that sets key "state" of
 *       partition "st" to i (decimal text) and reschedules timer "next" of
 *       "st" with payload i, for i = 1, 2, ...: any one snapshot of keys and
 *       timers has the two equal.  Prints "ready" after the first; runs
 *       until killed (or 10^6 commits).
 *   cli_worker fill STORE PARTITION N VALUE_MAX SEED
 *       Put N keys with binary keys (8 bytes of the index, NUL bytes
 *       included, then "\n") and pseudo-random values of 0..VALUE_MAX bytes,
 *       in batches of keel_put_many.
 *   cli_worker digest STORE
 *       For each partition, in name order: "NAME KEYS SUM", SUM being the
 *       sum of XXH3-64 over each (key length, key, value length, value),
 *       which does not depend on iteration order.  Two stores with the same
 *       partitions, keys and values print the same lines.
 *   cli_worker damage STORE PARTITION
 *       Hand-made damage for `keel verify`: set the partition's "applying
 *       LSN" marker while its lock is free, which the audit reports (a
 *       commit never leaves it so).  Uses the internal layout.
 *   cli_worker dumpcheck FILE
 *       Parse a dump by the layout documented in tools/keel.c and
 *       `keel export --help`, written independently of the CLI's reader, and
 *       print "records R partitions P keys K".  Exit 1 if it does not parse
 *       or its checksum does not match.
 *
 * Exit 0 on success, 1 on failure, 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "keel.h"
#include "lib/internal.h"

static int fail(const char *what, int rc)
{
	fprintf(stderr, "cli_worker: %s: %s (%s)\n", what, keel_strerror(rc), keel_errmsg());
	return 1;
}

static int do_hold(const char *dir)
{
	keel_t *h;
	int rc = keel_open(dir, NULL, &h);

	if (rc)
		return fail("open", rc);
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

static int do_work(const char *dir, const char *part, const char *ackfile)
{
	keel_t *h;
	int fd, rc = keel_open(dir, NULL, &h);

	if (rc)
		return fail("open", rc);
	fd = open(ackfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0) {
		perror(ackfile);
		return 1;
	}
	for (unsigned i = 1; i <= 1000000; i++) {
		char k[32], v[32], line[32];
		int kn = snprintf(k, sizeof(k), "w%u", i), vn = snprintf(v, sizeof(v), "v%u", i);
		int ln = snprintf(line, sizeof(line), "%u\n", i);

		if ((rc = keel_put(h, part, k, (size_t)kn, v, (size_t)vn, NULL)))
			return fail("put", rc);
		if (write(fd, line, (size_t)ln) != ln) {
			perror("write ack");
			return 1;
		}
		if (i == 1) {
			printf("ready\n");
			fflush(stdout);
		}
	}
	keel_close(h);
	return 0;
}

static int do_transfer(const char *dir)
{
	keel_t *h;
	int rc = keel_open(dir, NULL, &h);

	if (rc)
		return fail("open", rc);
	for (long i = 1; i <= 1000000; i++) {
		char a[32], b[32];
		int an = snprintf(a, sizeof(a), "%ld", i), bn = snprintf(b, sizeof(b), "%ld", -i);
		keel_txn_t *t;

		if ((rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t)))
			return fail("txn_begin", rc);
		if ((rc = keel_txn_put(t, "ta", "x", 1, a, (size_t)an)) ||
		    (rc = keel_txn_put(t, "tb", "x", 1, b, (size_t)bn))) {
			keel_txn_abort(t);
			return fail("txn_put", rc);
		}
		if ((rc = keel_txn_commit(t, NULL)))
			return fail("commit", rc);
		if (i == 1) {
			printf("ready\n");
			fflush(stdout);
		}
	}
	keel_close(h);
	return 0;
}

static int do_steps(const char *dir)
{
	keel_t *h;
	int rc = keel_open(dir, NULL, &h);

	if (rc)
		return fail("open", rc);
	for (long i = 1; i <= 1000000; i++) {
		char a[32];
		int an = snprintf(a, sizeof(a), "%ld", i);
		keel_txn_t *t;

		if ((rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t)))
			return fail("txn_begin", rc);
		if ((rc = keel_txn_put(t, "st", "state", 5, a, (size_t)an)) ||
		    (rc = keel_txn_timer_set(t, "st", "next", 4, KEEL_TIMER_DUE_MAX, a, (size_t)an))) {
			keel_txn_abort(t);
			return fail("txn_put", rc);
		}
		if ((rc = keel_txn_commit(t, NULL)))
			return fail("commit", rc);
		if (i == 1) {
			printf("ready\n");
			fflush(stdout);
		}
	}
	keel_close(h);
	return 0;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s += 0x9e3779b97f4a7c15ull;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#define FILL_BATCH 256

static int do_fill(const char *dir, const char *part, unsigned long n, unsigned long vmax,
		   unsigned long seed)
{
	static uint8_t keys[FILL_BATCH][9];
	const void *kp[FILL_BATCH], *vp[FILL_BATCH];
	size_t kl[FILL_BATCH], vl[FILL_BATCH];
	uint8_t *vals = malloc((vmax + 1) * FILL_BATCH);
	uint64_t s = seed;
	keel_t *h;
	int rc;

	if (!vals)
		return 1;
	if ((rc = keel_open(dir, NULL, &h)))
		return fail("open", rc);
	for (unsigned long i = 0; i < n;) {
		size_t m = 0;

		size_t bytes = 0;

		/* A batch is one commit record: keep it well under a quarter
		 * of the default 16 MiB ring. */
		for (; m < FILL_BATCH && i < n && bytes < (2u << 20); m++, i++) {
			uint8_t *v = vals + m * (vmax + 1);

			for (int b = 0; b < 8; b++)
				keys[m][b] = (uint8_t)(i >> (8 * (7 - b)));
			keys[m][8] = '\n';
			vl[m] = vmax ? rng_next(&s) % (vmax + 1) : 0;
			for (size_t b = 0; b < vl[m]; b++)
				v[b] = (uint8_t)rng_next(&s);
			kp[m] = keys[m];
			kl[m] = 9;
			vp[m] = v;
			bytes += vl[m] + 9;
		}
		if ((rc = keel_put_many(h, part, m, kp, kl, vp, vl, NULL)))
			return fail("put_many", rc);
	}
	keel_close(h);
	free(vals);
	return 0;
}

struct digest_part {
	char name[KEEL_PARTITION_NAME_MAX + 1];
};
struct digest_list {
	struct digest_part *v;
	size_t n, cap;
};

static int digest_collect(void *ctx, const char *name, uint64_t keys)
{
	(void)keys;
	struct digest_list *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct digest_part *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	snprintf(l->v[l->n++].name, sizeof(l->v[0].name), "%s", name);
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct digest_part *)a)->name, ((const struct digest_part *)b)->name);
}

static int do_digest(const char *dir)
{
	struct digest_list l = { 0 };
	keel_options_t o;
	keel_t *h;
	int rc;

	keel_options_init(&o);
	o.flags = KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY;
	if ((rc = keel_open(dir, &o, &h)))
		return fail("open", rc);
	if ((rc = keel_partitions(h, digest_collect, &l)))
		return fail("partitions", rc);
	qsort(l.v, l.n, sizeof(*l.v), by_name);
	for (size_t i = 0; i < l.n; i++) {
		keel_iter_t *it;
		uint64_t keys = 0, sum = 0;
		const void *k, *v;
		size_t kn, vn;

		if ((rc = keel_iter_open(h, l.v[i].name, NULL, 0, &it)))
			return fail("iter_open", rc);
		while ((rc = keel_iter_next(it, &k, &kn, &v, &vn, NULL)) == 1) {
			XXH3_state_t *x = XXH3_createState();
			uint64_t len;

			XXH3_64bits_reset(x);
			len = kn;
			XXH3_64bits_update(x, &len, sizeof(len));
			XXH3_64bits_update(x, k, kn);
			len = vn;
			XXH3_64bits_update(x, &len, sizeof(len));
			XXH3_64bits_update(x, v, vn);
			sum += XXH3_64bits_digest(x);
			XXH3_freeState(x);
			keys++;
		}
		keel_iter_close(it);
		if (rc < 0)
			return fail("iter_next", rc);
		printf("%s %llu %016llx\n", l.v[i].name, (unsigned long long)keys,
		       (unsigned long long)sum);
	}
	free(l.v);
	keel_close(h);
	return 0;
}

static int do_damage(const char *dir, const char *name)
{
	struct part *p = NULL;
	keel_t *h;
	int rc;

	if ((rc = keel_open(dir, NULL, &h)))
		return fail("open", rc);
	if ((rc = part_find(h, name, &p)) || !p)
		return fail("part_find", rc ? rc : KEEL_E_NOTFOUND);
	p->applying_lsn = 0x5eed;
	keel_close(h);
	return 0;
}

/* ---- dumpcheck: an independent reader of the documented layout ---- */
static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int do_dumpcheck(const char *file)
{
	FILE *f = fopen(file, "rb");
	uint8_t *buf;
	long size;
	size_t at = 32;
	uint64_t records = 0, parts = 0, keys = 0;

	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET))
		return perror(file), 1;
	buf = malloc((size_t)size + 1);
	if (!buf || fread(buf, 1, (size_t)size, f) != (size_t)size)
		return perror(file), 1;
	fclose(f);
#define NEED(n)                                                                       \
	do {                                                                          \
		if ((size_t)size - at < (size_t)(n)) {                                \
			fprintf(stderr, "dumpcheck: truncated at %zu\n", at);         \
			return 1;                                                     \
		}                                                                     \
	} while (0)
	if (size < 32 + 17 || memcmp(buf, "KEELDUMP", 8) || le(buf + 8, 4) != 1) {
		fprintf(stderr, "dumpcheck: bad header\n");
		return 1;
	}
	for (;;) {
		NEED(1);
		uint8_t t = buf[at++];

		if (t == 'E')
			break;
		if (t != 'P' && t != 'K') {
			fprintf(stderr, "dumpcheck: record type %02x at %zu\n", t, at - 1);
			return 1;
		}
		NEED(2);
		uint64_t n = le(buf + at, 2);
		at += 2;
		NEED(n);
		at += n;
		if (t == 'P') {
			parts++;
		} else {
			NEED(4);
			n = le(buf + at, 4);
			at += 4;
			NEED(n);
			at += n;
			NEED(4);
			n = le(buf + at, 4);
			at += 4;
			NEED(n + 16);
			at += n + 16;
			keys++;
		}
		records++;
	}
	NEED(16);
	if (le(buf + at, 8) != records) {
		fprintf(stderr, "dumpcheck: trailer count %llu, found %llu\n",
			(unsigned long long)le(buf + at, 8), (unsigned long long)records);
		return 1;
	}
	if (le(buf + at + 8, 8) != XXH3_64bits(buf, at + 8)) {
		fprintf(stderr, "dumpcheck: checksum mismatch\n");
		return 1;
	}
	if (at + 16 != (size_t)size) {
		fprintf(stderr, "dumpcheck: %zu bytes after the trailer\n", (size_t)size - at - 16);
		return 1;
	}
	printf("records %llu partitions %llu keys %llu\n", (unsigned long long)records,
	       (unsigned long long)parts, (unsigned long long)keys);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return do_hold(argv[2]);
	if (argc == 5 && !strcmp(argv[1], "work"))
		return do_work(argv[2], argv[3], argv[4]);
	if (argc == 3 && !strcmp(argv[1], "transfer"))
		return do_transfer(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "steps"))
		return do_steps(argv[2]);
	if (argc == 7 && !strcmp(argv[1], "fill"))
		return do_fill(argv[2], argv[3], strtoul(argv[4], NULL, 10),
			       strtoul(argv[5], NULL, 10), strtoul(argv[6], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "digest"))
		return do_digest(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "damage"))
		return do_damage(argv[2], argv[3]);
	if (argc == 3 && !strcmp(argv[1], "dumpcheck"))
		return do_dumpcheck(argv[2]);
	fprintf(stderr, "usage: cli_worker hold STORE | work STORE PARTITION ACKFILE |\n"
		"       transfer STORE | steps STORE |\n"
		"       fill STORE PARTITION N VALUE_MAX SEED | digest STORE |\n"
		"       damage STORE PARTITION | dumpcheck FILE\n");
	return 2;
}
