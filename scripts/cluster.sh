#!/usr/bin/env bash
# A cluster on this machine: nats-server with JetStream on loopback, then
# three `wasmhost serve --cluster` nodes on ports 8081, 8082 and 8083 that
# share a module store in JetStream (nothing but NATS), with example
# workers. Prints what to try; Ctrl-C stops everything.
#
#   scripts/cluster.sh                 # NATS on 4222, nodes on 8081-8083
#   NATS_PORT=4333 BASE_PORT=9001 scripts/cluster.sh
#
# Needs nats-server (Debian's `nats-server`; installed here with apt-get
# when missing, as scripts/test-services.sh does). State (NATS's store
# directory and the nodes' state) goes under target/cluster-state.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NATS_PORT="${NATS_PORT:-4222}"
BASE_PORT="${BASE_PORT:-8081}"
STATE="$ROOT/target/cluster-state"
NATS="${WASMHOST_TEST_NATS_SERVER:-/usr/sbin/nats-server}"
[[ -x "$NATS" ]] || scripts/test-services.sh >/dev/null
scripts/build-guests.sh >/dev/null
scripts/build-jco.sh >/dev/null # the dashboard's jco bundle, embedded by the build below
cargo build --release --quiet -p wasmhost-cli
W="${CARGO_TARGET_DIR:-$ROOT/target}/release/wasmhost"
G="$ROOT/target/guests/out"
mkdir -p "$STATE"

PIDS=()
stop() {
    # The nodes first (they finish their requests and leave the cluster),
    # then NATS.
    for p in "${PIDS[@]:1}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:1}"; do wait "$p" 2>/dev/null || true; done
    kill "${PIDS[0]}" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap stop EXIT INT TERM
wait_port() {
    for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "cluster.sh: nothing listens on port $1 (see $STATE/*.log)" >&2
    exit 1
}

"$NATS" -js -sd "$STATE/nats" -a 127.0.0.1 -p "$NATS_PORT" >"$STATE/nats.log" 2>&1 &
PIDS+=($!)
wait_port "$NATS_PORT"
NATS_URL="nats://127.0.0.1:$NATS_PORT"
STORE="$NATS_URL/wasmhost-modules"

# Example modules, pushed once into the shared store.
"$W" push --store "$STORE" "$G/as-counter-actor.wasm" counter:1.0 >/dev/null
"$W" push --store "$STORE" guests/wat/numeric.wat numeric:1.0 >/dev/null
"$W" push --store "$STORE" "$G/as-extism-plugin.wasm" vowels:1.0 >/dev/null

for n in 1 2 3; do
    port=$((BASE_PORT + n - 1))
    WASMHOST_STATE="$STATE/node$n" "$W" serve --addr "127.0.0.1:$port" \
        --store "$STORE" --cluster "$NATS_URL" --cluster-name demo \
        --route "/counter=counter:1.0,mode=actor,function=execute" \
        --route "/vowels=vowels:1.0,mode=function,function=count_vowels" \
        --route "/echo=$G/wasi-echo.wasm" \
        >"$STATE/node$n.log" 2>&1 &
    PIDS+=($!)
    wait_port "$port"
done
P1=$BASE_PORT P2=$((BASE_PORT + 1)) P3=$((BASE_PORT + 2))

cat <<MSG
A cluster of three nodes over $NATS_URL (logs in $STATE):
  http://127.0.0.1:$P1/  http://127.0.0.1:$P2/  http://127.0.0.1:$P3/   (each with the dashboard)

Try:
  curl -s http://127.0.0.1:$P1/api/v1/cluster | python3 -m json.tool        # the members and their load
  curl -si -d 'increment 1' http://127.0.0.1:$P1/counter/alice | grep -i 'x-wasmhost-node\\|^[0-9-]'
  curl -si -d 'increment 1' http://127.0.0.1:$P2/counter/alice            # the same actor, one owner
  curl -si -d '[40, 2]' 'http://127.0.0.1:$P3/api/v1/modules/numeric:1.0/call/add_i32?placement=any'
  curl -si -d 'Hello, World!' 'http://127.0.0.1:$P2/vowels?placement=any'   # a worker route on any node
  kill -9 \$(pgrep -f 'serve --addr 127.0.0.1:$P1')                     # then send to alice again

Ctrl-C stops the cluster.
MSG
wait
