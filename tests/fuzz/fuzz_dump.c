/*
 * fuzz_dump.c - fuzz keel-dump's views and keel_check over damaged arenas,
 * and the journal record decoder over damaged payloads.
 *
 * A pristine arena is made once: a memory-mode store with four partitions,
 * text and binary keys, deletes (tombstones and retired versions), a clear,
 * and values large enough for LARGE page runs.  Each input then describes
 * damage to a copy of it; the copy is written to a file in /dev/shm and
 * keel-dump's own code (keel_dump_main, from tools/keel-dump.c built with
 * KEEL_DUMP_NO_MAIN) runs over it: every view as JSON or text, --check,
 * and --keys of one partition.  Any exit code is fine; a crash or a hang is
 * not.
 *
 * Input layout (one byte of mode, then the body):
 *   mode bit 0 set: DECODER - the body is a journal payload for
 *     keel_journal_decode; bit 1 makes magic, LSN and length agree with the
 *     payload, bit 2 also recomputes the commit checksum, so the fuzzer gets
 *     past them to the partition list and the operations.  Oracle: every key
 *     and value pointer handed to the callback lies inside the payload, and
 *     nops_decoded <= nops.
 *   mode bit 0 clear: ARENA - bit 1 selects text views instead of JSON, bit
 *     2 truncates the copy to (u32 at body[0]) % size bytes; the rest of the
 *     body is patches of 14 bytes: kind, zone, u32 position, u64 value.
 *       zone % 7: 0 header page, 1 process and reader slots, 2 the store's
 *         tables (partition index, descriptor page offsets, visibility
 *         states), 3 partition descriptors, 4 commit ring, 5 heap pages in
 *         use, 6 anywhere
 *       kind % 4: 0 XOR a byte with value | 1; 1 store an 8-aligned u64
 *         "link" value % file size (a plausible offset); 2 store the raw
 *         u64; 3 store the low u32
 *
 * Built two ways: with -DKEEL_LIBFUZZER as a libFuzzer target (CMake option
 * KEEL_FUZZ with clang: everything in-process, under ASan and UBSan), and as
 * a plain program for the default test suite: it makes seeded random damage
 * (a few hundred arenas by default, --iters), runs each in a forked child
 * under a 5 s alarm with its output sent to /dev/null, and counts the child
 * killed by a signal, or by the alarm twice in a row, as a failure, listing
 * each with its iteration; then it runs the decoder over --runs mutated records (built
 * from internal.h's format, and checked to decode exactly before they are
 * mutated).  --seed reproduces a run.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/internal.h"

int keel_dump_main(int argc, char **argv);

#define FZ_ALARM_S 5
#define FZ_FAILURES_MAX 5
#define FZ_PATCH_BYTES 14u

static char fz_dir[256];        /* the store directory */
static char fz_copy[256];       /* the damaged arena file */
static uint8_t *fz_image;       /* the pristine arena */
static size_t fz_size;
static struct {
	uint64_t lo, hi;
} fz_zones[7];
static int fz_codes[3];         /* keel-dump's exit codes for the last arena input */

static void fz_die(const char *what)
{
	fprintf(stderr, "fuzz_dump: %s: %s\n", what, keel_errmsg());
	abort();
}

/* ---- the pristine arena ---------------------------------------------------------------- */

static void fz_put(keel_t *h, const char *part, const void *k, size_t kl, const void *v, size_t vl)
{
	if (keel_put(h, part, k, kl, v, vl, NULL) != 0)
		fz_die("put");
}

static void fz_build(void)
{
	keel_options_t o;
	keel_t *h;
	char path[256];
	static uint8_t big[40000];

	snprintf(fz_dir, sizeof(fz_dir), "/tmp/keel-fuzz_dump-XXXXXX");
	if (!mkdtemp(fz_dir))
		fz_die("mkdtemp");
	keel_options_init(&o);
	o.durability = KEEL_DURABILITY_MEMORY;
	o.ring_bytes = 1u << 20;
	o.arena_bytes_max = 64ull << 20;
	if (keel_open(fz_dir, &o, &h) != 0)
		fz_die("open");
	for (unsigned p = 0; p < 4; p++) {
		char part[8];
		snprintf(part, sizeof(part), "p%u", p);
		for (unsigned i = 0; i < 150; i++) {
			char k[24];
			uint8_t v[40];
			size_t vl = 1 + (i * 13 + p) % sizeof(v);
			snprintf(k, sizeof(k), "key-%u-%u", p, i);
			for (size_t b = 0; b < vl; b++)
				v[b] = (uint8_t)(i % 3 ? 'a' + (b + i) % 26 : b * 31 + i);
			fz_put(h, part, k, strlen(k), v, vl);
			if (i % 4 == 1)
				fz_put(h, part, k, strlen(k), "new", 3);   /* an older version retired */
		}
		for (unsigned i = 0; i < 150; i += 5) {
			char k[24];
			snprintf(k, sizeof(k), "key-%u-%u", p, i);
			if (keel_del(h, part, k, strlen(k), NULL) != 0)
				fz_die("del");
		}
	}
	uint8_t bk[4] = { 0, 0xff, 7, 0 };
	fz_put(h, "p1", bk, sizeof(bk), big, sizeof(big));   /* a LARGE run */
	if (keel_clear(h, "p3", NULL) != 0)
		fz_die("clear");
	fz_put(h, "p3", "after-clear", 11, "x", 1);
	keel_close(h);

	if (keel_arena_path(fz_dir, &o, path, sizeof(path)) != 0)
		fz_die("arena path");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0)
		fz_die("open arena");
	fz_size = (size_t)sb.st_size;
	fz_image = malloc(fz_size);
	if (!fz_image || pread(fd, fz_image, fz_size, 0) != (ssize_t)fz_size)
		fz_die("read arena");
	close(fd);
	unlink(path);   /* the copies are opened with --arena */
	snprintf(fz_copy, sizeof(fz_copy), "/dev/shm/keel-fuzz_dump-%d", (int)getpid());

	/* Zones, from the pristine header. */
	const struct shm_hdr *hd = (const struct shm_hdr *)fz_image;
	uint64_t pages_off = hd->user_off + SHM_PART_INDEX_SLOTS * 4u, desc = 0;
	memcpy(&desc, fz_image + pages_off, 8);
	fz_zones[0].lo = 0, fz_zones[0].hi = sizeof(struct shm_hdr);
	fz_zones[1].lo = hd->procs_off, fz_zones[1].hi = hd->user_off;
	fz_zones[2].lo = hd->user_off, fz_zones[2].hi = hd->user_off + hd->user_bytes;
	fz_zones[3].lo = desc, fz_zones[3].hi = desc + SHM_PAGE_HEADER_BYTES + 4 * PART_BYTES;
	fz_zones[4].lo = hd->ring_off, fz_zones[4].hi = hd->ring_off + hd->ring_bytes;
	fz_zones[5].lo = hd->heap_off, fz_zones[5].hi = hd->galloc.bump;
	fz_zones[6].lo = 0, fz_zones[6].hi = fz_size;
	for (int z = 0; z < 7; z++) {
		if (fz_zones[z].hi > fz_size)
			fz_zones[z].hi = fz_size;
		if (fz_zones[z].lo >= fz_zones[z].hi)
			fz_zones[z].lo = 0, fz_zones[z].hi = fz_size;
	}
}

static void fz_cleanup(void)
{
	char path[600];

	if (fz_copy[0])
		unlink(fz_copy);
	snprintf(path, sizeof(path), "rm -rf '%s'", fz_dir);
	if (fz_dir[0] && strncmp(fz_dir, "/tmp/keel-fuzz_dump-", 20) == 0)
		(void)!system(path);
}

/* ---- the target -------------------------------------------------------------------------- */

struct dec_check {
	const uint8_t *lo, *hi;
	uint64_t sum;
};

static int dec_cb(void *ctx, const keel_journal_record_t *r)
{
	struct dec_check *c = ctx;

	if (r->nops_decoded > r->nops || r->nparts > KEEL_TXN_PARTITIONS_MAX + 1)
		fz_die("decoder: more ops or partitions than announced");
	for (uint32_t i = 0; i < r->nops_decoded; i++) {
		const keel_journal_op_t *op = &r->ops[i];
		const uint8_t *k = op->key, *v = op->value;
		if (k < c->lo || k + op->klen > c->hi || v < c->lo || v + op->vlen > c->hi)
			fz_die("decoder: a key or value outside the payload");
		for (uint32_t b = 0; b < op->klen; b++)
			c->sum += k[b];
		for (uint32_t b = 0; b < op->vlen; b++)
			c->sum += v[b];
	}
	return 0;
}

static void run_decoder(unsigned mode, const uint8_t *body, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);
	struct dec_check c;

	if (!p)
		fz_die("malloc");
	memcpy(p, body, len);
	if ((mode & 2) && len >= sizeof(struct rec)) {
		struct rec r;
		memcpy(&r, p, sizeof(r));
		r.magic = REC_MAGIC;
		r.lsn = 77;
		r.len = (uint32_t)len;
		if (mode & 4) {
			r.state = REC_COMPLETE;
			r.checksum = XXH3_64bits(p + sizeof(r), len - sizeof(r));
		}
		memcpy(p, &r, sizeof(r));
	}
	c.lo = p;
	c.hi = p + len;
	c.sum = 0;
	int rc = keel_journal_decode(77, p, len, dec_cb, &c);
	if (rc != 0 && rc != KEEL_E_NOMEM)
		fz_die("decoder: unexpected return");
	free(p);
}

static void write_copy(const uint8_t *img, size_t len)
{
	int fd;

	unlink(fz_copy);
	fd = open(fz_copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0)
		fz_die("create the damaged copy");
	for (size_t off = 0; off < len;) {
		ssize_t n = pwrite(fd, img + off, len - off, (off_t)off);
		if (n <= 0)
			fz_die("write the damaged copy");
		off += (size_t)n;
	}
	close(fd);
}

static void run_arena(unsigned mode, const uint8_t *body, size_t len)
{
	uint8_t *img = malloc(fz_size);
	size_t size = fz_size;

	if (!img)
		fz_die("malloc");
	memcpy(img, fz_image, fz_size);
	if ((mode & 4) && len >= 4) {
		uint32_t t;
		memcpy(&t, body, 4);
		size = t % fz_size;
		body += 4;
		len -= 4;
	}
	for (size_t i = 0; i + FZ_PATCH_BYTES <= len; i += FZ_PATCH_BYTES) {
		uint8_t kind = body[i], zone = body[i + 1] % 7;
		uint32_t pos;
		uint64_t val;
		memcpy(&pos, body + i + 2, 4);
		memcpy(&val, body + i + 6, 8);
		uint64_t lo = fz_zones[zone].lo, span = fz_zones[zone].hi - fz_zones[zone].lo;
		uint64_t off = lo + pos % span;
		switch (kind % 4) {
		case 0:
			img[off] ^= (uint8_t)(val | 1);
			break;
		case 1:
			off &= ~7ull;
			val = (val % fz_size) & ~7ull;
			if (off + 8 <= fz_size)
				memcpy(img + off, &val, 8);
			break;
		case 2:
			off &= ~7ull;
			if (off + 8 <= fz_size)
				memcpy(img + off, &val, 8);
			break;
		default: {
			uint32_t v32 = (uint32_t)val;
			off &= ~3ull;
			if (off + 4 <= fz_size)
				memcpy(img + off, &v32, 4);
		}
		}
	}
	write_copy(img, size);
	free(img);

	char *views[] = { "keel-dump", mode & 2 ? "--view" : "--json", mode & 2 ? "header,processes,locks,partitions,allocator,journal" : "--json",
			  "--arena", fz_copy, fz_dir, NULL };
	char *check[] = { "keel-dump", "--check", "--arena", fz_copy, fz_dir, NULL };
	char *keys[] = { "keel-dump", "--keys", "p1", "--arena", fz_copy, fz_dir, NULL };
	fz_codes[0] = keel_dump_main(6, views);
	fz_codes[1] = keel_dump_main(5, check);
	fz_codes[2] = keel_dump_main(6, keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1u << 16)
		return 0;
	if (data[0] & 1)
		run_decoder(data[0], data + 1, size - 1);
	else
		run_arena(data[0], data + 1, size - 1);
	return 0;
}

#ifdef KEEL_LIBFUZZER
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fz_build();
	atexit(fz_cleanup);
	/* keel-dump's output is not what is fuzzed. */
	if (!freopen("/dev/null", "w", stdout))
		fz_die("stdout to /dev/null");
	return 0;
}
#else
/* ---- the plain driver: seeded damage for the default test suite -------------------------- */

static uint64_t fz_state;

static uint64_t fz_rand(void)
{
	uint64_t z = (fz_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* A commit record in the ring's format (internal.h), built independently of
 * commit.c: nparts ids, then nops ops, with the checksum set. */
static size_t make_record(uint8_t *buf, size_t cap, unsigned *nops_out)
{
	unsigned nparts = 1 + (unsigned)(fz_rand() % 3), nops = 1 + (unsigned)(fz_rand() % 6);
	struct rec r;
	size_t off = sizeof(r);

	memset(buf, 0, cap);
	for (unsigned i = 0; i < nparts; i++) {
		uint32_t id = (uint32_t)i;
		memcpy(buf + off, &id, 4);
		off += 4;
	}
	off = sizeof(r) + align_up(nparts * 4u, 8);
	for (unsigned i = 0; i < nops; i++) {
		struct rec_op op;
		memset(&op, 0, sizeof(op));
		op.type = (uint8_t)(1 + fz_rand() % 4);
		op.part = (uint32_t)(fz_rand() % nparts);
		op.klen = op.type == OP_CLEAR ? 0 : 1 + (uint32_t)(fz_rand() % 40);
		op.vlen = op.type == OP_PUT ? (uint32_t)(fz_rand() % 200) : 0;
		op.version = fz_rand() % 9;
		if (off + align_up(sizeof(op) + op.klen + op.vlen, 8) > cap)
			break;
		memcpy(buf + off, &op, sizeof(op));
		for (uint32_t b = 0; b < op.klen + op.vlen; b++)
			buf[off + sizeof(op) + b] = (uint8_t)('a' + (b + i) % 26);
		off += align_up(sizeof(op) + op.klen + op.vlen, 8);
		*nops_out = i + 1;
	}
	off = align_up(off, REC_ALIGN);
	memset(&r, 0, sizeof(r));
	r.magic = REC_MAGIC;
	r.state = REC_COMPLETE;
	r.len = (uint32_t)off;
	r.nops = *nops_out;
	r.lsn = 77;
	r.pid = 1234;
	r.nparts = nparts;
	r.durability = KEEL_DURABILITY_SYNC;
	r.checksum = XXH3_64bits(buf + sizeof(r), off - sizeof(r));
	memcpy(buf, &r, sizeof(r));
	return off;
}

struct exact {
	unsigned nops;
	int ok;
};

static int exact_cb(void *ctx, const keel_journal_record_t *r)
{
	struct exact *e = ctx;
	e->ok = r->valid && !r->is_void && r->lsn == 77 && r->pid == 1234 && r->nops == e->nops &&
		r->nops_decoded == e->nops;
	return 0;
}

static int decoder_runs(unsigned long runs)
{
	static uint8_t buf[1 + 8192];

	for (unsigned long i = 0; i < runs; i++) {
		unsigned nops = 0;
		size_t len = make_record(buf + 1, sizeof(buf) - 1, &nops);
		struct exact e = { nops, 0 };
		if (keel_journal_decode(77, buf + 1, len, exact_cb, &e) != 0 || !e.ok) {
			fprintf(stderr, "fuzz_dump: decoder run %lu: an intact record of %u ops does not decode exactly\n",
				i, nops);
			return 1;
		}
		unsigned n = 1 + (unsigned)(fz_rand() % 6);
		for (unsigned k = 0; k < n; k++) {
			size_t at = 1 + (size_t)(fz_rand() % len);
			switch (fz_rand() % 3) {
			case 0: buf[at] ^= (uint8_t)(1u << (fz_rand() % 8)); break;
			case 1: buf[at] = (uint8_t)fz_rand(); break;
			default: len = at; break;   /* truncate */
			}
		}
		buf[0] = (uint8_t)(1 | (fz_rand() % 2 ? 2 : 0) | (fz_rand() % 2 ? 4 : 0));
		LLVMFuzzerTestOneInput(buf, len + 1);
	}
	return 0;
}

static const char *status_str(int st, char *buf, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(buf, cap, "exited with %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, cap, "killed by signal %d (%s)%s", WTERMSIG(st), strsignal(WTERMSIG(st)),
			 WTERMSIG(st) == SIGALRM ? ": hung" : "");
	else
		snprintf(buf, cap, "status 0x%x", st);
	return buf;
}

/* What the child reports: bit 0 the views ran (exit 0), bit 1 the open was
 * refused (3+N), bit 2 --check found damage (exit 1).  Anything else (a
 * signal, the alarm, 8 and up) is a failure. */
enum { OUT_VIEWS = 1, OUT_REFUSED = 2, OUT_DAMAGE = 4, OUT_MAX = 8 };

/* Run one input in a child under an alarm, its output discarded. */
static int in_child(const uint8_t *in, size_t len, int *st)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fz_die("fork");
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		alarm(FZ_ALARM_S);
		LLVMFuzzerTestOneInput(in, len);
		_exit((fz_codes[0] == 0 ? OUT_VIEWS : 0) | (fz_codes[0] >= 3 ? OUT_REFUSED : 0) |
		      (fz_codes[1] == 1 ? OUT_DAMAGE : 0));
	}
	while (waitpid(pid, st, 0) < 0)
		if (errno != EINTR)
			fz_die("waitpid");
	return WIFEXITED(*st) && WEXITSTATUS(*st) < OUT_MAX;
}

int main(int argc, char **argv)
{
	static uint8_t in[1 + 4 + 16 * FZ_PATCH_BYTES];
	uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
	unsigned long iters = 300, runs = 20000;
	unsigned failures = 0, views = 0, refused = 0, damage = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--iters") && i + 1 < argc) {
			iters = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
			runs = strtoul(argv[++i], NULL, 0);
		} else if (!strcmp(argv[i], "--help")) {
			printf("usage: %s [--seed N] [--iters N] [--runs N]\n"
			       "Run keel-dump's views, --check and --keys over N randomly damaged arena copies\n"
			       "(each in a child under a %d s alarm: a signal or a hang fails), then the\n"
			       "journal record decoder over --runs damaged records.  Exit: 0 pass, 1 fail.\n"
			       "libFuzzer build: KEEL_FUZZ=ON.\n", argv[0], FZ_ALARM_S);
			return 0;
		} else {
			fprintf(stderr, "%s: unknown argument %s (try --help)\n", argv[0], argv[i]);
			return 2;
		}
	}
	printf("fuzz_dump: seed %" PRIu64 " (reproduce with --seed %" PRIu64 "), %lu arenas, %lu records\n", seed,
	       seed, iters, runs);
	fflush(stdout);
	fz_state = seed;
	fz_build();
	atexit(fz_cleanup);

	/* The pristine arena itself: every view runs and --check finds it sound. */
	{
		int st;
		uint8_t clean[1] = { 0 };
		if (!in_child(clean, 1, &st) || !(WEXITSTATUS(st) & OUT_VIEWS) || (WEXITSTATUS(st) & OUT_DAMAGE)) {
			char sb[96];
			fprintf(stderr, "fuzz_dump: the pristine arena: the dump %s\n", status_str(st, sb, sizeof(sb)));
			return 1;
		}
		write_copy(fz_image, fz_size);
		char *check[] = { "keel-dump", "--check", "--arena", fz_copy, fz_dir, NULL };
		int fd = dup(1), nul = open("/dev/null", O_WRONLY);
		fflush(stdout);
		dup2(nul, 1);
		int code = keel_dump_main(5, check);
		fflush(stdout);
		dup2(fd, 1);
		close(fd);
		close(nul);
		if (code != 0) {
			fprintf(stderr, "fuzz_dump: --check on the pristine arena exited %d, expected 0 (sound)\n", code);
			return 1;
		}
	}

	uint64_t t0 = (uint64_t)time(NULL);
	for (unsigned long it = 0; it < iters && failures < FZ_FAILURES_MAX; it++) {
		size_t len = 1;
		unsigned np = 1 + (unsigned)(fz_rand() % 8);
		in[0] = (uint8_t)((fz_rand() % 2 ? 2 : 0) | (it % 10 == 9 ? 4 : 0));
		if (in[0] & 4) {
			uint32_t t = (uint32_t)(fz_rand() % fz_size);
			if (fz_rand() % 2)
				t &= ~4095u;
			memcpy(in + len, &t, 4);
			len += 4;
		}
		for (unsigned p = 0; p < np; p++) {
			uint8_t *q = in + len;
			q[0] = (uint8_t)fz_rand();
			q[1] = (uint8_t)(it % 7);   /* each zone in turn */
			uint32_t pos = (uint32_t)fz_rand();
			uint64_t val = fz_rand();
			memcpy(q + 2, &pos, 4);
			memcpy(q + 6, &val, 8);
			len += FZ_PATCH_BYTES;
		}
		int st, ok = in_child(in, len, &st);
		if (!ok && WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) {
			/* A hang must hang again: on a loaded machine a child may
			 * just not have been scheduled for FZ_ALARM_S. */
			fprintf(stderr, "fuzz_dump: damaged arena %lu took over %d s; running it again\n", it,
				FZ_ALARM_S);
			ok = in_child(in, len, &st);
		}
		if (ok) {
			views += !!(WEXITSTATUS(st) & OUT_VIEWS);
			refused += !!(WEXITSTATUS(st) & OUT_REFUSED);
			damage += !!(WEXITSTATUS(st) & OUT_DAMAGE);
		} else {
			char sb[96];
			fprintf(stderr, "fuzz_dump: damaged arena %lu (zone %u, %u patches%s): the dump %s\n", it,
				(unsigned)(it % 7), np, in[0] & 4 ? ", truncated" : "", status_str(st, sb, sizeof(sb)));
			failures++;
		}
	}
	printf("fuzz_dump: %lu damaged arenas in %" PRIu64 " s: views ran on %u, open refused %u, "
	       "--check found damage in %u; %u crashed or hung\n", iters, (uint64_t)time(NULL) - t0, views,
	       refused, damage, failures);

	/* The decoder, in one child (a crash is reported, not fatal to the report). */
	int st;
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		alarm(120);
		_exit(decoder_runs(runs));
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			fz_die("waitpid");
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char sb[96];
		fprintf(stderr, "fuzz_dump: the decoder runs %s\n", status_str(st, sb, sizeof(sb)));
		failures++;
	} else {
		printf("fuzz_dump: %lu damaged journal records decoded\n", runs);
	}
	if (failures) {
		printf("fuzz_dump: FAIL (rerun with --seed %" PRIu64 ")\n", seed);
		return 1;
	}
	printf("fuzz_dump: PASS\n");
	return 0;
}
#endif
