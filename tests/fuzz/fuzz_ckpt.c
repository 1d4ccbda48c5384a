/*
 * fuzz_ckpt.c - fuzz the checkpoint reader: bytes become a checkpoint file
 * on the simulated disk and go through ckpt_read (both modes) and
 * ckpt_find_newest.
 *
 * Input layout: byte 0 is a mode, the rest the file.
 *   MODE_FIXHDR  recompute the header checksum (and put this store's UUID),
 *   MODE_FIXTRL  recompute the trailer: items_bytes from the size and the
 *                file checksum, so the fuzzer reaches the item walk.
 * Oracles (beyond "no crash, no out-of-bounds access" under ASan):
 *   - ckpt_read returns 0 or KEEL_E_CORRUPT;
 *   - validating first, no item is handed out unless the whole file is
 *     valid; streaming hands out the same items in the same order and
 *     agrees on the verdict;
 *   - a valid file's item count matches its meta, and ckpt_find_newest
 *     finds it (its name carries the LSN inside) or warns and skips it.
 *
 * Built as a libFuzzer target with -DKEEL_LIBFUZZER (KEEL_FUZZ=ON with
 * clang), and as a plain program whose main() runs the target over seeded
 * random and mutated checkpoints for the default test suite.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "ckptfile.h"

#define FZ_DIR "/f/checkpoint"
#define FZ_FILE_MAX (128u * 1024u)
#define MODE_FIXHDR 1u
#define MODE_FIXTRL 2u

static const uint8_t fz_uuid[16] = { 'f', 'u', 'z', 'z', '-', 'c', 'k', 'p',
				     't', 0, 1, 2, 3, 4, 5, 6 };

static void fz_die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_ckpt: oracle failed: %s (rc %d %s): %s\n", what, rc, jio_code_name(rc),
		jio_errmsg());
	abort();
}

struct fz_items {
	uint64_t n;
	uint64_t hash; /* of types, lengths and bytes, in order */
};

static int fz_item(void *ctx, uint32_t type, const void *data, size_t len)
{
	struct fz_items *it = ctx;

	it->hash = XXH3_64bits_withSeed(data, len, it->hash ^ type ^ ((uint64_t)len << 32));
	it->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t file[FZ_FILE_MAX];
	jio_sim_t *sim;
	struct fz_items a = { 0, 0 }, b = { 0, 0 };
	ckpt_meta_t m;
	char path[320], found[256];
	uint64_t lsn = 0x42;
	size_t len;
	int rc, rc2;

	if (size < 1 || size - 1 > FZ_FILE_MAX)
		return 0;
	len = size - 1;
	memcpy(file, data + 1, len);
	if ((data[0] & MODE_FIXHDR) && len >= 64) {
		uint64_t sum;

		memcpy(file + 8, fz_uuid, 16);
		memcpy(&lsn, file + 24, 8);
		sum = XXH3_64bits(file, 56);
		memcpy(file + 56, &sum, 8);
	}
	if ((data[0] & MODE_FIXTRL) && len >= 104) {
		uint64_t items_bytes = len - 104, sum;

		memcpy(file + len - 24, &items_bytes, 8);
		memcpy(file + len - 16, file + 24, 8); /* start LSN, as in the header */
		sum = XXH3_64bits(file, len - 8);
		memcpy(file + len - 8, &sum, 8);
	}
	if (jio_sim_create(&sim) < 0 || ckpt_file_name(found, sizeof found, lsn, 0) < 0)
		fz_die("setup", 0);
	snprintf(path, sizeof path, "%s/%s", FZ_DIR, found);
	if (jio_sim_put(sim, path, file, len) < 0)
		fz_die("sim put", 0);

	rc = ckpt_read(path, jio_sim_io(sim), fz_uuid, 0, fz_item, &a, &m);
	if (rc != 0 && rc != KEEL_E_CORRUPT)
		fz_die("read returned an unexpected code", rc);
	if (rc != 0 && a.n != 0)
		fz_die("items handed out from an invalid checkpoint", rc);
	if (rc == 0 && m.items != a.n)
		fz_die("item count differs from meta", rc);
	rc2 = ckpt_read(path, jio_sim_io(sim), fz_uuid, CKPT_READ_STREAM, fz_item, &b, NULL);
	if (rc2 != rc)
		fz_die("streaming and validating first disagree", rc2);
	if (rc == 0 && (a.n != b.n || a.hash != b.hash))
		fz_die("streaming handed out other items", rc2);
	rc2 = ckpt_find_newest(FZ_DIR, jio_sim_io(sim), fz_uuid, NULL, NULL, found, sizeof found, NULL);
	if (rc == 0 && m.start_lsn == lsn && rc2 != 0)
		fz_die("a valid checkpoint was not found", rc2);
	if (rc != 0 && rc2 != KEEL_E_NOTFOUND)
		fz_die("an invalid checkpoint was chosen", rc2);
	jio_sim_destroy(sim);
	return 0;
}

#ifndef KEEL_LIBFUZZER
/* ---- the plain driver ---------------------------------------------------------- */

static uint64_t fz_state;

static uint64_t fz_rand(void)
{
	uint64_t z = (fz_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A real checkpoint made by the writer, into out; returns its size. */
static size_t fz_real(uint8_t *out, size_t cap)
{
	jio_sim_t *sim;
	ckpt_writer_t *w;
	uint8_t item[2000], *d;
	unsigned n = (unsigned)(fz_rand() % 30);
	char name[64], path[256];
	size_t len;

	if (jio_sim_create(&sim) < 0 || jio_sim_mkdirs(sim, "/f") < 0 ||
	    ckpt_write_begin(FZ_DIR, jio_sim_io(sim), fz_uuid, 0x42, 4096, &w) < 0)
		fz_die("writer", 0);
	for (unsigned i = 0; i < n; i++) {
		size_t k = fz_rand() % sizeof item;

		for (size_t b = 0; b < k; b++)
			item[b] = (uint8_t)fz_rand();
		if (ckpt_write_item(w, 1 + (uint32_t)(fz_rand() % 4), item, k) < 0)
			fz_die("item", 0);
	}
	if (ckpt_write_commit(w, NULL) < 0 || ckpt_file_name(name, sizeof name, 0x42, 0) < 0)
		fz_die("commit", 0);
	snprintf(path, sizeof path, "%s/%s", FZ_DIR, name);
	if (jio_sim_get(sim, path, &d, &len) < 0)
		fz_die("get", 0);
	if (len > cap)
		len = cap;
	memcpy(out, d, len);
	free(d);
	jio_sim_destroy(sim);
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t buf[FZ_FILE_MAX + 1];
	uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	unsigned long runs = 3000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: %s [--seed N] [--runs N]\nRun the checkpoint fuzz target over "
			       "seeded random and mutated checkpoints (libFuzzer build: KEEL_FUZZ=ON).\n",
			       argv[0]);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown argument %s (try --help)\n", argv[0], argv[i]);
			return 2;
		}
	}
	printf("fuzz_ckpt: seed %" PRIu64 ", %lu runs\n", seed, runs);
	fflush(stdout);
	fz_state = seed;
	for (unsigned long r = 0; r < runs; r++) {
		size_t len;

		if (r % 8 == 7) {
			len = 1 + (size_t)(fz_rand() % 3000);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)fz_rand();
		} else {
			unsigned n = (unsigned)(fz_rand() % 4);

			len = 1 + fz_real(buf + 1, FZ_FILE_MAX);
			for (unsigned i = 0; i < n && len > 1; i++) {
				size_t at = 1 + (size_t)(fz_rand() % (len - 1));

				switch (fz_rand() % 4) {
				case 0:
					buf[at] ^= (uint8_t)(1u << (fz_rand() % 8));
					break;
				case 1:
					buf[at] = (uint8_t)fz_rand();
					break;
				case 2:
					len = at;
					break;
				default: /* a length field made huge or small */
					if (at + 8 <= len) {
						uint64_t v = fz_rand() % 2 ? fz_rand() : fz_rand() % 5000;

						memcpy(buf + at - (at - 1) % 8, &v, 8);
					}
					break;
				}
			}
		}
		buf[0] = (uint8_t)(fz_rand() % 4);
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("ok\n");
	return 0;
}
#endif
