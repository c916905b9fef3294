//! Metrics hooks, observed with a real recorder from `metrics-util`.

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use wasmhost::{Value, metrics as names};

use crate::load_wat;

/// One recorded metric: name, labels, value.
type Sample = (String, Vec<(String, String)>, DebugValue);

fn counter(snapshot: &[Sample], name: &str, label: (&str, &str)) -> u64 {
    snapshot
        .iter()
        .filter(|(n, labels, _)| {
            n == name && labels.iter().any(|(k, v)| k == label.0 && v == label.1)
        })
        .map(|(_, _, v)| match v {
            DebugValue::Counter(c) => *c,
            _ => 0,
        })
        .sum()
}

#[test]
fn calls_errors_and_loads_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let m = load_wat("divzero").with_name("div-module");
        m.invoke("div", &[Value::I32(6), Value::I32(3)]).unwrap();
        m.invoke("div", &[Value::I32(6), Value::I32(0)])
            .unwrap_err();
    });
    let snap: Vec<Sample> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            (key.name().to_string(), labels, value)
        })
        .collect();
    assert_eq!(counter(&snap, names::CALLS, ("module", "div-module")), 2);
    assert_eq!(counter(&snap, names::ERRORS, ("type", "trap")), 1);
    assert_eq!(
        counter(&snap, names::MODULE_LOADS, ("source", "compile")),
        1
    );
    let durations =
        snap.iter()
            .find(|(n, _, _)| n == names::CALL_DURATION)
            .map(|(_, _, v)| match v {
                DebugValue::Histogram(h) => h.len(),
                _ => 0,
            });
    assert_eq!(durations, Some(2));
    assert!(snap.iter().any(|(n, _, _)| n == names::MEMORY_BYTES));
}
