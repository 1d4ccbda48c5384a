/*
 * registry.h - process slots, reader slots and the epoch-pin read protocol.
 *
 * Process slot (64 bytes): one per attached process.
 *   0  u32 pid          0 = free; SHM_PID_REAPING while being reaped
 *   4  u32 pad
 *   8  u64 start_time   field 22 of /proc/PID/stat (0 while claiming)
 *   16 u64 attach_ns
 *   24 u64 rsv_lsn, 32 u64 rsv_pos, 40 u64 rsv_len   ring reservation intent
 *   48 u64 pad[2]
 * A process claims a slot with CAS pid 0 -> its pid.  Liveness is judged by
 * pid AND start time, so a reused pid is not mistaken for the original.  A
 * reaper takes a dead slot with CAS pid -> SHM_PID_REAPING, clears the dead
 * process's reader slots and frees the slot.
 *
 * Reader slot (64 bytes, one cache line, so a reader writes only its own):
 *   0  u64 snap         pinned snapshot LSN + 1; 0 = not pinned
 *   8  u64 gen          pinned reclamation generation
 *   16 u32 owner        process slot index + 1; 0 = free
 *   20 u32 tid
 *   24 u32 novis        1: the pinned snapshot never reads visibility
 *                       states (a checkpoint's), so it does not hold
 *                       their reuse back (lib/commit.c, ring_reserve)
 *   28 u32 pad0
 *   32 u64 pad[4]
 *
 * The read protocol (written once, here):
 *
 *   reader (shm_pin):                   reclaimer (shm_readers_horizon):
 *     s = load(applied_lsn)               unlink/supersede, then
 *     g = load(gen)                       g0 = faa(gen, 1)      [full fence]
 *     slot.snap = s + 1; slot.gen = g     w = load_acq(applied_lsn)
 *     fence                  (F1)         scan slots: min snap, min gen
 *     S = load_acq(applied_lsn)   (A2)
 *     ... read at snapshot S ...
 *     slot.snap = 0 (release)    (R3)
 *
 * F1 pairs with the full fence of the reclaimer's faa (Dekker): either the
 * reclaimer sees the pin, or the reader's later loads see everything the
 * reclaimer did before its fence.  So a block superseded at LSN L may be reused
 * when L <= min(w, every pinned snap), and a block unlinked at generation g0
 * when every pinned gen > g0.  The reader reads at S (loaded after F1), never
 * at the s it published, so S >= any horizon computed without its pin.
 */
#ifndef SHM_REGISTRY_H
#define SHM_REGISTRY_H

#include <stdint.h>
#include <sys/types.h>

#include "shm/atomic.h"

#define SHM_PID_REAPING 0xffffffffu

struct shm_proc {
	volatile uint32_t pid;
	/* Threads of this process counted in the store's flush waiters
	 * (lib/durable.c): handed back when a dead process is reaped. */
	volatile uint32_t waiting;
	volatile uint64_t start_time;
	uint64_t attach_ns;
	/* A ring reservation in flight (lib/commit.c): LSN, position, length. */
	volatile uint64_t rsv_lsn;
	volatile uint64_t rsv_pos;
	volatile uint64_t rsv_len;
	uint64_t pad[2];
};

struct shm_reader {
	volatile uint64_t snap;
	volatile uint64_t gen;
	volatile uint32_t owner;
	uint32_t tid;
	volatile uint32_t novis;
	uint32_t pad0;
	uint64_t pad[4];
};

_Static_assert(sizeof(struct shm_proc) == 64, "proc slot is a cache line");
_Static_assert(sizeof(struct shm_reader) == 64, "reader slot is a cache line");

struct shm_arena;

/* Start time of pid from /proc, 0 if it does not exist. */
uint64_t shm_pid_start_time(pid_t pid);
/* 1 if the process (pid, start_time) is alive. */
int shm_pid_alive(uint32_t pid, uint64_t start_time);
/* 1 if thread tid of process pid (tid 0: the process) is stopped, by a
 * signal (SIGSTOP, SIGTSTP, ...) or a debugger; 0 if running, sleeping or
 * gone. */
int shm_pid_stopped(uint32_t pid, uint32_t tid);

struct shm_proc *shm_proc_slot(struct shm_arena *a, uint32_t idx);
struct shm_reader *shm_reader_slot(struct shm_arena *a, uint32_t idx);

/* Claim a process slot for this process.  Errors: LIMIT. */
int shm_proc_claim(struct shm_arena *a, uint32_t *idx);
void shm_proc_release(struct shm_arena *a, uint32_t idx);
/* Reap every dead process; on_dead (may be NULL) runs first for each.
 * Returns how many were reaped. */
int shm_reap(struct shm_arena *a, void (*on_dead)(void *ctx, uint32_t idx, uint32_t pid),
	     void *ctx);
/* Is process slot idx live (and which pid)? */
int shm_proc_live(struct shm_arena *a, uint32_t idx, uint32_t *pid);

/* Claim / release a reader slot for process slot `proc`. Errors: LIMIT. */
int shm_reader_claim(struct shm_arena *a, uint32_t proc, uint32_t *idx);
void shm_reader_release(struct shm_arena *a, uint32_t idx);

/* Pin: returns the snapshot LSN to read at.  See the protocol above. */
static inline uint64_t shm_pin(struct shm_reader *r, volatile uint64_t *applied,
			       volatile uint64_t *gen)
{
	uint64_t s = shm_load(applied);
	uint64_t g = shm_load(gen);
	shm_store(&r->gen, g);
	shm_store_rel(&r->snap, s + 1);   /* gen is visible before snap */
	shm_fence();                     /* F1 */
	return shm_load_acq(applied);    /* A2: pairs with the release advance of applied_lsn */
}

static inline void shm_unpin(struct shm_reader *r)
{
	shm_store_rel(&r->snap, 0);      /* R3: reads of the snapshot are done */
}

/* Oldest pinned snapshot and generation over all reader slots, and (when
 * min_vis is not NULL) the oldest pinned snapshot of the slots without
 * novis; UINT64_MAX when none.  novis is set before the pin and cleared
 * after the unpin, so a slot read mid-change counts: min_vis can only come
 * out too old. */
void shm_readers_horizon(struct shm_arena *a, uint64_t *min_snap, uint64_t *min_gen, uint64_t *min_vis);

#endif
