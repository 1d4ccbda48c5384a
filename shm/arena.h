/*
 * arena.h - the shared arena: one file in /dev/shm mapped MAP_SHARED by every
 * process of a store.
 *
 * The whole maximum size (arena_bytes_max) is reserved as one virtual range at
 * attach, so growth never moves the mapping: the file is extended under the
 * allocator lock and `arena_bytes` is published with a release store.  A
 * process only dereferences offsets below the arena_bytes it has observed
 * (shm_ptr checks), so it never touches the unbacked tail.  The arena never
 * shrinks while mapped.
 *
 * Everything inside is addressed by byte offset from the base.  Layout:
 *
 *   offset                    what
 *   0                         struct shm_hdr (this file), in page 0
 *   procs_off                 SHM_PROCS_MAX process slots (registry.h)
 *   readers_off               SHM_READERS_MAX reader slots (registry.h)
 *   user_off                  user_bytes for the store's own tables
 *   ring_off                  ring_bytes for the commit ring
 *   heap_off .. arena_bytes   64 KiB pages (alloc.h)
 *
 * struct shm_hdr byte table (host byte order, x86-64):
 *   0   u64 magic            SHM_MAGIC ("KEELARNA")
 *   8   u32 format_version   SHM_FORMAT_VERSION
 *   12  u32 hdr_bytes        sizeof(struct shm_hdr)
 *   16  u64 layout_sig       hash of struct sizes, cache line, lock size
 *   24  u8  uuid[16]         store identity
 *   40  u64 pidns_dev        device of /proc/self/ns/pid of the creator
 *   48  u64 pidns_ino        inode of it; attach from another namespace fails
 *   56  u32 state            SHM_STATE_*; READY once initialised
 *   60  u32 file_mode
 *   64  u64 arena_bytes      current file size (grows; release store)
 *   72  u64 arena_bytes_max  reserved range, fixed at creation
 *   80  u64 procs_off, 88 readers_off, 96 user_off, 104 user_bytes
 *   112 u64 ring_off, 120 ring_bytes, 128 heap_off, 136 created_ns
 *   144 u32 readers_hi, 148 u32 procs_hi, 152 u64 reaps
 *   160 u64 ahead_bytes      the file's pages are allocated up to here, past
 *                            its size (shm_arena_grow_ahead); 0 = not known.
 *                            Only raised; trusted only up to arena_bytes_max
 *                            and as far as the file's allocated blocks reach
 *   192 shm_lock galloc      the page allocator lock (64 bytes)
 *   256 struct shm_galloc    page allocator state (alloc.h)
 *   1024 u8 root[3072]       the store's root structure (lib/)
 *
 * Valid if and only if: magic, format_version, hdr_bytes and layout_sig
 * match this build; state is READY; every region lies inside arena_bytes and
 * arena_bytes <= arena_bytes_max <= file size limit; the offsets increase in
 * the order above.
 */
#ifndef SHM_ARENA_H
#define SHM_ARENA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm/limits.h"
#include "shm/lock.h"

#define SHM_MAGIC 0x414e52414c45454bull /* "KEELARNA" little-endian */
#define SHM_FORMAT_VERSION 1u
#define SHM_ROOT_BYTES 3072u

enum { SHM_STATE_CREATING = 0x43524541u, SHM_STATE_READY = 0x52454459u };

/* Page allocator state; alloc.c owns it, under hdr->galloc. */
struct shm_galloc {
	uint64_t free_head;      /* first free page run, 0 = none */
	uint64_t bump;           /* next never-used page offset */
	uint64_t free_pages;     /* pages on the free list */
	uint64_t used_pages;     /* pages handed out */
	uint64_t intent_page;    /* in-flight allocation (see alloc.c) */
	uint64_t intent_dest;    /* where its offset is being stored */
	uint64_t intent_npages;
	uint64_t reserve_pages;  /* kept back for deletes */
	uint64_t pad[8];
};

struct shm_hdr {
	uint64_t magic;
	uint32_t format_version;
	uint32_t hdr_bytes;
	uint64_t layout_sig;
	uint8_t uuid[16];
	uint64_t pidns_dev;
	uint64_t pidns_ino;
	volatile uint32_t state;
	uint32_t file_mode;
	volatile uint64_t arena_bytes;
	uint64_t arena_bytes_max;
	uint64_t procs_off;
	uint64_t readers_off;
	uint64_t user_off;
	uint64_t user_bytes;
	uint64_t ring_off;
	uint64_t ring_bytes;
	uint64_t heap_off;
	uint64_t created_ns;
	volatile uint32_t readers_hi;   /* reader slots ever claimed (scan bound) */
	volatile uint32_t procs_hi;     /* process slots ever claimed */
	volatile uint64_t reaps;        /* dead processes reaped, ever */
	volatile uint64_t ahead_bytes;  /* pages allocated up to here (shm_arena_grow_ahead) */
	uint8_t pad0[192 - 168];
	shm_lock_t galloc_lock;
	struct shm_galloc galloc;
	uint8_t pad1[1024 - 256 - sizeof(struct shm_galloc)];
	uint8_t root[SHM_ROOT_BYTES];
};

_Static_assert(offsetof(struct shm_hdr, arena_bytes) == 64, "hdr layout");
_Static_assert(offsetof(struct shm_hdr, created_ns) == 136, "hdr layout");
_Static_assert(offsetof(struct shm_hdr, ahead_bytes) == 160, "hdr layout");
_Static_assert(offsetof(struct shm_hdr, galloc_lock) == 192, "hdr layout");
_Static_assert(offsetof(struct shm_hdr, galloc) == 256, "hdr layout");
_Static_assert(offsetof(struct shm_hdr, root) == 1024, "hdr layout");
_Static_assert(sizeof(struct shm_hdr) == 4096, "hdr is 4 KiB");

/* A process's view of an attached arena. */
struct shm_arena;
typedef struct shm_arena {
	uint8_t *base;
	struct shm_hdr *hdr;
	uint64_t map_bytes;      /* = arena_bytes_max */
	uint64_t seen_bytes;     /* last arena_bytes observed */
	/* The regions, as validated at attach (or made): the header's copies
	 * are not read again, so a write that damages them later cannot send
	 * an access outside the arena. */
	uint64_t procs_off, readers_off, user_off, ring_off, ring_bytes, heap_off;
	uint64_t grows_prepared; /* grows that found their pages allocated ahead (tests read it) */
	int bumped;              /* the allocator took new pages at its top: check the next step */
	int fd;
	dev_t dev;
	ino_t ino;
	char path[256];
	/* Set by the store: 1 when a dead process's announced reservation (its
	 * LSN) is settled, so its slot may be reaped (registry.c). */
	int (*rsv_settled)(struct shm_arena *a, uint64_t lsn);
	/* Set by the store: called for a dead process's slot as it is reaped,
	 * before the slot is cleared (registry.c). */
	void (*proc_reaped)(struct shm_arena *a, uint32_t idx);
} shm_arena_t;

struct shm_create_opts {
	uint64_t arena_bytes_max;
	uint64_t ring_bytes;
	uint64_t user_bytes;
	uint32_t file_mode;
	uint64_t layout_sig_extra;  /* the store's struct sizes, mixed in */
	int create;                 /* create if missing */
	int (*init_root)(shm_arena_t *a, void *ctx); /* runs once at creation */
	void *ctx;
};

/* Attach the arena at `path`, creating it if missing and allowed.
 * *created is set to 1 when this call made it.  Errors: ATTACH, LAYOUT,
 * PERM, NAMESPACE, NOTFOUND, FULL, OS. */
int shm_arena_open(const char *path, const struct shm_create_opts *o, shm_arena_t *a,
		   int *created);
void shm_arena_close(shm_arena_t *a);
/* Extend the file to hold at least `bytes` (caller holds galloc_lock). */
int shm_arena_grow(shm_arena_t *a, uint64_t bytes);
/* From a background thread: allocate the next growth step's pages ahead of
 * need, so that the grow itself is quick (arena.c). */
void shm_arena_grow_ahead(shm_arena_t *a);
/* Derive the default arena path from the store directory's identity. */
int shm_arena_default_path(const char *dir, char *buf, size_t cap);

/* Bounds-checked offset -> pointer: NULL unless [off, off+len) lies inside the
 * arena's current size.  Overflow-safe. */
static inline void *shm_ptr(shm_arena_t *a, uint64_t off, uint64_t len)
{
	if (__builtin_expect(off + len < off || off + len > a->seen_bytes, 0)) {
		uint64_t now = __atomic_load_n(&a->hdr->arena_bytes, __ATOMIC_ACQUIRE);
		if (now > a->map_bytes)
			now = a->map_bytes;
		a->seen_bytes = now;
		if (off + len < off || off + len > now)
			return NULL;
	}
	return a->base + off;
}

/* Unchecked: for offsets already validated in this call. */
static inline void *shm_at(shm_arena_t *a, uint64_t off)
{
	return a->base + off;
}

static inline uint64_t shm_off(shm_arena_t *a, const void *p)
{
	return (uint64_t)((const uint8_t *)p - a->base);
}

uint64_t shm_now_ns(void);       /* CLOCK_REALTIME */
uint64_t shm_mono_ns(void);      /* CLOCK_MONOTONIC */

#endif
