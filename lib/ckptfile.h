/*
 * ckptfile.h - the checkpoint container: one file per checkpoint in
 * STORE/checkpoint/, holding a stream of typed opaque items (what the items
 * mean is the store's business) between a header and a checksummed trailer.
 *
 * Writing: ckpt_write_begin creates "ckpt-<lsn>.tmp"; items are buffered and
 * written in large chunks through jio; ckpt_write_commit appends the
 * trailer, fdatasyncs, renames the file to "ckpt-<lsn>" and fsyncs the
 * directory.  A crash at any point leaves either no new checkpoint or a
 * complete one; a leftover .tmp is ignored and pruned later.
 *
 * Reading: ckpt_read validates the whole file (header, every item header,
 * trailer, checksum) before it hands out the first item, or, with
 * CKPT_READ_STREAM, hands items out as it goes and fails at the end if the
 * trailer does not match (the caller then discards what it got).
 * ckpt_find_newest picks the newest complete, valid checkpoint, skipping
 * .tmp files and reporting each invalid one through a warning callback.
 *
 * The byte layout and validity rule are at the top of ckptfile.c.  Every
 * function returns 0 or a negative KEEL_E_* code with a message in
 * jio_errmsg().
 */
#ifndef KEEL_CKPTFILE_H
#define KEEL_CKPTFILE_H

#include <stddef.h>
#include <stdint.h>

#include "jio.h"

#define CKPT_UUID_BYTES 16u
#define CKPT_CHUNK_BYTES_DEFAULT (4u << 20)  /* write size */
#define CKPT_CHUNK_BYTES_MIN 4096u
#define CKPT_CHUNK_BYTES_MAX (256u << 20)
#define CKPT_ITEM_BYTES_MAX (256ull << 20)   /* one item's data */
#define CKPT_TYPE_MAX 0xfffffffeu             /* item types 1..MAX; 0 is reserved */
#define CKPT_FILES_MAX 65536u                 /* checkpoint files a directory may hold */

_Static_assert(CKPT_ITEM_BYTES_MAX <= JIO_WRITE_BYTES_MAX, "an item fits one write");

typedef struct ckpt_meta {
	uint64_t start_lsn;    /* the checkpoint's start LSN (also in its name) */
	uint64_t items;        /* item count */
	uint64_t bytes;        /* file size */
	uint64_t created_ns;   /* wall clock at ckpt_write_begin, ns since the epoch */
} ckpt_meta_t;

/* ---- writing ------------------------------------------------------------------ */
typedef struct ckpt_writer ckpt_writer_t;

/*
 * Start checkpoint `start_lsn` in directory dir (created if missing).
 * chunk_bytes: size of each write (0: CKPT_CHUNK_BYTES_DEFAULT); each full
 * chunk is written and synced (fdatasync) before the next, so the device
 * never holds more than one chunk of the checkpoint unflushed.  Without it
 * the kernel wrote a large checkpoint back in bursts of hundreds of MB, and
 * every journal fdatasync meanwhile waited behind them: a sync put loop of
 * 3 KB values on a 1M-key store stalled up to 168-178 ms at checkpoints,
 * with 160 commits over 5 ms in 20 s; with a sync per chunk, 43-63 ms and
 * 23-25 (and 10% more commits per second), and the
 * checkpoint of 1M keys takes as long as before (0.6-1.0 s).
 * Errors: INVAL, NOMEM, IO, NOSPC, PERM, OS.
 */
int ckpt_write_begin(const char *dir, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES],
		     uint64_t start_lsn, size_t chunk_bytes, ckpt_writer_t **out);
/* Add one item: type 1..CKPT_TYPE_MAX, len <= CKPT_ITEM_BYTES_MAX.
 * Errors: INVAL, IO, NOSPC; after an I/O error the writer only accepts
 * ckpt_write_abort. */
int ckpt_write_item(ckpt_writer_t *w, uint32_t type, const void *data, size_t len);
/* Add one item made of two pieces (e.g. a key and a value), stored as one. */
int ckpt_write_item2(ckpt_writer_t *w, uint32_t type, const void *a, size_t alen, const void *b,
		     size_t blen);
/*
 * Finish: trailer, fdatasync, rename to its final name, fsync the
 * directory.  The writer is freed whatever the result; on failure the .tmp
 * file is removed (best effort) and no checkpoint was made.  meta (may be
 * NULL) gets what was written.  Errors: IO, NOSPC, PANIC (a previous item
 * failed), OS.
 */
int ckpt_write_commit(ckpt_writer_t *w, ckpt_meta_t *meta);
/* Give up: close, remove the .tmp file, free.  Safe on NULL. */
void ckpt_write_abort(ckpt_writer_t *w);

/* ---- reading ------------------------------------------------------------------- */

/* Called once per item, in order; data is valid during the call.  A
 * nonzero return stops the read and is returned. */
typedef int (*ckpt_item_fn)(void *ctx, uint32_t type, const void *data, size_t len);

enum ckpt_read_flags {
	CKPT_READ_STREAM = 1u << 0, /* one pass: verify at the end */
};

/*
 * Read checkpoint file `path`: validate, then call fn per item (fn may be
 * NULL: only validate).  meta (may be NULL) gets its description.
 * Errors: CORRUPT (with the place and expected vs found), NOTFOUND, IO,
 * NOMEM, or fn's nonzero return.
 */
int ckpt_read(const char *path, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES], unsigned flags,
	      ckpt_item_fn fn, void *ctx, ckpt_meta_t *meta);

/* Warnings from ckpt_find_newest (an invalid checkpoint that was skipped). */
typedef void (*ckpt_warn_fn)(void *ctx, const char *msg);

/*
 * The newest valid checkpoint in dir: its path into path (cap bytes) and
 * its meta.  Names other than "ckpt-<16 hex digits>" (such as .tmp files)
 * are ignored; an invalid checkpoint is reported through warn (may be
 * NULL) and skipped.  Errors: NOTFOUND (none, or no directory), IO, NOMEM.
 */
int ckpt_find_newest(const char *dir, jio_t *io, const uint8_t uuid[CKPT_UUID_BYTES],
		     ckpt_warn_fn warn, void *ctx, char *path, size_t cap, ckpt_meta_t *meta);

/*
 * Remove checkpoints older than keep_lsn and .tmp files of checkpoints
 * older than keep_lsn, then fsync the directory.  *removed (may be NULL)
 * gets the count.  Errors: IO, OS.
 */
int ckpt_prune(const char *dir, jio_t *io, uint64_t keep_lsn, unsigned *removed);

/* "ckpt-<16 hex>" (tmp: with ".tmp") into buf. */
int ckpt_file_name(char *buf, size_t cap, uint64_t start_lsn, int tmp);

#endif /* KEEL_CKPTFILE_H */
