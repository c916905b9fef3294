;; The key-value capability from a core module: wasmhost:kv get/set/delete on keys and values in memory.
(module
  (import "wasmhost:kv" "get" (func $get (param i32 i32 i32 i32) (result i64)))
  (import "wasmhost:kv" "set" (func $set (param i32 i32 i32 i32) (result i32)))
  (import "wasmhost:kv" "delete" (func $delete (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; 0: key "greeting" (8 bytes); 16: value "hello, kv" (9 bytes); 32: key "count" (5 bytes).
  (data (i32.const 0) "greeting")
  (data (i32.const 16) "hello, kv")
  (data (i32.const 32) "count")
  ;; 64: the counter's 8-byte buffer. 128/136: set_u64's key and value.
  ;; 1024..: the buffer get_greeting reads into.

  ;; Sets "greeting" to "hello, kv"; returns set's result (0).
  (func (export "set_greeting") (result i32)
    (call $set (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 9)))

  ;; Reads "greeting" into a zeroed buffer of `cap` bytes at 1024 and returns
  ;; get's result (the length, or -1 when absent). -2: the value fitted but
  ;; the buffer does not hold "hello, kv"; -3: it did not fit, yet the buffer
  ;; was written to.
  (func (export "get_greeting") (param $cap i32) (result i64)
    (local $n i64) (local $i i32)
    (memory.fill (i32.const 1024) (i32.const 0) (i32.const 64))
    (local.set $n (call $get (i32.const 0) (i32.const 8) (i32.const 1024) (local.get $cap)))
    (if (i64.lt_s (local.get $n) (i64.const 0)) (then (return (local.get $n))))
    (if (i64.gt_s (local.get $n) (i64.extend_i32_u (local.get $cap)))
      (then
        (if (i32.load8_u (i32.const 1024)) (then (return (i64.const -3))))
        (return (local.get $n))))
    (block $done
      (loop $cmp
        (br_if $done (i64.ge_u (i64.extend_i32_u (local.get $i)) (local.get $n)))
        (if (i32.ne (i32.load8_u (i32.add (i32.const 1024) (local.get $i)))
                    (i32.load8_u (i32.add (i32.const 16) (local.get $i))))
          (then (return (i64.const -2))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $cmp)))
    (local.get $n))

  ;; Deletes "greeting": 1 if it existed, 0 if not.
  (func (export "delete_greeting") (result i32)
    (call $delete (i32.const 0) (i32.const 8)))

  ;; A value of 2,000,000 bytes (more than the default 1 MiB bound, and more than memory).
  (func (export "too_big") (result i32)
    (call $set (i32.const 0) (i32.const 8) (i32.const 0) (i32.const 2000000)))

  ;; A key of 2000 bytes (more than the default 1024-byte bound).
  (func (export "too_long_key") (result i32)
    (call $set (i32.const 0) (i32.const 2000) (i32.const 16) (i32.const 9)))

  ;; A key running past the end of memory.
  (func (export "bad_pointer") (result i32)
    (call $set (i32.const 65530) (i32.const 100) (i32.const 16) (i32.const 9)))

  ;; Reads "count" (i64 little-endian, 0 when absent), adds 1, writes it back, returns it.
  (func (export "counter") (result i64)
    (local $n i64)
    (i64.store (i32.const 64) (i64.const 0))
    (drop (call $get (i32.const 32) (i32.const 5) (i32.const 64) (i32.const 8)))
    (local.set $n (i64.add (i64.load (i32.const 64)) (i64.const 1)))
    (i64.store (i32.const 64) (local.get $n))
    (drop (call $set (i32.const 32) (i32.const 5) (i32.const 64) (i32.const 8)))
    (local.get $n))

  ;; Sets key k to value v, both as 8 bytes little-endian; returns set's result (0).
  (func (export "set_u64") (param $k i64) (param $v i64) (result i32)
    (i64.store (i32.const 128) (local.get $k))
    (i64.store (i32.const 136) (local.get $v))
    (call $set (i32.const 128) (i32.const 8) (i32.const 136) (i32.const 8)))

  ;; Sets key k (8 bytes little-endian) to `len` zero bytes (at most 60000,
  ;; from 4096 on): values big enough to fill a small disk. Returns set's result (0).
  (func (export "set_blob") (param $k i64) (param $len i32) (result i32)
    (i64.store (i32.const 128) (local.get $k))
    (call $set (i32.const 128) (i32.const 8) (i32.const 4096) (local.get $len)))

  ;; The length of key k's value, or -1 when absent (read into a zero-byte buffer).
  (func (export "len_of") (param $k i64) (result i64)
    (i64.store (i32.const 128) (local.get $k))
    (call $get (i32.const 128) (i32.const 8) (i32.const 0) (i32.const 0)))

  ;; The value of key k (8 bytes little-endian) as an i64, or -1 when absent.
  (func (export "get_u64") (param $k i64) (result i64)
    (i64.store (i32.const 128) (local.get $k))
    (if (i64.lt_s (call $get (i32.const 128) (i32.const 8) (i32.const 136) (i32.const 8)) (i64.const 0))
      (then (return (i64.const -1))))
    (i64.load (i32.const 136)))
)
