/*
 * limits.h - every internal fixed limit of Keel, named *_max, with the
 * compile-time checks on how they relate.  Public limits are in keel.h.
 */
#ifndef SHM_LIMITS_H
#define SHM_LIMITS_H

#include "lib/keel.h"

#define SHM_PAGE_BYTES (64u * 1024u)          /* allocation page */
#define SHM_PAGE_HEADER_BYTES 64u
#define SHM_SLAB_BYTES_MAX 16384u             /* larger blocks get page runs */
#define SHM_CLASSES_MAX 80u                   /* slab size classes */
#define SHM_PROCS_MAX KEEL_PROCESSES_MAX      /* process slots */
#define SHM_READERS_MAX 4096u                 /* reader slots (threads) */
#define SHM_PARTS_MAX KEEL_PARTITIONS_MAX
#define SHM_PART_INDEX_SLOTS (2u * SHM_PARTS_MAX)
#define SHM_PARTS_PER_PAGE 32u                /* partition descriptors per meta page */
#define SHM_ARENA_BYTES_MIN (8ull << 20)      /* smallest arena_bytes_max */
#define SHM_ARENA_BYTES_DEFAULT (4ull << 30)
#define SHM_ARENA_BYTES_MAX (1ull << 40)
#define SHM_RING_BYTES_DEFAULT (16u << 20)
#define SHM_RING_BYTES_MIN (1u << 20)
#define SHM_RING_BYTES_MAX (1u << 30)
#define SHM_GROW_BYTES_MIN (4u << 20)
#define SHM_GROW_BYTES_MAX (32u << 20)        /* one growth step at most (arena.c) */
#define SHM_RESERVE_PAGES 4u                  /* kept for deletes when full */
#define SHM_BUCKETS_LOG2_MIN 4u
#define SHM_BUCKETS_LOG2_MAX 26u
#define SHM_CHAIN_STEPS_MAX (1ull << 32)      /* bound on any list walk */

_Static_assert(SHM_SLAB_BYTES_MAX * 3 <= SHM_PAGE_BYTES - SHM_PAGE_HEADER_BYTES,
	       "a slab page must hold at least three of its largest blocks");
_Static_assert(SHM_READERS_MAX >= SHM_PROCS_MAX, "one reader slot per process at least");
_Static_assert(KEEL_KEY_MAX + 128 <= SHM_SLAB_BYTES_MAX, "a key fits a slab block");
_Static_assert((SHM_PARTS_MAX % SHM_PARTS_PER_PAGE) == 0, "whole descriptor pages");
_Static_assert(KEEL_TXN_PARTITIONS_MAX <= 64, "a process holds few robust locks");

#endif
