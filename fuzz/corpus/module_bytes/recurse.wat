;; recurse.wat: unbounded recursion, for stack-overflow (max_wasm_stack) tests.
;; `run x` calls itself with x + 1 forever; the locals make each frame non-trivial.
(module
  (func $run (export "run") (param $x i32) (result i32)
    (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (local $e f64) (local $f f64) (local $g f64) (local $h f64)
    (local.set $a (i64.extend_i32_u (local.get $x)))
    (local.set $b (i64.add (local.get $a) (i64.const 1)))
    (local.set $c (i64.mul (local.get $b) (i64.const 3)))
    (local.set $d (i64.xor (local.get $c) (local.get $a)))
    (local.set $e (f64.convert_i64_u (local.get $d)))
    (local.set $f (f64.add (local.get $e) (f64.const 0.5)))
    (local.set $g (f64.mul (local.get $f) (local.get $e)))
    (local.set $h (f64.sub (local.get $g) (local.get $f)))
    ;; Use the locals after the call so they stay live across it.
    (i32.add
      (call $run (i32.add (local.get $x) (i32.const 1)))
      (i32.add
        (i32.wrap_i64 (i64.add (local.get $d) (local.get $c)))
        (i32.trunc_sat_f64_s (local.get $h)))))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
