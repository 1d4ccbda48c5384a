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
	KEEL_OPEN_READONLY = 1u << 1, /* writes return KEEL_E_READONLY */
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
	uint32_t reserved[6];
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
/* Delete every key of a partition in one commit; *removed gets the count. */
int keel_clear(keel_t *h, const char *part, uint64_t *removed);

/* Called once per key of keel_get_many that is found, inside one read scope
 * (val is valid only during the call).  Return nonzero to stop early. */
typedef int (*keel_get_fn)(void *ctx, size_t index, const void *val, size_t vlen,
			   const keel_meta_t *meta);
/* Consistent multi-get (one snapshot).  *found (may be NULL) gets how many. */
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
int keel_stat(keel_t *h, keel_stat_t *st);

typedef struct keel_partition_stat {
	uint64_t keys;
	uint64_t bytes;              /* key + value bytes */
	uint64_t arena_bytes;        /* arena bytes held by the partition */
	uint64_t buckets;            /* hash buckets */
	uint32_t id;
} keel_partition_stat_t;
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

#ifdef __cplusplus
}
#endif
#endif /* KEEL_H */
