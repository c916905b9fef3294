#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), on the harnesses of crates/wasmhost-fuzz.
#
#   scripts/fuzz.sh TARGET [SECONDS]   fuzz one target (default 600 s)
#   scripts/fuzz.sh --ci [SECONDS]     every target for SECONDS each (default 60): CI's bounded pass
#   scripts/fuzz.sh --minimize TARGET  merge what runs found into fuzz/corpus/TARGET, minimized
#   scripts/fuzz.sh --list             the targets
#
# Example, an hour on the HTTP API, then keep what it found:
#   scripts/fuzz.sh http_api 3600 && scripts/fuzz.sh --minimize http_api
#
# Needs a nightly toolchain (libFuzzer's instrumentation); installs
# cargo-fuzz from crates.io when it is missing. Builds into
# ${CARGO_TARGET_DIR:-target}/fuzz; new inputs go to
# ${CARGO_TARGET_DIR:-target}/fuzz/work/corpus/TARGET (the committed
# fuzz/corpus/TARGET is only read). A crash stops the run with its input
# under .../fuzz/work/artifacts/TARGET/: fix the code, then copy the input to
# fuzz/regressions/TARGET/ so `cargo test -p wasmhost-fuzz` replays it.
# Sanitizer: none (the code under test is safe Rust; what is caught is a
# panic, an abort, a timeout or running out of memory), which runs several
# times faster than AddressSanitizer.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_INCREMENTAL=0

TARGETS=(module_bytes module_smith manifest_toml manifest_extism manifest_packet component_args reference http_api)
CARGO_FUZZ_VERSION=0.13.2
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz"
WORK="$TARGET_DIR/work"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

need_tools() {
    if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        echo "error: no nightly Rust toolchain: cargo-fuzz needs one for libFuzzer's instrumentation." >&2
        echo "       Install it with: rustup toolchain install nightly --profile minimal" >&2
        exit 1
    fi
    if ! cargo fuzz --version >/dev/null 2>&1; then
        echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
        cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
    fi
}

build() {
    echo "==> building the fuzz targets (nightly, release, no sanitizer) into $TARGET_DIR"
    cargo +nightly fuzz build --sanitizer none --fuzz-dir fuzz --target-dir "$TARGET_DIR" "$@"
}

# run TARGET SECONDS: fuzz, print the figures, fail on a crash.
run() {
    local target="$1" seconds="$2"
    mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target" "$WORK/logs"
    local log="$WORK/logs/$target.log"
    echo "==> fuzzing $target for ${seconds}s (log: $log)"
    local status=0
    cargo +nightly fuzz run --sanitizer none --fuzz-dir fuzz --target-dir "$TARGET_DIR" \
        "$target" "$WORK/corpus/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$target/" >"$log" 2>&1 || status=$?
    local execs rate
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    printf '%-16s %12s execs %8s exec/s %6s s  %s\n' "$target" "${execs:-?}" "${rate:-?}" "$seconds" \
        "$([[ $status == 0 ]] && echo ok || echo CRASH)" | tee -a "$WORK/summary.txt"
    if [[ $status != 0 ]]; then
        echo "error: $target crashed (exit $status). The end of its log:" >&2
        tail -n 40 "$log" >&2
        echo "Inputs: $(ls "$WORK/artifacts/$target/" | tr '\n' ' ')" >&2
        echo "Reproduce: cargo +nightly fuzz run --sanitizer none --fuzz-dir fuzz --target-dir $TARGET_DIR $target $WORK/artifacts/$target/<file>" >&2
        echo "Once fixed, keep it: cp $WORK/artifacts/$target/<file> fuzz/regressions/$target/" >&2
        return 1
    fi
}

case "${1:-}" in
    ""|-h|--help)
        usage
        ;;
    --list)
        printf '%s\n' "${TARGETS[@]}"
        ;;
    --ci)
        seconds="${2:-60}"
        need_tools
        build
        : >"$WORK/summary.txt" 2>/dev/null || { mkdir -p "$WORK"; : >"$WORK/summary.txt"; }
        failed=0
        for t in "${TARGETS[@]}"; do run "$t" "$seconds" || failed=1; done
        echo "==> fuzz summary"
        cat "$WORK/summary.txt"
        if [[ -n "${CI:-}" ]]; then
            # The instrumented release build is ~5 GB: CI does not keep it.
            rm -rf "$TARGET_DIR/x86_64-unknown-linux-gnu" "$TARGET_DIR/release"
        fi
        exit "$failed"
        ;;
    --minimize)
        target="${2:?usage: scripts/fuzz.sh --minimize TARGET}"
        need_tools
        build "$target"
        fresh="$WORK/minimized/$target"
        rm -rf "$fresh" && mkdir -p "$fresh" "$WORK/corpus/$target"
        cargo +nightly fuzz run --sanitizer none --fuzz-dir fuzz --target-dir "$TARGET_DIR" \
            "$target" "$fresh" "fuzz/corpus/$target" "$WORK/corpus/$target" -- \
            -merge=1 -timeout=20 -rss_limit_mb=4096 -max_len=8192
        rm -rf "fuzz/corpus/$target" && cp -r "$fresh" "fuzz/corpus/$target"
        echo "fuzz/corpus/$target: $(ls "fuzz/corpus/$target" | wc -l) inputs, $(du -sh "fuzz/corpus/$target" | cut -f1)"
        ;;
    -*)
        usage >&2
        exit 2
        ;;
    *)
        target="$1"
        seconds="${2:-600}"
        if [[ ! " ${TARGETS[*]} " == *" $target "* ]]; then
            echo "error: no fuzz target \`$target\`; the targets: ${TARGETS[*]}" >&2
            exit 2
        fi
        need_tools
        build "$target"
        mkdir -p "$WORK"
        run "$target" "$seconds"
        ;;
esac
