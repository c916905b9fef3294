#!/usr/bin/env bash
# The README's first command: builds wasmhost and the example guests, puts
# a few example modules in the local store, and runs `wasmhost serve` on
# http://127.0.0.1:8080 (dashboard at /, API at /api/v1, metrics at
# /metrics) with example workers. Ctrl-C stops it, finishing requests in
# flight. Extra arguments go to `wasmhost serve` (e.g. --addr 127.0.0.1:9090).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/build-guests.sh >/dev/null
scripts/build-jco.sh >/dev/null # the dashboard's jco bundle, embedded by the build below
cargo build --release --quiet -p wasmhost-cli
W="$ROOT/target/release/wasmhost"
G="$ROOT/target/guests/out"
export WASMHOST_STATE="${WASMHOST_STATE:-$ROOT/target/serve-state}"

# The store is embedded: a directory under the state directory.
"$W" push "$G/as-extism-plugin.wasm" vowels:1.0 >/dev/null
"$W" push "$G/as-counter-stub.wasm" counter:1.0 >/dev/null
"$W" push guests/wat/numeric.wat numeric:1.0 >/dev/null
"$W" push "$G/matrix.wasm" matrix:1.0 >/dev/null

cat <<MSG
Try:
  curl -d 'hello' http://127.0.0.1:8080/echo                      # sync process worker
  curl -d 'Hello, World!' http://127.0.0.1:8080/vowels            # Extism plugin function
  curl -d 1 http://127.0.0.1:8080/counter/alice                   # an actor per path
  curl http://127.0.0.1:8080/hello                                # wasi:http component
  curl -d '[2, 3]' http://127.0.0.1:8080/api/v1/modules/numeric:1.0/call/add_i32
  printf 'over tcp' | python3 -c 'import socket,sys; s=socket.create_connection(("127.0.0.1",9000)); s.sendall(sys.stdin.buffer.read()); s.shutdown(1); print(s.recv(99).decode())'

MSG
exec "$W" serve \
  --route "/echo=$G/wasi-echo.wasm" \
  --route "/vowels=vowels:1.0,mode=function,function=count_vowels" \
  --route "/counter=counter:1.0,mode=actor,function=increment" \
  --route "/hello=$G/http-hello.wasm" \
  --tcp "9000=$G/wasi-echo.wasm" \
  "$@"
