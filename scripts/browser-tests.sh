#!/usr/bin/env bash
# Runs the headless-Chromium tests in tests/browser/ against a debug build of
# `wasmhost serve`.
#
#   scripts/browser-tests.sh                   # every tests/browser/*.test.mjs
#   scripts/browser-tests.sh dashboard         # only the files whose name contains "dashboard"
#
# Installs what it needs: Debian's `chromium` (apt-get, when /usr/bin/chromium
# is missing) and the locked playwright-core (`npm ci`, when node_modules is
# missing or tests/browser/package-lock.json changed). Builds the dashboard's
# jco bundle (scripts/build-jco.sh, which the binary embeds), then the binary with
# `cargo test --workspace --no-run` (the same features as the test run, so the
# binary `cargo test` built is reused, not built a second time) and expects the guests in target/guests/out
# (scripts/build-guests.sh). Each test file is its own node script; their
# environment:
#
#   WASMHOST   target/debug/wasmhost      GUESTS     target/guests/out
#   ARTIFACTS  target/browser-artifacts   CHROMIUM   /usr/bin/chromium
#
# Screenshots land in target/browser-artifacts/. Exits non-zero when any test
# fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESTS="$ROOT/tests/browser"
CHROMIUM=/usr/bin/chromium
# Cargo's target directory, wherever CARGO_TARGET_DIR puts it.
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET" = /* ]] || TARGET="$ROOT/$TARGET"

# --- Chromium (Debian's package: nothing is downloaded outside apt) ----------
if [[ ! -x "$CHROMIUM" ]]; then
  echo "installing chromium (apt-get)"
  SUDO=()
  [[ "$(id -u)" -eq 0 ]] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  # Without package lists apt knows no candidate: update first when needed.
  if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    "${SUDO[@]}" apt-get update -qq
  fi
  "${SUDO[@]}" apt-get install -y -qq chromium >/dev/null
  [[ -x "$CHROMIUM" ]] || { echo "error: apt-get installed chromium but $CHROMIUM is missing" >&2; exit 1; }
fi

# --- node >= 20 and playwright-core, exactly as locked ------------------------
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' 2>/dev/null; then
  echo "error: the browser tests need node >= 20 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
# `npm ci` only when node_modules is missing or package-lock.json changed since
# the last install (the lock's hash is kept in node_modules).
lock_hash="$(sha256sum "$TESTS/package-lock.json" | cut -d' ' -f1)"
stamp="$TESTS/node_modules/.wasmhost-lock.sha256"
if [[ ! -d "$TESTS/node_modules/playwright-core" || "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]]; then
  (cd "$TESTS" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" >"$stamp"
fi

# --- the binary (with the dashboard's jco bundle) and the guests ----------------
"$ROOT/scripts/build-jco.sh" >/dev/null
cargo test --workspace --no-run --quiet
WASMHOST="$TARGET/debug/wasmhost"
GUESTS="$ROOT/target/guests/out"
ARTIFACTS="$TARGET/browser-artifacts"
if [[ ! -e "$GUESTS/numeric.wat" || ! -e "$GUESTS/wit-component.wasm" ]]; then
  echo "error: no guests in $GUESTS: run scripts/build-guests.sh first" >&2
  exit 1
fi
mkdir -p "$ARTIFACTS"
export WASMHOST GUESTS ARTIFACTS CHROMIUM

# --- the tests --------------------------------------------------------------------
shopt -s nullglob
files=("$TESTS"/*.test.mjs)
if [[ $# -gt 0 ]]; then
  selected=()
  for f in "${files[@]}"; do
    for pattern in "$@"; do
      [[ "$(basename "$f")" == *"$pattern"* ]] && { selected+=("$f"); break; }
    done
  done
  files=("${selected[@]}")
fi
if [[ ${#files[@]} -eq 0 ]]; then
  echo "error: no test files matched in $TESTS" >&2
  exit 1
fi

failed=()
passed_tests=0
failed_tests=0
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for f in "${files[@]}"; do
  name="$(basename "$f")"
  echo "--- $name"
  # Each file ends with "NAME: N passed, N failed"; the counts are summed below.
  if (cd "$TESTS" && node "$f") 2>&1 | tee "$log"; [[ ${PIPESTATUS[0]} -eq 0 ]]; then
    echo "--- $name: passed"
  else
    echo "--- $name: FAILED"
    failed+=("$name")
  fi
  if counts="$(grep -Eo '[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1)" && [[ -n "$counts" ]]; then
    read -r p _ q _ <<<"${counts//,/}"
    passed_tests=$((passed_tests + p))
    failed_tests=$((failed_tests + q))
  else
    failed_tests=$((failed_tests + 1)) # it died before reporting
  fi
done

echo
echo "screenshots: ${ARTIFACTS#"$ROOT"/}/"
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "browser tests failed in: ${failed[*]}" >&2
fi
echo "browser: $passed_tests passed, $failed_tests failed"
[[ ${#failed[@]} -eq 0 ]]
