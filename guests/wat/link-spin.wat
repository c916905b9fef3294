;; A component exporting `wasmhost:example/console@0.1.0` whose `log`
;; never returns (and whose `lines` is always empty): a provider that must
;; be stopped by a deadline, its own or its consumer's.
(component
  (core module $m
    (memory (export "mem") 1)
    (func (export "realloc") (param i32 i32 i32 i32) (result i32) i32.const 1024)
    (func (export "log") (param i32 i32) (loop $spin (br $spin)))
    (func (export "lines") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (alias core export $i "mem" (core memory $mem))
  (alias core export $i "realloc" (core func $realloc))
  (func $log (param "line" string)
    (canon lift (core func $i "log") (memory $mem) (realloc $realloc)))
  (func $lines (result (list string))
    (canon lift (core func $i "lines") (memory $mem) (realloc $realloc)))
  (instance $console (export "log" (func $log)) (export "lines" (func $lines)))
  (export "wasmhost:example/console@0.1.0" (instance $console))
)
