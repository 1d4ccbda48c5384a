/*
 * part.c - the partition directory: names, ids, descriptors and their locks.
 *
 * A partition is created by its first write, under root->dir_lock: the next
 * id is taken, its descriptor (struct part, internal.h) is initialised in a
 * descriptor page, and only then published in the name index with a release
 * store (R4), which readers pair with an acquire load (A4) in part_find.
 * Partitions are never removed, so a published id stays valid for the
 * arena's life; clear() empties one.
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "lib/internal.h"

const char keel_timer_part[] = "~timers";

uint64_t key_hash(const void *key, size_t klen)
{
	return XXH3_64bits(key, klen);
}

int part_name_check(const char *name, size_t *len)
{
	size_t n;

	if (!name)
		return shm_err(KEEL_E_NAME, "partition name is NULL");
	n = strnlen(name, KEEL_PARTITION_NAME_MAX + 1);
	if (n == 0)
		return shm_err(KEEL_E_NAME, "partition name is empty; use 1 to %u bytes of [A-Za-z0-9._:@-]",
			       KEEL_PARTITION_NAME_MAX);
	if (n > KEEL_PARTITION_NAME_MAX)
		return shm_err(KEEL_E_NAME, "partition name is longer than %u bytes", KEEL_PARTITION_NAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == ':' || c == '@' || c == '-'))
			return shm_err(KEEL_E_NAME, "partition name \"%.*s\" has byte 0x%02x at %zu; allowed: [A-Za-z0-9._:@-]",
				       (int)n, name, c, i);
	}
	*len = n;
	return 0;
}

struct part *part_by_id(keel_t *h, uint32_t id)
{
	uint64_t page;

	if (id >= SHM_PARTS_MAX)
		return NULL;
	page = shm_load_acq(&h->part_pages[id / SHM_PARTS_PER_PAGE]);
	if (!page)
		return NULL;
	return shm_ptr(&h->a, page + SHM_PAGE_HEADER_BYTES + (uint64_t)(id % SHM_PARTS_PER_PAGE) * PART_BYTES,
		       PART_BYTES);
}

static uint32_t index_slot(const char *name, size_t len)
{
	return (uint32_t)(XXH3_64bits(name, len) & (SHM_PART_INDEX_SLOTS - 1));
}

/* Probe the index: returns the partition or NULL. */
static struct part *lookup(keel_t *h, const char *name, size_t len)
{
	uint32_t s = index_slot(name, len);

	for (uint32_t i = 0; i < SHM_PART_INDEX_SLOTS; i++, s = (s + 1) & (SHM_PART_INDEX_SLOTS - 1)) {
		uint32_t v = shm_load32_acq(&h->part_index[s]);   /* A4: pairs with R4 */
		if (v == 0)
			return NULL;
		struct part *p = part_by_id(h, v - 1);
		if (p && p->name_len == len && memcmp(p->name, name, len) == 0)
			return p;
	}
	return NULL;
}

/* The last partition this thread found, per handle serial: most callers
 * hit the same few partitions, and a hit costs one string compare.  Only
 * found partitions are cached; a partition, once published, never moves. */
struct part_cache {
	uint64_t serial;
	struct part *p;
	char name[KEEL_PARTITION_NAME_MAX + 1];
};
static __thread struct part_cache pcache[4];
static __thread unsigned pcache_next;

/* strcmp(a, b) == 0, inline: partition names are short, and a call into
 * libc for one costs more than the compare (about 10% of a cached get). */
static inline int name_eq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int part_find(keel_t *h, const char *name, struct part **out)
{
	size_t len;
	int rc;

	if (name) {
		for (unsigned i = 0; i < 4; i++) {
			if (pcache[i].serial == h->serial && name_eq(pcache[i].name, name)) {
				*out = pcache[i].p;
				return 0;
			}
		}
	}
	if ((rc = part_name_check(name, &len)))
		return rc;
	*out = lookup(h, name, len);
	if (*out) {
		struct part_cache *c = &pcache[pcache_next++ % 4];
		c->serial = h->serial;
		c->p = *out;
		memcpy(c->name, name, len + 1);
	}
	return 0;
}

static int dir_lock(keel_t *h)
{
	struct keel_root *root = h->root;
	int rc = shm_lock_acquire(&root->dir_lock);

	if (rc == SHM_LOCK_DIED) {
		/* A creator died.  If it published its partition in the index but
		 * did not count it, count it now; otherwise the half-made
		 * descriptor is simply made again by the next creation. */
		uint32_t n = root->nparts;
		struct part *p = part_by_id(h, n);
		if (p && p->ready && p->name_len <= KEEL_PARTITION_NAME_MAX && lookup(h, p->name, p->name_len) == p)
			shm_store32_rel(&root->nparts, n + 1);
		shm_lock_consistent(&root->dir_lock);
		return 0;
	}
	if (rc < 0)
		return shm_lock_err(&root->dir_lock, rc, "directory lock");
	return 0;
}

/* Initialise descriptor `id` and publish it (dir_lock held, or recovery). */
static int part_init_at(keel_t *h, uint32_t id, const char *name, size_t len, struct part **out)
{
	struct keel_root *root = h->root;
	struct part *p;
	uint32_t s;
	int rc;

	if (id >= SHM_PARTS_MAX)
		return shm_err(KEEL_E_LIMIT, "cannot create partition \"%.*s\": the store has the maximum of %u partitions",
			       (int)len, name, SHM_PARTS_MAX);
	if (!h->part_pages[id / SHM_PARTS_PER_PAGE] &&
	    (rc = shm_meta_alloc(&h->a, 1, &h->part_pages[id / SHM_PARTS_PER_PAGE])))
		return rc;
	p = part_by_id(h, id);
	if (!p)
		return shm_err(KEEL_E_CORRUPT, "descriptor page of partition %u is outside the arena", id);
	memset(p, 0, PART_BYTES);
	if ((rc = shm_lock_init(&p->lock)))
		return shm_err(KEEL_E_OS, "partition lock init: error %d", -rc);
	p->id = id;
	p->name_len = (uint16_t)len;
	memcpy(p->name, name, len);
	p->heap.id = id + 1;
	if ((rc = table_init(h, p)))
		return rc;
	p->ready = 1;
	s = index_slot(name, len);
	for (uint32_t i = 0; h->part_index[s] != 0 && i < SHM_PART_INDEX_SLOTS; i++)
		s = (s + 1) & (SHM_PART_INDEX_SLOTS - 1);
	shm_store32_rel(&h->part_index[s], id + 1);   /* R4: descriptor complete */
	if (root->nparts < id + 1)
		shm_store32_rel(&root->nparts, id + 1);
	*out = p;
	return 0;
}

int part_find_or_create(keel_t *h, const char *name, struct part **out)
{
	struct keel_root *root = h->root;
	size_t len;
	int rc = part_name_check(name, &len);

	if (rc)
		return rc;
	if ((*out = lookup(h, name, len)))
		return 0;
	if (h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = dir_lock(h)))
		return rc;
	if (!(*out = lookup(h, name, len)))
		rc = part_init_at(h, root->nparts, name, len, out);
	shm_lock_release(&root->dir_lock);
	return rc;
}

int part_timers(keel_t *h, int create, struct part **out)
{
	int rc;

	if ((*out = lookup(h, TIMER_PART, TIMER_PART_LEN)) || !create)
		return 0;
	if (h->readonly)
		return shm_err(KEEL_E_READONLY, "store opened read-only");
	if ((rc = dir_lock(h)))
		return rc;
	if (!(*out = lookup(h, TIMER_PART, TIMER_PART_LEN)))
		rc = part_init_at(h, h->root->nparts, TIMER_PART, TIMER_PART_LEN, out);
	shm_lock_release(&h->root->dir_lock);
	return rc;
}

int part_create_id(keel_t *h, uint32_t id, const char *name, size_t len)
{
	struct part *p = part_by_id(h, id);
	char buf[KEEL_PARTITION_NAME_MAX + 1];
	size_t l2;

	if (len == 0 || len > KEEL_PARTITION_NAME_MAX)
		return shm_err(KEEL_E_CORRUPT, "partition %u: name of %zu bytes", id, len);
	memcpy(buf, name, len);
	buf[len] = 0;
	if (len == TIMER_PART_LEN && memcmp(buf, TIMER_PART, len) == 0)
		l2 = len;   /* the internal timer partition */
	else if (part_name_check(buf, &l2) || l2 != len)
		return shm_err(KEEL_E_CORRUPT, "partition %u: bad name \"%.*s\"", id, (int)len, name);
	if (p && p->ready) {
		if (p->name_len != len || memcmp(p->name, name, len) != 0)
			return shm_err(KEEL_E_CORRUPT, "partition %u is \"%.*s\" but a record names it \"%.*s\"", id,
				       (int)p->name_len, p->name, (int)len, name);
		return 0;
	}
	if (lookup(h, name, len))
		return shm_err(KEEL_E_CORRUPT, "partition \"%.*s\" appears with two ids", (int)len, name);
	return part_init_at(h, id, name, len, &p);
}

/*
 * A read-only handle repairs no partition (README, "Durable stores"): a
 * partition whose last writer died holding its lock, or left its applying
 * marker set, is refused to the calls that need its lock
 * (keel_partition_stat, the timers' listings, keel_check's walk of it) with
 * this error, and stays as it stands for the next read-write handle to
 * repair; keel_stat counts it without the lock.  Reads need no lock and see
 * the partition's last whole commit.  A writer that dies between the check and the
 * acquisition still leaves the lock to this handle, which then repairs, as
 * the robust lock's protocol requires.
 */
static int refuse_repair(struct part *p)
{
	return shm_err(KEEL_E_READONLY, "partition \"%.*s\" was left mid-commit by a process that died, and a "
		       "read-only handle does not repair it; the next read-write open or write repairs it",
		       (int)p->name_len, p->name);
}

/* After acquiring a partition lock: repair it when its holder died, or when
 * an earlier repair left the applying marker set. */
static int lock_taken(keel_t *h, struct part *p, int rc)
{
	if (rc == SHM_LOCK_OK && __builtin_expect(p->applying_lsn != 0, 0)) {
		if (h->readonly) {
			shm_lock_release(&p->lock);
			return refuse_repair(p);
		}
		rc = SHM_LOCK_DIED;   /* an earlier repair could not finish: again */
	}
	if (rc == SHM_LOCK_DIED) {
		rc = part_repair(h, p);
		shm_lock_consistent(&p->lock);
		if (rc) {
			shm_lock_release(&p->lock);
			return rc;
		}
		return 0;
	}
	if (rc < 0) {
		char what[KEEL_PARTITION_NAME_MAX + 32];
		snprintf(what, sizeof(what), "lock of partition \"%s\"", p->name);
		return shm_lock_err(&p->lock, rc, what);
	}
	return 0;
}

int part_lock(keel_t *h, struct part *p)
{
	if (__builtin_expect(h->readonly, 0) && shm_lock_holder_died(&p->lock))
		return refuse_repair(p);
	return lock_taken(h, p, shm_lock_acquire(&p->lock));
}

int part_trylock(keel_t *h, struct part *p)
{
	if (__builtin_expect(h->readonly, 0) && shm_lock_holder_died(&p->lock))
		return refuse_repair(p);
	int rc = shm_lock_try(&p->lock);
	return rc == SHM_LOCK_BUSY ? rc : lock_taken(h, p, rc);
}

void part_unlock(keel_t *h, struct part *p)
{
	shm_lock_release(&p->lock);
}
