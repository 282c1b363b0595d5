;; The inner loop of the embedded vector index, in WebAssembly SIMD: dot products of int8 codes (the
;; index's compressed vectors and cluster centres). Plain JavaScript does one 1280-d float dot product
;; in about 1.1 us; this does the int8 one in about 0.08 us. No allocation, no state: the caller
;; (vector-index.ts) owns the memory layout. kernel.ts holds the compiled bytes
;; (npm run build:kernel regenerates it; a test checks that it matches this file).
(module
  (memory (export "memory") 1 65536)

  ;; sum(a[i] * b[i]) over n int8 values; n is a multiple of 16. Exact in int32 up to n = 2^17.
  (func $dot_i8 (export "dot_i8") (param $a i32) (param $b i32) (param $n i32) (result i32)
    (local $acc v128) (local $end i32) (local $va v128) (local $vb v128)
    (local.set $end (i32.add (local.get $a) (local.get $n)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $a) (local.get $end)))
        (local.set $va (v128.load (local.get $a)))
        (local.set $vb (v128.load (local.get $b)))
        (local.set $acc (i32x4.add (local.get $acc)
          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $va)) (i16x8.extend_low_i8x16_s (local.get $vb)))))
        (local.set $acc (i32x4.add (local.get $acc)
          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $va)) (i16x8.extend_high_i8x16_s (local.get $vb)))))
        (local.set $a (i32.add (local.get $a) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (br $next)))
    (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
      (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))

  ;; out[i] (i32) = dot_i8(q, codes + slots[i] * n, n) for i < count: int8 codes picked by slot number.
  (func (export "scan_i8") (param $q i32) (param $codes i32) (param $slots i32) (param $count i32) (param $n i32)
    (param $out i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (i32.store (local.get $out)
          (call $dot_i8 (local.get $q)
            (i32.add (local.get $codes) (i32.mul (i32.load (local.get $slots)) (local.get $n)))
            (local.get $n)))
        (local.set $slots (i32.add (local.get $slots) (i32.const 4)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next))))
)
