/**
 * A native CBLAS (OpenBLAS, Accelerate, any library exporting `cblas_sgemm`) loaded through Deno's FFI, for
 * the wasm backend's matrix products.
 *
 * tfjs-wasm's best GEMM (XNNPACK, 128-bit wasm SIMD, no FMA) reaches 14–37 GFLOP/s on one core of the
 * build machine; OpenBLAS reaches 120–160 on the same core (AVX-512 FMA; `bench/gemm_ceiling.ts`), which is
 * where PyTorch's speed comes from. `cblas_sgemm` reads and writes tfjs-wasm's heap in place: operands
 * are the tensors' own buffers (transposes are flags, batches a loop), the result a fresh heap tensor.
 * Loading needs the
 * FFI permission (`--allow-ffi`, or `-A`); without it, or without a library, the wasm backend keeps
 * XNNPACK (see `initBackend`'s `nativeBlas`).
 *
 * @module
 */

/**
 * A loaded CBLAS: row-major single-precision GEMM on raw pointers.
 *
 * @category Backend
 */
export interface NativeBlas {
  /** The library path that was loaded. */
  path: string;
  /**
   * C = A·B + beta·C (row-major), with `transA`/`transB` meaning the operand is stored transposed; `a`, `b`,
   * `c` are byte addresses, `lda`, `ldb`, `ldc` row strides in elements; `beta` defaults to 0.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    a: bigint,
    lda: number,
    b: bigint,
    ldb: number,
    c: bigint,
    ldc: number,
    beta?: number,
  ): void;
  /** Threads the library may use (OpenBLAS only; a no-op elsewhere). */
  setThreads(n: number): void;
  /** Unloads the library. */
  close(): void;
}

/**
 * Where a CBLAS is looked for, in order, when no path is given.
 *
 * @category Backend
 */
export const NATIVE_BLAS_CANDIDATES: readonly string[] = [
  "libopenblas.so.0",
  "libopenblas.so",
  "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "/System/Library/Frameworks/Accelerate.framework/Accelerate",
  "libopenblas.dll",
];

const SYMBOLS = {
  cblas_sgemm: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "pointer",
      "i32",
      "pointer",
      "i32",
      "f32",
      "pointer",
      "i32",
    ],
    result: "void",
  },
} as const;

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

/**
 * Whether this process may load native libraries (the FFI permission is granted; never prompts).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ffiAllowed } from "./native_blas.ts";
 * assert.equal(typeof ffiAllowed(), "boolean");
 * ```
 *
 * @category Backend
 */
export function ffiAllowed(): boolean {
  try {
    return Deno.permissions.querySync({ name: "ffi" }).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Loads a CBLAS from `path`, or from the first of {@linkcode NATIVE_BLAS_CANDIDATES} that opens. Throws
 * with what to do when a given path cannot be loaded or lacks `cblas_sgemm`; returns null when none of the
 * candidates loads (or FFI is not permitted) and no path was given.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeBlas } from "./native_blas.ts";
 * const blas = loadNativeBlas(); // null where no CBLAS is installed or FFI is not allowed
 * if (blas) {
 *   const a = new Float32Array([1, 2, 3, 4]), b = new Float32Array([5, 6, 7, 8]), c = new Float32Array(4);
 *   const p = (x: Float32Array) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(x)));
 *   blas.sgemm(false, false, 2, 2, 2, p(a), 2, p(b), 2, p(c), 2);
 *   assert.deepEqual([...c], [19, 22, 43, 50]);
 *   blas.close();
 * }
 * ```
 *
 * @category Backend
 */
export function loadNativeBlas(path?: string): NativeBlas | null {
  if (!ffiAllowed()) {
    if (path) {
      throw new Error(
        `nativeBlas: loading '${path}' needs the FFI permission: run Deno with --allow-ffi (or -A)`,
      );
    }
    return null;
  }
  const tried: string[] = [];
  for (const p of path ? [path] : NATIVE_BLAS_CANDIDATES) {
    let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
    try {
      lib = Deno.dlopen(p, SYMBOLS);
    } catch (e) {
      tried.push(`${p}: ${e instanceof Error ? e.message.split("\n")[0] : e}`);
      continue;
    }
    return wrap(p, lib);
  }
  if (path) {
    throw new Error(
      `nativeBlas: could not load a CBLAS with cblas_sgemm from '${path}' (${tried.join("; ")}). ` +
        "Install OpenBLAS (Debian/Ubuntu: apt-get install libopenblas0; macOS: Accelerate is built in), " +
        "pass another library's path, or nativeBlas: false",
    );
  }
  return null;
}

function wrap(path: string, lib: Deno.DynamicLibrary<typeof SYMBOLS>): NativeBlas {
  // OpenBLAS exports its thread control; other libraries take their own environment variables.
  let setThreads: (n: number) => void = () => {};
  let extra:
    | Deno.DynamicLibrary<{ openblas_set_num_threads: { parameters: ["i32"]; result: "void" } }>
    | null = null;
  try {
    extra = Deno.dlopen(path, { openblas_set_num_threads: { parameters: ["i32"], result: "void" } });
    const set = extra.symbols.openblas_set_num_threads;
    setThreads = (n) => set(n);
  } catch { /* not OpenBLAS */ }
  const ptr = (x: bigint) => Deno.UnsafePointer.create(x);
  return {
    path,
    sgemm(transA, transB, m, n, k, a, lda, b, ldb, c, ldc, beta = 0) {
      lib.symbols.cblas_sgemm(
        ROW_MAJOR,
        transA ? TRANS : NO_TRANS,
        transB ? TRANS : NO_TRANS,
        m,
        n,
        k,
        1,
        ptr(a),
        lda,
        ptr(b),
        ldb,
        beta,
        ptr(c),
        ldc,
      );
    },
    setThreads,
    close() {
      extra?.close();
      lib.close();
    },
  };
}
