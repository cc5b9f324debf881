#!/usr/bin/env bash
# Installs convblas into a temporary directory (meson install --destdir), then builds
# install_example.c against the installed copy with nothing but `pkg-config convblas`, runs
# it against the installed shared library, and checks its output.
#   install_test.sh BUILD_ROOT INSTALL_EXAMPLE_C
set -euo pipefail

fail() {
    echo "install_test: FAIL: $*" >&2
    exit 1
}

[ $# -eq 2 ] || fail "usage: $0 BUILD_ROOT INSTALL_EXAMPLE_C"
build=$1
example=$2
[ -d "$build" ] || fail "no build directory at $build"
[ -f "$example" ] || fail "no example source at $example"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
CC=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM
dest=$tmp/root

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet ||
    fail "meson install -C $build --destdir $dest failed"

# The configured prefix and libdir, which the installed files and the .pc must follow.
prefix=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"))')
libdir=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"] == "libdir"))')
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac
[ -n "$prefix" ] || fail "could not read the prefix from meson introspect"
# A sanitized build's library needs the same runtime in the program that loads it.
sanitize=$(meson introspect "$build" --buildoptions |
    python3 -c 'import json,sys; v=next((o["value"] for o in json.load(sys.stdin) if o["name"] == "b_sanitize"), "none"); print(",".join(v) if isinstance(v, list) else v)')
sanitize_flags=
case $sanitize in none | "") ;; *) sanitize_flags=-fsanitize=$sanitize ;; esac

# The .pc: exactly one, in <libdir>/pkgconfig.
mapfile -t pcs < <(find "$dest" -name convblas.pc)
[ ${#pcs[@]} -eq 1 ] || fail "expected one installed convblas.pc, found ${#pcs[@]}: ${pcs[*]:-none}"
pc=${pcs[0]}
[ "$pc" = "$dest$libdir/pkgconfig/convblas.pc" ] ||
    fail "convblas.pc installed at $pc, expected $dest$libdir/pkgconfig/convblas.pc"
pcdir=$(dirname "$pc")

# The installed .pc says prefix=<the build's prefix>; the sysroot maps its -I and -L into the
# destdir. (convblas.pc's Requires.private, e.g. openblas, still comes from the system.)
pkgconf() {
    PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH} PKG_CONFIG_SYSROOT_DIR=$dest \
        pkg-config "$@"
}
pc_prefix=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=prefix convblas)
[ "$pc_prefix" = "$prefix" ] || fail "convblas.pc has prefix=$pc_prefix, the build's prefix is $prefix"
pc_libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir convblas)
[ "$pc_libdir" = "$libdir" ] || fail "convblas.pc has libdir=$pc_libdir, the build's libdir is $libdir"
pc_includedir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=includedir convblas)
pc_version=$(PKG_CONFIG_PATH=$pcdir pkg-config --modversion convblas)

# What the .pc points at must be there, under the destdir.
[ -f "$dest$pc_includedir/convblas.h" ] || fail "no convblas.h in $pc_includedir (the .pc's includedir)"
ls "$dest$pc_libdir"/libconvblas.so* >/dev/null 2>&1 || fail "no libconvblas.so in $pc_libdir"
[ -e "$dest$pc_libdir/libconvblas.so" ] || fail "no libconvblas.so development link in $pc_libdir"
src_header=$(dirname "$example")/../include/convblas.h
if [ -f "$src_header" ]; then
    cmp -s "$src_header" "$dest$pc_includedir/convblas.h" ||
        fail "the installed convblas.h differs from include/convblas.h"
fi

# The installed library exports the public names only.
if command -v nm >/dev/null; then
    so=$(find "$dest$pc_libdir" -name 'libconvblas.so.*' -type f | head -n 1)
    stray=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ {print $3}' |
        grep -v -e '^convblas_' -e '^_' | tr '\n' ' ' || true)
    [ -z "$stray" ] || fail "libconvblas exports names outside convblas_: $stray"
fi

cflags=$(pkgconf --cflags convblas) || fail "pkg-config --cflags convblas failed"
libs=$(pkgconf --libs convblas) || fail "pkg-config --libs convblas failed"
case " $cflags " in *" -I$dest"*) ;; *) fail "pkg-config --cflags ($cflags) does not point into the install" ;; esac
case " $libs " in *" -L$dest"*) ;; *) fail "pkg-config --libs ($libs) does not point into the install" ;; esac

# shellcheck disable=SC2086 # the flags are words
"$CC" -std=c11 -Wall -Wextra -Werror $sanitize_flags -o "$tmp/example" "$example" $cflags $libs ||
    fail "compiling $example with \`pkg-config --cflags --libs convblas\` ($cflags $libs) failed"

export LD_LIBRARY_PATH=$dest$pc_libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if command -v ldd >/dev/null; then
    deps=$(ldd "$tmp/example") || fail "ldd $tmp/example failed"
    line=$(printf '%s\n' "$deps" | grep 'libconvblas\.so') || fail "the example does not link libconvblas"
    case $line in
    *"=> $dest/"*) ;;
    *) fail "the example does not load the installed libconvblas: $line" ;;
    esac
fi
status=0
out=$("$tmp/example" 2>&1) || status=$?
printf '%s\n' "$out"
[ $status -eq 0 ] || fail "the example exited with status $status"
[ "$(printf '%s\n' "$out" | tail -n 1)" = OK ] || fail "the example did not print OK"
printf '%s\n' "$out" | grep -q "convblas $pc_version," ||
    fail "the example's convblas_version() is not the .pc's version $pc_version"
echo "install_test: OK (prefix $prefix, libdir $libdir)"
