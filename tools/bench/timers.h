/*
 * timers.h - what timers.c (the timers suite, Keel's side) and
 * timers_redis.c (its Redis sorted-set peer) share.
 *
 * Both sides schedule the same timers: timer i is named by bench_key(i)
 * (16 hex digits) and, while pending, is due at t_pending_due(base, i),
 * one to 31 days after `base`, spread by a hash of i so that due order is
 * not key order.  Keel stores a T_PAYLOAD_BYTES payload with each timer;
 * the Redis peer stores the name alone (a sorted-set member whose score is
 * the due time), which leaves Redis the lighter job.
 */
#ifndef KEEL_BENCH_TIMERS_H
#define KEEL_BENCH_TIMERS_H

#include "bench.h"

#define T_PAYLOAD_BYTES 32u
/* What one timer holds at the least: its name, payload and due time. */
#define T_RAW_BYTES (BENCH_KEY_BYTES + T_PAYLOAD_BYTES + 8u)
#define T_DAY_MS 86400000ull
#define T_LEASE_MS 30000u          /* claims of the claim+ack phases */

/* The pending timers, set once per load and rescheduled by the set phase. */
#define T_ZSET_PENDING "timers.pending"
/* The pool of due timers that the claim+ack phases drain. */
#define T_ZSET_CLAIM "timers.claim"

uint64_t t_pending_due(uint64_t base_ms, uint64_t i);
/* Due time of pool timer i of p: all in the last second before base_ms, in
 * index order. */
uint64_t t_pool_due(uint64_t base_ms, uint64_t i, uint64_t p);

/* ---- the Redis peer (timers_redis.c) ------------------------------------------ */
struct t_redis {
	struct bench_redis srv;   /* started and stopped by peer_redis.c */
	int running;
	unsigned clients;         /* connections of one ZADD worker (set before a run) */
	char sha[48];             /* of the claim script (SCRIPT LOAD) */
	uint64_t pending;         /* members of T_ZSET_PENDING */
};

/* Starts redis-server under dir, in memory (no AOF, no snapshots), and
 * loads the claim script.  NOTFOUND (message set) when it is not on PATH. */
int t_redis_start(struct t_redis *r, const char *dir);
/* ZADDs timers 0..n-1 into T_ZSET_PENDING (batches of BENCH_LOAD_BATCH) and
 * checks ZCARD; *bytes_per_timer gets the growth of used_memory / n. */
int t_redis_load_pending(struct t_redis *r, uint64_t n, double *bytes_per_timer);
/* Replaces T_ZSET_CLAIM with p due members (scores t_pool_due). */
int t_redis_refill_pool(struct t_redis *r, uint64_t p);
/* ZCARD of zset. */
int t_redis_card(struct t_redis *r, const char *zset, uint64_t *n);
int t_redis_stop(struct t_redis *r);

/* ZADD of an existing member of T_ZSET_PENDING with a new score: one worker
 * process holds r->clients connections, each with one ZADD in flight. */
extern const struct bench_worker t_redis_zadd_worker;
/* Claim (the script: the earliest member due by now gets the score now +
 * lease) then ack (ZREM), one connection per process, until the pool is
 * empty. */
extern const struct bench_worker t_redis_claim_worker;

#endif
