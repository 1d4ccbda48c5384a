/*
 * alloc.h - the shared allocator: 64 KiB pages, and per-owner slab heaps.
 *
 * The heap part of the arena is a sequence of page runs.  Every run starts
 * with a page header, so the whole heap can be walked from heap_off to the
 * allocator top (`bump`), which is how audits and repairs find every block.
 *
 * Page header (64 bytes, at the start of each run):
 *   0  u32 magic     SHM_PAGE_MAGIC
 *   4  u8  type      FREE, SLAB, LARGE or META
 *   5  u8  cls       size class (SLAB)
 *   6  u16 pad
 *   8  u32 owner     heap id (partition id + 1) for SLAB/LARGE; 0 otherwise
 *   12 u32 npages    pages in this run (>= 1)
 *   16 u64 next      next free run (FREE only)
 *   24 u64 pad[5]
 * Valid iff magic matches, type is known, 1 <= npages and the run ends at or
 * below `bump`, and a SLAB's cls is a known class.
 *
 * Page runs are handed out under hdr->galloc_lock, a robust lock.  The one
 * in-flight allocation is described by galloc.intent_* so that a process that
 * takes the lock from a dead holder can finish it; the free list itself is
 * rebuilt from a walk of the page headers (free runs are exactly the pages of
 * type FREE).
 *
 * A slab heap (struct shm_heap) belongs to one owner (a partition) and is
 * used only under that owner's lock: a free list per size class, carved from
 * SLAB pages stamped with the owner id.  Blocks of 16 KiB and more get a
 * LARGE run of their own.  A block on a free list holds the next free block's
 * offset in its first 8 bytes.  Every free-list update is a single store, so a
 * writer killed half-way leaves at worst a block that is on no list; the
 * owner's repair (shm_sweep) finds such blocks by marking everything reachable
 * and returns the rest.
 */
#ifndef SHM_ALLOC_H
#define SHM_ALLOC_H

#include <stdint.h>

#include "shm/arena.h"

#define SHM_PAGE_MAGIC 0x4b504147u  /* "GAPK" */

enum { SHM_PAGE_FREE = 1, SHM_PAGE_SLAB = 2, SHM_PAGE_LARGE = 3, SHM_PAGE_META = 4 };

struct shm_page {
	uint32_t magic;
	uint8_t type;
	uint8_t cls;
	uint16_t pad0;
	uint32_t owner;
	uint32_t npages;
	uint64_t next;
	uint64_t pad[5];
};
_Static_assert(sizeof(struct shm_page) == SHM_PAGE_HEADER_BYTES, "page header");

struct shm_heap {
	uint64_t free_head[SHM_CLASSES_MAX];
	uint64_t used_bytes;     /* bytes in blocks handed out */
	uint64_t pages;          /* pages owned */
	uint32_t id;             /* owner id written to page headers */
	uint32_t pad;
};

/* Size of class c; class of a request (SHM_CLASSES_MAX for "large"). */
uint32_t shm_class_size(uint32_t c);
uint32_t shm_class_of(uint64_t bytes);

/* Allocate `bytes` from heap h.  reserve_ok lets a delete use the last
 * SHM_RESERVE_PAGES pages.  Errors: FULL. */
int shm_alloc(shm_arena_t *a, struct shm_heap *h, uint64_t bytes, int reserve_ok, uint64_t *off);
void shm_free(shm_arena_t *a, struct shm_heap *h, uint64_t off);
/* Bytes really used by block `off` (its class size or run size). */
uint64_t shm_block_bytes(shm_arena_t *a, uint64_t off);

/* Page runs for metadata: stores the run offset at *dest (an arena word)
 * inside the allocator's critical section, so a crash never leaks it. */
int shm_meta_alloc(shm_arena_t *a, uint32_t npages, volatile uint64_t *dest);

/* Take/release the page allocator lock (repairing after a dead holder). */
int shm_galloc_lock(shm_arena_t *a);
void shm_galloc_unlock(shm_arena_t *a);

/* Whole-arena page statistics.  Under galloc_lock, except with no_repair
 * when its last holder died holding it: then the pages are walked as that
 * holder left them, and the lock stays for a writer to repair (a read-only
 * handle repairs nothing). */
struct shm_page_stat {
	uint64_t pages_total, pages_free, pages_meta, pages_slab, pages_large;
	uint64_t bad_headers;
};
int shm_page_stat(shm_arena_t *a, int no_repair, struct shm_page_stat *st);

/*
 * Mark-sweep over one heap, run under the owner's lock.
 *   shm_sweep_begin   collects the owner's pages (walks the page headers)
 *   shm_sweep_mark    marks a reachable block: 0 newly marked, 1 already
 *                     marked, <0 when `off` is not a block of this heap
 *   shm_sweep_end     marks the free lists (cutting a list at a bad link),
 *                     then, if `repair`, frees every unmarked block and
 *                     recomputes used_bytes; reports leaks through out
 */
struct shm_sweep;
struct shm_sweep_result {
	uint64_t blocks_marked, blocks_free, blocks_leaked, bytes_leaked;
	uint64_t bad_links;      /* free-list links that were cut */
	uint64_t bad_marks;      /* shm_sweep_mark calls with a bad offset */
	uint64_t double_free;    /* blocks both reachable and on a free list */
};
int shm_sweep_begin(shm_arena_t *a, struct shm_heap *h, struct shm_sweep **out);
int shm_sweep_mark(struct shm_sweep *s, uint64_t off);
int shm_sweep_end(struct shm_sweep *s, int repair, struct shm_sweep_result *out);
/* Return wholly free slab pages of heap h to the page pool (owner lock held). */
int shm_heap_trim(shm_arena_t *a, struct shm_heap *h);

#endif
