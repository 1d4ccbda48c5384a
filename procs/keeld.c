/*
 * keeld.c - the optional per-store daemon.
 *
 * A Keel store needs no daemon: every writable handle runs a background
 * thread that flushes async commits within their window and checkpoints when
 * the journal has grown by its checkpoint_mb, and any process that opens,
 * commits or claims repairs what a dead process left behind.  keeld takes
 * that background work over, so it leaves the workers' processes, and it
 * says in its log what it repaired.  It opens the store once, like any
 * worker, through lib/keel.h alone, and runs rounds:
 *
 *   flush       every --flush-ms: when the durable LSN lags the applied LSN,
 *               keel_wait_durable(applied): keeld becomes the group-commit
 *               flusher and writes every complete record.  Waiting for the
 *               applied LSN, not the next one, means a commit that is still
 *               being written (or whose writer is stopped) never holds keeld.
 *               Set --flush-ms below the workers' async_window_ms (10 ms by
 *               default) and their commits find the journal already flushed.
 *   checkpoint  when the journal has grown by --checkpoint-mb since the last
 *               checkpoint (whoever wrote it), or --checkpoint-secs have
 *               passed since keeld's last one and something was committed
 *               since.  Nobody else's checkpoint may be running
 *               (checkpoint_pid).  Keep the workers' checkpoint_mb above
 *               keeld's and their threads never get to it.
 *   reap        every --reap-ms: keel_processes lists the process slots;
 *               when one belongs to a dead process, keeld notes its locks
 *               (keel_inspect_locks) and the timer claims it held, calls
 *               keel_reclaim (slots, reader pins, locks, claims), then looks
 *               again and logs each pid reaped, each lock released and each
 *               claim re-armed, by name.  The claims are read through a
 *               second, read-only handle: counting or listing timers through
 *               a writable handle re-arms lost claims as a side effect, which
 *               would hide them.  Once a second, when claims exist, keel_
 *               timer_stat through the writable handle re-arms claims whose
 *               holder's slot someone else reaped, or whose lease ran out, and
 *               keeld logs how many that call re-armed.
 *
 * keel_close at the end flushes what async commits promised.  keeld waits
 * in the library like any caller: a process stopped (SIGSTOP) while it
 * holds the flush lock, or in the middle of a commit when a checkpoint
 * starts, holds keeld's round until it goes on (systemd's stop timeout
 * then ends keeld with SIGKILL, which loses nothing).
 *
 * Between rounds it sleeps in poll() on a signalfd, until the earliest next
 * round (at most one second), so it never spins and SIGTERM or SIGINT end
 * it at once.  Both are blocked before keel_open, so the library's threads
 * inherit the mask and the signalfd is the only place they are taken.
 *
 * Log: one line per event on stderr, with a UTC timestamp; plain text, or
 * one JSON object per line with --json:
 *   {"ts":"2024-05-01T12:00:00.123Z","level":"info","event":"reap",
 *    "msg":"reaped pid 4242 ...", ...event fields...}
 * Events: start, open_failed, flush_error, checkpoint, checkpoint_error,
 * reap, reap_pending, lock, rearm, claims_orphaned, stats, warning, error,
 * failed, stopping, stopped.  Field names are added, never renamed.
 *
 * systemd: it runs in the foreground (Type=notify).  When NOTIFY_SOCKET is
 * set it sends READY=1 once the store is open, STOPPING=1 when it stops,
 * and WATCHDOG=1 at half of WATCHDOG_USEC when that is set, over the unix
 * datagram socket itself (no libsystemd).
 *
 * Exit status: 0 stopped by SIGTERM or SIGINT, or --once with every step
 * done; 1 the store failed (KEEL_E_PANIC or KEEL_E_IO), or a --once step
 * failed; 2 usage error; 3 the store could not be opened.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keel.h"

#define EXIT_STOPPED 0
#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_OPEN 3

#define TICK_MS_MAX 1000u              /* longest sleep between rounds */
#define INTERVAL_MS_MAX 3600000u       /* one hour */
#define CHECKPOINT_RETRY_MS 1000u      /* after a failed checkpoint */
#define ORPHAN_SCAN_MS 1000u           /* lost claims of holders without a slot */
#define ERROR_REPEAT_MS 60000u         /* the same error is logged again after this */
#define NAMES_LOGGED_MAX 16u           /* timer names named in one rearm event */
#define LINE_BYTES_MAX 4096u

struct config {
	const char *dir;
	const char *arena;
	uint32_t flush_ms;        /* 0: no flushing */
	uint32_t reap_ms;         /* 0: no reaping */
	uint32_t checkpoint_mb;   /* 0: no checkpoint by size */
	uint32_t checkpoint_secs; /* 0: no checkpoint by time */
	uint32_t stats_secs;      /* 0: no stats lines */
	int once, json, create;
};

/* What keeld did since it started; the stats line reports it. */
struct counters {
	uint64_t flushes, flushed_lsns, checkpoints, reaped, locks, rearmed, errors;
};

struct daemon {
	struct config cfg;
	keel_t *h;
	keel_t *ro;               /* read-only handle: views without side effects
				   * (NULL if it could not be opened) */
	int sfd;                  /* signalfd for SIGTERM, SIGINT */
	int journaled;
	int failed_exit;          /* the store failed: leave the loop */
	int step_failed;          /* a step failed in this run (--once) */
	uint64_t next_flush_ms, next_reap_ms, next_orphan_ms, next_stats_ms, next_watchdog_ms;
	uint64_t ckpt_after_ms;   /* no checkpoint before (backoff) */
	uint64_t ckpt_last_ms;    /* keeld's last checkpoint (start time at first) */
	uint64_t ckpt_base;       /* journal bytes the size rule counts from */
	uint64_t ckpt_seen;       /* checkpoint_journal_bytes as last seen */
	uint64_t watchdog_ms;     /* 0: no watchdog */
	uint64_t reaps_seen;      /* header reaps counter at start */
	pid_t pending_warned;     /* reap_pending last logged for this pid */
	int last_err;             /* last error logged, for de-duplication */
	const char *last_what;    /* ... and its step */
	uint64_t last_err_ms;
	struct counters n;
};

static struct daemon D;

/* ---- clocks ------------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void utc_stamp(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000l) % 1000u);
}

/* ---- log ------------------------------------------------------------------------ */

/* Write one whole line with one write(2), so lines of processes sharing
 * stderr never interleave.  A failed write (stderr closed) is ignored: the
 * daemon's work does not depend on its log. */
static void put_line(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/*
 * Log one event.  `fields` (may be NULL; consumed) holds the event's data
 * for --json; the formatted message is the plain line's text and the JSON
 * "msg".
 */
static void emit(const char *level, const char *event, json_object *fields, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void emit(const char *level, const char *event, json_object *fields, const char *fmt, ...)
{
	char ts[40], msg[LINE_BYTES_MAX - 128], line[LINE_BYTES_MAX];
	va_list ap;
	int n;

	utc_stamp(ts, sizeof(ts));
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (D.cfg.json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ts", json_object_new_string(ts));
		json_object_object_add(o, "level", json_object_new_string(level));
		json_object_object_add(o, "event", json_object_new_string(event));
		json_object_object_add(o, "msg", json_object_new_string(msg));
		if (fields) {
			json_object_object_foreach(fields, k, v)
				json_object_object_add(o, k, json_object_get(v));
		}
		const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								       JSON_C_TO_STRING_NOSLASHESCAPE);
		size_t len = strlen(s);
		char *buf = malloc(len + 2);
		if (buf) {
			memcpy(buf, s, len);
			buf[len] = '\n';
			put_line(buf, len + 1);
			free(buf);
		}
		json_object_put(o);
	} else {
		n = snprintf(line, sizeof(line), "%s keeld[%d] %s %s: %s\n", ts, (int)getpid(), level,
			     event, msg);
		if (n >= (int)sizeof(line)) {
			n = (int)sizeof(line) - 1;
			line[n - 1] = '\n';
		}
		put_line(line, (size_t)n);
	}
	json_object_put(fields);
}

/* Small builders for the fields of an event. */
static json_object *jobj(void)
{
	return json_object_new_object();
}

static void jset_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jset_i64(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void jset_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

/* A failed call: its code, its name and the detail message. */
static json_object *jerr_detail(int rc, const char *detail)
{
	json_object *o = jobj();
	jset_i64(o, "code", rc);
	jset_str(o, "error", keel_strerror(rc));
	jset_str(o, "detail", detail);
	return o;
}

static json_object *jerr(int rc)
{
	return jerr_detail(rc, keel_errmsg());
}

static int store_failed(int rc)
{
	return rc == KEEL_E_PANIC || rc == KEEL_E_IO;
}

/*
 * Log a failed step; `detail` is the failure's message (NULL: this thread's
 * keel_errmsg()).  The same code from the same step is logged once a minute,
 * not every round.  A failed store ends the loop.
 */
static void step_error(const char *event, const char *what, int rc, const char *detail)
{
	uint64_t now = mono_ms();

	if (!detail)
		detail = keel_errmsg();
	D.step_failed = 1;
	D.n.errors++;
	if (store_failed(rc)) {
		emit("error", "failed", jerr_detail(rc, detail), "%s: the store failed: %s: %s; keeld stops (exit %d); close every handle and reopen the store to recover",
		     what, keel_strerror(rc), detail, EXIT_FAILED);
		D.failed_exit = 1;
		return;
	}
	if (rc == D.last_err && D.last_what && strcmp(what, D.last_what) == 0 && now - D.last_err_ms < ERROR_REPEAT_MS)
		return;
	D.last_err = rc;
	D.last_what = what;
	D.last_err_ms = now;
	emit("error", event, jerr_detail(rc, detail), "%s: %s: %s", what, keel_strerror(rc), detail);
}

/* Bytes as text for the log: printable ASCII as it is, anything else as
 * "0x" and hex, cut to fit. */
static void printable(const void *p, size_t n, char *buf, size_t cap)
{
	const unsigned char *b = p;
	size_t i, o = 0;
	int text = n > 0;

	for (i = 0; i < n; i++)
		text &= b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\';
	if (text) {
		snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), (const char *)p);
		return;
	}
	o = (size_t)snprintf(buf, cap, "0x");
	for (i = 0; i < n && o + 3 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%02x", b[i]);
}

/* ---- systemd notification --------------------------------------------------------- */

/* Send one datagram to $NOTIFY_SOCKET (a path, or '@' for the abstract
 * namespace).  Without it, nothing to do. */
static void notify(const char *msg)
{
	const char *p = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	size_t n;
	int fd;

	if (!p || !p[0])
		return;
	n = strlen(p);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if ((p[0] != '/' && p[0] != '@') || n >= sizeof(sa.sun_path)) {
		emit("warning", "warning", NULL, "NOTIFY_SOCKET '%s' is not a unix socket path; no notification sent", p);
		return;
	}
	memcpy(sa.sun_path, p, n);
	if (p[0] == '@')
		sa.sun_path[0] = 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa,
			     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		emit("warning", "warning", NULL, "cannot notify %s: %s", p, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* WATCHDOG_USEC (for this pid, if WATCHDOG_PID says which): ping at half of it. */
static uint64_t watchdog_interval_ms(void)
{
	const char *us = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;

	if (!us || !us[0] || (pid && pid[0] && strtol(pid, NULL, 10) != (long)getpid()))
		return 0;
	errno = 0;
	unsigned long long v = strtoull(us, &end, 10);
	if (errno || *end || v == 0)
		return 0;
	v = v / 2000u;
	return v ? v : 1;
}

/* ---- flush ------------------------------------------------------------------------- */

static void do_flush(const keel_inspect_header_t *hd)
{
	if (hd->durable_lsn >= hd->applied_lsn)
		return;
	int rc = keel_wait_durable(D.h, hd->applied_lsn);
	if (rc) {
		step_error("flush_error", "flush", rc, NULL);
		return;
	}
	D.n.flushes++;
	D.n.flushed_lsns += hd->applied_lsn - hd->durable_lsn;
}

/* ---- checkpoint -------------------------------------------------------------------- */

/* The reason to checkpoint now, or NULL. */
static const char *checkpoint_reason(const keel_inspect_header_t *hd, uint64_t now, uint64_t *grown)
{
	if (hd->checkpoint_journal_bytes != D.ckpt_seen) {
		/* Someone checkpointed: count from there. */
		D.ckpt_seen = hd->checkpoint_journal_bytes;
		D.ckpt_base = hd->checkpoint_journal_bytes;
	}
	*grown = hd->journal_bytes > D.ckpt_base ? hd->journal_bytes - D.ckpt_base : 0;
	if (now < D.ckpt_after_ms || hd->checkpoint_pid != 0 || hd->applied_lsn <= hd->checkpoint_lsn)
		return NULL;
	if (D.cfg.checkpoint_mb && *grown >= (uint64_t)D.cfg.checkpoint_mb << 20)
		return "size";
	if (D.cfg.checkpoint_secs && now - D.ckpt_last_ms >= (uint64_t)D.cfg.checkpoint_secs * 1000u)
		return "time";
	return NULL;
}

/*
 * Checkpoints run on a thread of their own, so flushing and reaping go on
 * while one is written (a store of a million keys takes about a second).
 * The main thread starts a job and, at a later round, logs its result: only
 * the main thread logs and counts.  ck.mu guards every field of ck.
 */
static struct {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int started, quit;
	int pending;              /* a job is asked for or running */
	int done;                 /* a result waits to be logged */
	const char *why;
	uint64_t grown, lsn, took_ms;
	int rc;
	char detail[512];         /* keel_errmsg() of a failure */
} ck = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *ckpt_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&ck.mu);
	for (;;) {
		while (!ck.quit && !(ck.pending && !ck.done))
			pthread_cond_wait(&ck.cv, &ck.mu);
		if (!(ck.pending && !ck.done))
			break;   /* quit with nothing asked */
		pthread_mutex_unlock(&ck.mu);
		uint64_t lsn = 0, t0 = mono_ms();
		int rc = keel_checkpoint(D.h, &lsn);
		pthread_mutex_lock(&ck.mu);
		ck.rc = rc;
		ck.lsn = lsn;
		ck.took_ms = mono_ms() - t0;
		snprintf(ck.detail, sizeof(ck.detail), "%s", rc ? keel_errmsg() : "");
		ck.done = 1;
	}
	pthread_mutex_unlock(&ck.mu);
	return NULL;
}

/* Log a finished checkpoint (main thread). */
static void ckpt_collect(void)
{
	pthread_mutex_lock(&ck.mu);
	if (!ck.done) {
		pthread_mutex_unlock(&ck.mu);
		return;
	}
	int rc = ck.rc;
	uint64_t lsn = ck.lsn, took = ck.took_ms, grown = ck.grown;
	const char *why = ck.why;
	char detail[sizeof(ck.detail)];
	memcpy(detail, ck.detail, sizeof(detail));
	ck.done = ck.pending = 0;
	pthread_mutex_unlock(&ck.mu);
	if (rc) {
		D.ckpt_after_ms = mono_ms() + CHECKPOINT_RETRY_MS;
		step_error("checkpoint_error", "checkpoint", rc, detail);
		return;
	}
	keel_inspect_header_t after;
	memset(&after, 0, sizeof(after));
	if (keel_inspect_header(D.h, &after) == 0) {
		/* If the journal could not shrink, the next size checkpoint waits
		 * for as much growth again rather than running every round. */
		D.ckpt_seen = after.checkpoint_journal_bytes;
		D.ckpt_base = after.checkpoint_journal_bytes > after.journal_bytes
				      ? after.checkpoint_journal_bytes : after.journal_bytes;
	}
	D.ckpt_last_ms = mono_ms();
	D.n.checkpoints++;
	json_object *f = jobj();
	jset_str(f, "reason", why);
	jset_u64(f, "lsn", lsn);
	jset_u64(f, "journal_bytes_grown", grown);
	jset_u64(f, "journal_bytes_after", after.journal_bytes);
	jset_u64(f, "duration_ms", took);
	emit("info", "checkpoint", f, "checkpoint at LSN %" PRIu64 " (%s: journal grew %" PRIu64 " bytes) in %" PRIu64 " ms",
	     lsn, why, grown, took);
}

/* Start a checkpoint if a rule says so and none is running (main thread). */
static void do_checkpoint(const keel_inspect_header_t *hd, uint64_t now)
{
	uint64_t grown;

	ckpt_collect();
	pthread_mutex_lock(&ck.mu);
	int busy = ck.pending;
	pthread_mutex_unlock(&ck.mu);
	if (busy)
		return;
	const char *why = checkpoint_reason(hd, now, &grown);
	if (!why)
		return;
	if (!ck.started) {
		int err = pthread_create(&ck.thread, NULL, ckpt_main, NULL);
		if (err) {
			D.ckpt_after_ms = now + CHECKPOINT_RETRY_MS;
			step_error("checkpoint_error", "starting the checkpoint thread", KEEL_E_OS, strerror(err));
			return;
		}
		ck.started = 1;
	}
	pthread_mutex_lock(&ck.mu);
	ck.why = why;
	ck.grown = grown;
	ck.pending = 1;
	pthread_cond_signal(&ck.cv);
	pthread_mutex_unlock(&ck.mu);
}

/* Let a running checkpoint finish, stop the thread, log the result. */
static void ckpt_stop(void)
{
	if (!ck.started)
		return;
	pthread_mutex_lock(&ck.mu);
	ck.quit = 1;
	pthread_cond_signal(&ck.cv);
	pthread_mutex_unlock(&ck.mu);
	pthread_join(ck.thread, NULL);
	ck.started = 0;
	ckpt_collect();
}

/* ---- reap -------------------------------------------------------------------------- */

struct proc_list {
	uint32_t n;
	keel_proc_info_t p[KEEL_PROCESSES_MAX];
};

static int collect_proc(void *ctx, const keel_proc_info_t *p)
{
	struct proc_list *l = ctx;

	if (l->n >= KEEL_PROCESSES_MAX)
		return 1;
	l->p[l->n++] = *p;
	return 0;
}

static int proc_listed(const struct proc_list *l, const keel_proc_info_t *p)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (l->p[i].pid == p->pid && l->p[i].start_time == p->start_time)
			return 1;
	return 0;
}

/* Locks held by dead processes, as keel_inspect_locks reports them. */
struct lock_list {
	uint32_t n;
	keel_inspect_lock_t l[64];
};

static int collect_dead_lock(void *ctx, const keel_inspect_lock_t *l)
{
	struct lock_list *ll = ctx;

	if (l->state == KEEL_LOCK_DEAD && ll->n < sizeof(ll->l) / sizeof(ll->l[0]))
		ll->l[ll->n++] = *l;
	return 0;
}

static int lock_still_dead(const struct lock_list *now, const keel_inspect_lock_t *l)
{
	for (uint32_t i = 0; i < now->n; i++)
		if (strcmp(now->l[i].name, l->name) == 0 && now->l[i].holder_pid == l->holder_pid)
			return 1;
	return 0;
}

/*
 * Timer claims held by dead pids.  They are read through keeld's read-only
 * handle: the library re-arms lost claims whenever a writable handle lists
 * or counts timers, which would hide what keel_reclaim is about to repair.
 */
struct claim {
	char part[KEEL_PARTITION_NAME_MAX + 1];
	uint8_t key[KEEL_TIMER_KEY_MAX];
	size_t klen;
	pid_t holder;
};

struct claim_list {
	const struct proc_list *dead;   /* the slots; holders are its dead pids */
	uint32_t n, kept;
	struct claim c[NAMES_LOGGED_MAX];
};

static int holder_dead(const struct proc_list *l, pid_t pid)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (!l->p[i].alive && l->p[i].pid == pid)
			return 1;
	return 0;
}

static int collect_orphan_claim(void *ctx, const keel_timer_info_t *t)
{
	struct claim_list *c = ctx;

	if (t->state != KEEL_TIMER_CLAIMED || !holder_dead(c->dead, t->holder))
		return 0;
	c->n++;
	if (c->kept < NAMES_LOGGED_MAX) {
		struct claim *k = &c->c[c->kept++];
		snprintf(k->part, sizeof(k->part), "%s", t->part);
		k->klen = t->klen < sizeof(k->key) ? t->klen : sizeof(k->key);
		memcpy(k->key, t->key, k->klen);
		k->holder = t->holder;
	}
	return 0;
}

/* The claims of dead holders, now (read-only: nothing is re-armed). */
static int orphan_claims(const struct proc_list *dead, struct claim_list *c)
{
	keel_timer_stat_t ts;
	int rc;

	memset(c, 0, sizeof(*c));
	c->dead = dead;
	if ((rc = keel_timer_stat(D.ro, &ts)) || ts.claimed == 0)
		return rc;
	return keel_timers(D.ro, NULL, KEEL_TIMER_CLAIMED, collect_orphan_claim, c);
}

/* Is claim k still held by its dead holder? */
static int still_claimed(const struct claim *k)
{
	keel_timer_info_t info;

	if (keel_timer_get(D.ro, k->part, k->key, k->klen, &info, NULL, 0) != 0)
		return 0;   /* gone (cancelled) */
	return info.state == KEEL_TIMER_CLAIMED && info.holder == k->holder;
}

/* Log what became of the claims in `before`, after keeld's repair. */
static void log_rearmed(const struct claim_list *before)
{
	struct claim_list after;
	uint32_t left = 0;
	char text[600] = "", name[200], key[96];
	json_object *names = json_object_new_array(), *holders = json_object_new_array();

	if (before->n > before->kept) {
		if (orphan_claims(before->dead, &after) == 0)
			left = after.n;
	} else {
		for (uint32_t i = 0; i < before->kept; i++)
			left += still_claimed(&before->c[i]);
	}
	for (uint32_t i = 0; i < before->kept; i++) {
		const struct claim *k = &before->c[i];
		printable(k->key, k->klen, key, sizeof(key));
		snprintf(name, sizeof(name), "%s/%s", k->part, key);
		json_object_array_add(names, json_object_new_string(name));
		size_t o = strlen(text);
		snprintf(text + o, sizeof(text) - o, "%s%s (pid %d)", i ? ", " : "", name, (int)k->holder);
		json_object_array_add(holders, json_object_new_int64(k->holder));
	}
	uint32_t rearmed = before->n > left ? before->n - left : 0;
	json_object *f = jobj();
	jset_u64(f, "rearmed", rearmed);
	jset_u64(f, "still_held", left);
	json_object_object_add(f, "timers", names);
	json_object_object_add(f, "holders", holders);
	D.n.rearmed += rearmed;
	if (left == 0)
		emit("info", "rearm", f, "re-armed %u timer claim%s of dead holders: %s%s", rearmed,
		     rearmed == 1 ? "" : "s", text, before->n > before->kept ? ", ..." : "");
	else
		emit("warning", "claims_orphaned", f, "%u of %u timer claims of dead holders are still held after keel_reclaim: %s%s",
		     left, before->n, text, before->n > before->kept ? ", ..." : "");
}

static void log_reaped(const struct proc_list *before, const struct proc_list *after)
{
	for (uint32_t i = 0; i < before->n; i++) {
		const keel_proc_info_t *p = &before->p[i];
		if (p->alive)
			continue;
		json_object *f = jobj();
		jset_i64(f, "pid", p->pid);
		jset_u64(f, "start_time", p->start_time);
		jset_u64(f, "partition_locks", p->locks_held);
		jset_u64(f, "reader_lag", p->reader_lag);
		if (!proc_listed(after, p)) {
			D.n.reaped++;
			emit("info", "reap", f, "reaped dead pid %d: its process slot and reader pins freed (partition locks it held: %u)",
			     (int)p->pid, p->locks_held);
		} else if (p->pid != D.pending_warned) {
			D.pending_warned = p->pid;
			emit("warning", "reap_pending", f, "pid %d is dead but its slot is not free yet (a commit of its own is still being settled); trying again next round",
			     (int)p->pid);
		} else {
			json_object_put(f);
		}
	}
}

static void log_locks(const struct lock_list *before, const struct lock_list *after)
{
	for (uint32_t i = 0; i < before->n; i++) {
		const keel_inspect_lock_t *l = &before->l[i];
		if (lock_still_dead(after, l))
			continue;
		D.n.locks++;
		json_object *f = jobj();
		jset_str(f, "lock", l->name);
		jset_i64(f, "holder_pid", l->holder_pid);
		emit("info", "lock", f, "lock '%s' of dead pid %u repaired and released", l->name, l->holder_pid);
	}
}

/*
 * Claims whose holder died after (or without) its slot being reaped by
 * someone else: counting timers through the writable handle re-arms them.
 * Only the redelivered count moved by that one call is reported.
 */
static void lost_claims_scan(void)
{
	keel_timer_stat_t a, b;

	if (keel_timer_stat(D.ro, &a) != 0 || a.claimed == 0 || keel_timer_stat(D.h, &b) != 0)
		return;
	if (b.redelivered <= a.redelivered)
		return;
	uint64_t n = b.redelivered - a.redelivered;
	json_object *f = jobj();
	jset_u64(f, "rearmed", n);
	D.n.rearmed += n;
	emit("info", "rearm", f, "re-armed %" PRIu64 " lost timer claim%s (holder gone or lease run out)", n,
	     n == 1 ? "" : "s");
}

static void do_reap(uint64_t now)
{
	static struct proc_list before, after;
	static struct claim_list claims;
	struct lock_list lb = { 0 }, la = { 0 };
	uint32_t dead = 0;
	int rc;

	before.n = 0;
	if ((rc = keel_processes(D.h, collect_proc, &before))) {
		step_error("error", "listing processes", rc, NULL);
		return;
	}
	for (uint32_t i = 0; i < before.n; i++)
		dead += !before.p[i].alive;
	if (dead == 0) {
		if (D.ro && now >= D.next_orphan_ms) {
			lost_claims_scan();
			D.next_orphan_ms = now + ORPHAN_SCAN_MS;
		}
		return;
	}
	memset(&claims, 0, sizeof(claims));
	if (D.ro && (rc = orphan_claims(&before, &claims)))
		step_error("error", "listing timer claims", rc, NULL);
	keel_inspect_locks(D.h, collect_dead_lock, &lb);
	int reaped = keel_reclaim(D.h);
	if (reaped < 0) {
		step_error("error", "keel_reclaim", reaped, NULL);
		return;
	}
	after.n = 0;
	if ((rc = keel_processes(D.h, collect_proc, &after))) {
		step_error("error", "listing processes", rc, NULL);
		return;
	}
	log_reaped(&before, &after);
	keel_inspect_locks(D.h, collect_dead_lock, &la);
	log_locks(&lb, &la);
	if (claims.n)
		log_rearmed(&claims);
}

/* ---- stats --------------------------------------------------------------------------- */

static void do_stats(const keel_inspect_header_t *hd)
{
	json_object *f = jobj();
	uint64_t others = hd->reaps > D.reaps_seen + D.n.reaped ? hd->reaps - D.reaps_seen - D.n.reaped : 0;

	jset_u64(f, "flushes", D.n.flushes);
	jset_u64(f, "flushed_lsns", D.n.flushed_lsns);
	jset_u64(f, "checkpoints", D.n.checkpoints);
	jset_u64(f, "reaped", D.n.reaped);
	jset_u64(f, "reaped_by_others", others);
	jset_u64(f, "locks_released", D.n.locks);
	jset_u64(f, "claims_rearmed", D.n.rearmed);
	jset_u64(f, "errors", D.n.errors);
	jset_u64(f, "next_lsn", hd->next_lsn);
	jset_u64(f, "applied_lsn", hd->applied_lsn);
	jset_u64(f, "durable_lsn", hd->durable_lsn);
	jset_u64(f, "checkpoint_lsn", hd->checkpoint_lsn);
	jset_u64(f, "journal_bytes", hd->journal_bytes);
	emit("info", "stats", f, "%" PRIu64 " flushes (%" PRIu64 " LSNs), %" PRIu64 " checkpoints, %" PRIu64 " reaped (+%" PRIu64 " by others), %" PRIu64 " locks released, %" PRIu64 " claims re-armed, %" PRIu64 " errors; LSN next %" PRIu64 " durable %" PRIu64 " checkpoint %" PRIu64,
	     D.n.flushes, D.n.flushed_lsns, D.n.checkpoints, D.n.reaped, others, D.n.locks, D.n.rearmed,
	     D.n.errors, hd->next_lsn, hd->durable_lsn, hd->checkpoint_lsn);
}

/* ---- the loop ------------------------------------------------------------------------- */

/* One round: the steps that are due at `now`. */
static void round_once(uint64_t now)
{
	keel_inspect_header_t hd;
	int rc = keel_inspect_header(D.h, &hd);

	if (rc) {
		step_error("error", "reading the store header", rc, NULL);
		return;
	}
	if (hd.failed == KEEL_E_IO) {
		json_object *f = jobj();
		jset_str(f, "error", keel_strerror(KEEL_E_IO));
		emit("error", "failed", f, "the store failed: a journal write or sync failed earlier (KEEL_E_IO), nothing more is acknowledged; keeld stops (exit %d); close every handle and reopen the store to recover",
		     EXIT_FAILED);
		D.step_failed = D.failed_exit = 1;
		return;
	}
	int writable = D.journaled && hd.failed == 0;
	if (hd.failed == KEEL_E_NOSPC)
		step_error("error", "journal", KEEL_E_NOSPC,
			   "the journal disk is full: commits are refused, reads go on; free space, then close every handle and reopen the store");
	if (writable && D.cfg.flush_ms && now >= D.next_flush_ms) {
		do_flush(&hd);
		D.next_flush_ms = now + D.cfg.flush_ms;
	}
	if (writable && !D.failed_exit && (D.cfg.checkpoint_mb || D.cfg.checkpoint_secs)) {
		if (keel_inspect_header(D.h, &hd) == 0)
			do_checkpoint(&hd, now);
	}
	if (D.cfg.reap_ms && !D.failed_exit && now >= D.next_reap_ms) {
		do_reap(now);
		D.next_reap_ms = now + D.cfg.reap_ms;
	}
	if (D.cfg.stats_secs && now >= D.next_stats_ms) {
		if (D.next_stats_ms && keel_inspect_header(D.h, &hd) == 0)
			do_stats(&hd);
		D.next_stats_ms = now + (uint64_t)D.cfg.stats_secs * 1000u;
	}
	if (D.watchdog_ms && now >= D.next_watchdog_ms) {
		notify("WATCHDOG=1");
		D.next_watchdog_ms = now + D.watchdog_ms;
	}
}

static uint64_t min_due(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* How long to sleep: until the earliest next step, at most TICK_MS_MAX. */
static int sleep_ms(uint64_t now)
{
	uint64_t due = now + TICK_MS_MAX;

	if (D.journaled && D.cfg.flush_ms)
		due = min_due(due, D.next_flush_ms);
	if (D.cfg.reap_ms)
		due = min_due(due, D.next_reap_ms);
	if (D.cfg.stats_secs)
		due = min_due(due, D.next_stats_ms);
	if (D.watchdog_ms)
		due = min_due(due, D.next_watchdog_ms);
	return due > now ? (int)(due - now) : 0;
}

/* Sleep up to ms; 1 when SIGTERM or SIGINT came (its name in *sig). */
static int wait_signal(int ms, const char **sig)
{
	struct pollfd pfd = { D.sfd, POLLIN, 0 };
	struct signalfd_siginfo si;

	int r = poll(&pfd, 1, ms);
	if (r <= 0)
		return 0;   /* timeout, or EINTR from a signal keeld does not take */
	if (read(D.sfd, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return 0;
	*sig = si.ssi_signo == SIGTERM ? "SIGTERM" : si.ssi_signo == SIGINT ? "SIGINT" : "a signal";
	return 1;
}

/* ---- command line ---------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("NAME\n"
	      "    keeld - the optional per-store daemon: flush, checkpoint, reap dead processes\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    keeld [OPTIONS] STORE\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    keeld opens the Keel store in directory STORE and does its background work\n"
	      "    so that the workers' processes need not: it flushes async commits to the\n"
	      "    journal when the durable LSN lags, writes a checkpoint when the journal has\n"
	      "    grown by --checkpoint-mb or --checkpoint-secs have passed, and reaps the\n"
	      "    process slots, reader pins, locks and timer claims of dead processes,\n"
	      "    logging each repair.  Keel works without it.  It runs in the foreground,\n"
	      "    logs to standard error (one line per event, with a UTC timestamp), and\n"
	      "    stops at once on SIGTERM or SIGINT.  With NOTIFY_SOCKET set (systemd\n"
	      "    Type=notify) it sends READY=1 when the store is open and STOPPING=1 when\n"
	      "    it stops; with WATCHDOG_USEC, WATCHDOG=1 at half that interval.  On a\n"
	      "    memory-mode store it only reaps.\n"
	      "\n"
	      "OPTIONS\n"
	      "    --flush-ms MS         flush when the durable LSN lags, checked every MS\n"
	      "                          (default 5; keep it below the workers'\n"
	      "                          async_window_ms; 0: never)\n"
	      "    --reap-ms MS          look for dead processes and timer claims of dead\n"
	      "                          holders every MS (default 100; 0: never)\n"
	      "    --checkpoint-mb MB    checkpoint when the journal grew by MB MiB since the\n"
	      "                          last checkpoint (default 64; 0: never by size)\n"
	      "    --checkpoint-secs S   checkpoint when S seconds passed since keeld's last\n"
	      "                          one and something was committed (default 300; 0:\n"
	      "                          never by time)\n"
	      "    --stats-secs S        log a summary line every S seconds (default 60; 0:\n"
	      "                          never)\n"
	      "    --once                run one round of every step now, then exit\n"
	      "    --json                log one JSON object per line (ts, level, event, msg\n"
	      "                          and the event's fields)\n"
	      "    --arena PATH          the arena file, if the workers open the store with\n"
	      "                          an explicit arena_path\n"
	      "    --create              create the store if it does not exist (a durable\n"
	      "                          one); without it a missing store is an error\n"
	      "    -h, --help            show this help\n"
	      "\n"
	      "EXIT STATUS\n"
	      "    0   stopped by SIGTERM or SIGINT; or --once, and every step succeeded\n"
	      "    1   the store failed (KEEL_E_PANIC or KEEL_E_IO: a journal write or sync\n"
	      "        failed; close every handle and reopen to recover); or --once, and a\n"
	      "        step failed (logged)\n"
	      "    2   usage error\n"
	      "    3   the store could not be opened (missing, refused, damaged: logged)\n"
	      "\n"
	      "EXAMPLES\n"
	      "    keeld /var/lib/app\n"
	      "    keeld --json --checkpoint-mb 32 --checkpoint-secs 60 /var/lib/app\n"
	      "    keeld --once /var/lib/app        # one round, e.g. from cron or a test\n"
	      "    systemd: [Service] Type=notify ExecStart=/usr/local/bin/keeld /var/lib/app\n", f);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("keeld: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'keeld --help'.\n", stderr);
	return EXIT_USAGE;
}

/* An unsigned number for `flag` in [0, max]. */
static int parse_num(const char *flag, const char *s, uint32_t max, uint32_t *out)
{
	char *end;

	if (!s)
		return usage_error("%s needs a value", flag);
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (!s[0] || *end || errno || s[0] == '-' || s[0] == '+' || v > max)
		return usage_error("%s needs a whole number from 0 to %u, got '%s'", flag, max, s);
	*out = (uint32_t)v;
	return 0;
}

static int parse_args(int argc, char **argv, struct config *c)
{
	static const struct {
		const char *name;
		size_t off;
		uint32_t max;
	} nums[] = {
		{ "--flush-ms", offsetof(struct config, flush_ms), INTERVAL_MS_MAX },
		{ "--reap-ms", offsetof(struct config, reap_ms), INTERVAL_MS_MAX },
		{ "--checkpoint-mb", offsetof(struct config, checkpoint_mb), 1u << 20 },
		{ "--checkpoint-secs", offsetof(struct config, checkpoint_secs), 7u * 86400u },
		{ "--stats-secs", offsetof(struct config, stats_secs), 7u * 86400u },
	};

	c->flush_ms = 5;
	c->reap_ms = 100;
	c->checkpoint_mb = 64;
	c->checkpoint_secs = 300;
	c->stats_secs = 60;
	for (int i = 1; i < argc; i++) {
		char *a = argv[i], *val = NULL, name[64];
		char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
		if (eq && (size_t)(eq - a) < sizeof(name)) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			val = eq + 1;
			a = name;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			exit(EXIT_STOPPED);
		}
		int flag = !val && (strcmp(a, "--once") == 0 || strcmp(a, "--json") == 0 ||
				    strcmp(a, "--create") == 0);
		if (flag) {
			*(strcmp(a, "--once") == 0 ? &c->once : strcmp(a, "--json") == 0 ? &c->json : &c->create) = 1;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(nums) / sizeof(nums[0]) && strcmp(a, nums[k].name) != 0; k++)
			;
		if (k < sizeof(nums) / sizeof(nums[0])) {
			if (!val)
				val = i + 1 < argc ? argv[++i] : NULL;
			int rc = parse_num(nums[k].name, val, nums[k].max, (uint32_t *)((char *)c + nums[k].off));
			if (rc)
				return rc;
			continue;
		}
		if (strcmp(a, "--arena") == 0) {
			if (!val)
				val = i + 1 < argc ? argv[++i] : NULL;
			if (!val || !val[0])
				return usage_error("--arena needs a file path");
			c->arena = val;
			continue;
		}
		if (a[0] == '-' && a[1])
			return usage_error("unknown option '%s'", argv[i]);
		if (c->dir)
			return usage_error("one STORE only (got '%s' and '%s')", c->dir, a);
		if (!a[0])
			return usage_error("STORE is an empty string");
		c->dir = a;
	}
	if (!c->dir)
		return usage_error("no STORE directory given");
	return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static const char *durability_name(int d)
{
	return d == KEEL_DURABILITY_MEMORY ? "memory" : d == KEEL_DURABILITY_ASYNC ? "async" : "sync";
}

static int open_store(void)
{
	keel_options_t opt;

	keel_options_init(&opt);
	if (!D.cfg.create)
		opt.flags |= KEEL_OPEN_NOCREATE;
	opt.arena_path = D.cfg.arena;
	/* keeld's own handle thread must not checkpoint on its own: keeld's
	 * rules decide, and log it. */
	opt.checkpoint_mb = UINT32_MAX;
	int rc = keel_open(D.cfg.dir, &opt, &D.h);
	if (rc) {
		json_object *f = jerr(rc);
		jset_str(f, "store", D.cfg.dir);
		emit("error", "open_failed", f, "cannot open store %s: %s: %s", D.cfg.dir, keel_strerror(rc),
		     keel_errmsg()[0] ? keel_errmsg() : "(no detail)");
		return EXIT_OPEN;
	}
	return 0;
}

/* The read-only handle for the timer views.  Without it keeld still reaps,
 * and keel_reclaim still re-arms claims; only the log says less. */
static void open_views(void)
{
	keel_options_t opt;
	keel_timer_stat_t ts;

	keel_options_init(&opt);
	opt.flags = KEEL_OPEN_READONLY | KEEL_OPEN_NOCREATE;
	opt.arena_path = D.cfg.arena;
	int rc = keel_open(D.cfg.dir, &opt, &D.ro);
	if (rc == 0 && (rc = keel_timer_stat(D.ro, &ts)) != 0) {
		keel_close(D.ro);
		D.ro = NULL;
	}
	if (rc)
		emit("warning", "warning", jerr(rc), "no read-only view of the store (%s: %s): re-armed timer claims are not named in the log",
		     keel_strerror(rc), keel_errmsg());
}

static void log_start(const keel_inspect_header_t *hd)
{
	json_object *f = jobj();

	jset_str(f, "store", D.cfg.dir);
	jset_str(f, "arena", hd->arena_path);
	jset_str(f, "durability", durability_name(hd->durability));
	json_object_object_add(f, "journaled", json_object_new_boolean(D.journaled));
	jset_u64(f, "flush_ms", D.cfg.flush_ms);
	jset_u64(f, "reap_ms", D.cfg.reap_ms);
	jset_u64(f, "checkpoint_mb", D.cfg.checkpoint_mb);
	jset_u64(f, "checkpoint_secs", D.cfg.checkpoint_secs);
	jset_u64(f, "next_lsn", hd->next_lsn);
	jset_u64(f, "durable_lsn", hd->durable_lsn);
	jset_u64(f, "checkpoint_lsn", hd->checkpoint_lsn);
	jset_u64(f, "watchdog_ms", D.watchdog_ms);
	json_object_object_add(f, "timer_views", json_object_new_boolean(D.ro != NULL));
	if (!D.journaled) {
		emit("info", "start", f, "serving %s (memory mode: no journal, so reaping only); reap every %u ms",
		     D.cfg.dir, D.cfg.reap_ms);
		return;
	}
	emit("info", "start", f, "serving %s (%s); flush every %u ms, reap every %u ms, checkpoint at %u MiB or %u s; next LSN %" PRIu64 ", durable %" PRIu64 ", checkpoint %" PRIu64,
	     D.cfg.dir, durability_name(hd->durability), D.cfg.flush_ms, D.cfg.reap_ms, D.cfg.checkpoint_mb,
	     D.cfg.checkpoint_secs, hd->next_lsn, hd->durable_lsn, hd->checkpoint_lsn);
}

/* Block SIGTERM and SIGINT (in every thread to come) and take them from a
 * signalfd; ignore SIGPIPE (a closed log pipe must not kill the daemon). */
static int setup_signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	D.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	return D.sfd < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	keel_inspect_header_t hd;
	const char *sig = NULL;
	int rc;

	if ((rc = parse_args(argc, argv, &D.cfg)))
		return rc;
	if (setup_signals() != 0) {
		emit("error", "error", NULL, "cannot set up signal handling: %s", strerror(errno));
		return EXIT_OPEN;
	}
	if ((rc = open_store()))
		return rc;
	if ((rc = keel_inspect_header(D.h, &hd))) {
		emit("error", "error", jerr(rc), "cannot read the store header: %s: %s", keel_strerror(rc), keel_errmsg());
		keel_close(D.h);
		return EXIT_OPEN;
	}
	D.journaled = hd.journaled;
	open_views();
	D.watchdog_ms = watchdog_interval_ms();
	D.reaps_seen = hd.reaps;
	D.ckpt_seen = D.ckpt_base = hd.checkpoint_journal_bytes;
	uint64_t now = mono_ms();
	D.ckpt_last_ms = now;
	log_start(&hd);
	notify("READY=1\nSTATUS=serving the store");
	while (!D.failed_exit) {
		now = mono_ms();
		round_once(now);
		if (D.cfg.once || D.failed_exit)
			break;
		if (wait_signal(sleep_ms(mono_ms()), &sig))
			break;
	}
	if (sig)
		emit("info", "stopping", NULL, "%s received: stopping", sig);
	notify(D.failed_exit ? "STOPPING=1\nSTATUS=the store failed" : "STOPPING=1");
	/* keel_close flushes what async commits promised, unless the store failed. */
	ckpt_stop();   /* a checkpoint being written is finished, not cut */
	keel_close(D.ro);
	rc = keel_close(D.h);
	if (rc && !D.failed_exit)
		step_error("error", "closing the store", rc, NULL);
	int code = D.failed_exit ? EXIT_FAILED : D.cfg.once && D.step_failed ? EXIT_FAILED : EXIT_STOPPED;
	json_object *f = jobj();
	jset_i64(f, "exit", code);
	jset_u64(f, "reaped", D.n.reaped);
	jset_u64(f, "checkpoints", D.n.checkpoints);
	jset_u64(f, "flushes", D.n.flushes);
	emit(code ? "error" : "info", "stopped", f, "stopped (exit %d): %" PRIu64 " flushes, %" PRIu64 " checkpoints, %" PRIu64 " reaped, %" PRIu64 " claims re-armed",
	     code, D.n.flushes, D.n.checkpoints, D.n.reaped, D.n.rearmed);
	return code;
}
