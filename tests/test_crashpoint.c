/*
 * test_crashpoint.c - processes killed at each named crash point of the
 * commit path (keel_crash_at, KEEL_CRASH_AT), and what must hold after.
 *
 * Every commit of the crashing worker is one transaction over two
 * partitions: key k<i> goes to both "left" and "right" with the same value
 * val(i) (derived from the seed and i).  So a partial transaction is a key
 * present in one partition and not the other, or with another value.  Commit
 * i is SYNC unless i % 4 == 0 (ASYNC).  The worker notes in shared memory
 * that it started commit i, and that commit i returned 0 (acked): after its
 * death the test knows what was acknowledged and what was in flight.
 *
 * For each point, two sections (each on a fresh durable store in /tmp):
 *
 * <point>/arena  A bystander process commits SYNC to the same two
 *          partitions (1 ms apart) and checks, in every read scope, that
 *          the worker's newest pairs are whole.  The worker arms the point
 *          with a random nth (1..4) and commits until it dies; it must die
 *          of SIGKILL, saying on stderr that it reached that point.  Then,
 *          in the same arena:
 *          - the bystander acks BYSTANDER_ACKS_AFTER more commits within
 *            SURVIVE_MS_MAX (survivors go on), and the test's own process
 *            commits to both partitions within SURVIVE_MS_MAX;
 *          - no lock is held by the dead worker or left DEAD;
 *          - every acked pair is there, no pair is partial; the pair in
 *            flight is absent after commit.reserved, present after every
 *            later commit point (the record was complete: it is redone);
 *          - keel_reclaim, then keel_check reports nothing;
 *          - a new process opens the store and commits;
 *          - power loss (arena removed, reopened): the recovered store
 *            holds exactly what the arena held (everything before the last
 *            SYNC commit is durable), and keel_check passes.
 *          For checkpoint.written the worker checkpoints after every commit;
 *          the checkpoint in flight must have left its .tmp file behind, and
 *          the test's process must then checkpoint successfully itself.
 *
 * <point>/power  No other process.  The worker dies at the point; the arena
 *          is removed at once (a power loss right at that instant) and the
 *          store reopened: the pairs present are exactly 1..m for some m
 *          (the journal is replayed in order), every SYNC-acked pair and
 *          everything before it is there, nothing after the pair in flight,
 *          no pair partial, keel_check passes, and the store takes commits.
 *
 * errors   keel_crash_at's and keel_stop_at's errors (unknown point, nth 0,
 *          a point with a ":nth" suffix), disarming with NULL; KEEL_CRASH_AT's errors seen by
 *          keel_open (and by every open after, not only the first).
 * env      KEEL_CRASH_AT=commit.done:2 kills at the second commit of the
 *          process even across two handles (read once per process); a point
 *          armed and then disarmed, or armed in a parent before fork(), or
 *          never reached (a flush point in a memory-mode store), kills
 *          nothing; KEEL_CRASH_AT=commit.applied:2:stop stops the process
 *          there (its commit not visible) once, and after SIGCONT it goes on.
 *
 * --seed N reproduces the random choices (nth, values); timing is not.
 */
#include "common/t.h"

#include <dirent.h>
#include <poll.h>

#define PART_L "left"
#define PART_R "right"
#define NTH_MAX 4u
#define WORKER_COMMITS_MAX 10000u    /* a worker that never meets its point gives up */
#define CHILD_WAIT_MS_MAX 20000u
#define SURVIVE_MS_MAX 3000u         /* a survivor's commit or progress after a death */
#define BYSTANDER_ACKS_AFTER 3u
#define BYSTANDER_GAP_NS 1000000ull
#define VAL_BYTES_MAX 320u
#define MSG_BYTES 512u
#define STDERR_BYTES_MAX 8192u
#define EXIT_NO_CRASH 3              /* worker: ran out of commits without dying */
#define EXIT_WORKER_FAIL 2           /* worker: an unexpected error (in the shared msg) */

enum inflight { INFLIGHT_ABSENT, INFLIGHT_PRESENT, INFLIGHT_EITHER, INFLIGHT_NONE };

static const struct cpoint {
	const char *name;
	enum inflight after;   /* the pair in flight, once survivors repaired */
} g_points[] = {
	{ "commit.reserved", INFLIGHT_ABSENT },
	{ "commit.complete", INFLIGHT_PRESENT },
	{ "commit.mid_apply", INFLIGHT_PRESENT },
	{ "commit.applied", INFLIGHT_PRESENT },
	{ "commit.visible", INFLIGHT_PRESENT },
	{ "commit.done", INFLIGHT_PRESENT },
	/* The flusher may be the worker's committing thread (in flight: its
	 * applied commit) or its handle's background thread (any stage). */
	{ "flush.written", INFLIGHT_EITHER },
	{ "flush.synced", INFLIGHT_EITHER },
	{ "checkpoint.written", INFLIGHT_NONE },
};
#define NPOINTS (sizeof(g_points) / sizeof(g_points[0]))

struct shared {
	volatile uint32_t started;    /* worker: commit i begun */
	volatile uint32_t acked;      /* worker: commit i returned 0 */
	volatile uint32_t ckpts;      /* worker: checkpoints that returned 0 */
	volatile int32_t failed;
	char msg[MSG_BYTES];
	volatile uint32_t by_acks;    /* bystander: commits acked */
	volatile uint32_t by_stop;
	volatile uint32_t by_ready;
	volatile int32_t by_failed;
	char by_msg[MSG_BYTES];
};

static const struct cpoint *g_cp;     /* the point of the section */
static struct shared *g_sh;

/* ---- the pairs --------------------------------------------------------------------------- */

static int is_ckpt(const struct cpoint *cp)
{
	return strcmp(cp->name, "checkpoint.written") == 0;
}

static int durability_of(uint32_t i)
{
	return i % 4 == 0 ? KEEL_DURABILITY_ASYNC : KEEL_DURABILITY_SYNC;
}

static size_t key_of(uint32_t i, char key[16])
{
	return (size_t)snprintf(key, 16, "k%06u", i);
}

/* val(i): 8..VAL_BYTES_MAX bytes from the seed and i, starting with i. */
static size_t val_of(uint32_t i, uint8_t val[VAL_BYTES_MAX])
{
	uint64_t s = t_seed_value ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull);
	size_t len = 8 + (size_t)t_rand_below(&s, VAL_BYTES_MAX - 7);

	t_rand_fill(&s, val, len);
	memcpy(val, &i, sizeof(i));
	return len;
}

static int commit_pair(keel_t *h, uint32_t i)
{
	char key[16];
	uint8_t val[VAL_BYTES_MAX];
	size_t kl = key_of(i, key), vl = val_of(i, val);
	keel_txn_t *t;
	int rc = keel_txn_begin(h, durability_of(i), &t);

	if (rc)
		return rc;
	if ((rc = keel_txn_put(t, PART_L, key, kl, val, vl)) || (rc = keel_txn_put(t, PART_R, key, kl, val, vl))) {
		keel_txn_abort(t);
		return rc;
	}
	return keel_txn_commit(t, NULL);
}

/* 1 if pair i is whole in the scope, 0 if absent from both; a partial or
 * wrong pair fails the test (or, with err set, is reported there). */
static int pair_state(keel_read_t *r, uint32_t i, const char *when, char *err, size_t cap)
{
	char key[16];
	uint8_t want[VAL_BYTES_MAX];
	size_t kl = key_of(i, key), wl = val_of(i, want), vl[2] = { 0, 0 };
	const void *v[2] = { NULL, NULL };
	const char *parts[2] = { PART_L, PART_R };
	int found[2];

	for (int p = 0; p < 2; p++) {
		int rc = keel_read_get(r, parts[p], key, kl, &v[p], &vl[p], NULL);
		if (rc != 0 && rc != KEEL_E_NOTFOUND) {
			snprintf(err, cap, "%s: keel_read_get(%s, %s): %s: %s", when, parts[p], key, keel_strerror(rc),
				 keel_errmsg());
			return -1;
		}
		found[p] = rc == 0;
		if (found[p] && (vl[p] != wl || memcmp(v[p], want, wl) != 0)) {
			snprintf(err, cap, "%s: %s/%s holds %zu bytes that are not the value committed (%zu bytes)", when,
				 parts[p], key, vl[p], wl);
			return -1;
		}
	}
	if (found[0] != found[1]) {
		snprintf(err, cap, "%s: partial transaction %u: %s in \"%s\" but not in \"%s\"", when, i, key,
			 found[0] ? PART_L : PART_R, found[0] ? PART_R : PART_L);
		return -1;
	}
	return found[0];
}

struct pairs {
	uint32_t present_max;   /* highest pair present */
	uint32_t present;       /* pairs present */
	int hole;               /* a pair absent below present_max */
};

/* Every pair 1..upto in one read scope; fails on a partial pair. */
static struct pairs scan_pairs(keel_t *h, uint32_t upto, const char *when)
{
	struct pairs ps = { 0, 0, 0 };
	char err[MSG_BYTES];
	keel_read_t *r;

	CHECK_OK(keel_read_begin(h, &r));
	for (uint32_t i = 1; i <= upto; i++) {
		int st = pair_state(r, i, when, err, sizeof(err));
		if (st < 0) {
			keel_read_end(r);
			T_FAIL("%s", err);
		}
		if (st) {
			if (ps.present_max + 1 != i)
				ps.hole = 1;
			ps.present_max = i;
			ps.present++;
		}
	}
	keel_read_end(r);
	return ps;
}

/* What must hold in a store the worker (acked a, started s) wrote to, once
 * survivors have repaired what it left: every pair whole, every acked pair
 * there, none past the one in flight, and that one as the point says. */
static void check_pairs_live(keel_t *h, const struct cpoint *cp, uint32_t a, uint32_t s, const char *when)
{
	struct pairs ps = scan_pairs(h, s + 2, when);

	CHECK_MSG(ps.present_max <= s, "%s: pair %u present, but the worker never started it (started %u)", when,
		  ps.present_max, s);
	CHECK_MSG(!ps.hole && ps.present_max >= a, "%s: %u pairs present (the highest %u), but commits 1..%u were acknowledged",
		  when, ps.present, ps.present_max, a);
	if (s == a)
		return;   /* nothing in flight */
	int inflight_present = ps.present_max == s;
	if (cp->after == INFLIGHT_ABSENT)
		CHECK_MSG(!inflight_present, "%s: the commit in flight (%u) at %s is there; it had no complete record and must be void",
			  when, s, cp->name);
	if (cp->after == INFLIGHT_PRESENT)
		CHECK_MSG(inflight_present, "%s: the commit in flight (%u) at %s is missing; its record was complete and must be redone",
			  when, s, cp->name);
}

/* An order-independent digest of both partitions. */
struct digest {
	uint64_t n, sum, x;
};

static uint64_t fnv(uint64_t hsh, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		hsh = (hsh ^ b[i]) * 0x100000001b3ull;
	return hsh;
}

static struct digest digest_of(keel_t *h)
{
	struct digest d = { 0, 0, 0 };
	const char *parts[2] = { PART_L, PART_R };

	for (int p = 0; p < 2; p++) {
		keel_iter_t *it;
		const void *k, *v;
		size_t kl, vl;
		int rc;
		CHECK_OK(keel_iter_open(h, parts[p], NULL, 0, &it));
		while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1) {
			uint64_t x = fnv(0xcbf29ce484222325ull, parts[p], strlen(parts[p]) + 1);
			x = fnv(fnv(x, &kl, sizeof(kl)), k, kl);
			x = fnv(fnv(x, &vl, sizeof(vl)), v, vl);
			d.n++;
			d.sum += x;
			d.x ^= x * 0x9e3779b97f4a7c15ull;
		}
		keel_iter_close(it);
		CHECK_MSG(rc == 0, "keel_iter_next(%s): %d (%s)", parts[p], rc, keel_strerror(rc));
	}
	return d;
}

/* ---- processes ------------------------------------------------------------------------------ */

static void worker_fail(const char *what, int rc) __attribute__((noreturn));
static void worker_fail(const char *what, int rc)
{
	snprintf(g_sh->msg, sizeof(g_sh->msg), "%s: %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	__atomic_store_n(&g_sh->failed, 1, __ATOMIC_RELEASE);
	_exit(EXIT_WORKER_FAIL);
}

/* The crashing worker: arm, then commit pairs until the point kills it. */
static void worker_main(const t_store_t *s, const char *point, uint32_t nth)
{
	keel_t *h;
	int rc;

	if ((rc = keel_open(s->dir, &s->opt, &h)))
		worker_fail("keel_open", rc);
	if ((rc = keel_crash_at(point, nth)))
		worker_fail("keel_crash_at", rc);
	for (uint32_t i = 1; i <= WORKER_COMMITS_MAX; i++) {
		__atomic_store_n(&g_sh->started, i, __ATOMIC_RELEASE);
		if ((rc = commit_pair(h, i)))
			worker_fail("commit", rc);
		__atomic_store_n(&g_sh->acked, i, __ATOMIC_RELEASE);
		if (is_ckpt(g_cp)) {
			if ((rc = keel_checkpoint(h, NULL)))
				worker_fail("keel_checkpoint", rc);
			__atomic_store_n(&g_sh->ckpts, g_sh->ckpts + 1, __ATOMIC_RELEASE);
		}
	}
	_exit(EXIT_NO_CRASH);
}

static void bystander_fail(const char *what, int rc) __attribute__((noreturn));
static void bystander_fail(const char *what, int rc)
{
	snprintf(g_sh->by_msg, sizeof(g_sh->by_msg), "%s: %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	__atomic_store_n(&g_sh->by_failed, 1, __ATOMIC_RELEASE);
	_exit(1);
}

/* Another process on the same partitions: commits SYNC and checks that the
 * worker's newest pairs are whole in every scope, until told to stop. */
static void bystander_main(const t_store_t *s)
{
	keel_t *h;
	char err[MSG_BYTES];
	int rc;

	if ((rc = keel_open(s->dir, &s->opt, &h)))
		bystander_fail("keel_open", rc);
	__atomic_store_n(&g_sh->by_ready, 1, __ATOMIC_RELEASE);
	for (uint32_t j = 1; !__atomic_load_n(&g_sh->by_stop, __ATOMIC_ACQUIRE); j++) {
		char key[24];
		int kl = snprintf(key, sizeof(key), "by%06u", j);
		keel_txn_t *t;
		if ((rc = keel_txn_begin(h, KEEL_DURABILITY_SYNC, &t)))
			bystander_fail("keel_txn_begin", rc);
		if ((rc = keel_txn_put(t, PART_L, key, (size_t)kl, &j, sizeof(j))) ||
		    (rc = keel_txn_put(t, PART_R, key, (size_t)kl, &j, sizeof(j)))) {
			keel_txn_abort(t);
			bystander_fail("keel_txn_put", rc);
		}
		if ((rc = keel_txn_commit(t, NULL)))
			bystander_fail("keel_txn_commit", rc);
		__atomic_store_n(&g_sh->by_acks, j, __ATOMIC_RELEASE);
		uint32_t hi = __atomic_load_n(&g_sh->started, __ATOMIC_ACQUIRE) + 1;
		keel_read_t *r;
		if ((rc = keel_read_begin(h, &r)))
			bystander_fail("keel_read_begin", rc);
		for (uint32_t i = hi > 4 ? hi - 4 : 1; i <= hi; i++) {
			if (pair_state(r, i, "bystander", err, sizeof(err)) < 0) {
				keel_read_end(r);
				snprintf(g_sh->by_msg, sizeof(g_sh->by_msg), "%s", err);
				__atomic_store_n(&g_sh->by_failed, 1, __ATOMIC_RELEASE);
				_exit(1);
			}
		}
		keel_read_end(r);
		t_sleep_ns(BYSTANDER_GAP_NS);
	}
	CHECK_OK(keel_close(h));
	_exit(0);
}

/* Wait for pid at most CHILD_WAIT_MS_MAX; kill it if it takes longer. */
static int wait_bounded(pid_t pid, const char *what)
{
	uint64_t t0 = t_now_ns();
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return st;
		CHECK_MSG(r == 0 || errno == EINTR, "waitpid(%d): %s", (int)pid, strerror(errno));
		if (t_now_ns() - t0 > CHILD_WAIT_MS_MAX * 1000000ull) {
			kill(pid, SIGKILL);
			t_waitpid(pid, &st);
			T_FAIL("%s (pid %d) still running after %u ms; killed", what, (int)pid, CHILD_WAIT_MS_MAX);
		}
		t_sleep_ns(1000000ull);
	}
}

/* Run the worker; it must die of SIGKILL at its point.  Fills *a, *s. */
static pid_t run_worker(const t_store_t *s, uint32_t nth, uint32_t *acked, uint32_t *started)
{
	int fds[2], st;
	char out[STDERR_BYTES_MAX], sb[96], want[96];
	ssize_t got = 0;

	CHECK_MSG(pipe(fds) == 0, "pipe: %s", strerror(errno));
	pid_t pid = t_fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);   /* the crash message comes here */
		close(fds[1]);
		worker_main(s, g_cp->name, nth);
	}
	close(fds[1]);
	st = wait_bounded(pid, "crash worker");
	for (ssize_t n; (size_t)got < sizeof(out) - 1 && (n = read(fds[0], out + got, sizeof(out) - 1 - (size_t)got)) > 0;)
		got += n;
	out[got > 0 ? got : 0] = 0;
	close(fds[0]);
	*acked = __atomic_load_n(&g_sh->acked, __ATOMIC_ACQUIRE);
	*started = __atomic_load_n(&g_sh->started, __ATOMIC_ACQUIRE);
	if (g_sh->failed)
		T_FAIL("crash worker for %s failed: %s", g_cp->name, g_sh->msg);
	if (WIFEXITED(st) && WEXITSTATUS(st) == EXIT_NO_CRASH)
		T_FAIL("crash worker committed %u times without reaching %s (nth %u)", *acked, g_cp->name, nth);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "crash worker for %s %s, expected death by SIGKILL; its stderr: %s",
		  g_cp->name, t_status_str(st, sb, sizeof(sb)), out);
	snprintf(want, sizeof(want), "crash point %s reached (arrival %u)", g_cp->name, nth);
	CHECK_MSG(strstr(out, want) != NULL, "crash worker died of SIGKILL, but its stderr does not say \"%s\": %s", want, out);
	if (strncmp(g_cp->name, "commit.", 7) == 0)
		CHECK_MSG(*started == *acked + 1, "%s: started %u, acked %u: the point is not inside a commit", g_cp->name,
			  *started, *acked);
	if (is_ckpt(g_cp)) {
		CHECK_MSG(*started == *acked, "%s: started %u, acked %u: a commit was in flight", g_cp->name, *started,
			  *acked);
		CHECK_EQ_U64(g_sh->ckpts, nth - 1);
	}
	return pid;
}

static int has_tmp_checkpoint(const char *dir)
{
	char path[PATH_MAX + 16];
	struct dirent *e;
	int found = 0;

	snprintf(path, sizeof(path), "%s/checkpoint", dir);
	DIR *d = opendir(path);
	CHECK_MSG(d != NULL, "opendir %s: %s", path, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		if (n > 4 && strcmp(e->d_name + n - 4, ".tmp") == 0)
			found = 1;
	}
	closedir(d);
	return found;
}

struct lockscan {
	pid_t dead;
	char bad[MSG_BYTES];
};

static int lock_fn(void *ctx, const keel_inspect_lock_t *l)
{
	struct lockscan *ls = ctx;

	if (l->state == KEEL_LOCK_DEAD || (l->state != KEEL_LOCK_FREE && (pid_t)l->holder_pid == ls->dead))
		snprintf(ls->bad, sizeof(ls->bad), "lock \"%s\" is %s by pid %u (the worker was %d)", l->name,
			 l->state == KEEL_LOCK_DEAD ? "held by a dead process" : "held", l->holder_pid, (int)ls->dead);
	return 0;
}

static void check_sound(keel_t *h, const char *when)
{
	struct t_check_log log = { 0 };
	CHECK_MSG(keel_reclaim(h) >= 0, "%s: keel_reclaim failed: %s", when, keel_errmsg());
	int rc = keel_check(h, 0, t_check_report, &log);
	CHECK_MSG(rc == 0 && log.reports == 0, "%s: keel_check returned %d (%s) with %u reports", when, rc,
		  keel_strerror(rc), log.reports);
}

/* ---- sections ------------------------------------------------------------------------------- */

static uint32_t pick_nth(uint64_t stream)
{
	uint64_t s = t_rand_stream(stream);
	return 1 + (uint32_t)t_rand_below(&s, NTH_MAX);
}

static void open_durable(t_store_t *s)
{
	t_store_init(s);
	s->opt.durability = KEEL_DURABILITY_SYNC;
	t_store_sync_opt(s);
}

static void section_arena(void)
{
	t_store_t s;
	uint32_t a, st, nth = pick_nth(100 + (uint64_t)(g_cp - g_points));
	char when[128];

	open_durable(&s);
	t_store_open(&s);   /* the test's own handle: attached during the crash */
	CHECK_OK(keel_put(s.h, PART_L, "before", 6, "0", 1, NULL));   /* its journal writer is open */
	pid_t by = t_fork();
	if (by == 0)
		bystander_main(&s);
	for (uint64_t t0 = t_now_ns(); !__atomic_load_n(&g_sh->by_ready, __ATOMIC_ACQUIRE);) {
		CHECK_MSG(!g_sh->by_failed, "bystander: %s", g_sh->by_msg);
		CHECK_MSG(t_now_ns() - t0 < CHILD_WAIT_MS_MAX * 1000000ull, "the bystander did not open the store");
		t_sleep_ns(1000000ull);
	}
	pid_t w = run_worker(&s, nth, &a, &st);
	int tmp_left = is_ckpt(g_cp) && has_tmp_checkpoint(s.dir);

	/* Survivors go on: the bystander acks more commits ... */
	uint32_t by0 = __atomic_load_n(&g_sh->by_acks, __ATOMIC_ACQUIRE);
	uint64_t t0 = t_now_ns();
	while (__atomic_load_n(&g_sh->by_acks, __ATOMIC_ACQUIRE) < by0 + BYSTANDER_ACKS_AFTER) {
		CHECK_MSG(!g_sh->by_failed, "bystander failed: %s", g_sh->by_msg);
		CHECK_MSG(t_now_ns() - t0 < SURVIVE_MS_MAX * 1000000ull,
			  "%s: the bystander acked %u commits in the %u ms after the worker died; it must go on",
			  g_cp->name, g_sh->by_acks - by0, SURVIVE_MS_MAX);
		t_sleep_ns(200000ull);
	}
	double by_ms = (double)(t_now_ns() - t0) / 1e6;
	__atomic_store_n(&g_sh->by_stop, 1, __ATOMIC_RELEASE);
	t_wait_exit0(by, "bystander");
	CHECK_MSG(!g_sh->by_failed, "bystander failed: %s", g_sh->by_msg);
	snprintf(when, sizeof(when), "%s, before any repair by this process", g_cp->name);
	(void)scan_pairs(s.h, st + 2, when);
	/* ... and so does this process, on both partitions. */
	keel_txn_t *t;
	t0 = t_now_ns();
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_SYNC, &t));
	CHECK_OK(keel_txn_put(t, PART_L, "survivor", 8, "2", 1));
	CHECK_OK(keel_txn_put(t, PART_R, "survivor", 8, "2", 1));
	CHECK_OK(keel_txn_commit(t, NULL));
	double own_ms = (double)(t_now_ns() - t0) / 1e6;
	CHECK_MSG(own_ms < SURVIVE_MS_MAX, "%s: a commit after the death took %.1f ms", g_cp->name, own_ms);
	snprintf(when, sizeof(when), "%s, same arena", g_cp->name);
	check_pairs_live(s.h, g_cp, a, st, when);
	struct lockscan ls = { w, "" };
	CHECK_OK(keel_inspect_locks(s.h, lock_fn, &ls));
	CHECK_MSG(!ls.bad[0], "%s: %s", when, ls.bad);
	check_sound(s.h, when);
	if (is_ckpt(g_cp)) {
		CHECK_MSG(tmp_left, "%s: no checkpoint .tmp file after the death: the point is not between write and install",
			  g_cp->name);
		CHECK_OK(keel_checkpoint(s.h, NULL));
	}
	/* A process that comes later works too. */
	pid_t late = t_fork();
	if (late == 0) {
		keel_t *h2;
		CHECK_OK(keel_open(s.dir, &s.opt, &h2));
		CHECK_OK(keel_put(h2, PART_R, "late", 4, "3", 1, NULL));
		CHECK_OK(keel_close(h2));
		_exit(0);
	}
	t_wait_exit0(late, "late opener");
	struct digest before = digest_of(s.h);

	/* Power loss: every SYNC commit above returned after the worker's
	 * death, so the arena's whole state was durable. */
	t_store_close(&s);
	CHECK_OK(keel_unlink_arena(s.dir, &s.opt, 1));
	t_store_open(&s);
	snprintf(when, sizeof(when), "%s, recovered after power loss", g_cp->name);
	struct digest after = digest_of(s.h);
	CHECK_MSG(before.n == after.n && before.sum == after.sum && before.x == after.x,
		  "%s: %llu keys before, %llu after; digests %016llx/%016llx and %016llx/%016llx differ", when,
		  (unsigned long long)before.n, (unsigned long long)after.n, (unsigned long long)before.sum,
		  (unsigned long long)before.x, (unsigned long long)after.sum, (unsigned long long)after.x);
	check_pairs_live(s.h, g_cp, a, st, when);
	check_sound(s.h, when);
	printf("  %-18s arena: nth %u, acked %u, started %u; bystander +%u acks in %.1f ms, own commit %.1f ms; %llu keys recovered\n",
	       g_cp->name, nth, a, st, BYSTANDER_ACKS_AFTER, by_ms, own_ms, (unsigned long long)after.n);
	t_store_destroy(&s);
}

static void section_power(void)
{
	t_store_t s;
	uint32_t a, st, nth = pick_nth(200 + (uint64_t)(g_cp - g_points)), last_sync = 0;
	char when[128];

	open_durable(&s);
	(void)run_worker(&s, nth, &a, &st);
	CHECK_OK(keel_unlink_arena(s.dir, &s.opt, 1));
	t_store_open(&s);
	snprintf(when, sizeof(when), "%s, power loss at the death", g_cp->name);
	struct pairs ps = scan_pairs(s.h, st + 2, when);
	for (uint32_t i = 1; i <= a; i++)
		if (durability_of(i) == KEEL_DURABILITY_SYNC)
			last_sync = i;
	CHECK_MSG(!ps.hole, "%s: the pairs present have a hole (%u present, the highest %u): the journal was not replayed in order",
		  when, ps.present, ps.present_max);
	CHECK_MSG(ps.present_max >= last_sync, "%s: pairs 1..%u survived, but SYNC commit %u was acknowledged", when,
		  ps.present_max, last_sync);
	CHECK_MSG(ps.present_max <= st, "%s: pair %u present, the worker started only %u", when, ps.present_max, st);
	check_sound(s.h, when);
	CHECK_OK(commit_pair(s.h, WORKER_COMMITS_MAX + 1));
	check_sound(s.h, when);
	printf("  %-18s power: nth %u, acked %u (last SYNC %u), started %u; %u pairs recovered\n", g_cp->name, nth, a,
	       last_sync, st, ps.present);
	t_store_destroy(&s);
}

/* keel_crash_at's and KEEL_CRASH_AT's errors. */
static void section_errors(void)
{
	static const char *const bad_env[] = { "nowhere", "commit.done:", "commit.done:0", "commit.done:x",
					       "commit.done:99999999999", "commit.done:-1", "commit.done:2:3",
					       ":3", "COMMIT.DONE", "commit.done:stop:2", "commit.done::stop",
					       "commit.done:stopx", "stop", ":stop", "commit.done:0:stop",
					       "commit.done:2:STOP",
					       "commit.done:1:stop:0123456789012345678901234567890123456789"
					       "0123456789012345678901234567890123456789012345678901234567890123456789",
					       NULL };
	static const char *const names[] = { "commit.reserved", "checkpoint.written", NULL };
	t_store_t s;

	CHECK_ERR(keel_crash_at("commit.nowhere", 1), KEEL_E_INVAL);
	CHECK_MSG(strstr(keel_errmsg(), "commit.nowhere") && t_mentions(keel_errmsg(), names),
		  "the message should name the bad point and list the good ones: %s", keel_errmsg());
	CHECK_ERR(keel_crash_at("", 1), KEEL_E_INVAL);
	CHECK_ERR(keel_crash_at("Commit.Done", 1), KEEL_E_INVAL);
	CHECK_ERR(keel_crash_at("commit.done:2", 1), KEEL_E_INVAL);   /* the ":nth" form is for the variable */
	CHECK_ERR(keel_crash_at("commit.done", 0), KEEL_E_INVAL);
	CHECK_ERR(keel_stop_at("commit.nowhere", 1), KEEL_E_INVAL);
	CHECK_MSG(strstr(keel_errmsg(), "keel_stop_at") && t_mentions(keel_errmsg(), names),
		  "the message should name the call and list the points: %s", keel_errmsg());
	CHECK_ERR(keel_stop_at("commit.done:stop", 1), KEEL_E_INVAL);
	CHECK_ERR(keel_stop_at("commit.done", 0), KEEL_E_INVAL);
	CHECK_OK(keel_stop_at(NULL, 0));
	CHECK_OK(keel_crash_at(NULL, 0));
	CHECK_OK(keel_crash_at(NULL, 7));
	for (size_t i = 0; i < NPOINTS; i++)
		CHECK_OK(keel_crash_at(g_points[i].name, 1 + (uint32_t)i));
	CHECK_OK(keel_crash_at(NULL, 0));

	/* The variable, in a child (it is read once per process). */
	t_store_init(&s);
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_t *h = NULL;
		for (size_t i = 0; bad_env[i]; i++) {
			CHECK_MSG(setenv("KEEL_CRASH_AT", bad_env[i], 1) == 0, "setenv");
			for (int again = 0; again < 2; again++) {   /* every open refuses, not only the first */
				CHECK_ERR(keel_open(s.dir, &s.opt, &h), KEEL_E_INVAL);
				CHECK_MSG(strstr(keel_errmsg(), "KEEL_CRASH_AT"), "KEEL_CRASH_AT=\"%s\": the message should name the variable: %s",
					  bad_env[i], keel_errmsg());
				CHECK(h == NULL);
			}
		}
		CHECK_MSG(setenv("KEEL_CRASH_AT", "", 1) == 0, "setenv");   /* empty: unset */
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_put(h, PART_L, "a", 1, "b", 1, NULL));
		CHECK_OK(keel_close(h));
		exit(0);
	}
	t_wait_exit0(pid, "KEEL_CRASH_AT errors");
	t_store_destroy(&s);
}

/* Wait for a child that must die of SIGKILL; returns its stderr check. */
static void expect_killed(pid_t pid, const char *what)
{
	int st;
	char sb[96];
	t_waitpid(pid, &st);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "%s: %s, expected death by SIGKILL", what,
		  t_status_str(st, sb, sizeof(sb)));
}

static void section_env(void)
{
	t_store_t s;
	uint64_t n = 0;

	t_store_init(&s);   /* memory mode: commit points fire there too */
	/* KEEL_CRASH_AT=commit.done:2, two handles in one process: one count. */
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_t *h1, *h2;
		CHECK_MSG(setenv("KEEL_CRASH_AT", "commit.done:2", 1) == 0, "setenv");
		CHECK_OK(keel_open(s.dir, &s.opt, &h1));
		CHECK_OK(keel_put(h1, "env", "one", 3, "1", 1, NULL));
		__atomic_store_n(&g_sh->acked, 1, __ATOMIC_RELEASE);
		CHECK_OK(keel_open(s.dir, &s.opt, &h2));   /* does not re-arm */
		CHECK_OK(keel_put(h2, "env", "two", 3, "2", 1, NULL));
		__atomic_store_n(&g_sh->acked, 2, __ATOMIC_RELEASE);
		CHECK_OK(keel_put(h2, "env", "three", 5, "3", 1, NULL));
		exit(EXIT_NO_CRASH);
	}
	expect_killed(pid, "KEEL_CRASH_AT=commit.done:2");
	CHECK_EQ_U64(g_sh->acked, 1);
	t_store_open(&s);
	int found = 0;
	CHECK_OK(keel_contains(s.h, "env", "two", 3, &found));
	CHECK_MSG(found, "commit.done: the commit that reached it is applied, so \"two\" must be there");
	CHECK_OK(keel_count(s.h, "env", &n));
	CHECK_EQ_U64(n, 2);
	check_sound(s.h, "after KEEL_CRASH_AT=commit.done:2");

	/* Armed then disarmed; armed in the parent before fork(); a flush point
	 * a memory-mode store never reaches: none of them kills. */
	CHECK_OK(keel_crash_at("commit.done", 1));
	pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		for (int i = 0; i < 5; i++)
			CHECK_OK(keel_put(h, "env", "child", 5, "c", 1, NULL));
		CHECK_OK(keel_crash_at("commit.done", 1));
		CHECK_OK(keel_crash_at(NULL, 0));
		CHECK_OK(keel_put(h, "env", "child", 5, "d", 1, NULL));
		CHECK_OK(keel_crash_at("flush.written", 1));
		CHECK_OK(keel_crash_at("flush.synced", 1));
		CHECK_OK(keel_crash_at("checkpoint.written", 1));
		for (int i = 0; i < 5; i++)
			CHECK_OK(keel_put(h, "env", "child", 5, "e", 1, NULL));
		CHECK_OK(keel_close(h));
		exit(0);
	}
	CHECK_OK(keel_crash_at(NULL, 0));   /* before this process commits again */
	t_wait_exit0(pid, "inherited, disarmed or unreachable points");

	/* KEEL_CRASH_AT=commit.applied:2:stop: the child stops (SIGSTOP) at its
	 * second commit, with that commit not yet visible, once; after SIGCONT
	 * it finishes it and goes on. */
	__atomic_store_n(&g_sh->acked, 0, __ATOMIC_RELEASE);
	pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		CHECK_MSG(setenv("KEEL_CRASH_AT", "commit.applied:2:stop", 1) == 0, "setenv");
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		for (int i = 1; i <= 4; i++) {
			CHECK_OK(keel_put(h, "stop", "k", 1, &i, sizeof i, NULL));
			__atomic_store_n(&g_sh->acked, (uint32_t)i, __ATOMIC_RELEASE);
		}
		CHECK_OK(keel_close(h));
		exit(0);
	}
	int st;
	CHECK_MSG(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP,
		  "KEEL_CRASH_AT=commit.applied:2:stop: the child should stop itself with SIGSTOP");
	CHECK_EQ_U64(__atomic_load_n(&g_sh->acked, __ATOMIC_ACQUIRE), 1);
	int v = 0;
	size_t vlen = 0;
	CHECK_OK(keel_get(s.h, "stop", "k", 1, &v, sizeof v, &vlen, NULL));
	CHECK_MSG(v == 1, "while the child is stopped at commit.applied its 2nd put is not visible (read %d)", v);
	CHECK(kill(pid, SIGCONT) == 0);
	t_wait_exit0(pid, "KEEL_CRASH_AT=commit.applied:2:stop, continued");
	CHECK_EQ_U64(__atomic_load_n(&g_sh->acked, __ATOMIC_ACQUIRE), 4);
	CHECK_OK(keel_get(s.h, "stop", "k", 1, &v, sizeof v, &vlen, NULL));
	CHECK_MSG(v == 4, "after SIGCONT the child's puts all went through (read %d)", v);
	check_sound(s.h, "after a stop point");
	t_store_destroy(&s);
}

static void run_point_arena(void)
{
	section_arena();
}

static void run_point_power(void)
{
	section_power();
}

int main(int argc, char **argv)
{
	uint64_t seed = 0;
	int seed_given = 0, failed = 0;
	const char *only = NULL;

	t_begin("test_crashpoint");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = t_parse_u64("--seed", argv[++i]);
			seed_given = 1;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: test_crashpoint [--seed N] [--only NAME]\n"
			       "Kills a worker at each crash point of the commit path (keel_crash_at) and checks\n"
			       "the store in the same arena and after a power loss.  Sections: errors, env, and\n"
			       "POINT/arena and POINT/power for each point (commit.reserved ... checkpoint.written).\n"
			       "  --seed N     reproduce the random choices (nth, values)\n"
			       "  --only NAME  run the sections whose name contains NAME\n"
			       "Exit: 0 pass, 1 fail.\n");
			return 0;
		} else {
			fprintf(stderr, "test_crashpoint: unknown or incomplete argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	t_seed_init(seed_given, seed);
	g_sh = t_shared_alloc(sizeof(*g_sh));
	if (!only || strstr("errors", only))
		failed |= !t_run_section("errors", section_errors);
	if (!only || strstr("env", only)) {
		memset(g_sh, 0, sizeof(*g_sh));
		failed |= !t_run_section("env", section_env);
	}
	for (size_t i = 0; i < NPOINTS; i++) {
		char name[64];
		g_cp = &g_points[i];
		snprintf(name, sizeof(name), "%s/arena", g_cp->name);
		if (!only || strstr(name, only)) {
			memset(g_sh, 0, sizeof(*g_sh));
			failed |= !t_run_section(name, run_point_arena);
		}
		snprintf(name, sizeof(name), "%s/power", g_cp->name);
		if (!only || strstr(name, only)) {
			memset(g_sh, 0, sizeof(*g_sh));
			failed |= !t_run_section(name, run_point_power);
		}
	}
	return failed ? T_EXIT_FAIL : T_EXIT_PASS;
}
