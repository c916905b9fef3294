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

/// Nanoseconds per iteration of one variant, one value per round.
struct Samples(Vec<f64>);

impl Samples {
    fn median(&self) -> f64 {
        median(self.0.clone())
    }

    /// Ratio of the medians, `self / other`.
    fn ratio(&self, other: &Samples) -> f64 {
        self.median() / other.median()
    }

    /// Range of the per-round ratios `self / other` (both measured in the
    /// same round), as `min..max, median m`.
    fn round_ratios(&self, other: &Samples) -> String {
        let r: Vec<f64> = self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect();
        let min = r.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.iter().copied().fold(0.0, f64::max);
        format!(
            "{min:.2}..{max:.2}, median {:.2}, {} rounds",
            median(r.clone()),
            r.len()
        )
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

type Routine<'a> = &'a mut dyn FnMut(u64) -> Duration;

/// Measures the variants in `rounds` rounds; each round runs one batch of
/// every variant, starting with a different one each round. Batches are sized
/// to take about `batch` (at least one iteration); sizing doubles the
/// iteration count from 1 and doubles as a warm-up.
fn interleave(
    variants: &mut [(&str, Routine<'_>)],
    rounds: usize,
    batch: Duration,
) -> Vec<Samples> {
    let sizes: Vec<u64> = variants
        .iter_mut()
        .map(|(_, run)| {
            let mut iters = 1u64;
            loop {
                let took = run(iters);
                if took >= batch / 4 || iters >= 1 << 30 {
                    let scaled = batch.as_secs_f64() / took.as_secs_f64() * iters as f64;
                    break (scaled as u64).max(1);
                }
                iters *= 2;
            }
        })
        .collect();
    let n = variants.len();
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        for k in 0..n {
            let i = (round + k) % n;
            let took = (variants[i].1)(sizes[i]);
            samples[i].push(took.as_nanos() as f64 / sizes[i] as f64);
        }
    }
    for ((name, _), (s, iters)) in variants.iter().zip(samples.iter().zip(&sizes)) {
        println!(
            "  interleaved {name}: median {} per iteration ({rounds} rounds x {iters} iterations)",
            fmt_ns(median(s.clone()))
        );
    }
    samples.into_iter().map(Samples).collect()
}

fn fmt_ns(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.3} s", ns / 1e9)
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
