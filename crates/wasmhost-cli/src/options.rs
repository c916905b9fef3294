//! Flags shared by several subcommands, flattened into each.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use wasmhost::{Limits, RuntimeConfig};

/// Where state lives.
#[derive(Debug, Clone, Args)]
pub struct StateOptions {
    /// State directory: compiled modules are cached under DIR/cache.
    /// Default: $WASMHOST_STATE, else the platform data directory
    /// (~/.local/share/wasmhost on Linux).
    #[arg(long, value_name = "DIR", env = "WASMHOST_STATE", global = true)]
    pub state: Option<PathBuf>,

    /// Do not read or write the on-disk compiled-module cache.
    #[arg(long, global = true)]
    pub no_disk_cache: bool,
}

impl StateOptions {
    pub fn state_dir(&self) -> Option<PathBuf> {
        if self.no_disk_cache {
            return None;
        }
        self.state.clone().or_else(wasmhost::default_state_dir)
    }
}

/// Limits of a call. Defaults are safe for untrusted modules.
#[derive(Debug, Clone, Args)]
pub struct LimitOptions {
    /// Fuel for the call (roughly one unit per wasm instruction); enables fuel
    /// metering, which slows guests down. Default: unmetered.
    #[arg(long, value_name = "N")]
    pub fuel: Option<u64>,

    /// Most linear memory the instance may hold, e.g. 64MiB, 1GiB, 65536.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub max_memory: u64,

    /// Wall-clock timeout, e.g. 500ms, 30s, 2m; `none` for no timeout.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_timeout)]
    pub timeout: Timeout,

    /// Most elements any one table may hold.
    #[arg(long, value_name = "N", default_value_t = wasmhost::limits::DEFAULT_MAX_TABLE_ELEMENTS)]
    pub max_table_elements: u64,

    /// Most core instances the call may create (a component counts each of its own).
    #[arg(long, value_name = "N", default_value_t = wasmhost::limits::DEFAULT_MAX_INSTANCES)]
    pub max_instances: u32,

    /// Maximum wasm stack, e.g. 512KiB, 1MiB.
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub max_stack: u64,
}

/// A parsed `--timeout`.
#[derive(Debug, Clone, Copy)]
pub struct Timeout(pub Option<Duration>);

impl LimitOptions {
    pub fn limits(&self) -> Limits {
        Limits::default()
            .max_memory_bytes(self.max_memory)
            .max_table_elements(self.max_table_elements)
            .max_instances(self.max_instances)
            .fuel(self.fuel)
            .timeout(self.timeout.0)
    }

    /// The runtime configuration these limits need.
    pub fn runtime_config(&self, state: &StateOptions) -> anyhow::Result<RuntimeConfig> {
        let mut config = RuntimeConfig::default()
            .fuel_metering(self.fuel.is_some())
            .max_wasm_stack(usize::try_from(self.max_stack)?)
            .default_limits(self.limits())
            // One call per process: on-demand allocation starts faster than
            // reserving a pool that a single call cannot use.
            .pool(None);
        if let Some(dir) = state.state_dir() {
            config = config.state_dir(dir);
        }
        Ok(config)
    }
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `1.5MB` or a plain byte count.
pub fn parse_size(s: &str) -> Result<u64, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("`{s}` is not a size (try 64MiB, 1GiB or a byte count): {e}"))
}

fn parse_timeout(s: &str) -> Result<Timeout, String> {
    if matches!(s.trim(), "none" | "off" | "0") {
        return Ok(Timeout(None));
    }
    humantime::parse_duration(s.trim())
        .map(|d| Timeout(Some(d)))
        .map_err(|e| format!("`{s}` is not a duration (try 500ms, 30s, 2m or none): {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_timeouts_parse() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert!(parse_size("lots").is_err());
        assert_eq!(
            parse_timeout("500ms").map(|t| t.0),
            Ok(Some(Duration::from_millis(500)))
        );
        assert_eq!(parse_timeout("none").map(|t| t.0), Ok(None));
        assert!(parse_timeout("soon").is_err());
    }
}
