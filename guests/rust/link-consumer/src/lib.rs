//! A component whose imports another component provides (`wasmhost --link`):
//! world `consumer` of `../link-wit`, importing `wasmhost:example/console`
//! and `wasmhost:example/events`.
//!
//! Built by `scripts/build-guests.sh` into `target/guests/out/link-consumer.wasm`.

wit_bindgen::generate!({
    world: "consumer",
    path: "../link-wit",
});

use wasmhost::example::{console, events};

struct Consumer;

impl Guest for Consumer {
    fn greet(name: String) -> String {
        console::log(&format!("hello {name}"));
        let event = events::Event {
            topic: "greeted".to_string(),
            payload: name.into_bytes(),
        };
        if let Err(e) = events::emit(&event) {
            return format!("emit failed: {e}");
        }
        format!(
            "{} | greeted: {}",
            console::lines().join(";"),
            events::count("greeted")
        )
    }

    fn emit_many(count: u32, size: u32) -> u32 {
        let payload = vec![7u8; size as usize];
        for _ in 0..count {
            let event = events::Event {
                topic: "bulk".to_string(),
                payload: payload.clone(),
            };
            if events::emit(&event).is_err() {
                return 0;
            }
        }
        events::count("bulk")
    }
}

export!(Consumer);
