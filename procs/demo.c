/*
 * keel-bank-demo - several worker processes share one Keel store; one is killed
 * with SIGKILL in the middle of its work, and the others carry on.
 *
 * Workers move money between accounts kept in several partitions, each
 * transfer one transaction with optimistic version checks.  A reader process
 * sums every account inside read scopes and checks the total never moves.
 * Midway, the demo kills a worker with SIGKILL, starts a new one, and at the
 * end prints what happened and audits the arena (keel_check).
 *
 * This is the memory-mode demo; the durable flow-engine demo (journal,
 * timers, power loss) builds on it.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keel.h"

#define ACCOUNTS 64
#define PARTS 4
#define START_BALANCE 1000
#define WORKERS_MAX 16

struct shared {
	volatile uint64_t transfers[WORKERS_MAX + 1];
	volatile uint64_t sums, bad_sums;
	volatile int stop;
};

static struct shared *sh;
static char dir[256];
static keel_options_t opt;   /* memory mode: this demo shows sharing and kill -9 */

static void acct_name(unsigned a, char *part, char *key)
{
	sprintf(part, "bank.%u", a % PARTS);
	sprintf(key, "acct%03u", a);
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "keel-bank-demo: %s: %s (%s)\n", what, keel_strerror(rc), keel_errmsg());
	exit(3);
}

static void worker(unsigned w)
{
	keel_t *h;
	int rc = keel_open(dir, &opt, &h);
	uint64_t seed = (uint64_t)getpid() * 2654435761u;

	if (rc)
		die("open", rc);
	while (!sh->stop) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		unsigned a = (unsigned)(seed >> 33) % ACCOUNTS, b = (unsigned)(seed >> 17) % ACCOUNTS;
		if (a == b)
			continue;
		char pa[16], ka[16], pb[16], kb[16];
		int64_t va, vb;
		keel_meta_t ma, mb;
		keel_txn_t *t;
		acct_name(a, pa, ka);
		acct_name(b, pb, kb);
		if ((rc = keel_txn_begin(h, 0, &t)))
			die("begin", rc);
		if ((rc = keel_txn_get(t, pa, ka, strlen(ka), &va, sizeof(va), NULL, &ma)) ||
		    (rc = keel_txn_get(t, pb, kb, strlen(kb), &vb, sizeof(vb), NULL, &mb)))
			die("txn get", rc);
		va -= 7;
		vb += 7;
		keel_txn_put_if(t, pa, ka, strlen(ka), &va, sizeof(va), ma.version);
		keel_txn_put_if(t, pb, kb, strlen(kb), &vb, sizeof(vb), mb.version);
		rc = keel_txn_commit(t, NULL);
		if (rc == 0)
			sh->transfers[w]++;
		else if (rc != KEEL_E_CONFLICT)
			die("commit", rc);
	}
	keel_close(h);
	exit(0);
}

static void reader(void)
{
	keel_t *h;
	int rc = keel_open(dir, &opt, &h);
	if (rc)
		die("open", rc);
	while (!sh->stop) {
		keel_read_t *r;
		int64_t total = 0;
		if ((rc = keel_read_begin(h, &r)))
			die("read scope", rc);
		for (unsigned a = 0; a < ACCOUNTS; a++) {
			char p[16], k[16];
			const void *v;
			size_t vl;
			acct_name(a, p, k);
			if (keel_read_get(r, p, k, strlen(k), &v, &vl, NULL) == 0 && vl == 8) {
				int64_t x;
				memcpy(&x, v, 8);
				total += x;
			}
		}
		keel_read_end(r);
		sh->sums++;
		if (total != (int64_t)ACCOUNTS * START_BALANCE)
			sh->bad_sums++;
	}
	keel_close(h);
	exit(0);
}

static void report(void *ctx, const char *where, const char *what)
{
	(void)ctx;
	printf("  check: %s: %s\n", where, what);
}

static pid_t spawn(void (*fn)(unsigned), unsigned w)
{
	fflush(stdout);   /* the child must not print the parent's buffer again */
	pid_t p = fork();
	if (p == 0)
		fn(w);
	return p;
}

static void reader_fn(unsigned w)
{
	(void)w;
	reader();
}

int main(int argc, char **argv)
{
	unsigned workers = 4, seconds = 3;
	keel_t *h;
	int rc;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: keel-bank-demo [--workers N] [--seconds S]\n\n"
			       "N worker processes (default 4, at most %d) transfer money between accounts in\n"
			       "%d partitions of one memory-mode Keel store while a reader checks the total.\n"
			       "Halfway, one worker is killed with SIGKILL and replaced.  Exit status: 0 if\n"
			       "every check passed, 1 if one failed, 2 for usage, 3 for a store error.\n",
			       WORKERS_MAX, PARTS);
			return 0;
		} else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			workers = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
			seconds = (unsigned)atoi(argv[++i]);
		} else {
			fprintf(stderr, "keel-bank-demo: unknown argument %s (try --help)\n", argv[i]);
			return 2;
		}
	}
	if (workers < 2 || workers > WORKERS_MAX - 1 || seconds < 1 || seconds > 3600) {
		fprintf(stderr, "keel-bank-demo: --workers 2..%d, --seconds 1..3600\n", WORKERS_MAX - 1);
		return 2;
	}
	keel_options_init(&opt);
	opt.durability = KEEL_DURABILITY_MEMORY;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	snprintf(dir, sizeof(dir), "/tmp/keel-bank-demo.%d", (int)getpid());
	if ((rc = keel_open(dir, &opt, &h)))
		die("open", rc);
	for (unsigned a = 0; a < ACCOUNTS; a++) {
		char p[16], k[16];
		int64_t v = START_BALANCE;
		acct_name(a, p, k);
		if ((rc = keel_put(h, p, k, strlen(k), &v, sizeof(v), NULL)))
			die("put", rc);
	}
	printf("keel-bank-demo: store %s, %u accounts in %u partitions, total %d\n", dir, ACCOUNTS, PARTS,
	       ACCOUNTS * START_BALANCE);
	pid_t pids[WORKERS_MAX + 1];
	for (unsigned w = 0; w < workers; w++)
		pids[w] = spawn(worker, w);
	pid_t rd = spawn(reader_fn, 0);
	printf("keel-bank-demo: %u workers and 1 reader running for %u s\n", workers, seconds);
	usleep(seconds * 500000u);
	uint64_t before = 0, after = 0;
	kill(pids[0], SIGKILL);
	waitpid(pids[0], NULL, 0);
	printf("keel-bank-demo: killed worker 1 (pid %d) with SIGKILL after %" PRIu64 " transfers\n",
	       (int)pids[0], sh->transfers[0]);
	for (unsigned w = 1; w < workers; w++)
		before += sh->transfers[w];
	usleep(100000);
	for (unsigned w = 1; w < workers; w++)
		after += sh->transfers[w];
	printf("keel-bank-demo: the other workers committed %" PRIu64 " transfers in the next 100 ms\n", after - before);
	pids[workers] = spawn(worker, workers);
	printf("keel-bank-demo: started a replacement worker (pid %d)\n", (int)pids[workers]);
	usleep(seconds * 500000u);
	sh->stop = 1;
	for (unsigned w = 1; w <= workers; w++)
		waitpid(pids[w], NULL, 0);
	waitpid(rd, NULL, 0);
	uint64_t total_tx = 0;
	for (unsigned w = 0; w <= workers; w++)
		total_tx += sh->transfers[w];
	int64_t total = 0;
	for (unsigned a = 0; a < ACCOUNTS; a++) {
		char p[16], k[16];
		int64_t v = 0;
		acct_name(a, p, k);
		keel_get(h, p, k, strlen(k), &v, sizeof(v), NULL, NULL);
		total += v;
	}
	int reaped = keel_reclaim(h);
	rc = keel_check(h, 0, report, NULL);
	int ok = total == (int64_t)ACCOUNTS * START_BALANCE && sh->bad_sums == 0 && rc == 0 && after > before;
	printf("\nkeel-bank-demo report\n");
	printf("  transfers committed   %" PRIu64 " (%.0f per second)\n", total_tx, total_tx / (double)seconds);
	printf("  reader totals checked %" PRIu64 ", wrong: %" PRIu64 "\n", sh->sums, sh->bad_sums);
	printf("  final total           %" PRId64 " (expected %d)\n", total, ACCOUNTS * START_BALANCE);
	printf("  dead processes reaped %d\n", reaped);
	printf("  arena audit           %s\n", rc == 0 ? "sound" : keel_errmsg());
	printf("  result                %s\n", ok ? "all checks passed" : "CHECK FAILED");
	keel_close(h);
	keel_unlink_arena(dir, &opt, 1);
	rmdir(dir);
	return ok ? 0 : 1;
}
