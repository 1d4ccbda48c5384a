/*
 * arena.c - create, validate, attach and grow the shared arena file.
 *
 * The creator builds the arena under a private temporary name (made with
 * O_CREAT|O_EXCL|O_NOFOLLOW), initialises every region, sets state READY and
 * only then moves it into place with renameat2(RENAME_NOREPLACE).  So an
 * attacher never sees a half-made arena, and when two processes create at
 * once exactly one rename wins; the loser discards its copy and attaches.  A
 * creator that dies leaves only its temporary file, which the next creator
 * removes if its pid is dead.  Every check names what it expected and what it
 * found.
 */
#include "shm/arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "shm/err.h"
#include "shm/registry.h"

#define ATTACH_RETRIES_MAX 8

/* Internal outcomes of one attach or create attempt (not Keel codes). */
enum { TRY_NOENT = -1000, TRY_AGAIN = -1001, TRY_EXIST = -1002 };

uint64_t shm_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t shm_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t layout_sig(uint64_t extra)
{
	uint64_t v[] = { 64 /* cache line */, sizeof(pthread_mutex_t), sizeof(shm_lock_t),
			 sizeof(struct shm_hdr), sizeof(struct shm_proc), sizeof(struct shm_reader),
			 SHM_PAGE_BYTES, SHM_PROCS_MAX, SHM_READERS_MAX, sizeof(void *), extra };
	return XXH3_64bits(v, sizeof(v));
}

int shm_arena_default_path(const char *dir, char *buf, size_t cap)
{
	struct stat st;

	if (stat(dir, &st) != 0)
		return shm_err(KEEL_E_NOTFOUND, "store directory %s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return shm_err(KEEL_E_INVAL, "store path %s is not a directory", dir);
	if ((size_t)snprintf(buf, cap, "/dev/shm/keel-%llx-%llx", (unsigned long long)st.st_dev,
			     (unsigned long long)st.st_ino) >= cap)
		return shm_err(KEEL_E_INVAL, "arena path buffer too small");
	return 0;
}

static int pidns_id(uint64_t *dev, uint64_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/pid", &st) != 0) {
		*dev = *ino = 0;   /* no /proc: namespaces cannot be told apart */
		return 0;
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* The regions' places, which follow from user_bytes and ring_bytes alone:
 * where create_arena puts them, and where attach requires them. */
static void layout_of(uint64_t user_bytes, uint64_t ring_bytes, shm_arena_t *a)
{
	a->procs_off = SHM_PAGE_BYTES;
	a->readers_off = a->procs_off + round_up(SHM_PROCS_MAX * sizeof(struct shm_proc), 4096);
	a->user_off = a->readers_off + round_up(SHM_READERS_MAX * sizeof(struct shm_reader), 4096);
	a->ring_off = round_up(a->user_off + user_bytes, SHM_PAGE_BYTES);
	a->ring_bytes = round_up(ring_bytes, SHM_PAGE_BYTES);
	a->heap_off = a->ring_off + a->ring_bytes;
}

static int map_arena(shm_arena_t *a, uint64_t map_bytes)
{
	void *p = mmap(NULL, map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, a->fd, 0);
	if (p == MAP_FAILED)
		return shm_err(KEEL_E_OS, "mmap of arena %s (%llu bytes): %s", a->path,
			       (unsigned long long)map_bytes, strerror(errno));
	a->base = p;
	a->hdr = p;
	a->map_bytes = map_bytes;
	return 0;
}

static int create_arena(const char *path, const struct shm_create_opts *o, shm_arena_t *a)
{
	char tmp[300];
	layout_of(o->user_bytes, o->ring_bytes, a);
	uint64_t heap_off = a->heap_off;
	uint64_t initial = heap_off + SHM_PAGE_BYTES * 16;
	struct shm_hdr *h;
	int rc;

	if (initial > o->arena_bytes_max)
		return shm_err(KEEL_E_INVAL,
			       "arena_bytes_max %llu is below the %llu bytes of fixed regions (ring %llu)",
			       (unsigned long long)o->arena_bytes_max, (unsigned long long)initial,
			       (unsigned long long)o->ring_bytes);
	snprintf(tmp, sizeof(tmp), "%s.new.%d", path, (int)getpid());
	unlink(tmp);   /* our own leftover from an earlier life of this pid */
	a->fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, o->file_mode);
	if (a->fd < 0)
		return shm_err(errno == EACCES ? KEEL_E_PERM : KEEL_E_OS, "arena %s: create: %s",
			       tmp, strerror(errno));
	if (fchmod(a->fd, o->file_mode) != 0) {
		rc = shm_err(KEEL_E_OS, "arena %s: %s", path, strerror(errno));
		goto fail;
	}
	rc = posix_fallocate(a->fd, 0, (off_t)initial);
	if (rc != 0) {
		rc = shm_err(rc == ENOSPC ? KEEL_E_FULL : KEEL_E_OS,
			     "arena %s: cannot allocate %llu bytes: %s (is /dev/shm full?)", path,
			     (unsigned long long)initial, strerror(rc));
		goto fail;
	}
	if ((rc = map_arena(a, o->arena_bytes_max)))
		goto fail;
	h = a->hdr;
	h->format_version = SHM_FORMAT_VERSION;
	h->hdr_bytes = sizeof(*h);
	h->layout_sig = layout_sig(o->layout_sig_extra);
	for (int i = 0; i < 2; i++) {
		uint64_t r = XXH3_64bits_withSeed(path, strlen(path), shm_now_ns() ^ (uint64_t)getpid() ^ (uint64_t)i);
		memcpy(h->uuid + 8 * i, &r, 8);
	}
	pidns_id(&h->pidns_dev, &h->pidns_ino);
	h->file_mode = o->file_mode;
	h->arena_bytes = initial;
	h->arena_bytes_max = o->arena_bytes_max;
	h->procs_off = a->procs_off;
	h->readers_off = a->readers_off;
	h->user_off = a->user_off;
	h->user_bytes = o->user_bytes;
	h->ring_off = a->ring_off;
	h->ring_bytes = a->ring_bytes;
	h->heap_off = heap_off;
	h->created_ns = shm_now_ns();
	if ((rc = shm_lock_init(&h->galloc_lock)))
		goto fail;
	h->galloc.bump = heap_off;
	a->seen_bytes = initial;
	if (o->init_root && (rc = o->init_root(a, o->ctx)))
		goto fail;
	/* R1: the magic and READY state are published last; pairs with A1 in
	 * validate_hdr(), which reads them before trusting anything else. */
	__atomic_store_n(&h->magic, SHM_MAGIC, __ATOMIC_RELEASE);
	__atomic_store_n(&h->state, SHM_STATE_READY, __ATOMIC_RELEASE);
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) != 0) {
		rc = errno == EEXIST ? TRY_EXIST
				     : shm_err(KEEL_E_OS, "arena %s: cannot move into place: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	if (a->base)
		munmap(a->base, a->map_bytes);
	a->base = NULL;
	unlink(tmp);
	close(a->fd);
	a->fd = -1;
	return rc;
}

static int validate_file(const char *path, int fd, const struct shm_create_opts *o,
			 struct stat *st)
{
	if (fstat(fd, st) != 0)
		return shm_err(KEEL_E_OS, "arena %s: fstat: %s", path, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return shm_err(KEEL_E_ATTACH, "arena %s is not a regular file (mode %o); remove it",
			       path, st->st_mode & S_IFMT);
	if (st->st_nlink != 1)
		return shm_err(KEEL_E_ATTACH, "arena %s has %lu links, expected 1; refusing a hard-linked arena",
			       path, (unsigned long)st->st_nlink);
	if (st->st_uid != geteuid())
		return shm_err(KEEL_E_PERM, "arena %s is owned by uid %u, expected %u (this process)",
			       path, st->st_uid, geteuid());
	if ((st->st_mode & 0777) != (o->file_mode & 0777))
		return shm_err(KEEL_E_PERM, "arena %s has mode %03o, expected %03o; fix with chmod %03o or set file_mode",
			       path, st->st_mode & 0777, o->file_mode & 0777, o->file_mode & 0777);
	if ((uint64_t)st->st_size < sizeof(struct shm_hdr))
		return shm_err(KEEL_E_ATTACH, "arena %s is %lld bytes, smaller than its %zu-byte header (truncated)",
			       path, (long long)st->st_size, sizeof(struct shm_hdr));
	return 0;
}

static int validate_hdr(const char *path, const struct shm_hdr *h, const struct stat *st,
			const struct shm_create_opts *o)
{
	uint64_t dev, ino;
	uint64_t size = (uint64_t)st->st_size;

	/* A1: pairs with R1 in create_arena(). */
	if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != SHM_MAGIC)
		return shm_err(KEEL_E_ATTACH, "arena %s: bad magic %016llx, expected %016llx; not a Keel arena",
			       path, (unsigned long long)h->magic, (unsigned long long)SHM_MAGIC);
	if (h->format_version != SHM_FORMAT_VERSION)
		return shm_err(KEEL_E_LAYOUT, "arena %s: format version %u, this build reads %u",
			       path, h->format_version, SHM_FORMAT_VERSION);
	if (h->hdr_bytes != sizeof(struct shm_hdr) || h->layout_sig != layout_sig(o->layout_sig_extra))
		return shm_err(KEEL_E_LAYOUT, "arena %s: layout signature %016llx (header %u bytes), this build has %016llx (%zu); made by an incompatible build",
			       path, (unsigned long long)h->layout_sig, h->hdr_bytes,
			       (unsigned long long)layout_sig(o->layout_sig_extra), sizeof(struct shm_hdr));
	pidns_id(&dev, &ino);
	if (h->pidns_ino != ino || h->pidns_dev != dev)
		return shm_err(KEEL_E_NAMESPACE, "arena %s serves PID namespace %llu:%llu, this process is in %llu:%llu",
			       path, (unsigned long long)h->pidns_dev, (unsigned long long)h->pidns_ino,
			       (unsigned long long)dev, (unsigned long long)ino);
	if (h->arena_bytes_max < SHM_ARENA_BYTES_MIN || h->arena_bytes_max > SHM_ARENA_BYTES_MAX ||
	    h->arena_bytes > h->arena_bytes_max || h->arena_bytes > size ||
	    h->arena_bytes % SHM_PAGE_BYTES)
		return shm_err(KEEL_E_ATTACH, "arena %s: size %llu (max %llu) does not fit the file of %llu bytes",
			       path, (unsigned long long)h->arena_bytes, (unsigned long long)h->arena_bytes_max,
			       (unsigned long long)size);
	/* Each region must be exactly where create_arena would put it (no
	 * sum of header fields is trusted: one can wrap around). */
	shm_arena_t l;
	layout_of(o->user_bytes, h->ring_bytes, &l);
	if (h->procs_off != l.procs_off || h->readers_off != l.readers_off ||
	    h->user_off != l.user_off || h->user_bytes != o->user_bytes || h->ring_off != l.ring_off ||
	    h->ring_bytes < SHM_RING_BYTES_MIN / 2 || h->ring_bytes > SHM_RING_BYTES_MAX ||
	    h->ring_bytes != l.ring_bytes || h->heap_off != l.heap_off || h->heap_off > h->arena_bytes)
		return shm_err(KEEL_E_ATTACH, "arena %s: region offsets out of order or out of bounds (procs %llu readers %llu user %llu ring %llu heap %llu)",
			       path, (unsigned long long)h->procs_off, (unsigned long long)h->readers_off,
			       (unsigned long long)h->user_off, (unsigned long long)h->ring_off,
			       (unsigned long long)h->heap_off);
	if (h->procs_hi > SHM_PROCS_MAX || h->readers_hi > SHM_READERS_MAX)
		return shm_err(KEEL_E_CORRUPT, "arena %s: slot counts %u processes / %u readers exceed %u / %u",
			       path, h->procs_hi, h->readers_hi, SHM_PROCS_MAX, SHM_READERS_MAX);
	if (h->galloc.bump < h->heap_off || h->galloc.bump > h->arena_bytes || h->galloc.bump % SHM_PAGE_BYTES)
		return shm_err(KEEL_E_CORRUPT, "arena %s: allocator top %llu outside the heap [%llu, %llu]",
			       path, (unsigned long long)h->galloc.bump, (unsigned long long)h->heap_off,
			       (unsigned long long)h->arena_bytes);
	return 0;
}

static int attach_existing(const char *path, const struct shm_create_opts *o, shm_arena_t *a)
{
	struct stat st;
	struct shm_hdr h;
	ssize_t n;
	int rc;

	a->fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (a->fd < 0) {
		if (errno == ELOOP)
			return shm_err(KEEL_E_ATTACH, "arena %s is a symbolic link; refusing to follow it", path);
		if (errno == ENOENT)
			return TRY_NOENT;
		if (errno == EACCES)
			return shm_err(KEEL_E_PERM, "arena %s: %s", path, strerror(errno));
		return shm_err(KEEL_E_ATTACH, "arena %s: open: %s", path, strerror(errno));
	}
	if ((rc = validate_file(path, a->fd, o, &st)))
		goto fail;
	n = pread(a->fd, &h, sizeof(h), 0);
	if (n != (ssize_t)sizeof(h)) {
		rc = shm_err(KEEL_E_ATTACH, "arena %s: short header read (%zd bytes)", path, n);
		goto fail;
	}
	if ((rc = validate_hdr(path, &h, &st, o)))
		goto fail;
	if (h.state != SHM_STATE_READY) {
		rc = shm_err(KEEL_E_ATTACH, "arena %s: state %08x, expected READY", path, h.state);
		goto fail;
	}
	if ((rc = map_arena(a, h.arena_bytes_max)))
		goto fail;
	a->seen_bytes = h.arena_bytes;
	layout_of(o->user_bytes, h.ring_bytes, a);   /* as validated: the header is not read again */
	return 0;
fail:
	close(a->fd);
	a->fd = -1;
	return rc;
}

int shm_arena_open(const char *path, const struct shm_create_opts *o, shm_arena_t *a,
		   int *created)
{
	int rc = TRY_NOENT;

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	*created = 0;
	if (strlen(path) >= sizeof(a->path))
		return shm_err(KEEL_E_INVAL, "arena path too long: %s", path);
	snprintf(a->path, sizeof(a->path), "%s", path);
	for (int i = 0; i < ATTACH_RETRIES_MAX; i++) {
		rc = attach_existing(path, o, a);
		if (rc != TRY_NOENT)
			break;
		if (!o->create)
			return shm_err(KEEL_E_NOTFOUND, "arena %s does not exist", path);
		rc = create_arena(path, o, a);
		if (rc == TRY_EXIST)
			continue;   /* another process created it first: attach */
		if (rc == 0)
			*created = 1;
		break;
	}
	if (rc <= TRY_NOENT)
		rc = shm_err(KEEL_E_ATTACH, "arena %s: could not create or attach after %d attempts",
			     path, ATTACH_RETRIES_MAX);
	if (rc == 0) {
		struct stat st;
		if (fstat(a->fd, &st) == 0) {
			a->dev = st.st_dev;
			a->ino = st.st_ino;
		}
	}
	return rc;
}

void shm_arena_close(shm_arena_t *a)
{
	if (a->base)
		munmap(a->base, a->map_bytes);
	if (a->fd >= 0)
		close(a->fd);
	a->base = NULL;
	a->hdr = NULL;
	a->fd = -1;
}

/* One growth step from an arena of cur bytes: a quarter of it, within
 * [GROW_MIN, GROW_MAX].  The cap bounds the stall: the grower holds the
 * allocator lock while the file system allocates and zeroes the new pages,
 * and every allocating process waits.  Uncapped, a 1 GB arena grew by
 * 256 MB at a time and sync commits stalled 14-22 ms at each step; a 32 MB
 * step takes 3-12 ms (shm_arena_grow_ahead takes it off the path). */
static uint64_t grow_step(uint64_t cur)
{
	uint64_t step = cur / 4;
	if (step < SHM_GROW_BYTES_MIN)
		step = SHM_GROW_BYTES_MIN;
	if (step > SHM_GROW_BYTES_MAX)
		step = SHM_GROW_BYTES_MAX;
	return step;
}

/*
 * For a background thread, now and then: once less than one growth step is
 * left above the allocator's top, allocate the next step's pages in the file
 * past its end (FALLOC_FL_KEEP_SIZE: the size, which attach checks, stays).
 * The grow that follows, a step later, finds the pages there and only sets
 * the size, instead of zeroing up to 32 MB while every allocating process
 * waits.  How far the pages reach is kept in the header (ahead_bytes), so
 * one process's thread prepares a step for every process of the store, and
 * whichever of them grows finds it done.  Racy reads are fine: this is only
 * ever early or late (two threads may both allocate the same step, which is
 * harmless), and the grow itself is as before.
 */
void shm_arena_grow_ahead(shm_arena_t *a)
{
	struct shm_hdr *h = a->hdr;
	uint64_t cur = __atomic_load_n(&h->arena_bytes, __ATOMIC_ACQUIRE);
	uint64_t top = __atomic_load_n(&h->galloc.bump, __ATOMIC_RELAXED);
	uint64_t max = h->arena_bytes_max / SHM_PAGE_BYTES * SHM_PAGE_BYTES;
	uint64_t want = round_up(cur + grow_step(cur), SHM_PAGE_BYTES);
	uint64_t ahead = __atomic_load_n(&h->ahead_bytes, __ATOMIC_ACQUIRE);

	if (want > max)
		want = max;
	if (top > cur || cur - top > grow_step(cur) || want <= cur || ahead >= want)
		return;
	if (fallocate(a->fd, FALLOC_FL_KEEP_SIZE, (off_t)cur, (off_t)(want - cur)) != 0)
		return;
	/* Raise, never lower: a slower thread may have prepared less. */
	while (ahead < want && !__atomic_compare_exchange_n(&h->ahead_bytes, &ahead, want, 0,
							    __ATOMIC_RELEASE, __ATOMIC_ACQUIRE))
		;
}

/* Are the file's pages allocated up to `want` already?  The header says
 * so, and the file's allocated blocks agree: the header is not trusted on
 * its own, since a size set over unallocated pages would fault them in
 * later, and on a full /dev/shm that is SIGBUS instead of KEEL_E_FULL. */
static int prepared(shm_arena_t *a, uint64_t want)
{
	struct stat sb;
	uint64_t ahead = __atomic_load_n(&a->hdr->ahead_bytes, __ATOMIC_ACQUIRE);

	return want <= ahead && ahead <= a->hdr->arena_bytes_max && fstat(a->fd, &sb) == 0 &&
	       (uint64_t)sb.st_blocks * 512 >= want;
}

int shm_arena_grow(shm_arena_t *a, uint64_t bytes)
{
	struct shm_hdr *h = a->hdr;
	uint64_t cur = h->arena_bytes;
	uint64_t want, step;
	int rc;

	if (bytes <= cur)
		return 0;
	if (bytes > h->arena_bytes_max)
		return shm_err(KEEL_E_FULL, "arena full: %llu bytes needed, maximum is %llu (arena_bytes_max); delete data or reopen with a larger maximum",
			       (unsigned long long)bytes, (unsigned long long)h->arena_bytes_max);
	step = grow_step(cur);
	want = round_up(bytes > cur + step ? bytes : cur + step, SHM_PAGE_BYTES);
	if (want > h->arena_bytes_max)
		want = h->arena_bytes_max / SHM_PAGE_BYTES * SHM_PAGE_BYTES;
	if (want < bytes)
		want = bytes;
	/* Pages that shm_arena_grow_ahead allocated need only the size set:
	 * fallocate walks every page of the range even when all are there
	 * (3-4 ms for 32 MB on tmpfs). */
	if (prepared(a, want)) {
		rc = ftruncate(a->fd, (off_t)want) == 0 ? 0 : errno;
		a->grows_prepared += rc == 0;
	} else
		rc = posix_fallocate(a->fd, (off_t)cur, (off_t)(want - cur));
	if (rc != 0)
		return shm_err(rc == ENOSPC ? KEEL_E_FULL : KEEL_E_OS,
			       "arena %s: cannot grow from %llu to %llu bytes: %s%s", a->path,
			       (unsigned long long)cur, (unsigned long long)want, strerror(rc),
			       rc == ENOSPC ? " (/dev/shm is full; free memory or lower arena_bytes_max)" : "");
	/* R2: the new size is published after the file is extended; pairs
	 * with the acquire load in shm_ptr(). */
	__atomic_store_n(&h->arena_bytes, want, __ATOMIC_RELEASE);
	a->seen_bytes = want;
	return 0;
}
