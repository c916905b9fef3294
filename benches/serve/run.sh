#!/usr/bin/env bash
# Load benchmark of `wasmhost serve` (docs/benchmarks.md, section "Server").
#
#   benches/serve/run.sh                 # build what is missing, run every target once
#   DURATION=10 CONNS=64 ROUNDS=2 benches/serve/run.sh
#   PIN=split benches/serve/run.sh       # server on CPU 0, load generator on CPU 1
#   ONLY="wasmtime-http wasmhost-http" benches/serve/run.sh
#   SKIP_BUILD=1 benches/serve/run.sh    # use the binaries as built (no cargo build)
#
# Targets, each its own server process on 127.0.0.1, loaded one at a time by
# the same load generator with the same settings:
#
#   wasmtime-http     wasmtime serve (wasmtime-cli 48) of target/guests/out/http-hello.wasm, GET /
#   wasmtime-pool     the same with -O pooling-allocator=y (wasmhost always uses the pool)
#   wasmhost-http     wasmhost serve of the same component, GET /
#   native-http       axum 0.8 hello world (benches/http-peer), GET /: the machine's HTTP floor
#   native-blocking   the same axum server answering from tokio's blocking pool
#                     (spawn_blocking), POST /: the hop a core-module worker makes, without wasm
#   wasmhost-core     wasmhost serve --route /hello=benches/serve/hello.wat (a WASI command,
#                     mode sync: a fresh sandbox per request), POST /hello with body "hi"
#   wasmhost-core-c8  the same with wasmhost's default admission (--max-concurrent 4 per core,
#                     --max-queue 256) instead of 256 slots
#   wasmhost-func     wasmhost serve --route /add=guests/wat/numeric.wat,mode=function,function=add_i32,
#                     POST /add with body [1,2] (fresh sandbox per request; answers 3)
#   wasmhost-core-spin  wasmhost-core with a second route, /spin (guests/wat/loop.wat: spins until
#                     its 2 s request timeout), kept busy by one client the whole run: the hello
#                     route's latency while a guest spins on the same server (peer: wasmhost-core)
#   native-tcp        tokio hello world over raw TCP (benches/http-peer): the machine's TCP floor
#   wasmhost-tcp      wasmhost serve --tcp PORT=benches/serve/hello.wat --mode sync
#
# HTTP targets are loaded with `wrk -t$THREADS -c$CONNS -d${DURATION}s --latency`
# (keep-alive connections); TCP targets with benches/http-peer's `tcp-load`
# (one connection per message: connect, write, half-close, read to EOF) with
# the same connection count, threads and duration. Each target gets a
# ${WARMUP}s warm-up run of the same load first, not counted.
#
# Prints one line per target and round (requests/s, p50, p99, errors, non-2xx,
# the CPU share other processes used meanwhile, the server's CPU time per
# request) and a table of medians with each target's ratio to its peers:
# wasmtime serve for wasmhost-http, native-http (and native-blocking) for the
# core-module routes, native-tcp for wasmhost-tcp. The raw outputs and the
# server logs stay in target/serve-bench/.
#
# Before measuring it waits (up to 10 minutes) for the machine to be quiet:
# under 10% of the CPUs busy over 3 s. WAIT_QUIET=0 only reports it.
#
# Installs what is missing: wrk (apt-get), wasmtime-cli 48.0.8 (cargo install
# into target/bench-tools, about 25 minutes on 2 cores), the release wasmhost,
# benches/http-peer's binaries, and the guests (scripts/build-guests.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

DURATION="${DURATION:-10}"   # seconds per measured run
WARMUP="${WARMUP:-3}"        # seconds of warm-up load per target
CONNS="${CONNS:-64}"         # concurrent connections
THREADS="${THREADS:-2}"      # load-generator threads
ROUNDS="${ROUNDS:-1}"        # measured runs per target (targets interleaved per round)
PIN="${PIN:-none}"           # none | split (server on CPU 0, load generator on CPU 1)
ONLY="${ONLY:-wasmtime-http wasmtime-pool wasmhost-http native-http native-blocking wasmhost-core wasmhost-core-spin wasmhost-core-c8 wasmhost-func native-tcp wasmhost-tcp}"

# wasmhost serve: the same limits as given to wasmtime serve (its defaults,
# said explicitly), and a slot for every connection (the defaults are 4
# slots per core and a 256-deep queue; wasmhost-core-c8 measures those).
WASMHOST_SERVE_FLAGS=(--max-memory 256MiB --timeout 30s)
WASMHOST_ADMISSION=(--max-concurrent 256 --max-queue 1024)
# wasmtime serve: WASI CLI interfaces (the guest's std imports
# wasi:cli/environment and exit), 256 MiB and 30 s like wasmhost's defaults,
# a fresh instance per request (the default for WASIp2, said explicitly).
WASMTIME_SERVE_FLAGS=(-Scli -W max-memory-size=268435456 -W timeout=30s --max-instance-reuse-count 1)

WASMTIME_VERSION=48.0.8
TOOLS="$ROOT/target/bench-tools"
WASMTIME="$TOOLS/bin/wasmtime"
WASMHOST="$ROOT/target/release/wasmhost"
PEER="$ROOT/target/release"
GUESTS="$ROOT/target/guests/out"
HELLO_WAT="$ROOT/benches/serve/hello.wat"
NUMERIC_WAT="$ROOT/guests/wat/numeric.wat"
LOOP_WAT="$ROOT/guests/wat/loop.wat"
OUT="$ROOT/target/serve-bench"
STAMP="$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/wasmhost-serve-bench.XXXXXX")"

SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# --- what the benchmark needs ------------------------------------------------

if ! command -v wrk >/dev/null; then
    log "installing wrk (apt-get)"
    apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
if ! command -v curl >/dev/null; then
    apt-get install -y curl >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y curl >/dev/null; }
fi
# wasmtime-cli only when a wasmtime target is asked for.
if [[ " $ONLY " == *" wasmtime-"* ]] && { [[ ! -x "$WASMTIME" ]] || ! "$WASMTIME" --version | grep -q "$WASMTIME_VERSION"; }; then
    log "installing wasmtime-cli $WASMTIME_VERSION into $TOOLS (about 25 minutes on 2 cores)"
    cargo install wasmtime-cli --version "$WASMTIME_VERSION" --locked --root "$TOOLS"
fi
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building the release wasmhost and benches/http-peer"
    cargo build --release -p wasmhost-cli
    cargo build --release --manifest-path benches/http-peer/Cargo.toml --target-dir "$ROOT/target"
fi
if [[ ! -f "$GUESTS/http-hello.wasm" ]]; then
    scripts/build-guests.sh
fi

# --- helpers -------------------------------------------------------------------

# A loopback port nothing listens on, below the kernel's ephemeral range
# (the TCP load opens hundreds of thousands of connections, whose local
# ports come from that range and linger in TIME_WAIT).
EPHEMERAL_LOW="$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)"
free_port() {
    local p
    while :; do
        p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

server_cpu=()
load_cpu=()
case "$PIN" in
    none) ;;
    split) server_cpu=(taskset -c 0); load_cpu=(taskset -c 1) ;;
    *) log "PIN must be none or split"; exit 2 ;;
esac

# start NAME CMD...: starts a server in the background, its output in a log.
start() {
    local name="$1"; shift
    "${server_cpu[@]}" "$@" >"$OUT/$STAMP-$name.server.log" 2>&1 &
    SERVER_PID=$!
}

# wait_http URL METHOD BODY EXPECT: until URL answers EXPECT (30 s at most).
wait_http() {
    local url="$1" method="$2" body="$3" expect="$4" got
    for _ in $(seq 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "server died; see $OUT/$STAMP-*.server.log"; return 1; }
        if [[ "$method" == GET ]]; then
            got="$(curl -sf "$url" 2>/dev/null)" || got=""
        else
            got="$(curl -sf -X "$method" --data-binary "$body" "$url" 2>/dev/null)" || got=""
        fi
        if [[ "$got" == "$expect" ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "$url did not answer '$expect' (last: '$got')"
    return 1
}

# wait_tcp PORT: until a message over PORT gets "hello, world".
wait_tcp() {
    local port="$1" got
    for _ in $(seq 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "server died"; return 1; }
        got="$("$PEER/tcp-load" "127.0.0.1:$port" -c 1 -d 0.05 2>/dev/null || true)"
        if [[ "$got" =~ requests=([1-9][0-9]*)\ errors=0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    log "tcp port $port never answered"
    return 1
}

# CPU seconds used so far: by the whole machine (busy, all CPUs), by the
# server process (all its threads), and by this shell's finished children
# (the load generator). What the machine used beyond the two is "other":
# a compiler or a test run of someone else's that would skew the numbers.
HZ="$(getconf CLK_TCK)"
machine_busy_s() {
    awk -v hz="$HZ" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
server_s() {
    if [[ -r "/proc/$SERVER_PID/stat" ]]; then
        sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk -v hz="$HZ" '{ printf "%.2f", ($12 + $13) / hz }'
    else
        echo 0
    fi
}
# Sets CHILDREN_S; `times` must run in this shell, not in a $(...) subshell,
# to see the load generator.
children_s() {
    times >"$WORK/times"
    CHILDREN_S="$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%.2f", t
    }' "$WORK/times")"
}
# other_pct B0 S0 C0 B1 S1 C1 SECONDS: other processes' share of all CPUs, %.
other_pct() {
    awk -v b="$(($(nproc)))" -v d="$7" -v ob="$1" -v os="$2" -v oc="$3" -v nb="$4" -v ns="$5" -v nc="$6" \
        'BEGIN { o = (nb - ob) - (ns - os) - (nc - oc); if (o < 0) o = 0; printf "%.0f", 100 * o / (b * d) }'
}
# Waits (up to 10 minutes) until the machine is quiet: under 10% of all
# CPUs busy over 3 s. WAIT_QUIET=0 skips the wait.
wait_quiet() {
    local b0 b1 pct
    for _ in $(seq 200); do
        b0="$(machine_busy_s)"; sleep 3; b1="$(machine_busy_s)"
        pct="$(awk -v a="$b0" -v b="$b1" -v n="$(nproc)" 'BEGIN { printf "%.0f", 100 * (b - a) / (3 * n) }')"
        if (( pct < 10 )); then
            log "  machine quiet: ${pct}% of the CPUs busy over 3 s"
            return
        fi
        [[ "${WAIT_QUIET:-1}" == 1 ]] || { log "  machine busy: ${pct}% (WAIT_QUIET=0: going on)"; return; }
        log "  machine busy: ${pct}% of the CPUs over 3 s; waiting"
    done
    log "  still busy after 10 minutes: going on; see the other_cpu column"
}

# to_ms VALUE: wrk's "1.23ms" / "456.00us" / "1.02s" in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else { printf "nan" }
    }'
}

# The lua script for POST targets: the body in $1.
post_script() {
    local f="$WORK/post-$RANDOM.lua"
    printf 'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/octet-stream"\n' "$1" >"$f"
    echo "$f"
}

RESULTS="$OUT/$STAMP-results.tsv"
printf 'round\ttarget\trps\tp50_ms\tp99_ms\terrors\tnon2xx\tother_cpu_pct\tserver_cpu_us_per_req\n' >"$RESULTS"

# load_http ROUND NAME URL [LUA]: warm-up, then the measured wrk run.
load_http() {
    local round="$1" name="$2" url="$3" lua="${4:-}" raw rps p50 p99 errors non2xx requests
    local script=()
    [[ -n "$lua" ]] && script=(-s "$lua")
    "${load_cpu[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "${script[@]}" "$url" >/dev/null
    raw="$OUT/$STAMP-$name-r$round.wrk.txt"
    snapshot
    "${load_cpu[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "${script[@]}" "$url" >"$raw"
    rps="$(awk '/^Requests\/sec:/ {print $2}' "$raw")"
    p50="$(to_ms "$(awk '$1 == "50%" {print $2}' "$raw")")"
    p99="$(to_ms "$(awk '$1 == "99%" {print $2}' "$raw")")"
    errors="$(awk '/Socket errors:/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$raw")"
    non2xx="$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$raw")"
    other
    requests="$(awk '/ requests in / {print $1}' "$raw")"
    record "$round" "$name" "$rps" "$p50" "$p99" "${errors:-0}" "${non2xx:-0}" "$OTHER" "$(us_per "$requests")"
}

# load_tcp ROUND NAME PORT: warm-up, then the measured tcp-load run.
load_tcp() {
    local round="$1" name="$2" port="$3" raw line
    "${load_cpu[@]}" "$PEER/tcp-load" "127.0.0.1:$port" -c "$CONNS" -t "$THREADS" -d "$WARMUP" >/dev/null 2>&1
    raw="$OUT/$STAMP-$name-r$round.tcp-load.txt"
    snapshot
    "${load_cpu[@]}" "$PEER/tcp-load" "127.0.0.1:$port" -c "$CONNS" -t "$THREADS" -d "$DURATION" >"$raw" 2>&1
    other
    line="$(grep '^requests=' "$raw")"
    field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$line"; }
    record "$round" "$name" "$(field rps)" "$(field p50_ms)" "$(field p99_ms)" "$(field errors)" 0 "$OTHER" "$(us_per "$(field requests)")"
}

# snapshot / other: CPU used by other processes during the measured run.
# Sets OTHER (percent) after the run that began with snapshot.
snapshot() { children_s; SNAP=("$(machine_busy_s)" "$(server_s)" "$CHILDREN_S" "$(date +%s.%N)"); }
other() {
    local secs busy srv
    busy="$(machine_busy_s)"; srv="$(server_s)"; children_s
    secs="$(awk -v a="${SNAP[3]}" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')"
    OTHER="$(other_pct "${SNAP[0]}" "${SNAP[1]}" "${SNAP[2]}" "$busy" "$srv" "$CHILDREN_S" "$secs")"
    SERVER_CPU="$(awk -v a="${SNAP[1]}" -v b="$srv" 'BEGIN { printf "%.2f", b - a }')"
}
# us_per REQUESTS: the server's CPU time per request in the last run, in µs.
us_per() { awk -v c="$SERVER_CPU" -v n="$1" 'BEGIN { if (n > 0) printf "%.1f", c * 1e6 / n; else print "nan" }'; }

record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"
    printf '  %-16s %10s req/s   p50 %8s ms   p99 %8s ms   errors %s   non-2xx %s   other CPU %s%%   server %s µs CPU/req\n' "${@:2}" >&2
}

# --- the targets -----------------------------------------------------------------

# wasmhost serve; each target gets its own --state directory (a server locks
# its state's key-value store), so nothing is shared with other runs.
WASMHOST_SERVE=("$WASMHOST" serve "${WASMHOST_SERVE_FLAGS[@]}")
WASMHOST_WIDE=("${WASMHOST_SERVE[@]}" "${WASMHOST_ADMISSION[@]}")

run_target() {
    local round="$1" name="$2" port tport
    port="$(free_port)"
    case "$name" in
        wasmtime-http)
            start "$name" "$WASMTIME" serve "${WASMTIME_SERVE_FLAGS[@]}" --addr "127.0.0.1:$port" "$GUESTS/http-hello.wasm"
            wait_http "http://127.0.0.1:$port/" GET "" "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/" ;;
        wasmtime-pool)
            start "$name" "$WASMTIME" serve "${WASMTIME_SERVE_FLAGS[@]}" -O pooling-allocator=y \
                --addr "127.0.0.1:$port" "$GUESTS/http-hello.wasm"
            wait_http "http://127.0.0.1:$port/" GET "" "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/" ;;
        wasmhost-http)
            start "$name" "${WASMHOST_WIDE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" "$GUESTS/http-hello.wasm"
            wait_http "http://127.0.0.1:$port/" GET "" "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/" ;;
        native-http)
            start "$name" "$PEER/native-http" "127.0.0.1:$port"
            wait_http "http://127.0.0.1:$port/" GET "" "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/" ;;
        native-blocking)
            start "$name" "$PEER/native-http" "127.0.0.1:$port" --blocking
            wait_http "http://127.0.0.1:$port/" POST hi "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/" "$(post_script hi)" ;;
        wasmhost-core-c8)
            start "$name" "${WASMHOST_SERVE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" --route "/hello=$HELLO_WAT"
            wait_http "http://127.0.0.1:$port/hello" POST hi "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/hello" "$(post_script hi)" ;;
        wasmhost-core)
            start "$name" "${WASMHOST_WIDE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" --route "/hello=$HELLO_WAT"
            wait_http "http://127.0.0.1:$port/hello" POST hi "hello, world"
            load_http "$round" "$name" "http://127.0.0.1:$port/hello" "$(post_script hi)" ;;
        wasmhost-core-spin)
            start "$name" "${WASMHOST_WIDE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" \
                --request-timeout 2s --route "/hello=$HELLO_WAT" --route "/spin=$LOOP_WAT,mode=function,function=run"
            wait_http "http://127.0.0.1:$port/hello" POST hi "hello, world"
            # One spinning guest at all times (each ends at its 2 s timeout), until the run ends.
            ( while kill -0 "$SERVER_PID" 2>/dev/null; do
                  curl -s -o /dev/null -X POST "http://127.0.0.1:$port/spin" || sleep 0.1
              done ) &
            local spinner=$!
            sleep 0.5
            load_http "$round" "$name" "http://127.0.0.1:$port/hello" "$(post_script hi)"
            kill "$spinner" 2>/dev/null || true ;;
        wasmhost-func)
            start "$name" "${WASMHOST_WIDE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" \
                --route "/add=$NUMERIC_WAT,mode=function,function=add_i32"
            wait_http "http://127.0.0.1:$port/add" POST "[1,2]" "3"
            load_http "$round" "$name" "http://127.0.0.1:$port/add" "$(post_script '[1,2]')" ;;
        native-tcp)
            start "$name" "$PEER/native-tcp" "127.0.0.1:$port"
            wait_tcp "$port"
            load_tcp "$round" "$name" "$port" ;;
        wasmhost-tcp)
            tport="$(free_port)"
            start "$name" "${WASMHOST_WIDE[@]}" --state "$WORK/state-$name" --addr "127.0.0.1:$port" --tcp "$tport=$HELLO_WAT" --mode sync
            wait_tcp "$tport"
            load_tcp "$round" "$name" "$tport" ;;
        *) log "unknown target $name"; exit 2 ;;
    esac
    stop_server
}

log "wasmhost serve load benchmark: wrk -t$THREADS -c$CONNS -d${DURATION}s --latency (tcp-load alike), warm-up ${WARMUP}s, pin=$PIN, $(nproc) CPUs"
wait_quiet
for round in $(seq "$ROUNDS"); do
    log "round $round"
    for name in $ONLY; do
        run_target "$round" "$name"
    done
done

# --- the table: medians over rounds, ratio to the peer -------------------------

awk -F'\t' -v rounds="$ROUNDS" '
    NR == 1 { next }
    {
        n[$2]++; rps[$2, n[$2]] = $3; p50[$2, n[$2]] = $4; p99[$2, n[$2]] = $5; cpu[$2, n[$2]] = $9
        err[$2] += $6; bad[$2] += $7; if ($8 + 0 > oth[$2]) oth[$2] = $8 + 0
        if (!($2 in seen)) { seen[$2] = 1; order[++k] = $2 }
    }
    function median(arr, name, cnt,    i, j, t, v) {
        for (i = 1; i <= cnt; i++) v[i] = arr[name, i] + 0
        for (i = 1; i <= cnt; i++) for (j = i + 1; j <= cnt; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return cnt % 2 ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
    }
    END {
        peer["wasmhost-http"] = "wasmtime-http wasmtime-pool"
        peer["wasmhost-core"] = "native-http native-blocking"
        peer["wasmhost-core-c8"] = "native-http native-blocking"
        peer["wasmhost-core-spin"] = "wasmhost-core"
        peer["wasmhost-func"] = "native-http native-blocking"
        peer["native-blocking"] = "native-http"
        peer["wasmhost-tcp"] = "native-tcp"
        for (i = 1; i <= k; i++) {
            t = order[i]
            R[t] = median(rps, t, n[t]); P50[t] = median(p50, t, n[t]); P99[t] = median(p99, t, n[t]); C[t] = median(cpu, t, n[t])
        }
        printf "\n%-16s %10s %9s %9s %7s %8s %6s %9s   %s\n", "target", "req/s", "p50 ms", "p99 ms", "errors", "non-2xx", "other", "µs/req", "vs peer: req/s ratio (p99 ratio)"
        for (i = 1; i <= k; i++) {
            t = order[i]
            vs = ""
            if (t in peer) {
                np = split(peer[t], ps, " ")
                for (j = 1; j <= np; j++)
                    if ((ps[j] in R) && R[ps[j]] > 0)
                        vs = vs sprintf("%s%.2fx %s (p99 %.2fx)", vs == "" ? "" : ", ", R[t] / R[ps[j]], ps[j], P99[t] / P99[ps[j]])
            }
            printf "%-16s %10.0f %9.3f %9.3f %7d %8d %5d%% %9.1f   %s\n", t, R[t], P50[t], P99[t], err[t], bad[t], oth[t], C[t], vs
        }
        print "(other: the largest share of all CPUs that other processes used during a measured run;"
        print " µs/req: the server process'"'"'s CPU time (all threads, user + kernel) per request)"
        if (rounds > 1) print "(medians over " rounds " rounds)"
    }' "$RESULTS"
echo "raw outputs: $OUT/$STAMP-*"
