/*
 * jio.h - the replaceable I/O layer under the journal and the checkpoints.
 *
 * Every byte the journal (lib/journal.c) and the checkpoint container
 * (lib/ckptfile.c) put on disk or read back, and every directory operation
 * they make, goes through one small vtable, `struct jio_ops`.  Two backends
 * implement it:
 *
 *   - the real one (lib/jio.c, jio_real_create): writes and fdatasync go
 *     through io_uring (a batch of writes linked to one fdatasync is one
 *     submission); rare metadata operations (open, rename, mkdir, directory
 *     fsync, listing) are plain system calls.  It is the only code in Keel
 *     that includes liburing or calls write/fsync.
 *   - a simulated disk (lib/jio_sim.c, jio_sim_create) that lives in process
 *     memory, keeps unsynced writes and directory operations apart from the
 *     durable state, can produce the disk as a power loss would leave it, and
 *     fails the N-th operation on request.  An LD_PRELOAD shim could not do
 *     this: io_uring bypasses libc.
 *
 * Conventions
 * -----------
 * - A file is named by an int handle from jio_open (a file descriptor for the
 *   real backend, a slot for the simulated one).  Paths are absolute or
 *   relative to the current directory, at most JIO_PATH_MAX - 1 bytes.
 * - Every operation returns 0 or a negative KEEL_E_* code: KEEL_E_IO (EIO,
 *   or a short write: a write that moved fewer bytes than asked is an error,
 *   never retried), KEEL_E_NOSPC (ENOSPC, EDQUOT), KEEL_E_NOTFOUND (ENOENT),
 *   KEEL_E_PERM (EACCES, EPERM), KEEL_E_NOMEM, KEEL_E_INVAL, else KEEL_E_OS.
 *   The failing errno is kept (jio_errno()) and a detail message naming the
 *   operation, path and offset is stored for this thread (jio_errmsg()).
 * - After a failed write or fdatasync the caller must not retry the sync and
 *   carry on: Linux may have dropped the dirty pages.  The journal turns any
 *   such failure into a sticky failed state.
 * - A jio_t is used by one thread at a time (the real backend owns one
 *   io_uring); the caller serializes.
 *
 * Durability contract (what the simulated disk models and the real disk is
 * assumed to give): data written to a file is durable once an fdatasync of
 * that file returned 0; the existence of a created, renamed or unlinked name
 * is durable once the directory holding it was fsynced; writes that were not
 * synced may, at a power loss, each independently survive whole, vanish,
 * survive in part at 512-byte sector granularity, or leave garbage in the
 * sectors they covered.  A sector that no unsynced write touched is intact.
 */
#ifndef KEEL_JIO_H
#define KEEL_JIO_H

#include <stddef.h>
#include <stdint.h>

#include "keel.h"

#define JIO_PATH_MAX 4096u          /* bytes of a path, with its NUL */
#define JIO_SECTOR_BYTES 512u       /* unit of torn writes */
#define JIO_BATCH_MAX 1024u         /* writes in one jio_write call */
#define JIO_WRITE_BYTES_MAX (1u << 30) /* bytes of one write in a batch */

/* Flags of jio_open. */
enum jio_open_flags {
	JIO_RDONLY = 0,
	JIO_RDWR = 1u << 0,
	JIO_CREATE = 1u << 1, /* create if missing (the new name needs a dir fsync) */
	JIO_EXCL = 1u << 2,   /* with CREATE: fail if it exists */
	JIO_TRUNC = 1u << 3,  /* truncate to 0 bytes */
};

/* Flags of jio_write. */
enum jio_write_flags {
	JIO_W_DATASYNC = 1u << 0, /* follow the writes with one fdatasync, as a unit */
	JIO_W_DIRECT = 1u << 1,   /* a hint: the bytes go to the device now (direct
				     I/O where the backend can); a later sync follows */
};

/* One write of a batch. */
struct jio_wr {
	uint64_t off;
	const void *buf;
	size_t len; /* 1 .. JIO_WRITE_BYTES_MAX */
};

/* Called once per directory entry (not "." or ".."); nonzero stops the walk
 * and is returned by jio_list. */
typedef int (*jio_list_fn)(void *ctx, const char *name);

typedef struct jio jio_t;

struct jio_ops {
	const char *name; /* "io_uring", "syscall", "sim" */
	int (*open)(jio_t *io, const char *path, unsigned flags, int *fh);
	int (*close)(jio_t *io, int fh);
	/* Read up to len bytes at off; *got gets the count (short only at EOF). */
	int (*pread)(jio_t *io, int fh, void *buf, size_t len, uint64_t off, size_t *got);
	/* Write n (1..JIO_BATCH_MAX) ranges, then fdatasync if JIO_W_DATASYNC.
	 * 0 only if every byte was written (and synced). */
	int (*write)(jio_t *io, int fh, const struct jio_wr *w, unsigned n, unsigned flags);
	int (*fdatasync)(jio_t *io, int fh);
	/* Reserve [off, off+len) (the file grows if needed; contents unspecified
	 * until written, zeros in practice). */
	int (*preallocate)(jio_t *io, int fh, uint64_t off, uint64_t len);
	int (*truncate)(jio_t *io, int fh, uint64_t len);
	int (*size)(jio_t *io, int fh, uint64_t *bytes);
	int (*rename)(jio_t *io, const char *from, const char *to);
	int (*unlink)(jio_t *io, const char *path);
	/* Create a directory; 0 also when it already exists as a directory. */
	int (*mkdir)(jio_t *io, const char *path);
	/* Make the entries of directory `path` durable. */
	int (*fsync_dir)(jio_t *io, const char *path);
	int (*list)(jio_t *io, const char *dir, jio_list_fn fn, void *ctx);
	void (*destroy)(jio_t *io);
};

/* A backend object starts with this. */
struct jio {
	const struct jio_ops *ops;
};

/* ---- calls through the vtable ------------------------------------------------ */
static inline int jio_open(jio_t *io, const char *path, unsigned flags, int *fh)
{
	return io->ops->open(io, path, flags, fh);
}
static inline int jio_close(jio_t *io, int fh) { return io->ops->close(io, fh); }
static inline int jio_pread(jio_t *io, int fh, void *buf, size_t len, uint64_t off, size_t *got)
{
	return io->ops->pread(io, fh, buf, len, off, got);
}
static inline int jio_write(jio_t *io, int fh, const struct jio_wr *w, unsigned n, unsigned flags)
{
	return io->ops->write(io, fh, w, n, flags);
}
static inline int jio_fdatasync(jio_t *io, int fh) { return io->ops->fdatasync(io, fh); }
static inline int jio_preallocate(jio_t *io, int fh, uint64_t off, uint64_t len)
{
	return io->ops->preallocate(io, fh, off, len);
}
static inline int jio_truncate(jio_t *io, int fh, uint64_t len)
{
	return io->ops->truncate(io, fh, len);
}
static inline int jio_size(jio_t *io, int fh, uint64_t *bytes) { return io->ops->size(io, fh, bytes); }
static inline int jio_rename(jio_t *io, const char *from, const char *to)
{
	return io->ops->rename(io, from, to);
}
static inline int jio_unlink(jio_t *io, const char *path) { return io->ops->unlink(io, path); }
static inline int jio_mkdir(jio_t *io, const char *path) { return io->ops->mkdir(io, path); }
static inline int jio_fsync_dir(jio_t *io, const char *path) { return io->ops->fsync_dir(io, path); }
static inline int jio_list(jio_t *io, const char *dir, jio_list_fn fn, void *ctx)
{
	return io->ops->list(io, dir, fn, ctx);
}
static inline void jio_destroy(jio_t *io)
{
	if (io)
		io->ops->destroy(io);
}

/* ---- helpers built on the vtable (jio.c) --------------------------------------- */
/* One write of len bytes at off (no sync). */
int jio_write1(jio_t *io, int fh, const void *buf, size_t len, uint64_t off);
/* Read exactly len bytes at off; KEEL_E_CORRUPT with a message if the file is
 * shorter. */
int jio_read_exact(jio_t *io, int fh, void *buf, size_t len, uint64_t off, const char *path);
/* Write zeros over [off, off+len) in large writes; fdatasync if `sync`. */
int jio_zero(jio_t *io, int fh, uint64_t off, uint64_t len, int sync);
/* "dir/name" into buf; KEEL_E_INVAL if it does not fit. */
int jio_join(char *buf, size_t cap, const char *dir, const char *name);
/* The directory part of path into buf ("." if none). */
int jio_dirname(char *buf, size_t cap, const char *path);

/* ---- errors ------------------------------------------------------------------ */
/* Store a detail message for this thread and return code.  Used by every
 * module of the journal layer. */
int jio_err(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Map errno `e` to a KEEL_E_* code, store "what: path: strerror" for this
 * thread, remember e for jio_errno(), and return the code. */
int jio_err_errno(int e, const char *what, const char *path, uint64_t off);
/* The name of a KEEL_E_* code the journal layer returns ("KEEL_E_IO"). */
const char *jio_code_name(int code);
/* This thread's message of the last failure in the journal layer ("" if none). */
const char *jio_errmsg(void);
/* errno of the last failed system call on this thread (0 if none). */
int jio_errno(void);
/* Forward every message to fn as well (e.g. the store's per-thread error
 * module); NULL to stop.  Process-wide. */
typedef void (*jio_err_hook_fn)(int code, const char *msg);
void jio_set_err_hook(jio_err_hook_fn fn);

/* ---- the real backend ---------------------------------------------------------- */
enum jio_real_flags {
	JIO_REAL_NO_URING = 1u << 0, /* use pwrite/fdatasync syscalls (benchmarks, old kernels) */
};
/*
 * Make a real-disk backend.  queue_depth: io_uring entries (0: 64).  If the
 * kernel refuses io_uring (ENOSYS, EPERM under seccomp) it falls back to
 * system calls; io->ops->name says which.  New files get mode file_mode
 * (0: 0600).  Errors: INVAL, NOMEM, OS.
 */
int jio_real_create(unsigned queue_depth, unsigned flags, unsigned file_mode, jio_t **out);

/* ---- the simulated disk (jio_sim.c) ------------------------------------------- */
typedef struct jio_sim jio_sim_t;

/* What happens to each unsynced write at jio_sim_crash. */
enum jio_crash_policy {
	JIO_CRASH_KEEP = 0,   /* every unsynced write and directory op survives */
	JIO_CRASH_DROP = 1,   /* none survives */
	JIO_CRASH_TEAR = 2,   /* each write keeps a random subset of its sectors */
	JIO_CRASH_GARBLE = 3, /* each write: random sectors become random bytes, others kept or dropped */
	JIO_CRASH_MIX = 4,    /* each write independently kept, dropped, torn or garbled */
	JIO_CRASH_POLICIES = 5,
};

/* Fault kinds for jio_sim_fail. */
enum jio_fault {
	JIO_FAULT_NONE = 0,
	JIO_FAULT_EIO = 1,
	JIO_FAULT_ENOSPC = 2,
	JIO_FAULT_SHORT = 3, /* a write moves half its bytes; other ops fail with EIO */
};

int jio_sim_create(jio_sim_t **out);
void jio_sim_destroy(jio_sim_t *sim);
jio_t *jio_sim_io(jio_sim_t *sim);
/*
 * Power loss: every open handle becomes invalid; each unsynced write is
 * handled by `policy` (choices drawn from `seed`); the unsynced directory
 * operations keep a random prefix (all with KEEP, none with DROP).  The sim
 * then holds the post-crash disk, everything durable, and can be used again.
 */
int jio_sim_crash(jio_sim_t *sim, uint64_t seed, int policy);
/*
 * Make operation number op_index (0-based, counted over every vtable call
 * and every write and sync inside a batch) fail with `kind`; with
 * `persistent` every later operation fails too.  kind NONE clears it.
 */
void jio_sim_fail(jio_sim_t *sim, uint64_t op_index, int kind, int persistent);
/* Operations counted so far. */
uint64_t jio_sim_ops(const jio_sim_t *sim);
/* Operations that were failed on purpose so far. */
uint64_t jio_sim_faults(const jio_sim_t *sim);
/* Syncs so far (fdatasync of a file or fsync of a directory): crash points. */
uint64_t jio_sim_syncs(const jio_sim_t *sim);
/* Put a file with this content, durable at once (fixtures, fuzzers). */
int jio_sim_put(jio_sim_t *sim, const char *path, const void *data, size_t len);
/* A malloc'd copy of the current (not necessarily durable) content of a
 * file; the caller frees *data.  NOTFOUND if missing. */
int jio_sim_get(jio_sim_t *sim, const char *path, uint8_t **data, size_t *len);
/* Make directory dir and its parents, durable at once (fixtures). */
int jio_sim_mkdirs(jio_sim_t *sim, const char *dir);
/* A deep copy of the whole disk, durable and unsynced state, open handles,
 * counters and fault settings: crash the copy, keep the original going. */
int jio_sim_clone(const jio_sim_t *sim, jio_sim_t **out);
/* Whether anything (writes, directory ops) is unsynced. */
int jio_sim_dirty(const jio_sim_t *sim);

#endif /* KEEL_JIO_H */
