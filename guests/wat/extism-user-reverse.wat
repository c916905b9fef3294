;; extism-user-reverse.wat: Extism host functions written in wasm. Linked
;; under the name `extism:host/user` (an Extism manifest's
;; `{"path": "extism-user-reverse.wat", "name": "extism:host/user"}`), it
;; gives the Extism plugin `extism-plugin.wasm` the `reverse` host function
;; its `reverse_via_host` export imports, the way Extism's own linking example
;; gives a plugin its `host_reflect` from a second module.
;;
;; reverse(in: i64) -> i64 takes a kernel memory block (an offset from
;; `extism:host/env`) and returns a new block holding its bytes in reverse
;; order.
(module
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (func (export "reverse") (param $in i64) (result i64)
    (local $n i64) (local $out i64) (local $i i64)
    (local.set $n (call $length (local.get $in)))
    (local.set $out (call $alloc (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i64.ge_u (local.get $i) (local.get $n)))
        ;; out[i] = in[n - 1 - i]
        (call $store_u8
          (i64.add (local.get $out) (local.get $i))
          (call $load_u8
            (i64.add (local.get $in)
              (i64.sub (i64.sub (local.get $n) (local.get $i)) (i64.const 1)))))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $next)))
    (local.get $out)))
