;; reactor.wat: a WASI-style reactor; the host must call `_initialize` (sets the global
;; to 100) before other exports, so `get` returns 100 after initialisation (0 without it).
(module
  (global $value (mut i32) (i32.const 0))

  (func (export "_initialize")
    (global.set $value (i32.const 100)))

  (func (export "get") (result i32)
    (global.get $value))
)
