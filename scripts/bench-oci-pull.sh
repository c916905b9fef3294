#!/usr/bin/env bash
# Times `wasmhost pull` of a 10 MB module from a local registry against
# `curl` fetching the same blob (GET /v2/NAME/blobs/DIGEST) from the same
# registry: several runs each, medians and their ratio (issue 14's goal:
# at most 1.5x).
#
#   scripts/bench-oci-pull.sh [RUNS]          # default 11 runs
#
# Needs a release build of the CLI (built here unless WASMHOST names a
# binary), Debian's docker-registry (scripts/test-services.sh installs it),
# curl and python3. The registry runs on a free loopback port with its own
# storage, removed at the end. Each `wasmhost pull` starts from an empty
# state directory, so it downloads, checks the digest and stores the blob
# every time; curl writes the blob to a file. Results go to stdout; see
# docs/benchmarks.md, "OCI pull (issue 14)".
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNS="${1:-11}"
REGISTRY_EXE="${WASMHOST_TEST_REGISTRY:-/usr/bin/docker-registry}"
[ -x "$REGISTRY_EXE" ] || { echo "bench-oci-pull.sh: $REGISTRY_EXE missing (scripts/test-services.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "bench-oci-pull.sh: curl is required" >&2; exit 1; }

if [ -z "${WASMHOST:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p wasmhost-cli)
    WASMHOST="${CARGO_TARGET_DIR:-$ROOT/target}/release/wasmhost"
fi

WORK="$(mktemp -d)"
REG_PID=""
cleanup() {
    [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat >"$WORK/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
"$REGISTRY_EXE" serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null && break
    sleep 0.1
done

# A valid 10 MiB core module: one memory, one active data segment of
# random bytes.
python3 - "$WORK/big.wasm" <<'EOF'
import os, sys
def leb(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)
def section(id, body):
    return bytes([id]) + leb(len(body)) + body
size = 10 * 1024 * 1024
data = os.urandom(size)
memory = section(5, leb(1) + b"\x00" + leb(size // 65536 + 1))
segment = leb(0) + b"\x41\x00\x0b" + leb(len(data)) + data  # active, memory 0, i32.const 0
datas = section(11, leb(1) + segment)
open(sys.argv[1], "wb").write(b"\0asm\x01\0\0\0" + memory + datas)
EOF

REF="127.0.0.1:$PORT/bench/big:v1"
PUSHED="$(WASMHOST_STATE="$WORK/push-state" "$WASMHOST" push "$WORK/big.wasm" "$REF")"
DIGEST="$(echo "$PUSHED" | awk '{print $3}')"
BYTES="$(wc -c <"$WORK/big.wasm")"
echo "pushed: $PUSHED"

now() { date +%s%N; }
pull_times=()
curl_times=()
for i in $(seq "$RUNS"); do
    rm -rf "$WORK/state" "$WORK/curl.out"
    t0="$(now)"
    WASMHOST_STATE="$WORK/state" "$WASMHOST" pull "$REF" >/dev/null
    t1="$(now)"
    curl -fs -o "$WORK/curl.out" "http://127.0.0.1:$PORT/v2/bench/big/blobs/$DIGEST"
    t2="$(now)"
    pull_times+=($(( (t1 - t0) / 1000 )))
    curl_times+=($(( (t2 - t1) / 1000 )))
done
cmp -s "$WORK/curl.out" "$WORK/big.wasm" || { echo "curl fetched other bytes" >&2; exit 1; }

python3 - "$BYTES" "${pull_times[*]}" "${curl_times[*]}" <<'EOF'
import statistics, sys
size = int(sys.argv[1])
pull = [int(x) / 1000 for x in sys.argv[2].split()]
curl = [int(x) / 1000 for x in sys.argv[3].split()]
mp, mc = statistics.median(pull), statistics.median(curl)
print(f"module: {size} bytes, {len(pull)} runs each")
print(f"wasmhost pull  median {mp:8.1f} ms   (min {min(pull):.1f}, max {max(pull):.1f})")
print(f"curl           median {mc:8.1f} ms   (min {min(curl):.1f}, max {max(curl):.1f})")
print(f"ratio (pull / curl): {mp / mc:.2f}x   goal <= 1.5x")
EOF
