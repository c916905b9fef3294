//! AssemblyScript string exports: `guests/assemblyscript/counter.ts` built
//! by `asc --exportRuntime` with the stub, minimal and incremental runtimes.

use wasmhost::{CallOptions, Convention, Error, ErrorCode, Module};

use crate::{built, runtime};

fn counters() -> Vec<(&'static str, Module)> {
    ["stub", "minimal", "incremental"]
        .into_iter()
        .map(|rt| {
            let m = runtime()
                .load(&built(&format!("as-counter-{rt}.wasm")))
                .unwrap();
            (rt, m)
        })
        .collect()
}

#[test]
fn counter_keeps_state_on_an_instance_with_every_runtime() {
    for (rt, m) in counters() {
        let mut i = m.instantiate(&CallOptions::default()).unwrap();
        let mut send = |f: &str, arg: &str| {
            i.call(f, arg)
                .unwrap_or_else(|e| panic!("{rt}: {f}({arg}): {e}"))
                .value
                .text()
                .unwrap()
                .into_owned()
        };
        assert_eq!(send("increment", "5"), "5", "{rt}");
        assert_eq!(send("increment", "3"), "8", "{rt}");
        assert_eq!(send("decrement", "2"), "6", "{rt}");
        assert_eq!(send("get", ""), "6", "{rt}");
        // A fresh sandbox per call starts from zero.
        assert_eq!(m.call("increment", "5").unwrap().value.text().unwrap(), "5");
        assert_eq!(m.call("increment", "5").unwrap().value.text().unwrap(), "5");
    }
}

#[test]
fn strings_round_trip_beyond_ascii() {
    for (rt, m) in counters() {
        assert!(
            m.conventions("greet")
                .iter()
                .any(|(c, v)| *c == Convention::AssemblyScript && v.is_ok()),
            "{rt}"
        );
        let out = m.call("greet", "Zoë 🌍").unwrap();
        assert_eq!(out.value.text().unwrap(), "Hello, Zoë 🌍!", "{rt}");
        let long: String = "añ€𝄞".repeat(20_000);
        let out = m.call("echo", &long).unwrap();
        assert_eq!(out.value.text().unwrap(), long, "{rt}");
        assert_eq!(
            m.call("echo", "").unwrap().value.text().unwrap(),
            "",
            "{rt}"
        );
    }
}

#[test]
fn many_calls_on_one_instance_survive_garbage_collection() {
    for (rt, m) in counters() {
        let mut i = m.instantiate(&CallOptions::default()).unwrap();
        for n in 0..300 {
            let arg = format!("{n}-{}", "x".repeat(1000));
            let out = i.call("echo", &arg).unwrap();
            assert_eq!(out.value.text().unwrap(), arg, "{rt} call {n}");
        }
    }
}

#[test]
fn abort_becomes_a_guest_error_with_its_location() {
    for (rt, m) in counters() {
        let e = m.call("fail", "it broke").unwrap_err();
        assert_eq!(e.code(), ErrorCode::GuestError, "{rt}: {e}");
        let Error::Guest { message, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(message.starts_with("it broke ("), "{rt}: {message}");
        assert!(message.contains("counter.ts:"), "{rt}: {message}");
        // Bad input to the guest's own parser ends the same way.
        let e = m.call("increment", "five").unwrap_err();
        assert!(e.to_string().contains("not a decimal integer"), "{rt}: {e}");
        // On an instance, an abort restarts it: state is lost, calls go on.
        let mut i = m.instantiate(&CallOptions::default()).unwrap();
        i.call("increment", "4").unwrap();
        assert!(i.call("fail", "x").is_err());
        assert_eq!(i.restarts(), 1);
        assert_eq!(i.call("get", "").unwrap().value.text().unwrap(), "0");
    }
}

#[test]
fn non_utf8_argument_is_bad_input() {
    let (_, m) = counters().remove(0);
    let e = m.call("echo", [0xffu8, 0xfe]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadInput, "{e}");
}
