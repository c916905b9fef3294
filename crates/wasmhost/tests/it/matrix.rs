//! `matrix.wasm` (`guests/rust/matrix`, the worker and page logic of
//! `examples/matrix-multiply`) through `Module::call`: the raw convention is
//! detected, products are right, the page's split/assemble/compare flow works
//! in fresh sandboxes, and malformed input is a `guest_error` with the
//! guest's message (through the `env.abort` import wasmhost links for every
//! core module).

use wasmhost::{Convention, Data, ErrorCode, Module};

use crate::{built, runtime};

fn load() -> Module {
    runtime().load(&built("matrix.wasm")).unwrap()
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    assert_eq!(bytes.len() % 8, 0, "{} bytes are not f64s", bytes.len());
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn call(m: &Module, function: &str, input: &[u8]) -> Vec<u8> {
    match m.call(function, input) {
        Ok(out) => match out.value {
            Data::Bytes(b) => b.to_vec(),
            other => panic!("`{function}` gave {other:?}, not bytes"),
        },
        Err(e) => panic!("`{function}` failed: {e}"),
    }
}

/// A request (`u32 n, k, m`, A, B) with values computed here.
fn request(n: usize, k: usize, m: usize) -> (Vec<u8>, Vec<f64>, Vec<f64>) {
    let a: Vec<f64> = (0..n * k)
        .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
        .collect();
    let b: Vec<f64> = (0..k * m)
        .map(|i| ((i * 53 % 97) as f64 - 48.0) / 3.0)
        .collect();
    let mut bytes = u32s(&[n as u32, k as u32, m as u32]);
    for v in a.iter().chain(&b) {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    (bytes, a, b)
}

fn product(n: usize, k: usize, m: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; n * m];
    for i in 0..n {
        for j in 0..m {
            c[i * m + j] = (0..k).map(|p| a[i * k + p] * b[p * m + j]).sum();
        }
    }
    c
}

fn max_abs_diff(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    x.iter()
        .zip(y)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn multiply_is_a_raw_export_giving_the_product() {
    let m = load();
    let detected = m
        .conventions("multiply")
        .into_iter()
        .find(|(_, fits)| fits.is_ok())
        .map(|(c, _)| c);
    assert_eq!(detected, Some(Convention::Raw));
    for (n, k, mm) in [(1, 1, 1), (2, 3, 4), (7, 5, 3), (16, 48, 32), (3, 0, 2)] {
        let (input, a, b) = request(n, k, mm);
        let c = f64s(&call(&m, "multiply", &input));
        let want = product(n, k, mm, &a, &b);
        assert_eq!(c.len(), n * mm);
        assert!(max_abs_diff(&c, &want) < 1e-9, "{n}x{k} by {k}x{mm}");
    }
    // An empty product is an empty result.
    assert!(call(&m, "multiply", &request(0, 3, 4).0).is_empty());
}

/// The page's flow, each step a fresh sandbox: generate, split, multiply
/// each block, assemble, multiply locally, compare.
#[test]
fn the_page_flow_assembles_the_product() {
    let m = load();
    let (n, k, mm) = (64u32, 48u32, 80u32);
    let req = call(&m, "generate", &u32s(&[n, k, mm, 1]));
    assert_eq!(req.len(), 12 + 8 * (64 * 48 + 48 * 80));
    assert_eq!(req, call(&m, "generate", &u32s(&[n, k, mm, 1])));

    let mut split_in = u32s(&[16, 32]);
    split_in.extend_from_slice(&req);
    let tasks = call(&m, "split", &split_in);
    let count = u32_at(&tasks, 0);
    assert_eq!(count, 4 * 3);
    let mut blocks = u32s(&[n, mm, count]);
    let mut at = 4;
    for _ in 0..count {
        let placement = &tasks[at..at + 16];
        let len = u32_at(&tasks, at + 16) as usize;
        let body = &tasks[at + 20..at + 20 + len];
        blocks.extend_from_slice(placement);
        blocks.extend_from_slice(&call(&m, "multiply", body));
        at += 20 + len;
    }
    assert_eq!(at, tasks.len());
    let c = call(&m, "assemble", &blocks);
    let local = call(&m, "multiply", &req);
    assert_eq!(c, local, "the same code sums in the same order");

    let mut cmp_in = u32s(&[n * mm]);
    cmp_in.extend_from_slice(&c);
    cmp_in.extend_from_slice(&local);
    let cmp = call(&m, "compare", &cmp_in);
    assert_eq!(f64s(&cmp[..8]), vec![0.0]);
    assert_eq!(u32_at(&cmp, 12), 1, "verdict: equal");

    // And against a product computed here.
    let a = f64s(&req[12..12 + 8 * 64 * 48]);
    let b = f64s(&req[12 + 8 * 64 * 48..]);
    assert!(max_abs_diff(&f64s(&c), &product(64, 48, 80, &a, &b)) < 1e-9);

    // A wrong block is caught by compare.
    let mut wrong = c.clone();
    wrong[8 * 100..8 * 101].copy_from_slice(&0.5f64.to_le_bytes());
    let mut cmp_in = u32s(&[n * mm]);
    cmp_in.extend_from_slice(&wrong);
    cmp_in.extend_from_slice(&local);
    let cmp = call(&m, "compare", &cmp_in);
    assert_eq!((u32_at(&cmp, 8), u32_at(&cmp, 12)), (100, 0));
}

#[test]
fn malformed_input_is_a_guest_error_with_a_message() {
    let m = load();
    let e = m.call("multiply", [1u8, 0, 0]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::GuestError, "{e}");
    assert_eq!(
        e.to_string(),
        "guest error: multiply: input is 3 bytes, shorter than its 12-byte header (u32 n, k, m)"
    );
    let (mut short, _, _) = request(2, 3, 4);
    short.truncate(short.len() - 8);
    let e = m.call("multiply", &short).unwrap_err();
    assert_eq!(e.code(), ErrorCode::GuestError, "{e}");
    assert!(
        e.to_string().contains(
            "a 2x3 by 3x4 product needs 12 + 8*(2*3 + 3*4) = 156 bytes of input, got 148"
        ),
        "{e}"
    );
    let e = m
        .call("assemble", u32s(&[2, 2, 1, 1, 1, 2, 1]))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::GuestError, "{e}");
    assert!(
        e.to_string().contains("lies outside the 2x2 product"),
        "{e}"
    );
    // The module is as usable as before.
    assert_eq!(f64s(&call(&m, "multiply", &request(1, 1, 1).0)).len(), 1);
}
