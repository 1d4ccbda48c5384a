/*
 * test_dump - keel-dump against live, locked, damaged and hostile stores.
 *
 * The program under test is the real keel-dump binary (KEEL_DUMP_BIN, its
 * build path), run with fork+exec under a 20 s alarm, its stdout captured in
 * a file and its JSON parsed with json-c.  Expected figures come from the
 * test's own writes and from the library (keel_stat, internal offsets), never
 * from a previous run.
 *
 * Sections (each in a child of its own, so one failure does not hide others):
 *   live      a durable store with known data in partition "fixed" and a
 *             forked writer committing to "alpha" all along: the default
 *             views (JSON and text), --keys (text and binary values, text
 *             and JSON), --check (sound, exit 0), then, with the writer
 *             paused, --journal and --from (every put to "fixed" decoded
 *             with its key); usage errors exit 2, a missing partition 5
 *   locks     a partition lock held by a live process shows as held by its
 *             pid; after the holder is SIGKILLed it shows as dead, stays
 *             dead after keel-dump ran (read-only), and --check exits 1
 *             naming the lock
 *   damage    copies of a sound arena with one hand-made fault each (a
 *             node's sort key, a list link pointing outside the arena, a
 *             bad bucket directory, a bucket dummy with another bucket's
 *             sort key): --check --arena COPY exits 1 and
 *             names partition "fixed"; the pristine copy checks sound
 *   hostile   truncated, zeroed and garbage arena files: keel-dump (views
 *             and --check) exits normally, never by a signal, refusing the
 *             unattachable ones with 3+N
 *   journal   a durable store's journal copied aside: a byte flipped in a
 *             middle record makes --journal exit 1 naming the segment and
 *             LSN, with the records before it decoded; a flip in the last
 *             record is a torn tail: exit 0, end "torn"
 *   noarena   keel-dump refuses a store without an arena (exit 5) and does
 *             not create one; --journal still reads it
 *   timers    pending timers (one overdue), a claim held by a live child, a
 *             claim left by a child that exited, a dead letter: the timers
 *             view (JSON twice, showing keel-dump re-arms nothing, and text)
 *             gives the counts, next due time, holders alive and dead, lease
 *             and dead letters; --timers lists all five with payloads
 *             (binary as hex), --limit cuts it; usage errors; a store
 *             without timers shows zeros
 *
 * Usage: test_dump [--seed S] [--only SECTION]   (the seed picks the garbage bytes)
 */
#include <json-c/json.h>

#include "common/t.h"
#include "lib/internal.h"

#ifndef KEEL_DUMP_BIN
#error "KEEL_DUMP_BIN must name the keel-dump program"
#endif

#define DUMP_ALARM_S 20
#define FIXED_KEYS 40u

/* ---- running keel-dump --------------------------------------------------------------- */

struct run {
	int status;          /* wait status */
	int code;            /* exit code, or -signal */
	char *out;           /* stdout */
	size_t out_len;
	char *err;           /* stderr */
};

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	CHECK_MSG(f, "open %s: %s", path, strerror(errno));
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = realloc(buf, cap);
			CHECK(buf);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof(*r));
}

/* Run keel-dump with argv (NULL-terminated, without the program name). */
static void run_dump(struct run *r, const char *const *args)
{
	char outp[PATH_MAX], errp[PATH_MAX];
	const char *argv[32];
	int n = 0, st;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	argv[n++] = KEEL_DUMP_BIN;
	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	snprintf(outp, sizeof(outp), "/tmp/test_dump-%d.out", (int)getpid());
	snprintf(errp, sizeof(errp), "/tmp/test_dump-%d.err", (int)getpid());
	pid = t_fork();
	if (pid == 0) {
		int fo = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fo < 0 || fe < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(126);
		alarm(DUMP_ALARM_S);   /* survives exec: a hang ends in SIGALRM */
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	t_waitpid(pid, &st);
	r->status = st;
	r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
	r->out = slurp(outp, &r->out_len);
	r->err = slurp(errp, NULL);
	unlink(outp);
	unlink(errp);
	if (!WIFEXITED(st)) {
		char sb[96];
		T_FAIL("keel-dump %s%s%s... %s; stderr: %s", argv[1], argv[2] ? " " : "", argv[2] ? argv[2] : "",
		       t_status_str(st, sb, sizeof(sb)), r->err);
	}
}

/* Run and expect exit code `want`. */
static void run_expect(struct run *r, int want, const char *const *args)
{
	run_dump(r, args);
	CHECK_MSG(r->code == want, "keel-dump %s ... exited %d, expected %d; stderr: %s; stdout: %.2000s",
		  args[0], r->code, want, r->err, r->out);
}

static json_object *parse_json(const struct run *r)
{
	json_object *o = json_tokener_parse(r->out);
	CHECK_MSG(o, "keel-dump output is not JSON: %.2000s", r->out);
	CHECK_MSG(json_object_is_type(o, json_type_object), "keel-dump JSON is not an object");
	json_object *schema = json_object_object_get(o, "schema");
	CHECK_MSG(schema && !strcmp(json_object_get_string(schema), "keel-dump/1"),
		  "schema is not keel-dump/1: %.200s", r->out);
	return o;
}

/* o["a"]["b"]... (NULL-terminated path); fails if absent. */
static json_object *jget(json_object *o, ...)
{
	va_list ap;
	const char *k;

	va_start(ap, o);
	while ((k = va_arg(ap, const char *))) {
		json_object *n = NULL;
		CHECK_MSG(o && json_object_object_get_ex(o, k, &n), "JSON has no field \"%s\"", k);
		o = n;
	}
	va_end(ap);
	return o;
}
#define JGET(...) jget(__VA_ARGS__, (const char *)NULL)

static uint64_t ju64(json_object *o)
{
	CHECK_MSG(o && json_object_is_type(o, json_type_int), "JSON field is not an integer");
	return (uint64_t)json_object_get_uint64(o);
}

static const char *jstr(json_object *o)
{
	CHECK_MSG(o && json_object_is_type(o, json_type_string), "JSON field is not a string");
	return json_object_get_string(o);
}

/* The element of array `arr` whose field k is the string v (or NULL). */
static json_object *jfind(json_object *arr, const char *k, const char *v)
{
	size_t n = json_object_array_length(arr);
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(arr, i), *f;
		if (json_object_object_get_ex(e, k, &f) && json_object_is_type(f, json_type_string) &&
		    !strcmp(json_object_get_string(f), v))
			return e;
	}
	return NULL;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static void fixed_key(unsigned i, char *k, size_t cap)
{
	snprintf(k, cap, "fixed-%03u", i);
}

/* Value i: text for even i, binary (with NUL and 0xff) for odd i. */
static size_t fixed_value(unsigned i, uint8_t *v)
{
	if (i % 2 == 0)
		return (size_t)sprintf((char *)v, "value %u: text\twith tab", i);
	for (unsigned k = 0; k < 12; k++)
		v[k] = (uint8_t)(k * 37 + i);
	v[0] = 0;
	v[1] = 0xff;
	return 12;
}

static void put_fixed(keel_t *h)
{
	for (unsigned i = 0; i < FIXED_KEYS; i++) {
		char k[32];
		uint8_t v[64];
		size_t vl = fixed_value(i, v);
		fixed_key(i, k, sizeof(k));
		CHECK_OK(keel_put(h, "fixed", k, strlen(k), v, vl, NULL));
	}
}

static void copy_file(const char *from, const char *to, off_t max)
{
	char buf[1 << 16];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;
	off_t done = 0;

	CHECK_MSG(in >= 0, "open %s: %s", from, strerror(errno));
	unlink(to);
	out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	CHECK_MSG(out >= 0, "create %s: %s", to, strerror(errno));
	CHECK(fchmod(out, 0600) == 0);
	while ((n = read(in, buf, sizeof(buf))) > 0 && (max < 0 || done < max)) {
		if (max >= 0 && done + n > max)
			n = (ssize_t)(max - done);
		CHECK(write(out, buf, (size_t)n) == n);
		done += n;
	}
	close(in);
	CHECK(close(out) == 0);
}

static void patch(const char *path, uint64_t off, const void *bytes, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(pwrite(fd, bytes, n, (off_t)off) == (ssize_t)n);
	close(fd);
}

/* XOR one byte of a file with 0x5a. */
static void flip_byte(const char *path, uint64_t off)
{
	uint8_t b;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	CHECK_MSG(fd >= 0, "open %s: %s", path, strerror(errno));
	CHECK(pread(fd, &b, 1, (off_t)off) == 1);
	b ^= 0x5a;
	CHECK(pwrite(fd, &b, 1, (off_t)off) == 1);
	close(fd);
}

static char copy_path[PATH_MAX];

static void remove_copy(void)
{
	if (copy_path[0] && getpid() == t_owner_pid)
		unlink(copy_path);
}

/* ---- live --------------------------------------------------------------------------------- */

struct shared {
	volatile int stop, pause, paused;
	volatile uint64_t commits;
};

static void writer(const char *dir, struct shared *sh)
{
	keel_options_t o;
	keel_t *h;
	uint64_t i = 0;

	keel_options_init(&o);
	o.durability = KEEL_DURABILITY_ASYNC;
	CHECK_OK(keel_open(dir, &o, &h));
	while (!sh->stop) {
		if (sh->pause) {
			CHECK_OK(keel_sync(h));
			sh->paused = 1;
			t_sleep_ns(1000000);
			continue;
		}
		sh->paused = 0;
		char k[32], v[48];
		snprintf(k, sizeof(k), "alpha-%" PRIu64, i % 500);
		snprintf(v, sizeof(v), "v%" PRIu64, i);
		CHECK_OK(keel_put(h, "alpha", k, strlen(k), v, strlen(v), NULL));
		if (i % 7 == 3)
			CHECK_OK(keel_del(h, "alpha", k, strlen(k), NULL));
		i++;
		sh->commits = i;
		t_sleep_ns(300000);   /* a few thousand commits a second: the journal stays small */
	}
	keel_close(h);
	_exit(0);
}

static void check_views_json(t_store_t *st, pid_t writer_pid, json_object *o)
{
	keel_stat_t s;
	CHECK_OK(keel_stat(st->h, &s));

	/* header */
	json_object *hd = JGET(o, "header");
	CHECK_EQ_U64(ju64(JGET(hd, "format_version")), s.format_version);
	CHECK_EQ_U64(ju64(JGET(hd, "arena_bytes_max")), s.arena_bytes_max);
	CHECK_MSG(!strcmp(jstr(JGET(hd, "durability")), "sync"), "durability %s", jstr(JGET(hd, "durability")));
	CHECK(json_object_get_boolean(JGET(hd, "journaled")));
	CHECK(json_object_get_boolean(JGET(hd, "ready")));
	CHECK(json_object_is_type(JGET(hd, "failed"), json_type_null));
	uint64_t next = ju64(JGET(hd, "lsn", "next")), applied = ju64(JGET(hd, "lsn", "applied"));
	uint64_t durable = ju64(JGET(hd, "lsn", "durable"));
	CHECK_MSG(applied < next && durable < next && next >= FIXED_KEYS + 1,
		  "LSNs: next %" PRIu64 " applied %" PRIu64 " durable %" PRIu64, next, applied, durable);
	CHECK_MSG(ju64(JGET(hd, "counters", "commits")) >= FIXED_KEYS, "commit counter too small");
	char path[PATH_MAX];
	CHECK_OK(keel_arena_path(st->dir, &st->opt, path, sizeof(path)));
	CHECK_MSG(!strcmp(jstr(JGET(hd, "arena_path")), path), "arena_path %s, expected %s",
		  jstr(JGET(hd, "arena_path")), path);
	CHECK_MSG(strlen(jstr(JGET(hd, "store_uuid"))) == 32, "store_uuid");

	/* processes: this test, the writer (both alive) and keel-dump itself */
	json_object *procs = JGET(o, "processes");
	int saw_me = 0, saw_writer = 0, selves = 0;
	for (size_t i = 0; i < json_object_array_length(procs); i++) {
		json_object *p = json_object_array_get_idx(procs, i);
		int64_t pid = json_object_get_int64(JGET(p, "pid"));
		int alive = json_object_get_boolean(JGET(p, "alive"));
		if (pid == getpid())
			saw_me = alive;
		if (pid == writer_pid)
			saw_writer = alive;
		selves += json_object_get_boolean(JGET(p, "self"));
	}
	CHECK_MSG(saw_me && saw_writer && selves == 1,
		  "processes: test %d, writer %d alive, %d self entries", saw_me, saw_writer, selves);

	/* partitions: "fixed" exactly as written; "alpha" being written */
	json_object *parts = JGET(o, "partitions"), *fx = jfind(parts, "name", "fixed");
	json_object *al = jfind(parts, "name", "alpha");
	CHECK_MSG(fx && al, "partitions fixed and alpha are not both listed");
	uint64_t bytes = 0;
	for (unsigned i = 0; i < FIXED_KEYS; i++) {
		char k[32];
		uint8_t v[64];
		fixed_key(i, k, sizeof(k));
		bytes += strlen(k) + fixed_value(i, v);
	}
	CHECK_EQ_U64(ju64(JGET(fx, "keys")), FIXED_KEYS);
	CHECK_EQ_U64(ju64(JGET(fx, "bytes")), bytes);
	uint64_t buckets = ju64(JGET(fx, "buckets"));
	CHECK_MSG(buckets >= 16 && (buckets & (buckets - 1)) == 0, "buckets %" PRIu64, buckets);
	double lf = json_object_get_double(JGET(fx, "load_factor"));
	CHECK_MSG(lf > 0.99 * FIXED_KEYS / (double)buckets && lf < 1.01 * FIXED_KEYS / (double)buckets,
		  "load factor %f for %u keys in %" PRIu64 " buckets", lf, FIXED_KEYS, buckets);
	CHECK_MSG(ju64(JGET(fx, "created_lsn")) >= 1, "created_lsn");
	CHECK_MSG(ju64(JGET(al, "keys")) >= 1 && ju64(JGET(al, "keys")) <= 500, "alpha keys");
	size_t nparts = json_object_array_length(parts);
	CHECK_EQ_U64(nparts, 2);

	/* locks: the four store-wide locks and one per partition */
	CHECK_EQ_U64(ju64(JGET(o, "locks", "total")), 4 + nparts);
	CHECK_EQ_U64(ju64(JGET(o, "locks", "dead")), 0);

	/* allocator: the page walk is complete and adds up */
	json_object *a = JGET(o, "allocator");
	uint64_t total = ju64(JGET(a, "pages", "total"));
	CHECK_EQ_U64(ju64(JGET(a, "walk_stopped_at")), 0);
	CHECK_EQ_U64(total, ju64(JGET(a, "pages", "free")) + ju64(JGET(a, "pages", "meta")) +
				    ju64(JGET(a, "pages", "slab")) + ju64(JGET(a, "pages", "large")));
	CHECK_MSG(total >= 3, "pages total %" PRIu64, total);
	CHECK_MSG(ju64(JGET(a, "used_bytes")) > bytes, "used_bytes");
	double fs = json_object_get_double(JGET(a, "frag_slab"));
	CHECK_MSG(fs >= 0.0 && fs <= 1.0, "frag_slab %f", fs);
	CHECK_MSG(json_object_array_length(JGET(a, "classes")) >= 1, "no size class listed");

	/* journal: at least one used segment starting at LSN 1 */
	json_object *j = JGET(o, "journal"), *segs = JGET(j, "segments");
	CHECK(json_object_get_boolean(JGET(j, "journaled")));
	json_object *used = jfind(segs, "state", "used");
	CHECK_MSG(used, "no used journal segment listed");
	CHECK_MSG(ju64(JGET(used, "first_lsn")) >= 1, "segment first_lsn");
	CHECK(json_object_is_type(JGET(j, "error"), json_type_null));
}

static void check_keys(t_store_t *st)
{
	struct run r;
	const char *a_json[] = { "--keys", "fixed", "--json", st->dir, NULL };
	run_expect(&r, 0, a_json);
	json_object *o = parse_json(&r), *ents = JGET(o, "entries");
	CHECK_EQ_U64(ju64(JGET(o, "count")), FIXED_KEYS);
	CHECK_EQ_U64(json_object_array_length(ents), FIXED_KEYS);
	CHECK(!json_object_get_boolean(JGET(o, "truncated")));
	for (unsigned i = 0; i < FIXED_KEYS; i++) {
		char k[32], hex[200];
		uint8_t v[64];
		size_t vl = fixed_value(i, v);
		fixed_key(i, k, sizeof(k));
		json_object *e = jfind(ents, "key", k), *tv;
		CHECK_MSG(e, "key %s not listed", k);
		CHECK_EQ_U64(ju64(JGET(e, "value_bytes")), vl);
		CHECK_EQ_U64(ju64(JGET(e, "version")), 1);
		for (size_t b = 0; b < vl; b++)
			sprintf(hex + 2 * b, "%02x", v[b]);
		CHECK_MSG(!strcmp(jstr(JGET(e, "value_hex")), hex), "key %s: value_hex %s, expected %s", k,
			  jstr(JGET(e, "value_hex")), hex);
		int has_text = json_object_object_get_ex(e, "value", &tv);
		if (i % 2 == 0)
			CHECK_MSG(has_text && !strcmp(json_object_get_string(tv), (char *)v),
				  "key %s: text value missing or wrong", k);
		else
			CHECK_MSG(!has_text, "key %s: a binary value was given as text", k);
	}
	json_object_put(o);
	run_free(&r);

	/* Text: text values quoted with escapes, binary ones in hex. */
	const char *a_text[] = { "--keys", "fixed", st->dir, NULL };
	run_expect(&r, 0, a_text);
	CHECK_MSG(strstr(r.out, "\"fixed-000\"  \"value 0: text\\twith tab\""), "text value not shown: %.1000s", r.out);
	char want[64];
	uint8_t v[64];
	fixed_value(1, v);
	snprintf(want, sizeof(want), "\"fixed-001\"  0x00ff%02x", v[2]);
	CHECK_MSG(strstr(r.out, want), "binary value not shown as %s: %.1000s", want, r.out);
	CHECK_MSG(strstr(r.out, "40 entries"), "no entry count: %.200s", r.out);
	run_free(&r);

	/* --limit */
	const char *a_lim[] = { "--keys", "fixed", "--limit", "5", "--json", st->dir, NULL };
	run_expect(&r, 0, a_lim);
	o = parse_json(&r);
	CHECK_EQ_U64(ju64(JGET(o, "count")), 5);
	CHECK(json_object_get_boolean(JGET(o, "truncated")));
	json_object_put(o);
	run_free(&r);

	/* A partition that does not exist: KEEL_E_NOTFOUND, 3 + 2. */
	const char *a_none[] = { "--keys", "nosuch", st->dir, NULL };
	run_expect(&r, 3 - KEEL_E_NOTFOUND, a_none);
	CHECK_MSG(strstr(r.err, "nosuch"), "the error does not name the partition: %s", r.err);
	run_free(&r);
}

static void check_journal(t_store_t *st)
{
	struct run r;
	const char *a[] = { "--journal", "--json", st->dir, NULL };
	run_expect(&r, 0, a);
	json_object *o = parse_json(&r), *recs = JGET(o, "records");
	size_t n = json_object_array_length(recs);
	unsigned puts_fixed = 0;
	uint64_t prev = 0;
	char seen[FIXED_KEYS] = { 0 };

	CHECK_MSG(!strcmp(jstr(JGET(o, "summary", "status")), "ok"), "journal status %s: %s",
		  jstr(JGET(o, "summary", "status")), jstr(JGET(o, "summary", "message")));
	CHECK_MSG(n >= FIXED_KEYS, "%zu journal records", n);
	for (size_t i = 0; i < n; i++) {
		json_object *rec = json_object_array_get_idx(recs, i), *ops = JGET(rec, "ops");
		uint64_t lsn = ju64(JGET(rec, "lsn"));
		CHECK_MSG(prev == 0 || lsn == prev + 1, "journal LSNs not consecutive: %" PRIu64 " after %" PRIu64,
			  lsn, prev);
		prev = lsn;
		CHECK_MSG(strcmp(jstr(JGET(rec, "state")), "damaged"), "record %" PRIu64 " damaged", lsn);
		for (size_t k = 0; k < json_object_array_length(ops); k++) {
			json_object *op = json_object_array_get_idx(ops, k), *pn;
			if (strcmp(jstr(JGET(op, "type")), "put") ||
			    !json_object_object_get_ex(op, "partition_name", &pn) ||
			    strcmp(json_object_get_string(pn), "fixed"))
				continue;
			const char *key = jstr(JGET(op, "key"));
			unsigned idx;
			CHECK_MSG(sscanf(key, "fixed-%u", &idx) == 1 && idx < FIXED_KEYS, "unexpected key %s", key);
			uint8_t v[64];
			CHECK_EQ_U64(ju64(JGET(op, "value_bytes")), fixed_value(idx, v));
			CHECK_EQ_U64(ju64(JGET(op, "version")), 1);
			seen[idx] = 1;
			puts_fixed++;
		}
	}
	CHECK_EQ_U64(puts_fixed, FIXED_KEYS);
	for (unsigned i = 0; i < FIXED_KEYS; i++)
		CHECK_MSG(seen[i], "the put of fixed-%03u is not in the decoded journal", i);
	CHECK_EQ_U64(ju64(JGET(o, "summary", "records")), n);
	CHECK_EQ_U64(ju64(JGET(o, "summary", "last_lsn")), prev);
	uint64_t mid = ju64(JGET(json_object_array_get_idx(recs, n / 2), "lsn"));
	json_object_put(o);
	run_free(&r);

	/* --from: exactly the records from there on. */
	char from[32];
	snprintf(from, sizeof(from), "%" PRIu64, mid);
	const char *af[] = { "--journal", "--from", from, "--json", st->dir, NULL };
	run_expect(&r, 0, af);
	o = parse_json(&r);
	recs = JGET(o, "records");
	CHECK_MSG(json_object_array_length(recs) >= 1, "--from %s gave no records", from);
	CHECK_EQ_U64(ju64(JGET(json_object_array_get_idx(recs, 0), "lsn")), mid);
	CHECK_EQ_U64(ju64(JGET(o, "summary", "last_lsn")), prev);
	json_object_put(o);
	run_free(&r);

	/* Text form: a create of "fixed" and a decoded put with its key. */
	const char *at[] = { "--journal", st->dir, NULL };
	run_expect(&r, 0, at);
	CHECK_MSG(strstr(r.out, "create") && strstr(r.out, "name \"fixed\""), "no create op shown");
	CHECK_MSG(strstr(r.out, "key \"fixed-007\""), "put of fixed-007 not shown");
	CHECK_MSG(strstr(r.out, "clean end") || strstr(r.out, "torn"), "no journal summary: %.300s",
		  r.out + (r.out_len > 300 ? r.out_len - 300 : 0));
	run_free(&r);
}

static void sec_live(void)
{
	t_store_t st;
	struct shared *sh = t_shared_alloc(sizeof(*sh));
	struct run r;
	pid_t w;

	t_store_init(&st);
	st.opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(&st);
	put_fixed(st.h);
	w = t_fork();
	if (w == 0)
		writer(st.dir, sh);
	for (int i = 0; i < 10000 && sh->commits < 200; i++)
		t_sleep_ns(1000000);
	CHECK_MSG(sh->commits >= 200, "the writer did not get going (%" PRIu64 " commits)", sh->commits);

	/* Views, JSON, while the writer commits. */
	const char *a_json[] = { "--json", st.dir, NULL };
	run_expect(&r, 0, a_json);
	json_object *o = parse_json(&r);
	check_views_json(&st, w, o);
	json_object_put(o);
	run_free(&r);
	uint64_t c0 = sh->commits;

	/* Text, and --view. */
	const char *a_text[] = { st.dir, NULL };
	run_expect(&r, 0, a_text);
	const char *sections[] = { "== header", "== processes", "== locks", "== partitions", "== allocator",
				   "== journal", "fixed", "alpha", "seg-", NULL };
	for (int i = 0; sections[i]; i++)
		CHECK_MSG(strstr(r.out, sections[i]), "text views lack \"%s\"", sections[i]);
	run_free(&r);
	const char *a_view[] = { "--view", "locks,partitions", "--json", st.dir, NULL };
	run_expect(&r, 0, a_view);
	o = parse_json(&r);
	json_object *tmp;
	CHECK(json_object_object_get_ex(o, "locks", &tmp) && json_object_object_get_ex(o, "partitions", &tmp));
	CHECK_MSG(!json_object_object_get_ex(o, "header", &tmp) && !json_object_object_get_ex(o, "allocator", &tmp),
		  "--view printed views it was not asked for");
	json_object_put(o);
	run_free(&r);

	check_keys(&st);

	/* --check on a sound, live store. */
	const char *a_check[] = { "--check", st.dir, NULL };
	run_expect(&r, 0, a_check);
	CHECK_MSG(strstr(r.out, "sound"), "--check did not say sound: %s", r.out);
	run_free(&r);
	const char *a_checkj[] = { "--check", "--json", st.dir, NULL };
	run_expect(&r, 0, a_checkj);
	o = parse_json(&r);
	CHECK(json_object_get_boolean(JGET(o, "sound")));
	CHECK_EQ_U64(ju64(JGET(o, "count")), 0);
	json_object_put(o);
	run_free(&r);
	/* keel-dump left nothing that blocks the writer (on a loaded machine
	 * the writer may just not have run yet: give it time). */
	for (int i = 0; i < 10000 && sh->commits <= c0; i++)
		t_sleep_ns(1000000);
	CHECK_MSG(sh->commits > c0, "the writer made no commit in 10 s after keel-dump ran");

	/* The journal, with the writer paused (still attached). */
	sh->pause = 1;
	for (int i = 0; i < 10000 && !sh->paused; i++)
		t_sleep_ns(1000000);
	CHECK(sh->paused);
	check_journal(&st);
	sh->pause = 0;

	/* Usage errors. */
	const char *u1[] = { "--keys", "fixed", "--journal", st.dir, NULL };
	const char *u2[] = { "--from", "3", st.dir, NULL };
	const char *u3[] = { "--view", "nosuch", st.dir, NULL };
	const char *u4[] = { NULL };
	const char *u5[] = { "--bogus", st.dir, NULL };
	const char *const *usages[] = { u1, u2, u3, u4, u5 };
	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
		run_expect(&r, 2, usages[i]);
		CHECK_MSG(r.err[0], "usage error %zu printed nothing on stderr", i);
		run_free(&r);
	}
	const char *help[] = { "--help", NULL };
	run_expect(&r, 0, help);
	const char *heads[] = { "NAME", "SYNOPSIS", "DESCRIPTION", "EXIT STATUS", "EXAMPLES", NULL };
	for (int i = 0; heads[i]; i++)
		CHECK_MSG(strstr(r.out, heads[i]), "--help lacks %s", heads[i]);
	run_free(&r);

	sh->stop = 1;
	t_wait_exit0(w, "writer");
	t_store_destroy(&st);
}

/* ---- locks -------------------------------------------------------------------------------- */

static json_object *lock_named(json_object *o, const char *name)
{
	return jfind(JGET(o, "locks", "list"), "name", name);
}

static void sec_locks(void)
{
	t_store_t st;
	struct run r;
	int go[2], ready[2];
	pid_t holder;
	char c;

	t_store_init(&st);
	t_store_open(&st);
	put_fixed(st.h);
	CHECK(pipe(go) == 0 && pipe(ready) == 0);
	holder = t_fork();
	if (holder == 0) {
		keel_t *h;
		struct part *p;
		CHECK_OK(keel_open(st.dir, &st.opt, &h));
		CHECK_OK(part_find(h, "fixed", &p));
		CHECK(p != NULL);
		CHECK_OK(part_lock(h, p));
		CHECK(write(ready[1], "r", 1) == 1);
		CHECK(read(go[0], &c, 1) >= 0);   /* killed while waiting here */
		_exit(0);
	}
	CHECK(read(ready[0], &c, 1) == 1);

	/* Held by a live process. */
	const char *a[] = { "--view", "locks,processes", "--json", st.dir, NULL };
	run_expect(&r, 0, a);
	json_object *o = parse_json(&r), *l = lock_named(o, "partition fixed");
	CHECK_MSG(l, "the held lock of partition fixed is not listed: %.2000s", r.out);
	CHECK_MSG(!strcmp(jstr(JGET(l, "state")), "held"), "state %s, expected held", jstr(JGET(l, "state")));
	CHECK_EQ_U64(ju64(JGET(l, "holder_pid")), (uint64_t)holder);
	CHECK_EQ_U64(ju64(JGET(o, "locks", "held")), 1);
	int found = 0;
	json_object *procs = JGET(o, "processes");
	for (size_t i = 0; i < json_object_array_length(procs); i++) {
		json_object *p = json_object_array_get_idx(procs, i);
		if (json_object_get_int64(JGET(p, "pid")) == holder) {
			CHECK_EQ_U64(ju64(JGET(p, "locks_held")), 1);
			found = 1;
		}
	}
	CHECK_MSG(found, "the holder is not among the processes");
	json_object_put(o);
	run_free(&r);

	/* The holder dies with the lock. */
	CHECK(kill(holder, SIGKILL) == 0);
	int stv;
	t_waitpid(holder, &stv);
	for (int pass = 0; pass < 2; pass++) {   /* the second pass: keel-dump repaired nothing */
		run_expect(&r, 0, a);
		o = parse_json(&r);
		l = lock_named(o, "partition fixed");
		CHECK_MSG(l && !strcmp(jstr(JGET(l, "state")), "dead"), "pass %d: the lock of a dead holder is not shown dead: %.2000s",
			  pass, r.out);
		CHECK_EQ_U64(ju64(JGET(l, "holder_pid")), (uint64_t)holder);
		CHECK_EQ_U64(ju64(JGET(o, "locks", "dead")), 1);
		json_object_put(o);
		run_free(&r);
	}
	const char *t[] = { "--view", "locks", st.dir, NULL };
	run_expect(&r, 0, t);
	CHECK_MSG(strstr(r.out, "partition fixed") && strstr(r.out, "dead"), "text view: %s", r.out);
	run_free(&r);

	/* --check names it and exits 1. */
	const char *ck[] = { "--check", st.dir, NULL };
	run_expect(&r, 1, ck);
	char pid_s[32];
	snprintf(pid_s, sizeof(pid_s), "%d", (int)holder);
	CHECK_MSG(strstr(r.out, "DAMAGE") && strstr(r.out, "partition") && strstr(r.out, "dead process") &&
			  strstr(r.out, pid_s),
		  "--check does not name the dead holder's lock: %s", r.out);
	run_free(&r);

	/* Still dead: neither the views nor --check took it. */
	run_expect(&r, 0, a);
	o = parse_json(&r);
	CHECK_EQ_U64(ju64(JGET(o, "locks", "dead")), 1);
	json_object_put(o);
	run_free(&r);

	/* A real taker repairs it; then everything is sound. */
	struct part *p;
	CHECK_OK(part_find(st.h, "fixed", &p));
	CHECK_OK(part_lock(st.h, p));
	part_unlock(st.h, p);
	run_expect(&r, 0, ck);
	run_free(&r);
	close(go[0]);
	close(go[1]);
	close(ready[0]);
	close(ready[1]);
	t_store_destroy(&st);
}

/* ---- damage ------------------------------------------------------------------------------ */

/* Offsets in the arena of partition "fixed": its descriptor's head dummy
 * (bucket 0, first in segment 0), the first entry node of the list, and the
 * bucket directory. */
struct where {
	uint64_t head, first_node, buckets;
};

static void find_offsets(keel_t *h, struct where *w)
{
	struct part *p;
	CHECK_OK(part_find(h, "fixed", &p));
	CHECK(p != NULL);
	w->head = p->head;
	w->buckets = p->buckets;
	w->first_node = 0;
	uint64_t cur = p->head;
	for (int steps = 0; cur && steps < 100000; steps++) {
		struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		CHECK(d != NULL);
		if (d->sokey & 1) {
			w->first_node = cur;
			break;
		}
		cur = d->next;
	}
	CHECK_MSG(w->first_node, "no entry node found in partition fixed");
}

static void check_damaged(t_store_t *st, const char *pristine, const char *what, uint64_t off,
			  const void *bytes, size_t n, const char *const *words)
{
	struct run r;
	const char *a[] = { "--check", "--arena", copy_path, st->dir, NULL };
	const char *aj[] = { "--check", "--json", "--arena", copy_path, st->dir, NULL };
	const char *views[] = { "--json", "--arena", copy_path, st->dir, NULL };

	copy_file(pristine, copy_path, -1);
	patch(copy_path, off, bytes, n);
	run_expect(&r, 1, a);
	CHECK_MSG(strstr(r.out, "DAMAGE") && strstr(r.out, "partition \"fixed\""),
		  "%s: --check does not name partition \"fixed\": %s", what, r.out);
	CHECK_MSG(t_mentions(r.out, words), "%s: --check does not say what is wrong (%s): %s", what, words[0], r.out);
	printf("test_dump: %s: %s", what, r.out);
	run_free(&r);
	run_expect(&r, 1, aj);
	json_object *o = parse_json(&r);
	CHECK(!json_object_get_boolean(JGET(o, "sound")));
	CHECK_MSG(ju64(JGET(o, "count")) >= 1, "count");
	json_object *p0 = json_object_array_get_idx(JGET(o, "problems"), 0);
	CHECK_MSG(p0 && strstr(jstr(JGET(p0, "where")), "fixed"), "first problem not in fixed: %s", r.out);
	json_object_put(o);
	run_free(&r);
	/* The views go on over the damage. */
	run_expect(&r, 0, views);
	json_object_put(parse_json(&r));
	run_free(&r);
}

static void sec_damage(void)
{
	t_store_t st;
	struct where w;
	struct run r;
	char pristine[PATH_MAX + 32], arena[PATH_MAX];

	t_store_init(&st);
	t_store_open(&st);
	put_fixed(st.h);
	for (int i = 0; i < 100; i++) {
		char k[16];
		snprintf(k, sizeof(k), "other%d", i);
		CHECK_OK(keel_put(st.h, "other", k, strlen(k), "x", 1, NULL));
	}
	find_offsets(st.h, &w);
	t_store_close(&st);
	CHECK_OK(keel_arena_path(st.dir, &st.opt, arena, sizeof(arena)));
	snprintf(pristine, sizeof(pristine), "%s/pristine", st.dir);
	copy_file(arena, pristine, -1);
	snprintf(copy_path, sizeof(copy_path), "/dev/shm/keel-test-dump-%d", (int)getpid());
	atexit(remove_copy);

	/* The undamaged copy is sound. */
	copy_file(pristine, copy_path, -1);
	const char *a[] = { "--check", "--arena", copy_path, st.dir, NULL };
	run_expect(&r, 0, a);
	run_free(&r);

	/* A node's sort key: no longer its key's hash, and out of order. */
	uint64_t bad = 0x5555555555555555ull;
	static const char *const w_sort[] = { "sort key", "order", NULL };
	check_damaged(&st, pristine, "node sort key", w.first_node + offsetof(struct node, sokey), &bad, 8, w_sort);

	/* The head dummy's next link points outside the arena. */
	uint64_t far = 1ull << 50;
	static const char *const w_link[] = { "outside", "not a block", NULL };
	check_damaged(&st, pristine, "list link", w.head + offsetof(struct dummy, next), &far, 8, w_link);

	/* The bucket directory claims more buckets than it has segments for. */
	uint64_t log2 = 40;
	static const char *const w_dir[] = { "bucket directory", NULL };
	check_damaged(&st, pristine, "bucket directory", w.buckets + offsetof(struct bucket_dir, log2), &log2, 8,
		      w_dir);

	/* Bucket 1's dummy carries another bucket's sort key. */
	uint64_t sk3 = sokey_dummy(3);
	static const char *const w_dummy[] = { "bucket", NULL };
	check_damaged(&st, pristine, "bucket dummy", w.head + sizeof(struct dummy) + offsetof(struct dummy, sokey),
		      &sk3, 8, w_dummy);
	unlink(copy_path);
	t_store_destroy(&st);
}

/* ---- hostile -------------------------------------------------------------------------------- */

static void sec_hostile(void)
{
	t_store_t st;
	struct run r;
	char pristine[PATH_MAX + 32], arena[PATH_MAX];
	struct stat sb;
	uint64_t rng = t_rand_stream(7);

	t_store_init(&st);
	t_store_open(&st);
	put_fixed(st.h);
	t_store_close(&st);
	CHECK_OK(keel_arena_path(st.dir, &st.opt, arena, sizeof(arena)));
	snprintf(pristine, sizeof(pristine), "%s/pristine", st.dir);
	copy_file(arena, pristine, -1);
	CHECK(stat(pristine, &sb) == 0);
	snprintf(copy_path, sizeof(copy_path), "/dev/shm/keel-test-dump-%d", (int)getpid());
	atexit(remove_copy);

	const struct {
		const char *what;
		int mode;       /* 0 truncate to len, 1 zeros, 2 random after the header, 3 random all */
		off_t len;
		int refused;    /* the open must be refused (3+N) */
	} cases[] = {
		{ "truncated to 100 bytes", 0, 100, 1 },
		{ "truncated to one page", 0, 4096, 1 },
		{ "truncated to half", 0, sb.st_size / 2, 1 },
		{ "all zeros", 1, 0, 1 },
		{ "random bytes", 3, 0, 1 },
		{ "random after the header", 2, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].mode == 0) {
			copy_file(pristine, copy_path, cases[i].len);
		} else {
			copy_file(pristine, copy_path, -1);
			int fd = open(copy_path, O_WRONLY);
			CHECK(fd >= 0);
			uint8_t buf[1 << 16];
			for (off_t off = cases[i].mode == 2 ? 4096 : 0; off < sb.st_size; off += sizeof(buf)) {
				size_t n = (size_t)(sb.st_size - off < (off_t)sizeof(buf) ? sb.st_size - off : (off_t)sizeof(buf));
				if (cases[i].mode == 1)
					memset(buf, 0, n);
				else
					t_rand_fill(&rng, buf, n);
				CHECK(pwrite(fd, buf, n, off) == (ssize_t)n);
			}
			close(fd);
		}
		const char *views[] = { "--json", "--arena", copy_path, st.dir, NULL };
		const char *check[] = { "--check", "--arena", copy_path, st.dir, NULL };
		const char *keys[] = { "--keys", "fixed", "--arena", copy_path, st.dir, NULL };
		const char *const *runs[] = { views, check, keys };
		for (int k = 0; k < 3; k++) {
			run_dump(&r, runs[k]);   /* fails the test on a signal or a hang */
			CHECK_MSG(r.code != 2, "%s: a usage error?", cases[i].what);
			if (cases[i].refused)
				CHECK_MSG(r.code >= 3 && r.err[0], "%s: keel-dump %s exited %d, expected a refusal (3+N) with a message",
					  cases[i].what, runs[k][0], r.code);
			if (k == 0)
				printf("test_dump: %-24s exit %d %s", cases[i].what, r.code, r.err[0] ? r.err : "\n");
			run_free(&r);
		}
	}
	unlink(copy_path);
	t_store_destroy(&st);
}

/* ---- journal ------------------------------------------------------------------------------- */

static void sec_journal(void)
{
	t_store_t st, cp;
	struct run r;
	char seg[PATH_MAX + 64], cseg[PATH_MAX + 64], id[PATH_MAX + 16], cid[PATH_MAX + 16], jd[PATH_MAX + 16];

	t_store_init(&st);
	st.opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(&st);
	for (unsigned i = 0; i < 6; i++) {   /* one flush, one sector-aligned batch per commit */
		char k[16];
		snprintf(k, sizeof(k), "j%u", i);
		CHECK_OK(keel_put(st.h, "jp", k, strlen(k), "value", 5, NULL));
	}
	t_store_close(&st);
	t_store_init(&cp);   /* the copy: keel.id and journal/, no arena */
	snprintf(id, sizeof(id), "%s/keel.id", st.dir);
	snprintf(cid, sizeof(cid), "%s/keel.id", cp.dir);
	copy_file(id, cid, -1);
	snprintf(jd, sizeof(jd), "%s/journal", cp.dir);
	CHECK(mkdir(jd, 0700) == 0);
	snprintf(seg, sizeof(seg), "%s/journal/seg-0000000000000001.jnl", st.dir);
	snprintf(cseg, sizeof(cseg), "%s/journal/seg-0000000000000001.jnl", cp.dir);

	/* Intact copy: six commits. */
	copy_file(seg, cseg, -1);
	const char *a[] = { "--journal", "--json", cp.dir, NULL };
	run_expect(&r, 0, a);
	json_object *o = parse_json(&r);
	CHECK_EQ_U64(json_object_array_length(JGET(o, "records")), 6);
	CHECK_MSG(!strcmp(jstr(JGET(o, "summary", "end")), "clean"), "end %s", jstr(JGET(o, "summary", "end")));
	json_object_put(o);
	run_free(&r);

	/* Record 3 (LSN 3, at sector 3) damaged with records after it: media
	 * corruption, named; LSNs 1 and 2 decoded. */
	copy_file(seg, cseg, -1);
	flip_byte(cseg, 512 * 3 + 60);
	run_expect(&r, 1, a);
	o = parse_json(&r);
	CHECK_MSG(!strcmp(jstr(JGET(o, "summary", "status")), "damaged"), "status");
	const char *msg = jstr(JGET(o, "summary", "message"));
	CHECK_MSG(strstr(msg, "seg-0000000000000001.jnl") && strstr(msg, "3"), "the damage is not named: %s", msg);
	CHECK_EQ_U64(json_object_array_length(JGET(o, "records")), 2);
	CHECK_EQ_U64(ju64(JGET(json_object_array_get_idx(JGET(o, "records"), 1), "lsn")), 2);
	CHECK_MSG(strstr(r.err, "damaged"), "stderr does not say damaged: %s", r.err);
	printf("test_dump: journal damage: %s", r.err);
	json_object_put(o);
	run_free(&r);

	/* The last record damaged: a torn tail, not damage. */
	copy_file(seg, cseg, -1);
	flip_byte(cseg, 512 * 6 + 60);
	run_expect(&r, 0, a);
	o = parse_json(&r);
	CHECK_MSG(!strcmp(jstr(JGET(o, "summary", "end")), "torn"), "end %s", jstr(JGET(o, "summary", "end")));
	CHECK_EQ_U64(json_object_array_length(JGET(o, "records")), 5);
	json_object_put(o);
	run_free(&r);

	/* The copy was only read: the damaged byte is still there. */
	uint8_t b;
	int fd = open(cseg, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, &b, 1, 512 * 6 + 60) == 1);
	close(fd);
	uint8_t orig;
	fd = open(seg, O_RDONLY);
	CHECK(fd >= 0 && pread(fd, &orig, 1, 512 * 6 + 60) == 1);
	close(fd);
	CHECK_MSG(b == (uint8_t)(orig ^ 0x5a), "keel-dump --journal changed the journal");
	t_store_destroy(&cp);
	t_store_destroy(&st);
}

/* ---- no arena ----------------------------------------------------------------------------- */

static void sec_noarena(void)
{
	t_store_t st;
	struct run r;
	char arena[PATH_MAX];
	struct stat sb;

	t_store_init(&st);
	st.opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(&st);
	put_fixed(st.h);
	t_store_close(&st);
	CHECK_OK(keel_unlink_arena(st.dir, &st.opt, 1));
	CHECK_OK(keel_arena_path(st.dir, &st.opt, arena, sizeof(arena)));
	const char *a[] = { st.dir, NULL };
	run_expect(&r, 3 - KEEL_E_NOTFOUND, a);
	CHECK_MSG(strstr(r.err, "no arena"), "stderr: %s", r.err);
	run_free(&r);
	CHECK_MSG(lstat(arena, &sb) != 0, "keel-dump created arena %s", arena);
	const char *j[] = { "--journal", st.dir, NULL };
	run_expect(&r, 0, j);
	CHECK_MSG(strstr(r.out, "40 records"), "the journal alone was not read: %.300s", r.out);
	run_free(&r);
	CHECK_MSG(lstat(arena, &sb) != 0, "keel-dump --journal created arena %s", arena);
	const char *nd[] = { "/nonexistent/keel-store", NULL };
	run_expect(&r, 3 - KEEL_E_NOTFOUND, nd);
	run_free(&r);
	t_store_destroy(&st);
}

/* ---- timers --------------------------------------------------------------------------------- */

/* The one TIMER of array `arr` whose key is `key`, or NULL. */
static json_object *timer_named(json_object *arr, const char *key)
{
	return jfind(arr, "key", key);
}

/*
 * A child that opens the store, claims the one due timer of partition
 * `part` under a 60 s lease and tells the parent through `ready`.  With
 * `stay` it then waits (a live holder, killed by the parent); without, it
 * exits at once holding the claim (a dead holder).
 */
static pid_t claimer(t_store_t *st, const char *part, int stay, int ready)
{
	pid_t pid = t_fork();

	if (pid == 0) {
		const char *parts[] = { part };
		keel_claim_t c;
		keel_t *h;
		CHECK_OK(keel_open(st->dir, &st->opt, &h));
		CHECK_OK(keel_timer_claim(h, parts, 1, 60000, 0, &c, NULL, 0));
		CHECK(write(ready, "r", 1) == 1);
		if (stay)
			pause();   /* killed here */
		_exit(0);      /* the claim stays behind, its holder dead */
	}
	return pid;
}

static void sec_timers(void)
{
	static const uint8_t bin[] = { 'p', 0, 1, 0xff, '\n' };
	keel_timer_stat_t ts;
	keel_claim_t c;
	t_store_t st;
	struct run r;
	int ready[2], stv;
	char ch, pid_s[64];

	t_store_init(&st);
	st.opt.timer_max_deliveries = 1;   /* a second claim dead-letters */
	t_store_open(&st);
	uint64_t far = keel_now_ms() + 3600000;
	CHECK_OK(keel_timer_set(st.h, "jobs", "p0", 2, 1000, "old", 3));              /* overdue */
	CHECK_OK(keel_timer_set(st.h, "jobs", "p1", 2, far, bin, sizeof(bin)));
	CHECK_OK(keel_timer_set(st.h, "a", "c1", 2, 1000, "held", 4));
	CHECK_OK(keel_timer_set(st.h, "b", "c2", 2, 1000, "orphan", 6));
	CHECK_OK(keel_timer_set(st.h, "d", "d1", 2, 1000, "dead", 4));
	const char *dp[] = { "d" };
	CHECK_OK(keel_timer_claim(st.h, dp, 1, 60000, 0, &c, NULL, 0));
	CHECK_OK(keel_timer_release(st.h, &c, 0));
	CHECK_ERR(keel_timer_claim(st.h, dp, 1, 60000, 0, &c, NULL, 0), KEEL_E_TIMEOUT);   /* dead-lettered */
	CHECK(pipe(ready) == 0);
	pid_t live = claimer(&st, "a", 1, ready[1]);
	CHECK(read(ready[0], &ch, 1) == 1);
	pid_t gone = claimer(&st, "b", 0, ready[1]);
	CHECK(read(ready[0], &ch, 1) == 1);
	t_waitpid(gone, &stv);
	/* From here on this process makes no timer call that could re-arm the
	 * dead holder's claim: only keel-dump (read-only) looks. */

	const char *a[] = { "--json", st.dir, NULL };
	for (int pass = 0; pass < 2; pass++) {   /* the second pass: keel-dump changed nothing */
		run_expect(&r, 0, a);
		json_object *o = parse_json(&r), *t = JGET(o, "timers");
		CHECK_EQ_U64(ju64(JGET(t, "pending")), 2);
		CHECK_EQ_U64(ju64(JGET(t, "claimed")), 2);
		CHECK_EQ_U64(ju64(JGET(t, "dead")), 1);
		CHECK_EQ_U64(ju64(JGET(t, "next_due_ms")), 1000);
		CHECK_MSG(!strcmp(jstr(JGET(t, "next_due")), "1970-01-01T00:00:01.000Z"), "next_due %s",
			  jstr(JGET(t, "next_due")));
		CHECK_MSG(ju64(JGET(t, "claims")) >= 3, "claims %" PRIu64, ju64(JGET(t, "claims")));
		CHECK_EQ_U64(ju64(JGET(t, "dead_lettered")), 1);
		CHECK(!json_object_get_boolean(JGET(t, "truncated")));
		CHECK(json_object_is_type(JGET(t, "error"), json_type_null));
		json_object *cl = JGET(t, "claimed_timers"), *x;
		CHECK_EQ_U64(json_object_array_length(cl), 2);
		x = timer_named(cl, "c1");
		CHECK_MSG(x, "c1 is not among the claimed timers: %.2000s", r.out);
		CHECK_EQ_U64(ju64(JGET(x, "holder")), (uint64_t)live);
		CHECK(json_object_get_boolean(JGET(x, "holder_alive")));
		int64_t left = json_object_get_int64(JGET(x, "lease_left_ms"));
		CHECK_MSG(left > 0 && left <= 60000, "lease left %" PRId64, left);
		CHECK(!strcmp(jstr(JGET(x, "partition")), "a") && !strcmp(jstr(JGET(x, "state")), "claimed"));
		CHECK_EQ_U64(ju64(JGET(x, "deliveries")), 1);
		CHECK_EQ_U64(ju64(JGET(x, "payload_bytes")), 4);
		x = timer_named(cl, "c2");
		CHECK_MSG(x, "c2 (dead holder) is not among the claimed timers: %.2000s", r.out);
		CHECK_EQ_U64(ju64(JGET(x, "holder")), (uint64_t)gone);
		CHECK_MSG(!json_object_get_boolean(JGET(x, "holder_alive")), "a dead holder shown alive");
		json_object *dl = JGET(t, "dead_timers");
		CHECK_EQ_U64(json_object_array_length(dl), 1);
		x = timer_named(dl, "d1");
		CHECK_MSG(x, "d1 is not a dead letter: %.2000s", r.out);
		CHECK(!strcmp(jstr(JGET(x, "state")), "dead"));
		CHECK(json_object_is_type(JGET(x, "holder"), json_type_null));
		CHECK_EQ_U64(ju64(JGET(x, "deliveries")), 1);
		json_object_put(o);
		run_free(&r);
	}

	/* Text: counts, next due, holders alive and dead. */
	const char *tx[] = { "--view", "timers", st.dir, NULL };
	run_expect(&r, 0, tx);
	CHECK_MSG(strstr(r.out, "== timers") && strstr(r.out, "2 pending, 2 claimed, 1 dead-lettered") &&
		  strstr(r.out, "next due 1970-01-01T00:00:01.000Z"), "timers view: %s", r.out);
	snprintf(pid_s, sizeof(pid_s), "holder %d (alive)", (int)live);
	CHECK_MSG(strstr(r.out, pid_s), "no '%s' in: %s", pid_s, r.out);
	snprintf(pid_s, sizeof(pid_s), "holder %d (DEAD", (int)gone);
	CHECK_MSG(strstr(r.out, pid_s), "no '%s' in: %s", pid_s, r.out);
	CHECK_MSG(strstr(r.out, "dead letters:") && strstr(r.out, "\"d1\""), "dead letters: %s", r.out);
	CHECK_MSG(!strstr(r.out, "== header"), "--view timers printed other views");
	run_free(&r);

	/* --timers: every timer with its payload; --limit cuts the list. */
	const char *all[] = { "--timers", "--json", st.dir, NULL };
	run_expect(&r, 0, all);
	json_object *o = parse_json(&r), *arr = JGET(o, "timers"), *x;
	CHECK_EQ_U64(ju64(JGET(o, "count")), 5);
	CHECK_EQ_U64(json_object_array_length(arr), 5);
	CHECK(!json_object_get_boolean(JGET(o, "truncated")));
	CHECK_EQ_U64(ju64(JGET(o, "stat", "pending")), 2);
	x = timer_named(arr, "p1");
	CHECK_MSG(x, "p1 not listed: %.2000s", r.out);
	CHECK_MSG(!strcmp(jstr(JGET(x, "payload_hex")), "700001ff0a"), "payload_hex %s", jstr(JGET(x, "payload_hex")));
	CHECK_MSG(!json_object_object_get_ex(x, "payload", NULL), "a binary payload given as text");
	CHECK_EQ_U64(ju64(JGET(x, "due_ms")), far);
	CHECK(!strcmp(jstr(JGET(x, "state")), "pending"));
	x = timer_named(arr, "p0");
	CHECK_MSG(x && !strcmp(jstr(JGET(x, "payload")), "old"), "p0's payload");
	json_object_put(o);
	run_free(&r);
	const char *lim[] = { "--timers", "--limit", "2", "--json", st.dir, NULL };
	run_expect(&r, 0, lim);
	o = parse_json(&r);
	CHECK_EQ_U64(ju64(JGET(o, "count")), 2);
	CHECK(json_object_get_boolean(JGET(o, "truncated")));
	json_object_put(o);
	run_free(&r);
	const char *lt[] = { "--timers", st.dir, NULL };
	run_expect(&r, 0, lt);
	CHECK_MSG(strstr(r.out, "5 timers") && strstr(r.out, "0x700001ff0a") && strstr(r.out, "\"orphan\""),
		  "--timers text: %s", r.out);
	run_free(&r);

	/* Usage errors. */
	const char *u1[] = { "--timers", "--keys", "jobs", st.dir, NULL };
	const char *u2[] = { "--view", "timers", "--limit", "3", st.dir, NULL };
	const char *u3[] = { "--view", "timer", st.dir, NULL };
	run_expect(&r, 2, u1);
	run_free(&r);
	run_expect(&r, 2, u2);
	run_free(&r);
	run_expect(&r, 2, u3);
	run_free(&r);

	/* A store without timers: zero counts and null next due. */
	CHECK(kill(live, SIGKILL) == 0);
	t_waitpid(live, &stv);
	memset(&ts, 0, sizeof(ts));
	t_store_destroy(&st);
	t_store_init(&st);
	t_store_open(&st);
	put_fixed(st.h);
	const char *e[] = { "--view", "timers", "--json", st.dir, NULL };
	run_expect(&r, 0, e);
	o = parse_json(&r);
	CHECK_EQ_U64(ju64(JGET(o, "timers", "pending")) + ju64(JGET(o, "timers", "claimed")) +
			     ju64(JGET(o, "timers", "dead")), 0);
	CHECK(json_object_is_type(JGET(o, "timers", "next_due_ms"), json_type_null));
	CHECK_EQ_U64(json_object_array_length(JGET(o, "timers", "claimed_timers")), 0);
	json_object_put(o);
	run_free(&r);
	CHECK_OK(keel_timer_stat(st.h, &ts));
	CHECK_EQ_U64(ts.pending, 0);
	t_store_destroy(&st);
	close(ready[0]);
	close(ready[1]);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	uint64_t seed = 0;
	int seed_given = 0;
	static const struct {
		const char *name;
		void (*fn)(void);
	} secs[] = {
		{ "live", sec_live },       { "locks", sec_locks },     { "damage", sec_damage },
		{ "hostile", sec_hostile }, { "journal", sec_journal }, { "noarena", sec_noarena },
		{ "timers", sec_timers },
	};
	int failed = 0;

	t_begin("test_dump");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc) {
			only = argv[++i];
		} else if (!strcmp(argv[i], "--seed")) {
			seed = t_parse_u64("--seed", i + 1 < argc ? argv[i + 1] : NULL);
			seed_given = 1;
			i++;
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: test_dump [--seed S] [--only live|locks|damage|hostile|journal|noarena|timers]\n"
			       "keel-dump against live, locked, damaged and hostile stores.  Exit: 0 pass, 1 fail.\n");
			return 0;
		} else {
			fprintf(stderr, "test_dump: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	if (access(KEEL_DUMP_BIN, X_OK) != 0) {
		printf("test_dump: SKIP: %s is not built\n", KEEL_DUMP_BIN);
		return T_EXIT_SKIP;
	}
	t_seed_init(seed_given, seed);
	for (size_t i = 0; i < sizeof(secs) / sizeof(secs[0]); i++)
		if (!only || !strcmp(only, secs[i].name))
			failed += !t_run_section(secs[i].name, secs[i].fn);
	if (failed) {
		printf("test_dump: FAIL (%d sections)\n", failed);
		return T_EXIT_FAIL;
	}
	printf("test_dump: PASS\n");
	return T_EXIT_PASS;
}
