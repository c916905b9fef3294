;; flood.wat: a WASI command whose `_start` writes 64 KiB blocks to stdout
;; forever, for tests of output-capture limits (a worker that floods stdout
;; must be stopped and reported, not buffered without bound).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  ;; iovec at 0: buf = 1024, len = 65536; bytes written at 16.
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (memory.fill (i32.const 1024) (i32.const 0x61) (i32.const 65536))
    (loop $forever
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
      (br $forever))))
