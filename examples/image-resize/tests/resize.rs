//! `Resizer` end to end: the embedded guest against the same code compiled
//! natively, bad input, each limit, and use from several threads.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage, RgbaImage};
use image_resize_example::{MAX_DIMENSION, ResizeError, ResizeLimits, Resizer};

/// A `w`×`h` RGB gradient, encoded as PNG.
fn gradient_png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([
            (x * 255 / w.max(2)) as u8,
            (y * 255 / h.max(2)) as u8,
            ((x + y) % 256) as u8,
        ])
    });
    encode(DynamicImage::ImageRgb8(img))
}

/// A `w`×`h` RGB image with few distinct colours: a large image in a small PNG.
fn plain_png(w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x / 16) as u8, (y / 16) as u8, 128])
    });
    encode(DynamicImage::ImageRgb8(img))
}

fn encode(img: DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .unwrap();
    out
}

fn decode(png: &[u8]) -> DynamicImage {
    image::load_from_memory_with_format(png, ImageFormat::Png).unwrap()
}

#[test]
fn resizes_like_the_native_code_byte_for_byte() {
    let png = gradient_png(300, 200);
    let out = Resizer::new().unwrap().resize(&png, 64, 48).unwrap();
    let img = decode(&out);
    assert_eq!((img.width(), img.height()), (64, 48));
    assert_eq!(img.color(), image::ColorType::Rgb8);
    assert_eq!(out, image_resize::resize_png(&png, 64, 48).unwrap());
}

#[test]
fn keeps_alpha_and_can_enlarge() {
    let img = RgbaImage::from_fn(20, 10, |x, y| {
        image::Rgba([x as u8 * 12, y as u8 * 25, 7, 128])
    });
    let png = encode(DynamicImage::ImageRgba8(img));
    let out = Resizer::new().unwrap().resize(&png, 100, 30).unwrap();
    let img = decode(&out);
    assert_eq!((img.width(), img.height()), (100, 30));
    assert_eq!(img.color(), image::ColorType::Rgba8);
    assert_eq!(out, image_resize::resize_png(&png, 100, 30).unwrap());
}

#[test]
fn not_a_png_is_an_invalid_image() {
    let r = Resizer::new().unwrap();
    for input in [&b"this is not a png"[..], b"", &gradient_png(30, 20)[..40]] {
        match r.resize(input, 10, 10) {
            Err(ResizeError::InvalidImage(why)) => assert!(!why.is_empty()),
            other => panic!("expected InvalidImage for {input:?}, got {other:?}"),
        }
    }
}

#[test]
fn zero_or_huge_sizes_are_invalid() {
    let r = Resizer::new().unwrap();
    let png = gradient_png(30, 20);
    for (w, h) in [(0, 10), (10, 0), (MAX_DIMENSION + 1, 10)] {
        assert_eq!(
            r.resize(&png, w, h),
            Err(ResizeError::InvalidSize {
                width: w,
                height: h,
                max: MAX_DIMENSION
            })
        );
    }
    // The largest allowed side is accepted (here with a 1-pixel other side).
    let out = r.resize(&png, MAX_DIMENSION, 1).unwrap();
    assert_eq!(decode(&out).width(), MAX_DIMENSION);
}

#[test]
fn a_tight_memory_limit_makes_a_large_image_too_large() {
    let limit = 4 << 20;
    let r = Resizer::with_limits(ResizeLimits::default().max_memory_bytes(limit)).unwrap();
    // A small image fits in 4 MiB...
    let small = gradient_png(300, 200);
    assert_eq!(
        r.resize(&small, 64, 48).unwrap(),
        image_resize::resize_png(&small, 64, 48).unwrap()
    );
    // ...a 1500x1500 one (6.75 MB of pixels) does not, though its PNG does.
    let large = plain_png(1500, 1500);
    assert!((large.len() as u64) < limit / 2, "{}", large.len());
    assert_eq!(
        r.resize(&large, 64, 64),
        Err(ResizeError::TooLarge { limit_bytes: limit })
    );
    // So does an input that could not even be copied in.
    let one_mib = Resizer::with_limits(ResizeLimits::default().max_memory_bytes(1 << 20)).unwrap();
    assert_eq!(
        one_mib.resize(&vec![0u8; 1 << 20], 64, 64),
        Err(ResizeError::TooLarge {
            limit_bytes: 1 << 20
        })
    );
    // And the resizer keeps working after a failure.
    assert!(r.resize(&small, 8, 8).is_ok());
}

#[test]
fn a_tiny_work_budget_is_too_slow() {
    let r = Resizer::with_limits(ResizeLimits::default().fuel(Some(100_000))).unwrap();
    match r.resize(&gradient_png(300, 200), 64, 48) {
        Err(ResizeError::TooSlow(why)) => assert!(why.contains("100000"), "{why}"),
        other => panic!("expected TooSlow, got {other:?}"),
    }
}

#[test]
fn a_short_timeout_is_too_slow() {
    // Unmetered (no fuel budget), so only the clock stops it.
    let r = Resizer::with_limits(
        ResizeLimits::default()
            .fuel(None)
            .timeout(Some(Duration::from_millis(1))),
    )
    .unwrap();
    match r.resize(&plain_png(2000, 2000), 1000, 1000) {
        Err(ResizeError::TooSlow(why)) => assert!(why.contains("time limit"), "{why}"),
        other => panic!("expected TooSlow, got {other:?}"),
    }
}

#[test]
fn many_threads_share_one_resizer() {
    let r = Resizer::new().unwrap();
    let inputs: Vec<(Vec<u8>, u32, u32)> = (0..4)
        .map(|i| (gradient_png(120 + 40 * i, 90 + 10 * i), 20 + i, 30 - i))
        .collect();
    let expected: Vec<Vec<u8>> = inputs
        .iter()
        .map(|(png, w, h)| image_resize::resize_png(png, *w, *h).unwrap())
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|(png, w, h)| {
                let r = &r;
                s.spawn(move || {
                    (0..3)
                        .map(|_| r.resize(png, *w, *h).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (handle, want) in handles.into_iter().zip(&expected) {
            for got in handle.join().unwrap() {
                assert_eq!(&got, want);
            }
        }
    });
}
