//! The module resolver: what every command and the server do with a
//! MODULE they are given.
//!
//! A MODULE is a file (wasm or WAT), `-` (stdin), a manifest (wasmhost
//! TOML, Extism JSON or packet JSON, told apart as [`crate::manifest::load`]
//! does) or a store reference (`name[:tag]`, `sha256:…`). [`Resolver::resolve`]
//! turns it into one [`Resolution`]: the module's bytes with everything a
//! manifest says about running them — its [`Limits`], every grant as
//! [`Capabilities`] (WASI, config, allowed hosts, log, host functions) plus
//! key-value state, the calling convention it forces, its entry function —
//! and a display name. [`Resolution::load`] compiles it into a
//! [`wasmhost::Module`] that carries all of it, so whoever calls the module
//! (`run`, `call`, `test`, actors, a server route) honours the same
//! settings.
//!
//! Who gave the MODULE decides what it may name ([`Trust`]): the operator
//! (the command line, a server's `--route` or config file) may name files,
//! stdin, manifests and store references, and a manifest's paths are taken
//! as the formats say (a wasmhost manifest's stay inside its directory; an
//! Extism manifest's are read as Extism reads them: absolute, or relative
//! to the manifest's directory, else to the current one); a client of the server
//! may name store references and send manifest text, which names no file of
//! the host at all. Either way, a manifest's modules named by URL are fetched
//! only from the hosts the resolver's [`UrlFetcher`] allows (none unless the
//! operator says so), and an Extism manifest's several modules come back
//! as [`Resolution::linked`], linked by name when the module is loaded.
//!
//! A component's imported interfaces provided by other components
//! (`--link INTERFACE=PROVIDER`, a manifest's `[[link]]`) come back as
//! [`Resolution::links`]: each provider resolved by the same resolver,
//! under the same trust (a file, a manifest giving it its own limits and
//! grants, a store or `oci://` reference), linked to the module by
//! interface when it is loaded ([`wasmhost::Module::link`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmhost::{
    Capabilities, Convention, Digest, Error, KeyValue, KvStore, Limits, Module, Result, Runtime,
    SnapshotPolicy,
};

use crate::fetch::{UrlFetcher, UrlSource};
use crate::manifest::{self, AnyManifest, ModuleSource, Resolved};
use crate::oci::{self, OciReference, Registry};
use crate::{ModuleStore, Reference};

/// Who gave a MODULE, which decides what it may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trust {
    /// The operator: the command line, a server's `--route`, `--tcp` or
    /// config file. Files, `-`, manifests and store references; a
    /// wasmhost manifest's paths stay inside its directory, an Extism
    /// manifest's are read as Extism reads them.
    Operator,
    /// A client of the server: store references, and manifest text that
    /// names no host file (no `path` module, no preopened directory).
    Client,
}

/// The formats of manifest text ([`Resolver::resolve_text`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestFormat {
    /// wasmhost's TOML manifest.
    Toml,
    /// JSON: an Extism manifest or a packet, told apart by their keys.
    Json,
}

/// Which kind of manifest a module came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ManifestKind {
    /// wasmhost's TOML manifest.
    Native,
    /// An Extism manifest.
    Extism,
    /// A packet (its one module; packets carry no limits or grants).
    Packet,
}

impl ManifestKind {
    /// A name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ManifestKind::Native => "wasmhost manifest",
            ManifestKind::Extism => "Extism manifest",
            ManifestKind::Packet => "packet",
        }
    }
}

/// Where a resolved module came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Provenance {
    /// A module file.
    File(PathBuf),
    /// The process's standard input.
    Stdin,
    /// The module store.
    Store(Reference),
    /// An http(s) URL given as MODULE (as Extism's CLI takes one).
    Url(String),
    /// A manifest: a file, or text a client sent (`path` is `None`).
    Manifest {
        /// The manifest file.
        path: Option<PathBuf>,
        /// Its format.
        kind: ManifestKind,
    },
}

/// A MODULE resolved: the module and everything about running it.
#[derive(Clone)]
#[non_exhaustive]
pub struct Resolution {
    /// The module: wasm binary or WAT text, as the runtime takes them (a
    /// manifest's module is already checked against its digest).
    pub bytes: Vec<u8>,
    /// Limits of its calls: the manifest's over the resolver's defaults.
    pub limits: Limits,
    /// Every grant but key-value state: WASI, log, config, outgoing HTTP,
    /// host functions. Nothing for a plain module or a packet.
    pub capabilities: Capabilities,
    /// Whether durable key-value state is granted: the loaded module gets
    /// its own namespace (`module:sha256:<hex>`) of the resolver's
    /// key-value store, opened only then.
    pub key_value: bool,
    kv: Option<Access<KvStore>>,
    /// The calling convention the manifest forces; `None` detects it.
    pub convention: Option<Convention>,
    /// The manifest's entry function.
    pub function: Option<String>,
    /// The manifest's snapshot policy for the module's actors.
    pub snapshots: Option<SnapshotPolicy>,
    /// A short name for messages, metrics and a command's argv\[0\].
    pub name: String,
    /// Where it came from.
    pub from: Provenance,
    /// Modules linked to it by name (an Extism manifest's other modules):
    /// (name, wasm bytes), in the manifest's order.
    pub linked: Vec<(String, Vec<u8>)>,
    /// Components providing its imported interfaces: (interface, the
    /// provider resolved, with its own limits and grants), in order
    /// (a manifest's `[[link]]`s, then those added by [`Resolution::link`]).
    pub links: Vec<(String, Resolution)>,
}

impl fmt::Debug for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolution")
            .field("bytes", &format_args!("{} bytes", self.bytes.len()))
            .field("limits", &self.limits)
            .field("capabilities", &self.capabilities)
            .field("key_value", &self.key_value)
            .field("convention", &self.convention)
            .field("function", &self.function)
            .field("name", &self.name)
            .field("from", &self.from)
            .field(
                "linked",
                &self.linked.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("links", &self.links)
            .finish()
    }
}

impl Resolution {
    /// The key-value grant of the module whose digest is `digest`: its own
    /// namespace of the resolver's store, when [`Resolution::key_value`]
    /// is set (`bad_input` when the resolver has no key-value store).
    pub fn key_value_grant(&self, digest: Digest) -> Result<Option<KeyValue>> {
        if !self.key_value {
            return Ok(None);
        }
        let kv = match &self.kv {
            Some(kv) => kv.get()?,
            None => {
                return Err(Error::bad_input(format!(
                    "{}: key-value state is granted, but this host has no key-value store",
                    self.name
                )));
            }
        };
        Ok(Some(KeyValue::for_module(kv, digest)))
    }

    /// The capabilities a module loaded from this resolution gets: its
    /// grants, and key-value state in the module's own namespace.
    pub fn capabilities_of(&self, module: &Module) -> Result<Capabilities> {
        Ok(match self.key_value_grant(module.digest())? {
            Some(kv) => self.capabilities.clone().with_key_value(kv),
            None => self.capabilities.clone(),
        })
    }

    /// `module` (compiled from [`Resolution::bytes`]) with this
    /// resolution's limits, capabilities and name.
    pub fn apply(&self, module: Module) -> Result<Module> {
        let caps = self.capabilities_of(&module)?;
        Ok(module
            .with_limits(self.limits.clone())
            .with_capabilities(caps)
            .with_name(&self.name))
    }

    /// Compiles the module (and the modules linked to it) on `rt`
    /// (blocking; see [`Runtime::load_bytes`]) and applies the resolution
    /// to it. The bytes are handed to the runtime, not copied:
    /// [`Resolution::bytes`] and [`Resolution::linked`] are empty
    /// afterwards.
    pub fn load(&mut self, rt: &Runtime) -> Result<Module> {
        let module = compile(
            rt,
            std::mem::take(&mut self.bytes),
            std::mem::take(&mut self.linked),
        )?;
        let module = self.apply(module)?;
        link_components(rt, module, std::mem::take(&mut self.links))
    }

    /// Adds a component providing the imported `interface` (see
    /// [`Resolver::resolve_link`]).
    pub fn link(&mut self, interface: impl Into<String>, provider: Resolution) {
        self.links.push((interface.into(), provider));
    }

    /// Whether a manifest set the limits and grants (a wasmhost or Extism
    /// manifest; a packet sets none).
    pub fn configured(&self) -> bool {
        matches!(
            self.from,
            Provenance::Manifest {
                kind: ManifestKind::Native | ManifestKind::Extism,
                ..
            }
        )
    }

    /// Whether the module came from a manifest.
    pub fn is_manifest(&self) -> bool {
        matches!(self.from, Provenance::Manifest { .. })
    }
}

/// Compiles `main` and the modules `linked` to it by name (see
/// [`Module::link`]) on `rt` (blocking), for those who take a
/// [`Resolution`]'s bytes apart to compile them elsewhere (the server
/// compiles on its blocking pool), then [`Resolution::apply`] the result.
pub fn compile(rt: &Runtime, main: Vec<u8>, linked: Vec<(String, Vec<u8>)>) -> Result<Module> {
    let mut module = rt.load_bytes(main)?;
    for (name, bytes) in linked {
        let dep = rt.load_bytes(bytes)?;
        module = module.link(&name, &dep)?;
    }
    Ok(module)
}

/// Loads each provider of `links` on `rt` (blocking) and links it to
/// `module` by interface ([`Module::link`]): what [`Resolution::load`]
/// does after [`Resolution::apply`], for those who compile elsewhere.
pub fn link_components(
    rt: &Runtime,
    mut module: Module,
    links: Vec<(String, Resolution)>,
) -> Result<Module> {
    for (interface, mut provider) in links {
        let p = provider.load(rt)?;
        module = module.link(&interface, &p)?;
    }
    Ok(module)
}

/// Something the resolver opens only when a MODULE needs it.
#[derive(Clone)]
enum Access<T> {
    Ready(T),
    Open(Arc<dyn Fn() -> Result<T> + Send + Sync>),
}

impl<T: Clone> Access<T> {
    fn get(&self) -> Result<T> {
        match self {
            Access::Ready(t) => Ok(t.clone()),
            Access::Open(open) => open(),
        }
    }
}

/// Resolves MODULE arguments and manifests into [`Resolution`]s. Cheap to
/// clone.
#[derive(Clone)]
pub struct Resolver {
    trust: Trust,
    defaults: Limits,
    store: Option<Access<ModuleStore>>,
    kv: Option<Access<KvStore>>,
    registry: Option<Registry>,
    urls: UrlFetcher,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("trust", &self.trust)
            .field("defaults", &self.defaults)
            .field("store", &self.store.is_some())
            .field("registry", &self.registry)
            .field("kv", &self.kv.is_some())
            .field("url_hosts", &self.urls.allowed_hosts())
            .finish()
    }
}

impl Resolver {
    /// A resolver for MODULEs given by `trust`, default limits, no store
    /// and no key-value store (see the builder methods).
    pub fn new(trust: Trust) -> Self {
        Resolver {
            trust,
            defaults: Limits::default(),
            store: None,
            kv: None,
            registry: None,
            urls: UrlFetcher::none(),
        }
    }

    /// How manifests' modules named by URL are fetched: from the hosts
    /// `urls` allows (none by default, so such a manifest is
    /// `capability_denied` until the operator allows its host).
    pub fn urls(mut self, urls: UrlFetcher) -> Self {
        self.urls = urls;
        self
    }

    /// The limits of anything a manifest leaves out (and of plain modules).
    pub fn defaults(mut self, limits: Limits) -> Self {
        self.defaults = limits;
        self
    }

    /// The module store that references (and manifests' `store =`) name.
    pub fn store(mut self, store: ModuleStore) -> Self {
        self.store = Some(Access::Ready(store));
        self
    }

    /// Like [`Resolver::store`], opened by `open` only when a MODULE needs
    /// the store.
    pub fn store_with(
        mut self,
        open: impl Fn() -> Result<ModuleStore> + Send + Sync + 'static,
    ) -> Self {
        self.store = Some(Access::Open(Arc::new(open)));
        self
    }

    /// The key-value store a manifest's `key_value = true` grants a
    /// namespace of (see [`Resolution::key_value_grant`]).
    pub fn kv(mut self, kv: KvStore) -> Self {
        self.kv = Some(Access::Ready(kv));
        self
    }

    /// Like [`Resolver::kv`], opened by `open` only when a manifest grants
    /// key-value state.
    pub fn kv_with(mut self, open: impl Fn() -> Result<KvStore> + Send + Sync + 'static) -> Self {
        self.kv = Some(Access::Open(Arc::new(open)));
        self
    }

    /// How `oci://` references reach their registries (default:
    /// [`Registry::from_env`]).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Who this resolver resolves for.
    pub fn trust(&self) -> Trust {
        self.trust
    }

    /// The default limits.
    pub fn default_limits(&self) -> &Limits {
        &self.defaults
    }

    /// Opens (or hands out) the module store.
    pub fn open_store(&self) -> Result<ModuleStore> {
        match &self.store {
            Some(s) => s.get(),
            None => Err(Error::bad_input(
                "no module store to look store references up in",
            )),
        }
    }

    /// Resolves a MODULE: for the operator `-` (stdin), an existing file
    /// (a manifest by its `.toml`/`.json` extension, else a module), an
    /// `http(s)://` URL (fetched as Extism's CLI fetches one: the operator
    /// named its host, so that host is allowed; a redirect elsewhere only
    /// to hosts the URL allow-list has), or else a store reference; for a
    /// client only a store reference.
    pub async fn resolve(&self, arg: &str) -> Result<Resolution> {
        if arg.starts_with(oci::SCHEME) {
            return self.pulled(arg).await;
        }
        if self.trust == Trust::Operator
            && (arg.starts_with("http://") || arg.starts_with("https://"))
        {
            let what = format!("module `{arg}`");
            let fetcher = self.urls.also_allowing_host_of(arg, &what)?;
            let bytes = fetcher.fetch(&UrlSource::new(arg)?, &what).await?;
            let name = arg
                .trim_end_matches('/')
                .rsplit('/')
                .next()
                .filter(|n| !n.is_empty())
                .unwrap_or(arg)
                .to_string();
            return Ok(self.plain(bytes, name, Provenance::Url(arg.to_string())));
        }
        if self.trust == Trust::Client {
            let reference: Reference = arg.parse().map_err(|e: Error| {
                Error::bad_input(format!("module `{arg}`: not a store reference: {e}"))
            })?;
            return self.stored(reference).await;
        }
        let path = Path::new(arg);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| arg.to_string());
        if arg == "-" {
            return Ok(self.plain(wasmhost::Source::Stdin.read()?, name, Provenance::Stdin));
        }
        if path.exists() {
            if manifest::is_manifest_path(path) {
                let m = manifest::load(path)?;
                let base = path.parent().unwrap_or(Path::new("."));
                return self.manifest(m, base, Some(path), name).await;
            }
            let bytes = wasmhost::Source::file(path).read()?;
            return Ok(self.plain(bytes, name, Provenance::File(path.to_path_buf())));
        }
        match arg.parse::<Reference>() {
            Ok(reference) => self.stored(reference).await,
            Err(_) => Err(Error::not_found(format!(
                "module `{arg}`: no such file, and it is not a store reference (name[:tag] or sha256:…)"
            ))),
        }
    }

    /// Resolves `INTERFACE=PROVIDER` (the command line's `--link`, a
    /// route's `link=`): the provider is a MODULE as [`Resolver::resolve`]
    /// takes it. A provider from a wasmhost or Extism manifest has the
    /// manifest's limits and grants; any other (a file, a store or `oci://`
    /// reference) gets the default limits and WASI with stdio, clocks and
    /// random (what a Rust or Go component needs to start), nothing else.
    pub async fn resolve_link(&self, spec: &str) -> Result<(String, Resolution)> {
        let (interface, provider) = spec
            .split_once('=')
            .filter(|(i, p)| !i.is_empty() && !p.is_empty())
            .ok_or_else(|| {
                Error::bad_input(format!(
                    "--link `{spec}`: expected INTERFACE=PROVIDER \
                     (wasmhost:example/console=provider.wasm)"
                ))
            })?;
        Ok((interface.to_string(), self.provider(provider).await?))
    }

    /// A provider of an interface, resolved (see [`Resolver::resolve_link`]).
    fn provider<'a>(
        &'a self,
        module: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Resolution>> + Send + 'a>> {
        Box::pin(async move {
            let mut res = self.resolve(module).await?;
            if !res.configured() {
                res.capabilities = Capabilities::none().with_wasi(wasmhost::Wasi::standard());
            }
            Ok(res)
        })
    }

    /// Resolves manifest text, relative paths in it against `base_dir`
    /// (for a client's text there is no such directory: it may name no
    /// file). `name` names the result.
    pub async fn resolve_text(
        &self,
        text: &str,
        format: ManifestFormat,
        base_dir: &Path,
        name: &str,
    ) -> Result<Resolution> {
        let m = match format {
            ManifestFormat::Toml => {
                AnyManifest::Native(Box::new(manifest::Manifest::from_toml(text)?))
            }
            ManifestFormat::Json => manifest::from_json(text, base_dir)?,
        };
        self.manifest(m, base_dir, None, name.to_string()).await
    }

    /// `oci://REGISTRY/REPOSITORY[:TAG|@sha256:…]`: pulled into the store
    /// by digest (not downloaded again when the store has that digest),
    /// then resolved as the stored module. Only the operator may name a
    /// registry: a client would make the host fetch from anywhere.
    async fn pulled(&self, arg: &str) -> Result<Resolution> {
        if self.trust == Trust::Client {
            return Err(Error::bad_input(format!(
                "module `{arg}`: a client may name store references only; an operator \
                 puts registry modules in the store with `wasmhost pull`"
            )));
        }
        let reference: OciReference = arg.parse()?;
        let store = self.open_store()?;
        let pulled = match &self.registry {
            Some(r) => r.pull_into(&reference, &store).await?,
            None => Registry::from_env().pull_into(&reference, &store).await?,
        };
        let mut res = self.stored(Reference::Digest(pulled.digest)).await?;
        res.name = reference
            .repository()
            .rsplit('/')
            .next()
            .unwrap_or(reference.repository())
            .to_string();
        Ok(res)
    }

    fn plain(&self, bytes: Vec<u8>, name: String, from: Provenance) -> Resolution {
        Resolution {
            bytes,
            limits: self.defaults.clone(),
            capabilities: Capabilities::none(),
            key_value: false,
            kv: self.kv.clone(),
            convention: None,
            function: None,
            snapshots: None,
            name,
            from,
            linked: Vec::new(),
            links: Vec::new(),
        }
    }

    async fn stored(&self, reference: Reference) -> Result<Resolution> {
        let store = self.open_store()?;
        let (_, bytes) = store.fetch(&reference).await?;
        let name = match &reference {
            Reference::Name { name, .. } => name.rsplit('/').next().unwrap_or(name).to_string(),
            Reference::Digest(d) => d.short(),
        };
        Ok(self.plain(bytes.to_vec(), name, Provenance::Store(reference)))
    }

    async fn manifest(
        &self,
        m: AnyManifest,
        base: &Path,
        path: Option<&Path>,
        name: String,
    ) -> Result<Resolution> {
        let from = |kind| Provenance::Manifest {
            path: path.map(Path::to_path_buf),
            kind,
        };
        let (resolved, kind) = match m {
            AnyManifest::Native(m) => (m.resolve(base, &self.defaults)?, ManifestKind::Native),
            AnyManifest::Extism(m) => (m.resolve(&self.defaults), ManifestKind::Extism),
            AnyManifest::Packet(p) => {
                let bytes = p.single()?.wasm.clone();
                return Ok(self.plain(bytes, name, from(ManifestKind::Packet)));
            }
        };
        if self.trust == Trust::Client {
            confine(&resolved, kind)?;
        }
        let mut resolved = resolved;
        if let ModuleSource::Oci(r) = &resolved.source {
            let store = self.open_store()?;
            let pulled = match &self.registry {
                Some(reg) => reg.pull_into(r, &store).await?,
                None => Registry::from_env().pull_into(r, &store).await?,
            };
            resolved.source = ModuleSource::Store(Reference::Digest(pulled.digest));
        }
        let store = match resolved.source {
            ModuleSource::Store(_) => self.open_store()?,
            _ => ModuleStore::memory(),
        };
        let (bytes, linked) = manifest::fetch_modules(&resolved, &store, &self.urls).await?;
        let mut links = Vec::new();
        for l in &resolved.links {
            links.push((l.interface.clone(), self.provider(&l.module).await?));
        }
        Ok(Resolution {
            bytes,
            capabilities: resolved.capabilities,
            limits: resolved.limits,
            key_value: resolved.key_value,
            kv: self.kv.clone(),
            convention: resolved.convention,
            function: resolved.function,
            snapshots: resolved.snapshots,
            name,
            from: from(kind),
            linked,
            links,
        })
    }
}

/// A client's manifest names nothing on the host: no module file (the main
/// one or a linked one), no preopened directory. (URLs go through the
/// resolver's allow-list, as the operator's do.)
fn confine(r: &Resolved, kind: ManifestKind) -> Result<()> {
    let what = kind.as_str();
    let sources = std::iter::once(&r.source).chain(r.linked.iter().map(|l| &l.source));
    for source in sources {
        if let ModuleSource::File(p) = source {
            return Err(Error::bad_input(format!(
                "{what}: a manifest sent to the server cannot name a file (`{}`); \
                 give the module itself (base64) or a store reference",
                p.display()
            )));
        }
    }
    if let Some(l) = r.links.iter().find(|l| l.is_path) {
        return Err(Error::bad_input(format!(
            "{what}: a manifest sent to the server cannot name a file (`{}`, the provider of \
             `{}`); give a store reference",
            l.module, l.interface
        )));
    }
    if let ModuleSource::Oci(o) = &r.source {
        return Err(Error::bad_input(format!(
            "{what}: a manifest sent to the server cannot name a registry (`oci://{o}`); \
             give a store reference (an operator puts registry modules in the store with \
             `wasmhost pull`)"
        )));
    }
    if r.capabilities
        .wasi
        .as_ref()
        .is_some_and(|w| !w.dirs.is_empty())
    {
        return Err(Error::bad_input(format!(
            "{what}: a manifest sent to the server cannot preopen directories of the host"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_WASM: &[u8] = b"\0asm\x01\0\0\0";

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn operator_manifests_resolve_completely() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("m.wasm"), EMPTY_WASM).expect("write");
        std::fs::create_dir(dir.path().join("data")).expect("mkdir");
        let path = dir.path().join("app.toml");
        std::fs::write(
            &path,
            r#"
[module]
path = "m.wasm"
[call]
convention = "numeric"
function = "run"
[limits]
max_memory = "1MiB"
[capabilities]
log = true
allowed_hosts = ["api.example.com"]
config = { greeting = "hi" }
key_value = true
[capabilities.wasi]
env = { LANG = "C" }
dirs = [{ host = "data", guest = "/data" }]
"#,
        )
        .expect("write");
        let kv = KvStore::memory();
        let r = Resolver::new(Trust::Operator)
            .defaults(Limits::default().max_instances(3))
            .kv(kv);
        let res = runtime()
            .block_on(r.resolve(&path.display().to_string()))
            .expect("resolves");
        assert_eq!(res.bytes, EMPTY_WASM);
        assert_eq!(res.limits.max_memory_bytes, 1 << 20);
        assert_eq!(res.limits.max_instances, 3, "defaults kept");
        assert_eq!(res.convention, Some(Convention::Numeric));
        assert_eq!(res.function.as_deref(), Some("run"));
        assert_eq!(res.name, "app.toml");
        let caps = &res.capabilities;
        assert!(caps.log);
        assert_eq!(caps.config.get("greeting").map(String::as_str), Some("hi"));
        assert!(
            caps.http
                .as_ref()
                .is_some_and(|h| h.allows("api.example.com"))
        );
        let wasi = caps.wasi.as_ref().expect("wasi");
        assert_eq!(wasi.env, [("LANG".to_string(), "C".to_string())]);
        assert_eq!(wasi.dirs[0].host, dir.path().join("data"));
        assert!(res.key_value);
        let grant = res
            .key_value_grant(Digest::of(EMPTY_WASM))
            .expect("kv")
            .expect("granted");
        assert_eq!(
            grant.namespace,
            format!("module:{}", Digest::of(EMPTY_WASM))
        );
        assert!(matches!(
            res.from,
            Provenance::Manifest {
                kind: ManifestKind::Native,
                ..
            }
        ));

        // key_value without a key-value store is refused, not ignored.
        let res = runtime()
            .block_on(Resolver::new(Trust::Operator).resolve(&path.display().to_string()))
            .expect("resolves");
        let err = res
            .key_value_grant(Digest::of(EMPTY_WASM))
            .expect_err("no kv");
        assert!(err.to_string().contains("no key-value store"), "{err}");
    }

    #[test]
    fn plain_files_and_store_references() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("m.wasm");
        std::fs::write(&file, EMPTY_WASM).expect("write");
        let store = ModuleStore::memory();
        let rt = runtime();
        rt.block_on(store.push(EMPTY_WASM.to_vec(), "tools/empty", "v1"))
            .expect("push");
        let r = Resolver::new(Trust::Operator).store(store.clone());
        let res = rt
            .block_on(r.resolve(&file.display().to_string()))
            .expect("file");
        assert_eq!(
            (res.name.as_str(), &res.from),
            ("m.wasm", &Provenance::File(file.clone()))
        );
        assert_eq!(res.capabilities, Capabilities::none());
        let res = rt.block_on(r.resolve("tools/empty:v1")).expect("reference");
        assert_eq!(res.name, "empty");
        assert_eq!(res.bytes, EMPTY_WASM);
        let err = rt.block_on(r.resolve("missing:v1")).expect_err("missing");
        assert_eq!(err.code(), wasmhost::ErrorCode::NotFound);
        let err = rt
            .block_on(r.resolve("Not A Reference"))
            .expect_err("neither");
        assert_eq!(err.code(), wasmhost::ErrorCode::NotFound);

        // A client names store references only: never a file of the host.
        let client = Resolver::new(Trust::Client).store(store);
        let res = rt
            .block_on(client.resolve("tools/empty:v1"))
            .expect("client ref");
        assert_eq!(res.bytes, EMPTY_WASM);
        let err = rt
            .block_on(client.resolve(&file.display().to_string()))
            .expect_err("client file");
        assert_eq!(err.code(), wasmhost::ErrorCode::BadInput);
    }

    #[test]
    fn client_manifests_name_no_host_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("m.wasm"), EMPTY_WASM).expect("write");
        let rt = runtime();
        let client = Resolver::new(Trust::Client);
        let cases = [
            (
                ManifestFormat::Toml,
                "[module]\npath = \"m.wasm\"\n",
                "cannot name a file",
            ),
            (
                ManifestFormat::Json,
                r#"{"wasm": [{"path": "m.wasm"}]}"#,
                "cannot name a file",
            ),
            (
                ManifestFormat::Toml,
                "[module]\nbase64 = \"AGFzbQEAAAA=\"\n[capabilities.wasi]\ndirs = [{ host = \"d\", guest = \"/d\" }]\n",
                "cannot preopen",
            ),
            (
                ManifestFormat::Json,
                r#"{"wasm": [{"data": "AGFzbQEAAAA="}], "allowed_paths": {"d": "/d"}}"#,
                "cannot preopen",
            ),
            (
                ManifestFormat::Toml,
                "[module]\npath = \"../m.wasm\"\n",
                "leaves the manifest's directory",
            ),
            (
                ManifestFormat::Toml,
                "[module]\nstore = \"oci://127.0.0.1:1/x:v1\"\n",
                "cannot name a registry",
            ),
            (
                ManifestFormat::Toml,
                "[module]\nbase64 = \"AGFzbQEAAAA=\"\n[[link]]\ninterface = \"a:b/c\"\npath = \"m.wasm\"\n",
                "cannot name a file",
            ),
            (
                ManifestFormat::Toml,
                "[module]\nbase64 = \"AGFzbQEAAAA=\"\n[[link]]\ninterface = \"a:b/c\"\nstore = \"oci://127.0.0.1:1/x:v1\"\n",
                "may name store references only",
            ),
        ];
        // Nor may a client's MODULE name a registry (nothing is fetched).
        let err = rt
            .block_on(client.resolve("oci://127.0.0.1:1/x:v1"))
            .expect_err("a registry");
        assert_eq!(err.code(), wasmhost::ErrorCode::BadInput, "{err}");
        for (format, text, says) in cases {
            let err = rt
                .block_on(client.resolve_text(text, format, dir.path(), "upload"))
                .expect_err(text);
            assert_eq!(err.code(), wasmhost::ErrorCode::BadInput, "{text}");
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
        // The module itself is fine, with its limits and grants.
        let res = rt
            .block_on(client.resolve_text(
                r#"{"wasm": [{"data": "AGFzbQEAAAA="}], "config": {"k": "v"}, "memory": {"max_pages": 2}}"#,
                ManifestFormat::Json,
                dir.path(),
                "upload",
            ))
            .expect("base64 module");
        assert_eq!(res.bytes, EMPTY_WASM);
        assert_eq!(res.limits.max_memory_bytes, 2 * 65536);
        assert_eq!(res.convention, Some(Convention::Extism));
        assert_eq!(
            res.capabilities.config.get("k").map(String::as_str),
            Some("v")
        );
        // The operator's text may name files in its directory.
        let res = rt
            .block_on(Resolver::new(Trust::Operator).resolve_text(
                "[module]\npath = \"m.wasm\"\n",
                ManifestFormat::Toml,
                dir.path(),
                "inline",
            ))
            .expect("operator text");
        assert_eq!(res.bytes, EMPTY_WASM);
    }
}
