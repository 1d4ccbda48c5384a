/*
 * fuzz_journal.c - fuzz the journal reader: bytes become segment files on
 * the simulated disk and go through jnl_scan, repair, jnl_open and append.
 *
 * Input layout: byte 0 is a mode, the rest the body of segment 1 (and, with
 * MODE_TWO, of segment 2: the body is split in half).
 *   MODE_HEADER  put a valid segment header in front of each body (else the
 *                first 512 bytes of the body are the header, as given);
 *   MODE_FIXSUM  recompute the checksum of every item that has the record
 *                magic and an in-bounds length, so the fuzzer gets past the
 *                checksum and reaches the structural rules;
 *   MODE_TWO     two segments; segment 2's first LSN comes from byte 1;
 *   MODE_REPAIR  scan with JNL_SCAN_REPAIR (and MODE_SALVAGE: SALVAGE too).
 * Oracles (beyond "no crash, no out-of-bounds access" under ASan):
 *   - the scan returns 0 or KEEL_E_CORRUPT, and what it delivers has
 *     consecutive LSNs;
 *   - after a repair that returned 0, a second scan is CLEAN and delivers
 *     the same records, jnl_open succeeds, and one more record appends,
 *     flushes and reads back.
 *
 * Built two ways: with -DKEEL_LIBFUZZER as a libFuzzer target (CMake option
 * KEEL_FUZZ with clang), and as a plain program whose main() runs the
 * target over seeded random and mutated inputs (journals made by the real
 * writer, then damaged), a bounded number of times, for the default test
 * suite.  --seed N reproduces a run; --runs N sets the count.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "jio.h"
#include "journal.h"

#define FZ_DIR "/f/journal"
#define FZ_BODY_MAX (64u * 1024u)
#define MODE_HEADER 1u
#define MODE_FIXSUM 2u
#define MODE_TWO 4u
#define MODE_REPAIR 8u
#define MODE_SALVAGE 16u

static const uint8_t fz_uuid[16] = { 'f', 'u', 'z', 'z', '-', 'j', 'o', 'u',
				     'r', 'n', 'a', 'l', 0, 1, 2, 3 };

static jnl_scan_result_t fz_first; /* the first scan of the current input */
static unsigned fz_mode;

static void fz_die(const char *what, int rc)
{
	fprintf(stderr, "fuzz_journal: oracle failed: %s (rc %d %s): %s\n"
		"  input mode 0x%x; first scan: end %d bad %d, %" PRIu64 " records, next LSN %" PRIu64
		", end at segment %" PRIu64 " offset %" PRIu64 ": %s\n",
		what, rc, jio_code_name(rc), jio_errmsg(), fz_mode, fz_first.end, fz_first.bad,
		fz_first.records, fz_first.next_lsn, fz_first.end_segno, fz_first.end_off, fz_first.msg);
	abort();
}

/* A valid header for segment segno (written through the format's own
 * rules, independently of journal.c). */
static void fz_header(uint8_t *h, uint64_t segno, uint64_t first_lsn, uint64_t seg_bytes)
{
	uint32_t magic = 0x47534a4bu, version = 1, flags = 1;
	uint64_t sum;

	memset(h, 0, 512);
	memcpy(h, &magic, 4);
	memcpy(h + 4, &version, 4);
	memcpy(h + 8, &segno, 8);
	memcpy(h + 16, &first_lsn, 8);
	memcpy(h + 24, fz_uuid, 16);
	memcpy(h + 40, &seg_bytes, 8);
	memcpy(h + 48, &flags, 4);
	sum = XXH3_64bits(h, 512);
	memcpy(h + 56, &sum, 8);
}

/* Recompute record checksums where the magic is, as the writer would. */
static void fz_fixsum(uint8_t *seg, uint64_t seg_bytes, uint64_t segno)
{
	uint64_t salt = XXH3_64bits_withSeed(fz_uuid, 16, segno);

	for (uint64_t off = 512; off + 40 <= seg_bytes; off += 8) {
		uint32_t magic, len;
		uint16_t kind;
		uint64_t total, zero = 0, sum;

		memcpy(&magic, seg + off, 4);
		if (magic != 0x43524a4bu)
			continue;
		memcpy(&kind, seg + off + 4, 2);
		memcpy(&len, seg + off + 8, 4);
		total = kind == 2 ? 40ull + len : 40ull + ((len + 7ull) & ~7ull);
		if (off + total > seg_bytes)
			continue;
		memcpy(seg + off + 32, &zero, 8);
		sum = XXH3_64bits_withSeed(seg + off, total, salt);
		memcpy(seg + off + 32, &sum, 8);
	}
}

static int fz_count(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
	uint64_t *c = ctx; /* c[0] count, c[1] last LSN */

	(void)payload;
	(void)len;
	if (c[0] && lsn != c[1] + 1)
		fz_die("LSNs delivered out of order", 0);
	c[0]++;
	c[1] = lsn;
	return 0;
}

/* Put one segment file made of body[0..len). */
static void fz_segment(jio_sim_t *sim, unsigned mode, uint64_t segno, uint64_t first_lsn,
		       const uint8_t *body, size_t len)
{
	static uint8_t seg[FZ_BODY_MAX + 8192];
	uint64_t hdr = (mode & MODE_HEADER) ? 512 : 0;
	uint64_t seg_bytes = (hdr + len + 511) & ~511ull;
	char name[64], path[128];

	if (seg_bytes < JNL_SEG_BYTES_MIN)
		seg_bytes = JNL_SEG_BYTES_MIN;
	memset(seg, 0, (size_t)seg_bytes);
	memcpy(seg + hdr, body, len);
	if (mode & MODE_HEADER)
		fz_header(seg, segno, first_lsn, seg_bytes);
	if (mode & MODE_FIXSUM)
		fz_fixsum(seg, seg_bytes, segno);
	if (jnl_segment_name(name, sizeof name, segno) < 0)
		fz_die("segment name", 0);
	snprintf(path, sizeof path, "%s/%s", FZ_DIR, name);
	if (jio_sim_put(sim, path, seg, (size_t)seg_bytes) < 0)
		fz_die("sim put", 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jio_sim_t *sim;
	jnl_scan_result_t res, res2;
	unsigned mode, flags = 0;
	uint64_t c[2] = { 0, 0 }, c2[2] = { 0, 0 };
	int rc;

	if (size < 2 || size > FZ_BODY_MAX + 2)
		return 0;
	mode = data[0];
	if (jio_sim_create(&sim) < 0)
		fz_die("sim create", 0);
	if (mode & MODE_TWO) {
		size_t half = (size - 2) / 2;

		fz_segment(sim, mode, 1, 1, data + 2, half);
		fz_segment(sim, mode, 2, 1 + data[1], data + 2 + half, size - 2 - half);
	} else {
		fz_segment(sim, mode, 1, 1, data + 2, size - 2);
	}
	if (mode & MODE_REPAIR)
		flags |= JNL_SCAN_REPAIR;
	if (mode & MODE_SALVAGE)
		flags |= JNL_SCAN_SALVAGE;
	fz_mode = mode;
	memset(&fz_first, 0, sizeof fz_first);
	rc = jnl_scan(FZ_DIR, jio_sim_io(sim), fz_uuid, 1, flags, fz_count, c, &res);
	fz_first = res;
	if (rc != 0 && rc != KEEL_E_CORRUPT)
		fz_die("scan returned an unexpected code", rc);
	if (rc == 0 && res.records != c[0])
		fz_die("record count differs from the records delivered", rc);
	if (rc == 0 && (flags & JNL_SCAN_REPAIR) && res.end_segno) {
		jnl_t *j;
		jnl_opts_t o;
		uint8_t one = 7;

		rc = jnl_scan(FZ_DIR, jio_sim_io(sim), fz_uuid, 1, 0, fz_count, c2, &res2);
		if (rc != 0 || res2.end != JNL_END_CLEAN || c2[0] != c[0])
			fz_die("a repaired journal does not scan clean with the same records", rc);
		jnl_opts_init(&o);
		o.seg_bytes = JNL_SEG_BYTES_MIN;
		rc = jnl_open(FZ_DIR, jio_sim_io(sim), fz_uuid, &o, &j);
		if (rc < 0)
			fz_die("jnl_open after repair", rc);
		if ((rc = jnl_append(j, res.next_lsn, &one, 1)) < 0 || (rc = jnl_flush(j)) < 0)
			fz_die("append after repair", rc);
		jnl_close(j);
		c2[0] = c2[1] = 0;
		rc = jnl_scan(FZ_DIR, jio_sim_io(sim), fz_uuid, 1, 0, fz_count, c2, &res2);
		if (rc != 0 || res2.end != JNL_END_CLEAN || c2[0] != c[0] + 1 ||
		    c2[1] != res.next_lsn)
			fz_die("the appended record does not read back", rc);
	}
	jio_sim_destroy(sim);
	return 0;
}

#ifndef KEEL_LIBFUZZER
/* ---- the plain driver: seeded inputs for the default test suite ---------------- */

static uint64_t fz_state;

static uint64_t fz_rand(void)
{
	uint64_t z = (fz_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A real journal body (segment 1 without its header) made by the writer. */
static size_t fz_real_body(uint8_t *out, size_t cap, unsigned records)
{
	jio_sim_t *sim;
	jnl_opts_t o;
	jnl_t *j;
	uint8_t payload[300], *seg;
	size_t len;
	char path[128];

	if (jio_sim_create(&sim) < 0 || jio_sim_mkdirs(sim, "/f") < 0)
		fz_die("sim", 0);
	jnl_opts_init(&o);
	o.seg_bytes = JNL_SEG_BYTES_MIN * 2;
	if (jnl_open(FZ_DIR, jio_sim_io(sim), fz_uuid, &o, &j) < 0)
		fz_die("open", 0);
	for (unsigned i = 0; i < records; i++) {
		size_t n = fz_rand() % sizeof payload;

		for (size_t k = 0; k < n; k++)
			payload[k] = (uint8_t)fz_rand();
		if (jnl_append(j, i + 1, payload, n) < 0)
			break;
		if (fz_rand() % 3 == 0 && jnl_flush(j) < 0)
			fz_die("flush", 0);
	}
	jnl_flush(j);
	jnl_close(j);
	snprintf(path, sizeof path, "%s/seg-0000000000000001.jnl", FZ_DIR);
	if (jio_sim_get(sim, path, &seg, &len) < 0)
		fz_die("get", 0);
	len -= 512;
	if (len > cap)
		len = cap;
	memcpy(out, seg + 512, len);
	free(seg);
	jio_sim_destroy(sim);
	/* Trim the zero tail, so mutations land near the records. */
	while (len > 0 && out[len - 1] == 0)
		len--;
	return len + (fz_rand() % 2 ? 512 : 0);
}

static void fz_mutate(uint8_t *buf, size_t *len, size_t cap)
{
	unsigned n = 1 + (unsigned)(fz_rand() % 4);

	for (unsigned i = 0; i < n && *len > 2; i++) {
		size_t at = 2 + (size_t)(fz_rand() % (*len - 2));

		switch (fz_rand() % 6) {
		case 0: /* flip a bit */
			buf[at] ^= (uint8_t)(1u << (fz_rand() % 8));
			break;
		case 1: /* a random byte */
			buf[at] = (uint8_t)fz_rand();
			break;
		case 2: /* truncate */
			*len = at;
			break;
		case 3: /* zero a range */
		{
			size_t k = (size_t)(fz_rand() % 600);

			memset(buf + at, 0, k < *len - at ? k : *len - at);
			break;
		}
		case 4: /* copy a range elsewhere (duplicated records) */
		{
			size_t from = 2 + (size_t)(fz_rand() % (*len - 2));
			size_t k = (size_t)(fz_rand() % 700);

			if (from + k > *len)
				k = *len - from;
			if (at + k > cap)
				k = cap - at;
			memmove(buf + at, buf + from, k);
			if (at + k > *len)
				*len = at + k;
			break;
		}
		default: /* garbage over a sector */
			for (size_t k = 0; k < 512 && at + k < *len; k++)
				buf[at + k] = (uint8_t)fz_rand();
			break;
		}
	}
}

int main(int argc, char **argv)
{
	static uint8_t buf[FZ_BODY_MAX + 2];
	uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	unsigned long runs = 3000;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: %s [--seed N] [--runs N]\nRun the journal fuzz target over seeded "
			       "random and mutated journals (libFuzzer build: KEEL_FUZZ=ON).\n", argv[0]);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown argument %s (try --help)\n", argv[0], argv[i]);
			return 2;
		}
	}
	printf("fuzz_journal: seed %" PRIu64 ", %lu runs\n", seed, runs);
	fflush(stdout);
	fz_state = seed;
	for (unsigned long r = 0; r < runs; r++) {
		size_t len;

		if (r % 8 == 7) {
			/* Pure noise. */
			len = 2 + (size_t)(fz_rand() % 6000);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)fz_rand();
		} else {
			len = 2 + fz_real_body(buf + 2, FZ_BODY_MAX, 2 + (unsigned)(fz_rand() % 40));
			if (fz_rand() % 4)
				fz_mutate(buf, &len, sizeof buf);
			buf[1] = (uint8_t)fz_rand();
		}
		/* Mostly a valid header and fixed sums, so the parser is reached. */
		buf[0] = (uint8_t)(fz_rand() & 0x1f);
		if (fz_rand() % 4)
			buf[0] |= MODE_HEADER;
		if (fz_rand() % 2)
			buf[0] |= MODE_FIXSUM;
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("ok\n");
	return 0;
}
#endif
