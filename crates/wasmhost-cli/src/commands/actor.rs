//! `wasmhost actor send|ls|rm`: named actors kept in the local state
//! directory.
//!
//! An actor record (id, module digest and reference, default function,
//! calling convention, message and restart counts) is one JSON file under
//! `STATE/actors/`, written atomically (temporary file, then rename). The
//! module's bytes live in the module store (a module given by file is pushed
//! there by digest), and the actors' durable key-value state in
//! `STATE/kv.redb`, namespace `actor:<id>`. Each `send` is a new process, so
//! the actor's instance is created for that one message: in-memory state
//! does not survive between invocations, key-value state does. Sends are
//! serialized across processes by a lock file, `STATE/actors/.lock`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use wasmhost::{ActorConfig, ActorSpec, ActorSystem, Convention, Digest, Error};

use crate::options::{InputOptions, LimitOptions, Loaded, StateOptions, block_on, load, resolve};

#[derive(Debug, Args)]
pub struct ActorCommand {
    #[command(subcommand)]
    command: ActorSubcommand,
}

#[derive(Debug, Subcommand)]
enum ActorSubcommand {
    /// Send one message to an actor, creating it with --module if unknown.
    Send(SendCommand),
    /// List the actors of the state directory.
    Ls(LsCommand),
    /// Forget an actor (its key-value state stays unless --purge).
    Rm(RmCommand),
}

impl ActorCommand {
    /// Whether this prints the guest's log lines itself (`send` does).
    pub fn prints_guest_logs(&self) -> bool {
        matches!(self.command, ActorSubcommand::Send(_))
    }

    pub fn execute(self) -> anyhow::Result<u8> {
        match self.command {
            ActorSubcommand::Send(c) => c.execute(),
            ActorSubcommand::Ls(c) => c.execute(),
            ActorSubcommand::Rm(c) => c.execute(),
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
An actor is a module plus an id. Its record (module digest, default function, \
calling convention, message count) is kept in STATE/actors/, its module in the \
module store, and its durable key-value state (wasmhost:kv, Extism kv_*, \
wasi:keyvalue) in STATE/kv.redb under the namespace actor:ID.

Every `wasmhost actor send` is a new process, so the actor's instance is \
created for that one message and dropped after it: in-memory state (globals, \
linear memory) is lost between invocations, key-value state is kept. (In a \
long-lived host, the library's ActorSystem keeps instances between messages.)

Sending to an unknown ID without --module fails with error[not_found] (exit 66). \
Options go anywhere after `send`, before or after ID.

EXAMPLES:
  wasmhost actor send c1 --module counter.wasm --function increment --input 5
  wasmhost actor send c1 --function get
  wasmhost actor send --input 3 c1 --timeout 300
  wasmhost actor send visits --module kv.wat --function counter --abi numeric
  wasmhost actor ls --json
  wasmhost actor rm c1")]
struct SendCommand {
    /// The actor's id.
    id: String,

    /// The module, when the actor does not exist yet: a .wasm binary, WAT
    /// text, a manifest (its limits, grants, convention and function hold
    /// for every message; later sends read it again) or a store reference
    /// (name[:tag], sha256:…). Given for an existing actor, it must be the
    /// module the actor runs.
    #[arg(long, value_name = "REF")]
    module: Option<String>,

    /// The function to call; remembered as the actor's default when it is
    /// created.
    #[arg(long, value_name = "F")]
    function: Option<String>,

    /// The message (JSON, a string or bytes, as `wasmhost call` takes it),
    /// as --input/-i DATA (`-` reads stdin), --input-file or --stdin.
    /// Default: empty.
    #[command(flatten)]
    input: InputOptions,

    /// Force a calling convention (remembered with the actor).
    #[arg(long, value_name = "ABI", value_parser = parse_convention)]
    abi: Option<Convention>,

    #[command(flatten)]
    limits: LimitOptions,

    #[command(flatten)]
    state: StateOptions,
}

#[derive(Debug, Args)]
struct LsCommand {
    /// Print JSON (one array of records) instead of a table.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    state: StateOptions,
}

#[derive(Debug, Args)]
struct RmCommand {
    /// The actor's id.
    id: String,

    /// Also delete the actor's key-value entries (default bucket).
    #[arg(long)]
    purge: bool,

    #[command(flatten)]
    state: StateOptions,
}

fn parse_convention(s: &str) -> Result<Convention, String> {
    s.parse::<Convention>().map_err(|e| e.to_string())
}

/// One actor, as stored in `STATE/actors/<hash of id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActorRecord {
    id: String,
    /// `sha256:<hex>` of the module.
    digest: String,
    /// What the module was given as when the actor was created.
    module: String,
    /// The manifest it was created from (absolute): later sends read it
    /// again, so its limits and grants keep applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    manifest: Option<PathBuf>,
    function: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    convention: Option<String>,
    messages: u64,
    restarts: u64,
    created: chrono::DateTime<chrono::Utc>,
    last_message: chrono::DateTime<chrono::Utc>,
}

fn actors_dir(state: &StateOptions) -> anyhow::Result<PathBuf> {
    Ok(state.state_root()?.join("actors"))
}

fn record_path(dir: &Path, id: &str) -> PathBuf {
    // Ids may hold any character: the file is named by their hash.
    let hex = Digest::of(id.as_bytes()).hex();
    dir.join(format!("{}.json", &hex[..32]))
}

fn read_record(path: &Path) -> anyhow::Result<Option<ActorRecord>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::internal(format!(
                "actor record {} is unreadable: {e}",
                path.display()
            ))
            .into()
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::internal(format!("cannot read {}: {e}", path.display())).into()),
    }
}

/// Writes `record` atomically: a temporary file in the same directory,
/// synced, then renamed over the old one.
fn write_record(path: &Path, record: &ActorRecord) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| Error::internal("actor record path has no directory"))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| Error::internal(format!("cannot write in {}: {e}", dir.display())))?;
    tmp.write_all(&serde_json::to_vec_pretty(record)?)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))?;
    Ok(())
}

/// Holds `STATE/actors/.lock` exclusively: one send at a time per state
/// directory (the key-value database is open in one process at a time).
fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))?;
    file.lock()
        .map_err(|e| Error::internal(format!("cannot lock {}: {e}", dir.display())))?;
    Ok(file)
}

impl SendCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let dir = actors_dir(&self.state)?;
        let input = self
            .input
            .read(None, self.module.as_deref().unwrap_or_default())?;
        let _lock = lock_dir(&dir)?;
        let path = record_path(&dir, &self.id);
        let existing = read_record(&path)?;

        // One handle on the key-value store: the actors' state, and any
        // key-value grant of the module's manifest.
        let kv = self.state.open_kv()?;

        // The module: given (and pushed into the store by digest), or the
        // actor's own: its manifest again (so its limits and grants hold),
        // or the module from the store.
        let (res, display, reference, manifest) = match (&self.module, &existing) {
            (Some(m), _) => {
                let res = resolve(m, &self.state, Some(kv.clone()))?;
                let store = self.state.open_store()?;
                let stored = block_on(store.put_blob(res.bytes.clone()))??;
                if let Some(rec) = &existing
                    && rec.digest != stored.digest.to_string()
                {
                    return Err(Error::bad_input(format!(
                        "actor `{}` runs module {}, not {}: `wasmhost actor rm {}` first",
                        self.id, rec.digest, stored.digest, self.id
                    ))
                    .into());
                }
                let manifest = if res.configured() {
                    Some(
                        std::path::absolute(m)
                            .map_err(|e| Error::bad_input(format!("manifest `{m}`: {e}")))?,
                    )
                } else {
                    None
                };
                let display = res.name.clone();
                (res, display, m.clone(), manifest)
            }
            (None, Some(rec)) => {
                let arg = match &rec.manifest {
                    Some(path) => path.to_string_lossy().into_owned(),
                    None => rec.digest.clone(),
                };
                let res =
                    resolve(&arg, &self.state, Some(kv.clone())).with_context(|| {
                        match &rec.manifest {
                            Some(path) => format!(
                                "actor `{}` was created from the manifest {} (send with --module, \
                             or `wasmhost actor rm {}`)",
                                self.id,
                                path.display(),
                                self.id
                            ),
                            None => format!("actor `{}`", self.id),
                        }
                    })?;
                (
                    res,
                    rec.module.clone(),
                    rec.module.clone(),
                    rec.manifest.clone(),
                )
            }
            (None, None) => {
                return Err(Error::not_found(format!(
                    "actor `{}` (pass --module REF to create it)",
                    self.id
                ))
                .into());
            }
        };
        let function = match (&self.function, &existing, &res.function) {
            (Some(f), _, _) => f.clone(),
            (None, Some(rec), _) => rec.function.clone(),
            (None, None, Some(f)) => f.clone(),
            (None, None, None) => {
                return Err(Error::bad_input(
                    "a new actor needs --function F (its default function)",
                )
                .into());
            }
        };
        let convention = match (self.abi, &existing) {
            (Some(c), _) => Some(c),
            (None, Some(rec)) => rec
                .convention
                .as_deref()
                .map(str::parse::<Convention>)
                .transpose()?,
            (None, None) => res.convention,
        };

        let Loaded { rt, module, .. } = load(res, &self.limits, &self.state, false)?;
        let module = module.with_name(&display);
        if let Some(rec) = &existing
            && rec.digest != module.digest().to_string()
        {
            return Err(Error::bad_input(format!(
                "actor `{}` runs module {}, but its manifest now names {}: \
                 `wasmhost actor rm {}` first",
                self.id,
                rec.digest,
                module.digest(),
                self.id
            ))
            .into());
        }
        let system = ActorSystem::new(ActorConfig::default().passivate_after(Duration::MAX).kv(kv));
        // The actor's limits are its module's: the manifest's, under the
        // command line's flags.
        let mut spec = ActorSpec::new(module.clone()).limits(module.limits().clone());
        if let Some(c) = convention {
            spec = spec.convention(c);
        }
        let result = system.send(&self.id, Some(&spec), &function, input);
        crate::options::persist_stats(&rt, &module);

        // A new actor is recorded once its first message got to the guest.
        let reached_guest = match &result {
            Ok(_) => true,
            Err(e) => !matches!(
                e.code(),
                wasmhost::ErrorCode::NotFound
                    | wasmhost::ErrorCode::BadInput
                    | wasmhost::ErrorCode::LinkError
                    | wasmhost::ErrorCode::InvalidModule
            ),
        };
        let restarts = system.list().first().map_or(0, |a| a.restarts);
        let now = chrono::Utc::now();
        let record = match existing {
            Some(mut rec) => {
                rec.messages += 1;
                rec.restarts += restarts;
                rec.last_message = now;
                if self.abi.is_some() {
                    rec.convention = convention.map(|c| c.as_str().to_string());
                }
                Some(rec)
            }
            None if reached_guest => Some(ActorRecord {
                id: self.id.clone(),
                digest: module.digest().to_string(),
                module: reference,
                manifest,
                function,
                convention: convention.map(|c| c.as_str().to_string()),
                messages: 1,
                restarts,
                created: now,
                last_message: now,
            }),
            None => None,
        };
        if let Some(record) = record {
            write_record(&path, &record)?;
        }
        let out = result?;
        for log in &out.logs {
            eprintln!("[{}] {}", log.level.as_str(), log.message);
        }
        crate::commands::call::print_data(&out.value)?;
        Ok(0)
    }
}

/// Every record under `dir`, sorted by id.
fn all_records(dir: &Path) -> anyhow::Result<Vec<ActorRecord>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::internal(format!("cannot list {}: {e}", dir.display())).into());
        }
    };
    let mut records = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json")
            && let Some(rec) = read_record(&path)?
        {
            records.push(rec);
        }
    }
    records.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(records)
}

impl LsCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let records = all_records(&actors_dir(&self.state)?)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&records)?);
            return Ok(0);
        }
        if records.is_empty() {
            eprintln!("no actors");
            return Ok(0);
        }
        println!(
            "{:<24} {:<24} {:<19} {:<16} {:>8} {:>8}  LAST MESSAGE",
            "ID", "MODULE", "DIGEST", "FUNCTION", "MESSAGES", "RESTARTS"
        );
        for r in records {
            let digest = r
                .digest
                .parse::<Digest>()
                .map(|d| d.short())
                .unwrap_or_else(|_| r.digest.clone());
            println!(
                "{:<24} {:<24} {:<19} {:<16} {:>8} {:>8}  {}",
                r.id,
                r.module,
                digest,
                r.function,
                r.messages,
                r.restarts,
                r.last_message.format("%Y-%m-%d %H:%M:%S")
            );
        }
        Ok(0)
    }
}

impl RmCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let dir = actors_dir(&self.state)?;
        let _lock = lock_dir(&dir)?;
        let path = record_path(&dir, &self.id);
        if read_record(&path)?.is_none() {
            return Err(Error::not_found(format!("actor `{}`", self.id)).into());
        }
        std::fs::remove_file(&path)
            .map_err(|e| Error::internal(format!("cannot remove {}: {e}", path.display())))?;
        let mut purged = 0;
        if self.purge {
            let kv = self.state.open_kv()?;
            let namespace = format!("actor:{}", self.id);
            for key in kv.keys(&namespace)? {
                purged += usize::from(kv.delete(&namespace, &key)?);
            }
        }
        if self.purge {
            eprintln!("removed actor {} and {purged} key(s)", self.id);
        } else {
            eprintln!("removed actor {}", self.id);
        }
        Ok(0)
    }
}
