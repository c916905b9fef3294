//! Subcommands, one file each.

pub mod actor;
pub mod cache;
pub mod call;
pub mod inspect;
pub mod ls;
pub mod pull;
pub mod push;
pub mod rm;
pub mod run;
pub mod serve;
pub mod tag;
pub mod test;

/// Every subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a WASI command, or call one exported function with --invoke.
    Run(run::RunCommand),
    /// Call a function with data in and data out (Extism plugin,
    /// AssemblyScript, component with JSON/WAVE arguments, numeric).
    Call(call::CallCommand),
    /// Call one function and print its result, time, fuel and memory.
    Test(test::TestCommand),
    /// Show a module's digest, kind, imports, exports and tags.
    Inspect(inspect::InspectCommand),
    /// Store a module under NAME[:TAG], or publish it to an OCI registry
    /// (REGISTRY/REPOSITORY:TAG).
    Push(push::PushCommand),
    /// Fetch a module from an OCI registry (REGISTRY/REPOSITORY:TAG) into the
    /// store, or copy a stored module out into a file.
    Pull(pull::PullCommand),
    /// List the modules in the store.
    Ls(ls::LsCommand),
    /// Remove a tag, or an untagged module.
    Rm(rm::RmCommand),
    /// Point NAME[:TAG] at a stored module.
    Tag(tag::TagCommand),
    /// The on-disk compiled-module cache.
    Cache(cache::CacheCommand),
    /// Named actors with durable key-value state: send, ls, rm.
    Actor(actor::ActorCommand),
    /// Serve the HTTP API, the dashboard and HTTP/TCP/wasi:http workers.
    Serve(Box<serve::ServeCommand>),
}

impl Command {
    /// Whether the command prints its calls' guest log lines itself (so
    /// they need not also go through tracing).
    pub fn prints_guest_logs(&self) -> bool {
        match self {
            Command::Call(_) => true,
            Command::Actor(c) => c.prints_guest_logs(),
            _ => false,
        }
    }

    /// Whether the command ends quietly, as `ls` or `cat` do, when what reads
    /// its standard output goes away (`wasmhost ls | head`): every command
    /// but `serve` (a server keeps serving) and `run` (as under `wasmtime
    /// run`, the host is not killed by what its guest writes).
    pub fn dies_of_a_closed_stdout(&self) -> bool {
        !matches!(self, Command::Serve(_) | Command::Run(_))
    }

    /// Runs the subcommand; returns the process exit status on success.
    pub fn execute(self) -> anyhow::Result<u8> {
        match self {
            Command::Run(c) => c.execute(),
            Command::Call(c) => c.execute(),
            Command::Test(c) => c.execute(),
            Command::Inspect(c) => c.execute(),
            Command::Push(c) => c.execute(),
            Command::Pull(c) => c.execute(),
            Command::Ls(c) => c.execute(),
            Command::Rm(c) => c.execute(),
            Command::Tag(c) => c.execute(),
            Command::Cache(c) => c.execute(),
            Command::Actor(c) => c.execute(),
            Command::Serve(c) => c.execute(),
        }
    }
}
