;; divzero.wat: `div a b` = i32.div_s, for integer-divide-by-zero and overflow trap tests.
(module
  (func (export "div") (param $a i32) (param $b i32) (result i32)
    (i32.div_s (local.get $a) (local.get $b)))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
