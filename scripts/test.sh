#!/usr/bin/env bash
# The test command: installs what the tests need, builds the guest programs
# from source, checks formatting and lints, then runs every test.
# `.ci/run` calls exactly this.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# One clean build, not an edited tree: incremental state would only cost disk
# (it filled CI's disk once).
export CARGO_INCREMENTAL=0

step() { printf '\n==> %s\n' "$*"; }

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "guests (Rust for wasm32-wasip1/wasip2/unknown-unknown, AssemblyScript, WAT)"
scripts/build-guests.sh

step "the dashboard's jco bundle (npm ci + esbuild), embedded by the server crate"
scripts/build-jco.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "module layering (no two modules import each other)"
for src in crates/*/src; do
    if [[ "$src" == crates/wasmhost/src ]]; then
        python3 scripts/module-graph.py --ordered "$src" >/dev/null
    else
        python3 scripts/module-graph.py "$src" >/dev/null
    fi
done

step "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "cargo deny (licenses, bans, sources; see deny.toml for why not advisories)"
if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "installing cargo-deny (crates.io)"
    cargo install --locked --quiet cargo-deny
fi
cargo deny --log-level error check licenses bans sources

step "cargo test"
scripts/test-services.sh  # S3 (moto), Azure Blob (Azurite) emulators; OCI registry (docker-registry)
cargo test --workspace --quiet

step "fuzzing: every cargo-fuzz target for a bounded time (nightly, cargo-fuzz)"
scripts/fuzz.sh --ci "${WASMHOST_FUZZ_SECONDS:-60}"

step "browser tests (headless Chromium)"
scripts/browser-tests.sh
