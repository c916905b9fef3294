//! A component providing `wasmhost:example/console` and
//! `wasmhost:example/events` (world `provider` of `../link-wit`) to another
//! component (`wasmhost --link`). Both interfaces keep their state in the
//! one instance: the lines logged and every event emitted (payloads
//! included, so a flood of events grows this instance's memory, not the
//! consumer's).
//!
//! Built by `scripts/build-guests.sh` into `target/guests/out/link-provider.wasm`.

use std::cell::RefCell;

wit_bindgen::generate!({
    world: "provider",
    path: "../link-wit",
});

use exports::wasmhost::example::{console, events};

thread_local! {
    static LINES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    static EVENTS: RefCell<Vec<events::Event>> = const { RefCell::new(Vec::new()) };
}

struct Provider;

impl console::Guest for Provider {
    fn log(line: String) {
        println!("[console] {line}");
        LINES.with(|l| l.borrow_mut().push(line));
    }

    fn lines() -> Vec<String> {
        LINES.with(|l| l.borrow().clone())
    }
}

impl events::Guest for Provider {
    fn emit(e: events::Event) -> Result<u32, String> {
        if e.topic.is_empty() {
            return Err("an event needs a topic".to_string());
        }
        EVENTS.with(|ev| {
            let mut ev = ev.borrow_mut();
            ev.push(e);
            Ok(ev.len() as u32)
        })
    }

    fn count(topic: String) -> u32 {
        EVENTS.with(|ev| ev.borrow().iter().filter(|e| e.topic == topic).count() as u32)
    }
}

export!(Provider);
