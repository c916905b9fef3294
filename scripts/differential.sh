#!/usr/bin/env bash
# Differential runs: wasm-smith modules (no imports, numeric exports) called
# through wasmhost's `invoke` and through raw wasmtime with default settings,
# in a release build. Results and trap kinds must be identical; wasmhost's
# own limits are reported by their codes (see
# crates/wasmhost-fuzz/src/differential.rs).
#
#   scripts/differential.sh [COUNT] [START]   seeds START..START+COUNT (default 100000 from 0)
#
# Example: a first mismatch prints its seed; rerun just that one with
#   scripts/differential.sh 1 4242
# `cargo test` runs seeds 0..600 in debug (Cranelift unoptimized is slow).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL=0
case "${1:-}" in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
COUNT="${1:-100000}"
START="${2:-0}"
[[ "$COUNT" =~ ^[0-9]+$ && "$START" =~ ^[0-9]+$ ]] || {
    echo "usage: scripts/differential.sh [COUNT] [START] (numbers)" >&2
    exit 2
}
echo "==> differential: seeds $START..$((START + COUNT)) (release build)"
start_time=$(date +%s)
WASMHOST_DIFF_SEED="$START" WASMHOST_DIFF_MODULES="$COUNT" \
    cargo test --release -p wasmhost-fuzz --test differential -- \
    --nocapture --exact wasmhost_invoke_matches_wasmtime
echo "==> $COUNT seeds in $(( $(date +%s) - start_time ))s"
