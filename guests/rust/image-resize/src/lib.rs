//! PNG resizing, used by the wasm-vs-native benchmark.
//!
//! The same [`resize_png`] is called natively (this crate as an rlib, through a
//! path dependency) and inside wasm (this crate as a `wasm32-unknown-unknown`
//! cdylib, built by `scripts/build-guests.sh` into
//! `target/guests/out/image-resize.wasm`).
//!
//! The wasm module has no imports. Its raw exports (only compiled for
//! `target_arch = "wasm32"`) are:
//!
//! - `alloc(len: u32) -> u32`: a fresh, uninitialised buffer of `len` bytes
//!   (0 if the allocation fails; a non-null dangling pointer when `len` is 0).
//! - `dealloc(ptr: u32, len: u32)`: frees a buffer from `alloc` or from `resize`.
//! - `resize(ptr: u32, len: u32, width: u32, height: u32) -> u64`: reads the PNG
//!   in `ptr..ptr+len` (the caller keeps owning that buffer), and returns
//!   `(out_ptr as u64) << 32 | out_len as u64` for a new buffer holding the
//!   resized PNG, which the caller frees with `dealloc(out_ptr, out_len)`.
//!   On any error it returns 0 and allocates nothing.

use std::io::Cursor;

use image::ImageFormat;
use image::codecs::png::PngEncoder;
use image::imageops::FilterType;

/// Decodes `png`, resizes it to exactly `width`×`height` with
/// [`FilterType::Triangle`] (keeping its colour type), and encodes the result
/// as PNG with the `image` crate's default PNG encoder settings.
///
/// Deterministic: the same input always gives the same bytes.
pub fn resize_png(png: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    if width == 0 || height == 0 {
        return Err(format!("invalid target size {width}x{height}"));
    }
    let img = image::load_from_memory_with_format(png, ImageFormat::Png)
        .map_err(|e| format!("decode: {e}"))?;
    let resized = img.resize_exact(width, height, FilterType::Triangle);
    let mut out = Vec::new();
    resized
        .write_with_encoder(PngEncoder::new(Cursor::new(&mut out)))
        .map_err(|e| format!("encode: {e}"))?;
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    use std::alloc::{Layout, alloc as raw_alloc, dealloc as raw_dealloc};
    use std::ptr::NonNull;

    fn layout(len: u32) -> Option<Layout> {
        Layout::array::<u8>(len as usize).ok()
    }

    #[unsafe(no_mangle)]
    pub extern "C" fn alloc(len: u32) -> u32 {
        if len == 0 {
            return NonNull::<u8>::dangling().as_ptr() as u32;
        }
        match layout(len) {
            // SAFETY: the layout has a nonzero size.
            Some(l) => unsafe { raw_alloc(l) as u32 },
            None => 0,
        }
    }

    /// # Safety
    /// `ptr`/`len` must come from `alloc(len)` or from a `resize` result, and
    /// must not be freed twice.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn dealloc(ptr: u32, len: u32) {
        if len == 0 || ptr == 0 {
            return;
        }
        if let Some(l) = layout(len) {
            // SAFETY: the caller passes a live buffer from `alloc`/`resize`, both
            // of which allocate with exactly this layout.
            unsafe { raw_dealloc(ptr as *mut u8, l) }
        }
    }

    /// # Safety
    /// `ptr..ptr+len` must be readable memory of this module (for example a
    /// buffer from `alloc(len)`).
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn resize(ptr: u32, len: u32, width: u32, height: u32) -> u64 {
        let input: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: see the function's contract.
            unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) }
        };
        match super::resize_png(input, width, height) {
            Ok(out) => {
                // A boxed slice's allocation has exactly Layout::array::<u8>(len),
                // which is what `dealloc` frees with.
                let out = out.into_boxed_slice();
                let out_len = out.len() as u64;
                let out_ptr = Box::into_raw(out) as *mut u8 as u32 as u64;
                (out_ptr << 32) | out_len
            }
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_fn(w, h, |x, y| {
            image::Rgba([(x * 7) as u8, (y * 13) as u8, ((x ^ y) * 3) as u8, 255])
        });
        let mut out = Vec::new();
        image::DynamicImage::ImageRgba8(img)
            .write_with_encoder(PngEncoder::new(Cursor::new(&mut out)))
            .unwrap();
        out
    }

    #[test]
    fn resizes_to_exact_size_deterministically() {
        let png = sample_png(64, 48);
        let a = resize_png(&png, 17, 9).unwrap();
        let b = resize_png(&png, 17, 9).unwrap();
        assert_eq!(a, b);
        let img = image::load_from_memory_with_format(&a, ImageFormat::Png).unwrap();
        assert_eq!((img.width(), img.height()), (17, 9));
    }

    #[test]
    fn errors() {
        assert!(
            resize_png(b"not a png", 4, 4)
                .unwrap_err()
                .starts_with("decode: ")
        );
        assert!(resize_png(&sample_png(4, 4), 0, 4).is_err());
    }
}
