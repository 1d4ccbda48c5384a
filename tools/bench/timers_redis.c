/*
 * timers_redis.c - the timers suite's peer: timers built the usual way on
 * Redis, as a sorted set whose members are timer names and whose scores
 * are due times in wall-clock milliseconds.
 *
 * The server is the one peer_redis.c starts (redis-server from PATH, a free
 * loopback port, dying with keel-bench through PR_SET_PDEATHSIG, stopped
 * with SIGTERM at the end or on error).  It starts with an append-only file
 * synced on every write, which is the sync suite's peer; this suite then
 * turns the AOF off with CONFIG SET appendonly no, so Redis runs in memory
 * only, as Keel does in memory mode.
 *
 * The operations, in RESP over plain sockets:
 *   set     ZADD timers.pending <due_ms> <name>: an upsert, as
 *           keel_timer_set is.  One worker process holds `clients`
 *           connections, each with one ZADD in flight (no pipelining).
 *   claim   one script, loaded once with SCRIPT LOAD and run with EVALSHA:
 *             local m = ZRANGEBYSCORE key -inf now LIMIT 0 1
 *             if none: nil
 *             ZADD key (now + lease) m[1]; return m[1]
 *           The earliest due member is moved to the end of its lease, so a
 *           claimer that dies loses it when the lease runs out (the usual
 *           visibility-timeout pattern; Redis cannot see the death itself).
 *   ack     ZREM timers.claim <name>; the reply must be 1.
 * A claim+ack worker is one process with one connection doing claim then
 * ack, one round trip each, until the claim script finds nothing due.
 *
 * Loading (not timed) sends ZADD commands of BENCH_LOAD_BATCH pairs.  Every
 * load is checked with ZCARD, and a drained pool with ZCARD after the run
 * (see timers.c), so a lost or doubled member fails the run.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "timers.h"

#define R_LINE_MAX BENCH_REDIS_LINE_MAX
#define R_POLL_MS 200
#define R_BULK_MAX 16384u           /* INFO memory fits */
#define R_CLAIMS_PER_BATCH 16u
#define R_ZADDS_PER_BATCH_MAX 64u

static const char claim_script[] =
	"local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)\n"
	"if #m == 0 then return false end\n"
	"redis.call('ZADD', KEYS[1], ARGV[2], m[1])\n"
	"return m[1]\n";

/* One reply: '+', '-', ':' or '$' (bulk; len -1 for nil). */
struct rreply {
	char type;
	long long num;            /* ':' value, '$' length */
	char text[R_LINE_MAX];    /* '+' and '-' line */
};

/*
 * Reads one reply.  A bulk goes to bulk (cap bytes, NUL-terminated; a longer
 * one is an error).  Arrays are not expected by anything here.
 */
static int rc_reply(struct bench_rconn *c, struct rreply *r, char *bulk, size_t cap)
{
	char line[R_LINE_MAX], crlf[2], *end;
	int rc = bench_rconn_line(c, line, sizeof(line));

	if (rc)
		return rc;
	memset(r, 0, sizeof(*r));
	r->type = line[0];
	switch (line[0]) {
	case '+':
	case '-':
		snprintf(r->text, sizeof(r->text), "%s", line + 1);
		return 0;
	case ':':
	case '$':
		errno = 0;
		r->num = strtoll(line + 1, &end, 10);
		if (errno || end == line + 1 || *end)
			return bench_fail(KEEL_E_CORRUPT, "Redis timers: bad reply \"%s\"", line);
		if (line[0] == ':' || r->num < 0)
			return 0;
		if (!bulk || (size_t)r->num >= cap)
			return bench_fail(KEEL_E_CORRUPT, "Redis timers: bulk reply of %lld bytes "
					  "(room for %zu)", r->num, cap ? cap - 1 : 0);
		rc = bench_rconn_bytes(c, bulk, (size_t)r->num);
		rc = rc ? rc : bench_rconn_bytes(c, crlf, 2);
		bulk[r->num] = 0;
		return rc;
	default:
		return bench_fail(KEEL_E_CORRUPT, "Redis timers: unexpected reply \"%s\"", line);
	}
}

/* Appends one bulk string to out at *len.  KEEL_E_LIMIT when it does not
 * fit in cap. */
static int bulk_put(char *out, size_t cap, size_t *len, const void *data, size_t n)
{
	size_t at = *len;
	int h = snprintf(out + at, cap - at, "$%zu\r\n", n);

	if (h < 0 || (size_t)h + n + 2 >= cap - at)
		return bench_fail(KEEL_E_LIMIT, "Redis timers: command over %zu bytes", cap);
	at += (size_t)h;
	memcpy(out + at, data, n);
	memcpy(out + at + n, "\r\n", 2);
	*len = at + n + 2;
	return 0;
}

/* Appends a RESP command of argc arguments to out at *len. */
static int cmd_put(char *out, size_t cap, size_t *len, int argc, const char *const *argv,
		   const size_t *lens)
{
	int n = snprintf(out + *len, cap - *len, "*%d\r\n", argc), rc = 0;

	if (n < 0 || (size_t)n >= cap - *len)
		return bench_fail(KEEL_E_LIMIT, "Redis timers: command over %zu bytes", cap);
	*len += (size_t)n;
	for (int i = 0; i < argc && !rc; i++)
		rc = bulk_put(out, cap, len, argv[i], lens[i]);
	return rc;
}

/* Sends one command of string arguments and reads its reply. */
static int rc_call(struct bench_rconn *c, struct rreply *r, char *bulk, size_t cap, int argc,
		   const char *const *argv)
{
	char cmd[4096];
	size_t lens[16], len = 0;
	int rc;

	if (argc > 16)
		return bench_fail(KEEL_E_INVAL, "Redis timers: %d arguments (16 at most)", argc);
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	rc = cmd_put(cmd, sizeof(cmd), &len, argc, argv, lens);
	rc = rc ? rc : bench_rconn_send(c, cmd, len);
	rc = rc ? rc : rc_reply(c, r, bulk, cap);
	if (!rc && r->type == '-')
		return bench_fail(KEEL_E_STATE, "Redis timers: %s: error reply \"%s\"", argv[0],
				  r->text);
	return rc;
}

static int expect_ok(struct bench_rconn *c, int argc, const char *const *argv)
{
	struct rreply r;
	int rc = rc_call(c, &r, NULL, 0, argc, argv);

	if (!rc && r.type != '+')
		rc = bench_fail(KEEL_E_STATE, "Redis timers: %s %s: reply type '%c', expected +OK",
				argv[0], argc > 1 ? argv[1] : "", r.type);
	return rc;
}

/* used_memory from INFO memory. */
static int used_memory(struct bench_rconn *c, uint64_t *out)
{
	static char info[R_BULK_MAX];
	const char *argv[] = { "INFO", "memory" };
	struct rreply r;
	const char *p;
	int rc = rc_call(c, &r, info, sizeof(info), 2, argv);

	if (rc)
		return rc;
	if (r.type != '$' || r.num < 0 || !(p = strstr(info, "used_memory:")))
		return bench_fail(KEEL_E_CORRUPT, "Redis timers: INFO memory has no used_memory");
	*out = strtoull(p + strlen("used_memory:"), NULL, 10);
	return 0;
}

/* ---- server ------------------------------------------------------------------------ */

int t_redis_start(struct t_redis *r, const char *dir)
{
	const char *aof[] = { "CONFIG", "SET", "appendonly", "no" };
	const char *load[] = { "SCRIPT", "LOAD", claim_script };
	struct bench_rconn c = { .fd = -1 };
	struct rreply rep;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = bench_redis_start(&r->srv, dir);
	if (rc)
		return rc;
	r->running = 1;
	rc = bench_rconn_open(r->srv.port, &c);
	rc = rc ? rc : expect_ok(&c, 4, aof);
	rc = rc ? rc : rc_call(&c, &rep, r->sha, sizeof(r->sha), 3, load);
	if (!rc && (rep.type != '$' || rep.num != 40))
		rc = bench_fail(KEEL_E_STATE, "Redis timers: SCRIPT LOAD: no 40-digit SHA-1 in the "
				"reply (type '%c', %lld bytes)", rep.type, rep.num);
	bench_rconn_close(&c);
	if (rc)
		t_redis_stop(r);
	return rc;
}

int t_redis_stop(struct t_redis *r)
{
	int rc = 0;

	if (r->running)
		rc = bench_redis_stop(&r->srv);
	r->running = 0;
	return rc;
}

int t_redis_card(struct t_redis *r, const char *zset, uint64_t *n)
{
	const char *argv[] = { "ZCARD", zset };
	struct bench_rconn c = { .fd = -1 };
	struct rreply rep;
	int rc = bench_rconn_open(r->srv.port, &c);

	rc = rc ? rc : rc_call(&c, &rep, NULL, 0, 2, argv);
	if (!rc && rep.type != ':')
		rc = bench_fail(KEEL_E_STATE, "Redis timers: ZCARD %s: reply type '%c'", zset,
				rep.type);
	if (!rc)
		*n = (uint64_t)rep.num;
	bench_rconn_close(&c);
	return rc;
}

/*
 * ZADDs members 0..n-1 into zset, scores from due(base, i, n), in commands of
 * BENCH_LOAD_BATCH pairs; each reply must count every member as added.
 */
static int zadd_range(struct bench_rconn *c, const char *zset, uint64_t n, uint64_t base,
		      int pool)
{
	size_t cap = 256 + (size_t)BENCH_LOAD_BATCH * (BENCH_KEY_BYTES + 64);
	char *cmd = malloc(cap);
	int rc = cmd ? 0 : bench_fail(KEEL_E_NOMEM, "Redis timers: out of memory");

	for (uint64_t i = 0; !rc && i < n;) {
		uint64_t b = n - i < BENCH_LOAD_BATCH ? n - i : BENCH_LOAD_BATCH;
		size_t len = (size_t)snprintf(cmd, cap, "*%llu\r\n",
					      (unsigned long long)(2 * b + 2));
		struct rreply rep;

		rc = bulk_put(cmd, cap, &len, "ZADD", 4);
		rc = rc ? rc : bulk_put(cmd, cap, &len, zset, strlen(zset));
		for (uint64_t j = 0; !rc && j < b; j++, i++) {
			uint8_t key[BENCH_KEY_BYTES];
			char score[24];
			uint64_t due = pool ? t_pool_due(base, i, n) : t_pending_due(base, i);
			int sl = snprintf(score, sizeof(score), "%llu", (unsigned long long)due);

			bench_key(i, key);
			rc = bulk_put(cmd, cap, &len, score, (size_t)sl);
			rc = rc ? rc : bulk_put(cmd, cap, &len, key, BENCH_KEY_BYTES);
		}
		rc = rc ? rc : bench_interrupted_check();
		rc = rc ? rc : bench_rconn_send(c, cmd, len);
		rc = rc ? rc : rc_reply(c, &rep, NULL, 0);
		if (!rc && (rep.type != ':' || (uint64_t)rep.num != b))
			rc = bench_fail(KEEL_E_STATE, "Redis timers: ZADD of %llu new members to %s: "
					"reply '%c' %lld (%s)", (unsigned long long)b, zset, rep.type,
					rep.num, rep.text);
	}
	free(cmd);
	return rc;
}

int t_redis_load_pending(struct t_redis *r, uint64_t n, double *bytes_per_timer)
{
	const char *del[] = { "DEL", T_ZSET_PENDING };
	struct bench_rconn c = { .fd = -1 };
	uint64_t before = 0, after = 0, card = 0;
	struct rreply rep;
	int rc = bench_rconn_open(r->srv.port, &c);

	rc = rc ? rc : rc_call(&c, &rep, NULL, 0, 2, del);
	rc = rc ? rc : used_memory(&c, &before);
	rc = rc ? rc : zadd_range(&c, T_ZSET_PENDING, n, keel_now_ms(), 0);
	rc = rc ? rc : used_memory(&c, &after);
	bench_rconn_close(&c);
	rc = rc ? rc : t_redis_card(r, T_ZSET_PENDING, &card);
	if (!rc && card != n)
		rc = bench_fail(KEEL_E_STATE, "Redis timers: ZCARD %s is %llu after loading %llu",
				T_ZSET_PENDING, (unsigned long long)card, (unsigned long long)n);
	if (!rc) {
		r->pending = n;
		*bytes_per_timer = ((double)after - (double)before) / (double)n;
	}
	return rc;
}

int t_redis_refill_pool(struct t_redis *r, uint64_t p)
{
	const char *del[] = { "DEL", T_ZSET_CLAIM };
	struct bench_rconn c = { .fd = -1 };
	struct rreply rep;
	uint64_t card = 0;
	int rc = bench_rconn_open(r->srv.port, &c);

	rc = rc ? rc : rc_call(&c, &rep, NULL, 0, 2, del);
	rc = rc ? rc : zadd_range(&c, T_ZSET_CLAIM, p, keel_now_ms(), 1);
	bench_rconn_close(&c);
	rc = rc ? rc : t_redis_card(r, T_ZSET_CLAIM, &card);
	if (!rc && card != p)
		rc = bench_fail(KEEL_E_STATE, "Redis timers: ZCARD %s is %llu after loading %llu",
				T_ZSET_CLAIM, (unsigned long long)card, (unsigned long long)p);
	return rc;
}

/* ---- ZADD worker: `clients` connections, one ZADD in flight each ---------------------- */

struct zclient {
	struct bench_rconn c;
	int busy;
};

struct zstate {
	const struct t_redis *r;
	unsigned n;
	struct zclient *cl;
	struct pollfd *pfd;
	size_t pos;
	uint64_t gen, base;
	int started;
};

static int zadd_teardown(void *state)
{
	struct zstate *s = state;

	if (!s)
		return 0;
	for (unsigned i = 0; s->cl && i < s->n; i++)
		bench_rconn_close(&s->cl[i].c);
	free(s->cl);
	free(s->pfd);
	free(s);
	return 0;
}

static int zadd_setup(void *ctx, unsigned wid, unsigned nworkers, void **state)
{
	const struct t_redis *r = ctx;
	unsigned per = r->clients / nworkers + (wid < r->clients % nworkers);
	struct zstate *s = calloc(1, sizeof(*s));
	int rc = 0;

	if (!s)
		return bench_fail(KEEL_E_NOMEM, "Redis ZADD worker: out of memory");
	s->r = r;
	s->cl = calloc(per ? per : 1, sizeof(*s->cl));
	s->pfd = calloc(per ? per : 1, sizeof(*s->pfd));
	if (!s->cl || !s->pfd) {
		zadd_teardown(s);
		return bench_fail(KEEL_E_NOMEM, "Redis ZADD worker: out of memory");
	}
	for (unsigned i = 0; i < per && !rc; i++) {
		rc = bench_rconn_open(r->srv.port, &s->cl[i].c);
		if (rc)
			break;
		s->pfd[i].fd = s->cl[i].c.fd;
		s->pfd[i].events = POLLIN;
		s->n++;
	}
	if (rc) {
		zadd_teardown(s);
		return rc;
	}
	s->pos = bench_seq_start(wid, nworkers);
	s->gen = (uint64_t)(wid + 1) << 40;
	s->base = keel_now_ms();
	*state = s;
	return 0;
}

/* ZADD of the next key of the sequence (an existing member) with a new due
 * time, as the Keel set workers do. */
static int zadd_send(struct zstate *s, struct zclient *cl)
{
	char cmd[128], score[24];
	const char *argv[4] = { "ZADD", T_ZSET_PENDING, score,
				(const char *)bench_seq.keys + s->pos * BENCH_KEY_BYTES };
	size_t lens[4] = { 4, sizeof(T_ZSET_PENDING) - 1, 0, BENCH_KEY_BYTES }, len = 0;
	uint64_t idx = bench_seq.index[s->pos];
	int rc;

	lens[2] = (size_t)snprintf(score, sizeof(score), "%llu",
				   (unsigned long long)t_pending_due(s->base, idx ^ ++s->gen));
	s->pos = (s->pos + 1) & bench_seq.mask;
	rc = cmd_put(cmd, sizeof(cmd), &len, 4, argv, lens);
	rc = rc ? rc : bench_rconn_send(&cl->c, cmd, len);
	cl->busy = !rc;
	return rc;
}

/* Consumes the complete replies in cl's buffer: ":0" (an update) each. */
static int zadd_replies(struct zclient *cl, unsigned *done)
{
	struct bench_rconn *c = &cl->c;
	char *nl;

	*done = 0;
	while ((nl = memchr(c->in + c->off, '\n', c->have - c->off)) != NULL) {
		const char *line = c->in + c->off;
		size_t n = (size_t)(nl - line);

		if (!cl->busy || n < 3 || memcmp(line, ":0\r", 3) != 0)
			return bench_fail(KEEL_E_STATE, "Redis ZADD: reply \"%.*s\", expected :0 (the "
					  "member exists, its score changes)",
					  (int)(n > 0 && line[n - 1] == '\r' ? n - 1 : n), line);
		c->off += n + 1;
		cl->busy = 0;
		(*done)++;
	}
	if (c->off == c->have)
		c->off = c->have = 0;
	return 0;
}

static int zadd_batch(void *state, uint64_t *ops)
{
	struct zstate *s = state;
	int rc = 0, ready;

	if (!s->started) {
		for (unsigned i = 0; i < s->n && !rc; i++)
			rc = zadd_send(s, &s->cl[i]);
		s->started = 1;
		return rc;
	}
	ready = poll(s->pfd, s->n, R_POLL_MS);
	if (ready < 0)
		return errno == EINTR ? 0 : bench_fail(KEEL_E_OS, "Redis ZADD: poll: %s",
							  strerror(errno));
	for (unsigned i = 0; i < s->n && ready > 0 && !rc; i++) {
		struct zclient *cl = &s->cl[i];
		unsigned done;
		ssize_t got;

		if (!s->pfd[i].revents)
			continue;
		ready--;
		if (s->pfd[i].revents & (POLLERR | POLLNVAL))
			return bench_fail(KEEL_E_OS, "Redis ZADD: connection %u failed", i);
		got = recv(cl->c.fd, cl->c.in + cl->c.have, sizeof(cl->c.in) - cl->c.have,
			   MSG_DONTWAIT);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got <= 0)
			return bench_fail(KEEL_E_OS, "Redis ZADD: connection %u: %s", i,
					  got < 0 ? strerror(errno) : "closed by the server");
		cl->c.have += (size_t)got;
		rc = zadd_replies(cl, &done);
		if (!rc && done) {
			*ops += done;
			rc = zadd_send(s, cl);
		}
	}
	return rc;
}

const struct bench_worker t_redis_zadd_worker = {
	.name = "Redis ZADD",
	.setup = zadd_setup,
	.batch = zadd_batch,
	.teardown = zadd_teardown,
};

/* ---- claim+ack worker: one connection, claim script then ZREM ---------------------- */

struct cstate {
	const struct t_redis *r;
	struct bench_rconn c;
};

static int claim_teardown(void *state)
{
	struct cstate *s = state;

	if (s) {
		bench_rconn_close(&s->c);
		free(s);
	}
	return 0;
}

static int claim_setup(void *ctx, unsigned wid, unsigned nworkers, void **state)
{
	struct cstate *s = calloc(1, sizeof(*s));
	int rc;

	(void)wid;
	(void)nworkers;
	if (!s)
		return bench_fail(KEEL_E_NOMEM, "Redis claim worker: out of memory");
	s->r = ctx;
	rc = bench_rconn_open(s->r->srv.port, &s->c);
	if (rc) {
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static int claim_batch(void *state, uint64_t *ops)
{
	struct cstate *s = state;

	for (unsigned i = 0; i < R_CLAIMS_PER_BATCH; i++) {
		char now[24], until[24], member[64];
		const char *claim[] = { "EVALSHA", s->r->sha, "1", T_ZSET_CLAIM, now, until };
		const char *ack[] = { "ZREM", T_ZSET_CLAIM, member };
		uint64_t t = keel_now_ms();
		struct rreply rep;
		int rc;

		snprintf(now, sizeof(now), "%llu", (unsigned long long)t);
		snprintf(until, sizeof(until), "%llu", (unsigned long long)(t + T_LEASE_MS));
		rc = rc_call(&s->c, &rep, member, sizeof(member), 6, claim);
		if (rc)
			return rc;
		if (rep.type == '$' && rep.num < 0)
			return BENCH_BATCH_DONE;          /* the pool is empty */
		if (rep.type != '$' || rep.num != BENCH_KEY_BYTES)
			return bench_fail(KEEL_E_STATE, "Redis claim: reply '%c' of %lld bytes, "
					  "expected a %u-byte member", rep.type, rep.num,
					  BENCH_KEY_BYTES);
		rc = rc_call(&s->c, &rep, NULL, 0, 3, ack);
		if (rc)
			return rc;
		if (rep.type != ':' || rep.num != 1)
			return bench_fail(KEEL_E_STATE, "Redis ack: ZREM %s %s: reply '%c' %lld, "
					  "expected :1 (the claimed member is gone)", T_ZSET_CLAIM,
					  member, rep.type, rep.num);
		(*ops)++;
	}
	return 0;
}

const struct bench_worker t_redis_claim_worker = {
	.name = "Redis claim+ack",
	.setup = claim_setup,
	.batch = claim_batch,
	.teardown = claim_teardown,
};
