/*
 * test_kill9 - SIGKILL torture: workers are killed at random instructions
 * while they commit transfers, and the store must stay whole.
 *
 * Eight worker processes run the bank workload of common/bank.h (64 accounts
 * over 8 partitions, transfers as optimistic transactions).  Each also
 * overwrites keys of its own in a partition "side" with values of random
 * length (so kills land in allocation and reclamation too), sums all balances
 * in a read scope every 32 transfers and walks a partition with an iterator
 * now and then (so kills land while a reader pin is held).  A worker fails on
 * any error other than KEEL_E_CONFLICT.
 *
 * The parent is the killer.  It sleeps a random 0-3 ms, sends SIGKILL to a
 * random worker (which may be anywhere: in a commit, holding partition locks,
 * in a read scope, or still attaching), reaps it, checks the store and forks
 * a replacement.  The checks, after every kill by default (--check-every N to
 * thin them; the output says which):
 *   - the sum of all balances in a read scope is the initial total;
 *   - keel_check(h, KEEL_CHECK_REPAIR, ...) returns 0 and reports nothing;
 *   - keel_processes no longer lists the killed pid as alive, and lists no
 *     dead process holding locks.
 * At the end: all workers stop cleanly; the total holds; account versions
 * account for every acknowledged transfer (2 x acked <= sum(version - 1) <=
 * 2 x (acked + kills)); keel_check is clean; and after keel_reclaim() the
 * arena's arena_bytes_used is within 1% of a fresh store loaded with the same
 * keys and values (no memory leaked by the killed).
 *
 * A watchdog fails the test when a round makes no progress for 60 s, and
 * says where the killer and the workers are (with KEEL_TEST_GDB=1, their
 * stacks too).
 *
 * Informational: how long survivors stall around a kill, measured by each
 * worker as the gap between two successive commits of its own that spans a
 * kill (p50, p99, max), next to the largest gap seen at all.
 *
 * Usage: test_kill9 [--seed S] [--kills N] [--workers N] [--check-every N]
 */
#include "common/bank.h"

#define WORKERS_MAX 16
#define SIDE_KEYS 64            /* side keys per worker slot */
#define SIDE_VAL_MAX 512        /* bytes */
#define SAMPLES_MAX (1u << 18)  /* stall samples kept */
#define SLEEP_NS_MAX 3000000ull /* between kills */

struct kworker {
	volatile pid_t pid;
	volatile uint64_t commits;    /* acknowledged transfers, all incarnations */
	volatile uint64_t spawns;
	volatile uint64_t gap_max_ns; /* largest gap between successive commits */
};

struct kshared {
	volatile int stop;
	volatile uint64_t kill_seq;   /* bumped by the killer after each kill */
	volatile uint64_t nsamples;
	struct kworker w[WORKERS_MAX];
	uint32_t samples_us[SAMPLES_MAX]; /* commit gaps spanning a kill */
};

static struct kshared *sh;
static t_store_t st;
static bank_t bank = { .parts = 8, .accounts = 64, .initial = 1000000 };
static unsigned n_workers = 8;
static uint64_t n_kills = 1000, check_every = 1;

/* ---- the worker ---------------------------------------------------------------------- */

static void side_write(keel_t *h, unsigned w, uint64_t *rng)
{
	unsigned char val[SIDE_VAL_MAX];
	char key[16];
	size_t kl = (size_t)snprintf(key, sizeof(key), "w%02u:%02u", w,
				     (unsigned)t_rand_below(rng, SIDE_KEYS));
	size_t vl = 16 + (size_t)t_rand_below(rng, SIDE_VAL_MAX - 16 + 1);
	int rc;

	t_rand_fill(rng, val, vl);
	rc = keel_put(h, "side", key, kl, val, vl, NULL);
	CHECK_MSG(rc == 0, "worker %u: put side/%s: %d (%s)", w, key, rc, keel_strerror(rc));
}

static void iter_walk(keel_t *h, unsigned w, uint64_t *rng)
{
	char part[24];
	unsigned p = (unsigned)t_rand_below(rng, bank.parts), want = 0, n = 0;
	keel_iter_t *it = NULL;
	const void *k, *v;
	size_t kl, vl;
	int rc;

	bank_part(&bank, p, part);
	for (unsigned a = p; a < bank.accounts; a += bank.parts)
		want++;
	CHECK_OK(keel_iter_open(h, part, NULL, 0, &it));
	while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1) {
		CHECK_MSG(vl == sizeof(int64_t), "worker %u: %s has a %zu-byte value", w, part, vl);
		CHECK_MSG(++n <= want, "worker %u: iterator over %s does not end", w, part);
	}
	CHECK_MSG(rc == 0, "worker %u: iter_next: %d (%s)", w, rc, keel_strerror(rc));
	keel_iter_close(it);
	CHECK_MSG(n == want, "worker %u: iterator saw %u accounts in %s, expected %u", w, n, part,
		  want);
}

static void worker_main(unsigned w, uint64_t spawn)
{
	keel_t *h = NULL;
	uint64_t rng = t_rand_stream(1000 + spawn * WORKERS_MAX + w), lsn = 0, n = 0;
	uint64_t prev_ns = 0, seen_kill = sh->kill_seq;
	int rc;

	rc = keel_open(st.dir, &st.opt, &h);
	CHECK_MSG(rc == 0, "worker %u: keel_open: %d (%s)", w, rc, keel_strerror(rc));
	while (!sh->stop) {
		uint64_t now, kills;

		rc = bank_transfer(h, &bank, &rng, &lsn, NULL);
		CHECK_MSG(rc == 0, "worker %u: transfer: %s: %d (%s)", w, bank_failed_step, rc,
			  keel_strerror(rc));
		sh->w[w].commits++;
		now = t_now_ns();
		kills = sh->kill_seq;
		if (prev_ns) {
			uint64_t gap = now - prev_ns;

			if (gap > sh->w[w].gap_max_ns)
				sh->w[w].gap_max_ns = gap;
			if (kills != seen_kill) {
				uint64_t i = __atomic_fetch_add(&sh->nsamples, 1, __ATOMIC_RELAXED);

				if (i < SAMPLES_MAX)
					sh->samples_us[i] = (uint32_t)(gap / 1000 > UINT32_MAX
								       ? UINT32_MAX : gap / 1000);
			}
		}
		prev_ns = now;
		seen_kill = kills;
		side_write(h, w, &rng);
		if (++n % 32 == 0) {
			int64_t sum = bank_sum_scope(h, &bank, NULL);

			CHECK_MSG(sum == bank_total(&bank), "worker %u: read scope total %" PRId64
				  ", expected %" PRId64, w, sum, bank_total(&bank));
		}
		if (n % 97 == 0)
			iter_walk(h, w, &rng);
	}
	CHECK_OK(keel_close(h));
	exit(0);
}

static void spawn(unsigned w)
{
	pid_t pid;
	uint64_t s = sh->w[w].spawns++;

	pid = t_fork();
	if (pid == 0)
		worker_main(w, s);
	sh->w[w].pid = pid;
}

/* For a failure message: which accounts the killer cannot read right now,
 * the partitions' key counts, and the total of those it can. */
static void diag_store(void)
{
	int64_t sum = 0;
	unsigned missing = 0;

	for (unsigned a = 0; a < bank.accounts; a++) {
		char part[24], key[16];
		size_t kl = bank_key(a, key), vl = 0;
		int64_t v = 0;
		int rc;

		bank_part(&bank, a, part);
		rc = keel_get(st.h, part, key, kl, &v, sizeof(v), &vl, NULL);
		if (rc) {
			fprintf(stderr, "test_kill9:   killer: get %s/%s: %d (%s)\n", part, key, rc,
				keel_strerror(rc));
			missing++;
		} else {
			sum += v;
		}
	}
	for (unsigned p = 0; p < bank.parts; p++) {
		char part[24];
		uint64_t n = 0;

		bank_part(&bank, p, part);
		if (keel_count(st.h, part, &n) == 0)
			fprintf(stderr, "test_kill9:   killer: %s holds %" PRIu64 " keys\n", part, n);
	}
	fprintf(stderr, "test_kill9:   killer: %u of %u accounts unreadable by keel_get; the rest "
		"total %" PRId64 " (not one snapshot)\n", missing, bank.accounts, sum);
	/* The same in one read scope: a snapshot, so the total must hold. */
	{
		keel_read_t *r = NULL;
		int rc = keel_read_begin(st.h, &r);

		sum = 0;
		missing = 0;
		for (unsigned a = 0; rc == 0 && a < bank.accounts; a++) {
			char part[24], key[16];
			size_t kl = bank_key(a, key), vl = 0;
			const void *val = NULL;
			int64_t v;

			bank_part(&bank, a, part);
			if (keel_read_get(r, part, key, kl, &val, &vl, NULL) != 0 || vl != sizeof(v)) {
				missing++;
				continue;
			}
			memcpy(&v, val, sizeof(v));
			sum += v;
		}
		if (rc == 0) {
			fprintf(stderr, "test_kill9:   killer: in one read scope at LSN %" PRIu64 ", %u "
				"accounts unreadable, the rest total %" PRId64 " (expected %" PRId64
				")\n", keel_read_lsn(r), missing, sum, bank_total(&bank));
			keel_read_end(r);
		} else {
			fprintf(stderr, "test_kill9:   killer: keel_read_begin: %d (%s)\n", rc,
				keel_strerror(rc));
		}
	}
}

/* Fail if a worker has exited by itself (it found an error). */
static void check_no_worker_died(void)
{
	for (unsigned w = 0; w < n_workers; w++) {
		int stv;
		pid_t r = waitpid(sh->w[w].pid, &stv, WNOHANG);
		char sb[96];

		if (r != 0) {
			/* Say what keel_check sees at this moment, then fail. */
			struct t_check_log log = { 0 };
			int rc = keel_check(st.h, 0, t_check_report, &log);

			diag_store();
			T_FAIL("worker %u (pid %d) %s before it was killed; keel_check now returns %d "
			       "(%s) with %u reports", w, (int)sh->w[w].pid,
			       r < 0 ? strerror(errno) : t_status_str(stv, sb, sizeof(sb)), rc,
			       keel_strerror(rc), log.reports);
		}
	}
}

/* ---- the killer's checks ------------------------------------------------------------------- */

struct pcheck {
	pid_t killed;
	int killed_alive;
	unsigned dead_with_locks;
	pid_t dead_pid;
	uint32_t dead_locks;
};

static int pcheck_cb(void *ctx, const keel_proc_info_t *p)
{
	struct pcheck *c = ctx;

	if (p->pid == c->killed && p->alive)
		c->killed_alive = 1;
	if (!p->alive && p->locks_held) {
		c->dead_with_locks++;
		c->dead_pid = p->pid;
		c->dead_locks = p->locks_held;
	}
	return 0;
}

static void check_after_kill(uint64_t k, pid_t killed)
{
	int64_t sum = bank_sum_scope(st.h, &bank, NULL);
	struct pcheck pc = { .killed = killed };
	struct t_check_log log = { 0 };
	int rc;

	CHECK_MSG(sum == bank_total(&bank), "after kill %" PRIu64 " (pid %d): total %" PRId64
		  ", expected %" PRId64, k, (int)killed, sum, bank_total(&bank));
	rc = keel_check(st.h, KEEL_CHECK_REPAIR, t_check_report, &log);
	if (rc != 0 || log.reports != 0) {
		/* Tell lasting damage from a report that raced with the live
		 * workers: kill them all and check the quiet arena again. */
		struct t_check_log again = { 0 };
		int rc2;

		for (unsigned w = 0; w < n_workers; w++)
			kill(sh->w[w].pid, SIGKILL);
		for (unsigned w = 0; w < n_workers; w++)
			waitpid(sh->w[w].pid, NULL, 0);
		fprintf(stderr, "test_kill9: all workers killed; checking the quiet arena again\n");
		rc2 = keel_check(st.h, KEEL_CHECK_REPAIR, t_check_report, &again);
		T_FAIL("after kill %" PRIu64 " (pid %d): keel_check returned %d (%s) with %u reports; "
		       "with every worker then killed, a second keel_check returned %d (%s) with %u "
		       "reports (%s)", k, (int)killed, rc, keel_strerror(rc), log.reports, rc2,
		       keel_strerror(rc2), again.reports,
		       rc2 == 0 && again.reports == 0 ? "the first report did not last: a check "
		       "that races with live writers" : "lasting damage");
	}
	CHECK_OK(keel_processes(st.h, pcheck_cb, &pc));
	CHECK_MSG(!pc.killed_alive, "after kill %" PRIu64 ": killed pid %d still listed alive", k,
		  (int)killed);
	CHECK_MSG(pc.dead_with_locks == 0, "after kill %" PRIu64 " and a repairing check: dead pid "
		  "%d listed holding %u locks", k, (int)pc.dead_pid, pc.dead_locks);
}

/* ---- the end: compare with a fresh store of the same content --------------------------------- */

struct copy_ctx {
	keel_t *src, *dst;
	uint64_t keys, parts;
};

static int copy_part(void *ctx, const char *name, uint64_t keys)
{
	struct copy_ctx *c = ctx;
	keel_iter_t *it = NULL;
	const void *k, *v;
	size_t kl, vl;
	int rc;
	uint64_t n = 0;

	CHECK_OK(keel_iter_open(c->src, name, NULL, 0, &it));
	while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1) {
		CHECK_OK(keel_put(c->dst, name, k, kl, v, vl, NULL));
		n++;
	}
	CHECK_RC(rc, 0);
	keel_iter_close(it);
	CHECK_MSG(n == keys, "partition %s: iterator gave %" PRIu64 " keys, listing said %" PRIu64,
		  name, n, keys);
	c->keys += n;
	c->parts++;
	return 0;
}

static void compare_with_fresh(void)
{
	t_store_t fresh;
	struct copy_ctx c = { 0 };
	keel_stat_t a, b;
	int rc;
	double diff;
	uint64_t held_a, held_b;

	rc = keel_reclaim(st.h);
	CHECK_MSG(rc >= 0, "keel_reclaim: %d (%s)", rc, keel_strerror(rc));
	CHECK_OK(keel_stat(st.h, &a));
	t_store_init(&fresh);
	fresh.opt = st.opt;
	t_store_open(&fresh);
	c.src = st.h;
	c.dst = fresh.h;
	CHECK_OK(keel_partitions(st.h, copy_part, &c));
	rc = keel_reclaim(fresh.h);
	CHECK_MSG(rc >= 0, "keel_reclaim (fresh): %d (%s)", rc, keel_strerror(rc));
	CHECK_OK(keel_stat(fresh.h, &b));
	CHECK_EQ_U64(a.keys, b.keys);
	CHECK_EQ_U64(a.partitions, b.partitions);
	CHECK_EQ_U64(a.processes, 1);
	diff = (double)a.arena_bytes_used - (double)b.arena_bytes_used;
	held_a = a.arena_bytes_max - a.arena_bytes_free - a.arena_bytes_retired;
	held_b = b.arena_bytes_max - b.arena_bytes_free - b.arena_bytes_retired;
	/* Informational: bytes neither free nor retired.  While arena_bytes_free
	 * leaves out free blocks inside partitions' pages, this mixes pages kept
	 * after churn with anything lost, so it is printed, not checked. */
	printf("test_kill9: arena_bytes_used %" PRIu64 " after the kills vs %" PRIu64
	       " fresh (%+.0f bytes, %+.3f%%); retired %" PRIu64 "; held (max - free - retired, "
	       "informational) %" PRIu64 " vs %" PRIu64 " fresh (%+.0f bytes)\n",
	       a.arena_bytes_used, b.arena_bytes_used,
	       diff, 100.0 * diff / (double)b.arena_bytes_used, a.arena_bytes_retired, held_a, held_b,
	       (double)held_a - (double)held_b);
	CHECK_MSG(diff <= 0.01 * (double)b.arena_bytes_used && -diff <= 0.01 * (double)b.arena_bytes_used,
		  "arena_bytes_used %" PRIu64 " is not within 1%% of a fresh store's %" PRIu64
		  " with the same %" PRIu64 " keys: %+.0f bytes (%.1f per kill)",
		  a.arena_bytes_used, b.arena_bytes_used, a.keys, diff, diff / (double)n_kills);
	CHECK_SOUND(fresh.h, 0);
	t_store_destroy(&fresh);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static void print_stalls(void)
{
	uint64_t n = sh->nsamples < SAMPLES_MAX ? sh->nsamples : SAMPLES_MAX, gap_max = 0;

	for (unsigned w = 0; w < n_workers; w++)
		if (sh->w[w].gap_max_ns > gap_max)
			gap_max = sh->w[w].gap_max_ns;
	if (!n) {
		printf("test_kill9: stall: no commit gap spanning a kill was sampled\n");
		return;
	}
	qsort(sh->samples_us, n, sizeof(sh->samples_us[0]), cmp_u32);
	printf("test_kill9: stall around a kill (a survivor's gap between commits, %" PRIu64
	       " samples): p50 %.2f ms, p99 %.2f ms, max %.2f ms; largest gap at all %.2f ms "
	       "(informational; 2 cores shared with %u workers)\n",
	       n, sh->samples_us[n / 2] / 1e3, sh->samples_us[n * 99 / 100] / 1e3,
	       sh->samples_us[n - 1] / 1e3, (double)gap_max / 1e6, n_workers);
}

/* ---- the watchdog ------------------------------------------------------------------------------- */

/*
 * A hang is a failure too, and it must say where.  The killer re-arms a
 * WATCHDOG_S alarm each round and records its phase; when the alarm fires,
 * the handler prints the phase, each worker's pid, state (from /proc) and
 * commits, and whether the workers still commit; with KEEL_TEST_GDB=1 in the
 * environment it also runs gdb on the killer and the workers for their
 * stacks.  It then removes the arena and exits 1 (the workers die with it,
 * by PR_SET_PDEATHSIG).
 */
#define WATCHDOG_S 60

static volatile const char *phase = "starting";
static volatile uint64_t phase_kill;
static char arena_path[PATH_MAX];
static int want_gdb;

static void wd_gdb(pid_t pid)
{
	char ps[16];
	pid_t g;

	snprintf(ps, sizeof(ps), "%d", (int)pid);
	g = fork();
	if (g == 0) {
		execlp("gdb", "gdb", "-p", ps, "-batch", "-ex", "thread apply all bt", (char *)NULL);
		_exit(127);
	}
	if (g > 0)
		waitpid(g, NULL, 0);
}

static char wd_state(pid_t pid)
{
	char path[64], buf[256];
	int fd;
	ssize_t n;
	char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return '?';
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] && p[2] ? p[2] : '?';
}

static void watchdog(int sig)
{
	uint64_t before[WORKERS_MAX], moved = 0;
	char line[256];
	int n;

	(void)sig;
	n = snprintf(line, sizeof(line), "test_kill9: FAIL: no progress for %d s at kill %" PRIu64
		     ", phase '%s'\n", WATCHDOG_S, phase_kill, (const char *)phase);
	if (write(2, line, (size_t)n) < 0)
		_exit(1);
	for (unsigned w = 0; w < n_workers; w++)
		before[w] = sh->w[w].commits;
	sleep(1);
	for (unsigned w = 0; w < n_workers; w++) {
		moved += sh->w[w].commits - before[w];
		n = snprintf(line, sizeof(line), "  worker %u: pid %d state %c, %" PRIu64
			     " commits (+%" PRIu64 " in the last second)\n", w, (int)sh->w[w].pid,
			     wd_state(sh->w[w].pid), sh->w[w].commits, sh->w[w].commits - before[w]);
		if (write(2, line, (size_t)n) < 0)
			break;
	}
	n = snprintf(line, sizeof(line), "  workers %s; seed %" PRIu64 "%s\n",
		     moved ? "still commit" : "are stuck too", t_seed_value,
		     want_gdb ? "" : "; set KEEL_TEST_GDB=1 for stacks");
	if (write(2, line, (size_t)n) < 0)
		_exit(1);
	if (want_gdb) {
		wd_gdb(getpid());
		for (unsigned w = 0; w < n_workers; w++)
			wd_gdb(sh->w[w].pid);
	}
	if (arena_path[0])
		unlink(arena_path);
	_exit(1);
}

/* ---- main --------------------------------------------------------------------------------------- */

static void run(void)
{
	uint64_t rng = t_rand_stream(1), acked = 0, writes, t0, checks = 0;

	t_store_init(&st);
	st.opt.ring_bytes = 1u << 20; /* the minimum: ring reuse is exercised too */
	t_store_open(&st);
	CHECK_OK(keel_arena_path(st.dir, &st.opt, arena_path, sizeof(arena_path)));
	want_gdb = getenv("KEEL_TEST_GDB") && getenv("KEEL_TEST_GDB")[0] == '1';
	signal(SIGALRM, watchdog);
	alarm(WATCHDOG_S);
	bank_setup(st.h, &bank);
	CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
	memset(sh, 0, sizeof(*sh));

	for (unsigned w = 0; w < n_workers; w++)
		spawn(w);
	for (unsigned tries = 0;; tries++) {
		unsigned ready = 0;

		for (unsigned w = 0; w < n_workers; w++)
			ready += sh->w[w].commits > 0;
		if (ready == n_workers)
			break;
		check_no_worker_died();
		CHECK_MSG(tries < 1000, "workers did not start committing within 10 s");
		t_sleep_ns(10000000ull);
	}
	if (check_every == 1)
		printf("test_kill9: %u workers running; %" PRIu64 " kills; checks after every kill\n",
		       n_workers, n_kills);
	else
		printf("test_kill9: %u workers running; %" PRIu64 " kills; checks after every %"
		       PRIu64 "th kill and the last\n", n_workers, n_kills, check_every);

	t0 = t_now_ns();
	for (uint64_t k = 1; k <= n_kills; k++) {
		unsigned victim = (unsigned)t_rand_below(&rng, n_workers);
		pid_t pid = sh->w[victim].pid;
		int stv;
		char sb[96];

		alarm(WATCHDOG_S);
		phase_kill = k;
		phase = "sleep";
		t_sleep_ns(t_rand_below(&rng, SLEEP_NS_MAX + 1));
		phase = "kill";
		CHECK_MSG(kill(pid, SIGKILL) == 0, "kill %d: %s", (int)pid, strerror(errno));
		__atomic_fetch_add(&sh->kill_seq, 1, __ATOMIC_RELEASE);
		phase = "waitpid";
		t_waitpid(pid, &stv);
		if (!WIFSIGNALED(stv) || WTERMSIG(stv) != SIGKILL) {
			struct t_check_log log = { 0 };
			int rc = keel_check(st.h, 0, t_check_report, &log);

			diag_store();
			T_FAIL("worker %u (pid %d) %s before kill %" PRIu64 "; keel_check now returns "
			       "%d (%s) with %u reports", victim, (int)pid,
			       t_status_str(stv, sb, sizeof(sb)), k, rc, keel_strerror(rc), log.reports);
		}
		if (k % check_every == 0 || k == n_kills) {
			phase = "check after the kill (read scope sum, keel_check, keel_processes)";
			check_after_kill(k, pid);
			checks++;
		}
		phase = "respawn";
		spawn(victim);
		if (k % 64 == 0)
			check_no_worker_died();
		if (k % 1000 == 0)
			printf("test_kill9: %" PRIu64 " kills, %.1f s\n", k,
			       (double)(t_now_ns() - t0) / 1e9);
	}

	/* Let the last respawns attach and commit, then stop everyone. */
	alarm(WATCHDOG_S);
	phase = "final stop and checks";
	t_sleep_ns(20000000ull);
	sh->stop = 1;
	for (unsigned w = 0; w < n_workers; w++) {
		char what[32];

		snprintf(what, sizeof(what), "worker %u", w);
		t_wait_exit0(sh->w[w].pid, what);
		acked += sh->w[w].commits;
	}
	CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
	CHECK_EQ_I64(bank_sum_txn(st.h, &bank), bank_total(&bank));
	writes = bank_writes(st.h, &bank);
	CHECK_MSG(writes >= 2 * acked && writes <= 2 * (acked + n_kills),
		  "account versions add up to %" PRIu64 " writes; %" PRIu64 " transfers were "
		  "acknowledged and %" PRIu64 " workers killed, so expected %" PRIu64 "..%" PRIu64,
		  writes, acked, n_kills, 2 * acked, 2 * (acked + n_kills));
	CHECK_SOUND(st.h, KEEL_CHECK_REPAIR);
	printf("test_kill9: %" PRIu64 " kills in %.1f s, %" PRIu64 " checks; %" PRIu64
	       " transfers acknowledged, %" PRIu64 " applied (unacknowledged at a kill: %" PRIu64
	       "); total preserved\n",
	       n_kills, (double)(t_now_ns() - t0) / 1e9, checks, acked, writes / 2,
	       writes / 2 - acked);
	print_stalls();
	compare_with_fresh();
	alarm(0);
	t_store_destroy(&st);
}

int main(int argc, char **argv)
{
	int seed_given = 0;
	uint64_t seed = 0;

	t_begin("test_kill9");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: test_kill9 [--seed S] [--kills N] [--workers N] "
			       "[--check-every N]\n"
			       "Workers commit transfers while the parent SIGKILLs a random one\n"
			       "every 0-3 ms and respawns it; totals, keel_check and arena usage\n"
			       "must stay sound.  Defaults: --kills 1000 --workers 8 --check-every 1.\n"
			       "Exit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(a, "--seed")) {
			seed = t_parse_u64(a, v);
			seed_given = 1;
			i++;
		} else if (!strcmp(a, "--kills")) {
			n_kills = t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--workers")) {
			n_workers = (unsigned)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--check-every")) {
			check_every = t_parse_u64(a, v);
			i++;
		} else {
			fprintf(stderr, "test_kill9: unknown argument '%s' (try --help)\n", a);
			return 2;
		}
	}
	if (n_workers < 2 || n_workers > WORKERS_MAX || check_every < 1 || n_kills < 1) {
		fprintf(stderr, "test_kill9: need 2 <= workers <= %d, kills >= 1, check-every >= 1\n",
			WORKERS_MAX);
		return 2;
	}
	t_seed_init(seed_given, seed);
	sh = t_shared_alloc(sizeof(*sh));
	run();
	printf("test_kill9: PASS\n");
	return 0;
}
