;; Raw memory transfer guest: a bump allocator and functions taking
;; (ptr, len) and returning a packed (ptr << 32 | len) i64.
;;   reverse(ptr, len)        -> the input bytes reversed
;;   repeat(ptr, len, n: i32) -> the input repeated n times (an extra argument)
;;   wild(ptr, len)           -> a pointer far outside memory (the host must refuse it)
;; `dealloc` counts its calls in the global `freed` (exported) so tests can
;; see that the host freed both buffers.
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (global $freed (export "freed") (mut i32) (i32.const 0))

  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    global.get $next
    local.set $p
    ;; grow when needed: pages = ceil((p + len) / 65536) - current
    (block $ok
      local.get $p
      local.get $len
      i32.add
      memory.size
      i32.const 65536
      i32.mul
      i32.le_u
      br_if $ok
      local.get $p
      local.get $len
      i32.add
      i32.const 65535
      i32.add
      i32.const 65536
      i32.div_u
      memory.size
      i32.sub
      memory.grow
      i32.const -1
      i32.eq
      (if (then unreachable)))
    local.get $p
    local.get $len
    i32.add
    global.set $next
    local.get $p)

  (func (export "dealloc") (param i32 i32)
    global.get $freed
    i32.const 1
    i32.add
    global.set $freed)

  (func $pack (param $p i32) (param $len i32) (result i64)
    local.get $p
    i64.extend_i32_u
    i64.const 32
    i64.shl
    local.get $len
    i64.extend_i32_u
    i64.or)

  (func (export "reverse") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $i i32)
    local.get $len
    call $alloc
    local.set $out
    (block $done
      (loop $l
        local.get $i
        local.get $len
        i32.ge_u
        br_if $done
        ;; out[i] = in[len - 1 - i]
        local.get $out
        local.get $i
        i32.add
        local.get $ptr
        local.get $len
        i32.add
        i32.const 1
        i32.sub
        local.get $i
        i32.sub
        i32.load8_u
        i32.store8
        local.get $i
        i32.const 1
        i32.add
        local.set $i
        br $l))
    local.get $out
    local.get $len
    call $pack)

  (func (export "repeat") (param $ptr i32) (param $len i32) (param $n i32) (result i64)
    (local $out i32) (local $k i32)
    local.get $len
    local.get $n
    i32.mul
    call $alloc
    local.set $out
    (block $done
      (loop $l
        local.get $k
        local.get $n
        i32.ge_u
        br_if $done
        local.get $out
        local.get $k
        local.get $len
        i32.mul
        i32.add
        local.get $ptr
        local.get $len
        memory.copy
        local.get $k
        i32.const 1
        i32.add
        local.set $k
        br $l))
    local.get $out
    local.get $len
    local.get $n
    i32.mul
    call $pack)

  (func (export "wild") (param i32 i32) (result i64)
    i64.const 0x7fff000000000010)
)
