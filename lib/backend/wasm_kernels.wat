;; Decode-attention kernels for the tfjs-wasm backend, run over tfjs-wasm's own memory (imported), so they read
;; the KV cache buffers in place. Compiled into wasm_kernels_bytes.ts by tools/build_wasm_kernels.ts.
;; All pointers are byte offsets; all widths are in floats and multiples of 4 (one f32x4 lane group).
(module
  (import "env" "memory" (memory 0))

  ;; out[g * L + l] = scale * dot(q[g, :], k[l, :]) for g < G, l < L.
  ;; q: [G, hd] contiguous; k: [L, hd] contiguous; out: [G, L].
  (func (export "scores")
    (param $q i32) (param $k i32) (param $out i32) (param $L i32) (param $hd i32) (param $G i32) (param $scale f32)
    (local $l i32) (local $g i32) (local $j i32) (local $row i32) (local $krow i32) (local $qrow i32)
    (local $a v128) (local $b v128)
    (local.set $row (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $l (i32.const 0))
    (block $ldone (loop $lloop
      (br_if $ldone (i32.ge_u (local.get $l) (local.get $L)))
      (local.set $krow (i32.add (local.get $k) (i32.mul (local.get $l) (local.get $row))))
      (local.set $g (i32.const 0))
      (block $gdone (loop $gloop
        (br_if $gdone (i32.ge_u (local.get $g) (local.get $G)))
        (local.set $qrow (i32.add (local.get $q) (i32.mul (local.get $g) (local.get $row))))
        ;; two accumulators (even and odd lane groups) to shorten the add chain
        (local.set $a (v128.const f32x4 0 0 0 0))
        (local.set $b (v128.const f32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $jdone (loop $jloop
          (br_if $jdone (i32.ge_u (i32.add (local.get $j) (i32.const 16)) (local.get $row)))
          (local.set $a (f32x4.add (local.get $a)
            (f32x4.mul (v128.load (i32.add (local.get $qrow) (local.get $j)))
                       (v128.load (i32.add (local.get $krow) (local.get $j))))))
          (local.set $b (f32x4.add (local.get $b)
            (f32x4.mul (v128.load offset=16 (i32.add (local.get $qrow) (local.get $j)))
                       (v128.load offset=16 (i32.add (local.get $krow) (local.get $j))))))
          (local.set $j (i32.add (local.get $j) (i32.const 32)))
          (br $jloop)))
        ;; an odd number of lane groups leaves one
        (if (i32.lt_u (local.get $j) (local.get $row))
          (then
            (local.set $a (f32x4.add (local.get $a)
              (f32x4.mul (v128.load (i32.add (local.get $qrow) (local.get $j)))
                         (v128.load (i32.add (local.get $krow) (local.get $j))))))))
        (local.set $a (f32x4.add (local.get $a) (local.get $b)))
        (f32.store
          (i32.add (local.get $out)
            (i32.shl (i32.add (i32.mul (local.get $g) (local.get $L)) (local.get $l)) (i32.const 2)))
          (f32.mul (local.get $scale)
            (f32.add
              (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
              (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a))))))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $gloop)))
      (local.set $l (i32.add (local.get $l) (i32.const 1)))
      (br $lloop))))

  ;; out[g, :] = sum over l < L of p[g * L + l] * v[l, :], for g < G.
  ;; p: [G, L]; v: [L, hd] contiguous; out: [G, hd] (overwritten).
  (func (export "values")
    (param $p i32) (param $v i32) (param $out i32) (param $L i32) (param $hd i32) (param $G i32)
    (local $l i32) (local $g i32) (local $j i32) (local $row i32) (local $vrow i32) (local $orow i32)
    (local $w v128) (local $end i32)
    (local.set $row (i32.shl (local.get $hd) (i32.const 2)))
    ;; zero the output
    (local.set $j (i32.const 0))
    (local.set $end (i32.mul (local.get $G) (local.get $row)))
    (block $zdone (loop $zloop
      (br_if $zdone (i32.ge_u (local.get $j) (local.get $end)))
      (v128.store (i32.add (local.get $out) (local.get $j)) (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.add (local.get $j) (i32.const 16)))
      (br $zloop)))
    (local.set $l (i32.const 0))
    (block $ldone (loop $lloop
      (br_if $ldone (i32.ge_u (local.get $l) (local.get $L)))
      (local.set $vrow (i32.add (local.get $v) (i32.mul (local.get $l) (local.get $row))))
      (local.set $g (i32.const 0))
      (block $gdone (loop $gloop
        (br_if $gdone (i32.ge_u (local.get $g) (local.get $G)))
        (local.set $w (f32x4.splat (f32.load
          (i32.add (local.get $p)
            (i32.shl (i32.add (i32.mul (local.get $g) (local.get $L)) (local.get $l)) (i32.const 2))))))
        (local.set $orow (i32.add (local.get $out) (i32.mul (local.get $g) (local.get $row))))
        (local.set $j (i32.const 0))
        (block $jdone (loop $jloop
          (br_if $jdone (i32.ge_u (local.get $j) (local.get $row)))
          (v128.store (i32.add (local.get $orow) (local.get $j))
            (f32x4.add (v128.load (i32.add (local.get $orow) (local.get $j)))
              (f32x4.mul (local.get $w) (v128.load (i32.add (local.get $vrow) (local.get $j))))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br $jloop)))
        (local.set $g (i32.add (local.get $g) (i32.const 1)))
        (br $gloop)))
      (local.set $l (i32.add (local.get $l) (i32.const 1)))
      (br $lloop))))
)
