"""Another OCI client for crates/wasmhost-cli/tests/oci.rs: oras-py (PyPI
`oras`, the OCI Registry As Storage SDK, installed by
scripts/test-services.sh into target/test-tools/oras-venv).

    oras_client.py push REGISTRY/REPOSITORY:TAG FILE
        pushes FILE as a wasm artifact, as oras and wkg push one: config
        media type application/vnd.wasm.config.v0+json, one application/wasm
        layer.
    oras_client.py pull REGISTRY/REPOSITORY:TAG OUTDIR
        pulls the artifact's layers into OUTDIR.

Both print one JSON object: the manifest's digest (the registry's
Docker-Content-Digest and the sha256 of the manifest's bytes), its config
media type, and each layer's media type, digest and file. Plain HTTP
(loopback registries only).
"""
import hashlib
import json
import os
import sys

import oras.client
import oras.container

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def client(ref):
    host = ref.split("/", 1)[0]
    return oras.client.OrasClient(hostname=host, insecure=True)


def describe(c, ref, files):
    """The manifest as the registry serves it, and the layers' files."""
    container = oras.container.Container(ref)
    url = f"{c.prefix}://{container.manifest_url()}"
    resp = c.do_request(url, "GET", headers={"Accept": MANIFEST})
    resp.raise_for_status()
    manifest = json.loads(resp.content)
    return {
        "manifest_digest": resp.headers.get("Docker-Content-Digest"),
        "manifest_sha256": "sha256:" + hashlib.sha256(resp.content).hexdigest(),
        "config_media_type": manifest["config"]["mediaType"],
        "layers": [
            {"media_type": l["mediaType"], "digest": l["digest"], "size": l["size"]}
            for l in manifest["layers"]
        ],
        "files": files,
    }


def main(argv):
    if len(argv) != 4 or argv[1] not in ("push", "pull"):
        sys.exit(__doc__)
    _, verb, ref, path = argv
    c = client(ref)
    if verb == "push":
        digest = "sha256:" + hashlib.sha256(open(path, "rb").read()).hexdigest()
        config = os.path.join(os.path.dirname(os.path.abspath(path)), "wasm-config.json")
        with open(config, "w") as f:
            json.dump({"architecture": "wasm", "os": "wasip1", "layerDigests": [digest]}, f)
        c.push(
            target=ref,
            files=[f"{path}:application/wasm"],
            manifest_config=f"{config}:application/vnd.wasm.config.v0+json",
            disable_path_validation=True,
            quiet=True,
        )
        files = [path]
    else:
        files = c.pull(target=ref, outdir=path)
    print(json.dumps(describe(c, ref, files)))


if __name__ == "__main__":
    main(sys.argv)
