;; grow.wat: a memory bomb, for memory-limit tests.
;; `run` grows memory 16 pages (1 MiB) at a time until memory.grow fails (-1), then traps.
;; `grow_once n` does a single memory.grow of n pages and returns its result (old size or -1).
(module
  (memory (export "memory") 1)  ;; 1 page, no maximum

  (func (export "run") (result i32)
    (loop $again
      (br_if $again
        (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)

  (func (export "grow_once") (param $pages i32) (result i32)
    (memory.grow (local.get $pages)))

  ;; A harmless export: after the hostile one fails, the next call on the same
  ;; module must still succeed.
  (func (export "ok") (result i32) (i32.const 1))
)
