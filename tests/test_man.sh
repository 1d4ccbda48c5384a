#!/bin/bash
# test_man.sh - the manual pages in tools/man.
#
#   test_man.sh MANDIR [PROGRAM...]
#
# Every page MANDIR/*.1 and MANDIR/*.8 (whoever wrote it) must have the
# sections NAME, SYNOPSIS, DESCRIPTION, EXIT STATUS and EXAMPLES, a .TH
# title that matches its file name, and, when man-db is installed, render
# with `man -l` without a single warning (otherwise that part is skipped and
# says so).  For each PROGRAM given (a built binary whose page is
# MANDIR/NAME.1 or .8), the page must mention every long option that
# `PROGRAM --help` lists; for keel, every command and subcommand of its
# command list too, and for keel-bench every suite.  So a new option or
# command without its man page text fails here.
# Exit 0 pass, 1 fail, 77 skip (no pages at all).
set -u

MANDIR=${1:?usage: test_man.sh MANDIR [PROGRAM...]}
shift
T=$(mktemp -d /tmp/keel-man-test.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT

FAILS=0
CHECKS=0
fail() {
	echo "FAIL: $*"
	FAILS=$((FAILS + 1))
}
ok() { CHECKS=$((CHECKS + 1)); }

shopt -s nullglob
pages=("$MANDIR"/*.1 "$MANDIR"/*.8)
shopt -u nullglob
[ "${#pages[@]}" -gt 0 ] || { echo "test_man: no pages in $MANDIR"; exit 77; }

HAVE_MAN=0
if command -v man >/dev/null 2>&1 && man --version 2>/dev/null | grep -q '^man'; then
	HAVE_MAN=1
else
	echo "test_man: man-db is not installed: rendering with man -l is skipped"
fi

# plain PAGE: the roff source with font changes and \- escapes removed, so
# that option and command names can be searched for as typed.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$1"; }

for page in "${pages[@]}"; do
	base=$(basename "$page")
	name=${base%.*}
	sec=${base##*.}
	echo "== $base"
	for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES; do
		if grep -Eq "^\.SH +\"?$s\"? *\$" "$page"; then ok; else fail "$base has no section $s"; fi
	done
	th=$(awk '$1 == ".TH" { print $2, $3; exit }' "$page" | sed 's/\\-/-/g')
	want="$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]') $sec"
	[ "$th" == "$want" ] && ok || fail "$base: .TH says '$th', expected '$want'"
	if [ "$HAVE_MAN" = 1 ]; then
		MANWIDTH=80 man --warnings -E UTF-8 -l "$page" >"$T/out" 2>"$T/err"
		rc=$?
		[ "$rc" -eq 0 ] && ok || fail "$base: man -l exited $rc"
		if [ -s "$T/err" ]; then
			fail "$base: man -l warned:"
			sed 's/^/    /' "$T/err" | head -10
		else
			ok
		fi
		for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES; do
			grep -q "^$s\$" "$T/out" && ok || fail "$base: rendered page lacks $s"
		done
	fi
done

# Each PROGRAM's --help against its page.
for prog in "$@"; do
	name=$(basename "$prog")
	page=$MANDIR/$name.1
	[ -f "$page" ] || page=$MANDIR/$name.8
	if [ ! -f "$page" ]; then
		fail "$name has no page in $MANDIR"
		continue
	fi
	if [ ! -x "$prog" ]; then
		fail "$prog is not built"
		continue
	fi
	echo "== $name --help against $(basename "$page")"
	"$prog" --help >"$T/help" 2>&1 || fail "$name --help failed"
	plain "$page" >"$T/page"
	for opt in $(grep -oE -- '--[a-z][a-z-]*[a-z]' "$T/help" | sort -u); do
		grep -qF -- "$opt" "$T/page" && ok || fail "$(basename "$page") does not mention $opt"
	done
	case $name in
	keel)
		# The command list: "    NAME [NAME...] ARGS" lines between COMMANDS
		# and OPTIONS; the name is the lower-case words before the arguments.
		sed -n '/^COMMANDS$/,/^OPTIONS$/p' "$T/help" | grep -E '^    [a-z]' |
			awk '{ n = ""; for (i = 1; i <= NF && $i ~ /^[a-z]+$/; i++) n = n (n ? " " : "") $i; print n }' |
			sort -u >"$T/cmds"
		[ "$(wc -l <"$T/cmds")" -ge 10 ] && ok || fail "keel --help lists too few commands: $(cat "$T/cmds")"
		while read -r cmd; do
			grep -qE "(^|[ \"])$cmd( |\"|\$)" "$T/page" && ok || fail "keel.1 does not document '$cmd'"
		done <"$T/cmds"
		;;
	keel-bench)
		sed -n '/^Suites/,/^Options/p' "$T/help" | grep -oE '^  [a-z]+ ' | tr -d ' ' >"$T/suites"
		[ "$(wc -l <"$T/suites")" -ge 3 ] && ok || fail "keel-bench --help lists too few suites"
		while read -r s; do
			grep -qE "^\.B $s\$" "$T/page" && ok || fail "keel-bench.1 does not describe suite '$s'"
		done <"$T/suites"
		;;
	esac
done

echo "test_man: $CHECKS passed, $FAILS failed"
[ "$FAILS" -eq 0 ] || exit 1
exit 0
