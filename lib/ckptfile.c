/*
 * ckptfile.c - the checkpoint container: format, writer, reader, and the
 * choice of the newest complete checkpoint.
 *
 * A checkpoint is one file, STORE/checkpoint/ckpt-<start LSN as 16 lowercase
 * hex digits>, written as ckpt-<lsn>.tmp and renamed once complete and
 * synced.  It holds a header, a stream of typed opaque items, and a trailer.
 * Little-endian throughout; all I/O through jio.
 *
 * Header (bytes 0..63)
 *   off size field
 *     0    4 magic       0x504b434b ("KCKP")
 *     4    4 version     1
 *     8   16 uuid        the store's UUID
 *    24    8 start_lsn   every commit below it is in the checkpoint; replay
 *                        the journal from here
 *    32    8 created_ns  wall clock when writing began (informational)
 *    40   16 reserved    0
 *    56    8 checksum    XXH3-64 (seed 0) of bytes 0..55
 *
 * Item (at an 8-aligned offset from 64 on), repeated
 *     0    4 type        1..0xfffffffe (the store's item kinds)
 *     4    4 reserved    0
 *     8    8 len         data bytes, <= CKPT_ITEM_BYTES_MAX
 *    16  len data, then zeros up to a multiple of 8
 *
 * Trailer (the last 40 bytes)
 *     0    4 magic       0x444e454b ("KEND")
 *     4    4 reserved    0
 *     8    8 items       item count
 *    16    8 items_bytes bytes from offset 64 to the trailer
 *    24    8 start_lsn   the header's, again
 *    32    8 checksum    XXH3-64 (seed 0) of every byte of the file before
 *                        this field (header, items, trailer bytes 0..31)
 *
 * Valid if and only if: the file is at least 104 bytes; header magic,
 * version, checksum, UUID, reserved zero; trailer magic, reserved zero,
 * items_bytes == size - 104, start_lsn equal to the header's; the items,
 * walked from 64, each have a type in range, reserved zero, a length that
 * ends (padded) at or before the trailer, zero padding, and end exactly at
 * the trailer; their count equals `items`; and the file checksum matches.
 * A name's LSN must equal the start_lsn inside (ckpt_find_newest).
 *
 * Who writes what: one checkpointer at a time (the store serializes them)
 * writes its .tmp file and renames it; readers only read renamed files.
 * Atomicity comes from the rename after fdatasync, and durability of the
 * name from the directory fsync after it.
 */
#include <endian.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "ckptfile.h"
#include "crashpoint.h"

#define CKPT_MAGIC 0x504b434bu
#define CKPT_END_MAGIC 0x444e454bu
#define CKPT_VERSION 1u
#define CKPT_NAME_LEN 21u /* "ckpt-" + 16 */

struct ckpt_hdr_disk {
	uint32_t magic;
	uint32_t version;
	uint8_t uuid[CKPT_UUID_BYTES];
	uint64_t start_lsn;
	uint64_t created_ns;
	uint64_t reserved[2];
	uint64_t checksum;
};

struct ckpt_item_disk {
	uint32_t type;
	uint32_t reserved;
	uint64_t len;
};

struct ckpt_trl_disk {
	uint32_t magic;
	uint32_t reserved;
	uint64_t items;
	uint64_t items_bytes;
	uint64_t start_lsn;
	uint64_t checksum;
};

#define CKPT_HDR_BYTES 64u
#define CKPT_ITEM_HDR_BYTES 16u
#define CKPT_TRL_BYTES 40u

_Static_assert(sizeof(struct ckpt_hdr_disk) == CKPT_HDR_BYTES, "header layout");
_Static_assert(offsetof(struct ckpt_hdr_disk, start_lsn) == 24, "header layout");
_Static_assert(offsetof(struct ckpt_hdr_disk, created_ns) == 32, "header layout");
_Static_assert(offsetof(struct ckpt_hdr_disk, checksum) == 56, "header layout");
_Static_assert(sizeof(struct ckpt_item_disk) == CKPT_ITEM_HDR_BYTES, "item layout");
_Static_assert(offsetof(struct ckpt_item_disk, len) == 8, "item layout");
_Static_assert(sizeof(struct ckpt_trl_disk) == CKPT_TRL_BYTES, "trailer layout");
_Static_assert(offsetof(struct ckpt_trl_disk, items_bytes) == 16, "trailer layout");
_Static_assert(offsetof(struct ckpt_trl_disk, checksum) == 32, "trailer layout");
_Static_assert(CKPT_CHUNK_BYTES_MIN >= CKPT_HDR_BYTES + CKPT_TRL_BYTES, "chunk holds the frame");

static uint64_t pad8(uint64_t x) { return (8 - (x & 7)) & 7; }

int ckpt_file_name(char *buf, size_t cap, uint64_t start_lsn, int tmp)
{
	int n = snprintf(buf, cap, "ckpt-%016" PRIx64 "%s", start_lsn, tmp ? ".tmp" : "");

	if (n < 0 || (size_t)n >= cap)
		return jio_err(KEEL_E_INVAL, "no room for a checkpoint file name");
	return 0;
}

/* "ckpt-<16 hex>" exactly: 1 and the LSN. */
static int ckpt_parse_name(const char *name, uint64_t *lsn, int *tmp)
{
	size_t n = strlen(name);
	uint64_t v = 0;

	*tmp = 0;
	if (n == CKPT_NAME_LEN + 4 && !strcmp(name + CKPT_NAME_LEN, ".tmp"))
		*tmp = 1;
	else if (n != CKPT_NAME_LEN)
		return 0;
	if (strncmp(name, "ckpt-", 5))
		return 0;
	for (size_t i = 5; i < CKPT_NAME_LEN; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = (v << 4) | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v = (v << 4) | (uint64_t)(c - 'a' + 10);
		else
			return 0;
	}
	*lsn = v;
	return 1;
}

/* ---- writer ---------------------------------------------------------------------- */

struct ckpt_writer {
	jio_t *io;
	int fh;
	char dir[JIO_PATH_MAX];
	char tmp[JIO_PATH_MAX];
	char final[JIO_PATH_MAX];
	uint64_t start_lsn, created_ns;
	uint8_t *buf;
	size_t len, cap;
	uint64_t file_off;   /* bytes already written */
	uint64_t items;
	XXH3_state_t *st;
	int failed;
};

static int w_fail(ckpt_writer_t *w, int rc)
{
	if (!w->failed)
		w->failed = rc;
	return rc;
}

static int w_flush(ckpt_writer_t *w, int sync)
{
	struct jio_wr wr = { .off = w->file_off, .buf = w->buf, .len = w->len };
	int rc;

	if (w->len == 0)
		return sync ? jio_fdatasync(w->io, w->fh) : 0;
	rc = jio_write(w->io, w->fh, &wr, 1, sync ? JIO_W_DATASYNC : 0);
	if (rc < 0)
		return w_fail(w, jio_err(rc, "writing checkpoint %s at offset %" PRIu64 " failed: %s",
					 w->tmp, w->file_off, jio_errmsg()));
	w->file_off += w->len;
	w->len = 0;
	return 0;
}

/* Append bytes to the stream, hashing them when `hash`. */
static int w_emit(ckpt_writer_t *w, const void *data, size_t n, int hash)
{
	const uint8_t *p = data;

	if (hash && n)
		XXH3_64bits_update(w->st, p, n);
	/* Bounded: each turn copies at least one byte or flushes a full
	 * buffer. */
	while (n > 0) {
		size_t room = w->cap - w->len, take = n < room ? n : room;
		int rc;

		memcpy(w->buf + w->len, p, take);
		w->len += take;
		p += take;
		n -= take;
		if (w->len == w->cap && (rc = w_flush(w, 1)) < 0)   /* synced: ckptfile.h */
			return rc;
	}
	return 0;
}

static void w_free(ckpt_writer_t *w)
{
	if (w->fh >= 0)
		jio_close(w->io, w->fh);
	if (w->st)
		XXH3_freeState(w->st);
	free(w->buf);
	free(w);
}

int ckpt_write_begin(const char *dir, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES],
		     uint64_t start_lsn, size_t chunk_bytes, ckpt_writer_t **out)
{
	char name[CKPT_NAME_LEN + 8], parent[JIO_PATH_MAX];
	struct ckpt_hdr_disk h;
	struct timespec ts;
	ckpt_writer_t *w;
	int rc;

	if (!out)
		return jio_err(KEEL_E_INVAL, "ckpt_write_begin: no output pointer");
	*out = NULL;
	if (!dir || !*dir || !io || !uuid)
		return jio_err(KEEL_E_INVAL, "ckpt_write_begin: dir, io and uuid are required");
	if (chunk_bytes == 0)
		chunk_bytes = CKPT_CHUNK_BYTES_DEFAULT;
	if (chunk_bytes < CKPT_CHUNK_BYTES_MIN || chunk_bytes > CKPT_CHUNK_BYTES_MAX)
		return jio_err(KEEL_E_INVAL, "ckpt_write_begin: chunk of %zu bytes (%u..%u)", chunk_bytes,
			       CKPT_CHUNK_BYTES_MIN, CKPT_CHUNK_BYTES_MAX);
	w = calloc(1, sizeof *w);
	if (!w)
		return jio_err(KEEL_E_NOMEM, "out of memory for a checkpoint writer");
	w->io = io;
	w->fh = -1;
	w->start_lsn = start_lsn;
	w->cap = chunk_bytes;
	w->buf = malloc(chunk_bytes);
	w->st = XXH3_createState();
	if (!w->buf || !w->st) {
		rc = jio_err(KEEL_E_NOMEM, "out of memory for a %zu-byte checkpoint buffer", chunk_bytes);
		goto fail;
	}
	XXH3_64bits_reset(w->st);
	snprintf(w->dir, sizeof w->dir, "%s", dir);
	if ((rc = ckpt_file_name(name, sizeof name, start_lsn, 1)) < 0 ||
	    (rc = jio_join(w->tmp, sizeof w->tmp, dir, name)) < 0 ||
	    (rc = ckpt_file_name(name, sizeof name, start_lsn, 0)) < 0 ||
	    (rc = jio_join(w->final, sizeof w->final, dir, name)) < 0)
		goto fail;
	rc = jio_mkdir(io, dir);
	if (rc == 0)
		rc = jio_dirname(parent, sizeof parent, dir);
	if (rc == 0)
		rc = jio_fsync_dir(io, parent);
	if (rc == 0)
		rc = jio_open(io, w->tmp, JIO_RDWR | JIO_CREATE | JIO_TRUNC, &w->fh);
	if (rc < 0)
		goto fail;
	clock_gettime(CLOCK_REALTIME, &ts);
	w->created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	memset(&h, 0, sizeof h);
	h.magic = htole32(CKPT_MAGIC);
	h.version = htole32(CKPT_VERSION);
	memcpy(h.uuid, uuid, CKPT_UUID_BYTES);
	h.start_lsn = htole64(start_lsn);
	h.created_ns = htole64(w->created_ns);
	h.checksum = htole64(XXH3_64bits(&h, offsetof(struct ckpt_hdr_disk, checksum)));
	rc = w_emit(w, &h, sizeof h, 1);
	if (rc < 0)
		goto fail;
	*out = w;
	return 0;
fail:
	if (w->fh >= 0) {
		jio_close(io, w->fh);
		w->fh = -1;
		jio_unlink(io, w->tmp);
	}
	w_free(w);
	return rc;
}

int ckpt_write_item2(ckpt_writer_t *w, uint32_t type, const void *a, size_t alen, const void *b,
		     size_t blen)
{
	static const uint8_t zeros[8];
	struct ckpt_item_disk d;
	uint64_t len = (uint64_t)alen + blen;
	int rc;

	if (w->failed)
		return jio_err(KEEL_E_PANIC, "checkpoint %s failed earlier (%s); abort it", w->tmp,
			       jio_code_name(w->failed));
	if (type == 0 || type > CKPT_TYPE_MAX)
		return jio_err(KEEL_E_INVAL, "checkpoint item type %u (1..%u)", type, CKPT_TYPE_MAX);
	if (len > CKPT_ITEM_BYTES_MAX || (alen && !a) || (blen && !b))
		return jio_err(KEEL_E_INVAL, "checkpoint item of %" PRIu64 " bytes (at most %llu)", len,
			       CKPT_ITEM_BYTES_MAX);
	memset(&d, 0, sizeof d);
	d.type = htole32(type);
	d.len = htole64(len);
	if ((rc = w_emit(w, &d, sizeof d, 1)) < 0 || (rc = w_emit(w, a, alen, 1)) < 0 ||
	    (rc = w_emit(w, b, blen, 1)) < 0 || (rc = w_emit(w, zeros, (size_t)pad8(len), 1)) < 0)
		return rc;
	w->items++;
	return 0;
}

int ckpt_write_item(ckpt_writer_t *w, uint32_t type, const void *data, size_t len)
{
	return ckpt_write_item2(w, type, data, len, NULL, 0);
}

void ckpt_write_abort(ckpt_writer_t *w)
{
	if (!w)
		return;
	if (w->fh >= 0) {
		jio_close(w->io, w->fh);
		w->fh = -1;
		jio_unlink(w->io, w->tmp);
	}
	w_free(w);
}

int ckpt_write_commit(ckpt_writer_t *w, ckpt_meta_t *meta)
{
	struct ckpt_trl_disk t;
	uint64_t total;
	int rc;

	if (w->failed) {
		rc = jio_err(KEEL_E_PANIC, "checkpoint %s failed earlier (%s); nothing was committed",
			     w->tmp, jio_code_name(w->failed));
		ckpt_write_abort(w);
		return rc;
	}
	total = w->file_off + w->len + CKPT_TRL_BYTES;
	memset(&t, 0, sizeof t);
	t.magic = htole32(CKPT_END_MAGIC);
	t.items = htole64(w->items);
	t.items_bytes = htole64(total - CKPT_HDR_BYTES - CKPT_TRL_BYTES);
	t.start_lsn = htole64(w->start_lsn);
	XXH3_64bits_update(w->st, &t, offsetof(struct ckpt_trl_disk, checksum));
	t.checksum = htole64(XXH3_64bits_digest(w->st));
	rc = w_emit(w, &t, offsetof(struct ckpt_trl_disk, checksum), 0);
	if (rc == 0)
		rc = w_emit(w, &t.checksum, sizeof t.checksum, 0);
	if (rc == 0)
		rc = w_flush(w, 1);
	if (rc == 0)
		KEEL_CRASH_POINT(CP_CHECKPOINT_WRITTEN);   /* synced, not yet renamed */
	if (rc == 0) {
		rc = jio_close(w->io, w->fh);
		w->fh = -1;
	}
	if (rc == 0)
		rc = jio_rename(w->io, w->tmp, w->final);
	if (rc < 0) {
		ckpt_write_abort(w);
		return rc;
	}
	rc = jio_fsync_dir(w->io, w->dir);
	if (rc < 0) {
		/* Renamed but the name may not be durable: the checkpoint
		 * may or may not survive a crash, so it does not count. */
		rc = jio_err(rc, "checkpoint %s: fsync of directory %s failed: %s", w->final, w->dir,
			     jio_errmsg());
		w_free(w);
		return rc;
	}
	if (meta) {
		meta->start_lsn = w->start_lsn;
		meta->items = w->items;
		meta->bytes = total;
		meta->created_ns = w->created_ns;
	}
	w_free(w);
	return 0;
}

/* ---- reader ------------------------------------------------------------------------ */

struct rd {
	jio_t *io;
	int fh;
	const char *path;
	uint64_t size;
	uint8_t *buf;
	size_t cap, start, end;  /* unread bytes: buf[start..end) */
	uint64_t pos;            /* file offset of buf[start] */
	uint64_t read_pos;       /* next file offset to read */
	uint64_t hash_end;       /* bytes below this offset are hashed */
	XXH3_state_t *st;
};

static int rd_corrupt(const struct rd *r, uint64_t off, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rd_corrupt(const struct rd *r, uint64_t off, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return jio_err(KEEL_E_CORRUPT, "checkpoint %s is not valid: at offset %" PRIu64 ": %s",
		       r->path, off, what);
}

/* Make n contiguous unread bytes available at buf[start]. */
static int rd_fill(struct rd *r, size_t n)
{
	if (r->end - r->start >= n)
		return 0;
	if (r->pos + n > r->size)
		return rd_corrupt(r, r->pos, "the file ends after %" PRIu64 " bytes, %zu more expected",
				  r->size, n);
	if (r->cap - r->start < n) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->start = 0;
	}
	if (r->cap < n) {
		uint8_t *b = realloc(r->buf, n);

		if (!b)
			return jio_err(KEEL_E_NOMEM, "out of memory for a %zu-byte checkpoint item", n);
		r->buf = b;
		r->cap = n;
	}
	/* Bounded: each turn reads at least one byte or fails. */
	while (r->end - r->start < n) {
		size_t want = r->cap - r->end, got = 0;
		int rc;

		if (want > r->size - r->read_pos)
			want = (size_t)(r->size - r->read_pos);
		rc = jio_pread(r->io, r->fh, r->buf + r->end, want, r->read_pos, &got);
		if (rc < 0)
			return rc;
		if (got == 0)
			return rd_corrupt(r, r->read_pos, "the file is shorter than its size said");
		if (r->read_pos < r->hash_end) {
			uint64_t h = r->hash_end - r->read_pos;

			XXH3_64bits_update(r->st, r->buf + r->end, got < h ? got : (size_t)h);
		}
		r->end += got;
		r->read_pos += got;
	}
	return 0;
}

static int rd_get(struct rd *r, size_t n, const uint8_t **p)
{
	int rc = rd_fill(r, n);

	if (rc < 0)
		return rc;
	*p = r->buf + r->start;
	r->start += n;
	r->pos += n;
	return 0;
}

/* Skip n bytes without needing them contiguous. */
static int rd_skip(struct rd *r, uint64_t n)
{
	/* Bounded: each turn consumes at least one byte. */
	while (n > 0) {
		size_t have = r->end - r->start, take;
		int rc;

		if (have == 0) {
			rc = rd_fill(r, 1);
			if (rc < 0)
				return rc;
			have = r->end - r->start;
		}
		take = n < have ? (size_t)n : have;
		r->start += take;
		r->pos += take;
		n -= take;
	}
	return 0;
}

/* One pass over the file; fn (if any) gets each item.  trl is the trailer
 * read first. */
static int rd_pass(struct rd *r, const uint8_t *uuid, const struct ckpt_trl_disk *trl,
		   ckpt_item_fn fn, void *ctx, ckpt_meta_t *meta)
{
	struct ckpt_hdr_disk h;
	struct ckpt_trl_disk t;
	const uint8_t *p;
	uint64_t trl_off = r->size - CKPT_TRL_BYTES, count = 0, sum;
	int rc;

	r->start = r->end = 0;
	r->pos = r->read_pos = 0;
	r->hash_end = r->size - sizeof t.checksum;
	XXH3_64bits_reset(r->st);
	if ((rc = rd_get(r, CKPT_HDR_BYTES, &p)) < 0)
		return rc;
	memcpy(&h, p, sizeof h);
	if (le32toh(h.magic) != CKPT_MAGIC)
		return rd_corrupt(r, 0, "no checkpoint magic (found 0x%08x, expected 0x%08x)",
				  le32toh(h.magic), CKPT_MAGIC);
	sum = XXH3_64bits(p, offsetof(struct ckpt_hdr_disk, checksum));
	if (sum != le64toh(h.checksum))
		return rd_corrupt(r, 0, "header checksum mismatch (expected %016" PRIx64 ", found %016" PRIx64 ")",
				  sum, le64toh(h.checksum));
	if (le32toh(h.version) != CKPT_VERSION)
		return rd_corrupt(r, 4, "format version %u (this build reads version %u)",
				  le32toh(h.version), CKPT_VERSION);
	if (memcmp(h.uuid, uuid, CKPT_UUID_BYTES))
		return rd_corrupt(r, 8, "it belongs to another store (UUID differs)");
	if (h.reserved[0] || h.reserved[1])
		return rd_corrupt(r, 40, "reserved header bytes are not zero");
	if (le64toh(trl->start_lsn) != le64toh(h.start_lsn))
		return rd_corrupt(r, trl_off + 24, "trailer start LSN %" PRIu64 ", header says %" PRIu64,
				  le64toh(trl->start_lsn), le64toh(h.start_lsn));
	/* Items, bounded by the file size: each takes at least 16 bytes. */
	while (r->pos < trl_off) {
		struct ckpt_item_disk d;
		uint64_t at = r->pos, len;
		uint32_t type;

		if (trl_off - r->pos < CKPT_ITEM_HDR_BYTES)
			return rd_corrupt(r, at, "%" PRIu64 " stray bytes before the trailer",
					  trl_off - r->pos);
		if ((rc = rd_get(r, CKPT_ITEM_HDR_BYTES, &p)) < 0)
			return rc;
		memcpy(&d, p, sizeof d);
		type = le32toh(d.type);
		len = le64toh(d.len);
		if (type == 0 || type > CKPT_TYPE_MAX || d.reserved)
			return rd_corrupt(r, at, "item %" PRIu64 ": type %u / reserved 0x%x out of range",
					  count, type, le32toh(d.reserved));
		if (len > CKPT_ITEM_BYTES_MAX || len + pad8(len) > trl_off - r->pos)
			return rd_corrupt(r, at, "item %" PRIu64 ": length %" PRIu64
					  " runs past the trailer at offset %" PRIu64, count, len, trl_off);
		if (fn) {
			if ((rc = rd_get(r, (size_t)len, &p)) < 0)
				return rc;
			rc = fn(ctx, type, p, (size_t)len);
			if (rc)
				return rc;
		} else if ((rc = rd_skip(r, len)) < 0) {
			return rc;
		}
		if (pad8(len)) {
			if ((rc = rd_get(r, (size_t)pad8(len), &p)) < 0)
				return rc;
			for (uint64_t i = 0; i < pad8(len); i++)
				if (p[i])
					return rd_corrupt(r, r->pos - pad8(len) + i,
							  "item %" PRIu64 ": padding is not zero", count);
		}
		count++;
	}
	if ((rc = rd_get(r, CKPT_TRL_BYTES, &p)) < 0)
		return rc;
	memcpy(&t, p, sizeof t);
	if (count != le64toh(t.items))
		return rd_corrupt(r, trl_off + 8, "%" PRIu64 " items found, the trailer says %" PRIu64,
				  count, le64toh(t.items));
	sum = XXH3_64bits_digest(r->st);
	if (sum != le64toh(t.checksum))
		return rd_corrupt(r, trl_off + 32, "file checksum mismatch (expected %016" PRIx64
				  ", found %016" PRIx64 ")", sum, le64toh(t.checksum));
	if (meta) {
		meta->start_lsn = le64toh(h.start_lsn);
		meta->items = count;
		meta->bytes = r->size;
		meta->created_ns = le64toh(h.created_ns);
	}
	return 0;
}

int ckpt_read(const char *path, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES], unsigned flags,
	      ckpt_item_fn fn, void *ctx, ckpt_meta_t *meta)
{
	struct rd r;
	struct ckpt_trl_disk t;
	int rc;

	if (!path || !io || !uuid)
		return jio_err(KEEL_E_INVAL, "ckpt_read: path, io and uuid are required");
	if (flags & ~(unsigned)CKPT_READ_STREAM)
		return jio_err(KEEL_E_INVAL, "ckpt_read: unknown flags 0x%x", flags);
	memset(&r, 0, sizeof r);
	r.io = io;
	r.path = path;
	r.fh = -1;
	rc = jio_open(io, path, JIO_RDONLY, &r.fh);
	if (rc < 0)
		return rc;
	rc = jio_size(io, r.fh, &r.size);
	if (rc < 0)
		goto out;
	if (r.size < CKPT_HDR_BYTES + CKPT_TRL_BYTES) {
		rc = rd_corrupt(&r, 0, "the file is %" PRIu64 " bytes, shorter than a header and a trailer",
				r.size);
		goto out;
	}
	/* The trailer first: a truncated or half-written file fails here
	 * before any item is looked at. */
	rc = jio_read_exact(io, r.fh, &t, sizeof t, r.size - CKPT_TRL_BYTES, path);
	if (rc < 0)
		goto out;
	if (le32toh(t.magic) != CKPT_END_MAGIC || t.reserved) {
		rc = rd_corrupt(&r, r.size - CKPT_TRL_BYTES,
				"no trailer (magic 0x%08x, expected 0x%08x): the file is incomplete",
				le32toh(t.magic), CKPT_END_MAGIC);
		goto out;
	}
	if (le64toh(t.items_bytes) != r.size - CKPT_HDR_BYTES - CKPT_TRL_BYTES) {
		rc = rd_corrupt(&r, r.size - CKPT_TRL_BYTES + 16,
				"trailer says %" PRIu64 " item bytes, the file holds %" PRIu64,
				le64toh(t.items_bytes), r.size - CKPT_HDR_BYTES - CKPT_TRL_BYTES);
		goto out;
	}
	r.cap = CKPT_CHUNK_BYTES_DEFAULT;
	if (r.cap > r.size)
		r.cap = (size_t)r.size;
	r.buf = malloc(r.cap);
	r.st = XXH3_createState();
	if (!r.buf || !r.st) {
		rc = jio_err(KEEL_E_NOMEM, "out of memory reading checkpoint %s", path);
		goto out;
	}
	if (fn && !(flags & CKPT_READ_STREAM)) {
		rc = rd_pass(&r, uuid, &t, NULL, NULL, NULL);
		if (rc)
			goto out;
	}
	rc = rd_pass(&r, uuid, &t, fn, ctx, meta);
out:
	if (r.fh >= 0)
		jio_close(io, r.fh);
	if (r.st)
		XXH3_freeState(r.st);
	free(r.buf);
	return rc;
}

/* ---- finding and pruning ------------------------------------------------------------ */

struct ckpt_list {
	uint64_t *lsn;
	unsigned char *tmp;
	size_t n, cap;
};

static int list_add(void *ctx, const char *name)
{
	struct ckpt_list *l = ctx;
	uint64_t lsn;
	int tmp;

	if (!ckpt_parse_name(name, &lsn, &tmp))
		return 0;
	if (l->n >= CKPT_FILES_MAX)
		return jio_err(KEEL_E_LIMIT, "more than %u checkpoint files", CKPT_FILES_MAX);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *v = realloc(l->lsn, cap * sizeof *v);
		unsigned char *t;

		if (!v)
			return jio_err(KEEL_E_NOMEM, "out of memory listing checkpoints");
		l->lsn = v;
		t = realloc(l->tmp, cap);
		if (!t)
			return jio_err(KEEL_E_NOMEM, "out of memory listing checkpoints");
		l->tmp = t;
		l->cap = cap;
	}
	l->lsn[l->n] = lsn;
	l->tmp[l->n] = (unsigned char)tmp;
	l->n++;
	return 0;
}

static void list_free(struct ckpt_list *l)
{
	free(l->lsn);
	free(l->tmp);
}

int ckpt_find_newest(const char *dir, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES],
		     ckpt_warn_fn warn, void *ctx, char *path, size_t cap, ckpt_meta_t *meta)
{
	struct ckpt_list l = { 0 };
	uint64_t tried_below = UINT64_MAX;
	int rc;

	if (!dir || !io || !uuid || !path || cap == 0)
		return jio_err(KEEL_E_INVAL, "ckpt_find_newest: dir, io, uuid and path are required");
	path[0] = 0;
	rc = jio_list(io, dir, list_add, &l);
	if (rc < 0)
		goto out;
	/* Newest first: repeatedly take the largest LSN below the last one
	 * tried (n is bounded by CKPT_FILES_MAX). */
	for (size_t round = 0; round < l.n; round++) {
		char name[CKPT_NAME_LEN + 8];
		ckpt_meta_t m;
		uint64_t best = 0;
		int found = 0;

		for (size_t i = 0; i < l.n; i++)
			if (!l.tmp[i] && l.lsn[i] < tried_below && (!found || l.lsn[i] > best)) {
				best = l.lsn[i];
				found = 1;
			}
		if (!found)
			break;
		tried_below = best;
		if ((rc = ckpt_file_name(name, sizeof name, best, 0)) < 0 ||
		    (rc = jio_join(path, cap, dir, name)) < 0)
			goto out;
		rc = ckpt_read(path, io, uuid, 0, NULL, NULL, &m);
		if (rc == 0 && m.start_lsn != best)
			rc = jio_err(KEEL_E_CORRUPT, "checkpoint %s holds start LSN %" PRIu64
				     ", its name says %" PRIu64, path, m.start_lsn, best);
		if (rc == 0) {
			if (meta)
				*meta = m;
			goto out;
		}
		if (rc != KEEL_E_CORRUPT)
			goto out; /* an I/O error says nothing about validity */
		if (warn) {
			char msg[1024];

			snprintf(msg, sizeof msg, "skipping an invalid checkpoint: %s; an older one is used",
				 jio_errmsg());
			warn(ctx, msg);
		}
	}
	path[0] = 0;
	rc = jio_err(KEEL_E_NOTFOUND, "no valid checkpoint in %s (%zu file(s) looked at)", dir, l.n);
out:
	if (rc < 0)
		path[0] = 0;
	list_free(&l);
	return rc;
}

int ckpt_prune(const char *dir, jio_t *io, uint64_t keep_lsn, unsigned *removed)
{
	struct ckpt_list l = { 0 };
	unsigned n = 0;
	int rc;

	if (removed)
		*removed = 0;
	rc = jio_list(io, dir, list_add, &l);
	for (size_t i = 0; rc == 0 && i < l.n; i++) {
		char name[CKPT_NAME_LEN + 8], path[JIO_PATH_MAX];

		if (l.lsn[i] >= keep_lsn)
			continue;
		if ((rc = ckpt_file_name(name, sizeof name, l.lsn[i], l.tmp[i])) < 0 ||
		    (rc = jio_join(path, sizeof path, dir, name)) < 0)
			break;
		rc = jio_unlink(io, path);
		if (rc == KEEL_E_NOTFOUND)
			rc = 0;
		else if (rc == 0)
			n++;
	}
	if (rc == 0 && n)
		rc = jio_fsync_dir(io, dir);
	if (removed)
		*removed = n;
	list_free(&l);
	return rc;
}
