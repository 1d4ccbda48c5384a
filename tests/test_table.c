/*
 * test_table.c - the table's bucket prefetch hints (lib/table.c, struct
 * dummy in lib/internal.h).
 *
 * A dummy's second word carries, next to its sort key, the offset of the
 * node two links after it, so a lookup can start loading the first two
 * nodes of a bucket together.  Two properties matter:
 *
 *   fresh   after any mix of inserts, updates, deletes (tombstones linked,
 *           then unlinked by reclaim) and bucket-array growth, every dummy
 *           of a quiescent table names exactly its second successor: a
 *           write path that forgets to refresh the hint would only show up
 *           as a slower get, so it is checked here directly (a dummy
 *           whose first successor is another dummy, an empty bucket, has
 *           the hint 0);
 *   harmless a hint is only ever a prefetch address: with every hint
 *           overwritten by garbage (in range, out of range, misaligned),
 *           every get still returns the model's answer and the audit
 *           passes; writes after that heal the hints they touch, and the
 *           repair sweep after a lock holder's death heals all.
 *
 * Usage: test_table [--seed S] [--ops N]
 */
#include "common/t.h"
#include "lib/internal.h"

#define KEYS 20000u
#define PARTS 3u

static const char *const part_names[PARTS] = { "alpha", "beta", "gamma" };

/* The model: per partition and key index, the value's length (0 = absent)
 * and its first byte. */
static uint16_t model_len[PARTS][KEYS];
static uint8_t model_b0[PARTS][KEYS];

static size_t key_of(uint32_t i, char *k)
{
	return (size_t)snprintf(k, 24, "key-%u", i);
}

/* Every dummy in partition p's list: how many, how many with a fresh hint
 * (naming its second successor, or 0 where the first is no key), and, when
 * `garble` is set, overwrite each hint with a garbage value first. */
static void walk_hints(keel_t *h, struct part *p, uint64_t *seed, int garble, uint64_t *dummies,
		       uint64_t *fresh)
{
	uint64_t steps = 0;

	*dummies = *fresh = 0;
	for (uint64_t cur = p->head; cur && steps++ < 10000000;) {
		struct dummy *d = shm_ptr(&h->a, cur, sizeof(*d));
		CHECK_MSG(d != NULL, "list link %llu outside the arena", (unsigned long long)cur);
		if (!(d->sokey & 1)) {
			if (garble) {
				uint64_t junk;
				switch (t_rand_below(seed, 4)) {
				case 0:   junk = t_rand(seed); break;                           /* anywhere */
				case 1:   junk = (h->a.hdr->heap_off + t_rand_below(seed, 1u << 20)) >> 4; break;
				case 2:   junk = (1ull << DUMMY_HINT_BITS) - 1; break;          /* past the arena */
				default:  junk = 0; break;
				}
				junk &= (1ull << DUMMY_HINT_BITS) - 1;
				d->sokey = (d->sokey & DUMMY_SOKEY_MASK) | (junk << 1);
			}
			const struct dummy *first = d->next ? shm_ptr(&h->a, d->next, sizeof(*first)) : NULL;
			uint64_t want = first && (first->sokey & 1) ? first->next : 0;
			(*dummies)++;
			*fresh += dummy_hint(d) == want;
		}
		cur = d->next;
	}
}

static void check_model(keel_t *h)
{
	for (uint32_t pi = 0; pi < PARTS; pi++) {
		for (uint32_t i = 0; i < KEYS; i++) {
			char k[24], v[300];
			size_t kl = key_of(i, k), vl = 0;
			int rc = keel_get(h, part_names[pi], k, kl, v, sizeof(v), &vl, NULL);
			if (model_len[pi][i] == 0) {
				CHECK_MSG(rc == KEEL_E_NOTFOUND, "%s/%s: expected absent, got rc %d",
					  part_names[pi], k, rc);
			} else {
				CHECK_MSG(rc == 0 && vl == model_len[pi][i] && (uint8_t)v[0] == model_b0[pi][i],
					  "%s/%s: rc %d length %zu (want %u) first byte %u (want %u)",
					  part_names[pi], k, rc, vl, model_len[pi][i], (uint8_t)v[0],
					  model_b0[pi][i]);
			}
		}
	}
}

static void do_ops(keel_t *h, uint64_t *seed, uint64_t ops)
{
	for (uint64_t n = 0; n < ops; n++) {
		uint32_t pi = (uint32_t)t_rand_below(seed, PARTS);
		/* A key range that widens over the run, so the tables grow while
		 * old keys are updated and deleted. */
		uint64_t span = KEYS / 8 + (KEYS - KEYS / 8) * n / (ops ? ops : 1);
		uint32_t i = (uint32_t)t_rand_below(seed, span);
		char k[24], v[300];
		size_t kl = key_of(i, k);
		if (t_rand_below(seed, 4) == 0) {
			int existed = -1;
			CHECK_OK(keel_del(h, part_names[pi], k, kl, &existed));
			CHECK_EQ_I64(existed, model_len[pi][i] != 0);
			model_len[pi][i] = 0;
		} else {
			size_t vl = 1 + t_rand_below(seed, sizeof(v) - 1);
			t_rand_fill(seed, v, vl);
			CHECK_OK(keel_put(h, part_names[pi], k, kl, v, vl, NULL));
			model_len[pi][i] = (uint16_t)vl;
			model_b0[pi][i] = (uint8_t)v[0];
		}
	}
}

static uint64_t all_hints(keel_t *h, uint64_t *seed, int garble, uint64_t *fresh_out)
{
	uint64_t total = 0, fresh = 0;
	for (uint32_t pi = 0; pi < PARTS; pi++) {
		struct part *p;
		uint64_t d, f;
		CHECK_OK(part_find(h, part_names[pi], &p));
		CHECK(p != NULL);
		walk_hints(h, p, seed, garble, &d, &f);
		total += d;
		fresh += f;
	}
	*fresh_out = fresh;
	return total;
}

int main(int argc, char **argv)
{
	uint64_t seed_arg = 0, ops = 200000, seed, fresh;
	int seed_given = 0;
	t_store_t s;

	t_begin("test_table");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed_arg = t_parse_u64("--seed", argv[++i]);
			seed_given = 1;
		} else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc) {
			ops = t_parse_u64("--ops", argv[++i]);
		} else {
			fprintf(stderr, "usage: test_table [--seed S] [--ops N]\n");
			return 2;
		}
	}
	t_seed_init(seed_given, seed_arg);
	seed = t_seed_value;
	t_store_init(&s);
	t_store_open(&s);

	/* fresh: after growth, updates, deletes and reclaim. */
	do_ops(s.h, &seed, ops);
	CHECK_OK(keel_reclaim(s.h));   /* unlinks the tombstones past the horizon */
	do_ops(s.h, &seed, ops / 4);
	uint64_t dummies = all_hints(s.h, &seed, 0, &fresh);
	CHECK_MSG(dummies >= 3 * 1024, "only %llu dummies: the tables did not grow",
		  (unsigned long long)dummies);
	CHECK_MSG(fresh == dummies, "%llu of %llu dummies have a stale prefetch hint",
		  (unsigned long long)(dummies - fresh), (unsigned long long)dummies);
	check_model(s.h);
	printf("test_table: fresh: %llu dummies, every hint names its second successor\n",
	       (unsigned long long)dummies);

	/* harmless: garbage hints change no answer and fail no audit. */
	all_hints(s.h, &seed, 1, &fresh);
	CHECK_MSG(fresh < dummies, "garbling left every hint fresh (%llu)", (unsigned long long)fresh);
	check_model(s.h);
	CHECK_SOUND(s.h, 0);
	do_ops(s.h, &seed, ops / 4);
	check_model(s.h);
	uint64_t healed;
	all_hints(s.h, &seed, 0, &healed);
	/* A lock holder that dies makes the next locker sweep the partition. */
	for (uint32_t pi = 0; pi < PARTS; pi++) {
		pid_t pid = t_fork();
		if (pid == 0) {
			keel_t *c;
			struct part *p;
			if (keel_open(s.dir, &s.opt, &c) || part_find(c, part_names[pi], &p) || !p ||
			    part_lock(c, p))
				_exit(1);
			_exit(0);   /* dies holding the lock */
		}
		t_wait_exit0(pid, "lock holder");
		char v = 'r';
		CHECK_OK(keel_put(s.h, part_names[pi], "repaired", 8, &v, 1, NULL));
	}
	CHECK_SOUND(s.h, KEEL_CHECK_REPAIR);   /* reaps the dead children's slots */
	all_hints(s.h, &seed, 0, &fresh);
	CHECK_MSG(fresh == dummies, "after a repair sweep %llu of %llu hints are stale",
		  (unsigned long long)(dummies - fresh), (unsigned long long)dummies);
	check_model(s.h);
	printf("test_table: harmless: gets and the audit right with garbage hints; %llu of %llu fresh again after writes, all after repair\n",
	       (unsigned long long)healed, (unsigned long long)dummies);
	t_store_destroy(&s);
	printf("test_table: ok\n");
	return 0;
}
