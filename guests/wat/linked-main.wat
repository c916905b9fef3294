;; linked-main.wat: the main module of a two-module Extism manifest. It
;; imports `_start` and `read_counter` from the module linked as `counter`
;; (linked-counter.wat), runs `_start` three times, and returns what
;; `read_counter` then says: as a plain number from `count`, and as an
;; Extism plugin function `run` whose output is that number as 8 bytes
;; (little-endian), through the Extism kernel.
(module
  (import "counter" "_start" (func $counter_start))
  (import "counter" "read_counter" (func $read_counter (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u64" (func $store_u64 (param i64 i64)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (func $count (export "count") (result i32)
    (call $counter_start)
    (call $counter_start)
    (call $counter_start)
    (call $read_counter))
  (func (export "run") (result i32)
    (local $out i64)
    (local.set $out (call $alloc (i64.const 8)))
    (call $store_u64 (local.get $out) (i64.extend_i32_u (call $count)))
    (call $output_set (local.get $out) (i64.const 8))
    (i32.const 0)))
