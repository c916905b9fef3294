//! PNG resizing as a plain Rust function, run inside a WebAssembly sandbox.
//!
//! [`Resizer::resize`] takes PNG bytes and a target size and returns the
//! resized PNG. Callers never see WebAssembly: behind the function, the work
//! is done by the `image-resize` guest (`guests/rust/image-resize`, the
//! `image` crate compiled for `wasm32-unknown-unknown`), embedded in this
//! crate with `include_bytes!` and run by [`wasmhost`]. Every call
//! gets a fresh sandbox with:
//!
//! - a **memory** limit (default 256 MiB of guest linear memory): an image
//!   that needs more fails with [`ResizeError::TooLarge`];
//! - a **work** budget (fuel, default [`DEFAULT_FUEL`] units, roughly one per
//!   wasm instruction) and a **time** limit (default 10 s): past either, the
//!   call fails with [`ResizeError::TooSlow`];
//! - **no capabilities**: the module has no imports at all, so a malicious
//!   PNG that took over the decoder could still reach no file, clock,
//!   socket or host function, and a crash or limit hit leaves the next call
//!   unaffected.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use image_resize_example::{ResizeError, ResizeLimits, Resizer};
//!
//! # fn main() -> Result<(), ResizeError> {
//! // Build once and share: `Resizer` is `Send + Sync`, and calls from many
//! // threads run side by side, each in its own sandbox.
//! let resizer = Resizer::new()?;
//! let png = std::fs::read("photo.png").expect("read photo.png");
//! match resizer.resize(&png, 256, 192) {
//!     Ok(thumbnail) => std::fs::write("thumb.png", thumbnail).expect("write thumb.png"),
//!     Err(ResizeError::InvalidImage(why)) => eprintln!("not a usable PNG: {why}"),
//!     Err(ResizeError::TooLarge { limit_bytes }) => eprintln!("needs more than {limit_bytes} bytes"),
//!     Err(other) => return Err(other),
//! }
//!
//! // Other limits:
//! let strict = Resizer::with_limits(
//!     ResizeLimits::default()
//!         .max_memory_bytes(64 << 20)
//!         .timeout(Some(Duration::from_secs(2))),
//! )?;
//! # let _ = strict;
//! # Ok(()) }
//! ```
//!
//! Width and height must be in `1..=`[`MAX_DIMENSION`]; anything else is
//! [`ResizeError::InvalidSize`] without running the guest. The output is the
//! same, byte for byte, as `image_resize::resize_png` compiled natively:
//! `resize_exact` with a triangle filter, keeping the colour type, encoded
//! with the `image` crate's default PNG settings.

use std::sync::OnceLock;
use std::time::Duration;

use wasmhost::{CallOptions, ErrorCode, Limits, Module, PoolConfig, Runtime, RuntimeConfig, Value};

/// The guest module, built by `scripts/build-guests.sh` (`build.rs` checks
/// that it exists).
static GUEST: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../target/guests/out/image-resize.wasm"
));

/// Largest width or height accepted, in pixels.
pub const MAX_DIMENSION: u32 = 16_384;
/// Default memory limit of one resize: 256 MiB.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 256 << 20;
/// Default work budget of one resize, in fuel units (about one per wasm
/// instruction): 50 billion. Resizing a 1024×768 PNG to 256×192 uses about
/// 0.43 billion, so this allows images of roughly 100 times that area
/// (about 2 s of work; the timeout is the looser limit).
pub const DEFAULT_FUEL: u64 = 50_000_000_000;
/// Default wall-clock limit of one resize: 10 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a resize failed. The variants say what was wrong with the request,
/// not how the sandbox noticed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResizeError {
    /// The input is not a PNG that can be decoded (or the result could not
    /// be encoded).
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// Decoding, resizing or encoding needed more memory than allowed.
    #[error("image too large: resizing it needs more than the {limit_bytes}-byte memory limit")]
    TooLarge {
        /// The memory limit in force, in bytes.
        limit_bytes: u64,
    },
    /// The resize used up its time limit or its work budget.
    #[error("resizing took too long: {0}")]
    TooSlow(String),
    /// The target width or height is 0 or larger than [`MAX_DIMENSION`].
    #[error("invalid target size {width}x{height}: each side must be between 1 and {max}")]
    InvalidSize {
        /// The requested width.
        width: u32,
        /// The requested height.
        height: u32,
        /// [`MAX_DIMENSION`].
        max: u32,
    },
    /// The resizer itself failed (a bug, or the sandbox could not be set up).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Limits of one resize. See [`ResizeLimits::default`] for the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResizeLimits {
    /// Memory the resize may use for the input, the decoded and resized
    /// pixels and the output, in bytes.
    pub max_memory_bytes: u64,
    /// Work budget in fuel units (about one per wasm instruction); `None`
    /// for no budget. Metering costs some speed, so a `Resizer` built with
    /// `None` runs unmetered.
    pub fuel: Option<u64>,
    /// Wall-clock limit; `None` for none.
    pub timeout: Option<Duration>,
}

impl Default for ResizeLimits {
    /// [`DEFAULT_MAX_MEMORY_BYTES`], [`DEFAULT_FUEL`], [`DEFAULT_TIMEOUT`].
    fn default() -> Self {
        ResizeLimits {
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            fuel: Some(DEFAULT_FUEL),
            timeout: Some(DEFAULT_TIMEOUT),
        }
    }
}

impl ResizeLimits {
    /// Sets [`ResizeLimits::max_memory_bytes`].
    pub fn max_memory_bytes(mut self, bytes: u64) -> Self {
        self.max_memory_bytes = bytes;
        self
    }

    /// Sets [`ResizeLimits::fuel`].
    pub fn fuel(mut self, fuel: Option<u64>) -> Self {
        self.fuel = fuel;
        self
    }

    /// Sets [`ResizeLimits::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    fn to_wasmhost(&self) -> Limits {
        Limits::default()
            .max_memory_bytes(self.max_memory_bytes)
            .fuel(self.fuel)
            .timeout(self.timeout)
    }
}

/// Resizes PNG images in a sandbox. Build one and share it (it is
/// `Send + Sync`, and clones share the compiled code): every call runs in its
/// own fresh sandbox, so calls never affect one another.
#[derive(Debug, Clone)]
pub struct Resizer {
    module: Module,
    limits: ResizeLimits,
}

impl Resizer {
    /// A resizer with the default [`ResizeLimits`].
    pub fn new() -> Result<Resizer, ResizeError> {
        Resizer::with_limits(ResizeLimits::default())
    }

    /// A resizer with other limits.
    ///
    /// The embedded module is compiled once per process (and per choice of
    /// metered or unmetered fuel), by the first resizer that needs it; later
    /// resizers reuse that code, so they are cheap to build.
    pub fn with_limits(limits: ResizeLimits) -> Result<Resizer, ResizeError> {
        let module = runtime(limits.fuel.is_some())?
            .load_bytes(GUEST)
            .map_err(|e| ResizeError::Internal(format!("cannot load the resizer: {e}")))?
            .with_name("image-resize")
            .with_limits(limits.to_wasmhost());
        Ok(Resizer { module, limits })
    }

    /// The limits every call gets.
    pub fn limits(&self) -> &ResizeLimits {
        &self.limits
    }

    /// Decodes `png`, resizes it to exactly `width`×`height` (triangle
    /// filter, same colour type) and returns it encoded as PNG.
    pub fn resize(&self, png: &[u8], width: u32, height: u32) -> Result<Vec<u8>, ResizeError> {
        let valid = 1..=MAX_DIMENSION;
        if !valid.contains(&width) || !valid.contains(&height) {
            return Err(ResizeError::InvalidSize {
                width,
                height,
                max: MAX_DIMENSION,
            });
        }
        if png.is_empty() {
            return Err(ResizeError::InvalidImage("the input is empty".into()));
        }
        // The input is copied into the sandbox's memory first, so it must fit.
        if png.len() as u64 >= self.limits.max_memory_bytes {
            return Err(ResizeError::TooLarge {
                limit_bytes: self.limits.max_memory_bytes,
            });
        }
        // MAX_DIMENSION fits in an i32, so these casts are exact.
        let args = [Value::I32(width as i32), Value::I32(height as i32)];
        let out = self
            .module
            .call_raw("resize", png, &args, &CallOptions::default())
            .map_err(|e| self.classify(&e))?;
        if out.value.is_empty() {
            // The guest returns no buffer, and no message, on any error of its
            // own; the size was checked above, so it is the input.
            return Err(ResizeError::InvalidImage(
                "the input could not be decoded as a PNG image".into(),
            ));
        }
        Ok(out.value)
    }

    /// Maps a sandbox failure onto what it means for the caller.
    fn classify(&self, err: &wasmhost::Error) -> ResizeError {
        match err.code() {
            ErrorCode::MemoryLimit => ResizeError::TooLarge {
                limit_bytes: self.limits.max_memory_bytes,
            },
            ErrorCode::Timeout => ResizeError::TooSlow(match self.limits.timeout {
                Some(t) => format!("the time limit of {t:?} passed"),
                None => "the time limit passed".into(),
            }),
            ErrorCode::OutOfFuel => ResizeError::TooSlow(match self.limits.fuel {
                Some(f) => format!("the work budget of {f} units ran out"),
                None => "the work budget ran out".into(),
            }),
            // A trap or stack overflow is a crash of the decoder or encoder (a
            // bug, perhaps triggered by this input); nothing of it survives
            // the call.
            ErrorCode::Trap | ErrorCode::StackOverflow => {
                ResizeError::Internal(format!("the resizer crashed: {err}"))
            }
            _ => ResizeError::Internal(err.to_string()),
        }
    }
}

/// Guest memory each sandbox slot keeps mapped between calls and resets in
/// place, instead of handing it back to the kernel and faulting it in again
/// on the next call. A resize touches several times the image's pixel size
/// (9 MiB for a 1024×768 RGB photo), so wasmhost's default of 1 MiB made every
/// call pay about 2,300 page faults (some 3 ms, a sixth of the call).
const KEEP_RESIDENT_BYTES: u64 = 16 << 20;

/// The process's sandbox runtime with or without fuel metering (metering
/// costs guest speed, so resizers without a work budget do not pay for it).
/// Each keeps its compiled modules in memory, so the guest is compiled once.
fn runtime(fuel_metering: bool) -> Result<Runtime, ResizeError> {
    static METERED: OnceLock<Result<Runtime, String>> = OnceLock::new();
    static UNMETERED: OnceLock<Result<Runtime, String>> = OnceLock::new();
    let cell = if fuel_metering { &METERED } else { &UNMETERED };
    cell.get_or_init(|| {
        let mut pool = PoolConfig::default();
        pool.keep_resident_bytes = KEEP_RESIDENT_BYTES;
        let config = RuntimeConfig::default()
            .fuel_metering(fuel_metering)
            .pool(Some(pool));
        Runtime::new(config).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(|e| ResizeError::Internal(format!("cannot start the sandbox: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizer_is_send_and_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Resizer>();
        check::<ResizeError>();
    }

    #[test]
    fn sizes_are_checked_before_the_sandbox() {
        let r = Resizer::new().expect("resizer");
        for (w, h) in [(0, 1), (1, 0), (MAX_DIMENSION + 1, 1), (1, u32::MAX)] {
            assert_eq!(
                r.resize(b"\x89PNG", w, h),
                Err(ResizeError::InvalidSize {
                    width: w,
                    height: h,
                    max: MAX_DIMENSION
                })
            );
        }
    }
}
