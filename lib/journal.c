/*
 * journal.c - journal segments: format, writer and recovery scan.
 *
 * The journal is a directory (STORE/journal/) of segment files named
 * "seg-<segno as 16 lowercase hex digits>.jnl".  A segment is preallocated to
 * a fixed size (64 MiB by default), starts with a one-sector header and holds
 * records of consecutive LSNs.  Segment numbers only grow; a segment whose
 * records a checkpoint covers is recycled: renamed to a new number after the
 * last one, and its header rewritten when the writer reaches it.  All I/O goes
 * through jio (lib/jio.h); the byte order is little-endian throughout.
 *
 * Segment header (bytes 0..511 of the file)
 * -----------------------------------------
 *   off size field
 *     0    4 magic      0x47534a4b ("KJSG")
 *     4    4 version    1
 *     8    8 segno      the number in the file name
 *    16    8 first_lsn  LSN of the segment's first record; 0: a spare that
 *                       was never started
 *    24   16 uuid       the store's UUID
 *    40    8 seg_bytes  size of the segment file: multiple of 512,
 *                       JNL_SEG_BYTES_MIN..JNL_SEG_BYTES_MAX
 *    48    4 flags      bit 0 ZEROED: every byte after the header was zero
 *                       when the segment was started (a fresh file, not a
 *                       recycled one); other bits 0
 *    52    4 reserved   0
 *    56    8 checksum   XXH3-64, seed 0, of the 512-byte sector with these 8
 *                       bytes taken as zero
 *    64  448 zero
 * A segment is USED if and only if its header has the magic, the version,
 * the checksum, the store's UUID, the segno of its file name, known flags,
 * and a first_lsn in 1..2^64-2; its file must then be seg_bytes long.  Any
 * other header (zeros, a torn write, the stale header of a recycled file,
 * a spare's first_lsn 0) makes the segment UNUSED.
 *
 * Record (at an 8-aligned offset >= 512)
 * --------------------------------------
 *   off size field
 *     0    4 magic      0x43524a4b ("KJRC")
 *     4    2 kind       1 RECORD, 2 PAD
 *     6    2 reserved   0
 *     8    4 len        RECORD: payload bytes; PAD: padding bytes
 *    12    4 unsynced   how many LSNs just before batch_lsn were written but
 *                       not yet known durable when this flush was written
 *                       (flushes that overlap, W6); 0 when each flush was
 *                       synced before the next was written
 *    16    8 lsn        RECORD: its LSN; PAD: the LSN of the record before it
 *    24    8 batch_lsn  LSN of the first record of the flush it was written by
 *    32    8 checksum   XXH3-64 of the whole record (header, payload and
 *                       padding) with these 8 bytes taken as zero, seeded with
 *                       the segment salt XXH3-64(uuid, seed = segno)
 *    40  len payload, then zeros up to a multiple of 8 (RECORD), or len zero
 *            bytes ending exactly at a 512-byte boundary (PAD)
 *
 * Validity rule.  Walking a segment from offset 512 with E the next LSN
 * expected (the header's first_lsn at first), the item at offset `off` is
 *   - the next RECORD if and only if: magic, kind 1, reserved field zero,
 *     len <= JNL_PAYLOAD_MAX(seg_bytes) and the record ends at least 40
 *     bytes (a pad header) before the end of the segment, lsn == E,
 *     first_lsn <= batch_lsn - unsynced, batch_lsn <= lsn, and the checksum
 *     matches;
 *   - a PAD if and only if: magic, kind 2, reserved zero, len <= 511 and the
 *     pad ends on a 512-byte boundary inside the segment, it follows a record
 *     of this segment, lsn == E - 1, batch_lsn equals that record's, and the
 *     checksum matches.
 * Anything else ends the walk at `off`.  Stale bytes of a recycled segment
 * never pass: their checksums were seeded with another segment number (or
 * another store), and their LSNs are older.
 *
 * Writer invariants (what makes the classification below sound)
 * ---------------------------------------------------------------
 *  W1 A flush writes one contiguous range of one segment: the records
 *     appended since the last flush and one PAD closing it on a 512-byte
 *     boundary; then one fdatasync.  Every flush starts on a sector
 *     boundary, so it never rewrites a sector that holds synced data: a torn
 *     or garbled write can only damage the flush it belongs to.
 *  W2 A record is placed only if room for a PAD header remains after it; a
 *     record that does not fit makes the writer flush and sync what it has,
 *     and then start the next segment.
 *  W3 A new segment is created zero-filled and synced, then marked as a
 *     spare (first_lsn 0, ZEROED) and synced, with its name made durable
 *     (directory fsync); only a spare header proves a zero body.  When the
 *     writer starts the segment, its header (first_lsn = the next LSN) is
 *     written and synced before any record goes into the segment.  So a
 *     USED header proves that every record of the previous segment was
 *     durable, and a valid record proves that the header of its segment
 *     was.
 *  W4 After any failed write or sync the writer stops (sticky failure).
 *  W5 A flush whose records were all synced before the next flush was
 *     written is the only one in flight at a crash; so a record of a later
 *     flush that does not reach back over it (batch_lsn - unsynced greater
 *     than the damaged flush's first LSN) proves the damaged flush was
 *     synced: media corruption.
 *  W6 Flushes may overlap (the caller writes the next one while the sync
 *     of the last is in flight, journal.h: jnl_write, jnl_sync).  Each
 *     flush still starts on a sector boundary after the previous one's end,
 *     and records how far back it reaches over unsynced flushes (unsynced).
 *     A sync returning 0 makes durable every flush written before it began;
 *     the caller acknowledges nothing of a flush before that.  So at a power
 *     loss, a damaged flush followed by intact records of flushes that reach
 *     back over it held nothing acknowledged: a torn tail, cut there.
 *
 * Reading: how the journal ends
 * -----------------------------
 * The chain is the longest run of consecutive-numbered USED segments ending
 * at the highest-numbered one; each must begin with the LSN the previous one
 * ended before.  The scan starts at the chain segment holding from_lsn and
 * walks records until the walk stops at offset p with E expected:
 *
 *   - not the last segment: the next header's first_lsn must be E and the
 *     walk must have ended after a PAD, else the bad item at p is media
 *     corruption (the next header proves p was durable, W3).  In a ZEROED
 *     segment the never-written end after p must be zero.
 *   - the last segment: look beyond p for intact records (checksum valid
 *     with this segment's salt).  One whose batch_lsn differs from the
 *     batch open at p (or, when the batch was closed, from E) belongs to
 *     another flush; unless it reaches back over the damaged flush (W6),
 *     the damaged flush was synced (W5): media corruption.
 *     Otherwise the end is TORN if a flush was left open (no PAD), intact
 *     records of the same flush lie beyond p, or (ZEROED) any byte after p
 *     is not zero; else CLEAN.  An UNUSED segment right after the chain
 *     that nevertheless holds intact records has a damaged header (W3).
 *
 * Who writes what: one writer at a time appends to the current segment
 * and starts the next; several processes may take turns as the writer,
 * passing the append position along (jnl_pos, see journal.h) under the
 * caller's lock.  Recycling renames whole segments below a checkpoint LSN
 * and never touches the current one.  Readers (jnl_scan) only read, except
 * for an explicit repair.
 *
 * Repair (JNL_SCAN_REPAIR) makes the end clean again, synced, before anyone
 * appends: a PAD at p closes a flush left open (it shares p's sector with
 * records of that unsynced flush, which were never acknowledged; the new
 * sector is synced before recovery exposes anything), and the rest of the
 * torn region is zeroed, so no intact record of the torn flush survives to
 * be mistaken later for a record at the same LSN.  Salvage cuts at the bad
 * item the same way and renames every later segment that holds records to
 * "<name>.lost".
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "journal.h"

#define JNL_SEG_MAGIC 0x47534a4bu
#define JNL_REC_MAGIC 0x43524a4bu
#define JNL_VERSION 1u
#define JNL_KIND_RECORD 1u
#define JNL_KIND_PAD 2u
#define JNL_F_ZEROED 1u
#define JNL_PAD_LEN_MAX (JIO_SECTOR_BYTES - 1u)
#define JNL_NAME_LEN 24u /* "seg-" + 16 + ".jnl" */
#define JNL_SPARE_STEP (1u << 20) /* bytes per synced step of jnl_spare_fill */

/* The on-disk structs, little-endian; pinned below. */
struct jnl_seg_disk {
	uint32_t magic;
	uint32_t version;
	uint64_t segno;
	uint64_t first_lsn;
	uint8_t uuid[JNL_UUID_BYTES];
	uint64_t seg_bytes;
	uint32_t flags;
	uint32_t reserved;
	uint64_t checksum;
	uint8_t zero[448];
};

struct jnl_rec_disk {
	uint32_t magic;
	uint16_t kind;
	uint16_t reserved0;
	uint32_t len;
	uint32_t unsynced;
	uint64_t lsn;
	uint64_t batch_lsn;
	uint64_t checksum;
};

_Static_assert(sizeof(struct jnl_seg_disk) == JNL_HEADER_BYTES, "segment header is one sector");
_Static_assert(offsetof(struct jnl_seg_disk, segno) == 8, "layout");
_Static_assert(offsetof(struct jnl_seg_disk, first_lsn) == 16, "layout");
_Static_assert(offsetof(struct jnl_seg_disk, uuid) == 24, "layout");
_Static_assert(offsetof(struct jnl_seg_disk, seg_bytes) == 40, "layout");
_Static_assert(offsetof(struct jnl_seg_disk, flags) == 48, "layout");
_Static_assert(offsetof(struct jnl_seg_disk, checksum) == 56, "layout");
_Static_assert(sizeof(struct jnl_rec_disk) == JNL_REC_HEADER_BYTES, "record header");
_Static_assert(offsetof(struct jnl_rec_disk, kind) == 4, "layout");
_Static_assert(offsetof(struct jnl_rec_disk, len) == 8, "layout");
_Static_assert(offsetof(struct jnl_rec_disk, unsynced) == 12, "layout");
_Static_assert(offsetof(struct jnl_rec_disk, lsn) == 16, "layout");
_Static_assert(offsetof(struct jnl_rec_disk, batch_lsn) == 24, "layout");
_Static_assert(offsetof(struct jnl_rec_disk, checksum) == 32, "layout");
_Static_assert(JNL_REC_HEADER_BYTES % 8 == 0, "records stay 8-aligned");

/* Always-on check of an invariant whose failure would corrupt the journal. */
#define JNL_VERIFY(cond)                                                               \
	do {                                                                           \
		if (__builtin_expect(!(cond), 0)) {                                    \
			fprintf(stderr, "keel journal: invariant failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                            \
			abort();                                                       \
		}                                                                      \
	} while (0)

/* snprintf for messages: a message cut at the buffer's end is fine. */
static void msgf(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void msgf(char *buf, size_t cap, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, cap, fmt, ap);
	va_end(ap);
}

/* Debug-only check of an internal expectation. */
#ifdef KEEL_DEBUG
#define JNL_ASSERT(cond) JNL_VERIFY(cond)
#else
#define JNL_ASSERT(cond) ((void)0)
#endif

static uint64_t align8(uint64_t x) { return (x + 7) & ~7ull; }
static uint64_t align_sector(uint64_t x)
{
	return (x + JIO_SECTOR_BYTES - 1) & ~(uint64_t)(JIO_SECTOR_BYTES - 1);
}

static uint64_t jnl_salt(const uint8_t uuid[JNL_UUID_BYTES], uint64_t segno)
{
	return XXH3_64bits_withSeed(uuid, JNL_UUID_BYTES, segno);
}

int jnl_segment_name(char *buf, size_t cap, uint64_t segno)
{
	int n = snprintf(buf, cap, "seg-%016" PRIx64 ".jnl", segno);

	if (n < 0 || (size_t)n >= cap)
		return jio_err(KEEL_E_INVAL, "no room for a segment name");
	return 0;
}

/* Parse "seg-<16 hex>.jnl"; 1 and *segno if it is one. */
int jnl_parse_name(const char *name, uint64_t *segno)
{
	uint64_t v = 0;

	if (strlen(name) != JNL_NAME_LEN || strncmp(name, "seg-", 4) || strcmp(name + 20, ".jnl"))
		return 0;
	for (int i = 4; i < 20; i++) {
		char c = name[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else
			return 0;
		v = (v << 4) | d;
	}
	if (v == 0 || v == UINT64_MAX)
		return 0;
	*segno = v;
	return 1;
}

static int seg_path(char *buf, size_t cap, const char *dir, uint64_t segno)
{
	char name[JNL_NAME_LEN + 1];
	int rc = jnl_segment_name(name, sizeof name, segno);

	return rc < 0 ? rc : jio_join(buf, cap, dir, name);
}

/* ---- segment header ------------------------------------------------------------------ */

struct seghdr {
	uint64_t segno, first_lsn, seg_bytes;
	uint32_t flags;
};

static uint64_t seghdr_sum(const uint8_t *sector)
{
	uint8_t tmp[JNL_HEADER_BYTES];

	memcpy(tmp, sector, sizeof tmp);
	memset(tmp + offsetof(struct jnl_seg_disk, checksum), 0, 8);
	return XXH3_64bits(tmp, sizeof tmp);
}

static void seghdr_encode(uint8_t *sector, const uint8_t uuid[JNL_UUID_BYTES],
			  const struct seghdr *h)
{
	struct jnl_seg_disk d;

	memset(&d, 0, sizeof d);
	d.magic = htole32(JNL_SEG_MAGIC);
	d.version = htole32(JNL_VERSION);
	d.segno = htole64(h->segno);
	d.first_lsn = htole64(h->first_lsn);
	memcpy(d.uuid, uuid, JNL_UUID_BYTES);
	d.seg_bytes = htole64(h->seg_bytes);
	d.flags = htole32(h->flags);
	memcpy(sector, &d, sizeof d);
	d.checksum = htole64(seghdr_sum(sector));
	memcpy(sector, &d, sizeof d);
}

/* What a segment header says about its file. */
enum hdr_class {
	HDR_DAMAGED = 0, /* no magic, or checksum mismatch (zeros, torn write, media) */
	HDR_ALIEN = 1,   /* intact, but another version, another store, or bad fields */
	HDR_STALE = 2,   /* intact, for another segment number: a recycled file */
	HDR_SPARE = 3,   /* intact, first_lsn 0: a spare never started */
	HDR_USED = 4,    /* valid for this file */
};

/*
 * Decode and classify the header sector of the file of segment `segno`;
 * why gets the reason when it is not USED.
 */
static int seghdr_decode(const uint8_t *sector, const uint8_t uuid[JNL_UUID_BYTES],
			 uint64_t segno, struct seghdr *h, char *why, size_t whycap)
{
	struct jnl_seg_disk d;
	uint64_t sum;

	memcpy(&d, sector, sizeof d);
	h->segno = le64toh(d.segno);
	h->first_lsn = le64toh(d.first_lsn);
	h->seg_bytes = le64toh(d.seg_bytes);
	h->flags = le32toh(d.flags);
	if (le32toh(d.magic) != JNL_SEG_MAGIC) {
		msgf(why, whycap, "no segment magic (found 0x%08x, expected 0x%08x)",
		     le32toh(d.magic), JNL_SEG_MAGIC);
		return HDR_DAMAGED;
	}
	sum = seghdr_sum(sector);
	if (sum != le64toh(d.checksum)) {
		msgf(why, whycap, "header checksum mismatch (expected %016" PRIx64 ", found %016" PRIx64 ")",
		     sum, le64toh(d.checksum));
		return HDR_DAMAGED;
	}
	if (le32toh(d.version) != JNL_VERSION) {
		msgf(why, whycap, "format version %u (this build reads version %u)",
		     le32toh(d.version), JNL_VERSION);
		return HDR_ALIEN;
	}
	if (memcmp(d.uuid, uuid, JNL_UUID_BYTES)) {
		msgf(why, whycap, "the segment belongs to another store (UUID differs)");
		return HDR_ALIEN;
	}
	if (h->segno != segno) {
		msgf(why, whycap, "header is for segment %" PRIu64 " (a recycled file)", h->segno);
		return HDR_STALE;
	}
	if ((h->flags & ~JNL_F_ZEROED) || d.reserved || h->first_lsn == UINT64_MAX ||
	    h->seg_bytes < JNL_SEG_BYTES_MIN || h->seg_bytes > JNL_SEG_BYTES_MAX ||
	    h->seg_bytes % JIO_SECTOR_BYTES) {
		msgf(why, whycap, "header fields out of range (flags 0x%x, seg_bytes %" PRIu64 ")",
		     h->flags, h->seg_bytes);
		return HDR_ALIEN;
	}
	if (h->first_lsn == 0) {
		msgf(why, whycap, "a spare segment, never started");
		return HDR_SPARE;
	}
	return HDR_USED;
}

/* ---- records ----------------------------------------------------------------------- */

struct rec {
	int ok;            /* structurally valid and checksum matches */
	uint32_t magic;
	unsigned kind;
	uint32_t len;
	uint64_t lsn, batch;
	uint32_t unsynced; /* LSNs before batch not known durable when written (W6) */
	uint64_t total;    /* bytes of the whole record (0 if not in bounds) */
	uint64_t sum_found, sum_calc;
	const char *why;   /* why not ok */
};

static uint64_t rec_sum(uint8_t *at, uint64_t total, uint64_t salt)
{
	uint8_t saved[8];
	uint64_t sum;

	/* The checksum field counts as zero: clear it for the hash and put it
	 * back (the buffer is always our own copy). */
	memcpy(saved, at + offsetof(struct jnl_rec_disk, checksum), 8);
	memset(at + offsetof(struct jnl_rec_disk, checksum), 0, 8);
	sum = XXH3_64bits_withSeed(at, (size_t)total, salt);
	memcpy(at + offsetof(struct jnl_rec_disk, checksum), saved, 8);
	return sum;
}

/* Parse the item at seg[off] (off 8-aligned, seg holds seg_bytes bytes). */
static void rec_parse(uint8_t *seg, uint64_t seg_bytes, uint64_t off, uint64_t salt, struct rec *r)
{
	struct jnl_rec_disk d;
	uint64_t total;

	memset(r, 0, sizeof *r);
	if (off + JNL_REC_HEADER_BYTES > seg_bytes) {
		r->why = "no room for a record header before the end of the segment";
		return;
	}
	memcpy(&d, seg + off, sizeof d);
	r->magic = le32toh(d.magic);
	r->kind = le16toh(d.kind);
	r->len = le32toh(d.len);
	r->lsn = le64toh(d.lsn);
	r->batch = le64toh(d.batch_lsn);
	r->unsynced = le32toh(d.unsynced);
	r->sum_found = le64toh(d.checksum);
	if (r->kind == JNL_KIND_PAD) {
		total = JNL_REC_HEADER_BYTES + (uint64_t)r->len;
		if (r->len > JNL_PAD_LEN_MAX || off + total > seg_bytes ||
		    (off + total) % JIO_SECTOR_BYTES) {
			r->why = "pad length out of bounds";
			if (r->magic != JNL_REC_MAGIC)
				r->why = "no record magic";
			return;
		}
	} else {
		total = JNL_REC_HEADER_BYTES + align8(r->len);
		/* W2: a record always leaves room for the pad after it. */
		if (r->len > JNL_PAYLOAD_MAX(seg_bytes) ||
		    off + total + JNL_REC_HEADER_BYTES > seg_bytes) {
			r->why = "record length out of bounds";
			if (r->magic != JNL_REC_MAGIC)
				r->why = "no record magic";
			return;
		}
	}
	r->total = total;
	r->sum_calc = rec_sum(seg + off, total, salt);
	if (r->magic != JNL_REC_MAGIC)
		r->why = "no record magic";
	else if (r->kind != JNL_KIND_RECORD && r->kind != JNL_KIND_PAD)
		r->why = "unknown record kind";
	else if (d.reserved0)
		r->why = "reserved header field is not zero";
	else if (r->batch > r->lsn)
		r->why = "batch LSN after the record's LSN";
	else if (r->unsynced >= r->batch)
		r->why = "the flush reaches back before LSN 1";
	else if (r->sum_calc != r->sum_found)
		r->why = "checksum mismatch";
	else
		r->ok = 1;
}

/* Encode a record or pad at `at` (zeroed tail included) and seal it. */
static void rec_encode(uint8_t *at, unsigned kind, uint64_t lsn, uint64_t batch, uint32_t unsynced,
		       const void *payload, uint32_t len, uint64_t total, uint64_t salt)
{
	struct jnl_rec_disk d;
	uint64_t sum;

	JNL_ASSERT(total >= JNL_REC_HEADER_BYTES + (uint64_t)len && total % 8 == 0);
	JNL_ASSERT(kind == JNL_KIND_RECORD || total - JNL_REC_HEADER_BYTES - len == 0);
	memset(&d, 0, sizeof d);
	d.magic = htole32(JNL_REC_MAGIC);
	d.kind = htole16((uint16_t)kind);
	d.len = htole32(len);
	d.lsn = htole64(lsn);
	d.batch_lsn = htole64(batch);
	d.unsynced = htole32(unsynced);
	memcpy(at, &d, sizeof d);
	if (payload && len)
		memcpy(at + JNL_REC_HEADER_BYTES, payload, len);
	else if (len)
		memset(at + JNL_REC_HEADER_BYTES, 0, len);
	memset(at + JNL_REC_HEADER_BYTES + len, 0, (size_t)(total - JNL_REC_HEADER_BYTES - len));
	sum = rec_sum(at, total, salt);
	d.checksum = htole64(sum);
	memcpy(at + offsetof(struct jnl_rec_disk, checksum), &d.checksum, 8);
}

/* ---- the directory -------------------------------------------------------------------- */

enum seg_state { SEG_UNUSED = 0, SEG_USED = 1 };

struct seginfo {
	uint64_t segno;
	int state;
	int badsize;        /* USED but the file is not seg_bytes long */
	int hclass;         /* enum hdr_class */
	int intact;         /* a spare's or a recycled file's header: nothing hides behind it */
	struct seghdr h;
	uint64_t file_bytes;
	char why[160];      /* why UNUSED */
};

struct jdir {
	struct seginfo *v;
	size_t n, cap;
	size_t lo, hi;      /* the chain: v[lo..hi) (lo == hi: none) */
	uint64_t max_segno;
};

static void jdir_free(struct jdir *jd)
{
	free(jd->v);
	memset(jd, 0, sizeof *jd);
}

static int jdir_add_name(void *ctx, const char *name)
{
	struct jdir *jd = ctx;
	uint64_t segno;

	if (!jnl_parse_name(name, &segno))
		return 0; /* not a segment: ignored */
	if (jd->n >= JNL_SEGMENTS_MAX)
		return jio_err(KEEL_E_LIMIT, "journal directory holds more than %u segments",
			       JNL_SEGMENTS_MAX);
	if (jd->n == jd->cap) {
		size_t cap = jd->cap ? jd->cap * 2 : 16;
		struct seginfo *v = realloc(jd->v, cap * sizeof *v);

		if (!v)
			return jio_err(KEEL_E_NOMEM, "out of memory listing the journal");
		jd->v = v;
		jd->cap = cap;
	}
	memset(&jd->v[jd->n], 0, sizeof jd->v[jd->n]);
	jd->v[jd->n].segno = segno;
	jd->n++;
	return 0;
}

static int seginfo_cmp(const void *a, const void *b)
{
	const struct seginfo *x = a, *y = b;

	return x->segno < y->segno ? -1 : x->segno > y->segno;
}

static int jdir_read_header(jio_t *io, const char *dir, const uint8_t *uuid, struct seginfo *si)
{
	char path[JIO_PATH_MAX];
	uint8_t sector[JNL_HEADER_BYTES];
	size_t got = 0;
	int fh, rc;

	rc = seg_path(path, sizeof path, dir, si->segno);
	if (rc < 0)
		return rc;
	rc = jio_open(io, path, JIO_RDONLY, &fh);
	if (rc < 0)
		return rc;
	rc = jio_size(io, fh, &si->file_bytes);
	if (rc == 0)
		rc = jio_pread(io, fh, sector, sizeof sector, 0, &got);
	jio_close(io, fh);
	if (rc < 0)
		return rc;
	if (got < sizeof sector) {
		snprintf(si->why, sizeof si->why, "file of %" PRIu64 " bytes has no full header",
			 si->file_bytes);
		return 0;
	}
	si->hclass = seghdr_decode(sector, uuid, si->segno, &si->h, si->why, sizeof si->why);
	si->intact = si->hclass == HDR_SPARE || si->hclass == HDR_STALE;
	if (si->hclass != HDR_USED)
		return 0;
	si->state = SEG_USED;
	si->badsize = si->file_bytes != si->h.seg_bytes;
	return 0;
}

static int jdir_load(jio_t *io, const char *dir, const uint8_t *uuid, struct jdir *jd)
{
	int rc;

	memset(jd, 0, sizeof *jd);
	rc = jio_list(io, dir, jdir_add_name, jd);
	if (rc < 0)
		goto fail;
	if (jd->n > 1)
		qsort(jd->v, jd->n, sizeof *jd->v, seginfo_cmp);
	for (size_t i = 0; i < jd->n; i++) {
		rc = jdir_read_header(io, dir, uuid, &jd->v[i]);
		if (rc < 0)
			goto fail;
		if (jd->v[i].segno > jd->max_segno)
			jd->max_segno = jd->v[i].segno;
	}
	/* The chain: consecutive USED segments ending at the last USED one. */
	jd->lo = jd->hi = 0;
	for (size_t i = jd->n; i-- > 0;) {
		if (jd->v[i].state == SEG_USED) {
			jd->hi = i + 1;
			jd->lo = i;
			break;
		}
	}
	while (jd->hi > 0 && jd->lo > 0 && jd->v[jd->lo - 1].state == SEG_USED &&
	       jd->v[jd->lo - 1].segno + 1 == jd->v[jd->lo].segno)
		jd->lo--;
	return 0;
fail:
	jdir_free(jd);
	return rc;
}

/* ---- scanning ----------------------------------------------------------------------- */

struct scan {
	jio_t *io;
	const char *dir;
	const uint8_t *uuid;
	uint64_t from_lsn;
	unsigned flags;
	jnl_record_fn fn;
	void *ctx;
	jnl_scan_result_t *res;
	struct jdir jd;
	uint8_t *buf;       /* the segment being walked */
	size_t buf_cap;
	uint8_t *buf2;      /* another segment (evidence) */
	size_t buf2_cap;
};

/* Where a walk of one segment stopped. */
struct walk {
	uint64_t p;          /* offset of the first item that is not the next one */
	int batch_open;      /* the last item was a RECORD (no PAD yet) */
	uint64_t batch;      /* its batch_lsn */
	int full;            /* stopped for lack of room */
	struct rec at;       /* what was found at p */
};

/* Intact records found beyond a point. */
struct evid {
	uint64_t recs, pads;
	uint64_t end;        /* end offset of the last one */
	uint64_t lsn_min, lsn_max;
	int foreign;         /* one belongs to another flush */
	uint64_t foreign_off, foreign_lsn, foreign_batch;
};

static int read_segment(struct scan *sc, const struct seginfo *si, uint8_t **buf, size_t *cap,
			uint64_t *len)
{
	char path[JIO_PATH_MAX];
	uint64_t want = si->file_bytes;
	int fh, rc;

	if (want > JNL_SEG_BYTES_MAX)
		want = JNL_SEG_BYTES_MAX;
	if (*cap < want || !*buf) {
		uint8_t *b = realloc(*buf, want ? (size_t)want : 1);

		if (!b)
			return jio_err(KEEL_E_NOMEM, "out of memory reading a %" PRIu64 "-byte segment",
				       want);
		*buf = b;
		*cap = want;
	}
	rc = seg_path(path, sizeof path, sc->dir, si->segno);
	if (rc < 0)
		return rc;
	rc = jio_open(sc->io, path, JIO_RDONLY, &fh);
	if (rc < 0)
		return rc;
	rc = jio_read_exact(sc->io, fh, *buf, (size_t)want, 0, path);
	jio_close(sc->io, fh);
	*len = want;
	return rc;
}

static void evid_scan(uint8_t *seg, uint64_t seg_bytes, uint64_t from, uint64_t salt, int check,
		      uint64_t batch, struct evid *ev)
{
	uint64_t q = align8(from);

	memset(ev, 0, sizeof ev[0]);
	/* Bounded: q grows by at least 8 per turn. */
	while (q + JNL_REC_HEADER_BYTES <= seg_bytes) {
		uint32_t magic;
		struct rec r;

		memcpy(&magic, seg + q, 4);
		if (le32toh(magic) != JNL_REC_MAGIC) {
			q += 8;
			continue;
		}
		rec_parse(seg, seg_bytes, q, salt, &r);
		if (!r.ok) {
			q += 8;
			continue;
		}
		/* W5/W6: another flush proves this one synced unless it
		 * reaches back over it. */
		if (check && r.batch != batch && !(r.batch > batch && r.batch - r.unsynced <= batch) &&
		    !ev->foreign) {
			ev->foreign = 1;
			ev->foreign_off = q;
			ev->foreign_lsn = r.lsn;
			ev->foreign_batch = r.batch;
		}
		if (r.kind == JNL_KIND_RECORD) {
			if (ev->recs == 0 || r.lsn < ev->lsn_min)
				ev->lsn_min = r.lsn;
			if (r.lsn > ev->lsn_max)
				ev->lsn_max = r.lsn;
			ev->recs++;
		} else {
			ev->pads++;
		}
		ev->end = q + r.total;
		q += r.total;
	}
}

/* End offset of the last nonzero byte in seg[from, to), or `from`. */
static uint64_t nonzero_end(const uint8_t *seg, uint64_t from, uint64_t to)
{
	uint64_t i = to;

	while (i > from && (i & 7))
		if (seg[--i])
			return i + 1;
	while (i >= from + 8) {
		uint64_t w;

		memcpy(&w, seg + i - 8, 8);
		if (w)
			break;
		i -= 8;
	}
	while (i > from)
		if (seg[--i])
			return i + 1;
	return from;
}

static void seg_name_of(const struct scan *sc, uint64_t segno, char *buf, size_t cap)
{
	if (seg_path(buf, cap, sc->dir, segno) < 0)
		snprintf(buf, cap, "segment %" PRIu64, segno);
}

/* Describe what was found at a bad place, for messages. */
static void describe_rec(const struct rec *r, uint64_t expect_lsn, char *buf, size_t cap)
{
	if (r->ok && r->kind == JNL_KIND_RECORD)
		msgf(buf, cap, "an intact record with LSN %" PRIu64 " where LSN %" PRIu64 " was expected",
		     r->lsn, expect_lsn);
	else if (r->ok)
		msgf(buf, cap, "a pad that does not close the records before it");
	else if (r->total)
		msgf(buf, cap, "a bad record: %s (LSN field %" PRIu64 "; expected checksum %016" PRIx64
		     ", found %016" PRIx64 ")", r->why, r->lsn, r->sum_calc, r->sum_found);
	else
		msgf(buf, cap, "a bad record: %s (magic field 0x%08x, length field %u)",
		     r->why ? r->why : "?", r->magic, r->len);
}

/* Fill the "bad place" of the result and return the message code. */
static int scan_bad(struct scan *sc, int bad, uint64_t segno, uint64_t off, uint64_t lsn,
		    const struct rec *r, const char *what)
{
	jnl_scan_result_t *res = sc->res;
	char path[JIO_PATH_MAX];
	const char *advice;

	seg_name_of(sc, segno, path, sizeof path);
	res->bad = bad;
	res->bad_segno = segno;
	res->bad_off = off;
	res->bad_lsn = lsn;
	if (r && r->total) {
		res->sum_expected = r->sum_calc;
		res->sum_found = r->sum_found;
	}
	switch (bad) {
	case JNL_BAD_RECORD:
		advice = "Data after this place was durable, so this is media corruption, not a torn "
			 "write; recovery refuses to open. Salvage (keel recover --salvage) cuts the "
			 "journal here and loses every record from this LSN on";
		break;
	case JNL_BAD_HEADER:
		advice = "Recovery refuses to open. If the header is damaged, salvage (keel recover "
			 "--salvage) cuts the journal before this segment and reports what is lost";
		break;
	case JNL_BAD_GAP:
		advice = "Records are missing, so recovery refuses to open. Restore the missing "
			 "segment, or recover from a newer checkpoint";
		break;
	default:
		advice = "Bytes that were never written have changed: media corruption. Recovery "
			 "refuses to open; salvage ignores this area";
		break;
	}
	msgf(res->msg, sizeof res->msg,
	     "journal corrupt: segment file %s, offset %" PRIu64 ", LSN %" PRIu64 ": %s. %s.", path, off,
	     lsn, what, advice);
	return jio_err(KEEL_E_CORRUPT, "%s", res->msg);
}

static int write_pad(struct scan *sc, int fh, uint64_t segno, uint64_t p, uint64_t lsn, uint64_t batch,
		     uint64_t *pad_end)
{
	uint8_t pad[2 * JIO_SECTOR_BYTES];
	uint64_t end = align_sector(p + JNL_REC_HEADER_BYTES);
	uint64_t total = end - p;

	JNL_VERIFY(total <= sizeof pad && total >= JNL_REC_HEADER_BYTES);
	rec_encode(pad, JNL_KIND_PAD, lsn, batch, 0, NULL, (uint32_t)(total - JNL_REC_HEADER_BYTES), total,
		   jnl_salt(sc->uuid, segno));
	*pad_end = end;
	return jio_write1(sc->io, fh, pad, (size_t)total, p);
}

/*
 * Make the end of segment `si` clean at p: close an open flush with a pad,
 * zero [pad end, zero_end), sync.
 */
static int repair_end(struct scan *sc, const struct seginfo *si, const struct walk *w, uint64_t E,
		      uint64_t zero_end, uint64_t *end_off)
{
	char path[JIO_PATH_MAX];
	uint64_t from = w->p;
	int fh, rc, rc2;

	rc = seg_path(path, sizeof path, sc->dir, si->segno);
	if (rc < 0)
		return rc;
	rc = jio_open(sc->io, path, JIO_RDWR, &fh);
	if (rc < 0)
		return rc;
	/* Zero what the torn flush left, and sync, before the pad that closes
	 * its batch: a crash between the two must not keep the pad (which says
	 * the batch ended) without the zeros, or an intact record of that
	 * unsynced flush beyond it would pass for media damage. */
	if (zero_end > w->p)
		rc = jio_zero(sc->io, fh, w->p, zero_end - w->p, 0);
	if (rc == 0 && w->batch_open) {
		rc = jio_fdatasync(sc->io, fh);
		if (rc == 0)
			rc = write_pad(sc, fh, si->segno, w->p, E - 1, w->batch, &from);
	}
	if (rc == 0)
		rc = jio_fdatasync(sc->io, fh);
	rc2 = jio_close(sc->io, fh);
	if (rc == 0)
		rc = rc2;
	if (rc < 0)
		return jio_err(rc, "repairing the end of journal segment %s at offset %" PRIu64
			       " failed: %s", path, w->p, jio_errmsg());
	*end_off = from;
	return 0;
}

/* Zero [from, to) of segment segno and sync. */
static int zero_range(struct scan *sc, uint64_t segno, uint64_t from, uint64_t to)
{
	char path[JIO_PATH_MAX];
	int fh, rc, rc2;

	rc = seg_path(path, sizeof path, sc->dir, segno);
	if (rc < 0)
		return rc;
	rc = jio_open(sc->io, path, JIO_RDWR, &fh);
	if (rc < 0)
		return rc;
	rc = jio_zero(sc->io, fh, from, to - from, 1);
	rc2 = jio_close(sc->io, fh);
	return rc < 0 ? rc : rc2;
}

/* Rename segments holding records after a salvage cut to "<name>.lost". */
static int move_aside(struct scan *sc, uint64_t segno)
{
	char from[JIO_PATH_MAX], to[JIO_PATH_MAX + 8];
	int rc = seg_path(from, sizeof from, sc->dir, segno);

	if (rc < 0)
		return rc;
	snprintf(to, sizeof to, "%s.lost", from);
	return jio_rename(sc->io, from, to);
}

/*
 * Salvage: the journal ends at (segment index i, offset p).  Count what lies
 * beyond, and with REPAIR cut it off on disk.  seg holds segment i.
 */
static int salvage_at(struct scan *sc, size_t i, uint8_t *seg, const struct walk *w, uint64_t E)
{
	jnl_scan_result_t *res = sc->res;
	const struct seginfo *si = &sc->jd.v[i];
	uint64_t seg_bytes = si->h.seg_bytes;
	struct evid ev;
	uint64_t zero_end, moved = 0, lost_bytes, end_off = w->p;
	char path[JIO_PATH_MAX];
	int rc;

	evid_scan(seg, seg_bytes, w->p, jnl_salt(sc->uuid, si->segno), 0, 0, &ev);
	res->cut_segno = si->segno;
	res->cut_off = w->p;
	res->cut_records = ev.recs;
	res->cut_lsn_min = ev.lsn_min;
	res->cut_lsn_max = ev.lsn_max;
	zero_end = ev.end;
	if (si->h.flags & JNL_F_ZEROED)
		zero_end = align_sector(nonzero_end(seg, w->p, seg_bytes));
	if (zero_end < w->p)
		zero_end = w->p;
	lost_bytes = zero_end - w->p;
	/* Later segments holding records. */
	for (size_t k = i + 1; k < sc->jd.n; k++) {
		struct seginfo *sk = &sc->jd.v[k];
		uint64_t len;
		struct evid e2;

		rc = read_segment(sc, sk, &sc->buf2, &sc->buf2_cap, &len);
		if (rc < 0 && rc != KEEL_E_CORRUPT)
			return rc;
		if (rc < 0)
			len = 0;
		evid_scan(sc->buf2, len, JNL_HEADER_BYTES, jnl_salt(sc->uuid, sk->segno), 0, 0, &e2);
		if (e2.recs + e2.pads == 0 && sk->state != SEG_USED)
			continue;
		sk->why[0] = 0;
		sk->badsize = -1; /* mark: to move aside */
		moved++;
		res->cut_records += e2.recs;
		if (e2.recs && (res->cut_lsn_min == 0 || e2.lsn_min < res->cut_lsn_min))
			res->cut_lsn_min = e2.lsn_min;
		if (e2.lsn_max > res->cut_lsn_max)
			res->cut_lsn_max = e2.lsn_max;
		lost_bytes += len > JNL_HEADER_BYTES ? len - JNL_HEADER_BYTES : 0;
	}
	res->cut_bytes = lost_bytes;
	res->end = JNL_END_SALVAGED;
	if (w->batch_open)
		end_off = align_sector(w->p + JNL_REC_HEADER_BYTES);
	if (sc->flags & JNL_SCAN_REPAIR) {
		rc = repair_end(sc, si, w, E, zero_end, &end_off);
		for (size_t k = i + 1; rc == 0 && k < sc->jd.n; k++)
			if (sc->jd.v[k].badsize == -1)
				rc = move_aside(sc, sc->jd.v[k].segno);
		if (rc == 0 && moved)
			rc = jio_fsync_dir(sc->io, sc->dir);
		if (rc < 0)
			return rc;
		res->repaired = 1;
	}
	res->end_segno = si->segno;
	res->end_off = end_off;
	res->next_lsn = E;
	seg_name_of(sc, si->segno, path, sizeof path);
	{
		char bad[sizeof res->msg];

		memcpy(bad, res->msg, sizeof bad);
		msgf(res->msg, sizeof res->msg,
			 "journal salvaged: cut at segment file %s, offset %" PRIu64 ", LSN %" PRIu64
			 "; lost %" PRIu64 " intact records (LSN %" PRIu64 "..%" PRIu64 ") and %" PRIu64
			 " bytes, %" PRIu64 " later segment(s) %s. %s. The cause: %.300s",
			 path, w->p, E, res->cut_records, res->cut_lsn_min, res->cut_lsn_max,
			 res->cut_bytes, moved,
			 (sc->flags & JNL_SCAN_REPAIR) ? "renamed to *.lost" : "left in place",
			 (sc->flags & JNL_SCAN_REPAIR) ? "Repaired on disk" : "Nothing changed on disk",
			 bad);
	}
	return 0;
}

/* A corruption at (segment index i, walk w): an error, or a salvage cut. */
static int scan_corrupt(struct scan *sc, size_t i, uint8_t *seg, const struct walk *w, uint64_t E,
			int bad, uint64_t bad_segno, uint64_t bad_off, const struct rec *r,
			const char *what)
{
	int rc = scan_bad(sc, bad, bad_segno, bad_off, E, r, what);

	if (!(sc->flags & JNL_SCAN_SALVAGE))
		return rc;
	return salvage_at(sc, i, seg, w, E);
}

/* Walk the records of segment index i (bytes in seg), starting with LSN *E. */
static int walk_segment(struct scan *sc, const struct seginfo *si, uint8_t *seg, uint64_t *E,
			struct walk *w)
{
	jnl_scan_result_t *res = sc->res;
	uint64_t seg_bytes = si->h.seg_bytes, off = JNL_HEADER_BYTES;
	uint64_t salt = jnl_salt(sc->uuid, si->segno);
	uint64_t turns = seg_bytes / 8 + 1;

	memset(w, 0, sizeof *w);
	/* Bounded: each turn advances off by at least 40 bytes. */
	while (turns-- > 0) {
		struct rec r;

		JNL_ASSERT(off % 8 == 0);
		if (off + JNL_REC_HEADER_BYTES > seg_bytes) {
			w->full = 1;
			memset(&w->at, 0, sizeof w->at);
			w->at.why = "no room for a record header before the end of the segment";
			break;
		}
		rec_parse(seg, seg_bytes, off, salt, &r);
		if (r.ok && r.kind == JNL_KIND_RECORD && r.lsn == *E && r.batch - r.unsynced >= si->h.first_lsn &&
		    *E != UINT64_MAX) {
			if (sc->fn && *E >= sc->from_lsn) {
				int rc = sc->fn(sc->ctx, *E, seg + off + JNL_REC_HEADER_BYTES, r.len);

				if (rc)
					return rc;
				if (res->records++ == 0)
					res->first_lsn = *E;
			}
			res->last_lsn = *E;
			(*E)++;
			off += r.total;
			w->batch_open = 1;
			w->batch = r.batch;
			continue;
		}
		if (r.ok && r.kind == JNL_KIND_PAD && w->batch_open && r.lsn + 1 == *E &&
		    r.batch == w->batch) {
			off += r.total;
			w->batch_open = 0;
			continue;
		}
		w->at = r;
		break;
	}
	w->p = off;
	return 0;
}

/* The last USED segment ended at w: clean, torn, or corrupt. */
static int scan_tail(struct scan *sc, size_t i, uint8_t *seg, const struct walk *w, uint64_t E)
{
	jnl_scan_result_t *res = sc->res;
	const struct seginfo *si = &sc->jd.v[i];
	uint64_t seg_bytes = si->h.seg_bytes;
	uint64_t B = w->batch_open ? w->batch : E;
	uint64_t nz = w->p, cut_end, end_off;
	struct evid ev;
	char what[512], path[JIO_PATH_MAX];
	int torn, hidden = 0, rc;

	if (w->batch_open && w->full)
		return scan_corrupt(sc, i, seg, w, E, JNL_BAD_RECORD, si->segno, w->p, &w->at,
				    "the segment ends without the pad that closes its last flush");
	evid_scan(seg, seg_bytes, w->p, jnl_salt(sc->uuid, si->segno), 1, B, &ev);
	if (ev.foreign) {
		char found[256];

		describe_rec(&w->at, E, found, sizeof found);
		msgf(what, sizeof what,
			 "found %s; an intact record of a later flush follows at offset %" PRIu64
			 " (LSN %" PRIu64 ", flush of LSN %" PRIu64 ")",
			 found, ev.foreign_off, ev.foreign_lsn, ev.foreign_batch);
		return scan_corrupt(sc, i, seg, w, E, JNL_BAD_RECORD, si->segno, w->p, &w->at, what);
	}
	/* The next file, UNUSED, must hold no records (W3). */
	if (i + 1 < sc->jd.n && sc->jd.v[i + 1].segno == si->segno + 1 && !sc->jd.v[i + 1].intact) {
		const struct seginfo *sn = &sc->jd.v[i + 1];
		struct evid e2;
		uint64_t len;

		rc = read_segment(sc, sn, &sc->buf2, &sc->buf2_cap, &len);
		if (rc < 0)
			return rc;
		evid_scan(sc->buf2, len, JNL_HEADER_BYTES, jnl_salt(sc->uuid, sn->segno), 0, 0, &e2);
		if (e2.recs + e2.pads > 0) {
			msgf(what, sizeof what,
				 "the header of the next segment is not valid (%s) although it holds "
				 "%" PRIu64 " intact records (LSN %" PRIu64 "..%" PRIu64 ")",
				 sn->why, e2.recs, e2.lsn_min, e2.lsn_max);
			rc = scan_bad(sc, JNL_BAD_HEADER, sn->segno, 0, E, NULL, what);
			if (!(sc->flags & JNL_SCAN_SALVAGE))
				return rc;
			hidden = 1;
		}
	}
	if (hidden)
		return salvage_at(sc, i, seg, w, E);
	if (si->h.flags & JNL_F_ZEROED)
		nz = nonzero_end(seg, w->p, seg_bytes);
	torn = w->batch_open || ev.recs + ev.pads > 0 || nz > w->p;
	end_off = w->batch_open ? align_sector(w->p + JNL_REC_HEADER_BYTES) : w->p;
	res->end_segno = si->segno;
	res->next_lsn = E;
	res->end = torn ? JNL_END_TORN : JNL_END_CLEAN;
	if (!torn) {
		res->end_off = end_off;
		return 0;
	}
	cut_end = align_sector(nz);
	if (ev.end > cut_end)
		cut_end = ev.end;
	if (end_off > cut_end)
		cut_end = end_off;
	res->cut_segno = si->segno;
	res->cut_off = w->p;
	res->cut_bytes = cut_end - w->p;
	res->cut_records = ev.recs;
	res->cut_lsn_min = ev.lsn_min;
	res->cut_lsn_max = ev.lsn_max;
	if (sc->flags & JNL_SCAN_REPAIR) {
		rc = repair_end(sc, si, w, E, cut_end, &end_off);
		if (rc < 0)
			return rc;
		res->repaired = 1;
	}
	res->end_off = end_off;
	seg_name_of(sc, si->segno, path, sizeof path);
	{
		char beyond[128] = "";

		if (ev.recs)
			msgf(beyond, sizeof beyond, ", dropping %" PRIu64 " intact records of unsynced "
			     "flushes found beyond the gap (LSN %" PRIu64 "..%" PRIu64 ")", ev.recs,
			     ev.lsn_min, ev.lsn_max);
		msgf(res->msg, sizeof res->msg,
		     "torn journal tail: segment file %s, offset %" PRIu64 ": the last flush before the "
		     "crash did not complete; the journal ends at LSN %" PRIu64 " and %" PRIu64
		     " bytes were cut%s. Nothing acknowledged as durable was lost. %s",
		     path, w->p, E - 1, res->cut_bytes, beyond,
		     res->repaired ? "The tail was zeroed on disk." : "The tail is still on disk.");
	}
	return 0;
}

/* No USED segment: an empty journal, unless a damaged header hides records. */
static int scan_empty(struct scan *sc)
{
	jnl_scan_result_t *res = sc->res;

	res->end = JNL_END_CLEAN;
	res->next_lsn = sc->from_lsn;
	for (size_t k = 0; k < sc->jd.n; k++) {
		struct seginfo *sk = &sc->jd.v[k];
		struct evid e2;
		uint64_t len;
		char what[512];
		int rc;

		/* An intact header (a spare's, or the stale one of a recycled
		 * file) was not damaged: nothing can hide behind it (W3). */
		if (sk->intact)
			continue;
		rc = read_segment(sc, sk, &sc->buf2, &sc->buf2_cap, &len);
		if (rc < 0)
			return rc;
		evid_scan(sc->buf2, len, JNL_HEADER_BYTES, jnl_salt(sc->uuid, sk->segno), 0, 0, &e2);
		if (e2.recs + e2.pads == 0)
			continue;
		msgf(what, sizeof what,
			 "the segment header is not valid (%s) although the segment holds %" PRIu64
			 " intact records (LSN %" PRIu64 "..%" PRIu64 ")",
			 sk->why, e2.recs, e2.lsn_min, e2.lsn_max);
		rc = scan_bad(sc, JNL_BAD_HEADER, sk->segno, 0, e2.lsn_min, NULL, what);
		if (!(sc->flags & JNL_SCAN_SALVAGE))
			return rc;
		res->end = JNL_END_SALVAGED;
		res->cut_records += e2.recs;
		res->cut_bytes += len;
		if (sc->flags & JNL_SCAN_REPAIR) {
			rc = move_aside(sc, sk->segno);
			if (rc == 0)
				rc = jio_fsync_dir(sc->io, sc->dir);
			if (rc < 0)
				return rc;
			res->repaired = 1;
		}
	}
	return 0;
}

static int scan_run(struct scan *sc)
{
	struct jdir *jd = &sc->jd;
	uint64_t E;
	size_t s;
	int rc;

	for (size_t i = 0; i < jd->n; i++) {
		if (jd->v[i].hclass == HDR_ALIEN) {
			char what[256];

			msgf(what, sizeof what, "the segment header is intact but not usable: %s",
			     jd->v[i].why);
			return scan_bad(sc, JNL_BAD_HEADER, jd->v[i].segno, 0, sc->from_lsn, NULL, what);
		}
	}
	if (jd->lo == jd->hi)
		return scan_empty(sc);
	s = jd->lo;
	if (sc->from_lsn) {
		size_t found = SIZE_MAX;

		for (size_t i = jd->lo; i < jd->hi; i++)
			if (jd->v[i].h.first_lsn <= sc->from_lsn)
				found = i;
		if (found == SIZE_MAX) {
			char what[512];
			const struct seginfo *f = &jd->v[jd->lo];

			msgf(what, sizeof what,
				 "the journal begins at LSN %" PRIu64 " but records from LSN %" PRIu64
				 " are needed%s%s",
				 f->h.first_lsn, sc->from_lsn, jd->lo > 0 ? "; the segment before it: " : "",
				 jd->lo > 0 ? jd->v[jd->lo - 1].why : "");
			return scan_bad(sc, JNL_BAD_GAP, f->segno, 0, sc->from_lsn, NULL, what);
		}
		s = found;
	}
	E = jd->v[s].h.first_lsn;
	if (jd->v[s].badsize) {
		char what[256];

		msgf(what, sizeof what, "the segment file is %" PRIu64 " bytes, its header says %" PRIu64,
			 jd->v[s].file_bytes, jd->v[s].h.seg_bytes);
		return scan_bad(sc, JNL_BAD_HEADER, jd->v[s].segno, 0, E, NULL, what);
	}
	for (size_t i = s; i < jd->hi; i++) {
		const struct seginfo *si = &jd->v[i];
		struct walk w;
		uint64_t len;

		rc = read_segment(sc, si, &sc->buf, &sc->buf_cap, &len);
		if (rc < 0)
			return rc;
		if (len != si->h.seg_bytes)
			return scan_bad(sc, JNL_BAD_HEADER, si->segno, 0, E, NULL,
					"the segment file changed size while it was read");
		rc = walk_segment(sc, si, sc->buf, &E, &w);
		if (rc)
			return rc;
		if (i + 1 == jd->hi)
			return scan_tail(sc, i, sc->buf, &w, E);
		/* Not the last: the next header says where records went on. */
		{
			const struct seginfo *sn = &jd->v[i + 1];
			char what[512], found[256];

			if (sn->badsize) {
				msgf(what, sizeof what,
					 "the next segment file is %" PRIu64 " bytes, its header says %" PRIu64,
					 sn->file_bytes, sn->h.seg_bytes);
				return scan_corrupt(sc, i, sc->buf, &w, E, JNL_BAD_HEADER, sn->segno, 0,
						    NULL, what);
			}
			if (sn->h.first_lsn != E && !w.batch_open &&
			    (w.full || nonzero_end(sc->buf, w.p, si->h.seg_bytes) == w.p)) {
				/* This segment ended cleanly: the next header
				 * is the one that does not fit. */
				msgf(what, sizeof what,
				     "the segment header says its first LSN is %" PRIu64 ", but the "
				     "segment before it ends before LSN %" PRIu64,
				     sn->h.first_lsn, E);
				return scan_corrupt(sc, i, sc->buf, &w, E, JNL_BAD_HEADER, sn->segno, 0,
						    NULL, what);
			}
			if (sn->h.first_lsn != E || w.batch_open) {
				describe_rec(&w.at, E, found, sizeof found);
				msgf(what, sizeof what,
					 "found %s; the next segment starts at LSN %" PRIu64, found,
					 sn->h.first_lsn);
				return scan_corrupt(sc, i, sc->buf, &w, E, JNL_BAD_RECORD, si->segno, w.p,
						    &w.at, what);
			}
			if (si->h.flags & JNL_F_ZEROED) {
				uint64_t nz = nonzero_end(sc->buf, w.p, si->h.seg_bytes);

				if (nz > w.p && (sc->flags & JNL_SCAN_SALVAGE)) {
					/* Harmless to the records: salvage zeroes it
					 * (with REPAIR) and goes on. */
					if (sc->flags & JNL_SCAN_REPAIR) {
						rc = zero_range(sc, si->segno, w.p, align_sector(nz));
						if (rc < 0)
							return rc;
						sc->res->repaired = 1;
					}
				} else if (nz > w.p) {
					msgf(what, sizeof what,
						 "bytes that were never written (the unused end of a "
						 "sealed segment, from offset %" PRIu64 ") are not zero, up "
						 "to offset %" PRIu64, w.p, nz);
					return scan_bad(sc, JNL_BAD_UNUSED, si->segno, w.p, E, NULL, what);
				}
			}
		}
	}
	return 0; /* not reached: the last segment returns from scan_tail */
}

int jnl_scan(const char *dir, jio_t *io, const uint8_t uuid[JNL_UUID_BYTES], uint64_t from_lsn,
	     unsigned flags, jnl_record_fn fn, void *ctx, jnl_scan_result_t *res)
{
	struct scan sc;
	int rc;

	if (!res)
		return jio_err(KEEL_E_INVAL, "jnl_scan: no result struct");
	memset(res, 0, sizeof *res);
	if (!dir || !io || !uuid)
		return jio_err(KEEL_E_INVAL, "jnl_scan: dir, io and uuid are required");
	if (flags & ~(unsigned)(JNL_SCAN_REPAIR | JNL_SCAN_SALVAGE))
		return jio_err(KEEL_E_INVAL, "jnl_scan: unknown flags 0x%x", flags);
	memset(&sc, 0, sizeof sc);
	sc.io = io;
	sc.dir = dir;
	sc.uuid = uuid;
	sc.from_lsn = from_lsn;
	sc.flags = flags;
	sc.fn = fn;
	sc.ctx = ctx;
	sc.res = res;
	rc = jdir_load(io, dir, uuid, &sc.jd);
	if (rc == 0)
		rc = scan_run(&sc);
	jdir_free(&sc.jd);
	free(sc.buf);
	free(sc.buf2);
	return rc;
}

/* ---- the writer ------------------------------------------------------------------------ */

struct jseg {
	uint64_t segno, first_lsn;
};

struct jnl {
	jio_t *io;
	char dir[JIO_PATH_MAX];
	uint8_t uuid[JNL_UUID_BYTES];
	jnl_opts_t opts;
	int failed;              /* sticky: the first error */
	char fail_msg[512];
	/* current segment */
	int fh;                  /* -1: none */
	uint64_t segno, seg_bytes, seg_first_lsn, salt;
	uint64_t off;            /* durable end, sector-aligned: buf goes here */
	uint64_t next_lsn;
	uint64_t batch_lsn;      /* first LSN in buf (0: empty) */
	uint32_t batch_unsynced; /* its unsynced field (W6) */
	uint64_t synced_lsn;     /* every LSN <= this is known durable */
	uint64_t buf_records;
	uint8_t *buf;
	size_t len, cap;
	/* segments */
	struct jseg *used;       /* USED segments by segno, current last */
	size_t nused, used_cap;
	uint64_t *spare;         /* UNUSED segments after the current, ascending */
	size_t nspare, spare_cap;
	uint64_t *junk;          /* UNUSED segments before the current */
	size_t njunk, junk_cap;
	uint64_t max_segno;
	uint64_t flushes, switches;
};

void jnl_opts_init(jnl_opts_t *o)
{
	memset(o, 0, sizeof *o);
	o->seg_bytes = JNL_SEG_BYTES_DEFAULT;
	o->first_lsn = 1;
	o->spare_max = JNL_SPARE_DEFAULT;
}

static int u64_push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		uint64_t *nv = realloc(*v, c * sizeof *nv);

		if (!nv)
			return jio_err(KEEL_E_NOMEM, "out of memory in the journal");
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

static int used_push(jnl_t *j, uint64_t segno, uint64_t first_lsn)
{
	if (j->nused == j->used_cap) {
		size_t c = j->used_cap ? j->used_cap * 2 : 8;
		struct jseg *nv = realloc(j->used, c * sizeof *nv);

		if (!nv)
			return jio_err(KEEL_E_NOMEM, "out of memory in the journal");
		j->used = nv;
		j->used_cap = c;
	}
	j->used[j->nused].segno = segno;
	j->used[j->nused].first_lsn = first_lsn;
	j->nused++;
	return 0;
}

/* Enter the sticky failed state; returns rc. */
static int jnl_fail(jnl_t *j, int rc)
{
	if (!j->failed) {
		j->failed = rc;
		snprintf(j->fail_msg, sizeof j->fail_msg, "%s", jio_errmsg());
	}
	return rc;
}

static int jnl_panic(const jnl_t *j)
{
	return jio_err(KEEL_E_PANIC,
		       "journal %s failed earlier (%s: %s); nothing more is written or acknowledged "
		       "until the store is reopened, which runs recovery",
		       j->dir, jio_code_name(j->failed), j->fail_msg);
}

static int ensure_cap(jnl_t *j, size_t need)
{
	size_t c = j->cap ? j->cap : 64 * 1024;
	uint8_t *b;

	if (need <= j->cap)
		return 0;
	while (c < need)
		c *= 2;
	b = realloc(j->buf, c);
	if (!b)
		return jio_err(KEEL_E_NOMEM, "out of memory for %zu bytes of journal buffer", c);
	j->buf = b;
	j->cap = c;
	return 0;
}

/* Create segment `segno` as a zero-filled spare (W3), durable with its name. */
/* Write spare header h on open file fh, synced, and close fh (W3: the zero
 * body it proves was synced first). */
static int seal_spare(jnl_t *j, int fh, int rc, const struct seghdr *h)
{
	uint8_t sector[JNL_HEADER_BYTES];
	int rc2;

	seghdr_encode(sector, j->uuid, h);
	if (rc == 0) {
		struct jio_wr w = { .off = 0, .buf = sector, .len = sizeof sector };

		rc = jio_write(j->io, fh, &w, 1, JIO_W_DATASYNC);
	}
	rc2 = jio_close(j->io, fh);
	return rc ? rc : rc2;
}

static int make_spare(jnl_t *j, uint64_t segno)
{
	char path[JIO_PATH_MAX];
	struct seghdr h = { .segno = segno, .first_lsn = 0, .seg_bytes = j->opts.seg_bytes,
			    .flags = JNL_F_ZEROED };
	int fh, rc;

	rc = seg_path(path, sizeof path, j->dir, segno);
	if (rc < 0)
		return rc;
	rc = jio_open(j->io, path, JIO_RDWR | JIO_CREATE | JIO_EXCL, &fh);
	if (rc < 0)
		return rc;
	/* The zeros are durable before the spare header says ZEROED: a
	 * spare header proves a zero body (a crash may garble unsynced
	 * zero-fill writes). */
	rc = jio_preallocate(j->io, fh, 0, h.seg_bytes);
	if (rc == 0)
		rc = jio_zero(j->io, fh, 0, h.seg_bytes, 1);
	rc = seal_spare(j, fh, rc, &h);
	if (rc == 0)
		rc = jio_fsync_dir(j->io, j->dir);
	if (rc < 0)
		return jio_err(rc, "creating journal segment %s failed: %s", path, jio_errmsg());
	if (segno > j->max_segno)
		j->max_segno = segno;
	/* Keep spares sorted: segno is above every spare here. */
	return u64_push(&j->spare, &j->nspare, &j->spare_cap, segno);
}

static int spare_index(const jnl_t *j, uint64_t segno)
{
	for (size_t i = 0; i < j->nspare; i++)
		if (j->spare[i] == segno)
			return (int)i;
	return -1;
}

/* Start segment segno+1 (W3).  The buffer must be empty (flushed). */
static int switch_next(jnl_t *j)
{
	char path[JIO_PATH_MAX], why[160];
	uint8_t sector[JNL_HEADER_BYTES];
	uint64_t next = j->segno + 1, size = 0;
	struct seghdr old, h;
	size_t got = 0;
	int fh, rc, si, cls;

	JNL_VERIFY(j->len == 0);
	rc = seg_path(path, sizeof path, j->dir, next);
	if (rc < 0)
		return rc;
	/* Whatever the lists say (another process may have recycled or
	 * prepared segments), the file itself decides. */
	rc = jio_open(j->io, path, JIO_RDWR, &fh);
	if (rc == KEEL_E_NOTFOUND) {
		rc = make_spare(j, next);
		if (rc < 0)
			return rc;
		rc = jio_open(j->io, path, JIO_RDWR, &fh);
	}
	if (rc < 0)
		return rc;
	rc = jio_size(j->io, fh, &size);
	if (rc == 0)
		rc = jio_pread(j->io, fh, sector, sizeof sector, 0, &got);
	if (rc < 0)
		goto fail;
	cls = got == sizeof sector ? seghdr_decode(sector, j->uuid, next, &old, why, sizeof why)
				   : HDR_DAMAGED;
	if (cls == HDR_USED || cls == HDR_ALIEN) {
		jio_close(j->io, fh);
		if (cls == HDR_ALIEN)
			return jio_err(KEEL_E_CORRUPT, "journal segment %s cannot be reused: %s", path, why);
		return jio_err(KEEL_E_STATE,
			       "journal segment %s is already started (first LSN %" PRIu64 "): another "
			       "writer moved the journal on; jnl_reload or jnl_set_pos before appending",
			       path, old.first_lsn);
	}
	h.segno = next;
	h.first_lsn = j->next_lsn;
	h.seg_bytes = j->opts.seg_bytes;
	h.flags = 0;
	if (cls == HDR_SPARE && (old.flags & JNL_F_ZEROED) && old.seg_bytes == size &&
	    size == h.seg_bytes) {
		h.flags = JNL_F_ZEROED; /* a spare made by make_spare */
	} else if (size != h.seg_bytes) {
		/* A recycled file of another size, or a spare whose making was
		 * cut short: fill it afresh. */
		rc = jio_truncate(j->io, fh, h.seg_bytes);
		if (rc == 0)
			rc = jio_preallocate(j->io, fh, 0, h.seg_bytes);
		if (rc == 0)
			rc = jio_zero(j->io, fh, 0, h.seg_bytes, 1);
		if (rc < 0)
			goto fail;
		h.flags = JNL_F_ZEROED;
	}
	seghdr_encode(sector, j->uuid, &h);
	{
		struct jio_wr w = { .off = 0, .buf = sector, .len = sizeof sector };

		rc = jio_write(j->io, fh, &w, 1, JIO_W_DATASYNC);
	}
	if (rc < 0)
		goto fail;
	if (j->fh >= 0)
		jio_close(j->io, j->fh); /* everything in it is synced */
	j->fh = fh;
	j->segno = next;
	j->seg_bytes = h.seg_bytes;
	j->seg_first_lsn = h.first_lsn;
	j->salt = jnl_salt(j->uuid, next);
	j->off = JNL_HEADER_BYTES;
	si = spare_index(j, next);
	if (si >= 0) {
		memmove(&j->spare[si], &j->spare[si + 1], (j->nspare - (size_t)si - 1) * sizeof *j->spare);
		j->nspare--;
	}
	if (next > j->max_segno)
		j->max_segno = next;
	j->switches++;
	return used_push(j, next, h.first_lsn);
fail:
	jio_close(j->io, fh);
	return jio_err(rc, "starting journal segment %s failed: %s", path, jio_errmsg());
}

#ifdef KEEL_DEBUG
/* Validate the buffer just before it is written (the other side of the
 * disk boundary is the scan). */
static void check_buffer(jnl_t *j, uint64_t total)
{
	uint8_t *seg = j->buf - j->off; /* only offsets >= off are touched */
	uint64_t off = j->off, lsn = j->batch_lsn;
	struct rec r;

	while (off < j->off + total) {
		rec_parse(seg, j->seg_bytes, off, j->salt, &r);
		JNL_VERIFY(r.ok);
		if (r.kind == JNL_KIND_RECORD)
			JNL_VERIFY(r.lsn == lsn++ && r.batch == j->batch_lsn);
		off += r.total;
	}
	JNL_VERIFY(off == j->off + total && r.kind == JNL_KIND_PAD);
}
#endif

/* Write the buffer, and sync it when `sync` (W1, W6).  Failures are sticky. */
static int flush_buffer(jnl_t *j, int sync)
{
	uint64_t start = j->off + j->len;
	uint64_t pad_total = align_sector(start + JNL_REC_HEADER_BYTES) - start;
	uint64_t total, first = j->batch_lsn, last = j->next_lsn - 1;
	struct jio_wr w;
	int rc;

	if (j->len == 0)
		return 0;
	rc = ensure_cap(j, j->len + (size_t)pad_total);
	if (rc < 0)
		return jnl_fail(j, rc);
	rec_encode(j->buf + j->len, JNL_KIND_PAD, last, j->batch_lsn, j->batch_unsynced, NULL,
		   (uint32_t)(pad_total - JNL_REC_HEADER_BYTES), pad_total, j->salt);
	total = j->len + pad_total;
	JNL_VERIFY(j->off % JIO_SECTOR_BYTES == 0 && (j->off + total) % JIO_SECTOR_BYTES == 0);
	JNL_VERIFY(j->off + total <= j->seg_bytes);
#ifdef KEEL_DEBUG
	check_buffer(j, total);
#endif
	w.off = j->off;
	w.buf = j->buf;
	w.len = (size_t)total;
	rc = jio_write(j->io, j->fh, &w, 1, JIO_W_DIRECT | (sync ? JIO_W_DATASYNC : 0));
	if (rc < 0) {
		char path[JIO_PATH_MAX];

		seg_path(path, sizeof path, j->dir, j->segno);
		jio_err(rc, "journal flush of LSN %" PRIu64 "..%" PRIu64 " (%" PRIu64 " bytes) to %s "
			"at offset %" PRIu64 " failed: %s; those commits are not durable",
			first, last, total, path, j->off, jio_errmsg());
		return jnl_fail(j, rc);
	}
	j->off += total;
	j->len = 0;
	j->batch_lsn = 0;
	j->buf_records = 0;
	j->flushes++;
	if (sync)
		j->synced_lsn = last;
	return 0;
}

/* W3 with W6: before the next segment starts, every record of this one is
 * synced, including writes of this or another writer not yet known synced
 * (with an empty buffer, flush_buffer syncs nothing). */
static int sync_segment(jnl_t *j)
{
	int rc;

	if (j->synced_lsn + 1 >= j->next_lsn)
		return 0;
	rc = jio_fdatasync(j->io, j->fh);
	if (rc < 0)
		return rc;
	j->synced_lsn = j->next_lsn - 1;
	return 0;
}

int jnl_append(jnl_t *j, uint64_t lsn, const void *payload, size_t len)
{
	uint64_t total, max = JNL_PAYLOAD_MAX(j->opts.seg_bytes);
	uint8_t *at;
	int rc;

	if (j->failed)
		return jnl_panic(j);
	if (lsn != j->next_lsn || lsn == UINT64_MAX)
		return jio_err(KEEL_E_INVAL, "journal append: LSN %" PRIu64 ", but the next LSN is %" PRIu64,
			       lsn, j->next_lsn);
	if (len > max || (len && !payload))
		return jio_err(KEEL_E_INVAL,
			       "journal append: payload of %zu bytes (at most %" PRIu64 " with %" PRIu64
			       "-byte segments)", len, max, j->opts.seg_bytes);
	total = JNL_REC_HEADER_BYTES + align8(len);
	/* W2: room for this record and a pad header after it. */
	if (j->off + j->len + total + JNL_REC_HEADER_BYTES > j->seg_bytes) {
		rc = flush_buffer(j, 1);
		if (rc == 0)
			rc = sync_segment(j);
		if (rc == 0)
			rc = switch_next(j);
		if (rc == KEEL_E_STATE)
			return rc; /* nothing written in the next segment: not a failure */
		if (rc < 0)
			return jnl_fail(j, rc);
		JNL_VERIFY(j->off + total + JNL_REC_HEADER_BYTES <= j->seg_bytes);
	}
	rc = ensure_cap(j, j->len + (size_t)total + 2 * JIO_SECTOR_BYTES);
	if (rc < 0)
		return rc; /* nothing changed: not sticky */
	if (j->len == 0) {
		/* W6: how far back over unsynced flushes of this segment the
		 * batch reaches (a segment switch syncs all before it). */
		uint64_t known = j->synced_lsn + 1 > j->seg_first_lsn ? j->synced_lsn : j->seg_first_lsn - 1;
		j->batch_lsn = lsn;
		JNL_VERIFY(known < lsn && lsn - 1 - known < UINT32_MAX);
		j->batch_unsynced = (uint32_t)(lsn - 1 - known);
	}
	at = j->buf + j->len;
	JNL_ASSERT(j->batch_lsn >= j->seg_first_lsn && j->batch_lsn <= lsn);
	rec_encode(at, JNL_KIND_RECORD, lsn, j->batch_lsn, j->batch_unsynced, payload, (uint32_t)len, total,
		   j->salt);
	JNL_ASSERT(j->off + j->len + total + JNL_REC_HEADER_BYTES <= j->seg_bytes);
	j->len += (size_t)total;
	j->buf_records++;
	j->next_lsn++;
	return 0;
}

int jnl_flush(jnl_t *j)
{
	if (j->failed)
		return jnl_panic(j);
	return flush_buffer(j, 1);
}

int jnl_write(jnl_t *j)
{
	if (j->failed)
		return jnl_panic(j);
	return flush_buffer(j, 0);
}

int jnl_sync(jnl_t *j)
{
	/* Everything before the append position is written: by this writer,
	 * or by the others whose position it took over (jnl_set_pos). */
	uint64_t upto = j->next_lsn - 1 - j->buf_records;
	int rc;

	if (j->failed)
		return jnl_panic(j);
	if (j->fh < 0 || upto <= j->synced_lsn)
		return 0;
	rc = jio_fdatasync(j->io, j->fh);
	if (rc < 0) {
		char path[JIO_PATH_MAX];

		seg_path(path, sizeof path, j->dir, j->segno);
		jio_err(rc, "journal sync of %s up to LSN %" PRIu64 " failed: %s; those commits are "
			"not durable", path, upto, jio_errmsg());
		return jnl_fail(j, rc);
	}
	j->synced_lsn = upto;
	return 0;
}

void jnl_set_synced(jnl_t *j, uint64_t lsn)
{
	if (lsn > j->synced_lsn && lsn < j->next_lsn)
		j->synced_lsn = lsn;
}

/* Rebuild the segment lists from the directory (another process may have
 * recycled, prepared or switched). */
static int refresh_lists(jnl_t *j)
{
	struct jdir jd;
	int rc = jdir_load(j->io, j->dir, j->uuid, &jd);

	if (rc < 0)
		return rc;
	j->nused = j->nspare = j->njunk = 0;
	if (jd.max_segno > j->max_segno)
		j->max_segno = jd.max_segno;
	for (size_t i = 0; i < jd.n && rc == 0; i++) {
		const struct seginfo *si = &jd.v[i];

		if (si->hclass == HDR_USED && si->segno > j->segno)
			rc = jio_err(KEEL_E_STATE,
				     "journal segment %" PRIu64 " is in use beyond this writer's segment %" PRIu64
				     ": another writer moved the journal on; jnl_reload or jnl_set_pos first",
				     si->segno, j->segno);
		else if (si->hclass == HDR_USED)
			rc = used_push(j, si->segno, si->h.first_lsn);
		else if (si->segno > j->segno)
			rc = u64_push(&j->spare, &j->nspare, &j->spare_cap, si->segno);
		else
			rc = u64_push(&j->junk, &j->njunk, &j->junk_cap, si->segno);
	}
	if (rc == 0 && (j->nused == 0 || j->used[j->nused - 1].segno != j->segno))
		rc = jio_err(KEEL_E_STATE, "the current journal segment %" PRIu64 " is missing or not "
			     "valid on disk; reopen the journal", j->segno);
	jdir_free(&jd);
	return rc;
}

int jnl_spare_fill(jio_t *io, const char *dir, const char *name, uint64_t seg_bytes,
		   void (*pace)(void *ctx), void *ctx)
{
	char path[JIO_PATH_MAX];
	int fh, rc, rc2;

	if (jnl_parse_name(name, &(uint64_t){ 0 }) || seg_bytes < JNL_SEG_BYTES_MIN ||
	    seg_bytes > JNL_SEG_BYTES_MAX || seg_bytes % JIO_SECTOR_BYTES)
		return jio_err(KEEL_E_INVAL, "jnl_spare_fill: bad name %s or size %" PRIu64, name, seg_bytes);
	rc = jio_join(path, sizeof path, dir, name);
	if (rc < 0)
		return rc;
	rc = jio_unlink(io, path);   /* a leftover of an earlier try */
	if (rc < 0 && rc != KEEL_E_NOTFOUND)
		return rc;
	rc = jio_open(io, path, JIO_RDWR | JIO_CREATE | JIO_EXCL, &fh);
	if (rc < 0)
		return rc;
	rc = jio_preallocate(io, fh, 0, seg_bytes);
	/* In synced steps, with the caller's pause between them, so that
	 * the writer's syncs never queue behind the whole fill. */
	for (uint64_t off = 0; rc == 0 && off < seg_bytes; off += JNL_SPARE_STEP) {
		uint64_t n = seg_bytes - off < JNL_SPARE_STEP ? seg_bytes - off : JNL_SPARE_STEP;
		rc = jio_zero(io, fh, off, n, 1);
		if (rc == 0 && pace && off + n < seg_bytes)
			pace(ctx);
	}
	rc2 = jio_close(io, fh);
	return rc ? rc : rc2;
}

int jnl_spare_adopt(jnl_t *j, const char *name)
{
	char from[JIO_PATH_MAX], to[JIO_PATH_MAX];
	struct seghdr h = { .first_lsn = 0, .seg_bytes = j->opts.seg_bytes, .flags = JNL_F_ZEROED };
	uint64_t size = 0;
	int fh, rc;

	if (j->failed)
		return jnl_panic(j);
	rc = refresh_lists(j);
	if (rc < 0)
		return rc;
	h.segno = (j->max_segno > j->segno ? j->max_segno : j->segno) + 1;
	rc = jio_join(from, sizeof from, j->dir, name);
	if (rc == 0)
		rc = seg_path(to, sizeof to, j->dir, h.segno);
	if (rc == 0)
		rc = jio_open(j->io, from, JIO_RDWR, &fh);
	if (rc < 0)
		return rc;
	/* W3: the zeros were synced by jnl_spare_fill; the spare header that
	 * proves them goes on top, synced, before the name is a segment's. */
	rc = jio_size(j->io, fh, &size);
	if (rc == 0 && size != h.seg_bytes)
		rc = jio_err(KEEL_E_INVAL, "spare file %s holds %" PRIu64 " bytes, not %" PRIu64, from, size,
			     h.seg_bytes);
	rc = seal_spare(j, fh, rc, &h);
	if (rc < 0)
		return rc;   /* still under its own name: not a segment */
	rc = jio_rename(j->io, from, to);
	if (rc == 0)
		rc = jio_fsync_dir(j->io, j->dir);
	if (rc < 0)
		return jnl_fail(j, jio_err(rc, "adopting journal spare %s failed: %s", to, jio_errmsg()));
	j->max_segno = h.segno;
	return u64_push(&j->spare, &j->nspare, &j->spare_cap, h.segno);
}

int jnl_prepare(jnl_t *j, unsigned count)
{
	int rc;

	if (j->failed)
		return jnl_panic(j);
	rc = refresh_lists(j);
	if (rc < 0)
		return rc == KEEL_E_STATE ? rc : jnl_fail(j, rc);
	if (count > JNL_SPARE_MAX)
		return jio_err(KEEL_E_INVAL, "jnl_prepare: %u spares (at most %u)", count, JNL_SPARE_MAX);
	/* Bounded by count. */
	while (j->nspare < count) {
		uint64_t segno = (j->max_segno > j->segno ? j->max_segno : j->segno) + 1;

		rc = make_spare(j, segno);
		if (rc < 0)
			return jnl_fail(j, rc);
	}
	return 0;
}

/* Recycle one segment file: rename to a spare number, or unlink. */
static int recycle_one(jnl_t *j, uint64_t segno, int *dirty)
{
	char from[JIO_PATH_MAX], to[JIO_PATH_MAX];
	int rc = seg_path(from, sizeof from, j->dir, segno);

	if (rc < 0)
		return rc;
	*dirty = 1;
	if (j->nspare >= j->opts.spare_max) {   /* a drop file, unlinked later (journal.h) */
		char name[48];
		snprintf(name, sizeof name, "drop-%016" PRIx64 ".tmp", segno);
		rc = jio_join(to, sizeof to, j->dir, name);
		return rc < 0 ? rc : jio_rename(j->io, from, to);
	}
	rc = seg_path(to, sizeof to, j->dir, j->max_segno + 1);
	if (rc == 0)
		rc = jio_rename(j->io, from, to);
	if (rc < 0)
		return rc;
	j->max_segno++;
	return u64_push(&j->spare, &j->nspare, &j->spare_cap, j->max_segno);
}

int jnl_is_drop_name(const char *name)
{
	if (strlen(name) != 25 || strncmp(name, "drop-", 5) || strcmp(name + 21, ".tmp"))
		return 0;
	for (int i = 5; i < 21; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

struct drop_scan {
	jio_t *io;
	const char *dir;
	int removed;
};

static int drop_one(void *ctx, const char *name)
{
	struct drop_scan *ds = ctx;
	char path[JIO_PATH_MAX];

	if (!jnl_is_drop_name(name) || jio_join(path, sizeof path, ds->dir, name) < 0)
		return 0;
	if (jio_unlink(ds->io, path) == 0)
		ds->removed++;
	return 0;   /* gone already, or not removable now: the next call tries again */
}

int jnl_drop_files(jio_t *io, const char *dir)
{
	struct drop_scan ds = { io, dir, 0 };
	int rc = jio_list(io, dir, drop_one, &ds);

	return rc < 0 ? rc : ds.removed;
}

int jnl_recycle_below(jnl_t *j, uint64_t lsn)
{
	size_t keep_from = 0;
	int dirty = 0, rc = 0;

	if (j->failed)
		return jnl_panic(j);
	rc = refresh_lists(j);
	if (rc < 0)
		return rc == KEEL_E_STATE ? rc : jnl_fail(j, rc);
	/* used[k] is wholly below lsn when the next used segment starts at or
	 * below it; the current (last) one is never recycled. */
	while (keep_from + 1 < j->nused && j->used[keep_from + 1].first_lsn <= lsn)
		keep_from++;
	for (size_t k = 0; k < j->njunk && rc == 0; k++)
		rc = recycle_one(j, j->junk[k], &dirty);
	if (rc == 0)
		j->njunk = 0;
	for (size_t k = 0; k < keep_from && rc == 0; k++)
		rc = recycle_one(j, j->used[k].segno, &dirty);
	if (rc == 0 && keep_from) {
		memmove(j->used, j->used + keep_from, (j->nused - keep_from) * sizeof *j->used);
		j->nused -= keep_from;
	}
	if (rc == 0 && dirty)
		rc = jio_fsync_dir(j->io, j->dir);
	if (rc < 0)
		return jnl_fail(j, jio_err(rc, "recycling journal segments in %s failed: %s", j->dir,
					   jio_errmsg()));
	return 0;
}

static void jnl_reset(jnl_t *j)
{
	if (j->fh >= 0)
		jio_close(j->io, j->fh);
	j->fh = -1;
	j->nused = j->nspare = j->njunk = 0;
	j->len = 0;
	j->batch_lsn = 0;
	j->buf_records = 0;
	j->segno = 0;
	j->max_segno = 0;
	j->synced_lsn = 0;
}

/* Find the append position on disk (jnl_open, jnl_reload). */
/*
 * The bytes a writer that died in its flush may have left after the durable
 * end `from` of segment segno, within `span`: find the last nonzero one and
 * zero up to it, then sync.  The segment was zero-filled when made, and a
 * flush writes one contiguous run from the durable end, so nothing beyond
 * from + span was written since.  The zeros are synced before the journal
 * writes there again, so no remnant of the dead flush outlives the cut.
 */
static int cut_after(jnl_t *j, uint64_t segno, uint64_t from, uint64_t span, uint64_t seg_bytes)
{
	char path[JIO_PATH_MAX];
	uint64_t end = from + span < seg_bytes ? from + span : seg_bytes, last = from;
	size_t cap = 1u << 20;
	uint8_t *buf = malloc(cap);
	int fh, rc, rc2;

	if (!buf)
		return jio_err(KEEL_E_NOMEM, "out of memory cutting the journal's tail");
	rc = seg_path(path, sizeof path, j->dir, segno);
	if (rc == 0)
		rc = jio_open(j->io, path, JIO_RDWR, &fh);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	/* Bounded: span / 1 MiB reads. */
	for (uint64_t off = from; rc == 0 && off < end;) {
		size_t n = end - off < cap ? (size_t)(end - off) : cap;

		rc = jio_read_exact(j->io, fh, buf, n, off, path);
		if (rc == 0) {
			uint64_t nz = nonzero_end(buf, 0, n);
			if (nz)
				last = off + nz;
			off += n;
		}
	}
	if (rc == 0 && last > from)
		rc = jio_zero(j->io, fh, from, align_sector(last) - from, 1);
	rc2 = jio_close(j->io, fh);
	free(buf);
	if (rc == 0)
		rc = rc2;
	if (rc < 0)
		return jio_err(rc, "cutting journal segment %s after offset %" PRIu64 " failed: %s", path, from,
			       jio_errmsg());
	return 0;
}

static int jnl_load(jnl_t *j)
{
	char parent[JIO_PATH_MAX], path[JIO_PATH_MAX];
	struct jdir jd;
	struct scan sc;
	jnl_scan_result_t *res = NULL;
	int rc, from_at = 0;

	jnl_reset(j);
	rc = jio_mkdir(j->io, j->dir);
	if (rc == 0)
		rc = jio_dirname(parent, sizeof parent, j->dir);
	if (rc == 0)
		rc = jio_fsync_dir(j->io, parent);
	if (rc < 0)
		return rc;
	res = calloc(1, sizeof *res);
	if (!res)
		return jio_err(KEEL_E_NOMEM, "out of memory opening the journal");
	memset(&sc, 0, sizeof sc);
	rc = jdir_load(j->io, j->dir, j->uuid, &jd);
	if (rc < 0)
		goto out;
	sc.io = j->io;
	sc.dir = j->dir;
	sc.uuid = j->uuid;
	sc.from_lsn = jd.lo < jd.hi ? jd.v[jd.hi - 1].h.first_lsn : 0;
	sc.flags = (j->opts.flags & JNL_OPEN_REPAIR) ? JNL_SCAN_REPAIR : 0;
	sc.res = res;
	sc.jd = jd;
	if (j->opts.at && jd.lo < jd.hi && jd.v[jd.hi - 1].segno == j->opts.at->segno &&
	    jd.v[jd.hi - 1].h.first_lsn == j->opts.at->seg_first_lsn &&
	    jd.v[jd.hi - 1].h.seg_bytes == j->opts.at->seg_bytes && j->opts.at->off >= JNL_HEADER_BYTES &&
	    j->opts.at->off <= j->opts.at->seg_bytes && j->opts.at->off % JIO_SECTOR_BYTES == 0 &&
	    j->opts.at->next_lsn >= j->opts.at->seg_first_lsn &&
	    (!j->opts.at_span || ((jd.v[jd.hi - 1].h.flags & JNL_F_ZEROED) && (j->opts.flags & JNL_OPEN_REPAIR)))) {
		/* The shared end: no need to read a whole segment.  What lies
		 * before it may not be synced yet (W6): the caller says what
		 * is (jnl_set_synced). */
		from_at = 1;
		res->end = JNL_END_CLEAN;
		res->end_segno = j->opts.at->segno;
		res->end_off = j->opts.at->off;
		res->next_lsn = j->opts.at->next_lsn;
		rc = 0;
		if (j->opts.at_span)
			rc = cut_after(j, j->opts.at->segno, j->opts.at->off, j->opts.at_span,
				       j->opts.at->seg_bytes);
	} else {
		rc = scan_run(&sc);
	}
	j->opts.at = NULL;   /* a reload scans */
	j->opts.at_span = 0;
	free(sc.buf);
	free(sc.buf2);
	if (rc < 0)
		goto out;
	if (res->end == JNL_END_TORN && !res->repaired) {
		rc = jio_err(KEEL_E_STATE, "journal %s needs recovery before appending: %s", j->dir,
			     res->msg);
		goto out;
	}
	j->max_segno = jd.max_segno;
	for (size_t i = 0; i < jd.n; i++) {
		const struct seginfo *si = &jd.v[i];

		if (si->state == SEG_USED)
			rc = used_push(j, si->segno, si->h.first_lsn);
		else if (jd.lo < jd.hi && si->segno < res->end_segno)
			rc = u64_push(&j->junk, &j->njunk, &j->junk_cap, si->segno);
		else
			rc = u64_push(&j->spare, &j->nspare, &j->spare_cap, si->segno);
		if (rc < 0)
			goto out;
	}
	if (jd.lo == jd.hi) {
		/* Empty: start the first segment at the lowest spare, or after
		 * every file there is. */
		j->next_lsn = j->opts.first_lsn;
		j->segno = j->nspare ? j->spare[0] - 1 : j->max_segno;
		rc = switch_next(j);
		goto out;
	}
	j->segno = res->end_segno;
	j->off = res->end_off;
	j->next_lsn = res->next_lsn;
	j->synced_lsn = from_at ? 0 : j->next_lsn - 1;   /* a scan repaired and synced the end */
	{
		const struct seginfo *last = &jd.v[jd.hi - 1];

		JNL_VERIFY(last->segno == j->segno);
		j->seg_bytes = last->h.seg_bytes;
		j->seg_first_lsn = last->h.first_lsn;
	}
	JNL_VERIFY(j->off % JIO_SECTOR_BYTES == 0 && j->off <= j->seg_bytes);
	j->salt = jnl_salt(j->uuid, j->segno);
	rc = seg_path(path, sizeof path, j->dir, j->segno);
	if (rc == 0)
		rc = jio_open(j->io, path, JIO_RDWR, &j->fh);
out:
	jdir_free(&jd);
	free(res);
	return rc;
}

int jnl_open(const char *dir, jio_t *io, const uint8_t uuid[JNL_UUID_BYTES], const jnl_opts_t *opts,
	     jnl_t **out)
{
	jnl_opts_t o;
	jnl_t *j;
	int rc;

	if (!out)
		return jio_err(KEEL_E_INVAL, "jnl_open: no output pointer");
	*out = NULL;
	if (!dir || !*dir || !io || !uuid)
		return jio_err(KEEL_E_INVAL, "jnl_open: dir, io and uuid are required");
	if (strlen(dir) + JNL_NAME_LEN + 8 >= JIO_PATH_MAX)
		return jio_err(KEEL_E_INVAL, "jnl_open: directory path of %zu bytes is too long",
			       strlen(dir));
	if (opts)
		o = *opts;
	else
		jnl_opts_init(&o);
	if (o.seg_bytes < JNL_SEG_BYTES_MIN || o.seg_bytes > JNL_SEG_BYTES_MAX ||
	    o.seg_bytes % JIO_SECTOR_BYTES)
		return jio_err(KEEL_E_INVAL,
			       "jnl_open: segment size %" PRIu64 " must be a multiple of %u in %llu..%llu",
			       o.seg_bytes, JIO_SECTOR_BYTES, JNL_SEG_BYTES_MIN, JNL_SEG_BYTES_MAX);
	if (o.first_lsn == 0 || o.first_lsn == UINT64_MAX)
		return jio_err(KEEL_E_INVAL, "jnl_open: first LSN %" PRIu64 " (must be 1..2^64-2)",
			       o.first_lsn);
	if (o.spare_max > JNL_SPARE_MAX)
		return jio_err(KEEL_E_INVAL, "jnl_open: spare_max %u (at most %u)", o.spare_max,
			       JNL_SPARE_MAX);
	if (o.flags & ~(uint32_t)JNL_OPEN_REPAIR)
		return jio_err(KEEL_E_INVAL, "jnl_open: unknown flags 0x%x", o.flags);
	j = calloc(1, sizeof *j);
	if (!j)
		return jio_err(KEEL_E_NOMEM, "out of memory opening the journal");
	j->io = io;
	j->fh = -1;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	memcpy(j->uuid, uuid, JNL_UUID_BYTES);
	j->opts = o;
	rc = jnl_load(j);
	if (rc < 0) {
		jnl_close(j);
		return rc;
	}
	*out = j;
	return 0;
}

int jnl_reload(jnl_t *j, unsigned flags)
{
	uint32_t saved = j->opts.flags;
	int rc;

	if (j->failed)
		return jnl_panic(j);
	if (flags & ~(unsigned)JNL_OPEN_REPAIR)
		return jio_err(KEEL_E_INVAL, "jnl_reload: unknown flags 0x%x", flags);
	j->opts.flags = flags;
	rc = jnl_load(j);
	j->opts.flags = saved;
	if (rc < 0 && rc != KEEL_E_STATE && rc != KEEL_E_CORRUPT)
		return jnl_fail(j, rc);
	return rc;
}

void jnl_get_pos(const jnl_t *j, jnl_pos_t *pos)
{
	memset(pos, 0, sizeof *pos);
	pos->segno = j->segno;
	pos->seg_first_lsn = j->seg_first_lsn;
	pos->seg_bytes = j->seg_bytes;
	pos->off = j->off;
	pos->next_lsn = j->next_lsn - j->buf_records;
}

int jnl_set_pos(jnl_t *j, const jnl_pos_t *pos)
{
	if (j->failed)
		return jnl_panic(j);
	if (j->len)
		return jio_err(KEEL_E_STATE, "jnl_set_pos: %" PRIu64 " records are buffered; flush first",
			       j->buf_records);
	if (pos->segno == 0 || pos->segno == UINT64_MAX || pos->seg_bytes < JNL_SEG_BYTES_MIN ||
	    pos->seg_bytes > JNL_SEG_BYTES_MAX || pos->seg_bytes % JIO_SECTOR_BYTES ||
	    pos->off % JIO_SECTOR_BYTES || pos->off < JNL_HEADER_BYTES || pos->off > pos->seg_bytes ||
	    pos->seg_first_lsn == 0 || pos->next_lsn < pos->seg_first_lsn ||
	    pos->next_lsn == UINT64_MAX)
		return jio_err(KEEL_E_INVAL, "jnl_set_pos: inconsistent position (segment %" PRIu64
			       ", offset %" PRIu64 " of %" PRIu64 ", LSN %" PRIu64 " from %" PRIu64 ")",
			       pos->segno, pos->off, pos->seg_bytes, pos->next_lsn, pos->seg_first_lsn);
	if (pos->segno != j->segno) {
		char path[JIO_PATH_MAX];
		int fh, rc = seg_path(path, sizeof path, j->dir, pos->segno);

		if (rc == 0)
			rc = jio_open(j->io, path, JIO_RDWR, &fh);
		if (rc < 0)
			return rc;
		if (j->fh >= 0)
			jio_close(j->io, j->fh);
		j->fh = fh;
		j->segno = pos->segno;
		j->salt = jnl_salt(j->uuid, pos->segno);
		if (pos->segno > j->max_segno)
			j->max_segno = pos->segno;
	}
	j->seg_first_lsn = pos->seg_first_lsn;
	j->seg_bytes = pos->seg_bytes;
	j->off = pos->off;
	j->next_lsn = pos->next_lsn;
	return 0;
}

int jnl_close(jnl_t *j)
{
	if (!j)
		return 0;
	if (j->fh >= 0)
		jio_close(j->io, j->fh);
	free(j->buf);
	free(j->used);
	free(j->spare);
	free(j->junk);
	free(j);
	return 0;
}

void jnl_info(const jnl_t *j, jnl_info_t *out)
{
	memset(out, 0, sizeof *out);
	out->segno = j->segno;
	out->seg_off = j->off;
	out->seg_bytes = j->seg_bytes;
	out->next_lsn = j->next_lsn;
	out->flushed_lsn = j->next_lsn - 1 - j->buf_records;
	out->oldest_lsn = j->nused ? j->used[0].first_lsn : j->next_lsn;
	out->buffered_bytes = j->len;
	out->buffered_records = j->buf_records;
	for (size_t i = 0; i < j->nused; i++)
		out->journal_bytes += j->opts.seg_bytes;
	out->segments = (uint32_t)j->nused;
	out->spares = (uint32_t)j->nspare;
	out->flushes = j->flushes;
	out->switches = j->switches;
	out->failed = j->failed;
	out->backend = j->io->ops->name;
}
