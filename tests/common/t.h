/*
 * t.h - the small assertion and fixture helper shared by Keel's tests.
 *
 * Every test is one program that exits 0 (pass), 1 (fail) or 77 (skip), as
 * ctest expects.  A failed CHECK prints the file and line, the expression,
 * the Keel code and its name, this thread's keel_errmsg() and, for a
 * randomized test, the seed and how to rerun with it; then the process exits
 * 1.  In a forked child the exit status carries the failure to the parent,
 * which waits with t_wait_exit0().
 *
 * Fixtures.  t_store_init() makes a fresh store directory with mkdtemp under
 * /tmp and memory durability; t_store_destroy() closes the handle, removes the
 * arena with keel_unlink_arena(dir, opt, 1) and deletes the directory.  Each
 * store is also registered for removal at exit, so a test that fails part way
 * leaves nothing in /dev/shm (set KEEL_TEST_KEEP=1 to keep the files of a
 * failed run for inspection).  Only the process that registered a store
 * removes it: a forked child that exits never touches its parent's fixtures.
 *
 * Randomness.  t_seed_init() takes the seed given with --seed or makes one
 * from the clock and pid, and prints it.  t_rand() is splitmix64: small, fast
 * and good enough to pick keys and timings; every random choice of a test
 * comes from a state derived from that one seed, so the seed reproduces the
 * choices (timings of other processes, of course, are not reproducible).
 *
 * The header is included by exactly one translation unit per test program,
 * so its functions are static.
 */
#ifndef KEEL_TEST_T_H
#define KEEL_TEST_T_H

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel.h"

#define T_EXIT_PASS 0
#define T_EXIT_FAIL 1
#define T_EXIT_SKIP 77

#define T_UNUSED __attribute__((unused))

#define T_STORES_MAX 16 /* stores one test program may register at once */

typedef struct t_store {
	char dir[PATH_MAX];
	keel_options_t opt;
	keel_t *h;
	int slot; /* index in the exit-cleanup registry, -1 if none */
} t_store_t;

struct t_reg {
	int used;
	char dir[PATH_MAX];
	keel_options_t opt;
};

static const char *t_name T_UNUSED = "test";
static pid_t t_owner_pid T_UNUSED;
static int t_seed_set T_UNUSED;
static uint64_t t_seed_value T_UNUSED;
static struct t_reg t_regs[T_STORES_MAX] T_UNUSED;

/* ---- failure reporting ----------------------------------------------------- */

static void t_vfail(const char *file, int line, const char *fmt, va_list ap)
	__attribute__((noreturn));
static void t_vfail(const char *file, int line, const char *fmt, va_list ap)
{
	const char *msg = keel_errmsg();

	fprintf(stderr, "%s: FAIL at %s:%d (pid %d): ", t_name, file, line, (int)getpid());
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	if (msg && msg[0])
		fprintf(stderr, "  keel_errmsg: %s\n", msg);
	if (t_seed_set)
		fprintf(stderr, "  seed: %" PRIu64 " (rerun with --seed %" PRIu64 ")\n",
			t_seed_value, t_seed_value);
	fflush(NULL);
	exit(T_EXIT_FAIL);
}

static void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((noreturn, format(printf, 3, 4)));
static void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t_vfail(file, line, fmt, ap);
}

#define T_FAIL(...) t_fail(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			T_FAIL("CHECK(%s) failed", #cond);                     \
	} while (0)

#define CHECK_MSG(cond, ...)                                                   \
	do {                                                                   \
		if (!(cond))                                                   \
			T_FAIL(__VA_ARGS__);                                   \
	} while (0)

/* expr must return 0. */
#define CHECK_OK(expr)                                                         \
	do {                                                                   \
		int t_rc_ = (expr);                                            \
		if (t_rc_ != 0)                                                \
			T_FAIL("%s returned %d (%s), expected 0", #expr,       \
			       t_rc_, keel_strerror(t_rc_));                   \
	} while (0)

/* expr must return exactly `want`. */
#define CHECK_RC(expr, want)                                                   \
	do {                                                                   \
		int t_rc_ = (expr), t_want_ = (want);                          \
		if (t_rc_ != t_want_)                                          \
			T_FAIL("%s returned %d (%s), expected %d (%s)", #expr, \
			       t_rc_, keel_strerror(t_rc_), t_want_,           \
			       keel_strerror(t_want_));                        \
	} while (0)

/* expr must fail with `want`, and leave a non-empty keel_errmsg(). */
#define CHECK_ERR(expr, want)                                                  \
	do {                                                                   \
		int t_rc_ = (expr), t_want_ = (want);                          \
		if (t_rc_ != t_want_)                                          \
			T_FAIL("%s returned %d (%s), expected %d (%s)", #expr, \
			       t_rc_, keel_strerror(t_rc_), t_want_,           \
			       keel_strerror(t_want_));                        \
		if (!keel_errmsg() || !keel_errmsg()[0])                       \
			T_FAIL("%s failed with %s but keel_errmsg() is empty", \
			       #expr, keel_strerror(t_rc_));                   \
	} while (0)

/* expr must fail with one of two codes (where the API allows either), and
 * leave a non-empty keel_errmsg(). */
#define CHECK_ERR2(expr, want1, want2)                                         \
	do {                                                                   \
		int t_rc_ = (expr), t_w1_ = (want1), t_w2_ = (want2);          \
		if (t_rc_ != t_w1_ && t_rc_ != t_w2_)                          \
			T_FAIL("%s returned %d (%s), expected %s or %s", #expr,\
			       t_rc_, keel_strerror(t_rc_),                    \
			       keel_strerror(t_w1_), keel_strerror(t_w2_));    \
		if (!keel_errmsg() || !keel_errmsg()[0])                       \
			T_FAIL("%s failed with %s but keel_errmsg() is empty", \
			       #expr, keel_strerror(t_rc_));                   \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                     \
	do {                                                                   \
		uint64_t t_a_ = (uint64_t)(a), t_b_ = (uint64_t)(b);           \
		if (t_a_ != t_b_)                                              \
			T_FAIL("%s == %s failed: %" PRIu64 " != %" PRIu64, #a, \
			       #b, t_a_, t_b_);                                \
	} while (0)

#define CHECK_EQ_I64(a, b)                                                     \
	do {                                                                   \
		int64_t t_a_ = (int64_t)(a), t_b_ = (int64_t)(b);              \
		if (t_a_ != t_b_)                                              \
			T_FAIL("%s == %s failed: %" PRId64 " != %" PRId64, #a, \
			       #b, t_a_, t_b_);                                \
	} while (0)

#define CHECK_MEM(p, q, n)                                                     \
	do {                                                                   \
		size_t t_n_ = (n);                                             \
		if (t_n_ && memcmp((p), (q), t_n_) != 0)                       \
			T_FAIL("memcmp(%s, %s, %zu) != 0", #p, #q, t_n_);      \
	} while (0)

/* ---- time and randomness --------------------------------------------------- */

static T_UNUSED uint64_t t_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static T_UNUSED uint64_t t_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static T_UNUSED void t_sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* splitmix64: one 64-bit state, one output per call. */
static T_UNUSED uint64_t t_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0.  The modulo bias is irrelevant at test sizes. */
static T_UNUSED uint64_t t_rand_below(uint64_t *s, uint64_t n)
{
	return n ? t_rand(s) % n : 0;
}

/* A state for stream `k` derived from the test seed. */
static T_UNUSED uint64_t t_rand_stream(uint64_t k)
{
	uint64_t s = t_seed_value ^ (k * 0xd1342543de82ef95ull);

	(void)t_rand(&s);
	return s;
}

static T_UNUSED void t_rand_fill(uint64_t *s, void *buf, size_t n)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)t_rand(s);
}

/* ---- argument parsing -------------------------------------------------------- */

static T_UNUSED uint64_t t_parse_u64(const char *opt, const char *s)
{
	char *end = NULL;
	unsigned long long v;

	errno = 0;
	v = strtoull(s ? s : "", &end, 0);
	if (!s || !*s || errno || (end && *end) || s[0] == '-') {
		fprintf(stderr, "%s: %s needs a non-negative integer, got '%s'\n", t_name,
			opt, s ? s : "(missing)");
		exit(2);
	}
	return (uint64_t)v;
}

/* Record the seed (from --seed or from the clock and pid) and print it. */
static T_UNUSED void t_seed_init(int given, uint64_t seed)
{
	if (!given)
		seed = t_wall_ns() ^ ((uint64_t)getpid() << 32);
	t_seed_value = seed;
	t_seed_set = 1;
	printf("%s: seed %" PRIu64 " (reproduce with --seed %" PRIu64 ")\n", t_name, seed, seed);
	fflush(stdout);
}

/* ---- files and fixtures --------------------------------------------------------- */

static int t_rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	remove(path);
	return 0;
}

/* rm -rf path (does not follow symlinks). */
static T_UNUSED void t_rm_rf(const char *path)
{
	nftw(path, t_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void t_cleanup_at_exit(void)
{
	const char *keep = getenv("KEEL_TEST_KEEP");

	if (getpid() != t_owner_pid)
		return;
	for (int i = 0; i < T_STORES_MAX; i++) {
		if (!t_regs[i].used)
			continue;
		if (keep && keep[0] && keep[0] != '0') {
			fprintf(stderr, "%s: keeping store %s (KEEL_TEST_KEEP)\n", t_name,
				t_regs[i].dir);
			continue;
		}
		keel_unlink_arena(t_regs[i].dir, &t_regs[i].opt, 1);
		t_rm_rf(t_regs[i].dir);
		t_regs[i].used = 0;
	}
}

/* SIGTERM / SIGINT (a timeout or ^C): clean up as at exit, then die. */
static void t_on_term(int sig)
{
	t_cleanup_at_exit();
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Call first in main: names the test and arms the exit cleanup. */
static T_UNUSED void t_begin(const char *name)
{
	t_name = name;
	t_owner_pid = getpid();
	setvbuf(stdout, NULL, _IOLBF, 0);
	atexit(t_cleanup_at_exit);
	signal(SIGTERM, t_on_term);
	signal(SIGINT, t_on_term);
}

/* Make a fresh store directory and default options (memory durability).
 * Does not open it; the caller may adjust s->opt first. */
static T_UNUSED void t_store_init(t_store_t *s)
{
	memset(s, 0, sizeof(*s));
	s->slot = -1;
	snprintf(s->dir, sizeof(s->dir), "/tmp/keel-%s-XXXXXX", t_name);
	CHECK_MSG(mkdtemp(s->dir) != NULL, "mkdtemp(%s): %s", s->dir, strerror(errno));
	keel_options_init(&s->opt);
	s->opt.durability = KEEL_DURABILITY_MEMORY;
	if (getpid() != t_owner_pid)
		return;
	for (int i = 0; i < T_STORES_MAX; i++) {
		if (t_regs[i].used)
			continue;
		t_regs[i].used = 1;
		snprintf(t_regs[i].dir, sizeof(t_regs[i].dir), "%s", s->dir);
		s->slot = i;
		break;
	}
	CHECK_MSG(s->slot >= 0, "more than %d test stores at once", T_STORES_MAX);
}

/* Refresh the options kept for the exit cleanup (after changing s->opt). */
static T_UNUSED void t_store_sync_opt(t_store_t *s)
{
	if (s->slot >= 0) {
		t_regs[s->slot].opt = s->opt;
		t_regs[s->slot].opt.arena_path = NULL; /* the path string may not outlive s */
	}
}

static T_UNUSED void t_store_open(t_store_t *s)
{
	t_store_sync_opt(s);
	CHECK_MSG(s->h == NULL, "t_store_open: store %s already open", s->dir);
	CHECK_OK(keel_open(s->dir, &s->opt, &s->h));
	CHECK(s->h != NULL);
}

static T_UNUSED void t_store_close(t_store_t *s)
{
	if (s->h)
		CHECK_OK(keel_close(s->h));
	s->h = NULL;
}

/* Close, remove the arena and the directory. */
static T_UNUSED void t_store_destroy(t_store_t *s)
{
	t_store_close(s);
	CHECK_OK(keel_unlink_arena(s->dir, &s->opt, 1));
	t_rm_rf(s->dir);
	if (s->slot >= 0)
		t_regs[s->slot].used = 0;
	s->slot = -1;
}

/* ---- processes ---------------------------------------------------------------------- */

/* fork() with stdio flushed first, so buffered output is not written twice.
 * The child is killed when its parent dies (a test killed by its ctest
 * timeout must not leave workers spinning on a shared store). */
static T_UNUSED pid_t t_fork(void)
{
	pid_t pid, parent = getpid();

	fflush(NULL);
	pid = fork();
	CHECK_MSG(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(T_EXIT_FAIL);
	}
	return pid;
}

/* Describe a wait status in buf. */
static T_UNUSED const char *t_status_str(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(st),
			 strsignal(WTERMSIG(st)), WCOREDUMP(st) ? ", core dumped" : "");
	else
		snprintf(buf, cap, "status 0x%x", st);
	return buf;
}

static T_UNUSED int t_waitpid(pid_t pid, int *st)
{
	pid_t r;

	do
		r = waitpid(pid, st, 0);
	while (r < 0 && errno == EINTR);
	CHECK_MSG(r == pid, "waitpid(%d): %s", (int)pid, strerror(errno));
	return *st;
}

/* Wait for a child and fail unless it exited 0. */
#define t_wait_exit0(pid, what)                                                \
	do {                                                                   \
		int t_st_;                                                     \
		char t_sb_[96];                                                \
		t_waitpid((pid), &t_st_);                                      \
		if (!WIFEXITED(t_st_) || WEXITSTATUS(t_st_) != 0)              \
			T_FAIL("child %s (pid %d) %s", (what), (int)(pid),     \
			       t_status_str(t_st_, t_sb_, sizeof(t_sb_)));     \
	} while (0)

/* Zeroed memory shared with forked children (for counters and flags). */
static T_UNUSED void *t_shared_alloc(size_t n)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	CHECK_MSG(p != MAP_FAILED, "mmap %zu shared bytes: %s", n, strerror(errno));
	return p;
}

/* ---- sections ------------------------------------------------------------------------- */

/*
 * Run one section of a test in a forked child, so that a failed CHECK in it
 * (which exits) does not hide the sections after it.  The child owns the
 * stores it makes (and removes them at exit).  Returns 1 if it passed.
 */
static T_UNUSED int t_run_section(const char *name, void (*fn)(void))
{
	uint64_t t0 = t_now_ns();
	pid_t pid = t_fork();
	int stv;
	char sb[96];

	if (pid == 0) {
		t_owner_pid = getpid();
		memset(t_regs, 0, sizeof(t_regs));
		fn();
		exit(0);
	}
	t_waitpid(pid, &stv);
	if (WIFEXITED(stv) && WEXITSTATUS(stv) == 0) {
		printf("%s: %-10s ok (%.1f ms)\n", t_name, name, (double)(t_now_ns() - t0) / 1e6);
		return 1;
	}
	printf("%s: %-10s FAILED (%s)\n", t_name, name, t_status_str(stv, sb, sizeof(sb)));
	return 0;
}

/* ---- keel_check ---------------------------------------------------------------------- */

/* Collects keel_check reports, and prints them as they come. */
struct t_check_log {
	unsigned reports;
};

static T_UNUSED void t_check_report(void *ctx, const char *where, const char *what)
{
	struct t_check_log *log = ctx;

	log->reports++;
	fprintf(stderr, "%s: keel_check: %s: %s\n", t_name, where ? where : "(null)",
		what ? what : "(null)");
}

/* keel_check must return 0 and report nothing. */
#define CHECK_SOUND(h, flags)                                                  \
	do {                                                                   \
		struct t_check_log t_log_ = { 0 };                             \
		int t_rc_ = keel_check((h), (flags), t_check_report, &t_log_); \
		if (t_rc_ != 0 || t_log_.reports != 0)                         \
			T_FAIL("keel_check returned %d (%s) with %u reports",  \
			       t_rc_, keel_strerror(t_rc_), t_log_.reports);   \
	} while (0)

/* Case-insensitive: does s contain any of the NULL-terminated words? */
static T_UNUSED int t_mentions(const char *s, const char *const *words)
{
	for (; *words; words++) {
		size_t n = strlen(*words);

		for (const char *p = s; p && *p; p++)
			if (strncasecmp(p, *words, n) == 0)
				return 1;
	}
	return 0;
}

#endif /* KEEL_TEST_T_H */
