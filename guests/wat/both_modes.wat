;; both_modes.wat: one executable that serves in both process modes.
;;   `_start` (sync mode, a fresh instance per message): reads all of stdin and
;;            writes "sync: <message>".
;;   `poll`   (async mode, one kept instance): reads all of stdin, counts the
;;            message in a global, and writes "async #<n>: <message>".
;; Messages longer than 64 KiB are cut at 64 KiB.
(module
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))

  ;; 0..8: iovec (ptr, len); 8..12: bytes read/written; 16..32: digits;
  ;; 32..: prefixes; 65536..131072: the message.
  (memory (export "memory") 2)
  (data (i32.const 32) "sync: ")
  (data (i32.const 48) "async #")
  (data (i32.const 64) ": ")

  (global $count (mut i32) (i32.const 0))

  ;; Reads stdin until EOF into 65536..; returns its length.
  (func $read_all (result i32)
    (local $len i32)
    (block $done
      (loop $more
        (i32.store (i32.const 0) (i32.add (i32.const 65536) (local.get $len)))
        (i32.store (i32.const 4) (i32.sub (i32.const 65536) (local.get $len)))
        (br_if $done (i32.eqz (i32.load (i32.const 4))))
        (br_if $done
          (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
        (br_if $done (i32.eqz (i32.load (i32.const 8))))
        (local.set $len (i32.add (local.get $len) (i32.load (i32.const 8))))
        (br $more)))
    (local.get $len))

  ;; Writes memory[ptr..ptr+len] to stdout.
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))

  ;; Writes n in decimal to stdout.
  (func $write_number (param $n i32)
    (local $at i32)
    (local.set $at (i32.const 32))
    (loop $digit
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at)
        (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $digit (local.get $n)))
    (call $write (local.get $at) (i32.sub (i32.const 32) (local.get $at))))

  (func (export "_start")
    (local $len i32)
    (local.set $len (call $read_all))
    (call $write (i32.const 32) (i32.const 6))
    (call $write (i32.const 65536) (local.get $len)))

  (func (export "poll")
    (local $len i32)
    (local.set $len (call $read_all))
    (global.set $count (i32.add (global.get $count) (i32.const 1)))
    (call $write (i32.const 48) (i32.const 7))
    (call $write_number (global.get $count))
    (call $write (i32.const 64) (i32.const 2))
    (call $write (i32.const 65536) (local.get $len)))
)
