//! Distributed matrix multiply, for `examples/matrix-multiply`: the worker
//! that `wasmhost serve` runs and the logic of the browser page, in one
//! module (`matrix.wasm`, built for `wasm32-unknown-unknown` by
//! `scripts/build-guests.sh`).
//!
//! Every export except `alloc`/`dealloc` is a pure function in wasmhost's raw
//! convention: `f(ptr, len) -> i64` reads its input bytes at `ptr..ptr+len`
//! (the caller keeps owning them) and returns `(out_ptr << 32) | out_len`
//! for a new buffer, which the caller frees with `dealloc(out_ptr, out_len)`;
//! an empty result is 0. Because nothing is kept between calls, the same
//! exports work in a fresh wasmhost sandbox per call and in one instance kept
//! by the page.
//!
//! All numbers are little-endian; matrices are row-major `f64`s.
//!
//! | export | input | output |
//! |---|---|---|
//! | `multiply` | a *request*: `u32 n, u32 k, u32 m`, then `n*k` f64 of A, then `k*m` f64 of B | `n*m` f64: C = A·B |
//! | `generate` | `u32 n, u32 k, u32 m, u32 seed` | a request whose A and B are pseudo-random in [-1, 1) (splitmix64 of `seed`) |
//! | `split` | `u32 block_rows, u32 block_cols`, then a request | `u32 count`, then `count` tasks: `u32 row, u32 col, u32 rows, u32 cols` (the *placement*), `u32 len`, then `len` bytes: the request for that block of C (rows of A × columns of B) |
//! | `assemble` | `u32 n, u32 m, u32 count`, then `count` blocks: a placement, then `rows*cols` f64 (a `multiply` result) | `n*m` f64: C, once every cell is covered by exactly one block |
//! | `compare` | `u32 count`, then `count` f64 X, then `count` f64 Y | `f64 max_abs_diff, u32 worst_index, u32 verdict` (verdict 1 when `max_abs_diff <` [`TOLERANCE`], else 0; worst index `u32::MAX` when `count` is 0) |
//!
//! Tasks come out of `split` row block by row block, and each placement is
//! the 16 bytes `assemble` wants in front of that block's result, so the
//! page only copies bytes.
//!
//! **Errors.** Malformed input (a wrong length, a block outside the
//! product, a block size of 0, …) stops the call with a message through
//! `env.abort(message, file, line, column)`, the AssemblyScript import
//! that wasmhost links for every core module: the message is an
//! AssemblyScript string (`u32` byte length at `message - 4`, then UTF-16LE)
//! and wasmhost reports it as `guest_error`. `file` is 0 for these; a panic
//! (a bug) goes the same way with its source location. The page provides its
//! own `env.abort` that throws the message as a JavaScript `Error`. That is
//! the module's only import.

/// The largest difference `compare` accepts between two matrices it calls equal.
pub const TOLERANCE: f64 = 1e-9;

/// The largest output (and `split`/`generate` result) in bytes: the raw
/// convention's lengths are 32-bit and signed on the host side.
pub const MAX_BYTES: u128 = i32::MAX as u128;

/// Bytes of a request's header (`u32 n, k, m`).
pub const HEADER: usize = 12;

/// Bytes of a block's placement (`u32 row, col, rows, cols`).
pub const PLACEMENT: usize = 16;

/// Two matrices to multiply: A is `n`×`k`, B is `k`×`m`, both row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Rows of A and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Columns of B and C.
    pub m: usize,
    /// A, `n*k` values.
    pub a: Vec<f64>,
    /// B, `k*m` values.
    pub b: Vec<f64>,
}

impl Problem {
    /// The request bytes `multiply` takes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + 8 * (self.a.len() + self.b.len()));
        for d in [self.n, self.k, self.m] {
            out.extend_from_slice(&(d as u32).to_le_bytes());
        }
        put_f64s(&mut out, &self.a);
        put_f64s(&mut out, &self.b);
        out
    }

    /// C = A·B, `n*m` values. Each `C[i][j]` is summed over `p` from 0 up,
    /// starting at 0.0, so every caller gets bit-identical results.
    pub fn product(&self) -> Vec<f64> {
        let (n, k, m) = (self.n, self.k, self.m);
        let mut c = vec![0.0; n * m];
        for i in 0..n {
            let row = &mut c[i * m..(i + 1) * m];
            for p in 0..k {
                let a = self.a[i * k + p];
                let b = &self.b[p * m..(p + 1) * m];
                for (c, b) in row.iter_mut().zip(b) {
                    *c += a * b;
                }
            }
        }
        c
    }
}

fn put_f64s(out: &mut Vec<u8>, values: &[f64]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect()
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Reads `count` u32s at the start of `input`, or says what `what` expected.
fn header<const N: usize>(input: &[u8], what: &str, fields: &str) -> Result<[usize; N], String> {
    if input.len() < 4 * N {
        return Err(format!(
            "{what}: input is {} bytes, shorter than its {}-byte header ({fields})",
            input.len(),
            4 * N
        ));
    }
    let mut out = [0; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u32_at(input, 4 * i) as usize;
    }
    Ok(out)
}

fn too_big(what: &str, thing: &str, bytes: u128) -> Result<(), String> {
    if bytes > MAX_BYTES {
        Err(format!(
            "{what}: {thing} would be {bytes} bytes, more than the {MAX_BYTES}-byte limit"
        ))
    } else {
        Ok(())
    }
}

/// Checks the length of a request (`u32 n, k, m`, A, B) and returns its
/// dimensions, or a message naming `what` that says what was wrong.
pub fn check_request(input: &[u8], what: &str) -> Result<(usize, usize, usize), String> {
    let [n, k, m] = header::<3>(input, what, "u32 n, k, m")?;
    let (n1, k1, m1) = (n as u128, k as u128, m as u128);
    let want = HEADER as u128 + 8 * (n1 * k1 + k1 * m1);
    if input.len() as u128 != want {
        return Err(format!(
            "{what}: a {n}x{k} by {k}x{m} product needs 12 + 8*({n}*{k} + {k}*{m}) = {want} bytes of input, got {}",
            input.len()
        ));
    }
    too_big(what, &format!("the {n}x{m} product"), 8 * n1 * m1)?;
    Ok((n, k, m))
}

/// Parses a request (see [`check_request`]).
pub fn parse_request(input: &[u8], what: &str) -> Result<Problem, String> {
    let (n, k, m) = check_request(input, what)?;
    let split = HEADER + 8 * n * k;
    Ok(Problem {
        n,
        k,
        m,
        a: f64s(&input[HEADER..split]),
        b: f64s(&input[split..]),
    })
}

/// `multiply`: request → C.
pub fn multiply(input: &[u8]) -> Result<Vec<u8>, String> {
    let problem = parse_request(input, "multiply")?;
    let mut out = Vec::with_capacity(8 * problem.n * problem.m);
    put_f64s(&mut out, &problem.product());
    Ok(out)
}

/// The pseudo-random numbers of `generate`: splitmix64, mapped to [-1, 1)
/// with 53 bits of precision.
pub struct Random(u64);

impl Random {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Random(seed)
    }

    /// The next number in [-1, 1).
    pub fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

/// `generate`: `u32 n, k, m, seed` → a request with A then B drawn from one
/// [`Random`] stream.
pub fn generate(input: &[u8]) -> Result<Vec<u8>, String> {
    let what = "generate";
    let [n, k, m, seed] = header::<4>(input, what, "u32 n, k, m, seed")?;
    if input.len() != 16 {
        return Err(format!(
            "{what}: input is {} bytes; it is exactly u32 n, k, m, seed (16 bytes)",
            input.len()
        ));
    }
    let (n1, k1, m1) = (n as u128, k as u128, m as u128);
    too_big(
        what,
        &format!("a {n}x{k} by {k}x{m} request"),
        HEADER as u128 + 8 * (n1 * k1 + k1 * m1),
    )?;
    too_big(what, &format!("the {n}x{m} product"), 8 * n1 * m1)?;
    let mut rng = Random::new(seed as u64);
    let problem = Problem {
        n,
        k,
        m,
        a: (0..n * k).map(|_| rng.next_f64()).collect(),
        b: (0..k * m).map(|_| rng.next_f64()).collect(),
    };
    Ok(problem.encode())
}

/// The blocks `split` cuts an `n`×`m` product into: `(row, col, rows, cols)`,
/// row block by row block.
pub fn blocks(n: usize, m: usize, block_rows: usize, block_cols: usize) -> Vec<[usize; 4]> {
    let mut out = Vec::new();
    for row in (0..n).step_by(block_rows.max(1)) {
        for col in (0..m).step_by(block_cols.max(1)) {
            out.push([row, col, block_rows.min(n - row), block_cols.min(m - col)]);
        }
    }
    out
}

/// `split`: `u32 block_rows, block_cols`, request → tasks (see the crate docs).
pub fn split(input: &[u8]) -> Result<Vec<u8>, String> {
    let what = "split";
    let [block_rows, block_cols] = header::<2>(input, what, "u32 block_rows, block_cols")?;
    if block_rows == 0 || block_cols == 0 {
        return Err(format!(
            "{what}: blocks of {block_rows}x{block_cols} cover nothing; both sides must be at least 1"
        ));
    }
    let request = &input[8..];
    let (n, k, m) = check_request(request, what)?;
    let tasks = blocks(n, m, block_rows, block_cols);
    let total: u128 = 4 + tasks
        .iter()
        .map(|&[_, _, rows, cols]| {
            (PLACEMENT + 4 + HEADER) as u128 + 8 * k as u128 * (rows + cols) as u128
        })
        .sum::<u128>();
    too_big(
        what,
        &format!("{} tasks of {block_rows}x{block_cols}", tasks.len()),
        total,
    )?;
    let a = &request[HEADER..HEADER + 8 * n * k];
    let b = &request[HEADER + 8 * n * k..];
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&(tasks.len() as u32).to_le_bytes());
    for [row, col, rows, cols] in tasks {
        let len = HEADER + 8 * k * (rows + cols);
        for v in [row, col, rows, cols, len, rows, k, cols] {
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        out.extend_from_slice(&a[8 * row * k..8 * (row + rows) * k]);
        for p in 0..k {
            let start = 8 * (p * m + col);
            out.extend_from_slice(&b[start..start + 8 * cols]);
        }
    }
    Ok(out)
}

/// `assemble`: `u32 n, m, count`, blocks → C (see the crate docs).
pub fn assemble(input: &[u8]) -> Result<Vec<u8>, String> {
    let what = "assemble";
    let [n, m, count] = header::<3>(input, what, "u32 n, m, count")?;
    too_big(
        what,
        &format!("the {n}x{m} product"),
        8 * n as u128 * m as u128,
    )?;
    let mut c = vec![0u8; 8 * n * m];
    let mut covered = vec![false; n * m];
    let mut at = 12;
    for index in 0..count {
        if input.len() - at < PLACEMENT {
            return Err(format!(
                "{what}: the input ends ({} bytes) before the placement of block {index} of {count}",
                input.len()
            ));
        }
        let [row, col, rows, cols] = [0, 1, 2, 3].map(|i| u32_at(input, at + 4 * i) as usize);
        at += PLACEMENT;
        if row + rows > n || col + cols > m {
            return Err(format!(
                "{what}: block {index} (rows {row}..{}, columns {col}..{}) lies outside the {n}x{m} product",
                row + rows,
                col + cols
            ));
        }
        let len = 8 * rows * cols;
        if input.len() - at < len {
            return Err(format!(
                "{what}: block {index} is {rows}x{cols} and needs {len} bytes of values; only {} are left",
                input.len() - at
            ));
        }
        for r in 0..rows {
            for j in 0..cols {
                let cell = (row + r) * m + col + j;
                if std::mem::replace(&mut covered[cell], true) {
                    return Err(format!(
                        "{what}: block {index} covers cell ({}, {}) again",
                        row + r,
                        col + j
                    ));
                }
            }
            let src = at + 8 * r * cols;
            let dst = 8 * ((row + r) * m + col);
            c[dst..dst + 8 * cols].copy_from_slice(&input[src..src + 8 * cols]);
        }
        at += len;
    }
    if at != input.len() {
        return Err(format!(
            "{what}: {} bytes are left after the {count} blocks",
            input.len() - at
        ));
    }
    if let Some(cell) = covered.iter().position(|c| !c) {
        return Err(format!(
            "{what}: no block covers cell ({}, {}) of the {n}x{m} product",
            cell / m,
            cell % m
        ));
    }
    Ok(c)
}

/// How far apart two matrices are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// The largest `|x - y|` (infinite when one is NaN and the other not).
    pub max_abs_diff: f64,
    /// Where it is; `u32::MAX` for empty matrices.
    pub worst_index: u32,
    /// `max_abs_diff <` [`TOLERANCE`].
    pub equal: bool,
}

/// Compares `x` and `y` element by element.
pub fn compare_values(x: &[f64], y: &[f64]) -> Comparison {
    let mut worst = (0.0f64, u32::MAX);
    for (i, (x, y)) in x.iter().zip(y).enumerate() {
        let d = if x.to_bits() == y.to_bits() {
            0.0
        } else {
            let d = (x - y).abs();
            if d.is_nan() { f64::INFINITY } else { d }
        };
        if worst.1 == u32::MAX || d > worst.0 {
            worst = (d, i as u32);
        }
    }
    Comparison {
        max_abs_diff: worst.0,
        worst_index: worst.1,
        equal: worst.0 < TOLERANCE,
    }
}

/// `compare`: `u32 count`, X, Y → `f64 max_abs_diff, u32 worst_index, u32 verdict`.
pub fn compare(input: &[u8]) -> Result<Vec<u8>, String> {
    let what = "compare";
    let [count] = header::<1>(input, what, "u32 count")?;
    let want = 4 + 16 * count as u128;
    if input.len() as u128 != want {
        return Err(format!(
            "{what}: two matrices of {count} values need 4 + 16*{count} = {want} bytes of input, got {}",
            input.len()
        ));
    }
    let values = f64s(&input[4..]);
    let (x, y) = values.split_at(count);
    let cmp = compare_values(x, y);
    let mut out = Vec::with_capacity(16);
    out.extend_from_slice(&cmp.max_abs_diff.to_le_bytes());
    out.extend_from_slice(&cmp.worst_index.to_le_bytes());
    out.extend_from_slice(&u32::from(cmp.equal).to_le_bytes());
    Ok(out)
}

#[cfg(target_arch = "wasm32")]
mod wasm {
    //! The raw exports and the `env.abort` import.

    use std::alloc::{Layout, alloc as raw_alloc, dealloc as raw_dealloc};
    use std::ptr::NonNull;
    use std::sync::Once;

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        /// AssemblyScript's abort: never returns (the host stops the call).
        #[link_name = "abort"]
        fn env_abort(message: u32, file: u32, line: u32, column: u32);
    }

    /// `s` as an AssemblyScript string: a pointer to UTF-16LE text whose
    /// byte length is the `u32` just before it. Leaked: the call is ending.
    fn as_string(s: &str) -> u32 {
        let units: Vec<u16> = s.encode_utf16().collect();
        let mut bytes = Vec::with_capacity(4 + 2 * units.len());
        bytes.extend_from_slice(&((2 * units.len()) as u32).to_le_bytes());
        for u in units {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        bytes.leak().as_ptr() as u32 + 4
    }

    /// Stops the call with `message` (and a source location for panics).
    fn fail(message: &str, location: Option<(&str, u32, u32)>) -> ! {
        let message = as_string(message);
        let (file, line, column) = match location {
            Some((file, line, column)) => (as_string(file), line, column),
            None => (0, 0, 0),
        };
        // SAFETY: both strings are live, well-formed AssemblyScript strings.
        unsafe { env_abort(message, file, line, column) };
        core::arch::wasm32::unreachable()
    }

    /// Routes panics to `env.abort`, so that a bug reports its message too.
    fn install_panic_hook() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let message = format!("matrix panicked: {}", info.payload_as_str().unwrap_or("?"));
                fail(
                    &message,
                    info.location().map(|l| (l.file(), l.line(), l.column())),
                )
            }))
        });
    }

    fn layout(len: u32) -> Option<Layout> {
        Layout::array::<u8>(len as usize).ok()
    }

    /// A fresh, uninitialised buffer of `len` bytes (0 when the allocation
    /// fails; a dangling non-null pointer for `len` 0).
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

    /// Frees a buffer from `alloc(len)` or a result of `len` bytes.
    ///
    /// # Safety
    /// `ptr`/`len` must come from `alloc(len)` or from a result, once.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn dealloc(ptr: u32, len: u32) {
        if len == 0 || ptr == 0 {
            return;
        }
        if let Some(l) = layout(len) {
            // SAFETY: `alloc` and results (boxed slices of u8) use this layout.
            unsafe { raw_dealloc(ptr as *mut u8, l) }
        }
    }

    /// Runs `f` on `ptr..ptr+len` and packs its result.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be readable memory of this module.
    unsafe fn run(ptr: u32, len: u32, f: fn(&[u8]) -> Result<Vec<u8>, String>) -> u64 {
        install_panic_hook();
        let input: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: see the function's contract.
            unsafe { std::slice::from_raw_parts(ptr as *const u8, len as usize) }
        };
        match f(input) {
            Ok(out) if out.is_empty() => 0,
            Ok(out) => {
                let out = out.into_boxed_slice();
                let out_len = out.len() as u64;
                let out_ptr = Box::into_raw(out) as *mut u8 as u32 as u64;
                (out_ptr << 32) | out_len
            }
            Err(message) => fail(&message, None),
        }
    }

    macro_rules! exports {
        ($($name:ident),*) => {$(
            #[doc = concat!("The raw export of [`crate::", stringify!($name), "`].")]
            ///
            /// # Safety
            /// `ptr..ptr+len` must be readable memory of this module.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $name(ptr: u32, len: u32) -> u64 {
                // SAFETY: passed on to the caller.
                unsafe { run(ptr, len, crate::$name) }
            }
        )*};
    }

    exports!(multiply, generate, split, assemble, compare);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u32, k: u32, m: u32, seed: u32) -> Vec<u8> {
        let mut input = Vec::new();
        for v in [n, k, m, seed] {
            input.extend_from_slice(&v.to_le_bytes());
        }
        generate(&input).unwrap()
    }

    /// Runs the page's flow: split, multiply each block, assemble.
    fn distributed(request: &[u8], block_rows: u32, block_cols: u32) -> Vec<u8> {
        let (n, _, m) = check_request(request, "test").unwrap();
        let mut input = Vec::new();
        input.extend_from_slice(&block_rows.to_le_bytes());
        input.extend_from_slice(&block_cols.to_le_bytes());
        input.extend_from_slice(request);
        let tasks = split(&input).unwrap();
        let count = u32_at(&tasks, 0);
        let mut blocks = Vec::new();
        for v in [n as u32, m as u32, count] {
            blocks.extend_from_slice(&v.to_le_bytes());
        }
        let mut at = 4;
        for _ in 0..count {
            let placement = &tasks[at..at + PLACEMENT];
            let len = u32_at(&tasks, at + PLACEMENT) as usize;
            let body = &tasks[at + PLACEMENT + 4..at + PLACEMENT + 4 + len];
            blocks.extend_from_slice(placement);
            blocks.extend_from_slice(&multiply(body).unwrap());
            at += PLACEMENT + 4 + len;
        }
        assert_eq!(at, tasks.len());
        assemble(&blocks).unwrap()
    }

    #[test]
    fn product_of_small_matrices() {
        let p = Problem {
            n: 2,
            k: 3,
            m: 2,
            a: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            b: vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
        };
        assert_eq!(
            f64s(&multiply(&p.encode()).unwrap()),
            vec![58.0, 64.0, 139.0, 154.0]
        );
    }

    #[test]
    fn split_and_assemble_give_the_product() {
        for (n, k, m, br, bc) in [
            (64, 48, 80, 16, 32),
            (5, 7, 3, 2, 2),
            (1, 1, 1, 9, 9),
            (3, 0, 4, 1, 3),
        ] {
            let req = request(n, k, m, 7);
            let local = multiply(&req).unwrap();
            assert_eq!(distributed(&req, br, bc), local, "{n}x{k}x{m} in {br}x{bc}");
        }
    }

    #[test]
    fn generate_is_deterministic_and_in_range() {
        let a = request(4, 5, 6, 42);
        assert_eq!(a, request(4, 5, 6, 42));
        assert_ne!(a, request(4, 5, 6, 43));
        let p = parse_request(&a, "test").unwrap();
        assert!(p.a.iter().chain(&p.b).all(|v| (-1.0..1.0).contains(v)));
    }

    #[test]
    fn compare_reports_the_worst_difference() {
        let mut input = 3u32.to_le_bytes().to_vec();
        put_f64s(&mut input, &[1.0, 2.0, 3.0, 1.0, 2.5, 3.0]);
        let out = compare(&input).unwrap();
        assert_eq!(f64s(&out[..8]), vec![0.5]);
        assert_eq!((u32_at(&out, 8), u32_at(&out, 12)), (1, 0));
        let same = compare_values(&[1.0, f64::NAN], &[1.0, f64::NAN]);
        assert!(same.equal);
        assert!(!compare_values(&[f64::NAN], &[0.0]).equal);
        assert_eq!(compare_values(&[], &[]).worst_index, u32::MAX);
    }

    #[test]
    fn malformed_input_is_explained() {
        assert_eq!(
            multiply(&[1, 0, 0]).unwrap_err(),
            "multiply: input is 3 bytes, shorter than its 12-byte header (u32 n, k, m)"
        );
        let mut short = request(2, 2, 2, 1);
        short.pop();
        assert_eq!(
            multiply(&short).unwrap_err(),
            "multiply: a 2x2 by 2x2 product needs 12 + 8*(2*2 + 2*2) = 76 bytes of input, got 75"
        );
        let mut zero = vec![0; 8];
        zero.extend_from_slice(&request(1, 1, 1, 1));
        assert!(split(&zero).unwrap_err().contains("at least 1"));
        let mut outside = Vec::new();
        for v in [2u32, 2, 1, 1, 1, 2, 1] {
            outside.extend_from_slice(&v.to_le_bytes());
        }
        assert!(assemble(&outside).unwrap_err().contains("lies outside"));
        let mut missing = Vec::new();
        for v in [1u32, 2, 1, 0, 0, 1, 1] {
            missing.extend_from_slice(&v.to_le_bytes());
        }
        missing.extend_from_slice(&1.0f64.to_le_bytes());
        assert_eq!(
            assemble(&missing).unwrap_err(),
            "assemble: no block covers cell (0, 1) of the 1x2 product"
        );
        let huge: Vec<u8> = [65536u32, 0, 65536, 0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(generate(&huge).unwrap_err().contains("limit"));
    }
}
