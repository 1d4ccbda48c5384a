/*
 * test_durable_faults.c - EIO, ENOSPC and short writes at every I/O operation
 * of a store's commit workload, on the simulated disk.
 *
 * The workload is fixed by the seed: a durable store on a simulated disk
 * (jio_sim, lib/jio.h) takes a few hundred commits - transfers between bank
 * accounts in four partitions (common/bank.h), puts of small and
 * multi-sector values in a fifth, short ASYNC bursts closed by keel_sync, and
 * a few checkpoints.  A dry run counts its I/O operations (T) and records the
 * state and LSN after every commit.  Then, for every operation index N < T,
 * for each fault - EIO, ENOSPC, a short write - once and persistent
 * (jio_sim_fail), the workload runs again on a fresh disk until it fails, and
 * the test checks:
 *
 *   - before the fault every step succeeds, exactly as in the dry run;
 *   - the step (commit or keel_sync) in which the fault happens fails, with
 *     KEEL_E_NOSPC for ENOSPC and KEEL_E_IO or KEEL_E_PANIC otherwise, and
 *     durable_lsn stays below its LSN: nothing is acknowledged;
 *   - every later commit, keel_sync and checkpoint fails too (sticky), even
 *     when the fault was a single one (after ENOSPC keel_sync may return 0
 *     when every commit made is already durable: it acknowledges nothing);
 *   - after ENOSPC reads keep working (a read scope sees all the money);
 *     after EIO or a short write every call, reads included, returns
 *     KEEL_E_PANIC;
 *   - a fault inside a checkpoint may fail the checkpoint or not, and later
 *     commits may go on; whatever they acknowledge must survive;
 *   - a fault inside keel_open_io (the store's identity file) fails the open;
 *   - after closing, clearing the fault and a power loss (crash KEEP, crash
 *     DROP, or no crash at all with the failed arena left in place), the
 *     store reopens; it holds exactly the state after some commit k with
 *     acked <= k <= in flight, so every commit acknowledged before the
 *     failure is there; the money is all there; and it takes a new commit.
 *
 * --long uses a workload four times as long.  --seed reproduces a run;
 * --only-op N runs the fault runs of one operation index.
 *
 * Journal segments are 16 KiB (durable_test_seg_bytes, internal.h), so the
 * simulated disk stays fast and segment switches fall inside the workload.
 */
#include "common/bank.h"
#include "lib/internal.h"
#include "lib/jio.h"

#define SEG_BYTES_TEST (16u << 10)
#define BANK_PARTS 4u
#define ACCOUNTS 32u
#define INITIAL 1000
#define MISC_KEYS 16u
#define NENT (ACCOUNTS + MISC_KEYS)
#define VAL_MAX 3000u
#define STEPS_DEFAULT 200u
#define STEPS_LONG 800u
#define STEPS_MAX 4096u
#define AFTER_TRIES 3u               /* calls checked after a failure */

struct ent {
	uint8_t present;
	uint32_t vlen;
	uint64_t version;
	uint64_t tag; /* balance, or the value's nonce */
};

struct state {
	struct ent e[NENT];
};

enum step_kind { STEP_SYNC = 1, STEP_ASYNC = 2, STEP_KSYNC = 3, STEP_CKPT = 4 };

static const bank_t g_bank = { BANK_PARTS, ACCOUNTS, INITIAL };
static char g_dir[PATH_MAX];
static char g_arena[128];
static uint64_t g_steps = STEPS_DEFAULT, g_wseed, g_runs;
static struct state g_states[STEPS_MAX + 1];  /* after commit k (dry run) */
static uint64_t g_lsn[STEPS_MAX + 1];
static int g_saved_stderr = -1, g_null_fd = -1, g_run_log_fd = -1;
static char g_run_log[128];
static pid_t g_main_pid;

/* Figures, in memory shared with the forked runs. */
struct figures {
	uint64_t runs, open_failed, ckpt_faults, ckpt_failed, after_ckpt_ok, nospc_reads, panic_reads,
		recovered_beyond, failed_runs;
};
static struct figures *g_fig;

/* ---- names, values, options -------------------------------------------------------------------- */

static void ent_names(unsigned e, char part[24], char key[16], size_t *kl)
{
	if (e < ACCOUNTS) {
		bank_part(&g_bank, e, part);
		*kl = bank_key(e, key);
	} else {
		snprintf(part, 24, "misc");
		*kl = (size_t)snprintf(key, 16, "m:%03u", e - ACCOUNTS);
	}
}

static void fill_value(uint8_t *buf, uint32_t vlen, uint64_t nonce)
{
	uint64_t s = nonce;

	memcpy(buf, &nonce, 8);
	for (uint32_t i = 8; i < vlen; i += 8) {
		uint64_t x = t_rand(&s);
		memcpy(buf + i, &x, vlen - i < 8 ? vlen - i : 8);
	}
}

static void options(keel_options_t *o)
{
	keel_options_init(o);
	o->durability = KEEL_DURABILITY_SYNC;
	o->arena_bytes_max = 64ull << 20;
	o->ring_bytes = 1u << 20;
	/* ASYNC commits never flush on their own (the first after open
	 * aside), so every run makes the same I/O operations. */
	o->async_window_ms = 600000;
	snprintf(g_arena, sizeof g_arena, "/dev/shm/keel-flt-%d-%" PRIu64, (int)g_main_pid, g_runs++);
	o->arena_path = g_arena;
}

static void drop_arena(const keel_options_t *o)
{
	int rc = keel_unlink_arena(g_dir, o, 1);

	CHECK_MSG(rc == 0 || rc == KEEL_E_NOTFOUND, "unlink arena %s: %d (%s)", o->arena_path, rc, keel_strerror(rc));
}

static void cleanup(void)
{
	keel_options_t o;

	if (getpid() != g_main_pid)
		return;
	if (g_run_log[0])
		unlink(g_run_log);
	keel_options_init(&o);
	if (g_arena[0]) {
		o.arena_path = g_arena;
		keel_unlink_arena(g_dir, &o, 1);
	}
	if (g_dir[0] && !(getenv("KEEL_TEST_KEEP") && getenv("KEEL_TEST_KEEP")[0] == '1'))
		t_rm_rf(g_dir);
}

/* Recovery warns on stderr about every torn tail: hide that in fault runs. */
static void quiet(int on)
{
	fflush(stderr);
	dup2(on ? g_null_fd : g_saved_stderr, 2);
}

/* ---- reading a store ----------------------------------------------------------------------------- */

static void read_state(keel_t *h, struct state *st, const char *what)
{
	static uint8_t buf[VAL_MAX], want[VAL_MAX];

	memset(st, 0, sizeof *st);
	for (unsigned e = 0; e < NENT; e++) {
		char part[24], key[16];
		size_t kl, vl = 0;
		keel_meta_t m;
		int rc;

		ent_names(e, part, key, &kl);
		rc = keel_get(h, part, key, kl, buf, sizeof buf, &vl, &m);
		if (rc == KEEL_E_NOTFOUND)
			continue;
		CHECK_MSG(rc == 0, "%s: get %s/%s returned %d (%s)", what, part, key, rc, keel_strerror(rc));
		st->e[e] = (struct ent){ 1, (uint32_t)vl, m.version, 0 };
		CHECK_MSG(vl >= 8 && vl <= VAL_MAX, "%s: %s/%s holds %zu bytes", what, part, key, vl);
		memcpy(&st->e[e].tag, buf, 8);
		if (e >= ACCOUNTS) {
			fill_value(want, (uint32_t)vl, st->e[e].tag);
			CHECK_MSG(memcmp(buf, want, vl) == 0, "%s: %s/%s holds bytes the workload never wrote", what,
				  part, key);
		}
	}
}

static int state_diff(const struct state *a, const struct state *b, char *buf, size_t cap)
{
	for (unsigned e = 0; e < NENT; e++) {
		const struct ent *x = &a->e[e], *y = &b->e[e];
		char part[24], key[16];
		size_t kl;

		if (x->present == y->present &&
		    (!x->present || (x->vlen == y->vlen && x->version == y->version && x->tag == y->tag)))
			continue;
		ent_names(e, part, key, &kl);
		snprintf(buf, cap, "%s/%s: expected %s version %" PRIu64 " tag %" PRId64 ", found %s version %" PRIu64
			 " tag %" PRId64, part, key, x->present ? "present" : "absent", x->version, (int64_t)x->tag,
			 y->present ? "present" : "absent", y->version, (int64_t)y->tag);
		return 1;
	}
	return 0;
}

static void check_money(const struct state *st, const char *what)
{
	int64_t sum = 0, n = 0;

	for (unsigned a = 0; a < ACCOUNTS; a++)
		if (st->e[a].present) {
			sum += (int64_t)st->e[a].tag;
			n++;
		}
	CHECK_MSG(sum == n * INITIAL, "%s: %" PRId64 " accounts hold %" PRId64 ", expected %" PRId64
		  " (a partial transaction)", what, n, sum, n * INITIAL);
}

/* ---- the workload ------------------------------------------------------------------------------------ */

/* The run's state: which commit the store is at, what was acknowledged. */
struct run {
	keel_t *h;
	uint64_t rng;
	uint64_t ncommits, acked, issued, nonce;
	struct state cur;
	int dry;
};

/* One step of the workload.  Commits advance run->ncommits even when they
 * fail (the failing commit is the one in flight).  Returns the call's code. */
static int step(struct run *r, uint64_t i, int *kind_out)
{
	static uint8_t buf[VAL_MAX];
	uint64_t x = t_rand_below(&r->rng, 100), lsn = 0;
	struct state next = r->cur;
	keel_txn_t *t = NULL;
	int kind, rc;

	if (i < BANK_PARTS) { /* setup: the accounts of partition i */
		int64_t init = INITIAL;

		kind = STEP_SYNC;
		*kind_out = kind;
		if ((rc = keel_txn_begin(r->h, KEEL_DURABILITY_SYNC, &t)))
			return rc;   /* a failed store refuses the txn */
		for (unsigned a = (unsigned)i; a < ACCOUNTS; a += BANK_PARTS) {
			char part[24], key[16];
			size_t kl;

			ent_names(a, part, key, &kl);
			CHECK_OK(keel_txn_put(t, part, key, kl, &init, 8));
			next.e[a] = (struct ent){ 1, 8, 1, (uint64_t)init };
		}
	} else if (i % 67 == 66) {
		kind = STEP_CKPT;
	} else if (i % 23 == 22) {
		kind = STEP_KSYNC;
	} else {
		kind = i % 23 >= 18 ? STEP_ASYNC : STEP_SYNC;
		*kind_out = kind;
		if ((rc = keel_txn_begin(r->h, kind == STEP_ASYNC ? KEEL_DURABILITY_ASYNC : KEEL_DURABILITY_SYNC, &t)))
			return rc;
		if (x < 70) {
			unsigned from = (unsigned)t_rand_below(&r->rng, ACCOUNTS);
			unsigned to = (unsigned)t_rand_below(&r->rng, ACCOUNTS - 1);
			int64_t amount = 1 + (int64_t)t_rand_below(&r->rng, 50), vf, vt;
			char pf[24], pt[24], kf[16], kt[16];
			size_t klf, klt;

			to += to >= from;
			ent_names(from, pf, kf, &klf);
			ent_names(to, pt, kt, &klt);
			vf = (int64_t)next.e[from].tag - amount;
			vt = (int64_t)next.e[to].tag + amount;
			CHECK_OK(keel_txn_put_if(t, pf, kf, klf, &vf, 8, next.e[from].version));
			CHECK_OK(keel_txn_put_if(t, pt, kt, klt, &vt, 8, next.e[to].version));
			next.e[from].tag = (uint64_t)vf;
			next.e[to].tag = (uint64_t)vt;
			next.e[from].version++;
			next.e[to].version++;
		}
		if (x >= 50) {
			unsigned e = ACCOUNTS + (unsigned)t_rand_below(&r->rng, MISC_KEYS);
			uint32_t vlen = t_rand_below(&r->rng, 6) ? 16 + (uint32_t)t_rand_below(&r->rng, 300)
								 : 600 + (uint32_t)t_rand_below(&r->rng, VAL_MAX - 600);
			char part[24], key[16];
			size_t kl;
			struct ent *en = &next.e[e];

			ent_names(e, part, key, &kl);
			en->tag = ++r->nonce;
			fill_value(buf, vlen, en->tag);
			CHECK_OK(keel_txn_put(t, part, key, kl, buf, vlen));
			en->version = en->present ? en->version + 1 : 1;
			en->present = 1;
			en->vlen = vlen;
		}
	}
	*kind_out = kind;
	if (kind == STEP_CKPT) {
		r->issued = r->ncommits;
		rc = keel_checkpoint(r->h, &lsn);
		if (rc == 0)
			r->acked = r->ncommits;
		return rc;
	}
	if (kind == STEP_KSYNC) {
		r->issued = r->ncommits;
		rc = keel_sync(r->h);
		if (rc == 0)
			r->acked = r->ncommits;
		return rc;
	}
	r->issued = r->ncommits + 1;
	rc = keel_txn_commit(t, &lsn);
	r->ncommits++;
	if (rc == 0) {
		r->cur = next;
		if (kind == STEP_SYNC)
			r->acked = r->ncommits;
		if (r->dry) {
			g_states[r->ncommits] = next;
			g_lsn[r->ncommits] = lsn;
		} else {
			CHECK_MSG(lsn == g_lsn[r->ncommits], "commit %" PRIu64 " got LSN %" PRIu64 ", %" PRIu64 " in the dry run",
				  r->ncommits, lsn, g_lsn[r->ncommits]);
		}
	}
	return rc;
}

/* ---- one fault run ------------------------------------------------------------------------------------- */

static const char *fault_name(int k)
{
	return k == JIO_FAULT_EIO ? "EIO" : k == JIO_FAULT_ENOSPC ? "ENOSPC" : k == JIO_FAULT_SHORT ? "SHORT" : "none";
}

static int is_fail_code(int rc)
{
	return rc == KEEL_E_PANIC || rc == KEEL_E_IO || rc == KEEL_E_NOSPC;
}

/* After a failure: more commits, keel_sync and a checkpoint must all fail;
 * reads work after ENOSPC and say PANIC otherwise. */
static void check_after_failure(struct run *r, int fault, const char *what)
{
	keel_stat_t st;
	int rc, want = fault == JIO_FAULT_ENOSPC ? KEEL_E_NOSPC : KEEL_E_PANIC;

	for (unsigned k = 0; k < AFTER_TRIES; k++) {
		keel_txn_t *t = NULL;
		int64_t v = 7;

		rc = keel_txn_begin(r->h, KEEL_DURABILITY_SYNC, &t);
		if (rc == 0) {
			CHECK_OK(keel_txn_put(t, "misc", "after", 5, &v, 8));
			rc = keel_txn_commit(t, NULL);
		}
		CHECK_MSG(rc == want, "%s: commit %u after the failure returned %d (%s), expected %s", what, k + 1, rc,
			  keel_strerror(rc), keel_strerror(want));
	}
	rc = keel_sync(r->h);
	if (rc == 0 && fault == JIO_FAULT_ENOSPC) {
		/* Fine only if it acknowledged nothing: every commit made was
		 * already durable (the failed one was refused before it was
		 * applied). */
		CHECK_OK(keel_stat(r->h, &st));
		CHECK_MSG(st.durable_lsn + 1 == st.next_lsn,
			  "%s: keel_sync after ENOSPC returned 0 with commits up to LSN %" PRIu64 " not durable (durable LSN %" PRIu64 ")",
			  what, st.next_lsn - 1, st.durable_lsn);
	} else {
		CHECK_MSG(rc == want, "%s: keel_sync after the failure returned %d (%s), expected %s", what, rc,
			  keel_strerror(rc), keel_strerror(want));
	}
	rc = keel_checkpoint(r->h, NULL);
	CHECK_MSG(rc == want, "%s: keel_checkpoint after the failure returned %d (%s), expected %s", what, rc,
		  keel_strerror(rc), keel_strerror(want));
	if (fault == JIO_FAULT_ENOSPC) {
		int64_t sum;
		char key[16];
		size_t kl = bank_key(0, key), vl = 0;
		int64_t bal;

		CHECK_OK(keel_stat(r->h, &st));
		CHECK_MSG(r->issued == 0 || st.durable_lsn < g_lsn[r->issued],
			  "%s: durable LSN %" PRIu64 " covers the failed commit's LSN %" PRIu64, what, st.durable_lsn,
			  g_lsn[r->issued]);
		if (r->ncommits >= BANK_PARTS) {
			rc = keel_get(r->h, "bank.0", key, kl, &bal, sizeof bal, &vl, NULL);
			CHECK_MSG(rc == 0 && vl == 8, "%s: get after ENOSPC returned %d (%s)", what, rc, keel_strerror(rc));
			sum = bank_sum_scope(r->h, &g_bank, NULL);
			CHECK_MSG(sum == bank_total(&g_bank), "%s: after ENOSPC a read scope sums %" PRId64 ", expected %" PRId64,
				  what, sum, bank_total(&g_bank));
			g_fig->nospc_reads++;
		}
	} else {
		char key[16];
		size_t kl = bank_key(0, key), vl = 0;
		int64_t bal;

		rc = keel_get(r->h, "bank.0", key, kl, &bal, sizeof bal, &vl, NULL);
		CHECK_MSG(rc == KEEL_E_PANIC, "%s: get after the failure returned %d (%s), expected KEEL_E_PANIC", what,
			  rc, keel_strerror(rc));
		g_fig->panic_reads++;
	}
}

/* Reopen after the failure and check what survived. */
static void reopen_check(jio_sim_t *sim, struct run *r, keel_options_t *o, int how, const char *what)
{
	static struct state got;
	keel_stat_t st;
	keel_t *h = NULL;
	uint64_t k, L, lsn = 0;
	char diff[512];
	int rc;

	jio_sim_fail(sim, 0, JIO_FAULT_NONE, 0);
	if (how != 2) {
		CHECK_OK(jio_sim_crash(sim, t_rand(&r->rng), how == 0 ? JIO_CRASH_KEEP : JIO_CRASH_DROP));
		drop_arena(o);
	}
	/* how == 2: no power loss; the failed arena is still there and the
	 * open must rebuild it from the disk. */
	quiet(1);
	rc = keel_open_io(g_dir, o, jio_sim_io(sim), &h);
	quiet(0);
	CHECK_MSG(rc == 0, "%s: reopen returned %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	CHECK_OK(keel_stat(h, &st));
	L = st.applied_lsn;
	for (k = r->issued + 1; k-- > r->acked;)
		if (g_lsn[k] == L)
			break;
	CHECK_MSG(k + 1 != r->acked,
		  "%s: reopened at LSN %" PRIu64 "; acknowledged commits end at LSN %" PRIu64 ", the one in flight has LSN %" PRIu64 "%s",
		  what, L, g_lsn[r->acked], g_lsn[r->issued], L < g_lsn[r->acked] ? ": ACKNOWLEDGED COMMITS WERE LOST" : "");
	read_state(h, &got, what);
	check_money(&got, what);
	if (state_diff(&g_states[k], &got, diff, sizeof diff))
		T_FAIL("%s: reopened at LSN %" PRIu64 " (commit %" PRIu64 ") with another state: %s", what, L, k, diff);
	g_fig->recovered_beyond += k > r->acked;
	CHECK_OK(keel_put(h, "misc", "after", 5, "ok", 2, &lsn));
	CHECK_MSG(lsn == L + 1, "%s: the first commit after reopening got LSN %" PRIu64 ", expected %" PRIu64, what, lsn,
		  L + 1);
	CHECK_OK(keel_close(h));
	drop_arena(o);
}

static void fault_run(uint64_t n, int fault, int persistent)
{
	keel_options_t o;
	jio_sim_t *sim = NULL;
	struct run r;
	char what[200];
	int rc, failed = 0, in_ckpt = 0, how;

	memset(&r, 0, sizeof r);
	r.rng = g_wseed;
	snprintf(what, sizeof what, "%s %s at operation %" PRIu64, fault_name(fault), persistent ? "persistent" : "once", n);
	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, g_dir));
	jio_sim_fail(sim, n, fault, persistent);
	options(&o);
	how = (int)((n + (uint64_t)fault + (uint64_t)persistent) % 3);
	g_fig->runs++;
	quiet(1);
	rc = keel_open_io(g_dir, &o, jio_sim_io(sim), &r.h);
	quiet(0);
	if (jio_sim_faults(sim)) {
		CHECK_MSG(rc != 0, "%s: the fault hit keel_open_io, which returned 0", what);
		CHECK_MSG(rc == KEEL_E_IO || rc == KEEL_E_NOSPC || rc == KEEL_E_OS,
			  "%s: keel_open_io returned %d (%s), expected an I/O error", what, rc, keel_strerror(rc));
		g_fig->open_failed++;
		reopen_check(sim, &r, &o, how, what);
		jio_sim_destroy(sim);
		return;
	}
	CHECK_MSG(rc == 0, "%s: open returned %d (%s) before the fault", what, rc, keel_strerror(rc));
	for (uint64_t i = 0; i < g_steps && !failed; i++) {
		uint64_t f0 = jio_sim_faults(sim);
		int kind = 0;

		rc = step(&r, i, &kind);
		if (jio_sim_faults(sim) == 0) {
			CHECK_MSG(rc == 0, "%s: step %" PRIu64 " returned %d (%s) with no fault injected yet", what, i, rc,
				  keel_strerror(rc));
			continue;
		}
		if (f0 == 0 && kind == STEP_CKPT) {
			/* The fault hit a checkpoint: it may fail or not; the
			 * journal is another matter, checked below. */
			in_ckpt = 1;
			g_fig->ckpt_faults++;
			g_fig->ckpt_failed += rc != 0;
			if (rc && !is_fail_code(rc))
				T_FAIL("%s: keel_checkpoint returned %d (%s)", what, rc, keel_strerror(rc));
			continue;
		}
		if (in_ckpt && rc == 0) {
			g_fig->after_ckpt_ok++;
			continue; /* acknowledged: must survive (reopen_check) */
		}
		CHECK_MSG(rc != 0, "%s: step %" PRIu64 " (%s) returned 0 although the fault hit %s: acknowledged after a failure",
			  what, i, kind == STEP_KSYNC ? "keel_sync" : "commit", f0 ? "an earlier step" : "this step");
		if (fault == JIO_FAULT_ENOSPC)
			CHECK_MSG(rc == KEEL_E_NOSPC, "%s: step %" PRIu64 " returned %d (%s), expected KEEL_E_NOSPC", what, i,
				  rc, keel_strerror(rc));
		else
			CHECK_MSG(rc == KEEL_E_IO || rc == KEEL_E_PANIC,
				  "%s: step %" PRIu64 " returned %d (%s), expected KEEL_E_IO or KEEL_E_PANIC", what, i, rc,
				  keel_strerror(rc));
		failed = 1;
	}
	if (failed) {
		check_after_failure(&r, fault, what);
	} else if (!in_ckpt) {
		/* runs are deterministic: op n < T must be reached */
		T_FAIL("%s: the workload ended without reaching operation %" PRIu64 " (%" PRIu64 " operations)", what, n,
		       jio_sim_ops(sim));
	}
	keel_close(r.h); /* may report the failure; must not hang */
	reopen_check(sim, &r, &o, how, what);
	jio_sim_destroy(sim);
}

/* Copy the failed run's stderr (its last 8 KiB) to ours. */
static void show_run_log(void)
{
	static char buf[8192];
	off_t size = lseek(g_run_log_fd, 0, SEEK_END);
	off_t from = size > (off_t)sizeof buf ? size - (off_t)sizeof buf : 0;
	ssize_t n = pread(g_run_log_fd, buf, sizeof buf, from);

	fflush(stdout);
	if (n > 0 && write(2, buf, (size_t)n) < 0)
		return;
}

/* ---- main ---------------------------------------------------------------------------------------- */

static uint64_t dry_run(void)
{
	keel_options_t o;
	jio_sim_t *sim = NULL;
	struct run r;
	uint64_t ops;

	memset(&r, 0, sizeof r);
	r.rng = g_wseed;
	r.dry = 1;
	CHECK_OK(jio_sim_create(&sim));
	CHECK_OK(jio_sim_mkdirs(sim, g_dir));
	options(&o);
	CHECK_OK(keel_open_io(g_dir, &o, jio_sim_io(sim), &r.h));
	for (uint64_t i = 0; i < g_steps; i++) {
		int kind;
		int rc = step(&r, i, &kind);

		CHECK_MSG(rc == 0, "dry run: step %" PRIu64 " returned %d (%s)", i, rc, keel_strerror(rc));
	}
	ops = jio_sim_ops(sim);
	CHECK_OK(keel_close(r.h));
	drop_arena(&o);
	jio_sim_destroy(sim);
	printf("test_durable_faults: workload of %" PRIu64 " steps, %" PRIu64 " commits, %" PRIu64 " I/O operations\n",
	       g_steps, r.ncommits, ops);
	return ops;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: test_durable_faults [--seed N] [--long] [--only-op N] [--keep-going]\n"
		"EIO, ENOSPC and short writes (once and persistent) at every I/O operation of a\n"
		"store's commit workload on the simulated disk.\n"
		"  --seed N      reproduce a run\n"
		"  --long        a workload of %u steps (default %u)\n"
		"  --only-op N   only the runs that fail operation N\n"
		"  --keep-going  report every failing run, not only the first\n"
		"Exit: 0 pass, 1 fail.\n",
		STEPS_LONG, STEPS_DEFAULT);
}

/* A transaction whose record no journal segment can hold is refused before
 * anything is applied, and the store goes on (no sticky failure). */
static void check_oversize(void)
{
	char dir[] = "/tmp/keel-flt-big-XXXXXX";
	keel_options_t o;
	keel_txn_t *t;
	keel_t *h;
	static char val[5000];
	uint64_t n = 1;

	CHECK(mkdtemp(dir) != NULL);
	keel_options_init(&o);
	CHECK_OK(keel_open(dir, &o, &h));
	CHECK_OK(keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t));
	for (int i = 0; i < 4; i++) {
		char k[8];
		snprintf(k, sizeof k, "big%d", i);
		CHECK_OK(keel_txn_put(t, "p", k, strlen(k), val, sizeof val));
	}
	CHECK_RC(keel_txn_commit(t, NULL), KEEL_E_TXNSIZE);
	CHECK_OK(keel_count(h, "p", &n));
	CHECK(n == 0);
	CHECK_OK(keel_put(h, "p", "small", 5, val, 100, NULL));
	CHECK_OK(keel_sync(h));
	CHECK_OK(keel_close(h));
	CHECK_OK(keel_unlink_arena(dir, NULL, 1));
	CHECK_OK(keel_open(dir, &o, &h));   /* recovered from the journal */
	CHECK_OK(keel_count(h, "p", &n));
	CHECK(n == 1);
	CHECK_OK(keel_close(h));
	CHECK_OK(keel_unlink_arena(dir, NULL, 1));
	t_rm_rf(dir);
	printf("test_durable_faults: a record over the segment limit is refused (TXNSIZE), nothing applied\n");
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, only = UINT64_MAX, ops, t0, done = 0;
	int seed_given = 0, keep_going = 0;
	static const int faults[] = { JIO_FAULT_EIO, JIO_FAULT_ENOSPC, JIO_FAULT_SHORT };

	t_begin("test_durable_faults");
	g_main_pid = getpid();
	g_fig = t_shared_alloc(sizeof *g_fig);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = t_parse_u64("--seed", argv[++i]);
			seed_given = 1;
		} else if (!strcmp(argv[i], "--long")) {
			g_steps = STEPS_LONG;
		} else if (!strcmp(argv[i], "--keep-going")) {
			keep_going = 1;
		} else if (!strcmp(argv[i], "--only-op") && i + 1 < argc) {
			only = t_parse_u64("--only-op", argv[++i]);
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "test_durable_faults: unknown or incomplete argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	t_seed_init(seed_given, seed);
	g_wseed = t_rand_stream(1);
	durable_test_seg_bytes = SEG_BYTES_TEST;
	check_oversize();
	atexit(cleanup);
	g_saved_stderr = dup(2);
	g_null_fd = open("/dev/null", O_WRONLY);
	CHECK(g_saved_stderr >= 0 && g_null_fd >= 0);
	snprintf(g_run_log, sizeof g_run_log, "/tmp/keel-flt-%d.log", (int)g_main_pid);
	g_run_log_fd = open(g_run_log, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0600);
	CHECK_MSG(g_run_log_fd >= 0, "open %s: %s", g_run_log, strerror(errno));
	{
		char tmp[] = "/tmp/keel-flt-XXXXXX";
		CHECK_MSG(mkdtemp(tmp) != NULL, "mkdtemp: %s", strerror(errno));
		CHECK_MSG(realpath(tmp, g_dir) != NULL, "realpath: %s", strerror(errno));
	}
	t0 = t_now_ns();
	ops = dry_run();
	if (only != UINT64_MAX && only >= ops) {
		fprintf(stderr, "test_durable_faults: --only-op %" PRIu64 ": the workload has operations 0..%" PRIu64 "\n", only,
			ops - 1);
		return 2;
	}
	for (uint64_t n = 0; n < ops && !(g_fig->failed_runs && !keep_going); n++) {
		if (only != UINT64_MAX && n != only)
			continue;
		for (unsigned f = 0; f < 3; f++)
			for (int p = 0; p < 2; p++) {
				/* Each run in a child: a failed check ends that run
				 * only, and --keep-going shows every failing one. */
				uint64_t base = g_runs;
				pid_t pid;
				int st;

				/* The run's stderr (the store logs every journal
				 * failure) is shown only if the run fails. */
				CHECK(ftruncate(g_run_log_fd, 0) == 0);
				pid = t_fork();
				if (pid == 0) {
					dup2(g_run_log_fd, 2);
					g_saved_stderr = g_run_log_fd;
					fault_run(n, faults[f], p);
					_exit(0);
				}
				t_waitpid(pid, &st);
				g_runs = base + 1;
				if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
					keel_options_t o;
					char sb[96];

					show_run_log();

					keel_options_init(&o);
					snprintf(g_arena, sizeof g_arena, "/dev/shm/keel-flt-%d-%" PRIu64, (int)g_main_pid, base);
					o.arena_path = g_arena;
					keel_unlink_arena(g_dir, &o, 1);
					g_fig->failed_runs++;
					printf("test_durable_faults: run %s %s at operation %" PRIu64 " FAILED (%s)\n",
					       fault_name(faults[f]), p ? "persistent" : "once", n,
					       t_status_str(st, sb, sizeof sb));
				}
			}
		done++;
	}
	if (g_fig->failed_runs) {
		printf("test_durable_faults: %" PRIu64 " failed runs; rerun one with --seed %" PRIu64 " --only-op N\n",
		       g_fig->failed_runs, t_seed_value);
		return T_EXIT_FAIL;
	}
	printf("test_durable_faults: %" PRIu64 " fault runs over %" PRIu64 " operation indexes in %.1f s: %" PRIu64
	       " failed keel_open_io, %" PRIu64 " hit a checkpoint (%" PRIu64 " of those failed it; %" PRIu64
	       " commits acknowledged after such a fault), %" PRIu64 " checked reads after ENOSPC, %" PRIu64
	       " checked PANIC reads, %" PRIu64 " reopened with a commit that was in flight\n",
	       g_fig->runs, done, (double)(t_now_ns() - t0) / 1e9, g_fig->open_failed, g_fig->ckpt_faults, g_fig->ckpt_failed,
	       g_fig->after_ckpt_ok, g_fig->nospc_reads, g_fig->panic_reads, g_fig->recovered_beyond);
	printf("test_durable_faults: PASS\n");
	return 0;
}
