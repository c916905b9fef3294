;; start_trap.wat: the module's start function traps, so instantiation itself fails
;; (a trap during instantiation, not during a call). `run` is never reachable.
(module
  (func $start
    unreachable)
  (start $start)

  (func (export "run"))
)
