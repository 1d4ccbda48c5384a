/*
 * peer_raw.c - the two "raw" peers: what the hardware gives with no store
 * around it.
 *
 * 1. A shared-memory hash table, the upper bound for gets.  It is a file in
 *    /dev/shm mapped MAP_SHARED, loaded once by the parent and read by
 *    forked readers through the inherited mapping (the file name is
 *    unlinked as soon as it is mapped).  Open addressing with
 *    linear probing, fixed size (no growth, no deletes, no locks: the
 *    readers start after the load and nobody writes during the run), at
 *    most 3/4 full.  A get hashes the key, probes, compares the key and
 *    copies the value to the caller's buffer, like keel_get.
 *
 *      file layout (native byte order; valid for this run only)
 *        offset  size  field
 *             0     8  magic RAW_MAGIC
 *             8     8  slots (a power of two)
 *            16     8  count
 *            24    40  zero
 *            64   128  slot[0], then slot[1] ... slot[slots - 1]
 *
 *      slot    offset  size  field
 *                   0    16  key
 *                  16     4  value length (100)
 *                  20     4  state: 0 empty, 1 full
 *                  24   100  value
 *                 124     4  zero
 *
 *    Its payload is 16 + 100 = 116 bytes per entry: the "raw" figure the
 *    memory target compares Keel with.  The mapping itself costs more
 *    (128 B slots, load factor); that is reported separately.
 *
 * 2. pwrite + fdatasync of one 4 KiB block at a time, at consecutive
 *    offsets of a preallocated, zero-filled and synced file in the bench
 *    directory (the same disk as the journals): the floor under any durable
 *    commit.  Overwriting written blocks needs no allocation in the file
 *    system, as a recycled journal segment does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define RAW_MAGIC 0x6b65656c72617731ull   /* "keelraw1" */
#define RAW_HEADER_BYTES 64u
#define RAW_SLOT_BYTES 128u
#define RAW_PROBES_MAX 4096u                /* bound on a probe sequence */
#define RAW_GETS_PER_BATCH 64u

struct raw_header {
	uint64_t magic;
	uint64_t slots;
	uint64_t count;
	uint8_t zero[40];
};

struct raw_slot {
	uint8_t key[BENCH_KEY_BYTES];
	uint32_t vlen;
	uint32_t state;
	uint8_t value[BENCH_VALUE_BYTES];
	uint8_t zero[4];
};

_Static_assert(sizeof(struct raw_header) == RAW_HEADER_BYTES, "raw header is 64 bytes");
_Static_assert(sizeof(struct raw_slot) == RAW_SLOT_BYTES, "raw slot is 128 bytes");
_Static_assert(offsetof(struct raw_slot, value) == 24, "raw value at offset 24");

static uint64_t raw_hash(const uint8_t *key)
{
	uint64_t a, b;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	a ^= b * 0x9e3779b97f4a7c15ull;
	a ^= a >> 32;
	a *= 0xd6e8feb86659fd93ull;
	a ^= a >> 29;
	return a;
}

static struct raw_slot *raw_slots(const struct bench_raw *r)
{
	return (struct raw_slot *)((char *)r->map + RAW_HEADER_BYTES);
}

/* The slot holding key, or the empty slot where it would go; NULL if the
 * probe bound is hit. */
static struct raw_slot *raw_probe(const struct bench_raw *r, const uint8_t *key)
{
	struct raw_slot *s = raw_slots(r);
	uint64_t mask = r->slots - 1, i = raw_hash(key) & mask;

	for (unsigned n = 0; n < RAW_PROBES_MAX; n++, i = (i + 1) & mask) {
		if (!s[i].state || memcmp(s[i].key, key, BENCH_KEY_BYTES) == 0)
			return &s[i];
	}
	return NULL;
}

int bench_raw_create(struct bench_raw *r)
{
	uint64_t slots = 1024;
	struct raw_header *h;
	int rc;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	while (slots * 3 < bench_cfg.keys * 4)
		slots <<= 1;
	if (snprintf(r->path, sizeof(r->path), "%s/keel-bench-raw.%d",
		     bench_cfg.arena_dir[0] ? bench_cfg.arena_dir : "/dev/shm", (int)getpid()) >=
	    (int)sizeof(r->path)) {
		r->path[0] = 0;
		return bench_fail(KEEL_E_INVAL, "raw table: --arena-dir %s is too long", bench_cfg.arena_dir);
	}
	r->fd = open(r->path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (r->fd < 0) {
		rc = bench_fail(KEEL_E_OS, "raw table: create %s: %s", r->path, strerror(errno));
		r->path[0] = 0;
		return rc;
	}
	r->map_bytes = RAW_HEADER_BYTES + slots * RAW_SLOT_BYTES;
	if (ftruncate(r->fd, (off_t)r->map_bytes) != 0) {
		rc = bench_fail(KEEL_E_OS, "raw table: size %s to %zu bytes: %s", r->path,
				r->map_bytes, strerror(errno));
		goto fail;
	}
	r->map = mmap(NULL, r->map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
	if (r->map == MAP_FAILED) {
		r->map = NULL;
		rc = bench_fail(KEEL_E_OS, "raw table: mmap %s (%zu bytes): %s", r->path,
				r->map_bytes, strerror(errno));
		goto fail;
	}
	/* The readers inherit the mapping across fork(), so the name can go
	 * now: a crash of keel-bench leaves nothing behind in /dev/shm. */
	if (unlink(r->path) != 0) {
		rc = bench_fail(KEEL_E_OS, "raw table: unlink %s: %s", r->path, strerror(errno));
		goto fail;
	}
	r->unlinked = 1;
	h = r->map;
	h->magic = RAW_MAGIC;
	h->slots = slots;
	r->slots = slots;
	return 0;
fail:
	bench_raw_destroy(r);
	return rc;
}

int bench_raw_load(struct bench_raw *r)
{
	struct raw_header *h = r->map;
	uint64_t st = bench_cfg.seed ^ 0x5241570aull;

	for (uint64_t i = 0; i < bench_cfg.keys; i++) {
		uint8_t key[BENCH_KEY_BYTES];
		struct raw_slot *s;

		bench_key(i, key);
		s = raw_probe(r, key);
		if (!s)
			return bench_fail(KEEL_E_LIMIT, "raw table: key %llu: no free slot within %u "
					  "probes of %llu slots", (unsigned long long)i,
					  RAW_PROBES_MAX, (unsigned long long)r->slots);
		if (s->state)
			return bench_fail(KEEL_E_STATE, "raw table: key %llu loaded twice",
					  (unsigned long long)i);
		memcpy(s->key, key, BENCH_KEY_BYTES);
		bench_value(i, 0, s->value);
		s->vlen = BENCH_VALUE_BYTES;
		s->state = 1;
		h->count = ++r->count;
	}
	for (unsigned n = 0; n < BENCH_VERIFY_SAMPLES; n++) {
		uint64_t i = bench_rand_next(&st) % bench_cfg.keys;
		uint8_t key[BENCH_KEY_BYTES];
		struct raw_slot *s;
		int rc;

		bench_key(i, key);
		s = raw_probe(r, key);
		if (!s || !s->state)
			return bench_fail(KEEL_E_NOTFOUND, "raw table: key %llu missing after load",
					  (unsigned long long)i);
		rc = bench_value_check(i, s->value, s->vlen);
		if (rc)
			return bench_fail_ctx(rc, "raw table after load");
	}
	return 0;
}

void bench_raw_destroy(struct bench_raw *r)
{
	if (r->map)
		munmap(r->map, r->map_bytes);
	if (r->path[0] && r->fd >= 0)
		close(r->fd);
	if (r->path[0] && !r->unlinked)
		unlink(r->path);
	r->map = NULL;
	r->fd = -1;
	r->path[0] = 0;
}

/* ---- raw get worker ------------------------------------------------------------- */

struct raw_get_state {
	const struct bench_raw *r;
	size_t pos;
	uint64_t sink;
};

static int raw_get_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	struct raw_get_state *s = calloc(1, sizeof(*s));

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "raw get worker: out of memory");
	s->r = ctx;
	s->pos = bench_seq_start(wid, n);
	*state = s;
	return 0;
}

/*
 * One get, shaped like keel_get: a call per get (never inlined into the
 * loop, as a library call is not), copying into the caller's buffer.
 */
static __attribute__((noinline)) int raw_get(const struct bench_raw *r, const void *key,
					     void *buf, size_t cap, size_t *vlen)
{
	const struct raw_slot *slot = raw_probe(r, key);

	if (!slot || !slot->state)
		return KEEL_E_NOTFOUND;
	memcpy(buf, slot->value, slot->vlen < cap ? slot->vlen : cap);
	*vlen = slot->vlen;
	return 0;
}

static int raw_get_batch(void *state, uint64_t *ops)
{
	struct raw_get_state *s = state;
	uint8_t buf[BENCH_VALUE_BYTES];

	for (unsigned i = 0; i < RAW_GETS_PER_BATCH; i++) {
		const uint8_t *key = bench_seq.keys + s->pos * BENCH_KEY_BYTES;
		size_t vlen;

		if (raw_get(s->r, key, buf, sizeof(buf), &vlen) != 0 || vlen != BENCH_VALUE_BYTES)
			return bench_fail(KEEL_E_NOTFOUND, "raw get: key %u not found",
					  bench_seq.index[s->pos]);
		s->sink += buf[0] + buf[BENCH_VALUE_BYTES - 1];
		s->pos = (s->pos + 1) & bench_seq.mask;
	}
	*ops += RAW_GETS_PER_BATCH;
	return 0;
}

static int raw_get_teardown(void *state)
{
	struct raw_get_state *s = state;

	/* The sink keeps the copies from being optimised away. */
	__asm__ volatile("" : : "r"(s ? s->sink : 0));
	free(s);
	return 0;
}

const struct bench_worker bench_raw_get_worker = {
	.name = "raw get",
	.setup = raw_get_setup,
	.batch = raw_get_batch,
	.teardown = raw_get_teardown,
};

/* ---- raw pwrite + fdatasync --------------------------------------------------------- */

#define DISK_BYTES_DEFAULT (64ull << 20)
#define DISK_BYTES_QUICK (8ull << 20)
#define DISK_FILL_BYTES (1u << 20)

int bench_disk_create(struct bench_disk *d, const char *dir)
{
	static uint8_t zero[DISK_FILL_BYTES];
	int rc;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	d->bytes = bench_cfg.quick ? DISK_BYTES_QUICK : DISK_BYTES_DEFAULT;
	rc = bench_path(d->path, dir, "raw-fdatasync.dat");
	if (rc)
		return rc;
	d->fd = open(d->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (d->fd < 0) {
		rc = bench_fail(KEEL_E_OS, "raw fdatasync: create %s: %s", d->path,
				strerror(errno));
		d->path[0] = 0;
		return rc;
	}
	for (uint64_t off = 0; off < d->bytes; off += DISK_FILL_BYTES) {
		ssize_t w = pwrite(d->fd, zero, DISK_FILL_BYTES, (off_t)off);

		if (w != (ssize_t)DISK_FILL_BYTES) {
			rc = bench_fail(w < 0 && errno == ENOSPC ? KEEL_E_NOSPC : KEEL_E_IO,
					"raw fdatasync: zero-filling %s at %llu: %s", d->path,
					(unsigned long long)off, w < 0 ? strerror(errno) : "short write");
			goto fail;
		}
	}
	if (fsync(d->fd) != 0) {
		rc = bench_fail(KEEL_E_IO, "raw fdatasync: fsync %s: %s", d->path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	bench_disk_destroy(d);
	return rc;
}

void bench_disk_destroy(struct bench_disk *d)
{
	if (d->path[0] && d->fd >= 0)
		close(d->fd);
	if (d->path[0])
		unlink(d->path);
	d->fd = -1;
	d->path[0] = 0;
}

struct disk_state {
	int fd;
	uint64_t bytes;
	uint64_t block;           /* next block index */
	uint64_t writes;
	uint8_t buf[BENCH_DISK_BLOCK] __attribute__((aligned(64)));
};

static int disk_setup(void *ctx, unsigned wid, unsigned n, void **state)
{
	const struct bench_disk *d = ctx;
	struct disk_state *s = calloc(1, sizeof(*s));

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "raw fdatasync worker: out of memory");
	s->fd = open(d->path, O_WRONLY | O_CLOEXEC);
	if (s->fd < 0) {
		free(s);
		return bench_fail(KEEL_E_OS, "raw fdatasync worker: open %s: %s", d->path,
				  strerror(errno));
	}
	s->bytes = d->bytes;
	s->block = (d->bytes / BENCH_DISK_BLOCK) * wid / n;
	memset(s->buf, 0xa5, sizeof(s->buf));
	*state = s;
	return 0;
}

static int disk_batch(void *state, uint64_t *ops)
{
	struct disk_state *s = state;
	uint64_t blocks = s->bytes / BENCH_DISK_BLOCK;
	off_t off = (off_t)((s->block % blocks) * BENCH_DISK_BLOCK);
	uint64_t t0 = bench_now_ns();
	ssize_t w;

	memcpy(s->buf, &s->writes, sizeof(s->writes));
	w = pwrite(s->fd, s->buf, BENCH_DISK_BLOCK, off);
	if (w != (ssize_t)BENCH_DISK_BLOCK)
		return bench_fail(KEEL_E_IO, "raw pwrite at %lld: %s", (long long)off,
				  w < 0 ? strerror(errno) : "short write");
	if (fdatasync(s->fd) != 0)
		return bench_fail(KEEL_E_IO, "raw fdatasync: %s", strerror(errno));
	bench_lat_record(bench_now_ns() - t0);
	s->block++;
	s->writes++;
	*ops += 1;
	return 0;
}

static int disk_teardown(void *state)
{
	struct disk_state *s = state;

	if (s) {
		close(s->fd);
		free(s);
	}
	return 0;
}

const struct bench_worker bench_disk_sync_worker = {
	.name = "raw pwrite+fdatasync",
	.setup = disk_setup,
	.batch = disk_batch,
	.teardown = disk_teardown,
};
