#!/usr/bin/env bash
# Build the C guest from scratch:
#   target/c-guest/wfetch_guest_c.wasm   (a component of world fetch-guest)
#
# Needs clang with the wasm32 target and wasm-ld (Debian: clang lld),
# wit-bindgen 0.63 and wasm-tools (cargo install, see README.md).
# `make deps` installs them. No libc, no WASI: the module is freestanding.
#
# Environment: CLANG (default clang), WIT_BINDGEN (default wit-bindgen),
# WASM_TOOLS (default wasm-tools).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/c-guest"
final="$out/wfetch_guest_c.wasm"

CLANG="${CLANG:-clang}"
WIT_BINDGEN="${WIT_BINDGEN:-wit-bindgen}"
WASM_TOOLS="${WASM_TOOLS:-wasm-tools}"
WIT_BINDGEN_VERSION=0.63.0

die() {
    echo "c-guest build: error: $*" >&2
    exit 1
}

need() { # tool, how to get it
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH. Install it with: $2 (or run 'make deps')"
}

need "$CLANG" "apt-get install -y clang lld"
need wasm-ld "apt-get install -y lld"
need "$WIT_BINDGEN" "cargo install wit-bindgen-cli --version $WIT_BINDGEN_VERSION --locked --no-default-features --features c"
need "$WASM_TOOLS" "cargo install wasm-tools --version 1.263.0 --locked --no-default-features --features component,validate,print"
"$CLANG" --print-targets 2>/dev/null | grep -qw wasm32 ||
    die "'$CLANG' cannot target wasm32 (needs clang built with the WebAssembly backend, as Debian's is)"
wbv="$("$WIT_BINDGEN" --version 2>/dev/null | awk '{print $2}')"
if [ "$wbv" != "$WIT_BINDGEN_VERSION" ]; then
    echo "c-guest build: warning: wit-bindgen is '$wbv', tested with $WIT_BINDGEN_VERSION" >&2
fi

rm -rf "$out"
mkdir -p "$out/gen" "$out/obj"

echo "c-guest: generating C bindings from wit/ (world fetch-guest)"
log="$("$WIT_BINDGEN" c --world fetch-guest "$root/wit" --out-dir "$out/gen" 2>&1)" ||
    die "wit-bindgen failed:
$log"

cflags=(
    --target=wasm32-unknown-unknown
    -O2 -ffreestanding -nostdlib
    -std=c11 -Wall -Wextra -Werror
    -isystem "$here/rt/include"
    -I "$out/gen"
)
echo "c-guest: compiling with $("$CLANG" --version | head -n1)"
# rt.c implements memcpy & co.: -fno-builtin keeps the compiler from
# turning their loops into calls to themselves.
"$CLANG" "${cflags[@]}" -fno-builtin -c "$here/rt/rt.c" -o "$out/obj/rt.o"
"$CLANG" "${cflags[@]}" -c "$here/guest.c" -o "$out/obj/guest.o"
"$CLANG" "${cflags[@]}" -Wno-unused-parameter -c "$out/gen/fetch_guest.c" -o "$out/obj/fetch_guest.o"

echo "c-guest: linking the core module"
"$CLANG" --target=wasm32-unknown-unknown -nostdlib \
    -Wl,--no-entry -Wl,--stack-first -Wl,-z,stack-size=262144 \
    "$out/obj/guest.o" "$out/obj/fetch_guest.o" "$out/obj/rt.o" \
    "$out/gen/fetch_guest_component_type.o" \
    -o "$out/wfetch_guest_c.core.wasm"

# The point of a freestanding build: nothing but the WIT interfaces is
# imported, so no WASI adapter is needed.
stray="$("$WASM_TOOLS" print "$out/wfetch_guest_c.core.wasm" |
    grep -o '(import "[^"]*"' | sed 's/(import "//; s/"$//' | grep -v '^wfetch:fetch/' | sort -u || true)"
[ -z "$stray" ] || die "the core module imports more than wfetch:fetch: $(echo $stray)"

echo "c-guest: making the component"
"$WASM_TOOLS" component new "$out/wfetch_guest_c.core.wasm" -o "$final.tmp"
"$WASM_TOOLS" validate "$final.tmp"
mv "$final.tmp" "$final"
echo "c-guest: built $final ($(wc -c <"$final") bytes)"
