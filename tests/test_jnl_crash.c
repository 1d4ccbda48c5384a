/*
 * test_jnl_crash.c - power loss at every point of a journal workload, on the
 * simulated disk, with every crash policy.
 *
 * Each round draws a workload (appends, flushes, buffered appends left
 * unflushed, writes left unsynced under later writes as overlapping flushes
 * leave them, recycling below a "checkpoint" LSN, spare preparation) with
 * 8 KiB segments so that segments switch and recycle often.  A dry run
 * counts its I/O operations; the real run dies at a random operation K (every
 * operation from K on fails, as if the process were gone).  Then the disk
 * loses power under each policy (keep, drop, tear, garble, mix), and the
 * journal is scanned from the checkpoint LSN:
 *   - the scan never reports corruption (a crash only makes torn tails);
 *   - what it delivers starts at the checkpoint LSN, has consecutive LSNs
 *     and the right payloads, and includes every acknowledged record
 *     (jnl_flush, or a jnl_sync after the write, returned 0), and nothing
 *     that was never appended.
 * A second cycle repairs the tail, reopens, appends and flushes more, loses
 * power again, and checks the same, so repair and reuse of recycled
 * segments are covered too.  --long runs ten times as many rounds.
 */
#include "test_jnl_util.h"

#define DIR "/store/journal"
#define SEG 8192u
#define LEN_MAX 900u
#define STEPS 40

struct run {
	uint64_t acked;     /* every LSN <= this was acknowledged durable */
	uint64_t appended;  /* highest LSN ever appended */
	uint64_t floor;     /* checkpoint LSN: recycling below it was asked */
	int dead;
};

static uint64_t salt;

static uint64_t wrand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static jnl_opts_t opts(void)
{
	jnl_opts_t o;

	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	o.spare_max = 2;
	return o;
}

/* The workload drawn from wseed; stops at the first error. */
static void workload(jio_t *io, uint64_t wseed, struct run *st)
{
	jnl_opts_t o = opts();
	jnl_t *j;
	uint64_t next = 1;

	memset(st, 0, sizeof *st);
	st->floor = 1;
	if (jnl_open(DIR, io, tju_uuid, &o, &j) < 0) {
		st->dead = 1;
		return;
	}
	for (int step = 0; step < STEPS && !st->dead; step++) {
		uint64_t r = wrand(&wseed) % 10, n = 1 + wrand(&wseed) % 8;

		if (r <= 7) {
			for (uint64_t k = 0; k < n && !st->dead; k++) {
				if (tju_append_range(j, salt, LEN_MAX, next, next) < 0)
					st->dead = 1;
				else
					st->appended = next++;
			}
			if (r <= 6 && !st->dead) {
				/* A flush, or its write alone (overlapping flushes,
				 * journal.c W6: the next batch is written before this
				 * one is synced), or its write and then its sync. */
				uint64_t how = wrand(&wseed) % 3;
				if (how == 0 ? jnl_flush(j) < 0 : jnl_write(j) < 0)
					st->dead = 1;
				else if (how == 2 && jnl_sync(j) < 0)
					st->dead = 1;
				else if (how != 1)
					st->acked = next - 1;
			}
		} else if (r == 8) {
			/* A checkpoint covering everything below L was made
			 * durable: recycle below it. */
			uint64_t L = st->floor + wrand(&wseed) % (st->acked + 2 - st->floor);

			st->floor = L;
			if (jnl_recycle_below(j, L) < 0)
				st->dead = 1;
		} else {
			if (jnl_prepare(j, 1 + (unsigned)(wrand(&wseed) % 2)) < 0)
				st->dead = 1;
		}
	}
	jnl_close(j);
}

static struct tju_collect col;

/* Scan after a crash and check the promises.  Returns the next LSN. */
static uint64_t check_scan(jio_sim_t *sim, const struct run *st, unsigned flags, const char *what,
			   int policy)
{
	jnl_scan_result_t res;
	int rc;

	tju_collect_init(&col, salt, LEN_MAX);
	rc = jnl_scan(DIR, jio_sim_io(sim), tju_uuid, st->floor, flags, tju_collect_fn, &col, &res);
	if (rc == KEEL_E_NOTFOUND && st->acked == 0)
		return st->floor; /* the journal directory itself never became durable */
	if (rc != 0 || col.bad || (col.count && col.first != st->floor) ||
	    (st->acked >= st->floor && col.last < st->acked) || col.last > st->appended) {
		fprintf(stderr,
			"%s, policy %d: rc %d (%s) end %d; got %" PRIu64 " records %" PRIu64 "..%" PRIu64
			" bad %d; floor %" PRIu64 " acked %" PRIu64 " appended %" PRIu64 "\n  %s\n",
			what, policy, rc, jio_code_name(rc), res.end, col.count, col.first, col.last,
			col.bad, st->floor, st->acked, st->appended, res.msg);
		CHECK(0);
	}
	CHECK(res.end == JNL_END_CLEAN || res.end == JNL_END_TORN);
	CHECK(res.next_lsn == (col.count ? col.last + 1 : res.next_lsn));
	return res.next_lsn;
}

/* Second cycle: repair, reopen, append, flush, crash, check. */
static void second_cycle(jio_sim_t *sim, const struct run *st0, int policy)
{
	struct run st = *st0;
	jnl_opts_t o = opts();
	jnl_t *j;
	uint64_t next = check_scan(sim, st0, JNL_SCAN_REPAIR, "repair scan", policy);
	uint64_t n = 1 + tju_below(30);

	if (next < st.floor)
		next = st.floor;
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j));
	{
		jnl_info_t info;

		jnl_info(j, &info);
		CHECK(info.next_lsn == next);
	}
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, next, next + n - 1));
	CHECK_OK(jnl_flush(j));
	st.acked = next + n - 1;
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, next + n, next + n + 2));
	st.appended = next + n + 2;
	if (tju_below(2))
		CHECK_OK(jnl_flush(j)); /* maybe flushed, not counted as acked */
	jnl_close(j);
	CHECK_OK(jio_sim_crash(sim, tju_rand(), (int)tju_below(JIO_CRASH_POLICIES)));
	check_scan(sim, &st, 0, "second crash", policy);
}

int main(int argc, char **argv)
{
	int lng = tju_init(argc, argv, "Crash a journal workload at random points under every policy.");
	unsigned rounds = lng ? 6000 : 600;
	uint64_t states = 0, torn_like = 0;

	salt = tju_seed;
	for (unsigned round = 0; round < rounds; round++) {
		uint64_t wseed = tju_rand(), total, K;
		jio_sim_t *dry, *sim;
		struct run st;

		CHECK_OK(jio_sim_create(&dry));
		CHECK_OK(jio_sim_mkdirs(dry, "/store"));
		workload(jio_sim_io(dry), wseed, &st);
		CHECK(!st.dead);
		total = jio_sim_ops(dry);
		jio_sim_destroy(dry);

		K = tju_below(total + 1);
		CHECK_OK(jio_sim_create(&sim));
		CHECK_OK(jio_sim_mkdirs(sim, "/store"));
		jio_sim_fail(sim, K, JIO_FAULT_EIO, 1);
		workload(jio_sim_io(sim), wseed, &st);
		jio_sim_fail(sim, 0, JIO_FAULT_NONE, 0);
		if (jio_sim_dirty(sim))
			torn_like++;
		for (int policy = 0; policy < JIO_CRASH_POLICIES; policy++) {
			jio_sim_t *c;

			CHECK_OK(jio_sim_clone(sim, &c));
			CHECK_OK(jio_sim_crash(c, tju_rand(), policy));
			check_scan(c, &st, 0, "first crash", policy);
			second_cycle(c, &st, policy);
			states += 2;
			jio_sim_destroy(c);
		}
		jio_sim_destroy(sim);
	}
	printf("%u rounds, %" PRIu64 " crash states checked (%" PRIu64 " rounds died with unsynced "
	       "work in flight)\n", rounds, states, torn_like);
	printf("ok\n");
	return 0;
}
