;; burn.wat: `burn n` counts down from n to 0 and returns the number of iterations,
;; so the fuel it consumes grows linearly with n (fuel-metering tests and benchmarks).
(module
  (func (export "burn") (param $n i64) (result i64)
    (local $iters i64)
    (block $done
      (loop $again
        (br_if $done (i64.le_s (local.get $n) (i64.const 0)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (local.set $iters (i64.add (local.get $iters) (i64.const 1)))
        (br $again)))
    (local.get $iters))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
