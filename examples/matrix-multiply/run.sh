#!/usr/bin/env bash
# Distributed matrix multiply: builds wasmhost and matrix.wasm, starts two
# `wasmhost serve` workers on free ports (the first also serves the page),
# prints the URL to open, and waits. Ctrl-C stops both.
#
#   examples/matrix-multiply/run.sh
#
# PORT1 / PORT2 pick the ports instead. Each worker keeps its state (store,
# compiled-module cache, key-value database) in its own directory under
# $WASMHOST_STATE (by default target/matrix-multiply-state): two servers
# cannot share one key-value database.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

echo "building matrix.wasm and wasmhost (release)..."
scripts/build-guests.sh >/dev/null
cargo build --release --quiet -p wasmhost-cli
W="$ROOT/target/release/wasmhost"
STATE="${WASMHOST_STATE:-$ROOT/target/matrix-multiply-state}"

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  else
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'
  fi
}

# The static directory: the page plus the module it runs (the repository
# holds no binaries, so matrix.wasm is copied from the guest build).
WORK="$(mktemp -d "${TMPDIR:-/tmp}/matrix-multiply.XXXXXX")"
cp -R examples/matrix-multiply/web "$WORK/web"
cp target/guests/out/matrix.wasm "$WORK/web/matrix.wasm"
MODULE="$WORK/web/matrix.wasm"

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo; echo "stopping both workers"; exit 130' INT TERM

P1="${PORT1:-$(free_port)}"
P2="${PORT2:-$(free_port)}"
while [[ "$P2" == "$P1" ]]; do P2="$(free_port)"; done
ROUTE="/multiply=$MODULE,mode=function,function=multiply"

"$W" serve --addr "127.0.0.1:$P1" --state "$STATE/worker1" --route "$ROUTE" --cors '*' --static "/app=$WORK/web" &
pids+=("$!")
"$W" serve --addr "127.0.0.1:$P2" --state "$STATE/worker2" --route "$ROUTE" --cors '*' &
pids+=("$!")

# Waits until PORT accepts connections, or fails when PID exits first.
wait_for() {
  local port="$1" pid="$2" i
  for ((i = 0; i < 200; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    kill -0 "$pid" 2>/dev/null || { echo "error: the worker on port $port exited" >&2; return 1; }
    sleep 0.05
  done
  echo "error: nothing is listening on port $port after 10 s" >&2
  return 1
}
wait_for "$P1" "${pids[0]}"
wait_for "$P2" "${pids[1]}"

cat <<EOF

Two workers are running matrix.wasm (POST /multiply):
  worker 1  http://127.0.0.1:$P1   (also serves the page at /app/)
  worker 2  http://127.0.0.1:$P2

Open:
  http://127.0.0.1:$P1/app/index.html?workers=http://127.0.0.1:$P1,http://127.0.0.1:$P2

and press Run. Ctrl-C stops both workers.
EOF

# Stay up until Ctrl-C, or until one worker exits (then stop the other).
# Ctrl-C reaches the workers too (they share the terminal's process group):
# they shut down gracefully, and the cleanup stops whichever is left.
set +e
wait -n "${pids[@]}"
status=$?
[[ $status -eq 0 ]] || echo "a worker exited with status $status; stopping the other" >&2
exit "$status"
