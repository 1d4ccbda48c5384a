/*
 * inspect.c - read-only views of a store for keel-dump and other inspection
 * tools: the arena header and root, process slots, locks, partitions, the
 * page allocator, and the journal on disk.
 *
 * What it reads, and how
 * ----------------------
 * The arena views run beside live workers and must neither stop nor slow
 * them, so they take no lock and write nothing to the arena: not a lock,
 * not a reader slot, not a cache line.  (keel_check, the audit, does take
 * each partition lock in turn; that is the one view that does.)  Every word
 * is read once with a plain or acquire load, so a figure may be a moment
 * old and two figures may come from different instants; a list walked while
 * a writer edits it may count an item twice or miss one.  Those are the
 * only errors a live store produces here, and the text of each view says
 * which figures are racy.
 *
 * The arena may also be damaged or hostile.  Every offset taken from it goes
 * through shm_ptr (bounds-checked against the arena's current size,
 * overflow-safe) before it is dereferenced, every length is clamped to the
 * structure that holds it, and every walk has a bound computed from the
 * arena's size or from counts already validated, so a cycle ends.  Damage
 * shows up as odd figures, a `walk_stopped_at` offset or a free-list cut
 * count, never as a crash or a hang.
 *
 * Lock state
 * ----------
 * A shm_lock (shm/lock.h) is a robust pthread mutex plus a holder_pid hint.
 * The mutex's futex word says more than the hint: glibc keeps the owner's
 * TID in it, and when a holder dies the kernel clears the TID and sets
 * FUTEX_OWNER_DIED (the word keel's next taker turns into SHM_LOCK_DIED).
 * So a lock is
 *   FREE  when the word holds no TID and no OWNER_DIED bit;
 *   DEAD  when OWNER_DIED is set, or a TID is set whose process is gone;
 *   HELD  otherwise (a TID of a live process).
 * The word is read, never written: a trylock would take a dead holder's lock
 * and oblige the inspector to repair what it protects.  On a C library other
 * than glibc only the holder_pid hint is used.
 *
 * The journal views
 * -----------------
 * keel_journal_segments lists STORE/journal/ and classifies each segment by
 * its one-sector header, following the format and validity rule at the top
 * of journal.c (the classification mirrors journal.c's seghdr_decode).
 * keel_journal_records walks the records with jnl_scan without
 * JNL_SCAN_REPAIR, so nothing on disk changes; each payload is a ring
 * commit record (internal.h) or a bare VOID header, decoded here with every
 * length checked against the payload.
 *
 * Rescans.  On a store being written, a segment is read while flushes land
 * in it.  The read copies the file front to back, so it can see zeros where
 * flush N was still unwritten and, further on, flush N+1 that completed in
 * the meantime: the very pattern recovery calls media corruption.  So
 * damage is reported only if SCAN_ATTEMPTS_MAX reads in a row find it;
 * each read after the first starts after the last record already passed
 * on, so no record is passed twice.  A torn tail (a flush in flight) is
 * reported as such, never as damage.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "lib/internal.h"
#include "lib/jio.h"
#include "lib/journal.h"

_Static_assert(SHM_CLASSES_MAX <= KEEL_INSPECT_CLASSES_MAX, "every class fits the report");
_Static_assert((int)KEEL_JOP_PUT == (int)OP_PUT && (int)KEEL_JOP_DEL == (int)OP_DEL &&
	       (int)KEEL_JOP_CLEAR == (int)OP_CLEAR && (int)KEEL_JOP_CREATE == (int)OP_CREATE,
	       "journal op types are the record's");

/* ---- small helpers ------------------------------------------------------------------ */

/* Copy a name from the arena: at most `max` bytes, stopping at a NUL,
 * replacing bytes outside printable ASCII (a damaged name must not become
 * terminal control sequences in a dump). */
static void copy_name(char *dst, size_t cap, const char *src, size_t len)
{
	size_t i;

	if (len > cap - 1)
		len = cap - 1;
	for (i = 0; i < len && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = 0;
}

/* The views work on a store in the sticky failed state too (handle_ok
 * refuses it with PANIC): a failed store is one an operator wants to see. */
static int inspect_ok(keel_t *h)
{
	if (!h)
		return shm_err(KEEL_E_INVAL, "NULL handle");
	if (h->closed)
		return shm_err(KEEL_E_CLOSED, "handle is closed");
	if (h->fork_gen != keel_fork_gen)
		return shm_err(KEEL_E_FORKED, "handle was opened before fork(); the child must call keel_open");
	return 0;
}

/* A partition descriptor, or NULL: part_by_id bounds-checks the page. */
static const struct part *part_at(keel_t *h, uint32_t id)
{
	return part_by_id(h, id);
}

static uint32_t nparts_bounded(keel_t *h)
{
	uint32_t n = shm_load32_acq(&h->root->nparts);
	return n < SHM_PARTS_MAX ? n : SHM_PARTS_MAX;
}

/* ---- locks ----------------------------------------------------------------------------- */

struct lock_view {
	int state;
	uint32_t pid, tid;
};

static int tid_alive(uint32_t tid)
{
	return tid != 0 && shm_pid_start_time((pid_t)tid) != 0;
}

static void lock_look(const shm_lock_t *l, struct lock_view *v)
{
	uint32_t pid = shm_load32(&l->holder_pid), tid = shm_load32(&l->holder_tid);
	uint32_t word_tid = 0, died = 0;

#ifdef __GLIBC__
	/* The futex word of a robust mutex: owner TID | OWNER_DIED | WAITERS. */
	uint32_t word = (uint32_t)__atomic_load_n(&l->m.__data.__lock, __ATOMIC_RELAXED);
	word_tid = word & FUTEX_TID_MASK;
	died = word & FUTEX_OWNER_DIED;
#endif
	v->pid = pid;
	v->tid = word_tid ? word_tid : tid;
	if (died && !word_tid) {
		v->state = KEEL_LOCK_DEAD;
		return;
	}
#ifdef __GLIBC__
	if (!word_tid) {
		v->state = KEEL_LOCK_FREE;
		v->pid = v->tid = 0;
		return;
	}
	/* Held: by whom?  The hint names the process; if it is not written yet
	 * (the window just after acquiring), the TID names a thread. */
	if (pid)
		v->state = shm_pid_alive(pid, 0) ? KEEL_LOCK_HELD : KEEL_LOCK_DEAD;
	else
		v->state = tid_alive(word_tid) ? KEEL_LOCK_HELD : KEEL_LOCK_DEAD;
#else
	if (!pid)
		v->state = KEEL_LOCK_FREE;
	else
		v->state = shm_pid_alive(pid, 0) ? KEEL_LOCK_HELD : KEEL_LOCK_DEAD;
#endif
}

static int emit_lock(const shm_lock_t *l, const char *name, int32_t part, keel_inspect_lock_fn fn,
		     void *ctx)
{
	keel_inspect_lock_t out;
	struct lock_view v;

	memset(&out, 0, sizeof(out));
	lock_look(l, &v);
	snprintf(out.name, sizeof(out.name), "%s", name);
	out.partition = part;
	out.state = v.state;
	out.holder_pid = v.pid;
	out.holder_tid = v.tid;
	out.acquisitions = shm_load(&l->acquisitions);
	out.repairs = shm_load(&l->repairs);
	return fn(ctx, &out);
}

/* A callback's answer: positive stops with 0, negative is returned. */
static int stop_code(int rc)
{
	return rc > 0 ? 0 : rc;
}

int keel_inspect_locks(keel_t *h, keel_inspect_lock_fn fn, void *ctx)
{
	int rc = inspect_ok(h);

	if (rc)
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "keel_inspect_locks: callback is NULL");
	const struct {
		const shm_lock_t *l;
		const char *name;
	} fixed[] = {
		{ &h->root->flush_lock, "flush" },
		{ &h->root->apply_lock, "apply" },
		{ &h->root->dir_lock, "directory" },
		{ &h->a.hdr->galloc_lock, "allocator" },
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		if ((rc = emit_lock(fixed[i].l, fixed[i].name, -1, fn, ctx)))
			return stop_code(rc);
	uint32_t n = nparts_bounded(h);
	for (uint32_t i = 0; i < n; i++) {
		const struct part *p = part_at(h, i);
		char name[96], pname[KEEL_PARTITION_NAME_MAX + 1];
		if (!p)
			continue;
		copy_name(pname, sizeof(pname), p->name, p->name_len);
		snprintf(name, sizeof(name), "partition %s", pname);
		if ((rc = emit_lock(&p->lock, name, (int32_t)i, fn, ctx)))
			return stop_code(rc);
	}
	return 0;
}

/* Locks whose holder hint is pid (the four store-wide ones and every partition's). */
static uint32_t locks_held_by(keel_t *h, uint32_t pid)
{
	uint32_t n = nparts_bounded(h), held = 0;

	held += shm_load32(&h->root->flush_lock.holder_pid) == pid;
	held += shm_load32(&h->root->apply_lock.holder_pid) == pid;
	held += shm_load32(&h->root->dir_lock.holder_pid) == pid;
	held += shm_load32(&h->a.hdr->galloc_lock.holder_pid) == pid;
	for (uint32_t i = 0; i < n; i++) {
		const struct part *p = part_at(h, i);
		if (p && shm_load32(&p->lock.holder_pid) == pid)
			held++;
	}
	return held;
}

/* ---- header ---------------------------------------------------------------------------- */

int keel_inspect_header(keel_t *h, keel_inspect_header_t *out)
{
	int rc = inspect_ok(h);

	if (rc)
		return rc;
	if (!out)
		return shm_err(KEEL_E_INVAL, "keel_inspect_header: out is NULL");
	memset(out, 0, sizeof(*out));
	struct shm_hdr *hd = h->a.hdr;
	struct keel_root *r = h->root;

	snprintf(out->arena_path, sizeof(out->arena_path), "%s", h->a.path);
	out->format_version = hd->format_version;
	out->hdr_bytes = hd->hdr_bytes;
	out->layout_sig = hd->layout_sig;
	memcpy(out->arena_uuid, hd->uuid, 16);
	if (r->journaled)
		memcpy(out->store_uuid, r->uuid, 16);
	out->pidns_dev = hd->pidns_dev;
	out->pidns_ino = hd->pidns_ino;
	out->file_mode = hd->file_mode;
	out->ready = shm_load32_acq(&hd->state) == SHM_STATE_READY;
	out->created_ns = hd->created_ns;
	out->arena_bytes = shm_load_acq(&hd->arena_bytes);
	out->arena_bytes_max = hd->arena_bytes_max;
	out->heap_top = shm_load(&hd->galloc.bump);
	out->procs_off = hd->procs_off;
	out->readers_off = hd->readers_off;
	out->user_off = hd->user_off;
	out->user_bytes = hd->user_bytes;
	out->ring_off = hd->ring_off;
	out->heap_off = hd->heap_off;
	out->procs_hi = shm_load32(&hd->procs_hi);
	out->readers_hi = shm_load32(&hd->readers_hi);
	out->reaps = shm_load(&hd->reaps);

	out->durability = (int)r->durability;
	out->journaled = r->journaled != 0;
	out->failed = __atomic_load_n(&r->failed, __ATOMIC_ACQUIRE);
	out->partitions = shm_load32_acq(&r->nparts);

	out->ring_bytes = hd->ring_bytes;
	out->ring_head = ring_head(r);
	out->ring_applied_pos = shm_load_acq(&r->applied_pos);
	out->ring_durable_pos = r->journaled ? shm_load_acq(&r->durable_pos) : out->ring_applied_pos;
	out->ring_tail = ring_tail(r);

	out->next_lsn = next_lsn(r);
	out->applied_lsn = shm_load_acq(&r->applied_lsn);
	out->durable_lsn = shm_load_acq(&r->durable_lsn);
	out->checkpoint_lsn = shm_load_acq(&r->ckpt_lsn);
	shm_load_pair(&r->visx, &out->visible_seq, &out->visible_lsn);
	out->reclaim_gen = shm_load(&r->gen);

	out->journal_bytes = shm_load(&r->journal_bytes);
	out->checkpoint_journal_bytes = shm_load(&r->ckpt_journal_bytes);
	uint64_t last = shm_load(&r->last_flush_ns), now = shm_mono_ns();
	out->last_flush_age_ns = last && now >= last ? now - last : 0;
	out->checkpoint_pid = (uint32_t)shm_load(&r->ckpt_running);

	out->flushes = r->flushes;
	out->commits = r->commits;
	out->repairs = r->repairs;
	out->voided = r->voided;
	out->redone = r->redone;
	return 0;
}

/* ---- processes ------------------------------------------------------------------------- */

int keel_inspect_processes(keel_t *h, keel_inspect_proc_fn fn, void *ctx)
{
	int rc = inspect_ok(h);

	if (rc)
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "keel_inspect_processes: callback is NULL");
	uint64_t w = shm_load_acq(&h->root->applied_lsn);
	uint32_t hi = shm_load32(&h->a.hdr->procs_hi), rhi = shm_load32(&h->a.hdr->readers_hi);

	if (hi > SHM_PROCS_MAX)
		hi = SHM_PROCS_MAX;
	if (rhi > SHM_READERS_MAX)
		rhi = SHM_READERS_MAX;
	for (uint32_t i = 0; i < hi; i++) {
		struct shm_proc *sp = shm_proc_slot(&h->a, i);
		keel_inspect_proc_t pi;
		uint32_t pid;

		memset(&pi, 0, sizeof(pi));
		pi.alive = shm_proc_live(&h->a, i, &pid);
		if (pid == 0 || pid == SHM_PID_REAPING)
			continue;
		pi.slot = i;
		pi.pid = (pid_t)pid;
		pi.self = i == h->proc;
		pi.start_time = shm_load(&sp->start_time);
		pi.attach_ns = sp->attach_ns;
		pi.rsv_lsn = shm_load(&sp->rsv_lsn);
		for (uint32_t k = 0; k < rhi; k++) {
			struct shm_reader *rd = shm_reader_slot(&h->a, k);
			if (shm_load32(&rd->owner) != i + 1)
				continue;
			pi.reader_slots++;
			uint64_t s = shm_load(&rd->snap);
			if (!s)
				continue;
			pi.readers_pinned++;
			if (!pi.oldest_snapshot || s - 1 < pi.oldest_snapshot)
				pi.oldest_snapshot = s - 1;
		}
		if (pi.readers_pinned && w > pi.oldest_snapshot)
			pi.reader_lag = w - pi.oldest_snapshot;
		pi.locks_held = locks_held_by(h, pid);
		if ((rc = fn(ctx, &pi)))
			return stop_code(rc);
	}
	return 0;
}

/* ---- partitions ------------------------------------------------------------------------ */

int keel_inspect_partitions(keel_t *h, keel_inspect_partition_fn fn, void *ctx)
{
	int rc = inspect_ok(h);

	if (rc)
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "keel_inspect_partitions: callback is NULL");
	uint32_t n = nparts_bounded(h);

	for (uint32_t i = 0; i < n; i++) {
		const struct part *p = part_at(h, i);
		keel_inspect_partition_t o;

		if (!p)
			continue;
		memset(&o, 0, sizeof(o));
		o.id = i;
		o.ready = p->ready != 0;
		copy_name(o.name, sizeof(o.name), p->name, p->name_len);
		o.keys = shm_load(&p->count);
		o.bytes = shm_load(&p->bytes);
		uint64_t log2;
		if (table_dir(h, p, &log2))
			o.buckets = 1ull << log2;
		o.load_factor = o.buckets ? (double)o.keys / (double)o.buckets : 0.0;
		o.retired = p->retire_count;
		o.arena_bytes = p->heap.used_bytes;
		o.pages = p->heap.pages;
		o.created_lsn = p->created_lsn;
		o.last_lsn = p->last_lsn;
		o.applying_lsn = shm_load(&p->applying_lsn);
		o.lock_holder_pid = shm_load32(&p->lock.holder_pid);
		if ((rc = fn(ctx, &o)))
			return stop_code(rc);
	}
	return 0;
}

/* ---- the allocator --------------------------------------------------------------------- */

/* A slab page header at the page holding `off`, if it is one of heap `owner`
 * and class c and `off` is a block boundary in it; else NULL. */
static int slab_block_ok(keel_t *h, uint64_t off, uint32_t owner, uint32_t c)
{
	uint64_t heap_off = h->a.heap_off, size = shm_class_size(c);
	uint64_t page = off / SHM_PAGE_BYTES * SHM_PAGE_BYTES;

	if (off < heap_off || size == 0 || off < page + SHM_PAGE_HEADER_BYTES)
		return 0;
	const struct shm_page *pg = shm_ptr(&h->a, page, sizeof(*pg));
	if (!pg || pg->magic != SHM_PAGE_MAGIC || pg->type != SHM_PAGE_SLAB || pg->cls != c ||
	    pg->owner != owner)
		return 0;
	if ((off - page - SHM_PAGE_HEADER_BYTES) % size ||
	    off + size > page + SHM_PAGE_BYTES || !shm_ptr(&h->a, off, size))
		return 0;
	return 1;
}

/* Walk the page headers from heap_off to the top without the allocator lock. */
static void walk_pages(keel_t *h, keel_inspect_alloc_t *o)
{
	struct shm_hdr *hd = h->a.hdr;
	uint64_t top = o->heap_top, off = hd->heap_off, run = 0;
	uint64_t steps_max = top > off ? (top - off) / SHM_PAGE_BYTES + 1 : 0;

	for (uint64_t steps = 0; off < top && steps < steps_max; steps++) {
		const struct shm_page *p = shm_ptr(&h->a, off, sizeof(*p));
		if (!p || p->magic != SHM_PAGE_MAGIC || p->npages == 0 ||
		    off + (uint64_t)p->npages * SHM_PAGE_BYTES > top) {
			o->walk_stopped_at = off;
			break;
		}
		uint64_t n = p->npages;
		o->pages_total += n;
		switch (p->type) {
		case SHM_PAGE_FREE:
			o->pages_free += n;
			run += n;   /* neighbours count as one run, as the allocator coalesces them */
			if (run == n)
				o->free_runs++;
			if (run > o->free_run_pages_max)
				o->free_run_pages_max = run;
			break;
		case SHM_PAGE_META:
			o->pages_meta += n;
			run = 0;
			break;
		case SHM_PAGE_SLAB:
			o->pages_slab += n;
			if (p->cls < SHM_CLASSES_MAX)
				o->classes[p->cls].pages += n;
			run = 0;
			break;
		case SHM_PAGE_LARGE:
			o->pages_large += n;
			o->large_bytes += n * SHM_PAGE_BYTES;
			run = 0;
			break;
		default:
			o->walk_stopped_at = off;
			return;
		}
		off += n * SHM_PAGE_BYTES;
	}
}

/* Count the blocks on one partition's free lists (racy).  budget[c] is what
 * is left of the blocks of class c in the whole heap: every free block is on
 * one list, so all the walks of a class together never need more steps, and
 * a cycle in a damaged list costs no more than that. */
static void walk_free_lists(keel_t *h, const struct part *p, keel_inspect_alloc_t *o, uint64_t *budget)
{
	uint32_t owner = p->heap.id;

	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++) {
		uint64_t off = shm_load(&p->heap.free_head[c]), n = 0;

		while (off) {
			if (budget[c] == 0 || !slab_block_ok(h, off, owner, c)) {
				o->free_list_bad++;   /* more blocks listed than exist, or a bad link */
				break;
			}
			budget[c]--;
			n++;
			off = shm_load((const volatile uint64_t *)shm_at(&h->a, off));
		}
		o->classes[c].blocks_free += n;
	}
}

int keel_inspect_alloc(keel_t *h, keel_inspect_alloc_t *o)
{
	int rc = inspect_ok(h);

	if (rc)
		return rc;
	if (!o)
		return shm_err(KEEL_E_INVAL, "keel_inspect_alloc: out is NULL");
	memset(o, 0, sizeof(*o));
	struct shm_hdr *hd = h->a.hdr;
	uint64_t arena_bytes = shm_load_acq(&hd->arena_bytes);

	o->page_bytes = SHM_PAGE_BYTES;
	o->heap_off = hd->heap_off;
	o->heap_top = shm_load(&hd->galloc.bump);
	if (o->heap_top > arena_bytes)
		o->heap_top = arena_bytes;   /* a damaged top: walk only what exists */
	o->headroom_bytes = hd->arena_bytes_max > o->heap_top ? hd->arena_bytes_max - o->heap_top : 0;
	o->counted_free_pages = shm_load(&hd->galloc.free_pages);
	o->counted_used_pages = shm_load(&hd->galloc.used_pages);
	o->reserve_pages = shm_load(&hd->galloc.reserve_pages);
	o->nclasses = SHM_CLASSES_MAX;
	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++) {
		o->classes[c].size = shm_class_size(c);
		o->classes[c].blocks_per_page = (SHM_PAGE_BYTES - SHM_PAGE_HEADER_BYTES) / o->classes[c].size;
	}
	walk_pages(h, o);

	uint64_t budget[SHM_CLASSES_MAX];
	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++)
		budget[c] = o->classes[c].pages * o->classes[c].blocks_per_page;
	uint32_t n = nparts_bounded(h);
	for (uint32_t i = 0; i < n; i++) {
		const struct part *p = part_at(h, i);
		if (!p)
			continue;
		o->used_bytes += p->heap.used_bytes;
		walk_free_lists(h, p, o, budget);
	}
	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++) {
		keel_inspect_class_t *k = &o->classes[c];
		k->bytes_free = k->blocks_free * k->size;
		o->slab_bytes += k->pages * (uint64_t)k->blocks_per_page * k->size;
		o->slab_bytes_free += k->bytes_free;
	}
	o->frag_slab = o->slab_bytes ? (double)o->slab_bytes_free / (double)o->slab_bytes : 0.0;
	if (o->frag_slab > 1.0)
		o->frag_slab = 1.0;   /* lists counted while they changed */
	o->frag_pages = o->pages_free ? 1.0 - (double)o->free_run_pages_max / (double)o->pages_free : 0.0;
	return 0;
}

/* ---- journal: decoding a record ------------------------------------------------------------------ */

static int decode_record(uint64_t lsn, const void *payload, size_t len, keel_journal_record_fn fn,
			 void *ctx)
{
	keel_journal_record_t out;
	keel_journal_op_t *ops = NULL;
	struct rec r;
	const uint8_t *base = payload;
	int rc;

	memset(&out, 0, sizeof(out));
	out.lsn = lsn;
	out.bytes = len;
	if (len < sizeof(r)) {
		snprintf(out.problem, sizeof(out.problem), "payload of %zu bytes is shorter than a %zu-byte commit header",
			 len, sizeof(r));
		return fn(ctx, &out);
	}
	memcpy(&r, base, sizeof(r));
	out.pid = r.pid;
	out.durability = (int)r.durability;
	out.mtime_ns = r.mtime_ns;
	out.nops = r.nops;
	if (r.magic != REC_MAGIC || r.lsn != lsn || r.len != len) {
		snprintf(out.problem, sizeof(out.problem),
			 "commit header: magic %08x (expected %08x), LSN %" PRIu64 ", length %u of %zu",
			 r.magic, REC_MAGIC, r.lsn, r.len, len);
		return fn(ctx, &out);
	}
	if (r.state == REC_VOID) {
		out.is_void = 1;
		out.valid = 1;
		out.nops = 0;
		return fn(ctx, &out);
	}
	out.valid = 1;
	uint64_t sum = XXH3_64bits(base + sizeof(r), len - sizeof(r));
	if (r.state != REC_COMPLETE) {
		out.valid = 0;
		snprintf(out.problem, sizeof(out.problem), "state %u, expected COMPLETE (%u) or VOID (%u)",
			 r.state, REC_COMPLETE, REC_VOID);
	} else if (sum != r.checksum) {
		out.valid = 0;
		snprintf(out.problem, sizeof(out.problem), "commit checksum %016" PRIx64 ", expected %016" PRIx64,
			 sum, r.checksum);
	}
	/* Partition ids, then ops; every length checked against the payload. */
	const uint8_t *cur = base + sizeof(r), *end = base + len;
	uint32_t np = r.nparts;
	if (np > REC_PARTS_MAX || (uint64_t)np * 4 > (uint64_t)(end - cur)) {
		if (out.valid)
			snprintf(out.problem, sizeof(out.problem), "%u partitions (at most %u)", np,
				 REC_PARTS_MAX);
		out.valid = 0;
		return fn(ctx, &out);
	}
	out.nparts = np;
	memcpy(out.parts, cur, (size_t)np * 4);
	uint64_t skip = align_up((uint64_t)np * 4, 8);
	if (skip > (uint64_t)(end - cur)) {
		out.valid = 0;
		return fn(ctx, &out);
	}
	cur += skip;
	/* At most one op per 24 bytes left, and no more than a transaction can hold. */
	uint64_t room = (uint64_t)(end - cur) / sizeof(struct rec_op);
	uint64_t cap = r.nops < room ? r.nops : room;
	if (cap > KEEL_TXN_OPS_MAX + 2ull * KEEL_TXN_PARTITIONS_MAX)
		cap = KEEL_TXN_OPS_MAX + 2ull * KEEL_TXN_PARTITIONS_MAX;
	if (cap && !(ops = calloc(cap, sizeof(*ops))))
		return shm_err(KEEL_E_NOMEM, "out of memory decoding journal record LSN %" PRIu64, lsn);
	uint32_t k = 0;
	for (; k < cap; k++) {
		struct rec_op op;
		if ((uint64_t)(end - cur) < sizeof(op))
			break;
		memcpy(&op, cur, sizeof(op));
		uint64_t sz = align_up(sizeof(op) + (uint64_t)op.klen + op.vlen, 8);
		if (op.klen > KEEL_KEY_MAX || op.vlen > KEEL_VALUE_MAX || sz > (uint64_t)(end - cur))
			break;
		ops[k].type = op.type;
		ops[k].partition = op.part;
		ops[k].version = op.version;
		ops[k].klen = op.klen;
		ops[k].vlen = op.vlen;
		ops[k].key = cur + sizeof(op);
		ops[k].value = cur + sizeof(op) + op.klen;
		cur += sz;
	}
	out.nops_decoded = k;
	out.ops = ops;
	if (k < r.nops && out.valid) {
		out.valid = 0;
		snprintf(out.problem, sizeof(out.problem), "%u operations announced, %u decodable", r.nops, k);
	}
	rc = fn(ctx, &out);
	free(ops);
	return rc;
}

int keel_journal_decode(uint64_t lsn, const void *payload, size_t len, keel_journal_record_fn fn,
			void *ctx)
{
	if ((!payload && len) || !fn)
		return shm_err(KEEL_E_INVAL, "keel_journal_decode: NULL payload or callback");
	return decode_record(lsn, payload ? payload : "", len, fn, ctx);
}

/* ---- journal: the directory ------------------------------------------------------------------------ */

/* The store's identity and a plain-syscall I/O backend for reading.  A
 * memory-mode store has no keel.id: NOTFOUND. */
static int journal_open(const char *dir, jio_t **io, uint8_t uuid[16])
{
	int rc, found = 0;

	if (!dir || !dir[0])
		return shm_err(KEEL_E_INVAL, "store directory is NULL or empty");
	if ((rc = jio_real_create(0, JIO_REAL_NO_URING, 0600, io)))
		return rc;
	if ((rc = store_id_read(*io, dir, uuid, &found)))
		goto fail;
	if (!found) {
		rc = shm_err(KEEL_E_NOTFOUND, "%s has no keel.id: it is not a durable store (a memory-mode store has no journal)",
			     dir);
		goto fail;
	}
	return 0;
fail:
	jio_destroy(*io);
	*io = NULL;
	return rc;
}

#define SEG_MAGIC 0x47534a4bu        /* journal.c: JNL_SEG_MAGIC ("KJSG") */
#define SEG_VERSION 1u
#define SEG_F_ZEROED 1u

/* Parse "seg-<16 hex>.jnl" (and, with lost, "seg-<16 hex>.jnl.lost"). */
static int segment_name_parse(const char *name, uint64_t *segno, int *lost)
{
	char canon[64];
	size_t n = strlen(name);

	*lost = n == 29 && strcmp(name + 24, ".lost") == 0;
	if (n != 24 && !*lost)
		return 0;
	memcpy(canon, name, 24);   /* the segment name without ".lost" */
	canon[24] = 0;
	return jnl_parse_name(canon, segno);
}

/* Classify a header sector; the rule of journal.c's seghdr_decode. */
static void segment_classify(const uint8_t *sector, const uint8_t uuid[16], keel_journal_segment_t *s)
{
	uint32_t magic, version, flags, reserved;
	uint64_t segno, first, seg_bytes, sum, want;
	uint8_t tmp[JNL_HEADER_BYTES];

	memcpy(&magic, sector, 4);
	memcpy(&version, sector + 4, 4);
	memcpy(&segno, sector + 8, 8);
	memcpy(&first, sector + 16, 8);
	memcpy(&seg_bytes, sector + 40, 8);
	memcpy(&flags, sector + 48, 4);
	memcpy(&reserved, sector + 52, 4);
	memcpy(&sum, sector + 56, 8);
	magic = le32toh(magic);
	version = le32toh(version);
	segno = le64toh(segno);
	first = le64toh(first);
	seg_bytes = le64toh(seg_bytes);
	flags = le32toh(flags);
	sum = le64toh(sum);
	memcpy(tmp, sector, sizeof(tmp));
	memset(tmp + 56, 0, 8);
	want = XXH3_64bits(tmp, sizeof(tmp));
	s->flags = flags;
	s->seg_bytes = seg_bytes;
	if (magic != SEG_MAGIC) {
		s->state = KEEL_SEGMENT_DAMAGED;
		snprintf(s->note, sizeof(s->note), "no segment magic (found 0x%08x, expected 0x%08x)", magic,
			 SEG_MAGIC);
	} else if (sum != want) {
		s->state = KEEL_SEGMENT_DAMAGED;
		snprintf(s->note, sizeof(s->note), "header checksum %016" PRIx64 ", expected %016" PRIx64, sum, want);
	} else if (version != SEG_VERSION) {
		s->state = KEEL_SEGMENT_ALIEN;
		snprintf(s->note, sizeof(s->note), "format version %u (this build reads %u)", version, SEG_VERSION);
	} else if (memcmp(sector + 24, uuid, 16) != 0) {
		s->state = KEEL_SEGMENT_ALIEN;
		snprintf(s->note, sizeof(s->note), "belongs to another store (UUID differs)");
	} else if (segno != s->segno) {
		s->state = KEEL_SEGMENT_STALE;
		snprintf(s->note, sizeof(s->note), "header is for segment %" PRIu64 " (a recycled file)", segno);
	} else if ((flags & ~SEG_F_ZEROED) || reserved || first == UINT64_MAX ||
		   seg_bytes < JNL_SEG_BYTES_MIN || seg_bytes > JNL_SEG_BYTES_MAX ||
		   seg_bytes % JIO_SECTOR_BYTES) {
		s->state = KEEL_SEGMENT_ALIEN;
		snprintf(s->note, sizeof(s->note), "header fields out of range (flags 0x%x, seg_bytes %" PRIu64 ")",
			 flags, seg_bytes);
	} else if (first == 0) {
		s->state = KEEL_SEGMENT_SPARE;
	} else {
		s->state = KEEL_SEGMENT_USED;
		s->first_lsn = first;
		if (s->file_bytes != seg_bytes)
			snprintf(s->note, sizeof(s->note), "file is %" PRIu64 " bytes, its header says %" PRIu64,
				 s->file_bytes, seg_bytes);
	}
}

struct seg_list {
	keel_journal_segment_t *v;
	size_t n, cap;
	int rc;
};

static int seg_add(void *ctx, const char *name)
{
	struct seg_list *l = ctx;
	uint64_t segno;
	int lost;

	if (!segment_name_parse(name, &segno, &lost))
		return 0;   /* not a segment file: ignored, as the journal does */
	if (l->n >= JNL_SEGMENTS_MAX)
		return shm_err(KEEL_E_LIMIT, "journal directory holds more than %u segments", JNL_SEGMENTS_MAX);
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		keel_journal_segment_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return shm_err(KEEL_E_NOMEM, "out of memory listing the journal");
		l->v = v;
		l->cap = cap;
	}
	keel_journal_segment_t *s = &l->v[l->n++];
	memset(s, 0, sizeof(*s));
	s->segno = segno;
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->state = lost ? KEEL_SEGMENT_LOST : 0;
	return 0;
}

static int seg_cmp(const void *a, const void *b)
{
	const keel_journal_segment_t *x = a, *y = b;
	if (x->segno != y->segno)
		return x->segno < y->segno ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int segment_read(jio_t *io, const char *jdir, const uint8_t uuid[16], keel_journal_segment_t *s)
{
	char path[JIO_PATH_MAX];
	uint8_t sector[JNL_HEADER_BYTES];
	size_t got = 0;
	int fh, rc;

	if ((rc = jio_join(path, sizeof(path), jdir, s->name)))
		return rc;
	if ((rc = jio_open(io, path, JIO_RDONLY, &fh))) {
		if (rc == KEEL_E_NOTFOUND) {   /* recycled or removed since the listing */
			snprintf(s->note, sizeof(s->note), "vanished while the directory was read");
			s->state = s->state ? s->state : KEEL_SEGMENT_DAMAGED;
			return 0;
		}
		return rc;
	}
	rc = jio_size(io, fh, &s->file_bytes);
	if (rc == 0)
		rc = jio_pread(io, fh, sector, sizeof(sector), 0, &got);
	jio_close(io, fh);
	if (rc)
		return rc;
	int lost = s->state == KEEL_SEGMENT_LOST;
	if (got < sizeof(sector)) {
		s->state = KEEL_SEGMENT_DAMAGED;
		snprintf(s->note, sizeof(s->note), "file of %" PRIu64 " bytes has no full header", s->file_bytes);
	} else {
		segment_classify(sector, uuid, s);
	}
	if (lost) {
		/* Keep the header's verdict after the reason it is listed. */
		char why[sizeof(s->note)];
		memcpy(why, s->note, sizeof(why));
		s->state = KEEL_SEGMENT_LOST;
		int n = snprintf(s->note, sizeof(s->note), "moved aside by a salvage");
		if (why[0] && n > 0 && (size_t)n + 2 < sizeof(s->note))
			snprintf(s->note + n, sizeof(s->note) - (size_t)n, "; %.*s",
				 (int)(sizeof(s->note) - (size_t)n - 3), why);
	}
	return 0;
}

int keel_journal_segments(const char *dir, keel_journal_segment_fn fn, void *ctx)
{
	struct seg_list l = { 0 };
	char jdir[JIO_PATH_MAX];
	uint8_t uuid[16];
	jio_t *io = NULL;
	int rc;

	if (!fn)
		return shm_err(KEEL_E_INVAL, "keel_journal_segments: callback is NULL");
	if ((rc = journal_open(dir, &io, uuid)))
		return rc;
	if ((rc = jio_join(jdir, sizeof(jdir), dir, "journal")))
		goto out;
	rc = jio_list(io, jdir, seg_add, &l);
	if (rc == KEEL_E_NOTFOUND) {
		rc = 0;   /* no journal directory yet: no segments */
		goto out;
	}
	if (rc)
		goto out;
	if (l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), seg_cmp);
	for (size_t i = 0; i < l.n; i++) {
		if ((rc = segment_read(io, jdir, uuid, &l.v[i])))
			goto out;
		if ((rc = fn(ctx, &l.v[i]))) {
			rc = stop_code(rc);
			goto out;
		}
	}
out:
	free(l.v);
	jio_destroy(io);
	return rc;
}

/* ---- journal: the records ------------------------------------------------------------------------- */

#define SCAN_ATTEMPTS_MAX 3
#define SCAN_RETRY_NS (5 * 1000 * 1000)

struct rec_scan {
	uint64_t from_lsn;
	keel_journal_record_fn fn;
	void *ctx;
	uint64_t records, first, last;
	int fn_rc;           /* fn's own nonzero answer, told apart from the scan's errors */
};

static int rec_scan_one(void *ctx, uint64_t lsn, const void *payload, size_t len)
{
	struct rec_scan *s = ctx;

	if (lsn < s->from_lsn)
		return 0;
	s->records++;
	if (!s->first)
		s->first = lsn;
	s->last = lsn;
	if (!s->fn)
		return 0;
	int rc = decode_record(lsn, payload, len, s->fn, s->ctx);
	if (rc)
		s->fn_rc = rc;
	return rc;
}

int keel_journal_records(const char *dir, uint64_t from_lsn, keel_journal_record_fn fn, void *ctx,
			 keel_journal_summary_t *sum)
{
	keel_journal_summary_t local;
	jnl_scan_result_t res;
	struct rec_scan s;
	char jdir[JIO_PATH_MAX];
	uint8_t uuid[16];
	jio_t *io = NULL;
	int rc;

	if (!sum)
		sum = &local;
	memset(sum, 0, sizeof(*sum));
	if ((rc = journal_open(dir, &io, uuid)))
		return rc;
	if ((rc = jio_join(jdir, sizeof(jdir), dir, "journal")))
		goto out;
	memset(&s, 0, sizeof(s));
	s.from_lsn = from_lsn;
	s.fn = fn;
	s.ctx = ctx;
	/* No REPAIR, no SALVAGE: a read that changes nothing on disk.  Damage
	 * is confirmed by reading again: see rescans in the essay above. */
	uint64_t from = from_lsn;
	for (int attempt = 0; attempt < SCAN_ATTEMPTS_MAX; attempt++) {
		rc = jnl_scan(jdir, io, uuid, from, 0, rec_scan_one, &s, &res);
		if (s.fn_rc || rc != KEEL_E_CORRUPT)
			break;
		if (res.bad == JNL_BAD_GAP && from && !s.records) {
			/* The LSN asked for is older than the journal: start at
			 * its oldest record (older ones are in a checkpoint). */
			from = 0;
			continue;
		}
		if (attempt + 1 < SCAN_ATTEMPTS_MAX) {
			struct timespec ts = { 0, SCAN_RETRY_NS };
			nanosleep(&ts, NULL);
			from = s.last ? s.last + 1 : from;   /* records passed stay passed */
		}
	}
	if (rc == KEEL_E_NOTFOUND && !s.fn_rc)
		rc = 0;   /* no journal directory: a store that never committed */
	sum->records = s.records;
	sum->first_lsn = s.first;
	sum->last_lsn = s.last;
	sum->next_lsn = res.next_lsn;
	sum->torn = rc == 0 && res.end == JNL_END_TORN;
	snprintf(sum->message, sizeof(sum->message), "%s", res.msg);
	if (s.fn_rc) {
		rc = stop_code(s.fn_rc);
	} else if (rc == KEEL_E_CORRUPT) {
		sum->status = KEEL_E_CORRUPT;
		rc = shm_err(KEEL_E_CORRUPT, "journal of %s is damaged: %s", dir,
			     res.msg[0] ? res.msg : shm_errmsg());
	}
out:
	jio_destroy(io);
	return rc;
}
