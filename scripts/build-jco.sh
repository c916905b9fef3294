#!/usr/bin/env bash
# Builds the dashboard's jco bundle, which `wasmhost serve` embeds to run
# components in the browser ("Run in this browser" on a component):
#
#   scripts/build-jco.sh
#
# Installs exactly what crates/wasmhost-server/jco/package-lock.json locks
# (`npm ci`: @bytecodealliance/jco, @bytecodealliance/preview2-shim, esbuild;
# only when node_modules is missing or the lock changed), then bundles with
# esbuild (crates/wasmhost-server/jco/build.mjs) into
# crates/wasmhost-server/assets/jco/ (not committed):
#
#   jco-bundle.js                               jco's transpiler + the WASI browser shims
#   js-component-bindgen-component.core*.wasm   the transpiler's own core modules
#
# The server crate's build script embeds them when they are there; a
# `wasmhost` built without them serves the dashboard all the same and says,
# when a component is run in the browser, that this script was not run.
# Run this before `cargo build` (scripts/serve.sh and scripts/test.sh do).
# Needs node >= 20 with npm. Idempotent: files are rewritten only when
# their bytes change, so cargo rebuilds the server only then.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$ROOT/crates/wasmhost-server/jco"

if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "error: the jco bundle needs node >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
lock_hash="$(sha256sum "$DIR/package-lock.json" | cut -d' ' -f1)"
stamp="$DIR/node_modules/.wasmhost-lock.sha256"
if [[ ! -d "$DIR/node_modules/esbuild" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
  echo "installing jco and esbuild (npm ci)"
  (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" >"$stamp"
fi
node "$DIR/build.mjs" "$ROOT/crates/wasmhost-server/assets/jco"
