/*
 * registry.c - process and reader slots; see registry.h for the formats and
 * the read protocol.
 */
#include "shm/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shm/arena.h"
#include "shm/err.h"

/* The fields of /proc/PATH/stat after the command name (which may contain
 * spaces and parentheses, so they start after the last ')'): " S ppid ...",
 * S the state.  NULL when the file cannot be read. */
static const char *stat_fields(const char *path, char *buf, size_t cap)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return NULL;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p + 1 : NULL;
}

uint64_t shm_pid_start_time(pid_t pid)
{
	char path[64], buf[1024];
	const char *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (!(p = stat_fields(path, buf, sizeof(buf))))
		return 0;
	if (p[1] == 'Z' || p[1] == 'X')
		return 0;   /* a zombie holds no locks and reads nothing */
	/* Field 3 is the state; start time is field 22. */
	for (int field = 2; field < 22 && *p; p++)
		if (*p == ' ')
			field++;
	return strtoull(p, NULL, 10);
}

int shm_pid_stopped(uint32_t pid, uint32_t tid)
{
	char path[64], buf[1024];
	const char *p;

	if (pid == 0 || pid == SHM_PID_REAPING)
		return 0;
	if (tid)
		snprintf(path, sizeof(path), "/proc/%u/task/%u/stat", pid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	p = stat_fields(path, buf, sizeof(buf));
	return p && (p[1] == 'T' || p[1] == 't');
}

int shm_pid_alive(uint32_t pid, uint64_t start_time)
{
	uint64_t st;

	if (pid == 0 || pid == SHM_PID_REAPING)
		return 0;
	if (kill((pid_t)pid, 0) != 0 && errno != EPERM)
		return 0;
	st = shm_pid_start_time((pid_t)pid);
	if (st == 0)
		return 0;
	return start_time == 0 || st == start_time;
}

struct shm_proc *shm_proc_slot(struct shm_arena *a, uint32_t idx)
{
	SHM_VERIFY(idx < SHM_PROCS_MAX);
	return (struct shm_proc *)shm_at(a, a->procs_off + (uint64_t)idx * sizeof(struct shm_proc));
}

struct shm_reader *shm_reader_slot(struct shm_arena *a, uint32_t idx)
{
	SHM_VERIFY(idx < SHM_READERS_MAX);
	return (struct shm_reader *)shm_at(a, a->readers_off + (uint64_t)idx * sizeof(struct shm_reader));
}

static void raise_hi(volatile uint32_t *hi, uint32_t v)
{
	uint32_t cur;
	while ((cur = shm_load32(hi)) < v && !shm_cas32(hi, cur, v))
		;
}

static int try_claim(struct shm_arena *a, uint32_t *idx)
{
	uint32_t me = (uint32_t)getpid();
	uint64_t st = shm_pid_start_time((pid_t)me);

	for (uint32_t i = 0; i < SHM_PROCS_MAX; i++) {
		struct shm_proc *p = shm_proc_slot(a, i);
		if (shm_load32(&p->pid) != 0 || !shm_cas32(&p->pid, 0, me))
			continue;
		p->attach_ns = shm_now_ns();
		shm_store32(&p->waiting, 0);
		shm_store(&p->rsv_lsn, 0);
		shm_store_rel(&p->start_time, st);
		raise_hi(&a->hdr->procs_hi, i + 1);
		*idx = i;
		return 0;
	}
	return KEEL_E_LIMIT;
}

int shm_proc_claim(struct shm_arena *a, uint32_t *idx)
{
	if (try_claim(a, idx) == 0)
		return 0;
	shm_reap(a, NULL, NULL);
	if (try_claim(a, idx) == 0)
		return 0;
	return shm_err(KEEL_E_LIMIT, "all %u process slots are held by live processes; close some handles",
		       SHM_PROCS_MAX);
}

static void clear_readers(struct shm_arena *a, uint32_t proc)
{
	uint32_t hi = shm_load32(&a->hdr->readers_hi);
	for (uint32_t i = 0; i < hi && i < SHM_READERS_MAX; i++) {
		struct shm_reader *r = shm_reader_slot(a, i);
		if (shm_load32(&r->owner) == proc + 1) {
			shm_store(&r->snap, 0);
			shm_store32(&r->novis, 0);
			shm_store32_rel(&r->owner, 0);
		}
	}
}

void shm_proc_release(struct shm_arena *a, uint32_t idx)
{
	struct shm_proc *p = shm_proc_slot(a, idx);
	clear_readers(a, idx);
	shm_store(&p->start_time, 0);
	shm_store32_rel(&p->pid, 0);
}

int shm_proc_live(struct shm_arena *a, uint32_t idx, uint32_t *pid)
{
	struct shm_proc *p = shm_proc_slot(a, idx);
	uint32_t v = shm_load32_acq(&p->pid);
	if (pid)
		*pid = v;
	return v != 0 && v != SHM_PID_REAPING && shm_pid_alive(v, shm_load(&p->start_time));
}

int shm_reap(struct shm_arena *a, void (*on_dead)(void *ctx, uint32_t idx, uint32_t pid),
	     void *ctx)
{
	uint32_t hi = shm_load32(&a->hdr->procs_hi);
	int n = 0;

	for (uint32_t i = 0; i < hi && i < SHM_PROCS_MAX; i++) {
		struct shm_proc *p = shm_proc_slot(a, i);
		uint32_t pid = shm_load32_acq(&p->pid);
		if (pid == 0 || pid == SHM_PID_REAPING)
			continue;
		if (shm_pid_alive(pid, shm_load(&p->start_time)))
			continue;
		uint64_t rsv = shm_load_acq(&p->rsv_lsn);
		if (rsv && (!a->rsv_settled || !a->rsv_settled(a, rsv)))
			continue;   /* its ring reservation is still a hole to void */
		if (!shm_cas32(&p->pid, pid, SHM_PID_REAPING))
			continue;   /* someone else is reaping it */
		if (on_dead)
			on_dead(ctx, i, pid);
		if (a->proc_reaped)
			a->proc_reaped(a, i);
		clear_readers(a, i);
		shm_store(&p->rsv_lsn, 0);
		shm_store(&p->start_time, 0);
		shm_store32_rel(&p->pid, 0);
		shm_faa(&a->hdr->reaps, 1);
		n++;
	}
	return n;
}

int shm_reader_claim(struct shm_arena *a, uint32_t proc, uint32_t *idx)
{
	for (int round = 0; round < 2; round++) {
		for (uint32_t i = 0; i < SHM_READERS_MAX; i++) {
			struct shm_reader *r = shm_reader_slot(a, i);
			if (shm_load32(&r->owner) != 0 || !shm_cas32(&r->owner, 0, proc + 1))
				continue;
			r->tid = 0;
			shm_store(&r->snap, 0);
			shm_store32(&r->novis, 0);   /* a dead checkpointer may have left it */
			raise_hi(&a->hdr->readers_hi, i + 1);
			*idx = i;
			return 0;
		}
		shm_reap(a, NULL, NULL);
	}
	return shm_err(KEEL_E_LIMIT, "all %u reader slots are in use; fewer threads may read at once",
		       SHM_READERS_MAX);
}

void shm_reader_release(struct shm_arena *a, uint32_t idx)
{
	struct shm_reader *r = shm_reader_slot(a, idx);
	shm_store(&r->snap, 0);
	shm_store32(&r->novis, 0);
	shm_store32_rel(&r->owner, 0);
}

void shm_readers_horizon(struct shm_arena *a, uint64_t *min_snap, uint64_t *min_gen, uint64_t *min_vis)
{
	uint32_t hi = shm_load32_acq(&a->hdr->readers_hi);
	uint64_t ms = UINT64_MAX, mg = UINT64_MAX, mv = UINT64_MAX;

	for (uint32_t i = 0; i < hi && i < SHM_READERS_MAX; i++) {
		struct shm_reader *r = shm_reader_slot(a, i);
		uint64_t s = shm_load_acq(&r->snap);
		if (s == 0)
			continue;
		if (s - 1 < ms)
			ms = s - 1;
		if (s - 1 < mv && !shm_load32(&r->novis))
			mv = s - 1;
		uint64_t g = shm_load(&r->gen);
		if (g < mg)
			mg = g;
	}
	*min_snap = ms;
	*min_gen = mg;
	if (min_vis)
		*min_vis = mv;
}
