;; loop.wat: `run` spins forever, for timeout / epoch-interruption / fuel tests.
(module
  (func (export "run")
    (loop $forever
      (br $forever)))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
