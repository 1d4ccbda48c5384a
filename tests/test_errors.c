/*
 * test_errors - every bad input gets its code, a detail message, and changes
 * nothing; the store stays usable after each.
 *
 * Sections:
 *   strerror    keel_strerror names every code ("KEEL_E_X: ..."), distinct,
 *               and answers unknown codes too
 *   keys        empty key, KEEL_KEY_MAX + 1 bytes, NULL key, in every call
 *               that takes a key (plain, many, txn, read scope)
 *   values      KEEL_VALUE_MAX + 1 bytes, NULL value with a length
 *   names       empty, KEEL_PARTITION_NAME_MAX + 1 bytes, each bad character,
 *               NULL; every allowed character and the maximum length work
 *   nulls       NULL handle, NULL out-pointers, NULL callbacks, bad options
 *   fork        a handle carried across fork() is refused with
 *               KEEL_E_FORKED in the child; the child can open its own
 *   readonly    every write in a READONLY open gives KEEL_E_READONLY
 *   readonly_dead  a writer killed half-way through applying a commit to
 *               two partitions (commit.mid_apply) leaves both locked; a
 *               READONLY open repairs neither (the store's repair count
 *               stays, keel_partition_stat says why with KEEL_E_READONLY),
 *               still reads the last whole commit and gives keel_stat as
 *               the dead writer left it; a read-write open then repairs,
 *               and the dead commit is there whole; likewise a writer
 *               killed holding the allocator lock: a READONLY keel_stat
 *               leaves the lock's dead-holder mark, a read-write one repairs
 *   txnlimits   a txn over KEEL_TXN_PARTITIONS_MAX partitions or
 *               KEEL_TXN_OPS_MAX operations fails and applies nothing
 *   full        an 8 MiB arena filled until KEEL_E_FULL: the failed writes
 *               (put, big value, txn over two partitions) applied nothing,
 *               reads work, deleting half makes room for new puts in that
 *               partition, and clearing it makes room for a new partition
 *   busy        keel_unlink_arena refuses (BUSY) while a process is attached
 *   grow_ahead  shm_arena_grow_ahead (a durable handle's background threads
 *               call it): within a step of the arena's end it allocates the
 *               next step past the file's end, once for the store (a
 *               second handle does not repeat it), the size unchanged;
 *               the grow that follows, made through the second handle,
 *               reaches exactly that step on the prepared pages; at the
 *               maximum a fill still ends in KEEL_E_FULL with nothing
 *               half-applied and the store sound; a memory-mode store's
 *               commits prepare every step themselves
 *
 * "Changes nothing" is checked with keel_stat (keys, partitions, next_lsn)
 * around each group of failing calls, plus reads of the keys involved.
 * Every expected failure must also leave a non-empty keel_errmsg(), except
 * NOTFOUND and CONFLICT, which are ordinary outcomes.  Each section runs in a
 * forked child, so one failure does not hide the others.
 *
 * Usage: test_errors [--help] [--only SECTION]
 */
#include "common/t.h"
#include "lib/internal.h"

/* A picture of the store that no failed call may change. */
struct stat_snap {
	uint64_t keys, next_lsn;
	uint32_t partitions;
};

static void snap_take(keel_t *h, struct stat_snap *s)
{
	keel_stat_t st;

	CHECK_OK(keel_stat(h, &st));
	s->keys = st.keys;
	s->next_lsn = st.next_lsn;
	s->partitions = st.partitions;
}

#define CHECK_UNCHANGED(h, before)                                             \
	do {                                                                   \
		struct stat_snap now_;                                              \
		snap_take((h), &now_);                                         \
		CHECK_MSG(now_.keys == (before)->keys &&                       \
			  now_.next_lsn == (before)->next_lsn &&               \
			  now_.partitions == (before)->partitions,             \
			  "store changed by failed calls: keys %" PRIu64       \
			  " -> %" PRIu64 ", next_lsn %" PRIu64 " -> %" PRIu64  \
			  ", partitions %u -> %u", (before)->keys, now_.keys,  \
			  (before)->next_lsn, now_.next_lsn,                   \
			  (before)->partitions, now_.partitions);              \
	} while (0)

/* The same without next_lsn: a commit refused for lack of space may have
 * reserved (and voided) an LSN before it found out; what matters is that no
 * data changed. */
#define CHECK_DATA_UNCHANGED(h, before)                                        \
	do {                                                                   \
		struct stat_snap now_;                                              \
		snap_take((h), &now_);                                         \
		CHECK_MSG(now_.keys == (before)->keys &&                       \
			  now_.partitions == (before)->partitions,             \
			  "store changed by failed calls: keys %" PRIu64       \
			  " -> %" PRIu64 ", partitions %u -> %u",              \
			  (before)->keys, now_.keys, (before)->partitions,     \
			  now_.partitions);                                    \
		if (now_.next_lsn != (before)->next_lsn)                       \
			printf("test_errors: note: refused commits moved "     \
			       "next_lsn from %" PRIu64 " to %" PRIu64 "\n",   \
			       (before)->next_lsn, now_.next_lsn);             \
	} while (0)

static void expect_val(keel_t *h, const char *part, const char *key, const char *want)
{
	char buf[256];
	size_t vl = 0;
	int rc = keel_get(h, part, key, strlen(key), buf, sizeof(buf), &vl, NULL);

	CHECK_MSG(rc == 0, "get %s/%s returned %d (%s)", part, key, rc, keel_strerror(rc));
	CHECK_MSG(vl == strlen(want) && memcmp(buf, want, vl) == 0,
		  "get %s/%s = '%.*s', expected '%s'", part, key, (int)vl, buf, want);
}

static int exists_of(keel_t *h, const char *part)
{
	int f = -1;

	CHECK_OK(keel_exists(h, part, &f));
	return f;
}

/* ---- strerror ------------------------------------------------------------------ */

static void test_strerror(void)
{
	static const struct {
		int code;
		const char *name;
	} codes[] = {
		{ KEEL_OK, "KEEL_OK" },
		{ KEEL_E_INVAL, "KEEL_E_INVAL" },	{ KEEL_E_NOTFOUND, "KEEL_E_NOTFOUND" },
		{ KEEL_E_CONFLICT, "KEEL_E_CONFLICT" }, { KEEL_E_KEYSIZE, "KEEL_E_KEYSIZE" },
		{ KEEL_E_VALSIZE, "KEEL_E_VALSIZE" },	{ KEEL_E_NAME, "KEEL_E_NAME" },
		{ KEEL_E_FULL, "KEEL_E_FULL" },		{ KEEL_E_TXNSIZE, "KEEL_E_TXNSIZE" },
		{ KEEL_E_CLOSED, "KEEL_E_CLOSED" },	{ KEEL_E_FORKED, "KEEL_E_FORKED" },
		{ KEEL_E_READONLY, "KEEL_E_READONLY" }, { KEEL_E_ATTACH, "KEEL_E_ATTACH" },
		{ KEEL_E_LAYOUT, "KEEL_E_LAYOUT" },	{ KEEL_E_PERM, "KEEL_E_PERM" },
		{ KEEL_E_NAMESPACE, "KEEL_E_NAMESPACE" },
		{ KEEL_E_CORRUPT, "KEEL_E_CORRUPT" },	{ KEEL_E_IO, "KEEL_E_IO" },
		{ KEEL_E_NOSPC, "KEEL_E_NOSPC" },	{ KEEL_E_PANIC, "KEEL_E_PANIC" },
		{ KEEL_E_NOMEM, "KEEL_E_NOMEM" },	{ KEEL_E_BUSY, "KEEL_E_BUSY" },
		{ KEEL_E_LIMIT, "KEEL_E_LIMIT" },	{ KEEL_E_TIMEOUT, "KEEL_E_TIMEOUT" },
		{ KEEL_E_STATE, "KEEL_E_STATE" },	{ KEEL_E_OS, "KEEL_E_OS" },
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	/* The table must cover the whole enum: KEEL_E_OS is the last code. */
	CHECK_EQ_U64(n, (size_t)(-KEEL_E_OS) + 1);
	for (size_t i = 0; i < n; i++) {
		const char *s = keel_strerror(codes[i].code);
		size_t nl = strlen(codes[i].name);

		CHECK_MSG(s != NULL && s[0], "keel_strerror(%d) is empty", codes[i].code);
		if (codes[i].code != KEEL_OK)
			CHECK_MSG(strncmp(s, codes[i].name, nl) == 0 && s[nl] == ':' &&
				  strlen(s) > nl + 2,
				  "keel_strerror(%d) = '%s', expected '%s: <meaning>'",
				  codes[i].code, s, codes[i].name);
		for (size_t j = 0; j < i; j++)
			CHECK_MSG(strcmp(s, keel_strerror(codes[j].code)) != 0,
				  "keel_strerror(%d) and (%d) are both '%s'", codes[i].code,
				  codes[j].code, s);
	}
	/* Unknown codes still get a string, different from every known one. */
	{
		const int unknown[] = { -26, -1000, 1, 77, INT32_MIN };

		for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
			const char *s = keel_strerror(unknown[i]);

			CHECK_MSG(s != NULL && s[0], "keel_strerror(%d) is empty", unknown[i]);
			for (size_t j = 1; j < n; j++)
				CHECK_MSG(strcmp(s, keel_strerror(codes[j].code)) != 0,
					  "unknown code %d named like %s", unknown[i],
					  codes[j].name);
		}
	}
	CHECK(keel_errmsg() != NULL);
}

/* ---- keys -------------------------------------------------------------------------- */

static void test_keys(void)
{
	t_store_t s;
	struct stat_snap before;
	char big[KEEL_KEY_MAX + 1], buf[16];
	size_t vl;
	int f;
	uint64_t n, ver;
	keel_txn_t *t;
	keel_read_t *r;
	keel_iter_t *it;
	const void *pv;
	void *av;

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	memset(big, 'K', sizeof(big));
	/* The maximum length itself is fine (so the boundary is exact). */
	CHECK_OK(keel_put(s.h, "p", big, KEEL_KEY_MAX, "max", 3, NULL));
	snap_take(s.h, &before);

	for (int pass = 0; pass < 2; pass++) {
		size_t kl = pass ? KEEL_KEY_MAX + 1 : 0;
		const char *key = pass ? big : "k";

		CHECK_ERR(keel_put(s.h, "p", key, kl, "v", 1, NULL), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_put(s.h, "newpart", key, kl, "v", 1, NULL), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_get(s.h, "p", key, kl, buf, sizeof(buf), &vl, NULL),
			  KEEL_E_KEYSIZE);
		CHECK_ERR(keel_get_alloc(s.h, "p", key, kl, &av, &vl, NULL), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_del(s.h, "p", key, kl, &f), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_contains(s.h, "p", key, kl, &f), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_put_if(s.h, "p", key, kl, "v", 1, KEEL_VERSION_ANY, &ver),
			  KEEL_E_KEYSIZE);
		{
			const void *kp[2] = { "ok", key };
			size_t kls[2] = { 2, kl };
			const void *vp[2] = { "a", "b" };
			size_t vls[2] = { 1, 1 };

			CHECK_ERR(keel_put_many(s.h, "p", 2, kp, kls, vp, vls, NULL),
				  KEEL_E_KEYSIZE);
			CHECK_ERR(keel_del_many(s.h, "p", 2, kp, kls, &n), KEEL_E_KEYSIZE);
		}
		CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
		CHECK_OK(keel_txn_put(t, "p", "txnkey", 6, "v", 1));
		CHECK_ERR(keel_txn_put(t, "p", key, kl, "v", 1), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_txn_put_if(t, "p", key, kl, "v", 1, 0), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_txn_del(t, "p", key, kl), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_txn_del_if(t, "p", key, kl, 1), KEEL_E_KEYSIZE);
		CHECK_ERR(keel_txn_get(t, "p", key, kl, buf, sizeof(buf), &vl, NULL),
			  KEEL_E_KEYSIZE);
		keel_txn_abort(t);
		CHECK_OK(keel_read_begin(s.h, &r));
		CHECK_ERR(keel_read_get(r, "p", key, kl, &pv, &vl, NULL), KEEL_E_KEYSIZE);
		keel_read_end(r);
		CHECK_UNCHANGED(s.h, &before);
	}
	/* A prefix longer than any key matches nothing (or is refused). */
	{
		int rc = keel_iter_open(s.h, "p", big, KEEL_KEY_MAX + 1, &it);

		if (rc == 0) {
			const void *k, *v;
			size_t kl2, vl2;

			CHECK_RC(keel_iter_next(it, &k, &kl2, &v, &vl2, NULL), 0);
			keel_iter_close(it);
		} else {
			CHECK_MSG(rc == KEEL_E_KEYSIZE || rc == KEEL_E_INVAL,
				  "iter_open with a %u-byte prefix: %d (%s)", KEEL_KEY_MAX + 1, rc,
				  keel_strerror(rc));
		}
	}
	/* A NULL key pointer with a length is invalid; with length 0 the key
	 * is empty, which is either code. */
	CHECK_ERR(keel_put(s.h, "p", NULL, 3, "v", 1, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_get(s.h, "p", NULL, 3, buf, sizeof(buf), &vl, NULL), KEEL_E_INVAL);
	CHECK_ERR2(keel_put(s.h, "p", NULL, 0, "v", 1, NULL), KEEL_E_KEYSIZE, KEEL_E_INVAL);
	CHECK_UNCHANGED(s.h, &before);
	expect_val(s.h, "p", "k", "v");
	CHECK(exists_of(s.h, "newpart") == 0);
	CHECK_OK(keel_put(s.h, "p", "after", 5, "ok", 2, NULL));
	t_store_destroy(&s);
}

/* ---- values ------------------------------------------------------------------------ */

static void test_values(void)
{
	t_store_t s;
	struct stat_snap before;
	size_t big_n = (size_t)KEEL_VALUE_MAX + 1;
	char *big = calloc(1, big_n);
	keel_txn_t *t;
	uint64_t ver = 0;

	CHECK(big != NULL);
	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	snap_take(s.h, &before);

	CHECK_ERR(keel_put(s.h, "p", "k", 1, big, big_n, NULL), KEEL_E_VALSIZE);
	CHECK_ERR(keel_put(s.h, "p", "new", 3, big, big_n, NULL), KEEL_E_VALSIZE);
	CHECK_ERR(keel_put(s.h, "q", "new", 3, big, big_n, NULL), KEEL_E_VALSIZE);
	CHECK_ERR(keel_put(s.h, "p", "k", 1, big, SIZE_MAX, NULL), KEEL_E_VALSIZE);
	CHECK_ERR(keel_put_if(s.h, "p", "k", 1, big, big_n, 1, &ver), KEEL_E_VALSIZE);
	{
		const void *kp[2] = { "a", "b" };
		size_t kl[2] = { 1, 1 };
		const void *vp[2] = { "x", big };
		size_t vl[2] = { 1, big_n };

		CHECK_ERR(keel_put_many(s.h, "p", 2, kp, kl, vp, vl, NULL), KEEL_E_VALSIZE);
	}
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "p", "a", 1, "x", 1));
	CHECK_ERR(keel_txn_put(t, "p", "b", 1, big, big_n), KEEL_E_VALSIZE);
	CHECK_ERR(keel_txn_put_if(t, "p", "b", 1, big, big_n, 0), KEEL_E_VALSIZE);
	keel_txn_abort(t);
	/* A NULL value pointer with a length. */
	CHECK_ERR(keel_put(s.h, "p", "k", 1, NULL, 5, NULL), KEEL_E_INVAL);
	CHECK_UNCHANGED(s.h, &before);
	expect_val(s.h, "p", "k", "v");
	CHECK(exists_of(s.h, "q") == 0);
	{
		int f = -1;

		CHECK_OK(keel_contains(s.h, "p", "a", 1, &f));
		CHECK(f == 0);
	}
	/* Exactly the maximum works. */
	CHECK_OK(keel_put(s.h, "p", "max", 3, big, KEEL_VALUE_MAX, NULL));
	free(big);
	t_store_destroy(&s);
}

/* ---- partition names ----------------------------------------------------------------- */

/* Every call that takes a partition name must refuse `name` with NAME
 * (or, for NULL, INVAL). */
static void bad_name_everywhere(keel_t *h, const char *name, const char *label)
{
	char buf[16];
	size_t vl;
	int f;
	uint64_t n;
	keel_partition_stat_t ps;
	keel_txn_t *t;
	keel_read_t *r;
	keel_iter_t *it;
	const void *pv;
	int alt = name ? KEEL_E_NAME : KEEL_E_INVAL;

	(void)label;
	CHECK_ERR2(keel_put(h, name, "k", 1, "v", 1, NULL), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_get(h, name, "k", 1, buf, sizeof(buf), &vl, NULL), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_put_if(h, name, "k", 1, "v", 1, KEEL_VERSION_ABSENT, NULL), KEEL_E_NAME,
		   alt);
	CHECK_ERR2(keel_del(h, name, "k", 1, &f), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_contains(h, name, "k", 1, &f), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_exists(h, name, &f), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_count(h, name, &n), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_clear(h, name, &n), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_partition_stat(h, name, &ps), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_iter_open(h, name, NULL, 0, &it), KEEL_E_NAME, alt);
	{
		const void *kp[1] = { "k" };
		size_t kl[1] = { 1 };

		CHECK_ERR2(keel_put_many(h, name, 1, kp, kl, kp, kl, NULL), KEEL_E_NAME, alt);
		CHECK_ERR2(keel_del_many(h, name, 1, kp, kl, &n), KEEL_E_NAME, alt);
	}
	CHECK_OK(keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "good", "t", 1, "v", 1));
	CHECK_ERR2(keel_txn_put(t, name, "k", 1, "v", 1), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_txn_get(t, name, "k", 1, buf, sizeof(buf), &vl, NULL), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_txn_del(t, name, "k", 1), KEEL_E_NAME, alt);
	CHECK_ERR2(keel_txn_clear(t, name), KEEL_E_NAME, alt);
	keel_txn_abort(t);
	CHECK_OK(keel_read_begin(h, &r));
	CHECK_ERR2(keel_read_get(r, name, "k", 1, &pv, &vl, NULL), KEEL_E_NAME, alt);
	keel_read_end(r);
}

static void test_names(void)
{
	t_store_t s;
	struct stat_snap before;
	char longname[KEEL_PARTITION_NAME_MAX + 2];
	const char *bad[] = { "", "a b", "a/b", "tab\there", "new\nline", "semi;colon",
			      "quote\"", "star*", "caf\xc3\xa9", "\x01", "back\\slash",
			      "per%cent", "plus+", "comma,", "slash/", "pipe|" };

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "good", "k", 1, "v", 1, NULL));
	snap_take(s.h, &before);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		bad_name_everywhere(s.h, bad[i], bad[i]);
	memset(longname, 'n', sizeof(longname));
	longname[KEEL_PARTITION_NAME_MAX + 1] = 0; /* 65 bytes */
	bad_name_everywhere(s.h, longname, "too long");
	bad_name_everywhere(s.h, NULL, "NULL");
	CHECK_UNCHANGED(s.h, &before);
	expect_val(s.h, "good", "k", "v");
	CHECK(exists_of(s.h, "a") == 0);

	/* The boundary: 64 bytes, and every allowed character. */
	longname[KEEL_PARTITION_NAME_MAX] = 0;
	CHECK_OK(keel_put(s.h, longname, "k", 1, "v", 1, NULL));
	expect_val(s.h, longname, "k", "v");
	/* all 67 allowed characters: too long together, fine in parts */
	CHECK_ERR(keel_put(s.h, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@-",
			   "k", 1, "v", 1, NULL), KEEL_E_NAME);
	CHECK_OK(keel_put(s.h, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "k", 1, "v", 1, NULL));
	CHECK_OK(keel_put(s.h, "abcdefghijklmnopqrstuvwxyz", "k", 1, "v", 1, NULL));
	CHECK_OK(keel_put(s.h, "0123456789._:@-", "k", 1, "v", 1, NULL));
	CHECK_OK(keel_put(s.h, "-", "k", 1, "v", 1, NULL));
	CHECK_OK(keel_put(s.h, ".", "k", 1, "v", 1, NULL));
	expect_val(s.h, "0123456789._:@-", "k", "v");
	t_store_destroy(&s);
}

/* ---- NULL arguments and bad options -------------------------------------------------- */

static int nop_part(void *ctx, const char *name, uint64_t keys) { return 0; }

static void test_nulls(void)
{
	t_store_t s;
	struct stat_snap before;
	char buf[16];
	size_t vl;
	int f;
	uint64_t n;
	keel_txn_t *t;
	keel_read_t *r;
	keel_iter_t *it;
	keel_stat_t st;
	keel_options_t o;
	keel_t *h2;
	const void *pv;

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	snap_take(s.h, &before);

	/* A NULL handle: INVAL (CLOSED is accepted as the same meaning). */
	CHECK_ERR2(keel_put(NULL, "p", "k", 1, "v", 1, NULL), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_get(NULL, "p", "k", 1, buf, sizeof(buf), &vl, NULL), KEEL_E_INVAL,
		   KEEL_E_CLOSED);
	CHECK_ERR2(keel_del(NULL, "p", "k", 1, &f), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_count(NULL, "p", &n), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_txn_begin(NULL, 0, &t), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_read_begin(NULL, &r), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_iter_open(NULL, "p", NULL, 0, &it), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_stat(NULL, &st), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_partitions(NULL, nop_part, NULL), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_check(NULL, 0, NULL, NULL), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_sync(NULL), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK(keel_reclaim(NULL) < 0);
	CHECK_OK(keel_close(NULL));

	/* NULL transaction, scope and iterator objects. */
	CHECK_ERR2(keel_txn_put(NULL, "p", "k", 1, "v", 1), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_txn_get(NULL, "p", "k", 1, buf, sizeof(buf), &vl, NULL), KEEL_E_INVAL,
		   KEEL_E_CLOSED);
	CHECK_ERR2(keel_txn_commit(NULL, NULL), KEEL_E_INVAL, KEEL_E_CLOSED);
	CHECK_ERR2(keel_read_get(NULL, "p", "k", 1, &pv, &vl, NULL), KEEL_E_INVAL,
		   KEEL_E_CLOSED);
	{
		const void *k, *v;
		size_t kl;

		CHECK_ERR2(keel_iter_next(NULL, &k, &kl, &v, &vl, NULL), KEEL_E_INVAL,
			   KEEL_E_CLOSED);
	}

	/* NULL out-pointers that are not documented as optional. */
	CHECK_ERR(keel_txn_begin(s.h, 0, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_read_begin(s.h, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_iter_open(s.h, "p", NULL, 0, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_stat(s.h, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_partition_stat(s.h, "p", NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_count(s.h, "p", NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_exists(s.h, "p", NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_contains(s.h, "p", "k", 1, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_get_alloc(s.h, "p", "k", 1, NULL, &vl, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_get(s.h, "p", "k", 1, NULL, 8, &vl, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_partitions(s.h, NULL, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_processes(s.h, NULL, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_get_many(s.h, "p", 1, NULL, NULL, NULL, NULL, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_put_many(s.h, "p", 1, NULL, NULL, NULL, NULL, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_del_many(s.h, "p", 1, NULL, NULL, NULL), KEEL_E_INVAL);
	CHECK_ERR(keel_arena_path(s.dir, &s.opt, NULL, 100), KEEL_E_INVAL);
	{
		char tiny[4];
		int rc = keel_arena_path(s.dir, &s.opt, tiny, sizeof(tiny));

		CHECK_MSG(rc < 0, "keel_arena_path into 4 bytes returned %d", rc);
		CHECK(keel_errmsg()[0]);
	}
	CHECK_ERR(keel_arena_path(NULL, &s.opt, buf, sizeof(buf)), KEEL_E_INVAL);
	CHECK_ERR(keel_unlink_arena(NULL, &s.opt, 1), KEEL_E_INVAL);

	/* keel_open: NULL dir, NULL out, bad options. */
	CHECK_ERR(keel_open(NULL, &s.opt, &h2), KEEL_E_INVAL);
	CHECK_ERR(keel_open(s.dir, &s.opt, NULL), KEEL_E_INVAL);
	CHECK_ERR2(keel_open("", &s.opt, &h2), KEEL_E_INVAL, KEEL_E_NOTFOUND);
	o = s.opt;
	o.struct_size = 12345;
	CHECK_ERR(keel_open(s.dir, &o, &h2), KEEL_E_INVAL);
	o = s.opt;
	o.durability = 99;
	CHECK_ERR(keel_open(s.dir, &o, &h2), KEEL_E_INVAL);
	o = s.opt;
	o.file_mode = 0666;
	CHECK_ERR2(keel_open(s.dir, &o, &h2), KEEL_E_INVAL, KEEL_E_PERM);
	o = s.opt;
	o.flags = 1u << 30;
	CHECK_ERR(keel_open(s.dir, &o, &h2), KEEL_E_INVAL);
	{
		/* Sizes below the minimum, in a fresh directory so that nothing
		 * exists yet and creation itself must refuse them. */
		t_store_t s2;

		t_store_init(&s2);
		o = s2.opt;
		o.arena_bytes_max = 4096;
		CHECK_ERR2(keel_open(s2.dir, &o, &h2), KEEL_E_INVAL, KEEL_E_FULL);
		o = s2.opt;
		o.ring_bytes = 4096;
		CHECK_ERR(keel_open(s2.dir, &o, &h2), KEEL_E_INVAL);
		o = s2.opt;
		o.arena_bytes_max = UINT64_MAX;
		CHECK_ERR2(keel_open(s2.dir, &o, &h2), KEEL_E_INVAL, KEEL_E_NOMEM);
		/* A directory that is a file. */
		{
			char file[PATH_MAX + 8];
			FILE *fp;

			snprintf(file, sizeof(file), "%s/file", s2.dir);
			fp = fopen(file, "w");
			CHECK(fp != NULL);
			fclose(fp);
			CHECK(keel_open(file, &s2.opt, &h2) < 0);
			CHECK(keel_errmsg()[0]);
		}
		t_store_destroy(&s2);
	}
	/* A txn with an unknown durability. */
	CHECK_ERR(keel_txn_begin(s.h, 77, &t), KEEL_E_INVAL);
	CHECK_UNCHANGED(s.h, &before);
	expect_val(s.h, "p", "k", "v");
	t_store_destroy(&s);
}

/* ---- fork -------------------------------------------------------------------------------- */

static void test_fork(void)
{
	t_store_t s;
	struct stat_snap before;
	pid_t pid;

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	snap_take(s.h, &before);

	pid = t_fork();
	if (pid == 0) {
		char buf[16];
		size_t vl;
		int f;
		uint64_t n;
		keel_txn_t *t;
		keel_read_t *r;
		keel_iter_t *it;
		keel_stat_t st;
		keel_t *h2 = NULL;

		CHECK_ERR(keel_get(s.h, "p", "k", 1, buf, sizeof(buf), &vl, NULL), KEEL_E_FORKED);
		CHECK_ERR(keel_put(s.h, "p", "k", 1, "child", 5, NULL), KEEL_E_FORKED);
		CHECK_ERR(keel_put(s.h, "p", "c", 1, "child", 5, NULL), KEEL_E_FORKED);
		CHECK_ERR(keel_del(s.h, "p", "k", 1, &f), KEEL_E_FORKED);
		CHECK_ERR(keel_contains(s.h, "p", "k", 1, &f), KEEL_E_FORKED);
		CHECK_ERR(keel_count(s.h, "p", &n), KEEL_E_FORKED);
		CHECK_ERR(keel_txn_begin(s.h, 0, &t), KEEL_E_FORKED);
		CHECK_ERR(keel_read_begin(s.h, &r), KEEL_E_FORKED);
		CHECK_ERR(keel_iter_open(s.h, "p", NULL, 0, &it), KEEL_E_FORKED);
		CHECK_ERR(keel_stat(s.h, &st), KEEL_E_FORKED);
		CHECK_ERR(keel_partitions(s.h, nop_part, NULL), KEEL_E_FORKED);
		CHECK_ERR(keel_check(s.h, 0, NULL, NULL), KEEL_E_FORKED);
		CHECK_ERR(keel_clear(s.h, "p", &n), KEEL_E_FORKED);
		/* The child opens its own handle and works normally. */
		CHECK_OK(keel_open(s.dir, &s.opt, &h2));
		expect_val(h2, "p", "k", "v");
		CHECK_OK(keel_put(h2, "p", "child", 5, "was here", 8, NULL));
		CHECK_OK(keel_close(h2));
		_exit(0);
	}
	t_wait_exit0(pid, "forked user");
	/* The parent's handle is unaffected; the child's own write is there. */
	expect_val(s.h, "p", "k", "v");
	expect_val(s.h, "p", "child", "was here");
	{
		keel_stat_t st;

		CHECK_OK(keel_stat(s.h, &st));
		CHECK_EQ_U64(st.keys, before.keys + 1);
		CHECK_EQ_U64(st.processes, 1);
	}
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* A new store holding two keys, closed. */
static void seed_store(t_store_t *s, const char *p1, const char *k1, const char *v1, const char *p2,
		       const char *k2, const char *v2)
{
	t_store_init(s);
	t_store_open(s);
	CHECK_OK(keel_put(s->h, p1, k1, strlen(k1), v1, strlen(v1), NULL));
	CHECK_OK(keel_put(s->h, p2, k2, strlen(k2), v2, strlen(v2), NULL));
	t_store_close(s);
}

static void open_readonly(const t_store_t *s, keel_t **h)
{
	keel_options_t ro = s->opt;

	ro.flags |= KEEL_OPEN_READONLY;
	CHECK_OK(keel_open(s->dir, &ro, h));
}

/* ---- readonly ----------------------------------------------------------------------------- */

static void test_readonly(void)
{
	t_store_t s;
	struct stat_snap before;
	keel_t *h;
	keel_txn_t *t;
	uint64_t n;
	int f, rc;

	seed_store(&s, "p", "k", "v", "p", "k2", "v2");
	open_readonly(&s, &h);
	snap_take(h, &before);
	CHECK_ERR(keel_put(h, "p", "k", 1, "x", 1, NULL), KEEL_E_READONLY);
	CHECK_ERR(keel_put(h, "new", "k", 1, "x", 1, NULL), KEEL_E_READONLY);
	CHECK_ERR(keel_put_if(h, "p", "k", 1, "x", 1, 1, NULL), KEEL_E_READONLY);
	CHECK_ERR(keel_del(h, "p", "k", 1, &f), KEEL_E_READONLY);
	CHECK_ERR(keel_clear(h, "p", &n), KEEL_E_READONLY);
	{
		const void *kp[1] = { "k" };
		size_t kl[1] = { 1 };

		CHECK_ERR(keel_put_many(h, "p", 1, kp, kl, kp, kl, NULL), KEEL_E_READONLY);
		CHECK_ERR(keel_del_many(h, "p", 1, kp, kl, &n), KEEL_E_READONLY);
	}
	/* A transaction is refused at begin, at its first write or at commit. */
	rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t);
	if (rc == 0) {
		rc = keel_txn_put(t, "p", "k", 1, "x", 1);
		if (rc == 0) {
			rc = keel_txn_commit(t, NULL);
		} else {
			keel_txn_abort(t);
		}
	}
	CHECK_MSG(rc == KEEL_E_READONLY, "txn in a read-only open: %d (%s)", rc,
		  keel_strerror(rc));
	/* Reads work. */
	expect_val(h, "p", "k", "v");
	expect_val(h, "p", "k2", "v2");
	CHECK_OK(keel_count(h, "p", &n));
	CHECK_EQ_U64(n, 2);
	CHECK_UNCHANGED(h, &before);
	CHECK_OK(keel_close(h));

	/* A normal open again can write. */
	t_store_open(&s);
	expect_val(s.h, "p", "k", "v");
	CHECK_OK(keel_put(s.h, "p", "k", 1, "w", 1, NULL));
	t_store_destroy(&s);
}

static uint64_t repairs_of(keel_t *h)
{
	keel_inspect_header_t hd;

	CHECK_OK(keel_inspect_header(h, &hd));
	return hd.repairs;
}

static void test_readonly_dead(void)
{
	t_store_t s;
	keel_partition_stat_t ps;
	keel_stat_t st;
	keel_t *h;
	int stv, rc;

	seed_store(&s, "p", "k", "v1", "q", "k", "v1");
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_txn_t *t;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_txn_begin(h, 0, &t));
		CHECK_OK(keel_txn_put(t, "p", "k", 1, "v2", 2));
		CHECK_OK(keel_txn_put(t, "q", "k", 1, "v2", 2));
		CHECK_OK(keel_txn_put(t, "q", "k2", 2, "new", 3));
		CHECK_OK(keel_crash_at("commit.mid_apply", 1));
		keel_txn_commit(t, NULL);
		_exit(3);   /* not reached: the point kills */
	}
	t_waitpid(pid, &stv);
	CHECK_MSG(WIFSIGNALED(stv) && WTERMSIG(stv) == SIGKILL, "the writer did not die at commit.mid_apply");

	open_readonly(&s, &h);
	uint64_t repairs = repairs_of(h);
	expect_val(h, "p", "k", "v1");   /* the dead commit is not visible */
	expect_val(h, "q", "k", "v1");
	CHECK_OK(keel_stat(h, &st));
	CHECK_EQ_U64(st.keys, 2);
	CHECK_EQ_U64(st.partitions, 2);
	rc = keel_partition_stat(h, "p", &ps);
	CHECK_MSG(rc == KEEL_E_READONLY && strstr(keel_errmsg(), "mid-commit") != NULL,
		  "keel_partition_stat of a dead writer's partition, read-only: %d (%s): %s", rc, keel_strerror(rc),
		  keel_errmsg());
	CHECK_ERR(keel_partition_stat(h, "q", &ps), KEEL_E_READONLY);
	CHECK_EQ_U64(repairs_of(h), repairs);
	CHECK_OK(keel_close(h));

	/* A read-write open repairs: the dead commit is redone whole. */
	t_store_open(&s);
	CHECK_OK(keel_partition_stat(s.h, "p", &ps));
	CHECK_OK(keel_partition_stat(s.h, "q", &ps));
	CHECK_MSG(repairs_of(s.h) > repairs, "the read-write open did not repair (repairs %" PRIu64 ")",
		  repairs_of(s.h));
	expect_val(s.h, "p", "k", "v2");
	expect_val(s.h, "q", "k", "v2");
	expect_val(s.h, "q", "k2", "new");
	CHECK_SOUND(s.h, 0);
	t_store_close(&s);

	/* A writer killed holding the arena's allocator lock: a read-only
	 * keel_stat counts the pages as it left them, and the lock keeps its
	 * dead-holder mark for a writer, whose rebuild then clears it. */
	pid = t_fork();
	if (pid == 0) {
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(shm_galloc_lock(&h->a));
		kill(getpid(), SIGKILL);
		_exit(3);
	}
	t_waitpid(pid, &stv);
	CHECK_MSG(WIFSIGNALED(stv) && WTERMSIG(stv) == SIGKILL, "the writer holding the allocator lock did not die");
	open_readonly(&s, &h);
	uint64_t gl_repairs = h->a.hdr->galloc_lock.repairs;
	CHECK_MSG(shm_lock_holder_died(&h->a.hdr->galloc_lock), "the allocator lock lacks its dead-holder mark");
	CHECK_OK(keel_stat(h, &st));
	CHECK_EQ_U64(st.keys, 3);
	CHECK_MSG(shm_lock_holder_died(&h->a.hdr->galloc_lock) && h->a.hdr->galloc_lock.repairs == gl_repairs,
		  "a read-only keel_stat took the dead writer's allocator lock (repairs %" PRIu64 " -> %" PRIu64 ")",
		  gl_repairs, (uint64_t)h->a.hdr->galloc_lock.repairs);
	CHECK_OK(keel_close(h));
	t_store_open(&s);
	CHECK_OK(keel_stat(s.h, &st));
	CHECK_MSG(!shm_lock_holder_died(&s.h->a.hdr->galloc_lock), "a read-write keel_stat left the allocator lock unrepaired");
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* ---- transaction limits --------------------------------------------------------------------- */

static void test_txnlimits(void)
{
	t_store_t s;
	struct stat_snap before;
	keel_txn_t *t;
	int rc = 0;
	unsigned i;

	t_store_init(&s);
	t_store_open(&s);
	/* Half the partitions exist beforehand, half would be new. */
	for (i = 0; i < KEEL_TXN_PARTITIONS_MAX + 1; i += 2) {
		char part[24];

		snprintf(part, sizeof(part), "tp%u", i);
		CHECK_OK(keel_put(s.h, part, "pre", 3, "v", 1, NULL));
	}
	snap_take(s.h, &before);

	/* KEEL_TXN_PARTITIONS_MAX + 1 partitions. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	for (i = 0; i < KEEL_TXN_PARTITIONS_MAX + 1 && rc == 0; i++) {
		char part[24];

		snprintf(part, sizeof(part), "tp%u", i);
		rc = keel_txn_put(t, part, "k", 1, "v", 1);
	}
	if (rc == 0) {
		rc = keel_txn_commit(t, NULL);
	} else {
		CHECK_MSG(i == KEEL_TXN_PARTITIONS_MAX + 1,
			  "txn_put refused at partition %u of %u", i, KEEL_TXN_PARTITIONS_MAX + 1);
		keel_txn_abort(t);
	}
	CHECK_MSG(rc == KEEL_E_LIMIT || rc == KEEL_E_TXNSIZE,
		  "a txn over %u partitions returned %d (%s)", KEEL_TXN_PARTITIONS_MAX + 1, rc,
		  keel_strerror(rc));
	CHECK(keel_errmsg()[0]);
	CHECK_UNCHANGED(s.h, &before);
	for (i = 0; i < KEEL_TXN_PARTITIONS_MAX + 1; i++) {
		char part[24];
		int f = -1;

		snprintf(part, sizeof(part), "tp%u", i);
		CHECK_OK(keel_contains(s.h, part, "k", 1, &f));
		CHECK_MSG(f == 0, "%s/k exists after a refused txn", part);
	}

	/* Exactly KEEL_TXN_PARTITIONS_MAX works. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	for (i = 0; i < KEEL_TXN_PARTITIONS_MAX; i++) {
		char part[24];

		snprintf(part, sizeof(part), "tp%u", i);
		CHECK_OK(keel_txn_put(t, part, "k", 1, "v", 1));
	}
	CHECK_OK(keel_txn_commit(t, NULL));
	snap_take(s.h, &before);
	CHECK_EQ_U64(before.keys, (KEEL_TXN_PARTITIONS_MAX + 2) / 2 + KEEL_TXN_PARTITIONS_MAX);

	/* KEEL_TXN_OPS_MAX + 1 operations in one partition. */
	rc = 0;
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	for (i = 0; i < KEEL_TXN_OPS_MAX + 1 && rc == 0; i++) {
		uint32_t k = i;

		rc = keel_txn_put(t, "ops", &k, sizeof(k), "", 0);
	}
	if (rc == 0) {
		rc = keel_txn_commit(t, NULL);
	} else {
		CHECK_MSG(i == KEEL_TXN_OPS_MAX + 1, "txn_put refused at op %u of %u", i,
			  KEEL_TXN_OPS_MAX + 1);
		keel_txn_abort(t);
	}
	CHECK_MSG(rc == KEEL_E_TXNSIZE || rc == KEEL_E_LIMIT,
		  "a txn of %u ops returned %d (%s)", KEEL_TXN_OPS_MAX + 1, rc, keel_strerror(rc));
	CHECK(keel_errmsg()[0]);
	CHECK_UNCHANGED(s.h, &before);
	CHECK(exists_of(s.h, "ops") == 0);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* ---- arena full ------------------------------------------------------------------------------ */

#define FULL_VAL 4096u

static void fill_val(unsigned i, unsigned char *v)
{
	for (unsigned j = 0; j < FULL_VAL; j++)
		v[j] = (unsigned char)(i * 31u + j);
}

static void test_full(void)
{
	t_store_t s;
	struct stat_snap before;
	unsigned char v[FULL_VAL], back[FULL_VAL];
	unsigned n = 0, i;
	int rc = 0;
	uint64_t cnt;
	keel_stat_t st;
	const unsigned limit = (8u << 20) / FULL_VAL * 2; /* bound on the fill loop */

	t_store_init(&s);
	s.opt.arena_bytes_max = 8ull << 20;
	s.opt.ring_bytes = 1u << 20;
	t_store_open(&s);

	for (n = 0; n < limit; n++) {
		char k[16];

		fill_val(n, v);
		snprintf(k, sizeof(k), "f%06u", n);
		rc = keel_put(s.h, "fill", k, strlen(k), v, sizeof(v), NULL);
		if (rc)
			break;
	}
	CHECK_MSG(rc == KEEL_E_FULL, "filling an 8 MiB arena: put %u returned %d (%s), expected "
		  "KEEL_E_FULL", n, rc, keel_strerror(rc));
	CHECK(keel_errmsg()[0]);
	CHECK_MSG(n > 100, "only %u puts of %u bytes fit in an 8 MiB arena", n, FULL_VAL);
	printf("test_errors: full after %u values of %u bytes\n", n, FULL_VAL);
	CHECK_OK(keel_stat(s.h, &st));
	CHECK(st.arena_bytes <= 8ull << 20);

	/* The failed put applied nothing. */
	snap_take(s.h, &before);
	CHECK_EQ_U64(before.keys, n);
	{
		char k[16];
		int f = -1;

		snprintf(k, sizeof(k), "f%06u", n);
		CHECK_OK(keel_contains(s.h, "fill", k, strlen(k), &f));
		CHECK(f == 0);
		/* More refusals: same again, a big value, a new partition, a
		 * txn over two partitions. */
		CHECK_ERR(keel_put(s.h, "fill", k, strlen(k), v, sizeof(v), NULL), KEEL_E_FULL);
		{
			unsigned char *big = calloc(1, KEEL_VALUE_MAX);

			CHECK(big);
			CHECK_ERR(keel_put(s.h, "fill", "big", 3, big, KEEL_VALUE_MAX, NULL),
				  KEEL_E_FULL);
			/* Overwriting an existing key with a much bigger value. */
			CHECK_ERR(keel_put(s.h, "fill", "f000000", 7, big, KEEL_VALUE_MAX, NULL),
				  KEEL_E_FULL);
			free(big);
		}
		{
			keel_txn_t *t;

			CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
			CHECK_OK(keel_txn_put(t, "fill", "f000001", 7, "small", 5));
			for (i = 0; i < 8; i++) {
				char k2[16];

				snprintf(k2, sizeof(k2), "t%u", i);
				CHECK_OK(keel_txn_put(t, "other", k2, strlen(k2), v, sizeof(v)));
			}
			CHECK_ERR(keel_txn_commit(t, NULL), KEEL_E_FULL);
		}
	}
	CHECK_DATA_UNCHANGED(s.h, &before);
	CHECK(exists_of(s.h, "other") == 0);

	/* Reads still work, and see the values as written. */
	for (i = 0; i < n; i += 7) {
		char k[16];
		size_t vl = 0;

		snprintf(k, sizeof(k), "f%06u", i);
		CHECK_OK(keel_get(s.h, "fill", k, strlen(k), back, sizeof(back), &vl, NULL));
		fill_val(i, v);
		CHECK_EQ_U64(vl, FULL_VAL);
		CHECK_MSG(memcmp(back, v, FULL_VAL) == 0, "value of %s damaged in a full arena", k);
	}
	CHECK_OK(keel_count(s.h, "fill", &cnt));
	CHECK_EQ_U64(cnt, n);
	CHECK_SOUND(s.h, 0);

	/* Deleting works when full, and makes room for new puts. */
	for (i = 0; i < n; i += 2) {
		char k[16];
		int existed = 0;

		snprintf(k, sizeof(k), "f%06u", i);
		CHECK_OK(keel_del(s.h, "fill", k, strlen(k), &existed));
		CHECK(existed == 1);
	}
	for (i = 0; i < n / 4; i++) {
		char k[16];

		snprintf(k, sizeof(k), "n%06u", i);
		fill_val(i + 1000000, v);
		rc = keel_put(s.h, "fill", k, strlen(k), v, sizeof(v), NULL);
		CHECK_MSG(rc == 0, "put %u of %u after deleting half of a full arena: %d (%s)", i,
			  n / 4, rc, keel_strerror(rc));
	}
	/* Space freed inside one partition need not serve another one (whole
	 * pages move between partitions); say so when that is the case. */
	rc = keel_put(s.h, "other", "k", 1, "v", 1, NULL);
	CHECK_MSG(rc == 0 || rc == KEEL_E_FULL, "put to a new partition: %d (%s)", rc,
		  keel_strerror(rc));
	if (rc)
		printf("test_errors: note: after deleting every other value of a full arena, a new "
		       "partition still gets KEEL_E_FULL: %s\n", keel_errmsg());
	CHECK_OK(keel_count(s.h, "fill", &cnt));
	CHECK_EQ_U64(cnt, n - (n + 1) / 2 + n / 4);
	for (i = 1; i < n; i += 2) {
		char k[16];
		size_t vl = 0;

		snprintf(k, sizeof(k), "f%06u", i);
		CHECK_OK(keel_get(s.h, "fill", k, strlen(k), back, sizeof(back), &vl, NULL));
		fill_val(i, v);
		CHECK_MSG(vl == FULL_VAL && memcmp(back, v, FULL_VAL) == 0,
			  "value of %s damaged after delete and refill", k);
	}
	CHECK_SOUND(s.h, 0);

	/* Clearing the partition frees its pages: a new partition can now take
	 * as much as the cleared one held. */
	CHECK_OK(keel_clear(s.h, "fill", &cnt));
	for (i = 0; i < n / 2; i++) {
		char k[16];

		snprintf(k, sizeof(k), "o%06u", i);
		fill_val(i, v);
		rc = keel_put(s.h, "other2", k, strlen(k), v, sizeof(v), NULL);
		if (rc == KEEL_E_FULL) {
			/* Diagnose: is the space stuck as retired, or lost? */
			int rc2, reaped = keel_reclaim(s.h);

			CHECK_OK(keel_stat(s.h, &st));
			rc2 = keel_put(s.h, "other2", k, strlen(k), v, sizeof(v), NULL);
			T_FAIL("put %u of %u to a new partition after clearing a full arena: FULL; "
			       "then keel_reclaim returned %d, stat: used %" PRIu64 " free %" PRIu64
			       " retired %" PRIu64 " keys %" PRIu64 "; the put retried after reclaim "
			       "returned %d (%s)", i, n / 2, reaped, st.arena_bytes_used,
			       st.arena_bytes_free, st.arena_bytes_retired, st.keys, rc2,
			       keel_strerror(rc2));
		}
		CHECK_MSG(rc == 0, "put %u of %u to a new partition after clearing a full arena: %d "
			  "(%s)", i, n / 2, rc, keel_strerror(rc));
	}
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* ---- unlink while attached --------------------------------------------------------------------- */

static void test_busy(void)
{
	t_store_t s;
	int ready[2], go[2];
	pid_t pid;
	char c;
	char path[PATH_MAX];
	struct stat sb;

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	t_store_close(&s);
	CHECK_OK(keel_arena_path(s.dir, &s.opt, path, sizeof(path)));

	CHECK(pipe(ready) == 0 && pipe(go) == 0);
	pid = t_fork();
	if (pid == 0) {
		keel_t *h;

		close(ready[0]);
		close(go[1]);
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK(write(ready[1], "r", 1) == 1);
		if (read(go[0], &c, 1) != 1)
			_exit(3);
		expect_val(h, "p", "k", "v");
		CHECK_OK(keel_close(h));
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	CHECK(read(ready[0], &c, 1) == 1);
	CHECK_ERR(keel_unlink_arena(s.dir, &s.opt, 0), KEEL_E_BUSY);
	CHECK_MSG(stat(path, &sb) == 0, "arena removed by a refused keel_unlink_arena");
	CHECK(write(go[1], "g", 1) == 1);
	t_wait_exit0(pid, "attached child");
	CHECK_OK(keel_unlink_arena(s.dir, &s.opt, 0));
	CHECK_MSG(stat(path, &sb) != 0, "arena still there after keel_unlink_arena");
	close(ready[0]);
	close(go[1]);
	t_store_destroy(&s);
}

static void test_grow_ahead(void)
{
	t_store_t s;
	struct stat sb;
	unsigned char v[FULL_VAL], back[FULL_VAL];
	const unsigned limit = (64u << 20) / FULL_VAL * 2;
	unsigned n = 0;
	int rc = 0;
	char k[16];

	t_store_init(&s);
	s.opt.arena_bytes_max = 48ull << 20;
	s.opt.ring_bytes = 1u << 20;
	t_store_open(&s);
	shm_arena_t *a = &s.h->a;
	uint64_t cur = a->hdr->arena_bytes;
	shm_arena_grow_ahead(a);   /* a new arena is within a step of its end at once */
	for (; a->hdr->ahead_bytes == 0 && n < limit; n++) {
		fill_val(n, v);
		snprintf(k, sizeof(k), "g%06u", n);
		CHECK_OK(keel_put(s.h, "grow", k, strlen(k), v, sizeof(v), NULL));
		if (a->hdr->arena_bytes != cur)
			break;
		shm_arena_grow_ahead(a);
	}
	CHECK_MSG(a->hdr->arena_bytes == cur && a->hdr->ahead_bytes > cur,
		  "within a step of the end, grow_ahead should prepare the next step (arena %llu, was %llu, ahead %llu)",
		  (unsigned long long)a->hdr->arena_bytes, (unsigned long long)cur,
		  (unsigned long long)a->hdr->ahead_bytes);
	CHECK(fstat(a->fd, &sb) == 0);
	CHECK_EQ_U64((uint64_t)sb.st_size, cur);   /* the size, which attach checks, is unchanged */
	CHECK_MSG((uint64_t)sb.st_blocks * 512 >= a->hdr->ahead_bytes, "%llu bytes allocated, %llu prepared",
		  (unsigned long long)sb.st_blocks * 512, (unsigned long long)a->hdr->ahead_bytes);
	uint64_t ahead = a->hdr->ahead_bytes;
	shm_arena_grow_ahead(a);
	CHECK_EQ_U64(a->hdr->ahead_bytes, ahead);   /* once per step */
	/* The step is the store's, not the handle's: another handle (as
	 * another process would) grows into it with no allocating of its own,
	 * and does not prepare it again. */
	keel_t *h2;
	CHECK_OK(keel_open(s.dir, &s.opt, &h2));
	shm_arena_grow_ahead(&h2->a);
	CHECK_EQ_U64(a->hdr->ahead_bytes, ahead);
	for (; a->hdr->arena_bytes == cur && n < limit; n++) {
		fill_val(n, v);
		snprintf(k, sizeof(k), "g%06u", n);
		CHECK_OK(keel_put(h2, "grow", k, strlen(k), v, sizeof(v), NULL));
	}
	CHECK_EQ_U64(a->hdr->arena_bytes, ahead);
	CHECK_MSG(h2->a.grows_prepared == 1 && a->grows_prepared == 0,
		  "the second handle's grow should find the step prepared (grows on prepared pages: %llu and %llu)",
		  (unsigned long long)h2->a.grows_prepared, (unsigned long long)a->grows_prepared);
	CHECK_OK(keel_close(h2));
	CHECK(fstat(a->fd, &sb) == 0);
	CHECK_EQ_U64((uint64_t)sb.st_size, ahead);
	CHECK_SOUND(s.h, 0);
	/* On to the maximum, preparing ahead all the way. */
	for (; n < limit; n++) {
		shm_arena_grow_ahead(a);
		CHECK(a->hdr->ahead_bytes <= s.opt.arena_bytes_max);
		fill_val(n, v);
		snprintf(k, sizeof(k), "g%06u", n);
		if ((rc = keel_put(s.h, "grow", k, strlen(k), v, sizeof(v), NULL)))
			break;
	}
	CHECK_MSG(rc == KEEL_E_FULL, "filling a 48 MiB arena: put %u returned %d (%s)", n, rc, keel_strerror(rc));
	CHECK(a->hdr->arena_bytes <= s.opt.arena_bytes_max);
	uint64_t cnt;
	CHECK_OK(keel_count(s.h, "grow", &cnt));
	CHECK_EQ_U64(cnt, n);   /* the failed put applied nothing */
	for (unsigned i = 0; i < n; i += n / 7 + 1) {
		size_t vl = 0;
		snprintf(k, sizeof(k), "g%06u", i);
		fill_val(i, v);
		CHECK_OK(keel_get(s.h, "grow", k, strlen(k), back, sizeof(back), &vl, NULL));
		CHECK(vl == FULL_VAL && memcmp(back, v, FULL_VAL) == 0);
	}
	CHECK_SOUND(s.h, 0);
	printf("test_errors: grow_ahead: prepared %llu bytes ahead of a %llu-byte arena; full after %u values\n",
	       (unsigned long long)(ahead - cur), (unsigned long long)cur, n);
	t_store_destroy(&s);

	/* A memory-mode handle has no background thread: its commits prepare
	 * the next step themselves, after their locks are released. */
	t_store_init(&s);
	s.opt.ring_bytes = 1u << 20;
	t_store_open(&s);
	a = &s.h->a;
	uint64_t first = a->hdr->arena_bytes, grows = 0;
	for (n = 0, cur = first; grows < 3 && n < limit; n++) {
		fill_val(n, v);
		snprintf(k, sizeof(k), "m%06u", n);
		CHECK_OK(keel_put(s.h, "grow", k, strlen(k), v, sizeof(v), NULL));
		if (a->hdr->arena_bytes != cur) {
			grows++;
			cur = a->hdr->arena_bytes;
		}
	}
	CHECK_MSG(grows == 3 && a->grows_prepared == grows,
		  "memory mode: %llu of %llu grows found their step prepared by the commits",
		  (unsigned long long)a->grows_prepared, (unsigned long long)grows);
	CHECK_SOUND(s.h, 0);
	printf("test_errors: grow_ahead: memory mode grew %llu to %llu bytes, every step prepared\n",
	       (unsigned long long)first, (unsigned long long)cur);
	t_store_destroy(&s);
}

/* ---- main ------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(void);
} sections[] = {
	{ "strerror", test_strerror }, { "keys", test_keys },
	{ "values", test_values },     { "names", test_names },
	{ "nulls", test_nulls },       { "fork", test_fork },
	{ "readonly", test_readonly }, { "readonly_dead", test_readonly_dead },
	{ "txnlimits", test_txnlimits },
	{ "full", test_full },	       { "busy", test_busy },
	{ "grow_ahead", test_grow_ahead },
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	size_t nsec = sizeof(sections) / sizeof(sections[0]);
	int failed = 0;
	int ran = 0;

	t_begin("test_errors");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: test_errors [--only SECTION]\n"
			       "Checks that every bad input gets its code and changes nothing.\n"
			       "Sections:");
			for (size_t j = 0; j < nsec; j++)
				printf(" %s", sections[j].name);
			printf("\nExit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr, "test_errors: unknown argument '%s' (try --help)\n",
				argv[i]);
			return 2;
		}
	}
	for (size_t j = 0; j < nsec; j++) {
		if (only && strcmp(only, sections[j].name) != 0)
			continue;
		failed += !t_run_section(sections[j].name, sections[j].fn);
		ran++;
	}
	if (!ran) {
		fprintf(stderr, "test_errors: no section '%s' (try --help)\n", only);
		return 2;
	}
	if (failed) {
		printf("test_errors: FAIL (%d sections failed)\n", failed);
		return T_EXIT_FAIL;
	}
	printf("test_errors: PASS\n");
	return 0;
}
