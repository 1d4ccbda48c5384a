/*
 * test_jnl_corrupt.c - hand-made damaged journals, and what the scan says
 * about each: a truncated last record and a torn last flush (torn tail: cut,
 * repaired, appending goes on), garbage in the middle and a bad checksum
 * (refused, naming segment, offset, LSN and both checksums; salvage cuts
 * there and reports the loss), a wrong magic or version, a changed first LSN
 * or UUID in a segment header, a shortened segment file, and garbage in the
 * never-written end of a sealed segment; and overlapping flushes, where a
 * damaged flush under a later intact one is a torn tail only if the later
 * one was written before the damaged one was synced.
 */
#include <xxhash.h>

#include "test_jnl_util.h"

#define DIR "/s/journal"
#define SEG 8192u
#define LEN_MAX 180u

static uint64_t salt;

/* Where the records are, found by walking the file as the format says. */
struct item {
	uint64_t segno, off, lsn, total;
	int pad;
};
static struct item items[512];
static size_t nitems;

static void seg_path(char *buf, size_t cap, uint64_t segno)
{
	char name[64];

	CHECK_OK(jnl_segment_name(name, sizeof name, segno));
	snprintf(buf, cap, "%s/%s", DIR, name);
}

static void index_segment(jio_sim_t *sim, uint64_t segno)
{
	char path[256];
	uint8_t *d;
	size_t len;
	uint64_t off = JNL_HEADER_BYTES;

	seg_path(path, sizeof path, segno);
	CHECK_OK(jio_sim_get(sim, path, &d, &len));
	while (off + JNL_REC_HEADER_BYTES <= len) {
		uint32_t magic, rlen;
		uint16_t kind;
		uint64_t lsn;

		memcpy(&magic, d + off, 4);
		if (magic != 0x43524a4bu)
			break;
		memcpy(&kind, d + off + 4, 2);
		memcpy(&rlen, d + off + 8, 4);
		memcpy(&lsn, d + off + 16, 8);
		CHECK(nitems < 512);
		items[nitems].segno = segno;
		items[nitems].off = off;
		items[nitems].lsn = lsn;
		items[nitems].pad = kind == 2;
		items[nitems].total = kind == 2 ? 40u + rlen : 40u + ((rlen + 7u) & ~7u);
		off += items[nitems].total;
		nitems++;
	}
	free(d);
}

/* A fresh journal: flushes of 2 or 3 records until `nseg` segments exist.
 * Returns the last LSN. */
/* A new simulated disk with an empty journal of SEG-byte segments. */
static jnl_t *fresh(jio_sim_t **simp)
{
	jnl_opts_t o;
	jnl_t *j;

	CHECK_OK(jio_sim_create(simp));
	CHECK_OK(jio_sim_mkdirs(*simp, "/s"));
	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	CHECK_OK(jnl_open(DIR, jio_sim_io(*simp), tju_uuid, &o, &j));
	return j;
}

static uint64_t build(jio_sim_t **simp, unsigned nseg)
{
	jio_sim_t *sim;
	jnl_t *j;
	jnl_info_t info;
	uint64_t lsn = 1;

	j = fresh(&sim);
	for (;;) {
		unsigned n = 2 + (unsigned)(lsn % 2);

		CHECK_OK(tju_append_range(j, salt, LEN_MAX, lsn, lsn + n - 1));
		lsn += n;
		CHECK_OK(jnl_flush(j));
		jnl_info(j, &info);
		if (info.segments == nseg && info.seg_off > 3 * JIO_SECTOR_BYTES)
			break;
	}
	CHECK_OK(jnl_close(j));
	nitems = 0;
	for (uint64_t s = 1; s <= nseg; s++)
		index_segment(sim, s);
	*simp = sim;
	return lsn - 1;
}

/* Change the bytes of a file in place (durably). */
static void poke(jio_sim_t *sim, uint64_t segno, uint64_t off, const void *bytes, size_t n)
{
	char path[256];
	uint8_t *d;
	size_t len;

	seg_path(path, sizeof path, segno);
	CHECK_OK(jio_sim_get(sim, path, &d, &len));
	CHECK(off + n <= len);
	memcpy(d + off, bytes, n);
	CHECK_OK(jio_sim_put(sim, path, d, len));
	free(d);
}

static void fix_header_sum(jio_sim_t *sim, uint64_t segno)
{
	char path[256];
	uint8_t *d, tmp[512];
	size_t len;
	uint64_t sum;

	seg_path(path, sizeof path, segno);
	CHECK_OK(jio_sim_get(sim, path, &d, &len));
	memcpy(tmp, d, 512);
	memset(tmp + 56, 0, 8);
	sum = XXH3_64bits(tmp, 512);
	memcpy(d + 56, &sum, 8);
	CHECK_OK(jio_sim_put(sim, path, d, len));
	free(d);
}

static int scan(jio_sim_t *sim, unsigned flags, struct tju_collect *c, jnl_scan_result_t *res)
{
	tju_collect_init(c, salt, LEN_MAX);
	return jnl_scan(DIR, jio_sim_io(sim), tju_uuid, 1, flags, tju_collect_fn, c, res);
}

static struct tju_collect col;

/* The index of the first record (not pad) in flush number k of segment s. */
static size_t record_in(uint64_t segno, unsigned nth)
{
	for (size_t i = 0; i < nitems; i++)
		if (items[i].segno == segno && !items[i].pad && nth-- == 0)
			return i;
	CHECK(0);
	return 0;
}

static size_t last_record(void)
{
	for (size_t i = nitems; i-- > 0;)
		if (!items[i].pad)
			return i;
	CHECK(0);
	return 0;
}

/* After a repair, the journal opens, takes new records and scans clean. */
static void append_after(jio_sim_t *sim, uint64_t next)
{
	jnl_opts_t o;
	jnl_t *j;
	jnl_info_t info;
	jnl_scan_result_t res;

	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j));
	jnl_info(j, &info);
	CHECK(info.next_lsn == next);
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, next, next + 9));
	CHECK_OK(jnl_flush(j));
	CHECK_OK(jnl_close(j));
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && !col.bad && col.first == 1 && col.last == next + 9);
}

static void case_truncated_last(void)
{
	jio_sim_t *sim;
	uint64_t last = build(&sim, 1);
	size_t r = last_record();
	uint8_t zeros[64] = { 0 };
	jnl_scan_result_t res;

	/* The last record lost its second half (and the pad after it). */
	poke(sim, 1, items[r].off + items[r].total / 2, zeros,
	     items[r].total - items[r].total / 2 > 64 ? 64 : items[r].total - items[r].total / 2);
	poke(sim, 1, items[r + 1].off, zeros, 40);
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_TORN && !col.bad && col.last == last - 1);
	CHECK(res.next_lsn == last && res.cut_off == items[r].off && !res.repaired);
	CHECK(strstr(res.msg, "torn journal tail") && strstr(res.msg, "seg-0000000000000001.jnl"));
	printf("truncated last record: %s\n", res.msg);
	/* Not repaired: appending is refused until recovery ran. */
	{
		jnl_t *j;

		CHECK_RC(jnl_open(DIR, jio_sim_io(sim), tju_uuid, NULL, &j), KEEL_E_STATE);
	}
	CHECK_OK(scan(sim, JNL_SCAN_REPAIR, &col, &res));
	CHECK(res.end == JNL_END_TORN && res.repaired && col.last == last - 1);
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && col.last == last - 1);
	append_after(sim, last);
	jio_sim_destroy(sim);
}

static void case_torn_flush(void)
{
	jio_sim_t *sim;
	uint64_t last = build(&sim, 1);
	size_t r = last_record();
	uint8_t junk[40];
	jnl_scan_result_t res;
	size_t first_of_flush = r;

	/* Lose the first record of the last flush but keep the rest, as a
	 * torn write can. */
	while (first_of_flush > 0 && !items[first_of_flush - 1].pad)
		first_of_flush--;
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)tju_rand();
	poke(sim, 1, items[first_of_flush].off, junk, sizeof junk);
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_TORN && col.last == items[first_of_flush].lsn - 1);
	CHECK(res.cut_records == r - first_of_flush);
	printf("torn flush: %s\n", res.msg);
	CHECK_OK(scan(sim, JNL_SCAN_REPAIR, &col, &res));
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN);
	append_after(sim, items[first_of_flush].lsn);
	(void)last;
	jio_sim_destroy(sim);
}

/* Damage one record of an early flush; `how`: 0 garbage, 1 checksum,
 * 2 magic. */
static void case_middle(int how)
{
	jio_sim_t *sim;
	uint64_t last = build(&sim, 1);
	size_t r = record_in(1, 1);
	jnl_scan_result_t res;
	uint8_t b[16];
	uint64_t stored = 0;
	const char *names[] = { "garbage in the middle", "bad checksum", "wrong record magic" };

	if (how == 0) {
		/* Garbage inside this record only: over its payload, or over
		 * its checksum when the payload is empty.  Spilling into the
		 * next record would damage two and move the cut. */
		uint64_t room = items[r].total - JNL_REC_HEADER_BYTES;
		size_t n = room < sizeof b ? (size_t)room : sizeof b;

		for (size_t i = 0; i < sizeof b; i++)
			b[i] = (uint8_t)tju_rand();
		if (n)
			poke(sim, 1, items[r].off + JNL_REC_HEADER_BYTES, b, n);
		else
			poke(sim, 1, items[r].off + 32, b, 8);
	} else if (how == 1) {
		stored = 0x0123456789abcdefull;
		poke(sim, 1, items[r].off + 32, &stored, 8);
	} else {
		poke(sim, 1, items[r].off, "XJRC", 4);
	}
	CHECK_RC(scan(sim, 0, &col, &res), KEEL_E_CORRUPT);
	CHECK(res.bad == JNL_BAD_RECORD && res.bad_segno == 1 && res.bad_off == items[r].off);
	CHECK(res.bad_lsn == items[r].lsn);
	CHECK(strstr(res.msg, "seg-0000000000000001.jnl") && strstr(res.msg, "offset"));
	CHECK(!strcmp(res.msg, jio_errmsg()));
	if (how == 1) {
		CHECK(res.sum_found == stored && res.sum_expected != stored);
		CHECK(strstr(res.msg, "0123456789abcdef"));
	}
	printf("%s: %s\n", names[how], res.msg);
	/* Salvage without repair reports, changes nothing. */
	CHECK_OK(scan(sim, JNL_SCAN_SALVAGE, &col, &res));
	CHECK(res.end == JNL_END_SALVAGED && !res.repaired && col.last == items[r].lsn - 1);
	CHECK(res.cut_records == last - items[r].lsn);
	CHECK_RC(scan(sim, 0, &col, &res), KEEL_E_CORRUPT);
	/* Salvage with repair cuts for good. */
	CHECK_OK(scan(sim, JNL_SCAN_SALVAGE | JNL_SCAN_REPAIR, &col, &res));
	CHECK(res.end == JNL_END_SALVAGED && res.repaired);
	printf("  salvage: %s\n", res.msg);
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && col.last == items[r].lsn - 1);
	append_after(sim, items[r].lsn);
	jio_sim_destroy(sim);
}

static void case_header(int how)
{
	jio_sim_t *sim;
	uint64_t last = build(&sim, 2);
	jnl_scan_result_t res;
	uint32_t v;
	uint64_t x;
	int want_bad = JNL_BAD_HEADER;

	switch (how) {
	case 0: /* segment magic */
		poke(sim, 1, 0, "XJSG", 4);
		want_bad = JNL_BAD_GAP; /* segment 1 drops out: records from LSN 1 are missing */
		break;
	case 1: /* version 2, checksum fixed: a future format */
		v = 2;
		poke(sim, 2, 4, &v, 4);
		fix_header_sum(sim, 2);
		break;
	case 2: /* first LSN of segment 2 changed, checksum fixed */
		memcpy(&x, (uint8_t[8]){ 0 }, 8);
		x = items[record_in(2, 0)].lsn + 1;
		poke(sim, 2, 16, &x, 8);
		fix_header_sum(sim, 2);
		break;
	case 3: /* segment 2 shortened */
	{
		char path[256];
		uint8_t *d;
		size_t len;

		seg_path(path, sizeof path, 2);
		CHECK_OK(jio_sim_get(sim, path, &d, &len));
		CHECK_OK(jio_sim_put(sim, path, d, len - 512));
		free(d);
		break;
	}
	case 4: /* garbage in the never-written end of sealed segment 1 */
	{
		/* A journal whose first segment ends with a whole unused
		 * sector: one record up to offset 7680, and the next one too
		 * large for the rest. */
		jnl_t *j;
		static uint8_t big[7000];

		jio_sim_destroy(sim);
		j = fresh(&sim);
		CHECK_OK(jnl_append(j, 1, big, sizeof big));
		CHECK_OK(jnl_flush(j));
		CHECK_OK(jnl_append(j, 2, big, 600));
		CHECK_OK(jnl_flush(j));
		CHECK_OK(jnl_close(j));
		CHECK_OK(jnl_scan(DIR, jio_sim_io(sim), tju_uuid, 1, 0, NULL, NULL, &res));
		CHECK(res.end == JNL_END_CLEAN && res.end_segno == 2 && res.next_lsn == 3);
		poke(sim, 1, SEG - 100, "x", 1);
		want_bad = JNL_BAD_UNUSED;
		break;
	}
	}
	CHECK_RC(scan(sim, 0, &col, &res), KEEL_E_CORRUPT);
	if (res.bad != want_bad)
		printf("case %d: bad %d, want %d: %s\n", how, res.bad, want_bad, res.msg);
	CHECK(res.bad == want_bad);
	CHECK(strstr(res.msg, "seg-000000000000000"));
	if (how == 1)
		CHECK(strstr(res.msg, "version 2"));
	printf("header case %d: %s\n", how, res.msg);
	(void)last;
	jio_sim_destroy(sim);
}

/* A journal of another store is not this store's journal. */
static void case_foreign(void)
{
	jio_sim_t *sim;
	jnl_scan_result_t res;
	uint8_t other[JNL_UUID_BYTES];

	build(&sim, 1);
	memcpy(other, tju_uuid, sizeof other);
	other[0] ^= 1;
	CHECK_RC(jnl_scan(DIR, jio_sim_io(sim), other, 1, 0, NULL, NULL, &res), KEEL_E_CORRUPT);
	CHECK(res.bad == JNL_BAD_HEADER && strstr(res.msg, "another store"));
	printf("foreign: %s\n", res.msg);
	jio_sim_destroy(sim);
}

/*
 * Overlapping flushes (journal.c, W6): flush A (LSN 4..6) is written but not
 * synced when flush B (7..9) is written.  A power loss that keeps B but
 * damages A held nothing acknowledged, so the scan calls it a torn tail and
 * cuts at A.  When A was synced before B was written, the same damage is
 * media corruption, refused.  `synced` picks the second history.
 */
static void case_overlap(int synced)
{
	jio_sim_t *sim;
	jnl_t *j;
	jnl_pos_t p0, p1, p2;
	jnl_scan_result_t res;
	uint8_t junk[JIO_SECTOR_BYTES];

	j = fresh(&sim);
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, 1, 3));
	CHECK_OK(jnl_flush(j));
	jnl_get_pos(j, &p0);
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, 4, 6));
	CHECK_OK(jnl_write(j));   /* A */
	if (synced)
		CHECK_OK(jnl_sync(j));
	jnl_get_pos(j, &p1);
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, 7, 9));
	CHECK_OK(jnl_write(j));   /* B: reaches back over A unless A was synced */
	jnl_get_pos(j, &p2);
	CHECK_OK(jnl_close(j));
	CHECK(p0.off < p1.off && p1.off < p2.off && p2.next_lsn == 10);
	/* A's first sector garbled; B intact. */
	memset(junk, 0xa5, sizeof junk);
	poke(sim, 1, p0.off, junk, sizeof junk);
	int rc = scan(sim, 0, &col, &res);
	if (synced) {
		CHECK_RC(rc, KEEL_E_CORRUPT);
		CHECK(res.bad == JNL_BAD_RECORD && res.bad_lsn == 4 && res.bad_off == p0.off);
		printf("overlap, A synced before B: %s\n", res.msg);
	} else {
		CHECK_OK(rc);
		CHECK(res.end == JNL_END_TORN && res.next_lsn == 4 && res.cut_off == p0.off);
		CHECK(res.cut_records == 3 && res.cut_lsn_min == 7 && res.cut_lsn_max == 9);
		CHECK(!col.bad && col.first == 1 && col.last == 3);
		printf("overlap, A unsynced under B: %s\n", res.msg);
		CHECK_OK(scan(sim, JNL_SCAN_REPAIR, &col, &res));
		CHECK(res.repaired);
		append_after(sim, 4);
	}
	jio_sim_destroy(sim);
}

/* A spare filled without the writer (jnl_spare_fill), then adopted
 * (jnl_spare_adopt), is the segment the writer switches to; a file of the
 * wrong size is refused and stays a non-segment. */
static void case_spare(void)
{
	jio_sim_t *sim;
	jnl_t *j;
	jnl_info_t info;
	jnl_scan_result_t res;
	uint64_t lsn = 1;

	j = fresh(&sim);
	CHECK_OK(jnl_spare_fill(jio_sim_io(sim), DIR, "spare-1-1.tmp", SEG / 2, NULL, NULL));
	CHECK_RC(jnl_spare_adopt(j, "spare-1-1.tmp"), KEEL_E_INVAL);
	CHECK_RC(jnl_spare_fill(jio_sim_io(sim), DIR, "seg-0000000000000009.jnl", SEG, NULL, NULL), KEEL_E_INVAL);
	CHECK_OK(jnl_spare_fill(jio_sim_io(sim), DIR, "spare-1-1.tmp", SEG, NULL, NULL));
	CHECK_OK(jnl_spare_adopt(j, "spare-1-1.tmp"));
	jnl_info(j, &info);
	CHECK(info.segno == 1 && info.spares == 1);
	while (info.segno == 1) {
		CHECK_OK(tju_append_range(j, salt, LEN_MAX, lsn, lsn + 1));
		lsn += 2;
		CHECK_OK(jnl_flush(j));
		jnl_info(j, &info);
	}
	CHECK(info.segno == 2 && info.spares == 0);
	CHECK_OK(jnl_close(j));
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && !col.bad && col.first == 1 && col.last == lsn - 1);
	printf("spare: filled apart, adopted, switched to; %" PRIu64 " records scan clean\n", lsn - 1);
	jio_sim_destroy(sim);
}

/* Segments recycled past spare_max become drop files: renamed under the
 * writers' lock, unlinked after it by jnl_drop_files.  Until then they are
 * no part of the journal: a scan and a reopen ignore them, and so does a
 * power loss between the rename and the unlink. */
struct dir_count {
	unsigned segs, drops, other;
};

static int count_name(void *ctx, const char *name)
{
	struct dir_count *dc = ctx;
	uint64_t segno;

	if (jnl_parse_name(name, &segno))
		dc->segs++;
	else if (jnl_is_drop_name(name))
		dc->drops++;
	else
		dc->other++;
	return 0;
}

static void case_drop(void)
{
	jio_sim_t *sim;
	jnl_t *j;
	jnl_opts_t o;
	jnl_info_t info;
	jnl_scan_result_t res;
	struct dir_count dc = { 0 };
	uint64_t lsn = 1;

	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, "/s"));
	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	o.spare_max = 1;
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j));
	for (jnl_info(j, &info); info.segno < 6; jnl_info(j, &info)) {
		CHECK_OK(tju_append_range(j, salt, LEN_MAX, lsn, lsn + 1));
		lsn += 2;
		CHECK_OK(jnl_flush(j));
	}
	CHECK_OK(jnl_recycle_below(j, lsn - 1));   /* all but the current segment */
	CHECK_OK(jio_list(jio_sim_io(sim), DIR, count_name, &dc));
	if (dc.segs != 2 || dc.drops != 4 || dc.other != 0)
		printf("after recycling 5 segments with 1 spare kept: %u segments, %u drop files, %u others\n",
		       dc.segs, dc.drops, dc.other);
	CHECK(dc.segs == 2 && dc.drops == 4 && dc.other == 0);
	CHECK_OK(jnl_close(j));
	/* A power loss before the unlink: the drop files stay, and are ignored. */
	CHECK_OK(jio_sim_crash(sim, tju_rand(), JIO_CRASH_DROP));
	tju_collect_init(&col, salt, LEN_MAX);
	CHECK_OK(jnl_scan(DIR, jio_sim_io(sim), tju_uuid, lsn - 1, 0, tju_collect_fn, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && !col.bad && col.last == lsn - 1);
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j));
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, lsn, lsn + 1));
	lsn += 2;
	CHECK_OK(jnl_flush(j));
	CHECK_OK(jnl_close(j));
	int removed = jnl_drop_files(jio_sim_io(sim), DIR);
	memset(&dc, 0, sizeof(dc));
	CHECK_OK(jio_list(jio_sim_io(sim), DIR, count_name, &dc));
	CHECK_RC(removed, 4);
	CHECK(dc.drops == 0);
	CHECK_RC(jnl_drop_files(jio_sim_io(sim), DIR), 0);
	tju_collect_init(&col, salt, LEN_MAX);
	CHECK_OK(jnl_scan(DIR, jio_sim_io(sim), tju_uuid, lsn - 3, 0, tju_collect_fn, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && !col.bad && col.last == lsn - 1);
	printf("drop: 4 segments past the spare renamed to drop files, ignored across a power loss and a reopen, then removed\n");
	jio_sim_destroy(sim);
}

/* A writer that takes over another's position (jnl_set_pos) and syncs makes
 * the other's unsynced write durable: jnl_sync covers everything before the
 * append position, not only what this writer wrote itself. */
static void case_sync_other(void)
{
	jio_sim_t *sim;
	jnl_t *a = fresh(&sim), *b;
	jnl_opts_t o;
	jnl_pos_t p;
	jnl_scan_result_t res;

	CHECK_OK(tju_append_range(a, salt, LEN_MAX, 1, 3));
	CHECK_OK(jnl_flush(a));
	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &b));
	CHECK_OK(tju_append_range(a, salt, LEN_MAX, 4, 6));
	CHECK_OK(jnl_write(a));   /* a's sync never comes */
	jnl_get_pos(a, &p);
	CHECK_OK(jnl_set_pos(b, &p));
	uint64_t syncs = jio_sim_syncs(sim);
	CHECK_OK(jnl_sync(b));
	CHECK(jio_sim_syncs(sim) > syncs);
	CHECK_OK(jnl_close(a));
	CHECK_OK(jnl_close(b));
	CHECK_OK(jio_sim_crash(sim, tju_rand(), JIO_CRASH_DROP));
	CHECK_OK(scan(sim, 0, &col, &res));
	CHECK(res.end == JNL_END_CLEAN && !col.bad && col.first == 1 && col.last == 6);
	printf("sync of another writer's write: LSN 1..6 after a power loss\n");
	jio_sim_destroy(sim);
}

int main(int argc, char **argv)
{
	tju_init(argc, argv, "Hand-made corrupt journals and what the scan says about them.");
	salt = tju_seed;
	case_truncated_last();
	case_torn_flush();
	case_drop();
	for (int how = 0; how < 3; how++)
		case_middle(how);
	for (int how = 0; how < 5; how++)
		case_header(how);
	case_foreign();
	case_overlap(0);
	case_overlap(1);
	case_spare();
	case_sync_other();
	printf("ok\n");
	return 0;
}
