/*
 * peer_redis.c - Redis with appendonly yes and appendfsync always, the
 * durable-commit peer for many clients.
 *
 * keel-bench starts its own redis-server (found on PATH) for the run:
 *
 *   redis-server --port P --bind 127.0.0.1 --dir D --save "" \
 *                --appendonly yes --appendfsync always --daemonize no \
 *                --logfile D/redis.log
 *
 * P is a free loopback port (the kernel picks one for a socket bound to
 * port 0, which is then closed; a lost race to another program is retried
 * REDIS_START_TRIES times) and D is a directory under the bench directory.
 * The server dies with keel-bench (PR_SET_PDEATHSIG), is stopped with
 * SIGTERM (SIGKILL after REDIS_STOP_S_MAX seconds) at the end or on error,
 * and its directory goes with the bench tree.
 *
 * The protocol is RESP, spoken here over plain sockets:
 *   load   one connection sends MSET commands of BENCH_LOAD_BATCH pairs,
 *          one at a time, each answered by "+OK"; then DBSIZE must be N and
 *          a random sample of GETs must return the right values
 *   SET    one worker process holds `clients` connections (50) and poll()s
 *          them.  Each connection has exactly one SET in flight (no
 *          pipelining): when its "+OK" arrives, the op counts, its round
 *          trip is recorded as the latency, and the connection sends its
 *          next SET.  Any other reply is an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define REDIS_START_TRIES 3
#define REDIS_READY_S_MAX 10
#define REDIS_STOP_S_MAX 15
#define REDIS_IO_TIMEOUT_S 60
#define REDIS_CLIENTS_MAX 1000u
#define REDIS_LINE_MAX BENCH_REDIS_LINE_MAX
#define REDIS_POLL_MS 200

/* "*3\r\n$3\r\nSET\r\n$16\r\n" KEY "\r\n$100\r\n" VALUE "\r\n" */
#define SET_HEAD "*3\r\n$3\r\nSET\r\n$16\r\n"
#define SET_MID "\r\n$100\r\n"
#define SET_KEY_OFF (sizeof(SET_HEAD) - 1)
#define SET_VAL_OFF (SET_KEY_OFF + BENCH_KEY_BYTES + sizeof(SET_MID) - 1)
#define SET_BYTES (SET_VAL_OFF + BENCH_VALUE_BYTES + 2)
_Static_assert(BENCH_KEY_BYTES == 16 && BENCH_VALUE_BYTES == 100,
	       "the SET template spells the key and value lengths");

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int free_port(int *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return bench_fail(KEEL_E_OS, "Redis: socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0)
		rc = bench_fail(KEEL_E_OS, "Redis: finding a free loopback port: %s",
				strerror(errno));
	else
		*port = ntohs(a.sin_port);
	close(fd);
	return rc;
}

/* ---- the RESP connection layer (bench.h; timers_redis.c uses it too) ---------- */

int bench_rconn_open(int port, struct bench_rconn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { REDIS_IO_TIMEOUT_S, 0 };
	int one = 1;

	c->have = c->off = 0;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return bench_fail(KEEL_E_OS, "Redis: socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		int e = errno;

		close(c->fd);
		c->fd = -1;
		return bench_fail(KEEL_E_OS, "Redis: connect to 127.0.0.1:%d: %s", port,
				  strerror(e));
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return 0;
}

void bench_rconn_close(struct bench_rconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int bench_rconn_send(struct bench_rconn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return bench_fail(KEEL_E_OS, "Redis: send: %s",
					  w < 0 ? strerror(errno) : "connection closed");
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static int conn_fill(struct bench_rconn *c)
{
	ssize_t r;

	if (c->off == c->have)
		c->off = c->have = 0;
	if (c->have == sizeof(c->in)) {
		memmove(c->in, c->in + c->off, c->have - c->off);
		c->have -= c->off;
		c->off = 0;
	}
	do
		r = recv(c->fd, c->in + c->have, sizeof(c->in) - c->have, 0);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		return bench_fail(KEEL_E_OS, "Redis: recv: %s",
				  r < 0 ? strerror(errno) : "connection closed by the server");
	c->have += (size_t)r;
	return 0;
}

int bench_rconn_line(struct bench_rconn *c, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(c->in + c->off, '\n', c->have - c->off);

		if (nl) {
			size_t n = (size_t)(nl - (c->in + c->off));

			if (n > 0 && c->in[c->off + n - 1] == '\r')
				n--;
			if (n >= cap)
				n = cap - 1;
			memcpy(line, c->in + c->off, n);
			line[n] = 0;
			c->off = (size_t)(nl - c->in) + 1;
			return 0;
		}
		if (c->have - c->off >= REDIS_LINE_MAX)
			return bench_fail(KEEL_E_CORRUPT, "Redis: reply line over %u bytes",
					  REDIS_LINE_MAX);
		int rc = conn_fill(c);

		if (rc)
			return rc;
	}
}

int bench_rconn_bytes(struct bench_rconn *c, void *out, size_t n)
{
	char *p = out;

	while (n > 0) {
		size_t take = c->have - c->off;

		if (take == 0) {
			int rc = conn_fill(c);

			if (rc)
				return rc;
			continue;
		}
		if (take > n)
			take = n;
		memcpy(p, c->in + c->off, take);
		c->off += take;
		p += take;
		n -= take;
	}
	return 0;
}

static int expect_line(struct bench_rconn *c, const char *want, const char *what)
{
	char line[REDIS_LINE_MAX];
	int rc = bench_rconn_line(c, line, sizeof(line));

	if (rc)
		return bench_fail_ctx(rc, "%s", what);
	if (strcmp(line, want) != 0)
		return bench_fail(KEEL_E_STATE, "Redis: %s: reply \"%s\", expected \"%s\"", what,
				  line, want);
	return 0;
}

/* ---- server lifecycle ---------------------------------------------------------- */

static int spawn(struct bench_redis *r)
{
	char port[16], log[PATH_MAX];
	char *argv[] = { r->exe, "--port", port, "--bind", "127.0.0.1", "--dir", r->dir,
			 "--save", "", "--appendonly", "yes", "--appendfsync", "always",
			 "--daemonize", "no", "--logfile", log, NULL };
	pid_t self = getpid(), pid;
	int rc = bench_path(log, r->dir, "redis.log");

	if (rc)
		return rc;
	snprintf(port, sizeof(port), "%d", r->port);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return bench_fail(KEEL_E_OS, "Redis: fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != self)
			_exit(126);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		execv(r->exe, argv);
		_exit(127);
	}
	r->pid = pid;
	return 0;
}

/* The last line of the server's log, for an error message. */
static void log_tail(const struct bench_redis *r, char *out, size_t cap)
{
	char path[PATH_MAX], buf[2048];
	FILE *f;
	size_t n;

	out[0] = 0;
	if (bench_path(path, r->dir, "redis.log") || !(f = fopen(path, "r")))
		return;
	if (fseek(f, -(long)(sizeof(buf) - 1), SEEK_END) != 0)
		rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	const char *last = strrchr(buf, '\n');
	const char *src = last ? last + 1 : buf;
	size_t len = strlen(src);

	if (len >= cap)
		len = cap - 1;
	memcpy(out, src, len);
	out[len] = 0;
}

/* 0 once PING answers; KEEL_E_STATE when the server exited first. */
static int wait_ready(struct bench_redis *r)
{
	uint64_t limit = bench_now_ns() + REDIS_READY_S_MAX * 1000000000ull;
	struct bench_rconn c;
	int status, rc;

	for (;;) {
		rc = bench_interrupted_check();
		if (rc)
			return rc;
		if (waitpid(r->pid, &status, WNOHANG) == r->pid) {
			char tail[256];

			r->pid = 0;
			log_tail(r, tail, sizeof(tail));
			return bench_fail(KEEL_E_STATE, "redis-server exited at start (status "
					  "0x%x): %s", status, tail[0] ? tail : "no log");
		}
		if (bench_rconn_open(r->port, &c) == 0)
			break;
		if (bench_now_ns() > limit)
			return bench_fail(KEEL_E_TIMEOUT, "redis-server not accepting on port %d "
					  "after %d s", r->port, REDIS_READY_S_MAX);
		sleep_ms(20);
	}
	rc = bench_rconn_send(&c, "*1\r\n$4\r\nPING\r\n", 14);
	rc = rc ? rc : expect_line(&c, "+PONG", "PING");
	bench_rconn_close(&c);
	return rc;
}

int bench_redis_start(struct bench_redis *r, const char *dir)
{
	int rc;

	memset(r, 0, sizeof(*r));
	r->clients = bench_cfg.redis_clients;
	rc = bench_which("redis-server", r->exe, sizeof(r->exe));
	if (rc)
		return rc;
	if (snprintf(r->dir, sizeof(r->dir), "%s", dir) >= (int)sizeof(r->dir))
		return bench_fail(KEEL_E_INVAL, "Redis directory %s is too long", dir);
	rc = bench_mkdir(r->dir);
	for (int t = 0; !rc && t < REDIS_START_TRIES; t++) {
		rc = free_port(&r->port);
		rc = rc ? rc : spawn(r);
		rc = rc ? rc : wait_ready(r);
		if (rc == KEEL_E_STATE && t + 1 < REDIS_START_TRIES) {
			bench_progress("  Redis: %s; retrying", bench_errmsg());
			rc = 0;
			continue;
		}
		if (!rc) {
			bench_progress("  Redis: %s started on 127.0.0.1:%d (pid %d)", r->exe, r->port,
				       (int)r->pid);
			return 0;
		}
	}
	bench_redis_stop(r);
	return rc;
}

int bench_redis_stop(struct bench_redis *r)
{
	uint64_t limit;
	int status;

	if (r->pid <= 0)
		return 0;
	kill(r->pid, SIGTERM);
	limit = bench_now_ns() + REDIS_STOP_S_MAX * 1000000000ull;
	while (waitpid(r->pid, &status, WNOHANG) != r->pid) {
		if (bench_now_ns() > limit) {
			kill(r->pid, SIGKILL);
			while (waitpid(r->pid, &status, 0) < 0 && errno == EINTR)
				;
			r->pid = 0;
			return bench_fail(KEEL_E_TIMEOUT, "redis-server did not stop in %d s; killed",
					  REDIS_STOP_S_MAX);
		}
		sleep_ms(10);
	}
	r->pid = 0;
	return 0;
}

/* ---- load -------------------------------------------------------------------------- */

static size_t put_bulk(char *p, const void *data, size_t n)
{
	int h = sprintf(p, "$%zu\r\n", n);

	memcpy(p + h, data, n);
	memcpy(p + h + n, "\r\n", 2);
	return (size_t)h + n + 2;
}

static int redis_verify(struct bench_rconn *c)
{
	uint64_t st = bench_cfg.seed ^ 0x52454449ull;
	char line[REDIS_LINE_MAX], want[32];
	uint8_t key[BENCH_KEY_BYTES], val[BENCH_VALUE_BYTES + 2];
	int rc;

	rc = bench_rconn_send(c, "*1\r\n$6\r\nDBSIZE\r\n", 16);
	snprintf(want, sizeof(want), ":%llu", (unsigned long long)bench_cfg.keys);
	rc = rc ? rc : expect_line(c, want, "DBSIZE after load");
	for (unsigned n = 0; !rc && n < BENCH_VERIFY_SAMPLES; n++) {
		uint64_t i = bench_rand_next(&st) % bench_cfg.keys;
		char cmd[64];
		size_t len = (size_t)sprintf(cmd, "*2\r\n$3\r\nGET\r\n");

		bench_key(i, key);
		len += put_bulk(cmd + len, key, BENCH_KEY_BYTES);
		rc = bench_rconn_send(c, cmd, len);
		rc = rc ? rc : bench_rconn_line(c, line, sizeof(line));
		if (!rc && strcmp(line, "$100") != 0)
			rc = bench_fail(KEEL_E_CORRUPT, "Redis: GET key %llu after load: reply \"%s\"",
					(unsigned long long)i, line);
		rc = rc ? rc : bench_rconn_bytes(c, val, sizeof(val));
		rc = rc ? rc : bench_value_check(i, val, BENCH_VALUE_BYTES);
	}
	return rc;
}

int bench_redis_load(struct bench_redis *r)
{
	size_t cap = 64 + (size_t)BENCH_LOAD_BATCH * (BENCH_KEY_BYTES + BENCH_VALUE_BYTES + 32);
	uint8_t key[BENCH_KEY_BYTES], val[BENCH_VALUE_BYTES];
	uint64_t t0 = bench_now_ns();
	char *cmd = malloc(cap);
	struct bench_rconn c;
	int rc;

	if (!cmd)
		return bench_fail(KEEL_E_NOMEM, "Redis load: out of memory");
	rc = bench_rconn_open(r->port, &c);
	if (rc) {
		free(cmd);
		return rc;
	}
	for (uint64_t i = 0; !rc && i < bench_cfg.keys;) {
		uint64_t n = bench_cfg.keys - i;
		size_t len;

		if (n > BENCH_LOAD_BATCH)
			n = BENCH_LOAD_BATCH;
		len = (size_t)sprintf(cmd, "*%llu\r\n$4\r\nMSET\r\n", (unsigned long long)(2 * n + 1));
		for (uint64_t j = 0; j < n; j++, i++) {
			bench_key(i, key);
			bench_value(i, 0, val);
			len += put_bulk(cmd + len, key, sizeof(key));
			len += put_bulk(cmd + len, val, sizeof(val));
		}
		rc = bench_interrupted_check();
		rc = rc ? rc : bench_rconn_send(&c, cmd, len);
		rc = rc ? rc : expect_line(&c, "+OK", "MSET");
	}
	rc = rc ? rc : redis_verify(&c);
	bench_rconn_close(&c);
	free(cmd);
	if (!rc) {
		r->loaded = 1;
		bench_progress("  Redis: loaded %llu keys in %.2f s",
			       (unsigned long long)bench_cfg.keys, (double)(bench_now_ns() - t0) / 1e9);
	}
	return rc;
}

/* ---- SET worker ------------------------------------------------------------------- */

struct redis_client {
	struct bench_rconn c;
	char cmd[SET_BYTES];
	int busy;                 /* a SET is in flight */
	uint64_t sent_ns;         /* when it was sent */
};

struct redis_state {
	unsigned n;
	struct redis_client *cl;
	struct pollfd *pfd;
	size_t pos;
	uint64_t gen;
	int started;
};

static int redis_set_teardown(void *state);

static int redis_set_setup(void *ctx, unsigned wid, unsigned nworkers, void **state)
{
	const struct bench_redis *r = ctx;
	struct redis_state *s = calloc(1, sizeof(*s));
	unsigned per = r->clients / nworkers + (wid < r->clients % nworkers);
	int rc = 0;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "Redis worker: out of memory");
	*state = s;
	s->cl = calloc(per ? per : 1, sizeof(*s->cl));
	s->pfd = calloc(per ? per : 1, sizeof(*s->pfd));
	if (!s->cl || !s->pfd) {
		redis_set_teardown(s);
		return bench_fail(KEEL_E_NOMEM, "Redis worker: out of memory");
	}
	for (unsigned i = 0; i < per && !rc; i++) {
		struct redis_client *cl = &s->cl[i];

		rc = bench_rconn_open(r->port, &cl->c);
		if (rc)
			break;
		s->n++;
		memcpy(cl->cmd, SET_HEAD, SET_KEY_OFF);
		memcpy(cl->cmd + SET_KEY_OFF + BENCH_KEY_BYTES, SET_MID, sizeof(SET_MID) - 1);
		memcpy(cl->cmd + SET_BYTES - 2, "\r\n", 2);
		s->pfd[i].fd = cl->c.fd;
		s->pfd[i].events = POLLIN;
	}
	if (rc) {
		redis_set_teardown(s);
		*state = NULL;
		return rc;
	}
	s->pos = bench_seq_start(wid, nworkers);
	s->gen = (uint64_t)(wid + 1) << 40;
	return 0;
}

static int redis_send_set(struct redis_state *s, struct redis_client *cl)
{
	uint32_t idx = bench_seq.index[s->pos];

	memcpy(cl->cmd + SET_KEY_OFF, bench_seq.keys + s->pos * BENCH_KEY_BYTES, BENCH_KEY_BYTES);
	bench_value(idx, ++s->gen, (uint8_t *)cl->cmd + SET_VAL_OFF);
	s->pos = (s->pos + 1) & bench_seq.mask;
	cl->busy = 1;
	cl->sent_ns = bench_now_ns();
	return bench_rconn_send(&cl->c, cl->cmd, SET_BYTES);
}

/* Consumes every complete reply in cl's buffer (at most one: one SET is in
 * flight); *done gets how many. */
static int redis_replies(struct redis_client *cl, unsigned *done)
{
	struct bench_rconn *c = &cl->c;
	char *nl;

	*done = 0;
	while ((nl = memchr(c->in + c->off, '\n', c->have - c->off)) != NULL) {
		const char *line = c->in + c->off;
		size_t n = (size_t)(nl - line);

		if (!cl->busy || line[0] != '+')
			return bench_fail(KEEL_E_STATE, "Redis SET: unexpected reply \"%.*s\"",
					  (int)(n > 0 && line[n - 1] == '\r' ? n - 1 : n), line);
		c->off += n + 1;
		cl->busy = 0;
		bench_lat_record(bench_now_ns() - cl->sent_ns);
		(*done)++;
	}
	if (c->off == c->have)
		c->off = c->have = 0;
	return 0;
}

static int redis_set_batch(void *state, uint64_t *ops)
{
	struct redis_state *s = state;
	int rc = 0, ready;

	if (!s->started) {
		for (unsigned i = 0; i < s->n && !rc; i++)
			rc = redis_send_set(s, &s->cl[i]);
		s->started = 1;
		return rc;
	}
	ready = poll(s->pfd, s->n, REDIS_POLL_MS);
	if (ready < 0)
		return errno == EINTR ? 0 : bench_fail(KEEL_E_OS, "Redis SET: poll: %s",
							  strerror(errno));
	for (unsigned i = 0; i < s->n && ready > 0 && !rc; i++) {
		struct redis_client *cl = &s->cl[i];
		unsigned done;
		ssize_t r;

		if (!s->pfd[i].revents)
			continue;
		ready--;
		if (s->pfd[i].revents & (POLLERR | POLLNVAL))
			return bench_fail(KEEL_E_OS, "Redis SET: connection %u failed", i);
		r = recv(cl->c.fd, cl->c.in + cl->c.have, sizeof(cl->c.in) - cl->c.have,
			 MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0)
			return bench_fail(KEEL_E_OS, "Redis SET: connection %u: %s", i,
					  r < 0 ? strerror(errno) : "closed by the server");
		cl->c.have += (size_t)r;
		rc = redis_replies(cl, &done);
		if (!rc && done) {
			*ops += done;
			rc = redis_send_set(s, cl);
		}
	}
	return rc;
}

static int redis_set_teardown(void *state)
{
	struct redis_state *s = state;

	if (!s)
		return 0;
	for (unsigned i = 0; s->cl && i < s->n; i++)
		bench_rconn_close(&s->cl[i].c);
	free(s->cl);
	free(s->pfd);
	free(s);
	return 0;
}

const struct bench_worker bench_redis_set_worker = {
	.name = "Redis SET",
	.setup = redis_set_setup,
	.batch = redis_set_batch,
	.teardown = redis_set_teardown,
};
