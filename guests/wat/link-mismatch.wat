;; A component exporting `wasmhost:example/console@0.1.0` with the wrong
;; type: `log` takes a u32 where the consumer (guests/rust/link-consumer)
;; imports `log: func(line: string)`, and there is no `lines`. Linking it as
;; the consumer's console provider is a `link_error` naming the mismatch.
(component
  (core module $m
    (func (export "log") (param i32)))
  (core instance $i (instantiate $m))
  (func $log (param "line" u32) (canon lift (core func $i "log")))
  (instance $console (export "log" (func $log)))
  (export "wasmhost:example/console@0.1.0" (instance $console))
)
