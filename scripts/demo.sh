#!/usr/bin/env bash
# The README's first command: builds wasmhost and the example guests, then
# runs a WASI command, a numeric export, and a hostile guest under limits.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-guests.sh >/dev/null
cargo build --release --quiet -p wasmhost-cli
W=target/release/wasmhost
G=target/guests/out
export WASMHOST_STATE="${WASMHOST_STATE:-$ROOT/target/demo-state}"

show() { printf '\n$ %s\n' "$*"; "$@" || printf '(exit status %s)\n' "$?"; }

echo "hello from stdin" > target/demo-input.txt
show $W run $G/wasi-echo.wasm echo < target/demo-input.txt
show $W run $G/wasi-echo.component.wasm args one two
show $W run --invoke add_i32 --stats guests/wat/numeric.wat 40 2
show $W run --timeout 200ms --invoke run guests/wat/loop.wat
show $W run --max-memory 8MiB --invoke run guests/wat/grow.wat
show $W run --invoke run guests/wat/import.wat
show $W run $G/wasi-echo.wasm time
show $W run --grant clocks $G/wasi-echo.wasm time
