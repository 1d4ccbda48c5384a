/*
 * store.c - opening and closing a store, options, errors and statistics.
 *
 * keel_open attaches (or creates) the arena of a store directory, claims a
 * process slot and reaps the slots of dead processes.  A handle remembers the
 * process "fork generation" at open; the generation moves in every child
 * after fork(), so a handle carried into a child is refused cheaply.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/crashpoint.h"
#include "lib/internal.h"
#include "lib/jio.h"

volatile uint64_t keel_fork_gen = 1;
static uint64_t serial_next = 1;
static pthread_mutex_t serial_mu = PTHREAD_MUTEX_INITIALIZER;

static void after_fork_child(void)
{
	keel_fork_gen++;
}

__attribute__((constructor)) static void store_module_init(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

static const struct {
	int code;
	const char *text;
} errors[] = {
	{ KEEL_OK, "KEEL_OK: success" },
	{ KEEL_E_INVAL, "KEEL_E_INVAL: invalid argument" },
	{ KEEL_E_NOTFOUND, "KEEL_E_NOTFOUND: not found" },
	{ KEEL_E_CONFLICT, "KEEL_E_CONFLICT: version conflict" },
	{ KEEL_E_KEYSIZE, "KEEL_E_KEYSIZE: key empty or too long" },
	{ KEEL_E_VALSIZE, "KEEL_E_VALSIZE: value too long" },
	{ KEEL_E_NAME, "KEEL_E_NAME: bad partition name" },
	{ KEEL_E_FULL, "KEEL_E_FULL: arena full" },
	{ KEEL_E_TXNSIZE, "KEEL_E_TXNSIZE: transaction too large" },
	{ KEEL_E_CLOSED, "KEEL_E_CLOSED: handle or transaction closed" },
	{ KEEL_E_FORKED, "KEEL_E_FORKED: handle used after fork" },
	{ KEEL_E_READONLY, "KEEL_E_READONLY: write to a read-only store or scope" },
	{ KEEL_E_ATTACH, "KEEL_E_ATTACH: arena refused at attach" },
	{ KEEL_E_LAYOUT, "KEEL_E_LAYOUT: arena made by an incompatible build" },
	{ KEEL_E_PERM, "KEEL_E_PERM: owner, mode or permission refused" },
	{ KEEL_E_NAMESPACE, "KEEL_E_NAMESPACE: arena serves another PID namespace" },
	{ KEEL_E_CORRUPT, "KEEL_E_CORRUPT: damaged arena, journal or checkpoint" },
	{ KEEL_E_IO, "KEEL_E_IO: I/O error" },
	{ KEEL_E_NOSPC, "KEEL_E_NOSPC: no space left on the journal disk" },
	{ KEEL_E_PANIC, "KEEL_E_PANIC: store failed; reopen to recover" },
	{ KEEL_E_NOMEM, "KEEL_E_NOMEM: out of memory" },
	{ KEEL_E_BUSY, "KEEL_E_BUSY: resource in use" },
	{ KEEL_E_LIMIT, "KEEL_E_LIMIT: a fixed limit was reached" },
	{ KEEL_E_TIMEOUT, "KEEL_E_TIMEOUT: timed out" },
	{ KEEL_E_STATE, "KEEL_E_STATE: call not valid in this state" },
	{ KEEL_E_OS, "KEEL_E_OS: system call failed" },
};

const char *keel_strerror(int code)
{
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (errors[i].code == code)
			return errors[i].text;
	return "KEEL_E_?: unknown error code";
}

const char *keel_errmsg(void)
{
	return shm_errmsg();
}

void keel_options_init(keel_options_t *opt)
{
	if (!opt)
		return;
	memset(opt, 0, sizeof(*opt));
	opt->struct_size = sizeof(*opt);
	opt->durability = KEEL_DURABILITY_DEFAULT;   /* sync for a new store */
	opt->file_mode = 0600;
	opt->arena_bytes_max = SHM_ARENA_BYTES_DEFAULT;
	opt->ring_bytes = SHM_RING_BYTES_DEFAULT;
	opt->async_window_ms = 10;
	opt->timer_max_deliveries = 10;
}

static uint64_t store_layout_sig(void)
{
	uint64_t v[] = { sizeof(struct keel_root), sizeof(struct part), sizeof(struct node),
			 sizeof(struct rec), sizeof(struct rec_op), sizeof(struct shm_heap),
			 SHM_CLASSES_MAX, SHM_PARTS_MAX, KEEL_KEY_MAX, KEEL_VALUE_MAX, USER_BYTES,
			 sizeof(struct bucket_dir), SHM_BUCKETS_LOG2_MIN, SHM_BUCKETS_LOG2_MAX,
			 offsetof(struct keel_root, written_lsn), offsetof(struct shm_reader, novis),
			 offsetof(struct part, applying_lsn),
			 DUMMY_HINT_BITS, TIMER_HEAP_SLOT_BYTES, TIMER_HEAP_ARITY };
	return XXH3_64bits(v, sizeof(v));
}

struct open_ctx {
	const keel_options_t *opt;
	const char *dir;
	struct jio *io;
	int journaled;
	uint8_t uuid[16];
	uint64_t dir_btime;
};

/*
 * The store directory's birth time, or 0 where the file system does not
 * keep one.  The arena's name comes from the directory's device and inode;
 * an inode is reused once its directory is removed, so a new directory can
 * find the arena of a removed one under its name.  The birth time tells
 * them apart: a memory-mode store has no identity file to do it.
 */
static uint64_t dir_btime(const char *dir)
{
	struct statx stx;

	if (statx(AT_FDCWD, dir, 0, STATX_BTIME, &stx) != 0 || !(stx.stx_mask & STATX_BTIME))
		return 0;
	return (uint64_t)stx.stx_btime.tv_sec * 1000000000ull + stx.stx_btime.tv_nsec;
}

static int init_root(shm_arena_t *a, void *ctx)
{
	struct keel_root *root = (struct keel_root *)a->hdr->root;
	struct open_ctx *oc = ctx;
	int rc;

	memset(root, 0, sizeof(*root));
	if ((rc = shm_lock_init(&root->flush_lock)) || (rc = shm_lock_init(&root->apply_lock)) ||
	    (rc = shm_lock_init(&root->dir_lock)))
		return shm_err(KEEL_E_OS, "lock init: error %d", -rc);
	root->rsv.AO_val1 = 0;   /* ring head */
	root->rsv.AO_val2 = 1;   /* next LSN */
	root->gen = 1;
	root->journaled = (uint32_t)oc->journaled;
	memcpy(root->uuid, oc->uuid, 16);
	root->dir_btime_ns = oc->dir_btime;
	if (!oc->journaled)
		root->durability = KEEL_DURABILITY_MEMORY;
	else
		root->durability = oc->opt->durability == KEEL_DURABILITY_ASYNC ? KEEL_DURABILITY_ASYNC
										 : KEEL_DURABILITY_SYNC;
	/* A durable store's arena is rebuilt from its checkpoint and journal
	 * here, before the arena is published: nobody sees it half-made. */
	if (oc->journaled)
		return durable_recover(a, oc->dir, oc->io, oc->uuid);
	return 0;
}

static int check_options(const keel_options_t *o)
{
	if (o->struct_size != sizeof(*o))
		return shm_err(KEEL_E_INVAL, "options not initialised with keel_options_init");
	if (o->flags & ~(uint32_t)(KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY))
		return shm_err(KEEL_E_INVAL, "unknown open flags %#x", o->flags & ~(uint32_t)(KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY));
	if (o->durability < KEEL_DURABILITY_DEFAULT || o->durability > KEEL_DURABILITY_SYNC)
		return shm_err(KEEL_E_INVAL, "unknown durability %d", o->durability);
	if (o->file_mode != 0600 && o->file_mode != 0660 && o->file_mode != 0640)
		return shm_err(KEEL_E_INVAL, "file_mode %03o: use 0600 (default), 0640 or 0660", o->file_mode);
	if (o->arena_bytes_max < SHM_ARENA_BYTES_MIN || o->arena_bytes_max > SHM_ARENA_BYTES_MAX)
		return shm_err(KEEL_E_INVAL, "arena_bytes_max %llu is outside [%llu, %llu]",
			       (unsigned long long)o->arena_bytes_max, (unsigned long long)SHM_ARENA_BYTES_MIN,
			       (unsigned long long)SHM_ARENA_BYTES_MAX);
	if (o->ring_bytes < SHM_RING_BYTES_MIN || o->ring_bytes > SHM_RING_BYTES_MAX)
		return shm_err(KEEL_E_INVAL, "ring_bytes %llu is outside [%u, %u]", (unsigned long long)o->ring_bytes,
			       SHM_RING_BYTES_MIN, SHM_RING_BYTES_MAX);
	if (o->ring_bytes * 2 > o->arena_bytes_max)
		return shm_err(KEEL_E_INVAL, "ring_bytes %llu must be at most half of arena_bytes_max %llu",
			       (unsigned long long)o->ring_bytes, (unsigned long long)o->arena_bytes_max);
	return 0;
}

static int resolve_arena(const char *dir, const keel_options_t *o, char *buf, size_t cap)
{
	if (o->arena_path) {
		if ((size_t)snprintf(buf, cap, "%s", o->arena_path) >= cap)
			return shm_err(KEEL_E_INVAL, "arena path too long");
		return 0;
	}
	return shm_arena_default_path(dir, buf, cap);
}

int keel_arena_path(const char *dir, const keel_options_t *opt, char *buf, size_t cap)
{
	keel_options_t d;
	if (!dir || !buf)
		return shm_err(KEEL_E_INVAL, "NULL argument");
	if (!opt) {
		keel_options_init(&d);
		opt = &d;
	}
	return resolve_arena(dir, opt, buf, cap);
}

static int rsv_settled(shm_arena_t *a, uint64_t lsn)
{
	struct keel_root *root = (struct keel_root *)a->hdr->root;
	return lsn <= shm_load_acq(&root->applied_lsn);
}

/* A dead process's flush waiters leave the shared count (see durable.c). */
static void proc_reaped(shm_arena_t *a, uint32_t idx)
{
	struct keel_root *root = (struct keel_root *)a->hdr->root;
	struct shm_proc *p = shm_proc_slot(a, idx);
	uint32_t w = shm_load32(&p->waiting), all = shm_load32(&root->flush_waiters);

	shm_store32(&p->waiting, 0);
	if (w)
		shm_faa32(&root->flush_waiters, (uint32_t)-(w < all ? w : all));
}

/* The root's counters must agree with each other before anyone loops on them. */
static int check_root(keel_t *h, const char *path)
{
	struct keel_root *r = h->root;
	/* Live writers move these on: read the trailing ones first, so a sound
	 * arena always satisfies the checks however they interleave. */
	uint64_t ap = shm_load_acq(&r->applied_pos), al = shm_load_acq(&r->applied_lsn);
	uint64_t head = ring_head(r), nl = next_lsn(r);
	uint64_t rb = h->a.ring_bytes;

	if (ap > head || ap % REC_ALIGN || head % REC_ALIGN || al >= nl || r->nparts > SHM_PARTS_MAX ||
	    r->gen == 0)
		return shm_err(KEEL_E_CORRUPT, "arena %s: commit counters disagree (ring head %llu, applied position %llu, next LSN %llu, applied LSN %llu, %u partitions); the arena is damaged: remove it (keel destroy) and recover from the journal",
			       path, (unsigned long long)head, (unsigned long long)ap, (unsigned long long)nl,
			       (unsigned long long)al, r->nparts);
	(void)rb;
	return 0;
}

static int count_entry(void *ctx, const char *name)
{
	(void)name;
	(*(int *)ctx)++;
	return 0;
}

/* A journal without keel.id is a store that lost its identity: refuse
 * rather than give it a new one, which would orphan every record. */
static int journal_orphaned(struct jio *io, const char *dir)
{
	char jdir[4200];
	int n = 0;
	snprintf(jdir, sizeof(jdir), "%s/journal", dir);
	int rc = jio_list(io, jdir, count_entry, &n);
	if (rc == KEEL_E_NOTFOUND || (rc == 0 && n == 0))
		return 0;   /* no journal: a new store */
	if (rc)
		return rc;
	return shm_err(KEEL_E_CORRUPT, "%s has a journal (%d files in %s) but no keel.id: the store's identity is lost; restore keel.id from a backup (nothing was changed)",
		       dir, n, jdir);
}

int keel_open_io(const char *dir, const keel_options_t *opt, struct jio *io, keel_t **out)
{
	keel_options_t d;
	struct shm_create_opts so;
	struct open_ctx oc;
	char path[256];
	keel_t *h;
	int rc, created, found = 0, own_io = 0;

	shm_err_clear();
	if (!dir || !out)
		return shm_err(KEEL_E_INVAL, "keel_open: NULL argument");
	if (!dir[0])
		return shm_err(KEEL_E_INVAL, "keel_open: the store directory is an empty string");
	*out = NULL;
	if ((rc = crash_env_arm()))   /* KEEL_CRASH_AT, once per process */
		return rc;
	if (!opt) {
		keel_options_init(&d);
		opt = &d;
	}
	if ((rc = check_options(opt)))
		return rc;
	if (!(opt->flags & KEEL_OPEN_NOCREATE) && mkdir(dir, 0700) != 0 && errno != EEXIST)
		return shm_err(errno == EACCES ? KEEL_E_PERM : KEEL_E_OS, "cannot create store directory %s: %s",
			       dir, strerror(errno));
	if ((rc = resolve_arena(dir, opt, path, sizeof(path))))
		return rc;
	char rdir[PATH_MAX];
	if (realpath(dir, rdir) == NULL)
		snprintf(rdir, sizeof(rdir), "%s", dir);
	dir = rdir;   /* one spelling for the arena, the journal and recovery */
	memset(&oc, 0, sizeof(oc));
	oc.opt = opt;
	oc.dir = dir;
	oc.dir_btime = opt->arena_path ? 0 : dir_btime(dir);
	/* Durable or not: the identity file decides for an existing store, the
	 * options for a new one. */
	if (!io) {
		char idp[4200];
		struct stat st;
		snprintf(idp, sizeof(idp), "%s/keel.id", dir);
		if (stat(idp, &st) == 0 || opt->durability != KEEL_DURABILITY_MEMORY) {
			if ((rc = jio_real_create(0, keel_jio_flags(), 0600, &io)))
				return rc;
			own_io = 1;
		}
	}
	int retried = 0;
again:
	found = 0;
	if (io) {
		if ((rc = store_id_read(io, dir, oc.uuid, &found)))
			goto fail_io;
		struct stat ast;
		int arena_exists = lstat(path, &ast) == 0;
		/* A new store (no arena, no identity) becomes durable unless asked
		 * for memory mode; an existing memory-mode arena stays as it is. */
		if (!found && opt->durability != KEEL_DURABILITY_MEMORY &&
		    !arena_exists) {
			if (opt->flags & (KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY)) {
				rc = shm_err(KEEL_E_NOTFOUND, "store %s has no journal (keel.id missing)", dir);
				goto fail_io;
			}
			if ((rc = journal_orphaned(io, dir)))
				goto fail_io;
			if ((rc = store_id_create(io, dir, oc.uuid)))
				goto fail_io;
			found = 1;
		}
	}
	oc.journaled = found;
	oc.io = io;
	h = calloc(1, sizeof(*h));
	if (!h) {
		rc = shm_err(KEEL_E_NOMEM, "out of memory for a handle");
		goto fail_io;
	}
	memset(&so, 0, sizeof(so));
	so.arena_bytes_max = opt->arena_bytes_max;
	so.ring_bytes = opt->ring_bytes;
	so.user_bytes = USER_BYTES;
	so.file_mode = opt->file_mode;
	so.layout_sig_extra = store_layout_sig();
	/* A read-only open never creates or rebuilds anything (keel-dump relies
	 * on it); a durable store whose arena is gone is rebuilt by a writable
	 * open or by keel_recover. */
	so.create = !(opt->flags & (KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY)) ||
		    (found && !(opt->flags & KEEL_OPEN_READONLY));
	so.init_root = init_root;
	so.ctx = &oc;
	snprintf(h->dir, sizeof(h->dir), "%s", dir);
	for (int attempt = 0;; attempt++) {
		if ((rc = shm_arena_open(path, &so, &h->a, &created))) {
			if (rc == KEEL_E_NOTFOUND && found && (opt->flags & KEEL_OPEN_READONLY))
				rc = shm_err(KEEL_E_NOTFOUND, "store %s has no arena (after a reboot or a wiped /dev/shm); a read-only open does not rebuild it: open it read-write or run keel recover",
					     dir);
			free(h);
			goto fail_io;
		}
		h->root = (struct keel_root *)h->a.hdr->root;
		/* An arena that is not this store's, or that failed, is rebuilt
		 * from the disk when nobody else uses it. */
		int stale = found ? (!h->root->journaled || memcmp(h->root->uuid, oc.uuid, 16) != 0)
				  : h->root->journaled != 0;   /* another store's arena: same inode reused */
		if (oc.dir_btime && h->root->dir_btime_ns && h->root->dir_btime_ns != oc.dir_btime)
			stale = 1;   /* made for a removed directory whose inode this one reuses */
		int failed = h->root->failed != 0;
		if ((!stale && !failed) || (opt->flags & KEEL_OPEN_READONLY))
			break;   /* read-only: inspect it as it stands */
		int lone = 1;
		for (uint32_t i = 0; i < shm_load32(&h->a.hdr->procs_hi) && i < SHM_PROCS_MAX; i++)
			lone &= !shm_proc_live(&h->a, i, NULL);
		shm_arena_close(&h->a);
		if (!lone || attempt > 0) {
			rc = shm_err(stale ? KEEL_E_ATTACH : KEEL_E_PANIC,
				     stale ? "arena %s belongs to another store than %s (identity differs); remove it with keel destroy"
					   : "store %s failed after a journal error and processes still use it; close every handle, then reopen to recover",
				     path, dir);
			free(h);
			goto fail_io;
		}
		unlink(path);   /* rebuild from checkpoint and journal */
		if (!found && !retried) {   /* decide again what this store is */
			retried = 1;
			free(h);
			goto again;
		}
	}
	h->a.rsv_settled = rsv_settled;
	h->a.proc_reaped = proc_reaped;
	h->part_index = shm_at(&h->a, h->a.user_off);
	h->part_pages = shm_at(&h->a, h->a.user_off + SHM_PART_INDEX_SLOTS * 4u);
	h->vis_states = shm_at(&h->a, h->a.user_off + USER_PART_BYTES);
	if (h->root->durability < KEEL_DURABILITY_MEMORY || h->root->durability > KEEL_DURABILITY_SYNC) {
		rc = shm_err(KEEL_E_CORRUPT, "arena %s: durability field %u is invalid", path, h->root->durability);
		goto fail;
	}
	if ((rc = check_root(h, path)))
		goto fail;
	h->durability = (int)h->root->durability;
	if (opt->durability != KEEL_DURABILITY_DEFAULT) {
		if (opt->durability != KEEL_DURABILITY_MEMORY && !h->root->journaled) {
			rc = shm_err(KEEL_E_INVAL, "store %s was made in memory mode and has no journal; it cannot be opened %s",
				     dir, opt->durability == KEEL_DURABILITY_SYNC ? "sync" : "async");
			goto fail;
		}
		h->durability = opt->durability;
	}
	h->readonly = !!(opt->flags & KEEL_OPEN_READONLY);
	h->fork_gen = keel_fork_gen;
	h->pid = (uint32_t)getpid();
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_init(&h->flush_mu, NULL);
	pthread_mutex_lock(&serial_mu);
	h->serial = serial_next++;
	pthread_mutex_unlock(&serial_mu);
	h->io = io;
	h->io_owned = own_io;
	own_io = 0;
	if ((rc = shm_proc_claim(&h->a, &h->proc)))
		goto fail;
	shm_reap(&h->a, NULL, NULL);
	h->timer_max_deliveries = opt && opt->timer_max_deliveries ? opt->timer_max_deliveries : 10;
	if ((rc = durable_open(h, opt, created)))
		goto fail_proc;
	*out = h;
	return 0;
fail_proc:
	shm_proc_release(&h->a, h->proc);
fail:
	if (h->io_owned)
		jio_destroy(h->io);
	shm_arena_close(&h->a);
	free(h);
	return rc;
fail_io:
	if (own_io)
		jio_destroy(io);
	return rc;
}

int keel_open(const char *dir, const keel_options_t *opt, keel_t **out)
{
	return keel_open_io(dir, opt, NULL, out);
}

int keel_close(keel_t *h)
{
	if (!h)
		return 0;
	if (h->closed)
		return shm_err(KEEL_E_CLOSED, "handle already closed");
	if (h->fork_gen == keel_fork_gen) {
		durable_close(h);
		pthread_mutex_lock(&h->mu);
		for (uint32_t i = 0; i < h->nreaders; i++)
			shm_reader_release(&h->a, h->readers[i]);
		h->nreaders = 0;
		pthread_mutex_unlock(&h->mu);
		shm_proc_release(&h->a, h->proc);
	}
	/* In a forked child the slots belong to the parent: only unmap. */
	shm_arena_close(&h->a);
	pthread_mutex_destroy(&h->mu);
	pthread_mutex_destroy(&h->flush_mu);
	h->closed = 1;
	free(h);
	return 0;
}


int keel_stat(keel_t *h, keel_stat_t *st)
{
	struct shm_page_stat ps;
	int rc = handle_ok(h);

	if (rc)
		return rc;
	if (!st)
		return shm_err(KEEL_E_INVAL, "st is NULL");
	memset(st, 0, sizeof(*st));
	struct shm_hdr *hd = h->a.hdr;
	st->arena_bytes = shm_load(&hd->arena_bytes);
	st->arena_bytes_max = hd->arena_bytes_max;
	if ((rc = shm_page_stat(&h->a, h->readonly, &ps)))
		return rc;
	uint64_t used = hd->heap_off + ps.pages_meta * SHM_PAGE_BYTES, slab = 0;
	uint32_t n = shm_load32_acq(&h->root->nparts), internal = 0;
	for (uint32_t i = 0; i < n && i < SHM_PARTS_MAX; i++) {
		struct part *p = part_by_id(h, i);
		if (!p)
			continue;
		/* A read-only handle does not repair a dead writer's partition
		 * (part.c, refuse_repair): its figures are as that writer left
		 * them, which no live process changes until a repair. */
		int locked = (rc = part_lock(h, p)) == 0;
		if (!locked && !(h->readonly && rc == KEEL_E_READONLY))
			return rc;
		rc = 0;
		used += p->heap.used_bytes;
		slab += p->heap.pages * SHM_PAGE_BYTES;
		if (!part_is_timers(p))
			st->keys += p->count;
		else
			internal++;   /* the timers' own partition is not a user's */
		uint64_t kmax = p->retire_count < walk_max(h) ? p->retire_count + 1 : walk_max(h);
		for (uint64_t off = p->retire_head, k = 0; locked && off && k < kmax; k++) {
			struct node *nd = shm_ptr(&h->a, off, sizeof(struct node));
			if (!nd)
				break;
			st->arena_bytes_retired += shm_block_bytes(&h->a, off);
			off = nd->retire_next;
		}
		if (locked)
			part_unlock(h, p);
	}
	st->arena_bytes_used = used;
	st->arena_bytes_free = ps.pages_free * SHM_PAGE_BYTES + (slab > used ? 0 : 0) +
			       (hd->arena_bytes_max - hd->galloc.bump);
	st->partitions = n - internal;
	for (uint32_t i = 0; i < shm_load32(&hd->procs_hi) && i < SHM_PROCS_MAX; i++)
		st->processes += shm_proc_live(&h->a, i, NULL);
	st->next_lsn = next_lsn(h->root);
	st->applied_lsn = shm_load_acq(&h->root->applied_lsn);
	st->durable_lsn = shm_load_acq(&h->root->durable_lsn);
	st->durability = (int)h->root->durability;
	st->format_version = hd->format_version;
	return 0;
}

int keel_partition_stat(keel_t *h, const char *part, keel_partition_stat_t *st)
{
	struct part *p;
	int rc = handle_ok(h);

	if (rc)
		return rc;
	if (!st)
		return shm_err(KEEL_E_INVAL, "st is NULL");
	if ((rc = part_find(h, part, &p)))
		return rc;
	if (!p)
		return shm_err(KEEL_E_NOTFOUND, "partition \"%s\" does not exist", part);
	memset(st, 0, sizeof(*st));
	if ((rc = part_lock(h, p)))
		return rc;
	st->keys = p->count;
	st->bytes = p->bytes;
	st->arena_bytes = p->heap.used_bytes;
	uint64_t log2;
	st->buckets = table_dir(h, p, &log2) ? 1ull << log2 : 0;
	st->id = p->id;
	part_unlock(h, p);
	return 0;
}

int keel_processes(keel_t *h, keel_proc_fn fn, void *ctx)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	if (!fn)
		return shm_err(KEEL_E_INVAL, "callback is NULL");
	uint64_t w = shm_load_acq(&h->root->applied_lsn);
	uint32_t hi = shm_load32(&h->a.hdr->procs_hi);
	for (uint32_t i = 0; i < hi && i < SHM_PROCS_MAX; i++) {
		struct shm_proc *sp = shm_proc_slot(&h->a, i);
		keel_proc_info_t pi;
		uint32_t pid;
		memset(&pi, 0, sizeof(pi));
		pi.alive = shm_proc_live(&h->a, i, &pid);
		if (pid == 0 || pid == SHM_PID_REAPING)
			continue;
		pi.pid = (pid_t)pid;
		pi.start_time = sp->start_time;
		uint32_t rhi = shm_load32(&h->a.hdr->readers_hi);
		for (uint32_t r = 0; r < rhi && r < SHM_READERS_MAX; r++) {
			struct shm_reader *rd = shm_reader_slot(&h->a, r);
			uint64_t s = shm_load(&rd->snap);
			if (rd->owner == i + 1 && s && w - (s - 1) > pi.reader_lag)
				pi.reader_lag = w - (s - 1);
		}
		uint32_t n = shm_load32_acq(&h->root->nparts);
		for (uint32_t k = 0; k < n && k < SHM_PARTS_MAX; k++) {
			struct part *p = part_by_id(h, k);
			if (p && p->lock.holder_pid == pid)
				pi.locks_held++;
		}
		if ((rc = fn(ctx, &pi)))
			return rc > 0 ? 0 : rc;
	}
	return 0;
}

int keel_unlink_arena(const char *dir, const keel_options_t *opt, int force)
{
	char path[256];
	int rc = keel_arena_path(dir, opt, path, sizeof(path));

	if (rc)
		return rc;
	if (!force) {
		keel_t *h;
		keel_options_t o;
		if (opt)
			o = *opt;
		else
			keel_options_init(&o);
		o.flags |= KEEL_OPEN_NOCREATE;
		if (keel_open(dir, &o, &h) == 0) {
			uint32_t live = 0;
			for (uint32_t i = 0; i < shm_load32(&h->a.hdr->procs_hi) && i < SHM_PROCS_MAX; i++)
				live += shm_proc_live(&h->a, i, NULL);
			keel_close(h);
			if (live > 1)
				return shm_err(KEEL_E_BUSY, "%u other processes are attached to %s; stop them or force",
					       live - 1, path);
		}
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return shm_err(KEEL_E_OS, "cannot remove arena %s: %s", path, strerror(errno));
	return 0;
}
