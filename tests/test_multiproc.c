/*
 * test_multiproc - forked processes race on shared partitions; invariants
 * hold throughout.
 *
 * Part 1, "bank" (see common/bank.h).  W writer processes run transfers
 * between 64 accounts over 8 partitions (a txn reading two balances with
 * keel_txn_get and writing both with put_if on the versions read, retried on
 * KEEL_E_CONFLICT).  Between transfers each writer also runs random single
 * operations on keys only it owns in a shared partition "mixed" (put, put_if
 * right and wrong, del, get, contains, get_many, put_many, del_many) and
 * checks every result against a private mirror: values, versions, existed
 * flags, conflict versions.  R reader processes repeatedly sum all balances in
 * one read scope (and every 4th time through a transaction's snapshot) and
 * fail on any total other than the initial one; their snapshot LSNs never go
 * back.  Meanwhile the parent runs keel_check on the live store.
 * At the end: the total holds, sum(version - 1) over accounts is exactly
 * 2 x committed transfers (no lost or doubled write), each writer's keys in
 * "mixed" match its mirror, count and iteration agree, keel_check is clean.
 *
 * Part 2, "progress".  4 writers each put in a loop to their own partition
 * for 2 s; each must commit in every 250 ms interval.  At the end, the
 * versions in each partition add up to that writer's commits.
 *
 * Part 3, "stall" (only with --stall or --only stall; ctest runs it as
 * test_multiproc_stall).  The same writers; the parent stops one of them
 * with SIGSTOP at a random moment (often inside a commit, holding its
 * partition's lock), 15 times, and keeps it stopped for at least 20 ms
 * (--stop-ms) and until the other writers have made 100 commits between
 * them; if they cannot within 5 s, they are waiting for the stopped one and
 * the test fails.  No writer may get an error.
 * Writers to different partitions must not wait for each other: a stall of
 * tens of ms is what any process may see from the scheduler on a loaded
 * host (a stopped process is the extreme case of a preempted one).
 *
 * Usage: test_multiproc [--seed S] [--seconds N] [--writers N] [--readers N]
 *                       [--stall] [--stop-ms N] [--only bank|progress|stall]
 */
#include "common/bank.h"

#define WORKERS_MAX 16
#define OWN_KEYS 64          /* keys each writer owns in "mixed" */
#define OWN_VAL_MAX 200      /* bytes */

struct mirror_key {
	uint8_t live;
	uint64_t version; /* 0 = not known (after a re-create by plain put) */
	uint64_t gen;     /* which value it holds (see own_val) */
};

struct worker {
	volatile uint64_t commits;   /* transfers (bank) or puts (progress) */
	volatile uint64_t conflicts;
	volatile uint64_t checks;    /* reader sums / mixed ops */
	volatile uint64_t last_lsn;
	volatile int done;
	struct mirror_key own[OWN_KEYS];
};

struct shared {
	volatile int stop;
	struct worker w[WORKERS_MAX];
};

static struct shared *sh;
static t_store_t st;
static bank_t bank = { .parts = 8, .accounts = 64, .initial = 1000 };
static unsigned n_writers = 6, n_readers = 2;
static double seconds = 3.0;
static uint64_t stop_ms = 20; /* how long a writer is stopped in part 2 */

/* ---- the "mixed" single-operation workload ------------------------------------- */

static size_t own_key(unsigned w, unsigned k, char out[16])
{
	return (size_t)snprintf(out, 16, "w%02u:%03u", w, k);
}

static size_t own_val(unsigned w, unsigned k, uint64_t gen, unsigned char *out)
{
	size_t n = (size_t)((gen * 7 + k + w) % OWN_VAL_MAX);

	for (size_t j = 0; j < n; j++)
		out[j] = (unsigned char)(gen * 131 + j * 7 + w);
	return n;
}

/* The stored value of own key k must be what the mirror says. */
static void own_verify(keel_t *h, unsigned w, struct mirror_key *m, unsigned k)
{
	char key[16];
	unsigned char buf[OWN_VAL_MAX], want[OWN_VAL_MAX];
	size_t kl = own_key(w, k, key), vl = 0, wl;
	keel_meta_t meta;
	int rc = keel_get(h, "mixed", key, kl, buf, sizeof(buf), &vl, &meta);

	if (!m->live) {
		CHECK_MSG(rc == KEEL_E_NOTFOUND, "mixed/%s should be absent: get returned %d (%s)",
			  key, rc, keel_strerror(rc));
		return;
	}
	CHECK_MSG(rc == 0, "mixed/%s should exist: get returned %d (%s)", key, rc,
		  keel_strerror(rc));
	wl = own_val(w, k, m->gen, want);
	CHECK_MSG(vl == wl && memcmp(buf, want, wl) == 0,
		  "mixed/%s: value of %zu bytes differs from generation %" PRIu64 " (%zu bytes)",
		  key, vl, m->gen, wl);
	if (m->version)
		CHECK_MSG(meta.version == m->version,
			  "mixed/%s: version %" PRIu64 ", expected %" PRIu64, key, meta.version,
			  m->version);
	m->version = meta.version;
}

static int own_many_cb(void *ctx, size_t index, const void *val, size_t vlen,
		       const keel_meta_t *meta)
{
	unsigned *hits = ctx;

	(void)val;
	(void)vlen;
	(void)meta;
	CHECK(index < 4);
	hits[index]++;
	return 0;
}

static void own_op(keel_t *h, unsigned w, uint64_t *rng)
{
	struct mirror_key *mk = sh->w[w].own;
	unsigned k = (unsigned)t_rand_below(rng, OWN_KEYS);
	struct mirror_key *m = &mk[k];
	char key[16];
	unsigned char val[OWN_VAL_MAX];
	size_t kl = own_key(w, k, key), vl;
	uint64_t ver = 0;
	int rc, existed = -1;

	switch (t_rand_below(rng, 9)) {
	case 0: /* plain put */
		vl = own_val(w, k, m->gen + 1, val);
		CHECK_OK(keel_put(h, "mixed", key, kl, val, vl, NULL));
		m->gen++;
		m->version = m->live && m->version ? m->version + 1 : 0;
		m->live = 1;
		own_verify(h, w, m, k);
		break;
	case 1: /* put_if with the right condition */
		vl = own_val(w, k, m->gen + 1, val);
		if (m->live && !m->version)
			own_verify(h, w, m, k); /* learn the version */
		rc = keel_put_if(h, "mixed", key, kl, val, vl,
				 m->live ? m->version : KEEL_VERSION_ABSENT, &ver);
		CHECK_MSG(rc == 0, "put_if mixed/%s expecting %" PRIu64 ": %d (%s)", key,
			  m->live ? m->version : 0, rc, keel_strerror(rc));
		if (m->live)
			CHECK_EQ_U64(ver, m->version + 1);
		m->gen++;
		m->version = ver;
		m->live = 1;
		break;
	case 2: /* put_if with a wrong condition: conflict, current reported */
		if (m->live && !m->version)
			own_verify(h, w, m, k);
		vl = own_val(w, k, m->gen + 1, val);
		rc = keel_put_if(h, "mixed", key, kl, val, vl,
				 m->live ? m->version + 3 : 5, &ver);
		CHECK_MSG(rc == KEEL_E_CONFLICT, "put_if mixed/%s with a wrong version: %d (%s)", key,
			  rc, keel_strerror(rc));
		CHECK_EQ_U64(ver, m->live ? m->version : 0);
		break;
	case 3:
		CHECK_OK(keel_del(h, "mixed", key, kl, &existed));
		CHECK_MSG(existed == m->live, "del mixed/%s: existed=%d, mirror says %d", key,
			  existed, m->live);
		m->live = 0;
		m->version = 0;
		break;
	case 4: {
		int found = -1;

		CHECK_OK(keel_contains(h, "mixed", key, kl, &found));
		CHECK_MSG(found == m->live, "contains mixed/%s = %d, mirror says %d", key, found,
			  m->live);
		break;
	}
	case 5: { /* get_many of 4 own keys (distinct) */
		char keys[4][16];
		const void *kp[4];
		size_t kls[4], found = 0, want = 0;
		unsigned hits[4] = { 0 }, ks[4];

		for (unsigned i = 0; i < 4; i++) {
			ks[i] = (k + i * 13) % OWN_KEYS;
			kls[i] = own_key(w, ks[i], keys[i]);
			kp[i] = keys[i];
			want += mk[ks[i]].live;
		}
		CHECK_OK(keel_get_many(h, "mixed", 4, kp, kls, own_many_cb, hits, &found));
		CHECK_EQ_U64(found, want);
		for (unsigned i = 0; i < 4; i++)
			CHECK_MSG(hits[i] == mk[ks[i]].live, "get_many: index %u hit %u times, live %d",
				  i, hits[i], mk[ks[i]].live);
		break;
	}
	case 6: { /* put_many of 3 keys */
		char keys[3][16];
		unsigned char vals[3][OWN_VAL_MAX];
		const void *kp[3], *vp[3];
		size_t kls[3], vls[3];
		unsigned ks[3];

		for (unsigned i = 0; i < 3; i++) {
			ks[i] = (k + i * 17) % OWN_KEYS;
			kls[i] = own_key(w, ks[i], keys[i]);
			vls[i] = own_val(w, ks[i], mk[ks[i]].gen + 1, vals[i]);
			kp[i] = keys[i];
			vp[i] = vals[i];
		}
		CHECK_OK(keel_put_many(h, "mixed", 3, kp, kls, vp, vls, NULL));
		for (unsigned i = 0; i < 3; i++) {
			struct mirror_key *x = &mk[ks[i]];

			x->gen++;
			x->version = x->live && x->version ? x->version + 1 : 0;
			x->live = 1;
			own_verify(h, w, x, ks[i]);
		}
		break;
	}
	case 7: { /* del_many of 2 keys */
		char keys[2][16];
		const void *kp[2];
		size_t kls[2];
		uint64_t removed = 99;
		unsigned ks[2] = { k, (k + 29) % OWN_KEYS };

		for (unsigned i = 0; i < 2; i++) {
			kls[i] = own_key(w, ks[i], keys[i]);
			kp[i] = keys[i];
		}
		CHECK_OK(keel_del_many(h, "mixed", 2, kp, kls, &removed));
		CHECK_EQ_U64(removed, (uint64_t)mk[ks[0]].live + mk[ks[1]].live);
		mk[ks[0]].live = mk[ks[1]].live = 0;
		mk[ks[0]].version = mk[ks[1]].version = 0;
		break;
	}
	default:
		own_verify(h, w, m, k);
		break;
	}
}

/* ---- part 1: bank ----------------------------------------------------------------------- */

static void writer_main(unsigned w)
{
	keel_t *h = NULL;
	uint64_t rng = t_rand_stream(100 + w), lsn = 0, conflicts = 0, prev = 0;

	CHECK_OK(keel_open(st.dir, &st.opt, &h));
	while (!sh->stop) {
		int rc = bank_transfer(h, &bank, &rng, &lsn, &conflicts);

		CHECK_MSG(rc == 0, "writer %u: transfer: %s: %d (%s)", w, bank_failed_step, rc,
			  keel_strerror(rc));
		CHECK_MSG(lsn > prev, "writer %u: commit LSN %" PRIu64 " not after %" PRIu64, w,
			  lsn, prev);
		prev = lsn;
		sh->w[w].commits++;
		sh->w[w].conflicts = conflicts;
		sh->w[w].last_lsn = lsn;
		own_op(h, w, &rng);
		sh->w[w].checks++;
	}
	/* A final pass over every own key. */
	for (unsigned k = 0; k < OWN_KEYS; k++)
		own_verify(h, w, &sh->w[w].own[k], k);
	CHECK_OK(keel_close(h));
	sh->w[w].done = 1;
	exit(0);
}

static void reader_main(unsigned w)
{
	keel_t *h = NULL;
	uint64_t n = 0, snap, prev_snap = 0;
	int64_t want = bank_total(&bank);

	CHECK_OK(keel_open(st.dir, &st.opt, &h));
	while (!sh->stop) {
		int64_t sum;

		if (n % 4 == 3) {
			sum = bank_sum_txn(h, &bank);
			CHECK_MSG(sum == want, "reader %u: txn snapshot total %" PRId64
				  ", expected %" PRId64, w, sum, want);
		} else {
			sum = bank_sum_scope(h, &bank, &snap);
			CHECK_MSG(sum == want, "reader %u: read scope at LSN %" PRIu64 " total %" PRId64
				  ", expected %" PRId64, w, snap, sum, want);
			CHECK_MSG(snap >= prev_snap, "reader %u: snapshot LSN went back from %" PRIu64
				  " to %" PRIu64, w, prev_snap, snap);
			prev_snap = snap;
		}
		sh->w[w].checks = ++n;
	}
	CHECK_OK(keel_close(h));
	sh->w[w].done = 1;
	exit(0);
}

static void part_bank(void)
{
	pid_t pids[WORKERS_MAX];
	unsigned n = n_writers + n_readers;
	uint64_t t_end, transfers = 0, conflicts = 0, reads = 0, ops = 0, live = 0, cnt, audits = 0;

	t_store_init(&st);
	t_store_open(&st);
	bank_setup(st.h, &bank);
	CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
	memset(sh, 0, sizeof(*sh));

	for (unsigned w = 0; w < n; w++) {
		pids[w] = t_fork();
		if (pids[w] == 0) {
			if (w < n_writers)
				writer_main(w);
			reader_main(w);
		}
	}
	t_end = t_now_ns() + (uint64_t)(seconds * 1e9);
	while (t_now_ns() < t_end) {
		t_sleep_ns(50 * 1000000ull);
		CHECK_SOUND(st.h, 0);
		CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
		audits++;
	}
	sh->stop = 1;
	for (unsigned w = 0; w < n; w++) {
		char what[32];

		snprintf(what, sizeof(what), "%s %u", w < n_writers ? "writer" : "reader", w);
		t_wait_exit0(pids[w], what);
		CHECK(sh->w[w].done);
	}
	for (unsigned w = 0; w < n; w++) {
		if (w < n_writers) {
			CHECK_MSG(sh->w[w].commits > 0, "writer %u committed nothing", w);
			transfers += sh->w[w].commits;
			conflicts += sh->w[w].conflicts;
			ops += sh->w[w].checks;
			for (unsigned k = 0; k < OWN_KEYS; k++)
				live += sh->w[w].own[k].live;
		} else {
			CHECK_MSG(sh->w[w].checks > 0, "reader %u made no check", w);
			reads += sh->w[w].checks;
		}
	}
	/* Final invariants. */
	CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
	CHECK_EQ_I64(bank_sum_txn(st.h, &bank), bank_total(&bank));
	CHECK_MSG(bank_writes(st.h, &bank) == 2 * transfers,
		  "account versions add up to %" PRIu64 " writes, expected 2 x %" PRIu64
		  " transfers", bank_writes(st.h, &bank), transfers);
	for (unsigned w = 0; w < n_writers; w++)
		for (unsigned k = 0; k < OWN_KEYS; k++)
			own_verify(st.h, w, &sh->w[w].own[k], k);
	CHECK_OK(keel_count(st.h, "mixed", &cnt));
	CHECK_EQ_U64(cnt, live);
	{
		keel_iter_t *it;
		const void *k, *v;
		size_t kl, vl;
		uint64_t seen = 0;
		int rc;

		CHECK_OK(keel_iter_open(st.h, "mixed", NULL, 0, &it));
		while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1)
			CHECK(++seen <= live);
		CHECK_RC(rc, 0);
		keel_iter_close(it);
		CHECK_EQ_U64(seen, live);
	}
	CHECK_SOUND(st.h, KEEL_CHECK_REPAIR);
	{
		keel_stat_t s;

		CHECK_OK(keel_stat(st.h, &s));
		CHECK_EQ_U64(s.processes, 1);
		CHECK_EQ_U64(s.keys, bank.accounts + live);
	}
	printf("test_multiproc: bank: %u writers, %u readers, %.1f s: %" PRIu64 " transfers (%"
	       PRIu64 " conflicts retried), %" PRIu64 " own ops, %" PRIu64 " reader totals, %"
	       PRIu64 " live audits, all consistent\n",
	       n_writers, n_readers, seconds, transfers, conflicts, ops, reads, audits);
	t_store_destroy(&st);
}

/* ---- part 2: writers to different partitions progress concurrently ------------------------ */

#define PROGRESS_WRITERS 4
#define PROGRESS_KEYS 100
#define PROGRESS_STOPS 15
#define PROGRESS_BUCKETS 8
#define PROGRESS_BUCKET_NS 250000000ull  /* 250 ms */
#define PROGRESS_COMMITS 100               /* by the others, while one is stopped */
#define PROGRESS_WAIT_NS (5000000000ull)   /* for those commits, at most */

static void solo_main(unsigned w)
{
	keel_t *h = NULL;
	char part[24];
	uint64_t i = 0;

	snprintf(part, sizeof(part), "solo.%u", w);
	CHECK_OK(keel_open(st.dir, &st.opt, &h));
	while (!sh->stop) {
		char key[16];
		size_t kl = (size_t)snprintf(key, sizeof(key), "k%03u", (unsigned)(i % PROGRESS_KEYS));

		CHECK_OK(keel_put(h, part, key, kl, &i, sizeof(i), NULL));
		sh->w[w].commits = ++i;
	}
	CHECK_OK(keel_close(h));
	sh->w[w].done = 1;
	exit(0);
}

/* Every writer must commit in every PROGRESS_BUCKET_NS of PROGRESS_BUCKETS. */
static void progress_buckets(void)
{
	uint64_t prev[PROGRESS_WRITERS], fewest = UINT64_MAX;

	for (unsigned w = 0; w < PROGRESS_WRITERS; w++)
		prev[w] = sh->w[w].commits;
	for (unsigned b = 0; b < PROGRESS_BUCKETS; b++) {
		t_sleep_ns(PROGRESS_BUCKET_NS);
		for (unsigned w = 0; w < PROGRESS_WRITERS; w++) {
			uint64_t now = sh->w[w].commits, d = now - prev[w];

			CHECK_MSG(d > 0, "interval %u: writer %u made no commit in %llu ms while the "
				  "others wrote to their own partitions", b, w,
				  PROGRESS_BUCKET_NS / 1000000);
			if (d < fewest)
				fewest = d;
			prev[w] = now;
		}
	}
	printf("test_multiproc: progress: %u writers on their own partitions all committed in "
	       "each of %u intervals of %llu ms (fewest commits by one writer in one interval: %"
	       PRIu64 ")\n", PROGRESS_WRITERS, PROGRESS_BUCKETS, PROGRESS_BUCKET_NS / 1000000,
	       fewest);
}

static void part_progress(int with_stops)
{
	pid_t pids[PROGRESS_WRITERS];
	uint64_t rng = t_rand_stream(7), worst = UINT64_MAX, t0, waited, wait_max = 0;
	unsigned worst_win = 0;

	t_store_init(&st);
	t_store_open(&st);
	memset(sh, 0, sizeof(*sh));
	for (unsigned w = 0; w < PROGRESS_WRITERS; w++) {
		pids[w] = t_fork();
		if (pids[w] == 0)
			solo_main(w);
	}
	/* Wait until every writer has committed. */
	for (unsigned tries = 0;; tries++) {
		unsigned ready = 0;

		for (unsigned w = 0; w < PROGRESS_WRITERS; w++)
			ready += sh->w[w].commits > 0;
		if (ready == PROGRESS_WRITERS)
			break;
		CHECK_MSG(tries < 1000, "writers did not start within 10 s");
		t_sleep_ns(10 * 1000000ull);
	}
	if (!with_stops)
		progress_buckets();
	for (unsigned s = 0; with_stops && s < PROGRESS_STOPS; s++) {
		unsigned victim = (unsigned)t_rand_below(&rng, PROGRESS_WRITERS);
		uint64_t before[PROGRESS_WRITERS], others = 0;

		t_sleep_ns(t_rand_below(&rng, 20 * 1000000ull));
		CHECK(kill(pids[victim], SIGSTOP) == 0);
		/* Let it really stop (it may be mid-commit), then count. */
		t_sleep_ns(5 * 1000000ull);
		for (unsigned w = 0; w < PROGRESS_WRITERS; w++)
			before[w] = sh->w[w].commits;
		/* Keep it stopped for stop_ms, and until the others have made
		 * PROGRESS_COMMITS commits between them (they may simply be
		 * waiting for a CPU on a loaded host), for up to 5 s. */
		t0 = t_now_ns();
		for (;;) {
			uint64_t el;

			others = 0;
			for (unsigned w = 0; w < PROGRESS_WRITERS; w++)
				if (w != victim)
					others += sh->w[w].commits - before[w];
			el = t_now_ns() - t0;
			if (others >= PROGRESS_COMMITS && el >= stop_ms * 1000000)
				break;
			if (el > PROGRESS_WAIT_NS)
				break;
			t_sleep_ns(1000000);
		}
		waited = t_now_ns() - t0;
		CHECK_MSG(sh->w[victim].commits == before[victim],
			  "writer %u committed while stopped", victim);
		CHECK(kill(pids[victim], SIGCONT) == 0);
		CHECK_MSG(others >= PROGRESS_COMMITS, "window %u: writer %u stopped (at commit %" PRIu64
			  ") for %.0f ms, and the other writers made only %" PRIu64 " commits: writers "
			  "to other partitions waited for it", s, victim, before[victim],
			  (double)waited / 1e6, others);
		if (others < worst) {
			worst = others;
			worst_win = s;
		}
		if (waited > wait_max)
			wait_max = waited;
	}
	t_sleep_ns(20 * 1000000ull);
	sh->stop = 1;
	for (unsigned w = 0; w < PROGRESS_WRITERS; w++)
		t_wait_exit0(pids[w], "solo writer");
	/* Versions in each partition add up to that writer's commits. */
	for (unsigned w = 0; w < PROGRESS_WRITERS; w++) {
		char part[24];
		uint64_t total = 0, cnt = 0, c = sh->w[w].commits;

		snprintf(part, sizeof(part), "solo.%u", w);
		for (unsigned k = 0; k < PROGRESS_KEYS; k++) {
			char key[16];
			size_t kl = (size_t)snprintf(key, sizeof(key), "k%03u", k);
			keel_meta_t m;
			uint64_t v = 0, want;
			size_t vl = 0;
			int rc = keel_get(st.h, part, key, kl, &v, sizeof(v), &vl, &m);

			if (k >= c) {
				CHECK_RC(rc, KEEL_E_NOTFOUND);
				continue;
			}
			CHECK_MSG(rc == 0, "%s/%s: %d (%s)", part, key, rc, keel_strerror(rc));
			/* the last i written to key k: largest i < c with i % KEYS == k */
			want = (c - 1) - ((c - 1 - k) % PROGRESS_KEYS);
			CHECK_MSG(vl == sizeof(v) && v == want, "%s/%s holds %" PRIu64 ", expected %"
				  PRIu64, part, key, v, want);
			total += m.version;
			cnt++;
		}
		CHECK_MSG(total == c, "%s: versions add up to %" PRIu64 ", writer committed %" PRIu64,
			  part, total, c);
		CHECK_OK(keel_count(st.h, part, &total));
		CHECK_EQ_U64(total, cnt);
	}
	CHECK_SOUND(st.h, KEEL_CHECK_REPAIR);
	if (with_stops)
		printf("test_multiproc: stall: %u stops of >= %" PRIu64 " ms (longest %.1f ms, "
		       "waiting for %u commits by the others); fewest commits by the others in a "
		       "window: %" PRIu64 " (window %u)\n", PROGRESS_STOPS, stop_ms,
		       (double)wait_max / 1e6, PROGRESS_COMMITS, worst, worst_win);
	t_store_destroy(&st);
}

int main(int argc, char **argv)
{
	int seed_given = 0;
	uint64_t seed = 0;
	const char *only = NULL;
	int stall = 0;

	t_begin("test_multiproc");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: test_multiproc [--seed S] [--seconds N] [--writers N] "
			       "[--readers N] [--stall] [--stop-ms N] [--only bank|progress|stall]\n"
			       "Forked writers and readers race on shared partitions; balances,\n"
			       "versions and per-writer mirrors must stay consistent, and writers\n"
			       "to different partitions must not wait for each other.\n"
			       "--stall (or --only stall) adds part 3: one writer is stopped with\n"
			       "SIGSTOP, maybe mid-commit, for --stop-ms and the others must go on.\n"
			       "Defaults: --seconds 3 --writers 6 --readers 2 --stop-ms 20.\n"
			       "Exit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(a, "--seed")) {
			seed = t_parse_u64(a, v);
			seed_given = 1;
			i++;
		} else if (!strcmp(a, "--seconds")) {
			seconds = (double)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--writers")) {
			n_writers = (unsigned)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--readers")) {
			n_readers = (unsigned)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--stop-ms")) {
			stop_ms = t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--stall")) {
			stall = 1;
		} else if (!strcmp(a, "--only") && v) {
			only = v;
			i++;
		} else {
			fprintf(stderr, "test_multiproc: unknown argument '%s' (try --help)\n", a);
			return 2;
		}
	}
	if (n_writers < 1 || n_writers + n_readers > WORKERS_MAX || seconds <= 0) {
		fprintf(stderr, "test_multiproc: need 1 <= writers, writers + readers <= %d, "
			"seconds > 0\n", WORKERS_MAX);
		return 2;
	}
	t_seed_init(seed_given, seed);
	sh = t_shared_alloc(sizeof(*sh));
	if (!only || !strcmp(only, "bank"))
		part_bank();
	if (!only || !strcmp(only, "progress"))
		part_progress(0);
	if ((only && !strcmp(only, "stall")) || stall)
		part_progress(1);
	if (only && strcmp(only, "bank") && strcmp(only, "progress") && strcmp(only, "stall")) {
		fprintf(stderr, "test_multiproc: no part '%s' (try --help)\n", only);
		return 2;
	}
	printf("test_multiproc: PASS\n");
	return 0;
}
