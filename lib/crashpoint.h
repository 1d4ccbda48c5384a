/*
 * crashpoint.h - named points of the commit path where a process can be made
 * to die by SIGKILL, for crash tests (keel_crash_at, KEEL_CRASH_AT).
 *
 * A point is one line in the code it names:
 *
 *     KEEL_CRASH_POINT(CP_COMMIT_COMPLETE);
 *     KEEL_CRASH_POINT_IF(k == 0 && n > 1, CP_COMMIT_MID_APPLY);
 *
 * Unarmed, a point costs one relaxed load of a process-local word and one
 * compare with a constant, a branch that is never taken (crash_armed is 0, or
 * names another point); the condition of KEEL_CRASH_POINT_IF is evaluated
 * only when its own point is armed.  crash_reached() (crashpoint.c) counts
 * the arrival and kills the process on the nth.
 *
 * Where each point sits, and what state a death there leaves:
 *   CP_COMMIT_RESERVED     commit.c txn_commit: ring space and LSN reserved,
 *                          the partitions' "applying" markers set, record
 *                          still RESERVED with no body.  Survivors void it.
 *   CP_COMMIT_COMPLETE     record COMPLETE (body and checksum written),
 *                          nothing applied.  Survivors redo it.
 *   CP_COMMIT_MID_APPLY    the first partition (in id order) of a commit that
 *                          touches two or more is applied, the rest are not.
 *                          Not reached by single-partition commits.
 *   CP_COMMIT_APPLIED      every partition applied, not yet published to
 *                          readers.
 *   CP_COMMIT_VISIBLE      published to readers; record not yet marked
 *                          APPLIED, markers set, locks held.
 *   CP_COMMIT_DONE         locks released; the commit has not yet waited for
 *                          (or started) its flush.  Not acknowledged.
 *   CP_FLUSH_WRITTEN       durable.c flush_locked: the batch of records is
 *                          appended to this process's journal writer, which
 *                          writes it next (a segment switch inside the batch
 *                          may have written and synced part of it already);
 *                          written and durable LSN unchanged.  The flush
 *                          lock is held.
 *   CP_FLUSH_SYNCED        durable.c flush_sync: the batch is written (and
 *                          published as written) and synced; durable LSN
 *                          and waiters not yet updated.  The flush lock is
 *                          released.
 *   CP_CHECKPOINT_WRITTEN  ckptfile.c ckpt_write_commit: ckpt-<lsn>.tmp is
 *                          complete and synced, not yet renamed into place.
 *
 * The journal layer (ckptfile.c) is also built alone, without the store,
 * for the standalone libFuzzer targets (KEEL_LIBFUZZER without
 * KEEL_BUILDING): there its point compiles to nothing.
 */
#ifndef KEEL_CRASHPOINT_H
#define KEEL_CRASHPOINT_H

#include <stdint.h>

enum crash_point {
	CP_NONE = 0,
	CP_COMMIT_RESERVED,
	CP_COMMIT_COMPLETE,
	CP_COMMIT_MID_APPLY,
	CP_COMMIT_APPLIED,
	CP_COMMIT_VISIBLE,
	CP_COMMIT_DONE,
	CP_FLUSH_WRITTEN,
	CP_FLUSH_SYNCED,
	CP_CHECKPOINT_WRITTEN,
	CP_COUNT,
};

#define CRASH_HIDDEN __attribute__((visibility("hidden")))

/* The armed point (enum crash_point), CP_NONE when none.  Written by
 * keel_crash_at and the KEEL_CRASH_AT reader only; read relaxed by every
 * point: a point armed by another thread is seen a little late at worst. */
extern CRASH_HIDDEN uint32_t crash_armed;

/* The slow path of an armed point: count this arrival; on the nth, die. */
CRASH_HIDDEN void crash_reached(uint32_t cp) __attribute__((cold, noinline));

/* Read KEEL_CRASH_AT once per process (called by keel_open).  Returns 0, or
 * KEEL_E_INVAL with a message when the variable is malformed. */
CRASH_HIDDEN int crash_env_arm(void);

/* "commit.reserved" etc., or NULL for a number that is not a point. */
CRASH_HIDDEN const char *crash_point_name(uint32_t cp);

#if defined(KEEL_LIBFUZZER) && !defined(KEEL_BUILDING)
#define KEEL_CRASH_POINT(cp) ((void)0)
#define KEEL_CRASH_POINT_IF(cond, cp) ((void)0)
#else
#define KEEL_CRASH_POINT(cp)                                                       \
	do {                                                                       \
		if (__builtin_expect(__atomic_load_n(&crash_armed, __ATOMIC_RELAXED) == \
					     (uint32_t)(cp), 0))                   \
			crash_reached(cp);                                         \
	} while (0)
#define KEEL_CRASH_POINT_IF(cond, cp)                                              \
	do {                                                                       \
		if (__builtin_expect(__atomic_load_n(&crash_armed, __ATOMIC_RELAXED) == \
					     (uint32_t)(cp), 0) && (cond))         \
			crash_reached(cp);                                         \
	} while (0)
#endif

#endif /* KEEL_CRASHPOINT_H */
