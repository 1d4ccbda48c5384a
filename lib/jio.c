/*
 * jio.c - the real-disk backend of the journal's I/O layer, and the helpers
 * and error messages every backend shares.
 *
 * This is the one file in Keel that includes liburing or calls write, fsync
 * or fdatasync.  Writes go through an io_uring owned by the jio_t: a batch of
 * writes is submitted as one chain, each write linked (IOSQE_IO_LINK) to the
 * next, so the kernel cancels the rest of the chain when one link fails.  A
 * batch longer than the ring is cut into chains, each waited for before the
 * next is submitted.  The data sync that ends a batch runs once every write
 * of it has completed, as fdatasync(2) on the calling thread.
 *
 * Why not an IORING_OP_FSYNC linked after the writes, as the chain could
 * carry: the kernel can never complete a sync without blocking, so io_uring
 * always hands it to one of its worker threads, and on a 2-core host that
 * hand-off and the wake-up after it cost about 35 us per commit.  Measured
 * with keel-bench sync (one committer, same run): the linked fsync gave a
 * p50 commit latency of 139 us and 0.69x the raw pwrite+fdatasync rate;
 * fdatasync on the caller, 102-111 us and 0.79-0.86x.  The durability
 * contract is the same: the sync starts after every write completed, and a
 * failed sync is reported once, never retried.
 *
 * Direct I/O for synced batches.  A buffered write through io_uring is no
 * better off than the sync: ext4 cannot take it without blocking either, so
 * it too goes to a worker thread (24-42 us for a 1 KiB write on this 2-core
 * host, against 2-4 us for pwrite).  An O_DIRECT write is issued to the
 * device from the submitting thread and completes by interrupt.  So a batch
 * that ends in a data sync, and whose writes are all whole 512-byte sectors
 * (journal flushes, segment headers), is written through an O_DIRECT twin
 * of the file: the same file opened a second time (/proc/self/fd) with
 * O_DIRECT, from an aligned bounce buffer when the caller's is not.  The
 * fdatasync that follows then only has to flush the device's cache.
 * Measured on this host (1 KiB writes, zero-filled file, each followed by
 * fdatasync): buffered io_uring write 127-145 us in all, pwrite 98-108 us,
 * O_DIRECT io_uring write 85-86 us.  The kernel keeps the page cache
 * coherent with direct writes (it writes back and drops the range), so
 * buffered reads and writes of the same file stay correct.  Where O_DIRECT
 * is refused (tmpfs, a file system or device whose direct I/O alignment is
 * above 512 bytes) or a direct write fails with EINVAL (nothing written),
 * that file goes on with buffered writes.
 *
 * Every completion is checked: a negative result is the errno of that write;
 * a result smaller than the length asked is a short write and is reported as
 * KEEL_E_IO, never retried or continued (a short write means the device or
 * the filesystem is in trouble, and a partial record must not be followed by
 * more data).  A failed fdatasync is reported once; the caller must not
 * retry it.
 *
 * Metadata operations are rare (segment creation and recycling, checkpoint
 * rename) and go through plain system calls.  Reads are rare too (recovery,
 * checkpoint load) and use pread.
 *
 * If io_uring_queue_init fails (ENOSYS on an old kernel, EPERM under a
 * seccomp policy) the backend uses pwrite and fdatasync instead and names
 * itself "syscall"; the durability contract is the same.
 *
 * Errors: each failure is mapped to a KEEL_E_* code and described in a
 * per-thread message (jio_errmsg) that names the operation, the path when
 * known, the offset and the errno.  jio_set_err_hook forwards the messages to
 * the store's own error module.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "jio.h"

/* ---- per-thread messages --------------------------------------------------------- */

#define JIO_MSG_BYTES 1024u

static __thread char jio_msg[JIO_MSG_BYTES];
static __thread int jio_last_errno;
static jio_err_hook_fn jio_hook;

void jio_set_err_hook(jio_err_hook_fn fn) { jio_hook = fn; }

const char *jio_errmsg(void) { return jio_msg; }

int jio_errno(void) { return jio_last_errno; }

const char *jio_code_name(int code)
{
	switch (code) {
	case 0: return "KEEL_OK";
	case KEEL_E_INVAL: return "KEEL_E_INVAL";
	case KEEL_E_NOTFOUND: return "KEEL_E_NOTFOUND";
	case KEEL_E_CORRUPT: return "KEEL_E_CORRUPT";
	case KEEL_E_IO: return "KEEL_E_IO";
	case KEEL_E_NOSPC: return "KEEL_E_NOSPC";
	case KEEL_E_PANIC: return "KEEL_E_PANIC";
	case KEEL_E_NOMEM: return "KEEL_E_NOMEM";
	case KEEL_E_PERM: return "KEEL_E_PERM";
	case KEEL_E_LIMIT: return "KEEL_E_LIMIT";
	case KEEL_E_STATE: return "KEEL_E_STATE";
	case KEEL_E_OS: return "KEEL_E_OS";
	default: return "KEEL_E_?";
	}
}

int jio_err(int code, const char *fmt, ...)
{
	char tmp[JIO_MSG_BYTES];
	va_list ap;

	/* Format aside first: the arguments may include jio_errmsg() itself
	 * (a caller adding context to the message below it). */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	memcpy(jio_msg, tmp, sizeof jio_msg);
	if (jio_hook)
		jio_hook(code, jio_msg);
	return code;
}

static int jio_code_of(int e)
{
	switch (e) {
	case EIO:
		return KEEL_E_IO;
	case ENOSPC:
	case EDQUOT:
		return KEEL_E_NOSPC;
	case ENOENT:
		return KEEL_E_NOTFOUND;
	case EACCES:
	case EPERM:
	case EROFS:
		return KEEL_E_PERM;
	case ENOMEM:
		return KEEL_E_NOMEM;
	case EINVAL:
	case ENAMETOOLONG:
		return KEEL_E_INVAL;
	default:
		return KEEL_E_OS;
	}
}

int jio_err_errno(int e, const char *what, const char *path, uint64_t off)
{
	int code = jio_code_of(e);

	jio_last_errno = e;
	if (off != UINT64_MAX)
		return jio_err(code, "%s %s at offset %" PRIu64 " failed: %s (errno %d)", what,
			       path ? path : "(file)", off, strerror(e), e);
	return jio_err(code, "%s %s failed: %s (errno %d)", what, path ? path : "(file)",
		       strerror(e), e);
}

/* ---- helpers on top of the vtable -------------------------------------------------- */

int jio_write1(jio_t *io, int fh, const void *buf, size_t len, uint64_t off)
{
	struct jio_wr w = { .off = off, .buf = buf, .len = len };

	return jio_write(io, fh, &w, 1, 0);
}

int jio_read_exact(jio_t *io, int fh, void *buf, size_t len, uint64_t off, const char *path)
{
	size_t got = 0;
	int rc = jio_pread(io, fh, buf, len, off, &got);

	if (rc < 0)
		return rc;
	if (got != len)
		return jio_err(KEEL_E_CORRUPT,
			       "%s: file ends at offset %" PRIu64 ", expected %zu bytes there",
			       path ? path : "(file)", off + got, len);
	return 0;
}

#define JIO_ZERO_CHUNK (1u << 20)

int jio_zero(jio_t *io, int fh, uint64_t off, uint64_t len, int sync)
{
	static const uint8_t zeros[JIO_ZERO_CHUNK];
	struct jio_wr w[64];
	unsigned n = 0;
	int rc;

	if (len == 0)
		return sync ? jio_fdatasync(io, fh) : 0;
	/* Bounded: len / 1 MiB iterations, each making progress. */
	while (len > 0) {
		size_t piece = len < JIO_ZERO_CHUNK ? (size_t)len : JIO_ZERO_CHUNK;

		w[n].off = off;
		w[n].buf = zeros;
		w[n].len = piece;
		n++;
		off += piece;
		len -= piece;
		if (n == 64 || len == 0) {
			rc = jio_write(io, fh, w, n, (len == 0 && sync) ? JIO_W_DATASYNC : 0);
			if (rc < 0)
				return rc;
			n = 0;
		}
	}
	return 0;
}

int jio_join(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= cap)
		return jio_err(KEEL_E_INVAL, "path %s/%s is longer than %zu bytes", dir, name,
			       cap - 1);
	return 0;
}

int jio_dirname(char *buf, size_t cap, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash) {
		if (cap < 2)
			return jio_err(KEEL_E_INVAL, "no room for a directory name");
		strcpy(buf, ".");
		return 0;
	}
	n = (size_t)(slash - path);
	if (n == 0)
		n = 1; /* "/name" lives in "/" */
	if (n >= cap)
		return jio_err(KEEL_E_INVAL, "directory of %s is longer than %zu bytes", path, cap - 1);
	memcpy(buf, path, n);
	buf[n] = 0;
	return 0;
}

/* ---- the real backend ------------------------------------------------------------- */

#define JIO_QD_DEFAULT 64u
#define JIO_QD_MAX 4096u

#define TWINS_MAX 16u
#define TWIN_ALIGN 4096u
/* A twin slot's dfd, when not a descriptor: */
#define TWIN_FREE (-3)      /* slot unused */
#define TWIN_UNTRIED (-2)   /* fd known, O_DIRECT not tried yet */
#define TWIN_NONE (-1)      /* this file is written buffered */

struct jio_real {
	struct jio io;
	int uring_ok;
	unsigned qd;
	unsigned file_mode;
	struct io_uring ring;
	/* O_DIRECT twins of open files (dfd: a descriptor or a TWIN_ state) */
	struct { int fd, dfd; } twin[TWINS_MAX];
	uint8_t *bounce;
	size_t bounce_cap;
};

static struct jio_real *real_of(jio_t *io) { return (struct jio_real *)io; }

static int real_open(jio_t *io, const char *path, unsigned flags, int *fh)
{
	int of = O_CLOEXEC | ((flags & JIO_RDWR) ? O_RDWR : O_RDONLY);
	int fd;

	if (flags & JIO_CREATE)
		of |= O_CREAT | O_NOFOLLOW;
	if (flags & JIO_EXCL)
		of |= O_EXCL;
	if (flags & JIO_TRUNC)
		of |= O_TRUNC;
	do
		fd = open(path, of, real_of(io)->file_mode);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return jio_err_errno(errno, "open", path, UINT64_MAX);
	*fh = fd;
	return 0;
}

/* The twin slot of fh, or NULL. */
static int *twin_slot(struct jio_real *r, int fh, int make)
{
	for (unsigned i = 0; i < TWINS_MAX; i++)
		if (r->twin[i].fd == fh && r->twin[i].dfd != TWIN_FREE)
			return &r->twin[i].dfd;
	if (!make)
		return NULL;
	for (unsigned i = 0; i < TWINS_MAX; i++) {
		if (r->twin[i].dfd == TWIN_FREE) {
			r->twin[i].fd = fh;
			r->twin[i].dfd = TWIN_UNTRIED;
			return &r->twin[i].dfd;
		}
	}
	return NULL;
}

/* fh's O_DIRECT twin, opened on first use; -1 when direct I/O is not to be
 * used for it. */
static int twin_fd(struct jio_real *r, int fh)
{
	int *d = twin_slot(r, fh, 1);
	char path[64];
	struct statx sx;

	if (!d)
		return TWIN_NONE;
	if (*d != TWIN_UNTRIED)
		return *d;
	*d = TWIN_NONE;
	if (getenv("KEEL_NO_DIRECT_IO"))
		return TWIN_NONE;
	if (statx(fh, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0 || !(sx.stx_mask & STATX_DIOALIGN) ||
	    sx.stx_dio_offset_align == 0 || sx.stx_dio_offset_align > JIO_SECTOR_BYTES ||
	    sx.stx_dio_mem_align == 0 || sx.stx_dio_mem_align > TWIN_ALIGN)
		return TWIN_NONE;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fh);
	int fd;
	do
		fd = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	*d = fd < 0 ? TWIN_NONE : fd;
	return *d;
}

static void twin_drop(struct jio_real *r, int fh)
{
	int *d = twin_slot(r, fh, 0);
	if (d) {
		if (*d >= 0)
			close(*d);
		*d = TWIN_FREE;
	}
}

static int real_close(jio_t *io, int fh)
{
	twin_drop(real_of(io), fh);
	/* close is not retried on EINTR: on Linux the descriptor is gone. */
	if (close(fh) < 0 && errno != EINTR)
		return jio_err_errno(errno, "close", NULL, UINT64_MAX);
	return 0;
}

static int real_pread(jio_t *io, int fh, void *buf, size_t len, uint64_t off, size_t *got)
{
	size_t done = 0;

	/* Bounded: every turn moves at least one byte or returns. */
	while (done < len) {
		ssize_t n = pread(fh, (char *)buf + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return jio_err_errno(errno, "pread", NULL, off + done);
		if (n == 0)
			break;
		done += (size_t)n;
	}
	*got = done;
	return 0;
}

static int real_short(const struct jio_wr *w, long res)
{
	jio_last_errno = EIO;
	return jio_err(KEEL_E_IO,
		       "short write at offset %" PRIu64 ": %ld of %zu bytes written; the "
		       "journal stops here (the device or filesystem is failing or full)",
		       w->off, res, w->len);
}

/* pwrite + fdatasync, for kernels without io_uring. */
static int real_sync(int fh)
{
	if (fdatasync(fh) < 0)
		return jio_err_errno(errno, "fdatasync", NULL, UINT64_MAX);
	return 0;
}

static int real_write_sys(jio_t *io, int fh, const struct jio_wr *w, unsigned n, unsigned flags)
{
	for (unsigned i = 0; i < n; i++) {
		ssize_t r;

		do
			r = pwrite(fh, w[i].buf, w[i].len, (off_t)w[i].off);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return jio_err_errno(errno, "pwrite", NULL, w[i].off);
		if ((size_t)r != w[i].len)
			return real_short(&w[i], (long)r);
	}
	return (flags & JIO_W_DATASYNC) ? real_sync(fh) : 0;
}

/*
 * Submit one chain of `total` writes and reap all of its completions.
 * user_data is the index in the chain.  The first failure in chain order is
 * the one reported.
 */
static int real_chain(struct jio_real *r, int fh, const struct jio_wr *w, unsigned total, int *einval)
{
	int first_rc = 0;
	unsigned first_at = UINT32_MAX;
	int rc;

	for (unsigned i = 0; i < total; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

		/* The ring was empty and total <= qd: a slot is always there. */
		if (!sqe)
			return jio_err(KEEL_E_OS, "io_uring: no submission slot (chain of %u)", total);
		io_uring_prep_write(sqe, fh, w[i].buf, (unsigned)w[i].len, w[i].off);
		io_uring_sqe_set_data64(sqe, i);
		if (i + 1 < total)
			sqe->flags |= IOSQE_IO_LINK;
	}
	do
		rc = io_uring_submit(&r->ring);
	while (rc == -EINTR);
	if (rc < 0)
		return jio_err_errno(-rc, "io_uring_submit", NULL, UINT64_MAX);
	/* Reap exactly `total` completions, whatever they say, so the ring is
	 * empty again for the next call. */
	for (unsigned seen = 0; seen < total; seen++) {
		struct io_uring_cqe *cqe;
		unsigned i;
		int res;

		do
			rc = io_uring_wait_cqe(&r->ring, &cqe);
		while (rc == -EINTR);
		if (rc < 0)
			return jio_err_errno(-rc, "io_uring_wait_cqe", NULL, UINT64_MAX);
		i = (unsigned)io_uring_cqe_get_data64(cqe);
		res = cqe->res;
		io_uring_cqe_seen(&r->ring, cqe);
		if (i >= total || i >= first_at)
			continue;
		if (res >= 0 && (size_t)res == w[i].len)
			continue;
		/* A cancelled link is a consequence of an earlier failure,
		 * which has a smaller index and wins below. */
		first_at = i;
		if (res == -EINVAL && einval && i == 0)
			*einval = 1;   /* a direct write refused: nothing was written */
		if (res >= 0)
			first_rc = real_short(&w[i], res);
		else
			first_rc = jio_err_errno(-res, "io_uring write", NULL, w[i].off);
	}
	return first_rc;
}

/* One sector-aligned write through fh's O_DIRECT twin: 0 when written, 1
 * when the twin cannot serve it (nothing was written), or an error. */
static int real_write_direct(struct jio_real *r, int fh, const struct jio_wr *w)
{
	int dfd = twin_fd(r, fh), einval = 0;
	struct jio_wr dw = *w;

	if (dfd < 0)
		return 1;
	if ((uintptr_t)w->buf % TWIN_ALIGN) {
		if (r->bounce_cap < w->len) {
			size_t cap = w->len < (64u << 10) ? 64u << 10 : w->len;
			void *b = NULL;
			if (posix_memalign(&b, TWIN_ALIGN, cap) != 0)
				return 1;
			free(r->bounce);
			r->bounce = b;
			r->bounce_cap = cap;
		}
		memcpy(r->bounce, w->buf, w->len);
		dw.buf = r->bounce;
	}
	int rc = real_chain(r, dfd, &dw, 1, &einval);
	if (rc < 0 && einval) {
		int *d = twin_slot(r, fh, 0);
		close(dfd);
		if (d)
			*d = TWIN_NONE;   /* buffered from now on */
		return 1;
	}
	return rc;
}

static int real_write(jio_t *io, int fh, const struct jio_wr *w, unsigned n, unsigned flags)
{
	struct jio_real *r = real_of(io);
	int sync = (flags & JIO_W_DATASYNC) != 0;

	if (n == 0 || n > JIO_BATCH_MAX)
		return jio_err(KEEL_E_INVAL, "jio write: %u writes in a batch (1..%u)", n, JIO_BATCH_MAX);
	for (unsigned i = 0; i < n; i++)
		if (w[i].len == 0 || w[i].len > JIO_WRITE_BYTES_MAX || !w[i].buf)
			return jio_err(KEEL_E_INVAL, "jio write: bad length %zu in batch slot %u",
				       w[i].len, i);
	if (!r->uring_ok)
		return real_write_sys(io, fh, w, n, flags);
	if ((flags & (JIO_W_DATASYNC | JIO_W_DIRECT)) && n == 1 && w->off % JIO_SECTOR_BYTES == 0 &&
	    w->len % JIO_SECTOR_BYTES == 0) {
		int rc = real_write_direct(r, fh, w);
		if (rc <= 0)
			return rc < 0 || !sync ? rc : real_sync(fh);
		/* rc > 0: direct I/O does not serve this file; write it buffered */
	}
	/* Chains of at most qd writes; then the sync (see the top). */
	while (n > 0) {
		unsigned take = n < r->qd ? n : r->qd;
		int rc = real_chain(r, fh, w, take, NULL);

		if (rc < 0)
			return rc;
		w += take;
		n -= take;
	}
	return sync ? real_sync(fh) : 0;
}

static int real_fdatasync(jio_t *io, int fh)
{
	(void)io;
	return real_sync(fh);
}

static int real_preallocate(jio_t *io, int fh, uint64_t off, uint64_t len)
{
	int rc;

	do
		rc = fallocate(fh, 0, (off_t)off, (off_t)len);
	while (rc < 0 && errno == EINTR);
	if (rc < 0 && (errno == EOPNOTSUPP || errno == ENOSYS)) {
		/* The filesystem cannot reserve: grow the file, and let the
		 * zero-fill that follows allocate it. */
		struct stat st;

		if (fstat(fh, &st) < 0)
			return jio_err_errno(errno, "fstat", NULL, UINT64_MAX);
		if ((uint64_t)st.st_size < off + len && ftruncate(fh, (off_t)(off + len)) < 0)
			return jio_err_errno(errno, "ftruncate", NULL, off + len);
		return 0;
	}
	if (rc < 0)
		return jio_err_errno(errno, "fallocate", NULL, off);
	return 0;
}

static int real_truncate(jio_t *io, int fh, uint64_t len)
{
	if (ftruncate(fh, (off_t)len) < 0)
		return jio_err_errno(errno, "ftruncate", NULL, len);
	return 0;
}

static int real_size(jio_t *io, int fh, uint64_t *bytes)
{
	struct stat st;

	if (fstat(fh, &st) < 0)
		return jio_err_errno(errno, "fstat", NULL, UINT64_MAX);
	*bytes = (uint64_t)st.st_size;
	return 0;
}

static int real_rename(jio_t *io, const char *from, const char *to)
{
	if (rename(from, to) < 0) {
		int e = errno;

		jio_err_errno(e, "rename", from, UINT64_MAX);
		return jio_err(jio_code_of(e), "rename %s -> %s failed: %s (errno %d)", from, to,
			       strerror(e), e);
	}
	return 0;
}

static int real_unlink(jio_t *io, const char *path)
{
	if (unlink(path) < 0)
		return jio_err_errno(errno, "unlink", path, UINT64_MAX);
	return 0;
}

static int real_mkdir(jio_t *io, const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return jio_err_errno(errno, "mkdir", path, UINT64_MAX);
	if (stat(path, &st) < 0)
		return jio_err_errno(errno, "stat", path, UINT64_MAX);
	if (!S_ISDIR(st.st_mode))
		return jio_err(KEEL_E_INVAL, "%s exists and is not a directory", path);
	return 0;
}

static int real_fsync_dir(jio_t *io, const char *path)
{
	int fd, rc = 0;

	do
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return jio_err_errno(errno, "open directory", path, UINT64_MAX);
	if (fsync(fd) < 0)
		rc = jio_err_errno(errno, "fsync directory", path, UINT64_MAX);
	close(fd);
	return rc;
}

static int real_list(jio_t *io, const char *dir, jio_list_fn fn, void *ctx)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int rc = 0;

	if (!d)
		return jio_err_errno(errno, "opendir", dir, UINT64_MAX);
	errno = 0;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		rc = fn(ctx, de->d_name);
		if (rc)
			break;
		errno = 0;
	}
	if (!de && errno)
		rc = jio_err_errno(errno, "readdir", dir, UINT64_MAX);
	closedir(d);
	return rc;
}

static void real_destroy(jio_t *io)
{
	struct jio_real *r = real_of(io);

	if (r->uring_ok)
		io_uring_queue_exit(&r->ring);
	for (unsigned i = 0; i < TWINS_MAX; i++)
		if (r->twin[i].dfd >= 0)
			close(r->twin[i].dfd);
	free(r->bounce);
	free(r);
}

#define JIO_REAL_OPS(backend_name)                                               \
	{                                                                        \
		.name = backend_name, .open = real_open, .close = real_close,    \
		.pread = real_pread, .write = real_write,                        \
		.fdatasync = real_fdatasync, .preallocate = real_preallocate,    \
		.truncate = real_truncate, .size = real_size,                    \
		.rename = real_rename, .unlink = real_unlink,                    \
		.mkdir = real_mkdir, .fsync_dir = real_fsync_dir,                \
		.list = real_list, .destroy = real_destroy,                      \
	}

static const struct jio_ops real_ops_uring = JIO_REAL_OPS("io_uring");
static const struct jio_ops real_ops_sys = JIO_REAL_OPS("syscall");

int jio_real_create(unsigned queue_depth, unsigned flags, unsigned file_mode, jio_t **out)
{
	struct jio_real *r;
	int rc;

	*out = NULL;
	if (queue_depth == 0)
		queue_depth = JIO_QD_DEFAULT;
	if (queue_depth < 2 || queue_depth > JIO_QD_MAX)
		return jio_err(KEEL_E_INVAL, "io_uring queue depth %u out of range 2..%u",
			       queue_depth, JIO_QD_MAX);
	if (file_mode & ~0777u)
		return jio_err(KEEL_E_INVAL, "file mode %o has bits beyond 0777", file_mode);
	r = calloc(1, sizeof *r);
	if (!r)
		return jio_err(KEEL_E_NOMEM, "out of memory for the I/O backend");
	for (unsigned i = 0; i < TWINS_MAX; i++)
		r->twin[i].dfd = TWIN_FREE;
	r->qd = queue_depth;
	r->file_mode = file_mode ? file_mode : 0600;
	r->io.ops = &real_ops_uring;
	if (!(flags & JIO_REAL_NO_URING)) {
		rc = io_uring_queue_init(queue_depth, &r->ring, 0);
		r->uring_ok = rc == 0;
	}
	if (!r->uring_ok)
		r->io.ops = &real_ops_sys;
	*out = &r->io;
	return 0;
}
