/*
 * journal.h - the write-ahead journal: segment files of LSN-numbered records
 * in STORE/journal/, written and read through the jio layer.
 *
 * The journal stores opaque payloads (the commit path's redo records), each
 * with a 64-bit LSN; the LSNs of successive records are consecutive.  A
 * writer (jnl_t) buffers records with jnl_append and makes them durable with
 * jnl_flush (all buffered records, one fdatasync: group commit is the
 * caller's business).  A reader (jnl_scan) walks every valid record in LSN
 * order and says how the journal ends: clean, with a torn tail (the last
 * flush before a crash was incomplete: cut, with a warning), or with media
 * corruption (a bad record that a durable one follows: refused, with the
 * segment, offset, LSN and checksums; salvage cuts there on request).
 *
 * The on-disk format, its validity rule and the writer's invariants are
 * described at the top of journal.c.
 *
 * A jnl_t is used by one thread at a time; the caller serializes.  Every
 * function returns 0 or a negative KEEL_E_* code, with a detail message in
 * jio_errmsg().
 */
#ifndef KEEL_JOURNAL_H
#define KEEL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "jio.h"

#define JNL_UUID_BYTES 16u
#define JNL_SEG_BYTES_DEFAULT (64ull << 20) /* 64 MiB */
#define JNL_SEG_BYTES_MIN 4096ull           /* tests use small segments */
#define JNL_SEG_BYTES_MAX (1ull << 30)
#define JNL_SPARE_DEFAULT 4u                /* recycled segments kept for reuse */
#define JNL_SPARE_MAX 64u
#define JNL_SEGMENTS_MAX 65536u             /* segment files a directory may hold */
#define JNL_HEADER_BYTES 512u               /* segment header: one sector */
#define JNL_REC_HEADER_BYTES 40u            /* record header */
/* Largest payload of a record in a segment of seg_bytes: one record, its
 * header and the closing pad header after the segment header. */
#define JNL_PAYLOAD_MAX(seg_bytes)                                                  \
	((((seg_bytes) - JNL_HEADER_BYTES - 2 * JNL_REC_HEADER_BYTES)) & ~7ull)

_Static_assert(JNL_SEG_BYTES_MIN % JIO_SECTOR_BYTES == 0, "segments are whole sectors");
_Static_assert(JNL_SEG_BYTES_MIN >= 4 * JNL_HEADER_BYTES, "room for records");
_Static_assert(JNL_SEG_BYTES_MAX <= JIO_WRITE_BYTES_MAX, "a flush is one jio write");
_Static_assert(JNL_HEADER_BYTES == JIO_SECTOR_BYTES, "the header is one sector");

/* ---- writer ------------------------------------------------------------------ */

typedef struct jnl jnl_t;

enum jnl_open_flags {
	/* Repair a torn tail (see jnl_scan, JNL_SCAN_REPAIR) instead of
	 * refusing with KEEL_E_STATE.  Only for a caller that knows no other
	 * writer is active and whose recovery accepts what the tail held. */
	JNL_OPEN_REPAIR = 1u << 0,
};

typedef struct jnl_opts {
	uint64_t seg_bytes;  /* size of new segments: multiple of 512 in MIN..MAX */
	uint64_t first_lsn;  /* LSN of the first record of an empty journal (>= 1) */
	uint32_t spare_max;  /* recycled segments kept ready; more are unlinked */
	uint32_t flags;      /* enum jnl_open_flags */
	/* A position known to be the journal's durable end (another writer
	 * published it): open there after reading only the segment headers,
	 * not the records.  If the headers disagree (the last segment is not
	 * at->segno, or starts elsewhere), the records are scanned as usual. */
	const struct jnl_pos *at;
	/* With `at`: the writer that published it may have died in a later
	 * flush, which wrote at most at_span bytes after at->off in the same
	 * segment.  Those bytes are read, and what is not zero is zeroed and
	 * synced, instead of scanning the whole segment (a segment whose
	 * header does not say it was zero-filled is scanned).  0: no cut. */
	uint64_t at_span;
} jnl_opts_t;

void jnl_opts_init(jnl_opts_t *o);

/*
 * Open the journal in directory `dir` (created if missing) for appending.
 * An empty journal gets its first segment, whose first LSN is
 * opts->first_lsn.  Otherwise appending continues after the last valid
 * record; a torn tail makes it fail with KEEL_E_STATE unless
 * JNL_OPEN_REPAIR (run recovery, i.e. jnl_scan with JNL_SCAN_REPAIR, first).
 * uuid: the store's 16-byte UUID, written in every segment header and mixed
 * into every checksum.  opts may be NULL.
 * Errors: INVAL, STATE, CORRUPT, IO, NOSPC, NOMEM, PERM, OS.
 */
int jnl_open(const char *dir, jio_t *io, const uint8_t uuid[JNL_UUID_BYTES],
	     const jnl_opts_t *opts, jnl_t **out);

/*
 * Buffer one record.  lsn must be the next LSN (the previous + 1, or the
 * first LSN of an empty journal).  Nothing is durable before jnl_flush; but
 * when the record does not fit in the current segment, append flushes what
 * is buffered, syncs it and starts the next segment, so it may do I/O.
 * Errors: INVAL (wrong LSN, payload over JNL_PAYLOAD_MAX), PANIC (failed
 * earlier), IO, NOSPC, NOMEM, STATE (the next segment was already started
 * by another writer: see jnl_set_pos; not sticky).
 */
int jnl_append(jnl_t *j, uint64_t lsn, const void *payload, size_t len);

/*
 * Write every buffered record and fdatasync once.  On 0 every appended
 * record is durable.  Any failure is sticky: the journal refuses every later
 * append and flush with KEEL_E_PANIC (a failed fdatasync is never retried);
 * reopen, which runs recovery.  Errors: IO, NOSPC, PANIC.
 */
int jnl_flush(jnl_t *j);

/*
 * jnl_flush in two halves, so that flushes can overlap (journal.c, W6):
 * jnl_write writes every buffered record (nothing is durable yet, and the
 * append position moves past them); jnl_sync then fdatasyncs the current
 * segment, after which every record written before the call is durable.
 * Another writer may append and write after jnl_write returned, while this
 * one syncs.  jnl_set_synced tells the writer the highest LSN known durable
 * (synced by any writer): each flush records how far back it reaches over
 * flushes not known durable, which is what lets recovery tell a torn tail
 * of overlapping flushes from media corruption.  Errors as jnl_flush.
 */
int jnl_write(jnl_t *j);
int jnl_sync(jnl_t *j);
void jnl_set_synced(jnl_t *j, uint64_t lsn);

/*
 * Recycle the segments whose every record has an LSN below `lsn` (a
 * checkpoint covers them): rename each to a new segment number after the
 * last (up to spare_max kept) or, past that, to a drop file
 * "drop-<16 hex segno>.tmp", then fsync the directory.  The current segment
 * is never recycled.  Errors: IO, PANIC, OS.
 */
int jnl_recycle_below(jnl_t *j, uint64_t lsn);
/*
 * Unlink the drop files in dir.  Drop files are no part of the journal (no
 * reader looks at a name that is not a segment's), so this runs without the
 * writers' lock, from any process, at any time.  Unlinking a 64 MiB segment
 * takes milliseconds (the file system frees its extents: 38-56 ms for 7-9
 * segments measured on the test VM), and when jnl_recycle_below unlinked
 * them under the lock, every flush of every process waited at each
 * checkpoint.  Returns how many it removed (a name another process removed
 * first is not an error), or an error of listing dir.
 */
int jnl_drop_files(jio_t *io, const char *dir);
/* 1 if name is a drop file's. */
int jnl_is_drop_name(const char *name);

/*
 * Make sure `count` zero-filled spare segments exist after the current one,
 * so a segment switch in jnl_append does not have to fill 64 MiB inline.
 * Meant for a background task.  Errors: IO, NOSPC, PANIC.
 */
int jnl_prepare(jnl_t *j, unsigned count);

/*
 * jnl_prepare in two halves, so that the slow part runs without the
 * writers' lock: jnl_spare_fill makes file `name` (not a segment name) in
 * the journal directory, seg_bytes long, zero-filled and synced in steps
 * of 1 MiB with pace(ctx) called between them (NULL: none), touching
 * nothing else; jnl_spare_adopt, under the caller's lock like any writer
 * call, makes it the next spare: spare header written and synced, renamed to
 * the segment number after the last, directory synced.  A fill cut short
 * leaves only its own file, which the next fill of that name replaces.
 * Errors: INVAL, IO, NOSPC, OS, STATE (another writer moved on: position
 * first); a failed rename or directory sync is sticky, as in jnl_prepare.
 */
int jnl_spare_fill(jio_t *io, const char *dir, const char *name, uint64_t seg_bytes,
		   void (*pace)(void *ctx), void *ctx);
int jnl_spare_adopt(jnl_t *j, const char *name);

/*
 * Re-read the append position from disk, as jnl_open does, dropping the
 * buffer.  flags: 0 or JNL_OPEN_REPAIR.  For a process taking over as the
 * writer after the previous writer died during a flush: its last flush may
 * be torn, and only a repair (zeroing what it left beyond the end) makes
 * appending safe.  Reads the whole last segment.  Errors as jnl_open.
 */
int jnl_reload(jnl_t *j, unsigned flags);

/*
 * The append position, small enough to keep in shared memory, so that
 * several processes can take turns as the writer of one journal without
 * reading it from disk at each turn.  It describes the durable end (what
 * jnl_flush last completed), not buffered records.
 *
 * Protocol for writers in several processes (the caller's lock serializes
 * them): the writer whose turn it is calls jnl_set_pos with the position
 * the previous writer published, appends and flushes, and publishes
 * jnl_get_pos only after jnl_flush returned 0.  If a writer died during its
 * turn, its flush may be partly on disk: the next writer calls
 * jnl_reload(j, JNL_OPEN_REPAIR) instead of jnl_set_pos, once the dead
 * process has exited (a process's io_uring requests end with it).
 * jnl_recycle_below and jnl_prepare reread the directory, so they see what
 * other processes did; a segment switch notices a segment another writer
 * already started and fails with KEEL_E_STATE (not sticky).
 */
typedef struct jnl_pos {
	uint64_t segno;          /* current segment */
	uint64_t seg_first_lsn;  /* its first LSN */
	uint64_t seg_bytes;      /* its size */
	uint64_t off;            /* durable end: the next flush writes here */
	uint64_t next_lsn;       /* LSN of the next record */
} jnl_pos_t;

void jnl_get_pos(const jnl_t *j, jnl_pos_t *pos);
/* Errors: STATE (records are buffered), INVAL (inconsistent position),
 * PANIC, NOTFOUND/IO (the segment file cannot be opened). */
int jnl_set_pos(jnl_t *j, const jnl_pos_t *pos);

/* Close; buffered records that were not flushed are dropped.  Safe on NULL. */
int jnl_close(jnl_t *j);

typedef struct jnl_info {
	uint64_t segno;            /* current segment number */
	uint64_t seg_off;          /* durable end of the current segment */
	uint64_t seg_bytes;        /* size of the current segment */
	uint64_t next_lsn;         /* LSN the next append must carry */
	uint64_t flushed_lsn;      /* every LSN <= this is durable (next_lsn - 1 when idle) */
	uint64_t oldest_lsn;       /* first LSN of the oldest segment kept */
	uint64_t buffered_bytes;
	uint64_t buffered_records;
	uint64_t journal_bytes;    /* bytes of the used segments (for checkpoint triggers) */
	uint32_t segments;         /* used segments */
	uint32_t spares;           /* segments ready for reuse */
	uint64_t flushes;          /* successful jnl_flush calls that wrote */
	uint64_t switches;         /* segment switches */
	int failed;                /* the sticky error, 0 if healthy */
	const char *backend;       /* jio backend name */
} jnl_info_t;

void jnl_info(const jnl_t *j, jnl_info_t *out);

/* ---- reader / recovery -------------------------------------------------------- */

/* Called once per valid record, in LSN order; payload valid during the call.
 * A nonzero return stops the scan and is returned by jnl_scan. */
typedef int (*jnl_record_fn)(void *ctx, uint64_t lsn, const void *payload, size_t len);

enum jnl_scan_flags {
	/* Fix the end on disk: write the closing pad and zero a torn tail;
	 * with SALVAGE, also cut at the first bad record. */
	JNL_SCAN_REPAIR = 1u << 0,
	/* Treat a bad record followed by valid ones (media corruption) as the
	 * end of the journal instead of failing, and report what was lost. */
	JNL_SCAN_SALVAGE = 1u << 1,
};

enum jnl_end {
	JNL_END_CLEAN = 0,    /* the last flush completed */
	JNL_END_TORN = 1,     /* the last flush was incomplete; its tail is cut */
	JNL_END_SALVAGED = 2, /* cut at a bad record (SALVAGE) */
};

enum jnl_bad {
	JNL_BAD_NONE = 0,
	JNL_BAD_RECORD = 1, /* a bad record, with a durable one after it */
	JNL_BAD_HEADER = 2, /* a segment header damaged, of the wrong size, or inconsistent */
	JNL_BAD_GAP = 3,    /* the records asked for are not in the journal */
	JNL_BAD_UNUSED = 4, /* bytes in the never-written end of a sealed segment */
};

typedef struct jnl_scan_result {
	int end;                 /* enum jnl_end (when jnl_scan returns 0) */
	int bad;                 /* enum jnl_bad (KEEL_E_CORRUPT, or END_SALVAGED) */
	uint64_t records;        /* records passed to fn */
	uint64_t first_lsn;      /* first LSN passed to fn (0 if none) */
	uint64_t last_lsn;       /* last valid LSN seen (0 if none) */
	uint64_t next_lsn;       /* LSN the next record gets */
	uint64_t end_segno;      /* where appending continues (0: no segment) */
	uint64_t end_off;
	/* The cut (TORN, SALVAGED): where, how many bytes, and the intact
	 * records found beyond it that were dropped with it. */
	uint64_t cut_segno;
	uint64_t cut_off;
	uint64_t cut_bytes;
	uint64_t cut_records;
	uint64_t cut_lsn_min, cut_lsn_max;
	int repaired;            /* REPAIR: the end was fixed on disk */
	/* The bad place (KEEL_E_CORRUPT, SALVAGED). */
	uint64_t bad_segno;
	uint64_t bad_off;
	uint64_t bad_lsn;        /* the LSN expected there */
	uint64_t sum_expected;   /* checksum computed over the bytes found */
	uint64_t sum_found;      /* checksum stored in the record */
	char msg[768];           /* the warning (TORN, SALVAGED) or the error */
} jnl_scan_result_t;

/*
 * Walk the journal in `dir` and call fn for every valid record whose LSN is
 * >= from_lsn (0: from the oldest segment), in LSN order.  fn may be NULL.
 *
 * Returns 0 with res->end CLEAN or TORN (res->msg then says what was cut,
 * for a warning), or SALVAGED with JNL_SCAN_SALVAGE.  Returns KEEL_E_CORRUPT
 * when a bad record has a durable record after it, a segment header is
 * damaged while its segment holds records, or the journal does not reach
 * back to from_lsn; res->msg names the segment file, offset, LSN and the
 * expected vs found checksum.  Records already passed to fn before
 * KEEL_E_CORRUPT must be discarded by the caller.  res->next_lsn may be
 * below from_lsn when the journal ends before it (the caller decides
 * whether its checkpoint may be ahead of the journal).
 * With JNL_SCAN_REPAIR the end is fixed on disk (synced) so that appending
 * can continue at res->end_segno/end_off: a torn tail is closed and zeroed;
 * a salvage cut also moves later segments aside (renamed *.lost).
 * Errors: CORRUPT, IO, NOMEM, INVAL, or fn's nonzero return.
 */
int jnl_scan(const char *dir, jio_t *io, const uint8_t uuid[JNL_UUID_BYTES], uint64_t from_lsn,
	     unsigned flags, jnl_record_fn fn, void *ctx, jnl_scan_result_t *res);

/* Parse a segment file name: 1 and *segno if `name` is one, else 0. */
int jnl_parse_name(const char *name, uint64_t *segno);
/* Segment file name of segment `segno` ("seg-<16 hex digits>.jnl"). */
int jnl_segment_name(char *buf, size_t cap, uint64_t segno);

#endif /* KEEL_JOURNAL_H */
