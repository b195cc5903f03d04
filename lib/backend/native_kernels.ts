/**
 * Coherence Lab's native kernels (`./native_kernels.c`), loaded through Deno's FFI, for the wasm backend:
 * a GEMM against pre-packed weights, a vectorised GELU and one-token decode attention over a KV cache.
 *
 * OpenBLAS repacks its right operand on every call, and at the few-row shapes of batched decoding that
 * repacking, not the arithmetic, is most of the cost. A weight is the same buffer over thousands of calls,
 * so the wasm matmul adapter (`./wasm_matmul.ts`) packs it once into panels that `cl_gemm_packed` streams
 * straight through: 1.7x OpenBLAS at 16 rows and 1.2x at 128 over a GPT-2-small forward's weights on the
 * build machine (`bench/gemm_ceiling.ts`, BENCHMARKS.md). `cl_gelu_tanh` computes GPT-2's GELU in one
 * AVX-512 pass (a polynomial exp, 1.2e-7 relative), where tfjs-wasm runs five scalar kernels
 * (`./wasm_gelu.ts`). The library is compiled on the machine that uses it (`deno task build-native`,
 * `tools/build_native.ts`: `cc -O3 -march=native`); without it, the wasm backend keeps OpenBLAS, XNNPACK
 * and its stock kernels.
 *
 * @module
 */

/**
 * A loaded native GEMM: packing and products on raw byte addresses.
 *
 * @category Backend
 */
export interface NativeKernels {
  /** The library path that was loaded. */
  path: string;
  /** Columns per packed panel (16 or 32 floats wide vectors, times two). */
  panelWidth: number;
  /** Floats a packed K x N operand takes. */
  packedFloats(k: number, n: number): number;
  /**
   * Packs B (K x N; `trans`: stored N x K) at address `b` with row stride `ldb` into `out`, which holds
   * {@linkcode NativeKernels.packedFloats} floats.
   */
  pack(b: bigint, ldb: number, trans: boolean, k: number, n: number, out: bigint): void;
  /** C (M x N, row stride `ldc`) = A (M x K, `lda`) · packed B + bias (N floats, or 0n for none). */
  gemm(
    m: number,
    n: number,
    k: number,
    a: bigint,
    lda: number,
    packed: bigint,
    c: bigint,
    ldc: number,
    bias: bigint,
  ): void;
  /** y[i] = x[i] · sigmoid(x[i] (c1 + c2 x[i]²)) for i < n (GELU, tanh form), at byte addresses. */
  geluTanh(x: bigint, y: bigint, n: number, c1: number, c2: number): void;
  /**
   * One-token attention over the first `length` columns of a KV cache, at byte addresses: q `[b, h, hd]`,
   * k and v `[b, hkv, cap, hd]`, mask `[b, length]` additive (0n for none), z `[b, h, hd]` =
   * softmax(q·kᵀ·scale + mask)·v, query head i reading key/value head ⌊i / (h / hkv)⌋.
   */
  decodeAttention(
    dims: { b: number; h: number; hkv: number; cap: number; length: number; hd: number; scale: number },
    q: bigint,
    k: bigint,
    v: bigint,
    mask: bigint,
    z: bigint,
  ): void;
  /** Unloads the library. */
  close(): void;
}

const I32 = "i32", PTR = "pointer";

const SYMBOLS = {
  cl_native_version: { parameters: [], result: "i32" },
  cl_native_source_hash: { parameters: [], result: "u32" },
  cl_gemm_panel_width: { parameters: [], result: "i32" },
  cl_packed_floats: { parameters: ["i32", "i32"], result: "usize" },
  cl_pack: { parameters: ["pointer", "i32", "i32", "i32", "i32", "pointer"], result: "void" },
  cl_gemm_packed: {
    parameters: ["i32", "i32", "i32", "pointer", "i32", "pointer", "pointer", "i32", "pointer"],
    result: "void",
  },
  cl_gelu_tanh: { parameters: ["pointer", "pointer", "i64", "f32", "f32"], result: "void" },
  cl_decode_attention: {
    // b, h, hkv, cap, length, hd, scale, then the addresses of q, k, v, mask and z
    parameters: [I32, I32, I32, I32, I32, I32, "f32", PTR, PTR, PTR, PTR, PTR],
    result: "i32",
  },
} as const;

/**
 * The `cl_native_version` of `./native_kernels.c` this module speaks to.
 *
 * @category Backend
 */
export const NATIVE_KERNELS_VERSION = 2;

/**
 * The file name of the built library on this platform (`libcoherence_native.so`, `.dylib` or `.dll`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeKernelsFileName } from "./native_kernels.ts";
 * assert.match(nativeKernelsFileName(), /^libcoherence_native\.(so|dylib|dll)$/);
 * ```
 *
 * @category Backend
 */
export function nativeKernelsFileName(): string {
  const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
  return `libcoherence_native.${ext}`;
}

/**
 * Where `deno task build-native` puts the library, next to its source in this folder; null when this
 * module was not loaded from a file (imported by URL: build it from a clone, and pass its path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultNativeKernelsPath } from "./native_kernels.ts";
 * const p = defaultNativeKernelsPath();
 * assert.ok(p === null || p.endsWith("libcoherence_native.so") || p.endsWith(".dylib") || p.endsWith(".dll"));
 * ```
 *
 * @category Backend
 */
export function defaultNativeKernelsPath(): string | null {
  const url = new URL(`./${nativeKernelsFileName()}`, import.meta.url);
  if (url.protocol !== "file:") return null;
  const path = decodeURIComponent(url.pathname);
  return Deno.build.os === "windows" ? path.replace(/^\//, "") : path;
}

/**
 * FNV-1a (32-bit) of a text's UTF-8 bytes: the build stamps the library with this hash of its source, and
 * loading the default build checks it against the source beside it, so a stale build is never used.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sourceHash } from "./native_kernels.ts";
 * assert.equal(sourceHash(""), 0x811c9dc5);
 * assert.notEqual(sourceHash("a"), sourceHash("b"));
 * ```
 *
 * @category Backend
 */
export function sourceHash(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h;
}

/** The source's hash, or null when the source cannot be read (no read permission, not a file URL). */
function currentSourceHash(): number | null {
  const url = new URL("./native_kernels.c", import.meta.url);
  if (url.protocol !== "file:") return null;
  try {
    return sourceHash(Deno.readTextFileSync(url));
  } catch {
    return null;
  }
}

/**
 * Why {@linkcode loadNativeKernels} found no library, for the backend's notes.
 *
 * @category Backend
 */
export let nativeKernelsMissing = "";

/**
 * Loads the native GEMM from `path`, or from {@linkcode defaultNativeKernelsPath}. A given path that does not
 * load, or is stale (built from another version of `native_kernels.c` than the one beside this module, or not
 * by `tools/build_native.ts`), throws, saying how to build it; for the default, the same cases (and no FFI
 * permission) return null, and {@linkcode nativeKernelsMissing} says why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeKernels } from "./native_kernels.ts";
 * const gemm = loadNativeKernels(); // null until `deno task build-native` has run, or without --allow-ffi
 * if (gemm) {
 *   const f = (n: number) => new Float32Array(n + 16); // room to align
 *   const p = (x: Float32Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(x)));
 *   const a = new Float32Array([1, 2, 3, 4]), b = new Float32Array([5, 6, 7, 8]), c = new Float32Array(4);
 *   const packed = f(gemm.packedFloats(2, 2));
 *   gemm.pack(p(b), 2, false, 2, 2, p(packed));
 *   gemm.gemm(2, 2, 2, p(a), 2, p(packed), p(c), 2, 0n);
 *   assert.deepEqual([...c], [19, 22, 43, 50]);
 *   gemm.close();
 * }
 * ```
 *
 * @category Backend
 */
export function loadNativeKernels(path?: string): NativeKernels | null {
  const build = "build it with `deno task build-native` (needs a C compiler: apt-get install gcc)";
  let allowed = false;
  try {
    allowed = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch { /* no permission API: treat as denied */ }
  if (!allowed) {
    if (path) {
      throw new Error(`nativeKernels: loading '${path}' needs the FFI permission: run Deno with --allow-ffi`);
    }
    nativeKernelsMissing = "FFI is not permitted";
    return null;
  }
  const file = path ?? defaultNativeKernelsPath();
  if (!file) {
    nativeKernelsMissing = "this module was not loaded from a file; pass the library's path";
    return null;
  }
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(file, SYMBOLS);
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    if (path) throw new Error(`nativeKernels: could not load '${path}' (${why}); ${build}`);
    nativeKernelsMissing = `not built (${file}): ${build}`;
    return null;
  }
  const version = lib.symbols.cl_native_version();
  const stamped = lib.symbols.cl_native_source_hash();
  const source = currentSourceHash();
  if (version !== NATIVE_KERNELS_VERSION || (source !== null && stamped !== source)) {
    lib.close();
    const what = version !== NATIVE_KERNELS_VERSION
      ? `version ${version}, this module speaks ${NATIVE_KERNELS_VERSION}`
      : "built from another version of native_kernels.c";
    if (path) throw new Error(`nativeKernels: '${path}' is stale (${what}); rebuild: ${build}`);
    nativeKernelsMissing = `the build at ${file} is stale (${what}): rebuild with \`deno task build-native\``;
    return null;
  }
  const ptr = (x: bigint) => Deno.UnsafePointer.create(x);
  const s = lib.symbols;
  return {
    path: file,
    panelWidth: s.cl_gemm_panel_width(),
    packedFloats: (k, n) => Number(s.cl_packed_floats(k, n)),
    pack: (b, ldb, trans, k, n, out) => s.cl_pack(ptr(b), ldb, trans ? 1 : 0, k, n, ptr(out)),
    gemm: (m, n, k, a, lda, packed, c, ldc, bias) =>
      s.cl_gemm_packed(m, n, k, ptr(a), lda, ptr(packed), ptr(c), ldc, bias === 0n ? null : ptr(bias)),
    geluTanh: (x, y, n, c1, c2) => s.cl_gelu_tanh(ptr(x), ptr(y), BigInt(n), c1, c2),
    decodeAttention: ({ b, h, hkv, cap, length, hd, scale }, q, k, v, mask, z) => {
      const rc = s.cl_decode_attention(
        b,
        h,
        hkv,
        cap,
        length,
        hd,
        scale,
        ptr(q),
        ptr(k),
        ptr(v),
        mask === 0n ? null : ptr(mask),
        ptr(z),
      );
      if (rc !== 0) throw new Error(`decodeAttention: no memory for ${(h / hkv) * length} scores`);
    },
    close: () => lib.close(),
  };
}

/**
 * A packed copy of one right operand, in memory outside the wasm heap (a 64-byte-aligned view of an
 * `ArrayBuffer`, whose address never moves).
 *
 * @category Backend
 */
export interface PackedOperand {
  /** The packed floats. */
  data: Float32Array;
  /** Its byte address. */
  address: bigint;
  /** Bytes held (the buffer, alignment slack included). */
  bytes: number;
}

/**
 * Packs a K x N operand at `b` (row stride `ldb`; `trans`: stored N x K) into fresh aligned memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeKernels, packOperand } from "./native_kernels.ts";
 * const gemm = loadNativeKernels();
 * if (gemm) {
 *   const b = new Float32Array([1, 2, 3, 4, 5, 6]); // 2 x 3
 *   const p = packOperand(gemm, BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(b))), 3, false, 2, 3);
 *   assert.equal(p.address % 64n, 0n);
 *   assert.deepEqual([...p.data.subarray(0, 3)], [1, 2, 3]); // row 0 of the first panel
 *   gemm.close();
 * }
 * ```
 *
 * @category Backend
 */
export function packOperand(
  gemm: NativeKernels,
  b: bigint,
  ldb: number,
  trans: boolean,
  k: number,
  n: number,
): PackedOperand {
  const floats = gemm.packedFloats(k, n);
  const buf = new ArrayBuffer(floats * 4 + 64);
  const base = BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf)));
  const skip = Number((64n - (base % 64n)) % 64n);
  const data = new Float32Array(buf, skip, floats);
  const address = base + BigInt(skip);
  gemm.pack(b, ldb, trans, k, n, address);
  return { data, address, bytes: buf.byteLength };
}
