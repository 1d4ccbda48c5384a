/*
 * keel-dump.c - look inside a live Keel store, and check its structures.
 *
 * keel-dump attaches to the arena of a store read-only (KEEL_OPEN_READONLY |
 * KEEL_OPEN_NOCREATE) and prints what lib/keel.h's inspection section
 * reports: the header, the attached processes, the locks, the partitions,
 * the allocator, the journal and the timers.  Those views take no lock (the
 * timers view excepted: keel_timers and keel_timer_stat hold the timers'
 * lock for the walk) and write nothing to the arena, so workers go on at
 * full speed while it runs; the figures are a racy picture of a moving
 * store.  It refuses to run on a store whose arena does not exist rather
 * than let the open create or rebuild one: for a durable store that nobody
 * has open, `keel-dump --journal` reads the journal alone.  It never crashes on a damaged arena or journal: every
 * view is bounds-checked in the library.
 *
 * Modes (one at a time):
 *   (none)             the views: header, processes, locks, partitions,
 *                      allocator, journal, timers (--view picks some)
 *   --keys PARTITION   the entries of one partition
 *   --timers           every timer: state, due time, holder, lease, payload
 *   --journal          the decoded journal records (--from LSN)
 *   --check            keel_check, the structural audit the tests use
 *
 * Exit statuses (stable; printed by --help):
 *   0      success; with --check: the store is sound
 *   1      damage found: --check reported problems, or --journal met a
 *          damaged journal (the place is named on stderr and in --json)
 *   2      usage error
 *   3      failure outside the store (writing the output)
 *   3 + N  the store returned -N (a KEEL_E_* code), as for the keel CLI:
 *          5 KEEL_E_NOTFOUND (no such store, arena or partition), 15
 *          KEEL_E_ATTACH, 16 KEEL_E_LAYOUT, 17 KEEL_E_PERM, 19
 *          KEEL_E_CORRUPT (refused at attach), ...; past 122: 125
 *
 * JSON schema "keel-dump/1" (--json; one object on stdout)
 * ---------------------------------------------------------
 * Fields are added, never renamed or removed, within a schema version.
 * Integers are JSON numbers (LSNs, byte counts, nanoseconds); byte strings
 * follow the keel CLI's rule: NAME when the bytes are UTF-8 text without NUL,
 * and NAME_hex always.
 *
 * Views (default mode); a view left out by --view is absent:
 *   { "schema": "keel-dump/1", "store": DIR,
 *     "header": { arena_path, format_version, hdr_bytes, layout_sig (hex
 *        string), arena_uuid, store_uuid (hex string, null in memory mode),
 *        pidns {dev, ino}, file_mode (octal string), ready, created_ns,
 *        arena_bytes, arena_bytes_max, heap_top, regions {procs_off,
 *        readers_off, user_off, user_bytes, ring_off, heap_off}, procs_hi,
 *        readers_hi, reaps, durability ("memory"|"async"|"sync"),
 *        journaled, failed (null|"KEEL_E_IO"|"KEEL_E_NOSPC"), partitions,
 *        ring {bytes, head, applied_pos, durable_pos, tail, used_bytes},
 *        lsn {next, applied, durable, checkpoint, visible_seq, visible_lsn},
 *        reclaim_gen, journal {bytes, checkpoint_bytes, last_flush_age_ns,
 *        checkpoint_pid}, counters {commits, flushes, repairs, voided,
 *        redone} },
 *     "processes": [ { slot, pid, alive, self, start_time, attach_ns,
 *        reader_slots, readers_pinned, oldest_snapshot, reader_lag,
 *        locks_held, rsv_lsn } ],
 *     "locks": { total, free, held, dead, list: [ { name, partition (null
 *        for store-wide locks), state ("held"|"dead"), holder_pid,
 *        holder_tid, acquisitions, repairs } ] }   (free locks not listed),
 *     "partitions": [ { id, name, ready, keys, bytes, buckets, load_factor,
 *        retired, arena_bytes, pages, created_lsn,
 *        last_lsn, applying_lsn, lock_holder_pid } ],
 *     "allocator": { page_bytes, heap_off, heap_top, headroom_bytes, pages
 *        {total, free, meta, slab, large}, free_runs, free_run_pages_max,
 *        walk_stopped_at, counted_free_pages, counted_used_pages,
 *        reserve_pages, slab_bytes, slab_bytes_free, large_bytes,
 *        used_bytes, frag_slab, frag_pages, free_list_bad, classes: [ {
 *        class, size, blocks_per_page, pages, blocks_free, bytes_free } ]
 *        (classes with pages only) },
 *     "journal": { journaled, lsn {next, applied, durable, checkpoint},
 *        segments: [ { segno, name, state ("used"|"spare"|"stale"|
 *        "damaged"|"alien"|"lost"), first_lsn, file_bytes, seg_bytes,
 *        zeroed, note } ], error (null or the message) },
 *     "timers": { pending, claimed, dead, next_due_ms (null: none pending),
 *        next_due (RFC 3339 UTC, or null), claims, redelivered,
 *        dead_lettered, claimed_timers: [ TIMER ], dead_timers: [ TIMER ],
 *        truncated (a list was cut at 50 entries), error (null, or why the
 *        timers could not be read) } }
 *   TIMER: { partition, key, key_hex, state ("pending"|"claimed"|"dead"),
 *     due_ms, due, deliveries, holder (pid; null unless claimed),
 *     holder_alive (null unless claimed), lease_left_ms (null unless
 *     claimed; below 0: ran out), payload_bytes }
 * --timers:
 *   { schema, store, stat: { pending, claimed, dead, next_due_ms, next_due,
 *     claims, redelivered, dead_lettered }, timers: [ TIMER and payload,
 *     payload_hex ], count, truncated }
 * --keys:
 *   { schema, store, partition, entries: [ { key, key_hex, value, value_hex,
 *     value_bytes, version, mtime_ns, lsn } ], count, truncated }
 * --journal:
 *   { schema, store, from_lsn, records: [ { lsn, state ("commit"|"void"|
 *     "damaged"), problem (damaged only), pid, durability, mtime_ns, bytes,
 *     partitions: [id], nops, ops: [ { type ("put"|"del"|"clear"|"create"|
 *     "unknown"), partition, partition_name (when known), version, key,
 *     key_hex, key_bytes, value_bytes } ] } ], truncated, summary: { status
 *     ("ok"|"damaged"), end ("clean"|"torn"), records, first_lsn, last_lsn,
 *     next_lsn, message }, error (null, or why the scan failed) }
 * --check:
 *   { schema, store, sound, count, problems: [ { where, what } ], error
 *     (null, or why the check could not run) }
 *
 * The program's logic is keel_dump_main(), so the fuzz test can run it in
 * a process of its own many times (built with KEEL_DUMP_NO_MAIN).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keel.h"

#define SCHEMA "keel-dump/1"

enum {
	EXIT_SOUND = 0,
	EXIT_DAMAGE = 1,
	EXIT_USAGE = 2,
	EXIT_LOCAL = 3,
	EXIT_STORE_BASE = 3,    /* store error -N exits with 3 + N */
	EXIT_STORE_MAX = 125,
};

enum view {
	V_HEADER = 1u << 0,
	V_PROCS = 1u << 1,
	V_LOCKS = 1u << 2,
	V_PARTS = 1u << 3,
	V_ALLOC = 1u << 4,
	V_JOURNAL = 1u << 5,
	V_TIMERS = 1u << 6,
	V_ALL = (1u << 7) - 1,
};

static const struct {
	const char *name;
	unsigned bit;
} view_names[] = {
	{ "header", V_HEADER }, { "processes", V_PROCS },   { "locks", V_LOCKS },
	{ "partitions", V_PARTS }, { "allocator", V_ALLOC }, { "journal", V_JOURNAL },
	{ "timers", V_TIMERS },
};

enum mode { M_VIEWS = 0, M_KEYS, M_JOURNAL, M_CHECK, M_TIMERS };

#define VALUE_SHOW_MAX 96u     /* text mode: value bytes shown before "..." */
#define TIMERS_SHOWN_MAX 50u   /* timers view: claimed and dead timers listed, each */

struct dump {
	const char *store;
	const char *arena_path;
	const char *keys_part;
	int mode;
	int json;
	unsigned views;
	uint64_t from_lsn;
	uint64_t limit;          /* entries or records; 0 = all */
	keel_t *h;
	json_object *out;        /* the JSON document (--json) */
	int ran;                 /* the mode ran (the store opened, or the journal mode began) */
	int damaged;             /* --check or --journal found damage: exit 1 */
	int help;                /* --help was shown */
	/* partition names by id, for the journal view */
	char **names;
	uint32_t nnames;
};

/* ---- messages and formatting ----------------------------------------------------------- */

static int store_fail(const char *what, int rc)
{
	const char *msg = keel_errmsg();
	fprintf(stderr, "keel-dump: %s: %s%s%s\n", what, keel_strerror(rc), msg && msg[0] ? ": " : "",
		msg ? msg : "");
	return rc;
}

static int exit_for(int rc)
{
	if (rc >= 0)
		return EXIT_SOUND;
	long s = EXIT_STORE_BASE + (long)-rc;
	return s > EXIT_STORE_MAX ? EXIT_STORE_MAX : (int)s;
}

static const char *durability_name(int d)
{
	switch (d) {
	case KEEL_DURABILITY_MEMORY: return "memory";
	case KEEL_DURABILITY_ASYNC: return "async";
	case KEEL_DURABILITY_SYNC: return "sync";
	case KEEL_DURABILITY_DEFAULT: return "default";
	}
	return "unknown";
}

static const char *lock_state_name(int s)
{
	return s == KEEL_LOCK_HELD ? "held" : s == KEEL_LOCK_DEAD ? "dead" : "free";
}

static const char *segment_state_name(int s)
{
	switch (s) {
	case KEEL_SEGMENT_USED: return "used";
	case KEEL_SEGMENT_SPARE: return "spare";
	case KEEL_SEGMENT_STALE: return "stale";
	case KEEL_SEGMENT_DAMAGED: return "damaged";
	case KEEL_SEGMENT_ALIEN: return "alien";
	case KEEL_SEGMENT_LOST: return "lost";
	}
	return "unknown";
}

static const char *op_name(int t)
{
	switch (t) {
	case KEEL_JOP_PUT: return "put";
	case KEEL_JOP_DEL: return "del";
	case KEEL_JOP_CLEAR: return "clear";
	case KEEL_JOP_CREATE: return "create";
	}
	return "unknown";
}

/* "12.0 MiB" */
static const char *human(char *buf, size_t cap, uint64_t n)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024.0 && u < 4) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, cap, "%" PRIu64 " B", n);
	else
		snprintf(buf, cap, "%.1f %s", v, units[u]);
	return buf;
}

/* Wall-clock nanoseconds as "2024-05-01T12:00:00.123Z". */
static const char *iso_time(char *buf, size_t cap, uint64_t ns)
{
	time_t s = (time_t)(ns / 1000000000ull);
	struct tm tm;

	if (!ns || !gmtime_r(&s, &tm)) {
		snprintf(buf, cap, "-");
		return buf;
	}
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ns / 1000000ull % 1000));
	return buf;
}

static void hex_of(char *dst, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[p[i] >> 4];
		dst[2 * i + 1] = digits[p[i] & 15];
	}
	dst[2 * n] = 0;
}

/* 1 if p[0..n) is valid UTF-8 without NUL (JSON can carry it as a string). */
static int is_utf8_text(const uint8_t *b, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t x = b[i];
		size_t more;
		uint32_t cp, min;

		if (x == 0)
			return 0;
		if (x < 0x80) {
			i++;
			continue;
		}
		if (x >= 0xc2 && x <= 0xdf) {
			more = 1, cp = x & 0x1f, min = 0x80;
		} else if (x >= 0xe0 && x <= 0xef) {
			more = 2, cp = x & 0x0f, min = 0x800;
		} else if (x >= 0xf0 && x <= 0xf4) {
			more = 3, cp = x & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i <= more)
			return 0;
		for (size_t k = 1; k <= more; k++) {
			if ((b[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (b[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

/* Text for a terminal: printable ASCII, tab/newline/CR, and UTF-8. */
static int is_display_text(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((b[i] < 0x20 && b[i] != '\t' && b[i] != '\n' && b[i] != '\r') || b[i] == 0x7f)
			return 0;
	return is_utf8_text(b, n);
}

/* Bytes as the text views show them: "quoted text" with \n \t \r \\ \"
 * escaped when they are text, else 0xHEX; at most `max` bytes shown. */
static void print_bytes(FILE *f, const void *p, size_t n, size_t max)
{
	const uint8_t *b = p;
	size_t show = n < max ? n : max;

	if (is_display_text(b, n)) {
		/* Do not cut a UTF-8 sequence in two. */
		while (show < n && show > 0 && (b[show] & 0xc0) == 0x80)
			show--;
		fputc('"', f);
		for (size_t i = 0; i < show; i++) {
			switch (b[i]) {
			case '\n': fputs("\\n", f); break;
			case '\t': fputs("\\t", f); break;
			case '\r': fputs("\\r", f); break;
			case '\\': fputs("\\\\", f); break;
			case '"': fputs("\\\"", f); break;
			default: fputc(b[i], f);
			}
		}
		fputc('"', f);
	} else {
		fputs("0x", f);
		for (size_t i = 0; i < show; i++)
			fprintf(f, "%02x", b[i]);
	}
	if (show < n)
		fprintf(f, "...(%zu bytes)", n);
}

/* NAME when text, NAME_hex always (the keel CLI's rule). */
static int json_add_bytes(json_object *o, const char *name, const void *p, size_t n)
{
	char hexname[64];
	char *hex;

	if (n > INT32_MAX / 2)
		return KEEL_E_LIMIT;
	if (is_utf8_text(p, n))
		json_object_object_add(o, name, json_object_new_string_len(n ? p : "", (int)n));
	hex = malloc(2 * n + 1);
	if (!hex)
		return KEEL_E_NOMEM;
	hex_of(hex, p, n);
	snprintf(hexname, sizeof(hexname), "%s_hex", name);
	json_object_object_add(o, hexname, json_object_new_string(hex));
	free(hex);
	return 0;
}

static void jadd_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jadd_i64(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void jadd_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void jadd_bool(json_object *o, const char *k, int v)
{
	json_object_object_add(o, k, json_object_new_boolean(v != 0));
}

static void jadd_double(json_object *o, const char *k, double v)
{
	json_object_object_add(o, k, json_object_new_double(v));
}

/* ---- opening --------------------------------------------------------------------------- */

/* Attach read-only to the arena of an existing store.  The open would
 * rebuild a missing arena of a durable store from its journal; keel-dump
 * refuses instead, so it never creates anything. */
static int open_store(struct dump *d)
{
	keel_options_t o;
	char path[4096];
	struct stat sb;
	int rc;

	keel_options_init(&o);
	o.flags = KEEL_OPEN_READONLY | KEEL_OPEN_NOCREATE;
	o.arena_path = d->arena_path;
	if (stat(d->store, &sb) != 0) {
		fprintf(stderr, "keel-dump: store directory %s: %s\n", d->store, strerror(errno));
		return KEEL_E_NOTFOUND;
	}
	if ((rc = keel_arena_path(d->store, &o, path, sizeof(path))))
		return store_fail(d->store, rc);
	if (lstat(path, &sb) != 0) {
		fprintf(stderr, "keel-dump: %s: no arena at %s (%s): no process has the store open. "
			"keel-dump reads a live arena and does not create one; `keel-dump --journal %s` "
			"reads the journal of a durable store alone\n",
			d->store, path, strerror(errno), d->store);
		return KEEL_E_NOTFOUND;
	}
	if ((rc = keel_open(d->store, &o, &d->h)))
		return store_fail(d->store, rc);
	return 0;
}

/* ---- view: header ------------------------------------------------------------------------ */

static void uuid_hex(char *dst, const uint8_t u[16])
{
	hex_of(dst, u, 16);
}

static int uuid_zero(const uint8_t u[16])
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return 0;
	return 1;
}

static const char *failed_name(int f)
{
	return f == 0 ? NULL : f == KEEL_E_IO ? "KEEL_E_IO" : f == KEEL_E_NOSPC ? "KEEL_E_NOSPC" : "unknown";
}

static int view_header(struct dump *d)
{
	keel_inspect_header_t x;
	char au[33], su[33], b1[32], b2[32], b3[32], t[40];
	int rc = keel_inspect_header(d->h, &x);

	if (rc)
		return store_fail("header", rc);
	uuid_hex(au, x.arena_uuid);
	uuid_hex(su, x.store_uuid);
	uint64_t ring_used = x.ring_head >= x.ring_tail ? x.ring_head - x.ring_tail : 0;
	if (d->json) {
		json_object *o = json_object_new_object(), *sub;
		char s[64];
		jadd_str(o, "arena_path", x.arena_path);
		jadd_u64(o, "format_version", x.format_version);
		jadd_u64(o, "hdr_bytes", x.hdr_bytes);
		snprintf(s, sizeof(s), "0x%016" PRIx64, x.layout_sig);
		jadd_str(o, "layout_sig", s);
		jadd_str(o, "arena_uuid", au);
		jadd_str(o, "store_uuid", x.journaled ? su : NULL);
		sub = json_object_new_object();
		jadd_u64(sub, "dev", x.pidns_dev);
		jadd_u64(sub, "ino", x.pidns_ino);
		json_object_object_add(o, "pidns", sub);
		snprintf(s, sizeof(s), "0%03o", x.file_mode & 0777);
		jadd_str(o, "file_mode", s);
		jadd_bool(o, "ready", x.ready);
		jadd_u64(o, "created_ns", x.created_ns);
		jadd_u64(o, "arena_bytes", x.arena_bytes);
		jadd_u64(o, "arena_bytes_max", x.arena_bytes_max);
		jadd_u64(o, "heap_top", x.heap_top);
		sub = json_object_new_object();
		jadd_u64(sub, "procs_off", x.procs_off);
		jadd_u64(sub, "readers_off", x.readers_off);
		jadd_u64(sub, "user_off", x.user_off);
		jadd_u64(sub, "user_bytes", x.user_bytes);
		jadd_u64(sub, "ring_off", x.ring_off);
		jadd_u64(sub, "heap_off", x.heap_off);
		json_object_object_add(o, "regions", sub);
		jadd_u64(o, "procs_hi", x.procs_hi);
		jadd_u64(o, "readers_hi", x.readers_hi);
		jadd_u64(o, "reaps", x.reaps);
		jadd_str(o, "durability", durability_name(x.durability));
		jadd_bool(o, "journaled", x.journaled);
		jadd_str(o, "failed", failed_name(x.failed));
		jadd_u64(o, "partitions", x.partitions);
		sub = json_object_new_object();
		jadd_u64(sub, "bytes", x.ring_bytes);
		jadd_u64(sub, "head", x.ring_head);
		jadd_u64(sub, "applied_pos", x.ring_applied_pos);
		jadd_u64(sub, "durable_pos", x.ring_durable_pos);
		jadd_u64(sub, "tail", x.ring_tail);
		jadd_u64(sub, "used_bytes", ring_used);
		json_object_object_add(o, "ring", sub);
		sub = json_object_new_object();
		jadd_u64(sub, "next", x.next_lsn);
		jadd_u64(sub, "applied", x.applied_lsn);
		jadd_u64(sub, "durable", x.durable_lsn);
		jadd_u64(sub, "checkpoint", x.checkpoint_lsn);
		jadd_u64(sub, "visible_seq", x.visible_seq);
		jadd_u64(sub, "visible_lsn", x.visible_lsn);
		json_object_object_add(o, "lsn", sub);
		jadd_u64(o, "reclaim_gen", x.reclaim_gen);
		sub = json_object_new_object();
		jadd_u64(sub, "bytes", x.journal_bytes);
		jadd_u64(sub, "checkpoint_bytes", x.checkpoint_journal_bytes);
		jadd_u64(sub, "last_flush_age_ns", x.last_flush_age_ns);
		jadd_u64(sub, "checkpoint_pid", x.checkpoint_pid);
		json_object_object_add(o, "journal", sub);
		sub = json_object_new_object();
		jadd_u64(sub, "commits", x.commits);
		jadd_u64(sub, "flushes", x.flushes);
		jadd_u64(sub, "repairs", x.repairs);
		jadd_u64(sub, "voided", x.voided);
		jadd_u64(sub, "redone", x.redone);
		json_object_object_add(o, "counters", sub);
		json_object_object_add(d->out, "header", o);
		return 0;
	}
	printf("== header\n");
	printf("arena        %s (format %u, layout signature %016" PRIx64 ", header %u B, %s)\n",
	       x.arena_path, x.format_version, x.layout_sig, x.hdr_bytes, x.ready ? "ready" : "NOT READY");
	printf("identity     arena %s, store %s, PID namespace %" PRIu64 ":%" PRIu64 ", mode 0%03o\n", au,
	       x.journaled && !uuid_zero(x.store_uuid) ? su : "(memory mode)", x.pidns_dev, x.pidns_ino,
	       x.file_mode & 0777);
	printf("size         %s of %s maximum; heap top %s; created %s\n", human(b1, sizeof(b1), x.arena_bytes),
	       human(b2, sizeof(b2), x.arena_bytes_max), human(b3, sizeof(b3), x.heap_top),
	       iso_time(t, sizeof(t), x.created_ns));
	printf("store        durability %s%s, %u partitions, %s\n", durability_name(x.durability),
	       x.journaled ? " (journaled)" : "", x.partitions,
	       x.failed ? (x.failed == KEEL_E_IO ? "FAILED after a journal I/O error (reopen to recover)"
						 : "FAILED: journal disk full")
			: "healthy");
	printf("ring         %s: head %" PRIu64 ", applied %" PRIu64 ", durable %" PRIu64 ", tail %" PRIu64
	       " (%s in use)\n",
	       human(b1, sizeof(b1), x.ring_bytes), x.ring_head, x.ring_applied_pos, x.ring_durable_pos,
	       x.ring_tail, human(b2, sizeof(b2), ring_used));
	printf("lsn          next %" PRIu64 ", applied %" PRIu64 ", durable %" PRIu64 ", checkpoint %" PRIu64
	       ", visible #%" PRIu64 " (LSN %" PRIu64 ")\n",
	       x.next_lsn, x.applied_lsn, x.durable_lsn, x.checkpoint_lsn, x.visible_seq, x.visible_lsn);
	if (x.journaled) {
		printf("journal      %s after the last flush (%.1f ms ago), %s at the last checkpoint%s\n",
		       human(b1, sizeof(b1), x.journal_bytes), (double)x.last_flush_age_ns / 1e6,
		       human(b2, sizeof(b2), x.checkpoint_journal_bytes),
		       x.checkpoint_pid ? "; a checkpoint is being written" : "");
	}
	printf("counters     commits %" PRIu64 ", flushes %" PRIu64 ", repairs %" PRIu64 ", voided %" PRIu64
	       ", redone %" PRIu64 ", processes reaped %" PRIu64 "\n",
	       x.commits, x.flushes, x.repairs, x.voided, x.redone, x.reaps);
	return 0;
}

/* ---- view: processes ---------------------------------------------------------------------- */

struct list_ctx {
	struct dump *d;
	json_object *arr;
	uint64_t n, held, dead, total;
};

static int proc_one(void *ctx, const keel_inspect_proc_t *p)
{
	struct list_ctx *c = ctx;
	char t[40];

	c->n++;
	if (c->d->json) {
		json_object *o = json_object_new_object();
		jadd_u64(o, "slot", p->slot);
		jadd_i64(o, "pid", p->pid);
		jadd_bool(o, "alive", p->alive);
		jadd_bool(o, "self", p->self);
		jadd_u64(o, "start_time", p->start_time);
		jadd_u64(o, "attach_ns", p->attach_ns);
		jadd_u64(o, "reader_slots", p->reader_slots);
		jadd_u64(o, "readers_pinned", p->readers_pinned);
		jadd_u64(o, "oldest_snapshot", p->oldest_snapshot);
		jadd_u64(o, "reader_lag", p->reader_lag);
		jadd_u64(o, "locks_held", p->locks_held);
		jadd_u64(o, "rsv_lsn", p->rsv_lsn);
		json_object_array_add(c->arr, o);
		return 0;
	}
	char pinned[24];
	snprintf(pinned, sizeof(pinned), "%u/%u", p->readers_pinned, p->reader_slots);
	printf("%-5u %-8d %-6s %-8" PRIu64 " %-6u %-8s %s%s%s\n", p->slot, (int)p->pid, p->alive ? "yes" : "DEAD",
	       p->reader_lag, p->locks_held, pinned, iso_time(t, sizeof(t), p->attach_ns),
	       p->self ? "  (this keel-dump)" : "", p->rsv_lsn ? "  reserving a commit" : "");
	return 0;
}

static int view_procs(struct dump *d)
{
	struct list_ctx c = { .d = d };
	int rc;

	if (d->json)
		c.arr = json_object_new_array();
	else
		printf("== processes\n%-5s %-8s %-6s %-8s %-6s %-8s %s\n", "SLOT", "PID", "ALIVE", "LAG",
		       "LOCKS", "PINNED", "ATTACHED");
	rc = keel_inspect_processes(d->h, proc_one, &c);
	if (d->json)
		json_object_object_add(d->out, "processes", c.arr);
	if (rc)
		return store_fail("processes", rc);
	return 0;
}

/* ---- view: locks -------------------------------------------------------------------------- */

static int lock_one(void *ctx, const keel_inspect_lock_t *l)
{
	struct list_ctx *c = ctx;

	c->total++;
	if (l->state == KEEL_LOCK_FREE)
		return 0;
	if (l->state == KEEL_LOCK_DEAD)
		c->dead++;
	else
		c->held++;
	if (c->d->json) {
		json_object *o = json_object_new_object();
		jadd_str(o, "name", l->name);
		if (l->partition >= 0)
			jadd_i64(o, "partition", l->partition);
		else
			json_object_object_add(o, "partition", NULL);
		jadd_str(o, "state", lock_state_name(l->state));
		jadd_u64(o, "holder_pid", l->holder_pid);
		jadd_u64(o, "holder_tid", l->holder_tid);
		jadd_u64(o, "acquisitions", l->acquisitions);
		jadd_u64(o, "repairs", l->repairs);
		json_object_array_add(c->arr, o);
		return 0;
	}
	printf("%-28s %-5s pid %-8u tid %-8u acquired %" PRIu64 " times, repaired %" PRIu64 "%s\n", l->name,
	       lock_state_name(l->state), l->holder_pid, l->holder_tid, l->acquisitions, l->repairs,
	       l->state == KEEL_LOCK_DEAD ? "  <- holder is dead: the next taker repairs" : "");
	return 0;
}

static int view_locks(struct dump *d)
{
	struct list_ctx c = { .d = d };
	int rc;

	if (d->json)
		c.arr = json_object_new_array();
	else
		printf("== locks\n");
	rc = keel_inspect_locks(d->h, lock_one, &c);
	if (d->json) {
		json_object *o = json_object_new_object();
		jadd_u64(o, "total", c.total);
		jadd_u64(o, "free", c.total - c.held - c.dead);
		jadd_u64(o, "held", c.held);
		jadd_u64(o, "dead", c.dead);
		json_object_object_add(o, "list", c.arr);
		json_object_object_add(d->out, "locks", o);
	} else {
		printf("%" PRIu64 " locks: %" PRIu64 " free, %" PRIu64 " held, %" PRIu64 " held by dead processes\n",
		       c.total, c.total - c.held - c.dead, c.held, c.dead);
	}
	if (rc)
		return store_fail("locks", rc);
	return 0;
}

/* ---- view: partitions -------------------------------------------------------------------------- */

static int part_one(void *ctx, const keel_inspect_partition_t *p)
{
	struct list_ctx *c = ctx;
	char b1[32], b2[32];

	c->n++;
	if (c->d->json) {
		json_object *o = json_object_new_object();
		jadd_u64(o, "id", p->id);
		jadd_str(o, "name", p->name);
		jadd_bool(o, "ready", p->ready);
		jadd_u64(o, "keys", p->keys);
		jadd_u64(o, "bytes", p->bytes);
		jadd_u64(o, "buckets", p->buckets);
		jadd_double(o, "load_factor", p->load_factor);
		jadd_u64(o, "retired", p->retired);
		jadd_u64(o, "arena_bytes", p->arena_bytes);
		jadd_u64(o, "pages", p->pages);
		jadd_u64(o, "created_lsn", p->created_lsn);
		jadd_u64(o, "last_lsn", p->last_lsn);
		jadd_u64(o, "applying_lsn", p->applying_lsn);
		jadd_u64(o, "lock_holder_pid", p->lock_holder_pid);
		json_object_array_add(c->arr, o);
		return 0;
	}
	printf("%-5u %-24s %-10" PRIu64 " %-11s %-9" PRIu64 " %-5.2f %-8" PRIu64 " %-11s %-8" PRIu64 "%s%s\n", p->id,
	       p->name, p->keys, human(b1, sizeof(b1), p->bytes), p->buckets, p->load_factor, p->retired,
	       human(b2, sizeof(b2), p->arena_bytes), p->created_lsn, p->ready ? "" : "  NOT READY",
	       p->applying_lsn ? "  applying" : "");
	return 0;
}

static int view_parts(struct dump *d)
{
	struct list_ctx c = { .d = d };
	int rc;

	if (d->json)
		c.arr = json_object_new_array();
	else
		printf("== partitions\n%-5s %-24s %-10s %-11s %-9s %-5s %-8s %-11s %s\n", "ID", "NAME", "KEYS",
		       "BYTES", "BUCKETS", "LOAD", "RETIRED", "ARENA", "CREATED");
	rc = keel_inspect_partitions(d->h, part_one, &c);
	if (d->json)
		json_object_object_add(d->out, "partitions", c.arr);
	else
		printf("%" PRIu64 " partitions\n", c.n);
	if (rc)
		return store_fail("partitions", rc);
	return 0;
}

/* ---- view: allocator -------------------------------------------------------------------------- */

static int view_alloc(struct dump *d)
{
	keel_inspect_alloc_t *a = malloc(sizeof(*a));
	char b1[32], b2[32], b3[32], b4[32];
	int rc;

	if (!a) {
		fprintf(stderr, "keel-dump: out of memory\n");
		return KEEL_E_NOMEM;
	}
	if ((rc = keel_inspect_alloc(d->h, a))) {
		free(a);
		return store_fail("allocator", rc);
	}
	if (d->json) {
		json_object *o = json_object_new_object(), *pg = json_object_new_object(), *cl;
		jadd_u64(o, "page_bytes", a->page_bytes);
		jadd_u64(o, "heap_off", a->heap_off);
		jadd_u64(o, "heap_top", a->heap_top);
		jadd_u64(o, "headroom_bytes", a->headroom_bytes);
		jadd_u64(pg, "total", a->pages_total);
		jadd_u64(pg, "free", a->pages_free);
		jadd_u64(pg, "meta", a->pages_meta);
		jadd_u64(pg, "slab", a->pages_slab);
		jadd_u64(pg, "large", a->pages_large);
		json_object_object_add(o, "pages", pg);
		jadd_u64(o, "free_runs", a->free_runs);
		jadd_u64(o, "free_run_pages_max", a->free_run_pages_max);
		jadd_u64(o, "walk_stopped_at", a->walk_stopped_at);
		jadd_u64(o, "counted_free_pages", a->counted_free_pages);
		jadd_u64(o, "counted_used_pages", a->counted_used_pages);
		jadd_u64(o, "reserve_pages", a->reserve_pages);
		jadd_u64(o, "slab_bytes", a->slab_bytes);
		jadd_u64(o, "slab_bytes_free", a->slab_bytes_free);
		jadd_u64(o, "large_bytes", a->large_bytes);
		jadd_u64(o, "used_bytes", a->used_bytes);
		jadd_double(o, "frag_slab", a->frag_slab);
		jadd_double(o, "frag_pages", a->frag_pages);
		jadd_u64(o, "free_list_bad", a->free_list_bad);
		cl = json_object_new_array();
		for (uint32_t c = 0; c < a->nclasses && c < KEEL_INSPECT_CLASSES_MAX; c++) {
			const keel_inspect_class_t *k = &a->classes[c];
			if (!k->pages)
				continue;
			json_object *x = json_object_new_object();
			jadd_u64(x, "class", c);
			jadd_u64(x, "size", k->size);
			jadd_u64(x, "blocks_per_page", k->blocks_per_page);
			jadd_u64(x, "pages", k->pages);
			jadd_u64(x, "blocks_free", k->blocks_free);
			jadd_u64(x, "bytes_free", k->bytes_free);
			json_object_array_add(cl, x);
		}
		json_object_object_add(o, "classes", cl);
		json_object_object_add(d->out, "allocator", o);
		free(a);
		return 0;
	}
	printf("== allocator\n");
	printf("heap         %s of pages (top at %" PRIu64 "), %s left to grow into\n",
	       human(b1, sizeof(b1), a->heap_top > a->heap_off ? a->heap_top - a->heap_off : 0), a->heap_top,
	       human(b2, sizeof(b2), a->headroom_bytes));
	printf("pages        %" PRIu64 " of 64 KiB: %" PRIu64 " free (in %" PRIu64 " runs, largest %" PRIu64
	       "), %" PRIu64 " metadata, %" PRIu64 " slab, %" PRIu64 " large\n",
	       a->pages_total, a->pages_free, a->free_runs, a->free_run_pages_max, a->pages_meta, a->pages_slab,
	       a->pages_large);
	printf("counters     %" PRIu64 " free and %" PRIu64 " used pages, %" PRIu64 " kept for deletes%s\n",
	       a->counted_free_pages, a->counted_used_pages, a->reserve_pages,
	       a->walk_stopped_at ? "" : (a->counted_free_pages != a->pages_free ? " (differs from the walk: racy or damaged)" : ""));
	if (a->walk_stopped_at)
		printf("WARNING      the page walk stopped at a bad page header at offset %" PRIu64 "\n",
		       a->walk_stopped_at);
	printf("space        %s in blocks handed out; slab %s, %s of it on free lists; large runs %s\n",
	       human(b1, sizeof(b1), a->used_bytes), human(b2, sizeof(b2), a->slab_bytes),
	       human(b3, sizeof(b3), a->slab_bytes_free), human(b4, sizeof(b4), a->large_bytes));
	printf("fragmentation slab %.1f%% (free share of carved slab space), pages %.1f%% (free pages outside the largest run)\n",
	       100.0 * a->frag_slab, 100.0 * a->frag_pages);
	if (a->free_list_bad)
		printf("WARNING      %u free-list walks stopped at a bad link (racy, or damage: run --check)\n",
		       a->free_list_bad);
	printf("%-6s %-7s %-7s %-12s %s\n", "CLASS", "SIZE", "PAGES", "FREE-BLOCKS", "FREE");
	for (uint32_t c = 0; c < a->nclasses && c < KEEL_INSPECT_CLASSES_MAX; c++) {
		const keel_inspect_class_t *k = &a->classes[c];
		if (k->pages)
			printf("%-6u %-7u %-7" PRIu64 " %-12" PRIu64 " %s\n", c, k->size, k->pages, k->blocks_free,
			       human(b1, sizeof(b1), k->bytes_free));
	}
	free(a);
	return 0;
}

/* ---- view: journal (LSNs and segments) ------------------------------------------------------- */

static int seg_one(void *ctx, const keel_journal_segment_t *s)
{
	struct list_ctx *c = ctx;
	char b1[32];

	c->n++;
	if (c->d->json) {
		json_object *o = json_object_new_object();
		jadd_u64(o, "segno", s->segno);
		jadd_str(o, "name", s->name);
		jadd_str(o, "state", segment_state_name(s->state));
		jadd_u64(o, "first_lsn", s->first_lsn);
		jadd_u64(o, "file_bytes", s->file_bytes);
		jadd_u64(o, "seg_bytes", s->seg_bytes);
		jadd_bool(o, "zeroed", s->flags & 1u);
		jadd_str(o, "note", s->note);
		json_object_array_add(c->arr, o);
		return 0;
	}
	printf("%-30s %-8s %-12" PRIu64 " %-10s %s\n", s->name, segment_state_name(s->state), s->first_lsn,
	       human(b1, sizeof(b1), s->file_bytes), s->note);
	return 0;
}

static int view_journal(struct dump *d)
{
	keel_inspect_header_t x;
	struct list_ctx c = { .d = d };
	int rc = keel_inspect_header(d->h, &x), src = 0;

	if (rc)
		return store_fail("journal", rc);
	if (x.journaled) {
		if (d->json)
			c.arr = json_object_new_array();
		else
			printf("== journal\nlsn          next %" PRIu64 ", durable %" PRIu64 ", applied %" PRIu64
			       ", checkpoint %" PRIu64 "\n%-30s %-8s %-12s %-10s %s\n",
			       x.next_lsn, x.durable_lsn, x.applied_lsn, x.checkpoint_lsn, "SEGMENT", "STATE",
			       "FIRST-LSN", "SIZE", "NOTE");
		src = keel_journal_segments(d->store, seg_one, &c);
		if (src)
			store_fail("journal segments", src);
		else if (!d->json)
			printf("%" PRIu64 " segment files\n", c.n);
	} else if (!d->json) {
		printf("== journal\nnone: a memory-mode store (lsn next %" PRIu64 ", applied %" PRIu64 ")\n",
		       x.next_lsn, x.applied_lsn);
	}
	if (d->json) {
		json_object *o = json_object_new_object(), *l = json_object_new_object();
		jadd_bool(o, "journaled", x.journaled);
		jadd_u64(l, "next", x.next_lsn);
		jadd_u64(l, "applied", x.applied_lsn);
		jadd_u64(l, "durable", x.durable_lsn);
		jadd_u64(l, "checkpoint", x.checkpoint_lsn);
		json_object_object_add(o, "lsn", l);
		json_object_object_add(o, "segments", c.arr ? c.arr : json_object_new_array());
		jadd_str(o, "error", src ? keel_errmsg() : NULL);
		json_object_object_add(d->out, "journal", o);
	}
	return src;
}

/* ---- view: timers --------------------------------------------------------------------------- */

/* Which pids hold a live process slot: a claim's holder is judged alive by
 * the registry (pid and start time), as the library judges it. */
struct holders {
	pid_t *alive;
	size_t n, cap;
};

static int holder_one(void *ctx, const keel_inspect_proc_t *p)
{
	struct holders *hs = ctx;

	if (!p->alive)
		return 0;
	if (hs->n == hs->cap) {
		size_t ncap = hs->cap ? hs->cap * 2 : 64;
		pid_t *n = realloc(hs->alive, ncap * sizeof(*n));
		if (!n)
			return KEEL_E_NOMEM;
		hs->alive = n;
		hs->cap = ncap;
	}
	hs->alive[hs->n++] = p->pid;
	return 0;
}

static int holder_alive(const struct holders *hs, pid_t pid)
{
	for (size_t i = 0; i < hs->n; i++)
		if (hs->alive[i] == pid)
			return 1;
	return 0;
}

static const char *timer_state_name(unsigned st)
{
	switch (st) {
	case KEEL_TIMER_PENDING: return "pending";
	case KEEL_TIMER_CLAIMED: return "claimed";
	case KEEL_TIMER_DEAD: return "dead";
	}
	return "unknown";
}

/* Milliseconds since the epoch as "2026-11-22T10:00:00.000Z". */
static const char *iso_ms(char *buf, size_t cap, uint64_t ms)
{
	time_t s = (time_t)(ms / 1000u);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&s, &tm) || !(n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(buf, cap, "%" PRIu64 " ms", ms);
		return buf;
	}
	snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ms % 1000u));
	return buf;
}

struct tctx {
	struct dump *d;
	struct holders hs;
	json_object *arr;
	uint64_t n;               /* timers seen */
	uint64_t shown_max;       /* 0: no limit */
	int truncated;
	int with_payload;         /* --timers: the payload too */
	int rc;
};

/* One timer as a JSON object (the TIMER of the schema). */
static json_object *timer_json(const struct tctx *c, const keel_timer_info_t *t)
{
	json_object *o = json_object_new_object();
	char due[40];

	if (!o || json_add_bytes(o, "key", t->key, t->klen) ||
	    (c->with_payload && json_add_bytes(o, "payload", t->payload, t->plen))) {
		json_object_put(o);
		return NULL;
	}
	jadd_str(o, "partition", t->part);
	jadd_str(o, "state", timer_state_name(t->state));
	jadd_u64(o, "due_ms", t->due_ms);
	jadd_str(o, "due", iso_ms(due, sizeof(due), t->due_ms));
	jadd_u64(o, "deliveries", t->deliveries);
	if (t->state == KEEL_TIMER_CLAIMED) {
		jadd_i64(o, "holder", t->holder);
		jadd_bool(o, "holder_alive", holder_alive(&c->hs, t->holder));
		jadd_i64(o, "lease_left_ms", t->lease_left_ms);
	} else {
		json_object_object_add(o, "holder", NULL);
		json_object_object_add(o, "holder_alive", NULL);
		json_object_object_add(o, "lease_left_ms", NULL);
	}
	jadd_u64(o, "payload_bytes", t->plen);
	return o;
}

/* One timer as a text line: partition, key, state, due, deliveries, then
 * the holder and lease of a claim, and (--timers) the payload. */
static void timer_text(const struct tctx *c, const keel_timer_info_t *t)
{
	char due[40];

	printf("%-16s ", t->part);
	print_bytes(stdout, t->key, t->klen, 64);
	printf("  %-7s %s  deliveries %" PRIu32, timer_state_name(t->state),
	       iso_ms(due, sizeof(due), t->due_ms), t->deliveries);
	if (t->state == KEEL_TIMER_CLAIMED) {
		int alive = holder_alive(&c->hs, t->holder);
		printf("  holder %d (%s),", (int)t->holder,
		       alive ? "alive" : "DEAD: due again at the next claim or wait");
		if (t->lease_left_ms >= 0)
			printf(" lease %.3f s left", (double)t->lease_left_ms / 1e3);
		else
			printf(" lease ran out %.3f s ago", (double)-t->lease_left_ms / 1e3);
	}
	if (c->with_payload) {
		fputs("  payload ", stdout);
		print_bytes(stdout, t->payload, t->plen, VALUE_SHOW_MAX);
	} else {
		printf("  payload %zu B", t->plen);
	}
	putchar('\n');
}

static int timer_one(void *ctx, const keel_timer_info_t *t)
{
	struct tctx *c = ctx;

	if (c->shown_max && c->n >= c->shown_max) {
		c->truncated = 1;
		return 1;
	}
	c->n++;
	if (!c->d->json) {
		timer_text(c, t);
		return 0;
	}
	json_object *o = timer_json(c, t);
	if (!o) {
		c->rc = KEEL_E_NOMEM;
		return 1;
	}
	json_object_array_add(c->arr, o);
	return 0;
}

/* The stat fields shared by the view and --timers. */
static void timer_stat_json(json_object *o, const keel_timer_stat_t *st)
{
	char due[40];

	jadd_u64(o, "pending", st->pending);
	jadd_u64(o, "claimed", st->claimed);
	jadd_u64(o, "dead", st->dead);
	if (st->next_due_ms) {
		jadd_u64(o, "next_due_ms", st->next_due_ms);
		jadd_str(o, "next_due", iso_ms(due, sizeof(due), st->next_due_ms));
	} else {
		json_object_object_add(o, "next_due_ms", NULL);
		json_object_object_add(o, "next_due", NULL);
	}
	jadd_u64(o, "claims", st->claims);
	jadd_u64(o, "redelivered", st->redelivered);
	jadd_u64(o, "dead_lettered", st->dead_lettered);
}

static void timer_stat_text(const keel_timer_stat_t *st)
{
	char due[40];

	printf("timers       %" PRIu64 " pending, %" PRIu64 " claimed, %" PRIu64 " dead-lettered", st->pending,
	       st->claimed, st->dead);
	if (st->next_due_ms) {
		int64_t in = (int64_t)(st->next_due_ms - keel_now_ms());
		printf("; next due %s (%s %.3f s)", iso_ms(due, sizeof(due), st->next_due_ms),
		       in >= 0 ? "in" : "overdue by", (double)(in >= 0 ? in : -in) / 1e3);
	}
	printf("\ncounters     %" PRIu64 " claims, %" PRIu64 " redelivered (holder died or lease ran out), %" PRIu64
	       " dead-lettered, since the arena was made\n",
	       st->claims, st->redelivered, st->dead_lettered);
}

/* Walk the timers of `states` into c (text lines or c->arr). */
static int timers_walk(struct tctx *c, unsigned states)
{
	int rc = keel_timers(c->d->h, NULL, states, timer_one, c);

	if (rc == 0 && c->rc)
		rc = c->rc;
	return rc;
}

static int view_timers(struct dump *d)
{
	keel_timer_stat_t st;
	struct tctx cl = { .d = d, .shown_max = TIMERS_SHOWN_MAX };
	struct tctx dl = { .d = d, .shown_max = TIMERS_SHOWN_MAX };
	int rc, lrc = 0;

	memset(&st, 0, sizeof(st));
	rc = keel_timer_stat(d->h, &st);
	if (rc == 0)
		keel_inspect_processes(d->h, holder_one, &cl.hs);   /* liveness is a nicety */
	dl.hs = cl.hs;
	if (d->json) {
		json_object *o = json_object_new_object();
		cl.arr = json_object_new_array();
		dl.arr = json_object_new_array();
		if (rc == 0) {
			timer_stat_json(o, &st);
			lrc = timers_walk(&cl, KEEL_TIMER_CLAIMED);
			if (!lrc)
				lrc = timers_walk(&dl, KEEL_TIMER_DEAD);
		}
		json_object_object_add(o, "claimed_timers", cl.arr);
		json_object_object_add(o, "dead_timers", dl.arr);
		jadd_bool(o, "truncated", cl.truncated || dl.truncated);
		jadd_str(o, "error", rc || lrc ? keel_errmsg() : NULL);
		json_object_object_add(d->out, "timers", o);
	} else {
		printf("== timers\n");
		if (rc == 0) {
			timer_stat_text(&st);
			if (st.claimed) {
				printf("claimed:\n");
				lrc = timers_walk(&cl, KEEL_TIMER_CLAIMED);
				if (cl.truncated)
					printf("... and more: keel-dump --timers lists them all\n");
			}
			if (!lrc && st.dead) {
				printf("dead letters:\n");
				lrc = timers_walk(&dl, KEEL_TIMER_DEAD);
				if (dl.truncated)
					printf("... and more: keel-dump --timers lists them all\n");
			}
		}
	}
	free(cl.hs.alive);
	if (rc)
		return store_fail("timers", rc);
	if (lrc)
		return store_fail("timers", lrc);
	return 0;
}

/* ---- --timers ------------------------------------------------------------------------------ */

static int run_timers(struct dump *d)
{
	keel_timer_stat_t st;
	struct tctx c = { .d = d, .shown_max = d->limit, .with_payload = 1 };
	int rc;

	memset(&st, 0, sizeof(st));
	if ((rc = keel_timer_stat(d->h, &st)))
		return store_fail("timers", rc);
	keel_inspect_processes(d->h, holder_one, &c.hs);
	if (d->json) {
		json_object *o = json_object_new_object();
		timer_stat_json(o, &st);
		json_object_object_add(d->out, "stat", o);
		c.arr = json_object_new_array();
	} else {
		timer_stat_text(&st);
	}
	rc = timers_walk(&c, KEEL_TIMER_ALL);
	if (d->json) {
		json_object_object_add(d->out, "timers", c.arr);
		jadd_u64(d->out, "count", c.n);
		jadd_bool(d->out, "truncated", c.truncated);
	} else {
		printf("%" PRIu64 " timers%s\n", c.n, c.truncated ? " (stopped at --limit)" : "");
	}
	free(c.hs.alive);
	if (rc)
		return store_fail("timers", rc);
	return 0;
}

static int run_views(struct dump *d)
{
	static int (*const fns[])(struct dump *) = { view_header, view_procs, view_locks,
						     view_parts, view_alloc, view_journal,
						     view_timers };
	_Static_assert(sizeof(fns) / sizeof(fns[0]) == sizeof(view_names) / sizeof(view_names[0]),
		       "one function per view name");
	int first = 0;

	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		if (!(d->views & view_names[i].bit))
			continue;
		if (!d->json && i > 0)
			putchar('\n');
		int rc = fns[i](d);
		if (rc && !first)
			first = rc;
	}
	return first;
}

/* ---- --keys ------------------------------------------------------------------------------------ */

static int run_keys(struct dump *d)
{
	keel_iter_t *it = NULL;
	json_object *arr = NULL;
	const void *k, *v;
	size_t kl, vl;
	keel_meta_t m;
	uint64_t n = 0;
	int found = 0, rc, truncated = 0;
	char t[40];

	if ((rc = keel_exists(d->h, d->keys_part, &found)))
		return store_fail(d->keys_part, rc);
	if (!found) {
		fprintf(stderr, "keel-dump: partition \"%s\" does not exist in %s (list them with keel-dump --view partitions)\n",
			d->keys_part, d->store);
		return KEEL_E_NOTFOUND;
	}
	if ((rc = keel_iter_open(d->h, d->keys_part, NULL, 0, &it)))
		return store_fail(d->keys_part, rc);
	if (d->json)
		arr = json_object_new_array();
	while ((rc = keel_iter_next(it, &k, &kl, &v, &vl, &m)) == 1) {
		if (d->limit && n >= d->limit) {
			truncated = 1;
			break;
		}
		n++;
		if (d->json) {
			json_object *o = json_object_new_object();
			if (json_add_bytes(o, "key", k, kl) || json_add_bytes(o, "value", v, vl)) {
				json_object_put(o);
				rc = KEEL_E_NOMEM;
				break;
			}
			jadd_u64(o, "value_bytes", vl);
			jadd_u64(o, "version", m.version);
			jadd_u64(o, "mtime_ns", m.mtime_ns);
			jadd_u64(o, "lsn", m.lsn);
			json_object_array_add(arr, o);
			continue;
		}
		/* KEY VALUE  (version, LSN, size, time) */
		print_bytes(stdout, k, kl, KEEL_KEY_MAX);
		fputs("  ", stdout);
		print_bytes(stdout, v, vl, VALUE_SHOW_MAX);
		printf("  (version %" PRIu64 ", LSN %" PRIu64 ", %zu B, %s)\n", m.version, m.lsn, vl,
		       iso_time(t, sizeof(t), m.mtime_ns));
	}
	keel_iter_close(it);
	if (d->json) {
		jadd_str(d->out, "partition", d->keys_part);
		json_object_object_add(d->out, "entries", arr);
		jadd_u64(d->out, "count", n);
		jadd_bool(d->out, "truncated", truncated);
	} else {
		printf("%" PRIu64 " entries%s\n", n, truncated ? " (stopped at --limit)" : "");
	}
	if (rc < 0)
		return store_fail(d->keys_part, rc);
	return 0;
}

/* ---- --journal ------------------------------------------------------------------------------- */

static void name_set(struct dump *d, uint32_t id, const char *name, size_t len)
{
	if (id >= KEEL_PARTITIONS_MAX)
		return;
	if (!d->names) {
		d->names = calloc(KEEL_PARTITIONS_MAX, sizeof(*d->names));
		if (!d->names)
			return;
		d->nnames = KEEL_PARTITIONS_MAX;
	}
	if (d->names[id])
		return;
	char *s = malloc(len + 1);
	if (!s)
		return;
	for (size_t i = 0; i < len; i++)
		s[i] = (name[i] >= 0x20 && name[i] < 0x7f) ? name[i] : '?';
	s[len] = 0;
	d->names[id] = s;
}

static const char *name_of(const struct dump *d, uint32_t id)
{
	return d->names && id < d->nnames ? d->names[id] : NULL;
}

static int name_from_arena(void *ctx, const keel_inspect_partition_t *p)
{
	name_set(ctx, p->id, p->name, strlen(p->name));
	return 0;
}

struct jctx {
	struct dump *d;
	json_object *arr;
	uint64_t n;
	int truncated;
};

static int record_one(void *ctx, const keel_journal_record_t *r)
{
	struct jctx *c = ctx;
	struct dump *d = c->d;
	char t[40];

	if (d->limit && c->n >= d->limit) {
		c->truncated = 1;
		return 1;
	}
	c->n++;
	const char *state = !r->valid ? "damaged" : r->is_void ? "void" : "commit";
	for (uint32_t i = 0; i < r->nops_decoded; i++)
		if (r->ops[i].type == KEEL_JOP_CREATE && r->ops[i].klen <= KEEL_PARTITION_NAME_MAX)
			name_set(d, r->ops[i].partition, r->ops[i].key, r->ops[i].klen);
	if (d->json) {
		json_object *o = json_object_new_object(), *parts = json_object_new_array(),
			    *ops = json_object_new_array();
		jadd_u64(o, "lsn", r->lsn);
		jadd_str(o, "state", state);
		if (!r->valid)
			jadd_str(o, "problem", r->problem);
		jadd_u64(o, "pid", r->pid);
		jadd_str(o, "durability", durability_name(r->durability));
		jadd_u64(o, "mtime_ns", r->mtime_ns);
		jadd_u64(o, "bytes", r->bytes);
		for (uint32_t i = 0; i < r->nparts && i < KEEL_TXN_PARTITIONS_MAX + 1; i++)
			json_object_array_add(parts, json_object_new_uint64(r->parts[i]));
		json_object_object_add(o, "partitions", parts);
		jadd_u64(o, "nops", r->nops);
		for (uint32_t i = 0; i < r->nops_decoded; i++) {
			const keel_journal_op_t *op = &r->ops[i];
			json_object *x = json_object_new_object();
			const char *pn = name_of(d, op->partition);
			jadd_str(x, "type", op_name(op->type));
			jadd_u64(x, "partition", op->partition);
			if (pn)
				jadd_str(x, "partition_name", pn);
			jadd_u64(x, "version", op->version);
			if (op->type != KEEL_JOP_CLEAR && json_add_bytes(x, "key", op->key, op->klen)) {
				json_object_put(x);
				json_object_put(ops);
				json_object_put(o);   /* and parts, which it holds */
				return KEEL_E_NOMEM;
			}
			jadd_u64(x, "key_bytes", op->klen);
			jadd_u64(x, "value_bytes", op->vlen);
			json_object_array_add(ops, x);
		}
		json_object_object_add(o, "ops", ops);
		json_object_array_add(c->arr, o);
		return 0;
	}
	if (r->is_void && r->valid) {
		printf("LSN %-10" PRIu64 " void (the commit came to nothing)\n", r->lsn);
		return 0;
	}
	printf("LSN %-10" PRIu64 " %-7s pid %-7u %-6s %s  %u op%s, partitions", r->lsn, state, r->pid,
	       durability_name(r->durability), iso_time(t, sizeof(t), r->mtime_ns), r->nops, r->nops == 1 ? "" : "s");
	for (uint32_t i = 0; i < r->nparts && i < KEEL_TXN_PARTITIONS_MAX + 1; i++)
		printf("%s%u", i ? "," : " ", r->parts[i]);
	putchar('\n');
	if (!r->valid)
		printf("    DAMAGED: %s\n", r->problem);
	for (uint32_t i = 0; i < r->nops_decoded; i++) {
		const keel_journal_op_t *op = &r->ops[i];
		const char *pn = name_of(d, op->partition);
		printf("    %-6s %u%s%s%s", op_name(op->type), op->partition, pn ? " (" : "", pn ? pn : "", pn ? ")" : "");
		if (op->type == KEEL_JOP_PUT || op->type == KEEL_JOP_DEL) {
			printf(" key ");
			print_bytes(stdout, op->key, op->klen, 64);
			if (op->type == KEEL_JOP_PUT)
				printf(" version %" PRIu64 " value %u B", op->version, op->vlen);
		} else if (op->type == KEEL_JOP_CREATE) {
			printf(" name ");
			print_bytes(stdout, op->key, op->klen, KEEL_PARTITION_NAME_MAX);
		}
		putchar('\n');
	}
	return 0;
}

static int run_journal(struct dump *d)
{
	keel_journal_summary_t s;
	struct jctx c = { .d = d };
	int rc;

	/* Partition names from the arena when there is one; else from the
	 * create operations met in the journal. */
	if (d->h)
		keel_inspect_partitions(d->h, name_from_arena, d);
	if (d->json)
		c.arr = json_object_new_array();
	rc = keel_journal_records(d->store, d->from_lsn, record_one, &c, &s);
	const char *end = s.torn ? "torn" : "clean";
	if (d->json) {
		json_object *o = json_object_new_object();
		jadd_u64(d->out, "from_lsn", d->from_lsn);
		json_object_object_add(d->out, "records", c.arr);
		jadd_bool(d->out, "truncated", c.truncated);
		jadd_str(o, "status", s.status ? "damaged" : "ok");
		jadd_str(o, "end", end);
		jadd_u64(o, "records", s.records);
		jadd_u64(o, "first_lsn", s.first_lsn);
		jadd_u64(o, "last_lsn", s.last_lsn);
		jadd_u64(o, "next_lsn", s.next_lsn);
		jadd_str(o, "message", s.message);
		json_object_object_add(d->out, "summary", o);
		jadd_str(d->out, "error", rc && !s.status ? keel_errmsg() : NULL);
	} else if (rc == 0 || s.status) {
		printf("journal: %" PRIu64 " records", c.n);
		if (c.n)
			printf(" (LSN %" PRIu64 "..%" PRIu64 ")", s.first_lsn, s.last_lsn);
		if (c.truncated)
			printf(", stopped at --limit");
		else if (!s.status)
			printf(", next LSN %" PRIu64 ", %s end", s.next_lsn, end);
		putchar('\n');
		if (s.torn)
			printf("warning: %s\n", s.message);
	}
	if (s.status) {
		fprintf(stderr, "keel-dump: the journal is damaged: %s\n", s.message);
		d->damaged = 1;
		return 0;
	}
	if (rc)
		return store_fail("journal", rc);
	return 0;
}

/* ---- --check ----------------------------------------------------------------------------------- */

struct check_ctx {
	struct dump *d;
	json_object *arr;
	uint64_t n;
};

static void check_report(void *ctx, const char *where, const char *what)
{
	struct check_ctx *c = ctx;

	c->n++;
	if (c->d->json) {
		json_object *o = json_object_new_object();
		jadd_str(o, "where", where ? where : "");
		jadd_str(o, "what", what ? what : "");
		json_object_array_add(c->arr, o);
		return;
	}
	printf("DAMAGE  %s: %s\n", where ? where : "?", what ? what : "?");
}

static int run_check(struct dump *d)
{
	struct check_ctx c = { .d = d };
	int rc;

	if (d->json)
		c.arr = json_object_new_array();
	rc = keel_check(d->h, 0, check_report, &c);
	int damaged = rc == KEEL_E_CORRUPT || c.n > 0;
	if (d->json) {
		jadd_bool(d->out, "sound", rc == 0 && c.n == 0);
		jadd_u64(d->out, "count", c.n);
		json_object_object_add(d->out, "problems", c.arr);
		jadd_str(d->out, "error", rc && !damaged ? keel_errmsg() : NULL);
	} else if (!rc && !c.n) {
		printf("sound: every structure checked\n");
	} else if (damaged) {
		printf("%" PRIu64 " problem%s found\n", c.n, c.n == 1 ? "" : "s");
	}
	if (damaged) {
		d->damaged = 1;
		return 0;
	}
	if (rc)
		return store_fail("check", rc);
	return 0;
}

/* ---- help and arguments ------------------------------------------------------------------------ */

static const char help_text[] =
	"NAME\n"
	"    keel-dump - look inside a live Keel store and check its structures\n"
	"\n"
	"SYNOPSIS\n"
	"    keel-dump [--json] [--arena PATH] [--view LIST] STORE\n"
	"    keel-dump [--json] [--arena PATH] [--limit N] --keys PARTITION STORE\n"
	"    keel-dump [--json] [--from LSN] [--limit N] --journal STORE\n"
	"    keel-dump [--json] [--arena PATH] [--limit N] --timers STORE\n"
	"    keel-dump [--json] [--arena PATH] --check STORE\n"
	"    keel-dump --help\n"
	"\n"
	"DESCRIPTION\n"
	"    keel-dump attaches read-only to the shared arena of the store in\n"
	"    directory STORE and prints what it holds.  The views take no lock (but\n"
	"    for a moment the timers' lock, to read the timers) and write nothing\n"
	"    to the arena, so the workers go on at full speed; their figures are a\n"
	"    racy picture of a moving store.  keel-dump never creates or rebuilds\n"
	"    an arena: if none exists (nobody has the store open) it says so and\n"
	"    exits 5.  A damaged arena or journal gives error messages\n"
	"    naming the place, never a crash.\n"
	"\n"
	"    With no mode option it prints these views (--view picks some):\n"
	"      header      format version, layout signature, identity, size and\n"
	"                  growth room, durability, ring positions, LSNs, counters\n"
	"      processes   attached processes: pid, alive or dead, reader-epoch lag\n"
	"                  (LSNs behind the applied LSN), locks held, pinned readers\n"
	"      locks       every lock held, by whom, and any held by a dead process\n"
	"      partitions  keys, bytes, hash buckets and load factor, retired\n"
	"                  versions, arena bytes, creating LSN\n"
	"      allocator   pages by type, free runs, slab space and free lists by\n"
	"                  size class, fragmentation\n"
	"      journal     next, durable, applied and checkpoint LSNs, and the\n"
	"                  segment files on disk with their state\n"
	"      timers      pending, claimed and dead-lettered counts, the next due\n"
	"                  time, claim counters, and the claimed timers (holder pid,\n"
	"                  alive or dead, lease left) and dead letters, up to 50 each\n"
	"\n"
	"OPTIONS\n"
	"    --keys PARTITION\n"
	"        List the entries of PARTITION: version, LSN, modification time,\n"
	"        value size, key and value.  Keys and values are printed as\n"
	"        \"quoted text\" (\\n \\t \\r \\\\ \\\" escaped) when they are text, else\n"
	"        as 0x-prefixed hex; values past 96 bytes are cut in text mode.\n"
	"    --journal\n"
	"        Decode the journal records of a durable store: LSN, state (commit,\n"
	"        void, damaged), process, durability, time, partitions, and each\n"
	"        operation with its type, partition, key, version and value size.\n"
	"        Reads the journal alone: the store need not be open anywhere, and\n"
	"        nothing on disk is changed (a torn tail is reported, not cut).\n"
	"    --timers\n"
	"        List every timer, by partition and due time: state, due time,\n"
	"        deliveries, holder and lease of a claim, and the payload (cut at\n"
	"        96 bytes in text mode), after the counts of the timers view.\n"
	"    --from LSN\n"
	"        With --journal: start at LSN (an LSN older than the journal starts\n"
	"        at its oldest record).\n"
	"    --check\n"
	"        Walk and validate every structure (keel_check, the audit the tests\n"
	"        run, without its repair step) and name each damaged place.  It\n"
	"        takes each partition lock in turn, briefly.\n"
	"    --view LIST\n"
	"        Comma-separated views to print: header, processes, locks,\n"
	"        partitions, allocator, journal, timers (default: all).\n"
	"    --limit N\n"
	"        With --keys, --journal or --timers: stop after N entries.\n"
	"    --arena PATH\n"
	"        The arena file, when the store was opened with an explicit arena\n"
	"        path (keel --arena); also lets you inspect a copy of an arena.\n"
	"    --json\n"
	"        One JSON object on stdout, schema \"keel-dump/1\":\n"
	"          views:     {schema, store, header, processes, locks{total, free,\n"
	"                     held, dead, list}, partitions, allocator, journal{\n"
	"                     journaled, lsn, segments, error}, timers{pending,\n"
	"                     claimed, dead, next_due_ms, next_due, claims,\n"
	"                     redelivered, dead_lettered, claimed_timers[TIMER],\n"
	"                     dead_timers[TIMER], truncated, error}}\n"
	"          --keys:    {schema, store, partition, entries[{key, key_hex,\n"
	"                     value, value_hex, value_bytes, version, mtime_ns,\n"
	"                     lsn}], count, truncated}\n"
	"          --journal: {schema, store, from_lsn, records[{lsn, state, problem,\n"
	"                     pid, durability, mtime_ns, bytes, partitions, nops,\n"
	"                     ops[{type, partition, partition_name, version, key,\n"
	"                     key_hex, key_bytes, value_bytes}]}], truncated,\n"
	"                     summary{status, end, records, first_lsn, last_lsn,\n"
	"                     next_lsn, message}, error}\n"
	"          --timers:  {schema, store, stat{pending, claimed, dead,\n"
	"                     next_due_ms, next_due, claims, redelivered,\n"
	"                     dead_lettered}, timers[TIMER with payload,\n"
	"                     payload_hex], count, truncated}\n"
	"          --check:   {schema, store, sound, count, problems[{where, what}],\n"
	"                     error}\n"
	"          TIMER:     {partition, key, key_hex, state, due_ms, due,\n"
	"                     deliveries, holder, holder_alive, lease_left_ms,\n"
	"                     payload_bytes} (holder fields null unless claimed)\n"
	"        Byte strings are given as NAME when they are UTF-8 text and always\n"
	"        as NAME_hex.  Every field is listed at the top of tools/keel-dump.c;\n"
	"        fields are only ever added within a schema version.\n"
	"    -h, --help\n"
	"        This text.\n"
	"\n"
	"EXIT STATUS\n"
	"    0      success; with --check, the store is sound\n"
	"    1      damage found: --check reported problems, or --journal met a\n"
	"           damaged journal (the place is named)\n"
	"    2      usage error\n"
	"    3      failure outside the store (writing the output)\n"
	"    3 + N  the store returned -N, a KEEL_E_* code (as for the keel CLI):\n"
	"           5 NOTFOUND (no store, arena or partition), 15 ATTACH, 16 LAYOUT,\n"
	"           17 PERM, 18 NAMESPACE, 19 CORRUPT (refused at attach), 22 PANIC\n"
	"\n"
	"EXAMPLES\n"
	"    keel-dump /var/lib/app/state\n"
	"    keel-dump --view header,locks /var/lib/app/state\n"
	"    keel-dump --keys orders --limit 20 /var/lib/app/state\n"
	"    keel-dump --timers --json /var/lib/app/state | jq '.timers[] | select(.state == \"dead\")'\n"
	"    keel-dump --journal --from 1200 --json /var/lib/app/state | jq '.records[].ops'\n"
	"    keel-dump --check /var/lib/app/state || echo damaged\n";

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
	va_list ap;

	fputs("keel-dump: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (try keel-dump --help)\n", stderr);
	return KEEL_E_INVAL;
}

static int parse_u64(const char *opt, const char *s, uint64_t *out)
{
	char *end = NULL;

	errno = 0;
	if (!s || !*s || *s == '-')
		return usage("%s needs a non-negative integer, got '%s'", opt, s ? s : "");
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return usage("%s needs a non-negative integer, got '%s'", opt, s);
	*out = v;
	return 0;
}

static int parse_views(const char *s, unsigned *out)
{
	char buf[256];
	unsigned v = 0;

	if (strlen(s) >= sizeof(buf))
		return usage("--view: list too long");
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < sizeof(view_names) / sizeof(view_names[0]); i++)
			if (!strcmp(tok, view_names[i].name))
				break;
		if (i == sizeof(view_names) / sizeof(view_names[0]))
			return usage("--view: unknown view '%s' (header, processes, locks, partitions, allocator, journal, "
				     "timers)",
				     tok);
		v |= view_names[i].bit;
	}
	if (!v)
		return usage("--view: no view named");
	*out = v;
	return 0;
}

static int parse_args(struct dump *d, int argc, char **argv)
{
	enum { O_KEYS = 256, O_JOURNAL, O_FROM, O_CHECK, O_VIEW, O_LIMIT, O_ARENA, O_JSON, O_TIMERS };
	static const struct option opts[] = {
		{ "keys", required_argument, NULL, O_KEYS },   { "journal", no_argument, NULL, O_JOURNAL },
		{ "from", required_argument, NULL, O_FROM },   { "check", no_argument, NULL, O_CHECK },
		{ "view", required_argument, NULL, O_VIEW },   { "limit", required_argument, NULL, O_LIMIT },
		{ "arena", required_argument, NULL, O_ARENA }, { "json", no_argument, NULL, O_JSON },
		{ "timers", no_argument, NULL, O_TIMERS },
		{ "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
	};
	int c, modes = 0, from_given = 0, views_given = 0, limit_given = 0, rc;

	d->views = V_ALL;
	optind = 0;   /* full re-initialisation: keel_dump_main may run more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(help_text, stdout);
			d->help = 1;
			return 0;
		case O_KEYS:
			d->mode = M_KEYS;
			d->keys_part = optarg;
			modes++;
			break;
		case O_JOURNAL:
			d->mode = M_JOURNAL;
			modes++;
			break;
		case O_CHECK:
			d->mode = M_CHECK;
			modes++;
			break;
		case O_TIMERS:
			d->mode = M_TIMERS;
			modes++;
			break;
		case O_FROM:
			if ((rc = parse_u64("--from", optarg, &d->from_lsn)))
				return rc;
			from_given = 1;
			break;
		case O_LIMIT:
			if ((rc = parse_u64("--limit", optarg, &d->limit)))
				return rc;
			limit_given = 1;
			break;
		case O_VIEW:
			if ((rc = parse_views(optarg, &d->views)))
				return rc;
			views_given = 1;
			break;
		case O_ARENA:
			d->arena_path = optarg;
			break;
		case O_JSON:
			d->json = 1;
			break;
		case ':':
			return usage("option '%s' needs a value", argv[optind - 1]);
		default:
			return usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (modes > 1)
		return usage("--keys, --journal, --timers and --check are separate modes: give one");
	if (from_given && d->mode != M_JOURNAL)
		return usage("--from goes with --journal");
	if (limit_given && d->mode != M_KEYS && d->mode != M_JOURNAL && d->mode != M_TIMERS)
		return usage("--limit goes with --keys, --journal or --timers");
	if (views_given && d->mode != M_VIEWS)
		return usage("--view goes with the default views, not with --keys, --journal, --timers "
			     "or --check");
	if (optind >= argc)
		return usage("no STORE directory given");
	if (optind + 1 < argc)
		return usage("one STORE directory expected, got extra argument '%s'", argv[optind + 1]);
	d->store = argv[optind];
	if (!d->store[0])
		return usage("the STORE directory is an empty string");
	return 0;
}

/* ---- main ------------------------------------------------------------------------------------- */

int keel_dump_main(int argc, char **argv);

int keel_dump_main(int argc, char **argv)
{
	struct dump d;
	int rc, status;

	memset(&d, 0, sizeof(d));
	if (parse_args(&d, argc, argv))
		return EXIT_USAGE;
	if (d.help)
		return fflush(stdout) == 0 ? EXIT_SOUND : EXIT_LOCAL;
	if (d.json) {
		d.out = json_object_new_object();
		jadd_str(d.out, "schema", SCHEMA);
		jadd_str(d.out, "store", d.store);
	}
	/* The journal mode reads the disk alone; it attaches only to name
	 * partitions, and only to an arena that exists. */
	if (d.mode == M_JOURNAL) {
		char path[4096];
		keel_options_t o;
		struct stat sb;
		keel_options_init(&o);
		o.arena_path = d.arena_path;
		if (keel_arena_path(d.store, &o, path, sizeof(path)) == 0 && lstat(path, &sb) == 0) {
			o.flags = KEEL_OPEN_READONLY | KEEL_OPEN_NOCREATE;
			if (keel_open(d.store, &o, &d.h) != 0)
				d.h = NULL;   /* names are a nicety: go on without them */
		}
		d.ran = 1;
		rc = run_journal(&d);
	} else if ((rc = open_store(&d)) == 0) {
		d.ran = 1;
		switch (d.mode) {
		case M_KEYS: rc = run_keys(&d); break;
		case M_CHECK: rc = run_check(&d); break;
		case M_TIMERS: rc = run_timers(&d); break;
		default: rc = run_views(&d); break;
		}
	}
	/* The document goes out whenever the mode ran, even if it failed part
	 * way (its error fields say so); not when the store could not be opened. */
	if (d.json && d.ran) {
		fputs(json_object_to_json_string_ext(d.out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							     JSON_C_TO_STRING_NOSLASHESCAPE),
		      stdout);
		fputc('\n', stdout);
	}
	json_object_put(d.out);
	if (d.h)
		keel_close(d.h);
	if (d.names) {
		for (uint32_t i = 0; i < d.nnames; i++)
			free(d.names[i]);
		free(d.names);
	}
	status = rc ? exit_for(rc) : d.damaged ? EXIT_DAMAGE : EXIT_SOUND;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "keel-dump: writing the output: %s\n", strerror(errno));
		if (status == EXIT_SOUND)
			status = EXIT_LOCAL;
	}
	return status;
}

#ifndef KEEL_DUMP_NO_MAIN
int main(int argc, char **argv)
{
	return keel_dump_main(argc, argv);
}
#endif
