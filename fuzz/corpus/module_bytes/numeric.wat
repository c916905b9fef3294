;; numeric.wat: plain exports of every numeric type, for typed-call and calling-convention tests.
;; `counter` bumps a mutable global, so it returns 1 on every fresh instance.
(module
  (memory (export "memory") 1)
  (global $count (mut i32) (i32.const 0))

  (func (export "add_i32") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))

  (func (export "add_i64") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))

  (func (export "mul_f32") (param f32 f32) (result f32)
    (f32.mul (local.get 0) (local.get 1)))

  (func (export "mul_f64") (param f64 f64) (result f64)
    (f64.mul (local.get 0) (local.get 1)))

  ;; Does nothing: measures the bare cost of a call.
  (func (export "noop"))

  (func (export "answer") (result i32)
    (i32.const 42))

  ;; Multi-value result: (x, x + 1).
  (func (export "pair") (param i32) (result i32 i32)
    (local.get 0)
    (i32.add (local.get 0) (i32.const 1)))

  (func (export "counter") (result i32)
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (global.get $count))
)
