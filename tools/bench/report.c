/*
 * report.c - the figures a run measured, the ratios between them, the
 * targets of DESIGN.md judged against them, and the output (text or JSON).
 *
 * A figure is one measured quantity with a dotted key "suite.peer.variant"
 * (e.g. "get.keel_get.1p", "sync.redis.50c", "mem.keel.bytes_per_entry"),
 * its samples (one per --runs) and their median.  Ratios and targets name
 * figures by key, so a suite that was not run, or a peer that is missing,
 * leaves a ratio out (null in JSON) and a target "n.a.", with a note that
 * says which figure was missing.  Nothing here measures anything.
 *
 * Verdicts: PASS when the measured value meets the limit, FAIL when it does
 * not, n.a. when it could not be judged (a figure is missing, or the run
 * used fewer keys than a target is stated for).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "bench.h"

#define NOTE_BYTES_MAX 320
#define ERRORS_MAX 32
#define ERROR_BYTES_MAX 1024

static struct bench_fig figs[BENCH_FIGURES_MAX];
static unsigned nfigs;
static char notes[BENCH_NOTES_MAX][NOTE_BYTES_MAX];
static unsigned nnotes;
static char errors[ERRORS_MAX][ERROR_BYTES_MAX];
static unsigned nerrors, errors_dropped;

/* ---- ratios and targets ------------------------------------------------------ */

struct ratio_def {
	const char *key;
	const char *label;
	const char *num;          /* figure keys */
	const char *den;
};

static const struct ratio_def ratio_defs[] = {
	{ "get.keel_get/raw.1p", "get 1 proc: keel_get / raw table", "get.keel_get.1p", "raw.get.1p" },
	{ "get.keel_read_get/raw.1p", "get 1 proc: keel_read_get / raw table", "get.keel_read_get.1p", "raw.get.1p" },
	{ "get.keel_get/lmdb.1p", "get 1 proc: keel_get / LMDB", "get.keel_get.1p", "get.lmdb.1p" },
	{ "get.keel_read_get/lmdb.1p", "get 1 proc: keel_read_get / LMDB", "get.keel_read_get.1p", "get.lmdb.1p" },
	{ "get.keel_get/raw.2p", "get 2 procs: keel_get / raw table", "get.keel_get.2p", "raw.get.2p" },
	{ "get.keel_get/lmdb.2p", "get 2 procs: keel_get / LMDB", "get.keel_get.2p", "get.lmdb.2p" },
	{ "get.keel_get_many/raw.1p", "get 1 proc: keel_get_many / raw table", "get.keel_get_many.1p", "raw.get.1p" },
	{ "get.keel_get_many/lmdb.1p", "get 1 proc: keel_get_many / LMDB", "get.keel_get_many.1p", "get.lmdb.1p" },
	{ "get.keel_get_many/keel_get.1p", "get 1 proc: keel_get_many / keel_get", "get.keel_get_many.1p", "get.keel_get.1p" },
	{ "get.keel_get.2p/1p", "get keel_get: 2 procs / 1 proc", "get.keel_get.2p", "get.keel_get.1p" },
	{ "get.keel_read_get.2p/1p", "get keel_read_get: 2 procs / 1 proc", "get.keel_read_get.2p", "get.keel_read_get.1p" },
	{ "raw.get.2p/1p", "get raw table: 2 procs / 1 proc", "raw.get.2p", "raw.get.1p" },
	{ "get.lmdb.2p/1p", "get LMDB: 2 procs / 1 proc", "get.lmdb.2p", "get.lmdb.1p" },
	{ "put.keel/lmdb.1p", "put 1 proc: keel memory / LMDB NOSYNC", "put.keel.1p", "put.lmdb.1p" },
	{ "put.keel/sqlite.1p", "put 1 proc: keel memory / SQLite NORMAL", "put.keel.1p", "put.sqlite.1p" },
	{ "put.keel/lmdb.2p", "put 2 procs: keel memory / LMDB NOSYNC", "put.keel.2p", "put.lmdb.2p" },
	{ "put.keel/sqlite.2p", "put 2 procs: keel memory / SQLite NORMAL", "put.keel.2p", "put.sqlite.2p" },
	{ "put.keel.2p/1p", "put keel memory: 2 procs / 1 proc", "put.keel.2p", "put.keel.1p" },
	{ "mem.keel/raw", "bytes per entry: keel / raw 116 B", "mem.keel.bytes_per_entry", "mem.raw.bytes_per_entry" },
	{ "sync.keel/raw_fdatasync.1p", "sync 1 committer: keel / raw fdatasync", "sync.keel.1p", "sync.raw_fdatasync.1p" },
	{ "sync.keel/lmdb.1p", "sync 1 committer: keel / LMDB", "sync.keel.1p", "sync.lmdb.1p" },
	{ "sync.keel/sqlite.1p", "sync 1 committer: keel / SQLite FULL", "sync.keel.1p", "sync.sqlite.1p" },
	{ "sync.keel.16p/1p", "sync keel: 16 committers / 1", "sync.keel.16p", "sync.keel.1p" },
	{ "sync.keel.16p/redis", "sync keel 16 committers / Redis", "sync.keel.16p", "sync.redis" },
	{ "timers.keel/raw.bytes", "timer bytes: keel / raw 56 B", "timers.keel.bytes_per_timer", "timers.raw.bytes_per_timer" },
	{ "timers.keel/redis.bytes", "timer bytes: keel / Redis (no payload)", "timers.keel.bytes_per_timer", "timers.redis.bytes_per_timer" },
	{ "timers.keel.set/redis.1c", "reschedule: keel 1 proc / Redis 1 client", "timers.keel.set.1p", "timers.redis.zadd.1c" },
	{ "timers.keel.set/redis.many", "reschedule: keel 1 proc / Redis many clients", "timers.keel.set.1p", "timers.redis.zadd.many" },
	{ "timers.keel.set.2p/1p", "reschedule keel: 2 procs / 1 proc", "timers.keel.set.2p", "timers.keel.set.1p" },
	{ "timers.keel.claim_ack/redis.1p", "claim+ack 1 proc: keel / Redis", "timers.keel.claim_ack.1p", "timers.redis.claim_ack.1c" },
	{ "timers.keel.claim_ack/redis.4p", "claim+ack 4 procs: keel / Redis", "timers.keel.claim_ack.4p", "timers.redis.claim_ack.4c" },
	{ "timers.keel.claim_ack.4p/1p", "claim+ack keel: 4 procs / 1 proc", "timers.keel.claim_ack.4p", "timers.keel.claim_ack.1p" },
	{ "timers.keel.late.p99/sleep", "lateness p99: keel waiter / plain sleeper", "timers.keel.late.p99_ms", "timers.sys.sleep_late.p99_ms" },
};

enum target_cmp { CMP_GE, CMP_LE };

struct target_def {
	const char *what;         /* the DESIGN.md row, in words */
	const char *ratio;        /* a ratio key, or NULL */
	const char *fig;          /* else a figure key, or NULL: not measured */
	int cmp;
	double limit;
	const char *unit;         /* of measured and limit */
	uint64_t keys_min;        /* judged only with at least this many keys */
	const char *why_na;       /* when neither ratio nor fig */
};

static const struct target_def target_defs[] = {
	{ "get, 1 process >= 0.8 x raw hash table", "get.keel_get/raw.1p", NULL, CMP_GE, 0.8, "x", 0, NULL },
	{ "get, 1 process >= 2.5 x LMDB", "get.keel_get/lmdb.1p", NULL, CMP_GE, 2.5, "x", 0, NULL },
	{ "get, 2 processes >= 1.7 x own 1-process rate", "get.keel_get.2p/1p", NULL, CMP_GE, 1.7, "x", 0, NULL },
	{ "put, memory mode, 1 process >= 1.5M/s", NULL, "put.keel.1p", CMP_GE, 1.5e6, "ops/s", 0, NULL },
	{ "sync commit, 1 committer >= 0.9 x raw fdatasync", "sync.keel/raw_fdatasync.1p", NULL, CMP_GE, 0.9, "x", 0, NULL },
	{ "sync commits, 16 committers >= 10 x own 1-committer", "sync.keel.16p/1p", NULL, CMP_GE, 10.0, "x", 0, NULL },
	{ "sync commits, 16 committers >= 1.5 x Redis", "sync.keel.16p/redis", NULL, CMP_GE, 1.5, "x", 0, NULL },
	{ "async put, 1 process >= 500k/s", NULL, "async.keel.1p", CMP_GE, 5e5, "ops/s", 0, NULL },
	{ "recovery of 1M keys <= 1 s", NULL, "recovery.keel.seconds", CMP_LE, 1.0, "s", 1000000, NULL },
	/* Timers: the set rates are stated with 1M timers pending. */
	{ "timers: set of new timers, 1M pending >= 500k/s", NULL, "timers.keel.set_new.1p", CMP_GE, 5e5, "ops/s", 1000000, NULL },
	{ "timers: reschedule, 1M pending >= 500k/s", NULL, "timers.keel.set.1p", CMP_GE, 5e5, "ops/s", 1000000, NULL },
	{ "timers: fire lateness p50 <= 2 ms", NULL, "timers.keel.late.p50_ms", CMP_LE, 2.0, "ms", 0, NULL },
	{ "timers: fire lateness p99 <= 2 ms", NULL, "timers.keel.late.p99_ms", CMP_LE, 2.0, "ms", 0, NULL },
	{ "timers: redelivery after SIGKILL (max) <= 100 ms", NULL, "timers.keel.redeliver.max_ms", CMP_LE, 100.0, "ms", 0, NULL },
	/* Fixed arena overhead (the commit ring, headers) is spread over N,
	 * so this is judged only at the N the target is stated for. */
	{ "arena bytes per entry <= 2 x raw (116 B)", "mem.keel/raw", NULL, CMP_LE, 2.0, "x", 1000000, NULL },
};

#define NRATIOS (sizeof(ratio_defs) / sizeof(ratio_defs[0]))
#define NTARGETS (sizeof(target_defs) / sizeof(target_defs[0]))

struct verdict {
	int have;                 /* measured is valid */
	double measured;
	const char *verdict;      /* "PASS", "FAIL", "n.a." */
	char note[160];
};

/* ---- figures, notes, errors ---------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int bench_fig_add(const char *key, const char *label, const char *unit,
		  const double *samples, unsigned n)
{
	struct bench_fig *f;
	double sorted[BENCH_RUNS_MAX];

	if (n == 0 || n > BENCH_RUNS_MAX)
		return bench_fail(KEEL_E_INVAL, "figure %s: %u samples (1..%u)", key, n,
				  BENCH_RUNS_MAX);
	if (bench_fig_get(key))
		return bench_fail(KEEL_E_STATE, "figure %s recorded twice", key);
	if (nfigs >= BENCH_FIGURES_MAX)
		return bench_fail(KEEL_E_LIMIT, "more than %u figures", BENCH_FIGURES_MAX);
	f = &figs[nfigs++];
	snprintf(f->key, sizeof(f->key), "%s", key);
	snprintf(f->label, sizeof(f->label), "%s", label);
	snprintf(f->unit, sizeof(f->unit), "%s", unit);
	memcpy(f->samples, samples, n * sizeof(double));
	f->nsamples = n;
	memcpy(sorted, samples, n * sizeof(double));
	qsort(sorted, n, sizeof(double), cmp_double);
	f->value = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
	return 0;
}

const struct bench_fig *bench_fig_get(const char *key)
{
	for (unsigned i = 0; i < nfigs; i++)
		if (strcmp(figs[i].key, key) == 0)
			return &figs[i];
	return NULL;
}

const char *bench_fmt_si(double v, char buf[32])
{
	double a = fabs(v);

	if (a >= 1e9)
		snprintf(buf, 32, "%.2fG", v / 1e9);
	else if (a >= 1e6)
		snprintf(buf, 32, "%.2fM", v / 1e6);
	else if (a >= 1e4)
		snprintf(buf, 32, "%.1fk", v / 1e3);
	else if (a >= 100)
		snprintf(buf, 32, "%.0f", v);
	else
		snprintf(buf, 32, "%.3g", v);
	return buf;
}

void bench_note(const char *fmt, ...)
{
	char buf[NOTE_BYTES_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	bench_progress("%s", buf);
	if (nnotes < BENCH_NOTES_MAX)
		memcpy(notes[nnotes++], buf, sizeof(buf));
}

void bench_error(const char *fmt, ...)
{
	char buf[ERROR_BYTES_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "keel-bench: error: %s\n", buf);
	if (nerrors < ERRORS_MAX)
		memcpy(errors[nerrors++], buf, sizeof(buf));
	else
		errors_dropped++;
}

int bench_error_count(void)
{
	return (int)(nerrors + errors_dropped);
}

/* ---- judging -------------------------------------------------------------------- */

/* The ratio, or 0 with *missing naming the absent figure. */
static int ratio_value(const struct ratio_def *r, double *out, const char **missing)
{
	const struct bench_fig *a = bench_fig_get(r->num), *b = bench_fig_get(r->den);

	if (!a || !b) {
		*missing = !a ? r->num : r->den;
		return 0;
	}
	if (!(b->value > 0)) {
		*missing = r->den;
		return 0;
	}
	*out = a->value / b->value;
	return 1;
}

static const struct ratio_def *ratio_find(const char *key)
{
	for (size_t i = 0; i < NRATIOS; i++)
		if (strcmp(ratio_defs[i].key, key) == 0)
			return &ratio_defs[i];
	return NULL;
}

static void judge(const struct target_def *t, struct verdict *v)
{
	const char *missing = NULL;

	memset(v, 0, sizeof(*v));
	v->verdict = "n.a.";
	if (t->ratio) {
		const struct ratio_def *r = ratio_find(t->ratio);

		v->have = r && ratio_value(r, &v->measured, &missing);
	} else if (t->fig) {
		const struct bench_fig *f = bench_fig_get(t->fig);

		v->have = f != NULL;
		if (f)
			v->measured = f->value;
		else
			missing = t->fig;
	}
	if (!t->ratio && !t->fig) {
		snprintf(v->note, sizeof(v->note), "%s", t->why_na);
		return;
	}
	if (!v->have) {
		snprintf(v->note, sizeof(v->note), "no figure %s (suite not run or peer missing)",
			 missing ? missing : "?");
		return;
	}
	if (bench_cfg.keys < t->keys_min) {
		snprintf(v->note, sizeof(v->note), "measured with %llu keys; the target is stated "
			 "for %llu", (unsigned long long)bench_cfg.keys,
			 (unsigned long long)t->keys_min);
		return;
	}
	if (t->cmp == CMP_GE)
		v->verdict = v->measured >= t->limit ? "PASS" : "FAIL";
	else
		v->verdict = v->measured <= t->limit ? "PASS" : "FAIL";
}

/* ---- text output ------------------------------------------------------------------ */

static void fmt_value(double v, const char *unit, char *buf, size_t cap)
{
	char si[32];

	if (strcmp(unit, "ops/s") == 0)
		snprintf(buf, cap, "%s ops/s", bench_fmt_si(v, si));
	else if (strcmp(unit, "1/s") == 0)
		snprintf(buf, cap, "%s /s", bench_fmt_si(v, si));
	else if (strcmp(unit, "x") == 0)
		snprintf(buf, cap, "%.2f x", v);
	else if (strcmp(unit, "s") == 0)
		snprintf(buf, cap, "%.3f s", v);
	else if (strcmp(unit, "us") == 0)
		snprintf(buf, cap, "%.0f us", v);
	else if (strcmp(unit, "ms") == 0)
		snprintf(buf, cap, "%.3f ms", v);
	else if (strcmp(unit, "B") == 0)
		snprintf(buf, cap, "%s B", bench_fmt_si(v, si));
	else
		snprintf(buf, cap, "%.1f %s", v, unit);
}

static void print_text(const char *const *suites, unsigned nsuites, const struct verdict *vs)
{
	char a[48], b[48], c[48];

	printf("keel-bench: %llu keys of %u B, values of %u B, seed %llu, %u run%s of %.2f s "
	       "per phase (median)\n", (unsigned long long)bench_cfg.keys, BENCH_KEY_BYTES,
	       BENCH_VALUE_BYTES, (unsigned long long)bench_cfg.seed, bench_cfg.runs,
	       bench_cfg.runs == 1 ? "" : "s", bench_cfg.duration_s);
	printf("suites:");
	for (unsigned i = 0; i < nsuites; i++)
		printf(" %s", suites[i]);
	printf("\n\nFigures\n");
	printf("  %-32s %-50s %16s  %s\n", "key", "what", "median", "min .. max");
	for (unsigned i = 0; i < nfigs; i++) {
		const struct bench_fig *f = &figs[i];
		double lo = f->samples[0], hi = f->samples[0];

		for (unsigned j = 1; j < f->nsamples; j++) {
			lo = fmin(lo, f->samples[j]);
			hi = fmax(hi, f->samples[j]);
		}
		fmt_value(f->value, f->unit, a, sizeof(a));
		if (f->nsamples > 1) {
			fmt_value(lo, f->unit, b, sizeof(b));
			fmt_value(hi, f->unit, c, sizeof(c));
			printf("  %-32s %-50s %16s  %s .. %s\n", f->key, f->label, a, b, c);
		} else {
			printf("  %-32s %-50s %16s\n", f->key, f->label, a);
		}
	}
	printf("\nRatios\n");
	for (size_t i = 0; i < NRATIOS; i++) {
		const char *missing;
		double r;

		if (ratio_value(&ratio_defs[i], &r, &missing))
			printf("  %-46s %8.2f\n", ratio_defs[i].label, r);
	}
	printf("\nTargets (DESIGN.md)\n");
	printf("  %-54s %16s %12s  %s\n", "target", "measured", "limit", "verdict");
	for (size_t i = 0; i < NTARGETS; i++) {
		const struct target_def *t = &target_defs[i];

		if (vs[i].have)
			fmt_value(vs[i].measured, t->unit, a, sizeof(a));
		else
			snprintf(a, sizeof(a), "-");
		fmt_value(t->limit, t->unit, b, sizeof(b));
		if (vs[i].note[0])
			printf("  %-54s %16s %12s  %-4s  (%s)\n", t->what, a, b, vs[i].verdict,
			       vs[i].note);
		else
			printf("  %-54s %16s %12s  %s\n", t->what, a, b, vs[i].verdict);
	}
	if (nnotes) {
		printf("\nNotes\n");
		for (unsigned i = 0; i < nnotes; i++)
			printf("  %s\n", notes[i]);
	}
	if (nerrors) {
		printf("\nErrors\n");
		for (unsigned i = 0; i < nerrors; i++)
			printf("  %s\n", errors[i]);
		if (errors_dropped)
			printf("  (%u more)\n", errors_dropped);
	}
}

/* ---- JSON output --------------------------------------------------------------------- */

static int json_add(json_object *o, const char *k, json_object *v)
{
	if (!v)
		return KEEL_E_NOMEM;
	return json_object_object_add(o, k, v) == 0 ? 0 : KEEL_E_NOMEM;
}

static int arr_add(json_object *a, json_object *v)
{
	if (!v)
		return KEEL_E_NOMEM;
	return json_object_array_add(a, v) == 0 ? 0 : KEEL_E_NOMEM;
}

static json_object *json_config(const char *const *suites, unsigned nsuites)
{
	json_object *c = json_object_new_object(), *s = json_object_new_array();
	int rc = 0;

	if (!c || !s) {
		json_object_put(c);
		json_object_put(s);
		return NULL;
	}
	for (unsigned i = 0; i < nsuites && !rc; i++)
		rc = arr_add(s, json_object_new_string(suites[i]));
	rc = rc ? rc : json_add(c, "keys", json_object_new_uint64(bench_cfg.keys));
	rc = rc ? rc : json_add(c, "key_bytes", json_object_new_int(BENCH_KEY_BYTES));
	rc = rc ? rc : json_add(c, "value_bytes", json_object_new_int(BENCH_VALUE_BYTES));
	rc = rc ? rc : json_add(c, "seed", json_object_new_uint64(bench_cfg.seed));
	rc = rc ? rc : json_add(c, "runs", json_object_new_int((int)bench_cfg.runs));
	rc = rc ? rc : json_add(c, "duration_s", json_object_new_double(bench_cfg.duration_s));
	rc = rc ? rc : json_add(c, "quick", json_object_new_boolean(bench_cfg.quick));
	rc = rc ? rc : json_add(c, "redis_clients", json_object_new_int((int)bench_cfg.redis_clients));
	rc = rc ? rc : json_add(c, "dir", json_object_new_string(bench_cfg.dir_parent));
	if (rc) {
		json_object_put(s);
		json_object_put(c);
		return NULL;
	}
	if (json_add(c, "suites", s)) {
		json_object_put(c);
		return NULL;
	}
	return c;
}

static json_object *json_figures(void)
{
	json_object *all = json_object_new_object();

	if (!all)
		return NULL;
	for (unsigned i = 0; i < nfigs; i++) {
		const struct bench_fig *f = &figs[i];
		json_object *o = json_object_new_object(), *s = json_object_new_array();
		int rc = (o && s) ? 0 : KEEL_E_NOMEM;

		for (unsigned j = 0; j < f->nsamples && !rc; j++)
			rc = arr_add(s, json_object_new_double(f->samples[j]));
		rc = rc ? rc : json_add(o, "label", json_object_new_string(f->label));
		rc = rc ? rc : json_add(o, "unit", json_object_new_string(f->unit));
		rc = rc ? rc : json_add(o, "value", json_object_new_double(f->value));
		if (!rc)
			rc = json_add(o, "samples", s);
		else
			json_object_put(s);
		if (!rc)
			rc = json_add(all, f->key, o);
		else
			json_object_put(o);
		if (rc) {
			json_object_put(all);
			return NULL;
		}
	}
	return all;
}

static json_object *json_ratios(void)
{
	json_object *all = json_object_new_object();

	if (!all)
		return NULL;
	for (size_t i = 0; i < NRATIOS; i++) {
		const char *missing;
		double r;
		int rc;

		if (ratio_value(&ratio_defs[i], &r, &missing))
			rc = json_add(all, ratio_defs[i].key, json_object_new_double(r));
		else
			rc = json_object_object_add(all, ratio_defs[i].key, NULL) ? KEEL_E_NOMEM : 0;
		if (rc) {
			json_object_put(all);
			return NULL;
		}
	}
	return all;
}

static json_object *json_targets(const struct verdict *vs)
{
	json_object *all = json_object_new_array();

	if (!all)
		return NULL;
	for (size_t i = 0; i < NTARGETS; i++) {
		const struct target_def *t = &target_defs[i];
		json_object *o = json_object_new_object();
		int rc = o ? 0 : KEEL_E_NOMEM;

		rc = rc ? rc : json_add(o, "target", json_object_new_string(t->what));
		rc = rc ? rc : json_add(o, "measure", json_object_new_string(
			t->ratio ? t->ratio : t->fig ? t->fig : ""));
		if (!rc && vs[i].have)
			rc = json_add(o, "measured", json_object_new_double(vs[i].measured));
		else if (!rc)
			rc = json_object_object_add(o, "measured", NULL) ? KEEL_E_NOMEM : 0;
		rc = rc ? rc : json_add(o, "cmp", json_object_new_string(
			t->cmp == CMP_GE ? ">=" : "<="));
		rc = rc ? rc : json_add(o, "limit", json_object_new_double(t->limit));
		rc = rc ? rc : json_add(o, "unit", json_object_new_string(t->unit));
		rc = rc ? rc : json_add(o, "verdict", json_object_new_string(vs[i].verdict));
		rc = rc ? rc : json_add(o, "note", json_object_new_string(vs[i].note));
		if (!rc)
			rc = arr_add(all, o);
		else
			json_object_put(o);
		if (rc) {
			json_object_put(all);
			return NULL;
		}
	}
	return all;
}

static json_object *json_strings(char (*list)[NOTE_BYTES_MAX], unsigned n)
{
	json_object *a = json_object_new_array();

	for (unsigned i = 0; a && i < n; i++)
		if (arr_add(a, json_object_new_string(list[i]))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

static json_object *json_errors(void)
{
	json_object *a = json_object_new_array();

	for (unsigned i = 0; a && i < nerrors; i++)
		if (arr_add(a, json_object_new_string(errors[i]))) {
			json_object_put(a);
			return NULL;
		}
	return a;
}

static int print_json(const char *const *suites, unsigned nsuites, const struct verdict *vs,
		      unsigned fails)
{
	json_object *root = json_object_new_object();
	int rc = root ? 0 : KEEL_E_NOMEM;

	rc = rc ? rc : json_add(root, "tool", json_object_new_string("keel-bench"));
	rc = rc ? rc : json_add(root, "schema_version", json_object_new_int(1));
	rc = rc ? rc : json_add(root, "config", json_config(suites, nsuites));
	rc = rc ? rc : json_add(root, "figures", json_figures());
	rc = rc ? rc : json_add(root, "ratios", json_ratios());
	rc = rc ? rc : json_add(root, "targets", json_targets(vs));
	rc = rc ? rc : json_add(root, "target_fails", json_object_new_int((int)fails));
	rc = rc ? rc : json_add(root, "notes", json_strings(notes, nnotes));
	rc = rc ? rc : json_add(root, "errors", json_errors());
	rc = rc ? rc : json_add(root, "ok", json_object_new_boolean(bench_error_count() == 0));
	if (!rc) {
		const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
							       JSON_C_TO_STRING_NOSLASHESCAPE);

		if (!s || fputs(s, stdout) == EOF || fputc('\n', stdout) == EOF)
			rc = bench_fail(KEEL_E_OS, "writing the JSON document: %s", strerror(errno));
	} else {
		bench_fail(rc, "building the JSON document: out of memory");
	}
	json_object_put(root);
	return rc;
}

int bench_report(const char *const *suites, unsigned nsuites, unsigned *fails)
{
	struct verdict vs[NTARGETS];
	int rc = 0;

	*fails = 0;
	for (size_t i = 0; i < NTARGETS; i++) {
		judge(&target_defs[i], &vs[i]);
		*fails += strcmp(vs[i].verdict, "FAIL") == 0;
	}
	if (bench_cfg.json)
		rc = print_json(suites, nsuites, vs, *fails);
	else
		print_text(suites, nsuites, vs);
	if (fflush(stdout) != 0 && !rc)
		rc = bench_fail(KEEL_E_OS, "writing the report: %s", strerror(errno));
	return rc;
}
