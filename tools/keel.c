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
 * Command groups: a row named "timer set" or "timer dead ls" is named on the
 * command line by that many words; "timer" and "timer dead" are groups
 * (cmd_groups[]), with a help page of their own listing their rows.  Every
 * timer command checks all its arguments before it opens the store, so bad
 * input changes nothing; the timers section below says how due times and
 * claims work from the shell.
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
 *   1      not found: the key (get, del) or the partition (ls PARTITION,
 *          clear, exists, export) or the timer (timer cancel, timer dead
 *          requeue|drop); no timer due (timer claim); for verify, damage
 *          found
 *   2      usage error: unknown command or option, wrong argument count,
 *          bad hex, bad durability mode, a due time or duration that
 *          cannot be parsed or is out of range, a bad token
 *   3      failure outside the store: reading stdin or writing stdout,
 *          reading or writing a dump file
 *   3 + N  the store returned -N (a KEEL_E_* code): 4 for KEEL_E_INVAL,
 *          5 for KEEL_E_NOTFOUND (e.g. the store does not exist), 8 for
 *          KEEL_E_VALSIZE (a value or timer payload over its limit), ...,
 *          19 for KEEL_E_CORRUPT, 27 for KEEL_E_STATE (an ack, extend or
 *          release of a claim not held), 28 for KEEL_E_OS.  Codes past 122 map
 *          to 125.
 *
 * Command functions follow the library's convention: they return 0 or a
 * negative KEEL_E_* code.  The exit status comes from that code and from
 * `cli.exit_class`, which the helpers set when a failure is a usage error
 * or a local one rather than the store's.
 */
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <xxhash.h>

#include "keel.h"

/* ---- exit statuses ------------------------------------------------------- */
enum {
	EXIT_OK = 0,
	EXIT_NOTFOUND = 1,
	EXIT_DAMAGE = 1,         /* verify: damage found */
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
	OPT_OUTPUT = 1u << 4,  /* -o, --output FILE */
	OPT_INPUT = 1u << 5,   /* -i, --input FILE */
	OPT_QUIET = 1u << 6,   /* -q, --quiet */
	OPT_FORCE = 1u << 7,   /* --force */
	OPT_POWER_LOSS = 1u << 8, /* --power-loss */
	OPT_DRY_RUN = 1u << 9, /* --dry-run */
	OPT_TOKEN = 1u << 10,  /* --token T (timer ack, extend, release) */
	OPT_LEASE = 1u << 11,  /* --lease DURATION (timer claim, extend) */
	OPT_TIMEOUT = 1u << 12, /* --timeout DURATION (timer claim) */
	OPT_ACK = 1u << 13,    /* --ack (timer claim) */
	OPT_PAYLOAD_FILE = 1u << 14, /* --payload-file FILE (timer set) */
	OPT_DUE = 1u << 15,    /* --due DUE (timer release, dead requeue) */
	OPT_STATE = 1u << 16,  /* --state LIST (timer ls) */
	OPT_REPAIR = 1u << 17, /* --repair (verify) */
};
#define OPT_BITS 18        /* how many cmd_opt bits there are */
#define OPT_ALL ((1u << OPT_BITS) - 1)

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
	int quiet;
	int force;
	int repair;
	int power_loss;
	int dry_run;
	const char *output;       /* -o FILE (export) */
	const char *input;        /* -i FILE (import) */
	const char *arena_path;
	const char *token;        /* --token (timer commands) */
	const char *lease;        /* --lease */
	const char *timeout;      /* --timeout */
	const char *payload_file; /* --payload-file */
	const char *due;          /* --due */
	const char *state;        /* --state */
	int ack;                  /* --ack */
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

/*
 * A data argument (a VALUE, a timer PAYLOAD): its bytes, hex, or "-" for
 * standard input (raw or hex), at most `max` bytes; more is refused with
 * `toolong` when read from standard input (an argument's length is the
 * caller's to check, or the store's).  `what` names it in messages.
 */
static int arg_data(struct cli *c, const char *arg, size_t max, int toolong, const char *what,
		    struct bytes *out)
{
	uint8_t *buf = NULL, *raw = NULL;
	size_t len = 0, rawlen = 0;
	char label[64];
	int rc;

	memset(out, 0, sizeof(*out));
	if (strcmp(arg, "-") == 0) {
		if (!c->hex) {
			rc = read_stdin(c, max, toolong, what, &buf, &len);
			if (rc < 0)
				return rc;
			out->p = out->owned = buf;
			out->n = len;
			return 0;
		}
		/* Hex text: two digits a byte, plus whitespace; allow one
		 * separator per byte and a line break per 16 bytes or so. */
		snprintf(label, sizeof(label), "%s (hex)", what);
		rc = read_stdin(c, max * 4 + 4096, toolong, label, &raw, &rawlen);
		if (rc < 0)
			return rc;
		snprintf(label, sizeof(label), "%s (standard input)", what);
		rc = hex_decode(c, label, (const char *)raw, rawlen, &buf, &len);
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
	rc = hex_decode(c, what, arg, strlen(arg), &buf, &len);
	if (rc < 0)
		return rc;
	out->p = out->owned = buf;
	out->n = len;
	return 0;
}

/* VALUE argument: its bytes, hex, or "-" for standard input (raw or hex). */
static int arg_value(struct cli *c, const char *arg, struct bytes *out)
{
	return arg_data(c, arg, KEEL_VALUE_MAX, KEEL_E_VALSIZE, "VALUE", out);
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

static int open_store(struct cli *c, int mode);

/* A new JSON object with "store" set, or NULL (out of memory). */
static json_object *json_root(const struct cli *c)
{
	json_object *root = json_object_new_object();

	if (root)
		json_object_object_add(root, "store", json_object_new_string(store_arg(c)));
	return root;
}

/* exists STORE PARTITION: exit 0 if it exists, 1 if not. */
static int cmd_exists(struct cli *c)
{
	const char *part = c->args[1];
	uint64_t keys = 0;
	int found = 0;
	int rc;

	rc = keel_exists(c->h, part, &found);
	if (rc < 0)
		return store_error(c, rc, "look up partition '%s' of %s", part, store_arg(c));
	if (found && (rc = keel_count(c->h, part, &keys)) < 0)
		return store_error(c, rc, "count partition '%s' of %s", part, store_arg(c));
	if (c->json) {
		json_object *root = json_root(c);

		if (!root)
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		json_object_object_add(root, "partition", json_object_new_string(part));
		json_object_object_add(root, "exists", json_object_new_boolean(found));
		json_object_object_add(root, "keys", json_object_new_uint64(keys));
		json_print(root);
		json_object_put(root);
	} else {
		puts(found ? "yes" : "no");
	}
	/* "No" is an answer, not a failure: exit 1 without a message. */
	return found ? 0 : KEEL_E_NOTFOUND;
}

/* clear STORE PARTITION: delete every key in one commit, print how many. */
static int cmd_clear(struct cli *c)
{
	const char *part = c->args[1];
	uint64_t removed = 0;
	int found = 0;
	int rc;

	rc = keel_exists(c->h, part, &found);
	if (rc < 0)
		return store_error(c, rc, "look up partition '%s' of %s", part, store_arg(c));
	if (!found)
		return not_found(c, "partition '%s' not found in %s", part, store_arg(c));
	rc = keel_clear(c->h, part, &removed);
	if (rc < 0)
		return store_error(c, rc, "clear partition '%s' of %s", part, store_arg(c));
	if (c->json) {
		json_object *root = json_root(c);

		if (!root)
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		json_object_object_add(root, "partition", json_object_new_string(part));
		json_object_object_add(root, "removed", json_object_new_uint64(removed));
		json_print(root);
		json_object_put(root);
	} else {
		printf("%" PRIu64 "\n", removed);
	}
	return 0;
}

/* ---- verify -------------------------------------------------------------------------- */

struct verify_ctx {
	json_object *arr;    /* --json: the reports */
	uint64_t problems;
	int nomem;
};

static void verify_add(struct verify_ctx *v, const char *where, const char *what)
{
	v->problems++;
	if (!v->arr) {
		printf("%s: %s\n", where, what);
		return;
	}
	json_object *o = json_object_new_object();

	if (!o) {
		v->nomem = 1;
		return;
	}
	json_object_object_add(o, "where", json_object_new_string(where));
	json_object_object_add(o, "what", json_object_new_string(what));
	json_object_array_add(v->arr, o);
}

static void verify_report_cb(void *ctx, const char *where, const char *what)
{
	verify_add(ctx, where ? where : "?", what ? what : "?");
}

/*
 * verify STORE: keel_check without repair, the audit keel-dump --check runs.
 * An arena damaged past attaching is damage found too (exit 1), reported at
 * "attach"; any other failure to open is an error (3 + N).
 */
static int cmd_verify(struct cli *c)
{
	struct verify_ctx v = { 0 };
	json_object *root = NULL;
	keel_stat_t st;
	int rc, crc, have_stat = 0;

	memset(&st, 0, sizeof(st));
	if (c->json) {
		root = json_root(c);
		v.arr = json_object_new_array();
		if (!root || !v.arr) {
			json_object_put(root);
			json_object_put(v.arr);
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		}
		json_object_object_add(root, "reports", v.arr);
	}
	rc = open_store(c, c->repair ? OPEN_WRITE : OPEN_READ);
	if (rc == KEEL_E_CORRUPT) {
		/* open_store printed the detail on stderr; list it as damage. */
		c->exit_class = 0;
		verify_add(&v, "attach", keel_errmsg()[0] ? keel_errmsg() :
			   keel_strerror(rc));
	} else if (rc < 0) {
		json_object_put(root);
		return rc;
	} else {
		rc = keel_check(c->h, c->repair ? KEEL_CHECK_REPAIR : 0, verify_report_cb, &v);
		if (rc < 0 && rc != KEEL_E_CORRUPT) {
			json_object_put(root);
			return store_error(c, rc, "check %s", store_arg(c));
		}
		if (rc == KEEL_E_CORRUPT && v.problems == 0)   /* never silent */
			verify_add(&v, "store", keel_errmsg());
		/* Figures for the summary only (a damaged partition may refuse). */
		have_stat = keel_stat(c->h, &st) == 0;
		crc = keel_close(c->h);
		c->h = NULL;
		if (crc < 0) {
			json_object_put(root);
			return store_error(c, crc, "close %s", store_arg(c));
		}
	}
	if (v.nomem) {
		json_object_put(root);
		return local_error(c, KEEL_E_NOMEM, "out of memory listing the reports");
	}
	if (root) {
		json_object_object_add(root, "sound", json_object_new_boolean(v.problems == 0));
		json_object_object_add(root, "problems", json_object_new_uint64(v.problems));
		if (have_stat) {
			json_object_object_add(root, "partitions",
					       json_object_new_uint64(st.partitions));
			json_object_object_add(root, "keys", json_object_new_uint64(st.keys));
		}
		json_print(root);
		json_object_put(root);
	} else if (v.problems == 0) {
		printf("%s: sound (%" PRIu32 " partition%s, %" PRIu64 " key%s)\n", store_arg(c),
		       st.partitions, st.partitions == 1 ? "" : "s", st.keys,
		       st.keys == 1 ? "" : "s");
	} else {
		printf("%s: %" PRIu64 " problem%s found\n", store_arg(c), v.problems,
		       v.problems == 1 ? "" : "s");
	}
	if (v.problems == 0)
		return 0;
	c->exit_class = EXIT_DAMAGE;
	return KEEL_E_CORRUPT;
}

/* ---- destroy and crash: files of a store ------------------------------------------ */

/*
 * What a store directory holds, by Keel's own file names:
 *   keel.id, keel.id.tmp                       the store's identity
 *   journal/seg-<16 hex>.jnl[.lost]            journal segments
 *   journal/spare-<pid>-<n>.tmp                a spare segment being filled
 *   journal/drop-<16 hex>.tmp                  a recycled segment to unlink
 *   checkpoint/ckpt-<16 hex>[.tmp]             checkpoints
 * Anything else is the user's, and destroy leaves it alone.
 */
#define FOREIGN_SHOWN_MAX 8

struct store_files {
	int has_id;          /* keel.id present */
	int keel_files;      /* Keel's files found (subdirectories excluded) */
	int foreign;         /* entries that are not Keel's */
	char shown[FOREIGN_SHOWN_MAX][256];
};

static int all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* 1 if `name` in STORE/`sub` is one of Keel's files. */
static int keel_subdir_file(const char *sub, const char *name)
{
	size_t n = strlen(name);

	if (strcmp(sub, "journal") == 0) {
		unsigned pid;
		unsigned long long k;
		int end = 0;
		if (n == 25 && strncmp(name, "drop-", 5) == 0 && all_hex(name + 5, 16) &&
		    strcmp(name + 21, ".tmp") == 0)
			return 1;
		if (sscanf(name, "spare-%u-%llu.tmp%n", &pid, &k, &end) == 2 && (size_t)end == n)
			return 1;
		/* seg-<16 hex>.jnl[.lost] */
		return (n == 24 || (n == 29 && strcmp(name + 24, ".lost") == 0)) &&
		       strncmp(name, "seg-", 4) == 0 && all_hex(name + 4, 16) &&
		       strncmp(name + 20, ".jnl", 4) == 0;
	}
	/* ckpt-<16 hex>[.tmp] */
	return (n == 21 || (n == 25 && strcmp(name + 21, ".tmp") == 0)) &&
	       strncmp(name, "ckpt-", 5) == 0 && all_hex(name + 5, 16);
}

/* dir/name into buf; 0, or -1 if it does not fit. */
static int join_path(char *buf, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(buf, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* An entry that is not Keel's; `rel` is its path inside STORE. */
static void note_foreign(struct store_files *sf, const char *rel)
{
	if (sf->foreign < FOREIGN_SHOWN_MAX) {
		char *to = sf->shown[sf->foreign];
		int n = snprintf(to, sizeof(sf->shown[0]), "%s", rel);

		if (n < 0 || (size_t)n >= sizeof(sf->shown[0]))
			strcpy(to, "(a name too long to show)");
	}
	sf->foreign++;
}

/*
 * Walk STORE and, when `remove` is set, unlink Keel's files and remove the
 * subdirectories and STORE itself if they end up empty.  The first failure
 * is returned (a store error with the path); the walk goes no further.
 */
static int store_files_walk(struct cli *c, const char *dir, int remove, struct store_files *sf)
{
	static const char *const subs[] = { "journal", "checkpoint" };
	char path[4096], fpath[4096];
	const char *bad = path;       /* what a failure is about */
	DIR *d, *sd = NULL;
	struct dirent *e, *se;
	struct stat st;
	int err;

	memset(sf, 0, sizeof(*sf));
	d = opendir(dir);
	if (!d)
		return store_error(c, errno == EACCES ? KEEL_E_PERM : KEEL_E_OS,
				   "read directory %s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		int is_sub = !strcmp(n, subs[0]) || !strcmp(n, subs[1]);

		if (!strcmp(n, ".") || !strcmp(n, ".."))
			continue;
		if (join_path(path, sizeof(path), dir, n) < 0) {
			errno = ENAMETOOLONG;
			goto fail;
		}
		if (lstat(path, &st) != 0)
			continue;   /* gone meanwhile */
		if ((!strcmp(n, "keel.id") || !strcmp(n, "keel.id.tmp")) && S_ISREG(st.st_mode)) {
			sf->has_id |= !strcmp(n, "keel.id");
			sf->keel_files++;
			if (remove && unlink(path) != 0 && errno != ENOENT)
				goto fail;
			continue;
		}
		if (!is_sub || !S_ISDIR(st.st_mode)) {
			note_foreign(sf, n);
			continue;
		}
		if (!(sd = opendir(path)))
			goto fail;
		while ((se = readdir(sd))) {
			if (!strcmp(se->d_name, ".") || !strcmp(se->d_name, ".."))
				continue;
			if (join_path(fpath, sizeof(fpath), path, se->d_name) < 0) {
				bad = path;
				errno = ENAMETOOLONG;
				goto fail;
			}
			if (lstat(fpath, &st) != 0)
				continue;
			if (!S_ISREG(st.st_mode) || !keel_subdir_file(n, se->d_name)) {
				note_foreign(sf, fpath + strlen(dir) + 1);
				continue;
			}
			sf->keel_files++;
			if (remove && unlink(fpath) != 0 && errno != ENOENT) {
				bad = fpath;
				goto fail;
			}
		}
		closedir(sd);
		sd = NULL;
		if (remove && rmdir(path) != 0 && errno != ENOTEMPTY && errno != EEXIST)
			goto fail;
	}
	closedir(d);
	if (remove && rmdir(dir) != 0 && errno != ENOTEMPTY && errno != EEXIST)
		return store_error(c, errno == EACCES ? KEEL_E_PERM : KEEL_E_OS, "remove %s: %s",
				   dir, strerror(errno));
	return 0;
fail:
	err = errno;
	if (sd)
		closedir(sd);
	closedir(d);
	return store_error(c, err == EACCES || err == EPERM ? KEEL_E_PERM : KEEL_E_OS,
			   "remove %s: %s", bad, strerror(err));
}

/* The store's options for destroy and crash: read-only, so that the short
 * open they make to count attached processes flushes and changes nothing. */
static void probe_options(const struct cli *c, keel_options_t *o)
{
	keel_options_init(o);
	o->arena_path = c->arena_path;
	o->flags |= KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY;
}

/* No store at STORE: exit 5 (KEEL_E_NOTFOUND as a store error), not 1. */
static int no_store(struct cli *c, const char *why)
{
	fprintf(stderr, "keel %s: no store at %s: %s\n", cmd_name(c), store_arg(c), why);
	c->exit_class = EXIT_STORE_BASE - KEEL_E_NOTFOUND;
	return KEEL_E_NOTFOUND;
}

/* STORE must be a directory. */
static int check_store_dir(struct cli *c)
{
	struct stat st;

	if (stat(store_arg(c), &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return no_store(c, strerror(errno));
		return store_error(c, errno == EACCES ? KEEL_E_PERM : KEEL_E_OS,
				   "look at %s: %s", store_arg(c), strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return no_store(c, "not a directory");
	return 0;
}

/* destroy STORE [--force] */
static int cmd_destroy(struct cli *c)
{
	const char *dir = store_arg(c);
	struct store_files sf;
	keel_options_t o;
	char arena[4096];
	struct stat ast;
	int rc, have_arena;

	if ((rc = check_store_dir(c)) < 0)
		return rc;
	probe_options(c, &o);
	rc = keel_arena_path(dir, &o, arena, sizeof(arena));
	if (rc < 0)
		return store_error(c, rc, "arena path of %s", dir);
	have_arena = lstat(arena, &ast) == 0;
	if ((rc = store_files_walk(c, dir, 0, &sf)) < 0)
		return rc;
	if (!have_arena && !sf.has_id && sf.keel_files == 0) {
		char why[4300];

		snprintf(why, sizeof(why), "no arena (%s) and no keel.id; nothing removed", arena);
		return no_store(c, why);
	}
	if (sf.foreign && !c->force) {
		fprintf(stderr, "keel destroy: %s holds %d entr%s that %s not Keel's; nothing "
			"removed:\n", dir, sf.foreign, sf.foreign == 1 ? "y" : "ies",
			sf.foreign == 1 ? "is" : "are");
		for (int i = 0; i < sf.foreign && i < FOREIGN_SHOWN_MAX; i++)
			fprintf(stderr, "  %s/%s\n", dir, sf.shown[i]);
		if (sf.foreign > FOREIGN_SHOWN_MAX)
			fprintf(stderr, "  ... and %d more\n", sf.foreign - FOREIGN_SHOWN_MAX);
		fputs("  Move them away, or use --force to remove only Keel's files and keep "
		      "the directory.\n", stderr);
		return KEEL_E_STATE;
	}
	if (have_arena) {
		rc = keel_unlink_arena(dir, &o, c->force);
		if (rc == KEEL_E_BUSY)
			return store_error(c, rc, "destroy %s: processes are attached (nothing "
					   "removed; stop them, or use --force and they lose "
					   "their store)", dir);
		if (rc < 0)
			return store_error(c, rc, "remove the arena %s", arena);
	}
	if ((rc = store_files_walk(c, dir, 1, &sf)) < 0)
		return rc;
	if (access(dir, F_OK) == 0)
		printf("removed the Keel files of %s%s%s; kept the directory: it holds %d other "
		       "entr%s\n", dir, have_arena ? " and its arena " : "",
		       have_arena ? arena : "", sf.foreign, sf.foreign == 1 ? "y" : "ies");
	else
		printf("destroyed %s%s%s\n", dir, have_arena ? " and its arena " : "",
		       have_arena ? arena : "");
	return 0;
}

/* ---- crash --power-loss ------------------------------------------------------------- */

#define CRASH_KILL_WAIT_MS 5000   /* how long a SIGKILLed process may take to die */

struct crash_procs {
	pid_t pids[KEEL_PROCESSES_MAX];
	uint32_t n;
};

static int crash_proc_cb(void *ctx, const keel_proc_info_t *p)
{
	struct crash_procs *cp = ctx;

	if (p->alive && p->pid != getpid() && cp->n < KEEL_PROCESSES_MAX)
		cp->pids[cp->n++] = p->pid;
	return 0;
}

/* 1 while pid runs; a zombie has stopped (it holds no mapping any more). */
static int pid_running(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *p;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');   /* the name may hold spaces and parentheses */
	return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* SIGKILL every pid and wait until each has stopped. */
static int kill_all(struct cli *c, const struct crash_procs *cp)
{
	for (uint32_t i = 0; i < cp->n; i++)
		if (kill(cp->pids[i], SIGKILL) != 0 && errno != ESRCH)
			return local_error(c, errno == EPERM ? KEEL_E_PERM : KEEL_E_OS,
					   "cannot kill pid %ld: %s (nothing dropped)",
					   (long)cp->pids[i], strerror(errno));
	for (uint32_t i = 0; i < cp->n; i++) {
		int waited_ms = 0;

		while (pid_running(cp->pids[i])) {
			if (waited_ms >= CRASH_KILL_WAIT_MS) {
				fprintf(stderr, "keel crash: pid %ld still runs %d ms after SIGKILL; "
					"nothing dropped\n", (long)cp->pids[i], CRASH_KILL_WAIT_MS);
				return KEEL_E_BUSY;
			}
			usleep(10 * 1000);
			waited_ms += 10;
		}
	}
	return 0;
}

/*
 * crash STORE --power-loss [--force]: drop the arena as a power cut would.
 * The short open that counts attached processes is read-only, so it flushes
 * nothing: commits that were not yet durable stay lost.
 */
static int cmd_crash(struct cli *c)
{
	static struct crash_procs cp;   /* 4 KiB: keep it off the stack */
	const char *dir = store_arg(c);
	keel_options_t o;
	keel_inspect_header_t ih;
	char arena[4096];
	struct stat ast;
	int rc, attached = 0;

	if (!c->power_loss)
		return usage_error(c, "say what to simulate: --power-loss (the only kind "
				   "so far)");
	if ((rc = check_store_dir(c)) < 0)
		return rc;
	probe_options(c, &o);
	rc = keel_arena_path(dir, &o, arena, sizeof(arena));
	if (rc < 0)
		return store_error(c, rc, "arena path of %s", dir);
	if (lstat(arena, &ast) != 0) {
		char id[4200], why[4400];

		if (join_path(id, sizeof(id), dir, "keel.id") == 0 && access(id, F_OK) == 0) {
			printf("no arena at %s: nothing to drop (the next open recovers the "
			       "store)\n", arena);
			return 0;
		}
		snprintf(why, sizeof(why), "no arena (%s) and no keel.id", arena);
		return no_store(c, why);
	}
	memset(&ih, 0, sizeof(ih));
	cp.n = 0;
	rc = keel_open(dir, &o, &c->h);
	if (rc < 0) {
		c->h = NULL;
		if (!c->force)
			return store_error(c, rc, "attach to %s to count its processes (nothing "
					   "dropped; --force drops the arena anyway)", dir);
		fprintf(stderr, "keel crash: cannot attach to %s (%s); dropping the arena "
			"anyway (--force)\n", dir, keel_strerror(rc));
	} else {
		if ((rc = keel_processes(c->h, crash_proc_cb, &cp)) < 0)
			return store_error(c, rc, "list the processes of %s", dir);
		if (cp.n && !c->force) {
			fprintf(stderr, "keel crash: %" PRIu32 " process%s attached to %s:",
				cp.n, cp.n == 1 ? " is" : "es are", dir);
			for (uint32_t i = 0; i < cp.n && i < 16; i++)
				fprintf(stderr, " %ld", (long)cp.pids[i]);
			fprintf(stderr, "%s\n  Nothing dropped.  Stop them first, or use --force: "
				"it SIGKILLs them, as a power cut stops everything.\n",
				cp.n > 16 ? " ..." : "");
			return KEEL_E_BUSY;
		}
		if (cp.n && (rc = kill_all(c, &cp)) < 0)
			return rc;
		/* Read after the kills, and without a lock (a lock a killed
		 * process held would make us repair an arena about to go). */
		if ((rc = keel_inspect_header(c->h, &ih)) < 0)
			return store_error(c, rc, "read the header of %s", arena);
		/* A read-only handle writes nothing on close: no flush. */
		keel_close(c->h);
		c->h = NULL;
		attached = 1;
	}
	/* Without --force, keel_unlink_arena counts again: a process that
	 * attached meanwhile makes it refuse. */
	rc = keel_unlink_arena(dir, &o, c->force);
	if (rc < 0)
		return store_error(c, rc, "drop the arena %s", arena);
	printf("dropped the arena %s as a power cut would", arena);
	if (cp.n) {
		printf(" (killed pid");
		for (uint32_t i = 0; i < cp.n; i++)
			printf(" %ld", (long)cp.pids[i]);
		printf(")");
	}
	printf("\n");
	if (!attached)
		printf("the next open recovers from the checkpoint and the journal\n");
	else if (!ih.journaled)
		printf("a memory-mode store has no journal: all its data is gone\n");
	else {
		uint64_t after = ih.next_lsn - 1 > ih.durable_lsn ? ih.next_lsn - 1 - ih.durable_lsn : 0;

		printf("journal durable up to LSN %" PRIu64 "; %" PRIu64 " later commit%s not "
		       "yet durable and may be lost; the next open recovers from the "
		       "checkpoint and the journal\n", ih.durable_lsn, after,
		       after == 1 ? " was" : "s were");
	}
	return 0;
}

/* ---- export and import: the dump format ------------------------------------------- */
/*
 * A dump is a portable copy of a store's partitions, keys, values and
 * timers, written by `keel export` and read by `keel import`.  It does not
 * depend on the arena's layout, the journal's format or the durability
 * mode, so it moves data between builds, hosts and stores, and it is
 * binary-safe: keys, values and payloads are length-prefixed bytes.  Every
 * integer is unsigned and little-endian.
 *
 *   header, 32 bytes
 *     offset size  field
 *     0      8     magic "KEELDUMP"
 *     8      4     format version: 2 (export writes 2; import reads 1 and 2)
 *     12     4     flags: bit 0 set = every partition, and the timers, come
 *                  from one snapshot; the other bits are 0
 *     16     8     created_ns: wall clock of the export, ns since the epoch
 *     24     8     lsn: every commit up to this LSN is in the dump
 *
 *   records, each opening with a type byte
 *     'P' (0x50) a partition; it exists in the dump even with no keys
 *       +0   1     'P'
 *       +1   2     name length n, 1..64
 *       +3   n     name, of [A-Za-z0-9._:@-]
 *     'K' (0x4b) a key
 *       +0   1     'K'
 *       +1   2     partition name length n, 1..64
 *       +3   n     partition name
 *       +3+n 4     key length k, 1..1024
 *       ...  k     key bytes
 *       ...  4     value length v, 0..1048576
 *       ...  v     value bytes
 *       ...  8     version the key had in the exported store
 *       ...  8     mtime_ns it had
 *     'T' (0x54) a timer (version 2 only)
 *       +0   1     'T'
 *       +1   2     partition name length n, 1..64
 *       +3   n     partition name (a timer's partition need not have keys,
 *                  nor a 'P' record)
 *       +3+n 4     timer key length k, 1..512
 *       ...  k     timer key bytes
 *       ...  4     payload length p, 0..65536
 *       ...  p     payload bytes
 *       ...  8     due_ms: wall clock, ms since the epoch, 0..253402300799999
 *       ...  1     state: 1 pending, 2 dead-lettered (a claimed timer is
 *                  written as pending: claims are not durable)
 *       ...  4     deliveries: claims of it so far, in the exported store
 *
 *   trailer, 17 bytes
 *     +0   1     'E' (0x45)
 *     +1   8     record count: the 'P', 'K' and 'T' records before it
 *     +9   8     XXH3-64 (seed 0) of every byte of the file before this field
 *
 * A dump is valid if and only if its magic and version match, its flags have
 * no unknown bit, every record is well formed within the limits above (a
 * version 1 dump has no 'T' record), the trailer's count and checksum match,
 * and the file ends right after the trailer.  Export writes each partition's
 * 'P' record before its keys, and every 'T' record after the last key;
 * import takes records in any order, and a later record of the same key or
 * timer wins.  Versions, mtimes and delivery counts are carried for the
 * record: an import writes each key anew, so in the target store it has
 * version 1 (or its old version + 1) and the import's time.  Timers are
 * written as they were (keel_txn_timer_restore): pending or dead-lettered,
 * with their delivery counts.
 *
 * One snapshot.  Export opens an iterator on every partition and lists the
 * timers (keel_timers, which copies them out under the timer partition's
 * lock) between two reads of the store's count of visible commits.  A commit
 * holds its partition locks until it is visible, so when the count did not
 * move, the iterators and the timer list all show the same commits: a
 * step's state change and the ack or set of its timer are both in the dump
 * or both out of it.
 */
#define DUMP_MAGIC "KEELDUMP"
#define DUMP_MAGIC_BYTES 8u
#define DUMP_VERSION 2u               /* written */
#define DUMP_VERSION_MIN 1u           /* oldest read */
#define DUMP_VERSION_TIMERS 2u        /* first with 'T' records */
#define DUMP_HDR_BYTES 32u
#define DUMP_TRAILER_BYTES 17u
#define DUMP_FLAG_CONSISTENT 1u
#define DUMP_FLAGS_KNOWN DUMP_FLAG_CONSISTENT
enum { DUMP_REC_PART = 'P', DUMP_REC_KEY = 'K', DUMP_REC_TIMER = 'T', DUMP_REC_END = 'E' };
enum { DUMP_TIMER_PENDING = 1, DUMP_TIMER_DEAD = 2 };

#define EXPORT_SNAPSHOT_TRIES 20      /* attempts at one snapshot of every partition */
#define IMPORT_BATCH_KEYS 1000u       /* keys per import transaction */
#define IMPORT_BATCH_BYTES_MAX (4u << 20) /* key + value bytes per import transaction */
#define IMPORT_OP_OVERHEAD 64u        /* record bytes per op besides key and value (generous) */
#define IMPORT_TIMER_OVERHEAD (NAME_BYTES + 16u) /* and per timer: its row's key holds the
						 * partition name, its value a header */
#define IMPORT_PROGRESS_RECORDS 100000u /* a progress line per this many, size unknown */
#define IMPORT_PROGRESS_BYTES_MIN (1u << 20) /* smaller files: no progress by tenths */
#define DUMP_IO_BUFFER_BYTES (1u << 20)
#define NAME_BYTES (KEEL_PARTITION_NAME_MAX + 1)

_Static_assert(KEEL_PARTITION_NAME_MAX <= UINT16_MAX, "a name length fits its 2 bytes");
_Static_assert(KEEL_VALUE_MAX <= UINT32_MAX, "a value length fits its 4 bytes");
_Static_assert(sizeof(DUMP_MAGIC) - 1 == DUMP_MAGIC_BYTES, "magic length");
_Static_assert(KEEL_TIMER_KEY_MAX <= KEEL_KEY_MAX, "a timer key fits the reader's key buffer");
_Static_assert(KEEL_TIMER_PAYLOAD_MAX <= KEEL_VALUE_MAX, "a payload fits the reader's value buffer");

static void le_put(uint8_t *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = n; i-- > 0;)
		v = v << 8 | p[i];
	return v;
}

static int part_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > KEEL_PARTITION_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._:@-", s[i]))
			return 0;
	return 1;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- a set of partition names, in insertion order, with a hash index ---- */
enum { NAME_ANNOUNCED = 1, NAME_HAS_KEYS = 2 };

struct name_set {
	char (*names)[NAME_BYTES];
	uint8_t *flags;
	uint32_t n, cap;
	uint32_t *slots;              /* 1 + index into names; 0 = empty */
	uint32_t nslots;              /* a power of two, over twice n */
};

static void ns_free(struct name_set *ns)
{
	free(ns->names);
	free(ns->flags);
	free(ns->slots);
	memset(ns, 0, sizeof(*ns));
}

static uint32_t ns_slot(const struct name_set *ns, const char *name)
{
	uint32_t mask = ns->nslots - 1, i = (uint32_t)XXH3_64bits(name, strlen(name)) & mask;

	/* Bounded: the table is never more than half full. */
	for (uint32_t probes = 0; probes < ns->nslots; probes++, i = (i + 1) & mask)
		if (!ns->slots[i] || strcmp(ns->names[ns->slots[i] - 1], name) == 0)
			return i;
	abort();   /* unreachable while nslots > 2n */
}

/* Index of name, or -1. */
static long ns_find(const struct name_set *ns, const char *name)
{
	if (!ns->nslots)
		return -1;
	uint32_t s = ns->slots[ns_slot(ns, name)];

	return s ? (long)s - 1 : -1;
}

/* Add name (a valid partition name) if missing; its index in *idx. */
static int ns_add(struct name_set *ns, const char *name, uint32_t *idx)
{
	long at = ns_find(ns, name);

	if (at >= 0) {
		*idx = (uint32_t)at;
		return 0;
	}
	if (ns->n == ns->cap) {
		uint32_t cap = ns->cap ? ns->cap * 2 : 64;
		void *names = realloc(ns->names, (size_t)cap * NAME_BYTES);

		if (!names)
			return KEEL_E_NOMEM;
		ns->names = names;
		uint8_t *flags = realloc(ns->flags, cap);

		if (!flags)
			return KEEL_E_NOMEM;
		ns->flags = flags;
		ns->cap = cap;
	}
	if ((uint64_t)(ns->n + 1) * 2 >= ns->nslots) {
		uint32_t nslots = ns->nslots ? ns->nslots * 2 : 128;
		uint32_t *slots = calloc(nslots, sizeof(*slots));

		if (!slots)
			return KEEL_E_NOMEM;
		free(ns->slots);
		ns->slots = slots;
		ns->nslots = nslots;
		for (uint32_t i = 0; i < ns->n; i++)
			ns->slots[ns_slot(ns, ns->names[i])] = i + 1;
	}
	snprintf(ns->names[ns->n], NAME_BYTES, "%s", name);
	ns->flags[ns->n] = 0;
	ns->slots[ns_slot(ns, name)] = ns->n + 1;
	*idx = ns->n++;
	return 0;
}

/* ---- export ---- */

struct dump_writer {
	FILE *f;
	XXH3_state_t *xs;
	uint64_t bytes;
	uint64_t records;
	int err;                      /* errno of the first failed write */
};

/* Write and hash; the first failure is kept in w->err and checked at the end. */
static void dw_write(struct dump_writer *w, const void *p, size_t n)
{
	if (n == 0)
		return;
	XXH3_64bits_update(w->xs, p, n);
	w->bytes += n;
	if (!w->err && fwrite(p, 1, n, w->f) != n)
		w->err = errno ? errno : EIO;
}

static void dw_uint(struct dump_writer *w, uint64_t v, unsigned n)
{
	uint8_t b[8];

	le_put(b, v, n);
	dw_write(w, b, n);
}

static void dw_type_and_name(struct dump_writer *w, int type, const char *name)
{
	uint8_t t = (uint8_t)type;
	size_t n = strlen(name);

	dw_write(w, &t, 1);
	dw_uint(w, n, 2);
	dw_write(w, name, n);
}

static int collect_part_cb(void *ctx, const char *name, uint64_t keys)
{
	uint32_t idx;

	return ns_add(ctx, name, &idx) < 0 ? KEEL_E_NOMEM : 0;
}

static void close_iters(keel_iter_t **its, uint32_t n)
{
	for (uint32_t i = 0; its && i < n; i++)
		keel_iter_close(its[i]);
	free(its);
}

/*
 * The timers of a dump, encoded as 'T' records while keel_timers lists them
 * (its pointers are valid only during the callback).  `only` (NULL: every
 * partition) and `also` name the partitions to keep.
 */
struct timer_recs {
	uint8_t *p;
	size_t n, cap;
	uint64_t count;               /* records in p */
	uint64_t dead;                /* of which dead-lettered */
	uint64_t claimed;             /* of which claimed, written as pending */
	const struct name_set *only, *also;
	int bad;                      /* a timer outside a dump's limits */
};

static void tr_reset(struct timer_recs *tr)
{
	tr->n = 0;
	tr->count = tr->dead = tr->claimed = 0;
	tr->bad = 0;
}

static void tr_uint(struct timer_recs *tr, uint64_t v, unsigned n)
{
	assert(n <= 8 && tr->cap - tr->n >= n);   /* export_timer_cb made room */
	assert(n == 8 || v >> (8 * n) == 0);       /* the field holds the value */
	le_put(tr->p + tr->n, v, n);
	tr->n += n;
}

static void tr_bytes(struct timer_recs *tr, const void *p, size_t n)
{
	assert(tr->cap - tr->n >= n);
	if (n)
		memcpy(tr->p + tr->n, p, n);
	tr->n += n;
}

static int export_timer_cb(void *ctx, const keel_timer_info_t *t)
{
	struct timer_recs *tr = ctx;
	size_t plen = strlen(t->part);
	size_t need = 1 + 2 + plen + 4 + t->klen + 4 + t->plen + 8 + 1 + 4;

	if (tr->only && ns_find(tr->only, t->part) < 0 && ns_find(tr->also, t->part) < 0)
		return 0;
	/* What the library hands out is within its own limits; a dump must be. */
	if (plen == 0 || plen > KEEL_PARTITION_NAME_MAX || t->klen == 0 ||
	    t->klen > KEEL_TIMER_KEY_MAX || t->plen > KEEL_TIMER_PAYLOAD_MAX ||
	    t->due_ms > KEEL_TIMER_DUE_MAX) {
		tr->bad = 1;
		return KEEL_E_CORRUPT;
	}
	size_t start __attribute__((unused)) = tr->n;   /* for the assert below */

	if (tr->cap - tr->n < need) {
		size_t cap = tr->cap ? tr->cap : 1u << 16;

		while (cap - tr->n < need)
			cap *= 2;
		uint8_t *p = realloc(tr->p, cap);

		if (!p)
			return KEEL_E_NOMEM;
		tr->p = p;
		tr->cap = cap;
	}
	tr_uint(tr, DUMP_REC_TIMER, 1);
	tr_uint(tr, plen, 2);
	tr_bytes(tr, t->part, plen);
	tr_uint(tr, t->klen, 4);
	tr_bytes(tr, t->key, t->klen);
	tr_uint(tr, t->plen, 4);
	tr_bytes(tr, t->payload, t->plen);
	tr_uint(tr, t->due_ms, 8);
	tr_uint(tr, t->state == KEEL_TIMER_DEAD ? DUMP_TIMER_DEAD : DUMP_TIMER_PENDING, 1);
	tr_uint(tr, t->deliveries, 4);
	assert(tr->n == start + need);
	tr->count++;
	tr->dead += t->state == KEEL_TIMER_DEAD;
	tr->claimed += t->state == KEEL_TIMER_CLAIMED;
	return 0;
}

/* List the timers into tr (reset first). */
static int export_timers(struct cli *c, struct timer_recs *tr)
{
	int rc;

	tr_reset(tr);
	rc = keel_timers(c->h, NULL, KEEL_TIMER_ALL, export_timer_cb, tr);
	if (rc == KEEL_E_NOMEM)
		return local_error(c, rc, "out of memory listing the timers of %s (%" PRIu64
				   " so far)", store_arg(c), tr->count);
	if (tr->bad)
		return store_error(c, rc, "list the timers of %s: timer %" PRIu64 " is outside "
				   "the limits of a dump (run 'keel verify')", store_arg(c),
				   tr->count + 1);
	if (rc < 0)
		return store_error(c, rc, "list the timers of %s", store_arg(c));
	return 0;
}

/* Callback of the look-up of a named partition: does it have a timer? */
static int has_timer_cb(void *ctx, const keel_timer_info_t *t)
{
	*(int *)ctx = 1;
	return 1;
}

/*
 * Open an iterator on every partition of `names` (all of the store's when
 * `all`) and list the timers into `tr`, at one snapshot.  Each iterator
 * pins its own snapshot when it is opened, and keel_timers reads the timers
 * as they are when it takes their lock; none of them differ if no commit
 * became visible from before the first to after the last, which the store's
 * count of visible commits tells (keel_inspect_header: visible_seq).  The
 * timers need that argument too: a commit keeps its locks until it is
 * visible, so under the timer lock only visible commits can be seen.  A
 * store that keeps committing through EXPORT_SNAPSHOT_TRIES attempts gets
 * per-partition snapshots and a timer list of its own (*consistent = 0).
 * *lsn: every commit up to it is visible to the iterators.
 */
static int export_snapshot(struct cli *c, struct name_set *names, int all, struct timer_recs *tr,
			   keel_iter_t ***out, int *consistent, uint64_t *lsn)
{
	keel_inspect_header_t before, after;
	int rc;

	for (int attempt = 1;; attempt++) {
		keel_iter_t **its;

		if ((rc = keel_inspect_header(c->h, &before)) < 0)
			return store_error(c, rc, "read the header of %s", store_arg(c));
		if (all) {
			names->n = 0;
			if (names->slots)
				memset(names->slots, 0, names->nslots * sizeof(*names->slots));
			rc = keel_partitions(c->h, collect_part_cb, names);
			if (rc == KEEL_E_NOMEM)
				return local_error(c, rc, "out of memory listing partitions");
			if (rc < 0)
				return store_error(c, rc, "list partitions of %s", store_arg(c));
		}
		its = calloc(names->n ? names->n : 1, sizeof(*its));
		if (!its)
			return local_error(c, KEEL_E_NOMEM, "out of memory for %" PRIu32
					   " iterators", names->n);
		for (uint32_t i = 0; i < names->n; i++) {
			rc = keel_iter_open(c->h, names->names[i], NULL, 0, &its[i]);
			if (rc < 0) {
				store_error(c, rc, "iterate partition '%s' of %s", names->names[i],
					    store_arg(c));
				close_iters(its, i);
				return rc;
			}
		}
		if ((rc = export_timers(c, tr)) < 0) {
			close_iters(its, names->n);
			return rc;
		}
		if ((rc = keel_inspect_header(c->h, &after)) < 0) {
			close_iters(its, names->n);
			return store_error(c, rc, "read the header of %s", store_arg(c));
		}
		if (before.visible_seq == after.visible_seq || attempt == EXPORT_SNAPSHOT_TRIES) {
			*consistent = before.visible_seq == after.visible_seq;
			*lsn = after.applied_lsn;
			*out = its;
			return 0;
		}
		close_iters(its, names->n);
	}
}

/*
 * Where the dump goes: standard output, or FILE.  A regular FILE is written
 * as FILE.tmp-PID, synced and renamed once complete, so a failed export
 * never leaves a file that looks whole; anything else (a FIFO, /dev/null) is
 * written in place.  *tmp is set when there is a temporary file.
 */
static int export_open(struct cli *c, FILE **f, char *tmp, size_t cap)
{
	struct stat st;
	int fd;

	tmp[0] = 0;
	if (!c->output) {
		*f = stdout;
		return 0;
	}
	if (stat(c->output, &st) == 0 && !S_ISREG(st.st_mode)) {
		*f = fopen(c->output, "wb");
		if (!*f)
			return local_error(c, KEEL_E_IO, "cannot open %s: %s", c->output,
					   strerror(errno));
		return 0;
	}
	if ((size_t)snprintf(tmp, cap, "%s.tmp-%ld", c->output, (long)getpid()) >= cap) {
		tmp[0] = 0;
		return usage_error(c, "-o: the path is too long");
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || !(*f = fdopen(fd, "wb"))) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		tmp[0] = 0;
		return local_error(c, KEEL_E_IO, "cannot create %s: %s", c->output,
				   strerror(err));
	}
	return 0;
}

/* Flush, sync and rename the output; 0 or a local error. */
static int export_finish(struct cli *c, FILE *f, const char *tmp)
{
	if (fflush(f) != 0 || ferror(f))
		return local_error(c, KEEL_E_IO, "writing %s: %s",
				   c->output ? c->output : "standard output", strerror(errno));
	if (f == stdout)
		return 0;
	if (tmp[0] && fsync(fileno(f)) != 0)
		return local_error(c, KEEL_E_IO, "syncing %s: %s", c->output, strerror(errno));
	if (fclose(f) != 0)
		return local_error(c, KEEL_E_IO, "closing %s: %s", c->output, strerror(errno));
	if (tmp[0] && rename(tmp, c->output) != 0)
		return local_error(c, KEEL_E_IO, "renaming %s to %s: %s", tmp, c->output,
				   strerror(errno));
	return 0;
}

static void export_summary(struct cli *c, const struct dump_writer *w, uint32_t parts,
			   uint64_t keys, const struct timer_recs *tr, uint64_t lsn, int consistent,
			   uint64_t sum)
{
	const char *to = c->output ? c->output : "standard output";

	if (c->json) {
		json_object *root = json_root(c);
		char hex[17];

		if (!root)
			return;
		snprintf(hex, sizeof(hex), "%016" PRIx64, sum);
		json_object_object_add(root, "output", json_object_new_string(to));
		json_object_object_add(root, "partitions", json_object_new_uint64(parts));
		json_object_object_add(root, "keys", json_object_new_uint64(keys));
		json_object_object_add(root, "timers", json_object_new_uint64(tr->count));
		json_object_object_add(root, "timers_dead", json_object_new_uint64(tr->dead));
		json_object_object_add(root, "timers_claimed", json_object_new_uint64(tr->claimed));
		json_object_object_add(root, "format", json_object_new_uint64(DUMP_VERSION));
		json_object_object_add(root, "records", json_object_new_uint64(w->records));
		json_object_object_add(root, "bytes", json_object_new_uint64(w->bytes));
		json_object_object_add(root, "lsn", json_object_new_uint64(lsn));
		json_object_object_add(root, "consistent", json_object_new_boolean(consistent));
		json_object_object_add(root, "checksum", json_object_new_string(hex));
		json_print(root);
		json_object_put(root);
		return;
	}
	if (c->quiet)
		return;
	fprintf(stderr, "keel export: %" PRIu32 " partition%s, %" PRIu64 " key%s, %" PRIu64
		" timer%s", parts, parts == 1 ? "" : "s", keys, keys == 1 ? "" : "s", tr->count,
		tr->count == 1 ? "" : "s");
	if (tr->dead || tr->claimed)
		fprintf(stderr, " (%" PRIu64 " dead-lettered, %" PRIu64 " claimed, written as "
			"pending)", tr->dead, tr->claimed);
	fprintf(stderr, ", %" PRIu64 " bytes to %s (every commit up to LSN %" PRIu64 ")\n",
		w->bytes, to, lsn);
}

/* export STORE [PARTITION...] [-o FILE] */
static int cmd_export(struct cli *c)
{
	struct name_set names = { 0 }, tonly = { 0 };   /* named: with keys; with timers only */
	struct timer_recs tr = { 0 };
	struct dump_writer w = { 0 };
	keel_iter_t **its = NULL;
	char tmp[4200] = "";
	uint8_t hdr[DUMP_HDR_BYTES], sumb[8];
	uint64_t lsn = 0, keys = 0, sum;
	uint32_t nits = 0, idx;
	int consistent = 0, rc;

	if (!c->output && isatty(STDOUT_FILENO))
		return usage_error(c, "standard output is a terminal: give -o FILE or "
				   "redirect it");
	if (c->json && !c->output)
		return usage_error(c, "--json needs -o FILE (standard output carries the "
				   "dump)");
	for (int i = 1; i < c->nargs; i++) {
		const char *part = c->args[i];
		int found = 0, timers = 0;

		if (ns_find(&names, part) >= 0 || ns_find(&tonly, part) >= 0) {
			rc = usage_error(c, "partition '%s' is named twice", part);
			goto out;
		}
		if ((rc = keel_exists(c->h, part, &found)) < 0) {
			store_error(c, rc, "look up partition '%s' of %s", part, store_arg(c));
			goto out;
		}
		/* A partition that has only timers has no table to iterate. */
		if (!found && (rc = keel_timers(c->h, part, KEEL_TIMER_ALL, has_timer_cb,
						&timers)) < 0) {
			store_error(c, rc, "look up the timers of partition '%s' of %s", part,
				    store_arg(c));
			goto out;
		}
		if (!found && !timers) {
			rc = not_found(c, "partition '%s' not found in %s (it has no keys and no "
				       "timers); nothing exported", part, store_arg(c));
			goto out;
		}
		if (ns_add(found ? &names : &tonly, part, &idx) < 0) {
			rc = local_error(c, KEEL_E_NOMEM, "out of memory");
			goto out;
		}
	}
	tr.only = c->nargs == 1 ? NULL : &names;
	tr.also = &tonly;
	rc = export_snapshot(c, &names, c->nargs == 1, &tr, &its, &consistent, &lsn);
	if (rc < 0)
		goto out;
	nits = names.n;
	if (!consistent)
		fprintf(stderr, "keel export: %s kept committing through %d attempts at one "
			"snapshot; each partition is exported from its own snapshot, and the "
			"timers from theirs\n", store_arg(c), EXPORT_SNAPSHOT_TRIES);
	if ((rc = export_open(c, &w.f, tmp, sizeof(tmp))) < 0)
		goto out;
	setvbuf(w.f, NULL, _IOFBF, DUMP_IO_BUFFER_BYTES);
	if (!(w.xs = XXH3_createState()) || XXH3_64bits_reset(w.xs) != XXH_OK) {
		rc = local_error(c, KEEL_E_NOMEM, "out of memory for the checksum");
		goto out;
	}
	memcpy(hdr, DUMP_MAGIC, DUMP_MAGIC_BYTES);
	le_put(hdr + 8, DUMP_VERSION, 4);
	le_put(hdr + 12, consistent ? DUMP_FLAG_CONSISTENT : 0, 4);
	le_put(hdr + 16, wall_ns(), 8);
	le_put(hdr + 24, lsn, 8);
	dw_write(&w, hdr, sizeof(hdr));
	for (uint32_t i = 0; i < names.n && !w.err; i++) {
		const char *part = names.names[i];

		dw_type_and_name(&w, DUMP_REC_PART, part);
		w.records++;
		for (;;) {
			const void *k, *v;
			size_t klen, vlen;
			keel_meta_t meta;

			rc = keel_iter_next(its[i], &k, &klen, &v, &vlen, &meta);
			if (rc == 0)
				break;
			if (rc < 0) {
				store_error(c, rc, "iterate partition '%s' of %s (after %" PRIu64
					    " keys); nothing exported", part, store_arg(c), keys);
				goto out;
			}
			dw_type_and_name(&w, DUMP_REC_KEY, part);
			dw_uint(&w, klen, 4);
			dw_write(&w, k, klen);
			dw_uint(&w, vlen, 4);
			dw_write(&w, v, vlen);
			dw_uint(&w, meta.version, 8);
			dw_uint(&w, meta.mtime_ns, 8);
			w.records++;
			keys++;
			if (w.err)
				break;
		}
		/* The pin stays while any iterator is open; closing one early
		 * lets nothing go that a later partition still needs. */
		keel_iter_close(its[i]);
		its[i] = NULL;
	}
	/* The timers, listed at the snapshot, after every key. */
	dw_write(&w, tr.p, tr.n);
	w.records += tr.count;
	{
		uint8_t t = DUMP_REC_END;

		dw_write(&w, &t, 1);
		dw_uint(&w, w.records, 8);
	}
	sum = XXH3_64bits_digest(w.xs);
	le_put(sumb, sum, 8);
	if (!w.err && fwrite(sumb, 1, sizeof(sumb), w.f) != sizeof(sumb))
		w.err = errno ? errno : EIO;
	w.bytes += sizeof(sumb);
	close_iters(its, nits);
	its = NULL;
	if (w.err) {
		rc = local_error(c, KEEL_E_IO, "writing %s: %s",
				 c->output ? c->output : "standard output", strerror(w.err));
		goto out;
	}
	rc = export_finish(c, w.f, tmp);
	w.f = NULL;
	if (rc < 0)
		goto out;
	tmp[0] = 0;
	export_summary(c, &w, names.n, keys, &tr, lsn, consistent, sum);
	rc = 0;
out:
	close_iters(its, nits);
	free(tr.p);
	ns_free(&tonly);
	if (w.f && w.f != stdout)
		fclose(w.f);
	if (tmp[0])
		unlink(tmp);
	if (w.xs)
		XXH3_freeState(w.xs);
	ns_free(&names);
	return rc;
}

/* ---- import ---- */

struct dump_reader {
	struct cli *c;
	FILE *f;
	const char *name;             /* the input, for messages */
	XXH3_state_t *xs;
	uint64_t off;                 /* bytes consumed */
	uint64_t records;             /* records read */
	uint64_t keys;                /* of which keys */
	uint64_t timers;              /* of which timers */
	uint64_t timers_dead;         /* of those, dead-lettered */
	uint64_t timers_delivered;    /* of those, with a delivery count */
	uint64_t bytes;               /* key and value bytes read */
	/* the header */
	uint32_t format;              /* DUMP_VERSION_MIN..DUMP_VERSION */
	uint32_t flags;
	uint64_t created_ns, lsn;
	/* the record just read (a timer's key and payload in key and val) */
	int type;
	uint64_t rec_off;             /* its first byte */
	char part[NAME_BYTES];
	uint8_t key[KEEL_KEY_MAX];
	uint32_t klen, vlen;
	uint8_t *val;                 /* KEEL_VALUE_MAX bytes */
	uint64_t version, mtime_ns;   /* 'K' */
	uint64_t due_ms;              /* 'T' */
	uint32_t tstate, deliveries;  /* 'T': DUMP_TIMER_*, claims so far */
};

/* A damaged or foreign input: where, what; the caller says what became of it. */
static int dump_error(struct dump_reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int dump_error(struct dump_reader *r, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "keel %s: %s: ", cmd_name(r->c), r->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (byte offset %" PRIu64 ", after %" PRIu64 " record%s)\n", r->off,
		r->records, r->records == 1 ? "" : "s");
	return KEEL_E_CORRUPT;
}

/* Read exactly n bytes, hashed unless !hash.  `what` names them if the input ends. */
static int dr_read(struct dump_reader *r, void *buf, size_t n, int hash, const char *what)
{
	size_t got = n ? fread(buf, 1, n, r->f) : 0;

	if (got != n) {
		if (ferror(r->f))
			return local_error(r->c, KEEL_E_IO, "reading %s: %s", r->name,
					   strerror(errno));
		r->off += got;
		return dump_error(r, "the input ends inside %s: it is truncated", what);
	}
	if (hash)
		XXH3_64bits_update(r->xs, buf, n);
	r->off += n;
	return 0;
}

static int dr_uint(struct dump_reader *r, uint64_t *v, unsigned n, const char *what)
{
	uint8_t b[8];
	int rc = dr_read(r, b, n, 1, what);

	if (rc == 0)
		*v = le_get(b, n);
	return rc;
}

/* Start (or restart, after a rewind) reading: check the header. */
static int dr_begin(struct dump_reader *r)
{
	uint8_t h[DUMP_HDR_BYTES];
	uint32_t version;
	size_t got;

	r->off = r->records = r->keys = r->bytes = 0;
	r->timers = r->timers_dead = r->timers_delivered = 0;
	if (XXH3_64bits_reset(r->xs) != XXH_OK)
		return local_error(r->c, KEEL_E_NOMEM, "checksum state");
	got = fread(h, 1, sizeof(h), r->f);
	if (ferror(r->f))
		return local_error(r->c, KEEL_E_IO, "reading %s: %s", r->name, strerror(errno));
	if (got < DUMP_MAGIC_BYTES || memcmp(h, DUMP_MAGIC, DUMP_MAGIC_BYTES) != 0) {
		char found[3 * DUMP_MAGIC_BYTES + 1] = "";

		for (size_t i = 0; i < got && i < DUMP_MAGIC_BYTES; i++)
			snprintf(found + strlen(found), sizeof(found) - strlen(found),
				 i ? " %02x" : "%02x", h[i]);
		if (got == 0)
			return dump_error(r, "not a keel dump: the input is empty");
		return dump_error(r, "not a keel dump: the magic is not \"%s\" (found %s)",
				  DUMP_MAGIC, found);
	}
	r->off = got;
	if (got < sizeof(h))
		return dump_error(r, "the input ends inside the %u-byte header: it is truncated",
				  DUMP_HDR_BYTES);
	XXH3_64bits_update(r->xs, h, sizeof(h));
	version = (uint32_t)le_get(h + 8, 4);
	if (version < DUMP_VERSION_MIN || version > DUMP_VERSION)
		return dump_error(r, "dump format version %" PRIu32 "; this keel reads versions "
				  "%u to %u", version, DUMP_VERSION_MIN, DUMP_VERSION);
	r->format = version;
	r->flags = (uint32_t)le_get(h + 12, 4);
	if (r->flags & ~(uint32_t)DUMP_FLAGS_KNOWN)
		return dump_error(r, "unknown header flags %#" PRIx32 " (this keel knows %#x)",
				  r->flags, DUMP_FLAGS_KNOWN);
	r->created_ns = le_get(h + 16, 8);
	r->lsn = le_get(h + 24, 8);
	return 0;
}

static int dr_name(struct dump_reader *r, const char *what)
{
	uint64_t n = 0;
	int rc = dr_uint(r, &n, 2, what);

	if (rc < 0)
		return rc;
	if (n == 0 || n > KEEL_PARTITION_NAME_MAX)
		return dump_error(r, "%s of %" PRIu64 " bytes (expected 1 to %u)", what, n,
				  KEEL_PARTITION_NAME_MAX);
	if ((rc = dr_read(r, r->part, n, 1, what)) < 0)
		return rc;
	r->part[n] = 0;
	if (!part_name_ok(r->part, n))
		return dump_error(r, "%s is not a partition name (1 to %u bytes of "
				  "[A-Za-z0-9._:@-])", what, KEEL_PARTITION_NAME_MAX);
	return 0;
}

/* The trailer: count and checksum, then the end of the input. */
static int dr_trailer(struct dump_reader *r)
{
	uint64_t count = 0, want, got;
	uint8_t b[8];
	int rc;

	if ((rc = dr_uint(r, &count, 8, "the trailer")) < 0)
		return rc;
	want = XXH3_64bits_digest(r->xs);
	if ((rc = dr_read(r, b, 8, 0, "the trailer's checksum")) < 0)
		return rc;
	got = le_get(b, 8);
	if (got != want)
		return dump_error(r, "checksum mismatch: the trailer says %016" PRIx64 ", the "
				  "data gives %016" PRIx64 ": the input is damaged", got, want);
	if (count != r->records)
		return dump_error(r, "the trailer counts %" PRIu64 " records, the input holds %"
				  PRIu64, count, r->records);
	if (fgetc(r->f) != EOF)
		return dump_error(r, "data after the trailer");
	if (ferror(r->f))
		return local_error(r->c, KEEL_E_IO, "reading %s: %s", r->name, strerror(errno));
	return 0;
}

/*
 * The body of a 'T' record, after its type byte.  A field out of range is
 * reported at the field's first byte, and the message names the record's.
 */
static int dr_timer(struct dump_reader *r)
{
	uint64_t n = 0, at;
	int rc;

	if (r->format < DUMP_VERSION_TIMERS) {
		r->off = r->rec_off;
		return dump_error(r, "a timer record in a version %" PRIu32 " dump (timer "
				  "records came with version %u)", r->format, DUMP_VERSION_TIMERS);
	}
	if ((rc = dr_name(r, "a timer record's partition name")) < 0)
		return rc;
	at = r->off;
	if ((rc = dr_uint(r, &n, 4, "a timer record")) < 0)
		return rc;
	if (n == 0 || n > KEEL_TIMER_KEY_MAX) {
		r->off = at;
		return dump_error(r, "the timer record at byte %" PRIu64 " has a key of %" PRIu64
				  " bytes (timer keys are 1 to %u bytes)", r->rec_off, n,
				  KEEL_TIMER_KEY_MAX);
	}
	r->klen = (uint32_t)n;
	if ((rc = dr_read(r, r->key, r->klen, 1, "a timer key")) < 0)
		return rc;
	at = r->off;
	if ((rc = dr_uint(r, &n, 4, "a timer record")) < 0)
		return rc;
	if (n > KEEL_TIMER_PAYLOAD_MAX) {
		r->off = at;
		return dump_error(r, "the timer record at byte %" PRIu64 " has a payload of %"
				  PRIu64 " bytes (the limit is %u)", r->rec_off, n,
				  KEEL_TIMER_PAYLOAD_MAX);
	}
	r->vlen = (uint32_t)n;
	if ((rc = dr_read(r, r->val, r->vlen, 1, "a timer payload")) < 0)
		return rc;
	at = r->off;
	if ((rc = dr_uint(r, &r->due_ms, 8, "a timer record")) < 0)
		return rc;
	if (r->due_ms > KEEL_TIMER_DUE_MAX) {
		r->off = at;
		return dump_error(r, "the timer record at byte %" PRIu64 " is due at %" PRIu64
				  " ms, past the last due time a timer can have (%llu, "
				  "9999-12-31T23:59:59.999Z)", r->rec_off, r->due_ms,
				  (unsigned long long)KEEL_TIMER_DUE_MAX);
	}
	at = r->off;
	if ((rc = dr_uint(r, &n, 1, "a timer record")) < 0)
		return rc;
	if (n != DUMP_TIMER_PENDING && n != DUMP_TIMER_DEAD) {
		r->off = at;
		return dump_error(r, "the timer record at byte %" PRIu64 " has state %" PRIu64
				  " (expected %d, pending, or %d, dead-lettered)", r->rec_off, n,
				  DUMP_TIMER_PENDING, DUMP_TIMER_DEAD);
	}
	r->tstate = (uint32_t)n;
	if ((rc = dr_uint(r, &n, 4, "a timer record")) < 0)
		return rc;
	r->deliveries = (uint32_t)n;
	r->timers++;
	r->timers_dead += r->tstate == DUMP_TIMER_DEAD;
	r->timers_delivered += r->deliveries != 0;
	r->bytes += r->klen + r->vlen;
	return 0;
}

/* The next record: 1 (r->type and its fields set), 0 at a valid end, or < 0. */
static int dr_next(struct dump_reader *r)
{
	uint64_t n = 0;
	uint8_t t;
	int rc;

	if (fread(&t, 1, 1, r->f) != 1) {
		if (ferror(r->f))
			return local_error(r->c, KEEL_E_IO, "reading %s: %s", r->name,
					   strerror(errno));
		return dump_error(r, "the input ends without a trailer: it is truncated");
	}
	XXH3_64bits_update(r->xs, &t, 1);
	r->rec_off = r->off++;
	r->type = t;
	switch (t) {
	case DUMP_REC_END:
		return dr_trailer(r);
	case DUMP_REC_TIMER:
		if ((rc = dr_timer(r)) < 0)
			return rc;
		break;
	case DUMP_REC_PART:
		if ((rc = dr_name(r, "a partition record's name")) < 0)
			return rc;
		break;
	case DUMP_REC_KEY:
		if ((rc = dr_name(r, "a key record's partition name")) < 0 ||
		    (rc = dr_uint(r, &n, 4, "a key record")) < 0)
			return rc;
		if (n == 0 || n > KEEL_KEY_MAX)
			return dump_error(r, "a key of %" PRIu64 " bytes (keys are 1 to %u bytes)",
					  n, KEEL_KEY_MAX);
		r->klen = (uint32_t)n;
		if ((rc = dr_read(r, r->key, r->klen, 1, "a key")) < 0 ||
		    (rc = dr_uint(r, &n, 4, "a key record")) < 0)
			return rc;
		if (n > KEEL_VALUE_MAX)
			return dump_error(r, "a value of %" PRIu64 " bytes (the limit is %u)", n,
					  KEEL_VALUE_MAX);
		r->vlen = (uint32_t)n;
		if ((rc = dr_read(r, r->val, r->vlen, 1, "a value")) < 0 ||
		    (rc = dr_uint(r, &r->version, 8, "a key record")) < 0 ||
		    (rc = dr_uint(r, &r->mtime_ns, 8, "a key record")) < 0)
			return rc;
		r->keys++;
		r->bytes += r->klen + r->vlen;
		break;
	default:
		r->off--;
		return dump_error(r, "unknown record type 0x%02x", t);
	}
	r->records++;
	return 1;
}

/* Applies key and timer records in batches: one transaction per batch. */
struct importer {
	struct cli *c;
	keel_txn_t *t;
	uint32_t ops;                 /* puts and timer sets in the open batch */
	uint32_t ops_timers;          /* of which timer sets */
	uint64_t bytes;               /* its record bytes, estimated */
	uint64_t budget;              /* record bytes per batch */
	char parts[KEEL_TXN_PARTITIONS_MAX][NAME_BYTES];
	uint32_t nparts;
	uint64_t keys;                /* keys in committed batches */
	uint64_t timers;              /* timers in committed batches */
	uint64_t commits;
};

static int imp_commit(struct importer *im)
{
	int rc;

	if (!im->t)
		return 0;
	rc = keel_txn_commit(im->t, NULL);
	im->t = NULL;
	if (rc < 0)
		return store_error(im->c, rc, "commit a batch of %" PRIu32 " keys and %" PRIu32
				   " timers into %s", im->ops - im->ops_timers, im->ops_timers,
				   store_arg(im->c));
	im->keys += im->ops - im->ops_timers;
	im->timers += im->ops_timers;
	im->commits++;
	im->ops = 0;
	im->ops_timers = 0;
	im->bytes = 0;
	im->nparts = 0;
	return 0;
}

static void imp_abort(struct importer *im)
{
	if (im->t)
		keel_txn_abort(im->t);
	im->t = NULL;
}

/*
 * Make room in the open batch for one more op of `need` record bytes
 * touching partition `part` (NULL: a timer op, which does not count against
 * KEEL_TXN_PARTITIONS_MAX), committing the batch first when it is full, and
 * begin a batch when none is open.
 */
static int imp_room(struct importer *im, const char *part, uint64_t need)
{
	uint32_t p = im->nparts;
	int rc;

	for (uint32_t i = 0; part && i < im->nparts; i++)
		if (strcmp(im->parts[i], part) == 0)
			p = i;
	if (im->t && (im->ops >= IMPORT_BATCH_KEYS || im->bytes + need > im->budget ||
		      (part && p == im->nparts && im->nparts == KEEL_TXN_PARTITIONS_MAX))) {
		if ((rc = imp_commit(im)) < 0)
			return rc;
		p = 0;
	}
	if (!im->t && (rc = keel_txn_begin(im->c->h, KEEL_DURABILITY_DEFAULT, &im->t)) < 0) {
		im->t = NULL;
		return store_error(im->c, rc, "begin a transaction on %s", store_arg(im->c));
	}
	if (part && p == im->nparts)
		snprintf(im->parts[im->nparts++], NAME_BYTES, "%s", part);
	im->ops++;
	im->bytes += need;
	return 0;
}

static int imp_key(struct importer *im, const struct dump_reader *r)
{
	int rc = imp_room(im, r->part, (uint64_t)r->klen + r->vlen + IMPORT_OP_OVERHEAD);

	if (rc < 0)
		return rc;
	rc = keel_txn_put(im->t, r->part, r->key, r->klen, r->val, r->vlen);
	if (rc < 0)
		return store_error(im->c, rc, "put a key of partition '%s' (record %" PRIu64 ")",
				   r->part, r->records);
	return 0;
}

/* A timer is written as it was: pending or dead-lettered, with its delivery count. */
static int imp_timer(struct importer *im, const struct dump_reader *r)
{
	int rc = imp_room(im, NULL, (uint64_t)r->klen + r->vlen + IMPORT_OP_OVERHEAD +
			  IMPORT_TIMER_OVERHEAD);

	if (rc < 0)
		return rc;
	im->ops_timers++;
	rc = keel_txn_timer_restore(im->t, r->part, r->key, r->klen, r->due_ms, r->val, r->vlen,
				    r->tstate == DUMP_TIMER_DEAD ? KEEL_TIMER_DEAD : KEEL_TIMER_PENDING,
				    r->deliveries);
	if (rc < 0)
		return store_error(im->c, rc, "set a timer of partition '%s' (record %" PRIu64 ")",
				   r->part, r->records);
	return 0;
}

/* Partitions announced by 'P' records and still missing are made, empty. */
static int imp_empty_partitions(struct importer *im, const struct name_set *ns, uint64_t *made)
{
	for (uint32_t i = 0; i < ns->n; i++) {
		int found = 0, rc;

		if (!(ns->flags[i] & NAME_ANNOUNCED) || (ns->flags[i] & NAME_HAS_KEYS))
			continue;
		if ((rc = keel_exists(im->c->h, ns->names[i], &found)) < 0)
			return store_error(im->c, rc, "look up partition '%s'", ns->names[i]);
		if (found)
			continue;
		/* A clear of a partition nobody has written creates it, empty. */
		if ((rc = keel_txn_begin(im->c->h, KEEL_DURABILITY_DEFAULT, &im->t)) < 0) {
			im->t = NULL;
			return store_error(im->c, rc, "begin a transaction on %s", store_arg(im->c));
		}
		if ((rc = keel_txn_clear(im->t, ns->names[i])) < 0) {
			imp_abort(im);
			return store_error(im->c, rc, "create partition '%s'", ns->names[i]);
		}
		rc = keel_txn_commit(im->t, NULL);
		im->t = NULL;
		if (rc < 0)
			return store_error(im->c, rc, "create partition '%s'", ns->names[i]);
		im->commits++;
		(*made)++;
	}
	return 0;
}

/* Progress on stderr: by tenths of the input when its size is known. */
struct progress {
	uint64_t size;                /* 0: unknown */
	int tenth;                    /* last tenth printed */
};

static void progress_step(const struct cli *c, struct progress *pg, const struct dump_reader *r)
{
	if (c->quiet)
		return;
	if (pg->size) {
		int tenth = (int)(r->off * 10 / pg->size);

		if (tenth > pg->tenth && tenth < 10) {
			pg->tenth = tenth;
			fprintf(stderr, "keel import: %d%% (%" PRIu64 " keys, %" PRIu64 " timers, %"
				PRIu64 " of %" PRIu64 " bytes)\n", tenth * 10, r->keys, r->timers,
				r->off, pg->size);
		}
	} else if (r->records % IMPORT_PROGRESS_RECORDS == 0) {
		fprintf(stderr, "keel import: %" PRIu64 " keys, %" PRIu64 " timers, %" PRIu64
			" bytes so far\n", r->keys, r->timers, r->off);
	}
}

/*
 * The partition of the record just read, in ns: its index in *idx.  Timers
 * have no table (their partition need not exist), so a timer record's is
 * not noted: *idx = UINT32_MAX.
 */
static int note_partition(struct dump_reader *r, struct name_set *ns, uint32_t *idx)
{
	*idx = UINT32_MAX;
	if (r->type == DUMP_REC_TIMER)
		return 0;
	if (ns_find(ns, r->part) < 0 && ns->n >= KEEL_PARTITIONS_MAX)
		return dump_error(r, "more than %u partitions: more than a store holds",
				  KEEL_PARTITIONS_MAX);
	if (ns_add(ns, r->part, idx) < 0)
		return local_error(r->c, KEEL_E_NOMEM, "out of memory");
	return 0;
}

/* Read a whole dump without applying it: the check before an import, and --dry-run. */
static int dump_check(struct dump_reader *r, struct name_set *ns)
{
	uint32_t idx;
	int rc;

	if ((rc = dr_begin(r)) < 0)
		return rc;
	while ((rc = dr_next(r)) == 1)
		if ((rc = note_partition(r, ns, &idx)) < 0)
			return rc;
	return rc;
}

static void import_summary(struct cli *c, const struct dump_reader *r, const struct importer *im,
			   uint32_t parts, uint64_t made, int checked)
{
	if (c->json) {
		json_object *root = c->dry_run ? json_object_new_object() : json_root(c);

		if (!root)
			return;
		json_object_object_add(root, "input", json_object_new_string(r->name));
		if (c->dry_run)
			json_object_object_add(root, "valid", json_object_new_boolean(1));
		json_object_object_add(root, "format", json_object_new_uint64(r->format));
		json_object_object_add(root, "keys", json_object_new_uint64(c->dry_run ? r->keys :
									    im->keys));
		json_object_object_add(root, "partitions", json_object_new_uint64(parts));
		json_object_object_add(root, "timers", json_object_new_uint64(c->dry_run ? r->timers :
									      im->timers));
		json_object_object_add(root, "timers_dead", json_object_new_uint64(r->timers_dead));
		json_object_object_add(root, "timers_with_deliveries",
				       json_object_new_uint64(r->timers_delivered));
		if (!c->dry_run) {
			json_object_object_add(root, "empty_partitions_created",
					       json_object_new_uint64(made));
			json_object_object_add(root, "commits", json_object_new_uint64(im->commits));
			json_object_object_add(root, "checked_before_applying",
					       json_object_new_boolean(checked));
		}
		json_object_object_add(root, "records", json_object_new_uint64(r->records));
		json_object_object_add(root, "bytes", json_object_new_uint64(r->off));
		json_object_object_add(root, "lsn", json_object_new_uint64(r->lsn));
		json_object_object_add(root, "created_ns", json_object_new_uint64(r->created_ns));
		json_object_object_add(root, "consistent",
				       json_object_new_boolean(r->flags & DUMP_FLAG_CONSISTENT));
		json_print(root);
		json_object_put(root);
		return;
	}
	if (c->dry_run) {
		printf("%s: a valid dump: %" PRIu64 " keys in %" PRIu32 " partitions, %" PRIu64
		       " timers (%" PRIu64 " dead-lettered), %" PRIu64 " bytes, format %" PRIu32
		       ", every commit up to LSN %" PRIu64 "%s; nothing imported (--dry-run)\n",
		       r->name, r->keys, parts, r->timers, r->timers_dead, r->off, r->format,
		       r->lsn, (r->flags & DUMP_FLAG_CONSISTENT) ? ", one snapshot" :
		       ", each partition its own snapshot");
		return;
	}
	printf("imported %" PRIu64 " keys into %" PRIu32 " partitions, and %" PRIu64 " timers, "
	       "of %s (%" PRIu64 " commits", im->keys, parts, im->timers, store_arg(c),
	       im->commits);
	if (made)
		printf("; %" PRIu64 " empty partition%s created", made, made == 1 ? "" : "s");
	printf(")\n");
}


/* What an import that failed after its start leaves behind, on stderr. */
static void import_left(const struct importer *im, int checked)
{
	if (im->commits == 0)
		fputs("  Nothing was imported.\n", stderr);
	else
		fprintf(stderr, "  %" PRIu64 " keys and %" PRIu64 " timers in %" PRIu64 " commits "
			"were imported before this%s; the store keeps them, and nothing after "
			"them was applied.\n", im->keys, im->timers, im->commits,
			checked ? "" : " (the input is not a regular file, so it was applied as "
			"it was read)");
}

/* import STORE [-i FILE] [--dry-run] [--quiet] */
static int cmd_import(struct cli *c)
{
	struct dump_reader r = { .c = c, .f = stdin, .name = "standard input" };
	struct importer im = { .c = c };
	struct name_set ns = { 0 };
	struct progress pg = { 0 };
	keel_inspect_header_t ih;
	struct stat st;
	uint64_t made = 0;
	uint32_t idx;
	int rc, checked;

	if (c->input) {
		r.f = fopen(c->input, "rb");
		r.name = c->input;
		if (!r.f)
			return local_error(c, KEEL_E_IO, "cannot open %s: %s", c->input,
					   strerror(errno));
	} else if (isatty(STDIN_FILENO)) {
		return usage_error(c, "standard input is a terminal: give -i FILE or redirect it");
	}
	checked = fstat(fileno(r.f), &st) == 0 && S_ISREG(st.st_mode);
	pg.size = checked ? (uint64_t)st.st_size : 0;
	pg.tenth = pg.size < IMPORT_PROGRESS_BYTES_MIN ? 10 : 0;   /* small: done at once */
	setvbuf(r.f, NULL, _IOFBF, DUMP_IO_BUFFER_BYTES);
	r.val = malloc(KEEL_VALUE_MAX);
	r.xs = XXH3_createState();
	if (!r.val || !r.xs) {
		rc = local_error(c, KEEL_E_NOMEM, "out of memory");
		goto out;
	}
	/* A regular file is checked whole, checksum included, before anything
	 * is applied; a pipe can be read once only, so it is applied as read. */
	if (checked || c->dry_run) {
		rc = dump_check(&r, &ns);
		if (rc < 0) {
			if (!c->dry_run)
				fputs("  Nothing was imported.\n", stderr);
			goto out;
		}
		if (c->dry_run) {
			import_summary(c, &r, &im, ns.n, 0, 1);
			goto out;
		}

		if (fseek(r.f, 0, SEEK_SET) != 0) {
			rc = local_error(c, KEEL_E_IO, "rewinding %s: %s", r.name, strerror(errno));
			goto out;
		}
		ns.n = 0;
		if (ns.slots)
			memset(ns.slots, 0, ns.nslots * sizeof(*ns.slots));
	}
	if ((rc = dr_begin(&r)) < 0) {
		fputs("  Nothing was imported.\n", stderr);
		goto out;
	}
	if ((rc = open_store(c, OPEN_CREATE)) < 0)
		goto out;
	if ((rc = keel_inspect_header(c->h, &ih)) < 0) {
		store_error(c, rc, "read the header of %s", store_arg(c));
		goto out;
	}
	/* A batch's record may take a quarter of the ring: aim at half that. */
	im.budget = ih.ring_bytes / 8 < IMPORT_BATCH_BYTES_MAX ? ih.ring_bytes / 8 :
		    IMPORT_BATCH_BYTES_MAX;
	while ((rc = dr_next(&r)) == 1) {
		if ((rc = note_partition(&r, &ns, &idx)) < 0)
			break;
		if (r.type == DUMP_REC_PART) {
			ns.flags[idx] |= NAME_ANNOUNCED;
		} else if (r.type == DUMP_REC_KEY) {
			ns.flags[idx] |= NAME_HAS_KEYS;
			if ((rc = imp_key(&im, &r)) < 0)
				break;
		} else if ((rc = imp_timer(&im, &r)) < 0) {
			break;
		}
		progress_step(c, &pg, &r);
	}
	/* The last batch is committed only once the whole input has checked out. */
	if (rc == 0 && (rc = imp_commit(&im)) == 0)
		rc = imp_empty_partitions(&im, &ns, &made);
	if (rc < 0) {
		imp_abort(&im);
		import_left(&im, checked);
		goto out;
	}
	import_summary(c, &r, &im, ns.n, made, checked);
out:
	imp_abort(&im);
	if (r.f && r.f != stdin)
		fclose(r.f);
	if (r.xs)
		XXH3_freeState(r.xs);
	free(r.val);
	ns_free(&ns);
	return rc;
}

/* ---- timers ------------------------------------------------------------------------------
 *
 * `keel timer ...` drives the timers section of lib/keel.h from the shell.
 * Every timer command parses and checks all of its arguments (due times,
 * durations, the token, the payload) before it opens the store, so bad input
 * changes nothing, not even by creating the store; it then opens the store
 * itself (its row is OPEN_NONE) in the mode it needs.
 *
 * Times on the command line
 * -------------------------
 * A DUE time is one of
 *   now                     the current wall-clock time
 *   +N<unit>                N from now; unit ms, s, m, h or d (+5s, +250ms)
 *   N                       milliseconds since the epoch (1795341600000)
 *   RFC 3339                2026-11-22T10:00:00Z, with optional fractional
 *                           seconds and a Z or +hh:mm / -hh:mm offset; 't',
 *                           'z' and a space for 'T' are accepted too
 * and must lie within [1970-01-01T00:00:00Z, KEEL_TIMER_DUE_MAX].  Fractions
 * finer than a millisecond round up, so a timer never fires before the time
 * written.  A DURATION (--lease, --timeout) is N<unit> with the same units.
 * A due time or duration that cannot be parsed or is out of range is a usage
 * error (exit 2), like bad hex: the store is not opened.
 *
 * Claims from a short-lived process
 * ---------------------------------
 * A claim belongs to the process that made it, and `keel timer claim` exits
 * at once, so any other process that claims or waits sees a dead holder and
 * may take the timer back straight away.  The token printed by claim is a
 * capability: `ack`, `extend` and `release` rebuild a keel_claim_t from
 * PARTITION, KEY and --token and succeed as long as nobody has taken the
 * timer since.  `claim --ack` claims and acks in one process (a pop: at most
 * once for whoever reads the output).
 */
#define TIMER_LEASE_DEFAULT_MS 30000u     /* --lease when not given */
#define TIMER_STATES_ALL (KEEL_TIMER_PENDING | KEEL_TIMER_CLAIMED | KEEL_TIMER_DEAD)
#define ISO_MS_BYTES 32                   /* "9999-12-31T23:59:59.999Z" and a NUL */

_Static_assert(TIMER_STATES_ALL == KEEL_TIMER_ALL, "--state names every timer state");

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian
 * calendar (negative before it).  The year is shifted to start in March,
 * so the leap day falls at the end of a shifted year. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;                                   /* [0, 399] */
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
	return era * 146097 + doe - 719468;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
	static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* Parse exactly n decimal digits at *s into *v; advance *s. */
static int take_digits(const char **s, unsigned n, unsigned *v)
{
	unsigned x = 0;

	for (unsigned i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		x = x * 10 + (unsigned)((*s)[i] - '0');
	}
	*s += n;
	*v = x;
	return 0;
}

/*
 * RFC 3339 date-time to milliseconds since the epoch (may be negative).
 * On failure *why says what is wrong and -1 is returned.
 */
static int parse_rfc3339(const char *s, int64_t *ms, const char **why)
{
	unsigned year, mon, day, hh, mm, ss, oh = 0, om = 0;
	int64_t frac_ms = 0, t;
	int sign = 0;

	*why = "expected YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm)";
	if (take_digits(&s, 4, &year) || *s++ != '-' || take_digits(&s, 2, &mon) || *s++ != '-' ||
	    take_digits(&s, 2, &day))
		return -1;
	if (*s != 'T' && *s != 't' && *s != ' ')
		return -1;
	s++;
	if (take_digits(&s, 2, &hh) || *s++ != ':' || take_digits(&s, 2, &mm) || *s++ != ':' ||
	    take_digits(&s, 2, &ss))
		return -1;
	if (*s == '.') {
		unsigned ndig = 0;
		int64_t scale = 100;     /* ms per unit of the next digit: 100, 10, 1 */
		int rest = 0;            /* a nonzero digit past the millisecond */

		s++;
		while (*s >= '0' && *s <= '9') {
			if (ndig < 3) {
				frac_ms += (*s - '0') * scale;
				scale /= 10;
			} else if (*s != '0') {
				rest = 1;
			}
			ndig++;
			s++;
		}
		if (ndig == 0) {
			*why = "a '.' must be followed by digits of a second";
			return -1;
		}
		frac_ms += rest;         /* round up: never fire before the time written */
	}
	if (*s == 'Z' || *s == 'z') {
		s++;
	} else if (*s == '+' || *s == '-') {
		sign = *s++ == '+' ? 1 : -1;
		if (take_digits(&s, 2, &oh) || *s++ != ':' || take_digits(&s, 2, &om))
			return -1;
	} else {
		*why = "the time needs a zone: Z or an offset such as +02:00";
		return -1;
	}
	if (*s) {
		*why = "unexpected text after the time";
		return -1;
	}
	if (mon < 1 || mon > 12) {
		*why = "month out of range (01-12)";
		return -1;
	}
	if (day < 1 || day > days_in_month(year, mon)) {
		*why = "no such day in that month";
		return -1;
	}
	if (hh > 23 || mm > 59 || ss > 60) {
		*why = "hour, minute or second out of range (00-23, 00-59, 00-60)";
		return -1;
	}
	if (oh > 23 || om > 59) {
		*why = "zone offset out of range (at most 23:59)";
		return -1;
	}
	/* A leap second (:60) reads as the first second of the next minute:
	 * POSIX time has no room for it. */
	t = days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss;
	t -= sign * (int64_t)(oh * 3600 + om * 60);
	*ms = t * 1000 + frac_ms;
	return 0;
}

/* The multiplier of a unit suffix, or 0 if it is not one. */
static uint64_t unit_ms(const char *u)
{
	if (!strcmp(u, "ms"))
		return 1;
	if (!strcmp(u, "s"))
		return 1000;
	if (!strcmp(u, "m"))
		return 60000;
	if (!strcmp(u, "h"))
		return 3600000;
	if (!strcmp(u, "d"))
		return 86400000;
	return 0;
}

/* "N<unit>" to milliseconds; -1 with *why on failure (overflow included). */
static int parse_amount(const char *s, uint64_t *ms, const char **why)
{
	uint64_t n = 0, mul;
	const char *p = s;

	if (*p < '0' || *p > '9') {
		*why = "expected a number followed by a unit: ms, s, m, h or d (e.g. 30s)";
		return -1;
	}
	while (*p >= '0' && *p <= '9') {
		if (n > (UINT64_MAX - 9) / 10) {
			*why = "number too large";
			return -1;
		}
		n = n * 10 + (uint64_t)(*p++ - '0');
	}
	if (!*p) {
		*why = "the number needs a unit: ms, s, m, h or d (e.g. 30s)";
		return -1;
	}
	mul = unit_ms(p);
	if (!mul) {
		*why = "unknown unit (expected ms, s, m, h or d)";
		return -1;
	}
	if (n > UINT64_MAX / mul) {
		*why = "number too large";
		return -1;
	}
	*ms = n * mul;
	return 0;
}

/* Milliseconds since the epoch as "2026-11-22T10:00:00.000Z". */
static const char *iso_ms(char *buf, size_t cap, uint64_t ms)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	if (!gmtime_r(&secs, &tm) || !(n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm))) {
		snprintf(buf, cap, "%" PRIu64 "ms", ms);
		return buf;
	}
	snprintf(buf + n, cap - n, ".%03uZ", (unsigned)(ms % 1000));
	return buf;
}

/*
 * A DUE argument (see above) to milliseconds since the epoch.  `what` names
 * the argument in messages.  Every failure is a usage error.
 */
static int parse_due(struct cli *c, const char *what, const char *s, uint64_t *out)
{
	char maxbuf[ISO_MS_BYTES];
	const char *why = NULL;
	uint64_t now = keel_now_ms(), v;

	iso_ms(maxbuf, sizeof(maxbuf), KEEL_TIMER_DUE_MAX);
	if (!*s)
		return usage_error(c, "%s: empty (expected now, +N<unit>, epoch milliseconds or an "
				   "RFC 3339 time)", what);
	if (!strcmp(s, "now")) {
		*out = now;
		return 0;
	}
	if (s[0] == '+') {
		uint64_t d;

		if (parse_amount(s + 1, &d, &why) < 0)
			return usage_error(c, "%s: '%s': %s", what, s, why);
		if (d > KEEL_TIMER_DUE_MAX - now)
			return usage_error(c, "%s: '%s' is past the latest due time %s", what, s,
					   maxbuf);
		*out = now + d;
		return 0;
	}
	if (strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		v = strtoull(s, NULL, 10);
		if (errno == ERANGE || v > KEEL_TIMER_DUE_MAX)
			return usage_error(c, "%s: %s ms since the epoch is past the latest due time "
					   "%s (%" PRIu64 ")", what, s, maxbuf,
					   (uint64_t)KEEL_TIMER_DUE_MAX);
		*out = v;
		return 0;
	}
	if (strspn(s, "0123456789") > 4 && s[strspn(s, "0123456789")] == '-')
		return usage_error(c, "%s: '%s' is past the latest due time %s (RFC 3339 years have "
				   "four digits)", what, s, maxbuf);
	if (strlen(s) >= 10 && s[4] == '-') {
		int64_t ms;

		if (parse_rfc3339(s, &ms, &why) < 0)
			return usage_error(c, "%s: '%s' is not an RFC 3339 time: %s", what, s, why);
		if (ms < 0)
			return usage_error(c, "%s: '%s' is before 1970-01-01T00:00:00Z", what, s);
		if ((uint64_t)ms > KEEL_TIMER_DUE_MAX)
			return usage_error(c, "%s: '%s' is past the latest due time %s", what, s, maxbuf);
		*out = (uint64_t)ms;
		return 0;
	}
	return usage_error(c, "%s: '%s' is not a due time (expected now, +N<unit> such as +5s, "
			   "epoch milliseconds, or an RFC 3339 time such as 2026-11-22T10:00:00Z)",
			   what, s);
}

/* A DURATION option (--lease, --timeout) to milliseconds within [lo, hi]. */
static int parse_duration(struct cli *c, const char *opt, const char *s, uint64_t lo, uint64_t hi,
			  uint64_t *out)
{
	const char *why = NULL;
	uint64_t ms;

	if (parse_amount(s, &ms, &why) < 0)
		return usage_error(c, "%s: '%s': %s", opt, s, why);
	if (ms < lo || ms > hi)
		return usage_error(c, "%s: '%s' is out of range (%" PRIu64 " ms to %" PRIu64 " ms)",
				   opt, s, lo, hi);
	*out = ms;
	return 0;
}

/* --token: the decimal number claim printed. */
static int parse_token(struct cli *c, uint64_t *out)
{
	char *end = NULL;

	if (!c->token)
		return usage_error(c, "--token T is required: the token that 'keel timer claim' "
				   "printed");
	errno = 0;
	if (c->token[0] < '0' || c->token[0] > '9')
		end = (char *)c->token;
	else
		*out = strtoull(c->token, &end, 10);
	if (end == c->token || *end || errno == ERANGE)
		return usage_error(c, "--token: '%s' is not a token (a decimal number, as "
				   "'keel timer claim' prints it)", c->token);
	return 0;
}

/* --state LIST: a mask of enum keel_timer_state. */
static int parse_states(struct cli *c, unsigned *mask)
{
	char buf[64];
	unsigned m = 0;

	if (!c->state) {
		*mask = TIMER_STATES_ALL;
		return 0;
	}
	if (strlen(c->state) >= sizeof(buf))
		return usage_error(c, "--state: list too long");
	snprintf(buf, sizeof(buf), "%s", c->state);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "pending"))
			m |= KEEL_TIMER_PENDING;
		else if (!strcmp(tok, "claimed"))
			m |= KEEL_TIMER_CLAIMED;
		else if (!strcmp(tok, "dead"))
			m |= KEEL_TIMER_DEAD;
		else
			return usage_error(c, "--state: unknown state '%s' (expected pending, "
					   "claimed or dead, comma-separated)", tok);
	}
	if (!m)
		return usage_error(c, "--state: no state named");
	*mask = m;
	return 0;
}

static const char *timer_state_name(unsigned st)
{
	switch (st) {
	case KEEL_TIMER_PENDING: return "pending";
	case KEEL_TIMER_CLAIMED: return "claimed";
	case KEEL_TIMER_DEAD: return "dead";
	default: return "unknown";
	}
}

/* Read a whole file of at most `max` bytes; more is refused with `toolong`. */
static int read_file_max(struct cli *c, const char *path, size_t max, int toolong,
			 const char *what, struct bytes *out)
{
	uint8_t *buf = malloc(max + 1);
	size_t len = 0;
	int fd, err;

	memset(out, 0, sizeof(*out));
	if (!buf)
		return local_error(c, KEEL_E_NOMEM, "out of memory reading %s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		free(buf);
		return local_error(c, KEEL_E_IO, "%s: cannot open %s: %s", what, path, strerror(err));
	}
	for (;;) {
		ssize_t got = read(fd, buf + len, max + 1 - len);

		if (got == 0)
			break;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
			close(fd);
			free(buf);
			return local_error(c, KEEL_E_IO, "%s: reading %s: %s", what, path,
					   strerror(err));
		}
		len += (size_t)got;
		if (len > max) {
			close(fd);
			free(buf);
			fprintf(stderr, "keel %s: %s: %s is over %zu bytes: %s\n", cmd_name(c), what,
				path, max, keel_strerror(toolong));
			return toolong;
		}
	}
	close(fd);
	out->p = out->owned = buf;
	out->n = len;
	return 0;
}

/*
 * The payload of `timer set`: PAYLOAD (text, hex, or '-' for standard
 * input), or --payload-file FILE, or nothing (an empty payload).  Its size
 * is checked here, so an oversize one never reaches the store.
 */
static int timer_payload(struct cli *c, const char *arg, struct bytes *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->payload_file && arg)
		return usage_error(c, "give PAYLOAD or --payload-file, not both");
	if (c->payload_file)
		rc = read_file_max(c, c->payload_file, KEEL_TIMER_PAYLOAD_MAX, KEEL_E_VALSIZE,
				   "--payload-file", out);
	else if (arg)
		rc = arg_data(c, arg, KEEL_TIMER_PAYLOAD_MAX, KEEL_E_VALSIZE, "PAYLOAD", out);
	else
		rc = 0;
	if (rc < 0)
		return rc;
	if (out->n > KEEL_TIMER_PAYLOAD_MAX) {
		fprintf(stderr, "keel %s: PAYLOAD is %zu bytes, over the limit of %u: %s\n",
			cmd_name(c), out->n, KEEL_TIMER_PAYLOAD_MAX, keel_strerror(KEEL_E_VALSIZE));
		bytes_free(out);
		return KEEL_E_VALSIZE;
	}
	return 0;
}

/*
 * PARTITION KEY --token T of ack, extend and release, rebuilt into a claim.
 * The library identifies a claim by partition, key and token; the other
 * fields are what claim reported and are not needed to end it.
 */
static int timer_claim_arg(struct cli *c, keel_claim_t *cl, struct bytes *key)
{
	const char *part = c->args[1];
	int rc;

	memset(cl, 0, sizeof(*cl));
	rc = parse_token(c, &cl->token);
	if (rc < 0)
		return rc;
	rc = arg_key(c, c->args[2], key);
	if (rc < 0)
		return rc;
	if (strlen(part) > KEEL_PARTITION_NAME_MAX) {
		bytes_free(key);
		fprintf(stderr, "keel %s: partition name is %zu bytes, over the limit of %u: %s\n",
			cmd_name(c), strlen(part), KEEL_PARTITION_NAME_MAX,
			keel_strerror(KEEL_E_NAME));
		return KEEL_E_NAME;
	}
	if (key->n == 0 || key->n > KEEL_TIMER_KEY_MAX) {
		size_t n = key->n;

		bytes_free(key);
		fprintf(stderr, "keel %s: timer key is %zu bytes (1 to %u allowed): %s\n",
			cmd_name(c), n, KEEL_TIMER_KEY_MAX, keel_strerror(KEEL_E_KEYSIZE));
		return KEEL_E_KEYSIZE;
	}
	snprintf(cl->part, sizeof(cl->part), "%s", part);
	memcpy(cl->key, key->p, key->n);
	cl->klen = key->n;
	return 0;
}

/* An ack, extend or release refused; the library's detail says why. */
static int claim_lost(struct cli *c, int rc, const char *verb)
{
	return store_error(c, rc, "%s timer in partition '%s' of %s (token %s)", verb, c->args[1],
			   store_arg(c), c->token);
}

/* timer set STORE PARTITION KEY DUE [PAYLOAD] */
static int cmd_timer_set(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key = { 0 }, pl = { 0 };
	uint64_t due;
	int rc;

	rc = parse_due(c, "DUE", c->args[3], &due);
	if (rc < 0)
		return rc;
	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = timer_payload(c, c->nargs > 4 ? c->args[4] : NULL, &pl);
	if (rc < 0)
		goto out;
	rc = open_store(c, OPEN_CREATE);
	if (rc < 0)
		goto out;
	rc = keel_timer_set(c->h, part, key.p, key.n, due, pl.p, pl.n);
	if (rc < 0)
		store_error(c, rc, "set timer in partition '%s' of %s", part, store_arg(c));
out:
	bytes_free(&pl);
	bytes_free(&key);
	return rc;
}

/* timer cancel STORE PARTITION KEY */
static int cmd_timer_cancel(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key = { 0 };
	int existed = 0, rc;

	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc < 0)
		goto out;
	rc = keel_timer_cancel(c->h, part, key.p, key.n, &existed);
	if (rc == KEEL_E_NOTFOUND || (rc == 0 && !existed))
		rc = not_found(c, "no such timer in partition '%s'", part);
	else if (rc < 0)
		store_error(c, rc, "cancel timer in partition '%s' of %s", part, store_arg(c));
out:
	bytes_free(&key);
	return rc;
}

/* Listing: ls, dead ls. */
struct timer_list {
	struct cli *c;
	json_object *arr;
	uint64_t n;
	int rc;
};

static int timer_list_cb(void *ctx, const keel_timer_info_t *t)
{
	struct timer_list *tl = ctx;
	char due[ISO_MS_BYTES];

	tl->n++;
	iso_ms(due, sizeof(due), t->due_ms);
	if (!tl->arr) {
		printf("%s\t", t->part);
		print_key(tl->c, stdout, t->key, t->klen);
		printf("\t%s\t%s\t%" PRIu32, timer_state_name(t->state), due, t->deliveries);
		if (t->state == KEEL_TIMER_CLAIMED)
			printf("\t%ld\t%" PRId64, (long)t->holder, t->lease_left_ms);
		else
			fputs("\t-\t-", stdout);
		printf("\t%zu\n", t->plen);
		return 0;
	}
	json_object *o = json_object_new_object();

	if (!o || json_add_bytes(o, "key", t->key, t->klen) < 0 ||
	    json_add_bytes(o, "payload", t->payload, t->plen) < 0) {
		json_object_put(o);
		tl->rc = KEEL_E_NOMEM;
		return 1;
	}
	json_object_object_add(o, "partition", json_object_new_string(t->part));
	json_object_object_add(o, "state", json_object_new_string(timer_state_name(t->state)));
	json_object_object_add(o, "due_ms", json_object_new_uint64(t->due_ms));
	json_object_object_add(o, "due", json_object_new_string(due));
	json_object_object_add(o, "deliveries", json_object_new_uint64(t->deliveries));
	if (t->state == KEEL_TIMER_CLAIMED) {
		json_object_object_add(o, "holder", json_object_new_int64(t->holder));
		json_object_object_add(o, "lease_left_ms", json_object_new_int64(t->lease_left_ms));
	} else {
		json_object_object_add(o, "holder", NULL);
		json_object_object_add(o, "lease_left_ms", NULL);
	}
	json_object_object_add(o, "payload_bytes", json_object_new_uint64(t->plen));
	json_object_array_add(tl->arr, o);
	return 0;
}

static int timer_list(struct cli *c, unsigned states)
{
	const char *part = c->nargs > 1 ? c->args[1] : NULL;
	struct timer_list tl = { .c = c };
	json_object *root = NULL;
	int rc;

	rc = open_store(c, OPEN_READ);
	if (rc < 0)
		return rc;
	if (c->json) {
		root = json_root(c);
		tl.arr = json_object_new_array();
		if (!root || !tl.arr) {
			json_object_put(root);
			json_object_put(tl.arr);
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		}
		json_object_object_add(root, "partition", part ? json_object_new_string(part) : NULL);
		json_object_object_add(root, "timers", tl.arr);
	}
	rc = keel_timers(c->h, part, states, timer_list_cb, &tl);
	if (rc < 0) {
		store_error(c, rc, "list timers of %s", store_arg(c));
	} else if (tl.rc < 0) {
		rc = local_error(c, tl.rc, "out of memory listing timers");
	} else if (root) {
		json_object_object_add(root, "count", json_object_new_uint64(tl.n));
		json_print(root);
	}
	json_object_put(root);
	return rc;
}

/* timer ls STORE [PARTITION] [--state LIST] */
static int cmd_timer_ls(struct cli *c)
{
	unsigned states = TIMER_STATES_ALL;
	int rc = parse_states(c, &states);

	return rc < 0 ? rc : timer_list(c, states);
}

/* timer dead ls STORE [PARTITION] */
static int cmd_timer_dead_ls(struct cli *c)
{
	return timer_list(c, KEEL_TIMER_DEAD);
}

/* What claim prints: a table, or one JSON object. */
static int claim_print(struct cli *c, const keel_claim_t *cl, const void *payload, int acked)
{
	char due[ISO_MS_BYTES];

	iso_ms(due, sizeof(due), cl->due_ms);
	if (c->json) {
		json_object *root = json_root(c);
		char tok[24];

		if (!root || json_add_bytes(root, "key", cl->key, cl->klen) < 0 ||
		    json_add_bytes(root, "payload", payload, cl->plen) < 0) {
			json_object_put(root);
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		}
		snprintf(tok, sizeof(tok), "%" PRIu64, cl->token);
		json_object_object_add(root, "partition", json_object_new_string(cl->part));
		json_object_object_add(root, "token", json_object_new_string(tok));
		json_object_object_add(root, "due_ms", json_object_new_uint64(cl->due_ms));
		json_object_object_add(root, "due", json_object_new_string(due));
		json_object_object_add(root, "deliveries", json_object_new_uint64(cl->deliveries));
		json_object_object_add(root, "lease_ms", json_object_new_uint64(cl->lease_ms));
		json_object_object_add(root, "payload_bytes", json_object_new_uint64(cl->plen));
		json_object_object_add(root, "acked", json_object_new_boolean(acked));
		json_print(root);
		json_object_put(root);
		return 0;
	}
	printf("%-12s %s\n", "partition", cl->part);
	printf("%-12s ", "key");
	print_key(c, stdout, cl->key, cl->klen);
	printf("\n%-12s %" PRIu64 "\n", "token", cl->token);
	printf("%-12s %s (%" PRIu64 ")\n", "due", due, cl->due_ms);
	printf("%-12s %" PRIu32 "\n", "deliveries", cl->deliveries);
	printf("%-12s %" PRIu64 "\n", "lease_ms", cl->lease_ms);
	printf("%-12s %s\n", "acked", acked ? "yes" : "no");
	printf("%-12s %zu\n", "payload_bytes", cl->plen);
	printf("%-12s ", "payload");
	print_key(c, stdout, payload, cl->plen);
	fputc('\n', stdout);
	return 0;
}

/* timer claim STORE [PARTITION...] [--lease D] [--timeout D] [--ack] */
static int cmd_timer_claim(struct cli *c)
{
	const char *const *parts = (const char *const *)(c->args + 1);
	size_t nparts = (size_t)(c->nargs - 1);
	uint64_t lease = TIMER_LEASE_DEFAULT_MS, timeout = 0;
	keel_claim_t cl;
	void *buf;
	int rc, acked = 0;

	if (c->lease && (rc = parse_duration(c, "--lease", c->lease, 1, KEEL_TIMER_LEASE_MAX,
					     &lease)) < 0)
		return rc;
	if (c->timeout && strcmp(c->timeout, "forever") != 0 &&
	    (rc = parse_duration(c, "--timeout", c->timeout, 0, INT32_MAX, &timeout)) < 0)
		return rc;
	buf = malloc(KEEL_TIMER_PAYLOAD_MAX);
	if (!buf)
		return local_error(c, KEEL_E_NOMEM, "out of memory");
	rc = open_store(c, OPEN_WRITE);
	if (rc < 0)
		goto out;
	memset(&cl, 0, sizeof(cl));
	rc = keel_timer_claim(c->h, parts, nparts, (uint32_t)lease,
			      c->timeout && !strcmp(c->timeout, "forever") ? -1 : (int)timeout, &cl,
			      buf, KEEL_TIMER_PAYLOAD_MAX);
	if (rc == KEEL_E_TIMEOUT) {
		rc = not_found(c, "no timer due%s", c->timeout ? " before the timeout" : "");
		goto out;
	}
	if (rc < 0) {
		store_error(c, rc, "claim a timer of %s", store_arg(c));
		goto out;
	}
	if (c->ack) {
		rc = keel_timer_ack(c->h, &cl);
		if (rc < 0) {
			store_error(c, rc, "ack the timer just claimed in partition '%s' of %s",
				    cl.part, store_arg(c));
			goto out;
		}
		acked = 1;
	}
	rc = claim_print(c, &cl, buf, acked);
out:
	free(buf);
	return rc;
}

/* timer ack STORE PARTITION KEY --token T */
static int cmd_timer_ack(struct cli *c)
{
	struct bytes key = { 0 };
	keel_claim_t cl;
	int rc;

	rc = timer_claim_arg(c, &cl, &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc == 0 && (rc = keel_timer_ack(c->h, &cl)) < 0)
		claim_lost(c, rc, "ack");
	bytes_free(&key);
	return rc;
}

/* timer extend STORE PARTITION KEY --token T [--lease D] */
static int cmd_timer_extend(struct cli *c)
{
	struct bytes key = { 0 };
	uint64_t lease = TIMER_LEASE_DEFAULT_MS;
	keel_claim_t cl;
	int rc;

	if (c->lease && (rc = parse_duration(c, "--lease", c->lease, 1, KEEL_TIMER_LEASE_MAX,
					     &lease)) < 0)
		return rc;
	rc = timer_claim_arg(c, &cl, &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc == 0 && (rc = keel_timer_extend(c->h, &cl, (uint32_t)lease)) < 0)
		claim_lost(c, rc, "extend the lease of");
	bytes_free(&key);
	return rc;
}

/* timer release STORE PARTITION KEY --token T [--due DUE] */
static int cmd_timer_release(struct cli *c)
{
	struct bytes key = { 0 };
	uint64_t due = 0;
	keel_claim_t cl;
	int rc;

	if (c->due && (rc = parse_due(c, "--due", c->due, &due)) < 0)
		return rc;
	rc = timer_claim_arg(c, &cl, &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc == 0 && (rc = keel_timer_release(c->h, &cl, due)) < 0)
		claim_lost(c, rc, "release");
	bytes_free(&key);
	return rc;
}

/* timer dead requeue STORE PARTITION KEY [--due DUE] */
static int cmd_timer_dead_requeue(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key = { 0 };
	uint64_t due = 0;
	int rc;

	if (c->due && (rc = parse_due(c, "--due", c->due, &due)) < 0)
		return rc;
	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc < 0)
		goto out;
	rc = keel_timer_requeue(c->h, part, key.p, key.n, due);
	if (rc == KEEL_E_NOTFOUND)
		not_found(c, "no such timer in partition '%s'", part);
	else if (rc == KEEL_E_STATE)
		store_error(c, rc, "requeue: the timer in partition '%s' is not dead-lettered", part);
	else if (rc < 0)
		store_error(c, rc, "requeue timer in partition '%s' of %s", part, store_arg(c));
out:
	bytes_free(&key);
	return rc;
}

/* timer dead drop STORE PARTITION KEY */
static int cmd_timer_dead_drop(struct cli *c)
{
	const char *part = c->args[1];
	struct bytes key = { 0 };
	keel_timer_info_t info;
	int rc;

	rc = arg_key(c, c->args[2], &key);
	if (rc < 0)
		return rc;
	rc = open_store(c, OPEN_WRITE);
	if (rc < 0)
		goto out;
	/* A missing timer is "not found" (exit 1), whatever drop would call it. */
	rc = keel_timer_get(c->h, part, key.p, key.n, &info, NULL, 0);
	if (rc == 0)
		rc = keel_timer_drop(c->h, part, key.p, key.n);
	if (rc == KEEL_E_NOTFOUND)
		not_found(c, "no such timer in partition '%s'", part);
	else if (rc == KEEL_E_STATE)
		store_error(c, rc, "drop: the timer in partition '%s' is not dead-lettered", part);
	else if (rc < 0)
		store_error(c, rc, "drop timer in partition '%s' of %s", part, store_arg(c));
out:
	bytes_free(&key);
	return rc;
}

/* timer stat STORE */
static int cmd_timer_stat(struct cli *c)
{
	keel_timer_stat_t st;
	char due[ISO_MS_BYTES];
	int rc;

	rc = open_store(c, OPEN_READ);
	if (rc < 0)
		return rc;
	memset(&st, 0, sizeof(st));
	rc = keel_timer_stat(c->h, &st);
	if (rc < 0)
		return store_error(c, rc, "timer statistics of %s", store_arg(c));
	if (st.next_due_ms)
		iso_ms(due, sizeof(due), st.next_due_ms);
	else
		snprintf(due, sizeof(due), "-");
	if (c->json) {
		json_object *root = json_root(c);

		if (!root)
			return local_error(c, KEEL_E_NOMEM, "out of memory");
		json_object_object_add(root, "pending", json_object_new_uint64(st.pending));
		json_object_object_add(root, "claimed", json_object_new_uint64(st.claimed));
		json_object_object_add(root, "dead", json_object_new_uint64(st.dead));
		json_object_object_add(root, "next_due_ms",
				       st.next_due_ms ? json_object_new_uint64(st.next_due_ms) : NULL);
		json_object_object_add(root, "next_due",
				       st.next_due_ms ? json_object_new_string(due) : NULL);
		json_object_object_add(root, "claims", json_object_new_uint64(st.claims));
		json_object_object_add(root, "redelivered", json_object_new_uint64(st.redelivered));
		json_object_object_add(root, "dead_lettered",
				       json_object_new_uint64(st.dead_lettered));
		json_print(root);
		json_object_put(root);
		return 0;
	}
	printf("%-14s %" PRIu64 "\n", "pending", st.pending);
	printf("%-14s %" PRIu64 "\n", "claimed", st.claimed);
	printf("%-14s %" PRIu64 "\n", "dead", st.dead);
	printf("%-14s %s\n", "next_due", due);
	printf("%-14s %" PRIu64 "\n", "claims", st.claims);
	printf("%-14s %" PRIu64 "\n", "redelivered", st.redelivered);
	printf("%-14s %" PRIu64 "\n", "dead_lettered", st.dead_lettered);
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
		.name = "exists", .run = cmd_exists, .nargs_min = 2, .nargs_max = 2,
		.opts = OPT_JSON | OPT_OPEN, .open = OPEN_READ,
		.args = "STORE PARTITION",
		.summary = "tell whether PARTITION exists (exit 0 yes, 1 no)",
		.description =
		"    Prints 'yes' and exits 0 if PARTITION exists, or prints 'no' and\n"
		"    exits 1.  A partition exists from its first write on, even once\n"
		"    cleared.  --json prints {\"store\", \"partition\", \"exists\", \"keys\"}\n"
		"    (with the same exit status).\n",
		.exit_status =
		"    0   the partition exists\n"
		"    1   it does not\n"
		"    2   usage error\n"
		"    5   (KEEL_E_NOTFOUND) the store does not exist\n",
		.examples =
		"    keel exists /var/lib/app users\n"
		"    if keel exists /var/lib/app users >/dev/null; then echo present; fi\n",
	},
	{
		.name = "clear", .run = cmd_clear, .nargs_min = 2, .nargs_max = 2,
		.opts = OPT_JSON | OPT_OPEN, .open = OPEN_WRITE,
		.args = "STORE PARTITION",
		.summary = "delete every key of PARTITION in one commit",
		.description =
		"    Deletes every key of PARTITION as one commit and prints how many\n"
		"    were removed.  The partition itself stays (it still exists, empty).\n"
		"    --json prints {\"store\", \"partition\", \"removed\"}.\n",
		.exit_status =
		"    0   cleared; the count was printed\n"
		"    1   PARTITION does not exist (nothing changed)\n"
		"    2   usage error\n",
		.examples =
		"    keel clear /var/lib/app sessions\n"
		"    keel clear --json /var/lib/app sessions | jq .removed\n",
	},
	{
		.name = "export", .run = cmd_export, .nargs_min = 1, .nargs_max = 1 + KEEL_PARTITIONS_MAX,
		.opts = OPT_JSON | OPT_OPEN | OPT_OUTPUT | OPT_QUIET, .open = OPEN_READ,
		.args = "STORE [PARTITION...] [-o FILE]",
		.summary = "write partitions, keys, values and timers to a portable dump",
		.description =
		"    Writes every partition of the store (or the PARTITIONs named) with\n"
		"    their keys and values, and their durable timers, to FILE, or to\n"
		"    standard output, in the dump format below.  A PARTITION named may\n"
		"    be one that has only timers.\n"
		"\n"
		"    The dump is read from one snapshot: every partition is opened at\n"
		"    the same commit, and the timers are listed at that commit too (a\n"
		"    step's state change and the ack or set of its timer are both in\n"
		"    the dump or both out of it).  If commits keep landing meanwhile\n"
		"    (20 tries), export says so, each partition comes from its own\n"
		"    snapshot, and the timers are listed apart from all of them: the\n"
		"    \"consistent\" flag is then false.  The snapshot is held until the\n"
		"    dump is written, which holds back the reuse of memory that writers\n"
		"    free meanwhile; the timers are copied into memory first.\n"
		"\n"
		"    A timer is written with its partition, key, due time, payload,\n"
		"    state and delivery count.  A claimed timer is written as pending:\n"
		"    claims are not durable, and after an import it is due again.\n"
		"    A regular FILE is written as FILE.tmp-PID (mode 0600: it holds the\n"
		"    store's data), synced, and renamed to FILE when complete.\n"
		"    A summary goes to standard error (--quiet: none); --json prints it\n"
		"    to standard output instead, as {\"store\", \"output\", \"partitions\",\n"
		"    \"keys\", \"timers\", \"timers_dead\", \"timers_claimed\", \"format\",\n"
		"    \"records\", \"bytes\", \"lsn\", \"consistent\", \"checksum\"}, and\n"
		"    needs -o.\n"
		"\n"
		"    Dump format, version 2 (all integers unsigned, little-endian):\n"
		"      header, 32 bytes: magic \"KEELDUMP\" (8), format version 2 (4),\n"
		"        flags (4; bit 0: one snapshot), created_ns (8), lsn (8: every\n"
		"        commit up to it is in the dump)\n"
		"      records, each opening with a type byte:\n"
		"        'P' partition: name length (2), name\n"
		"        'K' key: partition name length (2), partition name, key\n"
		"            length (4, 1..1024), key, value length (4, 0..1048576),\n"
		"            value, version (8), mtime_ns (8)\n"
		"        'T' timer: partition name length (2), partition name, timer\n"
		"            key length (4, 1..512), timer key, payload length (4,\n"
		"            0..65536), payload, due_ms (8: ms since the epoch, at\n"
		"            most 253402300799999), state (1: 1 pending, 2\n"
		"            dead-lettered), deliveries (4: claims so far)\n"
		"      trailer, 17 bytes: 'E', record count (8: 'P', 'K' and 'T'\n"
		"        records), XXH3-64 of every byte before this field (8)\n"
		"    Names are 1 to 64 bytes of [A-Za-z0-9._:@-].  Export writes each\n"
		"    'P' before its 'K' records and every 'T' after the last 'K'; a\n"
		"    timer's partition needs no 'P'.  Keys, values, timer keys and\n"
		"    payloads are any bytes (NUL and newline included).  Version 1 is\n"
		"    the same without 'T' records; import reads both.  Version, mtime\n"
		"    are kept for the record: an import writes each key anew.  A\n"
		"    timer's state and deliveries come back as they were.\n",
		.exit_status =
		"    0   written\n"
		"    1   a PARTITION named has neither keys nor timers (nothing written)\n"
		"    2   usage error (standard output is a terminal, --json without -o)\n"
		"    3   writing the output failed (no FILE is left behind)\n",
		.examples =
		"    keel export /var/lib/app -o app.dump\n"
		"    keel export /var/lib/app users orders | gzip > part.dump.gz\n"
		"    keel export --json /var/lib/app -o app.dump | jq .keys,.timers\n",
	},
	{
		.name = "import", .run = cmd_import, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_JSON | OPT_OPEN | OPT_INPUT | OPT_QUIET | OPT_DRY_RUN,
		.open = OPEN_NONE,
		.args = "STORE [-i FILE] [--dry-run]",
		.summary = "write the keys, values and timers of a dump into STORE",
		.description =
		"    Reads a dump made by 'keel export' (format version 1 or 2) from\n"
		"    FILE, or standard input, and writes its keys and values, and sets\n"
		"    its timers, in STORE (created if missing), in transactions of up to\n"
		"    1000 records (fewer when values are large).  Keys and timers\n"
		"    already in STORE are overwritten; others are left alone.\n"
		"    Partitions of the dump with no keys are created empty.  Each key is\n"
		"    written anew: its version goes up by one (1 for a new key) and its\n"
		"    mtime is the import's.  Export then import into a new store gives\n"
		"    the same partitions, keys and values, and the same timers\n"
		"    (partition, key, due time, payload, state, delivery count).\n"
		"\n"
		"    Timers are written as they were (keel_txn_timer_restore): pending\n"
		"    (due at their due time, at once if it has passed) or dead-lettered,\n"
		"    with their delivery counts.  A timer claimed at export time comes\n"
		"    back pending.\n"
		"\n"
		"    Damaged input (bad magic, version, structure, count or checksum) is\n"
		"    refused with a message naming the byte offset.  When the input is a\n"
		"    regular file, all of it is checked, checksum included, before\n"
		"    anything is applied or the store is created: a bad file changes\n"
		"    nothing.  A pipe can be read only once, so it is applied in order as\n"
		"    it is read, and the checksum is known only at its end: damage found\n"
		"    mid-way leaves the batches committed before it (the message says how\n"
		"    many keys and timers), and never the batch it was found in.\n"
		"\n"
		"    Progress goes to standard error: a line per 10% of a regular file of\n"
		"    1 MiB or more, or per 100000 records of a pipe (--quiet: none).  The\n"
		"    summary goes to standard output; --json prints it as {\"store\",\n"
		"    \"input\", \"format\", \"keys\", \"partitions\", \"timers\",\n"
		"    \"timers_dead\", \"timers_with_deliveries\",\n"
		"    \"empty_partitions_created\", \"commits\", \"checked_before_applying\",\n"
		"    \"records\", \"bytes\", \"lsn\", \"created_ns\", \"consistent\"}\n"
		"    (timers_dead and timers_with_deliveries count the timers of the dump\n"
		"    that the warnings are about).  --dry-run checks the whole input and\n"
		"    prints its summary without opening STORE.  'keel export --help'\n"
		"    describes the format.\n",
		.exit_status =
		"    0   imported (or, with --dry-run, the input is a valid dump)\n"
		"    2   usage error (standard input is a terminal)\n"
		"    3   reading the input failed\n"
		"    19  (KEEL_E_CORRUPT) the input is not a valid dump; see above for\n"
		"        what was applied\n",
		.examples =
		"    keel import /var/lib/app2 -i app.dump\n"
		"    gunzip -c part.dump.gz | keel import /var/lib/app2\n"
		"    keel export /var/lib/app | keel import --quiet /var/lib/copy\n"
		"    keel import --dry-run /unused -i app.dump\n",
	},
	{
		.name = "verify", .run = cmd_verify, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_JSON | OPT_OPEN | OPT_REPAIR, .open = OPEN_NONE,
		.args = "STORE",
		.summary = "check every structure of the store, repairing nothing (unless --repair)",
		.description =
		"    Walks and validates every structure of the arena: the same audit as\n"
		"    'keel-dump --check', without repairing anything.  The store may be\n"
		"    live (each partition is locked briefly while it is checked) or not\n"
		"    (a durable store whose arena is gone is rebuilt from its journal\n"
		"    first, and processes that died attached are reaped, as any open\n"
		"    does; the audit itself changes nothing).  Prints each damaged place\n"
		"    as 'WHERE: WHAT', then a summary.  An arena too damaged to attach\n"
		"    counts as damage, reported at 'attach'.  A lock still held by a\n"
		"    process that died is reported too, with what it protects as the\n"
		"    dead process left it: that is a repair still to do (the next\n"
		"    process to take the lock does it), not damage by itself; with\n"
		"    --repair those locks are taken over, and so repaired, before the\n"
		"    audit.  --json prints\n"
		"    {\"store\", \"sound\", \"problems\", \"reports\": [{\"where\", \"what\"}],\n"
		"    \"partitions\", \"keys\"} (the last two when the store could count\n"
		"    them).\n",
		.exit_status =
		"    0   sound\n"
		"    1   damage found; each place was printed\n"
		"    2   usage error\n"
		"    5   (KEEL_E_NOTFOUND) the store does not exist\n",
		.examples =
		"    keel verify /var/lib/app\n"
		"    keel verify --json /var/lib/app | jq -r '.reports[].where'\n"
		"    keel verify --repair /var/lib/app   # after a worker was killed\n",
	},
	{
		.name = "destroy", .run = cmd_destroy, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_FORCE | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE [--force]",
		.summary = "remove the store: arena, journal, checkpoints, directory",
		.description =
		"    Removes the store's arena from /dev/shm, then its files in STORE\n"
		"    (keel.id, journal/seg-*, checkpoint/ckpt-*), then the journal/ and\n"
		"    checkpoint/ directories and STORE itself.  Everything in the store\n"
		"    is lost.\n"
		"\n"
		"    It refuses, and removes nothing, while other processes are attached\n"
		"    to the arena, or when STORE holds files that are not Keel's (they are\n"
		"    listed).  --force goes on in both cases: attached processes keep\n"
		"    running on a store that is gone, and files that are not Keel's stay,\n"
		"    with STORE and the subdirectories that hold them.\n",
		.exit_status =
		"    0   removed (the message says whether STORE itself was kept)\n"
		"    2   usage error\n"
		"    5   (KEEL_E_NOTFOUND) STORE is not a store: no arena and no keel.id\n"
		"    24  (KEEL_E_BUSY) processes are attached\n"
		"    27  (KEEL_E_STATE) STORE holds files that are not Keel's\n",
		.examples =
		"    keel destroy /var/lib/app\n"
		"    keel destroy /tmp/scratch\n"
		"    keel destroy --force /var/lib/app\n",
	},
	{
		.name = "crash", .run = cmd_crash, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_POWER_LOSS | OPT_FORCE | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE --power-loss [--force]",
		.summary = "simulate a power loss: drop the arena, keep what is durable",
		.description =
		"    For testing crash recovery.  --power-loss removes the store's arena\n"
		"    from /dev/shm without flushing anything, as a power cut would: what\n"
		"    the journal holds stays, commits not yet written to it are gone, and\n"
		"    the next open of the store rebuilds the arena from the checkpoint and\n"
		"    the journal.  A memory-mode store has no journal: all its data goes.\n"
		"    Prints the durable LSN and how many later commits were not durable.\n"
		"\n"
		"    It cannot drop the operating system's page cache: journal writes not\n"
		"    yet fsynced survive it, where a real power cut could lose them.  With\n"
		"    sync durability (the default) every acknowledged commit was fsynced\n"
		"    first, so for acknowledged commits the result is what a power cut\n"
		"    gives.\n"
		"\n"
		"    It refuses while processes are attached, listing them.  --force\n"
		"    SIGKILLs them first, as a power cut stops everything (it waits up to\n"
		"    5 s for each to die), and drops an arena it cannot attach to.  That\n"
		"    includes a process that runs 'keel crash' while it has the store\n"
		"    open itself: a test harness closes its handle first.\n",
		.exit_status =
		"    0   dropped (or there was no arena)\n"
		"    2   usage error (--power-loss missing)\n"
		"    5   (KEEL_E_NOTFOUND) the store does not exist\n"
		"    24  (KEEL_E_BUSY) processes are attached (or one did not die)\n",
		.examples =
		"    keel crash /var/lib/app --power-loss\n"
		"    keel crash /var/lib/app --power-loss --force && keel verify /var/lib/app\n",
	},
	{
		.name = "timer set", .run = cmd_timer_set, .nargs_min = 4, .nargs_max = 5,
		.opts = OPT_HEX | OPT_OPEN | OPT_PAYLOAD_FILE, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY DUE [PAYLOAD | --payload-file FILE]",
		.summary = "schedule (or reschedule) a timer at DUE with a payload",
		.description =
		"    Sets the timer KEY of PARTITION to fire at DUE, with PAYLOAD (empty\n"
		"    when left out), as one commit.  Set is an upsert: a timer already\n"
		"    there (pending, claimed or dead-lettered) is rescheduled atomically\n"
		"    and its delivery count starts again.  The store and the partition\n"
		"    are created if missing.  Timer keys live beside the partition's keys\n"
		"    and do not clash with them.\n"
		"\n"
		"    DUE is one of:\n"
		"      now                    the current time\n"
		"      +N<unit>               N from now; unit ms, s, m, h or d\n"
		"                             (+5s, +250ms, +10m, +1h)\n"
		"      N                      milliseconds since 1970-01-01T00:00:00Z\n"
		"      RFC 3339 time          2026-11-22T10:00:00Z, 2026-11-22T10:00:00.250Z,\n"
		"                             2026-11-22T12:00:00+02:00\n"
		"    up to 9999-12-31T23:59:59.999Z.  A fraction finer than a millisecond\n"
		"    rounds up, so the timer never fires before the time written.  A due\n"
		"    time in the past is due at once.\n"
		"\n"
		"    PAYLOAD is the bytes of the argument; '-' reads standard input,\n"
		"    binary-safe; --payload-file FILE reads FILE.  With --hex, KEY and\n"
		"    PAYLOAD (or standard input) are hex digits.  A payload holds at most\n"
		"    64 KiB and a timer key 1 to 512 bytes.\n"
		"\n"
		"    Every argument is checked before the store is opened: a DUE that\n"
		"    cannot be parsed or is out of range, or a payload that is too large,\n"
		"    changes nothing (not even by creating the store).\n",
		.exit_status =
		"    0   set\n"
		"    2   usage error: DUE unparseable or out of range, bad hex, PAYLOAD\n"
		"        and --payload-file both given\n"
		"    3   --payload-file could not be read\n"
		"    7   (KEEL_E_KEYSIZE) KEY empty or over 512 bytes\n"
		"    8   (KEEL_E_VALSIZE) PAYLOAD over 64 KiB\n"
		"    9   (KEEL_E_NAME) bad partition name\n",
		.examples =
		"    keel timer set /var/lib/app reminders invoice-42 +15m 'send reminder'\n"
		"    keel timer set /var/lib/app jobs nightly 2026-11-23T02:00:00+01:00\n"
		"    keel timer set /var/lib/app jobs report +250ms --payload-file job.json\n"
		"    printf '\\0\\1\\2' | keel timer set /var/lib/app raw k1 now -\n",
	},
	{
		.name = "timer cancel", .run = cmd_timer_cancel, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY",
		.summary = "delete a timer, whatever its state",
		.description =
		"    Deletes the timer KEY of PARTITION, as one commit, whether it is\n"
		"    pending, claimed or dead-lettered.  A process holding a claim on it\n"
		"    finds its ack refused (KEEL_E_STATE).  With --hex, KEY is in hex.\n",
		.exit_status =
		"    0   cancelled\n"
		"    1   there was no such timer (nothing changed)\n"
		"    2   usage error\n",
		.examples =
		"    keel timer cancel /var/lib/app reminders invoice-42\n",
	},
	{
		.name = "timer ls", .run = cmd_timer_ls, .nargs_min = 1, .nargs_max = 2,
		.opts = OPT_JSON | OPT_HEX | OPT_OPEN | OPT_STATE, .open = OPEN_NONE,
		.args = "STORE [PARTITION] [--state LIST]",
		.summary = "list timers: state, due time, deliveries, holder and lease",
		.description =
		"    Lists the timers of the store (or of PARTITION), by partition and\n"
		"    then by due time, one per line, with tab-separated columns:\n"
		"      partition, key, state (pending, claimed or dead), due time (RFC\n"
		"      3339, UTC), deliveries so far, holder pid and lease left in ms\n"
		"      (claimed timers; '-' otherwise), payload bytes.\n"
		"    Keys are escaped as 'keel ls' does (\\\\ and \\xNN); --hex prints them\n"
		"    in hex.  --state picks states: a comma-separated list of pending,\n"
		"    claimed and dead (default: all).  A lease left below 0 has run out:\n"
		"    the next claimer takes the timer back.\n"
		"\n"
		"    --json prints {\"store\", \"partition\", \"count\", \"timers\":\n"
		"    [{\"partition\", \"key\", \"key_hex\", \"state\", \"due_ms\", \"due\",\n"
		"    \"deliveries\", \"holder\", \"lease_left_ms\", \"payload\",\n"
		"    \"payload_hex\", \"payload_bytes\"}]}; \"holder\" and \"lease_left_ms\"\n"
		"    are null unless the timer is claimed, and \"key\" and \"payload\" are\n"
		"    present when the bytes are UTF-8 text without NUL.\n",
		.exit_status =
		"    0   listed (possibly nothing)\n"
		"    2   usage error (an unknown --state)\n"
		"    9   (KEEL_E_NAME) bad partition name\n",
		.examples =
		"    keel timer ls /var/lib/app\n"
		"    keel timer ls /var/lib/app jobs --state claimed,dead\n"
		"    keel timer ls --json /var/lib/app | jq -r '.timers[] | select(.state == \"claimed\") | .key'\n",
	},
	{
		.name = "timer claim", .run = cmd_timer_claim, .nargs_min = 1,
		.nargs_max = 1 + KEEL_PARTITIONS_MAX,
		.opts = OPT_JSON | OPT_HEX | OPT_OPEN | OPT_LEASE | OPT_TIMEOUT | OPT_ACK,
		.open = OPEN_NONE,
		.args = "STORE [PARTITION...] [--lease D] [--timeout D] [--ack]",
		.summary = "take the earliest due timer under a lease (--ack: and delete it)",
		.description =
		"    Claims the earliest due timer of the PARTITIONs named (of every\n"
		"    partition when none is) under a lease of --lease D (default 30s, at\n"
		"    most 1 day) and prints it: partition, key, token, due time,\n"
		"    delivery number, lease, payload.  If none is due it waits up to\n"
		"    --timeout D (default 0: no wait; 'forever': no limit).  Durations are\n"
		"    N<unit> with unit ms, s, m, h or d.  Every claim counts a delivery;\n"
		"    a timer claimed more often than the store allows (10 by default) is\n"
		"    moved to the dead letters instead of being handed out.\n"
		"\n"
		"    CAVEAT: a claim belongs to the process that made it, and this one\n"
		"    exits at once.  Any other process that claims or waits then sees the\n"
		"    holder dead and may take the timer back straight away, counting\n"
		"    another delivery.  The token is a capability: 'keel timer ack',\n"
		"    'extend' and 'release' with --token T end or renew the claim from\n"
		"    another process, as long as nobody has taken the timer since (exit\n"
		"    27 when someone has).  Use claim from the shell where no other\n"
		"    claimer runs, or for inspection and tests; long-running workers call\n"
		"    keel_timer_claim themselves.\n"
		"\n"
		"    --ack claims and acks in one go (a pop): the timer is deleted before\n"
		"    it is printed, so if what reads the output fails, it is gone: at\n"
		"    most once instead of at least once.\n"
		"\n"
		"    --json prints {\"store\", \"partition\", \"key\", \"key_hex\", \"token\",\n"
		"    \"due_ms\", \"due\", \"deliveries\", \"lease_ms\", \"payload\",\n"
		"    \"payload_hex\", \"payload_bytes\", \"acked\"}; \"token\" is a string of\n"
		"    decimal digits (64 bits do not fit every JSON reader's numbers).\n",
		.exit_status =
		"    0   claimed (and with --ack, acked); printed\n"
		"    1   no timer was due (within --timeout)\n"
		"    2   usage error (bad --lease or --timeout)\n"
		"    9   (KEEL_E_NAME) bad partition name\n",
		.examples =
		"    keel timer claim /var/lib/app jobs --lease 2m\n"
		"    T=$(keel timer claim --json /var/lib/app jobs | jq -r .token)\n"
		"    keel timer claim /var/lib/app --timeout 10s --ack --json\n",
	},
	{
		.name = "timer ack", .run = cmd_timer_ack, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN | OPT_TOKEN, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY --token T",
		.summary = "delete a claimed timer: its work is done",
		.description =
		"    Acks the claim with token T on timer KEY of PARTITION: the timer is\n"
		"    deleted, durably, in a commit of its own.  T is the token 'keel timer\n"
		"    claim' printed.  If the claim is not held any more (the lease ran\n"
		"    out, another process took the timer back, or it was set, cancelled\n"
		"    or claimed again since) nothing changes and the exit status is 27.\n",
		.exit_status =
		"    0   acked\n"
		"    2   usage error (--token missing or not a number)\n"
		"    27  (KEEL_E_STATE) the claim is not held (nothing changed)\n",
		.examples =
		"    keel timer ack /var/lib/app jobs nightly --token 8842\n",
	},
	{
		.name = "timer extend", .run = cmd_timer_extend, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN | OPT_TOKEN | OPT_LEASE, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY --token T [--lease D]",
		.summary = "renew the lease of a claim",
		.description =
		"    Renews the lease of the claim with token T on timer KEY of\n"
		"    PARTITION to --lease D from now (default 30s, at most 1 day).\n",
		.exit_status =
		"    0   extended\n"
		"    2   usage error\n"
		"    27  (KEEL_E_STATE) the claim is not held\n",
		.examples =
		"    keel timer extend /var/lib/app jobs nightly --token 8842 --lease 5m\n",
	},
	{
		.name = "timer release", .run = cmd_timer_release, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN | OPT_TOKEN | OPT_DUE, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY --token T [--due DUE]",
		.summary = "hand a claimed timer back: due now, or at DUE",
		.description =
		"    Ends the claim with token T on timer KEY of PARTITION without\n"
		"    deleting the timer: it is due again at once, or at --due DUE (a\n"
		"    journaled reschedule that keeps the delivery count).  DUE takes the\n"
		"    forms described under 'keel timer set --help'.\n",
		.exit_status =
		"    0   released\n"
		"    2   usage error (bad --due)\n"
		"    27  (KEEL_E_STATE) the claim is not held\n",
		.examples =
		"    keel timer release /var/lib/app jobs nightly --token 8842\n"
		"    keel timer release /var/lib/app jobs nightly --token 8842 --due +1m\n",
	},
	{
		.name = "timer dead ls", .run = cmd_timer_dead_ls, .nargs_min = 1, .nargs_max = 2,
		.opts = OPT_JSON | OPT_HEX | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE [PARTITION]",
		.summary = "list dead-lettered timers",
		.description =
		"    Lists the timers moved to the dead letters (claimed more often than\n"
		"    the store allows without an ack), as 'keel timer ls --state dead'\n"
		"    does, with the same columns and --json form.\n",
		.exit_status =
		"    0   listed (possibly nothing)\n"
		"    2   usage error\n",
		.examples =
		"    keel timer dead ls /var/lib/app\n"
		"    keel timer dead ls --json /var/lib/app jobs | jq .count\n",
	},
	{
		.name = "timer dead requeue", .run = cmd_timer_dead_requeue, .nargs_min = 3,
		.nargs_max = 3, .opts = OPT_HEX | OPT_OPEN | OPT_DUE, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY [--due DUE]",
		.summary = "put a dead-lettered timer back, due now or at DUE",
		.description =
		"    Makes the dead-lettered timer KEY of PARTITION pending again, due at\n"
		"    once or at --due DUE, with its delivery count reset.\n",
		.exit_status =
		"    0   requeued\n"
		"    1   there is no such timer\n"
		"    2   usage error (bad --due)\n"
		"    27  (KEEL_E_STATE) the timer is not dead-lettered (nothing changed)\n",
		.examples =
		"    keel timer dead requeue /var/lib/app jobs nightly\n"
		"    keel timer dead requeue /var/lib/app jobs nightly --due +10m\n",
	},
	{
		.name = "timer dead drop", .run = cmd_timer_dead_drop, .nargs_min = 3, .nargs_max = 3,
		.opts = OPT_HEX | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE PARTITION KEY",
		.summary = "delete a dead-lettered timer",
		.description =
		"    Deletes the dead-lettered timer KEY of PARTITION.  Unlike 'keel timer\n"
		"    cancel' it refuses a timer that is not dead-lettered.\n",
		.exit_status =
		"    0   dropped\n"
		"    1   there is no such timer\n"
		"    2   usage error\n"
		"    27  (KEEL_E_STATE) the timer is not dead-lettered (nothing changed)\n",
		.examples =
		"    keel timer dead drop /var/lib/app jobs nightly\n",
	},
	{
		.name = "timer stat", .run = cmd_timer_stat, .nargs_min = 1, .nargs_max = 1,
		.opts = OPT_JSON | OPT_OPEN, .open = OPEN_NONE,
		.args = "STORE",
		.summary = "print timer counts, the next due time and claim counters",
		.description =
		"    Prints how many timers are pending, claimed and dead-lettered, the\n"
		"    earliest pending due time, and, since the arena was made, the claims\n"
		"    handed out, the claims lost to a dead holder or a lease that ran out\n"
		"    (redelivered), and the timers moved to the dead letters.  --json\n"
		"    prints {\"store\", \"pending\", \"claimed\", \"dead\", \"next_due_ms\",\n"
		"    \"next_due\", \"claims\", \"redelivered\", \"dead_lettered\"} (the\n"
		"    next due fields are null when nothing is pending).\n",
		.exit_status =
		"    0   printed\n"
		"    2   usage error\n",
		.examples =
		"    keel timer stat /var/lib/app\n"
		"    keel timer stat --json /var/lib/app | jq .next_due\n",
	},
	{
		.name = "help", .run = cmd_help, .nargs_min = 0, .nargs_max = 3,
		.opts = 0, .open = OPEN_NONE,
		.args = "[COMMAND [SUBCOMMAND]]",
		.summary = "show the help of keel or of COMMAND",
		.description =
		"    Prints the same text as 'keel --help' or 'keel COMMAND --help'.\n",
		.exit_status =
		"    0   printed\n"
		"    2   no such command\n",
		.examples =
		"    keel help ls\n"
		"    keel help timer claim\n",
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

/*
 * Command groups.  A command whose name is a group's name and one more word
 * ("timer set", "timer dead ls") is named by that many arguments, so the
 * command table stays flat and every row gets its own help page.
 */
#define CMD_NAME_BYTES 64
static const struct {
	const char *name;
	const char *summary;
	const char *description;
	const char *examples;
} cmd_groups[] = {
	{
		"timer", "durable timers: schedule, list, claim, ack",
		"    A timer is a (PARTITION, KEY) with a due time and a payload, kept\n"
		"    beside the partition's keys and journaled like them.  Set and cancel\n"
		"    are single commits.  A process claims a due timer under a lease; the\n"
		"    claim ends with ack (the timer is deleted), release (it is due\n"
		"    again), or by being lost when its holder dies or its lease runs out.\n"
		"    A timer claimed too often without an ack moves to the dead letters\n"
		"    ('keel timer dead ...').  Delivery is at least once.\n"
		"\n"
		"    Due times are now, +N<unit> (+5s, +250ms, +10m, +1h), milliseconds\n"
		"    since the epoch, or RFC 3339 times (2026-11-22T10:00:00Z); see 'keel\n"
		"    timer set --help'.  Each subcommand's --help has the details, and\n"
		"    'keel timer claim --help' the caveat of claiming from a process that\n"
		"    exits at once.\n",
		"    keel timer set /var/lib/app jobs nightly +1h 'run report'\n"
		"    keel timer ls /var/lib/app\n"
		"    keel timer claim --json /var/lib/app jobs\n"
		"    keel timer ack /var/lib/app jobs nightly --token 8842\n"
		"    keel timer dead ls /var/lib/app\n",
	},
	{
		"timer dead", "dead-lettered timers: list, requeue, drop",
		"    Timers claimed more often than the store allows (10 deliveries by\n"
		"    default) without an ack are moved to the dead letters instead of\n"
		"    being handed out again.  'ls' lists them, 'requeue' makes one\n"
		"    pending again and 'drop' deletes it.\n",
		"    keel timer dead ls /var/lib/app\n"
		"    keel timer dead requeue /var/lib/app jobs nightly --due +5m\n"
		"    keel timer dead drop /var/lib/app jobs nightly\n",
	},
};
#define N_CMD_GROUPS (sizeof(cmd_groups) / sizeof(cmd_groups[0]))

/* The index of group `name` in cmd_groups, or -1. */
static int group_index(const char *name)
{
	for (size_t i = 0; i < N_CMD_GROUPS; i++)
		if (strcmp(cmd_groups[i].name, name) == 0)
			return (int)i;
	return -1;
}

static int is_group(const char *name)
{
	return group_index(name) >= 0;
}

/*
 * The command named by words[0..n): words are joined while they name a
 * group, then one more is taken.  name[] gets what was named and *used how
 * many words that took.  NULL when it names no command (a group named
 * without a subcommand included).
 */
static const struct cmd *resolve_cmd(char *const *words, int n, char *name, size_t cap, int *used)
{
	name[0] = '\0';
	*used = 0;
	while (*used < n) {
		size_t len = strlen(name);

		if (len + 1 + strlen(words[*used]) >= cap)
			break;          /* no command name is that long */
		snprintf(name + len, cap - len, "%s%s", len ? " " : "", words[*used]);
		(*used)++;
		if (!is_group(name))
			break;
	}
	return find_cmd(name);
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
	  "        instead of refusing; what is lost is printed.\n" },
	{ OPT_OUTPUT,
	  "    -o, --output FILE\n"
	  "        Write the dump to FILE (via FILE.tmp-PID, renamed when complete)\n"
	  "        instead of standard output.\n" },
	{ OPT_INPUT,
	  "    -i, --input FILE\n"
	  "        Read the dump from FILE instead of standard input.\n" },
	{ OPT_DRY_RUN,
	  "    --dry-run\n"
	  "        Check the whole dump and print its summary; change nothing.\n" },
	{ OPT_QUIET,
	  "    -q, --quiet\n"
	  "        No progress or summary on standard error.\n" },
	{ OPT_POWER_LOSS,
	  "    --power-loss\n"
	  "        Simulate a power cut: drop the arena, keep what is durable.\n" },
	{ OPT_FORCE,
	  "    --force\n"
	  "        Go on where the command would refuse (see DESCRIPTION).\n" },
	{ OPT_REPAIR,
	  "    --repair\n"
	  "        First repair what processes that died left: take over the locks\n"
	  "        they held (which repairs what those locks protect) and reap them.\n" },
	{ OPT_PAYLOAD_FILE,
	  "    --payload-file FILE\n"
	  "        Read the timer's payload from FILE (binary-safe, at most 64 KiB).\n" },
	{ OPT_STATE,
	  "    --state LIST\n"
	  "        List only timers in these states: pending, claimed, dead\n"
	  "        (comma-separated).\n" },
	{ OPT_LEASE,
	  "    --lease D\n"
	  "        Lease of the claim: N<unit>, unit ms, s, m, h or d (default 30s,\n"
	  "        at most 1d).\n" },
	{ OPT_TIMEOUT,
	  "    --timeout D\n"
	  "        Wait up to D for a timer to fall due (default 0: do not wait;\n"
	  "        'forever': no limit).\n" },
	{ OPT_ACK,
	  "    --ack\n"
	  "        Ack the timer right after claiming it (a pop; at most once).\n" },
	{ OPT_TOKEN,
	  "    --token T\n"
	  "        The token of the claim, as 'keel timer claim' printed it.\n" },
	{ OPT_DUE,
	  "    --due DUE\n"
	  "        When the timer is due again: now, +N<unit>, epoch milliseconds or\n"
	  "        an RFC 3339 time (default: at once).\n" },
};

static void print_exit_table(FILE *f)
{
	fputs("    0   success\n"
	      "    1   not found: the key (get, del), the partition (ls, clear,\n"
	      "        exists, export) or the timer (timer cancel, timer dead\n"
	      "        requeue|drop); no timer due (timer claim); for verify, damage\n"
	      "        found\n"
	      "    2   usage error: unknown command or option, wrong number of\n"
	      "        arguments, bad hex, bad durability mode, a due time or\n"
	      "        duration that cannot be parsed or is out of range, a bad token\n"
	      "    3   failure outside the store: reading standard input, writing\n"
	      "        standard output, reading or writing a dump file, out of memory\n"
	      "        in this process\n"
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
	      "    The timer commands ('keel timer --help') schedule durable timers,\n"
	      "    claim due ones under a lease, and ack, extend or release claims.\n"
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
	      "    keel --memory put /tmp/scratch cache k1 v1\n"
	      "    keel export /var/lib/app -o app.dump\n"
	      "    keel import /var/lib/copy -i app.dump\n"
	      "    keel crash /var/lib/app --power-loss && keel verify /var/lib/app\n"
	      "    keel timer set /var/lib/app jobs nightly 2026-11-23T02:00:00Z 'run report'\n"
	      "    keel timer ls /var/lib/app\n", f);
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

/* The help page of a command group: its subcommands, each with synopsis. */
static void print_group_help(FILE *f, const char *group)
{
	int g = group_index(group);
	size_t glen = strlen(group);

	if (g < 0)
		return;
	fprintf(f, "NAME\n    keel %s - %s\n\nSYNOPSIS\n", group, cmd_groups[g].summary);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strncmp(commands[i].name, group, glen) && commands[i].name[glen] == ' ')
			fprintf(f, "    keel %s [OPTIONS] %s\n", commands[i].name, commands[i].args);
	fprintf(f, "    keel %s SUBCOMMAND --help\n\nDESCRIPTION\n%s\nSUBCOMMANDS\n", group,
		cmd_groups[g].description);
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strncmp(commands[i].name, group, glen) && commands[i].name[glen] == ' ')
			fprintf(f, "    %-14s %s\n", commands[i].name + glen + 1,
				commands[i].summary);
	fputs("\nEXIT STATUS\n", f);
	print_exit_table(f);
	fprintf(f, "\nEXAMPLES\n%s", cmd_groups[g].examples);
}

static int cmd_help(struct cli *c)
{
	const struct cmd *cmd;
	char name[CMD_NAME_BYTES];
	int used;

	if (c->nargs == 0) {
		print_main_help(stdout);
		return 0;
	}
	cmd = resolve_cmd(c->args, c->nargs, name, sizeof(name), &used);
	if (!cmd && is_group(name) && used == c->nargs) {
		print_group_help(stdout, name);
		return 0;
	}
	if (!cmd || used != c->nargs)
		return usage_error(c, "no such command: '%s'", name);
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

/* Open STORE into c->h as `mode` (enum cmd_open) says, reporting a failure. */
static int open_store(struct cli *c, int mode)
{
	keel_options_t opt;
	int rc;

	keel_options_init(&opt);
	if (c->durability != KEEL_DURABILITY_DEFAULT)   /* else keep the default */
		opt.durability = c->durability;
	opt.arena_path = c->arena_path;
	if (mode == OPEN_READ)
		opt.flags |= KEEL_OPEN_NOCREATE | KEEL_OPEN_READONLY;
	else if (mode == OPEN_WRITE)
		opt.flags |= KEEL_OPEN_NOCREATE;
	rc = keel_open(store_arg(c), &opt, &c->h);
	if (rc == KEEL_E_NOTFOUND && mode == OPEN_READ) {
		/* A durable store without its arena (after a reboot): a read-only
		 * open does not rebuild it, so open it writable once to recover. */
		char idp[4200];
		snprintf(idp, sizeof(idp), "%s/keel.id", store_arg(c));
		if (access(idp, F_OK) == 0) {
			opt.flags &= ~(uint32_t)KEEL_OPEN_READONLY;
			rc = keel_open(store_arg(c), &opt, &c->h);
		}
	}
	if (rc < 0) {
		c->h = NULL;
		store_error(c, rc, "open %s", store_arg(c));
		/* A missing store is a store error (5), not "key not found" (1). */
		if (rc == KEEL_E_NOTFOUND)
			c->exit_class = EXIT_STORE_BASE - KEEL_E_NOTFOUND;
	}
	return rc;
}

enum { LOPT_HELP = 'h', LOPT_OUTPUT = 'o', LOPT_INPUT = 'i', LOPT_QUIET = 'q',
       LOPT_JSON = 256, LOPT_HEX, LOPT_MEMORY, LOPT_DURABILITY, LOPT_ARENA, LOPT_VERSION,
       LOPT_SALVAGE, LOPT_FORCE, LOPT_POWER_LOSS, LOPT_DRY_RUN, LOPT_TOKEN, LOPT_LEASE,
       LOPT_TIMEOUT, LOPT_ACK, LOPT_PAYLOAD_FILE, LOPT_DUE, LOPT_STATE, LOPT_REPAIR };

static const struct option long_options[] = {
	{ "help", no_argument, NULL, LOPT_HELP },
	{ "json", no_argument, NULL, LOPT_JSON },
	{ "hex", no_argument, NULL, LOPT_HEX },
	{ "memory", no_argument, NULL, LOPT_MEMORY },
	{ "durability", required_argument, NULL, LOPT_DURABILITY },
	{ "arena", required_argument, NULL, LOPT_ARENA },
	{ "version", no_argument, NULL, LOPT_VERSION },
	{ "salvage", no_argument, NULL, LOPT_SALVAGE },
	{ "output", required_argument, NULL, LOPT_OUTPUT },
	{ "input", required_argument, NULL, LOPT_INPUT },
	{ "quiet", no_argument, NULL, LOPT_QUIET },
	{ "force", no_argument, NULL, LOPT_FORCE },
	{ "repair", no_argument, NULL, LOPT_REPAIR },
	{ "power-loss", no_argument, NULL, LOPT_POWER_LOSS },
	{ "dry-run", no_argument, NULL, LOPT_DRY_RUN },
	{ "token", required_argument, NULL, LOPT_TOKEN },
	{ "lease", required_argument, NULL, LOPT_LEASE },
	{ "timeout", required_argument, NULL, LOPT_TIMEOUT },
	{ "ack", no_argument, NULL, LOPT_ACK },
	{ "payload-file", required_argument, NULL, LOPT_PAYLOAD_FILE },
	{ "due", required_argument, NULL, LOPT_DUE },
	{ "state", required_argument, NULL, LOPT_STATE },
	{ NULL, 0, NULL, 0 },
};

/* What the command line asked for, before the command is known. */
struct parsed {
	int help;
	int version;
	int memory;
	const char *durability;
	unsigned seen;               /* enum cmd_opt bits given */
	const char *seen_name[OPT_BITS]; /* the option that set each bit, for messages */
};

static void saw(struct parsed *p, unsigned bit, const char *name)
{
	p->seen |= bit;
	for (int i = 0; i < OPT_BITS; i++)
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
	while ((ch = getopt_long(argc, argv, ":ho:i:q", long_options, NULL)) != -1) {
		switch (ch) {
		case LOPT_HELP: p->help = 1; break;
		case LOPT_VERSION: p->version = 1; break;
		case LOPT_SALVAGE: c->salvage = 1; saw(p, OPT_SALVAGE, "--salvage"); break;
		case LOPT_OUTPUT: c->output = optarg; saw(p, OPT_OUTPUT, "--output"); break;
		case LOPT_INPUT: c->input = optarg; saw(p, OPT_INPUT, "--input"); break;
		case LOPT_QUIET: c->quiet = 1; saw(p, OPT_QUIET, "--quiet"); break;
		case LOPT_FORCE: c->force = 1; saw(p, OPT_FORCE, "--force"); break;
		case LOPT_REPAIR: c->repair = 1; saw(p, OPT_REPAIR, "--repair"); break;
		case LOPT_POWER_LOSS: c->power_loss = 1; saw(p, OPT_POWER_LOSS, "--power-loss"); break;
		case LOPT_DRY_RUN: c->dry_run = 1; saw(p, OPT_DRY_RUN, "--dry-run"); break;
		case LOPT_JSON: c->json = 1; saw(p, OPT_JSON, "--json"); break;
		case LOPT_HEX: c->hex = 1; saw(p, OPT_HEX, "--hex"); break;
		case LOPT_TOKEN: c->token = optarg; saw(p, OPT_TOKEN, "--token"); break;
		case LOPT_LEASE: c->lease = optarg; saw(p, OPT_LEASE, "--lease"); break;
		case LOPT_TIMEOUT: c->timeout = optarg; saw(p, OPT_TIMEOUT, "--timeout"); break;
		case LOPT_ACK: c->ack = 1; saw(p, OPT_ACK, "--ack"); break;
		case LOPT_PAYLOAD_FILE:
			c->payload_file = optarg;
			saw(p, OPT_PAYLOAD_FILE, "--payload-file");
			break;
		case LOPT_DUE: c->due = optarg; saw(p, OPT_DUE, "--due"); break;
		case LOPT_STATE: c->state = optarg; saw(p, OPT_STATE, "--state"); break;
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

	for (int i = 0; i < OPT_BITS; i++) {
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
		rc = open_store(c, c->cmd->open);
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
 * The command table's own rules, checked on every run (a few dozen rows cost
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
		TABLE_CHECK((cmd->opts & ~(unsigned)OPT_ALL) == 0);
		TABLE_CHECK(find_cmd(cmd->name) == cmd);                     /* unique */
		TABLE_CHECK(strlen(cmd->name) < CMD_NAME_BYTES && !is_group(cmd->name));
		if (strrchr(cmd->name, ' ')) {                               /* "group word" */
			char g[CMD_NAME_BYTES];

			snprintf(g, sizeof(g), "%.*s", (int)(strrchr(cmd->name, ' ') - cmd->name),
				 cmd->name);
			TABLE_CHECK(is_group(g));
		}
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
	char name[CMD_NAME_BYTES];
	int used, rc;

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
	c->cmd = resolve_cmd(argv + optind, argc - optind, name, sizeof(name), &used);
	if (!c->cmd && is_group(name)) {
		if (p.help) {
			print_group_help(stdout, name);
			return exit_status(c, finish_output(c, 0));
		}
		fprintf(stderr, "keel %s: a subcommand is needed\nTry 'keel %s --help'.\n", name,
			name);
		return EXIT_USAGE;
	}
	if (!c->cmd && used > 1) {
		name[strlen(name) - strlen(argv[optind + used - 1]) - 1] = '\0';
		fprintf(stderr, "keel %s: unknown subcommand '%s'\nTry 'keel %s --help'.\n", name,
			argv[optind + used - 1], name);
		return EXIT_USAGE;
	}
	if (!c->cmd)
		return exit_status(c, usage_error(c, "unknown command '%s'", argv[optind]));
	if (p.help) {
		print_cmd_help(stdout, c->cmd);
		return exit_status(c, finish_output(c, 0));
	}
	c->args = argv + optind + used;
	c->nargs = argc - optind - used;
	rc = check_command_line(c, &p);
	if (rc == 0)
		rc = run_command(c);
	return exit_status(c, finish_output(c, rc));
}
