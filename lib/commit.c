/*
 * commit.c - transactions and the commit path.
 *
 * A transaction gathers its operations privately (struct keel_txn), collapsed
 * per key.  keel_txn_commit then:
 *   1. resolves (creating) its partitions and locks them in id order;
 *   2. checks every condition against the current versions and computes the
 *      new versions; nothing has changed yet, so a conflict just unlocks;
 *   3. allocates every block the apply will need, so "arena full" is found
 *      before anything is written (a death here leaks blocks that the
 *      partition's repair sweeps back);
 *   4. reserves ring space and an LSN (one CAS), sets each partition's
 *      "applying" marker, writes the redo record and flips it RESERVED ->
 *      COMPLETE with a CAS;
 *   5. applies the ops, sets APPLIED, clears the markers and unlocks;
 *   6. waits until applied_lsn covers its LSN, helping records whose owner
 *      died, so a commit is visible to its own thread when it returns.
 * A process that takes a partition lock from a dead holder finds the marker
 * (repair.c): COMPLETE records are redone (idempotent: an entry whose LSN is
 * at or past the record's is already applied), RESERVED ones are voided.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/crashpoint.h"
#include "lib/internal.h"

#define TXN_INLINE_OPS 4
#define TXN_INLINE_BYTES 512
#define RING_WAIT_NS_MAX (10ull * 1000000000ull)   /* a full ring waits this long at most */

struct txn_op {
	uint8_t type;        /* OP_PUT, OP_DEL, or 0 = condition only */
	uint8_t has_cond;
	uint8_t skip;        /* decided at commit: nothing to do */
	uint8_t existed;
	uint8_t tcond;       /* timers: TCOND_* checked at commit */
	uint8_t pad;
	uint16_t pidx;
	uint32_t klen, vlen;
	uint64_t cond;
	uint64_t hash;
	size_t key_at;       /* offset in buf: key, then value */
	uint64_t version;
	uint64_t token;      /* TCOND_CLAIM: the claim */
	const struct dummy *bk;   /* its bucket when added (table_prefetch), or NULL */
};

struct txn_part {
	char name[KEEL_PARTITION_NAME_MAX + 1];
	struct part *p;
	uint8_t cleared;
	uint8_t writes;
	uint8_t internal;        /* the timer partition */
	uint64_t cleared_count;
};

struct keel_txn {
	keel_t *h;
	int durability;
	int err;                 /* sticky error of a failed op */
	uint32_t nparts;
	struct txn_part parts[REC_PARTS_MAX];
	struct txn_op *ops;
	uint32_t nops, cap;
	uint8_t *buf;
	size_t len, bufcap;
	struct txn_op inline_ops[TXN_INLINE_OPS];
	uint8_t inline_buf[TXN_INLINE_BYTES];
	struct shm_reader *pin;  /* snapshot for reads (NULL for single ops) */
	struct snap snap;
	/* results for the single-op wrappers */
	uint64_t lsn;
	uint64_t removed;
};

static __thread keel_conflict_t last_conflict;

void keel_last_conflict(keel_conflict_t *out)
{
	if (out)
		*out = last_conflict;
}

/* ---- building a transaction ------------------------------------------------------------ */

static void txn_init(struct keel_txn *t, keel_t *h, int durability)
{
	t->h = h;
	t->durability = durability;
	t->err = 0;
	t->nparts = 0;
	t->ops = t->inline_ops;
	t->nops = 0;
	t->cap = TXN_INLINE_OPS;
	t->buf = t->inline_buf;
	t->len = 0;
	t->bufcap = TXN_INLINE_BYTES;
	t->lsn = 0;
	t->removed = 0;
	t->pin = NULL;
	t->snap.w = t->snap.v = 0;
}

static void txn_release(struct keel_txn *t)
{
	if (t->pin)
		reader_leave(t->h, t->pin);
	t->pin = NULL;
	if (t->ops != t->inline_ops)
		free(t->ops);
	if (t->buf != t->inline_buf)
		free(t->buf);
	t->ops = NULL;
	t->buf = NULL;
}

int keel_txn_begin(keel_t *h, int durability, keel_txn_t **out)
{
	int rc = handle_ok(h);
	if (rc)
		return rc;
	if (!out)
		return shm_err(KEEL_E_INVAL, "keel_txn_begin: out is NULL");
	if (durability < KEEL_DURABILITY_DEFAULT || durability > KEEL_DURABILITY_SYNC)
		return shm_err(KEEL_E_INVAL, "unknown durability %d", durability);
	struct keel_txn *t = malloc(sizeof(*t));
	if (!t)
		return shm_err(KEEL_E_NOMEM, "out of memory for a transaction");
	txn_init(t, h, durability);
	t->pin = reader_enter(h, &t->snap);
	if (!t->pin) {
		free(t);
		return shm_err(KEEL_E_LIMIT, "no reader slot for this thread: %s", shm_errmsg());
	}
	*out = t;
	return 0;
}

static int txn_ok(struct keel_txn *t)
{
	if (!t)
		return shm_err(KEEL_E_INVAL, "NULL transaction");
	if (!t->ops)
		return shm_err(KEEL_E_CLOSED, "transaction already committed or aborted");
	return handle_ok(t->h);
}

static int has_internal(const struct keel_txn *t)
{
	for (uint32_t i = 0; i < t->nparts; i++)
		if (t->parts[i].internal)
			return 1;
	return 0;
}

static int txn_part_index(struct keel_txn *t, const char *name, uint16_t *idx)
{
	size_t len;
	int internal = name == TIMER_PART;   /* by address: only timer.c passes it */
	int rc = internal ? 0 : part_name_check(name, &len);

	if (rc)
		return rc;
	if (internal)
		len = TIMER_PART_LEN;
	for (uint32_t i = 0; i < t->nparts; i++) {
		if (strcmp(t->parts[i].name, name) == 0) {
			*idx = (uint16_t)i;
			return 0;
		}
	}
	/* The timers' own partition comes on top of the user's limit. */
	if (t->nparts >= KEEL_TXN_PARTITIONS_MAX + (internal || has_internal(t)))
		return shm_err(KEEL_E_LIMIT, "a transaction touches at most %u partitions; \"%s\" would be one more",
			       KEEL_TXN_PARTITIONS_MAX, name);
	struct txn_part *tp = &t->parts[t->nparts];
	memcpy(tp->name, name, len + 1);
	tp->p = NULL;
	tp->cleared = 0;
	tp->writes = 0;
	tp->internal = (uint8_t)internal;
	*idx = (uint16_t)t->nparts++;
	return 0;
}

static int check_kv(const void *key, size_t klen, const void *val, size_t vlen)
{
	if (!key && klen)
		return shm_err(KEEL_E_INVAL, "key is NULL");
	if (klen == 0)
		return shm_err(KEEL_E_KEYSIZE, "key is empty; keys are 1 to %u bytes", KEEL_KEY_MAX);
	if (klen > KEEL_KEY_MAX)
		return shm_err(KEEL_E_KEYSIZE, "key of %zu bytes is over the limit of %u bytes", klen, KEEL_KEY_MAX);
	if (vlen > KEEL_VALUE_MAX)
		return shm_err(KEEL_E_VALSIZE, "value of %zu bytes is over the limit of %u bytes", vlen,
			       KEEL_VALUE_MAX);
	if (!val && vlen)
		return shm_err(KEEL_E_INVAL, "value is NULL with length %zu", vlen);
	return 0;
}

static struct txn_op *find_op(struct keel_txn *t, uint16_t pidx, const void *key, size_t klen, uint64_t hash)
{
	for (uint32_t i = t->nops; i-- > 0;) {
		struct txn_op *o = &t->ops[i];
		if (o->pidx == pidx && o->hash == hash && o->klen == klen &&
		    memcmp(t->buf + o->key_at, key, klen) == 0)
			return o;
	}
	return NULL;
}

/*
 * Add an op.  The value is vh (vhlen bytes) followed by val (vlen bytes):
 * timers put a header before the payload without copying it first.
 */
int txn_add_op(struct keel_txn *t, const char *part, int type, const void *key, size_t klen,
	       const void *vh, size_t vhlen, const void *val, size_t vlen, int has_cond, uint64_t cond,
	       int tcond, uint64_t token)
{
	uint16_t pidx;
	int rc;
	size_t total = vhlen + vlen;

	if ((rc = txn_ok(t)))
		return rc;
	if (t->h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = check_kv(key, klen, val, vlen)) || (rc = txn_part_index(t, part, &pidx)))
		return rc;
	if (total > KEEL_VALUE_MAX)
		return shm_err(KEEL_E_VALSIZE, "value of %zu bytes is over the limit of %u bytes", total,
			       KEEL_VALUE_MAX);
	if (t->nops >= KEEL_TXN_OPS_MAX)
		return shm_err(KEEL_E_TXNSIZE, "a transaction holds at most %u operations", KEEL_TXN_OPS_MAX);
	uint64_t hash = key_hash(key, klen);
	const struct dummy *bk = NULL;
	if (t->nops < 8 && part != TIMER_PART) {
		/* Start loading the key's bucket now: the commit reads it. */
		struct part *pp;
		if (part_find(t->h, part, &pp) == 0 && pp) {
			bk = table_prefetch(t->h, pp, hash);
			t->parts[pidx].p = pp;   /* partitions are never removed: the commit needs no lookup */
		}
	}
	struct txn_op *prev = t->nops > 64 ? NULL : find_op(t, pidx, key, klen, hash);
	if (prev && !prev->has_cond && !has_cond && !prev->tcond && !tcond && prev->vlen >= total) {
		/* Overwrite in place: same key, no condition, value fits. */
		prev->type = (uint8_t)type;
		prev->vlen = (uint32_t)total;
		if (vhlen)
			memcpy(t->buf + prev->key_at + klen, vh, vhlen);
		if (vlen)
			memcpy(t->buf + prev->key_at + klen + vhlen, val, vlen);
		return 0;
	}
	if (prev)
		prev->type = 0;   /* superseded: keep only its condition */
	if (t->nops == t->cap) {
		uint32_t cap = t->cap * 2;
		struct txn_op *n = malloc(cap * sizeof(*n));
		if (!n)
			return shm_err(KEEL_E_NOMEM, "out of memory growing a transaction");
		memcpy(n, t->ops, t->nops * sizeof(*n));
		if (t->ops != t->inline_ops)
			free(t->ops);
		t->ops = n;
		t->cap = cap;
	}
	if (t->len + klen + total > t->bufcap) {
		size_t cap = t->bufcap * 2;
		while (cap < t->len + klen + total)
			cap *= 2;
		uint8_t *n = malloc(cap);
		if (!n)
			return shm_err(KEEL_E_NOMEM, "out of memory growing a transaction");
		memcpy(n, t->buf, t->len);
		if (t->buf != t->inline_buf)
			free(t->buf);
		t->buf = n;
		t->bufcap = cap;
	}
	struct txn_op *o = &t->ops[t->nops++];
	memset(o, 0, sizeof(*o));
	o->type = (uint8_t)type;
	o->has_cond = (uint8_t)has_cond;
	o->cond = cond;
	o->tcond = (uint8_t)tcond;
	o->token = token;
	o->pidx = pidx;
	o->klen = (uint32_t)klen;
	o->vlen = (uint32_t)total;
	o->hash = hash;
	o->bk = bk;
	o->key_at = t->len;
	memcpy(t->buf + t->len, key, klen);
	if (vhlen)
		memcpy(t->buf + t->len + klen, vh, vhlen);
	if (vlen)
		memcpy(t->buf + t->len + klen + vhlen, val, vlen);
	t->len += klen + total;
	if (type)
		t->parts[pidx].writes = 1;
	return 0;
}

static int txn_add(struct keel_txn *t, const char *part, int type, const void *key, size_t klen,
		   const void *val, size_t vlen, int has_cond, uint64_t cond)
{
	return txn_add_op(t, part, type, key, klen, NULL, 0, val, vlen, has_cond, cond, TCOND_NONE, 0);
}

int keel_txn_put(keel_txn_t *t, const char *part, const void *key, size_t klen, const void *val, size_t vlen)
{
	return txn_add(t, part, OP_PUT, key, klen, val, vlen, 0, 0);
}

int keel_txn_put_if(keel_txn_t *t, const char *part, const void *key, size_t klen, const void *val,
		    size_t vlen, uint64_t expected)
{
	return txn_add(t, part, OP_PUT, key, klen, val, vlen, expected != KEEL_VERSION_ANY, expected);
}

int keel_txn_del(keel_txn_t *t, const char *part, const void *key, size_t klen)
{
	return txn_add(t, part, OP_DEL, key, klen, NULL, 0, 0, 0);
}

int keel_txn_del_if(keel_txn_t *t, const char *part, const void *key, size_t klen, uint64_t expected)
{
	return txn_add(t, part, OP_DEL, key, klen, NULL, 0, expected != KEEL_VERSION_ANY, expected);
}

int keel_txn_clear(keel_txn_t *t, const char *part)
{
	uint16_t pidx;
	int rc;

	if ((rc = txn_ok(t)))
		return rc;
	if (t->h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = txn_part_index(t, part, &pidx)))
		return rc;
	for (uint32_t i = 0; i < t->nops; i++)
		if (t->ops[i].pidx == pidx)
			t->ops[i].type = 0;   /* earlier writes are cleared; conditions stay */
	t->parts[pidx].cleared = 1;
	t->parts[pidx].writes = 1;
	return 0;
}

int keel_txn_get(keel_txn_t *t, const char *part, const void *key, size_t klen, void *buf, size_t cap,
		 size_t *vlen, keel_meta_t *meta)
{
	int rc;
	uint16_t pidx;

	if ((rc = txn_ok(t)) || (rc = check_kv(key, klen, NULL, 0)))
		return rc;
	size_t len;
	if ((rc = part_name_check(part, &len)))
		return rc;
	for (pidx = 0; pidx < t->nparts; pidx++)
		if (strcmp(t->parts[pidx].name, part) == 0)
			break;
	if (pidx < t->nparts) {
		struct txn_op *o = find_op(t, pidx, key, klen, key_hash(key, klen));
		while (o && o->type == 0)
			o = NULL;   /* a superseded op; the newer one is found first */
		if (o) {
			if (o->type == OP_DEL)
				return shm_err(KEEL_E_NOTFOUND, "key deleted in this transaction");
			if (vlen)
				*vlen = o->vlen;
			if (buf && cap)
				memcpy(buf, t->buf + o->key_at + klen, o->vlen < cap ? o->vlen : cap);
			if (meta)
				memset(meta, 0, sizeof(*meta));   /* not committed yet */
			return 0;
		}
		if (t->parts[pidx].cleared)
			return shm_err(KEEL_E_NOTFOUND, "partition cleared in this transaction");
	}
	struct part *p;
	if ((rc = part_find(t->h, part, &p)))
		return rc;
	const struct node *n = p ? table_get(t->h, p, key, klen, key_hash(key, klen), &t->snap) : NULL;
	if (!n)
		return shm_err(KEEL_E_NOTFOUND, "key not found in partition \"%s\"", part);
	if (vlen)
		*vlen = n->vlen;
	if (buf && cap)
		memcpy(buf, node_val(n), n->vlen < cap ? n->vlen : cap);
	if (meta) {
		meta->version = n->version;
		meta->mtime_ns = n->mtime_ns;
		meta->lsn = n->lsn;
	}
	return 0;
}

void keel_txn_abort(keel_txn_t *t)
{
	if (!t)
		return;
	txn_release(t);
	free(t);
}

/* ---- the ring ------------------------------------------------------------------------------------ */

struct rec *rec_at(keel_t *h, uint64_t pos)
{
	uint64_t rb = h->a.ring_bytes;
	return (struct rec *)shm_at(&h->a, h->a.ring_off + pos % rb / REC_ALIGN * REC_ALIGN);
}

int rec_fits(keel_t *h, uint64_t pos, const struct rec *r, uint64_t max_len)
{
	uint64_t rb = h->a.ring_bytes;
	return r->magic == REC_MAGIC && r->len >= REC_ALIGN && r->len % REC_ALIGN == 0 &&
	       r->len <= max_len && pos % REC_ALIGN == 0 && pos % rb + r->len <= rb;
}

/* The ring has been full for SHM_STALL_NOTE_NS: if what holds its tail is
 * a stopped process (a signal or a debugger), the holder of the apply or
 * the flush lock or the owner of the unfinished record the tail waits at,
 * say so on stderr (shm/lock.h), since nothing else ends the wait.  1 once
 * said (or due to be said). */
static int note_stopped_owner(keel_t *h, uint64_t waited_ns)
{
	struct keel_root *root = h->root;
	/* The ring's tail is the lesser of its applied end, moved under the
	 * apply lock (advance_applied), and its durable end, moved by the
	 * holder of the flush lock (durable.c). */
	uint32_t lpid = shm_lock_stopped_holder(&root->apply_lock), pid;
	const char *what = "while it moves the ring's applied end";

	if (!lpid && root->journaled && (lpid = shm_lock_stopped_holder(&root->flush_lock)))
		what = "while it holds the journal's flush lock, and no commit reaches the disk";
	if (lpid) {
		if (shm_stall_note_due())
			fprintf(stderr, "keel: a commit has waited %.1f s for room in the commit ring: process "
				"%u is stopped (a signal or a debugger) %s, and the ring cannot move on; "
				"continue it (kill -CONT %u) or kill it\n", (double)waited_ns / 1e9, lpid, what,
				lpid);
		return 1;
	}
	uint64_t lsn = shm_load_acq(&root->applied_lsn) + 1;
	pid = ring_record_owner(h, shm_load_acq(&root->applied_pos), lsn, 1);
	if (!pid || pid == h->pid || !shm_pid_stopped(pid, 0))
		return 0;
	if (shm_stall_note_due())
		fprintf(stderr, "keel: a commit has waited %.1f s for room in the commit ring: process %u is "
			"stopped (a signal or a debugger) in the middle of its commit (LSN %llu), and the ring "
			"cannot move past it; continue it (kill -CONT %u) or kill it\n", (double)waited_ns / 1e9,
			pid, (unsigned long long)lsn, pid);
	return 1;
}

/*
 * Reserve `need` bytes of ring and the next LSN with one CAS of root->rsv =
 * {head, next_lsn}.  Before the CAS the reserver announces {lsn, pos, len} in
 * its process slot, so that if it dies before writing the header, whoever
 * waits at that position can void the hole (void_hole).  The header's lsn is
 * written last with a release store (R7); advance_applied trusts a header only
 * if its lsn is the one expected there (A7), so stale bytes of an earlier lap
 * never pass.  A record that would cross the ring's end is preceded by a PAD
 * header carrying the same LSN.
 */
static int ring_reserve(keel_t *h, uint32_t need, struct rec **out, uint64_t *lpos)
{
	struct keel_root *root = h->root;
	struct shm_proc *me = shm_proc_slot(&h->a, h->proc);
	uint64_t rb = h->a.ring_bytes;
	uint32_t pid = h->pid;
	uint64_t start = me->start_time;

	uint64_t t0 = 0;
	int noted = 0;
	for (uint64_t attempt = 0;; attempt++) {
		uint64_t head, lsn;
		shm_load_pair(&root->rsv, &head, &lsn);
		uint64_t tail = ring_tail(root);
		uint64_t phys = head % rb;
		uint64_t pad = phys + need > rb ? rb - phys : 0;
		int states_free = lsn <= VIS_STATES || lsn - VIS_STATES <= h->vis_horizon ||
				  lsn - VIS_STATES <= (h->vis_horizon = vis_horizon(h));
		if (head + pad + need - tail <= rb && states_free) {
			shm_store(&me->rsv_pos, head);
			shm_store(&me->rsv_len, pad + need);
			shm_store_rel(&me->rsv_lsn, lsn);
			if (shm_cas_pair(&root->rsv, head, lsn, head + pad + need, lsn + 1)) {
				if (pad) {
					struct rec *p = rec_at(h, head);
					p->magic = REC_MAGIC;
					p->len = (uint32_t)pad;
					p->nops = 0;
					shm_store32(&p->state, REC_PAD);
					shm_store_rel(&p->lsn, lsn);   /* R7 */
				}
				struct rec *r = rec_at(h, head + pad);
				r->magic = REC_MAGIC;
				r->len = need;
				r->pid = pid;
				r->proc = h->proc;
				r->start_time = start;
				r->nops = 0;
				r->nparts = 0;
				shm_store32(&r->state, REC_RESERVED);
				shm_store_rel(&r->lsn, lsn);   /* R7 */
				shm_store_rel(&me->rsv_lsn, 0);
				*out = r;
				*lpos = head + pad;
				return 0;
			}
			shm_store_rel(&me->rsv_lsn, 0);
			continue;
		}
		/* Full: help the records before the tail along (void or redo what
		 * dead owners left).  We hold partition locks, so only trylock:
		 * a dead owner's lock always yields to trylock (EOWNERDEAD). */
		advance_applied(h);
		if (root->journaled && (attempt % 16) == 15)
			durable_try_flush(h);   /* records wait for the disk: flush them */
		if (root->failed)
			return shm_err(root->failed == KEEL_E_NOSPC ? KEEL_E_NOSPC : KEEL_E_PANIC,
				       "the journal failed; the commit ring cannot drain");
		if (attempt % 64 == 63)
			help_record(h, shm_load_acq(&root->applied_pos), 1);
		if (attempt == 100)
			t0 = shm_mono_ns();
		if (attempt > 100 && attempt % 1024 == 0 && !noted && shm_mono_ns() - t0 > SHM_STALL_NOTE_NS)
			noted = note_stopped_owner(h, shm_mono_ns() - t0);
		if (attempt > 100 && attempt % 1024 == 0 && shm_mono_ns() - t0 > RING_WAIT_NS_MAX) {
			if (head + pad + need - tail <= rb && !states_free)   /* room, but a reader holds the slot */
				return shm_err(KEEL_E_BUSY, "a read scope, iterator or transaction pinned at LSN %llu is still open after %u later commits; commits wait for it to end (waited %llu s); keep read scopes short",
					       (unsigned long long)vis_horizon(h), VIS_STATES,
					       (unsigned long long)(RING_WAIT_NS_MAX / 1000000000ull));
			struct rec *b = rec_at(h, shm_load(&root->applied_pos));
			return shm_err(KEEL_E_BUSY, "commit ring (%llu bytes) full for %llu s: a commit in progress is stuck (ring head %llu, applied position %llu, applied LSN %llu; record there: magic %08x LSN %llu state %u pid %u)",
				       (unsigned long long)rb, (unsigned long long)(RING_WAIT_NS_MAX / 1000000000ull),
				       (unsigned long long)head, (unsigned long long)shm_load(&root->applied_pos),
				       (unsigned long long)shm_load(&root->applied_lsn), b->magic,
				       (unsigned long long)b->lsn, b->state, b->pid);
		}
		if (attempt > 100) {
			/* When the disk holds the tail back (async commits outran the
			 * flusher), sleep until a flush ends rather than spin: on a
			 * small machine the spinning takes the flusher's CPU. */
			if (root->journaled && shm_load_acq((volatile uint64_t *)&root->durable_pos) <
						       shm_load_acq((volatile uint64_t *)&root->applied_pos))
				durable_wait_drain(h);
			else
				sched_yield();
		}
	}
}

/* The record expected at `pos` (LSN `lsn`) has no header.  If the process
 * that reserved it is dead, write a VOID record over its reservation. */
/* The process slot that announced a reservation of LSN lsn covering pos
 * (ring_reserve), or NULL.  *end gets the reservation's end. */
static struct shm_proc *reservation_at(keel_t *h, uint64_t pos, uint64_t lsn, uint64_t *end)
{
	uint32_t hi = shm_load32(&h->a.hdr->procs_hi);
	for (uint32_t i = 0; i < hi && i < SHM_PROCS_MAX; i++) {
		struct shm_proc *sp = shm_proc_slot(&h->a, i);
		if (shm_load_acq(&sp->rsv_lsn) != lsn)
			continue;
		uint64_t at = shm_load(&sp->rsv_pos), len = shm_load(&sp->rsv_len);
		/* The hole may be the whole reservation or, after its PAD was
		 * written, the record part of it. */
		if (pos < at || len > h->a.ring_bytes || pos >= at + len || (at + len - pos) % REC_ALIGN)
			continue;
		*end = at + len;
		return sp;
	}
	return NULL;
}

void ring_void_hole(keel_t *h, uint64_t pos, uint64_t lsn)
{
	uint64_t end;
	struct shm_proc *sp = reservation_at(h, pos, lsn, &end);
	if (!sp)
		return;
	uint32_t pid = shm_load32(&sp->pid);
	if (pid && pid != SHM_PID_REAPING && shm_pid_alive(pid, shm_load(&sp->start_time)))
		return;   /* alive: it writes the header itself */
	struct rec *r = rec_at(h, pos);
	r->magic = REC_MAGIC;
	r->len = (uint32_t)(end - pos);
	r->nops = 0;
	r->nparts = 0;
	r->pid = pid;
	shm_store32(&r->state, REC_VOID);
	shm_store_rel(&r->lsn, lsn);
	shm_faa(&h->root->voided, 1);
}

/*
 * The stall notes need the process holding the ring up at pos.  Once its
 * header is written (lsn last, R7) the record names its owner.  Before that
 * (a process stopped between taking the space and writing the header) the
 * bytes there are an earlier lap's, and only the reservation announced in
 * the owner's process slot names it: without this, a process stopped in
 * that window held every sync commit up and nobody was named (seen in CI
 * under ASan, test_durable_e2e stopped, journal case).
 */
uint32_t ring_record_owner(keel_t *h, uint64_t pos, uint64_t lsn, int complete_too)
{
	for (int pads = 0; pos < ring_head(h->root) && pads < 2; pads++) {
		struct rec *r = rec_at(h, pos);
		if (shm_load_acq(&r->lsn) != lsn) {
			uint64_t end;
			struct shm_proc *sp = reservation_at(h, pos, lsn, &end);
			return sp ? shm_load32(&sp->pid) : 0;
		}
		uint32_t st = shm_load32_acq(&r->state);
		if (r->magic != REC_MAGIC)
			return 0;
		if (st == REC_PAD) {   /* the ring's end: the record follows, with the same LSN */
			pos += r->len;
			continue;
		}
		return st == REC_RESERVED || (complete_too && st == REC_COMPLETE) ? r->pid : 0;
	}
	return 0;
}

void advance_applied(keel_t *h)
{
	struct keel_root *root = h->root;
	uint64_t rb = h->a.ring_bytes;
	int rc = shm_lock_try(&root->apply_lock);

	if (rc == SHM_LOCK_BUSY || rc < 0)
		return;   /* the holder advances; waiters loop */
	if (rc == SHM_LOCK_DIED)
		shm_lock_consistent(&root->apply_lock);
	for (uint64_t steps = 0; steps < rb / REC_ALIGN + 1; steps++) {
		uint64_t pos = root->applied_pos;
		uint64_t expect = root->applied_lsn + 1;
		if (pos >= ring_head(root))
			break;
		struct rec *r = rec_at(h, pos);
		uint64_t rl = shm_load_acq(&r->lsn);   /* A7: pairs with R7 */
		if (rl == expect - 1 && rec_fits(h, pos, r, rb) && shm_load32_acq(&r->state) != REC_PAD) {
			/* An advancer died between publishing this record's LSN
			 * and moving the position past it: finish its step. */
			shm_store_rel(&root->applied_pos, pos + r->len);
			continue;
		}
		if (rl != expect) {
			ring_void_hole(h, pos, expect);
			if (shm_load_acq(&r->lsn) != expect)
				break;
		}
		uint32_t st = shm_load32_acq(&r->state);      /* A6: pairs with R6 */
		if (!rec_fits(h, pos, r, rb))
			break;   /* damaged ring: keel_check reports it */
		if (st == REC_PAD) {   /* carries the LSN of the record after it */
			shm_store_rel(&root->applied_pos, pos + r->len);
			continue;
		}
		if (st != REC_APPLIED && st != REC_VOID)
			break;
		/* R8: applied_lsn is published after the record's changes (A6);
		 * pairs with the acquire loads of applied_lsn by readers (A2). */
		if (r->lsn > root->applied_lsn)
			shm_store_rel(&root->applied_lsn, r->lsn);
		if (!root->journaled && root->durable_lsn < r->lsn)   /* memory mode: applied is all there is */
			shm_store_rel(&root->durable_lsn, r->lsn);
		shm_store_rel(&root->applied_pos, pos + r->len);
	}
	shm_lock_release(&root->apply_lock);
}

void help_record(keel_t *h, uint64_t pos, int try_only)
{
	struct rec *r = rec_at(h, pos);
	uint32_t st = shm_load32_acq(&r->state);

	if (!rec_fits(h, pos, r, h->a.ring_bytes) || (st != REC_RESERVED && st != REC_COMPLETE))
		return;
	if (shm_pid_alive(r->pid, r->start_time))
		return;
	if (st == REC_RESERVED) {
		if (shm_cas32(&r->state, REC_RESERVED, REC_VOID))
			shm_faa(&h->root->voided, 1);
		return;
	}
	/* COMPLETE: take each of its partitions; taking a lock from the dead
	 * owner redoes that partition's part (repair.c). */
	const uint32_t *ids = (const uint32_t *)r->body;
	uint32_t n = r->nparts <= REC_PARTS_MAX &&
		     sizeof(*r) + (uint64_t)r->nparts * sizeof(*ids) <= r->len ? r->nparts : 0;
	int all_clear = 1;
	for (uint32_t i = 0; i < n; i++) {
		struct part *p = part_by_id(h, ids[i]);
		if (!p)
			continue;
		int rc = try_only ? part_trylock(h, p) : part_lock(h, p);
		if (rc == 0) {
			if (p->applying_lsn == r->lsn)
				all_clear = 0;
			part_unlock(h, p);
		} else if (shm_load_acq(&p->applying_lsn) == r->lsn) {
			all_clear = 0;   /* busy or failed: not repaired yet */
		}
	}
	if (all_clear) {
		publish_visible(h, r->lsn);
		if (shm_cas32(&r->state, REC_COMPLETE, REC_APPLIED))
			shm_faa(&h->root->redone, 1);
	}
}

static void write_state(keel_t *h, uint64_t lsn, uint64_t v)
{
	struct vis_state *st = &h->vis_states[lsn % VIS_STATES];
	if (shm_load_acq(&st->lsn) == lsn)
		return;
	shm_store(&st->v, v);          /* every writer writes the same {lsn, v} */
	shm_store_rel(&st->lsn, lsn);  /* R9 */
}

void publish_visible(keel_t *h, uint64_t lsn)
{
	struct keel_root *root = h->root;

	for (;;) {
		uint64_t v, x;
		shm_load_pair(&root->visx, &v, &x);
		if (x)
			write_state(h, x, v);   /* help the last publisher */
		if (x == lsn || shm_load_acq(&h->vis_states[lsn % VIS_STATES].lsn) == lsn)
			return;                 /* published already (by a repairer) */
		if (shm_cas_pair(&root->visx, v, x, v + 1, lsn)) {
			write_state(h, lsn, v + 1);
			return;
		}
	}
}

/* ---- apply ------------------------------------------------------------------------------------------ */

static int op_next(const struct rec *r, const uint8_t **cur, const uint8_t *end, const struct rec_op **op)
{
	const struct rec_op *o = (const struct rec_op *)*cur;
	if (*cur + sizeof(*o) > end)
		return 0;
	uint64_t sz = align_up(sizeof(*o) + (uint64_t)o->klen + o->vlen, 8);
	if (o->klen > KEEL_KEY_MAX || o->vlen > KEEL_VALUE_MAX || *cur + sz > end)
		return 0;
	*op = o;
	*cur += sz;
	return 1;
}

static const uint8_t *rec_ops(const struct rec *r)
{
	return r->body + align_up((uint64_t)r->nparts * 4, 8);
}

static int new_node(keel_t *h, struct part *p, const uint64_t *prealloc, size_t *used, uint64_t bytes,
		    struct node **out)
{
	uint64_t off;
	if (prealloc) {
		off = prealloc[(*used)++];
	} else {
		int rc = shm_alloc(&h->a, &p->heap, bytes, 1, &off);
		if (rc)
			return rc;
	}
	*out = shm_at(&h->a, off);
	return 0;
}

struct clear_ctx {
	keel_t *h;
	struct part *p;
	const struct rec *r;
	const uint64_t *prealloc;
	size_t *used;
	int rc;
};

static int fill_tomb(keel_t *h, struct part *p, const struct rec *r, const uint64_t *prealloc, size_t *used,
		     const void *key, uint32_t klen, uint64_t hash, const struct link_hint *hint)
{
	struct node *n;
	int rc = new_node(h, p, prealloc, used, node_bytes(klen, 0), &n);
	if (rc)
		return rc;
	node_fill(n, r->lsn, 0, r->mtime_ns, NODE_TOMB, key, klen, NULL, 0);
	return table_link_hinted(h, p, n, hash, hint);
}

static int apply_clear(keel_t *h, struct part *p, const struct rec *r, const uint64_t *prealloc, size_t *used)
{
	uint64_t cur = p->head, steps = 0;

	while (cur && steps++ < walk_max(h)) {
		struct dummy *d = shm_ptr(&h->a, cur, sizeof(struct dummy));
		if (!d)
			return shm_err(KEEL_E_CORRUPT, "partition \"%s\": bad link %llu", p->name, (unsigned long long)cur);
		uint64_t next = d->next;
		if (d->sokey & 1) {
			struct node *n = (struct node *)d;
			/* A redo skips what this record wrote before its owner
			 * died; a commit takes every live key, as prepare
			 * counted them (a damaged LSN must not make the two
			 * disagree: the blocks are consumed in order). */
			if (!(n->flags & NODE_TOMB) && (prealloc || n->lsn < r->lsn)) {
				int rc = fill_tomb(h, p, r, prealloc, used, node_key(n), n->klen, rev64(n->sokey), NULL);
				if (rc)
					return rc;
			}
		}
		cur = next;
	}
	return 0;
}

int apply_part(keel_t *h, struct part *p, const struct rec *r, const uint64_t *prealloc, size_t *used,
	       const struct link_hint *first_hint)
{
	const struct link_hint *hint = first_hint;   /* good for the first write only */
	const uint8_t *cur = rec_ops(r), *end = (const uint8_t *)r + r->len;
	const struct rec_op *o;
	size_t local_used = 0;
	int rc, timers = part_is_timers(p) && h->root->timers.valid;

	if (!used)
		used = &local_used;
	for (uint32_t i = 0; i < r->nops && op_next(r, &cur, end, &o); i++) {
		if (o->part != p->id || o->type < OP_PUT || o->type > OP_CREATE)
			continue;
		if (o->type == OP_CREATE) {
			if (!p->created_lsn)
				p->created_lsn = r->lsn;
			continue;
		}
		if (o->type == OP_CLEAR) {
			hint = NULL;
			if ((rc = apply_clear(h, p, r, prealloc, used)))
				return rc;
			continue;
		}
		uint64_t hash = key_hash(o->data, o->klen);
		uint64_t tent = 0;
		if (timers) {   /* the index entry hangs off the key's newest node */
			volatile uint64_t *link;
			struct node *ex = table_find_locked(h, p, o->data, o->klen, hash, &link);
			tent = ex && !(ex->flags & NODE_TOMB) ? timer_tent_of(h, ex) : 0;
		}
		if (!prealloc) {   /* redo: skip what the dead owner already applied */
			volatile uint64_t *link;
			struct node *ex = table_find_locked(h, p, o->data, o->klen, hash, &link);
			/* Applied already: a later version, or this record's own
			 * version of the key.  A tombstone of this record's own
			 * CLEAR does not count for a put that follows the clear. */
			if (ex && (ex->lsn > r->lsn || (ex->lsn == r->lsn && !(ex->flags & NODE_TOMB))))
				continue;
			if (o->type == OP_DEL && (!ex || (ex->flags & NODE_TOMB)))
				continue;
		}
		if (o->type == OP_DEL) {
			if ((rc = fill_tomb(h, p, r, prealloc, used, o->data, o->klen, hash, hint)))
				return rc;
			hint = NULL;
			if (timers)
				timer_applied(h, p, tent, NULL, 1);
			continue;
		}
		struct node *n;
		if ((rc = new_node(h, p, prealloc, used, node_bytes(o->klen, o->vlen), &n)))
			return rc;
		node_fill(n, r->lsn, o->version, r->mtime_ns, 0, o->data, o->klen, o->data + o->klen, o->vlen);
		n->stamp = 0;
		if ((rc = table_link_hinted(h, p, n, hash, hint)))
			return rc;
		hint = NULL;
		if (timers)
			timer_applied(h, p, tent, n, 0);
	}
	return 0;
}

/* ---- commit ------------------------------------------------------------------------------------------ */

struct commit {
	struct keel_txn *t;
	uint32_t order[REC_PARTS_MAX];   /* txn part indices in id order */
	uint32_t nlocked;
	uint64_t *prealloc;
	size_t nprealloc, capprealloc;
	uint64_t prealloc_heap[64];
	struct part *prealloc_owner[64];
	struct part **owners;
	struct link_hint hint[REC_PARTS_MAX];   /* by txn partition index */
};

static int prealloc_push(struct commit *c, struct part *p, uint64_t bytes, int reserve_ok)
{
	keel_t *h = c->t->h;
	uint64_t off;
	if (c->nprealloc == c->capprealloc) {
		size_t cap = c->capprealloc * 4;
		uint64_t *np = malloc(cap * sizeof(*np));
		struct part **no = malloc(cap * sizeof(*no));
		if (!np || !no) {
			free(np);
			free(no);
			return shm_err(KEEL_E_NOMEM, "out of memory preparing a commit");
		}
		memcpy(np, c->prealloc, c->nprealloc * sizeof(*np));
		memcpy(no, c->owners, c->nprealloc * sizeof(*no));
		if (c->prealloc != c->prealloc_heap) {
			free(c->prealloc);
			free(c->owners);
		}
		c->prealloc = np;
		c->owners = no;
		c->capprealloc = cap;
	}
	int rc = shm_alloc(&h->a, &p->heap, bytes, reserve_ok, &off);
	if (rc)
		return shm_err_ctx(rc, "partition \"%s\"", p->name);
	if (c->nprealloc < 8) {   /* the apply writes it: fetch its lines meanwhile */
		const uint8_t *b = shm_at(&h->a, off);
		for (uint64_t at = 64; at < bytes && at < 512; at += 64)
			__builtin_prefetch(b + at, 1);
	}
	c->owners[c->nprealloc] = p;
	c->prealloc[c->nprealloc++] = off;
	return 0;
}

static void prealloc_release(struct commit *c, size_t from)
{
	for (size_t i = from; i < c->nprealloc; i++)
		shm_free(&c->t->h->a, &c->owners[i]->heap, c->prealloc[i]);
	c->nprealloc = from;
}

static void unlock_all(struct commit *c)
{
	while (c->nlocked > 0) {
		struct part *p = c->t->parts[c->order[--c->nlocked]].p;
		part_unlock(c->t->h, p);
	}
}

static int cmp_order(const void *a, const void *b, void *ctx)
{
	struct keel_txn *t = ctx;
	uint32_t ia = t->parts[*(const uint32_t *)a].p->id, ib = t->parts[*(const uint32_t *)b].p->id;
	return ia < ib ? -1 : ia > ib;
}

static int count_clear(void *ctx, const struct node *n)
{
	struct commit *c = ((void **)ctx)[0];
	struct part *p = ((void **)ctx)[1];
	/* Its tombstone goes in its bucket: a damaged bucket table must stop
	 * the clear here, before its record, not in the middle of applying. */
	if (!table_bucket_start(c->t->h, p, rev64(n->sokey)))
		return shm_err(KEEL_E_CORRUPT, "partition \"%s\": its bucket table is damaged; nothing was applied; 'keel verify --repair' reports it",
			       p->name);
	return prealloc_push(c, p, node_bytes(n->klen, 0), 1);
}

/* Steps 2 and 3: conditions, versions, record size and allocations.  Blocks
 * are allocated in exactly the order apply_part() consumes them: partitions
 * in id order, a clear's tombstones first, then that partition's ops. */
static int prepare(struct commit *c, uint64_t *rec_bytes, uint32_t nlocked, uint32_t *nwrites)
{
	struct keel_txn *t = c->t;
	keel_t *h = t->h;
	uint64_t bytes = sizeof(struct rec) + align_up((uint64_t)t->nparts * 4, 8);
	int rc;

	*nwrites = 0;
	for (uint32_t i = 0; i < t->nops; i++) {
		struct txn_op *o = &t->ops[i];
		struct txn_part *tp = &t->parts[o->pidx];
		uint64_t cur = 0;
		o->skip = 0;
		volatile uint64_t *link = NULL;
		struct node *ex = NULL;
		if (tp->p) {
			ex = table_find_locked(h, tp->p, t->buf + o->key_at, o->klen, o->hash, &link);
			if (!link)   /* no bucket to link in: apply would have nowhere to go */
				return shm_err(KEEL_E_CORRUPT, "partition \"%s\": its bucket table is damaged; nothing was applied; 'keel verify --repair' reports it",
					       tp->name);
			if (ex && !(ex->flags & NODE_TOMB))
				cur = ex->version;
		}
		if (o->tcond && (rc = timer_check_cond(h, ex, o->tcond, o->token)))
			return rc;
		if (o->has_cond && cur != o->cond) {
			last_conflict.expected = o->cond;
			last_conflict.current = cur;
			last_conflict.op_index = i;
			snprintf(last_conflict.part, sizeof(last_conflict.part), "%s", tp->name);
			return shm_err(KEEL_E_CONFLICT, "conflict in partition \"%s\": expected version %llu, found %llu; nothing was applied",
				       tp->name, (unsigned long long)o->cond, (unsigned long long)cur);
		}
		if (o->type == 0 || (o->type == OP_DEL && (cur == 0 || tp->cleared))) {
			o->skip = 1;
			continue;
		}
		if (o->type == OP_DEL) {
			o->existed = 1;
			t->removed++;
		} else {
			o->version = (tp->cleared ? 0 : cur) + 1;
		}
		struct link_hint *hn = &c->hint[o->pidx];
		if (!hn->val && !hn->link && link && !tp->cleared) {   /* the partition's first write */
			hn->link = link;
			hn->val = *link;
			hn->replace = ex != NULL;
		}
		bytes += align_up(sizeof(struct rec_op) + (uint64_t)o->klen + (o->type == OP_PUT ? o->vlen : 0), 8);
		(*nwrites)++;
	}
	for (uint32_t k = 0; k < nlocked; k++) {
		uint32_t pi = c->order[k];
		struct txn_part *tp = &t->parts[pi];
		if (!tp->writes)
			continue;
		if (!tp->p->created_lsn) {   /* first journaled commit of the partition */
			if (tp->p->name_len == 0 || tp->p->name_len > KEEL_PARTITION_NAME_MAX)
				return shm_err(KEEL_E_CORRUPT, "partition %u: its descriptor has a name of %u bytes (at most %u); nothing was applied",
					       tp->p->id, tp->p->name_len, KEEL_PARTITION_NAME_MAX);
			bytes += align_up(sizeof(struct rec_op) + tp->p->name_len, 8);
			(*nwrites)++;
		}
		if (tp->cleared) {
			tp->cleared_count = tp->p->count;
			bytes += align_up(sizeof(struct rec_op), 8);
			(*nwrites)++;
			void *ctx[2] = { c, tp->p };
			/* Tombstones for every live key, taken from the reserve if need be. */
			if ((rc = table_scan(h, tp->p, &SNAP_NEWEST, count_clear, ctx)))
				return rc;
		}
		for (uint32_t i = 0; i < t->nops; i++) {
			struct txn_op *o = &t->ops[i];
			if (o->pidx != pi || o->skip)
				continue;
			if (o->type == OP_DEL)
				rc = prealloc_push(c, tp->p, node_bytes(o->klen, 0), 1);
			else
				rc = prealloc_push(c, tp->p, node_bytes(o->klen, o->vlen), 0);
			if (rc)
				return rc;
		}
	}
	*rec_bytes = align_up(bytes, REC_ALIGN);
	return 0;
}

static uint8_t *write_op(uint8_t *at, uint8_t type, uint32_t part, const void *key, uint32_t klen,
			 const void *val, uint32_t vlen, uint64_t version)
{
	struct rec_op *o = (struct rec_op *)at;
	o->type = type;
	o->flags = 0;
	o->pad = 0;
	o->part = part;
	o->klen = klen;
	o->vlen = vlen;
	o->version = version;
	if (klen)
		memcpy(o->data, key, klen);
	if (vlen)
		memcpy(o->data + klen, val, vlen);
	uint64_t sz = align_up(sizeof(*o) + (uint64_t)klen + vlen, 8);
	memset(o->data + klen + vlen, 0, sz - sizeof(*o) - klen - vlen);
	return at + sz;
}

/* Step 4: the record body, grouped by partition in id order. */
static uint32_t write_body(struct commit *c, struct rec *r)
{
	struct keel_txn *t = c->t;
	uint32_t *ids = (uint32_t *)r->body, nops = 0, np = 0;
	uint8_t *at;

	for (uint32_t k = 0; k < t->nparts; k++)
		if (t->parts[c->order[k]].p && t->parts[c->order[k]].writes)
			ids[np++] = t->parts[c->order[k]].p->id;
	r->nparts = np;
	at = r->body + align_up((uint64_t)np * 4, 8);
	memset(r->body + (uint64_t)np * 4, 0, (size_t)(at - r->body) - np * 4u);
	for (uint32_t k = 0; k < t->nparts; k++) {
		uint32_t pi = c->order[k];
		struct txn_part *tp = &t->parts[pi];
		if (!tp->p || !tp->writes)
			continue;
		if (!tp->p->created_lsn) {
			at = write_op(at, OP_CREATE, tp->p->id, tp->p->name, tp->p->name_len, NULL, 0, 0);
			nops++;
		}
		if (tp->cleared) {
			at = write_op(at, OP_CLEAR, tp->p->id, NULL, 0, NULL, 0, 0);
			nops++;
		}
		for (uint32_t i = 0; i < t->nops; i++) {
			struct txn_op *o = &t->ops[i];
			if (o->pidx != pi || o->skip)
				continue;
			at = write_op(at, o->type, tp->p->id, t->buf + o->key_at, o->klen,
				      t->buf + o->key_at + o->klen, o->type == OP_PUT ? o->vlen : 0, o->version);
			nops++;
		}
	}
	memset(at, 0, (size_t)((uint8_t *)r + r->len - at));
	return nops;
}

static int txn_commit(struct keel_txn *t, uint64_t *lsn_out)
{
	keel_t *h = t->h;
	struct commit c;   /* 2 KiB of arrays: only what is read before written is set */

	c.t = t;
	c.nlocked = 0;
	c.nprealloc = 0;
	uint64_t rec_bytes = 0;
	struct rec *r = NULL;
	int rc = 0, any_write = 0;

	c.prealloc = c.prealloc_heap;
	c.owners = c.prealloc_owner;
	c.capprealloc = 64;
	if (__builtin_expect(h->root->failed != 0, 0))
		return shm_err(h->root->failed == KEEL_E_NOSPC ? KEEL_E_NOSPC : KEEL_E_PANIC,
			       "the journal failed earlier (%s); this commit was refused; reopen the store to recover",
			       keel_strerror(h->root->failed));
	for (uint32_t k = 0; k < t->nparts; k++) {
		struct txn_part *tp = &t->parts[k];
		if (tp->p && !tp->internal)
			rc = 0;   /* found when its first op was added */
		else if (tp->internal)
			rc = part_timers(h, tp->writes, &tp->p);
		else
			rc = tp->writes ? part_find_or_create(h, tp->name, &tp->p) : part_find(h, tp->name, &tp->p);
		if (rc == KEEL_E_FULL) {   /* a new partition needs a page: make room once */
			store_trim(h);
			rc = tp->internal ? part_timers(h, 1, &tp->p) : part_find_or_create(h, tp->name, &tp->p);
		}
		if (rc)
			goto out;
		any_write |= tp->writes;
	}
	/* The wall clock, read while the buckets prefetched as the ops were
	 * added arrive (a commit's mtime is the time it started). */
	uint64_t mtime = shm_now_ns();
	/* Their first nodes next, while the locks are taken. */
	for (uint32_t i = 0; i < t->nops && i < 8; i++)
		table_prefetch_first(h, t->ops[i].bk);
	/* Lock the partitions that exist, in id order. */
	uint32_t n = 0;
	for (uint32_t k = 0; k < t->nparts; k++)
		if (t->parts[k].p)
			c.order[n++] = k;
	if (n > 1)
		qsort_r(c.order, n, sizeof(c.order[0]), cmp_order, t);
	uint32_t nwrites;
	for (int attempt = 0;; attempt++) {
		for (uint32_t k = 0; k < n; k++) {
			struct part *p = t->parts[c.order[k]].p;
			if ((rc = part_lock(h, p)))
				goto out;
			c.nlocked++;
			/* The timer index must be whole before this commit allocates:
			 * a rebuild sweeps the partition's unreachable blocks. */
			if (part_is_timers(p) && !h->root->timers.valid && (rc = timer_reindex(h, p)))
				goto out;
		}
		memset(c.hint, 0, sizeof(c.hint[0]) * t->nparts);   /* links found under these locks only */
		rc = prepare(&c, &rec_bytes, n, &nwrites);
		if (rc != KEEL_E_FULL || attempt > 0)
			break;
		/* Full: give back what can be reused (retired versions, and
		 * wholly free pages of every partition), then try once more. */
		prealloc_release(&c, 0);
		unlock_all(&c);
		t->removed = 0;
		store_trim(h);
	}
	if (rc)
		goto out;
	if (!any_write || nwrites == 0) {   /* nothing to write: no record, no LSN */
		t->lsn = shm_load_acq(&h->root->applied_lsn);
		goto out;
	}
	if (rec_bytes > h->a.ring_bytes / 4) {
		rc = shm_err(KEEL_E_TXNSIZE, "transaction needs a %llu-byte record; the commit ring of %llu bytes takes at most a quarter of itself per record; split it or open with a larger ring_bytes",
			     (unsigned long long)rec_bytes, (unsigned long long)h->a.ring_bytes);
		goto out;
	}
	if (h->root->journaled && rec_bytes > durable_record_max()) {
		rc = shm_err(KEEL_E_TXNSIZE, "transaction needs a %llu-byte record; a journal segment holds records of at most %llu bytes; split it",
			     (unsigned long long)rec_bytes, (unsigned long long)durable_record_max());
		goto out;
	}
	uint64_t lpos = 0;
	if ((rc = ring_reserve(h, (uint32_t)rec_bytes, &r, &lpos)))
		goto out;
	for (uint32_t k = 0; k < n; k++) {
		struct part *p = t->parts[c.order[k]].p;
		if (!t->parts[c.order[k]].writes)
			continue;
		p->applying_pos = lpos;
		shm_store_rel(&p->applying_lsn, r->lsn);
	}
	KEEL_CRASH_POINT(CP_COMMIT_RESERVED);
	r->mtime_ns = mtime;
	r->durability = (uint32_t)(t->durability ? t->durability : h->durability);
	r->nops = write_body(&c, r);
	r->checksum = XXH3_64bits(r->body, r->len - sizeof(struct rec));
	/* R6a: the complete record is published with the CAS. */
	SHM_VERIFY(shm_cas32(&r->state, REC_RESERVED, REC_COMPLETE));
	KEEL_CRASH_POINT(CP_COMMIT_COMPLETE);
	size_t used = 0;
	for (uint32_t k = 0; k < n; k++) {
		struct part *p = t->parts[c.order[k]].p;
		if (t->parts[c.order[k]].writes && (rc = apply_part(h, p, r, c.prealloc, &used, &c.hint[c.order[k]])))
			break;
		KEEL_CRASH_POINT_IF(k == 0 && n > 1, CP_COMMIT_MID_APPLY);
	}
	SHM_VERIFY(rc == 0);   /* blocks were preallocated: apply cannot fail */
	SHM_VERIFY(used == c.nprealloc);
	c.nprealloc = 0;
	KEEL_CRASH_POINT(CP_COMMIT_APPLIED);
	publish_visible(h, r->lsn);
	KEEL_CRASH_POINT(CP_COMMIT_VISIBLE);
	shm_store32_rel(&r->state, REC_APPLIED);   /* R6: pairs with A6 */
	for (uint32_t k = 0; k < n; k++) {
		struct part *p = t->parts[c.order[k]].p;
		if (t->parts[c.order[k]].writes) {
			shm_store_rel(&p->applying_lsn, 0);
			table_maybe_grow(h, p);
			table_reclaim(h, p, 32);
		}
	}
	t->lsn = r->lsn;
	shm_faa(&h->root->commits, 1);
	unlock_all(&c);
	advance_applied(h);
	/* Holding no lock now, help a record left by a dead owner once the ring
	 * is half full behind it (the liveness check costs a system call). */
	if (ring_head(h->root) - shm_load_acq(&h->root->applied_pos) > h->a.ring_bytes / 2)
		help_record(h, shm_load_acq(&h->root->applied_pos), 0);
	/* A handle with no background thread (memory mode) prepares the arena's
	 * next growth step itself, once its allocator has reached within a step
	 * of the end, here where it holds no lock: the grow then only sets the
	 * size instead of allocating pages under the allocator lock, where
	 * every allocating process of the store waits. */
	if (__builtin_expect(h->a.bumped, 0) && !h->async_running) {
		h->a.bumped = 0;
		shm_arena_grow_ahead(&h->a);
	}
	KEEL_CRASH_POINT(CP_COMMIT_DONE);
	rc = durable_after_commit(h, t->lsn, t->durability ? t->durability : h->durability);
out:
	prealloc_release(&c, 0);
	unlock_all(&c);
	if (c.prealloc != c.prealloc_heap) {
		free(c.prealloc);
		free(c.owners);
	}
	if (rc == 0 && lsn_out)
		*lsn_out = t->lsn;
	return rc;
}

int keel_txn_commit(keel_txn_t *t, uint64_t *lsn)
{
	int rc = txn_ok(t);
	if (rc) {
		if (t && t->ops)
			keel_txn_abort(t);
		return rc;
	}
	rc = txn_commit(t, lsn);
	keel_txn_abort(t);
	return rc;
}

/* ---- single-operation calls --------------------------------------------------------------------------- */

static int one_op(keel_t *h, const char *part, int type, const void *key, size_t klen, const void *val,
		  size_t vlen, int has_cond, uint64_t cond, struct keel_txn *t)
{
	int rc;
	txn_init(t, h, KEEL_DURABILITY_DEFAULT);
	if ((rc = handle_ok(h)))
		return rc;
	rc = txn_add(t, part, type, key, klen, val, vlen, has_cond, cond);
	if (rc == 0)
		rc = txn_commit(t, NULL);
	return rc;
}

int commit_one(keel_t *h, const char *part, int type, const void *key, size_t klen, const void *vh,
	       size_t vhlen, const void *val, size_t vlen, int tcond, uint64_t token, int *existed)
{
	struct keel_txn t;
	int rc;

	txn_init(&t, h, KEEL_DURABILITY_DEFAULT);
	if ((rc = handle_ok(h)))
		return rc;
	rc = txn_add_op(&t, part, type, key, klen, vh, vhlen, val, vlen, 0, 0, tcond, token);
	if (rc == 0)
		rc = txn_commit(&t, NULL);
	if (rc == 0 && existed)
		*existed = t.removed > 0;
	txn_release(&t);
	return rc;
}

int keel_put(keel_t *h, const char *part, const void *key, size_t klen, const void *val, size_t vlen,
	     uint64_t *lsn)
{
	struct keel_txn t;
	int rc = one_op(h, part, OP_PUT, key, klen, val, vlen, 0, 0, &t);
	if (rc == 0 && lsn)
		*lsn = t.lsn;
	txn_release(&t);
	return rc;
}

int keel_put_if(keel_t *h, const char *part, const void *key, size_t klen, const void *val, size_t vlen,
		uint64_t expected, uint64_t *version)
{
	struct keel_txn t;
	int rc = one_op(h, part, OP_PUT, key, klen, val, vlen, expected != KEEL_VERSION_ANY, expected, &t);
	if (version) {
		if (rc == 0)
			*version = t.ops[0].version;
		else if (rc == KEEL_E_CONFLICT)
			*version = last_conflict.current;
	}
	txn_release(&t);
	return rc;
}

int keel_del(keel_t *h, const char *part, const void *key, size_t klen, int *existed)
{
	struct keel_txn t;
	int rc = one_op(h, part, OP_DEL, key, klen, NULL, 0, 0, 0, &t);
	if (rc == 0 && existed)
		*existed = t.removed > 0;
	txn_release(&t);
	return rc;
}

int keel_clear(keel_t *h, const char *part, uint64_t *removed)
{
	struct keel_txn t;
	int rc = handle_ok(h);
	struct part *p;

	if (rc)
		return rc;
	txn_init(&t, h, KEEL_DURABILITY_DEFAULT);
	if ((rc = part_find(h, part, &p)))
		return rc;
	if (!p) {   /* nothing to clear */
		if (removed)
			*removed = 0;
		return 0;
	}
	txn_init(&t, h, KEEL_DURABILITY_DEFAULT);
	rc = keel_txn_clear(&t, part);
	if (rc == 0)
		rc = txn_commit(&t, NULL);
	if (rc == 0 && removed)
		*removed = t.parts[0].cleared_count;
	txn_release(&t);
	return rc;
}

int keel_put_many(keel_t *h, const char *part, size_t n, const void *const *keys, const size_t *klens,
		  const void *const *vals, const size_t *vlens, uint64_t *lsn)
{
	keel_txn_t *t;
	int rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t);
	if (rc)
		return rc;
	if (n && (!keys || !klens || !vals || !vlens)) {
		keel_txn_abort(t);
		return shm_err(KEEL_E_INVAL, "keel_put_many: NULL array");
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = keel_txn_put(t, part, keys[i], klens[i], vals[i], vlens[i]);
	if (rc) {
		keel_txn_abort(t);
		return rc;
	}
	return keel_txn_commit(t, lsn);
}

int keel_del_many(keel_t *h, const char *part, size_t n, const void *const *keys, const size_t *klens,
		  uint64_t *removed)
{
	keel_txn_t *t;
	int rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t);
	if (rc)
		return rc;
	if (n && (!keys || !klens)) {
		keel_txn_abort(t);
		return shm_err(KEEL_E_INVAL, "keel_del_many: NULL array");
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = keel_txn_del(t, part, keys[i], klens[i]);
	if (rc) {
		keel_txn_abort(t);
		return rc;
	}
	rc = txn_commit(t, NULL);
	if (rc == 0 && removed)
		*removed = t->removed;
	keel_txn_abort(t);
	return rc;
}
