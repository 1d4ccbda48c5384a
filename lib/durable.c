/*
 * durable.c - the journal side of a store: identity, group commit across
 * processes, recovery and checkpoints.
 *
 * On disk, a durable store directory holds:
 *   keel.id        the store's identity (format below); its presence makes the
 *                  store durable
 *   journal/       segment files of redo records (journal.c)
 *   checkpoint/    checkpoint files (ckptfile.c)
 *
 * keel.id byte table (64 bytes, little-endian):
 *   0  u64 magic       ID_MAGIC ("KEELSTOR")
 *   8  u32 version     1
 *   12 u32 pad
 *   16 u8  uuid[16]    mixed into every journal and checkpoint checksum
 *   32 u64 created_ns
 *   40 u64 pad[2]
 *   56 u64 checksum    xxh3 of bytes 0..55
 * Valid iff magic, version and checksum match.  Written once, to a temporary
 * name, synced, renamed and the directory synced.
 *
 * Journal records are the ring's commit records (internal.h), byte for byte,
 * with the state field set to COMPLETE, or a bare 64-byte header with state
 * VOID for an LSN whose commit came to nothing, so the journal's LSNs stay
 * consecutive.
 *
 * Group commit.  Any process may flush.  The flusher holds root->flush_lock
 * (robust) while it appends every record after written_pos that is
 * COMPLETE, APPLIED or VOID, in LSN order, stopping at the first one still
 * being written, and writes them; it publishes written_pos, written_lsn and
 * the journal's end position (jpos), releases flush_lock, and only then
 * syncs, after which it raises durable_lsn and durable_pos to its end and
 * wakes the waiters on the futex word flush_seq.  So the next flusher writes
 * while the last one syncs: the disk serves both at once (on the 2-core test
 * VM, 4 sync committers went from 16-18k to 21-25k commits/s).  A sync
 * covers every write that ended before it began, so flushes may finish in
 * any order; the journal records how far each flush reaches back over
 * unsynced ones, which keeps a torn tail of overlapping flushes apart from
 * media corruption at recovery (journal.c, W6).  Records gather in the ring
 * while a flush is in flight, so the next flush takes them all.  A sync
 * commit that finds no flusher becomes the flusher.  If the flusher dies
 * writing, the next one takes flush_lock from the kernel (EOWNERDEAD) and
 * cuts what the dead one left after the written end; if it dies syncing, the
 * next flush's sync covers its write, or a waiter syncs the written end
 * itself once it has seen no progress for STALE_SYNC_NS.  A failed write or sync is never retried: root->failed becomes
 * KEEL_E_IO (every call then fails with KEEL_E_PANIC until a reopen
 * recovers) or KEEL_E_NOSPC (commits fail; reads go on).
 *
 * Recovery runs while a fresh arena is being built, before anyone can attach
 * to it: the newest valid checkpoint is loaded, then every journal record
 * after its LSN is redone (idempotent, by per-entry LSN).  A torn tail is cut
 * with a warning on stderr; a bad record followed by valid ones refuses the
 * open, naming the place (journal.c).
 *
 * A checkpoint reads, lock-free, the snapshot of every commit up to
 * S = min(applied, durable) LSN, so it never holds part of a commit and
 * never holds a commit the journal may lose; then journal segments wholly
 * below S + 1 are recycled.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/ckptfile.h"
#include "lib/crashpoint.h"
#include "lib/internal.h"
#include "lib/jio.h"
#include "lib/journal.h"

#define ID_MAGIC 0x524f54534c45454bull   /* "KEELSTOR" */
#define ID_BYTES 64u
#define FLUSH_RECORDS_MAX 4096u          /* records in one flush */
#define WAIT_SPINS_MAX 64u
#define FLUSH_ROUNDS_MAX 8                /* extra flushes one turn may do for waiters */
#define FUTEX_WAIT_NS (2 * 1000 * 1000)
#define CKPT_JOURNAL_BYTES_DEFAULT (256ull << 20)   /* automatic checkpoint */

enum { CKPT_ITEM_PART = 1, CKPT_ITEM_KV = 2 };

struct ckpt_part_item {
	uint32_t id;
	uint16_t name_len;
	uint16_t pad;
	uint64_t created_lsn;
	char name[];
};

struct ckpt_kv_item {
	uint32_t part;
	uint32_t klen;
	uint32_t vlen;
	uint32_t pad;
	uint64_t version;
	uint64_t mtime_ns;
	uint64_t lsn;
	uint8_t data[];   /* key, then value */
};
_Static_assert(sizeof(struct ckpt_kv_item) == 40, "checkpoint item");

static void join(char *buf, size_t cap, const char *dir, const char *name)
{
	snprintf(buf, cap, "%s/%s", dir, name);
}

/* jio's messages become this thread's keel_errmsg. */
static void err_hook(int code, const char *msg)
{
	shm_err(code, "%s", msg);
}

__attribute__((constructor)) static void durable_module_init(void)
{
	jio_set_err_hook(err_hook);
}

/* Tests set this to make small journal segments (0: the journal's default). */
uint64_t durable_test_seg_bytes;

unsigned keel_jio_flags(void)
{
	const char *e = getenv("KEEL_JOURNAL_IO");
	return e && strcmp(e, "syscall") == 0 ? JIO_REAL_NO_URING : 0;
}

/* ---- identity ------------------------------------------------------------------------- */

int store_id_read(jio_t *io, const char *dir, uint8_t uuid[16], int *found)
{
	char path[4200];
	uint8_t b[ID_BYTES];
	int fh, rc;
	size_t got = 0;

	*found = 0;
	join(path, sizeof(path), dir, "keel.id");
	rc = jio_open(io, path, JIO_RDONLY, &fh);
	if (rc == KEEL_E_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	rc = jio_pread(io, fh, b, sizeof(b), 0, &got);
	jio_close(io, fh);
	if (rc)
		return rc;
	uint64_t magic, sum;
	uint32_t version;
	memcpy(&magic, b, 8);
	memcpy(&version, b + 8, 4);
	memcpy(&sum, b + 56, 8);
	if (got != ID_BYTES || magic != ID_MAGIC || version != 1 || sum != XXH3_64bits(b, 56))
		return shm_err(KEEL_E_CORRUPT, "%s: not a valid store identity (%zu bytes, magic %016llx, version %u, checksum %016llx expected %016llx); restore it from a backup",
			       path, got, (unsigned long long)magic, version, (unsigned long long)sum,
			       (unsigned long long)XXH3_64bits(b, 56));
	memcpy(uuid, b + 16, 16);
	*found = 1;
	return 0;
}

int store_id_create(jio_t *io, const char *dir, uint8_t uuid[16])
{
	char path[4200], tmp[4200], sub[4200];
	uint8_t b[ID_BYTES];
	uint64_t magic = ID_MAGIC, now = shm_now_ns(), sum;
	uint32_t version = 1;
	int fh, rc;

	if (getrandom(uuid, 16, 0) != 16) {
		uint64_t r[2] = { now ^ (uint64_t)getpid(), XXH3_64bits(dir, strlen(dir)) ^ now };
		memcpy(uuid, r, 16);
	}
	memset(b, 0, sizeof(b));
	memcpy(b, &magic, 8);
	memcpy(b + 8, &version, 4);
	memcpy(b + 16, uuid, 16);
	memcpy(b + 32, &now, 8);
	sum = XXH3_64bits(b, 56);
	memcpy(b + 56, &sum, 8);
	join(sub, sizeof(sub), dir, "journal");
	if ((rc = jio_mkdir(io, sub)))
		return rc;
	join(sub, sizeof(sub), dir, "checkpoint");
	if ((rc = jio_mkdir(io, sub)))
		return rc;
	join(path, sizeof(path), dir, "keel.id");
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return shm_err(KEEL_E_INVAL, "store directory path too long: %s", dir);
	if ((rc = jio_open(io, tmp, JIO_RDWR | JIO_CREATE | JIO_TRUNC, &fh)))
		return rc;
	struct jio_wr w = { 0, b, sizeof(b) };
	rc = jio_write(io, fh, &w, 1, JIO_W_DATASYNC);
	jio_close(io, fh);
	if (rc || (rc = jio_rename(io, tmp, path)) || (rc = jio_fsync_dir(io, dir)))
		return rc;
	return 0;
}

/* ---- the flusher ------------------------------------------------------------------------ */

static int failed_code(keel_t *h)
{
	int f = h->root->failed;
	if (f == KEEL_E_IO)
		return shm_err(KEEL_E_PANIC, "the journal failed earlier; nothing more is acknowledged; reopen to recover");
	if (f == KEEL_E_NOSPC)
		return shm_err(KEEL_E_NOSPC, "the journal disk is full; commits are refused until space is freed and the store reopened; reads go on");
	return 0;
}

/*
 * Flush waiters.  root->flush_waiters counts the threads waiting for a flush
 * (asleep on flush_seq, or yielding); the flusher wakes them and gathers as
 * many next commits.  Each process also counts its own in its process slot,
 * so that a process killed while waiting gives its count back when its slot
 * is reaped (store.c: proc_reaped).  Increments go to the shared count
 * first and decrements leave the slot first, so a death between the two
 * can only leave the shared count too high, never make it wrap.  A count
 * left too high shows as a gather that waits in vain; the flusher then
 * reaps dead processes (at most every REAP_EVERY_NS), which corrects it.
 */
#define REAP_EVERY_NS (50u * 1000u * 1000u)
static void waiter_add(keel_t *h)
{
	shm_faa32(&h->root->flush_waiters, 1);
	shm_faa32(&shm_proc_slot(&h->a, h->proc)->waiting, 1);
}

static void waiter_sub(keel_t *h)
{
	shm_faa32(&shm_proc_slot(&h->a, h->proc)->waiting, (uint32_t)-1);
	shm_faa32(&h->root->flush_waiters, (uint32_t)-1);
}

static void reap_now_and_then(keel_t *h)
{
	static uint64_t last;   /* per process: enough for a rate limit */
	uint64_t now = shm_mono_ns();

	if (now - shm_load(&last) < REAP_EVERY_NS)
		return;
	shm_store(&last, now);
	shm_reap(&h->a, NULL, NULL);
}

static void wake(keel_t *h)
{
	uint32_t waiters = shm_load32(&h->root->flush_waiters);

	shm_store32(&h->root->flush_last_waiters, waiters);
	shm_faa32(&h->root->flush_seq, 1);
	if (waiters)
		syscall(SYS_futex, &h->root->flush_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/*
 * Group commit's gather step.  The processes a flush has just woken need the
 * CPU to make their next commits, and on a small machine the flusher of the
 * next turn (often the process that just flushed) gets there first: flushing
 * at once would write one record per sync.  So when the last flush woke
 * others, the next flusher yields, holding the flush lock, until as many
 * commits as it woke are in the ring or GATHER_NS passes.  With one
 * committer nobody was woken and nothing waits.  Measured with keel-bench
 * sync (2-core machine): 2 committers went from 0.86x one committer's rate
 * to 1.5-1.9x, 16 committers from about 45k to 50-54k commits/s.  The cost:
 * after a burst whose processes then fall idle, one commit waits up to
 * GATHER_NS for commits that do not come.
 *
 * It waits for three quarters of them, not all: the last few woken
 * processes are the slowest to get a CPU, and waiting for them left the
 * disk idle; their commits go into the next batch, whose write overlaps
 * this one's sync.  Measured with a 16-process sync loop (2 cores, seven
 * rounds alternating): all of them, 52k-63k commits/s (median 54k); three
 * quarters, 59k-75k (median 67k); half, 61k-67k.  Up to 4 processes
 * nothing changes (a quarter of 1 to 3 waiters rounds to none), and 8
 * processes measured the same.
 */
#define GATHER_NS (200u * 1000u)
static void gather(keel_t *h)
{
	struct keel_root *root = h->root;
	uint32_t want = shm_load32(&root->flush_last_waiters);
	uint64_t t0 = 0;

	if (want == 0)
		return;
	if (want > 64)
		want = 64;
	want -= want / 4;   /* three quarters (above): the stragglers go into the next batch */

	for (;;) {
		uint64_t pending = next_lsn(root) - 1 - shm_load_acq(&root->written_lsn);
		if (pending >= (uint64_t)want + 1)
			return;
		uint64_t now = shm_mono_ns();
		if (!t0) {
			t0 = now;
		} else if (now - t0 > GATHER_NS) {
			reap_now_and_then(h);   /* the waiters may have died */
			return;
		}
		sched_yield();
	}
}

static void fail(keel_t *h, int rc)
{
	fprintf(stderr, "keel: journal failed (%s): %s\n", keel_strerror(rc), shm_errmsg());
	if (rc == KEEL_E_PANIC && h->jnl) {   /* the journal's sticky error names the cause */
		jnl_info_t ji;
		jnl_info(h->jnl, &ji);
		if (ji.failed)
			rc = ji.failed;
	}
	int32_t code = rc == KEEL_E_NOSPC ? KEEL_E_NOSPC : KEEL_E_IO;
	__atomic_store_n(&h->root->failed, code, __ATOMIC_RELEASE);
	wake(h);
}

static int journal_dir(keel_t *h, char *buf, size_t cap)
{
	join(buf, cap, h->dir, "journal");
	return 0;
}

/* This process's journal writer, positioned at the shared durable end. */
static int writer_ready(keel_t *h, int died)
{
	struct keel_root *root = h->root;
	char dir[4200];
	int rc;

	journal_dir(h, dir, sizeof(dir));
	if (h->jnl && died && root->jpos_valid) {
		/* Reopen at the shared end, cutting what the dead flusher left
		 * (below), rather than reload, which scans a whole segment. */
		jnl_close(h->jnl);
		h->jnl = NULL;
	}
	if (!h->jnl) {
		jnl_opts_t o;
		jnl_opts_init(&o);
		o.first_lsn = shm_load_acq(&root->durable_lsn) + 1;
		o.flags = JNL_OPEN_REPAIR;
		if (durable_test_seg_bytes)
			o.seg_bytes = durable_test_seg_bytes;
		/* The shared end is exact after a clean flush: open there and
		 * read segment headers only (a scan reads a whole segment).  If
		 * the last flusher died in its turn, it wrote at most one ring's
		 * worth of records after that end (a flush takes them from the
		 * ring): that span is read and cut, so survivors wait for
		 * milliseconds, not for a 64 MiB read. */
		jnl_pos_t at;
		if (root->jpos_valid) {
			memcpy(&at, root->jpos, sizeof(at));
			o.at = &at;
			if (died)
				o.at_span = h->a.ring_bytes + 2 * JNL_REC_HEADER_BYTES + JIO_SECTOR_BYTES;
		}
		if ((rc = jnl_open(dir, h->io, root->uuid, &o, &h->jnl)))
			return rc;
		return 0;
	}
	if (!root->jpos_valid)
		return jnl_reload(h->jnl, JNL_OPEN_REPAIR);
	return jnl_set_pos(h->jnl, (const jnl_pos_t *)root->jpos);
}

/*
 * This handle's journal writer, for work outside a flush (recycling after a
 * checkpoint, adopting a spare): flush_mu (another thread of the handle may
 * be between its write and its sync), then flush_lock, taking over a dead
 * holder's, and the writer positioned at the shared end.  0 with both held
 * and *ready the positioning's result (writer_give releases them); nonzero
 * when flush_lock could not be had.
 */
static int writer_take(keel_t *h, int *ready)
{
	pthread_mutex_lock(&h->flush_mu);
	int lr = shm_lock_acquire(&h->root->flush_lock);
	if (lr < 0) {
		pthread_mutex_unlock(&h->flush_mu);
		return lr;
	}
	if (lr == SHM_LOCK_DIED)
		shm_lock_consistent(&h->root->flush_lock);
	*ready = writer_ready(h, lr == SHM_LOCK_DIED);
	return 0;
}

static void writer_give(keel_t *h)
{
	shm_lock_release(&h->root->flush_lock);
	pthread_mutex_unlock(&h->flush_mu);
}

/* Publish that every record before ring position `pos` (LSNs up to `lsn`)
 * is written to the journal; under flush_lock. */
static void set_written(keel_t *h, uint64_t pos, uint64_t lsn)
{
	jnl_pos_t jp;
	jnl_info_t ji;
	struct keel_root *root = h->root;

	jnl_get_pos(h->jnl, &jp);
	jnl_info(h->jnl, &ji);
	root->journal_bytes = (uint64_t)(ji.segments ? ji.segments - 1 : 0) * ji.seg_bytes + ji.seg_off;
	memcpy(root->jpos, &jp, sizeof(jp));
	root->jpos_valid = 1;
	shm_store(&root->written_ns, shm_mono_ns());
	shm_store_rel(&root->written_pos, pos);
	shm_store_rel(&root->written_lsn, lsn);
}

/* Raise durable_pos and durable_lsn to at least pos and lsn (flushes that
 * overlap finish in any order), count the flush and wake the waiters. */
static void set_durable(keel_t *h, uint64_t pos, uint64_t lsn)
{
	struct keel_root *root = h->root;

	for (uint64_t cur = shm_load_acq(&root->durable_pos); cur < pos; cur = shm_load_acq(&root->durable_pos))
		if (shm_cas(&root->durable_pos, cur, pos))
			break;
	/* R10: pairs with A10 in waiters */
	for (uint64_t cur = shm_load_acq(&root->durable_lsn); cur < lsn; cur = shm_load_acq(&root->durable_lsn))
		if (shm_cas(&root->durable_lsn, cur, lsn))
			break;
	shm_faa(&root->flushes, 1);
	shm_store(&root->last_flush_ns, shm_mono_ns());
	wake(h);
}

/*
 * The write half of a flush; the caller holds flush_lock.  Appends every
 * ready record after the written end and writes them (jnl_write), without
 * syncing: *upto_lsn and *upto_pos get the end this call wrote (0: none),
 * which the caller syncs after releasing flush_lock (flush_round).  So the
 * next flusher writes while this one syncs: the disk serves both at once,
 * and a sync covers every write that ended before it began (journal.c, W6).
 */
static int flush_locked(keel_t *h, int died, uint64_t *upto_lsn, uint64_t *upto_pos)
{
	struct keel_root *root = h->root;
	uint64_t rb = h->a.ring_bytes;
	uint64_t pos = root->written_pos, expect = root->written_lsn + 1, head = ring_head(root);
	uint32_t n = 0;
	int rc;

	*upto_lsn = *upto_pos = 0;
	if ((rc = failed_code(h)))
		return rc;
	if (pos >= head)
		return 0;
	if ((rc = writer_ready(h, died)))
		goto failed;
	/* A flusher that died after its write but before publishing left the
	 * journal ahead of written_lsn: those records are written already. */
	jnl_info_t pre;
	jnl_info(h->jnl, &pre);
	if (pre.next_lsn != expect) {
		/* The shared position and durable_lsn disagree: the disk decides. */
		if ((rc = jnl_reload(h->jnl, JNL_OPEN_REPAIR)))
			goto failed;
		jnl_info(h->jnl, &pre);
	}
	if (pre.next_lsn < expect) {
		rc = shm_err(KEEL_E_CORRUPT, "the journal ends at LSN %llu but LSN %llu was published durable",
			     (unsigned long long)(pre.next_lsn - 1), (unsigned long long)(expect - 1));
		goto failed;
	}
	for (uint64_t steps = 0; expect < pre.next_lsn && pos < head && steps < rb / REC_ALIGN; steps++) {
		struct rec *r = rec_at(h, pos);
		if (shm_load_acq(&r->lsn) != expect)
			break;
		if (shm_load32_acq(&r->state) != REC_PAD)
			expect++;
		pos += r->len;
	}
	if (expect < pre.next_lsn) {
		rc = shm_err(KEEL_E_CORRUPT, "the journal holds LSNs up to %llu that the ring does not (ring reaches %llu)",
			     (unsigned long long)(pre.next_lsn - 1), (unsigned long long)(expect - 1));
		goto failed;
	}
	if (expect - 1 > root->written_lsn) {
		set_written(h, pos, expect - 1);
		*upto_lsn = expect - 1;
		*upto_pos = pos;
	}
	/* W6: this flush reaches back only over what is not known durable. */
	jnl_set_synced(h->jnl, shm_load_acq(&root->durable_lsn));
	for (uint64_t steps = 0; pos < head && n < FLUSH_RECORDS_MAX && steps < rb / REC_ALIGN; steps++) {
		struct rec *r = rec_at(h, pos);
		if (shm_load_acq(&r->lsn) != expect) {
			ring_void_hole(h, pos, expect);
			if (shm_load_acq(&r->lsn) != expect)
				break;   /* reserved, header not written yet */
		}
		uint32_t st = shm_load32_acq(&r->state);
		if (!rec_fits(h, pos, r, rb / 4 + REC_ALIGN)) {
			if (st == REC_PAD && rec_fits(h, pos, r, rb)) {
				pos += r->len;
				continue;
			}
			rc = shm_err(KEEL_E_CORRUPT, "ring record at position %llu (LSN %llu) has a bad header (length %u)",
				     (unsigned long long)pos, (unsigned long long)expect, r->len);
			goto failed;
		}
		if (st == REC_PAD) {
			pos += r->len;
			continue;
		}
		if (st == REC_RESERVED) {
			help_record(h, pos, 1);   /* void it if its owner died */
			st = shm_load32_acq(&r->state);
			if (st == REC_RESERVED)
				break;
		}
		struct rec hdr = *r;
		hdr.state = st == REC_VOID ? REC_VOID : REC_COMPLETE;
		if (st == REC_VOID) {
			hdr.len = sizeof(struct rec);
			hdr.nops = 0;
			hdr.nparts = 0;
			hdr.checksum = 0;
			rc = jnl_append(h->jnl, expect, &hdr, sizeof(hdr));
		} else {
			/* The ring keeps the record until durable_pos passes it. */
			uint8_t *buf = malloc(r->len);
			if (!buf) {
				rc = shm_err(KEEL_E_NOMEM, "out of memory for a journal record");
				goto failed;
			}
			memcpy(buf, &hdr, sizeof(hdr));
			memcpy(buf + sizeof(hdr), r->body, r->len - sizeof(hdr));
			rc = jnl_append(h->jnl, expect, buf, r->len);
			free(buf);
		}
		if (rc)
			goto failed;
		pos += r->len;
		expect++;
		n++;
	}
	if (n == 0)
		return 0;
	KEEL_CRASH_POINT(CP_FLUSH_WRITTEN);
	if ((rc = jnl_write(h->jnl)))
		goto failed;
	set_written(h, pos, expect - 1);
	*upto_lsn = expect - 1;
	*upto_pos = pos;
	return 0;
failed:
	root->jpos_valid = 0;
	if (rc == KEEL_E_IO || rc == KEEL_E_NOSPC || rc == KEEL_E_PANIC || rc == KEEL_E_CORRUPT) {
		fail(h, rc);
		return failed_code(h);   /* NOSPC or PANIC, as the cause decides */
	}
	return rc;
}

/* The sync half of a flush, flush_lock released: make the journal durable
 * up to what this process wrote, and publish it. */
static int flush_sync(keel_t *h, uint64_t upto_lsn, uint64_t upto_pos)
{
	int rc = jnl_sync(h->jnl);

	if (rc) {
		fail(h, rc);
		return failed_code(h);
	}
	KEEL_CRASH_POINT(CP_FLUSH_SYNCED);
	set_durable(h, upto_pos, upto_lsn);
	return 0;
}

/*
 * One flush: the write under flush_lock, then the sync without it.  With
 * nothing of its own to write while another process's sync is in flight,
 * the caller is told BUSY and waits for that sync; if that sync seems lost
 * (its process died or stopped after writing: no progress for
 * STALE_SYNC_NS), this one syncs the written end itself.
 */
#define STALE_SYNC_NS (2u * 1000u * 1000u)
static int flush_round(keel_t *h, int wait, int first)
{
	struct keel_root *root = h->root;
	int rc = wait ? shm_lock_acquire(&root->flush_lock) : shm_lock_try(&root->flush_lock);
	int died = 0, busy = 0;
	uint64_t upto_lsn = 0, upto_pos = 0;

	if (rc == SHM_LOCK_BUSY)
		return SHM_LOCK_BUSY;
	if (rc < 0)
		return shm_lock_err(&root->flush_lock, rc, "flush lock");
	if (rc == SHM_LOCK_DIED) {
		died = 1;   /* a flusher died: its write may be torn */
		shm_lock_consistent(&root->flush_lock);
	}
	if (!died && first && ring_head(root) > shm_load_acq(&root->written_pos))
		gather(h);
	rc = flush_locked(h, died, &upto_lsn, &upto_pos);
	if (rc == 0 && upto_lsn == 0 && shm_load_acq(&root->written_lsn) > shm_load_acq(&root->durable_lsn)) {
		if (died || shm_mono_ns() - shm_load(&root->written_ns) > STALE_SYNC_NS) {
			if ((rc = writer_ready(h, died)) == 0) {
				upto_pos = shm_load_acq(&root->written_pos);
				upto_lsn = shm_load_acq(&root->written_lsn);
			} else {
				root->jpos_valid = 0;
				fail(h, rc);
				rc = failed_code(h);
			}
		} else {
			busy = 1;
		}
	}
	shm_lock_release(&root->flush_lock);
	if (rc == 0 && upto_lsn > shm_load_acq(&root->durable_lsn))
		rc = flush_sync(h, upto_lsn, upto_pos);
	return rc ? rc : busy ? SHM_LOCK_BUSY : 0;
}

static int flush_turn(keel_t *h, int wait)
{
	struct keel_root *root = h->root;
	int rc;

	if (wait)
		pthread_mutex_lock(&h->flush_mu);
	else if (pthread_mutex_trylock(&h->flush_mu))
		return SHM_LOCK_BUSY;
	rc = flush_round(h, wait, 1);
	/* While others wait and records are ready, flush again at once: the
	 * disk stays busy and nobody pays a wake-up to take the next turn. */
	for (int round = 0; rc == 0 && round < FLUSH_ROUNDS_MAX && shm_load32(&root->flush_waiters); round++) {
		uint64_t before = shm_load_acq(&root->written_pos);
		if (ring_head(root) <= before)
			break;
		rc = flush_round(h, 0, 0);
		if (rc == SHM_LOCK_BUSY || shm_load_acq(&root->written_pos) == before) {
			rc = 0;
			break;
		}
	}
	pthread_mutex_unlock(&h->flush_mu);
	return rc;
}

int durable_try_flush(keel_t *h)
{
	if (!h->root->journaled)
		return 0;
	int rc = flush_turn(h, 0);
	return rc == SHM_LOCK_BUSY ? 0 : rc;
}

void durable_wait_drain(keel_t *h)
{
	struct keel_root *root = h->root;
	uint32_t seq = shm_load32_acq(&root->flush_seq);
	uint64_t pos = shm_load_acq(&root->durable_pos);

	if (durable_try_flush(h) != 0 || shm_load_acq(&root->durable_pos) != pos)
		return;   /* flushed now (or failed: the caller sees root->failed) */
	struct timespec ts = { 0, FUTEX_WAIT_NS / 2 };
	waiter_add(h);
	if (shm_load32_acq(&root->flush_seq) == seq)
		syscall(SYS_futex, &root->flush_seq, FUTEX_WAIT, seq, &ts, NULL, 0);
	waiter_sub(h);
}

/*
 * How a committer waits for someone else's flush.  After a short spin it
 * normally sleeps on the flush futex.  But when more processes wait than
 * there are CPUs, every sleep and wake-up is CPU that the others need to
 * make their next commits: on a 2-core host with 16 committers the futex
 * round trips (and the inter-processor interrupts behind them) left the
 * disk idle between flushes.  So in that case the waiter gives its CPU away
 * with sched_yield, checking between yields, for up to YIELD_WAIT_NS (a few
 * flushes), and only then sleeps.  A yield costs nothing when others are
 * runnable, which is exactly when this path is taken.  Measured with a
 * 16-process sync commit loop (2 cores): 54k commits/s with futex waits,
 * 63-70k with yields; one committer and few committers are unchanged (they
 * sleep as before).
 */
#define YIELD_WAIT_NS (400u * 1000u)
static int ncpu(void)
{
	static int n;
	if (!n) {
		cpu_set_t set;
		int c = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
		n = c > 0 ? c : 1;
	}
	return n;
}

/*
 * A sync commit that has waited SHM_STALL_NOTE_NS for the journal: if a stopped
 * process (SIGSTOP, ^Z, a debugger) is what holds it up, say so on stderr,
 * naming it.  The journal is written in LSN order by one writer at a time,
 * so a process stopped while it writes a flush (holding the flush lock) or
 * between reserving and completing its commit record holds up every sync
 * commit after it until it is continued (README, "Durability"); a commit
 * that just hangs would leave the operator guessing.  Rate-limited with the
 * lock waits' lines (shm/lock.h, shm_stall_note_due).
 */
static int warn_stall(keel_t *h, uint64_t lsn, uint64_t waited_ns)
{
	struct keel_root *root = h->root;
	uint32_t pid = shm_lock_stopped_holder(&root->flush_lock);
	const char *what = "while it holds the journal's flush lock (writing a flush)";

	if (!pid) {
		uint32_t owner = ring_record_owner(h, shm_load_acq(&root->written_pos),
						   shm_load_acq(&root->written_lsn) + 1, 0);
		if (owner && owner != h->pid && shm_pid_stopped(owner, 0)) {
			pid = owner;
			what = "between reserving and completing its commit record";
		}
	}
	if (!pid)
		return 0;   /* nobody to name yet: the caller asks again */
	if (shm_stall_note_due())
		fprintf(stderr, "keel: a sync commit (LSN %llu) has waited %.1f s for the journal: process %u is "
			"stopped (a signal or a debugger) %s, and every sync commit waits for it; continue it "
			"(kill -CONT %u) or kill it\n", (unsigned long long)lsn, (double)waited_ns / 1e9, pid, what, pid);
	return 1;
}

/* The journal has not moved for this commit since *from (0: not timed
 * yet): once that has lasted SHM_STALL_NOTE_NS, ask warn_stall to name a
 * stopped process, again every second until it has.  1 once the wait has
 * lasted that long. */
static int stalled(keel_t *h, uint64_t lsn, uint64_t *from, uint64_t *next, int *warned)
{
	uint64_t now = shm_mono_ns();

	if (!*from) {
		*from = now;
		return 0;
	}
	if (now - *from <= SHM_STALL_NOTE_NS)
		return 0;
	if (!*warned && now >= *next) {
		*warned = warn_stall(h, lsn, now - *from);
		*next = now + 1000000000ull;
	}
	return 1;
}

static int wait_durable(keel_t *h, uint64_t lsn)
{
	struct keel_root *root = h->root;
	uint64_t yield_from = 0, stall_from = 0, stall_next = 0, seen = 0;
	int rc, yielding = 0, warned = 0;

	for (uint32_t i = 0;; i++) {
		uint64_t durable = shm_load_acq(&root->durable_lsn);
		if (durable >= lsn) {   /* A10 */
			rc = 0;
			break;
		}
		if (durable != seen) {   /* the journal moves: not stalled */
			seen = durable;
			stall_from = 0;
		}
		if ((rc = failed_code(h)))
			break;
		uint32_t seq = shm_load32_acq(&root->flush_seq);
		/* Written by another flusher, whose sync is in flight: wait for
		 * it rather than take the flush lock for nothing. */
		if (lsn <= shm_load_acq(&root->written_lsn) &&
		    shm_mono_ns() - shm_load(&root->written_ns) <= STALE_SYNC_NS)
			rc = SHM_LOCK_BUSY;
		else
			rc = flush_turn(h, 0);
		if (rc != SHM_LOCK_BUSY) {
			if (rc)
				break;
			/* A turn that wrote nothing: the next record is not complete
			 * yet.  Its committer is writing it, or is stopped (then this
			 * says so, and stops spinning). */
			if (i % 64 == 63 && stalled(h, lsn, &stall_from, &stall_next, &warned))
				usleep(100);
			continue;
		}
		if (i < WAIT_SPINS_MAX) {
			__builtin_ia32_pause();
			continue;
		}
		/* Yielders count as waiters, so the flusher's gather waits for
		 * their next commits too. */
		if (yielding || shm_load32(&root->flush_waiters) + 1 > (uint32_t)ncpu()) {
			uint64_t now = shm_mono_ns();
			if (!yield_from)
				yield_from = now;
			if (now - yield_from < YIELD_WAIT_NS) {
				if (!yielding) {
					waiter_add(h);
					yielding = 1;
				}
				sched_yield();
				continue;
			}
		}
		if (yielding) {
			waiter_sub(h);
			yielding = 0;
		}
		/* Someone else flushes: sleep until its flush ends. */
		stalled(h, lsn, &stall_from, &stall_next, &warned);
		struct timespec ts = { 0, FUTEX_WAIT_NS };
		waiter_add(h);
		if (shm_load32_acq(&root->flush_seq) == seq && shm_load_acq(&root->durable_lsn) < lsn)
			syscall(SYS_futex, &root->flush_seq, FUTEX_WAIT, seq, &ts, NULL, 0);
		waiter_sub(h);
	}
	if (yielding)
		waiter_sub(h);
	return rc;
}

/* Checkpoint when the journal has grown by checkpoint_bytes since the last
 * one: one process at a time (ckpt_running), by whoever notices first.  A
 * dead checkpointer's claim is taken over. */
static void maybe_checkpoint(keel_t *h)
{
	struct keel_root *root = h->root;
	uint64_t claim = shm_load(&root->ckpt_running);

	if (h->readonly || root->journal_bytes < root->ckpt_journal_bytes + h->checkpoint_bytes)
		return;
	if (claim && shm_pid_alive((uint32_t)claim, 0))
		return;
	if (!shm_cas(&root->ckpt_running, claim, h->pid))
		return;
	uint64_t lsn;
	if (keel_checkpoint(h, &lsn) != 0)
		root->ckpt_journal_bytes = root->journal_bytes;   /* do not retry at every commit */
	shm_store_rel(&root->ckpt_running, 0);
}

int durable_after_commit(keel_t *h, uint64_t lsn, int durability)
{
	if (!h->root->journaled)
		return 0;
	if (durability == KEEL_DURABILITY_SYNC)
		return wait_durable(h, lsn);
	/* async (and memory overrides): on disk within the window; the handle's
	 * background thread flushes too, so an idle store is covered */
	if (shm_mono_ns() - h->root->last_flush_ns > (uint64_t)h->async_window_ms * 1000000ull)
		return durable_try_flush(h);
	return 0;
}

/* The handle's background thread: flushes async commits within their window
 * and writes checkpoints as the journal grows, off the committers' path. */
#define MAINT_PERIOD_MS_MAX 100u

uint64_t durable_record_max(void)
{
	return JNL_PAYLOAD_MAX(durable_test_seg_bytes ? durable_test_seg_bytes : JNL_SEG_BYTES_DEFAULT);
}

#define MAINT_SLICE_MS 20u

/*
 * fork() and the background threads.  A thread doing a round (a flush, a
 * checkpoint) holds locks of its own and of the C library; a process forked
 * from another thread at that moment would inherit them held, and its own
 * handle's thread could then wait forever.  Each round holds maint_fork_mu,
 * and fork() takes it first (pthread_atfork), so a fork happens only while
 * every background thread of the process sleeps, holding nothing.
 */
static pthread_mutex_t maint_fork_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t flusher_fork_mu = PTHREAD_MUTEX_INITIALIZER;   /* the same, for flusher_main */
static void maint_fork_prepare(void)
{
	pthread_mutex_lock(&maint_fork_mu);
	pthread_mutex_lock(&flusher_fork_mu);
}
static void maint_fork_release(void)
{
	pthread_mutex_unlock(&flusher_fork_mu);
	pthread_mutex_unlock(&maint_fork_mu);
}
__attribute__((constructor)) static void maint_module_init(void)
{
	pthread_atfork(maint_fork_prepare, maint_fork_release, maint_fork_release);
}

/*
 * Spare segments, made ahead of the writer.  Without a spare, the flusher
 * that fills a segment creates the next one inline, zero-filling 64 MiB
 * under flush_lock: every committer stalled for it (35 to 57 ms on the test
 * VM, once per 64 MiB of journal).  So the background thread, when an
 * eighth of the current segment is used (SPARE_AFTER_PART) and no spare
 * is left, fills a file of its own without any lock and only then, under
 * flush_lock, adopts it as the next spare (a header, a rename, two syncs).
 * Files "spare-<pid>-<n>.tmp" of dead processes are removed.
 */
/* Between two 1 MiB steps of a fill: 2 ms, so that the fill takes about a
 * third of a disk that writes 1.5 GB/s, and commits' syncs never wait for
 * more than one step. */
#define SPARE_AFTER_PART 8   /* make the spare once 1/8 of the segment is used */
static void spare_pace(void *ctx)
{
	keel_t *h = ctx;
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	if (!h->async_stop)
		nanosleep(&ts, NULL);
}

/* One walk of the journal directory's names: count the segment files
 * numbered after the current one (spares, by the writer's rules), and
 * remove the spare files that dead processes were filling and any drop
 * file left behind (journal.h). */
struct spare_scan {
	jio_t *io;
	const char *dir;
	uint64_t after;
	unsigned spares;
};

static int scan_spare(void *ctx, const char *name)
{
	struct spare_scan *sc = ctx;
	uint64_t segno;
	unsigned pid = 0;
	unsigned long long n = 0;
	char path[4200];

	if (jnl_parse_name(name, &segno)) {
		sc->spares += segno > sc->after;
	} else if (jnl_is_drop_name(name) ||   /* a checkpointer's, dead or about to unlink it */
		   (sscanf(name, "spare-%u-%llu.tmp", &pid, &n) == 2 && pid && !shm_pid_alive(pid, 0))) {
		join(path, sizeof(path), sc->dir, name);
		jio_unlink(sc->io, path);
	}
	return 0;
}

/* When an eighth of the current segment is used and no spare follows it,
 * fill one.  What it needs is read from the shared journal position and the
 * directory's names, without the flush lock (a process stopped while
 * holding it would stop every committer). */
static void prepare_spare(keel_t *h)
{
	struct keel_root *root = h->root;
	char dir[4200], name[64], path[4300];
	jio_t *io = NULL;
	jnl_pos_t at;

	if (h->readonly || root->failed || !h->io_owned || !root->jpos_valid)
		return;
	memcpy(&at, (const void *)root->jpos, sizeof(at));
	if (at.off <= at.seg_bytes / SPARE_AFTER_PART)
		return;
	/* Through an I/O backend of its own: the handle's belongs to its
	 * flushes, which go on meanwhile. */
	if (jio_real_create(0, keel_jio_flags(), 0600, &io))
		return;
	journal_dir(h, dir, sizeof(dir));
	struct spare_scan sc = { io, dir, at.segno, 0 };
	if (jio_list(io, dir, scan_spare, &sc) != 0 || sc.spares > 0) {
		jio_destroy(io);
		return;
	}
	snprintf(name, sizeof(name), "spare-%u-%llu.tmp", (unsigned)h->pid, (unsigned long long)h->serial);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int rc = jnl_spare_fill(io, dir, name, at.seg_bytes, spare_pace, h);
	if (rc == 0) {
		int ready;
		rc = KEEL_E_OS;
		if (writer_take(h, &ready) == 0) {
			rc = ready ? ready : root->failed ? KEEL_E_PANIC : jnl_spare_adopt(h->jnl, name);
			if (rc == KEEL_E_IO || rc == KEEL_E_NOSPC || rc == KEEL_E_PANIC)
				fail(h, rc);
			writer_give(h);
		}
	}
	if (rc)
		jio_unlink(io, path);   /* not adopted: do not leave 64 MiB behind */
	jio_destroy(io);
}

/* Sleep period_ms in slices, so that close never waits long. */
static void maint_sleep(keel_t *h, uint32_t period_ms)
{
	for (uint32_t slept = 0; slept < period_ms && !h->async_stop; slept += MAINT_SLICE_MS) {
		uint32_t ms = period_ms - slept < MAINT_SLICE_MS ? period_ms - slept : MAINT_SLICE_MS;
		struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000l };
		nanosleep(&ts, NULL);
	}
}

/* A background thread's round of keeping commits off slow paths: flush
 * what is pending, and prepare the arena's next growth step. */
static void keep_ahead(keel_t *h)
{
	if (next_lsn(h->root) - 1 > shm_load_acq(&h->root->durable_lsn))
		durable_try_flush(h);
	shm_arena_grow_ahead(&h->a);
}

/*
 * An async handle's flusher: a thread that does nothing but flush, at half
 * the window, so the flush is done before a committer finds the window
 * passed and has to flush on its own path (with the period equal to the
 * window, committers did most flushes, each stalling its commit for the
 * write and the sync).  It is not maint_main's job: a checkpoint or a spare
 * segment keeps that thread busy for seconds, in steps that wait for the
 * disk, and meanwhile the committers flushed, each waiting 5-23 ms behind
 * the checkpoint's writes (seen with strace in an async put loop over 1M
 * keys).  Measured with that loop (5M puts, three rounds alternating with
 * the old library): 642k-740k puts/s against 590k-716k, 31-40 pauses over
 * 5 ms against 38-59, and 557-604 ms asleep in them against 618-828 ms.
 * What is left is the ring waiting for a disk that also writes the
 * checkpoint: backpressure.  A committer that finds the window passed
 * still flushes (the flusher may not get a CPU), but while the flusher is
 * at work it does not wait for it: flush_turn only tries the handle's
 * flush_mu.
 */
static void *flusher_main(void *arg)
{
	keel_t *h = arg;
	uint32_t period = (h->async_window_ms + 1) / 2;

	while (!h->async_stop) {
		maint_sleep(h, period);
		if (h->async_stop || h->root->failed)
			continue;
		pthread_mutex_lock(&flusher_fork_mu);
		keep_ahead(h);   /* here, not in maint_main, which may be inside a long checkpoint */
		pthread_mutex_unlock(&flusher_fork_mu);
	}
	return NULL;
}

static void *maint_main(void *arg)
{
	keel_t *h = arg;
	/* Async handles have a flusher thread: this one checkpoints and makes
	 * spares, looking often enough to have the next segment ready before
	 * a fast writer fills the current one.  It flushes and grows ahead only
	 * for a sync handle (async commits by transaction), every
	 * MAINT_PERIOD_MS_MAX. */
	uint32_t period = h->durability == KEEL_DURABILITY_SYNC ? MAINT_PERIOD_MS_MAX : MAINT_SLICE_MS;

	while (!h->async_stop) {
		maint_sleep(h, period);
		if (h->async_stop || h->root->failed)
			continue;
		pthread_mutex_lock(&maint_fork_mu);
		if (!h->flush_running)
			keep_ahead(h);
		prepare_spare(h);
		maybe_checkpoint(h);
		pthread_mutex_unlock(&maint_fork_mu);
	}
	return NULL;
}

int durable_open(keel_t *h, const keel_options_t *opt, int created)
{
	(void)created;
	h->async_window_ms = opt->async_window_ms ? opt->async_window_ms : 10;
	h->checkpoint_bytes = (uint64_t)(opt->checkpoint_mb ? opt->checkpoint_mb : 256) << 20;
	if (!h->root->journaled)
		return 0;
	if (!h->io) {
		int rc = jio_real_create(0, keel_jio_flags(), 0600, &h->io);
		if (rc)
			return rc;
		h->io_owned = 1;
	}
	/* A backend given by the caller (tests' simulated disk) is used by the
	 * caller's thread only: then async commits flush on the commit path
	 * once their window has passed, and checkpoints run when asked. */
	if (!h->readonly && h->io_owned) {
		h->async_stop = 0;
		if (h->durability != KEEL_DURABILITY_SYNC &&
		    pthread_create(&h->flush_thread, NULL, flusher_main, h) == 0)
			h->flush_running = 1;
		if (pthread_create(&h->async_thread, NULL, maint_main, h) == 0)
			h->async_running = 1;
	}
	return 0;
}

void durable_close(keel_t *h)
{
	h->async_stop = 1;
	if (h->flush_running) {
		pthread_join(h->flush_thread, NULL);
		h->flush_running = 0;
	}
	if (h->async_running) {
		pthread_join(h->async_thread, NULL);
		h->async_running = 0;
	}
	if (h->root && h->root->journaled && !h->root->failed && !h->readonly)
		durable_try_flush(h);   /* leave nothing behind that async promised */
	jnl_close(h->jnl);
	h->jnl = NULL;
	if (h->io_owned)
		jio_destroy(h->io);
	h->io = NULL;
}

/* ---- recovery --------------------------------------------------------------------------- */

void handle_view(keel_t *h, shm_arena_t *a)
{
	memset(h, 0, sizeof(*h));
	h->a = *a;
	h->root = (struct keel_root *)a->hdr->root;
	h->part_index = shm_at(&h->a, a->user_off);
	h->part_pages = shm_at(&h->a, a->user_off + SHM_PART_INDEX_SLOTS * 4u);
	h->vis_states = shm_at(&h->a, a->user_off + USER_PART_BYTES);
	h->fork_gen = keel_fork_gen;
	h->serial = UINT64_MAX;   /* never matches a thread cache */
}

struct replay {
	keel_t *h;
	uint64_t last;
	uint64_t records, keys;
	uint64_t t0, next_report;   /* progress: monotonic ns */
	const char *dir;
};

/* A progress line on stderr each second of a long recovery. */
static void recovery_progress(struct replay *rp)
{
	if (((rp->records + rp->keys) & 4095) != 0)
		return;
	uint64_t now = shm_mono_ns();
	if (!rp->next_report) {
		rp->next_report = rp->t0 + 1000000000ull;
		return;
	}
	if (now < rp->next_report)
		return;
	rp->next_report = now + 1000000000ull;
	fprintf(stderr, "keel: recovering %s: %llu checkpoint keys loaded, %llu journal records replayed (LSN %llu), %.1f s\n",
		rp->dir, (unsigned long long)rp->keys, (unsigned long long)rp->records,
		(unsigned long long)rp->last, (now - rp->t0) / 1e9);
}

static int replay_record(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
	struct replay *rp = ctx;
	keel_t *h = rp->h;
	const struct rec *r = payload;
	int rc;

	if (len < sizeof(*r) || r->magic != REC_MAGIC || r->lsn != lsn || r->len != len)
		return shm_err(KEEL_E_CORRUPT, "journal record LSN %llu: bad commit record inside (magic %08x, LSN %llu, length %u of %zu)",
			       (unsigned long long)lsn, r->magic, (unsigned long long)r->lsn, r->len, len);
	rp->last = lsn;
	rp->records++;
	recovery_progress(rp);
	if (r->state == REC_VOID || r->nops == 0)
		return 0;
	uint64_t sum = XXH3_64bits(r->body, len - sizeof(*r));
	if (sum != r->checksum || r->nparts > REC_PARTS_MAX)
		return shm_err(KEEL_E_CORRUPT, "journal record LSN %llu: commit checksum %016llx, expected %016llx",
			       (unsigned long long)lsn, (unsigned long long)sum, (unsigned long long)r->checksum);
	/* Partitions first created by this commit. */
	const uint8_t *cur = r->body + align_up((uint64_t)r->nparts * 4, 8), *end = (const uint8_t *)r + len;
	for (uint32_t i = 0; i < r->nops; i++) {
		const struct rec_op *o = (const struct rec_op *)cur;
		if (cur + sizeof(*o) > end)
			break;
		uint64_t sz = align_up(sizeof(*o) + (uint64_t)o->klen + o->vlen, 8);
		if (cur + sz > end)
			break;
		if (o->type == OP_CREATE && (rc = part_create_id(h, o->part, (const char *)o->data, o->klen)))
			return shm_err_ctx(rc, "journal record LSN %llu", (unsigned long long)lsn);
		cur += sz;
	}
	const uint32_t *ids = (const uint32_t *)r->body;
	for (uint32_t i = 0; i < r->nparts; i++) {
		struct part *p = part_by_id(h, ids[i]);
		if (!p || !p->ready)
			return shm_err(KEEL_E_CORRUPT, "journal record LSN %llu names partition %u, which no record or checkpoint creates",
				       (unsigned long long)lsn, ids[i]);
		if ((rc = apply_part(h, p, r, NULL, NULL, NULL)))
			return shm_err_ctx(rc, "replaying journal record LSN %llu", (unsigned long long)lsn);
		table_maybe_grow(h, p);
	}
	return 0;
}

static int load_item(void *ctx, uint32_t type, const void *data, size_t len)
{
	struct replay *rp = ctx;
	keel_t *h = rp->h;
	int rc;

	if (type == CKPT_ITEM_PART) {
		const struct ckpt_part_item *it = data;
		if (len < sizeof(*it) || len != sizeof(*it) + it->name_len)
			return shm_err(KEEL_E_CORRUPT, "checkpoint: bad partition item (%zu bytes)", len);
		if ((rc = part_create_id(h, it->id, it->name, it->name_len)))
			return rc;
		part_by_id(h, it->id)->created_lsn = it->created_lsn;
		return 0;
	}
	if (type != CKPT_ITEM_KV)
		return 0;   /* unknown items are for later versions */
	const struct ckpt_kv_item *it = data;
	if (len < sizeof(*it) || it->klen == 0 || it->klen > KEEL_KEY_MAX || it->vlen > KEEL_VALUE_MAX ||
	    len != sizeof(*it) + it->klen + it->vlen)
		return shm_err(KEEL_E_CORRUPT, "checkpoint: bad key item (%zu bytes)", len);
	struct part *p = part_by_id(h, it->part);
	if (!p || !p->ready)
		return shm_err(KEEL_E_CORRUPT, "checkpoint: key of unknown partition %u", it->part);
	uint64_t off;
	if ((rc = shm_alloc(&h->a, &p->heap, node_bytes(it->klen, it->vlen), 1, &off)))
		return rc;
	struct node *n = shm_at(&h->a, off);
	node_fill(n, it->lsn, it->version, it->mtime_ns, 0, it->data, it->klen, it->data + it->klen, it->vlen);
	if ((rc = table_link(h, p, n, key_hash(it->data, it->klen))))
		return rc;
	table_maybe_grow(h, p);
	rp->keys++;
	recovery_progress(rp);
	return 0;
}

static void ckpt_warn(void *ctx, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "keel: recovery: %s\n", msg);
}

int durable_recover(shm_arena_t *a, const char *dir, jio_t *io, const uint8_t uuid[16])
{
	keel_t *h = calloc(1, sizeof(*h));
	struct keel_root *root = (struct keel_root *)a->hdr->root;
	struct replay rp;
	char cdir[4200], jdir[4200], path[4400];
	ckpt_meta_t meta;
	jnl_scan_result_t res;
	uint64_t start = 0, t0 = shm_mono_ns();
	int rc;

	if (!h)
		return shm_err(KEEL_E_NOMEM, "out of memory for recovery");
	handle_view(h, a);
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	memset(&rp, 0, sizeof(rp));
	rp.h = h;
	rp.t0 = t0;
	rp.dir = dir;
	join(cdir, sizeof(cdir), dir, "checkpoint");
	join(jdir, sizeof(jdir), dir, "journal");
	rc = ckpt_find_newest(cdir, io, uuid, ckpt_warn, NULL, path, sizeof(path), &meta);
	if (rc == 0) {
		if ((rc = ckpt_read(path, io, uuid, 0, load_item, &rp, NULL)))
			goto out;
		start = meta.start_lsn;
	} else if (rc != KEEL_E_NOTFOUND) {
		goto out;
	}
	rc = jnl_scan(jdir, io, uuid, start + 1, JNL_SCAN_REPAIR, replay_record, &rp, &res);
	if (rc == KEEL_E_NOTFOUND && start == 0)
		rc = 0;   /* a store that never committed */
	if (rc) {
		if (rc == KEEL_E_CORRUPT && res.msg[0])
			rc = shm_err(KEEL_E_CORRUPT, "%s; the store was not opened; `keel recover STORE --salvage` cuts the journal there and reports what is lost",
				     res.msg);
		goto out;
	}
	if (res.end == JNL_END_TORN)
		fprintf(stderr, "keel: recovery: warning: %s\n", res.msg);
	uint64_t last = rp.last > start ? rp.last : start;
	root->rsv.AO_val1 = 0;
	root->rsv.AO_val2 = last + 1;
	root->applied_lsn = last;
	root->durable_lsn = last;
	root->written_lsn = last;
	root->applied_pos = 0;
	root->durable_pos = 0;
	root->written_pos = 0;
	root->ckpt_lsn = start;
	root->jpos_valid = 0;
	if (getenv("KEEL_RECOVERY_VERBOSE") || rp.records > 100000 || rp.next_report > t0 + 1000000000ull)
		fprintf(stderr, "keel: recovery: checkpoint LSN %llu (%llu keys), %llu journal records replayed, next LSN %llu, %.3f s\n",
			(unsigned long long)start, (unsigned long long)rp.keys, (unsigned long long)rp.records,
			(unsigned long long)(last + 1), (shm_mono_ns() - t0) / 1e9);
out:
	free(h);
	return rc;
}

/* ---- checkpoints ------------------------------------------------------------------------ */

struct ckpt_ctx {
	ckpt_writer_t *w;
	keel_t *h;
	uint32_t part;
	uint64_t keys;
};

/* A checkpoint of a big store takes seconds, and it may run on the thread
 * that also flushes async commits (the handle's background thread): keep
 * flushing meanwhile, or the ring fills and committers stall on it. */
#define CKPT_FLUSH_EVERY 4096u
static void ckpt_keep_flushing(keel_t *h)
{
	struct keel_root *root = h->root;
	if (next_lsn(root) - 1 > shm_load_acq(&root->durable_lsn) &&
	    shm_mono_ns() - root->last_flush_ns > (uint64_t)h->async_window_ms * 500000ull)
		durable_try_flush(h);
}

static int write_kv(void *ctx, const struct node *n)
{
	struct ckpt_ctx *c = ctx;
	uint8_t hdr[sizeof(struct ckpt_kv_item) + KEEL_KEY_MAX];
	struct ckpt_kv_item *it = (struct ckpt_kv_item *)hdr;

	memset(it, 0, sizeof(*it));
	it->part = c->part;
	it->klen = n->klen;
	it->vlen = n->vlen;
	it->version = n->version;
	it->mtime_ns = n->mtime_ns;
	it->lsn = n->lsn;
	memcpy(it->data, node_key(n), n->klen);
	if (++c->keys % CKPT_FLUSH_EVERY == 0)
		ckpt_keep_flushing(c->h);
	return ckpt_write_item2(c->w, CKPT_ITEM_KV, hdr, sizeof(*it) + n->klen, node_val(n), n->vlen);
}

int keel_checkpoint(keel_t *h, uint64_t *lsn_out)
{
	struct keel_root *root;
	struct ckpt_ctx c = { .h = h };
	struct snap snap;
	char cdir[4200];
	int rc = handle_ok(h);

	if (rc)
		return rc;
	root = h->root;
	if (!root->journaled)
		return shm_err(KEEL_E_STATE, "a memory-mode store has no journal to checkpoint");
	if (h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = failed_code(h)))
		return rc;
	/* Everything committed so far goes to disk first, so the snapshot can
	 * reach as far as the applied LSN. */
	if ((rc = wait_durable(h, next_lsn(root) - 1)))
		return rc;
	/* A jio backend serves one thread at a time, and the handle's is the
	 * flusher's: the checkpoint writes through its own. */
	jio_t *io = NULL;
	if ((rc = h->io_owned ? jio_real_create(0, keel_jio_flags(), 0600, &io) : 0))
		return rc;
	if (!io)
		io = h->io;   /* a test's backend: the caller keeps to one thread */
	struct shm_reader *r = reader_enter_novis(h, &snap);
	if (!r) {
		if (io != h->io)
			jio_destroy(io);
		return shm_err(KEEL_E_LIMIT, "no reader slot for the checkpoint");
	}
	uint64_t s = snap.w < root->durable_lsn ? snap.w : root->durable_lsn;
	struct snap at = { s, 0, 0 };   /* exactly the commits <= s */
	join(cdir, sizeof(cdir), h->dir, "checkpoint");
	if ((rc = ckpt_write_begin(cdir, io, root->uuid, s, 0, &c.w)))
		goto out;
	uint32_t n = shm_load32_acq(&root->nparts);
	for (uint32_t i = 0; i < n && rc == 0; i++) {
		struct part *p = part_by_id(h, i);
		if (!p || !p->ready || !p->created_lsn || p->created_lsn > s)
			continue;
		if (p->name_len == 0 || p->name_len > KEEL_PARTITION_NAME_MAX) {
			rc = shm_err(KEEL_E_CORRUPT, "checkpoint: partition %u has a name of %u bytes (at most %u); 'keel verify' reports the damage",
				     p->id, p->name_len, KEEL_PARTITION_NAME_MAX);
			break;
		}
		uint8_t buf[sizeof(struct ckpt_part_item) + KEEL_PARTITION_NAME_MAX];
		struct ckpt_part_item *it = (struct ckpt_part_item *)buf;
		memset(it, 0, sizeof(*it));
		it->id = p->id;
		it->name_len = p->name_len;
		it->created_lsn = p->created_lsn;
		memcpy(it->name, p->name, p->name_len);
		if ((rc = ckpt_write_item(c.w, CKPT_ITEM_PART, it, sizeof(*it) + p->name_len)))
			break;
		c.part = p->id;
		rc = table_scan(h, p, &at, write_kv, &c);
	}
	if (rc) {
		ckpt_write_abort(c.w);
		goto out;
	}
	if ((rc = ckpt_write_commit(c.w, NULL)))
		goto out;
	shm_store_rel(&root->ckpt_lsn, s);
	/* Segments wholly below the checkpoint are recycled by the writer. */
	int ready;
	if (writer_take(h, &ready) == 0) {
		int rr = ready ? ready : jnl_recycle_below(h->jnl, s + 1);
		if (rr == 0) {
			jnl_info_t ji;
			jnl_info(h->jnl, &ji);
			root->ckpt_journal_bytes = (uint64_t)(ji.segments ? ji.segments - 1 : 0) * ji.seg_bytes + ji.seg_off;
		} else {
			/* The checkpoint stands; the journal could not be recycled.
			 * Say so: a disk error here is the journal's too. */
			rc = rr;
			if (rr == KEEL_E_IO || rr == KEEL_E_NOSPC || rr == KEEL_E_PANIC)
				fail(h, rr);
		}
		writer_give(h);
	}
	/* The segments beyond the spares, now that no flush waits for it. */
	char jdir[4200];
	journal_dir(h, jdir, sizeof(jdir));
	jnl_drop_files(io, jdir);
	ckpt_prune(cdir, io, s, NULL);
	if (lsn_out)
		*lsn_out = s;
	if (rc == KEEL_E_IO || rc == KEEL_E_NOSPC || rc == KEEL_E_PANIC)
		rc = failed_code(h) ? failed_code(h) : rc;
out:
	reader_leave(h, r);
	if (io != h->io)
		jio_destroy(io);
	return rc;
}

int keel_sync(keel_t *h)
{
	int rc = handle_ok(h);
	if (rc || !h->root->journaled)
		return rc;
	return wait_durable(h, next_lsn(h->root) - 1);
}

int keel_wait_durable(keel_t *h, uint64_t lsn)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	if (lsn >= next_lsn(h->root))
		return shm_err(KEEL_E_INVAL, "LSN %llu has not been given to any commit yet", (unsigned long long)lsn);
	if (!h->root->journaled)
		return 0;
	return wait_durable(h, lsn);
}

int keel_recover(const char *dir, const keel_options_t *opt, unsigned flags, char *report, size_t cap)
{
	keel_options_t o;
	uint8_t uuid[16];
	jio_t *io = NULL;
	keel_t *h;
	char path[256], jdir[4200];
	int rc, found;

	if (!dir || (flags & ~(unsigned)KEEL_RECOVER_SALVAGE))
		return shm_err(KEEL_E_INVAL, "keel_recover: bad argument");
	if (opt)
		o = *opt;
	else
		keel_options_init(&o);
	if (report && cap)
		report[0] = 0;
	if ((rc = keel_arena_path(dir, &o, path, sizeof(path))))
		return rc;
	if ((rc = jio_real_create(0, keel_jio_flags(), 0600, &io)))
		return rc;
	if ((rc = store_id_read(io, dir, uuid, &found)))
		goto out;
	if (!found) {
		rc = shm_err(KEEL_E_NOTFOUND, "%s is not a durable store (no keel.id): there is nothing to recover from", dir);
		goto out;
	}
	/* Refuse while others use the arena: they would keep the old one. */
	if (access(path, F_OK) == 0 && (rc = keel_unlink_arena(dir, &o, 0)))
		goto out;
	if (flags & KEEL_RECOVER_SALVAGE) {
		jnl_scan_result_t res;
		join(jdir, sizeof(jdir), dir, "journal");
		rc = jnl_scan(jdir, io, uuid, 0, JNL_SCAN_REPAIR | JNL_SCAN_SALVAGE, NULL, NULL, &res);
		if (rc)
			goto out;
		if (report && cap)
			snprintf(report, cap, "%s", res.end == JNL_END_CLEAN ? "journal intact; nothing cut" : res.msg);
	}
	o.flags &= ~(uint32_t)(KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY);
	o.durability = KEEL_DURABILITY_DEFAULT;
	if ((rc = keel_open(dir, &o, &h)))
		goto out;
	if (report && cap && !(flags & KEEL_RECOVER_SALVAGE)) {
		keel_stat_t st;
		keel_stat(h, &st);
		snprintf(report, cap, "recovered %llu keys in %u partitions; next LSN %llu",
			 (unsigned long long)st.keys, st.partitions, (unsigned long long)st.next_lsn);
	}
	keel_close(h);
out:
	jio_destroy(io);
	return rc;
}
