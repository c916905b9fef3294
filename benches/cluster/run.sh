#!/usr/bin/env bash
# The cost of a hop across the cluster (issue 13's first goal): the same
# function call (`add_i32` of guests/wat/numeric.wat through
# POST /api/v1/modules/num/call/add_i32) run locally on node 1
# (?placement=local), and sent to node 2 with ?placement=any, which forwards
# it through the module's queue group to node 1, the only node holding it
# compiled. One client connection (wrk -t1 -c1), so the latency is the
# call's own; rounds alternate the two. The floor beside them: NATS's own
# request/reply round trip between two processes (examples/nats_rtt.rs).
#
#   benches/cluster/run.sh                 # release build, 3 rounds of 10 s
#   ROUNDS=5 DURATION=5 SKIP_BUILD=1 benches/cluster/run.sh
#
# Needs nats-server (scripts/test-services.sh installs it) and wrk (installed
# here with apt-get when missing). Everything listens on loopback.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/wasmhost"
NATS="${WASMHOST_TEST_NATS_SERVER:-/usr/sbin/nats-server}"

if [[ -z "${SKIP_BUILD:-}" ]]; then
    (cd "$ROOT" && cargo build --release -p wasmhost-cli && cargo build --release -p wasmhost-cluster --example nats_rtt)
fi
RTT="$TARGET/release/examples/nats_rtt"
[[ -x "$NATS" ]] || "$ROOT/scripts/test-services.sh" >/dev/null
if ! command -v wrk >/dev/null; then
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "nothing listens on $1" >&2; exit 1; }

NPORT="$(free_port)"
"$NATS" -js -sd "$WORK/nats" -a 127.0.0.1 -p "$NPORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$NPORT"

node() { # node N PORT
    WASMHOST_STATE="$WORK/state$1" "$BIN" serve --addr "127.0.0.1:$2" --store "file://$WORK/store" \
        --cluster "nats://127.0.0.1:$NPORT" --cluster-name bench >"$WORK/node$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$2"
}
P1="$(free_port)"; node 1 "$P1"
P2="$(free_port)"; node 2 "$P2"
curl -sf -o /dev/null --data-binary @"$ROOT/guests/wat/numeric.wat" "http://127.0.0.1:$P1/api/v1/modules?name=num"

printf 'wrk.method = "POST"\nwrk.body = "[40, 2]"\n' >"$WORK/post.lua"
# Both answer 42, and the forwarded one was run by node 1.
local_node="$(curl -sf -D - -o /dev/null -d '[40, 2]' "http://127.0.0.1:$P1/api/v1/modules/num/call/add_i32?placement=local" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-wasmhost-node" {print $2}')"
remote_node="$(curl -sf -D - -o /dev/null -d '[40, 2]' "http://127.0.0.1:$P2/api/v1/modules/num/call/add_i32?placement=any" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-wasmhost-node" {print $2}')"
[[ -n "$local_node" && "$local_node" == "$remote_node" ]] || { echo "the forwarded call did not run on node 1 ($local_node vs $remote_node)" >&2; exit 1; }

to_us() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000000 } }'; }
run() { # run URL -> "rps p50_us p99_us"
    wrk -t1 -c1 -d2s -s "$WORK/post.lua" "$1" >/dev/null
    local out; out="$(wrk -t1 -c1 -d"${DURATION}s" --latency -s "$WORK/post.lua" "$1")"
    echo "$(awk '/^Requests\/sec:/ {print $2}' <<<"$out") $(to_us "$(awk '$1 == "50%" {print $2}' <<<"$out")") $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
}
# The floor: NATS's own request/reply round trip between two processes.
"$RTT" "nats://127.0.0.1:$NPORT" respond &
PIDS+=($!)
sleep 0.3
echo "NATS floor (two async-nats clients, 20000 sequential requests): $("$RTT" "nats://127.0.0.1:$NPORT" request 20000)"

printf 'round\tlocal_rps\tlocal_p50_us\tlocal_p99_us\tforwarded_rps\tforwarded_p50_us\tforwarded_p99_us\tadded_p50_us\n'
for r in $(seq "$ROUNDS"); do
    read -r lr l50 l99 <<<"$(run "http://127.0.0.1:$P1/api/v1/modules/num/call/add_i32?placement=local")"
    read -r fr f50 f99 <<<"$(run "http://127.0.0.1:$P2/api/v1/modules/num/call/add_i32?placement=any")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$lr" "$l50" "$l99" "$fr" "$f50" "$f99" "$(awk -v a="$f50" -v b="$l50" 'BEGIN {printf "%.0f", a - b}')"
done

# ---------------------------------------------------------------------------
# Failover: three nodes serving Loom's counter as an actor route, lease TTL
# $TTL; the actor's owner is SIGKILLed, and a client sends the next keyed
# message through another node again and again until it is acknowledged.
# Reported: SIGKILL -> first acknowledged reply.
TTL="${TTL:-3s}"
G="$ROOT/target/guests/out"
fnode() { # fnode N PORT
    WASMHOST_STATE="$WORK/fstate$1" "$BIN" serve --addr "127.0.0.1:$2" \
        --cluster "nats://127.0.0.1:$NPORT" --cluster-name failover --cluster-lease-ttl "$TTL" \
        --route "/counter=$G/as-counter-actor.wasm,mode=actor,function=execute" >"$WORK/fnode$1.log" 2>&1 &
    FPID[$1]=$!
    PIDS+=($!)
    wait_port "$2"
}
declare -A FPID FPORT
for n in 1 2 3; do FPORT[$n]="$(free_port)"; fnode "$n" "${FPORT[$n]}"; done
echo
echo "failover (lease TTL $TTL): SIGKILL of the owner -> first acknowledged reply through another node"
for round in 1 2 3; do
    actor="a$round"
    curl -sf -o /dev/null -d 'increment 1' "http://127.0.0.1:${FPORT[1]}/counter/$actor"
    owner_id="$(curl -sf -D - -o /dev/null -d 'get' "http://127.0.0.1:${FPORT[1]}/counter/$actor" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-wasmhost-node" {print $2}')"
    owner=""
    for n in 1 2 3; do
        [[ -n "${FPID[$n]:-}" ]] || continue
        id="$(curl -sf "http://127.0.0.1:${FPORT[$n]}/api/v1/cluster" | python3 -c 'import json,sys; print(json.load(sys.stdin)["node"])')"
        [[ "$id" == "$owner_id" ]] && owner=$n
    done
    [[ -n "$owner" ]] || { echo "no owner found for $actor" >&2; exit 1; }
    via=""
    for n in 1 2 3; do [[ "$n" != "$owner" && -n "${FPID[$n]:-}" ]] && via=$n; done
    start="$(date +%s%N)"
    kill -9 "${FPID[$owner]}"
    { wait "${FPID[$owner]}"; } 2>/dev/null || true
    until curl -sf -o /dev/null -m 10 -H "idempotency-key: $actor-2" -d 'increment 1' "http://127.0.0.1:${FPORT[$via]}/counter/$actor"; do sleep 0.01; done
    end="$(date +%s%N)"
    count="$(curl -sf -d 'get' "http://127.0.0.1:${FPORT[$via]}/counter/$actor")"
    printf 'round %s: %s ms (count %s, expected 2)\n' "$round" "$(( (end - start) / 1000000 ))" "$count"
    # The killed node comes back (a new node id).
    FPORT[$owner]="$(free_port)"
    fnode "$owner" "${FPORT[$owner]}"
done

# ---------------------------------------------------------------------------
# Throughput: a function worker route with placement=any on three nodes
# (requests to node 1, spread by NATS over the three), against one node
# alone running them itself. wrk -t2 -c64.
tnode() { # tnode N PORT NAME
    WASMHOST_STATE="$WORK/tstate$1" "$BIN" serve --addr "127.0.0.1:$2" \
        --cluster "nats://127.0.0.1:$NPORT" --cluster-name "$3" \
        --route "/add=$ROOT/guests/wat/numeric.wat,mode=function,function=add_i32" >"$WORK/tnode$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$2"
}
T1="$(free_port)"; tnode 1 "$T1" three
T2="$(free_port)"; tnode 2 "$T2" three
T3="$(free_port)"; tnode 3 "$T3" three
A1="$(free_port)"; tnode 4 "$A1" alone
tput() { wrk -t2 -c64 -d2s -s "$WORK/post.lua" "$1" >/dev/null; wrk -t2 -c64 -d"${DURATION}s" --latency -s "$WORK/post.lua" "$1" | awk '/^Requests\/sec:/ {r=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2} END {print r, p50, p99}'; }
echo
echo "throughput, function route add_i32, wrk -t2 -c64 (req/s p50 p99):"
echo "  one node alone, placement=local:          $(tput "http://127.0.0.1:$A1/add?placement=local")"
echo "  three nodes, to node 1, placement=any:    $(tput "http://127.0.0.1:$T1/add?placement=any")"
echo "  three nodes, to node 1, placement=auto:   $(tput "http://127.0.0.1:$T1/add")"
