//! Interleaved measurement for benchmarks that compare variants (wasmhost
//! and its floor or peer) in the same run. Shared by
//! `crates/wasmhost/benches/*.rs`, `benches/extism-peer` and
//! `examples/image-resize` through `#[path]` modules, so the three report
//! ratios computed the same way.
//!
//! Criterion measures each variant on its own; [`interleave`] measures them
//! again in rounds, each running one batch of every variant in rotating
//! order, so slow drift of the machine hits every variant alike.

#![allow(dead_code)]

use std::time::Duration;

/// Nanoseconds per iteration of one variant, one value per round.
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn median(&self) -> f64 {
        median(self.0.clone())
    }

    /// Ratio of the medians, `self / other`.
    pub fn ratio(&self, other: &Samples) -> f64 {
        self.median() / other.median()
    }

    /// Range of the per-round ratios `self / other` (both measured in the
    /// same round), as `min..max, median m`.
    pub fn round_ratios(&self, other: &Samples) -> String {
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

pub fn median(mut v: Vec<f64>) -> f64 {
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

pub type Routine<'a> = &'a mut dyn FnMut(u64) -> Duration;

/// Measures the variants in `rounds` rounds; each round runs one batch of
/// every variant, starting with a different one each round. Batches are sized
/// to take about `batch` (at least one iteration); sizing doubles the
/// iteration count from 1 and doubles as a warm-up.
pub fn interleave(
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

pub fn fmt_ns(ns: f64) -> String {
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

pub fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Prints a ratio line now and keeps it for the summary at the end.
pub fn emit(report: &mut Vec<String>, line: String) {
    println!("{line}");
    report.push(line);
}

/// What the command line asks for, as far as the ratio rounds care:
/// criterion's positional filter (a group runs when its name contains it or
/// it starts with the name) and whether timing is skipped (`--test`,
/// `--list`, `--profile-time`).
pub struct Mode {
    pub filter: Option<String>,
    pub skip_ratios: bool,
}

impl Mode {
    pub fn from_args() -> Self {
        // Criterion's options that take a value (criterion 0.7).
        const WITH_VALUE: [&str; 18] = [
            "-c",
            "--color",
            "-s",
            "--save-baseline",
            "-b",
            "--baseline",
            "--baseline-lenient",
            "--load-baseline",
            "--format",
            "--profile-time",
            "--sample-size",
            "--warm-up-time",
            "--measurement-time",
            "--nresamples",
            "--noise-threshold",
            "--confidence-level",
            "--significance-level",
            "--plotting-backend",
        ];
        let mut mode = Mode {
            filter: None,
            skip_ratios: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let name = arg.split('=').next().unwrap_or_default();
            if matches!(name, "--test" | "--list" | "--profile-time") {
                mode.skip_ratios = true;
            }
            if name == "--output-format" || WITH_VALUE.contains(&name) {
                if !arg.contains('=') {
                    args.next();
                }
            } else if !arg.starts_with('-') {
                mode.filter = Some(arg);
            }
        }
        mode
    }

    /// Whether the group is selected by the filter (so worth setting up).
    pub fn runs(&self, group: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| group.contains(f) || f.starts_with(group))
    }

    /// Whether to run the group's interleaved rounds.
    pub fn ratios(&self, group: &str) -> bool {
        !self.skip_ratios && self.runs(group)
    }
}
