/*
 * test_jnl_bitflip.c - every single-bit flip of a small journal is caught.
 *
 * The journal: two 4 KiB segments of small flushes (a few records each).
 * For every bit of every segment file, flip it and scan from LSN 1.  Each
 * flip must be classified as one of
 *   - a torn tail (scan returns 0, end TORN; what it delivered is an intact
 *     prefix, and only records of the last flush can be missing),
 *   - a refused bad record (KEEL_E_CORRUPT, JNL_BAD_RECORD),
 *   - a detected header or layout error (KEEL_E_CORRUPT, any other kind),
 * and none may be accepted silently: a scan that returns CLEAN is a
 * failure, whatever it delivered.  The counts of each class are printed.
 */
#include "test_jnl_util.h"

#define DIR "/j"
#define SEG 4096u
#define LEN_MAX 120u

int main(int argc, char **argv)
{
	jio_sim_t *base;
	jnl_opts_t o;
	jnl_t *j;
	jnl_info_t info;
	uint64_t salt, lsn = 1, last_flush_first = 1, flips = 0;
	uint64_t n_torn = 0, n_record = 0, n_header = 0, n_other = 0;
	static struct tju_collect c;

	tju_init(argc, argv, "Flip every bit of a small journal; each flip must be detected.");
	salt = tju_seed;
	CHECK_OK(jio_sim_create(&base));
	jnl_opts_init(&o);
	o.seg_bytes = SEG;
	CHECK_OK(jnl_open(DIR, jio_sim_io(base), tju_uuid, &o, &j));
	for (;;) {
		unsigned n = 1 + (unsigned)tju_below(3);

		last_flush_first = lsn;
		CHECK_OK(tju_append_range(j, salt, LEN_MAX, lsn, lsn + n - 1));
		lsn += n;
		CHECK_OK(jnl_flush(j));
		jnl_info(j, &info);
		if (info.segments == 2 && info.seg_off >= 3 * JIO_SECTOR_BYTES)
			break;
	}
	CHECK_OK(jnl_close(j));
	printf("journal: %" PRIu64 " records in 2 segments, last flush from LSN %" PRIu64 "\n",
	       lsn - 1, last_flush_first);

	for (uint64_t segno = 1; segno <= 2; segno++) {
		char name[64], path[128];
		uint8_t *orig;
		size_t len;

		CHECK_OK(jnl_segment_name(name, sizeof name, segno));
		snprintf(path, sizeof path, "%s/%s", DIR, name);
		CHECK_OK(jio_sim_get(base, path, &orig, &len));
		CHECK(len == SEG);
		for (uint64_t bit = 0; bit < (uint64_t)len * 8; bit++) {
			jnl_scan_result_t res;
			int rc;

			orig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			CHECK_OK(jio_sim_put(base, path, orig, len));
			orig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			tju_collect_init(&c, salt, LEN_MAX);
			rc = jnl_scan(DIR, jio_sim_io(base), tju_uuid, 1, 0, tju_collect_fn, &c, &res);
			flips++;
			if (rc == KEEL_E_CORRUPT) {
				if (res.bad == JNL_BAD_RECORD)
					n_record++;
				else if (res.bad == JNL_BAD_HEADER)
					n_header++;
				else
					n_other++;
				continue;
			}
			if (rc != 0 || res.end != JNL_END_TORN) {
				fprintf(stderr, "segment %" PRIu64 " byte %" PRIu64 " bit %" PRIu64
					": rc %d end %d: silently accepted (%" PRIu64 " records)\n",
					segno, bit / 8, bit % 8, rc, res.end, c.count);
				CHECK(0);
			}
			/* Torn: an intact prefix, cut inside the last flush. */
			CHECK(!c.bad && c.first == 1);
			CHECK(c.last + 1 >= last_flush_first && c.last <= lsn - 1);
			n_torn++;
		}
		CHECK_OK(jio_sim_put(base, path, orig, len));
		free(orig);
	}
	printf("%" PRIu64 " flips: %" PRIu64 " torn tail, %" PRIu64 " refused record, %" PRIu64
	       " header error, %" PRIu64 " other layout error, 0 accepted\n",
	       flips, n_torn, n_record, n_header, n_other);
	CHECK(n_torn + n_record + n_header + n_other == flips);
	CHECK(n_torn > 0 && n_record > 0 && n_header > 0);
	jio_sim_destroy(base);
	printf("ok\n");
	return 0;
}
