/*
 * test_keeld.c - keeld, the per-store daemon (procs/keeld.c), run for real.
 *
 * The program under test is the real keeld binary (KEELD_BIN, its path
 * compiled in by tests/CMakeLists.txt).  One scenario on one durable store:
 *
 *   1. A worker process opens the store with ASYNC durability and a 60 s
 *      async window, commits, claims a timer under a long lease, and idles.
 *      Control: for 300 ms nothing makes its commits durable (the window is
 *      long and its own thread sleeps through it).
 *   2. keeld starts (--json, NOTIFY_SOCKET pointing at a socket of the test).
 *      It must send READY=1, and the durable LSN must reach the worker's
 *      last commit within 3 s: keeld is the only writable process awake.
 *   3. The worker is SIGKILLed.  keeld must log a "reap" event naming its
 *      pid within its --reap-ms interval (plus slack), its slot must leave
 *      keel_processes, and its timer claim must be re-armed ("rearm" event,
 *      keel_timer_stat: claimed 0, pending 1).
 *   4. 1.5 MiB of commits: keeld (--checkpoint-mb 1) must log a "checkpoint"
 *      event with reason "size", and the store's checkpoint LSN must move
 *      from 0 to that LSN.
 *   5. SIGTERM: keeld must exit 0 within 2 s, log "stopping" and "stopped",
 *      and send STOPPING=1.
 *   6. keeld --once exits 0 and logs start and stopped; every log line of
 *      the run is one JSON object with ts, level, event and msg.
 * A worker killed while it holds a partition lock (KEEL_CRASH_AT point
 * commit.visible): keeld logs the reap and the lock it released.
 * A further store: a checkpoint by time (--checkpoint-secs 1), and none
 * again while nothing new is committed.
 * Besides: --help (exit 0, every section), usage errors (exit 2, naming the
 * bad flag), a missing store (exit 3, naming it), and a memory-mode store
 * (keeld reaps only: --once exits 0 and says it has no journal).
 *
 * The parent watches the store through a read-only handle, which runs no
 * background thread and reaps nothing after its open, so whatever flushes,
 * reaps or checkpoints is keeld.
 */
#include <json-c/json.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "common/t.h"

#ifndef KEELD_BIN
#error "KEELD_BIN must name the keeld program"
#endif

#define WORKER_COMMITS 200
#define REAP_MS 50
#define FLUSH_MS 20
#define BIG_VALUE_BYTES (32u << 10)
#define BIG_COMMITS 48                      /* 1.5 MiB of values */

struct shared {
	volatile uint64_t last_lsn;
	volatile int ready;
	volatile int claimed;                /* the worker holds a timer claim */
};

/* ---- running keeld ----------------------------------------------------------------- */

/* Start keeld with args (NULL-terminated), stdout and stderr to `log`. */
static pid_t keeld_start(const char *log, const char *notify_path, const char *const *args)
{
	const char *argv[24];
	int n = 0;

	argv[n++] = KEELD_BIN;
	for (; *args && n < 23; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);   /* exists before keeld writes */
	CHECK_MSG(lfd >= 0, "open %s: %s", log, strerror(errno));
	close(lfd);
	pid_t pid = t_fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(126);
		if (notify_path)
			setenv("NOTIFY_SOCKET", notify_path, 1);
		else
			unsetenv("NOTIFY_SOCKET");
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

/* Run keeld to the end; returns its exit status (-1 if killed). */
static int keeld_run(const char *log, const char *const *args)
{
	int st;
	char sb[96];
	pid_t pid = keeld_start(log, NULL, args);

	t_waitpid(pid, &st);
	if (!WIFEXITED(st)) {
		fprintf(stderr, "test_keeld: keeld %s\n", t_status_str(st, sb, sizeof(sb)));
		return -1;
	}
	return WEXITSTATUS(st);
}

/* Wait up to ms for pid to exit; its status, or -2 if it did not. */
static int wait_exit(pid_t pid, int ms, uint64_t *took_ms)
{
	uint64_t t0 = t_now_ns();
	int st;

	while ((t_now_ns() - t0) / 1000000u < (uint64_t)ms) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			*took_ms = (t_now_ns() - t0) / 1000000u;
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		}
		t_sleep_ns(2000000);
	}
	return -2;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	CHECK_MSG(f != NULL, "open %s: %s", path, strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	CHECK(buf != NULL);
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			CHECK(buf != NULL);
		}
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		if (got == 0)
			break;
	}
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* ---- the JSON log ----------------------------------------------------------------- */

/* Every line of the log must be a JSON object with ts, level, event, msg. */
static unsigned check_json_log(const char *path)
{
	char *text = slurp(path), *save = NULL;
	unsigned lines = 0;

	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line);
		CHECK_MSG(o && json_object_is_type(o, json_type_object), "log line is not a JSON object: %s", line);
		static const char *const keys[] = { "ts", "level", "event", "msg" };
		for (size_t k = 0; k < 4; k++) {
			json_object *v;
			CHECK_MSG(json_object_object_get_ex(o, keys[k], &v) && json_object_is_type(v, json_type_string),
				  "log line lacks string field \"%s\": %s", keys[k], line);
		}
		json_object_put(o);
		lines++;
	}
	free(text);
	return lines;
}

/* The first event `name` in the log whose integer field `field` is `value`
 * (field NULL: any), or NULL.  The caller puts it. */
static json_object *find_event(const char *path, const char *name, const char *field, int64_t value)
{
	char *text = slurp(path), *save = NULL;
	json_object *found = NULL;

	for (char *line = strtok_r(text, "\n", &save); line && !found; line = strtok_r(NULL, "\n", &save)) {
		json_object *o = json_tokener_parse(line), *ev, *v;
		if (!o)
			continue;
		if (json_object_object_get_ex(o, "event", &ev) && strcmp(json_object_get_string(ev), name) == 0 &&
		    (!field || (json_object_object_get_ex(o, field, &v) && json_object_get_int64(v) == value)))
			found = json_object_get(o);
		json_object_put(o);
	}
	free(text);
	return found;
}

static json_object *await_event(const char *path, const char *name, const char *field, int64_t value, int ms)
{
	uint64_t t0 = t_now_ns();

	for (;;) {
		json_object *o = find_event(path, name, field, value);
		if (o || (t_now_ns() - t0) / 1000000u > (uint64_t)ms)
			return o;
		t_sleep_ns(5000000);
	}
}

static int64_t jint(json_object *o, const char *k)
{
	json_object *v;

	CHECK_MSG(json_object_object_get_ex(o, k, &v), "event lacks \"%s\": %s", k, json_object_to_json_string(o));
	return json_object_get_int64(v);
}

/* ---- the notify socket -------------------------------------------------------------- */

static int notify_socket(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK_MSG(fd >= 0, "socket: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	CHECK(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	CHECK_MSG(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind %s: %s", path, strerror(errno));
	return fd;
}

/* Wait up to ms for a datagram that contains `want` as one of its lines. */
static int notify_await(int fd, const char *want, int ms)
{
	uint64_t t0 = t_now_ns();
	char buf[512];

	for (;;) {
		int left = ms - (int)((t_now_ns() - t0) / 1000000u);
		struct pollfd p = { fd, POLLIN, 0 };
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return 0;
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue;
		buf[n] = 0;
		for (char *s = buf; s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : NULL)
			if (strncmp(s, want, strlen(want)) == 0 && (s[strlen(want)] == 0 || s[strlen(want)] == '\n'))
				return 1;
	}
}

/* ---- the store, seen from the parent --------------------------------------------------- */

static keel_inspect_header_t header(keel_t *ro)
{
	keel_inspect_header_t hd;

	CHECK_OK(keel_inspect_header(ro, &hd));
	return hd;
}

struct find_pid {
	pid_t pid;
	int listed, alive;
};

static int find_pid_fn(void *ctx, const keel_proc_info_t *p)
{
	struct find_pid *f = ctx;

	if (p->pid == f->pid) {
		f->listed = 1;
		f->alive = p->alive;
	}
	return 0;
}

static struct find_pid proc_state(keel_t *ro, pid_t pid)
{
	struct find_pid f = { pid, 0, 0 };

	CHECK_OK(keel_processes(ro, find_pid_fn, &f));
	return f;
}

/* ---- the worker ------------------------------------------------------------------------ */

/* Commits WORKER_COMMITS async puts and claims one timer, then idles until
 * it is killed.  Its handle's thread sleeps for the whole 60 s window. */
static void worker(const char *dir, struct shared *sh)
{
	keel_options_t o;
	keel_t *h;
	uint64_t lsn = 0;
	char key[32], val[64];

	keel_options_init(&o);
	o.flags = KEEL_OPEN_NOCREATE;
	o.durability = KEEL_DURABILITY_ASYNC;
	o.async_window_ms = 60000;
	CHECK_OK(keel_open(dir, &o, &h));
	CHECK_OK(keel_timer_set(h, "jobs", "t1", 2, keel_now_ms(), "payload", 7));
	for (int i = 0; i < WORKER_COMMITS; i++) {
		snprintf(key, sizeof(key), "k%04d", i);
		snprintf(val, sizeof(val), "value of %d", i);
		CHECK_OK(keel_put(h, "data", key, strlen(key), val, strlen(val), &lsn));
	}
	keel_claim_t c;
	CHECK_OK(keel_timer_claim(h, NULL, 0, 60000, 1000, &c, NULL, 0));
	sh->claimed = 1;
	sh->last_lsn = lsn;
	__atomic_store_n(&sh->ready, 1, __ATOMIC_RELEASE);
	for (;;)
		pause();
}

/* ---- sections ---------------------------------------------------------------------------- */

static void section_cli(void)
{
	t_store_t s;
	char log[PATH_MAX + 16], missing[PATH_MAX + 16];

	t_store_init(&s);
	snprintf(log, sizeof(log), "%s/cli.log", s.dir);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--help", NULL }), 0);
	char *out = slurp(log);
	static const char *const sections[] = { "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS",
						"EXAMPLES", "--checkpoint-mb", "--flush-ms", "--once", NULL };
	for (const char *const *w = sections; *w; w++)
		CHECK_MSG(strstr(out, *w) != NULL, "--help does not mention %s", *w);
	free(out);

	CHECK_OK(truncate(log, 0));
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ NULL }), 2);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--flush-ms", "soon", s.dir, NULL }), 2);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--bogus", s.dir, NULL }), 2);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--reap-ms", "-5", s.dir, NULL }), 2);
	out = slurp(log);
	CHECK_MSG(strstr(out, "no STORE") && strstr(out, "--flush-ms") && strstr(out, "'soon'") &&
			  strstr(out, "--bogus") && strstr(out, "'-5'"),
		  "usage errors do not name what is wrong:\n%s", out);
	free(out);

	CHECK_OK(truncate(log, 0));
	snprintf(missing, sizeof(missing), "%s/absent", s.dir);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--once", missing, NULL }), 3);
	out = slurp(log);
	CHECK_MSG(strstr(out, missing) && strstr(out, "KEEL_E_NOTFOUND"), "a missing store is not named:\n%s", out);
	free(out);
	t_store_destroy(&s);
}

static void section_memory(void)
{
	t_store_t s;
	char log[PATH_MAX + 16];

	t_store_init(&s);   /* memory mode */
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, NULL));
	snprintf(log, sizeof(log), "%s/mem.log", s.dir);
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--once", "--json", s.dir, NULL }), 0);
	json_object *o = find_event(log, "start", NULL, 0);
	CHECK_MSG(o != NULL, "no start event");
	json_object *j;
	CHECK(json_object_object_get_ex(o, "journaled", &j) && !json_object_get_boolean(j));
	CHECK(strstr(json_object_get_string(json_object_object_get(o, "msg")), "no journal") != NULL);
	json_object_put(o);
	t_store_destroy(&s);
}

static void section_daemon(void)
{
	t_store_t s;
	char log[PATH_MAX + 16], sock[PATH_MAX + 16];
	keel_t *ro;
	uint64_t took;

	t_store_init(&s);
	s.opt.durability = KEEL_DURABILITY_SYNC;   /* a durable store */
	t_store_open(&s);
	t_store_close(&s);
	snprintf(log, sizeof(log), "%s/keeld.log", s.dir);
	snprintf(sock, sizeof(sock), "%s/notify", s.dir);
	int nfd = notify_socket(sock);

	/* 1. The worker commits and idles; nothing flushes its commits. */
	struct shared *sh = t_shared_alloc(sizeof(*sh));
	pid_t w = t_fork();
	if (w == 0) {
		worker(s.dir, sh);
		_exit(0);
	}
	uint64_t t0 = t_now_ns();
	while (!__atomic_load_n(&sh->ready, __ATOMIC_ACQUIRE)) {
		int st;
		CHECK_MSG(waitpid(w, &st, WNOHANG) == 0, "the worker died before it was ready");
		CHECK_MSG(t_now_ns() - t0 < 10000000000ull, "the worker is not ready after 10 s");
		t_sleep_ns(1000000);
	}
	keel_options_t ro_opt = s.opt;
	ro_opt.flags = KEEL_OPEN_READONLY | KEEL_OPEN_NOCREATE;
	CHECK_OK(keel_open(s.dir, &ro_opt, &ro));
	uint64_t last = sh->last_lsn;
	CHECK(last >= WORKER_COMMITS);
	t_sleep_ns(300000000);
	keel_inspect_header_t hd = header(ro);
	CHECK_MSG(hd.durable_lsn < last,
		  "control: durable LSN %" PRIu64 " reached the worker's last commit %" PRIu64 " without keeld",
		  hd.durable_lsn, last);
	printf("test_keeld: without keeld, durable LSN %" PRIu64 " of %" PRIu64 " after 300 ms\n", hd.durable_lsn, last);

	/* 2. keeld makes them durable. */
	char reap_ms[16], flush_ms[16];
	snprintf(reap_ms, sizeof(reap_ms), "%d", REAP_MS);
	snprintf(flush_ms, sizeof(flush_ms), "%d", FLUSH_MS);
	pid_t k = keeld_start(log, sock, (const char *[]){ "--json", "--flush-ms", flush_ms, "--reap-ms", reap_ms,
							  "--checkpoint-mb", "1", "--checkpoint-secs", "0",
							  "--stats-secs", "0", s.dir, NULL });
	CHECK_MSG(notify_await(nfd, "READY=1", 5000), "keeld sent no READY=1 within 5 s");
	t0 = t_now_ns();
	while ((hd = header(ro)).durable_lsn < last) {
		CHECK_MSG(t_now_ns() - t0 < 3000000000ull, "keeld did not make LSN %" PRIu64 " durable in 3 s (durable %" PRIu64 ")",
			  last, hd.durable_lsn);
		t_sleep_ns(2000000);
	}
	printf("test_keeld: keeld made LSN %" PRIu64 " durable %.1f ms after READY\n", last, (t_now_ns() - t0) / 1e6);

	/* 3. The worker dies; keeld reaps it and re-arms its claim. */
	CHECK(sh->claimed);
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(ro, &ts));
	CHECK_EQ_U64(ts.claimed, 1);
	CHECK(proc_state(ro, w).listed);
	kill(w, SIGKILL);
	int wst;
	t_waitpid(w, &wst);
	t0 = t_now_ns();
	json_object *ev = await_event(log, "reap", "pid", w, REAP_MS + 2000);
	CHECK_MSG(ev != NULL, "keeld logged no reap of pid %d within %d ms", (int)w, REAP_MS + 2000);
	double reap_took = (t_now_ns() - t0) / 1e6;
	json_object_put(ev);
	CHECK_MSG(!proc_state(ro, w).listed, "pid %d is still registered after keeld logged its reap", (int)w);
	CHECK_MSG(reap_took < REAP_MS + 1000, "the reap took %.1f ms, over the %d ms interval + 1 s", reap_took, REAP_MS);
	printf("test_keeld: dead worker %d reaped and logged %.1f ms after its death\n", (int)w, reap_took);
	ev = await_event(log, "rearm", NULL, 0, 1000);
	CHECK_MSG(ev != NULL, "keeld logged no re-armed claim of the dead worker");
	CHECK_EQ_I64(jint(ev, "rearmed"), 1);
	json_object *names = json_object_object_get(ev, "timers");
	CHECK_MSG(names && json_object_array_length(names) == 1 &&
			  strcmp(json_object_get_string(json_object_array_get_idx(names, 0)), "jobs/t1") == 0,
		  "the rearm event does not name jobs/t1: %s", json_object_to_json_string(ev));
	json_object_put(ev);
	CHECK_OK(keel_timer_stat(ro, &ts));
	CHECK_EQ_U64(ts.claimed, 0);
	CHECK_EQ_U64(ts.pending, 1);

	/* 4. Checkpoint by size. */
	hd = header(ro);
	CHECK_EQ_U64(hd.checkpoint_lsn, 0);
	CHECK_MSG(find_event(log, "checkpoint", NULL, 0) == NULL, "keeld checkpointed before the journal grew 1 MiB");
	keel_t *wr;
	keel_options_t wo = s.opt;
	wo.flags = KEEL_OPEN_NOCREATE;
	CHECK_OK(keel_open(s.dir, &wo, &wr));
	char *big = malloc(BIG_VALUE_BYTES);
	CHECK(big != NULL);
	uint64_t seed = t_rand_stream(1), big_last = 0;
	for (int i = 0; i < BIG_COMMITS; i++) {
		char key[16];
		t_rand_fill(&seed, big, BIG_VALUE_BYTES);
		snprintf(key, sizeof(key), "b%03d", i);
		CHECK_OK(keel_put(wr, "big", key, strlen(key), big, BIG_VALUE_BYTES, &big_last));
	}
	free(big);
	CHECK_OK(keel_close(wr));
	ev = await_event(log, "checkpoint", NULL, 0, 3000);
	CHECK_MSG(ev != NULL, "keeld logged no checkpoint within 3 s of 1.5 MiB of commits");
	CHECK_MSG(strcmp(json_object_get_string(json_object_object_get(ev, "reason")), "size") == 0,
		  "checkpoint reason is not size: %s", json_object_to_json_string(ev));
	int64_t ck_lsn = jint(ev, "lsn");
	CHECK_MSG(ck_lsn > (int64_t)last && ck_lsn <= (int64_t)big_last, "checkpoint LSN %" PRId64 " outside (%" PRIu64 ", %" PRIu64 "]",
		  ck_lsn, last, big_last);
	CHECK_MSG(jint(ev, "journal_bytes_grown") >= (1 << 20), "checkpoint after %" PRId64 " journal bytes, under 1 MiB",
		  jint(ev, "journal_bytes_grown"));
	json_object_put(ev);
	hd = header(ro);
	CHECK_MSG(hd.checkpoint_lsn >= (uint64_t)ck_lsn, "store checkpoint LSN %" PRIu64 " below the logged %" PRId64,
		  hd.checkpoint_lsn, ck_lsn);
	printf("test_keeld: checkpoint by size at LSN %" PRId64 "\n", ck_lsn);

	/* 5. SIGTERM stops it at once, with exit 0. */
	kill(k, SIGTERM);
	int code = wait_exit(k, 2000, &took);
	CHECK_MSG(code != -2, "keeld did not exit within 2 s of SIGTERM");
	CHECK_MSG(code == 0, "keeld exited with %d after SIGTERM", code);
	CHECK_MSG(notify_await(nfd, "STOPPING=1", 1000), "keeld sent no STOPPING=1");
	ev = find_event(log, "stopping", NULL, 0);
	CHECK_MSG(ev != NULL, "no stopping event");
	json_object_put(ev);
	ev = find_event(log, "stopped", "exit", 0);
	CHECK_MSG(ev != NULL, "no stopped event with exit 0");
	json_object_put(ev);
	printf("test_keeld: SIGTERM: exit 0 in %" PRIu64 " ms\n", took);

	/* 6. --once, and the log's shape. */
	CHECK_EQ_I64(keeld_run(log, (const char *[]){ "--once", "--json", s.dir, NULL }), 0);
	unsigned lines = check_json_log(log);
	CHECK_MSG(lines >= 8, "only %u log lines", lines);
	close(nfd);
	CHECK_OK(keel_close(ro));
	t_store_destroy(&s);
}

/* Checkpoint by time: after --checkpoint-secs with commits since, and not
 * again while nothing new is committed. */
static void section_ckpt_time(void)
{
	t_store_t s;
	char log[PATH_MAX + 16];
	uint64_t lsn = 0, took;

	t_store_init(&s);
	s.opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "p", "k", 1, "v", 1, &lsn));
	t_store_close(&s);
	snprintf(log, sizeof(log), "%s/time.log", s.dir);
	pid_t k = keeld_start(log, NULL, (const char *[]){ "--json", "--checkpoint-mb", "0", "--checkpoint-secs", "1",
							  "--stats-secs", "0", s.dir, NULL });
	uint64_t t0 = t_now_ns();
	json_object *ev = await_event(log, "checkpoint", NULL, 0, 4000);
	double after_s = (t_now_ns() - t0) / 1e9;
	CHECK_MSG(ev != NULL, "no checkpoint by time within 4 s");
	CHECK_MSG(strcmp(json_object_get_string(json_object_object_get(ev, "reason")), "time") == 0,
		  "checkpoint reason is not time: %s", json_object_to_json_string(ev));
	CHECK_EQ_I64(jint(ev, "lsn"), (int64_t)lsn);
	CHECK_MSG(after_s >= 0.9, "checkpoint by time after %.2f s, before --checkpoint-secs 1", after_s);
	json_object_put(ev);
	t_sleep_ns(1300000000);   /* nothing new: no second checkpoint */
	kill(k, SIGTERM);
	CHECK_EQ_I64(wait_exit(k, 2000, &took), 0);
	ev = find_event(log, "stopped", NULL, 0);
	CHECK_MSG(ev != NULL, "no stopped event");
	CHECK_EQ_I64(jint(ev, "checkpoints"), 1);
	json_object_put(ev);
	t_store_destroy(&s);
}

/* A worker dies holding a partition lock (KEEL_CRASH_AT commit.visible):
 * keeld reaps it and logs the lock it released. */
static void section_lock(void)
{
	t_store_t s;
	char log[PATH_MAX + 16];
	uint64_t took;

	t_store_init(&s);   /* memory mode: no journal needed for locks */
	t_store_open(&s);
	CHECK_OK(keel_put(s.h, "acct", "a", 1, "1", 1, NULL));
	t_store_close(&s);
	snprintf(log, sizeof(log), "%s/lock.log", s.dir);
	pid_t k = keeld_start(log, NULL, (const char *[]){ "--json", "--reap-ms", "50", "--stats-secs", "0", s.dir, NULL });
	json_object *started = await_event(log, "start", NULL, 0, 5000);
	CHECK_MSG(started != NULL, "keeld did not start");
	json_object_put(started);
	pid_t w = t_fork();
	if (w == 0) {
		keel_t *h;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_crash_at("commit.visible", 1));
		keel_put(h, "acct", "a", 1, "2", 1, NULL);
		_exit(3);   /* not reached: the crash point SIGKILLs */
	}
	int st;
	char sb[96];
	t_waitpid(w, &st);
	CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the worker %s, not killed at commit.visible",
		  t_status_str(st, sb, sizeof(sb)));
	json_object *ev = await_event(log, "reap", "pid", w, 2000);
	CHECK_MSG(ev != NULL, "keeld logged no reap of pid %d", (int)w);
	CHECK_MSG(jint(ev, "partition_locks") >= 1, "the reap event counts no lock held: %s", json_object_to_json_string(ev));
	json_object_put(ev);
	ev = await_event(log, "lock", "holder_pid", w, 1000);
	CHECK_MSG(ev != NULL, "keeld logged no lock released of dead pid %d", (int)w);
	CHECK_MSG(strstr(json_object_get_string(json_object_object_get(ev, "lock")), "acct") != NULL,
		  "the lock event does not name partition acct: %s", json_object_to_json_string(ev));
	json_object_put(ev);
	kill(k, SIGTERM);
	CHECK_EQ_I64(wait_exit(k, 2000, &took), 0);
	/* The partition is usable, and the dead worker's commit is whole. */
	t_store_open(&s);
	char v[4];
	size_t vlen;
	CHECK_OK(keel_get(s.h, "acct", "a", 1, v, sizeof(v), &vlen, NULL));
	CHECK_EQ_U64(vlen, 1);
	CHECK(v[0] == '2');
	CHECK_OK(keel_put(s.h, "acct", "a", 1, "3", 1, NULL));
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

int main(int argc, char **argv)
{
	int ok = 1;

	t_begin("test_keeld");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			printf("usage: test_keeld\n  runs keeld (%s) against fresh stores; exit 0 pass, 1 fail\n", KEELD_BIN);
			return 0;
		}
		fprintf(stderr, "test_keeld: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	t_seed_init(0, 0);
	if (access(KEELD_BIN, X_OK) != 0) {
		fprintf(stderr, "test_keeld: %s: %s\n", KEELD_BIN, strerror(errno));
		return T_EXIT_FAIL;
	}
	ok &= t_run_section("cli", section_cli);
	ok &= t_run_section("memory", section_memory);
	ok &= t_run_section("daemon", section_daemon);
	ok &= t_run_section("lock", section_lock);
	ok &= t_run_section("ckpt_time", section_ckpt_time);
	printf("test_keeld: %s\n", ok ? "PASS" : "FAIL");
	return ok ? T_EXIT_PASS : T_EXIT_FAIL;
}
