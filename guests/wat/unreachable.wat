;; unreachable.wat: a trap two frames deep, for trap-message and backtrace tests.
;; `run` calls `inner`, which executes `unreachable`; both are named in the name section.
(module
  (func $inner
    unreachable)

  (func $run (export "run")
    (call $inner))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
