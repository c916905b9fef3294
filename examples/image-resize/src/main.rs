//! `image-resize-example IN.png OUT.png WIDTH HEIGHT`: resizes a PNG with
//! [`image_resize_example::Resizer`] and prints how long it took.

use std::process::ExitCode;
use std::time::Instant;

use image_resize_example::Resizer;

const USAGE: &str = "usage: image-resize-example IN.png OUT.png WIDTH HEIGHT";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output, width, height] = args.as_slice() else {
        return Err(USAGE.to_string());
    };
    let width = parse_side("WIDTH", width)?;
    let height = parse_side("HEIGHT", height)?;
    let png = std::fs::read(input).map_err(|e| format!("cannot read {input}: {e}"))?;

    let started = Instant::now();
    let resizer = Resizer::new().map_err(|e| e.to_string())?;
    let ready = started.elapsed();
    let resized = resizer
        .resize(&png, width, height)
        .map_err(|e| format!("{input}: {e}"))?;
    let total = started.elapsed();

    std::fs::write(output, &resized).map_err(|e| format!("cannot write {output}: {e}"))?;
    println!(
        "{input} ({} bytes) -> {output} ({} bytes, {width}x{height}) in {:.1} ms ({:.1} ms to load the resizer, {:.1} ms to resize)",
        png.len(),
        resized.len(),
        total.as_secs_f64() * 1e3,
        ready.as_secs_f64() * 1e3,
        (total - ready).as_secs_f64() * 1e3,
    );
    Ok(())
}

fn parse_side(name: &str, value: &str) -> Result<u32, String> {
    value
        .parse()
        .map_err(|_| format!("{name} must be a whole number of pixels, got `{value}`\n{USAGE}"))
}
