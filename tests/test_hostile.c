/*
 * test_hostile - attach refuses arenas that are not what they should be, and
 * damaged arenas never crash a process.
 *
 * Part 1, refusals.  A store is made, populated and closed; its arena file is
 * copied aside as a pristine image.  Each case then puts something hostile at
 * the arena path, opens the store in a forked child (both with and without
 * KEEL_OPEN_NOCREATE), and checks the code, that keel_errmsg() names the
 * problem, and that the hostile object is left as it was (a refused attach
 * must not "fix" a file it does not trust):
 *
 *   case              expected code        message mentions
 *   symlink           ATTACH (or PERM)     link
 *   hard link         ATTACH (or PERM)     link
 *   wrong owner       PERM                 owner / uid       (root only)
 *   mode 0644, 0666   PERM                 mode
 *   FIFO, directory   ATTACH               regular / type
 *   short file        ATTACH (or CORRUPT)  size / truncat / short / small
 *   half the file     ATTACH (or CORRUPT)  size / truncat / short / small
 *   magic             ATTACH (or LAYOUT)   magic
 *   format version    LAYOUT               version
 *   layout signature  LAYOUT               layout / signature
 *   header size       LAYOUT               layout / header
 *   ring_bytes ~2^64, user_off ~2^64, readers_off +2^40
 *                     ATTACH (or CORRUPT)  region / offset
 *   PID ns (header)   NAMESPACE            namespace
 *   PID ns (real)     NAMESPACE            namespace  (unshare(CLONE_NEWPID); root only)
 *
 * The header offsets come from struct shm_hdr in shm/arena.h.
 *
 * Part 2, fuzz.  Starting from the pristine image each time: flip 1-8 random
 * bits (in the header, in the store's tables, in the heap pages in use, or
 * anywhere), or truncate the file to a random length; then, in a forked child
 * under a 5 s alarm, open the store and, if that works, list partitions,
 * iterate and get every key, keel_check (plain and repairing) and keel_stat.
 * Any error code is acceptable; the child must exit normally - a signal
 * (SIGSEGV, SIGBUS, SIGABRT) or a hang (SIGALRM) is a failure.  Failures are
 * listed as they come and the fuzz goes on, up to 5 of them.  The seed
 * reproduces the damage; --iters sets the number of damaged images.
 *
 * Part 3, damage.  Hand-made damage that random flips rarely make, each
 * where an offset or a length read from the arena would reach past the
 * arena if trusted; a child opens the damaged store and writes (a child
 * killed by a signal fails the case):
 *   ring record      a partition's applying marker names a record at the
 *                    ring's last 64 bytes whose length runs 16 MiB past the
 *                    ring: the put that repairs the partition gets CORRUPT
 *   free run         the page free list starts with a run at the arena's
 *                    last page that claims 64 pages: a 1 MiB put cuts the
 *                    list and allocates at the top instead
 *   timer name       a timer partition's name length is 2^32-1: growing the
 *                    table of timer partitions rebuilds the index instead
 *                    of hashing 4 GiB
 *   timer count      a timer partition's heap count is 2^31: the next timer
 *                    set rebuilds the index instead of doubling a 32-bit
 *                    capacity forever
 *   retire cycle     a retired version whose retire link names itself:
 *                    keel_reclaim cuts the list instead of freeing it
 *                    forever
 *   slab class       a slab page's size class is 255: freeing a block of it
 *                    leaves the block alone instead of indexing past the
 *                    class table
 *   buckets          a partition's bucket table offset is 0: a put, and a
 *                    clear, get CORRUPT before anything is applied, instead
 *                    of an abort in the middle of applying
 *   clear            a live key's LSN is 2^64-1: keel_clear still gives
 *                    every live key its tombstone, in the order prepared
 *   version chain    a live key's LSN is 2^64-1 and its older version is
 *                    itself: a get ends at once instead of walking the
 *                    cycle to the arena's bound
 *   live header      the header's region fields and size are damaged
 *                    while a handle is open (ring_bytes 0, readers_off
 *                    2^40, heap_off 0, arena_bytes at its maximum): gets
 *                    and puts go on with the places validated at attach,
 *                    and keel_check reports the header
 *   lock word        a partition lock held by a thread id that does not
 *                    exist, its recorded holder a live process (init): a
 *                    put gets CORRUPT after about a second instead of
 *                    waiting forever
 * The region offsets in the header are checked among the refusals: each
 * must be where the arena's sizes put it, with no sum that can wrap.
 *
 * Usage: test_hostile [--seed S] [--iters N] [--only refusals|fuzz|damage]
 */
#include <sched.h>
#include <stddef.h>

#include "common/t.h"
#include "lib/internal.h"
#include "shm/alloc.h"
#include "shm/arena.h"

static t_store_t st;
static char arena[PATH_MAX];   /* the arena path of the store */
static char pristine[PATH_MAX + 32]; /* the clean image */
static off_t pristine_size;
static unsigned n_skipped;

#define FUZZ_ALARM_S 5        /* a damaged-arena reader taking longer has hung */
#define FUZZ_FAILURES_MAX 5   /* stop the fuzz after this many crashes or hangs */

/* ---- files ------------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	CHECK_MSG(in >= 0, "open %s: %s", from, strerror(errno));
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	CHECK_MSG(out >= 0, "create %s: %s", to, strerror(errno));
	CHECK(fchmod(out, mode) == 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		CHECK_MSG(write(out, buf, (size_t)n) == n, "write %s: %s", to, strerror(errno));
	CHECK_MSG(n == 0, "read %s: %s", from, strerror(errno));
	close(in);
	CHECK(close(out) == 0);
}

/* Remove whatever is at path (file, link, FIFO or directory). */
static void remove_any(const char *path)
{
	struct stat sb;

	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode))
		t_rm_rf(path);
	else
		CHECK_MSG(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
}

/* Put the pristine image back at the arena path. */
static void restore(void)
{
	remove_any(arena);
	copy_file(pristine, arena, 0600);
}

static void patch(off_t off, const void *bytes, size_t n)
{
	int fd = open(arena, O_WRONLY | O_CLOEXEC);

	CHECK_MSG(fd >= 0, "open %s: %s", arena, strerror(errno));
	CHECK(pwrite(fd, bytes, n, off) == (ssize_t)n);
	close(fd);
}

static void read_at(off_t off, void *bytes, size_t n)
{
	int fd = open(arena, O_RDONLY | O_CLOEXEC);

	CHECK_MSG(fd >= 0, "open %s: %s", arena, strerror(errno));
	CHECK(pread(fd, bytes, n, off) == (ssize_t)n);
	close(fd);
}

/* Digest of a file's bytes (FNV-1a), to see that a refused open left it alone. */
static uint64_t digest(const char *path)
{
	unsigned char buf[1 << 16];
	uint64_t h = 0xcbf29ce484222325ull;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	close(fd);
	return h;
}

/* At exit: remove whatever a failed case left at the arena path (a FIFO, a
 * directory, a link) and the extra hard link; the store's own cleanup then
 * finds nothing left to do in /dev/shm. */
static void remove_leftovers(void)
{
	char other[PATH_MAX + 32];
	struct stat sb;

	if (getpid() != t_owner_pid || !arena[0])
		return;
	snprintf(other, sizeof(other), "%s.hardlink", arena);
	unlink(other);
	if (lstat(arena, &sb) == 0) {
		if (S_ISDIR(sb.st_mode))
			rmdir(arena);
		else
			unlink(arena);
	}
}

/* ---- an open in a child ---------------------------------------------------------------- */

struct outcome {
	int rc;
	int sig;           /* the child's terminating signal, 0 if it exited */
	int exit_code;
	char msg[1024];
};

/* The parent's side of a child that writes its outcome to a pipe: read
 * it, reap the child, and fail if a signal killed it (`what` says what the
 * child did).  The read's byte count. */
static ssize_t child_outcome(int fds[2], pid_t pid, struct outcome *o, const char *what)
{
	int stv;
	ssize_t n;

	close(fds[1]);
	n = read(fds[0], o, sizeof(*o));
	close(fds[0]);
	t_waitpid(pid, &stv);
	if (WIFSIGNALED(stv))
		o->sig = WTERMSIG(stv);
	else
		o->exit_code = WEXITSTATUS(stv);
	CHECK_MSG(o->sig == 0, "%s crashed the child: signal %d (%s)", what, o->sig, strsignal(o->sig));
	return n;
}

/* Open the store in a child (optionally in a new PID namespace); report. */
static void open_in_child(int nocreate, int new_pidns, struct outcome *o)
{
	int fds[2];
	pid_t pid;
	ssize_t n;

	memset(o, 0, sizeof(*o));
	CHECK(pipe(fds) == 0);
	pid = t_fork();
	if (pid == 0) {
		struct outcome r = { 0 };
		keel_options_t opt = st.opt;
		keel_t *h = NULL;

		close(fds[0]);
		alarm(20);
		if (new_pidns) {
			/* The namespace applies to children: open in a grandchild. */
			pid_t g;
			int gst;

			if (unshare(CLONE_NEWPID) != 0) {
				r.rc = 1000 + errno;
				CHECK(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r));
				_exit(0);
			}
			g = fork();
			if (g < 0)
				_exit(2);
			if (g > 0) {
				while (waitpid(g, &gst, 0) < 0 && errno == EINTR)
					;
				_exit(WIFEXITED(gst) ? WEXITSTATUS(gst) : 128 + WTERMSIG(gst));
			}
		}
		if (nocreate)
			opt.flags |= KEEL_OPEN_NOCREATE;
		r.rc = keel_open(st.dir, &opt, &h);
		snprintf(r.msg, sizeof(r.msg), "%s", keel_errmsg());
		if (r.rc == 0)
			keel_close(h);
		CHECK(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r));
		_exit(0);
	}
	n = child_outcome(fds, pid, o, "opening the store");
	CHECK_MSG(n == (ssize_t)sizeof(*o) && o->exit_code == 0,
		  "the opening child exited with %d without a report", o->exit_code);
}

/*
 * Expect the open to be refused with want (or alt), with a message naming
 * the problem (one of words).  Checked with and without NOCREATE.
 */
static void expect_refused(const char *what, int want, int alt, const char *const *words)
{
	for (int nocreate = 0; nocreate < 2; nocreate++) {
		struct outcome o;

		open_in_child(nocreate, 0, &o);
		CHECK_MSG(o.rc == want || o.rc == alt,
			  "%s%s: open returned %d (%s), expected %s; errmsg: %s", what,
			  nocreate ? " (NOCREATE)" : "", o.rc, keel_strerror(o.rc),
			  keel_strerror(want), o.msg);
		CHECK_MSG(o.msg[0], "%s: refused with %s but keel_errmsg() is empty", what,
			  keel_strerror(o.rc));
		CHECK_MSG(t_mentions(o.msg, words), "%s: the message does not name the problem "
			  "(expected a mention of '%s'): %s", what, words[0], o.msg);
		if (!nocreate)
			printf("test_hostile: %-18s refused: %s\n", what, o.msg);
	}
}

/* ---- part 1: refusals ---------------------------------------------------------------------- */

static void make_store(void)
{
	t_store_init(&st);
	st.opt.ring_bytes = 1u << 20;
	st.opt.arena_bytes_max = 64ull << 20;
	t_store_open(&st);
	for (unsigned p = 0; p < 6; p++) {
		char part[16];

		snprintf(part, sizeof(part), "part%u", p);
		for (unsigned i = 0; i < 300; i++) {
			char k[24], v[64];
			size_t vl = 1 + (i * 7 + p) % sizeof(v);

			snprintf(k, sizeof(k), "key-%u-%u", p, i);
			memset(v, 'a' + (int)(i % 26), vl);
			CHECK_OK(keel_put(st.h, part, k, strlen(k), v, vl, NULL));
		}
		for (unsigned i = 0; i < 300; i += 3) {
			char k[24];

			snprintf(k, sizeof(k), "key-%u-%u", p, i);
			CHECK_OK(keel_del(st.h, part, k, strlen(k), NULL));
		}
	}
	/* Timers too, one of them claimed: their index lives in the arena. */
	for (unsigned i = 0; i < 60; i++) {
		char k[24];

		snprintf(k, sizeof(k), "timer-%u", i);
		CHECK_OK(keel_timer_set(st.h, i % 2 ? "part0" : "part1", k, strlen(k),
					keel_now_ms() + (i % 3 ? 3600000 : 0) - i, "payload", 1 + i % 7));
	}
	{
		keel_claim_t c;

		CHECK_OK(keel_timer_claim(st.h, NULL, 0, 600000, 0, &c, NULL, 0));
	}
	t_store_close(&st);
	CHECK_OK(keel_arena_path(st.dir, &st.opt, arena, sizeof(arena)));
	snprintf(pristine, sizeof(pristine), "%s/pristine", st.dir);
	copy_file(arena, pristine, 0600);
	{
		struct stat sb;

		CHECK(stat(pristine, &sb) == 0);
		pristine_size = sb.st_size;
	}
	/* The pristine image opens. */
	{
		struct outcome o;

		open_in_child(1, 0, &o);
		CHECK_MSG(o.rc == 0, "the pristine arena does not open: %d (%s) %s", o.rc,
			  keel_strerror(o.rc), o.msg);
	}
	printf("test_hostile: arena %s, %lld bytes\n", arena, (long long)pristine_size);
}

static void refusals(void)
{
	static const char *const w_link[] = { "link", NULL };
	static const char *const w_owner[] = { "owner", "uid", NULL };
	static const char *const w_mode[] = { "mode", NULL };
	static const char *const w_type[] = { "regular", "type", "fifo", "directory", NULL };
	static const char *const w_size[] = { "size", "truncat", "short", "small", "bytes", NULL };
	static const char *const w_magic[] = { "magic", NULL };
	static const char *const w_version[] = { "version", NULL };
	static const char *const w_layout[] = { "layout", "signature", "header", NULL };
	static const char *const w_ns[] = { "namespace", NULL };
	char other[PATH_MAX + 32];
	struct stat sb;
	uint64_t d;

	/* A symlink to a good copy. */
	snprintf(other, sizeof(other), "%s/target", st.dir);
	copy_file(pristine, other, 0600);
	remove_any(arena);
	CHECK(symlink(other, arena) == 0);
	d = digest(other);
	expect_refused("symlink", KEEL_E_ATTACH, KEEL_E_PERM, w_link);
	CHECK_MSG(lstat(arena, &sb) == 0 && S_ISLNK(sb.st_mode), "the symlink was replaced");
	CHECK_MSG(digest(other) == d, "the symlink's target was modified");
	remove_any(other);
	restore();

	/* A second hard link to the arena (on the same file system). */
	snprintf(other, sizeof(other), "%s.hardlink", arena);
	CHECK_MSG(link(arena, other) == 0, "link %s: %s", other, strerror(errno));
	expect_refused("hard link", KEEL_E_ATTACH, KEEL_E_PERM, w_link);
	remove_any(other);
	restore();

	/* Another owner. */
	if (geteuid() == 0) {
		CHECK(chown(arena, 65534, 65534) == 0);
		d = digest(arena);
		expect_refused("wrong owner", KEEL_E_PERM, KEEL_E_PERM, w_owner);
		CHECK(lstat(arena, &sb) == 0 && sb.st_uid == 65534);
		CHECK_MSG(digest(arena) == d, "a refused arena was modified");
	} else {
		printf("test_hostile: SKIP wrong owner (needs root)\n");
		n_skipped++;
	}
	restore();

	/* Loose modes. */
	CHECK(chmod(arena, 0644) == 0);
	expect_refused("mode 0644", KEEL_E_PERM, KEEL_E_PERM, w_mode);
	CHECK(lstat(arena, &sb) == 0 && (sb.st_mode & 0777) == 0644);
	CHECK(chmod(arena, 0666) == 0);
	expect_refused("mode 0666", KEEL_E_PERM, KEEL_E_PERM, w_mode);
	restore();

	/* Not a regular file. */
	remove_any(arena);
	CHECK(mkfifo(arena, 0600) == 0);
	expect_refused("FIFO", KEEL_E_ATTACH, KEEL_E_ATTACH, w_type);
	CHECK_MSG(lstat(arena, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO was replaced");
	remove_any(arena);
	CHECK(mkdir(arena, 0700) == 0);
	expect_refused("directory", KEEL_E_ATTACH, KEEL_E_ATTACH, w_type);
	CHECK_MSG(lstat(arena, &sb) == 0 && S_ISDIR(sb.st_mode), "the directory was replaced");
	restore();

	/* Wrong sizes: shorter than the header, and half the file. */
	CHECK(truncate(arena, (off_t)sizeof(struct shm_hdr) / 2) == 0);
	expect_refused("short file", KEEL_E_ATTACH, KEEL_E_CORRUPT, w_size);
	CHECK(lstat(arena, &sb) == 0 && sb.st_size == (off_t)sizeof(struct shm_hdr) / 2);
	restore();
	CHECK(truncate(arena, pristine_size / 2) == 0);
	expect_refused("half the file", KEEL_E_ATTACH, KEEL_E_CORRUPT, w_size);
	restore();

	/* Header fields, at their offsets in struct shm_hdr. */
	{
		uint64_t magic;

		read_at(offsetof(struct shm_hdr, magic), &magic, sizeof(magic));
		CHECK_EQ_U64(magic, SHM_MAGIC);
		magic ^= 0x0000000000ff0000ull;
		patch(offsetof(struct shm_hdr, magic), &magic, sizeof(magic));
		d = digest(arena);
		expect_refused("magic", KEEL_E_ATTACH, KEEL_E_LAYOUT, w_magic);
		CHECK_MSG(digest(arena) == d, "an arena with a bad magic was modified");
		restore();
	}
	{
		uint32_t v;

		read_at(offsetof(struct shm_hdr, format_version), &v, sizeof(v));
		CHECK_EQ_U64(v, SHM_FORMAT_VERSION);
		v++;
		patch(offsetof(struct shm_hdr, format_version), &v, sizeof(v));
		expect_refused("format version", KEEL_E_LAYOUT, KEEL_E_LAYOUT, w_version);
		restore();
	}
	{
		uint64_t sig;

		read_at(offsetof(struct shm_hdr, layout_sig), &sig, sizeof(sig));
		sig ^= 1u << 9;
		patch(offsetof(struct shm_hdr, layout_sig), &sig, sizeof(sig));
		expect_refused("layout signature", KEEL_E_LAYOUT, KEEL_E_LAYOUT, w_layout);
		restore();
	}
	{
		uint32_t hb;

		read_at(offsetof(struct shm_hdr, hdr_bytes), &hb, sizeof(hb));
		CHECK_EQ_U64(hb, sizeof(struct shm_hdr));
		hb += 64;
		patch(offsetof(struct shm_hdr, hdr_bytes), &hb, sizeof(hb));
		expect_refused("header size", KEEL_E_LAYOUT, KEEL_E_LAYOUT, w_layout);
		restore();
	}
	/* Region offsets whose sums wrap around 2^64: each alone would pass a
	 * check of the regions' order made with sums. */
	{
		static const char *const w_region[] = { "region", "offset", NULL };
		uint64_t v = 0 - (uint64_t)SHM_PAGE_BYTES;

		patch(offsetof(struct shm_hdr, ring_bytes), &v, sizeof(v));
		expect_refused("ring_bytes ~2^64", KEEL_E_ATTACH, KEEL_E_CORRUPT, w_region);
		restore();
		v = 0 - (uint64_t)4096;
		patch(offsetof(struct shm_hdr, user_off), &v, sizeof(v));
		expect_refused("user_off ~2^64", KEEL_E_ATTACH, KEEL_E_CORRUPT, w_region);
		restore();
		read_at(offsetof(struct shm_hdr, readers_off), &v, sizeof(v));
		v += 1ull << 40;
		patch(offsetof(struct shm_hdr, readers_off), &v, sizeof(v));
		expect_refused("readers_off +2^40", KEEL_E_ATTACH, KEEL_E_CORRUPT, w_region);
		restore();
	}
	{
		uint64_t ino;

		read_at(offsetof(struct shm_hdr, pidns_ino), &ino, sizeof(ino));
		ino ^= 0x5a5a;
		patch(offsetof(struct shm_hdr, pidns_ino), &ino, sizeof(ino));
		expect_refused("PID ns (header)", KEEL_E_NAMESPACE, KEEL_E_NAMESPACE, w_ns);
		restore();
	}

	/* A process that really lives in another PID namespace. */
	{
		struct outcome o;

		open_in_child(1, 1, &o);
		if (o.rc >= 1000) {
			printf("test_hostile: SKIP foreign PID namespace: unshare(CLONE_NEWPID): %s\n",
			       strerror(o.rc - 1000));
			n_skipped++;
		} else {
			CHECK_MSG(o.rc == KEEL_E_NAMESPACE,
				  "open from another PID namespace returned %d (%s), expected "
				  "KEEL_E_NAMESPACE; errmsg: %s", o.rc, keel_strerror(o.rc), o.msg);
			CHECK_MSG(t_mentions(o.msg, w_ns), "namespace refusal does not say so: %s",
				  o.msg);
			printf("test_hostile: %-18s refused: %s\n", "PID ns (real)", o.msg);
		}
	}

	/* A lock whose mutex kind was overwritten (here: priority-protect with
	 * a ceiling out of range, which glibc asserts on): an error, no abort. */
	{
		off_t lk = (off_t)offsetof(struct shm_hdr, root) + (off_t)offsetof(struct keel_root, dir_lock);
		int kind = 64 | 128;              /* PRIO_PROTECT_NP | PSHARED */
		unsigned lockword = 0xfff80000u;  /* the ceiling bits, all set */
		int fds[2];
		struct outcome o = { 0 };

		patch(lk + (off_t)offsetof(pthread_mutex_t, __data.__kind), &kind, sizeof(kind));
		patch(lk + (off_t)offsetof(pthread_mutex_t, __data.__lock), &lockword, sizeof(lockword));
		CHECK(pipe(fds) == 0);
		pid_t pid = t_fork();
		if (pid == 0) {
			keel_options_t opt = st.opt;
			keel_t *h = NULL;

			close(fds[0]);
			alarm(20);
			opt.flags |= KEEL_OPEN_NOCREATE;
			o.rc = keel_open(st.dir, &opt, &h);
			if (o.rc == 0)
				o.rc = keel_put(h, "a-new-partition", "k", 1, "v", 1, NULL);
			snprintf(o.msg, sizeof(o.msg), "%s", keel_errmsg());
			CHECK(write(fds[1], &o, sizeof(o)) == (ssize_t)sizeof(o));
			_exit(0);
		}
		ssize_t n = child_outcome(fds, pid, &o, "a damaged lock kind");
		CHECK_MSG(n == (ssize_t)sizeof(o), "the child exited without a report");
		CHECK_MSG(o.rc == KEEL_E_CORRUPT, "a damaged lock kind gave %d (%s), expected "
			  "KEEL_E_CORRUPT: %s", o.rc, keel_strerror(o.rc), o.msg);
		printf("test_hostile: %-18s refused: %s\n", "damaged lock kind", o.msg);
		restore();
	}

	/* After all that, the pristine image still opens and reads. */
	{
		struct outcome o;

		open_in_child(0, 0, &o);
		CHECK_MSG(o.rc == 0, "restored arena does not open: %d (%s) %s", o.rc,
			  keel_strerror(o.rc), o.msg);
	}
}

/* ---- part 2: fuzz ----------------------------------------------------------------------------- */

struct walk_ctx {
	keel_t *h;
	unsigned parts;
	char names[64][KEEL_PARTITION_NAME_MAX + 1];
};

static int count_timer(void *ctx, const keel_timer_info_t *t)
{
	(*(unsigned *)ctx) += t->klen > 0;
	return 0;
}

static int collect_part(void *ctx, const char *name, uint64_t keys)
{
	struct walk_ctx *c = ctx;

	(void)keys;
	if (c->parts < 64)
		snprintf(c->names[c->parts++], sizeof(c->names[0]), "%s", name);
	return c->parts >= 64;
}

static void ignore_report(void *ctx, const char *where, const char *what)
{
	(*(unsigned *)ctx)++;
}

/* In the child: open and read everything.  Returns a small code for stats:
 * 0 clean, 1 open refused, 2 read error, 3 check reported damage. */
static int damaged_child(void)
{
	keel_t *h = NULL;
	struct walk_ctx wc;
	keel_stat_t s;
	unsigned reports = 0;
	int rc, result = 0;

	rc = keel_open(st.dir, &st.opt, &h);
	if (rc)
		return 1;
	memset(&wc, 0, sizeof(wc));
	wc.h = h;
	if (keel_stat(h, &s) != 0)
		result = 2;
	if (keel_partitions(h, collect_part, &wc) != 0)
		result = 2;
	for (unsigned p = 0; p < wc.parts; p++) {
		keel_iter_t *it = NULL;
		const void *k, *v;
		size_t kl, vl;
		unsigned n = 0;
		uint64_t cnt;

		(void)keel_count(h, wc.names[p], &cnt);
		if (keel_iter_open(h, wc.names[p], NULL, 0, &it) != 0) {
			result = 2;
			continue;
		}
		while (n++ < 100000 && (rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1) {
			unsigned char key[KEEL_KEY_MAX], buf[256] = { 0 };
			size_t len = 0;
			void *av = NULL;

			if (kl > sizeof(key) || (kl && !k) || (vl && !v)) {
				result = 2;
				break;
			}
			memcpy(key, k, kl);
			/* touch every value byte */
			for (size_t i = 0; i < vl; i++)
				buf[i % sizeof(buf)] ^= ((const unsigned char *)v)[i];
			if (keel_get(h, wc.names[p], key, kl, buf, sizeof(buf), &len, NULL) != 0)
				result = 2;
			if (keel_get_alloc(h, wc.names[p], key, kl, &av, &len, NULL) == 0)
				free(av);
		}
		if (rc < 0)
			result = 2;
		keel_iter_close(it);
	}
	{   /* the timers: list, look, claim and hand back */
		keel_timer_stat_t ts;
		keel_claim_t c;
		char pl[16];
		unsigned nt = 0;

		(void)keel_timer_stat(h, &ts);
		(void)keel_timers(h, NULL, KEEL_TIMER_ALL, count_timer, &nt);
		(void)keel_timer_get(h, "part0", "timer-1", 7, NULL, pl, sizeof(pl));
		if (keel_timer_claim(h, NULL, 0, 1000, 0, &c, pl, sizeof(pl)) == 0)
			(void)keel_timer_release(h, &c, 0);
	}
	if (keel_check(h, 0, ignore_report, &reports) != 0 && !result)
		result = 3;
	if (keel_check(h, KEEL_CHECK_REPAIR, ignore_report, &reports) != 0 && !result)
		result = 3;
	keel_close(h);
	return result;
}

static void fuzz(unsigned iters)
{
	uint64_t rng = t_rand_stream(3), t0 = t_now_ns();
	unsigned outcomes[4] = { 0 }, truncs = 0, failures = 0, done = 0;
	struct shm_hdr hdr;
	struct {
		uint64_t user_off, user_bytes, heap_off, bump;
	} zones;

	/* Where the interesting bytes are, from the pristine header. */
	restore();
	read_at(0, &hdr, sizeof(hdr));
	zones.user_off = hdr.user_off;
	zones.user_bytes = hdr.user_bytes;
	zones.heap_off = hdr.heap_off;
	zones.bump = hdr.galloc.bump;

	for (unsigned it = 0; it < iters; it++) {
		int stv;
		pid_t pid;
		char desc[256];
		size_t dl = 0;
		char sb[96];

		restore();
		if (it % 5 == 4) {
			/* truncation to a random length, page-aligned half the time */
			off_t len = 1 + (off_t)t_rand_below(&rng, (uint64_t)pristine_size - 1);

			if (t_rand_below(&rng, 2))
				len &= ~(off_t)4095;
			if (len <= 0)
				len = 1;
			CHECK(truncate(arena, len) == 0);
			snprintf(desc, sizeof(desc), "truncated to %lld of %lld bytes", (long long)len,
				 (long long)pristine_size);
			truncs++;
		} else {
			unsigned nbits = 1 + (unsigned)t_rand_below(&rng, 8), zone = it % 4;
			uint64_t lo = 0, hi = (uint64_t)pristine_size;

			/* 0: the header; 1: the store's own tables (user area);
			 * 2: the heap pages in use; 3: anywhere */
			if (zone == 0) {
				hi = sizeof(struct shm_hdr);
			} else if (zone == 1) {
				lo = zones.user_off;
				hi = zones.user_off + zones.user_bytes;
			} else if (zone == 2) {
				lo = zones.heap_off;
				hi = zones.bump;
			}
			if (hi > (uint64_t)pristine_size)
				hi = (uint64_t)pristine_size;
			if (lo >= hi)
				lo = 0;
			dl = (size_t)snprintf(desc, sizeof(desc), "flipped bits (zone %u) at", zone);
			for (unsigned b = 0; b < nbits; b++) {
				off_t off = (off_t)(lo + t_rand_below(&rng, hi - lo));
				unsigned char byte;
				unsigned bit = (unsigned)t_rand_below(&rng, 8);

				read_at(off, &byte, 1);
				byte ^= (unsigned char)(1u << bit);
				patch(off, &byte, 1);
				if (dl < sizeof(desc) - 24)
					dl += (size_t)snprintf(desc + dl, sizeof(desc) - dl, " %lld.%u",
							       (long long)off, bit);
			}
		}
		pid = t_fork();
		if (pid == 0) {
			alarm(FUZZ_ALARM_S);
			_exit(damaged_child());
		}
		t_waitpid(pid, &stv);
		done++;
		if (WIFEXITED(stv) && WEXITSTATUS(stv) < 4) {
			outcomes[WEXITSTATUS(stv)]++;
			continue;
		}
		/* Keep going, to show more than the first case; stop after a few
		 * (a hang costs FUZZ_ALARM_S each). */
		fprintf(stderr, "test_hostile: damaged arena (iteration %u, %s): the reading "
			"process %s%s\n", it, desc, t_status_str(stv, sb, sizeof(sb)),
			WIFSIGNALED(stv) && WTERMSIG(stv) == SIGALRM ? " (hung)" : "");
		if (++failures >= FUZZ_FAILURES_MAX)
			break;
	}
	printf("test_hostile: fuzz: %u damaged images (%u truncated) in %.1f s: %u refused at "
	       "open, %u read errors, %u check reported damage, %u read clean, %u crashed or "
	       "hung\n", done, truncs, (double)(t_now_ns() - t0) / 1e9, outcomes[1], outcomes[2],
	       outcomes[3], outcomes[0], failures);
	CHECK_MSG(failures == 0, "%u damaged arenas crashed or hung a reader (listed above; each "
		  "iteration reproduces with this seed)", failures);
}

/* ---- part 3: damage ---------------------------------------------------------------------------- */

#define DAMAGE_TIMER_PARTS 7   /* one below the growth of the table of timer partitions (16 slots) */

/* A store for the damage cases: the default 16 MiB ring over a small heap,
 * so that a read the length of the ring past its end leaves the file. */
static t_store_t dst;
static char dpristine[PATH_MAX + 32], darena[PATH_MAX];

static void damage_store(void)
{
	t_store_init(&dst);
	t_store_open(&dst);
	for (unsigned i = 0; i < 50; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%02u", i);
		CHECK_OK(keel_put(dst.h, "a", k, strlen(k), "value", 5, NULL));
	}
	for (unsigned t = 0; t < DAMAGE_TIMER_PARTS; t++) {
		char part[16];

		snprintf(part, sizeof(part), "timers%u", t);
		CHECK_OK(keel_timer_set(dst.h, part, "t", 1, keel_now_ms() + 3600000, "p", 1));
	}
	t_store_close(&dst);
	CHECK_OK(keel_arena_path(dst.dir, &dst.opt, darena, sizeof(darena)));
	snprintf(dpristine, sizeof(dpristine), "%s/pristine", dst.dir);
	copy_file(darena, dpristine, 0600);
}

/* Open the pristine damage store in this process (to damage it through
 * its mapping, then close it). */
static keel_t *damage_open(void)
{
	keel_t *h;

	remove_any(darena);
	copy_file(dpristine, darena, 0600);
	CHECK_OK(keel_open(dst.dir, &dst.opt, &h));
	return h;
}

enum { DO_PUT, DO_PUT_BIG, DO_TIMERS, DO_TIMER0, DO_RECLAIM, DO_OVERWRITE, DO_CLEAR, DO_GETS,
       DO_LIVE_HEADER };

/* keel_check's reports: the first one, kept in the child's outcome. */
static void first_report(void *ctx, const char *where, const char *what)
{
	struct outcome *r = ctx;

	if (!r->msg[0])
		snprintf(r->msg, sizeof(r->msg), "%s: %s", where, what);
}

/* In a child: open the damaged store and write; the outcome. */
static void damage_child(int what, struct outcome *o)
{
	int fds[2];
	ssize_t n;

	memset(o, 0, sizeof(*o));
	CHECK(pipe(fds) == 0);
	pid_t pid = t_fork();
	if (pid == 0) {
		static unsigned char big[1 << 20];
		struct outcome r = { 0 };
		keel_t *h = NULL;

		close(fds[0]);
		alarm(20);
		r.rc = keel_open(dst.dir, &dst.opt, &h);
		if (r.rc == 0 && what == DO_PUT)
			r.rc = keel_put(h, "a", "new", 3, "v", 1, NULL);
		if (r.rc == 0 && what == DO_PUT_BIG) {
			size_t vl = 0;

			memset(big, 0x5a, sizeof(big));
			r.rc = keel_put(h, "a", "big", 3, big, sizeof(big), NULL);
			if (r.rc == 0)
				r.rc = keel_get(h, "a", "big", 3, big, sizeof(big), &vl, NULL);
			if (r.rc == 0 && vl != sizeof(big))
				r.rc = KEEL_E_CORRUPT;
		}
		if (r.rc == 0 && what == DO_TIMER0)
			r.rc = keel_timer_set(h, "timers0", "t2", 2, keel_now_ms() + 3600000, "p", 1);
		if (r.rc == 0 && what == DO_RECLAIM)
			r.rc = keel_reclaim(h);
		if (r.rc == 0 && what == DO_OVERWRITE)
			for (unsigned i = 0; r.rc == 0 && i < 50; i++) {
				char k[16];

				snprintf(k, sizeof(k), "k%02u", i);
				r.rc = keel_put(h, "a", k, strlen(k), "other", 5, NULL);
			}
		for (unsigned i = 0; (r.rc == 0 || r.rc == KEEL_E_NOTFOUND) && what == DO_GETS && i < 100000; i++) {
			char v[16];
			size_t vl;

			r.rc = keel_get(h, "a", "k21", 3, v, sizeof(v), &vl, NULL);
		}
		if (r.rc == 0 && what == DO_LIVE_HEADER) {
			struct shm_hdr *hd = h->a.hdr;
			char v[16];
			size_t vl;

			hd->ring_bytes = 0;
			hd->readers_off = 1ull << 40;
			hd->heap_off = 0;
			hd->arena_bytes = hd->arena_bytes_max;
			/* Every call is made whatever the ones before returned; the
			 * first error is the outcome. */
			for (unsigned i = 0; i < 50; i++) {
				char k[16];
				int rc;

				snprintf(k, sizeof(k), "k%02u", i);
				rc = keel_get(h, "a", k, strlen(k), v, sizeof(v), &vl, NULL);
				r.rc = r.rc ? r.rc : rc;
				rc = keel_put(h, "a", k, strlen(k), "again", 5, NULL);
				r.rc = r.rc ? r.rc : rc;
			}
			int crc = keel_check(h, 0, first_report, &r);   /* it must see the damage */
			if (r.rc)
				r.msg[0] = 0;   /* the outcome is an earlier call's */
			r.rc = r.rc ? r.rc : crc;
		}
		if (r.rc == 0 && what == DO_CLEAR) {
			uint64_t removed = 0, left = 1;

			r.rc = keel_clear(h, "a", &removed);
			if (r.rc == 0)
				r.rc = keel_count(h, "a", &left);
			if (r.rc == 0 && (removed != 50 || left != 0))
				r.rc = KEEL_E_CORRUPT;
		}
		for (unsigned t = DAMAGE_TIMER_PARTS; r.rc == 0 && what == DO_TIMERS && t < DAMAGE_TIMER_PARTS + 3; t++) {
			char part[16];

			snprintf(part, sizeof(part), "timers%u", t);
			r.rc = keel_timer_set(h, part, "t", 1, keel_now_ms() + 3600000, "p", 1);
		}
		if (!r.msg[0])   /* a check's first report, or the last error */
			snprintf(r.msg, sizeof(r.msg), "%s", keel_errmsg());
		if (h)
			keel_close(h);
		CHECK(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r));
		_exit(0);
	}
	n = child_outcome(fds, pid, o, "writing to the damaged store");
	CHECK_MSG(n == (ssize_t)sizeof(*o), "the child exited without a report");
}

/* The node of key k in partition "a" of an open damage store. */
static struct node *damage_node(keel_t *h, const char *k)
{
	keel_read_t *rd;
	const void *val;
	size_t vl;

	CHECK_OK(keel_read_begin(h, &rd));
	CHECK_OK(keel_read_get(rd, "a", k, strlen(k), &val, &vl, NULL));
	keel_read_end(rd);
	return (struct node *)((uint8_t *)val - strlen(k) - offsetof(struct node, data));
}

#define CLEAR_OUTCOME 1   /* damage_case's want: 0 or CORRUPT (codes are <= 0) */

/* Close the damaged store h, then write to it in a child (`what`, which
 * `did` describes).  want: the code expected, or CLEAR_OUTCOME for 0 or
 * CORRUPT (either is a clear outcome; a signal or a hang is not). */
static void damage_case(keel_t *h, int what, const char *name, const char *did, int want,
			struct outcome *o)
{
	CHECK_OK(keel_close(h));
	damage_child(what, o);
	if (want == CLEAR_OUTCOME)
		CHECK_MSG(o->rc == 0 || o->rc == KEEL_E_CORRUPT, "%s: %s returned %d (%s): %s", name, did,
			  o->rc, keel_strerror(o->rc), o->msg);
	else
		CHECK_MSG(o->rc == want, "%s: %s returned %d (%s), expected %s: %s", name, did, o->rc,
			  keel_strerror(o->rc), keel_strerror(want), o->msg);
	printf("test_hostile: %-18s %s: %s (%s)\n", name, o->rc ? "refused" : "survived", did,
	       o->rc ? o->msg : "ok");
}

static void damage(void)
{
	static const char *const w_ring[] = { "ring record", "applying", NULL };
	static const char *const w_header[] = { "arena header", NULL };
	struct outcome o;
	keel_t *h;
	struct part *p;

	damage_store();

	/* A record header at the ring's last 64 bytes, complete, whose length
	 * (the ring's size, 64-aligned) would run a whole ring past its end. */
	h = damage_open();
	CHECK_OK(part_find(h, "a", &p));
	CHECK(p != NULL);
	uint64_t rb = h->a.hdr->ring_bytes, lsn = h->root->applied_lsn + 1;
	struct rec *r = (struct rec *)(h->a.base + h->a.hdr->ring_off + rb - sizeof(struct rec));
	memset(r, 0, sizeof(*r));
	r->magic = REC_MAGIC;
	r->state = REC_COMPLETE;
	r->len = (uint32_t)rb;
	r->lsn = lsn;
	r->nparts = 1;
	p->applying_pos = (rb - sizeof(struct rec)) + 3 * rb;   /* a later lap of the same place */
	p->applying_lsn = lsn;
	damage_case(h, DO_PUT, "ring record", "a put", KEEL_E_CORRUPT, &o);
	CHECK_MSG(t_mentions(o.msg, w_ring), "ring record: the error does not name it: %s", o.msg);

	/* A free run at the arena's last page that claims 64 pages. */
	h = damage_open();
	struct shm_hdr *hd = h->a.hdr;
	uint64_t last = hd->arena_bytes - SHM_PAGE_BYTES;
	CHECK_MSG(hd->galloc.bump <= last, "no free page above the allocator top (%llu of %llu)",
		  (unsigned long long)hd->galloc.bump, (unsigned long long)hd->arena_bytes);
	struct shm_page *pg = (struct shm_page *)(h->a.base + last);
	memset(pg, 0, sizeof(*pg));
	pg->magic = SHM_PAGE_MAGIC;
	pg->type = SHM_PAGE_FREE;
	pg->npages = 64;
	hd->galloc.free_head = last;
	hd->galloc.free_pages = 64;
	damage_case(h, DO_PUT_BIG, "free run", "a 1 MiB put and get", 0, &o);

	/* A timer partition whose name length is 2^32-1; the table of timer
	 * partitions grows with the next two partitions. */
	h = damage_open();
	struct timer_root *tr = &h->root->timers;
	CHECK_MSG(tr->ntparts == DAMAGE_TIMER_PARTS && tr->tparts_cap == 16,
		  "%u timer partitions in %u slots", tr->ntparts, tr->tparts_cap);
	uint64_t *slots = (uint64_t *)(h->a.base + tr->tparts), tp = 0;
	for (uint32_t i = 0; i < tr->tparts_cap && !tp; i++)
		tp = slots[i];
	CHECK(tp != 0);
	/* struct tpart (lib/timer.c): its heap (struct tvec), top_pos, nlen, name. */
	uint32_t *nlen = (uint32_t *)(h->a.base + tp + sizeof(struct tvec) + 4);
	const char *name = (const char *)(nlen + 1);
	CHECK_MSG(*nlen == strlen("timers0") && !memcmp(name, "timers", 6),
		  "a timer partition's record is not laid out as expected (name length %u)", *nlen);
	*nlen = UINT32_MAX;
	damage_case(h, DO_TIMERS, "timer name", "timers set in 3 more partitions", CLEAR_OUTCOME, &o);

	/* A timer partition's heap count of 2^31 (struct tvec: off, n, cap). */
	h = damage_open();
	tr = &h->root->timers;
	slots = (uint64_t *)(h->a.base + tr->tparts);
	for (uint32_t i = 0; i < tr->tparts_cap; i++) {
		if (!slots[i] || memcmp(h->a.base + slots[i] + sizeof(struct tvec) + 8, "timers0", 8))
			continue;
		struct tvec *heap = (struct tvec *)(h->a.base + slots[i]);
		CHECK_EQ_U64(heap->n, 1);
		heap->n = 1u << 31;
	}
	damage_case(h, DO_TIMER0, "timer count", "a timer set", CLEAR_OUTCOME, &o);

	/* A retired version whose retire link names itself: overwrite a key
	 * while a read scope holds its old version, so that it stays retired. */
	h = damage_open();
	{
		keel_read_t *rd;
		const void *val;
		size_t vl;

		CHECK_OK(keel_read_begin(h, &rd));
		CHECK_OK(keel_read_get(rd, "a", "k00", 3, &val, &vl, NULL));
		CHECK_OK(keel_put(h, "a", "k00", 3, "newer", 5, NULL));
		CHECK_OK(part_find(h, "a", &p));
		CHECK_MSG(p->retire_head != 0, "the old version of k00 is not retired");
		((struct node *)(h->a.base + p->retire_head))->retire_next = p->retire_head;
		keel_read_end(rd);
	}
	damage_case(h, DO_RECLAIM, "retire cycle", "keel_reclaim", CLEAR_OUTCOME, &o);

	/* A slab page's size class of 255, under the live keys of "a". */
	h = damage_open();
	{
		uint64_t off = (uint64_t)((uint8_t *)damage_node(h, "k07") - h->a.base);
		struct shm_page *sp = (struct shm_page *)(h->a.base + off / SHM_PAGE_BYTES * SHM_PAGE_BYTES);

		CHECK_EQ_U64(sp->type, SHM_PAGE_SLAB);
		sp->cls = 255;
	}
	damage_case(h, DO_OVERWRITE, "slab class", "50 keys overwritten", CLEAR_OUTCOME, &o);

	/* A partition without its bucket table. */
	h = damage_open();
	CHECK_OK(part_find(h, "a", &p));
	p->buckets = 0;
	damage_case(h, DO_PUT, "buckets", "a put", KEEL_E_CORRUPT, &o);
	h = damage_open();
	CHECK_OK(part_find(h, "a", &p));
	p->buckets = 0;
	damage_case(h, DO_CLEAR, "buckets (clear)", "a clear", KEEL_E_CORRUPT, &o);

	/* A live key whose LSN is 2^64-1, then a clear of its partition. */
	h = damage_open();
	damage_node(h, "k13")->lsn = UINT64_MAX;
	damage_case(h, DO_CLEAR, "clear", "a clear of all 50 keys", 0, &o);

	/* A version chain that is a cycle, its LSNs not falling.  100000 gets
	 * of the key: each walked the cycle to walk_max (arena/16) before,
	 * minutes in all, past the child's 20 s alarm. */
	h = damage_open();
	{
		struct node *n = damage_node(h, "k21");

		n->lsn = UINT64_MAX;
		n->prev_ver = (uint64_t)((uint8_t *)n - h->a.base);
	}
	damage_case(h, DO_GETS, "version chain", "100000 gets of the key", KEEL_E_NOTFOUND, &o);

	/* The header damaged under an open handle (the child does it). */
	h = damage_open();
	damage_case(h, DO_LIVE_HEADER, "live header", "50 gets and puts, then a check", KEEL_E_CORRUPT, &o);
	CHECK_MSG(t_mentions(o.msg, w_header), "live header: the check does not name the header: %s", o.msg);

	/* A partition lock held by a thread that does not exist. */
	h = damage_open();
	CHECK_OK(part_find(h, "a", &p));
	p->lock.m.__data.__lock = 0x3fffffff;
	p->lock.holder_pid = 1;
	damage_case(h, DO_PUT, "lock word", "a put", KEEL_E_CORRUPT, &o);
	remove_any(darena);
	t_store_destroy(&dst);
}

int main(int argc, char **argv)
{
	int seed_given = 0;
	uint64_t seed = 0;
	unsigned iters = 1000;
	const char *only = NULL;

	t_begin("test_hostile");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: test_hostile [--seed S] [--iters N] [--only refusals|fuzz|damage]\n"
			       "Hostile arenas (symlink, owner, mode, type, size, header fields,\n"
			       "PID namespace) are refused with a clear message; damaged arenas\n"
			       "(bit flips, truncation, hand-made damage) never crash a process.\n"
			       "Default --iters 1000.\n"
			       "Exit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(a, "--seed")) {
			seed = t_parse_u64(a, v);
			seed_given = 1;
			i++;
		} else if (!strcmp(a, "--iters")) {
			iters = (unsigned)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--only") && v) {
			only = v;
			i++;
		} else {
			fprintf(stderr, "test_hostile: unknown argument '%s' (try --help)\n", a);
			return 2;
		}
	}
	t_seed_init(seed_given, seed);
	atexit(remove_leftovers);
	make_store();
	if (!only || !strcmp(only, "refusals"))
		refusals();
	if (!only || !strcmp(only, "fuzz"))
		fuzz(iters);
	if (!only || !strcmp(only, "damage"))
		damage();
	remove_any(arena);
	copy_file(pristine, arena, 0600);
	t_store_destroy(&st);
	printf("test_hostile: PASS%s\n", n_skipped ? " (some cases skipped, see above)" : "");
	return 0;
}
