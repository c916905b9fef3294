// A plain AssemblyScript module (not an Extism plug-in) for the wasmhost tests
// and benchmarks. Every export is `(string) -> string` in AssemblyScript's own
// ABI: the argument and the result are pointers to managed `String` objects
// (UTF-16LE, byte length in the u32 at ptr - 4, class id 2), which the host
// creates with the exported runtime (`__new`, `__pin`, `__unpin`, `__collect`).
//
// Built by scripts/build-guests.sh three times, once per runtime:
//   asc counter.ts --optimize --exportRuntime --runtime stub|minimal|incremental
// into target/guests/out/as-counter-{stub,minimal,incremental}.wasm.
// The only import is `env.abort(message, fileName, line, column)`.

let count: i64 = 0;

/// Parses an optional sign followed by 1 to 19 ASCII digits (no spaces) into an
/// i64. Anything else, or a value outside i64, throws (which calls env.abort).
function parseDecimal(s: string): i64 {
  const n = s.length;
  let i = 0;
  let negative = false;
  if (n > 0 && (s.charCodeAt(0) == 0x2d || s.charCodeAt(0) == 0x2b)) {
    negative = s.charCodeAt(0) == 0x2d;
    i = 1;
  }
  if (i == n) throw new Error('not a decimal integer: "' + s + '"');
  // Accumulate as a negative number so that i64.MIN_VALUE parses too.
  let value: i64 = 0;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) throw new Error('not a decimal integer: "' + s + '"');
    const d = <i64>(c - 0x30);
    if (value < (i64.MIN_VALUE + d) / 10) throw new Error('out of range: "' + s + '"');
    value = value * 10 - d;
  }
  if (!negative) {
    if (value == i64.MIN_VALUE) throw new Error('out of range: "' + s + '"');
    value = -value;
  }
  return value;
}

/// Adds the decimal in `by` to the counter (wrapping) and returns the new value.
export function increment(by: string): string {
  count += parseDecimal(by);
  return count.toString();
}

/// Subtracts the decimal in `by` from the counter (wrapping) and returns the new value.
export function decrement(by: string): string {
  count -= parseDecimal(by);
  return count.toString();
}

/// Returns the counter; the argument is ignored.
export function get(_: string): string {
  return count.toString();
}

/// Returns `Hello, <name>!`.
export function greet(name: string): string {
  return "Hello, " + name + "!";
}

/// Returns its argument (the very same object).
export function echo(s: string): string {
  return s;
}

/// Always throws `new Error(msg)`: the module calls `env.abort` with the
/// message, the file name "counter.ts" and the line and column of the throw.
export function fail(msg: string): string {
  throw new Error(msg);
}
