/*
 * atomic.h - the one place Keel touches libatomic_ops.
 *
 * Every shared word in the arena is a 64-bit (or 32-bit) integer accessed
 * through these helpers.  The names say the ordering: _acq loads pair with
 * _rel stores; cas/faa are full barriers; shm_fence() is a full (StoreLoad)
 * fence.  Each caller names its partner in a comment.  On x86-64 acquire and
 * release are plain moves; only the full fence and the RMWs cost anything.
 */
#ifndef SHM_ATOMIC_H
#define SHM_ATOMIC_H

#include <atomic_ops.h>
#include <stdint.h>

_Static_assert(sizeof(AO_t) == sizeof(uint64_t), "AO_t must be 64-bit");

static inline uint64_t shm_load(const volatile uint64_t *p)
{
	return AO_load((const volatile AO_t *)p);
}
static inline uint64_t shm_load_acq(const volatile uint64_t *p)
{
	return AO_load_acquire((const volatile AO_t *)p);
}
static inline void shm_store(volatile uint64_t *p, uint64_t v)
{
	AO_store((volatile AO_t *)p, (AO_t)v);
}
static inline void shm_store_rel(volatile uint64_t *p, uint64_t v)
{
	AO_store_release((volatile AO_t *)p, (AO_t)v);
}
/* Returns 1 if *p was `old` and is now `new`. Full barrier. */
static inline int shm_cas(volatile uint64_t *p, uint64_t old, uint64_t new_)
{
	return AO_compare_and_swap_full((volatile AO_t *)p, (AO_t)old, (AO_t)new_);
}
/* Returns the old value. Full barrier. */
static inline uint64_t shm_faa(volatile uint64_t *p, uint64_t d)
{
	return AO_fetch_and_add_full((volatile AO_t *)p, (AO_t)d);
}
static inline void shm_fence(void)
{
	AO_nop_full();
}

/* Double-width compare-and-swap (cmpxchg16b; built with -mcx16).  `p` must be
 * 16-byte aligned.  Full barrier. */
typedef AO_double_t shm_pair_t;
static inline int shm_cas_pair(volatile shm_pair_t *p, uint64_t o1, uint64_t o2, uint64_t n1, uint64_t n2)
{
	return AO_compare_double_and_swap_double_full((volatile AO_double_t *)p, o1, o2, n1, n2);
}
/* A consistent read of a pair whose first word changes with every update:
 * read first, second, first again until the first is unchanged. */
static inline void shm_load_pair(volatile shm_pair_t *p, uint64_t *a, uint64_t *b)
{
	for (;;) {
		uint64_t x = AO_load_acquire(&((volatile AO_double_t *)p)->AO_val1);
		uint64_t y = AO_load_acquire(&((volatile AO_double_t *)p)->AO_val2);
		if (AO_load_acquire(&((volatile AO_double_t *)p)->AO_val1) == x) {
			*a = x;
			*b = y;
			return;
		}
	}
}

static inline uint32_t shm_load32(const volatile uint32_t *p)
{
	return AO_int_load((const volatile unsigned *)p);
}
static inline uint32_t shm_load32_acq(const volatile uint32_t *p)
{
	return AO_int_load_acquire((const volatile unsigned *)p);
}
static inline void shm_store32_rel(volatile uint32_t *p, uint32_t v)
{
	AO_int_store_release((volatile unsigned *)p, v);
}
static inline void shm_store32(volatile uint32_t *p, uint32_t v)
{
	AO_int_store((volatile unsigned *)p, v);
}
static inline int shm_cas32(volatile uint32_t *p, uint32_t old, uint32_t new_)
{
	return AO_int_compare_and_swap_full((volatile unsigned *)p, old, new_);
}
static inline uint32_t shm_faa32(volatile uint32_t *p, uint32_t d)
{
	return AO_int_fetch_and_add_full((volatile unsigned *)p, d);
}

#endif
