//! The command flavour of the consumer: logs each argument through the
//! imported `wasmhost:example/console`, emits an `arg` event per argument,
//! then prints what the provider kept.
//!
//! Built by `scripts/build-guests.sh` into `target/guests/out/link-consumer-cli.wasm`.

wit_bindgen::generate!({
    world: "consumer-cli",
    path: "../link-wit",
});

use wasmhost::example::{console, events};

fn main() {
    for arg in std::env::args().skip(1) {
        console::log(&format!("arg {arg}"));
        let event = events::Event {
            topic: "arg".to_string(),
            payload: arg.into_bytes(),
        };
        if let Err(e) = events::emit(&event) {
            eprintln!("emit failed: {e}");
            std::process::exit(1);
        }
    }
    println!(
        "consumer: {} line(s), {} arg event(s)",
        console::lines().len(),
        events::count("arg")
    );
}
