/*
 * jio_sim.c - a simulated disk behind the journal's I/O vtable, for crash and
 * fault-injection tests and for the fuzzers.
 *
 * Model
 * -----
 * The disk holds inodes and a namespace, each in two versions: what is
 * durable and what the running process sees.
 *
 *   inode:     `dur` (durable bytes), `cur` (current bytes) and `pend`, the
 *              ordered list of operations that turned dur into cur and are
 *              not yet synced: writes (offset, bytes) and size changes
 *              (truncate, preallocate).  fdatasync of the inode makes cur
 *              durable: dur = cur, pend emptied.
 *   namespace: `names_dur` and `names_cur` map a path to an inode.  Creating,
 *              renaming, unlinking and mkdir change names_cur at once and
 *              append a directory op to `dirops`, tagged with the directory
 *              it lives in; fsync of that directory applies its ops to
 *              names_dur, in order.
 *
 * Crash (jio_sim_crash)
 * ---------------------
 * The post-crash disk is the durable state plus some of the unsynced work:
 *   - directory ops: a random prefix of the pending list survives, as a
 *     journaling filesystem commits metadata in order (all with KEEP, none
 *     with DROP);
 *   - each unsynced write, per the policy: kept whole, dropped, torn (each
 *     512-byte sector it touches kept or dropped independently) or garbled
 *     (each sector it touches becomes random bytes over the whole sector,
 *     including bytes of the sector outside the write, as a torn
 *     read-modify-write of a partial sector would leave it; other sectors
 *     kept or dropped); size changes are kept or dropped.
 * Choices come from a splitmix64 stream seeded by `seed`, in a fixed order,
 * so a seed reproduces a crash.  Every handle is invalid afterwards.
 *
 * Faults (jio_sim_fail)
 * ---------------------
 * Operations are numbered from 0 in call order: every vtable call except
 * close and destroy is one operation, and inside a batched write each write
 * and the trailing fdatasync count one each, so a test can fail "the sync of
 * the third flush".  A failed write changes nothing (EIO, ENOSPC) or, for a
 * short write, applies its first half as an unsynced write and reports
 * KEEL_E_IO.  A failed fdatasync leaves the writes unsynced, as Linux may
 * have dropped them.
 *
 * Everything lives in process memory; one thread at a time.  Paths are
 * compared as strings after removing repeated and trailing slashes; "/" and
 * "." exist implicitly.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "jio.h"

#define SIM_INODES_MAX 65536u
#define SIM_HANDLES_MAX 4096u

enum sim_pend_kind { PEND_WRITE = 1, PEND_SIZE = 2 };

struct sim_pend {
	int kind;
	uint64_t off;  /* WRITE: offset; SIZE: the new size */
	size_t len;    /* WRITE: bytes */
	uint8_t *data; /* WRITE: malloc'd copy */
};

struct sim_inode {
	int is_dir;
	uint8_t *dur;
	size_t dur_len;
	uint8_t *cur;
	size_t cur_len, cur_cap;
	struct sim_pend *pend;
	size_t npend, pend_cap;
};

struct sim_name {
	char *path;
	int ino;
};

struct sim_names {
	struct sim_name *v;
	size_t n, cap;
};

enum sim_dirop_kind { DIROP_LINK = 1, DIROP_RENAME = 2, DIROP_UNLINK = 3 };

struct sim_dirop {
	int kind;
	char *a;   /* LINK/UNLINK: the path; RENAME: from */
	char *b;   /* RENAME: to */
	char *dir; /* the directory whose fsync makes it durable */
	int ino;   /* LINK: the inode */
};

struct sim_handle {
	int ino; /* -1: free or invalid */
	int writable;
};

struct jio_sim {
	struct jio io;
	struct sim_inode **ino;
	size_t nino, ino_cap;
	struct sim_names names_dur, names_cur;
	struct sim_dirop *dirops;
	size_t ndirops, dirops_cap;
	struct sim_handle *h;
	size_t nh;
	uint64_t ops, faults, syncs;
	uint64_t fail_at;
	int fail_kind, fail_persistent;
};

static struct jio_sim *sim_of(jio_t *io) { return (struct jio_sim *)io; }

static uint64_t sim_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* ---- faults ----------------------------------------------------------------------- */

/* Count one operation; return the fault kind to apply to it (NONE mostly). */
static int sim_tick(struct jio_sim *s)
{
	uint64_t i = s->ops++;

	if (s->fail_kind == JIO_FAULT_NONE)
		return JIO_FAULT_NONE;
	if (i == s->fail_at || (s->fail_persistent && i > s->fail_at)) {
		s->faults++;
		return s->fail_kind;
	}
	return JIO_FAULT_NONE;
}

static int sim_fault_err(int kind, uint64_t op, const char *what, const char *path)
{
	int e = kind == JIO_FAULT_ENOSPC ? ENOSPC : EIO;
	char where[64];

	snprintf(where, sizeof where, "(sim op %" PRIu64 ")", op);
	return jio_err_errno(e, what, path ? path : where, UINT64_MAX);
}

void jio_sim_fail(jio_sim_t *s, uint64_t op_index, int kind, int persistent)
{
	s->fail_at = op_index;
	s->fail_kind = kind;
	s->fail_persistent = persistent;
}

uint64_t jio_sim_ops(const jio_sim_t *s) { return s->ops; }
uint64_t jio_sim_faults(const jio_sim_t *s) { return s->faults; }
uint64_t jio_sim_syncs(const jio_sim_t *s) { return s->syncs; }

/* ---- paths and names ----------------------------------------------------------------- */

/* Canonical copy of a path: no repeated or trailing slashes. */
static char *sim_canon(const char *path)
{
	size_t n = strlen(path);
	char *c = malloc(n + 1);
	size_t j = 0;

	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (path[i] == '/' && j > 0 && c[j - 1] == '/')
			continue;
		c[j++] = path[i];
	}
	while (j > 1 && c[j - 1] == '/')
		j--;
	c[j] = 0;
	return c;
}

static char *sim_parent(const char *canon)
{
	char buf[JIO_PATH_MAX];

	if (jio_dirname(buf, sizeof buf, canon) < 0)
		return NULL;
	return strdup(buf);
}

static int sim_root(const char *canon) { return !strcmp(canon, "/") || !strcmp(canon, "."); }

static ssize_t names_find(const struct sim_names *ns, const char *path)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->v[i].path, path))
			return (ssize_t)i;
	return -1;
}

static int names_set(struct sim_names *ns, const char *path, int ino)
{
	ssize_t i = names_find(ns, path);

	if (i >= 0) {
		ns->v[i].ino = ino;
		return 0;
	}
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		struct sim_name *v = realloc(ns->v, cap * sizeof *v);

		if (!v)
			return KEEL_E_NOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n].path = strdup(path);
	if (!ns->v[ns->n].path)
		return KEEL_E_NOMEM;
	ns->v[ns->n].ino = ino;
	ns->n++;
	return 0;
}

static void names_del(struct sim_names *ns, const char *path)
{
	ssize_t i = names_find(ns, path);

	if (i < 0)
		return;
	free(ns->v[i].path);
	ns->v[i] = ns->v[ns->n - 1];
	ns->n--;
}

static void names_free(struct sim_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].path);
	free(ns->v);
	memset(ns, 0, sizeof *ns);
}

/* Whether `dir` exists as a directory in the current namespace. */
static int sim_dir_exists(struct jio_sim *s, const char *dir)
{
	ssize_t i;

	if (sim_root(dir))
		return 1;
	i = names_find(&s->names_cur, dir);
	return i >= 0 && s->ino[s->names_cur.v[i].ino]->is_dir;
}

/* Apply one directory op to a namespace; an op that no longer applies (its
 * source is gone) is skipped. */
static int dirop_apply(struct sim_names *ns, const struct sim_dirop *op)
{
	ssize_t i;

	switch (op->kind) {
	case DIROP_LINK:
		return names_set(ns, op->a, op->ino);
	case DIROP_UNLINK:
		names_del(ns, op->a);
		return 0;
	case DIROP_RENAME:
		i = names_find(ns, op->a);
		if (i < 0)
			return 0;
		{
			int ino = ns->v[i].ino;
			int rc;

			names_del(ns, op->a);
			rc = names_set(ns, op->b, ino);
			return rc;
		}
	}
	return 0;
}

static void dirop_free(struct sim_dirop *op)
{
	free(op->a);
	free(op->b);
	free(op->dir);
}

static int dirop_push(struct jio_sim *s, int kind, const char *a, const char *b, int ino)
{
	struct sim_dirop op = { .kind = kind, .ino = ino };

	if (s->ndirops == s->dirops_cap) {
		size_t cap = s->dirops_cap ? s->dirops_cap * 2 : 16;
		struct sim_dirop *v = realloc(s->dirops, cap * sizeof *v);

		if (!v)
			return KEEL_E_NOMEM;
		s->dirops = v;
		s->dirops_cap = cap;
	}
	op.a = strdup(a);
	op.b = b ? strdup(b) : NULL;
	op.dir = sim_parent(b ? b : a);
	if (!op.a || (b && !op.b) || !op.dir) {
		dirop_free(&op);
		return KEEL_E_NOMEM;
	}
	s->dirops[s->ndirops++] = op;
	return dirop_apply(&s->names_cur, &op);
}

/* ---- inodes ----------------------------------------------------------------------- */

static int ino_new(struct jio_sim *s, int is_dir)
{
	struct sim_inode *n;

	if (s->nino >= SIM_INODES_MAX)
		return KEEL_E_LIMIT;
	if (s->nino == s->ino_cap) {
		size_t cap = s->ino_cap ? s->ino_cap * 2 : 16;
		struct sim_inode **v = realloc(s->ino, cap * sizeof *v);

		if (!v)
			return KEEL_E_NOMEM;
		s->ino = v;
		s->ino_cap = cap;
	}
	n = calloc(1, sizeof *n);
	if (!n)
		return KEEL_E_NOMEM;
	n->is_dir = is_dir;
	s->ino[s->nino] = n;
	return (int)s->nino++;
}

static void ino_clear_pend(struct sim_inode *n)
{
	for (size_t i = 0; i < n->npend; i++)
		free(n->pend[i].data);
	n->npend = 0;
}

static void ino_free(struct sim_inode *n)
{
	ino_clear_pend(n);
	free(n->pend);
	free(n->dur);
	free(n->cur);
	free(n);
}

static int buf_reserve(uint8_t **buf, size_t *cap, size_t need)
{
	size_t c = *cap ? *cap : 4096;
	uint8_t *b;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	b = realloc(*buf, c);
	if (!b)
		return KEEL_E_NOMEM;
	*buf = b;
	*cap = c;
	return 0;
}

/* Resize cur to len, zero-filling growth. */
static int cur_resize(struct sim_inode *n, size_t len)
{
	if (len > n->cur_len) {
		int rc = buf_reserve(&n->cur, &n->cur_cap, len);

		if (rc < 0)
			return rc;
		memset(n->cur + n->cur_len, 0, len - n->cur_len);
	}
	n->cur_len = len;
	return 0;
}

static int pend_push(struct sim_inode *n, struct sim_pend p)
{
	if (n->npend == n->pend_cap) {
		size_t cap = n->pend_cap ? n->pend_cap * 2 : 16;
		struct sim_pend *v = realloc(n->pend, cap * sizeof *v);

		if (!v)
			return KEEL_E_NOMEM;
		n->pend = v;
		n->pend_cap = cap;
	}
	n->pend[n->npend++] = p;
	return 0;
}

static int ino_write(struct sim_inode *n, uint64_t off, const void *buf, size_t len)
{
	struct sim_pend p = { .kind = PEND_WRITE, .off = off, .len = len };
	int rc;

	if (off > SIZE_MAX / 2 || len > SIZE_MAX / 2)
		return KEEL_E_INVAL;
	if (off + len > n->cur_len && (rc = cur_resize(n, (size_t)(off + len))) < 0)
		return rc;
	memcpy(n->cur + off, buf, len);
	p.data = malloc(len ? len : 1);
	if (!p.data)
		return KEEL_E_NOMEM;
	memcpy(p.data, buf, len);
	rc = pend_push(n, p);
	if (rc < 0)
		free(p.data);
	return rc;
}

static int ino_setsize(struct sim_inode *n, uint64_t size)
{
	struct sim_pend p = { .kind = PEND_SIZE, .off = size };
	int rc;

	if (size > SIZE_MAX / 2)
		return KEEL_E_INVAL;
	rc = cur_resize(n, (size_t)size);
	if (rc < 0)
		return rc;
	return pend_push(n, p);
}

static int ino_sync(struct sim_inode *n)
{
	uint8_t *d = malloc(n->cur_len ? n->cur_len : 1);

	if (!d)
		return KEEL_E_NOMEM;
	if (n->cur_len)
		memcpy(d, n->cur, n->cur_len);
	free(n->dur);
	n->dur = d;
	n->dur_len = n->cur_len;
	ino_clear_pend(n);
	return 0;
}

/* ---- the vtable ----------------------------------------------------------------------- */

static struct sim_inode *sim_handle(struct jio_sim *s, int fh)
{
	if (fh < 0 || (size_t)fh >= s->nh || s->h[fh].ino < 0)
		return NULL;
	return s->ino[s->h[fh].ino];
}

static int sim_badfh(int fh)
{
	return jio_err(KEEL_E_INVAL, "sim: file handle %d is not open (closed, or lost in a crash)", fh);
}

static int sim_open(jio_t *io, const char *path, unsigned flags, int *fh)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *c = NULL, *dir = NULL;
	ssize_t i;
	int ino, rc = 0;
	size_t slot;

	if (fault)
		return sim_fault_err(fault, op, "open", path);
	c = sim_canon(path);
	dir = c ? sim_parent(c) : NULL;
	if (!c || !dir) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	i = names_find(&s->names_cur, c);
	if (i >= 0 && (flags & JIO_CREATE) && (flags & JIO_EXCL)) {
		rc = jio_err_errno(EEXIST, "open", path, UINT64_MAX);
		goto out;
	}
	if (i < 0 && !(flags & JIO_CREATE)) {
		rc = jio_err_errno(ENOENT, "open", path, UINT64_MAX);
		goto out;
	}
	if (i >= 0 && s->ino[s->names_cur.v[i].ino]->is_dir) {
		rc = jio_err_errno(EISDIR, "open", path, UINT64_MAX);
		goto out;
	}
	if (i < 0) {
		if (!sim_dir_exists(s, dir)) {
			rc = jio_err_errno(ENOENT, "open (no parent directory)", path, UINT64_MAX);
			goto out;
		}
		ino = ino_new(s, 0);
		if (ino < 0 || (rc = dirop_push(s, DIROP_LINK, c, NULL, ino)) < 0) {
			rc = jio_err(ino < 0 ? ino : rc, "sim: cannot create %s", path);
			goto out;
		}
	} else {
		ino = s->names_cur.v[i].ino;
	}
	if ((flags & JIO_TRUNC) && s->ino[ino]->cur_len > 0 &&
	    (rc = ino_setsize(s->ino[ino], 0)) < 0)
		goto out;
	for (slot = 0; slot < s->nh; slot++)
		if (s->h[slot].ino < 0)
			break;
	if (slot == s->nh) {
		struct sim_handle *v;

		if (s->nh >= SIM_HANDLES_MAX) {
			rc = jio_err(KEEL_E_LIMIT, "sim: more than %u open files", SIM_HANDLES_MAX);
			goto out;
		}
		v = realloc(s->h, (s->nh + 1) * sizeof *v);
		if (!v) {
			rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
			goto out;
		}
		s->h = v;
		s->nh++;
	}
	s->h[slot].ino = ino;
	s->h[slot].writable = (flags & JIO_RDWR) != 0;
	*fh = (int)slot;
out:
	free(c);
	free(dir);
	return rc;
}

static int sim_close(jio_t *io, int fh)
{
	struct jio_sim *s = sim_of(io);

	if (!sim_handle(s, fh))
		return sim_badfh(fh);
	s->h[fh].ino = -1;
	return 0;
}

static int sim_pread(jio_t *io, int fh, void *buf, size_t len, uint64_t off, size_t *got)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	struct sim_inode *n = sim_handle(s, fh);

	if (!n)
		return sim_badfh(fh);
	if (fault)
		return sim_fault_err(fault, op, "pread", NULL);
	*got = 0;
	if (off >= n->cur_len)
		return 0;
	*got = n->cur_len - off < len ? (size_t)(n->cur_len - off) : len;
	memcpy(buf, n->cur + off, *got);
	return 0;
}

static int sim_do_sync(struct jio_sim *s, struct sim_inode *n, uint64_t op, int fault)
{
	if (fault)
		return sim_fault_err(fault, op, "fdatasync", NULL);
	s->syncs++;
	return ino_sync(n);
}

static int sim_write(jio_t *io, int fh, const struct jio_wr *w, unsigned nw, unsigned flags)
{
	struct jio_sim *s = sim_of(io);
	struct sim_inode *n = sim_handle(s, fh);
	uint64_t op;
	int fault, rc;

	if (!n)
		return sim_badfh(fh);
	if (!s->h[fh].writable)
		return jio_err(KEEL_E_INVAL, "sim: write to a read-only handle %d", fh);
	if (nw == 0 || nw > JIO_BATCH_MAX)
		return jio_err(KEEL_E_INVAL, "jio write: %u writes in a batch (1..%u)", nw, JIO_BATCH_MAX);
	for (unsigned i = 0; i < nw; i++) {
		if (w[i].len == 0 || w[i].len > JIO_WRITE_BYTES_MAX || !w[i].buf)
			return jio_err(KEEL_E_INVAL, "jio write: bad length %zu in batch slot %u",
				       w[i].len, i);
		op = s->ops;
		fault = sim_tick(s);
		if (fault == JIO_FAULT_SHORT) {
			size_t half = w[i].len / 2;

			if (half > 0 && (rc = ino_write(n, w[i].off, w[i].buf, half)) < 0)
				return jio_err(rc, "sim: out of memory");
			return jio_err(KEEL_E_IO,
				       "short write at offset %" PRIu64 ": %zu of %zu bytes written "
				       "(sim op %" PRIu64 ")",
				       w[i].off, half, w[i].len, op);
		}
		if (fault)
			return sim_fault_err(fault, op, "write", NULL);
		rc = ino_write(n, w[i].off, w[i].buf, w[i].len);
		if (rc < 0)
			return jio_err(rc, "sim: cannot write %zu bytes at offset %" PRIu64, w[i].len,
				       w[i].off);
	}
	if (flags & JIO_W_DATASYNC) {
		op = s->ops;
		fault = sim_tick(s);
		return sim_do_sync(s, n, op, fault);
	}
	return 0;
}

static int sim_fdatasync(jio_t *io, int fh)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	struct sim_inode *n = sim_handle(s, fh);

	if (!n)
		return sim_badfh(fh);
	return sim_do_sync(s, n, op, fault);
}

static int sim_preallocate(jio_t *io, int fh, uint64_t off, uint64_t len)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	struct sim_inode *n = sim_handle(s, fh);

	if (!n)
		return sim_badfh(fh);
	if (fault)
		return sim_fault_err(fault, op, "fallocate", NULL);
	if (off + len > n->cur_len)
		return ino_setsize(n, off + len);
	return 0;
}

static int sim_truncate(jio_t *io, int fh, uint64_t len)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	struct sim_inode *n = sim_handle(s, fh);

	if (!n)
		return sim_badfh(fh);
	if (fault)
		return sim_fault_err(fault, op, "ftruncate", NULL);
	return ino_setsize(n, len);
}

static int sim_size(jio_t *io, int fh, uint64_t *bytes)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	struct sim_inode *n = sim_handle(s, fh);

	if (!n)
		return sim_badfh(fh);
	if (fault)
		return sim_fault_err(fault, op, "fstat", NULL);
	*bytes = n->cur_len;
	return 0;
}

static int sim_rename(jio_t *io, const char *from, const char *to)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *a = sim_canon(from), *b = sim_canon(to), *bd = b ? sim_parent(b) : NULL;
	int rc = 0;

	if (fault) {
		rc = sim_fault_err(fault, op, "rename", from);
		goto out;
	}
	if (!a || !b || !bd) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	if (names_find(&s->names_cur, a) < 0) {
		rc = jio_err_errno(ENOENT, "rename", from, UINT64_MAX);
		goto out;
	}
	if (!sim_dir_exists(s, bd)) {
		rc = jio_err_errno(ENOENT, "rename (no target directory)", to, UINT64_MAX);
		goto out;
	}
	rc = dirop_push(s, DIROP_RENAME, a, b, -1);
	if (rc < 0)
		rc = jio_err(rc, "sim: out of memory");
out:
	free(a);
	free(b);
	free(bd);
	return rc;
}

static int sim_unlink(jio_t *io, const char *path)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *c = sim_canon(path);
	ssize_t i;
	int rc = 0;

	if (fault) {
		rc = sim_fault_err(fault, op, "unlink", path);
		goto out;
	}
	if (!c) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	i = names_find(&s->names_cur, c);
	if (i < 0) {
		rc = jio_err_errno(ENOENT, "unlink", path, UINT64_MAX);
		goto out;
	}
	if (s->ino[s->names_cur.v[i].ino]->is_dir) {
		rc = jio_err_errno(EISDIR, "unlink", path, UINT64_MAX);
		goto out;
	}
	rc = dirop_push(s, DIROP_UNLINK, c, NULL, -1);
	if (rc < 0)
		rc = jio_err(rc, "sim: out of memory");
out:
	free(c);
	return rc;
}

static int sim_mkdir(jio_t *io, const char *path)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *c = sim_canon(path), *dir = c ? sim_parent(c) : NULL;
	ssize_t i;
	int ino, rc = 0;

	if (fault) {
		rc = sim_fault_err(fault, op, "mkdir", path);
		goto out;
	}
	if (!c || !dir) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	if (sim_root(c))
		goto out;
	i = names_find(&s->names_cur, c);
	if (i >= 0) {
		if (!s->ino[s->names_cur.v[i].ino]->is_dir)
			rc = jio_err(KEEL_E_INVAL, "%s exists and is not a directory", path);
		goto out;
	}
	if (!sim_dir_exists(s, dir)) {
		rc = jio_err_errno(ENOENT, "mkdir", path, UINT64_MAX);
		goto out;
	}
	ino = ino_new(s, 1);
	if (ino < 0 || (rc = dirop_push(s, DIROP_LINK, c, NULL, ino)) < 0)
		rc = jio_err(ino < 0 ? ino : rc, "sim: cannot create directory %s", path);
out:
	free(c);
	free(dir);
	return rc;
}

static int sim_fsync_dir(jio_t *io, const char *path)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *c = sim_canon(path);
	size_t keep = 0;
	int rc = 0;

	if (fault) {
		rc = sim_fault_err(fault, op, "fsync directory", path);
		goto out;
	}
	if (!c) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	if (!sim_dir_exists(s, c)) {
		rc = jio_err_errno(ENOENT, "open directory", path, UINT64_MAX);
		goto out;
	}
	s->syncs++;
	for (size_t i = 0; i < s->ndirops; i++) {
		if (!strcmp(s->dirops[i].dir, c)) {
			int r = dirop_apply(&s->names_dur, &s->dirops[i]);

			dirop_free(&s->dirops[i]);
			if (r < 0 && rc == 0)
				rc = jio_err(r, "sim: out of memory");
		} else {
			s->dirops[keep++] = s->dirops[i];
		}
	}
	s->ndirops = keep;
out:
	free(c);
	return rc;
}

static int sim_list(jio_t *io, const char *dir, jio_list_fn fn, void *ctx)
{
	struct jio_sim *s = sim_of(io);
	uint64_t op = s->ops;
	int fault = sim_tick(s);
	char *c = sim_canon(dir);
	char **names = NULL;
	size_t n = 0, len;
	int rc = 0;

	if (fault) {
		rc = sim_fault_err(fault, op, "opendir", dir);
		goto out;
	}
	if (!c) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	if (!sim_dir_exists(s, c)) {
		rc = jio_err_errno(ENOENT, "opendir", dir, UINT64_MAX);
		goto out;
	}
	/* Collect first: fn may create or rename entries. */
	len = strlen(c);
	names = calloc(s->names_cur.n + 1, sizeof *names);
	if (!names) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	for (size_t i = 0; i < s->names_cur.n; i++) {
		const char *p = s->names_cur.v[i].path;
		const char *base;

		if (!strcmp(c, "/"))
			base = p[0] == '/' ? p + 1 : NULL;
		else if (!strcmp(c, "."))
			base = strchr(p, '/') ? NULL : p;
		else
			base = (!strncmp(p, c, len) && p[len] == '/') ? p + len + 1 : NULL;
		if (!base || !*base || strchr(base, '/'))
			continue;
		names[n] = strdup(base);
		if (!names[n]) {
			rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
			goto out;
		}
		n++;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(ctx, names[i]);
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(c);
	return rc;
}

static void sim_destroy_io(jio_t *io) { jio_sim_destroy(sim_of(io)); }

static const struct jio_ops sim_ops = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.pread = sim_pread,
	.write = sim_write,
	.fdatasync = sim_fdatasync,
	.preallocate = sim_preallocate,
	.truncate = sim_truncate,
	.size = sim_size,
	.rename = sim_rename,
	.unlink = sim_unlink,
	.mkdir = sim_mkdir,
	.fsync_dir = sim_fsync_dir,
	.list = sim_list,
	.destroy = sim_destroy_io,
};

/* ---- life cycle ------------------------------------------------------------------------ */

int jio_sim_create(jio_sim_t **out)
{
	jio_sim_t *s = calloc(1, sizeof *s);

	*out = NULL;
	if (!s)
		return jio_err(KEEL_E_NOMEM, "out of memory for the simulated disk");
	s->io.ops = &sim_ops;
	*out = s;
	return 0;
}

void jio_sim_destroy(jio_sim_t *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nino; i++)
		ino_free(s->ino[i]);
	free(s->ino);
	names_free(&s->names_dur);
	names_free(&s->names_cur);
	for (size_t i = 0; i < s->ndirops; i++)
		dirop_free(&s->dirops[i]);
	free(s->dirops);
	free(s->h);
	free(s);
}

jio_t *jio_sim_io(jio_sim_t *s) { return &s->io; }

int jio_sim_dirty(const jio_sim_t *s)
{
	if (s->ndirops)
		return 1;
	for (size_t i = 0; i < s->nino; i++)
		if (s->ino[i]->npend)
			return 1;
	return 0;
}

/* ---- crash ------------------------------------------------------------------------------ */

enum sector_fate { FATE_DROP = 0, FATE_KEEP = 1, FATE_GARBLE = 2 };

/* Apply one unsynced write to the durable bytes according to its fate per
 * sector. */
static int crash_write(struct sim_inode *n, const struct sim_pend *p, int policy, uint64_t *rng)
{
	uint64_t first = p->off / JIO_SECTOR_BYTES;
	uint64_t last = (p->off + p->len - 1) / JIO_SECTOR_BYTES;
	int mode = policy;

	if (policy == JIO_CRASH_MIX)
		mode = (int)(sim_rand(rng) % 4); /* KEEP, DROP, TEAR, GARBLE */
	if (mode == JIO_CRASH_DROP)
		return 0;
	for (uint64_t sec = first; sec <= last; sec++) {
		uint64_t s0 = sec * JIO_SECTOR_BYTES, s1 = s0 + JIO_SECTOR_BYTES;
		uint64_t w0 = p->off > s0 ? p->off : s0;
		uint64_t w1 = p->off + p->len < s1 ? p->off + p->len : s1;
		int fate = FATE_KEEP;
		uint64_t end;

		if (mode == JIO_CRASH_TEAR)
			fate = (int)(sim_rand(rng) % 2);
		else if (mode == JIO_CRASH_GARBLE)
			fate = (int)(sim_rand(rng) % 3);
		if (fate == FATE_DROP)
			continue;
		end = w1;
		if (fate == FATE_GARBLE) {
			/* The whole sector, but garbage never grows the file
			 * beyond what the write itself reached. */
			uint64_t limit = n->dur_len > w1 ? n->dur_len : w1;

			end = s1 < limit ? s1 : limit;
		}
		if (end > n->dur_len) {
			uint8_t *d = realloc(n->dur, (size_t)end);

			if (!d)
				return KEEL_E_NOMEM;
			memset(d + n->dur_len, 0, (size_t)(end - n->dur_len));
			n->dur = d;
			n->dur_len = (size_t)end;
		}
		if (fate == FATE_KEEP) {
			memcpy(n->dur + w0, p->data + (w0 - p->off), (size_t)(w1 - w0));
		} else {
			for (uint64_t b = s0; b < end; b++)
				n->dur[b] = (uint8_t)sim_rand(rng);
		}
	}
	return 0;
}

static int crash_size(struct sim_inode *n, const struct sim_pend *p, int policy, uint64_t *rng)
{
	int keep = policy == JIO_CRASH_KEEP ||
		   (policy != JIO_CRASH_DROP && (sim_rand(rng) & 1));
	uint8_t *d;

	if (!keep)
		return 0;
	if (p->off > n->dur_len) {
		d = realloc(n->dur, (size_t)p->off);
		if (!d)
			return KEEL_E_NOMEM;
		memset(d + n->dur_len, 0, (size_t)(p->off - n->dur_len));
		n->dur = d;
	}
	n->dur_len = (size_t)p->off;
	return 0;
}

int jio_sim_crash(jio_sim_t *s, uint64_t seed, int policy)
{
	uint64_t rng = seed ^ 0x5eedc0ffee123457ull;
	size_t keep_ops;
	int rc = 0;

	if (policy < 0 || policy >= JIO_CRASH_POLICIES)
		return jio_err(KEEL_E_INVAL, "sim: crash policy %d is not one of 0..%d", policy,
			       JIO_CRASH_POLICIES - 1);
	/* Directory ops: a prefix survives. */
	if (policy == JIO_CRASH_KEEP)
		keep_ops = s->ndirops;
	else if (policy == JIO_CRASH_DROP)
		keep_ops = 0;
	else
		keep_ops = (size_t)(sim_rand(&rng) % (s->ndirops + 1));
	for (size_t i = 0; i < s->ndirops; i++) {
		if (i < keep_ops && rc == 0)
			rc = dirop_apply(&s->names_dur, &s->dirops[i]);
		dirop_free(&s->dirops[i]);
	}
	s->ndirops = 0;
	/* Data: each inode's unsynced ops, in order. */
	for (size_t i = 0; i < s->nino; i++) {
		struct sim_inode *n = s->ino[i];

		for (size_t k = 0; k < n->npend && rc == 0; k++) {
			if (n->pend[k].kind == PEND_WRITE)
				rc = crash_write(n, &n->pend[k], policy, &rng);
			else
				rc = crash_size(n, &n->pend[k], policy, &rng);
		}
		ino_clear_pend(n);
		if (rc == 0 && n->dur_len > 0) {
			rc = buf_reserve(&n->cur, &n->cur_cap, n->dur_len);
			if (rc == 0)
				memcpy(n->cur, n->dur, n->dur_len);
		}
		n->cur_len = n->dur_len;
	}
	/* The namespace the process sees is the durable one. */
	names_free(&s->names_cur);
	for (size_t i = 0; i < s->names_dur.n && rc == 0; i++)
		rc = names_set(&s->names_cur, s->names_dur.v[i].path, s->names_dur.v[i].ino);
	for (size_t i = 0; i < s->nh; i++)
		s->h[i].ino = -1;
	if (rc < 0)
		return jio_err(rc, "sim: out of memory during crash");
	return 0;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

/* Make directory `dir` and its parents, durable at once. */
static int sim_mkdirs(struct jio_sim *s, const char *dir, unsigned depth)
{
	char *pp;
	int ino, rc;

	if (sim_root(dir) || names_find(&s->names_cur, dir) >= 0)
		return 0;
	if (depth > 256)
		return jio_err(KEEL_E_INVAL, "sim: path %s is too deep", dir);
	pp = sim_parent(dir);
	if (!pp)
		return jio_err(KEEL_E_NOMEM, "sim: out of memory");
	rc = sim_mkdirs(s, pp, depth + 1);
	free(pp);
	if (rc < 0)
		return rc;
	ino = ino_new(s, 1);
	if (ino < 0 || (rc = names_set(&s->names_cur, dir, ino)) < 0 ||
	    (rc = names_set(&s->names_dur, dir, ino)) < 0)
		return jio_err(ino < 0 ? ino : rc, "sim: cannot make directory %s", dir);
	return 0;
}

int jio_sim_put(jio_sim_t *s, const char *path, const void *data, size_t len)
{
	char *c = sim_canon(path);
	char *dir = c ? sim_parent(c) : NULL;
	struct sim_inode *n;
	ssize_t i;
	int ino, rc;

	if (!c || !dir) {
		rc = jio_err(KEEL_E_NOMEM, "sim: out of memory");
		goto out;
	}
	rc = sim_mkdirs(s, dir, 0);
	if (rc < 0)
		goto out;
	i = names_find(&s->names_cur, c);
	if (i >= 0) {
		ino = s->names_cur.v[i].ino;
		if (s->ino[ino]->is_dir) {
			rc = jio_err(KEEL_E_INVAL, "sim: %s is a directory", path);
			goto out;
		}
	} else {
		ino = ino_new(s, 0);
		if (ino < 0 || (rc = names_set(&s->names_cur, c, ino)) < 0 ||
		    (rc = names_set(&s->names_dur, c, ino)) < 0) {
			rc = jio_err(ino < 0 ? ino : rc, "sim: cannot make %s", c);
			goto out;
		}
	}
	n = s->ino[ino];
	ino_clear_pend(n);
	n->cur_len = 0;
	if ((rc = cur_resize(n, len)) < 0) {
		rc = jio_err(rc, "sim: out of memory");
		goto out;
	}
	if (len)
		memcpy(n->cur, data, len);
	rc = ino_sync(n);
out:
	free(c);
	free(dir);
	return rc;
}

int jio_sim_mkdirs(jio_sim_t *s, const char *dir)
{
	char *c = sim_canon(dir);
	int rc;

	if (!c)
		return jio_err(KEEL_E_NOMEM, "sim: out of memory");
	rc = sim_mkdirs(s, c, 0);
	free(c);
	return rc;
}

static uint8_t *dup_bytes(const uint8_t *b, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);

	if (d && len)
		memcpy(d, b, len);
	return d;
}

static int names_copy(struct sim_names *to, const struct sim_names *from)
{
	for (size_t i = 0; i < from->n; i++) {
		int rc = names_set(to, from->v[i].path, from->v[i].ino);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int jio_sim_clone(const jio_sim_t *s, jio_sim_t **out)
{
	jio_sim_t *c;
	int rc;

	rc = jio_sim_create(&c);
	if (rc < 0)
		return rc;
	*out = NULL;
	c->ops = s->ops;
	c->syncs = s->syncs;
	c->faults = s->faults;
	c->fail_at = s->fail_at;
	c->fail_kind = s->fail_kind;
	c->fail_persistent = s->fail_persistent;
	c->ino = calloc(s->nino ? s->nino : 1, sizeof *c->ino);
	if (!c->ino)
		goto nomem;
	c->ino_cap = s->nino ? s->nino : 1;
	for (size_t i = 0; i < s->nino; i++) {
		const struct sim_inode *a = s->ino[i];
		struct sim_inode *b = calloc(1, sizeof *b);

		if (!b)
			goto nomem;
		c->ino[c->nino++] = b;
		b->is_dir = a->is_dir;
		b->dur = dup_bytes(a->dur, a->dur_len);
		b->dur_len = a->dur_len;
		b->cur = dup_bytes(a->cur, a->cur_len);
		b->cur_len = b->cur_cap = a->cur_len;
		if (!b->dur || !b->cur)
			goto nomem;
		for (size_t k = 0; k < a->npend; k++) {
			struct sim_pend p = a->pend[k];

			if (p.kind == PEND_WRITE && !(p.data = dup_bytes(a->pend[k].data, p.len)))
				goto nomem;
			if (pend_push(b, p) < 0) {
				free(p.data);
				goto nomem;
			}
		}
	}
	for (size_t i = 0; i < s->ndirops; i++) {
		const struct sim_dirop *op = &s->dirops[i];

		if (dirop_push(c, op->kind, op->a, op->b, op->ino) < 0)
			goto nomem;
	}
	/* dirop_push also applied each op to names_cur; replace that with
	 * an exact copy of the source's view. */
	names_free(&c->names_cur);
	if (names_copy(&c->names_dur, &s->names_dur) < 0 ||
	    names_copy(&c->names_cur, &s->names_cur) < 0)
		goto nomem;
	if (s->nh) {
		c->h = malloc(s->nh * sizeof *c->h);
		if (!c->h)
			goto nomem;
		memcpy(c->h, s->h, s->nh * sizeof *c->h);
		c->nh = s->nh;
	}
	*out = c;
	return 0;
nomem:
	jio_sim_destroy(c);
	return jio_err(KEEL_E_NOMEM, "sim: out of memory cloning the simulated disk");
}

int jio_sim_get(jio_sim_t *s, const char *path, uint8_t **data, size_t *len)
{
	char *c = sim_canon(path);
	ssize_t i = c ? names_find(&s->names_cur, c) : -1;
	struct sim_inode *n;

	free(c);
	*data = NULL;
	*len = 0;
	if (i < 0)
		return jio_err(KEEL_E_NOTFOUND, "sim: no file %s", path);
	n = s->ino[s->names_cur.v[i].ino];
	*data = malloc(n->cur_len ? n->cur_len : 1);
	if (!*data)
		return jio_err(KEEL_E_NOMEM, "sim: out of memory");
	if (n->cur_len)
		memcpy(*data, n->cur, n->cur_len);
	*len = n->cur_len;
	return 0;
}
