/*
 * test_jnl_roundtrip.c - journal round trips: append and flush many records
 * across several segments, scan them back, reopen and continue, recycle
 * below a checkpoint LSN and reuse the recycled segments (whose stale bytes
 * must never pass for records), on the simulated disk and on the real one
 * (io_uring) in a temporary directory.
 */
#include <errno.h>
#include <ftw.h>

#include "test_jnl_util.h"

#define DIR "/store/journal"
#define SEG (16u * 1024u)
#define LEN_MAX 700u

static uint64_t salt;

static void scan_all(jio_t *io, const char *dir, uint64_t from, uint64_t want_first,
		     uint64_t want_last)
{
	static struct tju_collect c;
	jnl_scan_result_t res;

	tju_collect_init(&c, salt, LEN_MAX);
	CHECK_OK(jnl_scan(dir, io, tju_uuid, from, 0, tju_collect_fn, &c, &res));
	CHECK(res.end == JNL_END_CLEAN);
	CHECK(!c.bad);
	CHECK(c.count == want_last - want_first + 1);
	CHECK(c.first == want_first && c.last == want_last);
	CHECK(res.records == c.count);
	CHECK(res.next_lsn == want_last + 1);
}

/* Append first..last in random batches, flushing after each. */
static void fill(jnl_t *j, uint64_t first, uint64_t last)
{
	uint64_t l = first;

	while (l <= last) {
		uint64_t n = 1 + tju_below(24);
		uint64_t end = l + n - 1 > last ? last : l + n - 1;

		CHECK_OK(tju_append_range(j, salt, LEN_MAX, l, end));
		CHECK_OK(jnl_flush(j));
		l = end + 1;
	}
}

static void run(jio_t *io, const char *dir, uint64_t n)
{
	jnl_opts_t o;
	jnl_t *j;
	jnl_info_t info;
	jnl_scan_result_t res;
	uint64_t cut;
	uint8_t big[SEG];

	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	o.spare_max = 3;
	CHECK_OK(jnl_open(dir, io, tju_uuid, &o, &j));
	jnl_info(j, &info);
	CHECK(info.next_lsn == 1 && info.segments == 1);
	CHECK_OK(jnl_flush(j)); /* nothing buffered: a no-op */

	/* Bad calls are refused and leave the journal usable. */
	CHECK_RC(jnl_append(j, 5, "x", 1), KEEL_E_INVAL);
	CHECK_RC(jnl_append(j, 1, big, JNL_PAYLOAD_MAX(SEG) + 1), KEEL_E_INVAL);
	CHECK_RC(jnl_append(j, 1, NULL, 3), KEEL_E_INVAL);

	fill(j, 1, n);
	jnl_info(j, &info);
	CHECK(info.next_lsn == n + 1 && info.flushed_lsn == n);
	CHECK(info.segments >= 4);
	CHECK(info.switches == info.segments); /* the first one at open */
	CHECK_OK(jnl_close(j));
	scan_all(io, dir, 0, 1, n);
	scan_all(io, dir, n / 2, n / 2, n);

	/* Reopen: appending continues where it stopped. */
	CHECK_OK(jnl_open(dir, io, tju_uuid, &o, &j));
	jnl_info(j, &info);
	CHECK(info.next_lsn == n + 1);
	fill(j, n + 1, n + n / 4);
	/* A record of the largest size, alone in a segment. */
	memset(big, 0xa5, sizeof big);
	CHECK_OK(jnl_flush(j));

	/* Recycle below a checkpoint at 3n/4: older segments become spares
	 * (renamed) and reading from before them is a gap. */
	cut = 3 * n / 4;
	CHECK_OK(jnl_recycle_below(j, cut));
	jnl_info(j, &info);
	CHECK(info.spares >= 1 && info.spares <= 3);
	CHECK(info.oldest_lsn <= cut);
	scan_all(io, dir, cut, cut, n + n / 4);
	CHECK_RC(jnl_scan(dir, io, tju_uuid, 1, 0, NULL, NULL, &res), KEEL_E_CORRUPT);
	CHECK(res.bad == JNL_BAD_GAP);

	/* Keep going through the recycled segments: their stale records,
	 * salted with their old numbers, never pass. */
	fill(j, n + n / 4 + 1, 2 * n);
	jnl_info(j, &info);
	CHECK(info.next_lsn == 2 * n + 1);
	CHECK_OK(jnl_prepare(j, 2));
	jnl_info(j, &info);
	CHECK(info.spares >= 2);
	CHECK_OK(jnl_close(j));
	scan_all(io, dir, cut, cut, 2 * n);

	/* Open again, write big records, reload, recycle everything but the
	 * current segment. */
	CHECK_OK(jnl_open(dir, io, tju_uuid, &o, &j));
	for (uint64_t l = 2 * n + 1; l <= 2 * n + 3; l++) {
		CHECK_OK(jnl_append(j, l, big, JNL_PAYLOAD_MAX(SEG)));
		CHECK_OK(jnl_flush(j));
	}
	CHECK_OK(jnl_reload(j, 0));
	jnl_info(j, &info);
	CHECK(info.next_lsn == 2 * n + 4);
	CHECK_OK(jnl_recycle_below(j, 2 * n + 4));
	jnl_info(j, &info);
	CHECK(info.segments == 1);
	CHECK_OK(jnl_close(j));
	{
		jnl_scan_result_t r2;

		CHECK_OK(jnl_scan(dir, io, tju_uuid, 2 * n + 3, 0, NULL, NULL, &r2));
		CHECK(r2.end == JNL_END_CLEAN && r2.next_lsn == 2 * n + 4);
	}
}

/* The real backend's batching: more writes than the ring holds, split
 * into chains, the last one carrying the fdatasync; then read back. */
static void real_batches(const char *dir)
{
	jio_t *io, *bad;
	char path[512];
	static uint8_t buf[10][3000], back[3000];
	struct jio_wr w[10];
	uint64_t size;
	int fh;

	CHECK_OK(jio_real_create(4, 0, 0, &io));
	CHECK_RC(jio_real_create(1, 0, 0, &bad), KEEL_E_INVAL);
	CHECK(bad == NULL);
	CHECK_OK(jio_mkdir(io, dir));
	snprintf(path, sizeof path, "%s/batch", dir);
	CHECK_OK(jio_open(io, path, JIO_RDWR | JIO_CREATE | JIO_EXCL, &fh));
	for (int i = 0; i < 10; i++) {
		memset(buf[i], 'a' + i, sizeof buf[i]);
		w[i].off = (uint64_t)i * sizeof buf[i];
		w[i].buf = buf[i];
		w[i].len = sizeof buf[i];
	}
	CHECK_OK(jio_write(io, fh, w, 10, JIO_W_DATASYNC));
	for (int i = 0; i < 10; i++) {
		CHECK_OK(jio_read_exact(io, fh, back, sizeof back, w[i].off, path));
		CHECK(!memcmp(back, buf[i], sizeof back));
	}
	/* 5 MiB of zeros: five 1 MiB writes through a ring of 4. */
	CHECK_OK(jio_zero(io, fh, 1000, 5u << 20, 1));
	CHECK_OK(jio_size(io, fh, &size));
	CHECK(size == 1000 + (5u << 20));
	CHECK_OK(jio_read_exact(io, fh, back, sizeof back, 29000, path));
	for (size_t i = 0; i < sizeof back; i++)
		CHECK(back[i] == 0);
	CHECK_RC(jio_read_exact(io, fh, back, sizeof back, size - 10, path), KEEL_E_CORRUPT);
	CHECK_RC(jio_write(io, fh, w, 0, 0), KEEL_E_INVAL);
	CHECK_OK(jio_close(io, fh));
	CHECK_RC(jio_open(io, path, JIO_RDWR | JIO_CREATE | JIO_EXCL, &fh), KEEL_E_OS);
	CHECK(jio_errno() == EEXIST);
	CHECK_OK(jio_unlink(io, path));
	CHECK_RC(jio_open(io, path, JIO_RDONLY, &fh), KEEL_E_NOTFOUND);
	CHECK(strstr(jio_errmsg(), "batch"));
	jio_destroy(io);
}

/* Synced single writes of whole sectors (the journal's flushes) go through
 * an O_DIRECT twin of the file where the file system takes direct I/O, from
 * a bounce buffer when the caller's is not aligned; buffered writes and
 * reads of the same file must see them, and they must see the buffered
 * writes made before.  Run on the disk and on /dev/shm (tmpfs), and with
 * direct I/O switched off. */
static void real_direct(const char *dir)
{
	jio_t *io;
	char path[512];
	static uint8_t buf[8192 + 1], back[8192];
	int fh;

	CHECK_OK(jio_real_create(4, 0, 0, &io));
	CHECK_OK(jio_mkdir(io, dir));
	snprintf(path, sizeof path, "%s/direct", dir);
	CHECK_OK(jio_open(io, path, JIO_RDWR | JIO_CREATE | JIO_EXCL, &fh));
	CHECK_OK(jio_zero(io, fh, 0, 1u << 20, 1));
	for (int round = 0; round < 40; round++) {
		uint8_t *src = buf + (round & 1);   /* odd rounds: a misaligned buffer */
		size_t len = 512u * (1 + (unsigned)round % 16);
		uint64_t off = 512u * (uint64_t)(round * 7 % 1500);
		memset(src, 'A' + round % 26, len);
		struct jio_wr w = { .off = off, .buf = src, .len = len };
		CHECK_OK(jio_write(io, fh, &w, 1, JIO_W_DATASYNC));
		CHECK_OK(jio_read_exact(io, fh, back, len, off, path));
		CHECK(!memcmp(back, src, len));
		/* A buffered, unaligned write into the same range, then read. */
		struct jio_wr u = { .off = off + 100, .buf = (const uint8_t *)"xyz", .len = 3 };
		CHECK_OK(jio_write(io, fh, &u, 1, 0));
		CHECK_OK(jio_read_exact(io, fh, back, len, off, path));
		CHECK(back[99] == 'A' + round % 26 && !memcmp(back + 100, "xyz", 3));
	}
	/* A synced direct write over the range the buffered write dirtied wins. */
	memset(buf, 'q', 4096);
	struct jio_wr w = { .off = 512u * (40 * 7 % 1500), .buf = buf, .len = 4096 };
	CHECK_OK(jio_write(io, fh, &w, 1, JIO_W_DATASYNC));
	CHECK_OK(jio_read_exact(io, fh, back, 4096, w.off, path));
	for (int i = 0; i < 4096; i++)
		CHECK(back[i] == 'q');
	CHECK_OK(jio_close(io, fh));
	CHECK_OK(jio_unlink(io, path));
	jio_destroy(io);
}

/*
 * Two writers taking turns on one journal (as two processes would), passing
 * the position along; then one of them dies during a flush and the other
 * takes over with a repairing reload.
 */
static void take_turns(void)
{
	jio_sim_t *sim;
	jio_t *io;
	jnl_opts_t o;
	jnl_t *w[2];
	jnl_pos_t pos;
	jnl_scan_result_t res;
	static struct tju_collect c;
	uint64_t next = 1;

	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, "/store"));
	io = jio_sim_io(sim);
	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	o.spare_max = 2;
	CHECK_OK(jnl_open(DIR, io, tju_uuid, &o, &w[0]));
	CHECK_OK(jnl_open(DIR, io, tju_uuid, &o, &w[1]));
	jnl_get_pos(w[0], &pos);
	for (int turn = 0; turn < 60; turn++) {
		jnl_t *j = w[turn % 2];
		uint64_t n = 1 + tju_below(40);

		CHECK_OK(jnl_set_pos(j, &pos));
		CHECK_OK(tju_append_range(j, salt, LEN_MAX, next, next + n - 1));
		CHECK_OK(jnl_flush(j));
		next += n;
		if (turn % 10 == 9)
			CHECK_OK(jnl_recycle_below(j, next - 50));
		jnl_get_pos(j, &pos);
		CHECK(pos.next_lsn == next);
	}
	/* The writer left behind cannot start a segment the other started. */
	{
		jnl_t *stale = w[0];

		CHECK(pos.segno > 1);
		{
			int rc;

			CHECK_OK(jnl_set_pos(stale, &(jnl_pos_t){ .segno = pos.segno - 1,
								.seg_first_lsn = 1,
								.seg_bytes = SEG, .off = SEG,
								.next_lsn = next }));
			rc = jnl_append(stale, next, "x", 1);
			CHECK_RC(rc, KEEL_E_STATE);
			CHECK(strstr(jio_errmsg(), "another writer"));
		}
		CHECK_RC(jnl_set_pos(stale, &(jnl_pos_t){ .segno = 1, .seg_first_lsn = 1,
							  .seg_bytes = SEG, .off = 100,
							  .next_lsn = 1 }), KEEL_E_INVAL);
	}
	/* Writer 1 dies during a flush: its write lands, its sync fails. */
	CHECK_OK(jnl_set_pos(w[1], &pos));
	CHECK_OK(tju_append_range(w[1], salt, LEN_MAX, next, next + 4));
	jio_sim_fail(sim, jio_sim_ops(sim) + 1, JIO_FAULT_EIO, 0);
	CHECK_RC(jnl_flush(w[1]), KEEL_E_IO);
	CHECK_RC(jnl_set_pos(w[1], &pos), KEEL_E_PANIC);
	jnl_close(w[1]);
	/* Writer 0 takes over: a repairing reload, then appending goes on
	 * after whatever of the dead flush is on disk. */
	CHECK_OK(jnl_reload(w[0], JNL_OPEN_REPAIR));
	jnl_get_pos(w[0], &pos);
	CHECK(pos.next_lsn == next || pos.next_lsn == next + 5);
	next = pos.next_lsn;
	CHECK_OK(tju_append_range(w[0], salt, LEN_MAX, next, next + 9));
	CHECK_OK(jnl_flush(w[0]));
	next += 10;
	jnl_close(w[0]);
	tju_collect_init(&c, salt, LEN_MAX);
	CHECK_OK(jnl_scan(DIR, io, tju_uuid, 0, 0, tju_collect_fn, &c, &res));
	CHECK(res.end == JNL_END_CLEAN && !c.bad && c.last == next - 1);
	jio_sim_destroy(sim);
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
	char tmpl[] = "/tmp/keel-jnl-rt-XXXXXX", dir[256];

	tju_init(argc, argv, "Journal round trips on the simulated and the real disk.");
	salt = tju_seed;

	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, "/store"));
	run(jio_sim_io(sim), DIR, 2000);
	jio_sim_destroy(sim);
	take_turns();

	CHECK(mkdtemp(tmpl) != NULL);
	snprintf(dir, sizeof dir, "%s/journal", tmpl);
	CHECK_OK(jio_real_create(0, 0, 0, &real));
	printf("real backend: %s\n", real->ops->name);
	run(real, dir, 600);
	jio_destroy(real);
	real_batches(dir);
	real_direct(dir);
	setenv("KEEL_NO_DIRECT_IO", "1", 1);
	real_direct(dir);
	unsetenv("KEEL_NO_DIRECT_IO");
	nftw(tmpl, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	char shm[] = "/dev/shm/keel-jnl-rt-XXXXXX";
	if (mkdtemp(shm)) {   /* tmpfs: direct I/O may be refused there */
		real_direct(shm);
		nftw(shm, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	}
	printf("ok\n");
	return 0;
}
