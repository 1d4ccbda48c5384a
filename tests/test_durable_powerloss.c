/*
 * test_durable_powerloss.c - power loss at every sync point of a store's
 * commit workload, on the simulated disk.
 *
 * One process runs a workload on a durable store whose identity file,
 * journal and checkpoints live on a simulated disk (jio_sim, lib/jio.h):
 * transfers between bank accounts spread over four partitions (common/bank.h
 * names them), puts of small and multi-sector values, deletes, multi-key puts
 * and the clear of a partition in two more partitions, and now and then a
 * checkpoint.  Most transactions commit SYNC; some commit ASYNC in short
 * bursts that the next sync commit (or a keel_sync) flushes as one group, so
 * one flush can carry several records and a torn flush can cut between them.
 *
 * Timers.  The workload also drives a universe of 24 durable timers, 12 in
 * each misc partition; five of each partition's timer keys ("m:000".."m:004")
 * are also key-value keys there, to show the two name spaces do not clash
 * (nor does a clear of the partition touch its timers).  Due times are far in
 * the past (due at once) or at least a day ahead, never two alike, so which
 * timer a claim gets is known; payloads are 0 to 2000 bytes made from a
 * nonce.  Its operations: keel_timer_set and keel_timer_cancel as commits of
 * their own; keel_txn_timer_set and _cancel inside transactions, some with a
 * transfer; keel_timer_claim (timeout 0; the earliest overdue timer of the
 * partitions asked, or TIMEOUT, as the model predicts), then keel_timer_ack,
 * keel_txn_timer_ack with a put (and sometimes a transfer), a release with a
 * new due time (a journaled reschedule that keeps the delivery count) or a
 * plain release (arena only); some claims are held across later commits, and
 * a set of a held timer makes its claim stale (an ack of it then fails with
 * STATE and writes nothing).  The model keeps, per timer and commit,
 * presence, due time, payload length and nonce, and the delivery count the
 * last journaled write carried (a set writes 0, a release with a due time the
 * count at the release); beside it, for the live store only, which timers
 * are claimed and their delivery count in the arena.
 *
 * The tap.  The store's I/O goes through a small jio backend of this file
 * that forwards every call to the simulated disk and, just before every sync
 * (fdatasync of a file, fsync of a directory, the sync that ends a batched
 * write), clones the disk with jio_sim_clone.  A clone is the disk as a power
 * loss at that instant finds it: everything synced before, and the work of
 * the sync about to happen still unsynced.  Once the call in flight (commit,
 * keel_sync, checkpoint) has returned, each clone is crashed several times
 * with jio_sim_crash - KEEP, DROP, TEAR, GARBLE and MIX, with random seeds -
 * and the store is recovered from each crashed copy with keel_open_io into a
 * fresh arena (a distinct /dev/shm file per recovery, removed after).
 *
 * The model.  The test keeps the state the store must hold after each commit:
 * presence, value and version of every key of a fixed key universe, which
 * partitions exist, and the commit's LSN.  A recovered store must
 *   - open: a crash only makes a torn tail, never corruption;
 *   - report applied_lsn == durable_lsn == L and next_lsn == L + 1 where L is
 *     the LSN of a commit k with acked <= k <= issued: `acked` is the last
 *     commit acknowledged durable before the sync point (a SYNC commit, a
 *     keel_sync or a keel_checkpoint returned 0), `issued` the one in flight;
 *   - hold the bank's money over the accounts present (no partial transfer);
 *   - hold exactly the model state after commit k: every value, version, key
 *     count and partition;
 *   - list (keel_timers, all states) exactly the model's timers of commit k,
 *     each PENDING (claims are not durable) with its due time, payload and
 *     journaled delivery count, in order; keel_timer_get and keel_timer_stat
 *     agree;
 *   - (one state in eight) pass keel_check, claim at once the earliest
 *     overdue timer (or find none due when the model has none), take a new
 *     commit at LSN L + 1 (a put, with the ack of that claim), and show it
 *     again after a second power loss;
 * and one state in sixteen first dies inside its own recovery (a persistent
 * EIO from a random operation of the recovery on, as if the process were
 * gone), loses power once more, and must then recover as above.
 *
 * Figures: the default run checks at least 10,000 crash states, --long at
 * least 100,000.  --seed reproduces a run (a single process on a simulated
 * disk is deterministic); --from-sync N skips the crash checks of the first
 * N sync points, the workload still running, to reach a failure sooner.
 *
 * Journal segments are 16 KiB here (durable_test_seg_bytes, internal.h):
 * the simulated disk copies a whole file at every sync, so 64 MiB segments
 * would make the sweep far too slow; small ones also put segment switches
 * and recycling below checkpoints inside the sweep.  A record must fit in one
 * segment, so no transaction of the workload carries more than
 * TXN_BYTES_MAX bytes of values and payloads.
 */
#include "common/bank.h"
#include "lib/internal.h"
#include "lib/jio.h"

#define SEG_BYTES_TEST (16u << 10)   /* small segments: switches and recycling */
#define BANK_PARTS 4u
#define ACCOUNTS 48u
#define INITIAL 1000
#define MISC_PARTS 2u
#define MISC_KEYS 40u
#define NENT (ACCOUNTS + MISC_PARTS * MISC_KEYS)
#define NPARTS (BANK_PARTS + MISC_PARTS)
#define VAL_MAX 5000u                /* misc values: 16..VAL_MAX bytes */
#define TXN_BYTES_MAX 12000u         /* values and payloads of one transaction: its
				      * record must fit in one 16 KiB segment */
#define VARIANTS 6u                  /* crashes per dirty sync point */
#define STATES_DEFAULT 10000u
#define STATES_LONG 100000u
#define COMMITS_MAX 400000u          /* model states kept */
#define RECOVERY_OPS_MAX 48u         /* a recovery dies within its first ops */
#define TIMERS_PER_PART 12u          /* timers of each misc partition */
#define NTIMERS (MISC_PARTS * TIMERS_PER_PART)
#define TIMER_SHARED_KEYS 5u         /* timer keys that are also value keys: m:000..m:004 */
#define TPAY_MAX 2000u               /* timer payloads: 0..TPAY_MAX bytes */
#define HELD_MAX 3u                  /* claims held across commits at once */
#define LEASE_MS KEEL_TIMER_LEASE_MAX /* a day, longer than any run: no lease runs out */
#define DELIVERIES_MAX 1000000u      /* never dead-letter (timer_max_deliveries) */
#define DAY_MS 86400000ull
#define YEAR_MS (365ull * DAY_MS)

/* One key of the universe: bank account a is entry a; misc key k of misc
 * partition p is entry ACCOUNTS + p * MISC_KEYS + k. */
struct ent {
	uint8_t present;
	uint32_t vlen;
	uint64_t version;
	uint64_t tag; /* bank: the balance; misc: the value's nonce */
};

/* One timer of the universe: timer i is in misc partition i / TIMERS_PER_PART.
 * What a commit leaves on disk; claims are not part of it. */
struct tmr {
	uint8_t present;
	uint32_t plen;
	uint32_t deliveries; /* what the last journaled write carried */
	uint64_t due_ms;
	uint64_t tag;        /* the payload's nonce (its first min(8, plen) bytes) */
};

struct state {
	struct ent e[NENT];
	struct tmr t[NTIMERS];
	uint32_t parts; /* bit i: partition i exists (bank.0-3, misc.0-1) */
};

/* A timer in the live store only: its claim and its delivery count in the
 * arena (which a plain release does not write to disk). */
struct tlive {
	int claimed;
	int held;             /* the claim is kept across commits */
	uint32_t deliveries;
	keel_claim_t c;
};

/* A disk cloned just before a sync. */
struct stash {
	jio_sim_t *disk;
	uint64_t acked, issued, sync_no;
};

static const bank_t g_bank = { BANK_PARTS, ACCOUNTS, INITIAL };
static char g_dir[PATH_MAX];
static char g_live_arena[128], g_rec_arena[128];
static jio_sim_t *g_sim;
static struct state *g_states;     /* g_states[k]: after commit k (0: empty) */
static uint64_t *g_lsn;            /* g_lsn[k]: LSN of commit k (0 for k = 0) */
static uint64_t g_ncommits, g_acked, g_issued, g_nonce;
static struct tlive g_tlive[NTIMERS];
static uint64_t g_base_ms;          /* wall clock at the start: due times are relative to it */
static struct stash *g_stash;
static size_t g_nstash, g_stash_cap;
static int g_tap_armed, g_verbose;
static uint64_t g_syncs, g_from_sync, g_recoveries;
static uint64_t g_crash_rng;
static int g_log_fd = -1, g_saved_stderr = -1;
static char g_log_path[128];

/* Figures. */
static uint64_t f_states, f_sync_points, f_clean_points, f_at_acked, f_beyond_acked,
	f_policy[JIO_CRASH_POLICIES], f_extra_commits, f_double, f_double_open_failed, f_ckpts,
	f_async, f_syncs_called, f_tsets, f_tcancels, f_tclaims, f_tnone_due, f_tacks, f_ttxn_acks,
	f_treleases_due, f_treleases, f_tstale, f_rec_claims, f_rec_none_due, f_rec_timers, f_rec_counted;

/* ---- names and values -------------------------------------------------------------------- */

static void part_name(unsigned i, char out[24])
{
	if (i < BANK_PARTS)
		bank_part(&g_bank, i, out); /* account i lives in bank.i for i < parts */
	else
		snprintf(out, 24, "misc.%u", i - BANK_PARTS);
}

static unsigned ent_part(unsigned e)
{
	return e < ACCOUNTS ? e % BANK_PARTS : BANK_PARTS + (e - ACCOUNTS) / MISC_KEYS;
}

static size_t ent_key(unsigned e, char out[16])
{
	if (e < ACCOUNTS)
		return bank_key(e, out);
	return (size_t)snprintf(out, 16, "m:%03u", (e - ACCOUNTS) % MISC_KEYS);
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

static unsigned timer_part(unsigned i)
{
	return BANK_PARTS + i / TIMERS_PER_PART;
}

/* Keys m:000..m:004 are value keys of the same partition too. */
static size_t timer_key(unsigned i, char out[16])
{
	unsigned j = i % TIMERS_PER_PART;

	if (j < TIMER_SHARED_KEYS)
		return (size_t)snprintf(out, 16, "m:%03u", j);
	return (size_t)snprintf(out, 16, "tm:%02u", j);
}

/* The timer of (partition, key), or NTIMERS if it is none of the universe. */
static unsigned timer_index(const char *part, const void *key, size_t klen)
{
	static char parts[NTIMERS][24], keys[NTIMERS][16];
	static size_t klens[NTIMERS];

	if (!klens[0])
		for (unsigned i = 0; i < NTIMERS; i++) {
			klens[i] = timer_key(i, keys[i]);
			part_name(timer_part(i), parts[i]);
		}
	for (unsigned i = 0; i < NTIMERS; i++)
		if (klens[i] == klen && memcmp(keys[i], key, klen) == 0 && strcmp(parts[i], part) == 0)
			return i;
	return NTIMERS;
}

/* A payload of plen bytes from a nonce: the nonce's first min(8, plen)
 * bytes, then as fill_value.  Its tag is what those bytes say. */
static void fill_payload(uint8_t *buf, uint32_t plen, uint64_t nonce)
{
	if (plen >= 8)
		fill_value(buf, plen, nonce);
	else
		memcpy(buf, &nonce, plen);
}

static uint64_t payload_tag(const uint8_t *buf, size_t plen)
{
	uint64_t tag = 0;

	if (plen)
		memcpy(&tag, buf, plen < 8 ? plen : 8);
	return tag;
}

/* ---- stderr capture (recovery prints a warning per torn tail) ----------------------------- */

static void quiet_begin(void)
{
	if (g_verbose)
		return;
	fflush(stderr);
	if (ftruncate(g_log_fd, 0) != 0 || lseek(g_log_fd, 0, SEEK_SET) != 0)
		T_FAIL("reset %s: %s", g_log_path, strerror(errno));
	dup2(g_log_fd, 2);
}

static void quiet_end(void)
{
	if (g_verbose)
		return;
	fflush(stderr);
	dup2(g_saved_stderr, 2);
}

/* What recovery printed, for a failure message. */
static void quiet_dump(void)
{
	char buf[4096];
	ssize_t n;

	if (g_verbose || lseek(g_log_fd, 0, SEEK_SET) != 0)
		return;
	while ((n = read(g_log_fd, buf, sizeof buf)) > 0)
		if (write(2, buf, (size_t)n) < 0)
			break;
}

/* A fatal signal while stderr is captured: show what was captured. */
static void on_fatal(int sig)
{
	char buf[4096];
	ssize_t n;

	if (g_saved_stderr >= 0 && g_log_fd >= 0) {
		dup2(g_saved_stderr, 2);
		if (lseek(g_log_fd, 0, SEEK_SET) == 0)
			while ((n = read(g_log_fd, buf, sizeof buf)) > 0)
				if (write(2, buf, (size_t)n) < 0)
					break;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void cleanup(void)
{
	keel_options_t o;

	keel_options_init(&o);
	if (g_live_arena[0]) {
		o.arena_path = g_live_arena;
		keel_unlink_arena(g_dir, &o, 1);
	}
	if (g_rec_arena[0]) {
		o.arena_path = g_rec_arena;
		keel_unlink_arena(g_dir, &o, 1);
	}
	if (g_log_path[0])
		unlink(g_log_path);
	if (g_dir[0] && !(getenv("KEEL_TEST_KEEP") && getenv("KEEL_TEST_KEEP")[0] == '1'))
		t_rm_rf(g_dir);
}

/* ---- the tap: forward to the simulated disk, clone it before each sync ------------------- */

struct tap {
	struct jio io;
	jio_t *in;
};

static jio_t *tin(jio_t *io) { return ((struct tap *)io)->in; }

static void sync_point(void)
{
	jio_sim_t *c = NULL;

	if (!g_tap_armed)
		return;
	g_syncs++;
	if (g_syncs <= g_from_sync)
		return;
	/* Runs inside the store's flush; failing here exits the test. */
	CHECK_OK(jio_sim_clone(g_sim, &c));
	if (g_nstash == g_stash_cap) {
		g_stash_cap = g_stash_cap ? 2 * g_stash_cap : 16;
		g_stash = realloc(g_stash, g_stash_cap * sizeof *g_stash);
		CHECK(g_stash != NULL);
	}
	g_stash[g_nstash++] = (struct stash){ c, g_acked, g_issued, g_syncs };
}

static int tap_open(jio_t *io, const char *p, unsigned f, int *fh) { return jio_open(tin(io), p, f, fh); }
static int tap_close(jio_t *io, int fh) { return jio_close(tin(io), fh); }
static int tap_pread(jio_t *io, int fh, void *b, size_t n, uint64_t off, size_t *got)
{
	return jio_pread(tin(io), fh, b, n, off, got);
}
static int tap_write(jio_t *io, int fh, const struct jio_wr *w, unsigned n, unsigned flags)
{
	int rc;

	if (!(flags & JIO_W_DATASYNC))
		return jio_write(tin(io), fh, w, n, flags);
	/* The same operations as one batch: n writes, then one sync. */
	if ((rc = jio_write(tin(io), fh, w, n, flags & ~(unsigned)JIO_W_DATASYNC)))
		return rc;
	sync_point();
	return jio_fdatasync(tin(io), fh);
}
static int tap_fdatasync(jio_t *io, int fh)
{
	sync_point();
	return jio_fdatasync(tin(io), fh);
}
static int tap_preallocate(jio_t *io, int fh, uint64_t off, uint64_t len)
{
	return jio_preallocate(tin(io), fh, off, len);
}
static int tap_truncate(jio_t *io, int fh, uint64_t len) { return jio_truncate(tin(io), fh, len); }
static int tap_size(jio_t *io, int fh, uint64_t *b) { return jio_size(tin(io), fh, b); }
static int tap_rename(jio_t *io, const char *a, const char *b) { return jio_rename(tin(io), a, b); }
static int tap_unlink(jio_t *io, const char *p) { return jio_unlink(tin(io), p); }
static int tap_mkdir(jio_t *io, const char *p) { return jio_mkdir(tin(io), p); }
static int tap_fsync_dir(jio_t *io, const char *p)
{
	sync_point();
	return jio_fsync_dir(tin(io), p);
}
static int tap_list(jio_t *io, const char *d, jio_list_fn fn, void *ctx) { return jio_list(tin(io), d, fn, ctx); }
static void tap_destroy(jio_t *io) { (void)io; /* the disk belongs to the test */ }

static const struct jio_ops tap_ops = {
	.name = "tap",
	.open = tap_open,
	.close = tap_close,
	.pread = tap_pread,
	.write = tap_write,
	.fdatasync = tap_fdatasync,
	.preallocate = tap_preallocate,
	.truncate = tap_truncate,
	.size = tap_size,
	.rename = tap_rename,
	.unlink = tap_unlink,
	.mkdir = tap_mkdir,
	.fsync_dir = tap_fsync_dir,
	.list = tap_list,
	.destroy = tap_destroy,
};

/* ---- reading a store into a state ------------------------------------------------------------ */

struct pcount {
	unsigned n;
};

static int count_part(void *ctx, const char *name, uint64_t keys)
{
	(void)name;
	(void)keys;
	((struct pcount *)ctx)->n++;
	return 0;
}

/* What keel_timers lists, gathered; the first problem goes to err. */
struct tlist {
	struct state *st;
	unsigned *tstates;
	unsigned n, npending, nclaimed, ndead;
	uint64_t next_due, last_due;
	char last_part[KEEL_PARTITION_NAME_MAX + 1];
	char err[512];
};

static int list_timer(void *ctx, const keel_timer_info_t *ti)
{
	static uint8_t want[TPAY_MAX];
	struct tlist *l = ctx;
	unsigned i = timer_index(ti->part, ti->key, ti->klen);
	struct tmr *t;
	int c;

	if (i == NTIMERS) {
		snprintf(l->err, sizeof l->err, "a timer the workload never set: %s/%.*s", ti->part,
			 (int)(ti->klen < 64 ? ti->klen : 64), (const char *)ti->key);
		return -1;
	}
	t = &l->st->t[i];
	if (t->present) {
		snprintf(l->err, sizeof l->err, "timer %s/%.*s listed twice", ti->part, (int)ti->klen,
			 (const char *)ti->key);
		return -1;
	}
	c = strcmp(l->last_part, ti->part);
	if (l->n && (c > 0 || (c == 0 && ti->due_ms < l->last_due))) {
		snprintf(l->err, sizeof l->err, "timers listed out of order: %s/%.*s due %" PRIu64 " after %s due %" PRIu64,
			 ti->part, (int)ti->klen, (const char *)ti->key, ti->due_ms, l->last_part, l->last_due);
		return -1;
	}
	snprintf(l->last_part, sizeof l->last_part, "%s", ti->part);
	l->last_due = ti->due_ms;
	l->n++;
	if (ti->plen > TPAY_MAX) {
		snprintf(l->err, sizeof l->err, "timer %s/%.*s has a payload of %zu bytes, more than the workload writes",
			 ti->part, (int)ti->klen, (const char *)ti->key, ti->plen);
		return -1;
	}
	t->present = 1;
	t->plen = (uint32_t)ti->plen;
	t->deliveries = ti->deliveries;
	t->due_ms = ti->due_ms;
	t->tag = payload_tag(ti->payload, ti->plen);
	fill_payload(want, t->plen, t->tag);
	if (ti->plen && memcmp(ti->payload, want, ti->plen) != 0) {
		snprintf(l->err, sizeof l->err, "timer %s/%.*s (%zu bytes, due %" PRIu64 ") holds a payload the workload never wrote",
			 ti->part, (int)ti->klen, (const char *)ti->key, ti->plen, ti->due_ms);
		return -1;
	}
	l->tstates[i] = ti->state;
	if (ti->state == KEEL_TIMER_PENDING) {
		l->npending++;
		if (!l->next_due || ti->due_ms < l->next_due)
			l->next_due = ti->due_ms;
	} else if (ti->state == KEEL_TIMER_CLAIMED) {
		l->nclaimed++;
	} else {
		l->ndead++;
	}
	return 0;
}

/* Read every timer: the listing of all states into st->t and tstates (the
 * state bit of each present timer), checked against keel_timer_get of each
 * timer of the universe and against keel_timer_stat. */
static void read_timers(keel_t *h, struct state *st, unsigned tstates[NTIMERS], const char *what)
{
	static uint8_t buf[TPAY_MAX + 16];
	struct tlist l = { .st = st, .tstates = tstates };
	keel_timer_stat_t ts;
	int rc;

	memset(st->t, 0, sizeof st->t);
	memset(tstates, 0, NTIMERS * sizeof *tstates);
	rc = keel_timers(h, NULL, KEEL_TIMER_ALL, list_timer, &l);
	if (l.err[0])
		T_FAIL("%s: %s", what, l.err);
	CHECK_MSG(rc == 0, "%s: keel_timers returned %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	for (unsigned i = 0; i < NTIMERS; i++) {
		const struct tmr *t = &st->t[i];
		char part[24], key[16];
		size_t kl = timer_key(i, key);
		keel_timer_info_t info;

		part_name(timer_part(i), part);
		rc = keel_timer_get(h, part, key, kl, &info, buf, sizeof buf);
		if (!t->present) {
			CHECK_MSG(rc == KEEL_E_NOTFOUND, "%s: timer %s/%s is not listed but keel_timer_get returned %d (%s)",
				  what, part, key, rc, keel_strerror(rc));
			continue;
		}
		CHECK_MSG(rc == 0, "%s: timer %s/%s is listed but keel_timer_get returned %d (%s)", what, part, key, rc,
			  keel_strerror(rc));
		CHECK_MSG(info.due_ms == t->due_ms && info.plen == t->plen && info.state == tstates[i] &&
				  info.deliveries == t->deliveries && payload_tag(buf, info.plen) == t->tag,
			  "%s: timer %s/%s: keel_timer_get says due %" PRIu64 ", %zu bytes, state %u, %u deliveries; the"
			  " listing due %" PRIu64 ", %u bytes, state %u, %u deliveries",
			  what, part, key, info.due_ms, info.plen, info.state, info.deliveries, t->due_ms, t->plen,
			  tstates[i], t->deliveries);
	}
	CHECK_OK(keel_timer_stat(h, &ts));
	CHECK_MSG(ts.pending == l.npending && ts.claimed == l.nclaimed && ts.dead == l.ndead &&
			  ts.next_due_ms == l.next_due,
		  "%s: keel_timer_stat says %" PRIu64 " pending, %" PRIu64 " claimed, %" PRIu64 " dead, next due %" PRIu64
		  "; keel_timers lists %u, %u, %u, next due %" PRIu64,
		  what, ts.pending, ts.claimed, ts.dead, ts.next_due_ms, l.npending, l.nclaimed, l.ndead, l.next_due);
}

/* Read every key of the universe; fail on a value that is not one the
 * workload wrote, a stray key or a stray partition.  Then every timer
 * (read_timers).  `what` names the store. */
static void read_state(keel_t *h, struct state *st, unsigned tstates[NTIMERS], const char *what)
{
	static uint8_t buf[VAL_MAX], want[VAL_MAX];
	uint64_t counts[NPARTS] = { 0 };
	struct pcount pc = { 0 };

	memset(st, 0, sizeof *st);
	for (unsigned e = 0; e < NENT; e++) {
		char part[24], key[16];
		size_t kl = ent_key(e, key), vl = 0;
		keel_meta_t m;
		int rc;

		part_name(ent_part(e), part);
		rc = keel_get(h, part, key, kl, buf, sizeof buf, &vl, &m);
		if (rc == KEEL_E_NOTFOUND)
			continue;
		CHECK_MSG(rc == 0, "%s: get %s/%s returned %d (%s)", what, part, key, rc, keel_strerror(rc));
		st->e[e].present = 1;
		st->e[e].vlen = (uint32_t)vl;
		st->e[e].version = m.version;
		counts[ent_part(e)]++;
		if (e < ACCOUNTS) {
			CHECK_MSG(vl == 8, "%s: account %s/%s holds %zu bytes, expected 8", what, part, key, vl);
			memcpy(&st->e[e].tag, buf, 8);
			continue;
		}
		CHECK_MSG(vl >= 16 && vl <= VAL_MAX, "%s: %s/%s holds %zu bytes, not a length the workload writes",
			  what, part, key, vl);
		memcpy(&st->e[e].tag, buf, 8);
		fill_value(want, (uint32_t)vl, st->e[e].tag);
		CHECK_MSG(memcmp(buf, want, vl) == 0,
			  "%s: %s/%s (%zu bytes, version %" PRIu64 ") holds bytes the workload never wrote",
			  what, part, key, vl, m.version);
	}
	for (unsigned i = 0; i < NPARTS; i++) {
		char part[24];
		int found = 0;
		uint64_t n = 0;

		part_name(i, part);
		CHECK_OK(keel_exists(h, part, &found));
		if (found)
			st->parts |= 1u << i;
		CHECK_OK(keel_count(h, part, &n));
		CHECK_MSG(n == counts[i], "%s: partition %s counts %" PRIu64 " keys, %" PRIu64 " of them found",
			  what, part, n, counts[i]);
	}
	CHECK_OK(keel_partitions(h, count_part, &pc));
	CHECK_MSG(pc.n == (unsigned)__builtin_popcount(st->parts),
		  "%s: %u partitions listed, %d expected", what, pc.n, __builtin_popcount(st->parts));
	read_timers(h, st, tstates, what);
}

/* First difference between two states, into buf; 0 if equal. */
static int state_diff(const struct state *want, const struct state *got, char *buf, size_t cap)
{
	if (want->parts != got->parts) {
		snprintf(buf, cap, "partitions present: mask %#x expected, %#x found", want->parts, got->parts);
		return 1;
	}
	for (unsigned e = 0; e < NENT; e++) {
		const struct ent *a = &want->e[e], *b = &got->e[e];
		char part[24], key[16];

		if (a->present == b->present &&
		    (!a->present || (a->vlen == b->vlen && a->version == b->version && a->tag == b->tag)))
			continue;
		part_name(ent_part(e), part);
		ent_key(e, key);
		snprintf(buf, cap,
			 "%s/%s: expected %s (version %" PRIu64 ", %u bytes, %s %" PRId64 "), found %s (version %" PRIu64
			 ", %u bytes, %s %" PRId64 ")",
			 part, key, a->present ? "present" : "absent", a->version, a->vlen,
			 e < ACCOUNTS ? "balance" : "nonce", (int64_t)a->tag, b->present ? "present" : "absent",
			 b->version, b->vlen, e < ACCOUNTS ? "balance" : "nonce", (int64_t)b->tag);
		return 1;
	}
	for (unsigned i = 0; i < NTIMERS; i++) {
		const struct tmr *a = &want->t[i], *b = &got->t[i];
		char part[24], key[16];

		if (a->present == b->present &&
		    (!a->present || (a->due_ms == b->due_ms && a->plen == b->plen && a->tag == b->tag &&
				     a->deliveries == b->deliveries)))
			continue;
		part_name(timer_part(i), part);
		timer_key(i, key);
		snprintf(buf, cap,
			 "timer %s/%s: expected %s (due %" PRIu64 ", %u bytes, nonce %" PRIu64 ", %u deliveries), found %s"
			 " (due %" PRIu64 ", %u bytes, nonce %" PRIu64 ", %u deliveries)",
			 part, key, a->present ? "present" : "absent", a->due_ms, a->plen, a->tag, a->deliveries,
			 b->present ? "present" : "absent", b->due_ms, b->plen, b->tag, b->deliveries);
		return 1;
	}
	return 0;
}

/* A recovered store holds no claim: every timer is PENDING. */
static void check_all_pending(const struct state *st, const unsigned tstates[NTIMERS], const char *what)
{
	for (unsigned i = 0; i < NTIMERS; i++) {
		char part[24], key[16];

		if (!st->t[i].present || tstates[i] == KEEL_TIMER_PENDING)
			continue;
		part_name(timer_part(i), part);
		timer_key(i, key);
		T_FAIL("%s: timer %s/%s is %s after recovery, expected PENDING (claims are not durable)", what, part, key,
		       tstates[i] == KEEL_TIMER_CLAIMED ? "CLAIMED" : tstates[i] == KEEL_TIMER_DEAD ? "DEAD" : "?");
	}
}

/* No partial transfer: the accounts present hold their initial money. */
static void check_money(const struct state *st, const char *what)
{
	int64_t sum = 0, n = 0;

	for (unsigned a = 0; a < ACCOUNTS; a++) {
		if (!st->e[a].present)
			continue;
		sum += (int64_t)st->e[a].tag;
		n++;
	}
	CHECK_MSG(sum == n * INITIAL,
		  "%s: the %" PRId64 " accounts present hold %" PRId64 ", expected %" PRId64
		  " (a partial transaction)", what, n, sum, n * INITIAL);
}

/* ---- the workload ------------------------------------------------------------------------------ */

struct txb {
	keel_txn_t *t;
	struct state next;
	uint32_t cleared; /* partitions cleared in this txn (puts after get version 1) */
	uint32_t bytes;   /* value and payload bytes so far (TXN_BYTES_MAX) */
	int durability;
};

/* A length of at most want and at least least that keeps b within TXN_BYTES_MAX. */
static uint32_t txb_room(struct txb *b, uint32_t want, uint32_t least)
{
	uint32_t left = b->bytes < TXN_BYTES_MAX ? TXN_BYTES_MAX - b->bytes : 0;
	uint32_t n = want < left ? want : left;

	n = n < least ? least : n;
	b->bytes += n;
	return n;
}

static void txb_begin(keel_t *h, struct txb *b, int durability)
{
	b->next = g_states[g_ncommits];
	b->cleared = 0;
	b->bytes = 0;
	b->durability = durability;
	CHECK_OK(keel_txn_begin(h, durability, &b->t));
}

static void txb_put(struct txb *b, unsigned e, uint32_t vlen)
{
	static uint8_t buf[VAL_MAX];
	char part[24], key[16];
	size_t kl = ent_key(e, key);
	struct ent *x = &b->next.e[e];
	unsigned p = ent_part(e);

	vlen = txb_room(b, vlen, 16);
	part_name(p, part);
	x->tag = ++g_nonce;
	fill_value(buf, vlen, x->tag);
	CHECK_OK(keel_txn_put(b->t, part, key, kl, buf, vlen));
	x->version = (b->cleared & (1u << p)) ? 1 : x->present ? x->version + 1 : 1;
	x->present = 1;
	x->vlen = vlen;
	b->next.parts |= 1u << p;
}

static void txb_del(struct txb *b, unsigned e)
{
	char part[24], key[16];
	size_t kl = ent_key(e, key);

	part_name(ent_part(e), part);
	CHECK_OK(keel_txn_del(b->t, part, key, kl));
	memset(&b->next.e[e], 0, sizeof b->next.e[e]);
}

static void txb_clear(struct txb *b, unsigned p)
{
	char part[24];

	part_name(p, part);
	CHECK_OK(keel_txn_clear(b->t, part));
	for (unsigned e = 0; e < NENT; e++)
		if (ent_part(e) == p)
			memset(&b->next.e[e], 0, sizeof b->next.e[e]);
	b->cleared |= 1u << p;
	b->next.parts |= 1u << p;
}

/* A transfer: read both balances in the txn, write both conditioned on the
 * versions read (single process: never a conflict). */
static void txb_transfer(struct txb *b, unsigned from, unsigned to, int64_t amount)
{
	char pf[24], pt[24], kf[16], kt[16];
	size_t klf = bank_key(from, kf), klt = bank_key(to, kt), vl = 0;
	int64_t vf, vt;
	keel_meta_t mf, mt;
	struct ent *ef = &b->next.e[from], *et = &b->next.e[to];

	bank_part(&g_bank, from, pf);
	bank_part(&g_bank, to, pt);
	CHECK_OK(keel_txn_get(b->t, pf, kf, klf, &vf, sizeof vf, &vl, &mf));
	CHECK(vl == 8);
	CHECK_OK(keel_txn_get(b->t, pt, kt, klt, &vt, sizeof vt, &vl, &mt));
	CHECK(vl == 8);
	CHECK_MSG(vf == (int64_t)ef->tag && mf.version == ef->version && vt == (int64_t)et->tag &&
			  mt.version == et->version,
		  "transfer %u -> %u: the live store's balances differ from the model", from, to);
	vf -= amount;
	vt += amount;
	CHECK_OK(keel_txn_put_if(b->t, pf, kf, klf, &vf, sizeof vf, mf.version));
	CHECK_OK(keel_txn_put_if(b->t, pt, kt, klt, &vt, sizeof vt, mt.version));
	ef->tag = (uint64_t)vf;
	et->tag = (uint64_t)vt;
	ef->version++;
	et->version++;
}

/* The live store must match the model (it is the model's check too): the
 * state of the last commit, with the claims and arena delivery counts of
 * g_tlive.  `after` says what was just done. */
static void check_live(keel_t *h, const char *after)
{
	static struct state live, want;
	unsigned tstates[NTIMERS];
	char diff[1024];

	read_state(h, &live, tstates, "live store");
	want = g_states[g_ncommits];
	for (unsigned i = 0; i < NTIMERS; i++)
		want.t[i].deliveries = g_tlive[i].deliveries;
	if (state_diff(&want, &live, diff, sizeof diff))
		T_FAIL("live store after %s (commit %" PRIu64 ", LSN %" PRIu64 ") differs from the model: %s", after,
		       g_ncommits, g_lsn[g_ncommits], diff);
	for (unsigned i = 0; i < NTIMERS; i++) {
		unsigned st = g_tlive[i].claimed ? KEEL_TIMER_CLAIMED : KEEL_TIMER_PENDING;
		char part[24], key[16];

		if (!want.t[i].present || tstates[i] == st)
			continue;
		part_name(timer_part(i), part);
		timer_key(i, key);
		T_FAIL("live store after %s (commit %" PRIu64 "): timer %s/%s is in state %u, expected %u", after,
		       g_ncommits, part, key, tstates[i], st);
	}
}

/* A commit at LSN lsn has returned; the model's state `next` becomes commit
 * k + 1. */
static void commit_done(keel_t *h, uint64_t lsn, int durability, const struct state *next, const char *what)
{
	CHECK_MSG(lsn > g_lsn[g_ncommits], "commit %" PRIu64 " (%s) got LSN %" PRIu64 ", not above the previous %" PRIu64,
		  g_ncommits + 1, what, lsn, g_lsn[g_ncommits]);
	g_ncommits++;
	g_states[g_ncommits] = *next;
	g_lsn[g_ncommits] = lsn;
	if (durability == KEEL_DURABILITY_SYNC)
		g_acked = g_ncommits;
	else
		f_async++;
	check_live(h, what);
}

/* Commit; the model's next state becomes commit k + 1. */
static void txb_commit(keel_t *h, struct txb *b)
{
	uint64_t lsn = 0;
	int rc;

	CHECK_MSG(g_ncommits + 1 < COMMITS_MAX, "more than %u commits", COMMITS_MAX);
	g_issued = g_ncommits + 1;
	rc = keel_txn_commit(b->t, &lsn);
	CHECK_MSG(rc == 0, "commit %" PRIu64 " returned %d (%s): %s", g_ncommits + 1, rc, keel_strerror(rc),
		  keel_errmsg());
	commit_done(h, lsn, b->durability, &b->next, "a transaction");
}

/* ---- timer operations ------------------------------------------------------------------------- */

/* A due time no present timer of st has: overdue (up to a year ago) or at
 * least a day ahead, so nothing changes from one to the other in a run. */
static uint64_t rand_due(uint64_t *rng, const struct state *st)
{
	for (unsigned tries = 0;; tries++) {
		uint64_t due = t_rand_below(rng, 2) ? g_base_ms - 1000 - t_rand_below(rng, YEAR_MS)
						    : g_base_ms + DAY_MS + t_rand_below(rng, YEAR_MS);
		int taken = 0;

		CHECK_MSG(tries < 1000, "no free due time in 1000 tries");
		for (unsigned i = 0; i < NTIMERS; i++)
			taken |= st->t[i].present && st->t[i].due_ms == due;
		if (!taken)
			return due;
	}
}

static uint32_t rand_plen(uint64_t *rng)
{
	uint64_t r = t_rand_below(rng, 8);

	if (r == 0)
		return 0;
	if (r == 1)
		return 1 + (uint32_t)t_rand_below(rng, 15);
	return 16 + (uint32_t)t_rand_below(rng, TPAY_MAX - 16 + 1);
}

/* A set (any path) starts the timer afresh: pending, no deliveries; a claim
 * on it is stale from now on. */
static void tlive_reset(unsigned i)
{
	memset(&g_tlive[i], 0, sizeof g_tlive[i]);
}

static unsigned held_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < NTIMERS; i++)
		n += g_tlive[i].held;
	return n;
}

/* Set timer i in the model state st; the payload goes to buf. */
static void model_set(struct state *st, unsigned i, uint64_t due, uint32_t plen, uint8_t *buf)
{
	uint64_t nonce = ++g_nonce;

	fill_payload(buf, plen, nonce);
	st->t[i] = (struct tmr){ 1, plen, 0, due, payload_tag(buf, plen) };
	tlive_reset(i);
}

static void txb_tset(struct txb *b, uint64_t *rng, unsigned i)
{
	static uint8_t buf[TPAY_MAX];
	char part[24], key[16];
	size_t kl = timer_key(i, key);
	uint64_t due = rand_due(rng, &b->next);
	uint32_t plen = txb_room(b, rand_plen(rng), 0);

	part_name(timer_part(i), part);
	model_set(&b->next, i, due, plen, buf);
	CHECK_OK(keel_txn_timer_set(b->t, part, key, kl, due, buf, plen));
	f_tsets++;
}

static void txb_tcancel(struct txb *b, unsigned i)
{
	char part[24], key[16];
	size_t kl = timer_key(i, key);

	part_name(timer_part(i), part);
	CHECK_OK(keel_txn_timer_cancel(b->t, part, key, kl));
	memset(&b->next.t[i], 0, sizeof b->next.t[i]);
	tlive_reset(i);
	f_tcancels++;
}

static void txb_tack(struct txb *b, unsigned i)
{
	CHECK_OK(keel_txn_timer_ack(b->t, &g_tlive[i].c));
	memset(&b->next.t[i], 0, sizeof b->next.t[i]);
	tlive_reset(i);
	f_ttxn_acks++;
}

/* Set or cancel a random timer in the transaction (cancel only a present
 * one: a cancel of an absent timer writes nothing). */
static void txb_tchange(struct txb *b, uint64_t *rng, uint32_t *used)
{
	unsigned i = (unsigned)t_rand_below(rng, NTIMERS);

	if (*used & (1u << i))
		return;
	*used |= 1u << i;
	if (b->next.t[i].present && t_rand_below(rng, 3) == 0)
		txb_tcancel(b, i);
	else
		txb_tset(b, rng, i);
}

/* Before a call that commits on its own (the store's default, SYNC). */
static void single_begin(void)
{
	CHECK_MSG(g_ncommits + 1 < COMMITS_MAX, "more than %u commits", COMMITS_MAX);
	g_issued = g_ncommits + 1;
}

/* After it: the commit it made (wrote 1), or it must have written nothing
 * (0: a claim, a plain release, a failed ack), or either (-1: a cancel of an
 * absent timer, which the header leaves open). */
static void single_end(keel_t *h, const struct state *next, int wrote, const char *what)
{
	keel_stat_t st;

	CHECK_OK(keel_stat(h, &st));
	if (wrote < 0)
		wrote = st.next_lsn != g_lsn[g_ncommits] + 1;
	if (!wrote) {
		CHECK_MSG(st.next_lsn == g_lsn[g_ncommits] + 1,
			  "%s wrote nothing but the next LSN went from %" PRIu64 " to %" PRIu64, what,
			  g_lsn[g_ncommits] + 1, st.next_lsn);
		g_issued = g_ncommits;
		check_live(h, what);
		return;
	}
	commit_done(h, st.next_lsn - 1, KEEL_DURABILITY_SYNC, next, what);
}

static void single_tset(keel_t *h, uint64_t *rng, unsigned i)
{
	static uint8_t buf[TPAY_MAX];
	static struct state next;
	char part[24], key[16];
	size_t kl = timer_key(i, key);
	uint64_t due;
	uint32_t plen = rand_plen(rng);

	next = g_states[g_ncommits];
	due = rand_due(rng, &next);
	part_name(timer_part(i), part);
	model_set(&next, i, due, plen, buf);
	single_begin();
	CHECK_OK(keel_timer_set(h, part, key, kl, due, buf, plen));
	f_tsets++;
	single_end(h, &next, 1, "keel_timer_set");
}

static void single_tcancel(keel_t *h, unsigned i)
{
	static struct state next;
	char part[24], key[16];
	size_t kl = timer_key(i, key);
	int existed = -1, was = g_states[g_ncommits].t[i].present;

	part_name(timer_part(i), part);
	next = g_states[g_ncommits];
	memset(&next.t[i], 0, sizeof next.t[i]);
	tlive_reset(i);
	single_begin();
	CHECK_OK(keel_timer_cancel(h, part, key, kl, &existed));
	CHECK_MSG(existed == was, "keel_timer_cancel %s/%s: existed %d, the model says %d", part, key, existed, was);
	f_tcancels++;
	single_end(h, &next, was ? 1 : -1, "keel_timer_cancel");
}

/*
 * Claim at once the earliest overdue unclaimed timer of partition `part`
 * (-1: all), as the model says; returns its index, or NTIMERS when the model
 * has none due (the claim must then time out).
 */
static unsigned tclaim(keel_t *h, int part)
{
	static uint8_t buf[TPAY_MAX + 16], want[TPAY_MAX];
	const struct state *cur = &g_states[g_ncommits];
	uint64_t now = keel_now_ms();
	char pname[24];
	const char *parts[1] = { pname };
	keel_claim_t c;
	keel_stat_t st0, st1;
	unsigned best = NTIMERS;
	int rc;

	if (part >= 0)
		part_name((unsigned)part, pname);
	for (unsigned i = 0; i < NTIMERS; i++) {
		const struct tmr *t = &cur->t[i];

		if (!t->present || g_tlive[i].claimed || t->due_ms > now || (part >= 0 && timer_part(i) != (unsigned)part))
			continue;
		if (best == NTIMERS || t->due_ms < cur->t[best].due_ms)
			best = i;
	}
	CHECK_OK(keel_stat(h, &st0));
	rc = keel_timer_claim(h, part >= 0 ? parts : NULL, part >= 0 ? 1 : 0, LEASE_MS, 0, &c, buf, sizeof buf);
	CHECK_OK(keel_stat(h, &st1));
	CHECK_MSG(st1.next_lsn == st0.next_lsn, "keel_timer_claim wrote to the journal: next LSN %" PRIu64 " -> %" PRIu64,
		  st0.next_lsn, st1.next_lsn);
	if (best == NTIMERS) {
		CHECK_MSG(rc == KEEL_E_TIMEOUT, "claim of %s: no timer is due but it returned %d (%s) (%s/%.*s)",
			  part >= 0 ? pname : "all partitions", rc, keel_strerror(rc), rc ? "" : c.part,
			  rc ? 0 : (int)c.klen, rc ? "" : (const char *)c.key);
		f_tnone_due++;
		return NTIMERS;
	}
	{
		const struct tmr *t = &cur->t[best];
		char bpart[24], bkey[16];
		size_t bkl = timer_key(best, bkey);

		part_name(timer_part(best), bpart);
		CHECK_MSG(rc == 0, "claim of %s: timer %s/%s is due (at %" PRIu64 ") but the claim returned %d (%s): %s",
			  part >= 0 ? pname : "all partitions", bpart, bkey, t->due_ms, rc, keel_strerror(rc), keel_errmsg());
		CHECK_MSG(strcmp(c.part, bpart) == 0 && c.klen == bkl && memcmp(c.key, bkey, bkl) == 0,
			  "claim of %s: got %s/%.*s, expected the earliest due %s/%s (due %" PRIu64 ")",
			  part >= 0 ? pname : "all partitions", c.part, (int)c.klen, (const char *)c.key, bpart, bkey,
			  t->due_ms);
		fill_payload(want, t->plen, t->tag);
		CHECK_MSG(c.due_ms == t->due_ms && c.plen == t->plen && c.deliveries == g_tlive[best].deliveries + 1 &&
				  memcmp(buf, want, t->plen) == 0,
			  "claim of %s/%s: due %" PRIu64 ", %zu bytes, delivery %u; expected due %" PRIu64
			  ", %u bytes (nonce %" PRIu64 "), delivery %u",
			  bpart, bkey, c.due_ms, c.plen, c.deliveries, t->due_ms, t->plen, t->tag,
			  g_tlive[best].deliveries + 1);
	}
	g_tlive[best].claimed = 1;
	g_tlive[best].deliveries++;
	g_tlive[best].c = c;
	f_tclaims++;
	return best;
}

static uint32_t rand_vlen(uint64_t *rng);
static unsigned rand_misc(uint64_t *rng);
static void rand_transfer(struct txb *b, uint64_t *rng);

/* End the claim on timer i: ack, ack in a transaction (with a put, and
 * sometimes a transfer), release with a new due time, or a plain release.
 * In an ASYNC burst, only the plain release (no commit) or the transaction
 * (an ASYNC commit): the other calls commit SYNC. */

static void tfinish(keel_t *h, uint64_t *rng, unsigned i, int durability)
{
	static struct state next;
	uint64_t r = t_rand_below(rng, 8);
	struct tlive *l = &g_tlive[i];

	CHECK(l->claimed);
	if (durability == KEEL_DURABILITY_ASYNC && r < 4)
		r = 4 + r; /* the single calls that commit, commit SYNC */
	next = g_states[g_ncommits];
	if (r < 2) {
		memset(&next.t[i], 0, sizeof next.t[i]);
		single_begin();
		CHECK_OK(keel_timer_ack(h, &l->c));
		tlive_reset(i);
		f_tacks++;
		single_end(h, &next, 1, "keel_timer_ack");
	} else if (r < 4) {
		uint64_t due = rand_due(rng, &next);

		next.t[i].due_ms = due;
		next.t[i].deliveries = l->deliveries;
		single_begin();
		CHECK_OK(keel_timer_release(h, &l->c, due));
		l->claimed = l->held = 0;
		f_treleases_due++;
		single_end(h, &next, 1, "keel_timer_release with a due time");
	} else if (r < 5) {
		CHECK_OK(keel_timer_release(h, &l->c, 0));
		l->claimed = l->held = 0;
		f_treleases++;
		single_end(h, &next, 0, "keel_timer_release");
	} else {
		struct txb b;

		txb_begin(h, &b, durability);
		txb_put(&b, rand_misc(rng), rand_vlen(rng));
		if (t_rand_below(rng, 3) == 0)
			rand_transfer(&b, rng);
		txb_tack(&b, i);
		txb_commit(h, &b);
	}
}

/* A set of a claimed timer (it is pending again, its count reset); the old
 * claim is stale, and an ack of it fails with STATE and writes nothing. */
static void tstale(keel_t *h, uint64_t *rng, unsigned i)
{
	keel_claim_t c = g_tlive[i].c;
	int rc;

	single_tset(h, rng, i);
	g_issued = g_ncommits + 1;
	rc = keel_timer_ack(h, &c);
	CHECK_MSG(rc == KEEL_E_STATE, "ack of a claim made stale by a set returned %d (%s), expected STATE", rc,
		  keel_strerror(rc));
	f_tstale++;
	single_end(h, &g_states[g_ncommits], 0, "an ack of a stale claim");
}

/* Several sets and cancels, maybe with a put, in one transaction. */
static void txn_tchanges(keel_t *h, uint64_t *rng, int durability)
{
	struct txb b;
	uint32_t used = 0;

	txb_begin(h, &b, durability);
	for (unsigned n = 1 + (unsigned)t_rand_below(rng, 4); n--;)
		txb_tchange(&b, rng, &used);
	if (t_rand_below(rng, 2))
		txb_put(&b, rand_misc(rng), rand_vlen(rng));
	txb_commit(h, &b);
}

/* One timer operation. */
static void timer_op(keel_t *h, uint64_t *rng, int durability)
{
	const struct state *cur = &g_states[g_ncommits];
	uint64_t r = t_rand_below(rng, 100);
	unsigned i = (unsigned)t_rand_below(rng, NTIMERS), held = NTIMERS;

	for (unsigned j = 0; j < NTIMERS; j++)
		if (g_tlive[j].held && (held == NTIMERS || t_rand_below(rng, 2)))
			held = j;
	if (r < 15 && durability == KEEL_DURABILITY_SYNC) {
		single_tset(h, rng, i);
	} else if (r < 23 && durability == KEEL_DURABILITY_SYNC) {
		/* mostly a present timer; now and then whatever i is */
		for (unsigned tries = 0; !cur->t[i].present && tries < 8; tries++)
			i = (unsigned)t_rand_below(rng, NTIMERS);
		single_tcancel(h, i);
	} else if (r < 23) {
		txn_tchanges(h, rng, durability);
	} else if (r < 63) {
		int part = t_rand_below(rng, 3) ? -1 : (int)(BANK_PARTS + t_rand_below(rng, MISC_PARTS));

		i = tclaim(h, part);
		if (i == NTIMERS) {
			struct txb b;

			txb_begin(h, &b, durability);
			txb_tset(&b, rng, (unsigned)t_rand_below(rng, NTIMERS));
			txb_commit(h, &b);
		} else if (held_count() < HELD_MAX && t_rand_below(rng, 4) == 0) {
			g_tlive[i].held = 1; /* ended by a later operation */
		} else {
			tfinish(h, rng, i, durability);
		}
	} else if (r < 73 && held < NTIMERS) {
		tfinish(h, rng, held, durability);
	} else if (r < 77 && held < NTIMERS && durability == KEEL_DURABILITY_SYNC) {
		tstale(h, rng, held);
	} else {
		txn_tchanges(h, rng, durability);
	}
}

/* Setup: one commit per bank partition with its accounts, one per misc
 * partition with a few keys, one with half the timers. */
static void setup(keel_t *h, uint64_t *rng)
{
	for (unsigned p = 0; p < BANK_PARTS; p++) {
		static uint8_t v[8];
		int64_t init = INITIAL;
		struct txb b;

		txb_begin(h, &b, KEEL_DURABILITY_SYNC);
		for (unsigned a = p; a < ACCOUNTS; a += BANK_PARTS) {
			char part[24], key[16];
			size_t kl = bank_key(a, key);

			bank_part(&g_bank, a, part);
			memcpy(v, &init, 8);
			CHECK_OK(keel_txn_put(b.t, part, key, kl, v, 8));
			b.next.e[a] = (struct ent){ 1, 8, 1, (uint64_t)init };
		}
		b.next.parts |= 1u << p;
		txb_commit(h, &b);
	}
	for (unsigned p = 0; p < MISC_PARTS; p++) {
		struct txb b;

		txb_begin(h, &b, KEEL_DURABILITY_SYNC);
		for (unsigned k = 0; k < 4; k++)
			txb_put(&b, ACCOUNTS + p * MISC_KEYS + k, 16 + 8 * k);
		txb_commit(h, &b);
	}
	/* Half the timers, in one transaction. */
	{
		struct txb b;

		txb_begin(h, &b, KEEL_DURABILITY_SYNC);
		for (unsigned i = 0; i < NTIMERS; i += 2)
			txb_tset(&b, rng, i);
		txb_commit(h, &b);
	}
}

static uint32_t rand_vlen(uint64_t *rng)
{
	if (t_rand_below(rng, 10) == 0)
		return 1500 + (uint32_t)t_rand_below(rng, VAL_MAX - 1500 + 1); /* spans sectors */
	return 16 + (uint32_t)t_rand_below(rng, 400);
}

static unsigned rand_misc(uint64_t *rng)
{
	return ACCOUNTS + (unsigned)t_rand_below(rng, MISC_PARTS * MISC_KEYS);
}

static void rand_transfer(struct txb *b, uint64_t *rng)
{
	unsigned from = (unsigned)t_rand_below(rng, ACCOUNTS), to;

	do /* usually another partition */
		to = (unsigned)t_rand_below(rng, ACCOUNTS);
	while (to == from || (to % BANK_PARTS == from % BANK_PARTS && t_rand_below(rng, 4)));
	txb_transfer(b, from, to, 1 + (int64_t)t_rand_below(rng, 100));
}

/* One transaction of a random kind, or (seven in twenty) a timer operation. */
static void one_txn(keel_t *h, uint64_t *rng, int durability)
{
	const struct state *cur = &g_states[g_ncommits];
	uint64_t r = t_rand_below(rng, 100);
	struct txb b;

	if (t_rand_below(rng, 20) < 7) {
		timer_op(h, rng, durability);
		return;
	}
	txb_begin(h, &b, durability);
	if (r < 55) {
		uint32_t used = 0;

		rand_transfer(&b, rng);
		if (t_rand_below(rng, 4) == 0)
			txb_put(&b, rand_misc(rng), rand_vlen(rng));
		else if (t_rand_below(rng, 3) == 0)
			txb_tchange(&b, rng, &used); /* a timer change commits with the transfer */
	} else if (r < 72) {
		txb_put(&b, rand_misc(rng), rand_vlen(rng));
	} else if (r < 84) {
		/* delete a present key (a delete of an absent one writes nothing) */
		unsigned e = rand_misc(rng), tries = 0;

		while (!cur->e[e].present && tries++ < 200)
			e = rand_misc(rng);
		if (cur->e[e].present)
			txb_del(&b, e);
		else
			txb_put(&b, e, rand_vlen(rng));
	} else if (r < 96) {
		unsigned n = 2 + (unsigned)t_rand_below(rng, 7), used[16], nused = 0;

		for (unsigned i = 0; i < n; i++) {
			unsigned e = rand_misc(rng), dup = 0;

			for (unsigned j = 0; j < nused; j++)
				dup |= used[j] == e;
			if (dup)
				continue;
			used[nused++] = e;
			txb_put(&b, e, rand_vlen(rng));
		}
	} else {
		unsigned p = BANK_PARTS + (unsigned)t_rand_below(rng, MISC_PARTS);

		txb_clear(&b, p);
		for (unsigned k = 0, n = (unsigned)t_rand_below(rng, 3); k < n; k++)
			txb_put(&b, ACCOUNTS + (p - BANK_PARTS) * MISC_KEYS + k, rand_vlen(rng));
	}
	txb_commit(h, &b);
}

/* ---- recovery of a crashed disk ---------------------------------------------------------------- */

static void rec_options(keel_options_t *o)
{
	keel_options_init(o);
	o->durability = KEEL_DURABILITY_SYNC;
	o->arena_bytes_max = 64ull << 20;
	o->ring_bytes = 1u << 20;
	o->timer_max_deliveries = DELIVERIES_MAX;
	snprintf(g_rec_arena, sizeof g_rec_arena, "/dev/shm/keel-pl-%d-%" PRIu64, (int)getpid(), g_recoveries++);
	o->arena_path = g_rec_arena;
}

static void rec_drop_arena(keel_options_t *o)
{
	int rc = keel_unlink_arena(g_dir, o, 1);

	CHECK_MSG(rc == 0 || rc == KEEL_E_NOTFOUND, "unlink arena %s: %d (%s)", o->arena_path, rc,
		  keel_strerror(rc));
}

/* Open (recover) the store on disk d into a fresh arena. */
static int rec_open(jio_sim_t *d, keel_options_t *o, keel_t **h)
{
	int rc;

	rec_options(o);
	quiet_begin();
	rc = keel_open_io(g_dir, o, jio_sim_io(d), h);
	quiet_end();
	return rc;
}

/*
 * In a recovered store that holds state st: claim at once, from all
 * partitions.  The earliest overdue timer of st must come, as delivery
 * (journaled count + 1), with its payload, or TIMEOUT if st has none due.
 * Returns its index, or NTIMERS.
 */
static unsigned rec_claim(keel_t *h, const struct state *st, keel_claim_t *c, const char *what)
{
	static uint8_t buf[TPAY_MAX + 16], want[TPAY_MAX];
	uint64_t now = keel_now_ms();
	unsigned best = NTIMERS, n = 0;
	keel_timer_stat_t ts;
	char part[24], key[16];
	size_t kl;
	int rc;

	for (unsigned i = 0; i < NTIMERS; i++) {
		n += st->t[i].present;
		if (st->t[i].present && st->t[i].due_ms <= now && (best == NTIMERS || st->t[i].due_ms < st->t[best].due_ms))
			best = i;
	}
	rc = keel_timer_claim(h, NULL, 0, LEASE_MS, 0, c, buf, sizeof buf);
	if (best == NTIMERS) {
		CHECK_MSG(rc == KEEL_E_TIMEOUT, "%s: no timer is due, but a claim returned %d (%s) (%s/%.*s)", what, rc,
			  keel_strerror(rc), rc ? "" : c->part, rc ? 0 : (int)c->klen, rc ? "" : (const char *)c->key);
		f_rec_none_due++;
		return NTIMERS;
	}
	const struct tmr *t = &st->t[best];

	kl = timer_key(best, key);
	part_name(timer_part(best), part);
	CHECK_MSG(rc == 0, "%s: timer %s/%s is overdue (due %" PRIu64 ", now %" PRIu64 ") but a claim at once returned %d (%s): %s",
		  what, part, key, t->due_ms, now, rc, keel_strerror(rc), keel_errmsg());
	fill_payload(want, t->plen, t->tag);
	CHECK_MSG(strcmp(c->part, part) == 0 && c->klen == kl && memcmp(c->key, key, kl) == 0 && c->due_ms == t->due_ms &&
			  c->plen == t->plen && c->deliveries == t->deliveries + 1 && memcmp(buf, want, t->plen) == 0,
		  "%s: a claim got %s/%.*s due %" PRIu64 " (%zu bytes, delivery %u); expected the earliest overdue, %s/%s"
		  " due %" PRIu64 " (%u bytes, delivery %u)",
		  what, c->part, (int)c->klen, (const char *)c->key, c->due_ms, c->plen, c->deliveries, part, key, t->due_ms,
		  t->plen, t->deliveries + 1);
	CHECK_OK(keel_timer_stat(h, &ts));
	CHECK_MSG(ts.claimed == 1 && ts.pending + 1 == n && ts.claims == 1,
		  "%s: after one claim keel_timer_stat says %" PRIu64 " pending, %" PRIu64 " claimed, %" PRIu64
		  " claims; expected %u, 1, 1", what, ts.pending, ts.claimed, ts.claims, n - 1);
	f_rec_claims++;
	return best;
}

/* Recover from crashed disk d (cloned at sync point s) and check it. */
static void recover_check(jio_sim_t *d, const struct stash *s, const char *how)
{
	static struct state got, want;
	unsigned tstates[NTIMERS];
	keel_options_t o;
	keel_stat_t st;
	keel_t *h = NULL;
	char what[256], diff[1024];
	uint64_t k, L;
	int rc;

	snprintf(what, sizeof what, "sync point %" PRIu64 " (acknowledged commits 1..%" PRIu64 ", in flight %" PRIu64
		 "), %s", s->sync_no, s->acked, s->issued, how);
	rc = rec_open(d, &o, &h);
	if (rc) {
		quiet_dump();
		T_FAIL("%s: recovery failed with %d (%s): %s", what, rc, keel_strerror(rc), keel_errmsg());
	}
	CHECK_OK(keel_stat(h, &st));
	L = st.applied_lsn;
	CHECK_MSG(st.durable_lsn == L && st.next_lsn == L + 1,
		  "%s: recovered with applied LSN %" PRIu64 ", durable LSN %" PRIu64 ", next LSN %" PRIu64, what, L,
		  st.durable_lsn, st.next_lsn);
	for (k = s->issued + 1; k-- > s->acked;)
		if (g_lsn[k] == L)
			break;
	if (k + 1 == s->acked) { /* wrapped: no commit in range has LSN L */
		quiet_dump();
		T_FAIL("%s: recovered up to LSN %" PRIu64 "; acknowledged commits end at LSN %" PRIu64
		       " and the commit in flight has LSN %" PRIu64 "%s",
		       what, L, g_lsn[s->acked], g_lsn[s->issued],
		       L < g_lsn[s->acked] ? ": ACKNOWLEDGED COMMITS WERE LOST" : "");
	}
	read_state(h, &got, tstates, what);
	check_money(&got, what);
	check_all_pending(&got, tstates, what);
	for (unsigned i = 0; i < NTIMERS; i++) {
		f_rec_timers += got.t[i].present;
		f_rec_counted += got.t[i].present && got.t[i].deliveries;
	}
	if (state_diff(&g_states[k], &got, diff, sizeof diff))
		T_FAIL("%s: recovered at LSN %" PRIu64 " (commit %" PRIu64 ") but the state differs: %s", what, L, k, diff);
	if (k > s->acked)
		f_beyond_acked++;
	else
		f_at_acked++;
	/* One state in eight: audit, claim an overdue timer, commit once more
	 * (with the claim's ack), lose power again. */
	if (t_rand_below(&g_crash_rng, 8) == 0) {
		static uint8_t buf[VAL_MAX];
		unsigned e = ACCOUNTS + (unsigned)t_rand_below(&g_crash_rng, MISC_KEYS), ti;
		uint64_t lsn = 0, nonce = ++g_nonce;
		uint32_t vlen = 24;
		char key[16];
		size_t kl = ent_key(e, key);
		keel_claim_t c;
		keel_txn_t *t = NULL;

		CHECK_SOUND(h, 0);
		want = got;
		ti = rec_claim(h, &want, &c, what);
		fill_value(buf, vlen, nonce);
		CHECK_OK(keel_txn_begin(h, KEEL_DURABILITY_SYNC, &t));
		CHECK_OK(keel_txn_put(t, "misc.0", key, kl, buf, vlen));
		if (ti < NTIMERS)
			CHECK_OK(keel_txn_timer_ack(t, &c));
		rc = keel_txn_commit(t, &lsn);
		CHECK_MSG(rc == 0, "%s: the first commit after recovery (a put%s) returned %d (%s): %s", what,
			  ti < NTIMERS ? " and the ack of a claim" : "", rc, keel_strerror(rc), keel_errmsg());
		CHECK_MSG(lsn == L + 1, "%s: the first commit after recovery got LSN %" PRIu64 ", expected %" PRIu64, what,
			  lsn, L + 1);
		want.e[e] = (struct ent){ 1, vlen, want.e[e].present ? want.e[e].version + 1 : 1, nonce };
		want.parts |= 1u << BANK_PARTS;
		if (ti < NTIMERS)
			memset(&want.t[ti], 0, sizeof want.t[ti]);
		CHECK_OK(keel_close(h));
		rec_drop_arena(&o);
		CHECK_OK(jio_sim_crash(d, t_rand(&g_crash_rng), JIO_CRASH_DROP));
		if ((rc = rec_open(d, &o, &h))) {
			quiet_dump();
			T_FAIL("%s, then a commit and power loss again: recovery failed with %d (%s)", what, rc,
			       keel_strerror(rc));
		}
		CHECK_OK(keel_stat(h, &st));
		CHECK_MSG(st.applied_lsn == L + 1, "%s, then a commit at LSN %" PRIu64 " and power loss: recovered to LSN %" PRIu64,
			  what, L + 1, st.applied_lsn);
		read_state(h, &got, tstates, what);
		check_all_pending(&got, tstates, what);
		if (state_diff(&want, &got, diff, sizeof diff))
			T_FAIL("%s, then a commit and power loss again: %s", what, diff);
		f_extra_commits++;
	}
	CHECK_OK(keel_close(h));
	rec_drop_arena(&o);
}

/* Recovery that dies at its op-th operation, then power loss again. */
static void recover_dies(jio_sim_t *d, uint64_t op)
{
	keel_options_t o;
	keel_t *h = NULL;
	int rc;

	jio_sim_fail(d, jio_sim_ops(d) + op, JIO_FAULT_EIO, 1);
	rc = rec_open(d, &o, &h);
	if (rc == 0)
		keel_close(h); /* it got through (or failed later, stickily) */
	else
		f_double_open_failed++;
	rec_drop_arena(&o);
	jio_sim_fail(d, 0, JIO_FAULT_NONE, 0);
	CHECK_OK(jio_sim_crash(d, t_rand(&g_crash_rng), (int)t_rand_below(&g_crash_rng, JIO_CRASH_POLICIES)));
	f_double++;
}

static const char *policy_name(int p)
{
	static const char *const n[] = { "KEEP", "DROP", "TEAR", "GARBLE", "MIX" };
	return p >= 0 && p < JIO_CRASH_POLICIES ? n[p] : "?";
}

static void process_stashes(void)
{
	for (size_t i = 0; i < g_nstash; i++) {
		struct stash *s = &g_stash[i];
		unsigned variants = jio_sim_dirty(s->disk) ? VARIANTS : 1;

		f_sync_points++;
		f_clean_points += variants == 1;
		for (unsigned v = 0; v < variants; v++) {
			int policy = v < JIO_CRASH_POLICIES ? (int)v : (int)t_rand_below(&g_crash_rng, JIO_CRASH_POLICIES);
			uint64_t seed = t_rand(&g_crash_rng);
			int dies = t_rand_below(&g_crash_rng, 16) == 0;
			uint64_t op = t_rand_below(&g_crash_rng, RECOVERY_OPS_MAX);
			jio_sim_t *d = NULL;
			char how[160];

			CHECK_OK(jio_sim_clone(s->disk, &d));
			CHECK_OK(jio_sim_crash(d, seed, policy));
			if (dies) {
				recover_dies(d, op);
				snprintf(how, sizeof how, "crash %s seed %" PRIu64 ", then recovery died at its op %" PRIu64
					 " and power was lost again", policy_name(policy), seed, op);
			} else {
				snprintf(how, sizeof how, "crash %s seed %" PRIu64, policy_name(policy), seed);
			}
			recover_check(d, s, how);
			jio_sim_destroy(d);
			f_policy[policy]++;
			f_states++;
		}
		jio_sim_destroy(s->disk);
	}
	g_nstash = 0;
}

/* ---- main ----------------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: test_durable_powerloss [--seed N] [--long] [--states N] [--from-sync N] [--verbose]\n"
		"Power loss at every sync point of a store's workload on the simulated disk;\n"
		"each crash state is recovered and checked against a model of every commit.\n"
		"  --seed N       reproduce a run\n"
		"  --long         check at least %u crash states (default %u)\n"
		"  --states N     check at least N crash states\n"
		"  --from-sync N  skip the crash checks of the first N sync points\n"
		"  --verbose      show recovery's warnings\n"
		"Exit: 0 pass, 1 fail.\n",
		STATES_LONG, STATES_DEFAULT);
}

int main(int argc, char **argv)
{
	uint64_t seed = 0, target = STATES_DEFAULT, t0;
	int seed_given = 0;
	keel_options_t o;
	struct tap tap;
	keel_t *h = NULL;
	uint64_t wrng, next_ckpt, burst = 0;

	t_begin("test_durable_powerloss");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = t_parse_u64("--seed", argv[++i]);
			seed_given = 1;
		} else if (!strcmp(argv[i], "--long")) {
			target = STATES_LONG;
		} else if (!strcmp(argv[i], "--states") && i + 1 < argc) {
			target = t_parse_u64("--states", argv[++i]);
		} else if (!strcmp(argv[i], "--from-sync") && i + 1 < argc) {
			g_from_sync = t_parse_u64("--from-sync", argv[++i]);
		} else if (!strcmp(argv[i], "--verbose")) {
			g_verbose = 1;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "test_durable_powerloss: unknown or incomplete argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	t_seed_init(seed_given, seed);
	wrng = t_rand_stream(1);
	g_crash_rng = t_rand_stream(2);
	durable_test_seg_bytes = SEG_BYTES_TEST;
	atexit(cleanup);
	signal(SIGABRT, on_fatal);
	signal(SIGSEGV, on_fatal);
	signal(SIGBUS, on_fatal);
	snprintf(g_log_path, sizeof g_log_path, "/tmp/keel-pl-%d.log", (int)getpid());
	g_log_fd = open(g_log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK_MSG(g_log_fd >= 0, "open %s: %s", g_log_path, strerror(errno));
	g_saved_stderr = dup(2);
	CHECK(g_saved_stderr >= 0);
	{
		char tmp[] = "/tmp/keel-pl-XXXXXX";
		CHECK_MSG(mkdtemp(tmp) != NULL, "mkdtemp: %s", strerror(errno));
		CHECK_MSG(realpath(tmp, g_dir) != NULL, "realpath %s: %s", tmp, strerror(errno));
	}
	g_states = calloc(COMMITS_MAX, sizeof *g_states);
	g_lsn = calloc(COMMITS_MAX, sizeof *g_lsn);
	CHECK(g_states && g_lsn);
	CHECK_OK(jio_sim_create(&g_sim));
	CHECK_OK(jio_sim_mkdirs(g_sim, g_dir));
	tap.io.ops = &tap_ops;
	tap.in = jio_sim_io(g_sim);

	keel_options_init(&o);
	o.durability = KEEL_DURABILITY_SYNC;
	o.arena_bytes_max = 64ull << 20;
	o.ring_bytes = 1u << 20;
	o.async_window_ms = 1000; /* ASYNC commits wait for the next sync commit */
	o.timer_max_deliveries = DELIVERIES_MAX;
	snprintf(g_live_arena, sizeof g_live_arena, "/dev/shm/keel-pl-%d-live", (int)getpid());
	o.arena_path = g_live_arena;
	t0 = t_now_ns();
	g_base_ms = keel_now_ms();
	g_tap_armed = 1;
	g_issued = 0;
	CHECK_OK(keel_open_io(g_dir, &o, &tap.io, &h));
	process_stashes();
	setup(h, &wrng);
	process_stashes();
	next_ckpt = g_ncommits + 100 + t_rand_below(&wrng, 100);
	while (f_states < target) {
		if (g_ncommits >= next_ckpt && !burst) {
			uint64_t lsn = 0;

			g_issued = g_ncommits;
			CHECK_OK(keel_checkpoint(h, &lsn));
			CHECK_MSG(lsn == g_lsn[g_ncommits], "checkpoint at LSN %" PRIu64 ", expected %" PRIu64 " (every commit so far)",
				  lsn, g_lsn[g_ncommits]);
			g_acked = g_ncommits;
			f_ckpts++;
			next_ckpt = g_ncommits + 100 + t_rand_below(&wrng, 100);
		} else if (burst) {
			one_txn(h, &wrng, KEEL_DURABILITY_ASYNC);
			if (--burst == 0 && t_rand_below(&wrng, 2)) {
				g_issued = g_ncommits;
				CHECK_OK(keel_sync(h));
				g_acked = g_ncommits;
				f_syncs_called++;
			}
		} else if (t_rand_below(&wrng, 8) == 0) {
			burst = 1 + t_rand_below(&wrng, 6);
			one_txn(h, &wrng, KEEL_DURABILITY_ASYNC);
			burst--;
		} else {
			one_txn(h, &wrng, KEEL_DURABILITY_SYNC);
		}
		process_stashes();
		if (g_verbose && g_ncommits % 100 == 0)
			printf("test_durable_powerloss: %" PRIu64 " commits, %" PRIu64 " crash states\n", g_ncommits, f_states);
	}
	g_tap_armed = 0;
	CHECK_OK(keel_close(h));
	printf("test_durable_powerloss: %" PRIu64 " crash states checked at %" PRIu64 " sync points (%" PRIu64
	       " with nothing unsynced) over %" PRIu64 " commits (%" PRIu64 " async, %" PRIu64 " keel_sync, %" PRIu64
	       " checkpoints) in %.1f s\n",
	       f_states, f_sync_points, f_clean_points, g_ncommits, f_async, f_syncs_called, f_ckpts,
	       (double)(t_now_ns() - t0) / 1e9);
	printf("test_durable_powerloss: policies KEEP %" PRIu64 " DROP %" PRIu64 " TEAR %" PRIu64 " GARBLE %" PRIu64
	       " MIX %" PRIu64 "; recovered exactly the acknowledged commits %" PRIu64 " times, more (a commit in"
	       " flight) %" PRIu64 " times; %" PRIu64 " extra commits after recovery; %" PRIu64
	       " recoveries died and were redone (%" PRIu64 " of them failed to open)\n",
	       f_policy[0], f_policy[1], f_policy[2], f_policy[3], f_policy[4], f_at_acked, f_beyond_acked,
	       f_extra_commits, f_double, f_double_open_failed);
	printf("test_durable_powerloss: timers: %" PRIu64 " sets, %" PRIu64 " cancels, %" PRIu64 " claims (%" PRIu64
	       " found none due), %" PRIu64 " acks, %" PRIu64 " acks in a transaction, %" PRIu64
	       " releases with a due time, %" PRIu64 " plain releases, %" PRIu64 " stale claims; after recovery %" PRIu64
	       " timers checked (%" PRIu64 " with a journaled delivery count), %" PRIu64 " overdue claimed and acked, %" PRIu64
	       " times none due\n",
	       f_tsets, f_tcancels, f_tclaims, f_tnone_due, f_tacks, f_ttxn_acks, f_treleases_due, f_treleases, f_tstale,
	       f_rec_timers, f_rec_counted, f_rec_claims, f_rec_none_due);
	/* The sweep must have reached records that were not yet synced. */
	if (f_states >= 1000)
		CHECK_MSG(f_beyond_acked > 0 && f_at_acked > 0,
			  "no crash state recovered %s: the tap did not see unsynced commits",
			  f_beyond_acked ? "only the acknowledged commits" : "a commit in flight");
	jio_sim_destroy(g_sim);
	printf("test_durable_powerloss: PASS\n");
	return 0;
}
