;; import.wat: a module with several imports the host does not provide, for checking
;; that a link error lists every missing import. `run` calls env.secret(1).
(module
  (import "env" "secret" (func $secret (param i32) (result i32)))
  (import "env" "other_thing" (func $other_thing))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  (func (export "run") (result i32)
    (call $secret (i32.const 1)))
)
