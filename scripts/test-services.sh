#!/usr/bin/env bash
# Installs the storage emulators the wasmhost-store tests run against, into
# the git-ignored target/test-tools/, idempotently, and prints their paths:
#
#   target/test-tools/venv/bin/moto_server               S3 API (PyPI `moto[server]`)
#   target/test-tools/node_modules/.bin/azurite-blob     Azure Blob (npm `azurite`)
#   /usr/bin/docker-registry                             OCI registry (Debian `docker-registry`,
#                                                        distribution 2.8), for the CLI's tests/oci.rs
#   /usr/bin/skopeo                                      another OCI client (Debian `skopeo`), and
#   target/test-tools/oras-venv/bin/python               oras-py (PyPI `oras`), for tests/oci.rs's
#                                                        interoperability test
#   /usr/sbin/nats-server                                 NATS with JetStream (Debian `nats-server`,
#                                                        2.9), for the cluster's tests
#
# The tests start and stop the emulators (and the registry, each test its own,
# with a temporary storage directory and config) themselves, on free loopback
# ports. Override the locations with WASMHOST_TEST_MOTO_SERVER /
# WASMHOST_TEST_AZURITE_BLOB / WASMHOST_TEST_REGISTRY / WASMHOST_TEST_NATS_SERVER.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/target/test-tools"
MOTO_VERSION="${MOTO_VERSION:-5.1.22}"
AZURITE_VERSION="${AZURITE_VERSION:-3.35.0}"
ORAS_VERSION="${ORAS_VERSION:-0.2.43}"
mkdir -p "$TOOLS"

# Debian packages for what is missing, when we may install them.
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "test-services.sh: apt-get install $*" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
    fi
}

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "test-services.sh: \`$1\` is required ($2)" >&2
        exit 1
    }
}

MOTO="$TOOLS/venv/bin/moto_server"
if [ ! -x "$MOTO" ]; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    need python3 "install Python 3 with the venv module, e.g. apt-get install python3-venv"
    echo "test-services.sh: installing moto[server] into $TOOLS/venv" >&2
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "moto[server]==$MOTO_VERSION" >&2
fi

AZURITE="$TOOLS/node_modules/.bin/azurite-blob"
if [ ! -x "$AZURITE" ]; then
    command -v npm >/dev/null 2>&1 || apt_install nodejs npm
    need npm "install Node.js 18+ and npm, e.g. apt-get install nodejs npm"
    echo "test-services.sh: installing azurite into $TOOLS/node_modules" >&2
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
        "azurite@$AZURITE_VERSION" >&2
fi

REGISTRY="${WASMHOST_TEST_REGISTRY:-/usr/bin/docker-registry}"
if [ ! -x "$REGISTRY" ]; then
    apt_install docker-registry
    # The package enables a system-wide registry on :5000; the tests start
    # their own, so stop it where there is a service manager to ask.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now docker-registry >/dev/null 2>&1 || true
    fi
    [ -x "$REGISTRY" ] || {
        echo "test-services.sh: $REGISTRY is required (apt-get install docker-registry)" >&2
        exit 1
    }
fi

SKOPEO="${WASMHOST_TEST_SKOPEO:-/usr/bin/skopeo}"
if [ ! -x "$SKOPEO" ]; then
    apt_install skopeo
    [ -x "$SKOPEO" ] || {
        echo "test-services.sh: $SKOPEO is required (apt-get install skopeo)" >&2
        exit 1
    }
fi

ORAS_PY="$TOOLS/oras-venv/bin/python"
if ! "$ORAS_PY" -c "import oras.version as v, sys; sys.exit(v.__version__ != '$ORAS_VERSION')" >/dev/null 2>&1; then
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3 python3-venv
    fi
    need python3 "install Python 3 with the venv module, e.g. apt-get install python3-venv"
    echo "test-services.sh: installing oras==$ORAS_VERSION into $TOOLS/oras-venv" >&2
    rm -rf "$TOOLS/oras-venv"
    python3 -m venv "$TOOLS/oras-venv"
    "$ORAS_PY" -m pip install --quiet --disable-pip-version-check "oras==$ORAS_VERSION" >&2
fi

NATS="${WASMHOST_TEST_NATS_SERVER:-/usr/sbin/nats-server}"
if [ ! -x "$NATS" ]; then
    apt_install nats-server
    # The tests start their own servers; stop a system-wide one the package
    # may have enabled.
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        systemctl disable --now nats-server >/dev/null 2>&1 || true
    fi
    [ -x "$NATS" ] || {
        echo "test-services.sh: $NATS is required (apt-get install nats-server)" >&2
        exit 1
    }
fi

echo "moto_server: $MOTO"
echo "nats-server: $NATS"
echo "skopeo: $SKOPEO"
echo "oras-py: $ORAS_PY"
echo "docker-registry: $REGISTRY"
echo "azurite-blob: $AZURITE"
