;; linked-counter.wat: a WASI command meant to be linked by name into
;; another module (see linked-main.wat), to show how linked modules are
;; instantiated. Its start function and `_start` each add one to a global;
;; `read_counter` returns it. Linked as a command, every call of one of its
;; exports runs in a fresh instance (so `read_counter` always sees 1: the
;; start function's one), as wasmtime's `Linker::module` and Extism do.
(module
  (global $counter (mut i32) (i32.const 0))
  (func $bump (export "_start")
    (global.set $counter (i32.add (global.get $counter) (i32.const 1))))
  (func (export "read_counter") (result i32)
    (global.get $counter))
  (start $bump))
