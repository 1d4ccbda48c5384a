/*
 * alloc.c - page runs and slab heaps; see alloc.h for formats and rules.
 */
#include "shm/alloc.h"

#include <stdlib.h>
#include <string.h>

#include "shm/atomic.h"
#include "shm/err.h"

#define PAGE SHM_PAGE_BYTES
#define HDR SHM_PAGE_HEADER_BYTES

/* ---- size classes ------------------------------------------------------- */

static uint32_t class_sizes[SHM_CLASSES_MAX];

__attribute__((constructor)) static void classes_init(void)
{
	uint32_t c = 0;
	for (uint32_t s = 16; s <= 1024; s += 16)
		class_sizes[c++] = s;
	for (uint32_t base = 1024; base < SHM_SLAB_BYTES_MAX; base *= 2)
		for (uint32_t k = 1; k <= 4; k++)
			class_sizes[c++] = base + base / 4 * k;
	SHM_VERIFY(c == SHM_CLASSES_MAX);
	SHM_VERIFY(class_sizes[c - 1] == SHM_SLAB_BYTES_MAX);
}

uint32_t shm_class_size(uint32_t c)
{
	return c < SHM_CLASSES_MAX ? class_sizes[c] : 0;
}

uint32_t shm_class_of(uint64_t bytes)
{
	if (bytes == 0)
		bytes = 1;
	if (bytes <= 1024)
		return (uint32_t)((bytes + 15) / 16 - 1);
	for (uint32_t c = 64; c < SHM_CLASSES_MAX; c++)
		if (bytes <= class_sizes[c])
			return c;
	return SHM_CLASSES_MAX;
}

static uint32_t blocks_per_page(uint32_t c)
{
	return (PAGE - HDR) / class_sizes[c];
}

/* ---- page headers and the walk ---------------------------------------- */

static struct shm_page *page_hdr(shm_arena_t *a, uint64_t off)
{
	if (off < a->heap_off || off % PAGE)
		return NULL;
	return shm_ptr(a, off, sizeof(struct shm_page));
}

static int page_valid(shm_arena_t *a, const struct shm_page *p, uint64_t off, uint64_t top)
{
	if (p->magic != SHM_PAGE_MAGIC || p->npages == 0)
		return 0;
	if (off + (uint64_t)p->npages * PAGE > top)
		return 0;
	switch (p->type) {
	case SHM_PAGE_SLAB:
		return p->cls < SHM_CLASSES_MAX && p->npages == 1 && p->owner != 0;
	case SHM_PAGE_LARGE:
		return p->owner != 0;
	case SHM_PAGE_FREE:
	case SHM_PAGE_META:
		return 1;
	}
	return 0;
}

/* Calls fn for each run from heap_off to bump.  Stops at the first invalid
 * header and returns KEEL_E_CORRUPT (after reporting it in errmsg). */
static int walk_pages(shm_arena_t *a, int (*fn)(void *ctx, uint64_t off, struct shm_page *p),
		      void *ctx)
{
	uint64_t top = a->hdr->galloc.bump;
	uint64_t off = a->heap_off;
	uint64_t steps = 0, steps_max = (top - off) / PAGE + 1;

	while (off < top && steps++ < steps_max) {
		struct shm_page *p = page_hdr(a, off);
		if (!p || !page_valid(a, p, off, top))
			return shm_err(KEEL_E_CORRUPT, "arena page header at offset %llu is invalid (magic %08x type %u npages %u)",
				       (unsigned long long)off, p ? p->magic : 0, p ? p->type : 0,
				       p ? p->npages : 0);
		int rc = fn(ctx, off, p);
		if (rc)
			return rc;
		off += (uint64_t)p->npages * PAGE;
	}
	return 0;
}

/* ---- the page allocator ------------------------------------------------- */

struct rebuild {
	shm_arena_t *a;
	uint64_t *link;      /* where the next free run's offset goes */
	struct shm_page *last_free;
	uint64_t last_free_off;
	uint64_t free_pages, used_pages;
};

static int rebuild_one(void *ctx, uint64_t off, struct shm_page *p)
{
	struct rebuild *r = ctx;

	if (p->type != SHM_PAGE_FREE) {
		r->used_pages += p->npages;
		r->last_free = NULL;
		return 0;
	}
	r->free_pages += p->npages;
	if (r->last_free && r->last_free_off + (uint64_t)r->last_free->npages * PAGE == off) {
		r->last_free->npages += p->npages;   /* coalesce neighbours */
		p->magic = 0;
		return 0;
	}
	p->next = 0;
	*r->link = off;
	r->link = &p->next;
	r->last_free = p;
	r->last_free_off = off;
	return 0;
}

/* Rebuild the free list from the page headers.  Runs with the lock held. */
static int galloc_rebuild(shm_arena_t *a)
{
	struct shm_galloc *g = &a->hdr->galloc;
	struct rebuild r = { .a = a, .link = &g->free_head };
	uint64_t intent = g->intent_page;
	int rc;

	g->free_head = 0;
	rc = walk_pages(a, rebuild_one, &r);
	if (rc)
		return rc;
	*r.link = 0;
	g->free_pages = r.free_pages;
	g->used_pages = r.used_pages;
	/* Finish an allocation whose run was stamped but whose offset did not
	 * reach its destination. */
	if (intent) {
		struct shm_page *p = page_hdr(a, intent);
		volatile uint64_t *dest = g->intent_dest ? shm_ptr(a, g->intent_dest, 8) : NULL;
		if (p && p->magic == SHM_PAGE_MAGIC && p->type == SHM_PAGE_META && dest && *dest != intent)
			*dest = intent;
	}
	g->intent_page = 0;
	g->intent_dest = 0;
	return 0;
}

int shm_galloc_lock(shm_arena_t *a)
{
	int rc = shm_lock_acquire(&a->hdr->galloc_lock);
	if (rc == SHM_LOCK_DIED) {
		rc = galloc_rebuild(a);
		shm_lock_consistent(&a->hdr->galloc_lock);
		if (rc) {
			shm_lock_release(&a->hdr->galloc_lock);
			return rc;
		}
		return 0;
	}
	if (rc < 0)
		return shm_lock_err(&a->hdr->galloc_lock, rc, "allocator lock");
	return 0;
}

void shm_galloc_unlock(shm_arena_t *a)
{
	shm_lock_release(&a->hdr->galloc_lock);
}

static void stamp(struct shm_page *p, uint8_t type, uint8_t cls, uint32_t owner, uint32_t npages)
{
	p->type = type;
	p->cls = cls;
	p->owner = owner;
	p->npages = npages;
	p->next = 0;
	p->magic = SHM_PAGE_MAGIC;
}

/* Allocate a run of n pages.  Caller holds the galloc lock. */
static int pages_alloc_locked(shm_arena_t *a, uint32_t n, uint8_t type, uint8_t cls,
			      uint32_t owner, int reserve_ok, volatile uint64_t *dest, uint64_t *out)
{
	struct shm_hdr *h = a->hdr;
	struct shm_galloc *g = &h->galloc;
	uint64_t room = (h->arena_bytes_max / PAGE * PAGE - g->bump) / PAGE + g->free_pages;
	uint64_t *prev = &g->free_head;
	uint64_t steps = 0, r;
	int rc;

	if (room < n + (reserve_ok ? 0 : g->reserve_pages))
		return shm_err(KEEL_E_FULL, "arena full: %u pages of 64 KiB needed, %llu left (%llu kept for deletes) of arena_bytes_max %llu; delete data or reopen with a larger arena_bytes_max",
			       n, (unsigned long long)room, (unsigned long long)g->reserve_pages,
			       (unsigned long long)h->arena_bytes_max);
	g->intent_dest = dest ? shm_off(a, (const void *)dest) : 0;
	g->intent_npages = n;
	while ((r = *prev) != 0 && steps++ <= g->free_pages) {
		struct shm_page *p = page_hdr(a, r);
		/* The whole run must lie below the allocator's top: it is handed
		 * out, cleared and written, not just its header. */
		if (!p || !page_valid(a, p, r, g->bump) || p->type != SHM_PAGE_FREE) {
			*prev = 0;   /* cut a damaged list; a rebuild recovers it */
			break;
		}
		if (p->npages >= n) {
			if (p->npages > n) {
				struct shm_page *rest = page_hdr(a, r + (uint64_t)n * PAGE);
				stamp(rest, SHM_PAGE_FREE, 0, 0, p->npages - n);
				rest->next = p->next;
				g->intent_page = r;
				*prev = r + (uint64_t)n * PAGE;
			} else {
				g->intent_page = r;
				*prev = p->next;
			}
			g->free_pages -= n;
			stamp(p, type, cls, owner, n);
			goto done;
		}
		prev = &p->next;
	}
	r = g->bump;
	if ((rc = shm_arena_grow(a, r + (uint64_t)n * PAGE)))
		return rc;
	g->intent_page = r;
	stamp(page_hdr(a, r), type, cls, owner, n);
	g->bump = r + (uint64_t)n * PAGE;
	a->bumped = 1;
done:
	g->used_pages += n;
	if (dest)
		*dest = r;
	g->intent_page = 0;
	g->intent_dest = 0;
	*out = r;
	return 0;
}

static int pages_alloc(shm_arena_t *a, uint32_t n, uint8_t type, uint8_t cls, uint32_t owner,
		       int reserve_ok, volatile uint64_t *dest, uint64_t *out)
{
	int rc = shm_galloc_lock(a);
	if (rc)
		return rc;
	if (a->hdr->galloc.reserve_pages == 0)
		a->hdr->galloc.reserve_pages = SHM_RESERVE_PAGES;
	rc = pages_alloc_locked(a, n, type, cls, owner, reserve_ok, dest, out);
	shm_galloc_unlock(a);
	return rc;
}

static void pages_free(shm_arena_t *a, uint64_t r)
{
	struct shm_page *p = page_hdr(a, r);
	struct shm_galloc *g = &a->hdr->galloc;

	if (!p || shm_galloc_lock(a))
		return;
	if (p->magic == SHM_PAGE_MAGIC && p->type != SHM_PAGE_FREE) {
		uint32_t n = p->npages;
		stamp(p, SHM_PAGE_FREE, 0, 0, n);
		p->next = g->free_head;
		g->free_head = r;
		g->free_pages += n;
		g->used_pages -= n;
	}
	shm_galloc_unlock(a);
}

int shm_meta_alloc(shm_arena_t *a, uint32_t npages, volatile uint64_t *dest)
{
	uint64_t r;
	int rc = pages_alloc(a, npages, SHM_PAGE_META, 0, 0, 0, dest, &r);
	if (rc == 0)
		memset(shm_at(a, r + HDR), 0, (uint64_t)npages * PAGE - HDR);
	return rc;
}

/* ---- slab heaps ----------------------------------------------------------- */

static int refill(shm_arena_t *a, struct shm_heap *h, uint32_t c, int reserve_ok)
{
	uint32_t size = class_sizes[c], n = blocks_per_page(c);
	uint64_t r;
	int rc = pages_alloc(a, 1, SHM_PAGE_SLAB, (uint8_t)c, h->id, reserve_ok, NULL, &r);

	if (rc)
		return rc;
	h->pages++;
	/* Carve from the top so the free list hands out blocks in address order. */
	for (uint32_t i = n; i-- > 0;) {
		uint64_t b = r + HDR + (uint64_t)i * size;
		*(uint64_t *)shm_at(a, b) = h->free_head[c];
		h->free_head[c] = b;
	}
	return 0;
}

int shm_alloc(shm_arena_t *a, struct shm_heap *h, uint64_t bytes, int reserve_ok, uint64_t *off)
{
	uint32_t c = shm_class_of(bytes);
	int rc;

	if (c >= SHM_CLASSES_MAX) {
		uint64_t n = (bytes + HDR + PAGE - 1) / PAGE, r;
		if (n > UINT32_MAX)
			return shm_err(KEEL_E_FULL, "allocation of %llu bytes is too large", (unsigned long long)bytes);
		rc = pages_alloc(a, (uint32_t)n, SHM_PAGE_LARGE, 0, h->id, reserve_ok, NULL, &r);
		if (rc)
			return rc;
		h->pages += n;
		h->used_bytes += n * PAGE;
		*off = r + HDR;
		return 0;
	}
	if (h->free_head[c] == 0 && (rc = refill(a, h, c, reserve_ok)))
		return rc;
	uint64_t b = h->free_head[c];
	uint64_t *bp = shm_ptr(a, b, class_sizes[c]);
	if (!bp || b < a->heap_off) {
		h->free_head[c] = 0;   /* damaged list: drop it; the sweep recovers */
		return shm_err(KEEL_E_CORRUPT, "free list of class %u (heap %u) points outside the arena (%llu)",
			       c, h->id, (unsigned long long)b);
	}
	h->free_head[c] = *bp;
	h->used_bytes += class_sizes[c];
	*off = b;
	return 0;
}

void shm_free(shm_arena_t *a, struct shm_heap *h, uint64_t off)
{
	uint64_t r = off / PAGE * PAGE;
	struct shm_page *p = page_hdr(a, r);

	if (!p || p->magic != SHM_PAGE_MAGIC || p->owner != h->id)
		return;   /* not ours: never corrupt someone else's heap */
	if (p->type == SHM_PAGE_LARGE && off == r + HDR) {
		h->pages -= p->npages;
		h->used_bytes -= (uint64_t)p->npages * PAGE;
		pages_free(a, r);
		return;
	}
	if (p->type != SHM_PAGE_SLAB || p->cls >= SHM_CLASSES_MAX || off < r + HDR ||
	    (off - r - HDR) % class_sizes[p->cls])
		return;   /* not a block's start, or a damaged page header: leave it */
	*(uint64_t *)shm_at(a, off) = h->free_head[p->cls];
	h->free_head[p->cls] = off;
	h->used_bytes -= class_sizes[p->cls];
}

uint64_t shm_block_bytes(shm_arena_t *a, uint64_t off)
{
	uint64_t r = off / PAGE * PAGE;
	struct shm_page *p = page_hdr(a, r);

	if (!p || p->magic != SHM_PAGE_MAGIC)
		return 0;
	if (p->type == SHM_PAGE_LARGE)
		return (uint64_t)p->npages * PAGE;
	if (p->type == SHM_PAGE_SLAB && p->cls < SHM_CLASSES_MAX)
		return class_sizes[p->cls];
	return 0;
}

/* ---- statistics ------------------------------------------------------------ */

static int stat_one(void *ctx, uint64_t off, struct shm_page *p)
{
	struct shm_page_stat *st = ctx;
	st->pages_total += p->npages;
	switch (p->type) {
	case SHM_PAGE_FREE: st->pages_free += p->npages; break;
	case SHM_PAGE_META: st->pages_meta += p->npages; break;
	case SHM_PAGE_SLAB: st->pages_slab += p->npages; break;
	case SHM_PAGE_LARGE: st->pages_large += p->npages; break;
	}
	return 0;
}

int shm_page_stat(shm_arena_t *a, int no_repair, struct shm_page_stat *st)
{
	int rc, locked = !(no_repair && shm_lock_holder_died(&a->hdr->galloc_lock));
	memset(st, 0, sizeof(*st));
	if (locked && (rc = shm_galloc_lock(a)))
		return rc;
	rc = walk_pages(a, stat_one, st);   /* bounded, and checks each header */
	if (rc)
		st->bad_headers++;
	if (!locked)
		return 0;   /* a dead holder may have left a split half-made: counted in bad_headers */
	shm_galloc_unlock(a);
	return rc;
}

/* ---- mark-sweep ------------------------------------------------------------- */

struct sweep_page {
	uint64_t off;
	uint32_t npages;
	uint8_t type, cls;
	uint8_t *live;      /* one byte per block: 0 unmarked, 1 live, 2 free */
	uint32_t nblocks;
};

struct shm_sweep {
	shm_arena_t *a;
	struct shm_heap *h;
	struct sweep_page *pages;
	size_t n, cap;
	uint64_t bad_marks;
	int oom;
};

static int collect_one(void *ctx, uint64_t off, struct shm_page *p)
{
	struct shm_sweep *s = ctx;
	struct sweep_page *sp;

	if ((p->type != SHM_PAGE_SLAB && p->type != SHM_PAGE_LARGE) || p->owner != s->h->id)
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *np = realloc(s->pages, cap * sizeof(*s->pages));
		if (!np)
			return shm_err(KEEL_E_NOMEM, "sweep: out of memory");
		s->pages = np;
		s->cap = cap;
	}
	sp = &s->pages[s->n++];
	sp->off = off;
	sp->npages = p->npages;
	sp->type = p->type;
	sp->cls = p->cls;
	sp->nblocks = p->type == SHM_PAGE_SLAB ? blocks_per_page(p->cls) : 1;
	sp->live = calloc(sp->nblocks, 1);
	if (!sp->live) {
		s->n--;
		return shm_err(KEEL_E_NOMEM, "sweep: out of memory");
	}
	return 0;
}

int shm_sweep_begin(shm_arena_t *a, struct shm_heap *h, struct shm_sweep **out)
{
	struct shm_sweep *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return shm_err(KEEL_E_NOMEM, "sweep: out of memory");
	s->a = a;
	s->h = h;
	if ((rc = shm_galloc_lock(a))) {
		free(s);
		return rc;
	}
	rc = walk_pages(a, collect_one, s);
	shm_galloc_unlock(a);
	if (rc) {
		struct shm_sweep_result ignored;
		shm_sweep_end(s, 0, &ignored);
		return rc;
	}
	*out = s;
	return 0;
}

/* Find the block slot of `off`: returns the page and sets *idx, or NULL. */
static struct sweep_page *find_block(struct shm_sweep *s, uint64_t off, uint32_t *idx)
{
	size_t lo = 0, hi = s->n;
	uint64_t r = off / PAGE * PAGE;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (s->pages[mid].off < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= s->n || s->pages[lo].off != r)
		return NULL;
	struct sweep_page *sp = &s->pages[lo];
	if (sp->type == SHM_PAGE_LARGE) {
		if (off != r + HDR)
			return NULL;
		*idx = 0;
		return sp;
	}
	uint64_t rel = off - r - HDR, size = class_sizes[sp->cls];
	if (off < r + HDR || rel % size || rel / size >= sp->nblocks)
		return NULL;
	*idx = (uint32_t)(rel / size);
	return sp;
}

int shm_sweep_mark(struct shm_sweep *s, uint64_t off)
{
	uint32_t i;
	struct sweep_page *sp = find_block(s, off, &i);

	if (!sp) {
		s->bad_marks++;
		return KEEL_E_CORRUPT;
	}
	if (sp->live[i])
		return 1;
	sp->live[i] = 1;
	return 0;
}

int shm_sweep_end(struct shm_sweep *s, int repair, struct shm_sweep_result *out)
{
	shm_arena_t *a = s->a;
	struct shm_heap *h = s->h;

	memset(out, 0, sizeof(*out));
	out->bad_marks = s->bad_marks;
	/* Mark the free lists, cutting each at its first bad link. */
	for (uint32_t c = 0; c < SHM_CLASSES_MAX && s->pages; c++) {
		uint64_t *link = &h->free_head[c];
		uint64_t steps = 0, steps_max = 0;
		for (size_t k = 0; k < s->n; k++)
			steps_max += s->pages[k].nblocks;
		while (*link && steps++ <= steps_max) {
			uint32_t i;
			struct sweep_page *sp = find_block(s, *link, &i);
			if (!sp || sp->type != SHM_PAGE_SLAB || sp->cls != c || sp->live[i] == 2) {
				out->bad_links++;
				if (repair)
					*link = 0;
				break;
			}
			if (sp->live[i] == 1) {
				out->double_free++;
				if (repair) {   /* reachable: take it off the free list */
					*link = *(uint64_t *)shm_at(a, *link);
					continue;
				}
			}
			sp->live[i] = 2;
			out->blocks_free++;
			link = (uint64_t *)shm_at(a, *link);
		}
	}
	uint64_t used = 0, pages = 0;
	for (size_t k = 0; k < s->n; k++) {
		struct sweep_page *sp = &s->pages[k];
		pages += sp->npages;
		for (uint32_t i = 0; i < sp->nblocks; i++) {
			uint64_t size = sp->type == SHM_PAGE_LARGE ? (uint64_t)sp->npages * PAGE
								   : class_sizes[sp->cls];
			if (sp->live[i] == 1) {
				out->blocks_marked++;
				used += size;
			} else if (sp->live[i] == 0) {
				out->blocks_leaked++;
				out->bytes_leaked += size;
				if (!repair)
					continue;
				if (sp->type == SHM_PAGE_LARGE) {
					pages_free(a, sp->off);
					pages -= sp->npages;
				} else {
					uint64_t b = sp->off + HDR + (uint64_t)i * size;
					*(uint64_t *)shm_at(a, b) = h->free_head[sp->cls];
					h->free_head[sp->cls] = b;
				}
			}
		}
		free(sp->live);
	}
	if (repair && s->pages) {
		h->used_bytes = used;
		h->pages = pages;
	}
	free(s->pages);
	free(s);
	return 0;
}

/*
 * Give the owner's wholly free slab pages back to the page pool (under the
 * owner's lock).  Free lists are rebuilt without the blocks of those pages.
 * Returns the number of pages returned.
 */
int shm_heap_trim(shm_arena_t *a, struct shm_heap *h)
{
	struct shm_sweep *s;
	struct shm_sweep_result res;
	int n = 0;

	if (shm_sweep_begin(a, h, &s))
		return 0;
	/* No free list is longer than the heap's blocks: a longer walk is a
	 * cycle in a damaged list. */
	uint64_t blocks = 0;
	for (size_t k = 0; k < s->n; k++)
		blocks += s->pages[k].nblocks;
	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++) {
		uint64_t steps = 0;
		for (uint64_t b = h->free_head[c]; b && steps++ <= blocks;) {
			uint32_t i;
			struct sweep_page *sp = find_block(s, b, &i);
			if (!sp || sp->type != SHM_PAGE_SLAB || sp->live[i])
				break;
			sp->live[i] = 2;
			b = *(uint64_t *)shm_at(a, b);
		}
	}
	for (size_t k = 0; k < s->n; k++) {
		struct sweep_page *sp = &s->pages[k];
		uint32_t nfree = 0;
		if (sp->type != SHM_PAGE_SLAB)
			continue;
		for (uint32_t i = 0; i < sp->nblocks; i++)
			nfree += sp->live[i] == 2;
		sp->cls = nfree == sp->nblocks ? sp->cls : sp->cls;
		sp->npages = nfree == sp->nblocks ? 0 : sp->npages;   /* 0 marks "return it" */
	}
	for (uint32_t c = 0; c < SHM_CLASSES_MAX; c++) {
		uint64_t *link = &h->free_head[c], steps = 0;
		while (*link && steps++ <= blocks) {
			uint32_t i;
			struct sweep_page *sp = find_block(s, *link, &i);
			if (!sp)
				break;
			if (sp->npages == 0)
				*link = *(uint64_t *)shm_at(a, *link);
			else
				link = (uint64_t *)shm_at(a, *link);
		}
	}
	for (size_t k = 0; k < s->n; k++) {
		struct sweep_page *sp = &s->pages[k];
		if (sp->type == SHM_PAGE_SLAB && sp->npages == 0) {
			pages_free(a, sp->off);
			h->pages--;
			sp->type = 0;   /* not walked again by the end below */
			n++;
		}
	}
	/* Release the bookkeeping without touching the heap. */
	for (size_t k = 0; k < s->n; k++)
		free(s->pages[k].live);
	free(s->pages);
	free(s);
	(void)res;
	return n;
}
