#!/usr/bin/env bash
# Chaos soak of `wasmhost serve` (crates/wasmhost-cli/tests/soak.rs): a
# bounded mixed load on loopback — good calls, traps, timeouts, memory
# bombs, stdout floods, oversize bodies, slow clients, disconnects, junk
# uploads, an actor under concurrent senders — then checks for panics,
# answers without a code, RSS drift, leaked fds and slots, good calls' p99
# and a clean drain. Prints the figures.
#
#   scripts/soak.sh            # 300 s, release build
#   scripts/soak.sh 3600       # an hour
#   scripts/soak.sh 60 --debug # the debug build (what CI runs, for 20 s)
#
# Needs the guests (scripts/build-guests.sh, run here if they are missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_ARG="${1:-300}"
PROFILE=(--release)
[[ "${2:-}" == "--debug" ]] && PROFILE=()
[[ -f target/guests/out/as-counter-actor.wasm ]] || scripts/build-guests.sh
SOAK_SECONDS="$SECONDS_ARG" exec cargo test "${PROFILE[@]}" -p wasmhost-cli --test soak -- --nocapture
