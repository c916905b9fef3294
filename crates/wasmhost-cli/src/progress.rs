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
