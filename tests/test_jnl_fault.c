/*
 * test_jnl_fault.c - EIO, ENOSPC and short writes at every operation index
 * of a journal workload, once and persistently.
 *
 * For each fault kind, each of once/persistent, and each operation index K
 * of the workload (counted by a dry run), the workload runs with operation K
 * failing.  Checked:
 *   - the fault surfaces: the call that hit it returns KEEL_E_IO (EIO, short
 *     write) or KEEL_E_NOSPC (ENOSPC), and no injected fault is swallowed;
 *   - the failure is sticky: afterwards jnl_append, jnl_flush,
 *     jnl_recycle_below and jnl_prepare all return KEEL_E_PANIC, even when
 *     the fault was a one-off and the disk works again;
 *   - nothing is acknowledged after the failure, and after a power loss
 *     (random policy) recovery (scan with repair) returns every record
 *     acknowledged before it; the journal then reopens and takes new
 *     records.
 */
#include "test_jnl_util.h"

#define DIR "/store/journal"
#define SEG 8192u
#define LEN_MAX 700u
#define STEPS 24

static uint64_t salt;

struct run {
	uint64_t acked, appended, floor, next;
	int rc;          /* the first error */
	int in_open;     /* it came from jnl_open */
};

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

static void sticky_check(jnl_t *j, struct run *st)
{
	uint8_t b[4] = { 1, 2, 3, 4 };

	CHECK_RC(jnl_append(j, st->next, b, sizeof b), KEEL_E_PANIC);
	CHECK(strstr(jio_errmsg(), "failed earlier"));
	CHECK_RC(jnl_flush(j), KEEL_E_PANIC);
	CHECK_RC(jnl_recycle_below(j, st->floor), KEEL_E_PANIC);
	CHECK_RC(jnl_prepare(j, 1), KEEL_E_PANIC);
	{
		jnl_info_t info;

		jnl_info(j, &info);
		CHECK(info.failed == st->rc);
	}
}

static void workload(jio_sim_t *sim, uint64_t wseed, struct run *st, int check_sticky)
{
	jnl_opts_t o = opts();
	jnl_t *j;
	int rc = 0;

	memset(st, 0, sizeof *st);
	st->floor = 1;
	st->next = 1;
	rc = jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j);
	if (rc < 0) {
		st->rc = rc;
		st->in_open = 1;
		return;
	}
	for (int step = 0; step < STEPS && rc == 0; step++) {
		uint64_t r = wrand(&wseed) % 10, n = 1 + wrand(&wseed) % 6;

		if (r <= 7) {
			for (uint64_t k = 0; k < n && rc == 0; k++) {
				rc = tju_append_range(j, salt, LEN_MAX, st->next, st->next);
				if (rc == 0)
					st->appended = st->next++;
			}
			if (r <= 6 && rc == 0) {
				rc = jnl_flush(j);
				if (rc == 0)
					st->acked = st->next - 1;
			}
		} else if (r == 8) {
			uint64_t L = st->floor + wrand(&wseed) % (st->acked + 2 - st->floor);

			st->floor = L;
			rc = jnl_recycle_below(j, L);
		} else {
			rc = jnl_prepare(j, 1 + (unsigned)(wrand(&wseed) % 2));
		}
	}
	st->rc = rc;
	if (rc < 0 && check_sticky) {
		/* The disk works again; the journal must not. */
		jio_sim_fail(sim, 0, JIO_FAULT_NONE, 0);
		sticky_check(j, st);
	}
	jnl_close(j);
}

static struct tju_collect col;

static void recover(jio_sim_t *sim, const struct run *st)
{
	jnl_scan_result_t res;
	jnl_opts_t o = opts();
	jnl_t *j;
	int rc;

	CHECK_OK(jio_sim_crash(sim, tju_rand(), (int)tju_below(JIO_CRASH_POLICIES)));
	tju_collect_init(&col, salt, LEN_MAX);
	rc = jnl_scan(DIR, jio_sim_io(sim), tju_uuid, st->floor, JNL_SCAN_REPAIR, tju_collect_fn, &col,
		      &res);
	if (rc == KEEL_E_NOTFOUND && st->acked == 0)
		return;
	if (rc != 0 || col.bad || (st->acked >= st->floor && col.last < st->acked)) {
		fprintf(stderr, "recovery: rc %d, %" PRIu64 " records to %" PRIu64 ", acked %" PRIu64
			", floor %" PRIu64 ": %s\n", rc, col.count, col.last, st->acked, st->floor,
			res.msg);
		CHECK(0);
	}
	CHECK_OK(jnl_open(DIR, jio_sim_io(sim), tju_uuid, &o, &j));
	CHECK_OK(tju_append_range(j, salt, LEN_MAX, res.next_lsn, res.next_lsn + 2));
	CHECK_OK(jnl_flush(j));
	CHECK_OK(jnl_close(j));
}

int main(int argc, char **argv)
{
	static const int kinds[] = { JIO_FAULT_EIO, JIO_FAULT_ENOSPC, JIO_FAULT_SHORT };
	static const char *names[] = { "EIO", "ENOSPC", "short write" };
	int lng = tju_init(argc, argv, "EIO, ENOSPC and short writes at every operation of a journal workload.");
	unsigned workloads = lng ? 8 : 2;
	uint64_t runs = 0, surfaced = 0;

	salt = tju_seed;
	for (unsigned w = 0; w < workloads; w++) {
		uint64_t wseed = tju_rand(), total;
		jio_sim_t *dry;
		struct run st;

		CHECK_OK(jio_sim_create(&dry));
		CHECK_OK(jio_sim_mkdirs(dry, "/store"));
		workload(dry, wseed, &st, 0);
		CHECK_OK(st.rc);
		total = jio_sim_ops(dry);
		jio_sim_destroy(dry);
		for (int k = 0; k < 3; k++) {
			for (int persistent = 0; persistent <= 1; persistent++) {
				for (uint64_t K = 0; K < total; K++) {
					int want = kinds[k] == JIO_FAULT_ENOSPC ? KEEL_E_NOSPC : KEEL_E_IO;
					jio_sim_t *sim;

					CHECK_OK(jio_sim_create(&sim));
					CHECK_OK(jio_sim_mkdirs(sim, "/store"));
					jio_sim_fail(sim, K, kinds[k], persistent);
					workload(sim, wseed, &st, 1);
					runs++;
					/* The op K happened, so it failed, and the
					 * failure surfaced with its own code. */
					CHECK(jio_sim_faults(sim) >= 1);
					if (st.rc != want) {
						fprintf(stderr, "%s at op %" PRIu64 " (%s): rc %d\n", names[k],
							K, persistent ? "persistent" : "once", st.rc);
						CHECK(0);
					}
					surfaced++;
					jio_sim_fail(sim, 0, JIO_FAULT_NONE, 0);
					recover(sim, &st);
					jio_sim_destroy(sim);
				}
			}
		}
		printf("workload %u: %" PRIu64 " operations, each failed 6 ways\n", w, total);
	}
	printf("%" PRIu64 " fault runs, %" PRIu64 " surfaced with the right code, sticky, recovered\n",
	       runs, surfaced);
	printf("ok\n");
	return 0;
}
