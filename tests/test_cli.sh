#!/bin/bash
# test_cli.sh - the keel CLI, run for real: every command's exit statuses,
# bad input, and the export/import round trip, including binary keys and
# values, timers in every state, version 1 dumps, damaged dumps (timer
# records too) and a power loss under a working process; the timer
# commands: every due-time form against date(1), bad input that must change
# nothing, claim/ack/extend/release by token, --ack, a waiting claim that
# must not return early, dead letters, and timers across a power loss.
#
#   test_cli.sh KEEL CLI_WORKER [SEED]
#
# KEEL is the keel program, CLI_WORKER the helper built from cli_worker.c
# (attached processes, bulk fills, order-independent store digests, an
# independent dump parser).  SEED picks the filled data; it is printed, and
# passing it again reproduces the run.  Every store lives under a fresh
# temporary directory and is destroyed (arena included) at the end.
# Exit 0 pass, 1 fail, 77 skip.
set -u

KEEL=${1:?usage: test_cli.sh KEEL CLI_WORKER [SEED]}
WORKER=${2:?usage: test_cli.sh KEEL CLI_WORKER [SEED]}
SEED=${3:-$(( $(date +%s%N) % 1000000 ))}
echo "test_cli: seed $SEED (rerun: $0 $KEEL $WORKER $SEED)"

[ -x "$KEEL" ] && [ -x "$WORKER" ] || { echo "test_cli: programs missing"; exit 77; }
KEEL=$(realpath "$KEEL")
WORKER=$(realpath "$WORKER")
[ -d /dev/shm ] && [ -w /dev/shm ] || { echo "test_cli: no writable /dev/shm"; exit 77; }
HAVE_PY=0
command -v python3 >/dev/null 2>&1 && HAVE_PY=1

T=$(mktemp -d /tmp/keel-cli-test.XXXXXX) || exit 1
STORES=()
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for s in "${STORES[@]}"; do "$KEEL" destroy --force "$s" >/dev/null 2>&1; done
	rm -rf "$T"
}
trap cleanup EXIT

FAILS=0
CHECKS=0
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}
# ok COND-DESCRIPTION: count a check that passed (for the summary).
ok() { CHECKS=$((CHECKS + 1)); }

# expect STATUS CMD...: run CMD with stdout in $T/out and stderr in $T/err.
expect() {
	local want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	local got=$?
	if [ "$got" -ne "$want" ]; then
		fail "exit $got, expected $want: $*"
		sed 's/^/    stderr: /' "$T/err" | head -5
		sed 's/^/    stdout: /' "$T/out" | head -3
		return 1
	fi
	ok
	return 0
}
# has FILE TEXT: FILE must contain TEXT.
has() {
	if grep -qF -- "$2" "$1"; then ok; else
		fail "$(basename "$1") lacks '$2'"
		sed 's/^/    | /' "$1" | head -5
	fi
}
# same A B WHAT
same() {
	if [ "$1" == "$2" ]; then ok; else fail "$3: '$1' != '$2'"; fi
}
# json FILE EXPR EXPECTED: python expression over j (the parsed FILE).
json() {
	[ "$HAVE_PY" = 1 ] || return 0
	local got
	got=$(python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1" 2>&1)
	same "$got" "$3" "json $2"
}
# newstore VAR NAME: a store path under $T, destroyed at the end.
newstore() {
	printf -v "$1" '%s' "$T/$2"
	STORES+=("$T/$2")
}
arena_of() { "$KEEL" stat --json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["arena_path"])'; }
wait_lines() { # FILE N: wait up to 10 s for FILE to have N lines
	for _ in $(seq 200); do
		[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# ---- help -------------------------------------------------------------------------------
echo "== help"
expect 0 "$KEEL" --help
for cmd in exists clear export import verify destroy crash; do
	has "$T/out" "    $cmd "
done
for cmd in exists clear export import verify destroy crash; do
	expect 0 "$KEEL" "$cmd" --help
	for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES; do
		has "$T/out" "$section"
	done
done
expect 0 "$KEEL" help export
has "$T/out" "KEELDUMP"
has "$T/out" "XXH3-64"

# ---- exists and clear ----------------------------------------------------------------
echo "== exists, clear"
newstore A a
expect 0 "$KEEL" put "$A" users alice 1
expect 0 "$KEEL" put "$A" users bob 2
expect 0 "$KEEL" exists "$A" users
same "$(cat "$T/out")" "yes" "exists output"
expect 1 "$KEEL" exists "$A" nobody
same "$(cat "$T/out")" "no" "exists output"
expect 0 "$KEEL" exists --json "$A" users
json "$T/out" "j['exists'], j['keys'], j['partition']" "True 2 users"
expect 1 "$KEEL" exists --json "$A" nobody
json "$T/out" "j['exists']" "False"
expect 5 "$KEEL" exists "$T/no-such-store" users
expect 9 "$KEEL" exists "$A" 'bad name!'
expect 2 "$KEEL" exists "$A"
expect 2 "$KEEL" exists --force "$A" users
expect 0 "$KEEL" clear "$A" users
same "$(cat "$T/out")" "2" "clear count"
expect 0 "$KEEL" count "$A" users
same "$(cat "$T/out")" "0" "count after clear"
expect 0 "$KEEL" exists "$A" users        # a cleared partition still exists
expect 0 "$KEEL" clear --json "$A" users
json "$T/out" "j['removed']" "0"
expect 1 "$KEEL" clear "$A" nobody
has "$T/err" "partition 'nobody' not found"
expect 1 "$KEEL" exists "$A" nobody       # clear did not create it
expect 5 "$KEEL" clear "$T/no-such-store" users
expect 9 "$KEEL" clear "$A" ''

# ---- export and import -----------------------------------------------------------------
# dparse DUMP: the dump parsed by an independent reader of the layout in
# `keel export --help` (python; XXH3 from libxxhash through ctypes), as JSON
# in $T/parsed.json: the header, and every record with its byte offsets.
cat >"$T/dumpparse.py" <<'PY'
import ctypes, ctypes.util, json, sys
def xxh3(b):
    for name in ("libxxhash.so.0", ctypes.util.find_library("xxhash")):
        try:
            lib = ctypes.CDLL(name)
        except (OSError, TypeError):
            continue
        lib.XXH3_64bits.restype = ctypes.c_uint64
        lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        return lib.XXH3_64bits(b, len(b))
    return None
d = open(sys.argv[1], "rb").read()
at = 0
def take(n):
    global at
    if len(d) - at < n:
        sys.exit("truncated at %d" % at)
    at += n
    return d[at - n:at]
def u(n):
    return int.from_bytes(take(n), "little")
if take(8) != b"KEELDUMP":
    sys.exit("bad magic")
out = {"version": u(4), "flags": u(4), "created_ns": u(8), "lsn": u(8), "records": []}
if out["version"] not in (1, 2):
    sys.exit("version %d" % out["version"])
while True:
    off = at
    t = take(1)
    if t == b"E":
        break
    if t not in (b"P", b"K", b"T") or (t == b"T" and out["version"] < 2):
        sys.exit("record type %r at %d" % (t, off))
    r = {"type": t.decode(), "off": off, "part": take(u(2)).decode()}
    if t == b"K":
        r["key"] = take(u(4)).hex()
        r["value"] = take(u(4)).hex()
        r["version"], r["mtime_ns"] = u(8), u(8)
    elif t == b"T":
        r["key"] = take(u(4)).hex()
        r["payload"] = take(u(4)).hex()
        r["due_ms"], r["state"], r["deliveries"] = u(8), u(1), u(4)
    r["end"] = at
    out["records"].append(r)
if u(8) != len(out["records"]):
    sys.exit("trailer count does not match")
want, got = xxh3(d[:at]), u(8)
if want is not None and want != got:
    sys.exit("checksum mismatch")
out["checksum_checked"] = want is not None
if at != len(d):
    sys.exit("%d bytes after the trailer" % (len(d) - at))
json.dump(out, sys.stdout)
PY
dparse() {
	[ "$HAVE_PY" = 1 ] || return 0
	python3 "$T/dumpparse.py" "$1" >"$T/parsed.json" 2>"$T/parse.err" && ok ||
		fail "dump $1 does not parse by the documented layout: $(cat "$T/parse.err")"
}
# tnorm STORE [full]: the store's timers, one sorted line each: partition, key
# (hex), due_ms, payload (hex) (and state, deliveries with "full").
tnorm() {
	[ "$HAVE_PY" = 1 ] || return 0
	"$KEEL" timer ls --json "$1" | python3 -c 'import json,sys
for t in sorted(json.load(sys.stdin)["timers"], key=lambda t: (t["partition"], t["key_hex"])):
    print(t["partition"], t["key_hex"], t["due_ms"], t["payload_hex"],
          *((t["state"], t["deliveries"]) if sys.argv[1:] == ["full"] else ()))' ${2:+"$2"}
}
# same_timers A B WHAT [PARTITION-REGEX]: store B holds the timers of A (of
# the partitions that match, when a regex is given), and no others.
same_timers() {
	[ "$HAVE_PY" = 1 ] || return 0
	tnorm "$1" | grep -E "^(${4:-.*}) " >"$T/tn.a"
	tnorm "$2" >"$T/tn.b"
	if [ -s "$T/tn.a" ] && cmp -s "$T/tn.a" "$T/tn.b"; then ok; else
		fail "$3: the timers differ ($(wc -l <"$T/tn.a") against $(wc -l <"$T/tn.b"))"
		diff "$T/tn.a" "$T/tn.b" | cut -c1-120 | head -6
	fi
}
hexrand() { # N SEED: N pseudo-random bytes, in hex
	awk -v n="$1" -v s="$2" 'BEGIN { srand(s); for (i = 0; i < n; i++) printf "%02x", int(rand() * 256) }'
}

echo "== export, import: round trip"
newstore S src
expect 0 "$WORKER" fill "$S" bulk 3000 300 "$SEED"
expect 0 "$WORKER" fill "$S" large 4 1048576 "$((SEED + 1))"   # values up to 1 MiB
expect 0 "$KEEL" --hex put "$S" bin 00 ''                          # NUL key, empty value
expect 0 "$KEEL" --hex put "$S" bin 0a000a 000a0d0a00              # newlines and NULs
expect 0 "$KEEL" --hex put "$S" bin ff00ff \
	"$(awk -v s="$SEED" 'BEGIN { srand(s); for (i = 0; i < 3000; i++) printf "%02x", int(rand() * 256) }')"
printf 'line 1\nline 2\n\0tail' | "$KEEL" put "$S" text 'key with spaces' - >/dev/null || fail "put from stdin"
expect 0 "$KEEL" put "$S" text plain 'héllo'
expect 0 "$KEEL" put "$S" empty gone x
expect 0 "$KEEL" clear "$S" empty
# Timers: binary keys and payloads, the largest key and payload, the first
# and the last due time, a timer named like a key, a partition with timers only.
expect 0 "$KEEL" --hex timer set "$S" bin 000a00 0 00ff0a00
expect 0 "$KEEL" timer set "$S" text 'key with spaces' 2030-01-01T00:00:00Z      # empty payload
expect 0 "$KEEL" timer set "$S" text plain +1d 'a timer named like a key'
hexrand 65536 "$((SEED + 2))" |
	"$KEEL" --hex timer set "$S" tonly "$(hexrand 512 "$((SEED + 3))")" 253402300799999 - >/dev/null ||
	fail "timer set of the largest key and payload"
expect 0 "$KEEL" timer set "$S" tonly soon +1h 'next step'
ntimers=5
"$WORKER" digest "$S" >"$T/digest.src" || fail "digest of the source"
"$KEEL" ls "$S" >"$T/ls.src"

expect 0 "$KEEL" export "$S" -o "$T/all.dump"
has "$T/err" "5 partitions"
has "$T/err" "$ntimers timers"
nkeys=$(awk '/^bulk|^large|^bin|^text|^empty/ {n += $2} END {print n}' "$T/digest.src")
dparse "$T/all.dump"
json "$T/parsed.json" "j['version'], j['flags'], j['checksum_checked'], [sum(r['type'] == x for r in j['records']) for x in 'PKT']" \
	"2 1 True [5, $nkeys, $ntimers]"
# Every 'T' record after the last 'K', and holding exactly what the source lists.
json "$T/parsed.json" "max(i for i, r in enumerate(j['records']) if r['type'] == 'K') < min(i for i, r in enumerate(j['records']) if r['type'] == 'T')" "True"
if [ "$HAVE_PY" = 1 ]; then
	python3 -c 'import json,sys
st = {1: "pending", 2: "dead"}
for r in sorted((r for r in json.load(open(sys.argv[1]))["records"] if r["type"] == "T"), key=lambda r: (r["part"], r["key"])):
    print(r["part"], r["key"], r["due_ms"], r["payload"], st.get(r["state"], r["state"]), r["deliveries"])' "$T/parsed.json" >"$T/tn.dump"
	tnorm "$S" full >"$T/tn.src"
	cmp -s "$T/tn.dump" "$T/tn.src" && ok || { fail "the dump's timers differ from the source's"; diff "$T/tn.src" "$T/tn.dump" | cut -c1-120 | head -4; }
	same "$(grep -c . "$T/tn.src")" "$ntimers" "timers listed in the source"
fi
same "$(head -c 8 "$T/all.dump")" "KEELDUMP" "magic"
ls "$T"/all.dump.tmp-* >/dev/null 2>&1 && fail "export left a temporary file" || ok

newstore D1 dst1
expect 0 "$KEEL" import "$D1" -i "$T/all.dump"
has "$T/out" "imported $nkeys keys into 5 partitions, and $ntimers timers"
"$WORKER" digest "$D1" >"$T/digest.d1"
if cmp -s "$T/digest.src" "$T/digest.d1"; then ok; else
	fail "imported store differs from the source"
	diff "$T/digest.src" "$T/digest.d1" | head
fi
"$KEEL" ls "$D1" >"$T/ls.d1"
if cmp -s "$T/ls.src" "$T/ls.d1"; then ok; else fail "partition lists differ"; diff "$T/ls.src" "$T/ls.d1"; fi
expect 0 "$KEEL" exists "$D1" empty
expect 1 "$KEEL" exists "$D1" tonly                 # timers only: no partition is made
same_timers "$S" "$D1" "timers after import"
expect 0 "$KEEL" --hex get "$D1" bin 0a000a
same "$(cat "$T/out")" "000a0d0a00" "binary value after import"
expect 0 "$KEEL" --hex get "$D1" bin 00
same "$(cat "$T/out")" "" "empty value after import"
"$KEEL" get "$D1" text 'key with spaces' | od -An -c | tr -s ' ' >"$T/v1"
printf 'line 1\nline 2\n\0tail' | od -An -c | tr -s ' ' >"$T/v2"
cmp -s "$T/v1" "$T/v2" && ok || fail "text value with NUL after import"
expect 0 "$KEEL" verify "$D1"

echo "== export, import: pipes, subsets, JSON"
newstore D2 dst2
"$KEEL" export "$S" 2>/dev/null | "$KEEL" import --quiet "$D2" >"$T/out" 2>"$T/err"
same "$?" 0 "export | import"
[ -s "$T/err" ] && fail "--quiet import printed: $(head -2 "$T/err")" || ok
"$WORKER" digest "$D2" | cmp -s - "$T/digest.src" && ok || fail "piped import differs"
same_timers "$S" "$D2" "timers after a piped import"

newstore D3 dst3
expect 0 "$KEEL" export --json "$S" bin text -o "$T/sub.dump"
json "$T/out" "j['partitions'], j['keys'], j['timers'], j['consistent'], j['records']" "2 5 3 True 10"
expect 0 "$KEEL" import --json "$D3" -i "$T/sub.dump"
json "$T/out" "j['keys'], j['partitions'], j['timers'], j['checked_before_applying']" "5 2 3 True"
expect 0 "$KEEL" ls "$D3"
same "$(cut -f1 "$T/out" | tr '\n' ' ')" "bin text " "partitions of a subset import"
same_timers "$S" "$D3" "timers of a subset import" "bin|text"
newstore D5 dst5                                    # a partition with timers only, by name
expect 0 "$KEEL" export --json "$S" tonly -o "$T/tonly.dump"
json "$T/out" "j['partitions'], j['keys'], j['timers']" "0 0 2"
expect 0 "$KEEL" import --quiet "$D5" -i "$T/tonly.dump"
expect 1 "$KEEL" exists "$D5" tonly
same_timers "$S" "$D5" "timers of a timer-only partition" "tonly"

expect 1 "$KEEL" export "$S" bin nosuch -o "$T/none.dump"
has "$T/err" "partition 'nosuch' not found"
[ -e "$T/none.dump" ] && fail "export of a missing partition left a file" || ok
expect 2 "$KEEL" export "$S" bin bin -o "$T/none.dump"
expect 2 "$KEEL" export "$S" tonly tonly -o "$T/none.dump"
expect 2 "$KEEL" export --json "$S"
expect 2 "$KEEL" export "$S" -o
expect 3 "$KEEL" export "$S" -o "$T/no/such/dir/x.dump"
expect 5 "$KEEL" export "$T/no-such-store" -o "$T/none.dump"

expect 0 "$KEEL" import --dry-run "$T/never" -i "$T/all.dump"
has "$T/out" "a valid dump: $nkeys keys in 5 partitions, $ntimers timers (0 dead-lettered)"
[ -e "$T/never" ] && fail "--dry-run created the store" || ok
expect 0 "$KEEL" import --dry-run --json "$T/never" -i "$T/all.dump"
json "$T/out" "j['valid'], j['keys'], j['timers'], j['format']" "True $nkeys $ntimers 2"

echo "== export: one snapshot while a process commits"
# Each commit sets ta/x = i and tb/x = -i together: an export from one
# snapshot holds a pair that sums to 0.
newstore TR transfer
"$WORKER" transfer "$TR" >"$T/transfer.out" 2>&1 &
TP=$!
PIDS+=("$TP")
wait_lines "$T/transfer.out" 1 || fail "transfer worker did not start"
for round in 1 2 3 4 5; do
	newstore TI "transfer-import-$round"
	expect 0 "$KEEL" export --json "$TR" -o "$T/transfer.dump" || continue
	json "$T/out" "j['consistent'], j['partitions']" "True 2"
	expect 0 "$KEEL" import --quiet "$TI" -i "$T/transfer.dump"
	a=$("$KEEL" get "$TI" ta x)
	b=$("$KEEL" get "$TI" tb x)
	same "$((a + b))" 0 "ta/x + tb/x in export $round ($a, $b)"
	sleep 0.05
done
kill -9 "$TP" 2>/dev/null
wait "$TP" 2>/dev/null
kill -0 "$TP" 2>/dev/null || ok

echo "== import: progress"
newstore D4 dst4
expect 0 "$KEEL" import "$D4" -i "$T/all.dump"     # over 1 MiB: progress by tenths
has "$T/err" "% ("
"$WORKER" digest "$D4" | cmp -s - "$T/digest.src" && ok || fail "re-import differs"
# Importing again into a store that holds the same keys changes nothing but versions.
expect 0 "$KEEL" import --quiet "$D4" -i "$T/all.dump"
[ -s "$T/err" ] && fail "--quiet printed progress" || ok
"$WORKER" digest "$D4" | cmp -s - "$T/digest.src" && ok || fail "import over the same keys differs"
same_timers "$S" "$D4" "timers imported twice"

echo "== import: damaged and foreign input"
size=$(stat -c %s "$T/all.dump")
newstore N1 never1
printf 'this is not a dump, not even close' >"$T/bad.magic"
expect 19 "$KEEL" import "$N1" -i "$T/bad.magic"
has "$T/err" 'the magic is not "KEELDUMP"'
has "$T/err" "Nothing was imported."
: >"$T/bad.empty"
expect 19 "$KEEL" import "$N1" -i "$T/bad.empty"
has "$T/err" "the input is empty"
cp "$T/all.dump" "$T/bad.version"
printf '\x03' | dd of="$T/bad.version" bs=1 seek=8 conv=notrunc 2>/dev/null
expect 19 "$KEEL" import "$N1" -i "$T/bad.version"
has "$T/err" "format version 3; this keel reads versions 1 to 2"
printf '\x00' | dd of="$T/bad.version" bs=1 seek=8 conv=notrunc 2>/dev/null
expect 19 "$KEEL" import "$N1" -i "$T/bad.version"
has "$T/err" "format version 0"
head -c $((size / 2)) "$T/all.dump" >"$T/bad.trunc"
expect 19 "$KEEL" import "$N1" -i "$T/bad.trunc"
has "$T/err" "truncated"
cp "$T/all.dump" "$T/bad.sum"                     # flip a bit of the stored checksum
last=$(od -An -tu1 -j $((size - 1)) -N 1 "$T/bad.sum" | tr -d ' ')
printf "\\x$(printf %02x $((last ^ 1)))" | dd of="$T/bad.sum" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
expect 19 "$KEEL" import "$N1" -i "$T/bad.sum"
has "$T/err" "checksum mismatch"
cp "$T/all.dump" "$T/bad.tail"; printf 'x' >>"$T/bad.tail"
expect 19 "$KEEL" import "$N1" -i "$T/bad.tail"
has "$T/err" "data after the trailer"
[ -e "$N1" ] && fail "a bad regular file created the store" || ok

# A value byte changed: caught by the checksum alone (the structure still parses).
newstore V val
expect 0 "$KEEL" put "$V" p k "$(head -c 2000 /dev/zero | tr '\0' a)"
expect 0 "$KEEL" export "$V" -o "$T/val.dump"
vsize=$(stat -c %s "$T/val.dump")
printf 'b' | dd of="$T/val.dump" bs=1 seek=$((vsize - 17 - 16 - 1000)) conv=notrunc 2>/dev/null
expect 19 "$KEEL" import "$A" -i "$T/val.dump"
has "$T/err" "checksum mismatch"
expect 1 "$KEEL" exists "$A" p                       # nothing applied to an existing store

# From a pipe, batches before the damage are applied, and reported.
newstore P1 pipe1
cat "$T/bad.sum" | "$KEEL" import "$P1" >"$T/out" 2>"$T/err"
same "$?" 19 "damaged pipe import status"
has "$T/err" "checksum mismatch"
has "$T/err" "not a regular file"
reported=$(sed -n 's/^  \([0-9]*\) keys and \([0-9]*\) timers in \([0-9]*\) commits were imported.*/\1 \2/p' "$T/err")
held=$("$WORKER" digest "$P1" | awk '{n += $2} END {print n + 0}')
held_timers=$("$KEEL" timer ls "$P1" | grep -c .)
same "$held $held_timers" "${reported:-none}" "keys and timers held after a damaged pipe import"
# The batch the damage was found in is never applied.  Which records it
# held depends on the value sizes (so on the seed): with some seeds every
# key was in an earlier batch and only timers were left; count both.
read -r rkeys rtimers <<<"${reported:-0 0}"
applied=$((rkeys + rtimers))
[ "${applied:-0}" -gt 0 ] && [ "${applied:-0}" -lt $((nkeys + ntimers)) ] && ok ||
	fail "expected some but not all records applied from the damaged pipe, got ${reported:-none} (keys timers) of $nkeys $ntimers"
printf 'JUNKJUNKJUNK' | "$KEEL" import "$P1" >/dev/null 2>"$T/err"
same "$?" 19 "foreign pipe import status"
has "$T/err" "Nothing was imported."
# Randomly damaged small dumps (bytes changed, or cut short): a clean refusal
# (19) or, when the change happens to keep it valid, success; never a crash.
RANDOM=$SEED
expect 0 "$KEEL" export --quiet "$D3" -o "$T/small.dump"
ssize=$(stat -c %s "$T/small.dump")
for i in $(seq 60); do
	cp "$T/small.dump" "$T/mut.dump"
	if [ $((i % 4)) = 0 ]; then
		head -c $((RANDOM % ssize)) "$T/small.dump" >"$T/mut.dump"
	else
		for j in 1 2; do
			printf "\\x$(printf %02x $((RANDOM % 256)))" |
				dd of="$T/mut.dump" bs=1 seek=$((RANDOM % ssize)) conv=notrunc 2>/dev/null
		done
	fi
	if [ $((i % 3)) = 0 ]; then
		newstore MU "mutated-$i"
		cat "$T/mut.dump" | "$KEEL" import --quiet "$MU" >/dev/null 2>"$T/err"   # a pipe
	else
		"$KEEL" import --dry-run "$T/never" -i "$T/mut.dump" >/dev/null 2>"$T/err"
	fi
	rc=$?
	if [ "$rc" = 0 ] || [ "$rc" = 19 ]; then ok; else
		fail "damaged dump $i: exit $rc"
		head -3 "$T/err"
		cp "$T/mut.dump" "/tmp/keel-cli-mutated-$SEED-$i.dump"
	fi
done
expect 2 "$KEEL" import "$P1" extra -i "$T/all.dump"
expect 3 "$KEEL" import "$P1" -i "$T/no-such-file"

echo "== export, import: timer states"
# A dead-lettered timer and a claimed one.  Each claimer (a keel process)
# exits at once; the export's read-only handle re-arms no lost claim, so the
# last claim is still listed as claimed there.
newstore TS tstates
expect 0 "$KEEL" put "$TS" d state 1
expect 0 "$KEEL" timer set "$TS" d z now zz
for i in $(seq 1 10); do
	"$KEEL" timer claim --timeout 5s "$TS" d >/dev/null 2>"$T/err" || { fail "claim $i: $(cat "$T/err")"; break; }
done
expect 1 "$KEEL" timer claim --timeout 300ms "$TS" d     # the 11th: dead-lettered instead
expect 0 "$KEEL" timer set "$TS" c held now 'payload of c'
expect 0 "$KEEL" timer claim --lease 1h "$TS" c
expect 0 "$KEEL" export --json "$TS" -o "$T/ts.dump"
json "$T/out" "j['keys'], j['timers'], j['timers_dead'], j['timers_claimed']" "1 2 1 1"
dparse "$T/ts.dump"
json "$T/parsed.json" "[(r['part'], bytes.fromhex(r['key']).decode(), r['state'], r['deliveries']) for r in j['records'] if r['type'] == 'T']" \
	"[('c', 'held', 1, 1), ('d', 'z', 2, 10)]"
newstore TS2 tstates2
expect 0 "$KEEL" import "$TS2" -i "$T/ts.dump"
has "$T/out" "imported 1 keys into 1 partitions, and 2 timers"
same_timers "$TS" "$TS2" "timers of every state after import"
expect 0 "$KEEL" timer ls --json "$TS2"
# As they were: the dead letter stays dead with its count; the claimed one is
# pending (claims are not durable) and keeps its count.
json "$T/out" "[(t['partition'], t['state'], t['deliveries']) for t in j['timers']]" "[('c', 'pending', 1), ('d', 'dead', 10)]"
newstore TS3 tstates3
expect 0 "$KEEL" import --quiet --json "$TS3" -i "$T/ts.dump"
json "$T/out" "j['timers'], j['timers_dead'], j['timers_with_deliveries']" "2 1 2"

echo "== import: timers in batches, from an independent writer"
# A dump written here from the documented layout, not by keel: 2500 timers
# of 40 partitions with binary keys and payloads (three batches of 1000
# records), then two more records of timer p0/k0: the last one wins.
if [ "$HAVE_PY" = 1 ] && python3 -c 'import ctypes; ctypes.CDLL("libxxhash.so.0")' 2>/dev/null; then
	python3 - "$SEED" "$T/gen.dump" "$T/gen.want" <<'PY'
import ctypes, random, sys
lib = ctypes.CDLL("libxxhash.so.0")
lib.XXH3_64bits.restype = ctypes.c_uint64
lib.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
rnd = random.Random(int(sys.argv[1]))
le = lambda v, n: v.to_bytes(n, "little")
want, recs = {}, []
def timer(part, key, payload, due):
    recs.append(b"T" + le(len(part), 2) + part.encode() + le(len(key), 4) + key +
                le(len(payload), 4) + payload + le(due, 8) + le(1, 1) + le(0, 4))
    want[(part, key.hex())] = "%s %s %d %s" % (part, key.hex(), due, payload.hex())
for i in range(2500):
    timer("p%d" % (i % 40), b"k%d\0\n" % i, bytes(rnd.randrange(256) for _ in range(rnd.randrange(40))),
          rnd.randrange(1, 253402300799999))
timer("p0", b"k0\0\n", b"first", 5)
timer("p0", b"k0\0\n", b"last", 6)
body = b"KEELDUMP" + le(2, 4) + le(0, 4) + le(0, 8) + le(0, 8) + b"".join(recs) + b"E" + le(len(recs), 8)
open(sys.argv[2], "wb").write(body + le(lib.XXH3_64bits(body, len(body)), 8))
open(sys.argv[3], "w").write("".join(want[k] + "\n" for k in sorted(want)))
PY
	newstore GW genwriter
	expect 0 "$KEEL" import --json "$GW" -i "$T/gen.dump"
	json "$T/out" "j['timers'], j['commits'], j['keys'], j['consistent']" "2502 3 0 False"
	tnorm "$GW" >"$T/tn.gw"
	if cmp -s "$T/tn.gw" "$T/gen.want"; then ok; else
		fail "timers from an independent writer differ ($(wc -l <"$T/gen.want") written, $(wc -l <"$T/tn.gw") held)"
		diff "$T/gen.want" "$T/tn.gw" | head -4
	fi
	grep -q "^p0 6b30000a 6 6c617374\$" "$T/tn.gw" && ok || fail "the last record of a timer did not win"
else
	echo "test_cli: no python3 with libxxhash: the independent-writer import is skipped"
fi

echo "== import: a version 1 dump"
# Written by the version 1 exporter (before timers): partition users with
# alice = {"age": 31}, the binary key 00 0a 41 = 00 ff 0a and empty = "";
# orders with o-1 = "two words"; and empty, with no keys.
V1HEX=4b45454c44554d500100000001000000bfb91bf9f662ea1806000000000000005005007573657273
V1HEX+=4b0500757365727305000000616c6963650b0000007b22616765223a2033317d0100000000000000
V1HEX+=c537a1f7f662ea184b0500757365727305000000656d707479000000000100000000000000a4dd2a
V1HEX+=f8f662ea184b0500757365727303000000000a410300000000ff0a010000000000000051a3ebf7f6
V1HEX+=62ea185006006f72646572734b06006f7264657273030000006f2d310900000074776f20776f7264
V1HEX+=73010000000000000052a765f8f662ea18500500656d7074794507000000000000002055cf1c2c74
V1HEX+=34bc
# shellcheck disable=SC2059  # the format is nothing but \xNN escapes
printf "$(printf '%s' "$V1HEX" | sed 's/../\\x&/g')" >"$T/v1.dump"
same "$(stat -c %s "$T/v1.dump")" 242 "size of the version 1 fixture"
expect 0 "$WORKER" dumpcheck "$T/v1.dump"           # cli_worker's version 1 reader takes it
same "$(cat "$T/out")" "records 7 partitions 3 keys 4" "dumpcheck of the version 1 fixture"
expect 0 "$KEEL" import --dry-run --json "$T/never" -i "$T/v1.dump"
json "$T/out" "j['format'], j['keys'], j['partitions'], j['timers']" "1 4 3 0"
newstore O1 old1
expect 0 "$KEEL" put "$O1" users bob 2
expect 0 "$KEEL" timer set "$O1" users keep +1h kept
expect 0 "$KEEL" import "$O1" -i "$T/v1.dump"
has "$T/out" "imported 4 keys into 3 partitions, and 0 timers"
expect 0 "$KEEL" ls "$O1"
same "$(tr '\t\n' ': ' <"$T/out")" "users:4 orders:1 empty:0 " "partitions after a version 1 import"
expect 0 "$KEEL" get "$O1" users alice
same "$(cat "$T/out")" '{"age": 31}' "text value of a version 1 dump"
expect 0 "$KEEL" --hex get "$O1" users 000a41
same "$(cat "$T/out")" "00ff0a" "binary key and value of a version 1 dump"
expect 0 "$KEEL" get "$O1" orders o-1
same "$(cat "$T/out")" "two words" "value of a version 1 dump"
expect 0 "$KEEL" timer ls "$O1"
grep -qP '^users\tkeep\tpending\t' "$T/out" && ok || fail "a version 1 import touched the timers: $(cat "$T/out")"
cat "$T/v1.dump" | "$KEEL" import --quiet "$O1" >/dev/null 2>"$T/err"
same "$?" 0 "version 1 dump from a pipe"
# A 'T' record is not version 1: a version 2 dump relabelled 1 is refused at
# its first timer record (ts.dump: 'P' at 32, 'K' at 36, the first 'T' at 70).
cp "$T/ts.dump" "$T/v1.timers"
printf '\x01' | dd of="$T/v1.timers" bs=1 seek=8 conv=notrunc 2>/dev/null
expect 19 "$KEEL" import "$O1" -i "$T/v1.timers"
has "$T/err" "a timer record in a version 1 dump"
cp "$T/err" "$T/err.v1"
dparse "$T/ts.dump"
json "$T/parsed.json" "[r['off'] for r in j['records']]" "[32, 36, 70, 111]"
mv "$T/err.v1" "$T/err"
has "$T/err" "(byte offset 70, after 2 records)"
has "$T/err" "Nothing was imported."
expect 1 "$KEEL" exists "$O1" d

echo "== import: damaged timer records"
# Each damage to ts.dump's first timer record (c/held, 'T' at byte 70) is
# refused, naming the byte offset, and changes nothing in the store it was
# meant for, a regular file or a pipe; a new store is not even created.
newstore N2 never2
newstore TG target
expect 0 "$KEEL" put "$TG" d state 0
expect 0 "$KEEL" timer set "$TG" c held +2h 'already here'
"$WORKER" digest "$TG" >"$T/digest.tg"
tnorm "$TG" full >"$T/tn.tg"
timer_off=70
klen_off=$((timer_off + 1 + 2 + 1))                  # after 'T', the name length and "c"
pay_off=$((klen_off + 4 + 4 + 4))                   # after the key length, "held", the payload length
due_off=$((pay_off + 12))                           # after "payload of c"
state_off=$((due_off + 8))
damaged() { # NAME OFFSET HEX: ts.dump with the bytes at OFFSET replaced, as $T/NAME
	cp "$T/ts.dump" "$T/$1"
	# shellcheck disable=SC2059
	printf "$(printf '%s' "$3" | sed 's/../\\x&/g')" | dd of="$T/$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
unchanged() { # WHAT: the target store is as it was
	"$WORKER" digest "$TG" | cmp -s - "$T/digest.tg" && ok || fail "$1 changed the keys of the store"
	if [ "$HAVE_PY" = 1 ]; then
		tnorm "$TG" full | cmp -s - "$T/tn.tg" && ok || fail "$1 changed the timers of the store"
	fi
}
json "$T/parsed.json" "(j['records'][2]['type'], j['records'][2]['end'] - j['records'][2]['off'])" "('T', $((state_off + 5 - timer_off)))"
damaged bad.tstate "$state_off" 07
damaged bad.tklen "$klen_off" 00030000              # 768 bytes: over the 512 of a timer key
damaged bad.tklen0 "$klen_off" 00000000
damaged bad.tdue "$due_off" ffffffffffffffff
damaged bad.tpay "$((pay_off + 2))" 58              # a payload byte: only the checksum sees it
head -c $((due_off + 3)) "$T/ts.dump" >"$T/bad.tcut"
for f in bad.tstate bad.tklen bad.tklen0 bad.tdue bad.tpay bad.tcut; do
	expect 19 "$KEEL" import "$TG" -i "$T/$f"
	has "$T/err" "Nothing was imported."
	cp "$T/err" "$T/err.$f"
	unchanged "$f"
	cat "$T/$f" | "$KEEL" import "$TG" >/dev/null 2>"$T/err"
	same "$?" 19 "$f from a pipe"
	has "$T/err" "Nothing was imported."             # the batch it was found in is never committed
	unchanged "$f from a pipe"
	expect 19 "$KEEL" import "$N2" -i "$T/$f"
	[ -e "$N2" ] && fail "$f created the store" || ok
done
has "$T/err.bad.tstate" "the timer record at byte $timer_off has state 7"
has "$T/err.bad.tstate" "(byte offset $state_off, after 2 records)"
has "$T/err.bad.tklen" "the timer record at byte $timer_off has a key of 768 bytes"
has "$T/err.bad.tklen" "(byte offset $klen_off,"
has "$T/err.bad.tklen0" "has a key of 0 bytes"
has "$T/err.bad.tdue" "past the last due time"
has "$T/err.bad.tdue" "(byte offset $due_off,"
has "$T/err.bad.tpay" "checksum mismatch"
has "$T/err.bad.tcut" "the input ends inside a timer record: it is truncated"
has "$T/err.bad.tcut" "(byte offset $((due_off + 3)),"

echo "== export: keys and timers from one snapshot while a process commits"
# cli_worker steps commits, again and again, st/state = i together with timer
# st/next of payload i: a dump from one snapshot holds the two equal.
if "$WORKER" 2>&1 | grep -q 'steps STORE'; then
	newstore SP steps
	"$WORKER" steps "$SP" >"$T/steps.out" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	wait_lines "$T/steps.out" 1 || fail "steps worker did not start"
	for round in 1 2 3 4 5; do
		expect 0 "$KEEL" export --json "$SP" -o "$T/steps.dump" || continue
		json "$T/out" "j['consistent'], j['keys'], j['timers']" "True 1 1"
		dparse "$T/steps.dump"
		json "$T/parsed.json" "[(r['type'], r['part']) for r in j['records']]" "[('P', 'st'), ('K', 'st'), ('T', 'st')]"
		json "$T/parsed.json" "len({r.get('value', r.get('payload')) for r in j['records'] if r['type'] != 'P'})" "1"
		sleep 0.05
	done
	kill -9 "$SPID" 2>/dev/null
	wait "$SPID" 2>/dev/null
else
	echo "test_cli: cli_worker has no 'steps' mode: keys and timers in one snapshot not checked"
fi

# ---- verify -------------------------------------------------------------------------------
echo "== verify"
expect 0 "$KEEL" verify "$S"
has "$T/out" "sound"
expect 0 "$KEEL" verify --json "$S"
json "$T/out" "j['sound'], j['problems'], len(j['reports'])" "True 0 0"
expect 5 "$KEEL" verify "$T/no-such-store"
newstore DMG damaged
expect 0 "$KEEL" put "$DMG" hurt k v
expect 0 "$KEEL" put "$DMG" fine k v
expect 0 "$WORKER" damage "$DMG" hurt
expect 1 "$KEEL" verify "$DMG"
has "$T/out" "applying marker"
has "$T/out" "found"
expect 1 "$KEEL" verify --json "$DMG"
json "$T/out" "j['sound'], j['problems'] == len(j['reports']) > 0, any('applying marker' in r['what'] for r in j['reports'])" "False True True"
# A process killed in the middle of a commit holds its partition's lock:
# verify reports the repair still to do; verify --repair does it first.
newstore VR verifyrepair
expect 0 "$KEEL" put "$VR" orders o1 new
KEEL_CRASH_AT=commit.complete "$KEEL" put "$VR" orders o1 paid >/dev/null 2>&1
st=$?
[ "$st" -ge 128 ] && ok || fail "keel put with KEEL_CRASH_AT=commit.complete exited $st, not by a signal"
expect 1 "$KEEL" verify "$VR"
has "$T/out" "held by dead process"
has "$T/out" "verify --repair"
expect 0 "$KEEL" verify --repair "$VR"
has "$T/out" "sound"
expect 0 "$KEEL" verify "$VR"
expect 0 "$KEEL" get "$VR" orders o1
has "$T/out" "paid"

# ---- destroy --------------------------------------------------------------------------------
echo "== destroy"
newstore X1 destroy1
expect 0 "$KEEL" put "$X1" p k v
expect 0 "$KEEL" checkpoint "$X1"
arena=$(arena_of "$X1")
[ -e "$arena" ] && ok || fail "no arena at $arena"
echo notes >"$X1/notes.txt"
expect 27 "$KEEL" destroy "$X1"
has "$T/err" "notes.txt"
[ -e "$arena" ] && [ -e "$X1/keel.id" ] && ok || fail "a refused destroy removed something"
rm "$X1/notes.txt"
"$WORKER" hold "$X1" >"$T/hold.out" 2>&1 &
HP=$!
PIDS+=("$HP")
wait_lines "$T/hold.out" 1 || fail "holder did not start"
expect 24 "$KEEL" destroy "$X1"
[ -e "$arena" ] && [ -d "$X1/journal" ] && ok || fail "destroy under an attached process removed something"
echo notes >"$X1/notes.txt"
expect 0 "$KEEL" destroy --force "$X1"
has "$T/out" "kept the directory"
[ -e "$arena" ] && fail "forced destroy left the arena" || ok
same "$(ls -A "$X1")" "notes.txt" "what a forced destroy keeps"
kill -9 "$HP" 2>/dev/null; wait "$HP" 2>/dev/null
expect 5 "$KEEL" destroy "$X1"                   # only notes.txt left: not a store
rm "$X1/notes.txt"

newstore X2 destroy2
expect 0 "$KEEL" put "$X2" p k v
arena=$(arena_of "$X2")
# What a dead process can leave in the journal directory is Keel's too.
: >"$X2/journal/drop-0000000000000009.tmp"
: >"$X2/journal/spare-99999-1.tmp"
expect 0 "$KEEL" destroy "$X2"
has "$T/out" "destroyed"
[ -e "$X2" ] || [ -e "$arena" ] && fail "destroy left $X2 or $arena" || ok
newstore X3 destroy3
expect 0 "$KEEL" --memory put "$X3" p k v
arena=$(arena_of "$X3")
expect 0 "$KEEL" destroy "$X3"
[ -e "$X3" ] || [ -e "$arena" ] && fail "destroy of a memory store left something" || ok
expect 5 "$KEEL" destroy "$T/no-such-store"
expect 2 "$KEEL" destroy

# ---- timers -----------------------------------------------------------------------------
echo "== timer: help"
expect 0 "$KEEL" timer --help
for sub in set cancel ls claim ack extend release stat "dead ls" "dead requeue" "dead drop"; do
	has "$T/out" "    $sub "
done
# shellcheck disable=SC2086  # "dead ls" is two words on purpose
for sub in set cancel ls claim ack extend release stat "dead ls" "dead requeue" "dead drop"; do
	expect 0 "$KEEL" timer $sub --help
	for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES; do
		has "$T/out" "$section"
	done
done
expect 0 "$KEEL" timer dead --help
has "$T/out" "requeue"
expect 0 "$KEEL" help timer claim
has "$T/out" "CAVEAT"
expect 0 "$KEEL" --help
has "$T/out" "timer claim"
expect 2 "$KEEL" timer
expect 2 "$KEEL" timer bogus "$T/x"
has "$T/err" "unknown subcommand 'bogus'"
expect 2 "$KEEL" timer dead
expect 2 "$KEEL" timer dead bogus "$T/x"

# tl STORE [PARTITION]: `timer ls --json` into $T/tl.json.
tl() { "$KEEL" timer ls --json "$@" >"$T/tl.json" 2>"$T/err" || fail "timer ls $*: $(head -3 "$T/err")"; }
# tfield KEY FIELD: FIELD of timer KEY in $T/tl.json ("absent" when not listed).
tfield() {
	python3 -c 'import json,sys
t=[x for x in json.load(open(sys.argv[1]))["timers"] if x["key_hex"]==sys.argv[2].encode().hex()]
print(t[0][sys.argv[3]] if t else "absent")' "$T/tl.json" "$1" "$2"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
gt() { [[ "$1" =~ ^-?[0-9]+$ ]] && [ "$1" -gt "$2" ]; }   # A > B, A a number
ms_of() { echo $(( $(date -u -d "$1" +%s) * 1000 + ${2:-0} )); }

echo "== timer: bad input changes nothing"
newstore TM timers
for due in '' abc now+1 +5 +5x +-5s 2027-02-29T00:00:00Z 2026-11-22T10:00:00 2026-11-22T24:00:00Z \
	2026-13-01T00:00:00Z 2026-11-22T10:00:00.Z 10000-01-01T00:00:00Z 253402300800000 \
	9999-12-31T23:59:59.999-00:01 1969-12-31T23:59:59Z +99999999999999999d; do
	expect 2 "$KEEL" --memory timer set "$TM" p k "$due" payload
	has "$T/err" "DUE"
done
[ -e "$TM" ] && fail "a refused timer set created the store" || ok
expect 0 "$KEEL" --memory timer set "$TM" p first 1000 one
if [ "$HAVE_PY" = 1 ]; then
	tl "$TM"; cp "$T/tl.json" "$T/tl.before"
	head -c 65537 /dev/zero | tr '\0' x >"$T/big"
	head -c 65536 /dev/zero | tr '\0' y >"$T/full"
	expect 2 "$KEEL" timer set "$TM" p k 'not a time' x
	expect 8 "$KEEL" timer set "$TM" p k now "$(cat "$T/big")"
	has "$T/err" "KEEL_E_VALSIZE"
	expect 8 "$KEEL" timer set "$TM" p k now - <"$T/big"
	expect 8 "$KEEL" timer set "$TM" p k now --payload-file "$T/big"
	expect 3 "$KEEL" timer set "$TM" p k now --payload-file "$T/no-such-file"
	expect 2 "$KEEL" timer set "$TM" p k now x --payload-file "$T/full"
	expect 7 "$KEEL" timer set "$TM" p "$(head -c 513 /dev/zero | tr '\0' k)" now
	expect 9 "$KEEL" timer set "$TM" 'bad name' k now
	expect 2 "$KEEL" --hex timer set "$TM" p 0g now
	expect 2 "$KEEL" timer set "$TM" p k now --state dead         # option of another command
	expect 2 "$KEEL" timer claim "$TM" --lease 0s
	expect 2 "$KEEL" timer claim "$TM" --lease 2d                  # over one day
	expect 2 "$KEEL" timer claim "$TM" --lease 30                  # a unit is needed
	expect 2 "$KEEL" timer claim "$TM" --timeout soon
	expect 2 "$KEEL" timer ack "$TM" p first                       # --token missing
	expect 2 "$KEEL" timer ack "$TM" p first --token 12x
	expect 2 "$KEEL" timer ack "$TM" p first --token 18446744073709551616
	expect 27 "$KEEL" timer ack "$TM" p first --token 1            # not claimed: not held
	expect 27 "$KEEL" timer extend "$TM" p first --token 1
	expect 2 "$KEEL" timer release "$TM" p first --token 1 --due never
	expect 2 "$KEEL" timer dead requeue "$TM" p first --due 2026-02-30T00:00:00Z
	expect 27 "$KEEL" timer dead requeue "$TM" p first              # pending, not dead
	expect 27 "$KEEL" timer dead drop "$TM" p first
	expect 2 "$KEEL" timer ls "$TM" --state sleeping
	tl "$TM"
	cmp -s "$T/tl.before" "$T/tl.json" && ok || fail "bad input changed the timers: $(diff "$T/tl.before" "$T/tl.json" | head -5)"
	expect 0 "$KEEL" timer set "$TM" p full now --payload-file "$T/full"   # exactly the limit
	expect 0 "$KEEL" timer cancel "$TM" p full
fi

echo "== timer: due times"
b=$(now_ms)
expect 0 "$KEEL" timer set "$TM" p rel +5s x
a=$(now_ms)
expect 0 "$KEEL" timer set "$TM" p rel2 +2m x
expect 0 "$KEEL" timer set "$TM" p iso 2030-06-01T12:00:00Z x
expect 0 "$KEEL" timer set "$TM" p frac 2030-06-01T12:00:00.25Z x
expect 0 "$KEEL" timer set "$TM" p sub 2030-06-01t12:00:00.0001z x      # rounds up
expect 0 "$KEEL" timer set "$TM" p off '2030-06-01 14:30:00.5+02:30' x
expect 0 "$KEEL" timer set "$TM" p west 2030-06-01T12:00:00-05:00 x
expect 0 "$KEEL" timer set "$TM" p leap 2028-02-29T23:59:59.999Z x
expect 0 "$KEEL" timer set "$TM" p max 9999-12-31T23:59:59.999Z x
expect 0 "$KEEL" timer set "$TM" p epoch 1795341600000 x
if [ "$HAVE_PY" = 1 ]; then
	tl "$TM" p
	d=$(tfield rel due_ms)
	gt "$d" $((b + 4999)) && ! gt "$d" $((a + 5000)) && ok || fail "+5s gave $d, not within [$((b + 5000)), $((a + 5000))]"
	d=$(tfield rel2 due_ms)
	gt "$d" $((b + 119999)) && ! gt "$d" $(($(now_ms) + 120000)) && ok || fail "+2m gave $d"
	same "$(tfield iso due_ms)" "$(ms_of 2030-06-01T12:00:00Z)" "RFC 3339 Z"
	same "$(tfield iso due)" "2030-06-01T12:00:00.000Z" "due printed back"
	same "$(tfield frac due_ms)" "$(ms_of 2030-06-01T12:00:00Z 250)" "fractional seconds"
	same "$(tfield sub due_ms)" "$(ms_of 2030-06-01T12:00:00Z 1)" "sub-millisecond fraction rounds up"
	same "$(tfield off due_ms)" "$(ms_of 2030-06-01T12:00:00Z 500)" "+02:30 offset"
	same "$(tfield west due_ms)" "$(ms_of 2030-06-01T17:00:00Z)" "-05:00 offset"
	same "$(tfield leap due_ms)" "$(ms_of 2028-02-29T23:59:59Z 999)" "leap day"
	same "$(tfield max due_ms)" "$(ms_of 9999-12-31T23:59:59Z 999)" "latest due time"
	same "$(tfield epoch due)" "$(date -u -d @1795341600 +%Y-%m-%dT%H:%M:%S.000Z)" "epoch milliseconds"
	same "$(tfield rel state)" "pending" "state of a new timer"
	same "$(tfield rel deliveries)" "0" "deliveries of a new timer"
fi
expect 0 "$KEEL" timer ls "$TM" p
grep -P '^p\tfirst\tpending\t1970-01-01T00:00:01.000Z\t0\t-\t-\t3$' "$T/out" >/dev/null && ok ||
	fail "timer ls line: $(grep first "$T/out")"
# Timers are ordered by due time within a partition.
expect 0 "$KEEL" timer ls "$TM" p
same "$(cut -f2 "$T/out" | tr '\n' ' ')" "first epoch rel rel2 leap iso sub frac off west max " "timer ls order"
expect 0 "$KEEL" timer ls "$TM" nopart                  # no timers there: an empty list
same "$(wc -c <"$T/out")" "0" "timer ls of a partition without timers"
expect 5 "$KEEL" timer ls "$T/no-such-store"
expect 9 "$KEEL" timer ls "$TM" 'bad name'

echo "== timer: claim, ack, extend, release"
newstore TQ claims
expect 0 "$KEEL" --memory timer set "$TQ" q later +1h later
expect 1 "$KEEL" timer claim "$TQ" q                      # nothing due
has "$T/err" "no timer due"
printf 'b\0\001\377\nend' >"$T/payload.bin"
expect 0 "$KEEL" timer set "$TQ" q a now --payload-file "$T/payload.bin"
expect 0 "$KEEL" timer claim --json "$TQ" q
json "$T/out" "j['key'], j['deliveries'], j['lease_ms'], j['acked'], j['payload_bytes']" "a 1 30000 False 8"
json "$T/out" "j['payload_hex'] == open('$T/payload.bin','rb').read().hex(), 'payload' in j" "True False"
TOK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/out" 2>/dev/null)
if [ "$HAVE_PY" = 1 ]; then
	tl "$TQ" q
	same "$(tfield a state)" "claimed" "state after claim"
	gt "$(tfield a lease_left_ms)" 20000 && ok || fail "lease left $(tfield a lease_left_ms)"
	expect 27 "$KEEL" timer ack "$TQ" q a --token $((TOK + 1000))   # someone else's token
	tl "$TQ" q
	same "$(tfield a state)" "claimed" "a wrong token changed nothing"
	expect 0 "$KEEL" timer ack "$TQ" q a --token "$TOK"
	tl "$TQ" q
	same "$(tfield a state)" "absent" "acked timer is gone"
	expect 27 "$KEEL" timer ack "$TQ" q a --token "$TOK"            # not held any more
fi
# --ack: claim and ack in one go.
expect 0 "$KEEL" timer set "$TQ" q pop now popped
expect 0 "$KEEL" timer claim --ack --json "$TQ" q
json "$T/out" "j['key'], j['payload'], j['acked']" "pop popped True"
expect 1 "$KEEL" timer claim "$TQ" q
# A claim that waits: it returns once the timer is due, never before.
expect 0 "$KEEL" timer set "$TQ" q soon +300ms
due=$("$KEEL" timer ls --json "$TQ" q | python3 -c 'import json,sys; print([t["due_ms"] for t in json.load(sys.stdin)["timers"] if t["key"]=="soon"][0])' 2>/dev/null)
expect 0 "$KEEL" timer claim --json --ack --timeout 10s "$TQ" q
got=$(now_ms)
json "$T/out" "j['key']" "soon"
[ -z "$due" ] || { [ "$got" -ge "$due" ] && ok || fail "claim returned at $got, before the due time $due"; }
# Plain output names the token; --hex keys and payloads.
expect 0 "$KEEL" --hex timer set "$TQ" q 00ff now 'de ad'
expect 0 "$KEEL" --hex timer claim "$TQ" q
has "$T/out" "00ff"
has "$T/out" "dead"
grep -q '^token  *[0-9][0-9]*$' "$T/out" && ok || fail "claim prints no token: $(head -5 "$T/out")"
HT=$(awk '$1 == "token" { print $2 }' "$T/out")
expect 0 "$KEEL" --hex timer ack "$TQ" q 00ff --token "$HT"
# extend and release with the token, from other processes (keel.h: any
# process holding the token may ack, extend or release).
expect 0 "$KEEL" timer set "$TQ" q e now
expect 0 "$KEEL" timer claim --json "$TQ" q --lease 10s
TOK=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$T/out" 2>/dev/null)
expect 0 "$KEEL" timer extend "$TQ" q e --token "$TOK" --lease 5m
if [ "$HAVE_PY" = 1 ]; then
	tl "$TQ" q
	gt "$(tfield e lease_left_ms)" 60000 && ok || fail "extend: lease left $(tfield e lease_left_ms)"
fi
b=$(now_ms)
expect 0 "$KEEL" timer release "$TQ" q e --token "$TOK" --due +1h
if [ "$HAVE_PY" = 1 ]; then
	tl "$TQ" q
	same "$(tfield e state) $(tfield e deliveries)" "pending 1" "released with a new due time"
	gt "$(tfield e due_ms)" $((b + 3599999)) && ok || fail "release --due +1h: $(tfield e due_ms)"
fi
expect 27 "$KEEL" timer release "$TQ" q e --token "$TOK"        # released: not held
expect 0 "$KEEL" timer cancel "$TQ" q e
expect 1 "$KEEL" timer cancel "$TQ" q e
has "$T/err" "no such timer"

echo "== timer: dead letters"
expect 0 "$KEEL" timer set "$TQ" d z now zz
# Each claim's holder (a keel process) exits at once, so the next claim takes
# the timer back: 10 deliveries (the default limit), then the dead letters.
# A dead holder is noticed within milliseconds, not at once: each claim may
# wait a little for it.
for i in $(seq 1 10); do
	"$KEEL" timer claim --json --timeout 5s "$TQ" d >"$T/out" 2>"$T/err" || { fail "claim $i: $(cat "$T/err")"; break; }
done
json "$T/out" "j['key'], j['deliveries']" "z 10"
expect 1 "$KEEL" timer claim --timeout 300ms "$TQ" d     # the 11th: dead-lettered instead
expect 0 "$KEEL" timer dead ls --json "$TQ"
json "$T/out" "[(t['key'], t['state'], t['deliveries']) for t in j['timers']]" "[('z', 'dead', 10)]"
expect 0 "$KEEL" timer dead ls "$TQ" d
grep -qP '^d\tz\tdead\t' "$T/out" && ok || fail "dead ls: $(cat "$T/out")"
expect 0 "$KEEL" timer stat --json "$TQ"
json "$T/out" "j['dead'], j['dead_lettered'], j['claimed']" "1 1 0"
expect 1 "$KEEL" timer dead requeue "$TQ" d nosuch
expect 0 "$KEEL" timer dead requeue "$TQ" d z
expect 0 "$KEEL" timer claim --json "$TQ" d
json "$T/out" "j['key'], j['deliveries']" "z 1"
for i in $(seq 2 10); do
	"$KEEL" timer claim --timeout 5s "$TQ" d >/dev/null 2>&1 || fail "claim $i after requeue"
done
expect 1 "$KEEL" timer claim --timeout 300ms "$TQ" d
expect 0 "$KEEL" timer dead drop "$TQ" d z
expect 1 "$KEEL" timer dead drop "$TQ" d z
expect 0 "$KEEL" timer dead ls --json "$TQ"
json "$T/out" "j['count']" "0"

echo "== timer: stat"
expect 0 "$KEEL" timer stat --json "$TM"
if [ "$HAVE_PY" = 1 ]; then
	"$KEEL" timer ls --json "$TM" >"$T/tl.json"
	python3 -c 'import json,sys
s=json.load(open(sys.argv[1])); t=json.load(open(sys.argv[2]))["timers"]
n=lambda st: sum(1 for x in t if x["state"]==st)
p=[x["due_ms"] for x in t if x["state"]=="pending"]
ok=(s["pending"],s["claimed"],s["dead"],s["next_due_ms"])==(n("pending"),n("claimed"),n("dead"),min(p))
print("ok" if ok else "stat %s vs ls %s" % (s, [(x["key"],x["state"],x["due_ms"]) for x in t]))' "$T/out" "$T/tl.json" >"$T/cmp" 2>&1
	same "$(cat "$T/cmp")" "ok" "timer stat agrees with timer ls"
fi
expect 0 "$KEEL" timer stat "$TM"
has "$T/out" "next_due"
has "$T/out" "1970-01-01T00:00:01.000Z"

echo "== timer: durable across a power loss"
newstore TD durable-timers
expect 0 "$KEEL" timer set "$TD" jobs nightly 2030-01-01T02:00:00Z report
expect 0 "$KEEL" crash "$TD" --power-loss
expect 0 "$KEEL" timer ls "$TD"
grep -qP '^jobs\tnightly\tpending\t2030-01-01T02:00:00.000Z\t' "$T/out" && ok || fail "timer lost by a power loss: $(cat "$T/out")"

# ---- crash --power-loss -------------------------------------------------------------------
echo "== crash --power-loss"
newstore C crash
expect 0 "$KEEL" put "$C" orders seed 1
expect 2 "$KEEL" crash "$C"
"$WORKER" work "$C" orders "$T/acks" >"$T/work.out" 2>&1 &
WP=$!
PIDS+=("$WP")
wait_lines "$T/acks" 30 || fail "worker made no progress"
expect 24 "$KEEL" crash "$C" --power-loss
has "$T/err" "$WP"
kill -0 "$WP" 2>/dev/null && ok || fail "a refused crash stopped the worker"
expect 0 "$KEEL" crash "$C" --power-loss --force
has "$T/out" "killed pid $WP"
has "$T/out" "journal durable up to LSN"
wait "$WP" 2>/dev/null
same "$?" 137 "worker killed by SIGKILL"
"$KEEL" ls "$C" orders | sort >"$T/present"
sed 's/^/w/' "$T/acks" | sort >"$T/acked"
lost=$(comm -23 "$T/acked" "$T/present" | wc -l)
same "$lost" 0 "acknowledged commits lost by the power loss"
[ "$(wc -l <"$T/acked")" -ge 30 ] && ok || fail "too few acks"
expect 0 "$KEEL" get "$C" orders seed
expect 0 "$KEEL" verify "$C"
expect 0 "$KEEL" crash "$C" --power-loss            # nobody attached: no --force needed
has "$T/out" "0 later commits"
expect 0 "$KEEL" crash "$C" --power-loss
has "$T/out" "nothing to drop"
expect 0 "$KEEL" count "$C" orders                   # recovers again
[ "$(cat "$T/out")" -ge 30 ] && ok || fail "count after the second recovery: $(cat "$T/out")"

newstore M memcrash
expect 0 "$KEEL" --memory put "$M" p k v
expect 0 "$KEEL" crash "$M" --power-loss
has "$T/out" "all its data is gone"
expect 5 "$KEEL" exists "$M" p                       # no arena, no journal: no store
expect 5 "$KEEL" crash "$M" --power-loss
expect 5 "$KEEL" crash "$T/no-such-store" --power-loss
expect 2 "$KEEL" crash --power-loss

# ---- the README's crash-recovery example, as written there -----------------------------
echo "== README example"
newstore R readme
(
	export PATH="$(dirname "$KEEL"):$PATH"
	cd "$T" || exit 1
	S="$R"
	rm -f acked.log
	( for i in $(seq 1 100000); do keel put "$S" orders "o$i" paid >/dev/null || break; echo "$i" >>acked.log; done ) &
	LOOP=$!
	sleep 1
	kill -9 "$LOOP"; wait "$LOOP" 2>/dev/null
	keel crash "$S" --power-loss --force >/dev/null || exit 1
	keel ls "$S" orders | sort >present.log
	sed 's/^/o/' acked.log | sort | comm -23 - present.log >missing.log
	[ -s acked.log ] && [ ! -s missing.log ] && keel verify "$S" >/dev/null
) && ok || fail "the README example: $(head -c 200 "$T/missing.log" 2>/dev/null)"

echo "test_cli: $CHECKS checks passed, $FAILS failed"
[ "$FAILS" -eq 0 ] || exit 1
exit 0
