/*
 * test_durable_corrupt.c - hand-made damage to a durable store's files on the
 * real disk, and what keel_open does about each.
 *
 * Each case makes a small store (SYNC puts of ~100-byte values, so every
 * commit is one flush of one record and its closing pad), closes it, removes
 * the arena (as a reboot would), damages one file, and reopens:
 *
 *   torn_tail      the last record cut in the middle (its second half and
 *                  its pad zeroed): opens; only that commit is gone; the
 *                  warning on stderr names the segment file and the offset;
 *                  the next commit gets the LSN after the last one kept
 *   torn_checksum  a byte of the last record's checksum flipped: the same
 *   mid_garbage    garbage over the payload of a record in the middle, valid
 *                  records after it: KEEL_E_CORRUPT, and keel_errmsg names the
 *                  segment file, the record's offset and its LSN; a second
 *                  open still refuses (nothing was cut)
 *   mid_checksum   a byte of a middle record's checksum flipped: the same,
 *                  and the message shows the checksum found in the file
 *   ckpt_tmp       a half-written newer checkpoint left as ckpt-<lsn>.tmp: it
 *                  is ignored; the newest complete checkpoint is used
 *   ckpt_trunc     the newest checkpoint truncated, an older one present:
 *                  recovery warns about the bad file, loads the older one
 *                  and replays the journal after it; every commit is there
 *   ckpt_only      the only checkpoint truncated: recovery replays the whole
 *                  journal; every commit is there
 *   id_magic       keel.id with a wrong magic (checksum recomputed),
 *   id_version     a wrong version (checksum recomputed), a wrong checksum,
 *   id_checksum    or cut to 10 bytes: KEEL_E_CORRUPT naming keel.id, and
 *   id_short       keel.id is left as it was
 *   id_missing     keel.id deleted, the journal kept: the open must not come
 *                  up as an empty store (it may refuse, or recover)
 *
 * Which checkpoint recovery loaded is read from its KEEL_RECOVERY_VERBOSE
 * line; each checkpoint case first opens the undamaged store to see that line
 * name the newest checkpoint, so the check cannot pass by not matching.  The
 * journal is parsed with the segment and record layout documented at the top
 * of lib/journal.c; a layout change makes the parse fail loudly.
 */
#include <dirent.h>
#include <xxhash.h>

#include "common/t.h"

#define COMMITS 12u
#define VLEN 100u
#define SEG_HEADER_BYTES 512u
#define REC_HEADER_BYTES 40u
#define REC_MAGIC 0x43524a4bu /* "KJRC" */
#define KIND_RECORD 1u
#define KIND_PAD 2u
#define RECORDS_MAX 256u
#define ID_BYTES 64u

/* A journal record found on disk. */
struct jrec {
	uint64_t off, len, lsn, sum;
};

struct jfile {
	char path[PATH_MAX];
	char name[64];
	struct jrec r[RECORDS_MAX];
	unsigned n;
};

static uint64_t g_lsn[4 * COMMITS + 1]; /* LSN of put i (1-based) */

/* ---- files ----------------------------------------------------------------------------------- */

static uint8_t *file_read(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *b;

	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK_MSG(fstat(fd, &st) == 0, "fstat %s: %s", path, strerror(errno));
	b = malloc((size_t)st.st_size + 1);
	CHECK(b != NULL);
	CHECK_MSG(pread(fd, b, (size_t)st.st_size, 0) == st.st_size, "read %s: %s", path, strerror(errno));
	close(fd);
	*len = (size_t)st.st_size;
	return b;
}

static void file_pwrite(const char *path, const void *buf, size_t len, uint64_t off, int create)
{
	int fd = open(path, O_WRONLY | (create ? O_CREAT | O_TRUNC : 0), 0600);

	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK_MSG(pwrite(fd, buf, len, (off_t)off) == (ssize_t)len, "write %s: %s", path, strerror(errno));
	CHECK_MSG(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
	close(fd);
}

static void path_of(char *buf, const t_store_t *s, const char *rel)
{
	CHECK(snprintf(buf, PATH_MAX, "%s/%s", s->dir, rel) < PATH_MAX);
}

/* ---- the store -------------------------------------------------------------------------------- */

static size_t key_of(unsigned i, char key[16])
{
	return (size_t)snprintf(key, 16, "k%03u", i);
}

static void value_of(unsigned i, uint8_t v[VLEN])
{
	for (unsigned b = 0; b < VLEN; b++)
		v[b] = (uint8_t)(i * 31u + b * 7u);
}

static void put_range(t_store_t *s, unsigned from, unsigned to)
{
	for (unsigned i = from; i <= to; i++) {
		char key[16];
		uint8_t v[VLEN];
		size_t kl = key_of(i, key);

		value_of(i, v);
		CHECK_OK(keel_put(s->h, "c", key, kl, v, VLEN, &g_lsn[i]));
		CHECK(i == 1 || g_lsn[i] > g_lsn[i - 1]);
	}
}

/* Puts 1..n must be there with their values, n+1..max absent. */
static void expect_puts(keel_t *h, unsigned n, unsigned max, const char *what)
{
	for (unsigned i = 1; i <= max; i++) {
		char key[16];
		uint8_t v[VLEN], want[VLEN];
		size_t kl = key_of(i, key), vl = 0;
		int rc = keel_get(h, "c", key, kl, v, sizeof v, &vl, NULL);

		if (i > n) {
			CHECK_MSG(rc == KEEL_E_NOTFOUND, "%s: put %u (%s) should be gone, get returned %d (%s)", what, i, key,
				  rc, keel_strerror(rc));
			continue;
		}
		CHECK_MSG(rc == 0, "%s: put %u (%s) missing: %d (%s)", what, i, key, rc, keel_strerror(rc));
		value_of(i, want);
		CHECK_MSG(vl == VLEN && memcmp(v, want, VLEN) == 0, "%s: put %u (%s) has the wrong value", what, i, key);
	}
}

static void new_store(t_store_t *s, unsigned puts)
{
	t_store_init(s);
	s->opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(s);
	put_range(s, 1, puts);
}

/* Close and remove the arena, as a reboot would. */
static void power_off(t_store_t *s)
{
	t_store_close(s);
	CHECK_OK(keel_unlink_arena(s->dir, &s->opt, 1));
}

/* Open with stderr captured into err (NUL-terminated).  verbose sets
 * KEEL_RECOVERY_VERBOSE for the open. */
static int open_capture(t_store_t *s, int verbose, char *err, size_t cap)
{
	char path[64];
	int fd, saved, rc;
	ssize_t n;

	snprintf(path, sizeof path, "/tmp/keel-cor-%d.err", (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	unlink(path);
	if (verbose)
		setenv("KEEL_RECOVERY_VERBOSE", "1", 1);
	fflush(stderr);
	saved = dup(2);
	dup2(fd, 2);
	rc = keel_open(s->dir, &s->opt, &s->h);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	unsetenv("KEEL_RECOVERY_VERBOSE");
	n = pread(fd, err, cap - 1, 0);
	err[n > 0 ? n : 0] = 0;
	close(fd);
	if (rc)
		s->h = NULL;
	return rc;
}

/* Does s contain the decimal number v as a whole token? */
static int has_number(const char *s, uint64_t v)
{
	char num[32];
	size_t n = (size_t)snprintf(num, sizeof num, "%" PRIu64, v);

	for (const char *p = strstr(s, num); p; p = strstr(p + 1, num))
		if ((p == s || !isdigit((unsigned char)p[-1])) && !isdigit((unsigned char)p[n]))
			return 1;
	return 0;
}

/* Does s show v in hex (16 digits or shortest, any case)? */
static int has_hex(const char *s, uint64_t v)
{
	char a[24], b[24];
	const char *words[] = { a, b, NULL };

	snprintf(a, sizeof a, "%016" PRIx64, v);
	snprintf(b, sizeof b, "%" PRIx64, v);
	return t_mentions(s, words);
}

/* ---- the journal on disk ---------------------------------------------------------------------- */

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* Find the segment holding records and list its records. */
static void journal_parse(const t_store_t *s, struct jfile *j)
{
	char dir[PATH_MAX];
	DIR *d;
	struct dirent *de;
	unsigned used = 0;

	memset(j, 0, sizeof *j);
	path_of(dir, s, "journal");
	d = opendir(dir);
	CHECK_MSG(d != NULL, "opendir %s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		char path[PATH_MAX + 300];
		static struct jrec found[RECORDS_MAX];
		uint8_t *b;
		size_t len;
		unsigned n = 0;

		if (strncmp(de->d_name, "seg-", 4) != 0 || !strstr(de->d_name, ".jnl"))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		b = file_read(path, &len);
		for (uint64_t off = SEG_HEADER_BYTES; off + REC_HEADER_BYTES <= len && n < RECORDS_MAX;) {
			const uint8_t *h = b + off;
			uint32_t kind = h[4] | (uint32_t)h[5] << 8, rlen = rd32(h + 8);

			if (rd32(h) != REC_MAGIC || (kind != KIND_RECORD && kind != KIND_PAD))
				break;
			if (kind == KIND_RECORD) {
				found[n] = (struct jrec){ off, rlen, rd64(h + 16), rd64(h + 32) };
				n++;
				off += REC_HEADER_BYTES + ((rlen + 7u) & ~7u);
			} else {
				off += REC_HEADER_BYTES + rlen;
			}
		}
		if (n) {
			used++;
			j->n = n;
			memcpy(j->r, found, n * sizeof found[0]);
			CHECK(snprintf(j->path, sizeof j->path, "%s", path) < (int)sizeof j->path);
			CHECK(snprintf(j->name, sizeof j->name, "%s", de->d_name) < (int)sizeof j->name);
		}
		free(b);
	}
	closedir(d);
	CHECK_MSG(used == 1, "expected one journal segment with records in %s, found %u", dir, used);
	CHECK_MSG(j->n >= COMMITS, "segment %s: parsed %u records, expected at least %u (has the layout in lib/journal.c changed?)",
		  j->path, j->n, COMMITS);
	for (unsigned i = 1; i < j->n; i++)
		CHECK_MSG(j->r[i].lsn == j->r[i - 1].lsn + 1, "segment %s: record LSNs %" PRIu64 " then %" PRIu64, j->path,
			  j->r[i - 1].lsn, j->r[i].lsn);
}

/* The record of put i. */
static const struct jrec *rec_of_put(const struct jfile *j, unsigned i)
{
	for (unsigned k = 0; k < j->n; k++)
		if (j->r[k].lsn == g_lsn[i])
			return &j->r[k];
	T_FAIL("no journal record with LSN %" PRIu64 " (put %u) in %s", g_lsn[i], i, j->path);
}

/* ---- journal cases ---------------------------------------------------------------------------- */

/* Damage the last record; open must cut it, and only it. */
static void torn_common(int flip_checksum)
{
	t_store_t s;
	struct jfile j;
	const struct jrec *r;
	char err[8192];
	keel_stat_t st;
	uint64_t lsn = 0;
	int rc;

	new_store(&s, COMMITS);
	power_off(&s);
	journal_parse(&s, &j);
	r = rec_of_put(&j, COMMITS);
	CHECK_MSG(r == &j.r[j.n - 1], "the last put is not the last record");
	if (flip_checksum) {
		uint8_t byte;
		size_t len;
		uint8_t *b = file_read(j.path, &len);

		byte = b[r->off + 32] ^ 0x5a;
		file_pwrite(j.path, &byte, 1, r->off + 32, 0);
		free(b);
	} else {
		/* The second half of the record and the pad after it. */
		uint64_t from = r->off + REC_HEADER_BYTES + r->len / 2;
		uint64_t to = (r->off + REC_HEADER_BYTES + r->len + REC_HEADER_BYTES + 511) / 512 * 512;
		static uint8_t zero[1024];

		CHECK(to > from && to - from <= sizeof zero);
		file_pwrite(j.path, zero, to - from, from, 0);
	}
	rc = open_capture(&s, 0, err, sizeof err);
	CHECK_MSG(rc == 0, "open after a torn last record returned %d (%s): %s", rc, keel_strerror(rc), keel_errmsg());
	expect_puts(s.h, COMMITS - 1, COMMITS, "after a torn tail");
	CHECK_OK(keel_stat(s.h, &st));
	CHECK_EQ_U64(st.applied_lsn, g_lsn[COMMITS - 1]);
	{
		const char *torn[] = { "torn", NULL };
		CHECK_MSG(t_mentions(err, torn) && strstr(err, j.name) && has_number(err, r->off),
			  "the torn-tail warning should name %s and offset %" PRIu64 "; stderr was:\n%s", j.name, r->off, err);
	}
	CHECK_OK(keel_put(s.h, "c", "next", 4, "x", 1, &lsn));
	CHECK_EQ_U64(lsn, g_lsn[COMMITS - 1] + 1);
	/* The repaired journal reopens cleanly with that commit. */
	power_off(&s);
	rc = open_capture(&s, 0, err, sizeof err);
	CHECK_MSG(rc == 0, "second open returned %d (%s)", rc, keel_strerror(rc));
	expect_puts(s.h, COMMITS - 1, COMMITS, "after a torn tail, reopened");
	CHECK_OK(keel_get(s.h, "c", "next", 4, NULL, 0, NULL, NULL));
	t_store_destroy(&s);
}

static void case_torn_tail(void) { torn_common(0); }
static void case_torn_checksum(void) { torn_common(1); }

/* Damage a middle record; open must refuse and name the place. */
static void middle_common(int flip_checksum)
{
	t_store_t s;
	struct jfile j;
	const struct jrec *r;
	char err[8192];
	const char *msg;
	uint64_t found_sum = 0;
	unsigned m = COMMITS / 2;
	int rc;

	new_store(&s, COMMITS);
	power_off(&s);
	journal_parse(&s, &j);
	r = rec_of_put(&j, m);
	if (flip_checksum) {
		uint8_t byte;
		size_t len;
		uint8_t *b = file_read(j.path, &len);

		byte = b[r->off + 35] ^ 0x01;
		file_pwrite(j.path, &byte, 1, r->off + 35, 0);
		free(b);
		b = file_read(j.path, &len);
		found_sum = rd64(b + r->off + 32);
		free(b);
	} else {
		uint8_t junk[4096];
		uint64_t rng = t_rand_stream(7);

		CHECK(r->len <= sizeof junk);
		t_rand_fill(&rng, junk, r->len);
		file_pwrite(j.path, junk, r->len, r->off + REC_HEADER_BYTES, 0);
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = open_capture(&s, 0, err, sizeof err);
		CHECK_MSG(rc == KEEL_E_CORRUPT, "open %d with a damaged middle record returned %d (%s), expected KEEL_E_CORRUPT",
			  attempt + 1, rc, keel_strerror(rc));
		msg = keel_errmsg();
		CHECK_MSG(strstr(msg, j.name) && has_number(msg, r->off) && has_number(msg, r->lsn),
			  "the error should name segment %s, offset %" PRIu64 " and LSN %" PRIu64 "; it says: %s", j.name,
			  r->off, r->lsn, msg);
		if (flip_checksum)
			CHECK_MSG(has_hex(msg, found_sum), "the error should show the checksum found, %016" PRIx64 "; it says: %s",
				  found_sum, msg);
	}
	t_store_destroy(&s);
}

static void case_mid_garbage(void) { middle_common(0); }
static void case_mid_checksum(void) { middle_common(1); }

/* ---- checkpoint cases --------------------------------------------------------------------------- */

static void ckpt_path(char *buf, const t_store_t *s, uint64_t lsn, const char *suffix)
{
	CHECK(snprintf(buf, PATH_MAX, "%s/checkpoint/ckpt-%016" PRIx64 "%s", s->dir, lsn, suffix) < PATH_MAX);
}

/* The recovery line of KEEL_RECOVERY_VERBOSE must say "checkpoint LSN lsn". */
static void expect_loaded(const char *err, uint64_t lsn, const char *what)
{
	char want[64];

	snprintf(want, sizeof want, "checkpoint LSN %" PRIu64 " ", lsn);
	CHECK_MSG(strstr(err, want) != NULL, "%s: recovery should load the checkpoint of LSN %" PRIu64 "; stderr was:\n%s",
		  what, lsn, err);
}

/* Puts 1..COMMITS, checkpoint c1, puts .. 2*COMMITS, checkpoint c2, puts ..
 * 3*COMMITS.  keep_c1: put c1's file back after c2 pruned it. */
static void ckpt_store(t_store_t *s, int keep_c1, uint64_t *c1, uint64_t *c2)
{
	char p1[PATH_MAX];
	uint8_t *saved = NULL;
	size_t len = 0;

	new_store(s, COMMITS);
	CHECK_OK(keel_checkpoint(s->h, c1));
	CHECK_EQ_U64(*c1, g_lsn[COMMITS]);
	ckpt_path(p1, s, *c1, "");
	saved = file_read(p1, &len);
	put_range(s, COMMITS + 1, 2 * COMMITS);
	CHECK_OK(keel_checkpoint(s->h, c2));
	CHECK_EQ_U64(*c2, g_lsn[2 * COMMITS]);
	put_range(s, 2 * COMMITS + 1, 3 * COMMITS);
	power_off(s);
	if (keep_c1 && access(p1, F_OK) != 0)
		file_pwrite(p1, saved, len, 0, 1);
	free(saved);
}

/* Open the undamaged store: every put there, checkpoint `newest` loaded. */
static void ckpt_control(t_store_t *s, uint64_t newest)
{
	char err[8192];
	int rc = open_capture(s, 1, err, sizeof err);

	CHECK_MSG(rc == 0, "control open returned %d (%s): %s", rc, keel_strerror(rc), keel_errmsg());
	expect_loaded(err, newest, "undamaged store");
	expect_puts(s->h, 3 * COMMITS, 3 * COMMITS, "undamaged store");
	power_off(s);
}

static void case_ckpt_tmp(void)
{
	t_store_t s;
	char p2[PATH_MAX], ptmp[PATH_MAX], err[8192];
	uint64_t c1, c2;
	uint8_t *b;
	size_t len;
	int rc;

	ckpt_store(&s, 0, &c1, &c2);
	ckpt_control(&s, c2);
	/* A newer checkpoint whose writer died half way. */
	ckpt_path(p2, &s, c2, "");
	ckpt_path(ptmp, &s, g_lsn[3 * COMMITS], ".tmp");
	b = file_read(p2, &len);
	file_pwrite(ptmp, b, len / 2, 0, 1);
	free(b);
	rc = open_capture(&s, 1, err, sizeof err);
	CHECK_MSG(rc == 0, "open with a leftover .tmp checkpoint returned %d (%s): %s", rc, keel_strerror(rc), keel_errmsg());
	expect_loaded(err, c2, "leftover .tmp");
	expect_puts(s.h, 3 * COMMITS, 3 * COMMITS, "leftover .tmp");
	t_store_destroy(&s);
}

static void case_ckpt_trunc(void)
{
	t_store_t s;
	char p2[PATH_MAX], err[8192], name[64];
	uint64_t c1, c2;
	int rc;

	ckpt_store(&s, 1, &c1, &c2);
	ckpt_control(&s, c2);
	ckpt_path(p2, &s, c2, "");
	CHECK_MSG(truncate(p2, 200) == 0, "truncate %s: %s", p2, strerror(errno));
	rc = open_capture(&s, 1, err, sizeof err);
	CHECK_MSG(rc == 0, "open with a truncated newest checkpoint returned %d (%s): %s", rc, keel_strerror(rc),
		  keel_errmsg());
	expect_loaded(err, c1, "newest checkpoint truncated");
	snprintf(name, sizeof name, "ckpt-%016" PRIx64, c2);
	CHECK_MSG(strstr(err, name) != NULL, "recovery should warn about %s; stderr was:\n%s", name, err);
	expect_puts(s.h, 3 * COMMITS, 3 * COMMITS, "newest checkpoint truncated");
	t_store_destroy(&s);
}

static void case_ckpt_only(void)
{
	t_store_t s;
	char p2[PATH_MAX], p1[PATH_MAX], err[8192];
	uint64_t c1, c2;
	int rc;

	ckpt_store(&s, 0, &c1, &c2);
	ckpt_path(p1, &s, c1, "");
	CHECK_MSG(unlink(p1) == 0 || errno == ENOENT, "unlink %s: %s", p1, strerror(errno)); /* c2 alone */
	ckpt_control(&s, c2);
	ckpt_path(p2, &s, c2, "");
	CHECK_MSG(truncate(p2, 100) == 0, "truncate %s: %s", p2, strerror(errno));
	rc = open_capture(&s, 1, err, sizeof err);
	CHECK_MSG(rc == 0, "open with the only checkpoint truncated returned %d (%s): %s", rc, keel_strerror(rc),
		  keel_errmsg());
	expect_loaded(err, 0, "only checkpoint truncated");
	expect_puts(s.h, 3 * COMMITS, 3 * COMMITS, "only checkpoint truncated");
	t_store_destroy(&s);
}

/* ---- keel.id cases ----------------------------------------------------------------------------------- */

enum id_damage { ID_MAGIC, ID_VERSION, ID_CHECKSUM, ID_SHORT };

static void id_common(int how)
{
	t_store_t s;
	char path[PATH_MAX], err[8192];
	uint8_t *b, *after;
	size_t len, alen;
	uint64_t sum;
	int rc;

	new_store(&s, 3);
	power_off(&s);
	path_of(path, &s, "keel.id");
	b = file_read(path, &len);
	CHECK_EQ_U64(len, ID_BYTES);
	switch (how) {
	case ID_MAGIC:
		b[0] ^= 0x20;
		sum = XXH3_64bits(b, 56);
		memcpy(b + 56, &sum, 8);
		break;
	case ID_VERSION:
		b[8] = 2;
		sum = XXH3_64bits(b, 56);
		memcpy(b + 56, &sum, 8);
		break;
	case ID_CHECKSUM:
		b[60] ^= 0x10;
		break;
	default:
		len = 10;
		break;
	}
	file_pwrite(path, b, len, 0, 1);
	rc = open_capture(&s, 0, err, sizeof err);
	CHECK_MSG(rc == KEEL_E_CORRUPT, "open with a damaged keel.id returned %d (%s), expected KEEL_E_CORRUPT", rc,
		  keel_strerror(rc));
	CHECK_MSG(strstr(keel_errmsg(), "keel.id") != NULL, "the error should name keel.id; it says: %s", keel_errmsg());
	after = file_read(path, &alen);
	CHECK_MSG(alen == len && memcmp(after, b, len) == 0, "the open changed the damaged keel.id");
	free(after);
	free(b);
	t_store_destroy(&s);
}

/* keel.id gone, the journal still there: the open must not come up as a new,
 * empty store over the old journal. */
static void case_id_missing(void)
{
	t_store_t s;
	char path[PATH_MAX], err[8192];
	int rc;

	new_store(&s, 3);
	power_off(&s);
	path_of(path, &s, "keel.id");
	CHECK_MSG(unlink(path) == 0, "unlink %s: %s", path, strerror(errno));
	rc = open_capture(&s, 0, err, sizeof err);
	if (rc == 0) {
		int found = 0;

		CHECK_OK(keel_contains(s.h, "c", "k001", 4, &found));
		CHECK_MSG(found, "with keel.id missing the store opened empty: the journal's commits were dropped");
	}
	t_store_destroy(&s);
}

static void case_id_magic(void) { id_common(ID_MAGIC); }
static void case_id_version(void) { id_common(ID_VERSION); }
static void case_id_checksum(void) { id_common(ID_CHECKSUM); }
static void case_id_short(void) { id_common(ID_SHORT); }

/* ---- main ------------------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} cases[] = {
	{ "torn_tail", case_torn_tail },     { "torn_checksum", case_torn_checksum },
	{ "mid_garbage", case_mid_garbage }, { "mid_checksum", case_mid_checksum },
	{ "ckpt_tmp", case_ckpt_tmp },       { "ckpt_trunc", case_ckpt_trunc },
	{ "ckpt_only", case_ckpt_only },     { "id_magic", case_id_magic },
	{ "id_version", case_id_version },   { "id_checksum", case_id_checksum },
	{ "id_short", case_id_short },       { "id_missing", case_id_missing },
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	unsigned failed = 0, ran = 0;

	t_begin("test_durable_corrupt");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: test_durable_corrupt [--only CASE]\n"
			       "Hand-made damage to a durable store's journal, checkpoints and keel.id,\n"
			       "and what keel_open does about each.  Cases:");
			for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
				printf(" %s", cases[c].name);
			printf("\nExit: 0 pass, 1 fail.\n");
			return 0;
		} else {
			fprintf(stderr, "test_durable_corrupt: unknown argument '%s' (see --help)\n", argv[i]);
			return 2;
		}
	}
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		if (only && strcmp(only, cases[c].name))
			continue;
		ran++;
		failed += !t_run_section(cases[c].name, cases[c].fn);
	}
	if (only && !ran) {
		fprintf(stderr, "test_durable_corrupt: no case named '%s' (see --help)\n", only);
		return 2;
	}
	printf("test_durable_corrupt: %u of %u cases passed\n", ran - failed, ran);
	return failed ? T_EXIT_FAIL : T_EXIT_PASS;
}
