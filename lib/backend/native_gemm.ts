/**
 * Coherence Lab's native GEMM (`./native_gemm.c`) against pre-packed weights, loaded through Deno's FFI,
 * for the wasm backend's products whose right operand is a model weight.
 *
 * OpenBLAS repacks its right operand on every call, and at the few-row shapes of batched decoding that
 * repacking, not the arithmetic, is most of the cost. A weight is the same buffer over thousands of calls,
 * so the wasm matmul adapter (`./wasm_matmul.ts`) packs it once, the second time it sees it, into panels
 * that `cl_gemm_packed` streams straight through: 1.9–2.4x OpenBLAS at 16 rows and 1.2–1.4x at 128 on the
 * build machine (BENCHMARKS.md). The library is compiled on the machine that uses it
 * (`deno task build-native`, `tools/build_native.ts`: `cc -O3 -march=native`); without it, the wasm
 * backend keeps OpenBLAS and XNNPACK.
 *
 * @module
 */

/**
 * A loaded native GEMM: packing and products on raw byte addresses.
 *
 * @category Backend
 */
export interface NativeGemm {
  /** The library path that was loaded. */
  path: string;
  /** Columns per packed panel (16 or 32 floats wide vectors, times two). */
  panelWidth: number;
  /** Floats a packed K x N operand takes. */
  packedFloats(k: number, n: number): number;
  /**
   * Packs B (K x N; `trans`: stored N x K) at address `b` with row stride `ldb` into `out`, which holds
   * {@linkcode NativeGemm.packedFloats} floats.
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
  /** Unloads the library. */
  close(): void;
}

const SYMBOLS = {
  cl_gemm_version: { parameters: [], result: "i32" },
  cl_gemm_source_hash: { parameters: [], result: "u32" },
  cl_gemm_panel_width: { parameters: [], result: "i32" },
  cl_packed_floats: { parameters: ["i32", "i32"], result: "usize" },
  cl_pack: { parameters: ["pointer", "i32", "i32", "i32", "i32", "pointer"], result: "void" },
  cl_gemm_packed: {
    parameters: ["i32", "i32", "i32", "pointer", "i32", "pointer", "pointer", "i32", "pointer"],
    result: "void",
  },
} as const;

/** The `cl_gemm_version` of `./native_gemm.c` this module speaks to. */
export const NATIVE_GEMM_VERSION = 1;

/**
 * The file name of the built library on this platform (`libcoherence_gemm.so`, `.dylib` or `.dll`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeGemmFileName } from "./native_gemm.ts";
 * assert.match(nativeGemmFileName(), /^libcoherence_gemm\.(so|dylib|dll)$/);
 * ```
 *
 * @category Backend
 */
export function nativeGemmFileName(): string {
  const ext = Deno.build.os === "darwin" ? "dylib" : Deno.build.os === "windows" ? "dll" : "so";
  return `libcoherence_gemm.${ext}`;
}

/**
 * Where `deno task build-native` puts the library, next to its source in this folder; null when this
 * module was not loaded from a file (imported by URL: build it from a clone, and pass its path).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultNativeGemmPath } from "./native_gemm.ts";
 * const p = defaultNativeGemmPath();
 * assert.ok(p === null || p.endsWith("libcoherence_gemm.so") || p.endsWith(".dylib") || p.endsWith(".dll"));
 * ```
 *
 * @category Backend
 */
export function defaultNativeGemmPath(): string | null {
  const url = new URL(`./${nativeGemmFileName()}`, import.meta.url);
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
 * import { sourceHash } from "./native_gemm.ts";
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
  const url = new URL("./native_gemm.c", import.meta.url);
  if (url.protocol !== "file:") return null;
  try {
    return sourceHash(Deno.readTextFileSync(url));
  } catch {
    return null;
  }
}

/** Why {@linkcode loadNativeGemm} found no library, for the backend's notes. */
export let nativeGemmMissing = "";

/**
 * Loads the native GEMM from `path`, or from {@linkcode defaultNativeGemmPath}. A given path that does not
 * load, or is stale (built from another version of `native_gemm.c` than the one beside this module, or not
 * by `tools/build_native.ts`), throws, saying how to build it; for the default, the same cases (and no FFI
 * permission) return null, and {@linkcode nativeGemmMissing} says why.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeGemm } from "./native_gemm.ts";
 * const gemm = loadNativeGemm(); // null until `deno task build-native` has run, or without --allow-ffi
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
export function loadNativeGemm(path?: string): NativeGemm | null {
  const build = "build it with `deno task build-native` (needs a C compiler: apt-get install gcc)";
  let allowed = false;
  try {
    allowed = Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch { /* no permission API: treat as denied */ }
  if (!allowed) {
    if (path) {
      throw new Error(`nativeGemm: loading '${path}' needs the FFI permission: run Deno with --allow-ffi`);
    }
    nativeGemmMissing = "FFI is not permitted";
    return null;
  }
  const file = path ?? defaultNativeGemmPath();
  if (!file) {
    nativeGemmMissing = "this module was not loaded from a file; pass the library's path";
    return null;
  }
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(file, SYMBOLS);
  } catch (e) {
    const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
    if (path) throw new Error(`nativeGemm: could not load '${path}' (${why}); ${build}`);
    nativeGemmMissing = `not built (${file}): ${build}`;
    return null;
  }
  const version = lib.symbols.cl_gemm_version();
  const stamped = lib.symbols.cl_gemm_source_hash();
  const source = currentSourceHash();
  if (version !== NATIVE_GEMM_VERSION || (source !== null && stamped !== source)) {
    lib.close();
    const what = version !== NATIVE_GEMM_VERSION
      ? `version ${version}, this module speaks ${NATIVE_GEMM_VERSION}`
      : "built from another version of native_gemm.c";
    if (path) throw new Error(`nativeGemm: '${path}' is stale (${what}); rebuild: ${build}`);
    nativeGemmMissing = `the build at ${file} is stale (${what}): rebuild with \`deno task build-native\``;
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
 * import { loadNativeGemm, packOperand } from "./native_gemm.ts";
 * const gemm = loadNativeGemm();
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
  gemm: NativeGemm,
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
