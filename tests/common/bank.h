/*
 * bank.h - the "bank" workload shared by the concurrency and crash tests.
 *
 * A bank is `accounts` accounts spread round-robin over `parts` partitions
 * named "bank.0", "bank.1", ...; account i lives in partition i % parts under
 * the key "acct:NNNNN" (5 digits).  A balance is an int64_t stored as its 8
 * host-order bytes.  Every account starts at `initial`.
 *
 * A transfer moves a random amount between two distinct accounts in one
 * transaction: it reads both balances with keel_txn_get (which gives their
 * versions), then writes both with keel_txn_put_if conditioned on the
 * versions read, so a concurrent writer in between makes the commit fail with
 * KEEL_E_CONFLICT and the transfer is retried from scratch.  Balances may go
 * negative; only the total matters.
 *
 * Invariants any observer may check at any time:
 *   - the sum of all balances in one snapshot (a read scope, or a
 *     transaction's reads) is accounts * initial;
 *   - each committed transfer adds exactly 1 to the version of each of its two
 *     accounts, so sum(version - 1) over all accounts is 2 * transfers.
 * A reader that sees a partial transfer breaks the first; a lost or doubled
 * write breaks the second.
 */
#ifndef KEEL_TEST_BANK_H
#define KEEL_TEST_BANK_H

#include "common/t.h"

#define BANK_PARTS_MAX 32u
#define BANK_ACCOUNTS_MAX 4096u
#define BANK_RETRIES_MAX 100000u /* attempts of one transfer before failing */

typedef struct bank {
	unsigned parts;
	unsigned accounts;
	int64_t initial;
} bank_t;

static T_UNUSED void bank_part(const bank_t *b, unsigned acct, char out[24])
{
	snprintf(out, 24, "bank.%u", acct % b->parts);
}

static T_UNUSED size_t bank_key(unsigned acct, char out[16])
{
	return (size_t)snprintf(out, 16, "acct:%05u", acct);
}

static T_UNUSED int64_t bank_total(const bank_t *b)
{
	return (int64_t)b->accounts * b->initial;
}

/* Create every account with the initial balance, one put_many per partition. */
static T_UNUSED void bank_setup(keel_t *h, const bank_t *b)
{
	static char keys[BANK_ACCOUNTS_MAX][16];
	static const void *kp[BANK_ACCOUNTS_MAX], *vp[BANK_ACCOUNTS_MAX];
	static size_t kl[BANK_ACCOUNTS_MAX], vl[BANK_ACCOUNTS_MAX];
	int64_t v = b->initial;

	CHECK(b->parts > 0 && b->parts <= BANK_PARTS_MAX);
	CHECK(b->accounts >= 2 && b->accounts <= BANK_ACCOUNTS_MAX);
	for (unsigned p = 0; p < b->parts; p++) {
		char part[24];
		size_t n = 0;

		bank_part(b, p, part);
		for (unsigned a = p; a < b->accounts; a += b->parts) {
			kl[n] = bank_key(a, keys[n]);
			kp[n] = keys[n];
			vp[n] = &v;
			vl[n] = sizeof(v);
			n++;
		}
		CHECK_OK(keel_put_many(h, part, n, kp, kl, vp, vl, NULL));
	}
}

/* Sum every balance inside one read scope (fails the test on any error).
 * *snapshot_lsn (may be NULL) gets the scope's LSN. */
static T_UNUSED int64_t bank_sum_scope(keel_t *h, const bank_t *b, uint64_t *snapshot_lsn)
{
	keel_read_t *r = NULL;
	int64_t sum = 0;

	CHECK_OK(keel_read_begin(h, &r));
	CHECK(r != NULL);
	for (unsigned a = 0; a < b->accounts; a++) {
		char part[24], key[16];
		size_t kl = bank_key(a, key), vl = 0;
		const void *val = NULL;
		keel_meta_t m;
		int64_t v;
		int rc;

		bank_part(b, a, part);
		rc = keel_read_get(r, part, key, kl, &val, &vl, &m);
		CHECK_MSG(rc == 0, "read scope: get %s/%s returned %d (%s)", part, key, rc,
			  keel_strerror(rc));
		CHECK_MSG(vl == sizeof(v) && val != NULL,
			  "read scope: %s/%s has a %zu-byte value, expected 8", part, key, vl);
		memcpy(&v, val, sizeof(v));
		sum += v;
	}
	if (snapshot_lsn)
		*snapshot_lsn = keel_read_lsn(r);
	keel_read_end(r);
	return sum;
}

/* Sum every balance through one transaction's snapshot, then abort it. */
static T_UNUSED int64_t bank_sum_txn(keel_t *h, const bank_t *b)
{
	keel_txn_t *t = NULL;
	int64_t sum = 0;

	CHECK_OK(keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t));
	for (unsigned a = 0; a < b->accounts; a++) {
		char part[24], key[16];
		size_t kl = bank_key(a, key), vl = 0;
		int64_t v = 0;
		int rc;

		bank_part(b, a, part);
		rc = keel_txn_get(t, part, key, kl, &v, sizeof(v), &vl, NULL);
		CHECK_MSG(rc == 0, "txn snapshot: get %s/%s returned %d (%s)", part, key, rc,
			  keel_strerror(rc));
		CHECK_MSG(vl == sizeof(v), "txn snapshot: %s/%s has a %zu-byte value", part, key,
			  vl);
		sum += v;
	}
	keel_txn_abort(t);
	return sum;
}

/* sum(version - 1) over all accounts (copying gets; only meaningful when no
 * transfer runs concurrently). */
static T_UNUSED uint64_t bank_writes(keel_t *h, const bank_t *b)
{
	uint64_t n = 0;

	for (unsigned a = 0; a < b->accounts; a++) {
		char part[24], key[16];
		size_t kl = bank_key(a, key), vl = 0;
		int64_t v;
		keel_meta_t m;

		bank_part(b, a, part);
		CHECK_OK(keel_get(h, part, key, kl, &v, sizeof(v), &vl, &m));
		CHECK(m.version >= 1);
		n += m.version - 1;
	}
	return n;
}

/* Which call of the last transfer failed, for messages: "txn_get bank.3/acct:00011". */
static __thread char bank_failed_step[96] T_UNUSED;

#define BANK_STEP(what, part, key)                                             \
	snprintf(bank_failed_step, sizeof(bank_failed_step), "%s %s/%s", (what), (part), (key))

/* One attempt at a transfer.  Returns 0, KEEL_E_CONFLICT or another error
 * (the txn is finished in every case; bank_failed_step names the call). */
static T_UNUSED int bank_transfer_once(keel_t *h, const bank_t *b, unsigned from, unsigned to,
				       int64_t amount, uint64_t *lsn)
{
	char pf[24], pt[24], kf[16], kt[16];
	size_t klf = bank_key(from, kf), klt = bank_key(to, kt), vl;
	int64_t vf = 0, vt = 0;
	keel_meta_t mf, mt;
	keel_txn_t *t = NULL;
	int rc;

	bank_part(b, from, pf);
	bank_part(b, to, pt);
	BANK_STEP("txn_begin", pf, kf);
	rc = keel_txn_begin(h, KEEL_DURABILITY_DEFAULT, &t);
	if (rc)
		return rc;
	vl = 0;
	BANK_STEP("txn_get", pf, kf);
	rc = keel_txn_get(t, pf, kf, klf, &vf, sizeof(vf), &vl, &mf);
	if (rc)
		goto fail;
	CHECK_MSG(vl == sizeof(vf), "transfer: %s/%s has a %zu-byte value", pf, kf, vl);
	vl = 0;
	BANK_STEP("txn_get", pt, kt);
	rc = keel_txn_get(t, pt, kt, klt, &vt, sizeof(vt), &vl, &mt);
	if (rc)
		goto fail;
	CHECK_MSG(vl == sizeof(vt), "transfer: %s/%s has a %zu-byte value", pt, kt, vl);
	vf -= amount;
	vt += amount;
	BANK_STEP("txn_put_if", pf, kf);
	rc = keel_txn_put_if(t, pf, kf, klf, &vf, sizeof(vf), mf.version);
	if (rc)
		goto fail;
	BANK_STEP("txn_put_if", pt, kt);
	rc = keel_txn_put_if(t, pt, kt, klt, &vt, sizeof(vt), mt.version);
	if (rc)
		goto fail;
	BANK_STEP("txn_commit", pf, kf);
	return keel_txn_commit(t, lsn);
fail:
	keel_txn_abort(t);
	return rc;
}

/* A transfer between two random distinct accounts, retried on conflict.
 * Returns 0 or the first error other than KEEL_E_CONFLICT. */
static T_UNUSED int bank_transfer(keel_t *h, const bank_t *b, uint64_t *rng, uint64_t *lsn,
				  uint64_t *conflicts)
{
	unsigned from = (unsigned)t_rand_below(rng, b->accounts);
	unsigned to = (unsigned)t_rand_below(rng, b->accounts - 1);
	int64_t amount = (int64_t)t_rand_below(rng, 100) + 1;

	if (to >= from)
		to++;
	for (unsigned i = 0; i < BANK_RETRIES_MAX; i++) {
		int rc = bank_transfer_once(h, b, from, to, amount, lsn);

		if (rc != KEEL_E_CONFLICT)
			return rc;
		if (conflicts)
			(*conflicts)++;
	}
	T_FAIL("transfer %u -> %u: still conflicting after %u attempts", from, to,
	       BANK_RETRIES_MAX);
}

#endif /* KEEL_TEST_BANK_H */
