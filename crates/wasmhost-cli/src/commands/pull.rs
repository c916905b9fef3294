//! `wasmhost pull`: copy a module out of the store into a file, or fetch a
//! module from an OCI registry into the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use wasmhost::Error;
use wasmhost_store::Reference;
use wasmhost_store::oci::OciReference;

use crate::options::{RegistryOptions, StateOptions, block_on};

#[derive(Debug, Args)]
#[command(after_help = "\
A REF whose first part is a registry host (it has a `.` or a `:port`, or is \
`localhost`), or that starts with oci://, is pulled from that OCI registry \
(the wasm artifact layout of wkg, wasmCloud and oci-wasm): the module is \
checked against its digest, kept in the store by digest and tagged \
REGISTRY/REPOSITORY:TAG there (a port's `:` written `_`), so `wasmhost run \
REGISTRY/REPOSITORY:TAG` finds it without the network. With -o it is also \
written to a file. Registries on loopback are reached over plain HTTP; others \
over HTTPS unless --insecure. Credentials: --user with --password-stdin, \
else WASMHOST_REGISTRY_USER and WASMHOST_REGISTRY_PASSWORD, else docker's \
config file ($DOCKER_CONFIG/config.json or ~/.docker/config.json, as `docker \
login` writes it).

Any other REF is a module of the store, copied out to a file.

Artifacts other clients push in that layout pull unmodified (say `oras push \
--plain-http localhost:5000/acme/app:v1 --config \
config.json:application/vnd.wasm.config.v0+json app.wasm:application/wasm`), \
and what wasmhost pushes they pull with the same digests.

EXAMPLES:
  wasmhost pull ghcr.io/acme/hello:v1                # from a registry into the store
  wasmhost run ghcr.io/acme/hello:v1                 # then run it from the store
  wasmhost pull 127.0.0.1:5000/tools/fmt:v1 -o fmt.wasm
  echo \"$TOKEN\" | wasmhost pull --user me --password-stdin registry.example.com/app:v2
  wasmhost pull app:v1 -o app.wasm                   # a stored module into a file
  wasmhost pull localhost:5000/acme/app:v1           # pushed by oras or wkg: same digest")]
pub struct PullCommand {
    /// The module: REGISTRY/REPOSITORY[:TAG|@sha256:…] (or oci://…) from a
    /// registry; name[:tag] or sha256:… from the store.
    #[arg(value_name = "REF")]
    reference: String,

    /// Where to write it; `-` for stdout. Default for a stored module:
    /// NAME.wasm in the current directory; for a registry's: no file.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Overwrite the output file if it exists.
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    registry: RegistryOptions,

    #[command(flatten)]
    state: StateOptions,
}

impl PullCommand {
    pub fn execute(self) -> anyhow::Result<u8> {
        if OciReference::looks_like(&self.reference) {
            return self.pull_from_registry();
        }
        let reference: Reference = self.reference.parse()?;
        let store = self.state.open_store()?;
        let (digest, bytes) = block_on(store.fetch(&reference))??;
        let output = self.output.clone().unwrap_or_else(|| match &reference {
            Reference::Name { name, .. } => {
                PathBuf::from(format!("{}.wasm", name.rsplit('/').next().unwrap_or(name)))
            }
            Reference::Digest(d) => PathBuf::from(format!("{}.wasm", d.short())),
        });
        if write_out(&output, &bytes, self.force)? {
            println!("{} -> {} ({} bytes)", digest, output.display(), bytes.len());
        }
        Ok(0)
    }

    fn pull_from_registry(&self) -> anyhow::Result<u8> {
        let reference: OciReference = self.reference.parse()?;
        let registry = self.registry.registry()?;
        let store = self.state.open_store()?;
        let pulled = block_on(registry.pull_into(&reference, &store))??;
        let to_stdout = self.output.as_deref().is_some_and(|o| o.as_os_str() == "-");
        if let Some(output) = &self.output {
            let (_, bytes) = block_on(store.fetch(&Reference::Digest(pulled.digest)))??;
            write_out(output, &bytes, self.force)?;
        }
        if !to_stdout {
            println!(
                "pulled {reference} {} ({} bytes, {}{}) as {}; manifest {}",
                pulled.digest,
                pulled.size,
                pulled.kind.as_str(),
                if pulled.downloaded {
                    ""
                } else {
                    ", already stored"
                },
                pulled.local.as_deref().unwrap_or("its digest"),
                pulled.manifest_digest
            );
        }
        Ok(0)
    }
}

/// Writes `bytes` to `output` (`-`: stdout); `true` when it was a file.
fn write_out(output: &Path, bytes: &[u8], force: bool) -> anyhow::Result<bool> {
    if output.as_os_str() == "-" {
        std::io::stdout().lock().write_all(bytes)?;
        return Ok(false);
    }
    if output.exists() && !force {
        return Err(Error::bad_input(format!(
            "`{}` exists; pass --force to overwrite it",
            output.display()
        ))
        .into());
    }
    std::fs::write(output, bytes)
        .map_err(|e| Error::bad_input(format!("cannot write `{}`: {e}", output.display())))?;
    Ok(true)
}
