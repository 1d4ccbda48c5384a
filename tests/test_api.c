/*
 * test_api - behaviour of every call in lib/keel.h, one process.
 *
 * Each section makes its own fresh store (memory durability) and checks one
 * group of calls against what keel.h promises:
 *
 *   basic       put / get / get_alloc, short buffers set the full length,
 *               binary keys, empty values, NOTFOUND
 *   delete      del (existed), contains, exists, count, clear (removed)
 *   many        get_many (index, found, early stop), put_many (one LSN),
 *               del_many (removed)
 *   many_groups get_many across its lookup groups of 16: long and odd
 *               lengths, absent and repeated keys, keys of many lengths,
 *               stops inside and at the end of a group, all against keel_get
 *   partitions  keel_partitions lists every partition once, in id order,
 *               with its key count
 *   versions    1 for a new key, +1 per write, mtime moves, meta.lsn is the
 *               writing commit's LSN, LSNs increase
 *   put_if      ANY, ABSENT, exact version, conflict reports the current one
 *   txn         multi-partition commit, own writes visible inside, nothing
 *               visible outside before commit, abort leaves nothing, a
 *               conflict applies nothing and keel_last_conflict names it,
 *               del_if, clear in a txn, the snapshot taken at begin
 *   scope       read scope snapshot, zero-copy pointer stays valid while
 *               other threads overwrite, delete and reclaim
 *   iter        all keys, prefix filter, snapshot while others write
 *   stat        keel_stat and keel_partition_stat counts and bytes
 *   processes   keel_processes sees attached children; closed and killed
 *               children leave the list (the killed one after keel_reclaim)
 *   reopen      data outlives the last handle; NOCREATE; sync in memory mode
 *
 * Each section runs in a forked child, so one failure does not hide the
 * others.  Writes that must happen "while" a scope, iterator or transaction
 * is open are made by a second thread on the same handle, so the test relies
 * only on the handle being thread-safe, not on nesting rules within one
 * thread.
 *
 * Usage: test_api [--help] [--only SECTION]
 */
#include <pthread.h>

#include "common/t.h"

/* ---- helpers -------------------------------------------------------------- */

static size_t sk(const char *s) { return strlen(s); }

/* put a C string value */
static uint64_t put_s(keel_t *h, const char *part, const char *key, const char *val)
{
	uint64_t lsn = 0;

	CHECK_OK(keel_put(h, part, key, sk(key), val, sk(val), &lsn));
	CHECK(lsn > 0);
	return lsn;
}

/* the value of part/key must be the C string `want` */
static void expect_s(keel_t *h, const char *part, const char *key, const char *want,
		     keel_meta_t *meta)
{
	char buf[512];
	size_t vl = 0;
	int rc = keel_get(h, part, key, sk(key), buf, sizeof(buf), &vl, meta);

	CHECK_MSG(rc == 0, "get %s/%s returned %d (%s), expected value '%s'", part, key, rc,
		  keel_strerror(rc), want);
	CHECK_MSG(vl == sk(want) && memcmp(buf, want, vl) == 0,
		  "get %s/%s: got '%.*s' (%zu bytes), expected '%s'", part, key,
		  (int)(vl < sizeof(buf) ? vl : sizeof(buf)), buf, vl, want);
}

static void expect_absent(keel_t *h, const char *part, const char *key)
{
	char buf[16];
	size_t vl = 12345;
	int found = -1;

	CHECK_RC(keel_get(h, part, key, sk(key), buf, sizeof(buf), &vl, NULL),
		 KEEL_E_NOTFOUND);
	CHECK_OK(keel_contains(h, part, key, sk(key), &found));
	CHECK_MSG(found == 0, "contains %s/%s = %d, expected 0", part, key, found);
}

static uint64_t count_of(keel_t *h, const char *part)
{
	uint64_t n = UINT64_MAX;

	CHECK_OK(keel_count(h, part, &n));
	CHECK(n != UINT64_MAX);
	return n;
}

static int exists_of(keel_t *h, const char *part)
{
	int found = -1;

	CHECK_OK(keel_exists(h, part, &found));
	CHECK(found == 0 || found == 1);
	return found;
}

static void stat_of(keel_t *h, keel_stat_t *st)
{
	memset(st, 0xa5, sizeof(*st));
	CHECK_OK(keel_stat(h, st));
}

/* Run fn(arg) in a second thread and wait for it. */
static void in_thread(void *(*fn)(void *), void *arg)
{
	pthread_t th;

	CHECK_OK(-pthread_create(&th, NULL, fn, arg));
	CHECK_OK(-pthread_join(th, NULL));
}

/* ---- basic ------------------------------------------------------------------- */

static void test_basic(void)
{
	t_store_t s;
	keel_meta_t m;
	char buf[64];
	size_t vl;
	void *av = NULL;
	const unsigned char bin_key[] = { 0x00, 0xff, 0x00, 0x7f, 0x0a };
	const unsigned char bin_val[] = { 0x00, 0x00, 0x01, 0xfe };

	t_store_init(&s);
	t_store_open(&s);

	put_s(s.h, "p", "hello", "world");
	expect_s(s.h, "p", "hello", "world", &m);
	CHECK_EQ_U64(m.version, 1);

	/* A short buffer: the first cap bytes are copied, the rest of buf is
	 * untouched, and *vlen says the full length. */
	memset(buf, '#', sizeof(buf));
	vl = 0;
	CHECK_OK(keel_get(s.h, "p", "hello", 5, buf, 2, &vl, NULL));
	CHECK_EQ_U64(vl, 5);
	CHECK_MEM(buf, "wo", 2);
	CHECK(buf[2] == '#');
	/* NULL buffer with cap 0 asks for the length only. */
	vl = 0;
	CHECK_OK(keel_get(s.h, "p", "hello", 5, NULL, 0, &vl, NULL));
	CHECK_EQ_U64(vl, 5);
	/* vlen and meta may be NULL */
	CHECK_OK(keel_get(s.h, "p", "hello", 5, buf, sizeof(buf), NULL, NULL));
	CHECK_MEM(buf, "world", 5);

	/* get_alloc */
	vl = 0;
	CHECK_OK(keel_get_alloc(s.h, "p", "hello", 5, &av, &vl, &m));
	CHECK(av != NULL);
	CHECK_EQ_U64(vl, 5);
	CHECK_MEM(av, "world", 5);
	CHECK_EQ_U64(m.version, 1);
	free(av);
	av = (void *)1;
	CHECK_RC(keel_get_alloc(s.h, "p", "nope", 4, &av, &vl, NULL), KEEL_E_NOTFOUND);

	/* Overwrite with a longer and then a shorter value. */
	put_s(s.h, "p", "hello", "a much longer value than before, to force a new block");
	expect_s(s.h, "p", "hello", "a much longer value than before, to force a new block", &m);
	CHECK_EQ_U64(m.version, 2);
	put_s(s.h, "p", "hello", "x");
	expect_s(s.h, "p", "hello", "x", &m);
	CHECK_EQ_U64(m.version, 3);

	/* Binary key with NUL bytes, binary value; a key that is a prefix of
	 * another is a different key. */
	CHECK_OK(keel_put(s.h, "p", bin_key, sizeof(bin_key), bin_val, sizeof(bin_val), NULL));
	CHECK_OK(keel_put(s.h, "p", bin_key, 2, "short", 5, NULL));
	vl = 0;
	CHECK_OK(keel_get(s.h, "p", bin_key, sizeof(bin_key), buf, sizeof(buf), &vl, NULL));
	CHECK_EQ_U64(vl, sizeof(bin_val));
	CHECK_MEM(buf, bin_val, sizeof(bin_val));
	vl = 0;
	CHECK_OK(keel_get(s.h, "p", bin_key, 2, buf, sizeof(buf), &vl, NULL));
	CHECK_EQ_U64(vl, 5);
	CHECK_MEM(buf, "short", 5);
	CHECK_RC(keel_get(s.h, "p", bin_key, 3, buf, sizeof(buf), &vl, NULL), KEEL_E_NOTFOUND);

	/* Empty value. */
	CHECK_OK(keel_put(s.h, "p", "empty", 5, "", 0, NULL));
	vl = 99;
	CHECK_OK(keel_get(s.h, "p", "empty", 5, buf, sizeof(buf), &vl, &m));
	CHECK_EQ_U64(vl, 0);
	CHECK_EQ_U64(m.version, 1);
	av = NULL;
	vl = 99;
	CHECK_OK(keel_get_alloc(s.h, "p", "empty", 5, &av, &vl, NULL));
	CHECK_EQ_U64(vl, 0);
	free(av);

	/* The same key in another partition is another key. */
	expect_absent(s.h, "q", "hello");
	put_s(s.h, "q", "hello", "other");
	expect_s(s.h, "q", "hello", "other", &m);
	CHECK_EQ_U64(m.version, 1);
	expect_s(s.h, "p", "hello", "x", NULL);

	/* A value of exactly KEEL_VALUE_MAX and a key of exactly KEEL_KEY_MAX. */
	{
		size_t n = KEEL_VALUE_MAX;
		unsigned char *big = malloc(n), *back = NULL;
		char key[KEEL_KEY_MAX];
		uint64_t r = 42;

		CHECK(big != NULL);
		t_rand_fill(&r, big, n);
		memset(key, 'k', sizeof(key));
		CHECK_OK(keel_put(s.h, "p", key, sizeof(key), big, n, NULL));
		vl = 0;
		CHECK_OK(keel_get_alloc(s.h, "p", key, sizeof(key), (void **)&back, &vl, NULL));
		CHECK_EQ_U64(vl, n);
		CHECK_MEM(back, big, n);
		free(back);
		free(big);
	}

	t_store_destroy(&s);
}

/* ---- delete, contains, exists, count, clear ------------------------------------- */

static void test_delete(void)
{
	t_store_t s;
	int existed = -1, found = -1;
	uint64_t removed = 12345;
	keel_meta_t m;

	t_store_init(&s);
	t_store_open(&s);

	CHECK(exists_of(s.h, "d") == 0);
	CHECK_EQ_U64(count_of(s.h, "d"), 0);
	for (int i = 0; i < 10; i++) {
		char k[16];

		snprintf(k, sizeof(k), "k%d", i);
		put_s(s.h, "d", k, "v");
	}
	CHECK(exists_of(s.h, "d") == 1);
	CHECK(exists_of(s.h, "e") == 0);
	CHECK_EQ_U64(count_of(s.h, "d"), 10);

	CHECK_OK(keel_contains(s.h, "d", "k3", 2, &found));
	CHECK(found == 1);
	CHECK_OK(keel_del(s.h, "d", "k3", 2, &existed));
	CHECK(existed == 1);
	existed = -1;
	CHECK_OK(keel_del(s.h, "d", "k3", 2, &existed));
	CHECK(existed == 0);
	CHECK_OK(keel_del(s.h, "d", "k3", 2, NULL));
	expect_absent(s.h, "d", "k3");
	CHECK_EQ_U64(count_of(s.h, "d"), 9);

	/* A deleted key comes back as a new key: version 1. */
	{
		uint64_t ver = 0;

		CHECK_OK(keel_put_if(s.h, "d", "k3", 2, "again", 5, KEEL_VERSION_ABSENT, &ver));
		CHECK_EQ_U64(ver, 1);
		expect_s(s.h, "d", "k3", "again", &m);
		CHECK_EQ_U64(m.version, 1);
	}
	CHECK_EQ_U64(count_of(s.h, "d"), 10);

	put_s(s.h, "other", "k0", "stays");
	CHECK_OK(keel_clear(s.h, "d", &removed));
	CHECK_EQ_U64(removed, 10);
	CHECK_EQ_U64(count_of(s.h, "d"), 0);
	expect_absent(s.h, "d", "k0");
	expect_absent(s.h, "d", "k9");
	CHECK(exists_of(s.h, "d") == 1); /* a cleared partition still exists */
	expect_s(s.h, "other", "k0", "stays", NULL);
	removed = 12345;
	CHECK_OK(keel_clear(s.h, "d", &removed));
	CHECK_EQ_U64(removed, 0);

	/* The partition is usable after a clear. */
	put_s(s.h, "d", "k1", "new");
	expect_s(s.h, "d", "k1", "new", &m);
	CHECK_EQ_U64(count_of(s.h, "d"), 1);

	t_store_destroy(&s);
}

/* ---- get_many, put_many, del_many ------------------------------------------- */

struct many_ctx {
	unsigned calls;
	unsigned stop_after;
	int seen[8];
	char vals[8][16];
	size_t vlens[8];
	uint64_t versions[8];
};

static int many_cb(void *ctx, size_t index, const void *val, size_t vlen,
		   const keel_meta_t *meta)
{
	struct many_ctx *c = ctx;

	CHECK_MSG(index < 8, "get_many callback index %zu out of range", index);
	CHECK_MSG(!c->seen[index], "get_many callback called twice for index %zu", index);
	CHECK(vlen < sizeof(c->vals[0]));
	CHECK(meta != NULL);
	c->seen[index] = 1;
	memcpy(c->vals[index], val, vlen);
	c->vlens[index] = vlen;
	c->versions[index] = meta->version;
	c->calls++;
	return c->stop_after && c->calls >= c->stop_after;
}

static void test_many(void)
{
	t_store_t s;
	const char *keys[8] = { "m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7" };
	const char *vals[8] = { "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7" };
	size_t kl[8], vl[8];
	uint64_t lsn = 0, removed = 0;
	size_t found = 0;
	struct many_ctx c;
	keel_meta_t m;

	t_store_init(&s);
	t_store_open(&s);
	for (int i = 0; i < 8; i++) {
		kl[i] = 2;
		vl[i] = 2;
	}

	/* put_many of the even keys: one commit, one LSN for all of them. */
	{
		const void *kp[4] = { keys[0], keys[2], keys[4], keys[6] };
		const void *vp[4] = { vals[0], vals[2], vals[4], vals[6] };

		CHECK_OK(keel_put_many(s.h, "m", 4, kp, kl, vp, vl, &lsn));
		CHECK(lsn > 0);
	}
	for (int i = 0; i < 8; i += 2) {
		expect_s(s.h, "m", keys[i], vals[i], &m);
		CHECK_EQ_U64(m.lsn, lsn);
		CHECK_EQ_U64(m.version, 1);
	}
	CHECK_EQ_U64(count_of(s.h, "m"), 4);

	/* get_many over all 8: the callback sees exactly the 4 present. */
	memset(&c, 0, sizeof(c));
	CHECK_OK(keel_get_many(s.h, "m", 8, (const void *const *)keys, kl, many_cb, &c, &found));
	CHECK_EQ_U64(found, 4);
	CHECK_EQ_U64(c.calls, 4);
	for (int i = 0; i < 8; i++) {
		CHECK_MSG(c.seen[i] == !(i & 1), "get_many: index %d seen=%d", i, c.seen[i]);
		if (c.seen[i]) {
			CHECK_EQ_U64(c.vlens[i], 2);
			CHECK_MEM(c.vals[i], vals[i], 2);
			CHECK_EQ_U64(c.versions[i], 1);
		}
	}
	/* found may be NULL; a callback returning nonzero stops the walk. */
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	CHECK_OK(keel_get_many(s.h, "m", 8, (const void *const *)keys, kl, many_cb, &c, NULL));
	CHECK_EQ_U64(c.calls, 1);

	/* put_many over existing and new keys: versions go to 2 and 1. */
	{
		const void *vp[8];

		for (int i = 0; i < 8; i++)
			vp[i] = vals[7 - i];
		CHECK_OK(keel_put_many(s.h, "m", 8, (const void *const *)keys, kl, vp, vl, &lsn));
	}
	for (int i = 0; i < 8; i++) {
		expect_s(s.h, "m", keys[i], vals[7 - i], &m);
		CHECK_EQ_U64(m.version, (i & 1) ? 1 : 2);
		CHECK_EQ_U64(m.lsn, lsn);
	}

	/* del_many: 3 of 5 exist. */
	{
		const void *kp[5] = { keys[1], "zz", keys[3], "yy", keys[5] };
		size_t kl5[5] = { 2, 2, 2, 2, 2 };

		CHECK_OK(keel_del_many(s.h, "m", 5, kp, kl5, &removed));
		CHECK_EQ_U64(removed, 3);
	}
	CHECK_EQ_U64(count_of(s.h, "m"), 5);
	expect_absent(s.h, "m", "m1");
	expect_absent(s.h, "m", "m3");
	expect_absent(s.h, "m", "m5");
	expect_s(s.h, "m", "m7", vals[0], NULL);

	t_store_destroy(&s);
}

/* ---- partitions ---------------------------------------------------------------- */

struct part_ctx {
	unsigned n;
	char names[8][KEEL_PARTITION_NAME_MAX + 1];
	uint64_t keys[8];
	uint32_t ids[8];
	keel_t *h;
};

static int part_cb(void *ctx, const char *name, uint64_t keys)
{
	struct part_ctx *c = ctx;
	keel_partition_stat_t ps;

	CHECK_MSG(c->n < 8, "keel_partitions listed more than 8 partitions");
	CHECK(name != NULL && strlen(name) <= KEEL_PARTITION_NAME_MAX);
	snprintf(c->names[c->n], sizeof(c->names[0]), "%s", name);
	c->keys[c->n] = keys;
	memset(&ps, 0, sizeof(ps));
	CHECK_OK(keel_partition_stat(c->h, name, &ps));
	c->ids[c->n] = ps.id;
	c->n++;
	return 0;
}

/* keel_get_many looks its keys up in groups (lib/read.c, GET_MANY_GROUP):
 * every answer must still be keel_get's, in index order, once each. */
#define MG_KEYS 600u
#define MG_ASK 203u

struct mg_ctx {
	const uint32_t *ask;      /* key number per index; >= MG_KEYS: absent */
	size_t last;              /* index of the last call + 1 (0: none yet) */
	unsigned calls, stop_after;
};

static void mg_key(uint32_t i, char *k, size_t *kl)
{
	/* 1 to 40 bytes, so lengths differ within a group */
	*kl = (size_t)snprintf(k, 48, "g%u.%.*s", i, (int)(i % 31), "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

static void mg_val(uint32_t i, char *v, size_t *vl)
{
	*vl = (size_t)snprintf(v, 32, "value-%u", i * 7919u);
}

static int mg_cb(void *ctx, size_t index, const void *val, size_t vlen, const keel_meta_t *meta)
{
	struct mg_ctx *c = ctx;
	char want[32];
	size_t wl;

	CHECK_MSG(index < MG_ASK, "get_many: callback index %zu of %u", index, MG_ASK);
	CHECK_MSG(c->last == 0 || index >= c->last, "get_many: index %zu after %zu (not in order, or twice)",
		  index, c->last - 1);
	CHECK_MSG(c->ask[index] < MG_KEYS, "get_many: index %zu (an absent key) found", index);
	mg_val(c->ask[index], want, &wl);
	CHECK_MSG(vlen == wl && memcmp(val, want, wl) == 0, "get_many: index %zu (key %u) has the wrong value",
		  index, c->ask[index]);
	CHECK(meta && meta->version == 1);
	c->last = index + 1;
	c->calls++;
	return c->stop_after && c->calls == c->stop_after;
}

static void test_many_groups(void)
{
	static char kbuf[MG_ASK][48];
	const void *kp[MG_ASK];
	size_t kl[MG_ASK], found;
	uint32_t ask[MG_ASK];
	unsigned present = 0;
	uint64_t rng = 0x6d616e79ull;
	t_store_t s;

	t_store_init(&s);
	t_store_open(&s);
	for (uint32_t i = 0; i < MG_KEYS; i++) {
		char k[48], v[32];
		size_t klen, vlen;

		mg_key(i, k, &klen);
		mg_val(i, v, &vlen);
		CHECK_OK(keel_put(s.h, "mg", k, klen, v, vlen, NULL));
	}
	/* A mix: present keys, absent ones, and repeats (the same key twice
	 * in one group and across groups). */
	for (unsigned j = 0; j < MG_ASK; j++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t r = (uint32_t)(rng >> 33);
		ask[j] = (r % 4 == 0) ? MG_KEYS + r % 1000 : (j % 9 == 5 ? ask[j - 1] : r % MG_KEYS);
		if (j % 9 == 5 && j && ask[j - 1] >= MG_KEYS)
			ask[j] = r % MG_KEYS;
		mg_key(ask[j], kbuf[j], &kl[j]);
		kp[j] = kbuf[j];
		present += ask[j] < MG_KEYS;
	}
	/* Every length, from none to more than a dozen groups. */
	static const size_t lens[] = { 0, 1, 15, 16, 17, 31, 32, 33, MG_ASK };
	for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
		struct mg_ctx c = { ask, 0, 0, 0 };
		unsigned want = 0;

		for (size_t j = 0; j < lens[li]; j++)
			want += ask[j] < MG_KEYS;
		CHECK_OK(keel_get_many(s.h, "mg", lens[li], kp, kl, mg_cb, &c, &found));
		CHECK_MSG(found == want && c.calls == want, "get_many of %zu keys: found %zu, %u calls, want %u",
			  lens[li], found, c.calls, want);
		/* keel_get agrees, key by key */
		for (size_t j = 0; j < lens[li]; j++) {
			char v[32];
			size_t vlen;
			int rc = keel_get(s.h, "mg", kp[j], kl[j], v, sizeof(v), &vlen, NULL);
			CHECK_EQ_I64(rc, ask[j] < MG_KEYS ? KEEL_OK : KEEL_E_NOTFOUND);
		}
	}
	CHECK_MSG(present > MG_ASK / 2 && present < MG_ASK, "the mix has %u of %u present", present, MG_ASK);
	/* No callback: found still counts. */
	CHECK_OK(keel_get_many(s.h, "mg", MG_ASK, kp, kl, NULL, NULL, &found));
	CHECK_EQ_U64(found, present);
	/* A stop ends the walk at once, inside a group or at its last key. */
	static const unsigned stops[] = { 1, 7, 12, 37, 100 };
	for (size_t si = 0; si < sizeof(stops) / sizeof(stops[0]); si++) {
		struct mg_ctx c = { ask, 0, 0, stops[si] };
		CHECK_OK(keel_get_many(s.h, "mg", MG_ASK, kp, kl, mg_cb, &c, &found));
		CHECK_MSG(c.calls == stops[si] && found == stops[si], "get_many stopped after %u: %u calls, found %zu",
			  stops[si], c.calls, found);
	}
	/* An absent partition: nothing found, no call. */
	{
		struct mg_ctx c = { ask, 0, 0, 0 };
		CHECK_OK(keel_get_many(s.h, "mg-none", MG_ASK, kp, kl, mg_cb, &c, &found));
		CHECK_EQ_U64(found, 0);
		CHECK_EQ_U64(c.calls, 0);
	}
	t_store_close(&s);
}

static void test_partitions(void)
{
	t_store_t s;
	struct part_ctx c;
	const char *names[5] = { "alpha", "Beta-2", "g.a:m@m_a", "d", "0" };
	const unsigned nkeys[5] = { 3, 1, 7, 0, 2 };

	t_store_init(&s);
	t_store_open(&s);

	memset(&c, 0, sizeof(c));
	c.h = s.h;
	CHECK_OK(keel_partitions(s.h, part_cb, &c));
	CHECK_EQ_U64(c.n, 0);

	for (int p = 0; p < 5; p++) {
		/* "d" gets one key that is then deleted: it exists with 0 keys. */
		unsigned n = nkeys[p] ? nkeys[p] : 1;

		for (unsigned i = 0; i < n; i++) {
			char k[16];

			snprintf(k, sizeof(k), "k%u", i);
			put_s(s.h, names[p], k, "v");
		}
		if (!nkeys[p])
			CHECK_OK(keel_del(s.h, names[p], "k0", 2, NULL));
	}

	memset(&c, 0, sizeof(c));
	c.h = s.h;
	CHECK_OK(keel_partitions(s.h, part_cb, &c));
	CHECK_EQ_U64(c.n, 5);
	for (int p = 0; p < 5; p++) {
		int hits = 0;

		for (unsigned j = 0; j < c.n; j++) {
			if (strcmp(c.names[j], names[p]) != 0)
				continue;
			hits++;
			CHECK_MSG(c.keys[j] == nkeys[p], "partition %s listed with %" PRIu64
				  " keys, expected %u", names[p], c.keys[j], nkeys[p]);
		}
		CHECK_MSG(hits == 1, "partition %s listed %d times", names[p], hits);
	}
	for (unsigned j = 1; j < c.n; j++)
		CHECK_MSG(c.ids[j - 1] < c.ids[j], "keel_partitions not in id order: %s (id %u) "
			  "before %s (id %u)", c.names[j - 1], c.ids[j - 1], c.names[j], c.ids[j]);

	t_store_destroy(&s);
}

/* ---- versions, mtime, LSN ----------------------------------------------------------- */

static void test_versions(void)
{
	t_store_t s;
	keel_meta_t m, prev;
	uint64_t lsn, last_lsn = 0, t0, t1;
	keel_stat_t st;

	t_store_init(&s);
	t_store_open(&s);

	t0 = t_wall_ns();
	lsn = put_s(s.h, "v", "key", "1");
	t1 = t_wall_ns();
	expect_s(s.h, "v", "key", "1", &m);
	CHECK_EQ_U64(m.version, 1);
	CHECK_EQ_U64(m.lsn, lsn);
	/* wall clock of the write, with slack for clock granularity */
	CHECK_MSG(m.mtime_ns + 1000000000ull >= t0 && m.mtime_ns <= t1 + 1000000000ull,
		  "mtime %" PRIu64 " not within a second of the write [%" PRIu64 ", %" PRIu64 "]",
		  m.mtime_ns, t0, t1);
	last_lsn = lsn;

	for (uint64_t i = 2; i <= 20; i++) {
		char v[16];

		prev = m;
		t_sleep_ns(1000000); /* 1 ms, so the wall clock moves */
		snprintf(v, sizeof(v), "%" PRIu64, i);
		lsn = put_s(s.h, "v", "key", v);
		CHECK_MSG(lsn > last_lsn, "LSN went from %" PRIu64 " to %" PRIu64, last_lsn, lsn);
		last_lsn = lsn;
		expect_s(s.h, "v", "key", v, &m);
		CHECK_EQ_U64(m.version, i);
		CHECK_EQ_U64(m.lsn, lsn);
		CHECK_MSG(m.mtime_ns > prev.mtime_ns, "mtime did not move: %" PRIu64 " then %" PRIu64,
			  prev.mtime_ns, m.mtime_ns);
	}
	/* A write to another key leaves this one's meta alone. */
	lsn = put_s(s.h, "v", "other", "x");
	CHECK(lsn > last_lsn);
	prev = m;
	expect_s(s.h, "v", "key", "20", &m);
	CHECK_EQ_U64(m.version, prev.version);
	CHECK_EQ_U64(m.mtime_ns, prev.mtime_ns);
	CHECK_EQ_U64(m.lsn, prev.lsn);

	stat_of(s.h, &st);
	CHECK_MSG(st.next_lsn > lsn, "next_lsn %" PRIu64 " <= last commit %" PRIu64, st.next_lsn,
		  lsn);
	CHECK_MSG(st.applied_lsn >= lsn && st.applied_lsn < st.next_lsn,
		  "applied_lsn %" PRIu64 " not in [%" PRIu64 ", %" PRIu64 ")", st.applied_lsn, lsn,
		  st.next_lsn);

	t_store_destroy(&s);
}

/* ---- put_if ------------------------------------------------------------------------- */

static void test_put_if(void)
{
	t_store_t s;
	uint64_t ver;
	keel_meta_t m;

	t_store_init(&s);
	t_store_open(&s);

	/* ABSENT on a missing key creates it at version 1. */
	ver = 0;
	CHECK_OK(keel_put_if(s.h, "c", "k", 1, "a", 1, KEEL_VERSION_ABSENT, &ver));
	CHECK_EQ_U64(ver, 1);
	/* ABSENT on a present key: conflict, current version reported. */
	ver = 0;
	CHECK_RC(keel_put_if(s.h, "c", "k", 1, "b", 1, KEEL_VERSION_ABSENT, &ver),
		 KEEL_E_CONFLICT);
	CHECK_EQ_U64(ver, 1);
	expect_s(s.h, "c", "k", "a", &m);
	CHECK_EQ_U64(m.version, 1);
	/* The exact version applies and returns the new one. */
	ver = 0;
	CHECK_OK(keel_put_if(s.h, "c", "k", 1, "c", 1, 1, &ver));
	CHECK_EQ_U64(ver, 2);
	expect_s(s.h, "c", "k", "c", &m);
	CHECK_EQ_U64(m.version, 2);
	/* A stale and a future version both conflict and change nothing. */
	ver = 0;
	CHECK_RC(keel_put_if(s.h, "c", "k", 1, "d", 1, 1, &ver), KEEL_E_CONFLICT);
	CHECK_EQ_U64(ver, 2);
	ver = 0;
	CHECK_RC(keel_put_if(s.h, "c", "k", 1, "d", 1, 7, &ver), KEEL_E_CONFLICT);
	CHECK_EQ_U64(ver, 2);
	expect_s(s.h, "c", "k", "c", &m);
	CHECK_EQ_U64(m.version, 2);
	/* ANY always applies. */
	ver = 0;
	CHECK_OK(keel_put_if(s.h, "c", "k", 1, "e", 1, KEEL_VERSION_ANY, &ver));
	CHECK_EQ_U64(ver, 3);
	ver = 0;
	CHECK_OK(keel_put_if(s.h, "c", "new", 3, "f", 1, KEEL_VERSION_ANY, &ver));
	CHECK_EQ_U64(ver, 1);
	/* An exact version on a missing key conflicts with current 0. */
	ver = 99;
	CHECK_RC(keel_put_if(s.h, "c", "missing", 7, "g", 1, 1, &ver), KEEL_E_CONFLICT);
	CHECK_EQ_U64(ver, 0);
	expect_absent(s.h, "c", "missing");
	/* version may be NULL */
	CHECK_OK(keel_put_if(s.h, "c", "k", 1, "h", 1, 3, NULL));
	CHECK_RC(keel_put_if(s.h, "c", "k", 1, "i", 1, 3, NULL), KEEL_E_CONFLICT);
	expect_s(s.h, "c", "k", "h", &m);
	CHECK_EQ_U64(m.version, 4);
	CHECK_EQ_U64(count_of(s.h, "c"), 2);

	t_store_destroy(&s);
}

/* ---- transactions -------------------------------------------------------------------- */

struct writer_arg {
	keel_t *h;
	const char *part, *key, *val;
	int del;
	int rc;
};

static void *writer_main(void *p)
{
	struct writer_arg *w = p;

	if (w->del)
		w->rc = keel_del(w->h, w->part, w->key, strlen(w->key), NULL);
	else
		w->rc = keel_put(w->h, w->part, w->key, strlen(w->key), w->val, strlen(w->val),
				 NULL);
	return NULL;
}

/* put (or delete) from another thread on the same handle, and wait */
static void put_from_thread(keel_t *h, const char *part, const char *key, const char *val)
{
	struct writer_arg w = { h, part, key, val, val == NULL, 1 };

	in_thread(writer_main, &w);
	CHECK_MSG(w.rc == 0, "write %s/%s from a second thread returned %d (%s)", part, key,
		  w.rc, keel_strerror(w.rc));
}

static void txn_expect(keel_txn_t *t, const char *part, const char *key, const char *want)
{
	char buf[256];
	size_t vl = 0;
	int rc = keel_txn_get(t, part, key, strlen(key), buf, sizeof(buf), &vl, NULL);

	if (!want) {
		CHECK_MSG(rc == KEEL_E_NOTFOUND, "txn_get %s/%s returned %d (%s), expected NOTFOUND",
			  part, key, rc, keel_strerror(rc));
		return;
	}
	CHECK_MSG(rc == 0, "txn_get %s/%s returned %d (%s), expected '%s'", part, key, rc,
		  keel_strerror(rc), want);
	CHECK_MSG(vl == strlen(want) && memcmp(buf, want, vl) == 0,
		  "txn_get %s/%s = '%.*s', expected '%s'", part, key, (int)vl, buf, want);
}

static void test_txn(void)
{
	t_store_t s;
	keel_txn_t *t;
	uint64_t lsn0, lsn1 = 0, lsn2 = 0, lsn;
	keel_meta_t m;
	keel_stat_t st0, st1;
	keel_conflict_t c;

	t_store_init(&s);
	t_store_open(&s);

	put_s(s.h, "t3", "gone", "soon");
	lsn0 = put_s(s.h, "t1", "cond", "c1");

	/* Commit across three partitions. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "t1", "a", 1, "A1", 2));
	CHECK_OK(keel_txn_put(t, "t2", "b", 1, "B1", 2));
	CHECK_OK(keel_txn_del(t, "t3", "gone", 4));
	txn_expect(t, "t1", "a", "A1");      /* own write */
	txn_expect(t, "t2", "b", "B1");
	txn_expect(t, "t3", "gone", NULL);   /* own delete */
	txn_expect(t, "t1", "cond", "c1");   /* snapshot */
	CHECK_OK(keel_txn_put(t, "t1", "a", 1, "A2", 2)); /* overwrite own write */
	txn_expect(t, "t1", "a", "A2");
	/* Nothing is visible outside before the commit. */
	expect_absent(s.h, "t1", "a");
	expect_absent(s.h, "t2", "b");
	expect_s(s.h, "t3", "gone", "soon", NULL);
	{
		/* A short buffer in a txn get sets the full length too. */
		char b1;
		size_t vl = 0;

		CHECK_OK(keel_txn_get(t, "t1", "a", 1, &b1, 1, &vl, NULL));
		CHECK_EQ_U64(vl, 2);
		CHECK(b1 == 'A');
	}
	CHECK_OK(keel_txn_commit(t, &lsn1));
	CHECK_MSG(lsn1 > lsn0, "txn LSN %" PRIu64 " not after %" PRIu64, lsn1, lsn0);
	expect_s(s.h, "t1", "a", "A2", &m);
	CHECK_EQ_U64(m.lsn, lsn1);
	CHECK_EQ_U64(m.version, 1);
	expect_s(s.h, "t2", "b", "B1", &m);
	CHECK_EQ_U64(m.lsn, lsn1);
	expect_absent(s.h, "t3", "gone");

	/* Abort leaves nothing, not even a new partition, and takes no LSN. */
	stat_of(s.h, &st0);
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "t1", "a", 1, "XX", 2));
	CHECK_OK(keel_txn_put(t, "fresh", "f", 1, "F", 1));
	CHECK_OK(keel_txn_del(t, "t2", "b", 1));
	keel_txn_abort(t);
	expect_s(s.h, "t1", "a", "A2", &m);
	CHECK_EQ_U64(m.version, 1);
	expect_s(s.h, "t2", "b", "B1", NULL);
	CHECK(exists_of(s.h, "fresh") == 0);
	stat_of(s.h, &st1);
	CHECK_EQ_U64(st1.next_lsn, st0.next_lsn);
	CHECK_EQ_U64(st1.keys, st0.keys);
	CHECK_EQ_U64(st1.partitions, st0.partitions);

	/* A conflict anywhere applies nothing and is described. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "t2", "x", 1, "X", 1));
	CHECK_OK(keel_txn_put_if(t, "t1", "cond", 4, "c2", 2, 6)); /* current is 1 */
	CHECK_OK(keel_txn_put(t, "t3", "y", 1, "Y", 1));
	memset(&c, 0, sizeof(c));
	CHECK_RC(keel_txn_commit(t, &lsn), KEEL_E_CONFLICT);
	keel_last_conflict(&c);
	CHECK_MSG(strcmp(c.part, "t1") == 0, "conflict part '%s', expected 't1'", c.part);
	CHECK_EQ_U64(c.expected, 6);
	CHECK_EQ_U64(c.current, 1);
	CHECK_EQ_U64(c.op_index, 1);
	expect_absent(s.h, "t2", "x");
	expect_absent(s.h, "t3", "y");
	expect_s(s.h, "t1", "cond", "c1", &m);
	CHECK_EQ_U64(m.version, 1);
	stat_of(s.h, &st0);
	CHECK_EQ_U64(st0.keys, st1.keys);

	/* put_if ABSENT on a present key, and del_if, in a txn. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "t2", "x", 1, "X", 1));
	CHECK_OK(keel_txn_put_if(t, "t1", "a", 1, "no", 2, KEEL_VERSION_ABSENT));
	CHECK_RC(keel_txn_commit(t, NULL), KEEL_E_CONFLICT);
	keel_last_conflict(&c);
	CHECK_MSG(strcmp(c.part, "t1") == 0, "conflict part '%s', expected 't1'", c.part);
	CHECK_EQ_U64(c.expected, KEEL_VERSION_ABSENT);
	CHECK_EQ_U64(c.current, 1);
	CHECK_EQ_U64(c.op_index, 1);
	expect_absent(s.h, "t2", "x");

	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_del_if(t, "t1", "cond", 4, 2)); /* wrong version */
	CHECK_RC(keel_txn_commit(t, NULL), KEEL_E_CONFLICT);
	keel_last_conflict(&c);
	CHECK_EQ_U64(c.expected, 2);
	CHECK_EQ_U64(c.current, 1);
	CHECK_EQ_U64(c.op_index, 0);
	expect_s(s.h, "t1", "cond", "c1", NULL);
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_del_if(t, "t1", "cond", 4, 1));
	CHECK_OK(keel_txn_put_if(t, "t2", "b", 1, "B2", 2, 1));
	CHECK_OK(keel_txn_commit(t, &lsn2));
	CHECK(lsn2 > lsn1);
	expect_absent(s.h, "t1", "cond");
	expect_s(s.h, "t2", "b", "B2", &m);
	CHECK_EQ_U64(m.version, 2);
	CHECK_EQ_U64(m.lsn, lsn2);

	/* Clear inside a txn, then a put to the same partition: the put stays. */
	put_s(s.h, "t4", "old1", "o");
	put_s(s.h, "t4", "old2", "o");
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_clear(t, "t4"));
	txn_expect(t, "t4", "old1", NULL);
	CHECK_OK(keel_txn_put(t, "t4", "new", 3, "n", 1));
	CHECK_OK(keel_txn_commit(t, NULL));
	CHECK_EQ_U64(count_of(s.h, "t4"), 1);
	expect_s(s.h, "t4", "new", "n", NULL);
	expect_absent(s.h, "t4", "old1");

	/* Reads see the snapshot taken at begin; a write by someone else after
	 * begin makes a put_if on what was read conflict. */
	put_s(s.h, "t5", "k", "before");
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	put_from_thread(s.h, "t5", "k", "after");
	put_from_thread(s.h, "t5", "born", "later");
	{
		char buf[32];
		size_t vl = 0;

		CHECK_OK(keel_txn_get(t, "t5", "k", 1, buf, sizeof(buf), &vl, &m));
		CHECK_MSG(vl == 6 && memcmp(buf, "before", 6) == 0,
			  "txn read '%.*s', expected the snapshot's 'before'", (int)vl, buf);
		CHECK_EQ_U64(m.version, 1);
		txn_expect(t, "t5", "born", NULL);
		CHECK_OK(keel_txn_put_if(t, "t5", "k", 1, "mine", 4, m.version));
	}
	CHECK_RC(keel_txn_commit(t, NULL), KEEL_E_CONFLICT);
	keel_last_conflict(&c);
	CHECK_EQ_U64(c.expected, 1);
	CHECK_EQ_U64(c.current, 2);
	expect_s(s.h, "t5", "k", "after", NULL);

	/* LSNs of successive commits increase. */
	lsn = lsn2;
	for (int i = 0; i < 20; i++) {
		uint64_t l = 0;

		CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
		CHECK_OK(keel_txn_put(t, "t6", "n", 1, &i, sizeof(i)));
		CHECK_OK(keel_txn_put(t, "t7", "n", 1, &i, sizeof(i)));
		CHECK_OK(keel_txn_commit(t, &l));
		CHECK_MSG(l > lsn, "commit %d: LSN %" PRIu64 " not after %" PRIu64, i, l, lsn);
		lsn = l;
	}
	expect_s(s.h, "t5", "k", "after", NULL);

	/* An explicit durability override is accepted in memory mode. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_MEMORY, &t));
	CHECK_OK(keel_txn_put(t, "t6", "m", 1, "M", 1));
	CHECK_OK(keel_txn_commit(t, NULL));
	expect_s(s.h, "t6", "m", "M", NULL);

	t_store_destroy(&s);
}

/* ---- read scopes ------------------------------------------------------------------------- */

struct churn_arg {
	keel_t *h;
	int rc;
	int reclaimed;
	const char *step;
	char msg[256];
};

/* Overwrite "z" 200 times with other bytes, delete it, churn other keys and
 * reclaim: every byte the scope's pointer saw is retired meanwhile. */
static void *churn_main(void *p)
{
	struct churn_arg *a = p;
	unsigned char buf[4096];
	int rc = 0;

	a->step = "overwrite";
	for (int i = 0; i < 200 && !rc; i++) {
		memset(buf, 0x40 + (i % 50), sizeof(buf));
		rc = keel_put(a->h, "s", "z", 1, buf, sizeof(buf), NULL);
	}
	if (!rc) {
		a->step = "delete";
		rc = keel_del(a->h, "s", "z", 1, NULL);
	}
	for (int i = 0; i < 200 && !rc; i++) {
		char k[16];

		a->step = "churn";
		snprintf(k, sizeof(k), "churn%d", i % 20);
		memset(buf, 0x11 * (i % 7), sizeof(buf));
		rc = keel_put(a->h, "s", k, strlen(k), buf, sizeof(buf), NULL);
	}
	if (!rc) {
		a->step = "reclaim";
		a->reclaimed = keel_reclaim(a->h);
	}
	a->rc = rc;
	snprintf(a->msg, sizeof(a->msg), "%s", rc ? keel_errmsg() : "");
	return NULL;
}

static void test_scope(void)
{
	t_store_t s;
	keel_read_t *r = NULL;
	const void *p = NULL, *p2 = NULL;
	size_t vl = 0;
	keel_meta_t m;
	unsigned char orig[4096];
	uint64_t lsn_before, lsn_after;
	struct churn_arg ca = { 0 };

	t_store_init(&s);
	t_store_open(&s);

	memset(orig, 0xc3, sizeof(orig));
	CHECK_OK(keel_put(s.h, "s", "z", 1, orig, sizeof(orig), NULL));
	lsn_before = put_s(s.h, "s", "snap", "old");

	CHECK_OK(keel_read_begin(s.h, &r));
	CHECK(r != NULL);
	CHECK_MSG(keel_read_lsn(r) >= lsn_before, "scope LSN %" PRIu64 " < last commit %" PRIu64,
		  keel_read_lsn(r), lsn_before);
	CHECK_OK(keel_read_get(r, "s", "z", 1, &p, &vl, &m));
	CHECK(p != NULL);
	CHECK_EQ_U64(vl, sizeof(orig));
	CHECK_MEM(p, orig, sizeof(orig));
	CHECK_EQ_U64(m.version, 1);

	/* Writes after begin, from another thread. */
	put_from_thread(s.h, "s", "snap", "new");
	put_from_thread(s.h, "s", "later", "x");
	{
		keel_stat_t st;

		stat_of(s.h, &st);
		lsn_after = st.applied_lsn;
		CHECK(lsn_after > keel_read_lsn(r));
	}
	CHECK_OK(keel_read_get(r, "s", "snap", 4, &p2, &vl, &m));
	CHECK_MSG(vl == 3 && memcmp(p2, "old", 3) == 0,
		  "read scope sees '%.*s' after a later write, expected the snapshot's 'old'",
		  (int)vl, (const char *)p2);
	CHECK_EQ_U64(m.version, 1);
	CHECK_RC(keel_read_get(r, "s", "later", 5, &p2, &vl, NULL), KEEL_E_NOTFOUND);

	/* The zero-copy pointer stays valid and unchanged while others
	 * overwrite, delete and reclaim. */
	ca.h = s.h;
	in_thread(churn_main, &ca);
	CHECK_MSG(ca.rc == 0, "churn thread, %s: %d (%s): %s", ca.step, ca.rc, keel_strerror(ca.rc),
		  ca.msg);
	CHECK_MSG(ca.reclaimed >= 0, "keel_reclaim returned %d (%s)", ca.reclaimed,
		  keel_strerror(ca.reclaimed));
	CHECK_MSG(memcmp(p, orig, sizeof(orig)) == 0,
		  "zero-copy value changed under an open read scope");
	CHECK_OK(keel_read_get(r, "s", "z", 1, &p2, &vl, &m));
	CHECK_EQ_U64(vl, sizeof(orig));
	CHECK_MEM(p2, orig, sizeof(orig));
	keel_read_end(r);

	/* After the scope, the current state. */
	expect_s(s.h, "s", "snap", "new", NULL);
	expect_absent(s.h, "s", "z");
	CHECK_OK(keel_read_begin(s.h, &r));
	CHECK(keel_read_lsn(r) >= lsn_after);
	CHECK_RC(keel_read_get(r, "s", "z", 1, &p2, &vl, NULL), KEEL_E_NOTFOUND);
	CHECK_OK(keel_read_get(r, "s", "later", 5, &p2, &vl, &m));
	CHECK_EQ_U64(vl, 1);
	/* meta may be NULL */
	CHECK_OK(keel_read_get(r, "s", "snap", 4, &p2, &vl, NULL));
	keel_read_end(r);

	t_store_destroy(&s);
}

/* ---- iterators ----------------------------------------------------------------------------- */

#define ITER_KEYS 300

struct iter_seen {
	unsigned char a[ITER_KEYS], b[ITER_KEYS], other;
	unsigned total;
};

/* Keys "a/NNN" and "b/NNN"; value "val-<key>"; version 1 (b: 2 for even). */
static void iter_walk(keel_iter_t *it, struct iter_seen *seen)
{
	const void *k, *v;
	size_t kl, vl;
	keel_meta_t m;
	int rc;
	unsigned guard = 0;

	memset(seen, 0, sizeof(*seen));
	while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, &m)) == 1) {
		char key[64], want[80];
		unsigned n;

		CHECK_MSG(++guard <= 10 * ITER_KEYS, "iterator does not end");
		CHECK(kl < sizeof(key));
		memcpy(key, k, kl);
		key[kl] = 0;
		snprintf(want, sizeof(want), "val-%s", key);
		CHECK_MSG(vl == strlen(want) && memcmp(v, want, vl) == 0,
			  "iterator: %s has value '%.*s', expected '%s'", key, (int)vl,
			  (const char *)v, want);
		seen->total++;
		if (sscanf(key, "a/%u", &n) == 1 && n < ITER_KEYS) {
			CHECK_MSG(!seen->a[n]++, "iterator returned %s twice", key);
			CHECK_EQ_U64(m.version, 1);
		} else if (sscanf(key, "b/%u", &n) == 1 && n < ITER_KEYS) {
			CHECK_MSG(!seen->b[n]++, "iterator returned %s twice", key);
			CHECK_EQ_U64(m.version, (n % 2 == 0) ? 2 : 1);
		} else {
			seen->other++;
		}
	}
	CHECK_MSG(rc == 0, "keel_iter_next returned %d (%s)", rc, keel_strerror(rc));
	/* Past the end it stays at the end. */
	CHECK_RC(keel_iter_next(it, &k, &kl, &v, &vl, &m), 0);
}

struct iter_writer {
	keel_t *h;
	int rc;
};

static void *iter_writer_main(void *p)
{
	struct iter_writer *w = p;
	int rc = 0;

	for (unsigned i = 0; i < ITER_KEYS && !rc; i += 3) {
		char k[16];

		snprintf(k, sizeof(k), "a/%03u", i);
		rc = keel_del(w->h, "it", k, strlen(k), NULL);
		if (!rc) {
			snprintf(k, sizeof(k), "b/%03u", i);
			rc = keel_put(w->h, "it", k, strlen(k), "changed", 7, NULL);
		}
		if (!rc) {
			snprintf(k, sizeof(k), "c/%03u", i);
			rc = keel_put(w->h, "it", k, strlen(k), "new", 3, NULL);
		}
	}
	w->rc = rc;
	return NULL;
}

static void test_iter(void)
{
	t_store_t s;
	keel_iter_t *it = NULL;
	struct iter_seen seen;

	t_store_init(&s);
	t_store_open(&s);

	for (unsigned i = 0; i < ITER_KEYS; i++) {
		char k[16], v[32];

		snprintf(k, sizeof(k), "a/%03u", i);
		snprintf(v, sizeof(v), "val-%s", k);
		put_s(s.h, "it", k, v);
		snprintf(k, sizeof(k), "b/%03u", i);
		snprintf(v, sizeof(v), "val-%s", k);
		put_s(s.h, "it", k, v);
		if (i % 2 == 0)
			put_s(s.h, "it", k, v);
	}
	put_s(s.h, "elsewhere", "a/000", "val-a/000");

	/* All keys, each once. */
	CHECK_OK(keel_iter_open(s.h, "it", NULL, 0, &it));
	iter_walk(it, &seen);
	keel_iter_close(it);
	CHECK_EQ_U64(seen.total, 2 * ITER_KEYS);
	for (unsigned i = 0; i < ITER_KEYS; i++)
		CHECK_MSG(seen.a[i] == 1 && seen.b[i] == 1, "iterator missed a/%03u or b/%03u", i,
			  i);

	/* Prefix filter. */
	CHECK_OK(keel_iter_open(s.h, "it", "a/", 2, &it));
	iter_walk(it, &seen);
	keel_iter_close(it);
	CHECK_EQ_U64(seen.total, ITER_KEYS);
	for (unsigned i = 0; i < ITER_KEYS; i++)
		CHECK(seen.a[i] == 1 && seen.b[i] == 0);
	CHECK_OK(keel_iter_open(s.h, "it", "b/01", 4, &it));
	iter_walk(it, &seen);
	keel_iter_close(it);
	CHECK_EQ_U64(seen.total, 10);
	for (unsigned i = 10; i < 20; i++)
		CHECK(seen.b[i] == 1);
	CHECK_OK(keel_iter_open(s.h, "it", "zzz", 3, &it));
	iter_walk(it, &seen);
	keel_iter_close(it);
	CHECK_EQ_U64(seen.total, 0);
	/* The whole key as prefix matches that key. */
	CHECK_OK(keel_iter_open(s.h, "it", "a/007", 5, &it));
	iter_walk(it, &seen);
	keel_iter_close(it);
	CHECK_EQ_U64(seen.total, 1);
	CHECK(seen.a[7] == 1);

	/* Snapshot: writes made while the iterator is open are not seen. */
	CHECK_OK(keel_iter_open(s.h, "it", NULL, 0, &it));
	{
		struct iter_writer w = { s.h, 0 };
		const void *k, *v;
		size_t kl, vl;
		unsigned n, first_a = ITER_KEYS, first_b = ITER_KEYS;
		char key[32];

		/* Take one step first, so the walk is already under way. */
		CHECK_RC(keel_iter_next(it, &k, &kl, &v, &vl, NULL), 1);
		CHECK(kl < sizeof(key));
		memcpy(key, k, kl);
		key[kl] = 0;
		if (sscanf(key, "a/%u", &n) == 1)
			first_a = n;
		else if (sscanf(key, "b/%u", &n) == 1)
			first_b = n;
		in_thread(iter_writer_main, &w);
		CHECK_MSG(w.rc == 0, "writer thread: %d (%s)", w.rc, keel_strerror(w.rc));
		iter_walk(it, &seen);
		if (first_a < ITER_KEYS)
			seen.a[first_a]++;
		if (first_b < ITER_KEYS)
			seen.b[first_b]++;
		seen.total++;
	}
	keel_iter_close(it);
	CHECK_MSG(seen.total == 2 * ITER_KEYS && seen.other == 0,
		  "iterator snapshot saw %u keys (%u unexpected), expected %u", seen.total,
		  seen.other, 2 * ITER_KEYS);
	for (unsigned i = 0; i < ITER_KEYS; i++)
		CHECK_MSG(seen.a[i] == 1 && seen.b[i] == 1,
			  "iterator snapshot: a/%03u seen %u times, b/%03u %u times", i, seen.a[i], i,
			  seen.b[i]);

	/* A fresh iterator sees the writes. */
	CHECK_OK(keel_iter_open(s.h, "it", "c/", 2, &it));
	{
		const void *k, *v;
		size_t kl, vl;
		unsigned n = 0;
		int rc;

		while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, NULL)) == 1) {
			CHECK(vl == 3 && memcmp(v, "new", 3) == 0);
			n++;
		}
		CHECK_RC(rc, 0);
		CHECK_EQ_U64(n, (ITER_KEYS + 2) / 3);
	}
	keel_iter_close(it);

	t_store_destroy(&s);
}

/* ---- stats ------------------------------------------------------------------------------------ */

static void test_stat(void)
{
	t_store_t s;
	keel_stat_t st, st2;
	keel_partition_stat_t ps, ps2;
	uint64_t bytes = 0;

	t_store_init(&s);
	s.opt.arena_bytes_max = 256ull << 20;
	t_store_open(&s);

	stat_of(s.h, &st);
	CHECK_EQ_U64(st.partitions, 0);
	CHECK_EQ_U64(st.keys, 0);
	CHECK_EQ_U64(st.processes, 1);
	CHECK_EQ_U64(st.arena_bytes_max, 256ull << 20);
	CHECK(st.arena_bytes > 0 && st.arena_bytes <= st.arena_bytes_max);
	CHECK(st.arena_bytes_used > 0 && st.arena_bytes_used <= st.arena_bytes);
	/* free may count room the file can still grow into, up to the maximum */
	CHECK(st.arena_bytes_free <= st.arena_bytes_max);
	CHECK(st.arena_bytes_used + st.arena_bytes_retired <= st.arena_bytes);
	CHECK(st.arena_bytes_used + st.arena_bytes_free + st.arena_bytes_retired <=
	      st.arena_bytes_max);
	CHECK_EQ_U64(st.durability, KEEL_DURABILITY_MEMORY);
	CHECK(st.format_version > 0);
	CHECK(st.applied_lsn < st.next_lsn);

	for (unsigned i = 0; i < 500; i++) {
		char k[32], v[200];
		size_t kl = (size_t)snprintf(k, sizeof(k), "key-%u", i);
		size_t vl = 1 + i % 150;

		memset(v, 'v', vl);
		CHECK_OK(keel_put(s.h, i % 5 == 0 ? "small" : "big", k, kl, v, vl, NULL));
		if (i % 5 != 0)
			bytes += kl + vl;
	}
	stat_of(s.h, &st2);
	CHECK_EQ_U64(st2.partitions, 2);
	CHECK_EQ_U64(st2.keys, 500);
	CHECK_EQ_U64(st2.processes, 1);
	CHECK_MSG(st2.arena_bytes_used > st.arena_bytes_used + bytes / 2,
		  "arena_bytes_used grew from %" PRIu64 " to %" PRIu64 " after %" PRIu64
		  " bytes of data", st.arena_bytes_used, st2.arena_bytes_used, bytes);

	memset(&ps, 0, sizeof(ps));
	CHECK_OK(keel_partition_stat(s.h, "big", &ps));
	CHECK_EQ_U64(ps.keys, 400);
	CHECK_EQ_U64(ps.bytes, bytes);
	CHECK_MSG(ps.arena_bytes >= ps.bytes, "partition arena_bytes %" PRIu64 " < bytes %" PRIu64,
		  ps.arena_bytes, ps.bytes);
	CHECK(ps.buckets > 0);
	memset(&ps2, 0, sizeof(ps2));
	CHECK_OK(keel_partition_stat(s.h, "small", &ps2));
	CHECK_EQ_U64(ps2.keys, 100);
	CHECK(ps2.id != ps.id);
	CHECK_RC(keel_partition_stat(s.h, "none", &ps2), KEEL_E_NOTFOUND);

	/* Deleting half of "big" halves its counts. */
	{
		uint64_t gone = 0;

		for (unsigned i = 0; i < 500; i++) {
			char k[32];
			size_t kl = (size_t)snprintf(k, sizeof(k), "key-%u", i);
			int existed = 0;

			if (i % 5 == 0 || i % 2 == 0)
				continue;
			CHECK_OK(keel_del(s.h, "big", k, kl, &existed));
			CHECK(existed == 1);
			gone += kl + 1 + i % 150;
		}
		memset(&ps2, 0, sizeof(ps2));
		CHECK_OK(keel_partition_stat(s.h, "big", &ps2));
		CHECK_EQ_U64(ps2.keys, 200);
		CHECK_EQ_U64(ps2.bytes, bytes - gone);
		CHECK_EQ_U64(ps2.id, ps.id);
	}
	stat_of(s.h, &st2);
	CHECK_EQ_U64(st2.keys, 300);

	t_store_destroy(&s);
}

/* ---- processes ------------------------------------------------------------------------------------ */

struct proc_ctx {
	pid_t want[3];
	int found[3], alive[3];
	uint32_t locks[3];
	uint64_t start[3];
	unsigned total, total_alive;
};

static int proc_cb(void *ctx, const keel_proc_info_t *p)
{
	struct proc_ctx *c = ctx;

	CHECK(p != NULL);
	c->total++;
	c->total_alive += p->alive != 0;
	for (int i = 0; i < 3; i++) {
		if (c->want[i] && p->pid == c->want[i]) {
			c->found[i]++;
			c->alive[i] = p->alive;
			c->locks[i] = p->locks_held;
			c->start[i] = p->start_time;
		}
	}
	return 0;
}

static void procs_of(keel_t *h, struct proc_ctx *c, pid_t a, pid_t b, pid_t d)
{
	memset(c, 0, sizeof(*c));
	c->want[0] = a;
	c->want[1] = b;
	c->want[2] = d;
	CHECK_OK(keel_processes(h, proc_cb, c));
}

/* A child that opens the store, says so on `ready`, and waits for a byte on
 * `go`; then closes cleanly (close_it) or just exits. */
static pid_t attached_child(t_store_t *s, int close_it, int ready_fd[2], int go_fd[2])
{
	pid_t pid;

	CHECK_OK(-(pipe(ready_fd) ? errno : 0));
	CHECK_OK(-(pipe(go_fd) ? errno : 0));
	pid = t_fork();
	if (pid == 0) {
		keel_t *h = NULL;
		char c = 0;

		close(ready_fd[0]);
		close(go_fd[1]);
		CHECK_OK(keel_open(s->dir, &s->opt, &h));
		CHECK(write(ready_fd[1], "r", 1) == 1);
		if (read(go_fd[0], &c, 1) != 1)
			_exit(3);
		if (close_it)
			CHECK_OK(keel_close(h));
		_exit(0);
	}
	close(ready_fd[1]);
	close(go_fd[0]);
	{
		char c;

		CHECK_MSG(read(ready_fd[0], &c, 1) == 1, "child %d did not attach", (int)pid);
	}
	return pid;
}

static void test_processes(void)
{
	t_store_t s;
	struct proc_ctx c;
	keel_stat_t st;
	int r1[2], g1[2], r2[2], g2[2];
	pid_t me = getpid(), c1, c2;
	int reaped;

	t_store_init(&s);
	t_store_open(&s);
	put_s(s.h, "p", "k", "v");

	procs_of(s.h, &c, me, 0, 0);
	CHECK_MSG(c.found[0] == 1 && c.alive[0], "this process not listed alive by keel_processes");
	CHECK_EQ_U64(c.locks[0], 0);
	CHECK(c.start[0] > 0);
	CHECK_EQ_U64(c.total_alive, 1);

	c1 = attached_child(&s, 1, r1, g1);
	c2 = attached_child(&s, 0, r2, g2);
	procs_of(s.h, &c, me, c1, c2);
	CHECK_MSG(c.found[1] == 1 && c.alive[1], "child %d not listed alive", (int)c1);
	CHECK_MSG(c.found[2] == 1 && c.alive[2], "child %d not listed alive", (int)c2);
	CHECK_EQ_U64(c.total_alive, 3);
	stat_of(s.h, &st);
	CHECK_EQ_U64(st.processes, 3);

	/* c1 closes its handle: it leaves the list by itself. */
	CHECK(write(g1[1], "g", 1) == 1);
	t_wait_exit0(c1, "closing child");
	procs_of(s.h, &c, me, c1, c2);
	CHECK_MSG(c.found[1] == 0, "child %d closed its handle but is still listed (alive=%d)",
		  (int)c1, c.alive[1]);

	/* c2 is killed holding its handle: once reaped, it leaves the list. */
	kill(c2, SIGKILL);
	{
		int stv;

		t_waitpid(c2, &stv);
		CHECK(WIFSIGNALED(stv));
	}
	procs_of(s.h, &c, me, c1, c2);
	CHECK_MSG(c.found[2] == 0 || c.alive[2] == 0, "killed child %d still listed alive",
		  (int)c2);
	reaped = keel_reclaim(s.h);
	CHECK_MSG(reaped >= 0, "keel_reclaim returned %d (%s)", reaped, keel_strerror(reaped));
	CHECK_MSG(reaped == 1 || c.found[2] == 0,
		  "keel_reclaim reaped %d processes, expected the killed child", reaped);
	procs_of(s.h, &c, me, c1, c2);
	CHECK_MSG(c.found[2] == 0, "killed child %d still listed after keel_reclaim", (int)c2);
	CHECK_EQ_U64(c.total_alive, 1);
	CHECK_EQ_U64(c.total, 1);
	stat_of(s.h, &st);
	CHECK_EQ_U64(st.processes, 1);
	CHECK_SOUND(s.h, 0);
	expect_s(s.h, "p", "k", "v", NULL);
	close(r1[0]);
	close(g1[1]);
	close(r2[0]);
	close(g2[1]);

	t_store_destroy(&s);
}

/* ---- reopen, NOCREATE, sync, arena path ------------------------------------------------------- */

static void test_reopen(void)
{
	t_store_t s;
	keel_t *h2 = NULL;
	keel_options_t o;
	char path[PATH_MAX];
	struct stat sb;
	keel_meta_t m, m2;
	keel_stat_t st;

	t_store_init(&s);

	/* NOCREATE on a store that does not exist yet. */
	o = s.opt;
	o.flags |= KEEL_OPEN_NOCREATE;
	h2 = (keel_t *)1;
	CHECK_ERR(keel_open(s.dir, &o, &h2), KEEL_E_NOTFOUND);

	t_store_open(&s);
	put_s(s.h, "r", "k", "v");
	expect_s(s.h, "r", "k", "v", &m);
	CHECK_OK(keel_sync(s.h));
	CHECK_OK(keel_wait_durable(s.h, m.lsn));

	CHECK_OK(keel_arena_path(s.dir, &s.opt, path, sizeof(path)));
	CHECK_MSG(lstat(path, &sb) == 0, "arena path %s: %s", path, strerror(errno));
	CHECK_MSG(S_ISREG(sb.st_mode), "arena %s is not a regular file", path);
	CHECK_MSG((sb.st_mode & 07777) == 0600, "arena %s has mode %o, expected 0600", path,
		  (unsigned)(sb.st_mode & 07777));
	CHECK_EQ_U64(sb.st_uid, geteuid());

	/* The arena outlives the last handle. */
	t_store_close(&s);
	CHECK_MSG(lstat(path, &sb) == 0, "arena %s gone after close", path);
	CHECK_OK(keel_open(s.dir, &o, &s.h)); /* NOCREATE on an existing store */
	expect_s(s.h, "r", "k", "v", &m2);
	CHECK_EQ_U64(m2.version, m.version);
	CHECK_EQ_U64(m2.lsn, m.lsn);
	CHECK_EQ_U64(m2.mtime_ns, m.mtime_ns);
	stat_of(s.h, &st);
	CHECK_EQ_U64(st.keys, 1);
	CHECK_EQ_U64(st.processes, 1);
	CHECK(st.next_lsn > m.lsn);
	put_s(s.h, "r", "k2", "v2");

	/* A default (NULL) options open of the same directory reaches the same
	 * arena, since the path derives from the directory. */
	t_store_close(&s);
	CHECK_OK(keel_open(s.dir, NULL, &s.h));
	expect_s(s.h, "r", "k2", "v2", NULL);
	t_store_close(&s);

	/* Removing the arena empties the store. */
	CHECK_OK(keel_unlink_arena(s.dir, &s.opt, 0));
	CHECK_MSG(lstat(path, &sb) != 0, "arena %s still there after keel_unlink_arena", path);
	t_store_open(&s);
	expect_absent(s.h, "r", "k");
	t_store_destroy(&s);
}

/*
 * A store directory removed without keel destroy leaves its arena in
 * /dev/shm, named after the directory's inode; a directory made next gets
 * that inode at once.  The new store must not take the old arena for its own.
 */
static void test_reused_inode(void)
{
	t_store_t s;
	struct stat a, b;
	char path[PATH_MAX];

	t_store_init(&s);
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "old", 3, "v", 1, NULL));
	t_store_close(&s);
	CHECK_OK(keel_arena_path(s.dir, &s.opt, path, sizeof(path)));
	CHECK(stat(s.dir, &a) == 0);
	t_rm_rf(s.dir);                      /* removed, arena left behind */
	CHECK(mkdir(s.dir, 0700) == 0);
	CHECK(stat(s.dir, &b) == 0);
	if (a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
		printf("test_api: the file system did not reuse the inode; nothing to check\n");
		t_store_destroy(&s);
		return;
	}
	t_store_open(&s);                    /* the same arena name */
	expect_absent(s.h, "p", "old");
	uint64_t n = 1;
	CHECK_OK(keel_count(s.h, "p", &n));
	CHECK(n == 0);
	t_store_destroy(&s);
}

/* ---- main ------------------------------------------------------------------------------------ */

static const struct {
	const char *name;
	void (*fn)(void);
} sections[] = {
	{ "basic", test_basic },	 { "delete", test_delete },
	{ "many", test_many },		 { "partitions", test_partitions },
	{ "versions", test_versions },	 { "put_if", test_put_if },
	{ "txn", test_txn },		 { "scope", test_scope },
	{ "iter", test_iter },		 { "stat", test_stat },
	{ "processes", test_processes }, { "reopen", test_reopen },
	{ "reused_inode", test_reused_inode }, { "many_groups", test_many_groups },
};

int main(int argc, char **argv)
{
	const char *only = NULL;
	size_t nsec = sizeof(sections) / sizeof(sections[0]);
	int failed = 0;

	t_begin("test_api");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: test_api [--only SECTION]\n"
			       "Checks the behaviour of every call in keel.h in one process.\n"
			       "Sections:");
			for (size_t j = 0; j < nsec; j++)
				printf(" %s", sections[j].name);
			printf("\nExit: 0 pass, 1 fail.\n");
			return 0;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else {
			fprintf(stderr, "test_api: unknown argument '%s' (try --help)\n", argv[i]);
			return 2;
		}
	}
	for (size_t j = 0; j < nsec; j++) {
		if (only && strcmp(only, sections[j].name) != 0)
			continue;
		failed += !t_run_section(sections[j].name, sections[j].fn);
	}
	if (only) {
		int known = 0;

		for (size_t j = 0; j < nsec; j++)
			known |= !strcmp(only, sections[j].name);
		if (!known) {
			fprintf(stderr, "test_api: no section '%s' (try --help)\n", only);
			return 2;
		}
	}
	if (failed) {
		printf("test_api: FAIL (%d sections failed)\n", failed);
		return T_EXIT_FAIL;
	}
	printf("test_api: PASS\n");
	return 0;
}
