/*
 * app.c - a program outside the Keel tree, built against an installed Keel.
 *
 * tests/install/run.sh builds it three ways (pkg-config with the shared
 * library, pkg-config --static with libkeel.a, and CMake's find_package(keel)
 * with keel::keel and keel::keel_static) and runs each build.  It uses only
 * <keel.h>: it opens a memory-mode store in a fresh temporary directory,
 * writes a value made from its pid, reads it back, counts, deletes, and
 * removes the arena.  Exit 0 pass, 1 fail.
 */
#include <keel.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failed(const char *what, int rc)
{
	fprintf(stderr, "app: %s: %s\n  %s\n", what, keel_strerror(rc), keel_errmsg());
	return 1;
}

static int run(const char *dir, keel_options_t *opt)
{
	char val[64], got[64];
	size_t glen = 0;
	uint64_t n = 0;
	keel_t *h = NULL;
	int existed = 0;
	int rc;

	snprintf(val, sizeof(val), "value of pid %ld", (long)getpid());
	rc = keel_open(dir, opt, &h);
	if (rc < 0)
		return failed("keel_open", rc);
	rc = keel_put(h, "install", "k", 1, val, strlen(val), NULL);
	if (rc < 0)
		goto fail_put;
	rc = keel_get(h, "install", "k", 1, got, sizeof(got), &glen, NULL);
	if (rc < 0)
		goto fail_get;
	if (glen != strlen(val) || memcmp(got, val, glen) != 0) {
		fprintf(stderr, "app: read back %zu bytes '%.*s', expected '%s'\n", glen,
			(int)(glen < sizeof(got) ? glen : sizeof(got)), got, val);
		keel_close(h);
		return 1;
	}
	rc = keel_count(h, "install", &n);
	if (rc < 0 || n != 1) {
		fprintf(stderr, "app: count %llu (rc %d), expected 1\n", (unsigned long long)n, rc);
		keel_close(h);
		return 1;
	}
	rc = keel_del(h, "install", "k", 1, &existed);
	if (rc < 0 || !existed) {
		fprintf(stderr, "app: del rc %d existed %d, expected 0 and 1\n", rc, existed);
		keel_close(h);
		return 1;
	}
	rc = keel_close(h);
	if (rc < 0)
		return failed("keel_close", rc);
	return 0;
fail_put:
	failed("keel_put", rc);
	keel_close(h);
	return 1;
fail_get:
	failed("keel_get", rc);
	keel_close(h);
	return 1;
}

int main(void)
{
	char dir[] = "/tmp/keel-install-app.XXXXXX";
	keel_options_t opt;
	int bad, rc;

	if (!mkdtemp(dir)) {
		perror("app: mkdtemp");
		return 1;
	}
	keel_options_init(&opt);
	opt.durability = KEEL_DURABILITY_MEMORY;
	bad = run(dir, &opt);
	rc = keel_unlink_arena(dir, &opt, 0);
	if (rc < 0 && rc != KEEL_E_NOTFOUND && !bad)
		bad = failed("keel_unlink_arena", rc);
	rmdir(dir);
	if (!bad)
		printf("app: ok (keel %d.%d)\n", KEEL_VERSION_MAJOR, KEEL_VERSION_MINOR);
	return bad;
}
