#!/usr/bin/env bash
# Starts a throwaway OCI registry (Debian's `docker-registry`, distribution
# 2.8) on a free loopback port with a temporary storage directory, prints its
# address, and serves until interrupted (Ctrl-C), then deletes its storage.
# For trying `wasmhost push`/`pull` by hand; the tests (crates/wasmhost-cli/
# tests/oci.rs) start their own. Installs the package with apt-get when
# missing (see scripts/test-services.sh).
#
#   scripts/test-registry.sh            # prints e.g. 127.0.0.1:41234
#   wasmhost push app.wasm 127.0.0.1:41234/acme/app:v1
#   wasmhost run oci://127.0.0.1:41234/acme/app:v1
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REGISTRY="${WASMHOST_TEST_REGISTRY:-/usr/bin/docker-registry}"
[ -x "$REGISTRY" ] || "$ROOT/scripts/test-services.sh" >/dev/null
PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
DIR="$(mktemp -d)"
trap 'rm -rf "$DIR"' EXIT
cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YAML
echo "127.0.0.1:$PORT"
"$REGISTRY" serve "$DIR/config.yml"
