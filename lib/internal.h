/*
 * internal.h - the store's shared formats and the process-local handle.
 *
 * Nothing here is public; tools and procs use keel.h only.
 *
 * ---- The root (in shm_hdr.root, 3072 bytes) ----------------------------------
 * Three robust locks and the commit counters:
 *   ring_lock   reservation of ring space and LSNs (held for a few stores)
 *   apply_lock  advancing applied_lsn over applied records
 *   dir_lock    creating partitions
 *   next_lsn    LSN of the next commit (under ring_lock)
 *   ring_head   byte position of the next reservation (monotonic; under ring_lock,
 *               release store)
 *   applied_pos position of the first record not yet covered by applied_lsn
 *   applied_lsn every commit <= this is fully applied and visible  ("W")
 *   durable_lsn every commit <= this is on disk (memory mode: = applied_lsn)
 *   gen         reclamation generation (registry.h protocol)
 *
 * ---- The user region (hdr.user_off) --------------------------------------------
 *   u32 part_index[SHM_PART_INDEX_SLOTS]  open-addressing name index: id + 1
 *   u64 part_pages[SHM_PARTS_MAX / SHM_PARTS_PER_PAGE]  descriptor pages
 *
 * ---- Partition descriptor (struct part, 1024 bytes) ------------------------------
 * Written only under `lock` except `count`/`bytes` (statistics, read racily).
 * applying_lsn/applying_pos is the "applying LSN" marker: set before the
 * first change to the tables of this partition for a commit, cleared after
 * the last.  A process that takes `lock` from a dead holder (SHM_LOCK_DIED)
 * repairs the partition (repair.c).
 *
 * ---- Nodes of a partition's table (split-ordered list) ----------------------------
 * One sorted singly-linked list per partition, sorted by `sokey`: dummy
 * nodes (sokey even, 16 bytes: next, sokey) start each hash bucket, entries
 * (sokey odd) hold keys.  The dummies are the buckets themselves: they live
 * in bucket segments that never move (struct bucket_dir), so a resize adds a
 * segment, links its dummies and publishes the bigger count without moving
 * or copying anything.  An
 * entry in the list is the newest version of its key; older versions hang off
 * prev_ver for readers whose snapshot predates it (MVCC).
 *
 * struct node byte table:
 *   0  u64 next        list successor (release store when linking)
 *   8  u64 sokey       bit-reversed hash with the low bit set
 *   16 u64 prev_ver    older version of the same key (0 = none)
 *   24 u64 lsn         commit that wrote this version
 *   32 u64 version     1 for a new key, +1 per write
 *   40 u64 mtime_ns
 *   48 u64 retire_next link in the partition's retire list
 *   56 u64 stamp       retire stamp (LSN or generation, by kind)
 *   64 u16 klen, 66 u16 flags, 68 u32 vlen
 *   72 key bytes, then value bytes
 * Valid iff: klen in 1..KEEL_KEY_MAX, vlen <= KEEL_VALUE_MAX, the block holds
 * 72 + klen + vlen bytes, sokey is odd and equals the key's hash.
 *
 * ---- Commit records in the ring (and, later, the journal) -------------------------
 * struct rec byte table (64-byte header, records 64-byte aligned):
 *   0  u32 magic       REC_MAGIC
 *   4  u32 state       RESERVED -> COMPLETE -> APPLIED, or VOID; PAD fills the
 *                      ring's end (CAS only)
 *   8  u32 len         bytes, header included, multiple of 64
 *   12 u32 nops
 *   16 u64 lsn
 *   24 u32 pid, 28 u32 proc   owner
 *   32 u64 start_time  owner's start time (liveness)
 *   40 u64 mtime_ns
 *   48 u32 nparts, 52 u32 durability
 *   56 u64 checksum    xxh3 of bytes 64..len (set at COMPLETE)
 *   64 u32 part_ids[nparts], padded to 8
 *   then ops: struct rec_op (24 bytes) + key + value, padded to 8
 * Valid iff magic, lsn and len match the reservation and the checksum matches.
 */
#ifndef KEEL_INTERNAL_H
#define KEEL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/keel.h"
#include "shm/alloc.h"
#include "shm/arena.h"
#include "shm/atomic.h"
#include "shm/err.h"
#include "shm/limits.h"
#include "shm/lock.h"
#include "shm/registry.h"

struct jio;
struct jnl;

/* ---- timers (timer.c) ------------------------------------------------------------------
 * Timers are rows of the internal partition "~timers" ('~' is not allowed in
 * user names), so sets and cancels are ordinary journaled puts and deletes
 * and are checkpointed and recovered with the tables:
 *   key   u8 plen, the user partition's name, the timer key
 *   value struct tval (due_ms, flags, deliveries), then the payload
 * Beside the table, under the same partition lock, the arena holds an index
 * that is never journaled: one struct tent per live timer (found from the
 * key's newest node through node->stamp, unused while a node is live), a
 * heap of pending timers per user partition (struct tpart), a heap of those
 * partitions by their earliest timer, and a heap of claims by lease end.  The
 * index is derived state plus the claims: after a dead writer, or if it could
 * not get memory, it is rebuilt from the table, keeping the claims it can
 * still read (timer_reindex). */
extern const char keel_timer_part[];   /* "~timers" */
#define TIMER_PART keel_timer_part
#define TIMER_PART_LEN 7u
#define TIMER_HEAP_SLOT_BYTES 16u   /* a heap slot: sort key, entry offset (timer.c) */
#define TIMER_HEAP_ARITY 4u          /* children per heap node (timer.c) */
struct tvec {
	uint64_t off;            /* array of heap slots */
	uint32_t n, cap;
};
struct timer_root {
	uint32_t valid;                  /* the index matches the table */
	volatile uint32_t wake;          /* futex word: +1 when waiters should look again */
	volatile uint32_t waiters;
	uint32_t ntparts;
	struct tvec top;                 /* tparts with pending timers, by earliest */
	struct tvec lease;               /* claimed tents, by lease end */
	uint64_t tparts;                 /* open-addressing array of tpart offsets */
	uint32_t tparts_cap, pad;
	uint64_t seq, token;
	volatile uint64_t pending, claimed, dead;
	volatile uint64_t claims, redelivered, dead_lettered;
	volatile uint64_t live_check_ns;
};

/* ---- root ------------------------------------------------------------------------ */
struct keel_root {
	shm_pair_t rsv __attribute__((aligned(16)));   /* {ring_head, next_lsn}: CAS together */
	shm_pair_t visx __attribute__((aligned(16)));  /* {vis, last lsn given vis}: CAS together */
	shm_lock_t flush_lock;   /* the journal writer's turn (durable.c) */
	shm_lock_t apply_lock;
	shm_lock_t dir_lock;
	volatile uint64_t applied_pos;
	volatile uint64_t applied_lsn;
	volatile uint64_t durable_lsn;
	volatile uint64_t gen;
	volatile uint32_t nparts;
	uint32_t durability;
	/* Durability (durable.c); written by the flusher under flush_lock. */
	volatile uint64_t durable_pos;   /* ring position: records before it are on disk */
	/* The journal's written end: records before written_pos (LSNs up to
	 * written_lsn) are written, perhaps not synced yet (under flush_lock). */
	volatile uint64_t written_pos;
	volatile uint64_t written_lsn;
	volatile uint64_t written_ns;    /* monotonic time of the last write */
	volatile uint32_t flush_seq;     /* futex word: +1 after every flush */
	volatile uint32_t flush_waiters; /* processes sleeping on flush_seq */
	volatile uint32_t flush_last_waiters; /* how many the last flush woke */
	volatile int32_t failed;         /* sticky: 0, KEEL_E_IO (panic) or KEEL_E_NOSPC */
	uint32_t journaled;              /* the store has a journal */
	uint32_t jpos_valid;
	uint32_t pad_d;
	uint64_t jpos[5];                /* jnl_pos_t of the journal's durable end */
	uint8_t uuid[16];                /* the store's identity (STORE/keel.id) */
	volatile uint64_t ckpt_lsn;      /* start LSN of the newest checkpoint */
	volatile uint64_t ckpt_journal_bytes; /* journal bytes at that checkpoint */
	volatile uint64_t last_flush_ns;
	volatile uint64_t journal_bytes;  /* journal size after the last flush */
	volatile uint64_t ckpt_running;   /* a process is writing a checkpoint (CAS 0 -> pid) */
	uint64_t flushes;
	uint64_t commits;        /* statistics */
	uint64_t repairs;        /* partitions repaired after a dead writer */
	uint64_t redone;         /* records redone by a repairer */
	uint64_t voided;         /* records voided (owner died before COMPLETE) */
	struct timer_root timers;        /* the timer index (timer.c) */
	uint64_t dir_btime_ns;           /* birth time of the store directory (0: unknown) */
};
_Static_assert(sizeof(struct keel_root) <= SHM_ROOT_BYTES, "root fits");

/*
 * ---- Visibility ----------------------------------------------------------------------------
 * A commit becomes visible all at once when, after applying it, its owner (or
 * the repairer of a dead owner) gives it the next visibility number: a CAS
 * of root->visx from {v, x} to {v + 1, lsn}.  Before that CAS the publisher
 * writes x's state slot vis_states[x % VIS_STATES] = {x, v} (R9) if nobody has
 * yet, so every number below the current one has its slot written: a
 * publisher stopped right after its CAS delays nobody.  A reader's snapshot
 * is {w, v, x}: w = applied_lsn, then visx (A9).  An entry of LSN L is
 * visible iff L <= w, or L == x, or its state slot holds L with a number
 * <= v.  Every commit <= w has its number <= v, so the rules agree.  A slot is reused for L + VIS_STATES only
 * when no reader can still have w < L (commit.c, ring_reserve).  This way a
 * stalled committer delays nobody's visibility but its own.
 */
#define VIS_STATES 262144u   /* > the records a 16 MiB ring holds: the ring binds first */
struct vis_state {
	volatile uint64_t lsn;
	volatile uint64_t v;
};
struct snap {
	uint64_t w, v, x;
};
static inline uint64_t ring_head(struct keel_root *r) { return AO_load_acquire(&r->rsv.AO_val1); }
static inline uint64_t next_lsn(struct keel_root *r) { return AO_load_acquire(&r->rsv.AO_val2); }
#define USER_PART_BYTES (SHM_PART_INDEX_SLOTS * 4u + (SHM_PARTS_MAX / SHM_PARTS_PER_PAGE) * 8u)
#define USER_BYTES (USER_PART_BYTES + VIS_STATES * (uint32_t)sizeof(struct vis_state))

/* ---- partitions ------------------------------------------------------------------------ */
/*
 * Cache lines by who writes them.  Every get and put reads the name (the
 * lookup) and the bucket directory before anything else; every commit
 * writes its marker, the counts and the retire list.  Were they in one line,
 * each commit would take that line from the other processes' caches, and a
 * reader or writer in another process would wait for it to come back (two
 * extra cross-core misses per put with 2 processes putting into one
 * partition).  So: the lock's line, then the read-mostly fields (set when
 * the partition is made, or once), then what every commit writes.
 */
struct part {
	shm_lock_t lock;                 /* line 0: written by every locker */
	/* lines 1-2: read-mostly */
	uint32_t id;
	uint16_t name_len;
	uint16_t ready;
	char name[KEEL_PARTITION_NAME_MAX + 8];
	volatile uint64_t head;          /* dummy node of bucket 0 */
	volatile uint64_t buckets;       /* struct bucket_dir offset (set once) */
	uint64_t created_lsn;            /* commit that first journaled this partition */
	uint64_t pad_ro[3];
	/* line 3 and the heap: written by every commit, under the lock */
	volatile uint64_t applying_lsn;
	volatile uint64_t applying_pos;
	volatile uint64_t count;         /* live keys */
	volatile uint64_t bytes;         /* live key + value bytes */
	uint64_t retire_head, retire_tail, retire_count;
	uint64_t last_lsn;
	struct shm_heap heap;
};
_Static_assert(offsetof(struct part, id) == 64 && offsetof(struct part, head) == 144 &&
	       offsetof(struct part, applying_lsn) == 192 && offsetof(struct part, heap) == 256,
	       "part layout: read-mostly fields apart from written ones");
_Static_assert(sizeof(struct part) <= 1024, "part fits its slot");
#define PART_BYTES 1024u

/*
 * The bucket directory of a partition, a block of its heap that never moves.
 * Bucket i is a dummy node (16 bytes: next, sokey) embedded in a segment, an
 * array of dummies that also never moves once allocated:
 *   segment 0        buckets [0, 2^LOG2_MIN)
 *   segment s >= 1   buckets [2^(LOG2_MIN+s-1), 2^(LOG2_MIN+s))
 * so growing from 2^k to 2^(k+1) buckets allocates one segment of 2^k
 * dummies.  A bucket is its dummy: a lookup reads the dummy's `next` and
 * walks on, one cache miss, and no memory goes to a separate dummy node or
 * to copies of old bucket arrays (16 bytes per bucket in all).
 *
 *   0  u64 log2       buckets in use (1 << log2); release-stored after the
 *                     segment's every dummy is linked
 *   8  u64 seg[BSEG_MAX] segment offsets, 0 = none yet; a segment's offset is
 *                     stored before any of its dummies is linked, so a
 *                     repair finds it, and a grow cut short by a death is
 *                     finished by the next one (its dummies are found in the
 *                     list, or linked then)
 * Valid iff log2 is in [LOG2_MIN, LOG2_MAX] and seg[0..log2-LOG2_MIN] lie in
 * the heap with room for their dummies.
 */
#define BSEG_MAX (SHM_BUCKETS_LOG2_MAX - SHM_BUCKETS_LOG2_MIN + 1)
struct bucket_dir {
	volatile uint64_t log2;
	volatile uint64_t seg[BSEG_MAX];
};
/* Segment of bucket i, its first bucket, and its length in buckets. */
static inline uint32_t bseg_of(uint64_t i, uint64_t *first)
{
	if (i < (1ull << SHM_BUCKETS_LOG2_MIN)) {
		*first = 0;
		return 0;
	}
	uint32_t hb = 63u - (uint32_t)__builtin_clzll(i);
	*first = 1ull << hb;
	return hb - SHM_BUCKETS_LOG2_MIN + 1;
}
static inline uint64_t bseg_len(uint32_t s)
{
	return s == 0 ? 1ull << SHM_BUCKETS_LOG2_MIN : 1ull << (SHM_BUCKETS_LOG2_MIN + s - 1);
}
static inline uint64_t bseg_first(uint32_t s)
{
	return s == 0 ? 0 : 1ull << (SHM_BUCKETS_LOG2_MIN + s - 1);
}

/* ---- nodes --------------------------------------------------------------------------------- */
enum node_flags {
	NODE_TOMB = 1,          /* a delete: the key is absent from this version on */
	NODE_RETIRED = 2,       /* on the retire list */
	NODE_KIND_VERSION = 4,  /* retired: superseded; free when LSN horizon >= stamp */
	NODE_KIND_TOMB = 8,     /* retired: tombstone to unlink when LSN horizon >= stamp */
	NODE_KIND_UNLINKED = 16,/* retired: unlinked; free when every pinned gen > stamp */
};
#define NODE_KINDS (NODE_KIND_VERSION | NODE_KIND_TOMB | NODE_KIND_UNLINKED)

struct node {
	volatile uint64_t next;
	uint64_t sokey;
	volatile uint64_t prev_ver;
	uint64_t lsn;
	uint64_t version;
	uint64_t mtime_ns;
	uint64_t retire_next;
	uint64_t stamp;
	uint16_t klen;
	volatile uint16_t flags;
	uint32_t vlen;
	uint8_t data[];
};
_Static_assert(sizeof(struct node) == 72, "node header");
_Static_assert(offsetof(struct node, klen) == 64, "node layout");

/*
 * A dummy's second word holds its sort key (rev64 of the bucket index: bits
 * 37-63, since a bucket index has at most LOG2_MAX + 1 bits) and, in bits
 * 1-36, a prefetch hint: the offset / 16 of the node two links after the
 * dummy when the first is a key (every block is 16-aligned and the arena is
 * at most 2^40 bytes), else 0.  Bit 0 stays 0, which marks a dummy.
 * A lookup reads the dummy, then needs the first node after it and, about
 * a third of the time at a full table, the second; the hint lets both loads
 * start together instead of one after the other.  The hint is only ever a
 * prefetch address: a stale or damaged one costs a wasted load, never a
 * wrong answer, so writers keep it up to date under the partition lock
 * without ordering it with anything, the audit does not check it, and the
 * repair sweep just recomputes it.  Read the sort key of a node that may be
 * a dummy through link_sokey().
 */
struct dummy {
	volatile uint64_t next;
	volatile uint64_t sokey;
};
#define DUMMY_HINT_BITS 36u
#define DUMMY_SOKEY_MASK (~((1ull << (DUMMY_HINT_BITS + 1)) - 1))
_Static_assert(SHM_BUCKETS_LOG2_MAX + 1 <= 64 - DUMMY_HINT_BITS - 1, "bucket index bits above the hint");
_Static_assert(SHM_ARENA_BYTES_MAX >> 4 <= (1ull << DUMMY_HINT_BITS), "a hint holds any 16-aligned offset");
static inline uint64_t link_sokey(const struct dummy *d)
{
	uint64_t w = shm_load(&d->sokey);
	return (w & 1) ? w : (w & DUMMY_SOKEY_MASK);
}
/* The hinted offset of the node two links after dummy d (0: none). */
static inline uint64_t dummy_hint(const struct dummy *d)
{
	uint64_t w = shm_load(&d->sokey);
	return (w & 1) ? 0 : ((w >> 1) & ((1ull << DUMMY_HINT_BITS) - 1)) << 4;
}

static inline const uint8_t *node_key(const struct node *n) { return n->data; }
static inline const uint8_t *node_val(const struct node *n) { return n->data + n->klen; }
static inline uint64_t node_bytes(uint64_t klen, uint64_t vlen) { return sizeof(struct node) + klen + vlen; }
/* Fill a fresh node (before table_link publishes it). */
static inline void node_fill(struct node *n, uint64_t lsn, uint64_t version, uint64_t mtime_ns,
			     uint16_t flags, const void *key, uint32_t klen, const void *val, uint32_t vlen)
{
	n->lsn = lsn;
	n->version = version;
	n->mtime_ns = mtime_ns;
	n->klen = (uint16_t)klen;
	n->vlen = vlen;
	n->flags = flags;
	memcpy(n->data, key, klen);
	if (vlen)
		memcpy(n->data + klen, val, vlen);
}

/* ---- commit records --------------------------------------------------------------------------- */
#define REC_MAGIC 0x4345524bu   /* "KREC" */
#define REC_ALIGN 64u
#define REC_PARTS_MAX (KEEL_TXN_PARTITIONS_MAX + 1)   /* the user's, and the timers' own */
enum rec_state { REC_RESERVED = 1, REC_COMPLETE = 2, REC_APPLIED = 3, REC_VOID = 4, REC_PAD = 5 };
enum rec_op_type { OP_PUT = 1, OP_DEL = 2, OP_CLEAR = 3, OP_CREATE = 4 };

struct rec {
	uint32_t magic;
	volatile uint32_t state;
	uint32_t len;
	uint32_t nops;
	uint64_t lsn;
	uint32_t pid;
	uint32_t proc;
	uint64_t start_time;
	uint64_t mtime_ns;
	uint32_t nparts;
	uint32_t durability;
	uint64_t checksum;
	uint8_t body[];
};
_Static_assert(sizeof(struct rec) == 64, "record header");

struct rec_op {
	uint8_t type;
	uint8_t flags;
	uint16_t pad;
	uint32_t part;
	uint32_t klen;
	uint32_t vlen;
	uint64_t version;
	uint8_t data[];
};
_Static_assert(sizeof(struct rec_op) == 24, "record op");

static inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* ---- the process-local handle ------------------------------------------------------------------ */
struct keel {
	shm_arena_t a;
	struct keel_root *root;
	uint32_t *part_index;
	uint64_t *part_pages;
	struct vis_state *vis_states;
	uint32_t proc;
	uint32_t pid;                   /* getpid() at open (the fork check keeps it right) */
	uint64_t fork_gen;
	uint64_t serial;
	int readonly;
	int durability;
	int closed;
	pthread_mutex_t mu;             /* guards `readers` */
	pthread_mutex_t flush_mu;       /* this handle's journal writer: one thread at a time (durable.c) */
	uint32_t readers[SHM_READERS_MAX / 8];
	uint32_t nreaders;
	uint64_t vis_horizon;            /* cached: LSNs below it need no state slot */
	/* Durability, process-local (durable.c). */
	struct jio *io;                  /* I/O backend for the journal and checkpoints */
	int io_owned;
	struct jnl *jnl;                 /* this process's journal writer, opened lazily */
	pthread_t async_thread;          /* checkpoints, spare segments (maint_main) */
	int async_running;
	pthread_t flush_thread;          /* async handles: flushes within the window (flusher_main) */
	int flush_running;
	volatile int async_stop;
	uint32_t async_window_ms;
	uint64_t checkpoint_bytes;      /* journal growth that triggers a checkpoint */
	uint32_t timer_max_deliveries;
	char dir[4096];
};

extern volatile uint64_t keel_fork_gen;

/* A bound on any list walk: no list can hold more nodes than the arena has
 * 16-byte blocks, so a damaged link that makes a cycle ends the walk soon.
 * The size is this process's view (shm_ptr's), capped at the mapping,
 * never the header's word as it stands, which damage could make anything. */
static inline uint64_t walk_max(keel_t *h)
{
	return h->a.seen_bytes / 16 + 16;
}

/* Check a handle before use: closed, forked. */
static inline int handle_ok(keel_t *h)
{
	if (!h)
		return shm_err(KEEL_E_INVAL, "NULL handle");
	/* A read-only handle may still inspect a failed store (keel-dump). */
	if (__builtin_expect(h->root->failed == KEEL_E_IO, 0) && !h->closed && !h->readonly)
		return shm_err(KEEL_E_PANIC, "the store failed after a journal write or sync error; nothing more is acknowledged; close every handle and reopen to recover");
	if (__builtin_expect(h->closed, 0))
		return shm_err(KEEL_E_CLOSED, "handle is closed");
	if (__builtin_expect(h->fork_gen != keel_fork_gen, 0))
		return shm_err(KEEL_E_FORKED, "handle was opened before fork(); the child must call keel_open");
	return 0;
}

/* ---- hashing -------------------------------------------------------------------------------- */
uint64_t key_hash(const void *key, size_t klen);
static inline uint64_t rev64(uint64_t x)
{
	x = ((x >> 1) & 0x5555555555555555ull) | ((x & 0x5555555555555555ull) << 1);
	x = ((x >> 2) & 0x3333333333333333ull) | ((x & 0x3333333333333333ull) << 2);
	x = ((x >> 4) & 0x0f0f0f0f0f0f0f0full) | ((x & 0x0f0f0f0f0f0f0f0full) << 4);
	return __builtin_bswap64(x);
}
static inline uint64_t sokey_regular(uint64_t hash) { return rev64(hash | (1ull << 63)); }
static inline uint64_t sokey_dummy(uint64_t bucket) { return rev64(bucket); }

/* ---- partitions (part.c) ---------------------------------------------------------------------- */
int part_name_check(const char *name, size_t *len);
/* Find a partition by name: its descriptor, or NULL (errmsg set when name bad). */
int part_find(keel_t *h, const char *name, struct part **out);
int part_find_or_create(keel_t *h, const char *name, struct part **out);
/* Recovery: make partition `id` with this name (or check the one there). */
int part_create_id(keel_t *h, uint32_t id, const char *name, size_t len);
struct part *part_by_id(keel_t *h, uint32_t id);
/* Lock a partition, repairing it if its last holder died. */
int part_lock(keel_t *h, struct part *p);
void part_unlock(keel_t *h, struct part *p);
/* Like part_lock, or SHM_LOCK_BUSY when someone alive holds it. */
int part_trylock(keel_t *h, struct part *p);

/* ---- tables (table.c) ---------------------------------------------------------------------------- */
int table_init(keel_t *h, struct part *p);
/* Lock-free lookup at snapshot S: the visible version, or NULL (absent or tomb). */
const struct node *table_get(keel_t *h, struct part *p, const void *key, size_t klen,
			     uint64_t hash, const struct snap *snap);
/* The same from the key's bucket, found (and its load started) before the
 * pin by table_bucket_start: buckets are never freed while their partition
 * lives, and a bucket found before a grow still leads to the key. */
const struct dummy *table_bucket_start(keel_t *h, const struct part *p, uint64_t hash);
const struct node *table_get_at(keel_t *h, struct part *p, const struct dummy *bk, const void *key,
				size_t klen, uint64_t hash, const struct snap *snap);
/* Under the lock: the newest version (may be a tombstone) and its predecessor. */
struct node *table_find_locked(keel_t *h, struct part *p, const void *key, size_t klen,
			       uint64_t hash, volatile uint64_t **link);
/* Where a key's node goes, found by an earlier walk under the same lock:
 * used only if *link still holds val (else the list is walked again). */
struct link_hint {
	volatile uint64_t *link;
	uint64_t val;
	int replace;   /* val is the key's current node (else its successor) */
};
/* Under the lock: link a filled node (new key or new version).  0, or
 * KEEL_E_CORRUPT when the partition's buckets are damaged (a commit finds
 * that in its prepare, before anything is applied; a redo or a recovery
 * reports it). */
int table_link_hinted(keel_t *h, struct part *p, struct node *n, uint64_t hash,
		      const struct link_hint *hint);
#define table_link(h, p, n, hash) table_link_hinted(h, p, n, hash, NULL)
/* The partition's bucket directory and its bucket count (1 << *log2), or
 * NULL when damaged. */
const struct bucket_dir *table_dir(keel_t *h, const struct part *p, uint64_t *log2);
/* Start loading the cache lines a commit of a key with this hash will
 * need (its bucket, and the retired node the next reclaim looks at), so
 * the misses overlap the commit's own work.  Reads only; no lock needed. */
const struct dummy *table_prefetch(keel_t *h, const struct part *p, uint64_t hash);
/* The next step: the first node of bucket bk, from table_prefetch (reads
 * the bucket).  Buckets are never freed while their partition lives, so bk
 * stays readable; after a resize it may no longer be the key's bucket,
 * which costs a wasted prefetch, never a wrong answer. */
void table_prefetch_first(keel_t *h, const struct dummy *bk);
/* The same from a bucket found by table_bucket_start, for a lookup: the
 * first node's first three lines and the hinted second node.  A batch of
 * lookups runs each step for all of its keys before the next step, so
 * their cache misses overlap (keel_get_many). */
void table_prefetch_from(keel_t *h, const struct dummy *bk);
/* Under the lock: recompute the prefetch hint of the dummy at off (struct dummy). */
void table_hint_refresh(keel_t *h, uint64_t off);
/* Offset of bucket i's dummy, or 0 when its segment is missing or damaged. */
uint64_t table_bucket_off(keel_t *h, const struct bucket_dir *d, uint64_t i);
/* Under the lock: grow the bucket array if loaded; failure is harmless. */
void table_maybe_grow(keel_t *h, struct part *p);
/* Under the lock: free what no reader can see any more (budget items, 0 = all). */
void table_reclaim(keel_t *h, struct part *p, uint64_t budget);
/* Visit every newest node of the list (dummies skipped) at snapshot snap.  */
typedef int (*table_visit_fn)(void *ctx, const struct node *n);
int table_scan(keel_t *h, struct part *p, const struct snap *snap, table_visit_fn fn, void *ctx);
static const struct snap SNAP_NEWEST = { UINT64_MAX, UINT64_MAX, 0 };
static inline int lsn_visible(keel_t *h, uint64_t lsn, const struct snap *s)
{
	if (lsn <= s->w || lsn == s->x)
		return 1;
	const struct vis_state *st = &h->vis_states[lsn % VIS_STATES];
	if (shm_load_acq(&st->lsn) != lsn)   /* A9: pairs with R9 */
		return 0;
	uint64_t v = shm_load(&st->v);
	return v != 0 && v <= s->v;
}
/* The visible one among n's older versions (n itself is not), or NULL. */
const struct node *node_visible_older(keel_t *h, const struct node *n, const struct snap *snap);
/* Visible version of node n at snapshot snap, or NULL.  The newest
 * version is the one almost always: it is looked at here, inline. */
static inline const struct node *node_visible(keel_t *h, const struct node *n, const struct snap *snap)
{
	if (__builtin_expect(lsn_visible(h, n->lsn, snap), 1))
		return (n->flags & NODE_TOMB) ? NULL : n;
	return node_visible_older(h, n, snap);
}
/* Make commit lsn visible (once; later calls do nothing). */
void publish_visible(keel_t *h, uint64_t lsn);

/* ---- commit (commit.c) ------------------------------------------------------------------------------ */
/* Apply one record's ops for partition p (normal path with preallocated
 * blocks, or redo when prealloc is NULL).  Under p's lock. */
int apply_part(keel_t *h, struct part *p, const struct rec *r, const uint64_t *prealloc,
	       size_t *prealloc_used, const struct link_hint *first_hint);
/* The record header at ring position pos.  Positions are multiples of
 * REC_ALIGN and the ring's size is too, so the header lies inside the ring
 * even for a damaged position (it is rounded down). */
struct rec *rec_at(keel_t *h, uint64_t pos);
/* Is the header r, read at ring position pos, a record's of at most max_len
 * bytes that lies wholly inside the ring?  Records never wrap (a PAD fills
 * the ring's end), so one that would is damage. */
int rec_fits(keel_t *h, uint64_t pos, const struct rec *r, uint64_t max_len);
void advance_applied(keel_t *h);
/* Help the record at ring position pos if its owner died (redo or void it). */
void help_record(keel_t *h, uint64_t pos, int try_only);
/* The record expected at pos has no header: void it if its reserver died. */
void ring_void_hole(keel_t *h, uint64_t pos, uint64_t lsn);
/* The process holding up the ring at pos, where LSN lsn is expected (past a
 * PAD of that LSN): the owner of a RESERVED record (or a COMPLETE one, with
 * complete_too), or the process that has taken the space but not yet
 * written the header.  0 when nobody is found. */
uint32_t ring_record_owner(keel_t *h, uint64_t pos, uint64_t lsn, int complete_too);
/* Ring space before this position may be reused. */
static inline uint64_t ring_tail(struct keel_root *r)
{
	uint64_t a = AO_load_acquire((volatile AO_t *)&r->applied_pos);
	if (!r->journaled)
		return a;
	uint64_t d = AO_load_acquire((volatile AO_t *)&r->durable_pos);
	return d < a ? d : a;
}

struct keel_txn;
/* Add an op whose value is vh then val (timers put a header first). */
int txn_add_op(struct keel_txn *t, const char *part, int type, const void *key, size_t klen,
	       const void *vh, size_t vhlen, const void *val, size_t vlen, int has_cond, uint64_t cond,
	       int tcond, uint64_t token);
/* One op in a commit of its own; *existed (may be NULL) for a delete. */
int commit_one(keel_t *h, const char *part, int type, const void *key, size_t klen, const void *vh,
	       size_t vhlen, const void *val, size_t vlen, int tcond, uint64_t token, int *existed);

/* ---- repair and audit (repair.c) -------------------------------------------------------------- */
int part_repair(keel_t *h, struct part *p);
/* Reuse what no reader can see and return free pages of every partition to
 * the page pool; takes each partition lock in turn (hold none). */
void store_trim(keel_t *h);
uint64_t lsn_horizon(keel_t *h);
/* Like lsn_horizon, over the readers that may read visibility states: the
 * oldest LSN whose state slot a reader may still consult is above it. */
uint64_t vis_horizon(keel_t *h);

/* ---- durability (durable.c) ------------------------------------------------------------- */
int durable_open(keel_t *h, const keel_options_t *opt, int created);
void durable_close(keel_t *h);
/* After a commit: wait (sync) or arrange (async) for lsn to reach the disk. */
int durable_after_commit(keel_t *h, uint64_t lsn, int durability);
/* The ring is full of records waiting for the disk: flush them, or sleep
 * until the flush in progress ends (at most a millisecond). */
void durable_wait_drain(keel_t *h);
/* Try to flush now if no one else is (returns 0 when nothing failed). */
int durable_try_flush(keel_t *h);
/* Recovery into a fresh arena, before it is published (store.c init_root). */
int durable_recover(shm_arena_t *a, const char *dir, struct jio *io, const uint8_t uuid[16]);
/* Read STORE/keel.id; *found = 0 when the store has no journal. */
int store_id_read(struct jio *io, const char *dir, uint8_t uuid[16], int *found);
int store_id_create(struct jio *io, const char *dir, uint8_t uuid[16]);
/* The largest commit record a journal segment holds. */
uint64_t durable_record_max(void);
/* Journal segment size for tests (0: default).  Set before keel_open_io. */
extern uint64_t durable_test_seg_bytes;
/* Backend flags for the real disk: KEEL_JOURNAL_IO=syscall selects plain
 * pwrite/fdatasync instead of io_uring (for comparison and old kernels). */
unsigned keel_jio_flags(void);
int keel_open_io(const char *dir, const keel_options_t *opt, struct jio *io, keel_t **out);
/* Build a process-local handle view of an arena (recovery, before publish). */
void handle_view(keel_t *h, shm_arena_t *a);

/* ---- timers (timer.c) ----------------------------------------------------------------------------- */
static inline int part_is_timers(const struct part *p) { return p->name[0] == '~'; }
/* The timer partition (created when create is set); *out NULL if none. */
int part_timers(keel_t *h, int create, struct part **out);
/* Under the timer partition's lock. */
uint64_t timer_tent_of(keel_t *h, const struct node *n);   /* 0: none */
void timer_applied(keel_t *h, struct part *p, uint64_t tent, struct node *n, int del);
/* The claim condition of an ack or release, checked at commit: 0 or STATE. */
int timer_check_cond(keel_t *h, const struct node *ex, int tcond, uint64_t token);
enum { TCOND_NONE = 0, TCOND_CLAIM = 1, TCOND_DEAD = 2 };
struct timer_salvage;
struct timer_salvage *timer_salvage(keel_t *h, struct part *p);
void timer_salvage_free(struct timer_salvage *sv);
/* Rebuild the index from the table (after a sweep freed the old one). */
void timer_build(keel_t *h, struct part *p, struct timer_salvage *sv);
/* Salvage, sweep and build; under the lock, before a commit allocates. */
int timer_reindex(keel_t *h, struct part *p);
void timer_reset(keel_t *h);
/* Mark the index blocks for an audit sweep; report what is wrong. */
void timer_audit(keel_t *h, struct part *p, struct shm_sweep *sw,
		 void (*report)(void *ctx, const char *what), void *ctx);
/* Wake timer waiters if any (after a change that may make one due sooner). */
void timer_wake(keel_t *h);
/* Re-arm claims of dead holders now; returns how many. */
int timer_reap(keel_t *h);
int part_sweep(keel_t *h, struct part *p);

/* ---- reading (read.c) ---------------------------------------------------------------------------- */
struct shm_reader *reader_enter(keel_t *h, struct snap *snap);
/* A pin for a snapshot that reads no visibility states (read.c). */
struct shm_reader *reader_enter_novis(keel_t *h, struct snap *snap);
void reader_leave(keel_t *h, struct shm_reader *r);

#endif
