/*
 * keel.c - the `keel` command: read and write a Keel store from the shell.
 *
 * This program is a thin shell over lib/keel.h: each command opens the
 * store named by its STORE directory, makes one or a few library calls and
 * closes it.  It holds no state of its own between runs; in memory mode the
 * data outlives the command because the arena stays in /dev/shm.
 *
 * Command table
 * -------------
 * Every command is one row of `commands[]`: its name, how many positional
 * arguments it takes, which options it accepts, how it opens the store, the
 * function that runs it and the text of its help page.  main() does all the
 * common work (option parsing, argument count, opening and closing, mapping
 * errors to exit statuses), so a new command (clear, exists, export, import,
 * checkpoint, recover, verify, destroy, timer ..., crash) is one function and
 * one row.  A row with OPEN_NONE gets no handle and opens (or does not open)
 * the store itself, as destroy or recover will.
 *
 * Bytes on the command line
 * -------------------------
 * A KEY or VALUE argument is the bytes of the argument, without a NUL.  With
 * --hex, KEY and VALUE are hex digits (whitespace between bytes is ignored)
 * and values and keys are printed in hex.  A VALUE of "-" is read from
 * standard input, binary-safe (with --hex, stdin holds hex text).  `get`
 * writes the raw value with no newline added.  Plain `ls` prints one key per
 * line with backslash and control bytes escaped as \\ and \xNN, so a key
 * with a newline cannot break the listing; --hex or --json give exact bytes.
 *
 * Exit statuses (stable; printed by --help)
 * -----------------------------------------
 *   0      success
 *   1      not found: the key (get, del) or the partition (ls PARTITION)
 *   2      usage error: unknown command or option, wrong argument count,
 *          bad hex, bad durability mode
 *   3      failure outside the store: reading stdin or writing stdout
 *   3 + N  the store returned -N (a KEEL_E_* code): 4 for KEEL_E_INVAL,
 *          5 for KEEL_E_NOTFOUND (e.g. the store does not exist), ...,
 *          19 for KEEL_E_CORRUPT, ..., 28 for KEEL_E_OS.  Codes past 122 map
 *          to 125.
 *
 * Command functions follow the library's convention: they return 0 or a
 * negative KEEL_E_* code.  The exit status comes from that code and from
 * `cli.exit_class`, which the helpers set when a failure is a usage error
 * or a local one rather than the store's.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "keel.h"

/* ---- exit statuses ------------------------------------------------------- */
enum {
	EXIT_OK = 0,
	EXIT_NOTFOUND = 1,
	EXIT_USAGE = 2,
	EXIT_LOCAL = 3,
	EXIT_STORE_BASE = 3,     /* store error -N exits with 3 + N */
	EXIT_STORE_MAX = 125,    /* 126 and up mean things to the shell */
};

/* The last KEEL_E_* code known to this build; --help lists the codes up to it. */
#define KEEL_E_LAST KEEL_E_OS

/* ---- options and command table -------------------------------------------- */
enum cmd_opt {
	OPT_JSON = 1u << 0,    /* --json */
	OPT_HEX = 1u << 1,     /* --hex */
	OPT_OPEN = 1u << 2,    /* --memory, --durability, --arena */
	OPT_SALVAGE = 1u << 3, /* --salvage */
};

enum cmd_open {
	OPEN_NONE = 0,     /* the command opens the store itself, if at all */
	OPEN_READ,         /* existing store, read-only handle */
	OPEN_WRITE,        /* existing store, read-write */
	OPEN_CREATE,       /* read-write, store created if missing */
};

struct cli;

struct cmd {
	const char *name;
	int (*run)(struct cli *c);
	int nargs_min;            /* positional arguments, STORE included */
	int nargs_max;
	unsigned opts;            /* enum cmd_opt: the options it accepts */
	int open;                 /* enum cmd_open */
	const char *args;         /* synopsis after "keel NAME [OPTIONS] " */
	const char *summary;      /* one line, for the command list */
	const char *description;  /* paragraphs, each line indented by 4 */
	const char *exit_status;  /* statuses 0..2 as they apply to it */
	const char *examples;
};

struct cli {
	const struct cmd *cmd;
	char **args;              /* positional arguments after the command */
	int nargs;
	int json;
	int hex;
	int durability;           /* KEEL_DURABILITY_*; DEFAULT = store's own */
	int salvage;
	const char *arena_path;
	keel_t *h;                /* open handle for commands with OPEN_* */
	int exit_class;           /* 0, or EXIT_USAGE / EXIT_LOCAL for non-store failures */
};

/* ---- messages -------------------------------------------------------------- */

static const char *cmd_name(const struct cli *c)
{
	return c->cmd ? c->cmd->name : NULL;
}

static void vmsg(const struct cli *c, const char *fmt, va_list ap)
{
	const char *name = cmd_name(c);

	if (name)
		fprintf(stderr, "keel %s: ", name);
	else
		fputs("keel: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* A usage error: print it, point at the help page, return KEEL_E_INVAL. */
static int usage_error(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int usage_error(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	if (cmd_name(c))
		fprintf(stderr, "Try 'keel %s --help'.\n", cmd_name(c));
	else
		fputs("Try 'keel --help'.\n", stderr);
	c->exit_class = EXIT_USAGE;
	return KEEL_E_INVAL;
}

/* A failure outside the store (stdin, stdout, memory of this process). */
static int local_error(struct cli *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int local_error(struct cli *c, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	c->exit_class = EXIT_LOCAL;
	return code;
}

/*
 * A store error: `what` says which call on what, then the code's stable name
 * and the library's detail message.  The detail is read here, right after the
 * failing call, before any other call can replace it.
 */
static int store_error(struct cli *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int store_error(struct cli *c, int rc, const char *fmt, ...)
{
	const char *detail = keel_errmsg();
	const char *name = cmd_name(c);
	va_list ap;

	if (name)
		fprintf(stderr, "keel %s: ", name);
	else
		fputs("keel: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, ": %s\n", keel_strerror(rc));
	if (detail && detail[0])
		fprintf(stderr, "  %s\n", detail);
	return rc;
}

/* Not found as a result (exit 1), not as a failure of the store. */
static int not_found(struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int not_found(struct cli *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(c, fmt, ap);
	va_end(ap);
	return KEEL_E_NOTFOUND;
}

static int exit_status(const struct cli *c, int rc)
{
	if (rc == 0)
		return EXIT_OK;
	if (c->exit_class)
		return c->exit_class;
	if (rc == KEEL_E_NOTFOUND)
		return EXIT_NOTFOUND;
	if (rc > 0 || -(long)rc > EXIT_STORE_MAX - EXIT_STORE_BASE)
		return EXIT_STORE_MAX;
	return EXIT_STORE_BASE - rc;
}

/* ---- bytes: hex, escapes, UTF-8 ---------------------------------------------- */

static int hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/*
 * Decode hex text of length n into a malloc'd buffer (*out, *outlen).
 * Whitespace between bytes is skipped; a byte's two digits must be adjacent.
 * `what` names the argument in error messages.
 */
static int hex_decode(struct cli *c, const char *what, const char *s, size_t n,
		      uint8_t **out, size_t *outlen)
{
	uint8_t *buf = malloc(n / 2 + 1);
	size_t i = 0, len = 0;

	if (!buf)
		return local_error(c, KEEL_E_NOMEM, "out of memory decoding %s", what);
	while (i < n) {
		int hi, lo;

		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++;
			continue;
		}
		hi = hex_digit((unsigned char)s[i]);
		lo = i + 1 < n ? hex_digit((unsigned char)s[i + 1]) : -2;
		if (hi < 0 || lo < 0) {
			size_t at = hi < 0 ? i : i + 1;

			free(buf);
			if (hi >= 0 && (lo == -2 || isspace((unsigned char)s[i + 1])))
				return usage_error(c, "%s: odd number of hex digits at offset "
						   "%zu (a byte needs two adjacent digits)",
						   what, i);
			return usage_error(c, "%s: not a hex digit at offset %zu: '%c' "
					   "(expected 0-9, a-f, A-F or whitespace)", what,
					   at, (s[at] >= 0x20 && s[at] < 0x7f) ? s[at] : '?');
		}
		buf[len++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static void print_hex(FILE *f, const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		fputc(digits[b[i] >> 4], f);
		fputc(digits[b[i] & 15], f);
	}
}

static char *hex_string(const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = p;
	char *s = malloc(2 * n + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	s[2 * n] = '\0';
	return s;
}

/* One key per line: backslash and control bytes escaped, the rest as is. */
static void print_escaped(FILE *f, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		if (b[i] == '\\')
			fputs("\\\\", f);
		else if (b[i] < 0x20 || b[i] == 0x7f)
			fprintf(f, "\\x%02x", b[i]);
		else
			fputc(b[i], f);
	}
}

/* 1 if p[0..n) is valid UTF-8 with no NUL, so JSON can carry it as a string. */
static int is_json_text(const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i = 0;

	while (i < n) {
		uint8_t x = b[i];
		size_t more;
		uint32_t cp;

		if (x == 0)
			return 0;
		if (x < 0x80) {
			i++;
			continue;
		}
		if (x >= 0xc2 && x <= 0xdf) {
			more = 1;
			cp = x & 0x1f;
		} else if (x >= 0xe0 && x <= 0xef) {
			more = 2;
			cp = x & 0x0f;
		} else if (x >= 0xf0 && x <= 0xf4) {
			more = 3;
			cp = x & 0x07;
		} else {
			return 0;
		}
		if (n - i - 1 < more)
			return 0;
		for (size_t k = 1; k <= more; k++) {
			if ((b[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (b[i + k] & 0x3f);
		}
		/* overlong forms, surrogates, past U+10FFFF */
		if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += 1 + more;
	}
	return 1;
}

/* ---- arguments --------------------------------------------------------------- */

/* A byte string from the command line: points into argv or owns a buffer. */
struct bytes {
	const void *p;
	size_t n;
	void *owned;
};

static void bytes_free(struct bytes *b)
{
	free(b->owned);
	b->owned = NULL;
}

/* KEY argument: its bytes, or with --hex the bytes its hex digits spell. */
static int arg_key(struct cli *c, const char *arg, struct bytes *out)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!c->hex) {
		out->p = arg;
		out->n = strlen(arg);
		return 0;
	}
	rc = hex_decode(c, "KEY", arg, strlen(arg), &buf, &len);
	if (rc < 0)
		return rc;
	out->p = out->owned = buf;
	out->n = len;
	return 0;
}

/*
 * Read all of stdin, at most `max` bytes.  More than that is refused with
 * `toolong_code` (the store would refuse it too; reading on is pointless).
 */
static int read_stdin(struct cli *c, size_t max, int toolong_code, const char *what,
		      uint8_t **out, size_t *outlen)
{
	size_t cap = (size_t)64 * 1024, len = 0;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return local_error(c, KEEL_E_NOMEM, "out of memory reading %s", what);
	for (;;) {
		ssize_t got;

		if (len == cap) {
			size_t ncap = cap * 2;
			uint8_t *nbuf;

			if (cap > max) {
				free(buf);
				fprintf(stderr, "keel %s: %s from standard input is over %zu "
					"bytes: %s\n", cmd_name(c), what, max,
					keel_strerror(toolong_code));
				return toolong_code;
			}
			nbuf = realloc(buf, ncap);
			if (!nbuf) {
				free(buf);
				return local_error(c, KEEL_E_NOMEM,
						   "out of memory reading %s (%zu bytes so far)",
						   what, len);
			}
			buf = nbuf;
			cap = ncap;
		}
		got = read(STDIN_FILENO, buf + len, cap - len);
		if (got == 0)
			break;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			free(buf);
			return local_error(c, KEEL_E_IO, "reading %s from standard input: %s",
					   what, strerror(errno));
		}
		len += (size_t)got;
	}
	if (len > max) {
		free(buf);
		fprintf(stderr, "keel %s: %s from standard input is over %zu bytes: %s\n",
			cmd_name(c), what, max, keel_strerror(toolong_code));
		return toolong_code;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* VALUE argument: its bytes, hex, or "-" for standard input (raw or hex). */
static int arg_value(struct cli *c, const char *arg, struct bytes *out)
{
	uint8_t *buf = NULL, *raw = NULL;
	size_t len = 0, rawlen = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (strcmp(arg, "-") == 0) {
		if (!c->hex) {
			rc = read_stdin(c, KEEL_VALUE_MAX, KEEL_E_VALSIZE, "VALUE", &buf, &len);
			if (rc < 0)
				return rc;
			out->p = out->owned = buf;
			out->n = len;
			return 0;
		}
		/* Hex text: two digits a byte, plus whitespace; allow one
		 * separator per byte and a line break per 16 bytes or so. */
		rc = read_stdin(c, (size_t)KEEL_VALUE_MAX * 4 + 4096, KEEL_E_VALSIZE,
				"VALUE (hex)", &raw, &rawlen);
		if (rc < 0)
			return rc;
		rc = hex_decode(c, "VALUE (standard input)", (const char *)raw, rawlen,
				&buf, &len);
		free(raw);
		if (rc < 0)
			return rc;
		out->p = out->owned = buf;
		out->n = len;
		return 0;
	}
	if (!c->hex) {
		out->p = arg;
		out->n = strlen(arg);
		return 0;
	}
	rc = hex_decode(c, "VALUE", arg, strlen(arg), &buf, &len);
	if (rc < 0)
		return rc;
	out->p = out->owned = buf;
	out->n = len;
	return 0;
}

/* Print a key as the listing shows it (hex with --hex, else escaped). */
static void print_key(const struct cli *c, FILE *f, const void *k, size_t n)
{
	if (c->hex)
		print_hex(f, k, n);
	else
		print_escaped(f, k, n);
}

/* The JSON form of a byte string: "NAME" when it is text, "NAME_hex" always. */
static int json_add_bytes(json_object *obj, const char *name, const void *p, size_t n)
{
	char hexname[64];
	char *hex;

	if (n > INT32_MAX)
		return KEEL_E_LIMIT;
	if (is_json_text(p, n))
		json_object_object_add(obj, name, json_object_new_string_len(p, (int)n));
	hex = hex_string(p, n);
	if (!hex)
		return KEEL_E_NOMEM;
	snprintf(hexname, sizeof(hexname), "%s_hex", name);
	json_object_object_add(obj, hexname, json_object_new_string(hex));
	free(hex);
	return 0;
}

static void json_print(json_object *obj)
{
	fputs(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
					     JSON_C_TO_STRING_SPACED |
					     JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
}

static const char *durability_name(int d)
{
	switch (d) {
	case KEEL_DURABILITY_DEFAULT: return "default";
	case KEEL_DURABILITY_MEMORY: return "memory";
	case KEEL_DURABILITY_ASYNC: return "async";
	case KEEL_DURABILITY_SYNC: return "sync";
	default: return "unknown";
	}
}

/* ---- commands ------------------------------------------------------------------ */

static const char *store_arg(const struct cli *c)
{
	return c->args[0];
}

static int cmd_put(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key, val = { 0 };
	int rc;

	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = arg_value(c, c->args[3], &val);
	if (rc < 0)
		goto out;
	rc = keel_put(c->h, part, key.p, key.n, val.p, val.n, NULL);
	if (rc < 0)
		store_error(c, rc, "put into partition '%s' of %s", part, store_arg(c));
out:
	bytes_free(&val);
	bytes_free(&key);
	return rc;
}

static int cmd_get(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key;
	void *val = NULL;
	size_t vlen = 0;
	int rc;

	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = keel_get_alloc(c->h, part, key.p, key.n, &val, &vlen, NULL);
	if (rc == KEEL_E_NOTFOUND) {
		not_found(c, "key not found in partition '%s'", part);
		goto out;
	}
	if (rc < 0) {
		store_error(c, rc, "get from partition '%s' of %s", part, store_arg(c));
		goto out;
	}
	if (c->hex) {
		print_hex(stdout, val, vlen);
		fputc('\n', stdout);
	} else if (vlen > 0) {
		fwrite(val, 1, vlen, stdout);
	}
out:
	free(val);
	bytes_free(&key);
	return rc;
}

static int cmd_del(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key;
	int existed = 0;
	int rc;

	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = keel_del(c->h, part, key.p, key.n, &existed);
	if (rc == KEEL_E_NOTFOUND || (rc == 0 && !existed))
		rc = not_found(c, "key not found in partition '%s'", part);
	else if (rc < 0)
		store_error(c, rc, "delete from partition '%s' of %s", part, store_arg(c));
	bytes_free(&key);
	return rc;
}

static int cmd_count(struct cli *c)
{
	const char *part = c->args[1];
	uint64_t n = 0;
	int rc;

	rc = keel_count(c->h, part, &n);
	if (rc < 0)
		return store_error(c, rc, "count partition '%s' of %s", part, store_arg(c));
	printf("%" PRIu64 "\n", n);
	return 0;
}

/* ls STORE: the partitions, with their key counts. */
struct ls_parts {
	struct cli *c;
	json_object *arr;
	int rc;
};

static int ls_part_cb(void *ctx, const char *name, uint64_t keys)
{
	struct ls_parts *lp = ctx;

	if (lp->arr) {
		json_object *o = json_object_new_object();

		if (!o) {
			lp->rc = KEEL_E_NOMEM;
			return 1;
		}
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "keys", json_object_new_uint64(keys));
		json_object_array_add(lp->arr, o);
	} else {
		printf("%s\t%" PRIu64 "\n", name, keys);
	}
	return 0;
}

static int ls_partitions(struct cli *c)
{
	struct ls_parts lp = { .c = c };
	json_object *root = NULL;
	int rc;

	if (c->json) {
		root = json_object_new_object();
		lp.arr = json_object_new_array();
		if (!root || !lp.arr) {
			json_object_put(root);
			json_object_put(lp.arr);
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		}
		json_object_object_add(root, "store", json_object_new_string(store_arg(c)));
		json_object_object_add(root, "partitions", lp.arr);
	}
	rc = keel_partitions(c->h, ls_part_cb, &lp);
	if (rc < 0) {
		store_error(c, rc, "list partitions of %s", store_arg(c));
	} else if (lp.rc < 0) {
		rc = local_error(c, lp.rc, "out of memory listing partitions");
	} else if (root) {
		json_print(root);
	}
	json_object_put(root);
	return rc;
}

/* ls STORE PARTITION: the keys of one partition. */
static int ls_keys(struct cli *c)
{
	const char *part = c->args[1];
	json_object *root = NULL, *arr = NULL;
	keel_iter_t *it = NULL;
	uint64_t n = 0;
	int found = 0;
	int rc;

	rc = keel_exists(c->h, part, &found);
	if (rc < 0)
		return store_error(c, rc, "look up partition '%s' of %s", part, store_arg(c));
	if (!found)
		return not_found(c, "partition '%s' not found in %s", part, store_arg(c));
	if (c->json) {
		root = json_object_new_object();
		arr = json_object_new_array();
		if (!root || !arr) {
			json_object_put(root);
			json_object_put(arr);
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		}
		json_object_object_add(root, "store", json_object_new_string(store_arg(c)));
		json_object_object_add(root, "partition", json_object_new_string(part));
		json_object_object_add(root, "keys", arr);
	}
	rc = keel_iter_open(c->h, part, NULL, 0, &it);
	if (rc < 0) {
		store_error(c, rc, "iterate partition '%s' of %s", part, store_arg(c));
		goto out;
	}
	for (;;) {
		const void *k, *v;
		size_t klen, vlen;
		keel_meta_t meta;

		rc = keel_iter_next(it, &k, &klen, &v, &vlen, &meta);
		if (rc == 0)
			break;
		if (rc < 0) {
			store_error(c, rc, "iterate partition '%s' of %s (after %" PRIu64
				    " keys)", part, store_arg(c), n);
			goto out;
		}
		n++;
		if (!arr) {
			print_key(c, stdout, k, klen);
			fputc('\n', stdout);
			continue;
		}
		json_object *o = json_object_new_object();

		if (!o || json_add_bytes(o, "key", k, klen) < 0) {
			json_object_put(o);
			rc = local_error(c, KEEL_E_NOMEM, "out of memory listing keys");
			goto out;
		}
		json_object_object_add(o, "version", json_object_new_uint64(meta.version));
		json_object_object_add(o, "value_bytes", json_object_new_uint64(vlen));
		json_object_object_add(o, "mtime_ns", json_object_new_uint64(meta.mtime_ns));
		json_object_object_add(o, "lsn", json_object_new_uint64(meta.lsn));
		json_object_array_add(arr, o);
	}
	if (root) {
		json_object_object_add(root, "count", json_object_new_uint64(n));
		json_print(root);
	}
	rc = 0;
out:
	keel_iter_close(it);
	json_object_put(root);
	return rc;
}

static int cmd_ls(struct cli *c)
{
	return c->nargs == 1 ? ls_partitions(c) : ls_keys(c);
}

/* stat: the store's counters, and its processes. */
struct stat_procs {
	json_object *arr;
	uint32_t n;
	int rc;
};

static int stat_proc_cb(void *ctx, const keel_proc_info_t *p)
{
	struct stat_procs *sp = ctx;

	sp->n++;
	if (sp->arr) {
		json_object *o = json_object_new_object();

		if (!o) {
			sp->rc = KEEL_E_NOMEM;
			return 1;
		}
		json_object_object_add(o, "pid", json_object_new_int64(p->pid));
		json_object_object_add(o, "alive", json_object_new_boolean(p->alive));
		json_object_object_add(o, "start_time", json_object_new_uint64(p->start_time));
		json_object_object_add(o, "reader_lag", json_object_new_uint64(p->reader_lag));
		json_object_object_add(o, "locks_held", json_object_new_uint64(p->locks_held));
		json_object_array_add(sp->arr, o);
	} else {
		printf("%-20s pid %ld %s, reader_lag %" PRIu64 ", locks_held %"
		       PRIu32 "\n", "process", (long)p->pid, p->alive ? "alive" : "dead",
		       p->reader_lag, p->locks_held);
	}
	return 0;
}

static int cmd_stat(struct cli *c)
{
	struct stat_procs sp = { 0 };
	char path[4096];
	keel_stat_t st;
	keel_options_t opt;
	json_object *root = NULL;
	int rc;

	memset(&st, 0, sizeof(st));
	rc = keel_stat(c->h, &st);
	if (rc < 0)
		return store_error(c, rc, "stat %s", store_arg(c));
	keel_options_init(&opt);
	opt.arena_path = c->arena_path;
	rc = keel_arena_path(store_arg(c), &opt, path, sizeof(path));
	if (rc < 0)
		return store_error(c, rc, "arena path of %s", store_arg(c));

	if (!c->json) {
		printf("%-20s %s\n", "store", store_arg(c));
		printf("%-20s %s\n", "arena_path", path);
		printf("%-20s %" PRIu32 "\n", "format_version", st.format_version);
		printf("%-20s %s\n", "durability", durability_name(st.durability));
		printf("%-20s %" PRIu64 "\n", "arena_bytes", st.arena_bytes);
		printf("%-20s %" PRIu64 "\n", "arena_bytes_max", st.arena_bytes_max);
		printf("%-20s %" PRIu64 "\n", "arena_bytes_used", st.arena_bytes_used);
		printf("%-20s %" PRIu64 "\n", "arena_bytes_free", st.arena_bytes_free);
		printf("%-20s %" PRIu64 "\n", "arena_bytes_retired", st.arena_bytes_retired);
		printf("%-20s %" PRIu32 "\n", "processes", st.processes);
		printf("%-20s %" PRIu32 "\n", "partitions", st.partitions);
		printf("%-20s %" PRIu64 "\n", "keys", st.keys);
		printf("%-20s %" PRIu64 "\n", "next_lsn", st.next_lsn);
		printf("%-20s %" PRIu64 "\n", "applied_lsn", st.applied_lsn);
		printf("%-20s %" PRIu64 "\n", "durable_lsn", st.durable_lsn);
		rc = keel_processes(c->h, stat_proc_cb, &sp);
		if (rc < 0)
			return store_error(c, rc, "list processes of %s", store_arg(c));
		return 0;
	}

	root = json_object_new_object();
	sp.arr = json_object_new_array();
	if (!root || !sp.arr) {
		json_object_put(root);
		json_object_put(sp.arr);
		return local_error(c, KEEL_E_NOMEM, "out of memory");
	}
	json_object_object_add(root, "store", json_object_new_string(store_arg(c)));
	json_object_object_add(root, "arena_path", json_object_new_string(path));
	json_object_object_add(root, "format_version", json_object_new_uint64(st.format_version));
	json_object_object_add(root, "durability",
			       json_object_new_string(durability_name(st.durability)));
	json_object_object_add(root, "arena_bytes", json_object_new_uint64(st.arena_bytes));
	json_object_object_add(root, "arena_bytes_max", json_object_new_uint64(st.arena_bytes_max));
	json_object_object_add(root, "arena_bytes_used",
			       json_object_new_uint64(st.arena_bytes_used));
	json_object_object_add(root, "arena_bytes_free",
			       json_object_new_uint64(st.arena_bytes_free));
	json_object_object_add(root, "arena_bytes_retired",
			       json_object_new_uint64(st.arena_bytes_retired));
	json_object_object_add(root, "processes", json_object_new_uint64(st.processes));
	json_object_object_add(root, "partitions", json_object_new_uint64(st.partitions));
	json_object_object_add(root, "keys", json_object_new_uint64(st.keys));
	json_object_object_add(root, "next_lsn", json_object_new_uint64(st.next_lsn));
	json_object_object_add(root, "applied_lsn", json_object_new_uint64(st.applied_lsn));
	json_object_object_add(root, "durable_lsn", json_object_new_uint64(st.durable_lsn));
	json_object_object_add(root, "process_list", sp.arr);
	rc = keel_processes(c->h, stat_proc_cb, &sp);
	if (rc < 0)
		store_error(c, rc, "list processes of %s", store_arg(c));
	else if (sp.rc < 0)
		rc = local_error(c, sp.rc, "out of memory listing processes");
	else
		json_print(root);
	json_object_put(root);
	return rc;
}

/* checkpoint STORE */
static int cmd_checkpoint(struct cli *c)
{
	uint64_t lsn = 0;
	int rc = keel_checkpoint(c->h, &lsn);

	if (rc < 0)
		return store_error(c, rc, "checkpoint %s", store_arg(c));
	printf("checkpoint at LSN %" PRIu64 "\n", lsn);
	return 0;
}

/* sync STORE */
static int cmd_sync(struct cli *c)
{
	int rc = keel_sync(c->h);

	if (rc < 0)
		return store_error(c, rc, "sync %s", store_arg(c));
	return 0;
}

/* recover STORE [--salvage] */
static int cmd_recover(struct cli *c)
{
	keel_options_t o;
	char report[1024];
	int rc;

	keel_options_init(&o);
	o.arena_path = c->arena_path;
	rc = keel_recover(store_arg(c), &o, c->salvage ? KEEL_RECOVER_SALVAGE : 0, report, sizeof(report));
	if (rc < 0)
		return store_error(c, rc, "recover %s", store_arg(c));
	printf("%s\n", report);
	return 0;
}

static int cmd_help(struct cli *c);

/* ---- the command table ------------------------------------------------------------- */

static const struct cmd commands[] = {
	{
		.name = "put", .run = cmd_put, .nargs_min = 4, .nargs_max = 4,
		.opts = OPT_HEX | OPT_OPEN, .open = OPEN_CREATE,
		.args = "STORE PARTITION KEY VALUE",
		.summary = "write VALUE under KEY (VALUE '-' reads standard input)",
		.description =
		"    Writes VALUE under KEY in PARTITION, as one commit.  The store and\n"
		"    the partition are created if missing.  A new key gets version 1;\n"
		"    each write adds one.\n"
		"\n"
		"    VALUE '-' reads the value from standard input, binary-safe, up to\n"
		"    the value limit (1 MiB).  With --hex, KEY and VALUE (or standard\n"
		"    input) are hex digits; whitespace between bytes is ignored.  A value\n"
		"    that is literally '-' is written as --hex 2d.\n",
		.exit_status =
		"    0   written\n"
		"    2   usage error (argument count, bad hex)\n",
		.examples =
		"    keel put /var/lib/app users alice '{\"age\": 31}'\n"
		"    gzip -c report.txt | keel put /var/lib/app blobs report.gz -\n"
		"    keel --hex put /var/lib/app raw 00ff 'de ad be ef'\n"
		"    keel --memory put /tmp/scratch cache k1 v1\n",
	},
	{
		.name = "get", .run = cmd_get, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN, .open = OPEN_READ,
		.args = "STORE PARTITION KEY",
		.summary = "print the value of KEY (raw bytes, no newline added)",
		.description =
		"    Writes the value stored under KEY in PARTITION to standard output,\n"
		"    exactly as stored, with no newline added.  With --hex, KEY is given\n"
		"    in hex and the value is printed in hex followed by a newline.\n"
		"    The store must exist; it is opened read-only.\n",
		.exit_status =
		"    0   the value was printed\n"
		"    1   the key is not in the partition (or the partition does not exist)\n"
		"    2   usage error\n",
		.examples =
		"    keel get /var/lib/app users alice\n"
		"    keel get /var/lib/app blobs report.gz | gunzip\n"
		"    keel --hex get /var/lib/app raw 00ff\n"
		"    if keel get /var/lib/app users bob >/dev/null 2>&1; then echo present; fi\n",
	},
	{
		.name = "del", .run = cmd_del, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN, .open = OPEN_WRITE,
		.args = "STORE PARTITION KEY",
		.summary = "delete KEY",
		.description =
		"    Deletes KEY from PARTITION, as one commit.  With --hex, KEY is given\n"
		"    in hex.  The store must exist.\n",
		.exit_status =
		"    0   the key was deleted\n"
		"    1   the key was not there (nothing changed)\n"
		"    2   usage error\n",
		.examples =
		"    keel del /var/lib/app users alice\n"
		"    keel --hex del /var/lib/app raw 00ff\n",
	},
	{
		.name = "ls", .run = cmd_ls, .nargs_min = 1, .nargs_max = 2,
		.opts = OPT_JSON | OPT_HEX | OPT_OPEN, .open = OPEN_READ,
		.args = "STORE [PARTITION]",
		.summary = "list partitions with key counts, or the keys of PARTITION",
		.description =
		"    Without PARTITION, prints each partition of the store and its number\n"
		"    of keys, one per line, separated by a tab, in partition-id order.\n"
		"\n"
		"    With PARTITION, prints its keys, one per line, in no particular\n"
		"    order, from one consistent snapshot.  A backslash prints as \\\\ and\n"
		"    a control byte as \\xNN, so every key stays on one line; --hex\n"
		"    prints each key in hex instead.\n"
		"\n"
		"    --json prints one object: {\"store\", \"partitions\": [{\"name\",\n"
		"    \"keys\"}]} or {\"store\", \"partition\", \"count\", \"keys\": [{\"key\",\n"
		"    \"key_hex\", \"version\", \"value_bytes\", \"mtime_ns\", \"lsn\"}]}.\n"
		"    \"key\" is present when the key is valid UTF-8 without NUL bytes;\n"
		"    \"key_hex\" always is.\n",
		.exit_status =
		"    0   listed (possibly nothing)\n"
		"    1   PARTITION does not exist\n"
		"    2   usage error\n",
		.examples =
		"    keel ls /var/lib/app\n"
		"    keel ls /var/lib/app users\n"
		"    keel ls --json /var/lib/app users | jq -r '.keys[].key'\n",
	},
	{
		.name = "count", .run = cmd_count, .nargs_min = 2, .nargs_max = 2,
		.opts = OPT_OPEN, .open = OPEN_READ,
		.args = "STORE PARTITION",
		.summary = "print the number of keys in PARTITION",
		.description =
		"    Prints the number of keys in PARTITION and a newline.  A partition\n"
		"    that does not exist has 0 keys.\n",
		.exit_status =
		"    0   the count was printed\n"
		"    2   usage error\n",
		.examples =
		"    keel count /var/lib/app users\n",
	},
	{
		.name = "stat", .run = cmd_stat, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_JSON | OPT_OPEN, .open = OPEN_READ,
		.args = "STORE",
		.summary = "print the store's counters and attached processes",
		.description =
		"    Prints the arena file and its sizes (current, maximum, used, free,\n"
		"    awaiting reuse), the number of attached processes, partitions and\n"
		"    keys, the next, applied and durable LSNs, the store's default\n"
		"    durability and format version, then one line per attached process.\n"
		"    --json prints the same as one object, with the processes in\n"
		"    \"process_list\".  The figures are a snapshot and may be out of date\n"
		"    as soon as they are printed.\n",
		.exit_status =
		"    0   printed\n"
		"    2   usage error\n",
		.examples =
		"    keel stat /var/lib/app\n"
		"    keel stat --json /var/lib/app | jq .keys\n",
	},
	{
		.name = "checkpoint", .run = cmd_checkpoint, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_OPEN, .open = OPEN_WRITE,
		.args = "STORE",
		.summary = "write a checkpoint now and recycle the journal it covers",
		.description =
		"    Makes every commit so far durable, writes a checkpoint of the store\n"
		"    (a snapshot of every commit up to one LSN) to STORE/checkpoint/,\n"
		"    atomically, and recycles the journal segments it covers.  Prints the\n"
		"    checkpoint's LSN.  Checkpoints also run by themselves as the journal\n"
		"    grows; this is for backups and tests.\n",
		.exit_status =
		"    0   written\n"
		"    2   usage error\n"
		"    27  (KEEL_E_STATE) the store is in memory mode and has no journal\n",
		.examples =
		"    keel checkpoint /var/lib/app\n",
	},
	{
		.name = "sync", .run = cmd_sync, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_OPEN, .open = OPEN_WRITE,
		.args = "STORE",
		.summary = "make every commit so far durable",
		.description =
		"    Waits until every commit made so far (by any process) is on disk.\n"
		"    A memory-mode store has nothing to flush.\n",
		.exit_status =
		"    0   durable\n"
		"    2   usage error\n",
		.examples =
		"    keel sync /var/lib/app\n",
	},
	{
		.name = "recover", .run = cmd_recover, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_SALVAGE | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE [--salvage]",
		.summary = "rebuild the arena from checkpoint and journal",
		.description =
		"    Removes the store's arena and rebuilds it from the newest checkpoint\n"
		"    and the journal, as the first open after a power loss does.  No\n"
		"    process may have the store open.\n"
		"\n"
		"    A journal with a bad record followed by valid ones (media damage)\n"
		"    makes recovery refuse, naming the segment, offset, LSN and checksums.\n"
		"    --salvage cuts the journal at that record instead, moves the later\n"
		"    segments aside (*.lost) and prints what was lost: every commit from\n"
		"    that LSN on.\n",
		.exit_status =
		"    0   recovered; the report was printed\n"
		"    2   usage error\n"
		"    19  (KEEL_E_CORRUPT) the journal is damaged in the middle: see --salvage\n"
		"    24  (KEEL_E_BUSY) processes have the store open\n",
		.examples =
		"    keel recover /var/lib/app\n"
		"    keel recover /var/lib/app --salvage\n",
	},
	{
		.name = "help", .run = cmd_help, .nargs_min = 0, .nargs_max = 1,
		.opts = 0, .open = OPEN_NONE,
		.args = "[COMMAND]",
		.summary = "show the help of keel or of COMMAND",
		.description =
		"    Prints the same text as 'keel --help' or 'keel COMMAND --help'.\n",
		.exit_status =
		"    0   printed\n"
		"    2   no such command\n",
		.examples =
		"    keel help ls\n",
	},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

/* ---- help text ------------------------------------------------------------------------ */

static const struct {
	unsigned opt;
	const char *text;
} option_help[] = {
	{ OPT_OPEN,
	  "    --memory\n"
	  "        Open with durability 'memory' (same as --durability memory): no\n"
	  "        journal, the data lives in the arena in /dev/shm only.\n"
	  "    --durability MODE\n"
	  "        Open with durability MODE: memory, async or sync.  Without it, the\n"
	  "        store's own default applies.\n"
	  "    --arena PATH\n"
	  "        Use the arena file PATH instead of the one derived from STORE.\n" },
	{ OPT_HEX,
	  "    --hex\n"
	  "        KEY and VALUE are given in hex (whitespace between bytes ignored),\n"
	  "        and keys and values are printed in hex.\n" },
	{ OPT_JSON,
	  "    --json\n"
	  "        Print the result as JSON.\n" },
	{ OPT_SALVAGE,
	  "    --salvage\n"
	  "        Cut a journal damaged in the middle at its first bad record\n"
	  "        instead of refusing; what is lost is printed.\n\n" },
};

static void print_exit_table(FILE *f)
{
	fputs("    0   success\n"
	      "    1   not found: the key (get, del) or the partition (ls PARTITION)\n"
	      "    2   usage error: unknown command or option, wrong number of\n"
	      "        arguments, bad hex, bad durability mode\n"
	      "    3   failure outside the store: reading standard input, writing\n"
	      "        standard output, out of memory in this process\n"
	      "    3+N the store returned error -N; the message names it:\n", f);
	for (int code = -1; code >= KEEL_E_LAST; code--)
		fprintf(f, "        %-3d %s\n", EXIT_STORE_BASE - code, keel_strerror(code));
	fputs("        (a store that does not exist gives 5, KEEL_E_NOTFOUND)\n", f);
}

static void print_main_help(FILE *f)
{
	fputs("NAME\n"
	      "    keel - read and write a Keel store from the shell\n"
	      "\n"
	      "SYNOPSIS\n"
	      "    keel [OPTIONS] COMMAND [ARGS...]\n"
	      "    keel COMMAND --help\n"
	      "    keel --help | --version\n"
	      "\n"
	      "DESCRIPTION\n"
	      "    Keel is a state store shared by the processes of one host.  STORE is\n"
	      "    the store's directory; its arena is a file in /dev/shm.  Each command\n"
	      "    opens the store, does its work as its own commit, and closes it.\n"
	      "\n"
	      "    KEY and VALUE are the bytes of the argument; --hex gives them in hex\n"
	      "    for binary data.  VALUE '-' reads standard input.  Options may come\n"
	      "    before or after the command; put -- before an argument that begins\n"
	      "    with '-' (other than the single '-' for standard input).\n"
	      "\n"
	      "COMMANDS\n", f);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "    %-6s %s\n           %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fputs("\nOPTIONS\n", f);
	for (size_t i = 0; i < sizeof(option_help) / sizeof(option_help[0]); i++)
		fputs(option_help[i].text, f);
	fputs("    -h, --help\n"
	      "        Show this help, or a command's help after the command.\n"
	      "    --version\n"
	      "        Print the version of the Keel library keel was built with.\n"
	      "\n"
	      "EXIT STATUS\n", f);
	print_exit_table(f);
	fputs("\n"
	      "EXAMPLES\n"
	      "    keel put /var/lib/app users alice '{\"age\": 31}'\n"
	      "    keel get /var/lib/app users alice\n"
	      "    keel ls /var/lib/app\n"
	      "    keel stat --json /var/lib/app\n"
	      "    keel --memory put /tmp/scratch cache k1 v1\n", f);
}

static void print_cmd_help(FILE *f, const struct cmd *cmd)
{
	fprintf(f, "NAME\n    keel %s - %s\n\n", cmd->name, cmd->summary);
	fprintf(f, "SYNOPSIS\n    keel %s%s %s\n\n", cmd->name, cmd->opts ? " [OPTIONS]" : "",
		cmd->args);
	fprintf(f, "DESCRIPTION\n%s\n", cmd->description);
	fputs("OPTIONS\n", f);
	for (size_t i = 0; i < sizeof(option_help) / sizeof(option_help[0]); i++)
		if (cmd->opts & option_help[i].opt)
			fputs(option_help[i].text, f);
	fputs("    -h, --help\n"
	      "        Show this help.\n\n", f);
	fprintf(f, "EXIT STATUS\n%s", cmd->exit_status);
	fputs("    3+  a failure outside the store (3) or a store error (3 + N for\n"
	      "        KEEL_E_* code -N); 'keel --help' lists them all.\n\n", f);
	fprintf(f, "EXAMPLES\n%s", cmd->examples);
}

static int cmd_help(struct cli *c)
{
	const struct cmd *cmd;

	if (c->nargs == 0) {
		print_main_help(stdout);
		return 0;
	}
	cmd = find_cmd(c->args[0]);
	if (!cmd)
		return usage_error(c, "no such command: '%s'", c->args[0]);
	print_cmd_help(stdout, cmd);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static int parse_durability(struct cli *c, const char *s)
{
	if (strcmp(s, "memory") == 0)
		c->durability = KEEL_DURABILITY_MEMORY;
	else if (strcmp(s, "async") == 0)
		c->durability = KEEL_DURABILITY_ASYNC;
	else if (strcmp(s, "sync") == 0)
		c->durability = KEEL_DURABILITY_SYNC;
	else
		return usage_error(c, "--durability: '%s' is not a mode "
				   "(expected memory, async or sync)", s);
	return 0;
}

static int open_store(struct cli *c)
{
	keel_options_t opt;
	int rc;

	keel_options_init(&opt);
	if (c->durability != KEEL_DURABILITY_DEFAULT)   /* else keep the default */
		opt.durability = c->durability;
	opt.arena_path = c->arena_path;
	if (c->cmd->open == OPEN_READ)
		opt.flags |= KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY;
	else if (c->cmd->open == OPEN_WRITE)
		opt.flags |= KEEL_OPEN_NOCREATE;
	rc = keel_open(store_arg(c), &opt, &c->h);
	if (rc < 0) {
		c->h = NULL;
		store_error(c, rc, "open %s", store_arg(c));
		/* A missing store is a store error (5), not "key not found" (1). */
		if (rc == KEEL_E_NOTFOUND)
			c->exit_class = EXIT_STORE_BASE - KEEL_E_NOTFOUND;
	}
	return rc;
}

enum { LOPT_HELP = 'h', LOPT_JSON = 256, LOPT_HEX, LOPT_MEMORY, LOPT_DURABILITY,
       LOPT_ARENA, LOPT_VERSION, LOPT_SALVAGE };

static const struct option long_options[] = {
	{ "help", no_argument, NULL, LOPT_HELP },
	{ "json", no_argument, NULL, LOPT_JSON },
	{ "hex", no_argument, NULL, LOPT_HEX },
	{ "memory", no_argument, NULL, LOPT_MEMORY },
	{ "durability", required_argument, NULL, LOPT_DURABILITY },
	{ "arena", required_argument, NULL, LOPT_ARENA },
	{ "version", no_argument, NULL, LOPT_VERSION },
	{ "salvage", no_argument, NULL, LOPT_SALVAGE },
	{ NULL, 0, NULL, 0 },
};

/* What the command line asked for, before the command is known. */
struct parsed {
	int help;
	int version;
	int memory;
	const char *durability;
	unsigned seen;               /* enum cmd_opt bits given */
	const char *seen_name[4];    /* the option that set each bit, for messages */
};

static void saw(struct parsed *p, unsigned bit, const char *name)
{
	p->seen |= bit;
	for (int i = 0; i < 4; i++)
		if (bit == 1u << i)
			p->seen_name[i] = name;
}

/*
 * Parse every option, wherever it stands (GNU getopt moves the positional
 * arguments to the end, in order; "-" stays positional, "--" ends options).
 */
static int parse_options(struct cli *c, struct parsed *p, int argc, char **argv)
{
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (ch) {
		case LOPT_HELP: p->help = 1; break;
		case LOPT_VERSION: p->version = 1; break;
		case LOPT_SALVAGE: c->salvage = 1; saw(p, OPT_SALVAGE, "--salvage"); break;
		case LOPT_JSON: c->json = 1; saw(p, OPT_JSON, "--json"); break;
		case LOPT_HEX: c->hex = 1; saw(p, OPT_HEX, "--hex"); break;
		case LOPT_MEMORY: p->memory = 1; saw(p, OPT_OPEN, "--memory"); break;
		case LOPT_DURABILITY:
			p->durability = optarg;
			saw(p, OPT_OPEN, "--durability");
			break;
		case LOPT_ARENA:
			c->arena_path = optarg;
			saw(p, OPT_OPEN, "--arena");
			break;
		case ':':
			return usage_error(c, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error(c, "unknown option '-%c'", optopt);
			return usage_error(c, "unknown option '%s'", argv[optind - 1]);
		}
	}
	return 0;
}

/* Check the options and argument count against what c->cmd accepts. */
static int check_command_line(struct cli *c, const struct parsed *p)
{
	const struct cmd *cmd = c->cmd;

	for (int i = 0; i < 4; i++) {
		unsigned bit = 1u << i;

		if ((p->seen & bit) && !(cmd->opts & bit))
			return usage_error(c, "%s does not apply to %s", p->seen_name[i],
					   cmd->name);
	}
	if (p->memory && p->durability && strcmp(p->durability, "memory") != 0)
		return usage_error(c, "--memory and --durability %s disagree", p->durability);
	if (p->memory)
		c->durability = KEEL_DURABILITY_MEMORY;
	if (p->durability) {
		int rc = parse_durability(c, p->durability);

		if (rc < 0)
			return rc;
	}
	if (c->nargs < cmd->nargs_min || c->nargs > cmd->nargs_max)
		return usage_error(c, "expected %s, got %d argument%s\nusage: keel %s%s %s",
				   cmd->args, c->nargs, c->nargs == 1 ? "" : "s", cmd->name,
				   cmd->opts ? " [OPTIONS]" : "", cmd->args);
	return 0;
}

/* Open (if the command wants it), run, close; 0 or a negative code. */
static int run_command(struct cli *c)
{
	int rc, crc;

	if (c->cmd->open != OPEN_NONE) {
		rc = open_store(c);
		if (rc < 0)
			return rc;
	}
	rc = c->cmd->run(c);
	if (c->h) {
		crc = keel_close(c->h);
		c->h = NULL;
		if (crc < 0 && rc == 0)
			rc = store_error(c, crc, "close %s", store_arg(c));
	}
	return rc;
}

/*
 * The command table's own rules, checked on every run (seven rows cost
 * nothing, and NDEBUG would hide an assert): a new row that breaks one fails
 * at once, whatever the build.
 */
#define TABLE_CHECK(cond)                                                         \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "keel: command table, row '%s': %s\n",   \
				cmd->name ? cmd->name : "?", #cond);              \
			abort();                                                  \
		}                                                                 \
	} while (0)

static void check_command_table(void)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct cmd *cmd = &commands[i];

		TABLE_CHECK(cmd->name && cmd->run && cmd->args && cmd->summary);
		TABLE_CHECK(cmd->description && cmd->exit_status && cmd->examples);
		TABLE_CHECK(cmd->nargs_min >= 0 && cmd->nargs_min <= cmd->nargs_max);
		TABLE_CHECK(cmd->open == OPEN_NONE || cmd->nargs_min >= 1); /* STORE first */
		TABLE_CHECK((cmd->opts & ~(unsigned)(OPT_JSON | OPT_HEX | OPT_OPEN | OPT_SALVAGE)) == 0);
		TABLE_CHECK(find_cmd(cmd->name) == cmd);                     /* unique */
	}
}

/* Flush stdout; a failure there (disk full, closed pipe) is a local error. */
static int finish_output(struct cli *c, int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		int err = errno;

		if (rc == 0)
			rc = local_error(c, KEEL_E_IO, "writing standard output: %s",
					 strerror(err));
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct parsed p = { 0 };
	struct cli cli = { 0 };
	struct cli *c = &cli;
	int rc;

	check_command_table();
	rc = parse_options(c, &p, argc, argv);
	if (rc < 0)
		return exit_status(c, rc);
	if (p.version) {
		printf("keel %d.%d\n", KEEL_VERSION_MAJOR, KEEL_VERSION_MINOR);
		return exit_status(c, finish_output(c, 0));
	}
	if (optind >= argc) {
		if (!p.help)
			return exit_status(c, usage_error(c, "no command given"));
		print_main_help(stdout);
		return exit_status(c, finish_output(c, 0));
	}
	c->cmd = find_cmd(argv[optind]);
	if (!c->cmd)
		return exit_status(c, usage_error(c, "unknown command '%s'", argv[optind]));
	if (p.help) {
		print_cmd_help(stdout, c->cmd);
		return exit_status(c, finish_output(c, 0));
	}
	c->args = argv + optind + 1;
	c->nargs = argc - optind - 1;
	rc = check_command_line(c, &p);
	if (rc == 0)
		rc = run_command(c);
	return exit_status(c, finish_output(c, rc));
}
