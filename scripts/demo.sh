#!/usr/bin/env bash
# The README's first command: builds wasmhost and the example guests, then
# runs a WASI command, a numeric export, hostile guests under limits, and
# plugin, AssemblyScript and component calls with data in and out.
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
show $W run --deny clocks $G/wasi-echo.wasm time

# Data in, data out: Extism plugins (as Extism's CLI calls them), AssemblyScript strings, components.
show $W call $G/extism-plugin.wasm count_vowels --input "Hello, World!"
show $W call --config vowels=aeiou $G/as-extism-plugin.wasm count_vowels "Hello, World!"
show $W call $G/as-counter-incremental.wasm greet "Zoë 🌍"
show $W call --wasi --trap-unknown-imports $G/wit-component.wasm add-points '[{"x":1,"y":2},{"x":3,"y":4}]'
show $W call --wasi --trap-unknown-imports --wave $G/wit-component.wasm divide '7, 0'
show $W call --trap-unknown-imports $G/extism-plugin.wasm http_get https://example.com/
show $W inspect $G/as-counter-stub.wasm
