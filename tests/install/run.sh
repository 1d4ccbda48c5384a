#!/usr/bin/env bash
# run.sh - the install test.
#
# Installs a built Keel tree into a temporary prefix with `cmake --install`,
# checks the installed files, then builds tests/install/app.c against that
# prefix only, four ways, and runs each build:
#   1. pkg-config --cflags --libs keel            (shared libkeel.so)
#   2. pkg-config --static --libs keel, libkeel.a (static; proves that the
#      Requires.private / Libs.private lines are enough)
#   3. find_package(keel) + keel::keel            (CMake, shared)
#   4. find_package(keel) + keel::keel_static     (CMake, static)
# and finally runs the installed `keel` program against a memory-mode store.
#
# Usage: run.sh BUILD_DIR LIBDIR SANITIZE CC
#   BUILD_DIR  the configured and built Keel tree
#   LIBDIR     CMAKE_INSTALL_LIBDIR of that tree (lib, or lib/<triplet>)
#   SANITIZE   ON when the tree was built with KEEL_SANITIZE (the programs
#              built here then need the same sanitizer runtime)
#   CC         the C compiler of that tree
# Exit 0 pass, 1 fail, 77 skip (no pkg-config).
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 BUILD_DIR LIBDIR SANITIZE CC" >&2
	exit 1
fi
build=$1 libdir=$2 sanitize=$3 cc=$4
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v pkg-config >/dev/null; then
	echo "SKIP: pkg-config is not installed"
	exit 77
fi

tmp=$(mktemp -d /tmp/keel-install-test.XXXXXX)
arena=/dev/shm/keel-install-test.$$.arena   # the CLI's store, at the end
trap 'rm -rf "$tmp"; rm -f "$arena"' EXIT
prefix=$tmp/prefix
step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

san=()
case "$sanitize" in
ON|on|1|TRUE|true|YES|yes) san=("-fsanitize=address,undefined") ;;
esac

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; fail "cmake --install failed"; }

step "installed files"
L=$prefix/$libdir
for f in "$L/libkeel.a" "$prefix/include/keel.h" "$L/pkgconfig/keel.pc" \
	"$L/cmake/keel/keelConfig.cmake" "$L/cmake/keel/keelConfigVersion.cmake" \
	"$L/cmake/keel/keelTargets.cmake" "$prefix/bin/keel" "$prefix/bin/keel-bench"; do
	[ -f "$f" ] || fail "missing after install: ${f#"$prefix"/}"
done
# libkeel.so -> libkeel.so.MAJOR -> libkeel.so.MAJOR.MINOR.PATCH
[ -L "$L/libkeel.so" ] || fail "libkeel.so is not a symlink"
soname=$(readlink "$L/libkeel.so")
case "$soname" in libkeel.so.[0-9]*) ;; *) fail "libkeel.so points at '$soname'" ;; esac
[ -e "$L/$soname" ] || fail "libkeel.so points at missing $soname"
real=$(readlink -f "$L/libkeel.so")
case "${real##*/}" in libkeel.so.[0-9]*.[0-9]*.[0-9]*) ;;
*) fail "libkeel.so resolves to '${real##*/}', not libkeel.so.X.Y.Z" ;; esac
cmp -s "$prefix/include/keel.h" "$here/../../lib/keel.h" ||
	fail "installed keel.h differs from lib/keel.h"

export PKG_CONFIG_PATH=$L/pkgconfig
step "pkg-config keel: $(pkg-config --modversion keel)"
cflags=$(pkg-config --cflags keel)
libs=$(pkg-config --libs keel)
slibs=$(pkg-config --static --libs keel)
echo "   cflags: $cflags"
echo "   libs: $libs"
echo "   static libs: $slibs"
for want in -lkeel -luring -lxxhash -lpthread; do
	case " $slibs " in *" $want "*) ;; *) fail "pkg-config --static --libs lacks $want" ;; esac
done
case " $libs " in *" -luring "*) fail "pkg-config --libs (shared) should not list -luring" ;; esac

export LD_LIBRARY_PATH=$L${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

step "build with pkg-config (shared)"
# shellcheck disable=SC2086  # word splitting of pkg-config output is intended
"$cc" "${san[@]}" -o "$tmp/app-pc" "$here/app.c" $cflags $libs
if command -v ldd >/dev/null; then
	# Capture first: with pipefail, grep -q exiting early would fail the pipe.
	deps=$(ldd "$tmp/app-pc")
	case "$deps" in *"$L/libkeel.so"*) ;; *) printf '%s\n' "$deps"; fail "app-pc does not load libkeel.so from the prefix" ;; esac
fi
"$tmp/app-pc" || fail "app built with pkg-config (shared) failed"

step "build with pkg-config --static (libkeel.a)"
# -l:libkeel.a picks the archive even where libkeel.so sits beside it.
# shellcheck disable=SC2086,SC2046
"$cc" "${san[@]}" -o "$tmp/app-pc-static" "$here/app.c" $cflags \
	$(printf '%s\n' $slibs | sed 's/^-lkeel$/-l:libkeel.a/')
if command -v ldd >/dev/null && case "$(ldd "$tmp/app-pc-static")" in *libkeel*) true ;; *) false ;; esac; then
	fail "app-pc-static still loads a shared libkeel"
fi
"$tmp/app-pc-static" || fail "app built with pkg-config --static failed"

step "build with find_package(keel)"
cmake -S "$here" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
	-DCMAKE_C_FLAGS="${san[*]}" -DCMAKE_EXE_LINKER_FLAGS="${san[*]}" \
	>"$tmp/consumer.log" 2>&1 || { cat "$tmp/consumer.log"; fail "configuring with find_package(keel) failed"; }
cmake --build "$tmp/consumer" -j2 >>"$tmp/consumer.log" 2>&1 ||
	{ cat "$tmp/consumer.log"; fail "building with keel::keel / keel::keel_static failed"; }
"$tmp/consumer/app-shared" || fail "app linked with keel::keel failed"
"$tmp/consumer/app-static" || fail "app linked with keel::keel_static failed"

step "installed keel program"
keel=$prefix/bin/keel
"$keel" --help >"$tmp/help.txt" || fail "keel --help exited $?"
for section in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" EXAMPLES; do
	grep -q "^$section" "$tmp/help.txt" || fail "keel --help has no $section section"
done
store=$tmp/store
mkdir "$store"
val="v$$-$RANDOM"
k=(--memory --arena "$arena")
"$keel" "${k[@]}" put "$store" cli k "$val" || fail "keel put exited $?"
got=$("$keel" "${k[@]}" get "$store" cli k) || fail "keel get exited $?"
[ "$got" = "$val" ] || fail "keel get printed '$got', expected '$val'"
rc=0; "$keel" "${k[@]}" get "$store" cli absent 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "keel get of a missing key exited $rc, expected 1"
rc=0; "$keel" get 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "keel get with no arguments exited $rc, expected 2"
stat_out=$("$keel" "${k[@]}" stat "$store")
printf '%s\n' "$stat_out" | grep "^arena_path *$arena\$" >/dev/null ||
	fail "keel stat does not report the arena $arena"
"$keel" "${k[@]}" del "$store" cli k || fail "keel del exited $?"

echo "PASS"
