;; clocks_random.wat: a WASI command that reads the wall clock and asks for
;; random bytes, as a TinyGo program does before main, then writes
;; "clocks and random\n" to stdout. With either capability denied it stops
;; with capability_denied where it asks for it.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get"
    (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  ;; 0..8: the time; 8..16: random bytes; 16..24: an iovec; 24..28: written.
  (data (i32.const 32) "clocks and random\n")
  (func (export "_start")
    (if (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0))
      (then (call $proc_exit (i32.const 1))))
    (if (call $random_get (i32.const 8) (i32.const 8))
      (then (call $proc_exit (i32.const 2))))
    (i32.store (i32.const 16) (i32.const 32))
    (i32.store (i32.const 20) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))
