;; table.wat: `grow n` grows a funcref table (initially 1 element, no maximum) by n null
;; entries and returns table.grow's result (old size, or -1), for table-limit tests.
(module
  (table $t 1 funcref)  ;; 1 element, no maximum

  (func (export "grow") (param $n i32) (result i32)
    (table.grow $t (ref.null func) (local.get $n)))
)
