;; log.wat: calls the host's wasmhost.log(level, ptr, len) import, for host-function tests.
;; Levels: 0 = trace, 1 = debug, 2 = info, 3 = warn, 4 = error.
;; `run` logs "hello from the guest" at info; `bad` passes an out-of-bounds pointer,
;; which the host must turn into a trap.
(module
  (import "wasmhost" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from the guest")  ;; 20 bytes at offset 16

  (func (export "run")
    (call $log (i32.const 2) (i32.const 16) (i32.const 20)))

  ;; 65530 + 100 runs past the end of the 64 KiB memory.
  (func (export "bad")
    (call $log (i32.const 2) (i32.const 65530) (i32.const 100)))

  ;; `many n` logs the greeting n times (the host keeps at most 1000 lines).
  (func (export "many") (param $n i32)
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $n)))
        (call $log (i32.const 2) (i32.const 16) (i32.const 20))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $again))))
)
