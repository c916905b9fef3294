;; A durable-actor test guest: its balance lives in linear memory (not
;; exported under its own name: address 256), a counter of deposits in a
;; mutable global, and the last deposit in the key-value store ("last").
;; `deposit 13` changes all three and then traps, to test that a failed
;; message leaves no trace; `grow_then_fail` grows memory to its limit,
;; writes, then traps.
(module
  (import "wasmhost:kv" "get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "wasmhost:kv" "set" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $deposits (mut i32) (i32.const 0))
  ;; 0: key "last" (4 bytes); 16: the 4-byte value buffer; 256: the balance.
  (data (i32.const 0) "last")

  ;; Adds `n` to the balance, counts the deposit, records `n` under "last";
  ;; then traps if `n` is 13. Returns the new balance.
  (func (export "deposit") (param $n i32) (result i32)
    (i32.store (i32.const 256) (i32.add (i32.load (i32.const 256)) (local.get $n)))
    (global.set $deposits (i32.add (global.get $deposits) (i32.const 1)))
    (i32.store (i32.const 16) (local.get $n))
    (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4)))
    (if (i32.eq (local.get $n) (i32.const 13)) (then unreachable))
    (i32.load (i32.const 256)))

  ;; Adds `n` to the balance, then spins forever: a message whose sender
  ;; gives up (drops its future) mid-way.
  (func (export "spin") (param $n i32) (result i32)
    (i32.store (i32.const 256) (i32.add (i32.load (i32.const 256)) (local.get $n)))
    (loop $forever (br $forever))
    (i32.const 0))

  (func (export "balance") (result i32) (i32.load (i32.const 256)))
  (func (export "deposits") (result i32) (global.get $deposits))
  (func (export "pages") (result i32) (memory.size))

  ;; The last deposit from the key-value store; -1 when there is none.
  (func (export "last") (result i32)
    (if (i64.lt_s (call $get (i32.const 0) (i32.const 4) (i32.const 32) (i32.const 4)) (i64.const 0))
      (then (return (i32.const -1))))
    (i32.load (i32.const 32)))

  ;; Grows memory one page at a time until the limit refuses, writes the
  ;; balance and "last" at the top, then traps.
  (func (export "grow_then_fail") (result i32)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
        (br $more)))
    (i32.store (i32.const 256) (i32.const 999999))
    (i32.store (i32.const 16) (i32.const 777))
    (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 4)))
    unreachable))
