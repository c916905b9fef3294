;; hello.wat: the smallest WASI command that answers "hello, world\n".
;; `_start` writes the 13 bytes to stdout (fd 1) with one fd_write and
;; returns; it never reads stdin, so the message (request body, TCP bytes)
;; is ignored. Used by benches/serve/run.sh for the core-module worker route
;; (`--route /hello=hello.wat`, mode sync: a fresh sandbox per request) and
;; the raw-TCP worker (`--tcp PORT=hello.wat --mode sync`).
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; iovec at 0: { buf = 16, len = 13 }; bytes written go to 8.
  (data (i32.const 0) "\10\00\00\00\0d\00\00\00")
  (data (i32.const 16) "hello, world\n")
  (func (export "_start")
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
