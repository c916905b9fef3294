;; noise.wat: an actor whose state is a block of incompressible bytes in
;; linear memory, for tests of snapshots larger than one NATS message (the
;; cluster keeps those in the JetStream object store).
;;
;; `fill(kib, seed)` grows memory to hold `kib` KiB from address 65536 on,
;; fills them with xorshift32 output seeded by `seed`, and returns their
;; checksum; `checksum()` returns it again (0 before any fill). LZ4 cannot
;; shrink xorshift output, so a snapshot is about `kib` KiB.
(module
  (memory (export "memory") 1 512)
  (global $kib (mut i32) (i32.const 0))

  (func (export "fill") (param $kib i32) (param $seed i32) (result i32)
    (local $need i32) (local $x i32) (local $p i32) (local $end i32)
    ;; One page below the block, then ceil(kib / 64) pages.
    (local.set $need (i32.add (i32.const 1)
      (i32.div_u (i32.add (local.get $kib) (i32.const 63)) (i32.const 64))))
    (if (i32.gt_u (local.get $need) (memory.size))
      (then
        (if (i32.eq (memory.grow (i32.sub (local.get $need) (memory.size))) (i32.const -1))
          (then unreachable))))
    (global.set $kib (local.get $kib))
    (local.set $x (i32.or (local.get $seed) (i32.const 1)))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (i32.mul (local.get $kib) (i32.const 1024))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
        (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
        (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
        (i32.store (local.get $p) (local.get $x))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next)))
    (call $checksum))

  ;; FNV-1a over the block's 32-bit words.
  (func $checksum (export "checksum") (result i32)
    (local $h i32) (local $p i32) (local $end i32)
    (local.set $h (i32.const 0x811c9dc5))
    (local.set $p (i32.const 65536))
    (local.set $end (i32.add (i32.const 65536) (i32.mul (global.get $kib) (i32.const 1024))))
    (if (i32.eqz (global.get $kib)) (then (return (i32.const 0))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $h (i32.mul (i32.xor (local.get $h) (i32.load (local.get $p)))
          (i32.const 0x01000193)))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $next)))
    (local.get $h)))
