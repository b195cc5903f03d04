/**
 * Picking and initialising the tfjs backend: `webgpu` on a real GPU adapter, else `wasm`, else `cpu`.
 *
 * @module
 */
import { checkChoice, checkOptionKeys } from "../options.ts";
import { setWasmPaths, tf, WASM_DIST_URL } from "../deps.ts";
import {
  installWasmMatMul,
  setWasmNativeBlas,
  setWasmNativeKernels,
  uninstallWasmMatMul,
} from "./wasm_matmul.ts";
import { loadNativeBlas, type NativeBlas } from "./native_blas.ts";
import { loadNativeKernels, type NativeKernels, nativeKernelsMissing } from "./native_kernels.ts";
import { installWasmIdentity } from "./wasm_identity.ts";
import { installWasmGather } from "./wasm_gather.ts";
import { installWebGPUMatMul, uninstallWebGPUMatMul } from "./webgpu_matmul.ts";

/**
 * The backends the library knows how to start.
 *
 * @category Backend
 */
export type BackendName = "webgpu" | "wasm" | "cpu";

/**
 * What {@linkcode initBackend} chose and why.
 *
 * @category Backend
 */
export interface BackendInfo {
  /** The backend now active in tfjs. */
  name: BackendName;
  /** The WebGPU adapter's description, when the backend is webgpu. */
  adapter?: string;
  /** True when the WebGPU adapter is a software (fallback) adapter such as Mesa llvmpipe. */
  isFallbackAdapter?: boolean;
  /** Human-readable notes: why a backend was skipped, warnings about software adapters. */
  notes: string[];
  /** On wasm, the native CBLAS library its matmuls run on (absent: XNNPACK). */
  blas?: string;
  /** On wasm, the native kernels' library (`./native_kernels.ts`: packed GEMM, GELU), when loaded. */
  native?: string;
}

/**
 * Options for {@linkcode initBackend}.
 *
 * @category Backend
 */
export interface InitBackendOptions {
  /** `"auto"` (default) picks webgpu on a hardware adapter, else wasm, else cpu. Or name one. */
  backend?: BackendName | "auto";
  /** Print notes (fallbacks, software adapters) to stderr. Default false. */
  verbose?: boolean;
  /**
   * On wasm, route transposed and batched matmuls through XNNPACK (`./wasm_matmul.ts`). Default true; false
   * (or the environment variable `COHERENCE_WASM_MATMUL=stock`) keeps tfjs' stock kernels.
   */
  wasmMatMul?: boolean;
  /**
   * On webgpu, our WGSL kernels: `./webgpu_matmul.ts` for every matmul, and the fused norms and attention
   * where the model code asks for them. true: all of them; false (or `COHERENCE_WEBGPU_KERNELS=stock`):
   * tfjs' stock kernels only, for comparison. Default (or `COHERENCE_WEBGPU_KERNELS=ours`): all of them on
   * a hardware adapter; on a software adapter (llvmpipe) the fused norms and attention but stock matmuls,
   * which ran faster there (BENCHMARKS.md: our matmul programs are laid out for GPU memory, and a CPU
   * renderer pays for their lanes and barriers).
   */
  webgpuKernels?: boolean;
  /**
   * On wasm, run the matmuls on a native CBLAS through Deno's FFI (`./native_blas.ts`: OpenBLAS does 4–11x
   * XNNPACK's GFLOP/s on the build machine, `bench/gemm_ceiling.ts`). Default: when the FFI permission is granted and a library is
   * found, else XNNPACK, said in `notes`. A string is the library's path (an error if it does not load);
   * true insists (an error when none is found); false (or `COHERENCE_BLAS=off`) keeps XNNPACK.
   * `COHERENCE_BLAS=/path/lib.so` names the library.
   */
  nativeBlas?: boolean | string;
  /** Threads of the native CBLAS (OpenBLAS). Default 1, like the wasm backend itself. */
  blasThreads?: number;
  /**
   * On wasm, run our native kernels (`./native_kernels.ts`, through Deno's FFI): every product of up to 256
   * rows with one right operand on a GEMM against a packed copy of that operand, made once and kept while
   * its tensor lives (1.7x OpenBLAS at 16 rows, 1.2x at 128, over a GPT-2-small forward's weights), and
   * GELU in one pass at inference. Default: when `deno task build-native` has built the library and FFI is
   * granted, else not, said in `notes`. A string is the library's path (an error if it does not load);
   * true insists; false (or `COHERENCE_NATIVE=off`) keeps OpenBLAS, XNNPACK and the stock kernels.
   * `COHERENCE_NATIVE=/path/lib.so` names the library.
   */
  nativeKernels?: boolean | string;
  /**
   * Most bytes of packed copies the native GEMM keeps (outside the wasm heap; a copy is freed with its
   * tensor). Past it, operands are packed for one product only: slower, the same results. Default 2 GiB.
   */
  packedWeightBytes?: number;
}

/**
 * One native library chooser, as the options ask: a path (loaded once per path), true (the default search,
 * an error when it finds nothing), false or the environment variable `off` (none), or unset (the default
 * search, or none).
 */
class NativeChoice<L> {
  #auto: L | null | undefined; // undefined: not looked for yet
  #byPath = new Map<string, L>();
  constructor(
    readonly envName: string,
    readonly load: (path?: string) => L | null,
    readonly missing: () => string,
  ) {}

  choose(option: boolean | string | undefined): L | null {
    let want = option;
    if (want === undefined) {
      const env = envValue(this.envName);
      want = !env ? undefined : env === "off" ? false : env;
    }
    if (want === false) return null;
    if (typeof want === "string") {
      const known = this.#byPath.get(want);
      if (known) return known;
      const lib = this.load(want)!;
      this.#byPath.set(want, lib);
      return lib;
    }
    if (this.#auto === undefined) this.#auto = this.load();
    if (!this.#auto && want === true) throw new Error(this.missing());
    return this.#auto;
  }
}

const nativeKernelsChoice = new NativeChoice<NativeKernels>(
  "COHERENCE_NATIVE",
  loadNativeKernels,
  () => `nativeKernels: ${nativeKernelsMissing}`,
);
const blasChoice = new NativeChoice<NativeBlas>(
  "COHERENCE_BLAS",
  loadNativeBlas,
  () =>
    "nativeBlas: no CBLAS found (tried libopenblas and Accelerate; needs --allow-ffi). Install OpenBLAS " +
    "(Debian/Ubuntu: apt-get install libopenblas0), pass its path, or drop nativeBlas",
);

function envValue(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission
  }
}

let webgpuKernels = true;

/**
 * Whether our own webgpu kernels are switched on (the `webgpuKernels` option of {@linkcode initBackend}).
 * The fused norm and attention paths ask this before they run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { webgpuKernelsEnabled } from "./backend.ts";
 * assert.equal(typeof webgpuKernelsEnabled(), "boolean");
 * ```
 *
 * @category Backend
 */
export function webgpuKernelsEnabled(): boolean {
  return webgpuKernels;
}

let current: BackendInfo | undefined;

/**
 * Requests the WebGPU adapter, or returns null when the runtime has none.
 *
 * @category Backend
 */
export async function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
  if (!gpu) return null;
  try {
    return await gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch {
    return null;
  }
}

/**
 * Whether an adapter is a software one. Deno 2.9 reports `isFallbackAdapter` on `adapter.info` (newer
 * spec) or not at all, so known software rasterisers are also recognised by name.
 *
 * @category Backend
 */
export function isSoftwareAdapter(a: GPUAdapter): boolean {
  const flag = (a.info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
    (a as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  if (flag) return true;
  return /llvmpipe|lavapipe|swiftshader|softpipe|software/i.test(adapterName(a));
}

/**
 * A readable name for an adapter: its description, else vendor/architecture/device.
 *
 * @category Backend
 */
export function adapterName(a: GPUAdapter): string {
  const info = a.info;
  return info.description || [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unknown adapter";
}

async function trySet(name: BackendName): Promise<boolean> {
  if (name === "wasm") setWasmPaths(WASM_DIST_URL);
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

/**
 * Selects and initialises a tfjs backend. `"auto"` takes webgpu only on a hardware adapter (a software
 * adapter is about 1000x slower than real work needs), then wasm, then cpu. An explicit choice is
 * honoured or throws; an explicit `webgpu` on a software adapter works and says so in `notes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "./backend.ts";
 * const info = await initBackend({ backend: "cpu" });
 * assert.equal(info.name, "cpu");
 * ```
 *
 * @category Backend
 */
export async function initBackend(options: InitBackendOptions = {}): Promise<BackendInfo> {
  checkOptionKeys(
    options,
    [
      "backend",
      "verbose",
      "wasmMatMul",
      "webgpuKernels",
      "nativeBlas",
      "blasThreads",
      "nativeKernels",
      "packedWeightBytes",
    ],
    "initBackend",
  );
  const threads = options.blasThreads ?? 1;
  if (!(Number.isInteger(threads) && threads >= 1)) {
    throw new RangeError(`initBackend: blasThreads must be a positive integer, got ${options.blasThreads}`);
  }
  const packedLimit = options.packedWeightBytes ?? 2 * 2 ** 30;
  if (!(Number.isFinite(packedLimit) && packedLimit >= 0)) {
    throw new RangeError(
      `initBackend: packedWeightBytes must be a number of bytes >= 0, got ${options.packedWeightBytes}`,
    );
  }
  const want = checkChoice(options.backend ?? "auto", ["auto", "webgpu", "wasm", "cpu"], "backend");
  // PROD silences tfjs' console chatter (the "running in Node.js" banner, platform notices).
  tf.env().set("PROD", true);
  const notes: string[] = [];
  let info: BackendInfo | undefined;
  if (want === "webgpu" || want === "auto") {
    const adapter = await requestAdapter();
    if (!adapter) {
      notes.push("no WebGPU adapter found (run `deno task doctor` for what to install)");
      if (want === "webgpu") {
        throw new Error("backend 'webgpu' requested but no WebGPU adapter was found; " + DOCTOR_HINT);
      }
    } else if (isSoftwareAdapter(adapter) && want === "auto") {
      notes.push(`WebGPU adapter '${adapterName(adapter)}' is a software fallback: skipped in auto mode`);
    } else {
      if (isSoftwareAdapter(adapter)) {
        notes.push(`WebGPU adapter '${adapterName(adapter)}' is a software fallback: correct but very slow`);
      }
      const env = envValue("COHERENCE_WEBGPU_KERNELS");
      const choice = options.webgpuKernels ?? (env === "stock" ? false : env === "ours" ? true : undefined);
      webgpuKernels = choice !== false;
      if (choice ?? !isSoftwareAdapter(adapter)) installWebGPUMatMul();
      else uninstallWebGPUMatMul();
      if (await trySet("webgpu")) {
        info = {
          name: "webgpu",
          adapter: adapterName(adapter),
          isFallbackAdapter: isSoftwareAdapter(adapter),
          notes,
        };
      } else if (want === "webgpu") {
        throw new Error("backend 'webgpu' failed to initialise on adapter " + adapterName(adapter));
      }
    }
  }
  if (!info && (want === "wasm" || want === "auto")) {
    installWasmIdentity(); // zero-copy tape clones (./wasm_identity.ts)
    installWasmGather(); // embedding lookups as row copies (./wasm_gather.ts)
    const routed = options.wasmMatMul ?? envValue("COHERENCE_WASM_MATMUL") !== "stock";
    let blas: NativeBlas | null = null;
    let gemm: NativeKernels | null = null;
    if (routed) {
      installWasmMatMul();
      blas = blasChoice.choose(options.nativeBlas);
      blas?.setThreads(threads);
      notes.push(
        blas
          ? `wasm matmuls on the native CBLAS ${blas.path} (${threads} thread${threads > 1 ? "s" : ""})`
          : "wasm matmuls on XNNPACK (no native CBLAS: see initBackend's nativeBlas)",
      );
      gemm = nativeKernelsChoice.choose(options.nativeKernels);
      notes.push(
        gemm
          ? `native kernels (packed-weight GEMM, GELU, decode attention) from ${gemm.path}`
          : `no native kernels (${
            options.nativeKernels === false || envValue("COHERENCE_NATIVE") === "off"
              ? "switched off"
              : nativeKernelsMissing
          })`,
      );
    } else uninstallWasmMatMul();
    setWasmNativeBlas(blas);
    setWasmNativeKernels(gemm, packedLimit);
    if (await trySet("wasm")) {
      info = {
        name: "wasm",
        notes,
        ...(blas ? { blas: blas.path } : {}),
        ...(gemm ? { native: gemm.path } : {}),
      };
    } else if (want === "wasm") {
      throw new Error(`backend 'wasm' failed to initialise (wasm files at ${WASM_DIST_URL})`);
    } else notes.push("wasm backend failed to initialise");
  }
  if (!info && (want === "cpu" || want === "auto")) {
    if (!(await trySet("cpu"))) throw new Error("backend 'cpu' failed to initialise");
    info = { name: "cpu", notes };
  }
  if (!info) throw new Error(`unknown backend '${want}': use one of auto, webgpu, wasm, cpu`);
  await tf.ready();
  if (options.verbose) { for (const n of notes) console.error(`[backend] ${n}`); }
  current = info;
  return info;
}

/**
 * The backend chosen by the last {@linkcode initBackend} call, if any.
 *
 * @category Backend
 */
export function currentBackend(): BackendInfo | undefined {
  return current;
}

let lazy: Promise<BackendInfo> | undefined;

function engineHasBackend(): boolean {
  // A backend someone set directly with tf.setBackend counts as a choice too.
  return (tf.engine() as unknown as { backendInstance?: unknown }).backendInstance != null;
}

function announce(info: BackendInfo, why: string): void {
  console.error(`[backend] using ${info.name}${info.adapter ? ` (${info.adapter})` : ""}: ${why}`);
}

/**
 * The active backend, starting the default one ({@linkcode initBackend} with `"auto"`) on first use and
 * saying once which it picked. Entry points that upload tensors (loading, training, generation) call it,
 * so `initBackend()` is only needed to choose a backend explicitly.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ensureBackend, initBackend } from "./backend.ts";
 * await initBackend({ backend: "cpu" });
 * assert.equal((await ensureBackend()).name, "cpu"); // an explicit choice is kept
 * ```
 *
 * @category Backend
 */
export function ensureBackend(): Promise<BackendInfo> {
  if (current) return Promise.resolve(current);
  if (engineHasBackend()) {
    current = { name: tf.getBackend() as BackendName, notes: ["set directly with tf.setBackend"] };
    return Promise.resolve(current);
  }
  lazy ??= initBackend().then((info) => {
    announce(info, "no backend was chosen, so the default was started (initBackend() picks one)");
    return info;
  }, (err) => {
    lazy = undefined;
    throw err;
  });
  return lazy;
}

/**
 * For synchronous entry points (building a model from scratch): when no backend is active yet, starts
 * `cpu`, the only backend that starts without waiting, and says so once. Await {@linkcode initBackend} or
 * {@linkcode ensureBackend} first to get wasm or webgpu.
 *
 * @category Backend
 * @internal Used inside the library; not part of the stable API.
 */
export function ensureBackendSync(): void {
  if (current || engineHasBackend()) return;
  tf.env().set("PROD", true);
  // cpu's factory is synchronous, so the engine has it as soon as setBackend returns.
  void tf.setBackend("cpu");
  current = { name: "cpu", notes: ["started synchronously: no backend was chosen before a model was built"] };
  announce(
    current,
    "no backend was chosen before a model was built (await initBackend() for wasm or webgpu)",
  );
}

/**
 * What to install when Deno finds no WebGPU adapter.
 *
 * @category Backend
 * @internal Used inside the library; not part of the stable API.
 */
export const DOCTOR_HINT: string =
  "install the Vulkan loader and glvnd libraries (Debian: apt-get install libvulkan1 mesa-vulkan-drivers libegl1 libgl1) " +
  "and, on NVIDIA, point VK_DRIVER_FILES at the driver's ICD json";
