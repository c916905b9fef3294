#!/usr/bin/env bash
# Builds the guest programs that the wasmhost tests and benchmarks run, from source.
#
#   scripts/build-guests.sh
#
# Outputs (in $ROOT/target/guests/out/):
#   wasi-echo.wasm            guests/rust/wasi-echo for wasm32-wasip1 (core module, `_start`)
#   wasi-echo.component.wasm  guests/rust/wasi-echo for wasm32-wasip2 (component, wasi:cli/run)
#   *.wat                     guests/wat/*.wat, copied unchanged (the host loads WAT text)
#
# Idempotent: cargo rebuilds only what changed, and files are copied only when they differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GUESTS="$ROOT/guests"
TARGET_DIR="$ROOT/target/guests"
OUT="$TARGET_DIR/out"

# Targets are added here so a fresh machine needs nothing but rustup.
# `rustup target add` is a no-op (and quick) when they are already installed.
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || {
  # Re-run loudly so the reason for the failure is visible.
  rustup target add wasm32-wasip1 wasm32-wasip2
}

# The guests are their own workspace; the root workspace's target/ is not shared.
cargo build --quiet --release \
  --manifest-path "$GUESTS/rust/Cargo.toml" \
  --target-dir "$TARGET_DIR" \
  --target wasm32-wasip1 --target wasm32-wasip2

mkdir -p "$OUT"

# copy SRC DEST: copy only when the content differs, so mtimes stay stable.
copy() {
  if ! cmp -s "$1" "$2"; then
    cp "$1" "$2"
  fi
}

produced=()
copy "$TARGET_DIR/wasm32-wasip1/release/wasi-echo.wasm" "$OUT/wasi-echo.wasm"
produced+=("$OUT/wasi-echo.wasm")
copy "$TARGET_DIR/wasm32-wasip2/release/wasi-echo.wasm" "$OUT/wasi-echo.component.wasm"
produced+=("$OUT/wasi-echo.component.wasm")

shopt -s nullglob
for wat in "$GUESTS"/wat/*.wat; do
  copy "$wat" "$OUT/$(basename "$wat")"
  produced+=("$OUT/$(basename "$wat")")
done
# Drop copies of WAT guests that were deleted or renamed in guests/wat.
for stale in "$OUT"/*.wat; do
  [[ -e "$GUESTS/wat/$(basename "$stale")" ]] || rm -f "$stale"
done

# Sanity check: p1 must be a core module, p2 a component (see the binary format's
# preamble: bytes 4..8 are the version/layer).
preamble() { od -An -tx1 -N8 "$1" | tr -d ' \n'; }
[[ "$(preamble "$OUT/wasi-echo.wasm")" == 0061736d01000000 ]] \
  || { echo "error: $OUT/wasi-echo.wasm is not a core wasm module" >&2; exit 1; }
[[ "$(preamble "$OUT/wasi-echo.component.wasm")" == 0061736d0d000100 ]] \
  || { echo "error: $OUT/wasi-echo.component.wasm is not a wasm component" >&2; exit 1; }

for f in "${produced[@]}"; do
  printf '%10d  %s\n' "$(wc -c <"$f")" "${f#"$ROOT"/}"
done
