/*
 * keel.h - the one public header of Keel.
 *
 * Keel is a state store shared by many processes on one Linux host.  Every
 * process that opens a store maps one shared arena (a file in /dev/shm) and
 * reads and writes partitioned key-value tables in it directly, at memory
 * speed.  Writers lock only the partitions they touch; readers take no lock
 * and write no shared cache line.  A process killed at any instruction leaves
 * no lock held, no partial transaction visible and no memory leaked.
 *
 * Conventions
 * -----------
 * - Every function that can fail returns int: 0 on success, a negative
 *   KEEL_E_* code on failure.  keel_strerror(code) names the code;
 *   keel_errmsg() gives this thread's detail message for the last failure
 *   (what happened, where, expected vs found, what to do).
 * - A partition ("store id") is named by a NUL-terminated string of 1 to
 *   KEEL_PARTITION_NAME_MAX bytes from [A-Za-z0-9._:@-].  Partitions are
 *   created by their first write.
 * - Keys are 1 to KEEL_KEY_MAX bytes; values 0 to KEEL_VALUE_MAX bytes.
 *   Both are arbitrary bytes.
 * - Every value has a version (1 for a new key, +1 per write) and a
 *   modification time (wall clock, nanoseconds since the epoch).
 * - A handle (keel_t) is thread-safe.  A handle carried across fork() is
 *   refused in the child with KEEL_E_FORKED; the child must keel_open().
 *   A writable handle of a durable store runs a background thread (async
 *   flushes, checkpoints), and an async handle a second one (async flushes
 *   only); fork() waits until they are idle, so a child never inherits a
 *   lock they held.  The application's own threads
 *   are the application's affair: fork while none is inside a Keel call.
 * - Read scopes, iterators and transactions belong to the thread that made
 *   them.
 *
 * Caveats
 * -------
 * - A long read scope or open iterator holds back the reuse of memory that
 *   writers retire, as a long reader does in LMDB.  Keep scopes short.
 * - The arena lives in /dev/shm: it is local to one host and one PID
 *   namespace.  A process in another PID namespace is refused at attach.
 * - A transaction touches at most KEEL_TXN_PARTITIONS_MAX partitions, since
 *   each holds one robust lock while it commits.
 */
#ifndef KEEL_H
#define KEEL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEEL_VERSION_MAJOR 0
#define KEEL_VERSION_MINOR 1

/* ---- limits (see also lib/limits.h for the internal ones) ------------- */
#define KEEL_PARTITION_NAME_MAX 64u          /* bytes, without the NUL */
#define KEEL_KEY_MAX 1024u                   /* bytes */
#define KEEL_VALUE_MAX (1u << 20)            /* bytes (1 MiB) */
#define KEEL_TXN_PARTITIONS_MAX 32u          /* partitions per transaction */
#define KEEL_TXN_OPS_MAX 65536u              /* operations per transaction */
#define KEEL_PARTITIONS_MAX 16384u           /* partitions per store */
#define KEEL_PROCESSES_MAX 1024u             /* attached processes at once */

/* ---- errors -------------------------------------------------------------- */
enum keel_error {
	KEEL_OK = 0,
	KEEL_E_INVAL = -1,      /* invalid argument */
	KEEL_E_NOTFOUND = -2,   /* key, partition or timer not found */
	KEEL_E_CONFLICT = -3,   /* conditional write: version mismatch */
	KEEL_E_KEYSIZE = -4,    /* key empty or over KEEL_KEY_MAX */
	KEEL_E_VALSIZE = -5,    /* value over KEEL_VALUE_MAX */
	KEEL_E_NAME = -6,       /* bad partition name */
	KEEL_E_FULL = -7,       /* arena full (at its configured maximum) */
	KEEL_E_TXNSIZE = -8,    /* transaction too large */
	KEEL_E_CLOSED = -9,     /* handle closed or transaction finished */
	KEEL_E_FORKED = -10,    /* handle used in a child after fork() */
	KEEL_E_READONLY = -11,  /* write in a read-only scope or store */
	KEEL_E_ATTACH = -12,    /* arena refused at attach (see errmsg) */
	KEEL_E_LAYOUT = -13,    /* arena made by an incompatible build */
	KEEL_E_PERM = -14,      /* owner, mode or permission refused */
	KEEL_E_NAMESPACE = -15, /* arena serves another PID namespace */
	KEEL_E_CORRUPT = -16,   /* damaged arena, journal or checkpoint */
	KEEL_E_IO = -17,        /* I/O error */
	KEEL_E_NOSPC = -18,     /* no space left on the journal disk */
	KEEL_E_PANIC = -19,     /* store failed (sticky) until reopened */
	KEEL_E_NOMEM = -20,     /* out of process memory */
	KEEL_E_BUSY = -21,      /* resource in use (e.g. destroy while attached) */
	KEEL_E_LIMIT = -22,     /* a fixed limit was reached (see errmsg) */
	KEEL_E_TIMEOUT = -23,   /* wait timed out */
	KEEL_E_STATE = -24,     /* call not valid in this state */
	KEEL_E_OS = -25,        /* unexpected system call failure (see errmsg) */
};

/* A stable one-line name and meaning of a code, e.g. "KEEL_E_FULL: arena full". */
const char *keel_strerror(int code);
/* This thread's detail message for its last failed call ("" if none). */
const char *keel_errmsg(void);

/* ---- open and close ------------------------------------------------------ */
enum keel_durability {
	KEEL_DURABILITY_DEFAULT = 0, /* the store's default (for a txn) */
	KEEL_DURABILITY_MEMORY = 1,  /* no journal: state lives in the arena only */
	KEEL_DURABILITY_ASYNC = 2,   /* journaled within async_window_ms */
	KEEL_DURABILITY_SYNC = 3,    /* a commit returns once on disk */
};

enum keel_open_flags {
	KEEL_OPEN_NOCREATE = 1u << 0, /* fail with NOTFOUND if the store is missing */
	KEEL_OPEN_READONLY = 1u << 1, /* writes return KEEL_E_READONLY; repairs no partition */
};

typedef struct keel_options {
	uint32_t struct_size;      /* set by keel_options_init */
	uint32_t flags;            /* enum keel_open_flags */
	int durability;            /* DEFAULT: the store's (sync for a new store);
				    * MEMORY makes a store without a journal */
	uint32_t file_mode;        /* arena file mode; default 0600 (0660 allowed) */
	uint64_t arena_bytes_max;  /* arena maximum size; default 4 GiB */
	uint64_t ring_bytes;       /* commit ring size; default 16 MiB */
	const char *arena_path;    /* explicit arena file; default derived from dir */
	uint32_t async_window_ms;  /* ASYNC flush window; default 10 */
	uint32_t checkpoint_mb;    /* checkpoint when the journal grew this much; default 256 */
	uint32_t timer_max_deliveries; /* claims of one timer before it is dead-lettered; default 10 */
	uint32_t reserved[5];
} keel_options_t;

void keel_options_init(keel_options_t *opt);

typedef struct keel keel_t;

/*
 * Open the store in directory `dir` (created if missing unless NOCREATE).
 * `opt` may be NULL for defaults.
 * Errors: INVAL, NOTFOUND, ATTACH, LAYOUT, PERM, NAMESPACE, CORRUPT, FULL,
 * NOMEM, OS.
 */
int keel_open(const char *dir, const keel_options_t *opt, keel_t **out);
/* Close a handle.  Safe on NULL.  Any open txn/scope/iterator must be done. */
int keel_close(keel_t *h);

/* ---- metadata of a value --------------------------------------------------- */
typedef struct keel_meta {
	uint64_t version;   /* 1 for a new key, +1 per write */
	uint64_t mtime_ns;  /* wall clock of the write, ns since the epoch */
	uint64_t lsn;       /* LSN of the commit that wrote it */
} keel_meta_t;

/* ---- single-operation calls (each one commits on its own) ---------------- */

/*
 * Copying get.  Copies min(cap, length) bytes to buf and sets *vlen to the
 * full length (so a caller can retry with a bigger buffer).  buf may be NULL
 * when cap is 0; vlen and meta may be NULL.
 * Errors: NOTFOUND, NAME, KEYSIZE, CLOSED, FORKED, CORRUPT.
 */
int keel_get(keel_t *h, const char *part, const void *key, size_t klen,
	     void *buf, size_t cap, size_t *vlen, keel_meta_t *meta);
/* Like keel_get, into a malloc'd buffer the caller frees with free(). */
int keel_get_alloc(keel_t *h, const char *part, const void *key, size_t klen,
		   void **val, size_t *vlen, keel_meta_t *meta);
/* Put.  *lsn (may be NULL) gets the commit LSN.
 * Errors: NAME, KEYSIZE, VALSIZE, FULL, READONLY, CLOSED, FORKED, LIMIT, PANIC. */
int keel_put(keel_t *h, const char *part, const void *key, size_t klen,
	     const void *val, size_t vlen, uint64_t *lsn);

#define KEEL_VERSION_ANY UINT64_MAX   /* put_if: no condition */
#define KEEL_VERSION_ABSENT 0         /* put_if: the key must not exist */
/*
 * Conditional put: applies only if the key's current version equals
 * `expected` (KEEL_VERSION_ABSENT: the key must not exist).  On success
 * *version gets the new version; on KEEL_E_CONFLICT it gets the current one
 * (0 if absent).  version may be NULL.
 */
int keel_put_if(keel_t *h, const char *part, const void *key, size_t klen,
		const void *val, size_t vlen, uint64_t expected, uint64_t *version);
/* Delete.  *existed (may be NULL) says whether the key was there. */
int keel_del(keel_t *h, const char *part, const void *key, size_t klen, int *existed);
/* *found = 1 if the key is there. */
int keel_contains(keel_t *h, const char *part, const void *key, size_t klen, int *found);
/* *found = 1 if the partition exists (has ever been written). */
int keel_exists(keel_t *h, const char *part, int *found);
/* Number of keys in a partition (0 if the partition does not exist). */
int keel_count(keel_t *h, const char *part, uint64_t *count);
/* Delete every key of a partition in one commit; *removed gets the count.
 * The partition's timers are not touched. */
int keel_clear(keel_t *h, const char *part, uint64_t *removed);

/* Called once per key of keel_get_many that is found, inside one read scope
 * (val is valid only during the call).  Return nonzero to stop early. */
typedef int (*keel_get_fn)(void *ctx, size_t index, const void *val, size_t vlen,
			   const keel_meta_t *meta);
/* Consistent multi-get (one snapshot).  *found (may be NULL) gets how many.
 * The callback sees the found keys in index order.  The lookups run in
 * groups of 16 whose cache misses overlap, so on a store larger than the
 * CPU caches a key costs about a third of a keel_get (keel-bench get). */
int keel_get_many(keel_t *h, const char *part, size_t n, const void *const *keys,
		  const size_t *klens, keel_get_fn fn, void *ctx, size_t *found);
/* Put n pairs in one commit. */
int keel_put_many(keel_t *h, const char *part, size_t n, const void *const *keys,
		  const size_t *klens, const void *const *vals, const size_t *vlens,
		  uint64_t *lsn);
/* Delete n keys in one commit; *removed gets how many existed. */
int keel_del_many(keel_t *h, const char *part, size_t n, const void *const *keys,
		  const size_t *klens, uint64_t *removed);

/* Calls fn once per partition name (existing partitions, in id order). */
typedef int (*keel_partition_fn)(void *ctx, const char *name, uint64_t keys);
int keel_partitions(keel_t *h, keel_partition_fn fn, void *ctx);

/* ---- read scopes: consistent snapshots and zero-copy reads ---------------- */
typedef struct keel_read keel_read_t;
/* Begin a read scope: every read in it sees one committed snapshot. */
int keel_read_begin(keel_t *h, keel_read_t **out);
/* Zero-copy get: *val points into the arena, valid until keel_read_end. */
int keel_read_get(keel_read_t *r, const char *part, const void *key, size_t klen,
		  const void **val, size_t *vlen, keel_meta_t *meta);
uint64_t keel_read_lsn(const keel_read_t *r); /* the snapshot's LSN */
void keel_read_end(keel_read_t *r);

/* ---- iteration (unordered; one snapshot) --------------------------------- */
typedef struct keel_iter keel_iter_t;
/* Iterate the keys of `part` (all of them when prefix is NULL/plen 0). */
int keel_iter_open(keel_t *h, const char *part, const void *prefix, size_t plen,
		   keel_iter_t **out);
/* 1 and fills the pointers (valid until the next call) / 0 at the end / <0. */
int keel_iter_next(keel_iter_t *it, const void **key, size_t *klen,
		   const void **val, size_t *vlen, keel_meta_t *meta);
void keel_iter_close(keel_iter_t *it);

/* ---- transactions ---------------------------------------------------------- */
typedef struct keel_txn keel_txn_t;
/* Begin.  durability: KEEL_DURABILITY_DEFAULT or an override. */
int keel_txn_begin(keel_t *h, int durability, keel_txn_t **out);
/* Reads see the txn's own writes, then the snapshot taken at begin (the
 * transaction pins it, like a read scope, until commit or abort). */
int keel_txn_get(keel_txn_t *t, const char *part, const void *key, size_t klen,
		 void *buf, size_t cap, size_t *vlen, keel_meta_t *meta);
int keel_txn_put(keel_txn_t *t, const char *part, const void *key, size_t klen,
		 const void *val, size_t vlen);
/* Conditional put, checked at commit against the then-current version. */
int keel_txn_put_if(keel_txn_t *t, const char *part, const void *key, size_t klen,
		    const void *val, size_t vlen, uint64_t expected);
int keel_txn_del(keel_txn_t *t, const char *part, const void *key, size_t klen);
/* Delete, but only if the key's version is `expected` at commit. */
int keel_txn_del_if(keel_txn_t *t, const char *part, const void *key, size_t klen,
		    uint64_t expected);
int keel_txn_clear(keel_txn_t *t, const char *part);
/*
 * Commit all or nothing.  *lsn (may be NULL) gets the commit's LSN.
 * On KEEL_E_CONFLICT nothing is applied and keel_txn_conflict() tells which
 * key failed.  The txn is freed whatever the result.
 */
int keel_txn_commit(keel_txn_t *t, uint64_t *lsn);
void keel_txn_abort(keel_txn_t *t);

/* Details of the last conflict seen by this thread. */
typedef struct keel_conflict {
	char part[KEEL_PARTITION_NAME_MAX + 1];
	uint64_t expected;   /* the version asked for */
	uint64_t current;    /* the version found (0 = absent) */
	size_t op_index;     /* index of the op in the transaction */
} keel_conflict_t;
void keel_last_conflict(keel_conflict_t *out);

/* ---- durability ------------------------------------------------------------ */
/* Make everything committed so far durable (no-op in memory mode). */
int keel_sync(keel_t *h);
/* Wait until commit `lsn` is durable. */
int keel_wait_durable(keel_t *h, uint64_t lsn);
/* Write a checkpoint of every commit that is durable and applied, then
 * recycle the journal segments it covers.  *lsn (may be NULL) gets its LSN.
 * Errors: STATE (memory-mode store), READONLY, IO, NOSPC, PANIC. */
int keel_checkpoint(keel_t *h, uint64_t *lsn);

enum keel_recover_flags {
	KEEL_RECOVER_SALVAGE = 1u << 0,  /* cut a journal damaged in the middle at its first bad record */
};
/*
 * Rebuild the arena of durable store `dir` from its checkpoint and journal,
 * now.  No process may have the store open (KEEL_E_BUSY).  Without SALVAGE a
 * journal damaged in the middle fails with KEEL_E_CORRUPT, naming the place;
 * with SALVAGE it is cut there and `report` (may be NULL) says what was lost.
 */
int keel_recover(const char *dir, const keel_options_t *opt, unsigned flags, char *report, size_t cap);

/* ---- statistics ------------------------------------------------------------ */
typedef struct keel_stat {
	uint64_t arena_bytes;        /* current arena file size */
	uint64_t arena_bytes_max;    /* configured maximum */
	uint64_t arena_bytes_used;   /* bytes in live blocks and metadata */
	uint64_t arena_bytes_free;   /* bytes on free lists and free pages */
	uint64_t arena_bytes_retired;/* bytes awaiting safe reuse */
	uint32_t processes;          /* attached live processes */
	uint32_t partitions;         /* partitions in the store */
	uint64_t keys;               /* keys in all partitions */
	uint64_t next_lsn;           /* LSN the next commit gets */
	uint64_t applied_lsn;        /* every commit <= this is visible */
	uint64_t durable_lsn;        /* every commit <= this is on disk */
	int durability;              /* the store's default */
	uint32_t format_version;
	uint32_t reserved[7];
} keel_stat_t;
/* On a read-only handle, a partition whose writer died mid-commit, or the
 * allocator left by a writer that died holding its lock, is not repaired:
 * its figures are counted as that writer left them. */
int keel_stat(keel_t *h, keel_stat_t *st);

typedef struct keel_partition_stat {
	uint64_t keys;
	uint64_t bytes;              /* key + value bytes */
	uint64_t arena_bytes;        /* arena bytes held by the partition */
	uint64_t buckets;            /* hash buckets */
	uint32_t id;
} keel_partition_stat_t;
/* KEEL_E_READONLY on a read-only handle when the partition's writer died
 * mid-commit: a read-only handle does not repair it (a read-write one does). */
int keel_partition_stat(keel_t *h, const char *part, keel_partition_stat_t *st);

/* ---- processes ------------------------------------------------------------- */
typedef struct keel_proc_info {
	pid_t pid;
	int alive;
	uint64_t start_time;         /* from /proc/PID/stat, clock ticks */
	uint64_t reader_lag;         /* applied_lsn minus its oldest pinned snapshot */
	uint32_t locks_held;
} keel_proc_info_t;
typedef int (*keel_proc_fn)(void *ctx, const keel_proc_info_t *p);
int keel_processes(keel_t *h, keel_proc_fn fn, void *ctx);

/* ---- audit and maintenance --------------------------------------------------- */
/* Called once per problem found by keel_check. */
typedef void (*keel_report_fn)(void *ctx, const char *where, const char *what);
enum keel_check_flags {
	KEEL_CHECK_REPAIR = 1u << 0,  /* reap dead processes first */
};
/*
 * Walk and validate every structure in the arena.  Returns 0 when it is
 * sound, KEEL_E_CORRUPT after reporting each damaged place through fn, or
 * another error.  Also reports locks held by dead processes.
 */
int keel_check(keel_t *h, unsigned flags, keel_report_fn fn, void *ctx);
/* Reap dead processes (their slots, pins and locks) and reuse all retired
 * memory that no live reader can still see.  Returns how many processes were
 * reaped, or a negative code. */
int keel_reclaim(keel_t *h);

/* Remove the arena file of the store in dir (the store must have no live
 * process attached unless force).  Used by tests and `keel destroy`. */
int keel_unlink_arena(const char *dir, const keel_options_t *opt, int force);
/* Path of the arena file of store `dir` into buf. */
int keel_arena_path(const char *dir, const keel_options_t *opt, char *buf, size_t cap);

/* ---- timers -------------------------------------------------------------------
 * A timer is a (partition, timer key) with a due time in wall-clock
 * milliseconds since the epoch and a payload.  Timers live beside the
 * partition's key-value table (their names do not clash with keys) and are
 * journaled, checkpointed and recovered like it.
 *
 * - Set is an upsert (it reschedules atomically and resets the delivery
 *   count); cancel deletes.  Both exist as single calls and inside any
 *   transaction, together with key-value writes.  Timer operations do not
 *   count against KEEL_TXN_PARTITIONS_MAX (they share one internal
 *   partition, which takes one more lock).
 * - Claim hands the caller the earliest due timer (of all partitions, or of
 *   a given set) under a lease.  While the claim holds, no other claimer gets
 *   that timer.  Claims live in the arena only and are not journaled.
 * - A claim ends with ack (the timer is deleted, durably; inside a
 *   transaction the delete commits together with the state change it caused,
 *   and the whole transaction fails with KEEL_E_STATE if the claim was lost),
 *   with release (the timer is due again, now or at a new due time), or by
 *   being lost: its holder died (seen within milliseconds by any process that
 *   claims or waits) or its lease ran out (leases use the monotonic clock).
 * - Every claim counts a delivery.  A timer claimed more than
 *   timer_max_deliveries times (keel_options) moves to the dead-letter list
 *   instead of being handed out again; list, requeue or drop it there.
 * - Guarantee: a timer fires no earlier than its due time and at least once;
 *   its effect is exactly once when the ack shares the transaction of the
 *   state change.  After a power loss (or /dev/shm loss) every timer whose set
 *   was acknowledged is back; claims are gone, so a timer that was claimed
 *   but not acked is due again (at once if overdue).  The delivery count is
 *   kept in the arena and survives a crash of a process, but after a power
 *   loss it restarts from what the last release with a new due time wrote.
 */
#define KEEL_TIMER_KEY_MAX 512u                 /* bytes */
#define KEEL_TIMER_PAYLOAD_MAX 65536u           /* bytes */
#define KEEL_TIMER_DUE_MAX 253402300799999ull   /* 9999-12-31T23:59:59.999Z in ms */
#define KEEL_TIMER_LEASE_MAX 86400000u          /* ms: one day */

enum keel_timer_state {
	KEEL_TIMER_PENDING = 1u << 0,   /* waiting for its due time, or due and unclaimed */
	KEEL_TIMER_CLAIMED = 1u << 1,   /* held by a claimer under a lease */
	KEEL_TIMER_DEAD = 1u << 2,      /* dead-lettered */
	KEEL_TIMER_ALL = 7u,
};

/* Wall clock in milliseconds since the epoch (the clock of due times). */
uint64_t keel_now_ms(void);

/* Set (upsert) a timer.  Errors: NAME, KEYSIZE, VALSIZE (payload), INVAL
 * (due time over KEEL_TIMER_DUE_MAX), FULL, READONLY, PANIC. */
int keel_timer_set(keel_t *h, const char *part, const void *key, size_t klen, uint64_t due_ms,
		   const void *payload, size_t plen);
/* Cancel a timer (pending, claimed or dead).  *existed (may be NULL). */
int keel_timer_cancel(keel_t *h, const char *part, const void *key, size_t klen, int *existed);
int keel_txn_timer_set(keel_txn_t *t, const char *part, const void *key, size_t klen, uint64_t due_ms,
		       const void *payload, size_t plen);
int keel_txn_timer_cancel(keel_txn_t *t, const char *part, const void *key, size_t klen);
/* For import and restore: write a timer as it was, in state KEEL_TIMER_PENDING
 * or KEEL_TIMER_DEAD (a dead letter), with its delivery count.  Errors: as
 * keel_txn_timer_set, and INVAL for another state. */
int keel_txn_timer_restore(keel_txn_t *t, const char *part, const void *key, size_t klen, uint64_t due_ms,
			   const void *payload, size_t plen, unsigned state, uint32_t deliveries);

/* A claim: what keel_timer_claim hands out.  Pass it back to ack, extend or
 * release.  The token identifies this one claim: any process holding it may
 * ack, extend or release (a CLI can rebuild one from part, key and token). */
typedef struct keel_claim {
	char part[KEEL_PARTITION_NAME_MAX + 1];
	uint8_t key[KEEL_TIMER_KEY_MAX];
	size_t klen;
	uint64_t due_ms;          /* the due time it fired for */
	uint32_t deliveries;      /* this is delivery number N (1 = first) */
	uint32_t pad;
	uint64_t token;
	uint64_t lease_ms;        /* lease granted */
	size_t plen;              /* full payload length */
} keel_claim_t;

/*
 * Claim the earliest due timer of partitions parts[0..nparts) (all
 * partitions when nparts is 0) under a lease of lease_ms (1 to
 * KEEL_TIMER_LEASE_MAX).  If none is due, wait up to timeout_ms for one
 * (0: do not wait; -1: no limit).  The payload goes to buf as in keel_get
 * (min(cap, plen) bytes; c->plen says the full length).
 * Errors: TIMEOUT (nothing due), NAME, INVAL, READONLY, LIMIT.
 */
int keel_timer_claim(keel_t *h, const char *const *parts, size_t nparts, uint32_t lease_ms,
		     int timeout_ms, keel_claim_t *c, void *buf, size_t cap);
/* Ack: delete the claimed timer in a commit of its own.  Errors: STATE (the
 * claim is no longer held: its lease ran out, or the timer was set, cancelled
 * or claimed again since; nothing changed). */
int keel_timer_ack(keel_t *h, const keel_claim_t *c);
/* Ack inside a transaction: at commit, the transaction fails with
 * KEEL_E_STATE and applies nothing unless the claim is still held.  A
 * keel_txn_timer_set of the same timer after it in the transaction makes the
 * step "ack and schedule the next one". */
int keel_txn_timer_ack(keel_txn_t *t, const keel_claim_t *c);
/* Renew the lease to lease_ms from now; the caller becomes the holder (the
 * process whose death ends the claim).  Errors: STATE (not held).
 * Note: claim, wait, extend, release, keel_timers, keel_timer_get and
 * keel_timer_stat on a writable handle first re-arm lost claims (holder dead,
 * or lease run out), so what they report is current; keel_reclaim does it
 * at once for every dead holder. */
int keel_timer_extend(keel_t *h, const keel_claim_t *c, uint32_t lease_ms);
/* Hand the timer back: due again at once (due_ms 0), or at due_ms (a
 * journaled reschedule that keeps the delivery count).  Errors: STATE. */
int keel_timer_release(keel_t *h, const keel_claim_t *c, uint64_t due_ms);
/*
 * Block until a timer of the given partitions (all when nparts is 0) is due,
 * or timeout_ms passes (-1: no limit).  Returns 0 when one is due (another
 * process may claim it first), KEEL_E_TIMEOUT otherwise.  It sleeps on a
 * futex: it wakes when a timer falls due, early when any process sets an
 * earlier timer or a claim is lost, and does not poll.
 */
int keel_timer_wait(keel_t *h, const char *const *parts, size_t nparts, int timeout_ms);

/* A timer as listed. */
typedef struct keel_timer_info {
	const char *part;
	const void *key;
	size_t klen;
	uint64_t due_ms;
	unsigned state;           /* one enum keel_timer_state bit */
	uint32_t deliveries;      /* claims so far */
	pid_t holder;             /* CLAIMED: the holder's pid */
	int64_t lease_left_ms;    /* CLAIMED: lease time left (< 0: ran out) */
	const void *payload;
	size_t plen;
} keel_timer_info_t;
typedef int (*keel_timer_fn)(void *ctx, const keel_timer_info_t *t);
/*
 * List timers of partition `part` (NULL: all) whose state is in `states`
 * (a mask of enum keel_timer_state), by partition and then by due time.
 * The pointers are valid during the call.  Callbacks return 0 to go on,
 * > 0 to stop (the call returns 0), < 0 to stop and return it.
 */
int keel_timers(keel_t *h, const char *part, unsigned states, keel_timer_fn fn, void *ctx);
/* One timer, by name.  Errors: NOTFOUND. */
int keel_timer_get(keel_t *h, const char *part, const void *key, size_t klen, keel_timer_info_t *info,
		   void *buf, size_t cap);

/* Dead letters: put one back as pending at due_ms (0: now), with its
 * delivery count reset; or delete it.  Errors: NOTFOUND, STATE (not dead). */
int keel_timer_requeue(keel_t *h, const char *part, const void *key, size_t klen, uint64_t due_ms);
int keel_timer_drop(keel_t *h, const char *part, const void *key, size_t klen);

typedef struct keel_timer_stat {
	uint64_t pending, claimed, dead;
	uint64_t next_due_ms;     /* earliest pending due time (0: none) */
	uint64_t claims;          /* claims handed out since the arena was made */
	uint64_t redelivered;     /* claims lost to a dead holder or a lease */
	uint64_t dead_lettered;
} keel_timer_stat_t;
int keel_timer_stat(keel_t *h, keel_timer_stat_t *st);

/* ---- crash testing -------------------------------------------------------------
 * For testing a worker's own crash recovery: make this process die by
 * SIGKILL, as kill -9 would, when it reaches the named point in the commit
 * path for the nth time (1 = the first).  Points:
 *   commit.reserved      ring space and LSN taken, nothing written
 *   commit.complete      record complete, nothing applied
 *   commit.mid_apply     first partition applied, the rest not
 *   commit.applied       applied, not yet visible
 *   commit.visible       visible, locks still held
 *   commit.done          locks released, durability not yet waited for
 *   flush.written        records handed to the journal writer, not yet written
 *   flush.synced         journal synced, durable LSN not yet advanced
 *   checkpoint.written   checkpoint file written, not yet installed
 * The environment variable KEEL_CRASH_AT="point" or "point:nth", read by
 * keel_open, does the same without code changes.  point NULL disarms.
 * Errors: INVAL (unknown point or nth 0).
 */
int keel_crash_at(const char *point, uint32_t nth);
/* The same, but the process stops itself with SIGSTOP there (as a debugger
 * or ^Z would stop it), holding what the point holds, and goes on after
 * SIGCONT; it stops once.  For testing how the other processes bear a
 * stopped one (they name it on stderr after 2 s of waiting for it; README,
 * "Durable stores").  KEEL_CRASH_AT="point:stop" or "point:nth:stop" does
 * it from the environment.  Arming either replaces the other. */
int keel_stop_at(const char *point, uint32_t nth);

/* ---- inspection (keel-dump) -------------------------------------------------
 * Read-only views of a store for inspection tools.  The arena views read the
 * shared memory of a live store without taking any lock and without writing
 * to it, so they neither stop nor slow the workers.  What they return is a
 * racy picture: each field is read once, but different fields (and different
 * partitions) may come from different instants.  Every offset read from the
 * arena is bounds-checked, so a damaged arena gives odd figures (or
 * KEEL_E_CORRUPT), never a crash.  The structural audit is keel_check.
 *
 * The journal views take the store directory, not a handle: they work on a
 * store that nobody has open, read the journal through the same scan as
 * recovery (without its repair step) and never modify anything.
 *
 * Callbacks return 0 to go on; a positive value stops the walk and the call
 * returns 0; a negative value stops it and is returned.
 */
#define KEEL_INSPECT_CLASSES_MAX 96u   /* allocator size classes reported */

typedef struct keel_inspect_header {
	/* The arena header. */
	char arena_path[256];
	uint32_t format_version;
	uint32_t hdr_bytes;
	uint64_t layout_sig;         /* hash of struct sizes; differs between incompatible builds */
	uint8_t arena_uuid[16];      /* identity of this arena file */
	uint8_t store_uuid[16];      /* identity of the store (STORE/keel.id); zero in memory mode */
	uint64_t pidns_dev, pidns_ino; /* PID namespace the arena serves */
	uint32_t file_mode;
	uint32_t ready;              /* 1 when the header says READY */
	uint64_t created_ns;         /* wall clock at creation */
	uint64_t arena_bytes;        /* current file size (grows) */
	uint64_t arena_bytes_max;    /* reserved range: the arena never grows past it */
	uint64_t heap_top;           /* end of the pages ever handed out */
	uint64_t procs_off, readers_off, user_off, user_bytes, ring_off, heap_off;
	uint32_t procs_hi, readers_hi; /* process / reader slots ever claimed */
	uint64_t reaps;              /* dead processes reaped, ever */
	/* The store. */
	int durability;              /* enum keel_durability: the store's default */
	int journaled;               /* 1 for a durable store */
	int failed;                  /* sticky failure: 0, KEEL_E_IO or KEEL_E_NOSPC */
	uint32_t partitions;
	/* The commit ring (byte positions grow without bound; modulo ring_bytes
	 * they are offsets into the ring). */
	uint64_t ring_bytes;
	uint64_t ring_head;          /* next reservation */
	uint64_t ring_applied_pos;   /* first record not yet covered by applied_lsn */
	uint64_t ring_durable_pos;   /* first record not yet on disk (durable stores) */
	uint64_t ring_tail;          /* space before it may be reused */
	/* LSNs. */
	uint64_t next_lsn;           /* the next commit gets it */
	uint64_t applied_lsn;        /* every commit <= it is visible */
	uint64_t durable_lsn;        /* every commit <= it is on disk */
	uint64_t checkpoint_lsn;     /* start LSN of the newest checkpoint (0: none) */
	uint64_t visible_seq;        /* visibility numbers given so far */
	uint64_t visible_lsn;        /* the LSN that got the last one */
	uint64_t reclaim_gen;        /* reclamation generation */
	/* The journal, as the flushers left it. */
	uint64_t journal_bytes;      /* journal size after the last flush */
	uint64_t checkpoint_journal_bytes; /* journal size at the last checkpoint */
	uint64_t last_flush_age_ns;  /* time since the last flush (0: never) */
	uint32_t checkpoint_pid;     /* process writing a checkpoint now (0: none) */
	uint32_t pad0;
	/* Counters since the arena was made. */
	uint64_t flushes, commits, repairs, voided, redone;
	uint32_t reserved[8];
} keel_inspect_header_t;
/* Errors: INVAL, CLOSED, FORKED. */
int keel_inspect_header(keel_t *h, keel_inspect_header_t *out);

typedef struct keel_inspect_proc {
	uint32_t slot;               /* process slot index */
	pid_t pid;
	int alive;                   /* judged by pid and start time */
	int self;                    /* the slot of the handle passed in */
	uint64_t start_time;         /* from /proc/PID/stat, clock ticks */
	uint64_t attach_ns;          /* wall clock at attach */
	uint32_t reader_slots;       /* reader slots it owns */
	uint32_t readers_pinned;     /* of which pinned now */
	uint64_t oldest_snapshot;    /* LSN of its oldest pinned snapshot (0: none) */
	uint64_t reader_lag;         /* applied_lsn minus oldest_snapshot (0: none) */
	uint32_t locks_held;         /* store locks whose holder is this pid */
	uint32_t pad0;
	uint64_t rsv_lsn;            /* LSN of a ring reservation in flight (0: none) */
} keel_inspect_proc_t;
typedef int (*keel_inspect_proc_fn)(void *ctx, const keel_inspect_proc_t *p);
/* Every registered process slot, live or dead.  Errors: INVAL, CLOSED, FORKED. */
int keel_inspect_processes(keel_t *h, keel_inspect_proc_fn fn, void *ctx);

enum keel_lock_state {
	KEEL_LOCK_FREE = 0,
	KEEL_LOCK_HELD = 1,          /* held by a live process */
	KEEL_LOCK_DEAD = 2,          /* held by (or last held by) a dead process: the
				      * next taker repairs what it protects */
};
typedef struct keel_inspect_lock {
	char name[96];               /* "flush", "apply", "directory", "allocator" or "partition NAME" */
	int32_t partition;           /* partition id, or -1 */
	int state;                   /* enum keel_lock_state */
	uint32_t holder_pid;         /* 0 when free */
	uint32_t holder_tid;
	uint64_t acquisitions;
	uint64_t repairs;            /* times it was taken from a dead holder */
} keel_inspect_lock_t;
typedef int (*keel_inspect_lock_fn)(void *ctx, const keel_inspect_lock_t *l);
/* Every lock of the store: the four store-wide ones, then one per partition.
 * Errors: INVAL, CLOSED, FORKED. */
int keel_inspect_locks(keel_t *h, keel_inspect_lock_fn fn, void *ctx);

typedef struct keel_inspect_partition {
	uint32_t id;
	int ready;                   /* descriptor initialised */
	char name[KEEL_PARTITION_NAME_MAX + 1];
	uint64_t keys;               /* live keys */
	uint64_t bytes;              /* live key + value bytes */
	uint64_t buckets;            /* hash buckets (0 if the array is damaged) */
	double load_factor;          /* keys per bucket */
	uint64_t retired;            /* old versions and nodes awaiting safe reuse */
	uint64_t reserved0;          /* 0 (bucket arrays are never retired) */
	uint64_t arena_bytes;        /* bytes of the blocks it holds */
	uint64_t pages;              /* 64 KiB pages it owns */
	uint64_t created_lsn;        /* commit that first journaled it (0: not yet) */
	uint64_t last_lsn;
	uint64_t applying_lsn;       /* a commit being applied to it now (0: none) */
	uint32_t lock_holder_pid;
	uint32_t pad0;
} keel_inspect_partition_t;
typedef int (*keel_inspect_partition_fn)(void *ctx, const keel_inspect_partition_t *p);
/* Every partition, in id order.  Errors: INVAL, CLOSED, FORKED. */
int keel_inspect_partitions(keel_t *h, keel_inspect_partition_fn fn, void *ctx);

typedef struct keel_inspect_class {
	uint32_t size;               /* block bytes */
	uint32_t blocks_per_page;
	uint64_t pages;              /* slab pages of this class */
	uint64_t blocks_free;        /* blocks on the partitions' free lists */
	uint64_t bytes_free;
} keel_inspect_class_t;
typedef struct keel_inspect_alloc {
	uint64_t page_bytes;         /* 64 KiB */
	uint64_t heap_off, heap_top; /* the page heap: [heap_off, heap_top) */
	uint64_t headroom_bytes;     /* arena_bytes_max - heap_top: room to grow */
	/* From a walk of the page headers. */
	uint64_t pages_total, pages_free, pages_meta, pages_slab, pages_large;
	uint64_t free_runs;          /* runs of free pages */
	uint64_t free_run_pages_max; /* the largest run */
	uint64_t walk_stopped_at;    /* offset of a bad page header (0: the walk completed) */
	/* The allocator's own counters. */
	uint64_t counted_free_pages, counted_used_pages, reserve_pages;
	/* Slab space. */
	uint64_t slab_bytes;         /* bytes of slab pages, headers excluded */
	uint64_t slab_bytes_free;    /* on free lists */
	uint64_t large_bytes;        /* bytes of large runs */
	uint64_t used_bytes;         /* bytes in blocks handed out (all partitions) */
	/* Fragmentation, each in 0..1:
	 *   slab: slab_bytes_free / slab_bytes, space carved but not in use;
	 *   pages: 1 - free_run_pages_max / pages_free, how scattered the free
	 *   pages are (0 when they form one run, or there are none). */
	double frag_slab;
	double frag_pages;
	uint32_t free_list_bad;      /* free-list walks cut at a bad link */
	uint32_t nclasses;
	keel_inspect_class_t classes[KEEL_INSPECT_CLASSES_MAX];
} keel_inspect_alloc_t;
/* Errors: INVAL, CLOSED, FORKED. */
int keel_inspect_alloc(keel_t *h, keel_inspect_alloc_t *out);

/* ---- the journal on disk ---- */
enum keel_segment_state {
	KEEL_SEGMENT_USED = 1,       /* a started segment of this store */
	KEEL_SEGMENT_SPARE = 2,      /* zeroed, ready, never started */
	KEEL_SEGMENT_STALE = 3,      /* a recycled file whose header is for another number */
	KEEL_SEGMENT_DAMAGED = 4,    /* header unreadable: zeros, torn or damaged */
	KEEL_SEGMENT_ALIEN = 5,      /* intact header of another store or format */
	KEEL_SEGMENT_LOST = 6,       /* moved aside by a salvage ("*.lost") */
};
typedef struct keel_journal_segment {
	uint64_t segno;
	char name[64];               /* file name in STORE/journal/ */
	int state;                   /* enum keel_segment_state */
	uint32_t flags;              /* header flags (bit 0: zero-filled when started) */
	uint64_t file_bytes;
	uint64_t seg_bytes;          /* size in the header */
	uint64_t first_lsn;          /* USED: LSN of its first record */
	char note[160];              /* why it is not USED ("" if it is) */
} keel_journal_segment_t;
typedef int (*keel_journal_segment_fn)(void *ctx, const keel_journal_segment_t *s);
/* The segment files of durable store `dir`, by segment number.
 * Errors: INVAL, NOTFOUND (not a durable store), CORRUPT (keel.id), IO, NOMEM. */
int keel_journal_segments(const char *dir, keel_journal_segment_fn fn, void *ctx);

enum keel_journal_op_type {
	KEEL_JOP_PUT = 1,
	KEEL_JOP_DEL = 2,
	KEEL_JOP_CLEAR = 3,          /* every key of the partition */
	KEEL_JOP_CREATE = 4,         /* the partition is created; key = its name */
};
typedef struct keel_journal_op {
	int type;                    /* enum keel_journal_op_type (other values: unknown) */
	uint32_t partition;          /* partition id */
	uint64_t version;            /* the version the write gives the key */
	uint32_t klen, vlen;
	const void *key;             /* valid during the callback */
	const void *value;
} keel_journal_op_t;
typedef struct keel_journal_record {
	uint64_t lsn;
	int is_void;                 /* an LSN whose commit came to nothing */
	int valid;                   /* the commit record is well-formed and its checksum matches */
	char problem[160];           /* what is wrong when !valid */
	uint32_t pid;                /* committing process */
	int durability;              /* enum keel_durability asked by the commit */
	uint64_t mtime_ns;
	uint64_t bytes;              /* payload bytes */
	uint32_t nparts;
	uint32_t parts[KEEL_TXN_PARTITIONS_MAX + 1];   /* + the timers' own partition */
	uint32_t nops;               /* operations the header announces */
	uint32_t nops_decoded;       /* entries in ops */
	const keel_journal_op_t *ops;
} keel_journal_record_t;
typedef int (*keel_journal_record_fn)(void *ctx, const keel_journal_record_t *r);

typedef struct keel_journal_summary {
	int status;                  /* 0, or KEEL_E_CORRUPT when the journal is damaged */
	int torn;                    /* the last flush before a crash was incomplete */
	uint64_t records;            /* records passed to fn */
	uint64_t first_lsn, last_lsn;/* of those (0: none) */
	uint64_t next_lsn;           /* LSN the journal would continue with */
	char message[768];           /* the torn tail or the damage: segment, offset, LSN, checksums */
} keel_journal_summary_t;
/*
 * Decode the journal records of durable store `dir` with LSN >= from_lsn
 * (0 or an LSN older than the journal: from its oldest record), in LSN
 * order, without repairing anything.  *sum (may be NULL) says how the
 * journal ends.  Returns 0 (a torn tail included: sum->torn), KEEL_E_CORRUPT
 * when a bad record has durable ones after it or a header is damaged
 * (sum->message names the place; records passed before it are real), or
 * NOTFOUND, INVAL, IO, NOMEM, or fn's negative return.
 */
int keel_journal_records(const char *dir, uint64_t from_lsn, keel_journal_record_fn fn, void *ctx,
			 keel_journal_summary_t *sum);
/* Decode one journal payload (a commit record) of LSN `lsn` and pass it to
 * fn; a damaged payload is passed with valid = 0.  Returns fn's result, or
 * INVAL or NOMEM. */
int keel_journal_decode(uint64_t lsn, const void *payload, size_t len, keel_journal_record_fn fn,
			void *ctx);

#ifdef __cplusplus
}
#endif
#endif /* KEEL_H */
