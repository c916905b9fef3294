//! `wasmhost actor send|ls|rm|export|import`: named actors kept in the
//! local state directory.
//!
//! The command's record of an actor (id, module digest and reference,
//! default function, calling convention, snapshot policy, message and
//! restart counts) is one JSON file under `STATE/actors/`, written
//! atomically (temporary file, then rename). The module's bytes live in the
//! module store (a module given by file is pushed there by digest). The
//! actor's durable state is the library's (`wasmhost::actor`), in
//! `STATE/kv.redb`: its snapshot (memory, globals, Extism vars), its
//! key-value data (namespace `actor:<id>`) and its recent replies, all
//! committed together after each message. Each `send` is a new process
//! that resumes the actor from its snapshot, runs the message and commits
//! it, so in-memory state carries over from one invocation to the next.
//! Sends are serialized across processes by a lock file,
//! `STATE/actors/.lock`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use wasmhost::{ActorConfig, ActorSpec, ActorSystem, Convention, Digest, Error, SnapshotPolicy};

use crate::options::{InputOptions, LimitOptions, Loaded, StateOptions, block_on, load, resolve};

#[derive(Debug, Args)]
pub struct ActorCommand {
    #[command(subcommand)]
    command: ActorSubcommand,
}

#[derive(Debug, Subcommand)]
enum ActorSubcommand {
    /// Send one message to an actor, creating it with --module if unknown.
    Send(Box<SendCommand>),
    /// List the actors of the state directory.
    Ls(LsCommand),
    /// Forget an actor and its snapshot (its key-value state stays unless --purge).
    Rm(RmCommand),
    /// Write an actor (record, snapshot, key-value data) to a file, to move it.
    Export(ExportCommand),
    /// Create an actor from a file `actor export` wrote.
    Import(ImportCommand),
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
            ActorSubcommand::Export(c) => c.execute(),
            ActorSubcommand::Import(c) => c.execute(),
        }
    }
}

#[derive(Debug, Args)]
#[command(after_help = "\
An actor is a module plus an id. Its record (module digest, default function, \
calling convention, message count) is kept in STATE/actors/, its module in the \
module store, and its durable state in STATE/kv.redb: a snapshot of its memory, \
globals and Extism vars, its key-value data (wasmhost:kv, Extism kv_*, \
wasi:keyvalue; namespace actor:ID) and the replies to its last 1024 message ids.

Every `wasmhost actor send` is a new process: it resumes the actor from its \
snapshot, runs the message, and commits the new snapshot, the key-value writes \
and the reply in one transaction before printing the reply. A message that \
fails (trap, timeout, limit) commits nothing: the actor stays as it was.

SNAPSHOT POLICIES (--snapshots, remembered with the actor):
  every-message    after every message, atomically with it (default)
  on-passivation   when the process ends (cheaper; a crash loses the memory
                   state of the messages since; key-value writes are kept)
  never            in-memory state lasts one invocation (components: always)

A message sent with --id MSG is applied once: sent again with the same id, \
the recorded reply is printed and nothing runs. Sending to an unknown ID without \
--module fails with error[not_found] (exit 66); a stored actor of another \
module fails with error[snapshot_mismatch] (exit 76) unless --fresh. Options go \
anywhere after `send`, before or after ID.

EXAMPLES:
  wasmhost actor send counter-1 --module counter.wasm --function execute --input 'increment 5'
  wasmhost actor send counter-1 --function execute --input get
  wasmhost actor send counter-1 --input 'increment 1' --id order-17   # at most once
  wasmhost actor send --input 'increment 3' counter-1 --timeout 300
  wasmhost actor send visits --module kv.wat --function counter --abi numeric
  wasmhost actor ls --json
  wasmhost actor export counter-1 counter-1.actor
  wasmhost actor import counter-2 counter-1.actor
  wasmhost actor rm c1 --purge")]
struct SendCommand {
    /// The actor's id.
    id: String,

    /// The module, when the actor does not exist yet: a .wasm binary, WAT
    /// text, a manifest (its limits, grants, convention and function hold
    /// for every message; later sends read it again) or a store reference
    /// (name[:tag], sha256:…), or oci://REGISTRY/REPOSITORY:TAG (pulled into
    /// the store by digest). Given for an existing actor, it must be the
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

    /// A message id: the message is applied at most once. Sent again with
    /// the same id, the recorded reply is printed and nothing runs.
    #[arg(long = "id", value_name = "MSG")]
    message_id: Option<String>,

    /// When the actor's state is saved: every-message (default),
    /// on-passivation or never. Remembered with the actor.
    #[arg(long, value_name = "POLICY", value_parser = parse_policy)]
    snapshots: Option<SnapshotPolicy>,

    /// Start over if the stored actor runs another module (its snapshot is
    /// dropped, its key-value data kept), instead of error[snapshot_mismatch].
    #[arg(long)]
    fresh: bool,

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

    /// Also delete the actor's key-value entries (every bucket).
    #[arg(long)]
    purge: bool,

    #[command(flatten)]
    state: StateOptions,
}

#[derive(Debug, Args)]
#[command(after_help = "\
The file holds the actor's record, its snapshot and its key-value data (not \
its module: the module must be in the destination's store, or be given with \
--module at its next send). `-` writes to stdout.

EXAMPLE:
  wasmhost actor export counter-1 counter-1.actor
  wasmhost actor import counter-1 counter-1.actor --state /other/state")]
struct ExportCommand {
    /// The actor's id.
    id: String,

    /// Where to write it (`-`: stdout).
    file: PathBuf,

    #[command(flatten)]
    state: StateOptions,
}

#[derive(Debug, Args)]
struct ImportCommand {
    /// The id the actor gets here (it must not exist).
    id: String,

    /// A file `wasmhost actor export` wrote (`-`: stdin).
    file: PathBuf,

    #[command(flatten)]
    state: StateOptions,
}

fn parse_convention(s: &str) -> Result<Convention, String> {
    s.parse::<Convention>().map_err(|e| e.to_string())
}

fn parse_policy(s: &str) -> Result<SnapshotPolicy, String> {
    s.parse::<SnapshotPolicy>().map_err(|e| e.to_string())
}

/// The actor system of a state directory: the actors' records, snapshots
/// and key-value data in its key-value store; no passivation (each command
/// is one process).
fn system(kv: wasmhost::KvStore) -> ActorSystem {
    ActorSystem::new(ActorConfig::default().passivate_after(Duration::MAX).kv(kv))
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
    /// The snapshot policy (default every-message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshots: Option<String>,
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
                    && !self.fresh
                {
                    return Err(mismatch(&self.id, rec, &stored.digest.to_string()).into());
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

        // The manifest's `[actor] snapshots`, unless a flag or the record says.
        let manifest_policy = res.snapshots;
        let Loaded { rt, module, .. } = load(res, &self.limits, &self.state, false)?;
        let module = module.with_name(&display);
        if let Some(rec) = &existing
            && rec.digest != module.digest().to_string()
            && !self.fresh
        {
            return Err(mismatch(&self.id, rec, &module.digest().to_string()).into());
        }
        let policy = match (self.snapshots, &existing) {
            (Some(p), _) => Some(p),
            (None, Some(rec)) => rec
                .snapshots
                .as_deref()
                .map(str::parse::<SnapshotPolicy>)
                .transpose()?,
            (None, None) => manifest_policy,
        };
        let system = system(kv);
        // The actor's limits are its module's: the manifest's, under the
        // command line's flags.
        let mut spec = ActorSpec::new(module.clone())
            .limits(module.limits().clone())
            .fresh(self.fresh);
        if let Some(c) = convention {
            spec = spec.convention(c);
        }
        if let Some(p) = policy {
            spec = spec.snapshots(p);
        }
        let mut result = match &self.message_id {
            Some(mid) => system.send_once(&self.id, Some(&spec), mid, &function, input),
            None => system.send(&self.id, Some(&spec), &function, input),
        };
        // The process ends here: what on-passivation saves at shutdown.
        if result.is_ok()
            && let Err(e) = system.checkpoint()
        {
            result = Err(e);
        }
        crate::options::persist_stats(&rt, &module);
        let replayed = result.as_ref().is_ok_and(|out| out.stats.replayed);

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
        let restarts = system
            .list()?
            .iter()
            .find(|a| a.id == self.id)
            .map_or(0, |a| a.restarts);
        let now = chrono::Utc::now();
        let record = match existing {
            Some(_) if replayed => None,
            // Started over with another module: a new record.
            Some(rec) if rec.digest != module.digest().to_string() && result.is_ok() => {
                Some(ActorRecord {
                    digest: module.digest().to_string(),
                    module: reference,
                    manifest,
                    function,
                    convention: convention.map(|c| c.as_str().to_string()),
                    snapshots: policy.map(|p| p.as_str().to_string()),
                    messages: 1,
                    restarts: 0,
                    last_message: now,
                    ..rec
                })
            }
            Some(mut rec) => {
                rec.messages += 1;
                rec.restarts += restarts;
                rec.last_message = now;
                if self.abi.is_some() {
                    rec.convention = convention.map(|c| c.as_str().to_string());
                }
                if self.snapshots.is_some() {
                    rec.snapshots = policy.map(|p| p.as_str().to_string());
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
                snapshots: policy.map(|p| p.as_str().to_string()),
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
        if replayed && let Some(mid) = &self.message_id {
            eprintln!("(message {mid} was applied before: its recorded reply)");
        }
        for log in &out.logs {
            eprintln!("[{}] {}", log.level.as_str(), log.message);
        }
        crate::commands::call::print_data(&out.value)?;
        Ok(0)
    }
}

/// The error of a send that names another module than the actor's.
fn mismatch(id: &str, rec: &ActorRecord, digest: &str) -> Error {
    Error::SnapshotMismatch {
        expected: digest.to_string(),
        found: rec.digest.clone(),
        hint: Some(format!(
            "actor `{id}` runs module {} ({}); send with --fresh to start it over with this one \
             (its key-value data is kept), or `wasmhost actor rm {id}`",
            rec.module, rec.digest
        )),
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

/// What `actor ls` shows of one actor: the command's record and the
/// library's stored snapshot.
#[derive(Debug, Serialize)]
struct Listed {
    #[serde(flatten)]
    record: ActorRecord,
    /// The stored snapshot's size in bytes (0: none).
    snapshot_bytes: u64,
    /// When it was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl LsCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let dir = actors_dir(&self.state)?;
        let records = all_records(&dir)?;
        let stored = if records.is_empty() {
            Vec::new()
        } else {
            let _lock = lock_dir(&dir)?;
            system(self.state.open_kv()?).list()?
        };
        let listed: Vec<Listed> = records
            .into_iter()
            .map(|record| {
                let info = stored.iter().find(|a| a.id == record.id);
                Listed {
                    snapshot_bytes: info.map_or(0, |a| a.snapshot_bytes),
                    saved_at: info.and_then(|a| a.saved_at).map(chrono::DateTime::from),
                    record,
                }
            })
            .collect();
        if self.json {
            println!("{}", serde_json::to_string_pretty(&listed)?);
            return Ok(0);
        }
        if listed.is_empty() {
            eprintln!("no actors");
            return Ok(0);
        }
        println!(
            "{:<24} {:<24} {:<13} {:<16} {:>8} {:>8} {:>9}  {:<19}  LAST MESSAGE",
            "ID", "MODULE", "DIGEST", "FUNCTION", "MESSAGES", "RESTARTS", "SNAPSHOT", "SAVED"
        );
        for l in listed {
            let r = &l.record;
            let digest = r
                .digest
                .parse::<Digest>()
                .map(|d| d.short())
                .unwrap_or_else(|_| r.digest.clone());
            let snapshot = if l.snapshot_bytes == 0 {
                "-".to_string()
            } else {
                bytesize::ByteSize(l.snapshot_bytes)
                    .display()
                    .iec()
                    .to_string()
            };
            let saved = l.saved_at.map_or("-".to_string(), |t| {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            });
            println!(
                "{:<24} {:<24} {:<13} {:<16} {:>8} {:>8} {:>9}  {:<19}  {}",
                r.id,
                r.module,
                digest,
                r.function,
                r.messages,
                r.restarts,
                snapshot,
                saved,
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
        let had_record = read_record(&path)?.is_some();
        let kv = self.state.open_kv()?;
        let keys = if self.purge {
            kv.entries(&format!("actor:{}", self.id))?.len()
        } else {
            0
        };
        let system = system(kv);
        let removed = if self.purge {
            system.purge(&self.id)?
        } else {
            system.remove(&self.id)?
        };
        if !had_record && !removed {
            return Err(Error::not_found(format!("actor `{}`", self.id)).into());
        }
        if had_record {
            std::fs::remove_file(&path)
                .map_err(|e| Error::internal(format!("cannot remove {}: {e}", path.display())))?;
        }
        if self.purge {
            eprintln!("removed actor {} and {keys} key(s)", self.id);
        } else {
            eprintln!("removed actor {}", self.id);
        }
        Ok(0)
    }
}

impl ExportCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let dir = actors_dir(&self.state)?;
        let _lock = lock_dir(&dir)?;
        let Some(record) = read_record(&record_path(&dir, &self.id))? else {
            return Err(Error::not_found(format!("actor `{}`", self.id)).into());
        };
        let meta = serde_json::to_vec(&record)?;
        let bytes = system(self.state.open_kv()?).export(&self.id, &meta)?;
        if self.file.as_os_str() == "-" {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        } else {
            std::fs::write(&self.file, &bytes).map_err(|e| {
                Error::bad_input(format!("cannot write {}: {e}", self.file.display()))
            })?;
            eprintln!(
                "exported actor {} ({}) to {}",
                self.id,
                bytesize::ByteSize(bytes.len() as u64).display().iec(),
                self.file.display()
            );
        }
        Ok(0)
    }
}

impl ImportCommand {
    fn execute(self) -> anyhow::Result<u8> {
        let bytes = if self.file.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Error::bad_input(format!("cannot read stdin: {e}")))?;
            buf
        } else {
            std::fs::read(&self.file)
                .map_err(|e| Error::not_found(format!("{}: {e}", self.file.display())))?
        };
        let dir = actors_dir(&self.state)?;
        let _lock = lock_dir(&dir)?;
        let path = record_path(&dir, &self.id);
        if read_record(&path)?.is_some() {
            return Err(Error::bad_input(format!(
                "actor `{}` exists: `wasmhost actor rm {}` first",
                self.id, self.id
            ))
            .into());
        }
        let (stored, meta) = system(self.state.open_kv()?).import(&self.id, &bytes)?;
        let mut record: ActorRecord = serde_json::from_slice(&meta).map_err(|e| {
            Error::corrupt(
                "exported actor",
                format!("its command record is unreadable: {e}"),
            )
        })?;
        record.id = self.id.clone();
        record.messages = stored.messages;
        write_record(&path, &record)?;
        eprintln!(
            "imported actor {} (module {}, {} messages{})",
            self.id,
            record.module,
            stored.messages,
            if stored.snapshot_bytes > 0 {
                format!(
                    ", {} snapshot",
                    bytesize::ByteSize(stored.snapshot_bytes).display().iec()
                )
            } else {
                String::new()
            }
        );
        Ok(0)
    }
}
