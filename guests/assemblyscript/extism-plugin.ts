// Extism plug-in written with @extism/as-pdk, for the wasmhost tests.
// Built by scripts/build-guests.sh into target/guests/out/as-extism-plugin.wasm:
//
//   asc extism-plugin.ts --optimize --use abort=extism-plugin/abort ...
//
// Every export is an Extism plug-in function `() -> i32` (0 = success) that
// reads its input and writes its output through the `extism:host/env` kernel.

import { Config, Host } from "@extism/as-pdk";
import { alloc, error_set, store_u8 } from "@extism/as-pdk/lib/env";

/// Replaces AssemblyScript's default `env.abort` import (see `--use abort=` in
/// the build script): a failed assertion or a `throw` sets the Extism error to
/// "abort: <message> at <file>:<line>:<column>" and traps.
function abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  const text =
    "abort: " + (message === null ? "(no message)" : message) +
    " at " + (fileName === null ? "(unknown)" : fileName) +
    ":" + line.toString() + ":" + column.toString();
  const bytes = Uint8Array.wrap(String.UTF8.encode(text));
  const offset = alloc(<u64>bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    store_u8(offset + <u64>i, bytes[i]);
  }
  error_set(offset);
  unreachable();
}

/// Writes `s` as the plug-in output, UTF-8 encoded. (The PDK's own
/// `Host.outputString` sizes the block with the UTF-16 length, which cuts off
/// non-ASCII output, so it is not used.)
function outputUtf8(s: string): void {
  Host.output(Uint8Array.wrap(String.UTF8.encode(s)));
}

const DEFAULT_VOWELS = "aeiouAEIOU";

/// Input: any UTF-8 string. Counts its characters (Unicode code points) that
/// occur in the config value `vowels` (default "aeiouAEIOU").
/// Output: `{"count":N}`.
export function count_vowels(): i32 {
  const input = Host.inputString();
  const configured = Config.get("vowels");
  const vowels = configured === null ? DEFAULT_VOWELS : configured;

  const set = new Set<i32>();
  for (let i = 0; i < vowels.length; i++) {
    const cp = vowels.codePointAt(i);
    set.add(cp);
    if (cp > 0xffff) i++;
  }
  let count = 0;
  for (let i = 0; i < input.length; i++) {
    const cp = input.codePointAt(i);
    if (set.has(cp)) count++;
    if (cp > 0xffff) i++;
  }
  outputUtf8('{"count":' + count.toString() + "}");
  return 0;
}

/// Input: a name (UTF-8). Output: `Hello, <name>!`.
export function greet(): i32 {
  outputUtf8("Hello, " + Host.inputString() + "!");
  return 0;
}
