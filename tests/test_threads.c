/*
 * test_threads - several threads of one process share one handle.
 *
 * W worker threads each run a fixed number of rounds on one keel_t:
 *   - put a key of their own (in one of 4 shared partitions, round-robin) and
 *     read it back, checking value and version;
 *   - every 4th round, a bank transfer (common/bank.h) between accounts all
 *     threads share, retried on KEEL_E_CONFLICT;
 *   - every 16th round, a read scope summing all balances;
 *   - every 64th round, an iterator over one shared partition.
 * Alongside them, one thread sums balances through read scopes and
 * transaction snapshots without pause, and one runs keel_stat and keel_check.
 *
 * At the end the counts add up: each partition holds exactly the keys the
 * threads wrote, each key's version is the number of times its thread wrote
 * it, the bank total holds and account versions account for exactly
 * 2 x transfers.  Per-thread state is checked too: keel_errmsg() and
 * keel_last_conflict() belong to the calling thread.
 *
 * Usage: test_threads [--seed S] [--threads N] [--rounds N]
 */
#include <pthread.h>

#include "common/bank.h"

#define THREADS_MAX 16
#define OWN_KEYS 50   /* keys per thread; each written rounds / OWN_KEYS times */
#define THR_PARTS 4

static t_store_t st;
static bank_t bank = { .parts = 4, .accounts = 16, .initial = 500 };
static unsigned n_threads = 4;
static uint64_t n_rounds = 100000;
static volatile int stop_side;

struct thr {
	pthread_t th;
	unsigned id;
	uint64_t transfers, conflicts, puts, sums;
	uint64_t writes[OWN_KEYS];
};

static struct thr thr[THREADS_MAX];

static void own_key(unsigned t, unsigned k, char part[16], char key[24], size_t *kl)
{
	snprintf(part, 16, "thr.%u", k % THR_PARTS);
	*kl = (size_t)snprintf(key, 24, "t%02u:%03u", t, k);
}

static void *worker(void *arg)
{
	struct thr *me = arg;
	uint64_t rng = t_rand_stream(10 + me->id);

	for (uint64_t r = 0; r < n_rounds; r++) {
		unsigned k = (unsigned)(r % OWN_KEYS);
		char part[16], key[24];
		size_t kl, vl = 0;
		uint64_t val = r ^ ((uint64_t)me->id << 40), back = 0;
		keel_meta_t m;

		own_key(me->id, k, part, key, &kl);
		CHECK_OK(keel_put(st.h, part, key, kl, &val, sizeof(val), NULL));
		me->writes[k]++;
		me->puts++;
		CHECK_OK(keel_get(st.h, part, key, kl, &back, sizeof(back), &vl, &m));
		CHECK_MSG(vl == sizeof(back) && back == val, "thread %u: %s/%s read back %" PRIu64
			  ", wrote %" PRIu64, me->id, part, key, back, val);
		CHECK_MSG(m.version == me->writes[k], "thread %u: %s/%s version %" PRIu64
			  " after %" PRIu64 " writes", me->id, part, key, m.version, me->writes[k]);
		if (r % 4 == 0) {
			int rc = bank_transfer(st.h, &bank, &rng, NULL, &me->conflicts);

			CHECK_MSG(rc == 0, "thread %u: transfer: %s: %d (%s)", me->id,
				  bank_failed_step, rc, keel_strerror(rc));
			me->transfers++;
		}
		if (r % 16 == 0) {
			CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
			me->sums++;
		}
		if (r % 64 == 0) {
			keel_iter_t *it;
			const void *ik, *iv;
			size_t ikl, ivl;
			unsigned n = 0;
			int rc;

			CHECK_OK(keel_iter_open(st.h, part, NULL, 0, &it));
			while ((rc = keel_iter_next(it, &ik, &ikl, &iv, &ivl, NULL)) == 1) {
				CHECK(ivl == sizeof(uint64_t));
				CHECK(++n <= THREADS_MAX * OWN_KEYS);
			}
			CHECK_RC(rc, 0);
			keel_iter_close(it);
		}
	}
	return NULL;
}

static uint64_t side_sums, side_checks;

static void *summer(void *arg)
{
	(void)arg;
	while (!stop_side) {
		CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
		CHECK_EQ_I64(bank_sum_txn(st.h, &bank), bank_total(&bank));
		side_sums += 2;
	}
	return NULL;
}

static void *auditor(void *arg)
{
	(void)arg;
	while (!stop_side) {
		keel_stat_t s;

		CHECK_OK(keel_stat(st.h, &s));
		CHECK(s.processes == 1);
		CHECK_SOUND(st.h, 0);
		side_checks++;
		t_sleep_ns(5000000);
	}
	return NULL;
}

/* ---- per-thread error state ------------------------------------------------------------- */

struct err_arg {
	int phase;
	char seen[256];
};

static void *err_thread(void *arg)
{
	struct err_arg *a = arg;
	keel_conflict_t c;

	/* A fresh thread has no message and no conflict yet. */
	snprintf(a->seen, sizeof(a->seen), "%s", keel_errmsg());
	CHECK_MSG(a->seen[0] == 0, "a new thread inherits keel_errmsg '%s'", a->seen);
	memset(&c, 0x5a, sizeof(c));
	keel_last_conflict(&c);
	CHECK_MSG(strncmp(c.part, "errs", 5) != 0, "a new thread sees another thread's conflict "
		  "on '%s' (expected %" PRIu64 ")", c.part, c.expected);
	if (a->phase == 1) {
		CHECK_ERR(keel_put(st.h, "bad name", "k", 1, "v", 1, NULL), KEEL_E_NAME);
		CHECK_RC(keel_put_if(st.h, "errs", "k", 1, "v", 1, 42, NULL), KEEL_E_CONFLICT);
		keel_last_conflict(&c);
		CHECK(strcmp(c.part, "errs") == 0 && c.expected == 42);
	}
	return NULL;
}

static void per_thread_state(void)
{
	struct err_arg a = { 0 };
	pthread_t th;
	keel_conflict_t mine;

	/* This thread makes a conflict of its own first. */
	CHECK_OK(keel_put(st.h, "errs", "mine", 4, "v", 1, NULL));
	CHECK_RC(keel_put_if(st.h, "errs", "mine", 4, "v", 1, 7, NULL), KEEL_E_CONFLICT);
	for (int phase = 1; phase <= 2; phase++) {
		a.phase = phase;
		CHECK_OK(-pthread_create(&th, NULL, err_thread, &a));
		CHECK_OK(-pthread_join(th, NULL));
	}
	keel_last_conflict(&mine);
	CHECK_MSG(strcmp(mine.part, "errs") == 0 && mine.expected == 7 && mine.current == 1,
		  "this thread's last conflict was overwritten by another thread's: part '%s' "
		  "expected %" PRIu64, mine.part, mine.expected);
}

int main(int argc, char **argv)
{
	int seed_given = 0;
	uint64_t seed = 0, transfers = 0, puts = 0, conflicts = 0, t0;
	pthread_t side[2];

	t_begin("test_threads");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			printf("usage: test_threads [--seed S] [--threads N] [--rounds N]\n"
			       "Threads share one handle doing puts, gets, transfers, scopes and\n"
			       "iterators; counts, versions and totals must add up.\n"
			       "Defaults: --threads 4 --rounds 100000.  Exit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(a, "--seed")) {
			seed = t_parse_u64(a, v);
			seed_given = 1;
			i++;
		} else if (!strcmp(a, "--threads")) {
			n_threads = (unsigned)t_parse_u64(a, v);
			i++;
		} else if (!strcmp(a, "--rounds")) {
			n_rounds = t_parse_u64(a, v);
			i++;
		} else {
			fprintf(stderr, "test_threads: unknown argument '%s' (try --help)\n", a);
			return 2;
		}
	}
	if (n_threads < 1 || n_threads > THREADS_MAX || n_rounds < OWN_KEYS) {
		fprintf(stderr, "test_threads: need 1 <= threads <= %d and rounds >= %d\n",
			THREADS_MAX, OWN_KEYS);
		return 2;
	}
	t_seed_init(seed_given, seed);
	t_store_init(&st);
	t_store_open(&st);
	bank_setup(st.h, &bank);

	t0 = t_now_ns();
	CHECK_OK(-pthread_create(&side[0], NULL, summer, NULL));
	CHECK_OK(-pthread_create(&side[1], NULL, auditor, NULL));
	for (unsigned t = 0; t < n_threads; t++) {
		thr[t].id = t;
		CHECK_OK(-pthread_create(&thr[t].th, NULL, worker, &thr[t]));
	}
	for (unsigned t = 0; t < n_threads; t++) {
		CHECK_OK(-pthread_join(thr[t].th, NULL));
		transfers += thr[t].transfers;
		puts += thr[t].puts;
		conflicts += thr[t].conflicts;
	}
	stop_side = 1;
	CHECK_OK(-pthread_join(side[0], NULL));
	CHECK_OK(-pthread_join(side[1], NULL));

	/* Counts add up. */
	for (unsigned p = 0; p < THR_PARTS; p++) {
		char part[16];
		uint64_t cnt = 0, want = 0;

		snprintf(part, sizeof(part), "thr.%u", p);
		for (unsigned k = 0; k < OWN_KEYS; k++)
			want += (k % THR_PARTS == p) * n_threads;
		CHECK_OK(keel_count(st.h, part, &cnt));
		CHECK_MSG(cnt == want, "%s holds %" PRIu64 " keys, expected %" PRIu64, part, cnt, want);
	}
	for (unsigned t = 0; t < n_threads; t++) {
		for (unsigned k = 0; k < OWN_KEYS; k++) {
			char part[16], key[24];
			size_t kl;
			uint64_t v;
			keel_meta_t m;

			own_key(t, k, part, key, &kl);
			CHECK_OK(keel_get(st.h, part, key, kl, &v, sizeof(v), NULL, &m));
			CHECK_MSG(m.version == thr[t].writes[k], "%s/%s: version %" PRIu64
				  ", thread wrote it %" PRIu64 " times", part, key, m.version,
				  thr[t].writes[k]);
		}
	}
	CHECK_EQ_I64(bank_sum_scope(st.h, &bank, NULL), bank_total(&bank));
	CHECK_MSG(bank_writes(st.h, &bank) == 2 * transfers,
		  "account versions add up to %" PRIu64 " writes, expected 2 x %" PRIu64 " transfers",
		  bank_writes(st.h, &bank), transfers);
	{
		keel_stat_t s;

		CHECK_OK(keel_stat(st.h, &s));
		CHECK_EQ_U64(s.keys, bank.accounts + (uint64_t)n_threads * OWN_KEYS);
	}
	CHECK_SOUND(st.h, 0);
	per_thread_state();
	printf("test_threads: %u threads x %" PRIu64 " rounds in %.2f s: %" PRIu64 " puts, %" PRIu64
	       " transfers (%" PRIu64 " conflicts retried), %" PRIu64 " side totals, %" PRIu64
	       " live checks; all consistent\n",
	       n_threads, n_rounds, (double)(t_now_ns() - t0) / 1e9, puts, transfers, conflicts,
	       side_sums, side_checks);
	t_store_destroy(&st);
	printf("test_threads: PASS\n");
	return 0;
}
