//! A spinner for work that takes more than a moment (compiles, pushes),
//! drawn only when stderr is a terminal, and only after a short delay so
//! quick operations print nothing extra.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// How long work runs before the spinner appears.
const DELAY: Duration = Duration::from_millis(300);

/// Runs `work`, showing `message` with a spinner if it takes longer than a moment.
pub fn with_spinner<T>(message: &str, work: impl FnOnce() -> T) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = ProgressBar::hidden();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    let shown = bar.clone();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let waiter = std::thread::spawn(move || {
        if done_rx.recv_timeout(DELAY).is_err() {
            shown.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            shown.enable_steady_tick(Duration::from_millis(100));
        }
    });
    let out = work();
    let _ = done_tx.send(());
    let _ = waiter.join();
    bar.finish_and_clear();
    out
}

/// A progress bar of registry transfers (`pull`, `push`, `oci://` modules),
/// drawn on stderr; [`transfer_bar`] makes one only on a terminal.
#[derive(Debug)]
pub struct TransferBar {
    bar: ProgressBar,
}

/// A transfer bar when stderr is a terminal, else nothing (no output at all
/// in pipes and logs).
pub fn transfer_bar() -> Option<std::sync::Arc<dyn wasmhost_store::oci::Progress>> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    Some(std::sync::Arc::new(TransferBar {
        bar: ProgressBar::hidden(),
    }))
}

impl wasmhost_store::oci::Progress for TransferBar {
    fn start(&self, what: &str, total: Option<u64>) {
        self.bar.reset();
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_message(what.to_string());
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }

    fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
