//! The same PNG resize natively and through `Resizer` (wasm in a wasmhost
//! sandbox), in one run.
//!
//! ```text
//! scripts/build-guests.sh
//! cargo bench -p image-resize-example --bench resize -- --warm-up-time 1 --measurement-time 5
//! ```
//!
//! The input is a 1024×768 RGB "photo" made deterministically (a gradient plus
//! noise from a fixed-seed xorshift, so PNG compression works about as hard as
//! on a real photo), resized to 256×192. Variants:
//!
//! * `native`: `image_resize::resize_png`, the guest's own code compiled for
//!   the host by the bench profile (opt-level 3, like the guest's image crates);
//! * `wasmhost`: `Resizer::resize` with the default limits (fuel metered);
//! * `wasmhost_unmetered`: the same without a fuel budget (no metering, so
//!   only the memory and time limits apply), to show what metering costs.
//!
//! Criterion measures each variant on its own. Afterwards, as in
//! `crates/wasmhost/benches/runtime.rs`, the variants are measured again
//! interleaved (several rounds, each running one batch of every variant in
//! rotating order) and the per-iteration medians and their ratios are printed
//! on lines starting with `ratio`. `--test`, `--list` and `--profile-time`
//! skip those rounds.

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput};
use image::{DynamicImage, ImageFormat, RgbImage};
use image_resize_example::{ResizeLimits, Resizer};

const GROUP: &str = "resize_1024x768_to_256x192";
const ROUNDS: usize = 21;
const BATCH: Duration = Duration::from_millis(100);

#[path = "../../../crates/wasmhost/benches/support/interleave.rs"]
mod interleave;
use interleave::*;

fn main() {
    let skip_ratios = std::env::args().skip(1).any(|a| {
        matches!(
            a.split('=').next().unwrap_or_default(),
            "--test" | "--list" | "--profile-time"
        )
    });
    let mut c = Criterion::default().configure_from_args();

    let png = photo_png(1024, 768, 0x9E37_79B9_7F4A_7C15);
    let (w, h) = (256, 192);
    let metered = Resizer::new().expect("resizer");
    let unmetered =
        Resizer::with_limits(ResizeLimits::default().fuel(None)).expect("unmetered resizer");
    let expected = image_resize::resize_png(&png, w, h).expect("native resize");
    assert_eq!(metered.resize(&png, w, h).expect("resize"), expected);
    assert_eq!(unmetered.resize(&png, w, h).expect("resize"), expected);
    println!(
        "input: 1024x768 RGB PNG of {} bytes; output: {w}x{h} PNG of {} bytes",
        png.len(),
        expected.len()
    );

    let mut native = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(image_resize::resize_png(black_box(&png), w, h).expect("native"));
        }
        start.elapsed()
    };
    let mut wasm = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(metered.resize(black_box(&png), w, h).expect("wasmhost"));
        }
        start.elapsed()
    };
    let mut wasm_unmetered = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(unmetered.resize(black_box(&png), w, h).expect("unmetered"));
        }
        start.elapsed()
    };

    let mut g = c.benchmark_group(GROUP);
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .throughput(Throughput::Bytes(png.len() as u64));
    g.bench_function("native", |b| b.iter_custom(&mut native));
    g.bench_function("wasmhost", |b| b.iter_custom(&mut wasm));
    g.bench_function("wasmhost_unmetered", |b| b.iter_custom(&mut wasm_unmetered));
    g.finish();
    c.final_summary();

    if skip_ratios {
        return;
    }
    let m = interleave(
        &mut [
            ("native", &mut native),
            ("wasmhost", &mut wasm),
            ("wasmhost_unmetered", &mut wasm_unmetered),
        ],
        ROUNDS,
        BATCH,
    );
    println!("\n==== image-resize ratios (interleaved rounds, medians) ====");
    println!(
        "ratio {GROUP}: wasmhost {} / native {} per resize = {:.2}x (per-round {}); target <= 1.50x: {}\n\
         ratio {GROUP}: wasmhost_unmetered {} = {:.2}x native (per-round {}); fuel metering costs {:.2}x",
        fmt_ns(m[1].median()),
        fmt_ns(m[0].median()),
        m[1].ratio(&m[0]),
        m[1].round_ratios(&m[0]),
        met(m[1].ratio(&m[0]) <= 1.5),
        fmt_ns(m[2].median()),
        m[2].ratio(&m[0]),
        m[2].round_ratios(&m[0]),
        m[1].ratio(&m[2]),
    );
}

/// A `w`×`h` RGB PNG that compresses like a photo: smooth gradients plus
/// per-pixel noise (±16) from a xorshift64 generator seeded with `seed`.
fn photo_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.max(1);
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 59) as i32 - 16
    };
    let img = RgbImage::from_fn(w, h, |x, y| {
        let (x, y) = (x as i32, y as i32);
        let base = [
            x * 255 / w as i32,
            y * 255 / h as i32,
            128 + (x - y) * 96 / w as i32,
        ];
        image::Rgb(base.map(|c| (c + noise()).clamp(0, 255) as u8))
    });
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img)
        .write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("encode the input");
    out
}

// ---------------------------------------------------------------------------
// Interleaved measurement and reporting (as in crates/wasmhost/benches/runtime.rs)
