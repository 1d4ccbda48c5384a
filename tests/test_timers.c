/*
 * test_timers.c - durable timers: set, claim, ack, leases, dead letters,
 * waiting, exclusivity among processes, kill -9 of claimers, restarts.
 *
 * Every section runs in a child of its own (t_run_section).  Timing checks
 * compare against the timer's own parameters (a lease, a far-away due time),
 * never against a tight absolute bound.
 *
 *   mid_apply  a claimer killed half-way through applying its step: the
 *              next claim hands out the timer its transaction set only
 *              with the transaction's other write visible
 *
 *   heap_order claims against a model, with many equal due times, and the
 *              audit's check of every heap
 *
 *   --soak   many more kills and timers in the kill -9 section
 */
#include "common/t.h"

static int soak;

static void open_mem(t_store_t *s, uint32_t max_deliveries)
{
	t_store_init(s);
	s->opt.timer_max_deliveries = max_deliveries;
	t_store_open(s);
}

static int count_fn(void *ctx, const keel_timer_info_t *t)
{
	(void)t;
	(*(int *)ctx)++;
	return 0;
}

struct order {
	uint64_t last_due;
	char last_part[KEEL_PARTITION_NAME_MAX + 1];
	int n, bad;
};

static int order_fn(void *ctx, const keel_timer_info_t *t)
{
	struct order *o = ctx;
	int c = strcmp(o->last_part, t->part);
	if (o->n && (c > 0 || (c == 0 && t->due_ms < o->last_due)))
		o->bad++;
	snprintf(o->last_part, sizeof(o->last_part), "%s", t->part);
	o->last_due = t->due_ms;
	o->n++;
	return 0;
}

static void sec_basic(void)
{
	t_store_t s;
	keel_claim_t c;
	char buf[64];
	uint64_t now = keel_now_ms();
	int existed = 0, n = 0;

	open_mem(&s, 0);
	/* Bad input changes nothing. */
	CHECK_RC(keel_timer_set(s.h, "bad name", "k", 1, now, NULL, 0), KEEL_E_NAME);
	CHECK_RC(keel_timer_set(s.h, "p", "", 0, now, NULL, 0), KEEL_E_KEYSIZE);
	CHECK_RC(keel_timer_set(s.h, "p", buf, KEEL_TIMER_KEY_MAX + 1, now, NULL, 0), KEEL_E_KEYSIZE);
	CHECK_RC(keel_timer_set(s.h, "p", "k", 1, KEEL_TIMER_DUE_MAX + 1, NULL, 0), KEEL_E_INVAL);
	CHECK_RC(keel_timer_set(s.h, "p", "k", 1, now, buf, KEEL_TIMER_PAYLOAD_MAX + 1), KEEL_E_VALSIZE);
	CHECK_RC(keel_timer_set(s.h, "~timers", "k", 1, now, NULL, 0), KEEL_E_NAME);
	CHECK_RC(keel_put(s.h, "~timers", "k", 1, "v", 1, NULL), KEEL_E_NAME);
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 0, 0, &c, NULL, 0), KEEL_E_INVAL);
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0), KEEL_E_TIMEOUT);
	CHECK_OK(keel_timers(s.h, NULL, KEEL_TIMER_ALL, count_fn, &n));
	CHECK(n == 0);

	/* Three timers in two partitions; claims come earliest first. */
	CHECK_OK(keel_timer_set(s.h, "a", "t1", 2, now - 30, "one", 3));
	CHECK_OK(keel_timer_set(s.h, "b", "t2", 2, now - 20, "two", 3));
	CHECK_OK(keel_timer_set(s.h, "a", "t3", 2, now - 10, "three", 5));
	CHECK_OK(keel_timer_set(s.h, "a", "later", 5, now + 3600 * 1000, "x", 1));
	/* A timer key and a value key of the same name do not clash. */
	CHECK_OK(keel_put(s.h, "a", "t1", 2, "kv", 2, NULL));
	uint64_t keys;
	CHECK_OK(keel_count(s.h, "a", &keys));
	CHECK(keys == 1);
	keel_stat_t st;
	CHECK_OK(keel_stat(s.h, &st));
	CHECK(st.keys == 1 && st.partitions == 1);
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 4 && ts.claimed == 0 && ts.next_due_ms == now - 30);

	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 0, &c, buf, sizeof(buf)));
	CHECK(strcmp(c.part, "a") == 0 && c.klen == 2 && memcmp(c.key, "t1", 2) == 0);
	CHECK(c.plen == 3 && memcmp(buf, "one", 3) == 0 && c.deliveries == 1 && c.due_ms == now - 30);
	keel_claim_t c1 = c;
	/* Limited to partition a: t3 (b's t2 is earlier but not asked for). */
	const char *pa[] = { "a" };
	CHECK_OK(keel_timer_claim(s.h, pa, 1, 10000, 0, &c, buf, sizeof(buf)));
	CHECK(memcmp(c.key, "t3", 2) == 0);
	keel_claim_t c3 = c;
	/* Nothing else due in a. */
	CHECK_RC(keel_timer_claim(s.h, pa, 1, 10000, 0, &c, buf, sizeof(buf)), KEEL_E_TIMEOUT);
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 2 && ts.claimed == 2);

	/* Ack; a second ack of the same claim is refused. */
	CHECK_OK(keel_timer_ack(s.h, &c1));
	CHECK_RC(keel_timer_ack(s.h, &c1), KEEL_E_STATE);
	/* A forged token is refused and changes nothing. */
	keel_claim_t forged = c3;
	forged.token += 1000;
	CHECK_RC(keel_timer_ack(s.h, &forged), KEEL_E_STATE);
	CHECK_RC(keel_timer_extend(s.h, &forged, 100), KEEL_E_STATE);
	CHECK_RC(keel_timer_release(s.h, &forged, 0), KEEL_E_STATE);
	/* Release t3 and it is due again, delivery 2. */
	CHECK_OK(keel_timer_release(s.h, &c3, 0));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 0, &c, buf, sizeof(buf)));
	CHECK(strcmp(c.part, "b") == 0);   /* b's t2 (due -20) before a's t3 (-10) */
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 0, &c3, buf, sizeof(buf)));
	CHECK(memcmp(c3.key, "t3", 2) == 0 && c3.deliveries == 2);

	/* Set is an upsert: rescheduling a claimed timer ends the claim. */
	CHECK_OK(keel_timer_set(s.h, "a", "t3", 2, now + 7200 * 1000, "new", 3));
	CHECK_RC(keel_timer_ack(s.h, &c3), KEEL_E_STATE);
	keel_timer_info_t info;
	CHECK_OK(keel_timer_get(s.h, "a", "t3", 2, &info, buf, sizeof(buf)));
	CHECK(info.state == KEEL_TIMER_PENDING && info.due_ms == now + 7200 * 1000 && info.deliveries == 0);
	CHECK(info.plen == 3 && memcmp(buf, "new", 3) == 0);
	CHECK_RC(keel_timer_get(s.h, "a", "none", 4, &info, NULL, 0), KEEL_E_NOTFOUND);

	/* Cancel. */
	CHECK_OK(keel_timer_cancel(s.h, "a", "t3", 2, &existed));
	CHECK(existed == 1);
	CHECK_OK(keel_timer_cancel(s.h, "a", "t3", 2, &existed));
	CHECK(existed == 0);

	/* Listing: by partition, then due time. */
	for (int i = 0; i < 50; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%d", i);
		CHECK_OK(keel_timer_set(s.h, i % 2 ? "x" : "y", k, strlen(k), now + (uint64_t)((i * 7919) % 1000) * 1000,
					NULL, 0));
	}
	struct order o = { 0 };
	CHECK_OK(keel_timers(s.h, NULL, KEEL_TIMER_ALL, order_fn, &o));
	CHECK(o.bad == 0 && o.n == 50 + 2);   /* + b's claimed t2, a's "later" */
	n = 0;
	CHECK_OK(keel_timers(s.h, "x", KEEL_TIMER_PENDING, count_fn, &n));
	CHECK(n == 25);
	n = 0;
	CHECK_OK(keel_timers(s.h, NULL, KEEL_TIMER_CLAIMED, count_fn, &n));
	CHECK(n == 1);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* The flow-engine step: state change, ack and next timer in one commit. */
static void sec_txn(void)
{
	t_store_t s;
	keel_claim_t c;
	keel_txn_t *t;
	uint64_t now = keel_now_ms();

	open_mem(&s, 0);
	CHECK_OK(keel_timer_set(s.h, "flow1", "next", 4, now, "step1", 5));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 0, &c, NULL, 0));
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "flow1", "state", 5, "1", 1));
	CHECK_OK(keel_txn_timer_ack(t, &c));
	CHECK_OK(keel_txn_timer_set(t, "flow1", "next", 4, now, "step2", 5));
	CHECK_OK(keel_txn_commit(t, NULL));
	keel_timer_info_t info;
	char buf[16];
	CHECK_OK(keel_timer_get(s.h, "flow1", "next", 4, &info, buf, sizeof(buf)));
	CHECK(info.state == KEEL_TIMER_PENDING && memcmp(buf, "step2", 5) == 0);

	/* The same step with a claim that was lost: nothing is applied. */
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 0, &c, NULL, 0));
	keel_claim_t stale = c;
	CHECK_OK(keel_timer_release(s.h, &c, 0));
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_OK(keel_txn_put(t, "flow1", "state", 5, "2", 1));
	CHECK_OK(keel_txn_timer_ack(t, &stale));
	CHECK_OK(keel_txn_timer_set(t, "flow1", "next", 4, now, "step3", 5));
	CHECK_RC(keel_txn_commit(t, NULL), KEEL_E_STATE);
	char v[4];
	size_t vlen;
	CHECK_OK(keel_get(s.h, "flow1", "state", 5, v, sizeof(v), &vlen, NULL));
	CHECK(vlen == 1 && v[0] == '1');
	CHECK_OK(keel_timer_get(s.h, "flow1", "next", 4, &info, buf, sizeof(buf)));
	CHECK(memcmp(buf, "step2", 5) == 0);

	/* Timers do not count against the partitions of a transaction. */
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	for (unsigned i = 0; i < KEEL_TXN_PARTITIONS_MAX; i++) {
		char pn[16];
		snprintf(pn, sizeof(pn), "f%u", i);
		CHECK_OK(keel_txn_put(t, pn, "state", 5, "0", 1));
		CHECK_OK(keel_txn_timer_set(t, pn, "next", 4, now + i, NULL, 0));
	}
	CHECK_RC(keel_txn_put(t, "one-more", "state", 5, "0", 1), KEEL_E_LIMIT);
	CHECK_OK(keel_txn_commit(t, NULL));
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 1 + KEEL_TXN_PARTITIONS_MAX);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

static void sec_lease(void)
{
	t_store_t s;
	keel_claim_t c, c2;
	uint64_t now = keel_now_ms();

	open_mem(&s, 0);
	CHECK_OK(keel_timer_set(s.h, "p", "k", 1, now, NULL, 0));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 100, 0, &c, NULL, 0));
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 100, 0, &c2, NULL, 0), KEEL_E_TIMEOUT);
	CHECK_OK(keel_timer_extend(s.h, &c, 300));
	t_sleep_ns(150 * 1000000ull);
	/* Extended: still held after the first lease would have ended. */
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 100, 0, &c2, NULL, 0), KEEL_E_TIMEOUT);
	/* A waiting claim gets it once the lease runs out. */
	uint64_t t0 = t_now_ns();
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 5000, &c2, NULL, 0));
	CHECK(c2.deliveries == 2 && c2.token != c.token);
	CHECK((t_now_ns() - t0) < 4000 * 1000000ull);
	CHECK_RC(keel_timer_ack(s.h, &c), KEEL_E_STATE);
	CHECK_RC(keel_timer_extend(s.h, &c, 100), KEEL_E_STATE);
	/* Release with a new due time keeps the delivery count. */
	CHECK_OK(keel_timer_release(s.h, &c2, now + 3600 * 1000));
	keel_timer_info_t info;
	CHECK_OK(keel_timer_get(s.h, "p", "k", 1, &info, NULL, 0));
	CHECK(info.due_ms == now + 3600 * 1000 && info.deliveries == 2 && info.state == KEEL_TIMER_PENDING);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

static void sec_dead(void)
{
	t_store_t s;
	keel_claim_t c;
	uint64_t now = keel_now_ms();
	int n = 0;

	open_mem(&s, 2);
	CHECK_OK(keel_timer_set(s.h, "p", "poison", 6, now, "pl", 2));
	CHECK_OK(keel_timer_set(s.h, "p", "fine", 4, now + 1, NULL, 0));
	for (int i = 0; i < 2; i++) {
		CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0));
		CHECK(memcmp(c.key, "poison", 6) == 0 && c.deliveries == (uint32_t)i + 1);
		CHECK_OK(keel_timer_release(s.h, &c, 0));
	}
	/* The third claim skips the poison timer to the dead letters. */
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0));
	CHECK(memcmp(c.key, "fine", 4) == 0);
	CHECK_OK(keel_timer_ack(s.h, &c));
	CHECK_OK(keel_timers(s.h, NULL, KEEL_TIMER_DEAD, count_fn, &n));
	CHECK(n == 1);
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.dead == 1 && ts.pending == 0 && ts.dead_lettered == 1);
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0), KEEL_E_TIMEOUT);
	CHECK_RC(keel_timer_drop(s.h, "p", "fine", 4), KEEL_E_NOTFOUND);   /* acked: gone */
	CHECK_OK(keel_timer_set(s.h, "p", "pend", 4, now + 3600 * 1000, NULL, 0));
	CHECK_RC(keel_timer_drop(s.h, "p", "pend", 4), KEEL_E_STATE);         /* not dead */
	CHECK_RC(keel_timer_requeue(s.h, "p", "pend", 4, 0), KEEL_E_STATE);
	CHECK_OK(keel_timer_cancel(s.h, "p", "pend", 4, NULL));
	/* Requeue: pending again with a fresh count. */
	CHECK_OK(keel_timer_requeue(s.h, "p", "poison", 6, 0));
	char buf[4];
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, buf, sizeof(buf)));
	CHECK(c.deliveries == 1 && c.plen == 2 && memcmp(buf, "pl", 2) == 0);
	CHECK_RC(keel_timer_requeue(s.h, "p", "poison", 6, 0), KEEL_E_STATE);
	CHECK_OK(keel_timer_release(s.h, &c, 0));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0));
	CHECK_OK(keel_timer_release(s.h, &c, 0));
	CHECK_RC(keel_timer_claim(s.h, NULL, 0, 1000, 0, &c, NULL, 0), KEEL_E_TIMEOUT);
	CHECK_OK(keel_timer_drop(s.h, "p", "poison", 6));
	/* Restore writes a dead letter as it was. */
	keel_txn_t *t;
	CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
	CHECK_RC(keel_txn_timer_restore(t, "p", "r", 1, now, "x", 1, KEEL_TIMER_CLAIMED, 0), KEEL_E_INVAL);
	CHECK_OK(keel_txn_timer_restore(t, "p", "r", 1, now, "x", 1, KEEL_TIMER_DEAD, 7));
	CHECK_OK(keel_txn_commit(t, NULL));
	keel_timer_info_t info;
	CHECK_OK(keel_timer_get(s.h, "p", "r", 1, &info, NULL, 0));
	CHECK(info.state == KEEL_TIMER_DEAD && info.deliveries == 7 && info.due_ms == now);
	CHECK_OK(keel_timer_drop(s.h, "p", "r", 1));
	CHECK_RC(keel_timer_drop(s.h, "p", "poison", 6), KEEL_E_NOTFOUND);
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.dead == 0 && ts.pending == 0 && ts.claimed == 0);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/* A waiter on a far timer wakes early when another process sets a near one. */
static void sec_wake(void)
{
	t_store_t s;
	uint64_t now = keel_now_ms();
	volatile uint64_t *shared = t_shared_alloc(4096);

	open_mem(&s, 0);
	CHECK_OK(keel_timer_set(s.h, "p", "far", 3, now + 60000, NULL, 0));
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		keel_claim_t c;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		shared[0] = 1;
		CHECK_OK(keel_timer_claim(h, NULL, 0, 1000, 30000, &c, NULL, 0));
		CHECK(memcmp(c.key, "near", 4) == 0);
		shared[1] = keel_now_ms();
		keel_close(h);
		exit(0);
	}
	while (!shared[0])
		t_sleep_ns(1000000);
	t_sleep_ns(100 * 1000000ull);   /* let it sleep on the far timer */
	uint64_t due = keel_now_ms() + 200;
	CHECK_OK(keel_timer_set(s.h, "p", "near", 4, due, NULL, 0));
	t_wait_exit0(pid, "waiter");
	/* Fired no earlier than due, and long before the far timer. */
	CHECK(shared[1] >= due && shared[1] < now + 30000);
	printf("test_timers: woke for the near timer %llu ms after its due time\n",
	       (unsigned long long)(shared[1] - due));
	t_store_destroy(&s);
}

/* A claimer killed while holding: the timer is redelivered long before the
 * lease would have ended; a stopped claimer loses it when the lease ends. */
static void sec_dead_holder(void)
{
	t_store_t s;
	keel_claim_t c;
	uint64_t now = keel_now_ms();

	open_mem(&s, 0);
	CHECK_OK(keel_timer_set(s.h, "p", "k", 1, now, NULL, 0));
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		keel_claim_t cc;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_timer_claim(h, NULL, 0, 600000, 0, &cc, NULL, 0));
		raise(SIGKILL);
	}
	int st;
	t_waitpid(pid, &st);
	CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	uint64_t t0 = t_now_ns();
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 1000, 60000, &c, NULL, 0));
	uint64_t ms = (t_now_ns() - t0) / 1000000;
	CHECK(c.deliveries == 2 && ms < 60000);
	printf("test_timers: dead holder's timer redelivered after %llu ms (lease 600000 ms)\n", (unsigned long long)ms);
	CHECK_OK(keel_timer_ack(s.h, &c));

	/* SIGSTOP: alive but stuck; it loses the claim when the lease ends. */
	CHECK_OK(keel_timer_set(s.h, "p", "k2", 2, now, NULL, 0));
	volatile keel_claim_t *sc = t_shared_alloc(sizeof(keel_claim_t));
	pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		keel_claim_t cc;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_timer_claim(h, NULL, 0, 300, 0, &cc, NULL, 0));
		memcpy((void *)sc, &cc, sizeof(cc));
		raise(SIGSTOP);
		/* Resumed after the lease ran out: the ack is refused. */
		CHECK_RC(keel_timer_ack(h, &cc), KEEL_E_STATE);
		keel_close(h);
		exit(0);
	}
	CHECK(waitpid(pid, &st, WUNTRACED) == pid && WIFSTOPPED(st));
	t0 = t_now_ns();
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 10000, 10000, &c, NULL, 0));
	ms = (t_now_ns() - t0) / 1000000;
	CHECK(c.deliveries == 2 && c.token != sc->token);
	printf("test_timers: stopped holder's timer redelivered after %llu ms (lease 300 ms)\n", (unsigned long long)ms);
	kill(pid, SIGCONT);
	t_wait_exit0(pid, "stopped holder");
	CHECK_OK(keel_timer_ack(s.h, &c));
	CHECK_SOUND(s.h, KEEL_CHECK_REPAIR);
	t_store_destroy(&s);
}

/*
 * A claimer killed in the middle of applying its step: the transaction puts
 * the flow's state, acks the claimed timer and sets the next one, and the
 * worker dies with one of its two partitions applied (commit.mid_apply).
 * The next claim takes the timer partition over from the dead process and
 * redoes its part; the timer it then hands out was set by that transaction,
 * so the transaction's other write must be visible by then.  Both orders:
 * the user partition before the timer partition (its part applied, the
 * timers' not) and after it.
 */
static void mid_apply_case(const char *part, int user_first)
{
	t_store_t s;
	keel_claim_t c;
	char st[16];
	size_t stlen = 0;
	int stv;

	open_mem(&s, 0);
	if (user_first)
		CHECK_OK(keel_put(s.h, part, "state", 5, "1", 1, NULL));
	else
		CHECK_OK(keel_timer_set(s.h, "elsewhere", "t", 1, KEEL_TIMER_DUE_MAX, NULL, 0));
	CHECK_OK(keel_timer_set(s.h, part, "step", 4, keel_now_ms(), "1", 1));
	if (!user_first)
		CHECK_OK(keel_put(s.h, part, "state", 5, "1", 1, NULL));
	pid_t pid = t_fork();
	if (pid == 0) {
		keel_t *h;
		keel_txn_t *t;
		keel_claim_t cc;
		CHECK_OK(keel_open(s.dir, &s.opt, &h));
		CHECK_OK(keel_timer_claim(h, NULL, 0, 600000, 0, &cc, NULL, 0));
		CHECK_OK(keel_txn_begin(h, 0, &t));
		CHECK_OK(keel_txn_put(t, part, "state", 5, "2", 1));
		CHECK_OK(keel_txn_timer_ack(t, &cc));
		CHECK_OK(keel_txn_timer_set(t, part, "next", 4, keel_now_ms(), "2", 1));
		CHECK_OK(keel_crash_at("commit.mid_apply", 1));
		keel_txn_commit(t, NULL);
		_exit(3);   /* not reached: the point kills */
	}
	t_waitpid(pid, &stv);
	CHECK_MSG(WIFSIGNALED(stv) && WTERMSIG(stv) == SIGKILL, "the worker did not die at commit.mid_apply");
	/* The dead worker's transaction is redone: its "next" timer is due,
	 * its ack took "step" away. */
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 10000, &c, NULL, 0));
	CHECK_MSG(c.klen == 4 && memcmp(c.key, "next", 4) == 0, "claimed %.*s, not the timer the dead transaction set",
		  (int)c.klen, c.key);
	/* ... and so is its state: no claim of a timer from a transaction
	 * whose other writes are not visible. */
	CHECK_OK(keel_get(s.h, part, "state", 5, st, sizeof(st), &stlen, NULL));
	CHECK_MSG(stlen == 1 && st[0] == '2', "claimed the timer set with state 2, but the state reads %.*s (%s first)",
		  (int)stlen, st, user_first ? "user partition" : "timer partition");
	CHECK_OK(keel_timer_ack(s.h, &c));
	CHECK_SOUND(s.h, KEEL_CHECK_REPAIR);
	t_store_destroy(&s);
}

static void sec_mid_apply(void)
{
	mid_apply_case("flow-a", 1);
	mid_apply_case("flow-b", 0);
}

/*
 * The heaps' order against a model, with many equal due times.  Timers in
 * three partitions are set, rescheduled, cancelled, and claimed and acked;
 * each claim must hand out the model's earliest timer, by due time and then
 * set order (a reschedule counts as a new set), over all partitions or over
 * one.  The audit (keel_check) checks every heap's order, its slots' keys
 * and the entries' positions now and then.
 */
#define HO_KEYS 300
struct ho_timer {
	int live, part;
	uint64_t due, seq;
};

static int ho_earliest(const struct ho_timer *m, int part, uint64_t now)
{
	int best = -1;
	for (int i = 0; i < HO_KEYS; i++) {
		if (!m[i].live || m[i].due > now || (part >= 0 && m[i].part != part))
			continue;
		if (best < 0 || m[i].due < m[best].due || (m[i].due == m[best].due && m[i].seq < m[best].seq))
			best = i;
	}
	return best;
}

static void ho_claim(t_store_t *s, struct ho_timer *m, int part, uint64_t now)
{
	static const char *const names[] = { "h0", "h1", "h2" };
	keel_claim_t c;
	char key[16];
	int want = ho_earliest(m, part, now);
	int rc = keel_timer_claim(s->h, part >= 0 ? &names[part] : NULL, part >= 0, 60000, 0, &c, NULL, 0);

	if (want < 0) {
		CHECK_RC(rc, KEEL_E_TIMEOUT);
		return;
	}
	CHECK_OK(rc);
	snprintf(key, sizeof(key), "k%03d", want);
	if (strcmp(c.part, names[m[want].part]) != 0 || c.klen != 4 || memcmp(c.key, key, 4) != 0)
		T_FAIL("claim (partition %d) handed out %s/%.*s due %llu; the earliest is %s/%s due %llu", part,
		       c.part, (int)c.klen, (const char *)c.key, (unsigned long long)c.due_ms, names[m[want].part],
		       key, (unsigned long long)m[want].due);
	CHECK(c.due_ms == m[want].due);
	CHECK_OK(keel_timer_ack(s->h, &c));
	m[want].live = 0;
}

static void sec_heap_order(void)
{
	static const char *const names[] = { "h0", "h1", "h2" };
	struct ho_timer m[HO_KEYS] = { 0 };
	uint64_t rng = t_seed_value ^ 0x6865617021ull, seq = 0, now = keel_now_ms();
	uint64_t past = now - 100000, future = now + 3600000;
	int claims = 0;
	t_store_t s;
	char key[16];

	open_mem(&s, 0);
	for (int op = 0; op < 6000; op++) {
		int k = (int)t_rand_below(&rng, HO_KEYS), r = (int)t_rand_below(&rng, 100);
		snprintf(key, sizeof(key), "k%03d", k);
		if (r < 60) {   /* set or reschedule: 8 due times, so many ties; a fifth not due yet */
			int part = m[k].live ? m[k].part : (int)t_rand_below(&rng, 3);
			uint64_t due = (t_rand_below(&rng, 5) ? past : future) + t_rand_below(&rng, 8);
			if (m[k].live && m[k].part != part)
				part = m[k].part;
			CHECK_OK(keel_timer_set(s.h, names[part], key, 4, due, NULL, 0));
			m[k] = (struct ho_timer){ 1, part, due, ++seq };
		} else if (r < 70) {
			int existed = 0;
			if (!m[k].live)
				continue;
			CHECK_OK(keel_timer_cancel(s.h, names[m[k].part], key, 4, &existed));
			CHECK(existed);
			m[k].live = 0;
		} else {
			ho_claim(&s, m, r < 85 ? -1 : (int)t_rand_below(&rng, 3), now);
			claims++;
		}
		if (op % 500 == 499)
			CHECK_SOUND(s.h, 0);
	}
	/* Drain: every due timer comes out in order, then nothing. */
	while (ho_earliest(m, -1, now) >= 0)
		ho_claim(&s, m, -1, now);
	ho_claim(&s, m, -1, now);
	CHECK_SOUND(s.h, 0);
	CHECK(claims > 1000);
	t_store_close(&s);
}

/* N processes claim and ack: no timer held by two at once, none lost. */
static void sec_exclusive(void)
{
	enum { N = 4, TIMERS = 3000 };
	t_store_t s;
	uint64_t now = keel_now_ms();
	volatile uint32_t *holders = t_shared_alloc(TIMERS * 4 * 2);
	volatile uint32_t *acked = holders + TIMERS;
	pid_t pids[N];

	open_mem(&s, 0);
	for (int i = 0; i < TIMERS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%d", i);
		CHECK_OK(keel_timer_set(s.h, i % 3 ? "a" : "b", k, strlen(k), now - (uint64_t)(i % 97), NULL, 0));
	}
	for (int w = 0; w < N; w++) {
		pids[w] = t_fork();
		if (pids[w] == 0) {
			keel_t *h;
			keel_claim_t c;
			CHECK_OK(keel_open(s.dir, &s.opt, &h));
			for (;;) {
				int rc = keel_timer_claim(h, NULL, 0, 60000, 0, &c, NULL, 0);
				if (rc == KEEL_E_TIMEOUT)
					break;
				CHECK_OK(rc);
				char k[16];
				memcpy(k, c.key, c.klen);
				k[c.klen] = 0;
				int i = atoi(k);
				CHECK(i >= 0 && i < TIMERS);
				uint32_t prev = __atomic_exchange_n(&holders[i], (uint32_t)getpid(), __ATOMIC_SEQ_CST);
				CHECK_MSG(prev == 0, "timer %d held by %u and %d at once", i, prev, (int)getpid());
				__atomic_store_n(&holders[i], 0, __ATOMIC_SEQ_CST);
				if (i % 5 == 0 && c.deliveries == 1) {   /* some are handed back once */
					CHECK_OK(keel_timer_release(h, &c, 0));
					continue;
				}
				CHECK_OK(keel_timer_ack(h, &c));
				__atomic_fetch_add(&acked[i], 1, __ATOMIC_SEQ_CST);
			}
			keel_close(h);
			exit(0);
		}
	}
	for (int w = 0; w < N; w++)
		t_wait_exit0(pids[w], "claimer");
	for (int i = 0; i < TIMERS; i++)
		CHECK_MSG(acked[i] == 1, "timer %d acked %u times", i, acked[i]);
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 0 && ts.claimed == 0);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

/*
 * kill -9 of claimers that ack in the transaction of their effect: every
 * timer's effect happens exactly once (the effect is a put_if ABSENT of a
 * "done" key, so a second run would conflict, and the ack would fail).
 */
static void sec_kill9(void)
{
	int N = 3, TIMERS = soak ? 100000 : 4000, kills = soak ? 10000 : 200;
	t_store_t s;
	uint64_t now = keel_now_ms(), seed = t_seed_value;
	volatile uint64_t *done = t_shared_alloc(64);

	open_mem(&s, 1000);
	for (int i = 0; i < TIMERS; i++) {
		char k[16];
		snprintf(k, sizeof(k), "%d", i);
		CHECK_OK(keel_timer_set(s.h, "work", k, strlen(k), now, k, strlen(k)));
	}
	pid_t pids[8];
	for (int w = 0; w < N; w++)
		pids[w] = 0;
	int killed = 0;
	for (;;) {
		for (int w = 0; w < N; w++) {
			if (pids[w])
				continue;
			pids[w] = t_fork();
			if (pids[w] == 0) {
				keel_t *h;
				keel_claim_t c;
				char pl[32];
				uint64_t wseed = seed ^ (uint64_t)getpid();
				CHECK_OK(keel_open(s.dir, &s.opt, &h));
				for (;;) {
					int rc = keel_timer_claim(h, NULL, 0, 60000, 200, &c, pl, sizeof(pl));
					if (rc == KEEL_E_TIMEOUT)
						break;
					CHECK_OK(rc);
					keel_txn_t *t;
					char dk[40];
					int dl = snprintf(dk, sizeof(dk), "done:%.*s", (int)c.plen, pl);
					/* The work takes a little while: kills land while a claim is held. */
					t_sleep_ns(t_rand_below(&wseed, 100) * 1000);
					CHECK_OK(keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t));
					CHECK_OK(keel_txn_put_if(t, "work", dk, (size_t)dl, "1", 1, KEEL_VERSION_ABSENT));
					CHECK_OK(keel_txn_timer_ack(t, &c));
					rc = keel_txn_commit(t, NULL);
					CHECK_MSG(rc == 0 || rc == KEEL_E_STATE, "commit: %s", keel_strerror(rc));
					if (rc == 0)
						__atomic_fetch_add(&done[0], 1, __ATOMIC_SEQ_CST);
				}
				keel_close(h);
				exit(0);
			}
		}
		if (killed >= kills)
			break;
		t_sleep_ns((1 + t_rand_below(&seed, 3000)) * 1000);
		int w = (int)t_rand_below(&seed, (uint64_t)N);
		kill(pids[w], SIGKILL);
		int st;
		t_waitpid(pids[w], &st);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			pids[w] = 0;
			break;   /* the work ran out */
		}
		CHECK_MSG(WIFSIGNALED(st), "claimer exited %d", WEXITSTATUS(st));
		pids[w] = 0;
		killed++;
	}
	for (int w = 0; w < N; w++)
		if (pids[w])
			t_wait_exit0(pids[w], "claimer");
	/* Whatever is left (the last ones killed) finish here. */
	keel_claim_t c;
	char pl[32];
	while (keel_timer_claim(s.h, NULL, 0, 60000, 100, &c, pl, sizeof(pl)) == 0) {
		keel_txn_t *t;
		char dk[40];
		int dl = snprintf(dk, sizeof(dk), "done:%.*s", (int)c.plen, pl);
		CHECK_OK(keel_txn_begin(s.h, KEEL_DURABILITY_DEFAULT, &t));
		CHECK_OK(keel_txn_put_if(t, "work", dk, (size_t)dl, "1", 1, KEEL_VERSION_ABSENT));
		CHECK_OK(keel_txn_timer_ack(t, &c));
		CHECK_OK(keel_txn_commit(t, NULL));
		done[0]++;
	}
	uint64_t count;
	CHECK_OK(keel_count(s.h, "work", &count));
	/* A claimer killed between its commit and counting it leaves one
	 * effect uncounted; the effects themselves must be exactly TIMERS. */
	CHECK_MSG(count == (uint64_t)TIMERS && done[0] <= (uint64_t)TIMERS && done[0] + (uint64_t)killed >= (uint64_t)TIMERS,
		  "%llu effects, %llu acked commits, %d timers", (unsigned long long)count,
		  (unsigned long long)done[0], TIMERS);
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 0 && ts.claimed == 0 && ts.dead == 0);
	printf("test_timers: %d claimers killed; %d timers acted on exactly once; %llu redelivered\n", killed,
	       TIMERS, (unsigned long long)ts.redelivered);
	CHECK_SOUND(s.h, KEEL_CHECK_REPAIR);
	t_store_destroy(&s);
}

/* Durable store: timers survive the loss of the arena; claims do not;
 * overdue timers are due at once. */
static void sec_restart(void)
{
	t_store_t s;
	keel_claim_t c;
	uint64_t now = keel_now_ms();
	char buf[16];

	t_store_init(&s);
	s.opt.durability = KEEL_DURABILITY_SYNC;
	t_store_open(&s);
	CHECK_OK(keel_timer_set(s.h, "p", "soon", 4, now + 300, "s", 1));
	CHECK_OK(keel_timer_set(s.h, "p", "held", 4, now - 1000, "h", 1));
	CHECK_OK(keel_timer_set(s.h, "p", "acked", 5, now - 2000, "a", 1));
	CHECK_OK(keel_timer_set(s.h, "q", "far", 3, now + 3600 * 1000, "f", 1));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 0, &c, NULL, 0));
	CHECK(memcmp(c.key, "acked", 5) == 0);
	CHECK_OK(keel_timer_ack(s.h, &c));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 0, &c, NULL, 0));
	CHECK(memcmp(c.key, "held", 4) == 0);
	/* A checkpoint in between: timers come back from it and the journal. */
	CHECK_OK(keel_checkpoint(s.h, NULL));
	CHECK_OK(keel_timer_set(s.h, "q", "after", 5, now - 10, "x", 1));
	t_store_close(&s);
	CHECK_OK(keel_unlink_arena(s.dir, &s.opt, 1));   /* power loss */
	t_store_open(&s);
	/* A read-only handle before any writer touched a timer: the index of
	 * the fresh arena is not built, and it reads the rows alone. */
	keel_options_t ro = s.opt;
	keel_t *rh;
	int n = 0;
	ro.flags |= KEEL_OPEN_READONLY;
	CHECK_OK(keel_open(s.dir, &ro, &rh));
	keel_timer_stat_t ts;
	CHECK_OK(keel_timer_stat(rh, &ts));
	CHECK(ts.pending == 4 && ts.claimed == 0 && ts.dead == 0 && ts.next_due_ms == now - 1000);
	CHECK_OK(keel_timers(rh, NULL, KEEL_TIMER_ALL, count_fn, &n));
	CHECK(n == 4);
	CHECK_OK(keel_timer_get(rh, "q", "far", 3, NULL, NULL, 0));
	CHECK_RC(keel_timer_wait(rh, NULL, 0, 0), KEEL_E_STATE);
	CHECK_OK(keel_close(rh));
	CHECK_OK(keel_timer_stat(s.h, &ts));
	CHECK(ts.pending == 4 && ts.claimed == 0 && ts.dead == 0);
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 0, &c, buf, sizeof(buf)));
	CHECK(memcmp(c.key, "held", 4) == 0 && buf[0] == 'h');   /* claimed, not acked: due again */
	CHECK_OK(keel_timer_ack(s.h, &c));
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 0, &c, NULL, 0));
	CHECK(memcmp(c.key, "after", 5) == 0);
	CHECK_OK(keel_timer_ack(s.h, &c));
	/* The one due soon fires at its time, not before. */
	CHECK_OK(keel_timer_claim(s.h, NULL, 0, 60000, 10000, &c, NULL, 0));
	CHECK(memcmp(c.key, "soon", 4) == 0 && keel_now_ms() >= now + 300);
	CHECK_RC(keel_timer_get(s.h, "p", "acked", 5, NULL, NULL, 0), KEEL_E_NOTFOUND);
	CHECK_SOUND(s.h, 0);
	t_store_destroy(&s);
}

int main(int argc, char **argv)
{
	int given = 0, fails = 0;
	uint64_t seed = 0;

	t_begin("test_timers");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--soak")) {
			soak = 1;
		} else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
			seed = t_parse_u64("--seed", argv[++i]);
			given = 1;
		} else {
			fprintf(stderr, "usage: test_timers [--soak] [--seed N]\n");
			return 2;
		}
	}
	t_seed_init(given, seed);
	fails += !t_run_section("basic", sec_basic);
	fails += !t_run_section("txn", sec_txn);
	fails += !t_run_section("lease", sec_lease);
	fails += !t_run_section("dead", sec_dead);
	fails += !t_run_section("wake", sec_wake);
	fails += !t_run_section("holder", sec_dead_holder);
	fails += !t_run_section("mid_apply", sec_mid_apply);
	fails += !t_run_section("heap_order", sec_heap_order);
	fails += !t_run_section("exclusive", sec_exclusive);
	fails += !t_run_section("kill9", sec_kill9);
	fails += !t_run_section("restart", sec_restart);
	return fails ? T_EXIT_FAIL : T_EXIT_PASS;
}
