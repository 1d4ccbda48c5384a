/*
 * test_jnl_ckpt.c - the checkpoint container: round trips (simulated and
 * real disk, items larger than a write chunk), hand-made bad checkpoints (a
 * .tmp file, a truncated final file, a flipped byte, a wrong magic, a wrong
 * version, a name that disagrees with the start LSN inside, another store's
 * file) and what ckpt_read and ckpt_find_newest say about each, validation
 * before the first item versus streaming, pruning, and a crash and fault
 * sweep over writing one: at every operation index, under every fault kind,
 * followed by a power loss, the newest valid checkpoint is the old one or
 * the complete new one, and the new one after a successful commit.
 */
#include <ftw.h>
#include <xxhash.h>

#include "ckptfile.h"
#include "test_jnl_util.h"

#define DIR "/store/checkpoint"

static uint64_t salt;
static uint8_t item_buf[1 << 16];

/* Item i of a checkpoint: type, length, bytes as a function of (salt, i). */
static size_t item(uint64_t i, uint32_t *type)
{
	size_t len = tju_payload(salt, i, i % 97 == 5 ? 40000 : 3000, item_buf);

	*type = 1 + (uint32_t)(i % 5);
	return len;
}

static void write_ckpt(jio_t *io, const char *dir, uint64_t lsn, uint64_t n, size_t chunk)
{
	ckpt_writer_t *w;
	ckpt_meta_t m;

	CHECK_OK(ckpt_write_begin(dir, io, tju_uuid, lsn, chunk, &w));
	for (uint64_t i = 0; i < n; i++) {
		uint32_t type;
		size_t len = item(i, &type);

		if (i % 3 == 0 && len > 10)
			CHECK_OK(ckpt_write_item2(w, type, item_buf, 10, item_buf + 10, len - 10));
		else
			CHECK_OK(ckpt_write_item(w, type, item_buf, len));
	}
	CHECK_OK(ckpt_write_commit(w, &m));
	CHECK(m.start_lsn == lsn && m.items == n && m.bytes >= 104);
}

struct seen {
	uint64_t n;
	int bad;
};

static int seen_fn(void *ctx, uint32_t type, const void *data, size_t len)
{
	struct seen *s = ctx;
	uint32_t want_type;
	size_t want = item(s->n, &want_type);

	if (type != want_type || len != want || memcmp(data, item_buf, len))
		s->bad = 1;
	s->n++;
	return 0;
}

static void read_ok(jio_t *io, const char *path, uint64_t n, unsigned flags)
{
	struct seen s = { 0 };
	ckpt_meta_t m;

	CHECK_OK(ckpt_read(path, io, tju_uuid, flags, seen_fn, &s, &m));
	CHECK(!s.bad && s.n == n && m.items == n);
}

static void path_of(char *buf, size_t cap, uint64_t lsn, int tmp)
{
	char name[64];

	CHECK_OK(ckpt_file_name(name, sizeof name, lsn, tmp));
	snprintf(buf, cap, "%s/%s", DIR, name);
}

static int warnings;
static char all_warnings[16384]; /* every warning of one search, one per line */

static void warn_fn(void *ctx, const char *msg)
{
	size_t n = strlen(all_warnings);

	(void)ctx;
	warnings++;
	snprintf(all_warnings + n, sizeof all_warnings - n, "%s\n", msg);
}

/* Find the newest; expect `lsn` and `nwarn` warnings, one mentioning
 * `needle`. */
static void expect_newest(jio_sim_t *sim, uint64_t lsn, int nwarn, const char *needle)
{
	char path[512], want[512];
	ckpt_meta_t m;

	warnings = 0;
	all_warnings[0] = 0;
	CHECK_OK(ckpt_find_newest(DIR, jio_sim_io(sim), tju_uuid, warn_fn, NULL, path, sizeof path, &m));
	path_of(want, sizeof want, lsn, 0);
	if (strcmp(path, want) || warnings != nwarn || (needle && !strstr(all_warnings, needle))) {
		fprintf(stderr, "newest %s (want %s), %d warnings (want %d): %s\n", path, want, warnings,
			nwarn, all_warnings);
		CHECK(0);
	}
	CHECK(m.start_lsn == lsn);
	if (needle)
		printf("  warnings for %s:\n%s", needle, all_warnings);
}

static void copy_file(jio_sim_t *sim, uint64_t from, uint64_t to, size_t cut)
{
	char a[512], b[512];
	uint8_t *d;
	size_t len;

	path_of(a, sizeof a, from, 0);
	path_of(b, sizeof b, to, 0);
	CHECK_OK(jio_sim_get(sim, a, &d, &len));
	CHECK_OK(jio_sim_put(sim, b, d, cut ? cut : len));
	free(d);
}

static void edit(jio_sim_t *sim, uint64_t lsn, size_t off, const void *bytes, size_t n, int fix_hdr)
{
	char p[512];
	uint8_t *d;
	size_t len;

	path_of(p, sizeof p, lsn, 0);
	CHECK_OK(jio_sim_get(sim, p, &d, &len));
	memcpy(d + off, bytes, n);
	if (fix_hdr) {
		uint64_t sum = XXH3_64bits(d, 56);

		memcpy(d + 56, &sum, 8);
	}
	CHECK_OK(jio_sim_put(sim, p, d, len));
	free(d);
}

static void hand_made(void)
{
	jio_sim_t *sim;
	jio_t *io;
	char p[512];
	struct seen s = { 0 };
	unsigned removed;
	uint32_t v2 = 2;
	uint8_t other[16];

	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, "/store"));
	io = jio_sim_io(sim);
	CHECK_RC(ckpt_find_newest(DIR, io, tju_uuid, NULL, NULL, p, sizeof p, NULL), KEEL_E_NOTFOUND);
	write_ckpt(io, DIR, 10, 50, 4096);
	write_ckpt(io, DIR, 20, 60, 4096);
	write_ckpt(io, DIR, 30, 70, 4096);
	expect_newest(sim, 30, 0, NULL);

	/* A .tmp file, newer: ignored without a word. */
	CHECK_OK(jio_sim_put(sim, DIR "/ckpt-0000000000000028.tmp", "half a checkpoint", 17));
	expect_newest(sim, 30, 0, NULL);

	/* A byte flipped inside an item: checksum. */
	edit(sim, 30, 200, "\xff", 1, 0);
	path_of(p, sizeof p, 30, 0);
	CHECK_RC(ckpt_read(p, io, tju_uuid, 0, seen_fn, &s, NULL), KEEL_E_CORRUPT);
	CHECK(s.n == 0); /* validated before the first item */
	CHECK(strstr(jio_errmsg(), "checksum mismatch") && strstr(jio_errmsg(), "ckpt-000000000000001e"));
	s.n = 0;
	CHECK_RC(ckpt_read(p, io, tju_uuid, CKPT_READ_STREAM, seen_fn, &s, NULL), KEEL_E_CORRUPT);
	CHECK(s.n == 70); /* streamed, then refused at the end */
	expect_newest(sim, 20, 1, "checksum mismatch");

	/* A truncated final file (half-written, then renamed by hand). */
	copy_file(sim, 20, 0x50, 3000);
	expect_newest(sim, 20, 2, "incomplete");
	/* Wrong magic. */
	copy_file(sim, 20, 0x60, 0);
	edit(sim, 0x60, 0, "XCKP", 4, 0);
	expect_newest(sim, 20, 3, "no checkpoint magic");
	/* Wrong version, header checksum fixed. */
	copy_file(sim, 20, 0x70, 0);
	edit(sim, 0x70, 4, &v2, 4, 1);
	expect_newest(sim, 20, 4, "version 2");
	/* A name that disagrees with the LSN inside. */
	copy_file(sim, 20, 0x80, 0);
	expect_newest(sim, 20, 5, "its name says 128");
	/* Another store's checkpoint. */
	memcpy(other, tju_uuid, 16);
	other[3] ^= 0x40;
	write_ckpt(io, DIR, 0x90, 5, 4096);
	path_of(p, sizeof p, 0x90, 0);
	CHECK_RC(ckpt_read(p, io, other, 0, NULL, NULL, NULL), KEEL_E_CORRUPT);
	CHECK(strstr(jio_errmsg(), "another store"));

	/* Bad writer arguments. */
	{
		ckpt_writer_t *w;

		CHECK_RC(ckpt_write_begin(DIR, io, tju_uuid, 1, 100, &w), KEEL_E_INVAL);
		CHECK_OK(ckpt_write_begin(DIR, io, tju_uuid, 1, 0, &w));
		CHECK_RC(ckpt_write_item(w, 0, "x", 1), KEEL_E_INVAL);
		CHECK_RC(ckpt_write_item(w, 1, NULL, 5), KEEL_E_INVAL);
		ckpt_write_abort(w);
	}

	/* Prune below 20: ckpt 10 goes; the .tmp of 40 stays. */
	CHECK_OK(ckpt_prune(DIR, io, 20, &removed));
	CHECK(removed == 1);
	path_of(p, sizeof p, 10, 0);
	CHECK_RC(ckpt_read(p, io, tju_uuid, 0, NULL, NULL, NULL), KEEL_E_NOTFOUND);
	read_ok(io, DIR "/ckpt-0000000000000014", 60, 0);
	CHECK_OK(ckpt_prune(DIR, io, 0x29, &removed));
	CHECK(removed == 3); /* 20, 30 and the .tmp of 40 */
	jio_sim_destroy(sim);
}

/* Writing checkpoint 200 over a durable checkpoint 100, failing at op K. */
static int write_partial(jio_t *io, uint64_t n)
{
	ckpt_writer_t *w;
	int rc = ckpt_write_begin(DIR, io, tju_uuid, 200, 4096, &w);

	for (uint64_t i = 0; rc == 0 && i < n; i++) {
		uint32_t type;
		size_t len = item(i, &type);

		rc = ckpt_write_item(w, type, item_buf, len);
	}
	if (rc == 0)
		return ckpt_write_commit(w, NULL);
	ckpt_write_abort(w);
	return rc;
}

static void crash_sweep(void)
{
	jio_sim_t *base, *dry;
	uint64_t total, n = 40, runs = 0, newer = 0;
	static const int kinds[] = { JIO_FAULT_EIO, JIO_FAULT_ENOSPC, JIO_FAULT_SHORT };

	CHECK_OK(jio_sim_create(&base));
	CHECK_OK(jio_sim_mkdirs(base, "/store"));
	write_ckpt(jio_sim_io(base), DIR, 100, 30, 4096);
	CHECK(!jio_sim_dirty(base));
	CHECK_OK(jio_sim_clone(base, &dry));
	{
		uint64_t before = jio_sim_ops(dry);

		CHECK_OK(write_partial(jio_sim_io(dry), n));
		total = jio_sim_ops(dry) - before;
	}
	jio_sim_destroy(dry);
	for (uint64_t K = 0; K <= total; K++) {
		for (int k = 0; k < 3; k++) {
			jio_sim_t *sim;
			char p[512];
			ckpt_meta_t m;
			int rc;

			CHECK_OK(jio_sim_clone(base, &sim));
			jio_sim_fail(sim, jio_sim_ops(sim) + K, kinds[k], (int)tju_below(2));
			rc = write_partial(jio_sim_io(sim), n);
			CHECK(K == total ? rc == 0 : rc < 0);
			jio_sim_fail(sim, 0, JIO_FAULT_NONE, 0);
			CHECK_OK(jio_sim_crash(sim, tju_rand(), (int)tju_below(JIO_CRASH_POLICIES)));
			CHECK_OK(ckpt_find_newest(DIR, jio_sim_io(sim), tju_uuid, NULL, NULL, p, sizeof p, &m));
			CHECK(m.start_lsn == 100 || m.start_lsn == 200);
			if (rc == 0)
				CHECK(m.start_lsn == 200);
			if (m.start_lsn == 200) {
				read_ok(jio_sim_io(sim), p, n, 0);
				newer++;
			} else {
				read_ok(jio_sim_io(sim), p, 30, 0);
			}
			runs++;
			jio_sim_destroy(sim);
		}
	}
	printf("checkpoint crash sweep: %" PRIu64 " operations x 3 faults, %" PRIu64
	       " crash states, %" PRIu64 " ended with the new checkpoint\n", total + 1, runs, newer);
	jio_sim_destroy(base);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(int argc, char **argv)
{
	jio_sim_t *sim;
	jio_t *real;
	char tmpl[] = "/tmp/keel-ckpt-XXXXXX", dir[256], path[512];

	tju_init(argc, argv, "Checkpoint container: round trips, bad files, crash and fault sweep.");
	salt = tju_seed;

	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, "/store"));
	write_ckpt(jio_sim_io(sim), DIR, 7, 400, 4096);
	path_of(path, sizeof path, 7, 0);
	read_ok(jio_sim_io(sim), path, 400, 0);
	read_ok(jio_sim_io(sim), path, 400, CKPT_READ_STREAM);
	CHECK_OK(ckpt_read(path, jio_sim_io(sim), tju_uuid, 0, NULL, NULL, NULL));
	write_ckpt(jio_sim_io(sim), DIR, 8, 0, 4096); /* an empty one is valid */
	path_of(path, sizeof path, 8, 0);
	read_ok(jio_sim_io(sim), path, 0, 0);
	jio_sim_destroy(sim);

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(dir, sizeof dir, "%s/checkpoint", tmpl);
	CHECK_OK(jio_real_create(0, 0, 0, &real));
	write_ckpt(real, dir, 0x1234, 3000, 0);
	{
		ckpt_meta_t m;

		CHECK_OK(ckpt_find_newest(dir, real, tju_uuid, NULL, NULL, path, sizeof path, &m));
		CHECK(m.start_lsn == 0x1234 && m.items == 3000);
		read_ok(real, path, 3000, 0);
	}
	jio_destroy(real);
	nftw(tmpl, rm_entry, 8, FTW_DEPTH | FTW_PHYS);

	hand_made();
	crash_sweep();
	printf("ok\n");
	return 0;
}
