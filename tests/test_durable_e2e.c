/*
 * test_durable_e2e.c - durable commits end to end on the real disk: several
 * processes committing SYNC, killed all at once before a "reboot", and killed
 * one at a time while they flush.
 *
 * The store lives in a fresh directory under /var/tmp (a disk, not tmpfs),
 * with the real io_uring journal.  It holds a bank (common/bank.h: 64
 * accounts in 8 partitions) and one counter per worker in partition "ctr".
 * A worker is a forked process with its own handle that loops on one kind of
 * transaction: a transfer between two random accounts plus +1 on its own
 * counter, conditioned on the versions it read (a conflict is retried).
 * When a commit returns 0 the worker writes the counter value and the LSN to
 * its slot of a MAP_SHARED log, so the log always holds, per worker, the last
 * commit acknowledged durable.
 *
 * Invariants checked on a store (live arena or recovered):
 *   - every acknowledged commit is there: counter[w] >= log[w].acked, and at
 *     most the one commit in flight more: counter[w] <= log[w].acked + 1;
 *   - the money is all there (no partial transaction);
 *   - every transaction bumps two account versions and one counter, so
 *     sum(account version - 1) == 2 * sum(counters): nothing lost or doubled;
 *   - keel_check finds nothing wrong.
 *
 * reboot   (3 rounds; --long 20) the workers commit for a while, all are SIGKILLed at
 *          once, the arena file is deleted (keel_unlink_arena, force) as a
 *          reboot would, and the store is reopened: recovery from checkpoint
 *          and journal must give a store that satisfies the invariants.
 *          Between rounds a checkpoint is taken, so recovery uses one.
 * killing  200 kills (--kills N; --long 3000): every few milliseconds one worker is
 *          SIGKILLed - every other time the one holding the flush lock, i.e.
 *          in the middle of a flush, when one does - and replaced by a new
 *          worker that continues its counter.  Survivors must keep
 *          committing: no worker may go STALL_S seconds without an
 *          acknowledged commit, and no single commit may take that long.
 *          Then every worker is killed; the invariants must hold on the
 *          arena as it stands, and again after deleting it and recovering.
 *          The flush lock must have been taken over from a dead flusher at
 *          least once, so the kills did hit flushes.
 *
 * waiters  (5 rounds) 12 processes commit 1-put SYNC transactions to their own
 *          partition, so most of them wait for a flush at any moment, and
 *          all are SIGKILLed at once.  A killed waiter must not stay
 *          counted among the flush waiters: after the survivor (this
 *          process) commits on its own for a while, or after
 *          keel_reclaim, the count must be back to 0.  (A count left high
 *          made every later flush wait for commits that never came: a lone
 *          committer went from thousands of commits a second to a few
 *          hundred.)
 *
 * stopped  a committer stopped (SIGSTOP) at random moments until another
 *          committer waits for it, for the journal (SYNC commits to their
 *          own partitions) or for a partition's lock or ring room (commits
 *          that do not wait for the disk, to one partition); the waiter
 *          must then say on stderr which process is stopped and how to
 *          continue it, and go on once it is continued.  And two stopped
 *          by keel_stop_at("commit.reserved"): behind its record another
 *          fills the commit ring (the ring-room note), or makes sync
 *          commits (the journal note, with the flush lock free).
 *
 * ckpt pin a checkpoint's pin (reader_enter_novis, snapshot {s, 0, 0}) held
 *          while more than VIS_STATES commits go by, in a memory-mode store:
 *          every commit must go through (a plain pin holds back the reuse
 *          of visibility-state slots, and so stopped every commit once
 *          VIS_STATES LSNs had passed it: async puts stalled 0.6-1.4 s at
 *          each checkpoint of a 1M-key store), and the pinned snapshot must
 *          still read the value it pinned (superseded blocks stay).  Then
 *          the control: under a user's read scope the commit after
 *          VIS_STATES fails with KEEL_E_BUSY (after the 10 s wait), naming
 *          the scope, and commits go on once it ends.
 *
 * --seed reproduces the random choices (not the timing).
 */
#include "common/bank.h"
#include "lib/internal.h"

#define WORKERS 4u
#define PARTS 8u
#define ACCOUNTS 64u
#define INITIAL 1000
#define REBOOTS 3u
#define REBOOTS_LONG 20u
#define KILLS_LONG 3000u
#define REBOOT_RUN_MS 800u
#define KILLS_DEFAULT 200u
#define KILL_GAP_MS_MAX 15u
#define STALL_S 5u
#define TXN_RETRIES_MAX 100000u

struct wlog {
	volatile uint64_t acked;      /* counter value of the last acknowledged commit */
	volatile uint64_t acked_lsn;
	volatile uint64_t last_ns;    /* CLOCK_MONOTONIC of that ack (or of the start) */
	volatile uint64_t commits;    /* acknowledged commits, all incarnations */
	volatile uint64_t max_commit_ns;
	volatile int32_t error;       /* an unexpected error of a worker */
	volatile int32_t pid;
	char msg[256];
};

static const bank_t g_bank = { PARTS, ACCOUNTS, INITIAL };
static char g_dir[PATH_MAX];
static keel_options_t g_opt;
static struct wlog *g_log;
static pid_t g_pids[WORKERS];
static uint64_t g_incarnation;
static unsigned g_reboots = REBOOTS;

static void cleanup(void)
{
	if (!g_dir[0] || getpid() != t_owner_pid)
		return;
	for (unsigned w = 0; w < WORKERS; w++)
		if (g_pids[w] > 0)
			kill(g_pids[w], SIGKILL);
	keel_unlink_arena(g_dir, &g_opt, 1);
	if (!(getenv("KEEL_TEST_KEEP") && getenv("KEEL_TEST_KEEP")[0] == '1'))
		t_rm_rf(g_dir);
}

static size_t ctr_key(unsigned w, char key[16])
{
	return (size_t)snprintf(key, 16, "w%02u", w);
}

/* ---- the worker -------------------------------------------------------------------------------- */

/* One transfer plus this worker's counter.  Returns 0 (with the new counter
 * value and LSN), KEEL_E_CONFLICT, or an error. */
static int txn_once(keel_t *h, unsigned w, uint64_t *rng, uint64_t *ctr, uint64_t *lsn)
{
	unsigned from = (unsigned)t_rand_below(rng, ACCOUNTS), to = (unsigned)t_rand_below(rng, ACCOUNTS - 1);
	int64_t amount = 1 + (int64_t)t_rand_below(rng, 100), vf, vt;
	char pf[24], pt[24], kf[16], kt[16], kc[16];
	size_t klf, klt, klc = ctr_key(w, kc), vl = 0;
	keel_meta_t mf, mt, mc;
	keel_txn_t *t = NULL;
	uint64_t c;
	int rc;

	to += to >= from;
	klf = bank_key(from, kf);
	klt = bank_key(to, kt);
	bank_part(&g_bank, from, pf);
	bank_part(&g_bank, to, pt);
	if ((rc = keel_txn_begin(h, KEEL_DURABILITY_SYNC, &t)))
		return rc;
	if ((rc = keel_txn_get(t, "ctr", kc, klc, &c, sizeof c, &vl, &mc)) || vl != 8 ||
	    (rc = keel_txn_get(t, pf, kf, klf, &vf, sizeof vf, &vl, &mf)) || vl != 8 ||
	    (rc = keel_txn_get(t, pt, kt, klt, &vt, sizeof vt, &vl, &mt)) || vl != 8) {
		keel_txn_abort(t);
		return rc ? rc : KEEL_E_CORRUPT;
	}
	c++;
	vf -= amount;
	vt += amount;
	if ((rc = keel_txn_put_if(t, "ctr", kc, klc, &c, 8, mc.version)) ||
	    (rc = keel_txn_put_if(t, pf, kf, klf, &vf, 8, mf.version)) ||
	    (rc = keel_txn_put_if(t, pt, kt, klt, &vt, 8, mt.version))) {
		keel_txn_abort(t);
		return rc;
	}
	rc = keel_txn_commit(t, lsn);
	if (rc == 0)
		*ctr = c;
	return rc;
}

static void worker_fail(struct wlog *l, int rc, const char *what)
{
	snprintf(l->msg, sizeof l->msg, "%s: %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	__atomic_store_n(&l->error, rc ? rc : -1, __ATOMIC_RELEASE);
	_exit(1);
}

/* Commit until killed. */
static void worker_main(unsigned w, uint64_t seed)
{
	struct wlog *l = &g_log[w];
	uint64_t rng = seed;
	keel_t *h = NULL;
	int rc;

	if ((rc = keel_open(g_dir, &g_opt, &h)))
		worker_fail(l, rc, "keel_open");
	for (;;) {
		uint64_t t0 = t_now_ns(), ctr = 0, lsn = 0, dt;
		unsigned tries = 0;

		while ((rc = txn_once(h, w, &rng, &ctr, &lsn)) == KEEL_E_CONFLICT && ++tries < TXN_RETRIES_MAX)
			;
		if (rc)
			worker_fail(l, rc, "commit");
		dt = t_now_ns() - t0;
		if (dt > l->max_commit_ns)
			l->max_commit_ns = dt;
		/* The ack: the counter first, the time last; the parent reads
		 * them after this process is dead. */
		__atomic_store_n(&l->acked, ctr, __ATOMIC_RELEASE);
		__atomic_store_n(&l->acked_lsn, lsn, __ATOMIC_RELEASE);
		__atomic_store_n(&l->commits, l->commits + 1, __ATOMIC_RELEASE);
		__atomic_store_n(&l->last_ns, t_now_ns(), __ATOMIC_RELEASE);
	}
}

static void spawn(unsigned w)
{
	uint64_t seed = t_rand_stream(1000 + g_incarnation++);
	pid_t pid;

	g_log[w].last_ns = t_now_ns(); /* a new worker has STALL_S to commit */
	pid = t_fork();

	if (pid == 0)
		worker_main(w, seed);
	g_pids[w] = pid;
	g_log[w].pid = pid;
}

static void kill_wait(unsigned w)
{
	int st;

	if (g_pids[w] <= 0)
		return;
	kill(g_pids[w], SIGKILL);
	t_waitpid(g_pids[w], &st);
	g_pids[w] = 0;
	if (g_log[w].error)
		T_FAIL("worker %u failed: %s", w, g_log[w].msg);
	if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
		char sb[96];
		T_FAIL("worker %u (pid %d) %s before it was killed", w, (int)g_log[w].pid, t_status_str(st, sb, sizeof sb));
	}
}

static void kill_all(void)
{
	for (unsigned w = 0; w < WORKERS; w++)
		if (g_pids[w] > 0)
			kill(g_pids[w], SIGKILL);
	for (unsigned w = 0; w < WORKERS; w++)
		kill_wait(w);
}

/* The arena file must stay the one this (attached) process maps: a store
 * rebuilt under a live process would split the processes in two. */
static void check_same_arena(keel_t *h, const char *what)
{
	char path[256];
	struct stat st;

	CHECK_OK(keel_arena_path(g_dir, &g_opt, path, sizeof path));
	CHECK_MSG(stat(path, &st) == 0, "%s: arena %s: %s", what, path, strerror(errno));
	CHECK_MSG(st.st_ino == h->a.ino && st.st_dev == h->a.dev,
		  "%s: the arena %s was replaced (inode %lu, this process maps inode %lu) while this process was attached;"
		  " the arena it maps has failed = %d", what, path, (unsigned long)st.st_ino, (unsigned long)h->a.ino,
		  h->root->failed);
}

/* A worker must never end by itself: fail, saying how it ended, if one did. */
static void check_alive(void)
{
	for (unsigned w = 0; w < WORKERS; w++) {
		int st;
		char sb[96];

		if (g_pids[w] <= 0 || waitpid(g_pids[w], &st, WNOHANG) != g_pids[w])
			continue;
		g_pids[w] = 0;
		T_FAIL("worker %u (pid %d) %s while the others were being killed%s%s", w, (int)g_log[w].pid,
		       t_status_str(st, sb, sizeof sb), g_log[w].error ? ": " : "", g_log[w].error ? g_log[w].msg : "");
	}
}

/* What the store and the workers are doing, for a stall report; with
 * KEEL_TEST_GDB=1 also every worker's stack. */
static void dump_stall(keel_t *h)
{
	struct keel_root *root = h->root;
	keel_stat_t st;

	if (keel_stat(h, &st) == 0)
		fprintf(stderr, "  store: next LSN %" PRIu64 ", applied %" PRIu64 ", durable %" PRIu64 "\n", st.next_lsn,
			st.applied_lsn, st.durable_lsn);
	fprintf(stderr, "  flush lock holder pid %u, taken over from the dead %" PRIu64 " times; ring head %" PRIu64
		", applied pos %" PRIu64 ", durable pos %" PRIu64 ", failed %d\n",
		root->flush_lock.holder_pid, root->flush_lock.repairs, ring_head(root), root->applied_pos,
		root->durable_pos, root->failed);
	for (unsigned w = 0; w < WORKERS; w++) {
		char path[64], buf[256] = "";
		FILE *f;

		if (g_pids[w] <= 0)
			continue;
		snprintf(path, sizeof path, "/proc/%d/wchan", (int)g_pids[w]);
		if ((f = fopen(path, "r"))) {
			if (!fgets(buf, sizeof buf, f))
				buf[0] = 0;
			fclose(f);
		}
		fprintf(stderr, "  worker %u pid %d: %" PRIu64 " commits, last ack %.1f s ago, kernel wait: %s\n", w,
			(int)g_pids[w], g_log[w].commits, (double)(t_now_ns() - g_log[w].last_ns) / 1e9, buf);
		if (getenv("KEEL_TEST_GDB") && getenv("KEEL_TEST_GDB")[0] == '1') {
			char cmd[128];
			snprintf(cmd, sizeof cmd, "gdb -q -batch -p %d -ex 'thread apply all bt' </dev/null 2>&1 | grep -E '^#' 1>&2", (int)g_pids[w]);
			if (system(cmd) != 0)
				fprintf(stderr, "  (gdb failed)\n");
		}
	}
}

/* ---- checks ------------------------------------------------------------------------------------- */

static void check_store(keel_t *h, const char *what)
{
	uint64_t ctr_sum = 0, ver_sum = 0;
	int64_t money = 0;

	for (unsigned w = 0; w < WORKERS; w++) {
		char key[16];
		size_t kl = ctr_key(w, key), vl = 0;
		uint64_t c = 0, acked = g_log[w].acked;
		keel_meta_t m;

		CHECK_OK(keel_get(h, "ctr", key, kl, &c, sizeof c, &vl, &m));
		CHECK(vl == 8);
		if (c < acked) {
			keel_stat_t st;
			uint64_t c2 = 0;
			keel_meta_t m2;

			if (keel_stat(h, &st) == 0)
				fprintf(stderr, "  store: next LSN %" PRIu64 ", applied %" PRIu64 ", durable %" PRIu64 "\n",
					st.next_lsn, st.applied_lsn, st.durable_lsn);
			fprintf(stderr, "  counter %" PRIu64 " read at version %" PRIu64 ", LSN %" PRIu64 "\n", c, m.version, m.lsn);
			keel_reclaim(h);
			if (keel_get(h, "ctr", key, kl, &c2, sizeof c2, &vl, &m2) == 0)
				fprintf(stderr, "  after keel_reclaim: counter %" PRIu64 " (version %" PRIu64 ", LSN %" PRIu64 ")\n", c2,
					m2.version, m2.lsn);
		}
		CHECK_MSG(c >= acked, "%s: worker %u's counter is %" PRIu64 " but commit %" PRIu64 " (LSN %" PRIu64
			  ") was acknowledged: AN ACKNOWLEDGED COMMIT WAS LOST", what, w, c, acked, g_log[w].acked_lsn);
		CHECK_MSG(c <= acked + 1, "%s: worker %u's counter is %" PRIu64 ", more than one past its last acknowledged %" PRIu64,
			  what, w, c, acked);
		CHECK_MSG(m.version == c + 1, "%s: worker %u's counter %" PRIu64 " has version %" PRIu64, what, w, c, m.version);
		ctr_sum += c;
	}
	for (unsigned a = 0; a < ACCOUNTS; a++) {
		char part[24], key[16];
		size_t kl = bank_key(a, key), vl = 0;
		int64_t v;
		keel_meta_t m;

		bank_part(&g_bank, a, part);
		CHECK_OK(keel_get(h, part, key, kl, &v, sizeof v, &vl, &m));
		CHECK(vl == 8 && m.version >= 1);
		money += v;
		ver_sum += m.version - 1;
	}
	CHECK_MSG(money == bank_total(&g_bank), "%s: the accounts hold %" PRId64 ", expected %" PRId64 " (a partial transaction)",
		  what, money, bank_total(&g_bank));
	CHECK_MSG(money == bank_sum_scope(h, &g_bank, NULL), "%s: a read scope sees another total", what);
	CHECK_MSG(ver_sum == 2 * ctr_sum, "%s: the accounts were written %" PRIu64 " times, the counters say %" PRIu64
		  " transfers (x2 = %" PRIu64 ")", what, ver_sum, ctr_sum, 2 * ctr_sum);
	CHECK_SOUND(h, KEEL_CHECK_REPAIR);
}

/* Delete the arena (a reboot) and recover; check; return the handle. */
static keel_t *reboot_and_check(const char *what)
{
	keel_t *h = NULL;
	keel_stat_t st;
	uint64_t t0;
	int rc;

	CHECK_OK(keel_unlink_arena(g_dir, &g_opt, 1));
	t0 = t_now_ns();
	rc = keel_open(g_dir, &g_opt, &h);
	CHECK_MSG(rc == 0, "%s: recovery failed: %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	CHECK_OK(keel_stat(h, &st));
	printf("test_durable_e2e: %s: recovered to LSN %" PRIu64 " in %.1f ms\n", what, st.applied_lsn,
	       (double)(t_now_ns() - t0) / 1e6);
	check_store(h, what);
	return h;
}

/* ---- the two parts --------------------------------------------------------------------------------- */

static void part_reboot(keel_t **hp)
{
	for (unsigned round = 1; round <= g_reboots; round++) {
		char what[64];
		uint64_t before = 0, after = 0;

		for (unsigned w = 0; w < WORKERS; w++) {
			before += g_log[w].commits;
			spawn(w);
		}
		CHECK_OK(keel_close(*hp));
		*hp = NULL;
		t_sleep_ns(REBOOT_RUN_MS * 1000000ull);
		kill_all();
		for (unsigned w = 0; w < WORKERS; w++)
			after += g_log[w].commits;
		CHECK_MSG(after > before, "reboot round %u: the workers acknowledged no commit in %u ms", round, REBOOT_RUN_MS);
		snprintf(what, sizeof what, "reboot %u (%" PRIu64 " commits acknowledged)", round, after - before);
		*hp = reboot_and_check(what);
		if (round < g_reboots) {
			uint64_t lsn = 0;
			CHECK_OK(keel_checkpoint(*hp, &lsn));
		}
	}
}

static void part_killing(keel_t *h, uint64_t kills, uint64_t *rng)
{
	uint64_t flusher_kills = 0, t0 = t_now_ns(), commits0 = 0, commits1 = 0, repairs0, repairs1;
	uint64_t takeovers = 0, takeover_ns_sum = 0, takeover_ns_max = 0;
	struct keel_root *root = h->root;

	repairs0 = root->flush_lock.repairs;
	for (unsigned w = 0; w < WORKERS; w++) {
		commits0 += g_log[w].commits;
		spawn(w);
	}
	for (uint64_t k = 0; k < kills; k++) {
		uint32_t holder;
		unsigned victim = (unsigned)t_rand_below(rng, WORKERS);
		uint64_t now;

		t_sleep_ns((1 + t_rand_below(rng, KILL_GAP_MS_MAX)) * 1000000ull);
		/* Every other kill: the process in the middle of a flush. */
		holder = __atomic_load_n(&root->flush_lock.holder_pid, __ATOMIC_ACQUIRE);
		if (k % 2 == 0 && holder)
			for (unsigned w = 0; w < WORKERS; w++)
				if (g_pids[w] == (pid_t)holder) {
					victim = w;
					flusher_kills++;
				}
		if (g_pids[victim] == (pid_t)holder && holder) {
			/* The flusher dies: the survivors must go on by
			 * themselves (the victim is replaced only after). */
			uint64_t others = 0, tk, lat;

			for (unsigned w = 0; w < WORKERS; w++)
				others += w == victim ? 0 : g_log[w].commits;
			kill_wait(victim);
			tk = t_now_ns();
			for (;;) {
				uint64_t n = 0;

				for (unsigned w = 0; w < WORKERS; w++)
					n += w == victim ? 0 : __atomic_load_n(&g_log[w].commits, __ATOMIC_ACQUIRE);
				lat = t_now_ns() - tk;
				if (n > others)
					break;
				check_alive();
				if (lat >= STALL_S * 1000000000ull) {
					dump_stall(h);
					T_FAIL("kill %" PRIu64 ": after the flusher (worker %u) died no survivor acknowledged a commit for %u s",
					       k, victim, STALL_S);
				}
				t_sleep_ns(200000);
			}
			takeover_ns_max = lat > takeover_ns_max ? lat : takeover_ns_max;
			takeover_ns_sum += lat;
			takeovers++;
		} else {
			kill_wait(victim);
		}
		check_alive();
		check_same_arena(h, "during the kills");
		spawn(victim);
		now = t_now_ns();
		for (unsigned w = 0; w < WORKERS; w++) {
			uint64_t last = __atomic_load_n(&g_log[w].last_ns, __ATOMIC_ACQUIRE);

			if (now > last && now - last >= STALL_S * 1000000000ull) {
				dump_stall(h);
				T_FAIL("kill %" PRIu64 ": worker %u (pid %d) has acknowledged nothing for %.1f s: commits stall", k, w,
				       (int)g_pids[w], (double)(now - last) / 1e9);
			}
			CHECK_MSG(!g_log[w].error, "worker %u failed: %s", w, g_log[w].msg);
		}
	}
	/* Everyone still makes progress after the last kill. */
	{
		uint64_t mark[WORKERS];

		for (unsigned w = 0; w < WORKERS; w++)
			mark[w] = g_log[w].commits;
		for (unsigned i = 0; i < STALL_S * 10u; i++) {
			unsigned moved = 0;

			for (unsigned w = 0; w < WORKERS; w++)
				moved += g_log[w].commits > mark[w];
			if (moved == WORKERS)
				break;
			t_sleep_ns(100000000ull);
		}
		for (unsigned w = 0; w < WORKERS; w++)
			CHECK_MSG(g_log[w].commits > mark[w], "worker %u committed nothing in %u s after the last kill", w, STALL_S);
	}
	kill_all();
	check_same_arena(h, "after the kills");
	repairs1 = root->flush_lock.repairs;
	for (unsigned w = 0; w < WORKERS; w++) {
		commits1 += g_log[w].commits;
		CHECK_MSG(g_log[w].max_commit_ns < STALL_S * 1000000000ull, "worker %u: a commit took %.1f s", w,
			  (double)g_log[w].max_commit_ns / 1e9);
	}
	printf("test_durable_e2e: killing: %" PRIu64 " kills (%" PRIu64 " of the flusher), %" PRIu64
	       " commits acknowledged in %.1f s, the flush lock taken over from a dead flusher %" PRIu64
	       " times; slowest commit %.1f ms\n",
	       kills, flusher_kills, commits1 - commits0, (double)(t_now_ns() - t0) / 1e9, repairs1 - repairs0,
	       (double)({
		       uint64_t m = 0;
		       for (unsigned w = 0; w < WORKERS; w++)
			       m = g_log[w].max_commit_ns > m ? g_log[w].max_commit_ns : m;
		       m;
	       }) / 1e6);
	if (takeovers)
		printf("test_durable_e2e: after a flusher's death the survivors' next ack came in %.1f ms on average, %.1f ms at most"
		       " (%" PRIu64 " deaths)\n",
		       (double)takeover_ns_sum / (double)takeovers / 1e6, (double)takeover_ns_max / 1e6, takeovers);
	if (kills >= 50)
		CHECK_MSG(repairs1 > repairs0, "no kill hit a process holding the flush lock (%" PRIu64 " tried)", flusher_kills);
	check_store(h, "after the kills, arena as it stands");
}

#define WAITERS 12u
static void part_waiters(keel_t *h)
{
	struct keel_root *root = h->root;
	pid_t pids[WAITERS];
	uint64_t counted = 0;

	for (int round = 0; round < 5; round++) {
		for (unsigned i = 0; i < WAITERS; i++) {
			pids[i] = t_fork();
			if (pids[i] == 0) {
				keel_t *c;
				char key[32];
				if (keel_open(g_dir, &g_opt, &c) != 0)
					_exit(3);
				for (uint64_t n = 0;; n++) {
					int kl = snprintf(key, sizeof key, "w%u-%llu", i, (unsigned long long)(n % 64));
					if (keel_put(c, "waiters", key, (size_t)kl, &n, sizeof n, NULL) != 0)
						_exit(4);
				}
			}
		}
		usleep(150000 + 50000 * (unsigned)round);
		counted += shm_load32(&root->flush_waiters) > 0;
		for (unsigned i = 0; i < WAITERS; i++)
			kill(pids[i], SIGKILL);
		for (unsigned i = 0; i < WAITERS; i++) {
			int st;
			t_waitpid(pids[i], &st);
			CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "waiter %u ended before it was killed", i);
		}
		if (round % 2 == 0) {
			/* The survivor alone: its flushes find the dead waiters. */
			uint64_t t0 = t_now_ns(), n = 0;
			while (t_now_ns() - t0 < 300000000ull) {
				CHECK_OK(keel_put(h, "waiters", "solo", 4, &n, sizeof n, NULL));
				n++;
			}
		} else {
			int reaped = keel_reclaim(h);
			CHECK_MSG(reaped >= 0, "keel_reclaim: %s", keel_errmsg());
		}
		CHECK_MSG(shm_load32(&root->flush_waiters) == 0,
			  "round %d: %u flush waiters still counted after every waiter was killed (%s)", round,
			  shm_load32(&root->flush_waiters), round % 2 == 0 ? "after 300 ms of lone commits" : "after keel_reclaim");
	}
	CHECK_MSG(counted > 0, "no round caught a process waiting for a flush");
	printf("test_durable_e2e: waiters: killed waiters leave the count in all 5 rounds (%llu rounds had waiters)\n",
	       (unsigned long long)counted);
}

/*
 * stopped: a process stopped (SIGSTOP) while it holds others up is named.
 * A commits in a loop; B, with its stderr in a file, too.  A is stopped at
 * random moments until B's commits stop; then within SHM_STALL_NOTE_NS and
 * some, B's stderr must name A as stopped and say how to continue it.
 * After SIGCONT, B commits again.  Two cases:
 *   journal  SYNC commits to partitions of their own: B waits for the
 *            journal (A stopped holding the flush lock, or between
 *            reserving and completing its record);
 *   lock     commits that do not wait for the disk, to one partition: B
 *            waits for the partition's lock (A stopped inside a commit), or
 *            for room in the commit ring behind A's unfinished record.
 * And two more, stopped_reserved below: A stopped by keel_stop_at.
 */
#define STOPPED_TRIES 200u
static void stopped_loop(const char *part, const char *key, int durability, volatile uint64_t *commits)
{
	keel_options_t o = g_opt;
	keel_t *c;
	uint64_t n = 0;

	o.durability = durability;
	if (keel_open(g_dir, &o, &c) != 0)
		_exit(3);
	for (;;) {
		if (keel_put(c, part, key, strlen(key), &n, sizeof n, NULL) != 0)
			_exit(4);
		n++;
		__atomic_store_n(commits, n, __ATOMIC_RELEASE);
	}
}

static void stopped_case(const char *name, const char *part_a, const char *part_b, int durability)
{
	volatile uint64_t *commits = t_shared_alloc(2 * sizeof(uint64_t));
	char errpath[] = "/tmp/keel-e2e-stall-XXXXXX", text[2048] = "", want[64];
	int efd = mkstemp(errpath), caught = 0;
	uint64_t rng = t_rand_stream(9);
	unsigned tries;

	CHECK_MSG(efd >= 0, "mkstemp %s: %s", errpath, strerror(errno));
	pid_t a = t_fork();
	if (a == 0)
		stopped_loop(part_a, "a", durability, &commits[0]);
	pid_t b = t_fork();
	if (b == 0) {
		dup2(efd, 2);
		stopped_loop(part_b, "b", durability, &commits[1]);
	}
	while (!__atomic_load_n(&commits[0], __ATOMIC_ACQUIRE) || !__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE))
		usleep(1000);
	for (tries = 0; tries < STOPPED_TRIES && !caught; tries++) {
		usleep((useconds_t)t_rand_below(&rng, 3000));
		CHECK(kill(a, SIGSTOP) == 0);
		usleep(5000);
		uint64_t before = __atomic_load_n(&commits[1], __ATOMIC_ACQUIRE);
		usleep(50000);
		if (__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) == before) {
			/* B may wait for A: then the note must come, naming A.  A
			 * B that commits again while A is still stopped waited
			 * for something else (a slow disk on a loaded host). */
			int moved = 0;
			snprintf(want, sizeof want, "process %d is stopped", (int)a);
			for (int ms = 0; ms < 10000 && !caught && !moved; ms += 20) {
				ssize_t n = pread(efd, text, sizeof text - 1, 0);
				text[n > 0 ? n : 0] = 0;
				caught = strstr(text, want) != NULL;
				moved = !caught && __atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) != before;
				usleep(20000);
			}
			CHECK_MSG(caught || moved, "%s: B waited 10 s for stopped process %d without a note naming it; its "
				  "stderr: %s", name, (int)a, text);
			CHECK_MSG(strstr(text, "kill -CONT"), "%s: the note does not say how to continue: %s", name, text);
			CHECK_MSG(__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) == before,
				  "%s: B committed while stopped process %d was named as holding it up", name, (int)a);
		}
		CHECK(kill(a, SIGCONT) == 0);
		if (caught) {
			uint64_t b0 = __atomic_load_n(&commits[1], __ATOMIC_ACQUIRE), t0 = t_now_ns();
			while (__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) == b0 && t_now_ns() - t0 < 5000000000ull)
				usleep(1000);
			CHECK_MSG(__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) > b0, "%s: B did not commit within 5 s of SIGCONT",
				  name);
		}
	}
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	int st;
	t_waitpid(a, &st);
	t_waitpid(b, &st);
	close(efd);
	unlink(errpath);
	CHECK_MSG(caught, "%s: in %u stops, process A never held B up", name, STOPPED_TRIES);
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	printf("test_durable_e2e: stopped, %s: after %u stops, B waited for stopped A and said: %s\n", name, tries,
	       text);
}

/*
 * Made certain with keel_stop_at: A stops itself between reserving its
 * commit record and writing it (commit.reserved), so neither the ring's
 * applied end nor its durable end can pass that record.  B commits to a
 * partition of its own: in memory mode until the ring is full, with sync
 * commits at once (its flush turns find nothing to write: the flush lock
 * is free, so a wait that only noted a busy flusher said nothing).  B must
 * name A, saying said1 and said2.  After SIGCONT both go on, and A's
 * commit is there.
 */
static void stopped_reserved(const char *name, int durability, const char *part_a, const char *part_b,
			     const char *said1, const char *said2)
{
	volatile uint64_t *commits = t_shared_alloc(2 * sizeof(uint64_t));
	char errpath[] = "/tmp/keel-e2e-ring-XXXXXX", text[2048] = "", want[64];
	int efd = mkstemp(errpath), caught = 0;

	CHECK_MSG(efd >= 0, "mkstemp %s: %s", errpath, strerror(errno));
	pid_t a = t_fork();
	if (a == 0) {
		keel_options_t o = g_opt;
		keel_t *c;
		o.durability = durability;
		if (keel_open(g_dir, &o, &c) != 0 || keel_stop_at("commit.reserved", 1) != 0)
			_exit(3);
		if (keel_put(c, part_a, "a", 1, "stopped here", 12, NULL) != 0)
			_exit(4);
		__atomic_store_n(&commits[0], 1, __ATOMIC_RELEASE);
		keel_close(c);
		_exit(0);
	}
	uint64_t t0 = t_now_ns();
	while (!shm_pid_stopped((uint32_t)a, 0)) {
		CHECK_MSG(t_now_ns() - t0 < 10000000000ull, "A did not stop at commit.reserved within 10 s");
		usleep(1000);
	}
	pid_t b = t_fork();
	if (b == 0) {
		dup2(efd, 2);
		stopped_loop(part_b, "b", durability, &commits[1]);
	}
	snprintf(want, sizeof want, "process %d is stopped", (int)a);
	for (int ms = 0; ms < 10000 && !caught; ms += 20) {
		ssize_t n = pread(efd, text, sizeof text - 1, 0);
		text[n > 0 ? n : 0] = 0;
		caught = strstr(text, want) != NULL;
		usleep(20000);
	}
	CHECK_MSG(caught, "%s: B did not name stopped process %d within 10 s (B committed %llu); its stderr: %s",
		  name, (int)a, (unsigned long long)__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE), text);
	CHECK_MSG(strstr(text, said1) && strstr(text, said2) && strstr(text, "kill -CONT"),
		  "%s: the note should say \"%s\", \"%s\" and how to continue A: %s", name, said1, said2, text);
	uint64_t before = __atomic_load_n(&commits[1], __ATOMIC_ACQUIRE);
	usleep(100000);
	CHECK_MSG(__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) == before, "%s: B committed while A held it up", name);
	CHECK(kill(a, SIGCONT) == 0);
	t_wait_exit0(a, "stopped at commit.reserved: A after SIGCONT");
	CHECK(__atomic_load_n(&commits[0], __ATOMIC_ACQUIRE) == 1);
	t0 = t_now_ns();
	while (__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) == before && t_now_ns() - t0 < 5000000000ull)
		usleep(1000);
	CHECK_MSG(__atomic_load_n(&commits[1], __ATOMIC_ACQUIRE) > before, "%s: B did not commit within 5 s of SIGCONT", name);
	kill(b, SIGKILL);
	int st;
	t_waitpid(b, &st);
	close(efd);
	unlink(errpath);
	keel_t *c;
	char v[32];
	size_t vlen = 0;
	CHECK_OK(keel_open(g_dir, &g_opt, &c));
	CHECK_OK(keel_get(c, part_a, "a", 1, v, sizeof v, &vlen, NULL));
	CHECK(vlen == 12 && memcmp(v, "stopped here", 12) == 0);
	CHECK_OK(keel_close(c));
	char *nl = strchr(text, '\n');
	if (nl)
		*nl = 0;
	printf("test_durable_e2e: stopped, %s: B (%llu commits) said: %s\n", name, (unsigned long long)before, text);
}

static void part_stopped(void)
{
	stopped_case("journal", "stopped-a", "stopped-b", KEEL_DURABILITY_SYNC);
	stopped_case("lock", "stopped", "stopped", KEEL_DURABILITY_MEMORY);
	/* Made certain with keel_stop_at: behind A's reserved record, B
	 * fills the ring (memory mode), or waits for the journal (sync: the
	 * flush lock is free, and each flush turn finds nothing to write). */
	stopped_reserved("ring", KEEL_DURABILITY_MEMORY, "ring-a", "ring-b", "room in the commit ring",
			 "in the middle of its commit");
	stopped_reserved("journal, reserved", KEEL_DURABILITY_SYNC, "jrsv-a", "jrsv-b", "for the journal",
			 "between reserving and completing its commit record");
}

static void part_ckpt_pin(void)
{
	char dir[] = "/var/tmp/keel-e2e-pin-XXXXXX";
	keel_options_t o;
	keel_t *h;
	struct part *p;
	struct snap snap;
	uint64_t n = VIS_STATES + 20000, t0;

	CHECK_MSG(mkdtemp(dir) != NULL, "mkdtemp %s: %s", dir, strerror(errno));
	keel_options_init(&o);
	o.durability = KEEL_DURABILITY_MEMORY;
	CHECK_OK(keel_open(dir, &o, &h));
	CHECK_OK(keel_put(h, "pin", "pinned", 6, "old", 3, NULL));
	CHECK_OK(part_find(h, "pin", &p));
	CHECK(p != NULL);
	struct shm_reader *r = reader_enter_novis(h, &snap);
	CHECK(r != NULL);
	struct snap at = { snap.w, 0, 0 };   /* as keel_checkpoint reads */
	t0 = t_now_ns();
	for (uint64_t i = 0; i < n; i++) {
		char k[24];
		int kl = snprintf(k, sizeof(k), "k%llu", (unsigned long long)(i % 4096));
		CHECK_OK(keel_put(h, "pin", k, (size_t)kl, &i, sizeof(i), NULL));
		if (i == n / 2)
			CHECK_OK(keel_put(h, "pin", "pinned", 6, "new", 3, NULL));
	}
	const struct node *v = table_get(h, p, "pinned", 6, key_hash("pinned", 6), &at);
	CHECK_MSG(v && v->vlen == 3 && memcmp(node_val(v), "old", 3) == 0,
		  "the pinned snapshot lost its value of \"pinned\"");
	reader_leave(h, r);
	char buf[8];
	size_t vl = 0;
	CHECK_OK(keel_get(h, "pin", "pinned", 6, buf, sizeof(buf), &vl, NULL));
	CHECK(vl == 3 && memcmp(buf, "new", 3) == 0);
	printf("test_durable_e2e: ckpt pin: %llu commits (VIS_STATES %u) under a checkpoint's pin in %.2f s; the pin still reads its value\n",
	       (unsigned long long)n, VIS_STATES, (double)(t_now_ns() - t0) / 1e9);
	/* The control: a user's read scope does hold the slots back, and the
	 * commit that would reuse one fails after the wait, naming the scope. */
	keel_read_t *rs;
	int rc = 0;
	uint64_t i = 0;
	CHECK_OK(keel_read_begin(h, &rs));
	t0 = t_now_ns();
	for (; i < VIS_STATES + 1000 && rc == 0; i++) {
		char k[24];
		int kl = snprintf(k, sizeof(k), "k%llu", (unsigned long long)(i % 4096));
		rc = keel_put(h, "pin", k, (size_t)kl, &i, sizeof(i), NULL);
	}
	CHECK_MSG(rc == KEEL_E_BUSY && t_mentions(keel_errmsg(), (const char *const[]){ "read scope", NULL }),
		  "a read scope open for %llu commits: put returned %d (%s), expected KEEL_E_BUSY naming the scope: %s",
		  (unsigned long long)i, rc, keel_strerror(rc), keel_errmsg());
	CHECK_MSG(i > VIS_STATES - 1000, "a read scope stopped commits after only %llu", (unsigned long long)i);
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", keel_errmsg());
	keel_read_end(rs);
	CHECK_OK(keel_put(h, "pin", "after", 5, "x", 1, NULL));
	printf("test_durable_e2e: ckpt pin: a read scope held commits back after %llu of them; the next put failed in %.1f s: %s\n",
	       (unsigned long long)(i - 1), (double)(t_now_ns() - t0) / 1e9, msg);
	CHECK_OK(keel_close(h));
	CHECK_OK(keel_unlink_arena(dir, &o, 1));
	CHECK(rmdir(dir) == 0);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, kills = KILLS_DEFAULT, rng;
	int seed_given = 0;
	keel_t *h = NULL;

	t_begin("test_durable_e2e");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = t_parse_u64("--seed", argv[++i]);
			seed_given = 1;
		} else if (!strcmp(argv[i], "--long")) {
			g_reboots = REBOOTS_LONG;
			kills = KILLS_LONG;
		} else if (!strcmp(argv[i], "--kills") && i + 1 < argc) {
			kills = t_parse_u64("--kills", argv[++i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: test_durable_e2e [--seed N] [--kills N] [--long]\n"
			       "Several processes commit SYNC on a store under /var/tmp; all are killed and\n"
			       "the arena deleted (a reboot), %u times; then %u kills of single workers,\n"
			       "the flusher every other time.  Every acknowledged commit must survive.\n"
			       "  --kills N  single kills (default %u)\n"
			       "  --long     %u reboots and %u kills\n"
			       "Exit: 0 pass, 1 fail.\n",
			       REBOOTS, KILLS_DEFAULT, KILLS_DEFAULT, REBOOTS_LONG, KILLS_LONG);
			return 0;
		} else {
			fprintf(stderr, "test_durable_e2e: unknown or incomplete argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	t_seed_init(seed_given, seed);
	rng = t_rand_stream(1);
	{
		char tmp[] = "/var/tmp/keel-e2e-XXXXXX";
		CHECK_MSG(mkdtemp(tmp) != NULL, "mkdtemp %s: %s", tmp, strerror(errno));
		CHECK_MSG(realpath(tmp, g_dir) != NULL, "realpath: %s", strerror(errno));
	}
	keel_options_init(&g_opt);
	g_opt.durability = KEEL_DURABILITY_SYNC;
	atexit(cleanup);
	g_log = t_shared_alloc(WORKERS * sizeof *g_log);
	CHECK_OK(keel_open(g_dir, &g_opt, &h));
	bank_setup(h, &g_bank);
	for (unsigned w = 0; w < WORKERS; w++) {
		char key[16];
		size_t kl = ctr_key(w, key);
		uint64_t zero = 0;

		CHECK_OK(keel_put(h, "ctr", key, kl, &zero, 8, NULL));
		g_log[w].last_ns = t_now_ns();
	}
	check_store(h, "after setup");
	part_ckpt_pin();
	part_waiters(h);
	part_stopped();
	part_reboot(&h);
	part_killing(h, kills, &rng);
	CHECK_OK(keel_close(h));
	h = reboot_and_check("final recovery");
	CHECK_OK(keel_close(h));
	printf("test_durable_e2e: PASS\n");
	return 0;
}
