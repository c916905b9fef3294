//! Subcommands, one file each.

pub mod run;

/// Every subcommand.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run a WASI command, or call one exported function with --invoke.
    Run(run::RunCommand),
}

impl Command {
    /// Runs the subcommand; returns the process exit status on success.
    pub fn execute(self) -> anyhow::Result<u8> {
        match self {
            Command::Run(c) => c.execute(),
        }
    }
}
