/**
 * `doctor()`: what this machine offers the library. Runtime, tfjs, backends, the WebGPU adapter with its
 * features and limits, and, when no adapter is found, what to install (Vulkan loader, glvnd, ICD files).
 *
 * @module
 */
import { tf } from "../deps.ts";
import { adapterName, type BackendName, initBackend, isSoftwareAdapter, requestAdapter } from "./backend.ts";
import { ffiAllowed } from "./native_blas.ts";
import { nativeKernelsMissing } from "./native_kernels.ts";

function envSaysNoBlas(): boolean {
  return readEnv("COHERENCE_BLAS") === "off";
}

/**
 * The WebGPU adapter as the doctor sees it.
 *
 * @category Backend
 */
export interface DoctorAdapter {
  /** Readable name (description, else vendor/architecture/device). */
  name: string;
  /** Raw `adapter.info` fields. */
  vendor: string;
  /** GPU architecture, where reported. */
  architecture: string;
  /** Device id or name, where reported. */
  device: string;
  /** Driver's description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
  description: string;
  /** A software rasteriser: correct but about 1000x too slow for real work. */
  isFallbackAdapter: boolean;
  /** Optional features, sorted (e.g. "shader-f16", "timestamp-query"). */
  features: string[];
  /** Every limit the adapter reports, by name (maxBufferSize, maxStorageBufferBindingSize, ...). */
  limits: Record<string, number>;
}

/**
 * Everything {@linkcode doctor} found.
 *
 * @category Backend
 */
export interface DoctorReport {
  /** Runtime versions and machine. */
  runtime: {
    deno: string;
    v8: string;
    typescript: string;
    os: string;
    arch: string;
    /** Logical CPUs (navigator.hardwareConcurrency). */
    cpus: number;
    /** Total memory in bytes, when readable. */
    memoryBytes?: number;
  };
  /** tfjs package version. */
  tfjs: string;
  /** Backends registered with tfjs. */
  backendsAvailable: string[];
  /** The backend {@linkcode initBackend} chose. */
  backend: BackendName;
  /** Notes from backend selection (fallbacks, software adapters). */
  backendNotes: string[];
  /** Whether `navigator.gpu` exists in this runtime. */
  webgpuApi: boolean;
  /** The adapter, or null when none was found. */
  adapter: DoctorAdapter | null;
  /** Vulkan-related environment variables that are set (VK_DRIVER_FILES, VK_ICD_FILENAMES, ...). */
  vulkanEnv: Record<string, string>;
  /** What to do next, e.g. packages to install when no adapter was found. Empty when all is well. */
  advice: string[];
}

/**
 * Options for {@linkcode doctor}.
 *
 * @category Backend
 */
export interface DoctorOptions {
  /** Backend to select (default "auto", as the library does). */
  backend?: BackendName | "auto";
  /** Print the formatted report to stdout (default false). */
  print?: boolean;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

const LIB_DIRS = [
  "/usr/lib/x86_64-linux-gnu",
  "/usr/lib/aarch64-linux-gnu",
  "/usr/lib64",
  "/usr/lib",
  "/lib64",
];

/** Debian packages that provide the shared libraries Deno's WebGPU (wgpu on Vulkan) loads at runtime. */
const LINUX_LIBS: [lib: string, pkg: string][] = [
  ["libvulkan.so.1", "libvulkan1"],
  ["libEGL.so.1", "libegl1"],
  ["libGL.so.1", "libgl1"],
];

const ICD_DIRS = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"];

/** Advice for a Linux machine without a (hardware) adapter: missing libraries, drivers, NVIDIA ICD. */
function linuxAdvice(adapter: DoctorAdapter | null, env: Record<string, string>): string[] {
  const advice: string[] = [];
  const missing = LINUX_LIBS.filter(([lib]) => !LIB_DIRS.some((d) => exists(`${d}/${lib}`)));
  const nvidia = exists("/proc/driver/nvidia/version") || exists("/dev/nvidia0");
  if (!adapter) {
    const pkgs = [...missing.map(([, p]) => p), "mesa-vulkan-drivers"];
    advice.push(
      `no WebGPU adapter: install the Vulkan loader, glvnd and a Vulkan driver ` +
        `(Debian/Ubuntu: apt-get install ${pkgs.join(" ")})` +
        (missing.length ? `; missing now: ${missing.map(([l]) => l).join(", ")}` : ""),
    );
  }
  if (nvidia && (!adapter || adapter.isFallbackAdapter)) {
    const icd = ICD_DIRS.map((d) => `${d}/nvidia_icd.json`).find(exists);
    advice.push(
      "an NVIDIA driver is loaded but Vulkan does not use it: " +
        (icd
          ? `export VK_DRIVER_FILES=${icd}`
          : "point VK_DRIVER_FILES at the driver's nvidia_icd.json (shipped with the driver, e.g. " +
            "/usr/share/vulkan/icd.d/nvidia_icd.json)") +
        (env.VK_DRIVER_FILES
          ? ` (VK_DRIVER_FILES is set to ${env.VK_DRIVER_FILES}; check the file exists)`
          : ""),
    );
  }
  if (adapter?.isFallbackAdapter && !nvidia) {
    advice.push(
      `only a software adapter (${adapter.name}) is available: the library uses the wasm backend ` +
        "instead; on a machine with a GPU install its Vulkan driver",
    );
  }
  return advice;
}

function describeAdapter(a: GPUAdapter): DoctorAdapter {
  const limits: Record<string, number> = {};
  // GPUSupportedLimits exposes its values as prototype getters: enumerate with for..in.
  for (const key in a.limits) {
    const v = (a.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === "number") limits[key] = v;
  }
  return {
    name: adapterName(a),
    vendor: a.info.vendor ?? "",
    architecture: a.info.architecture ?? "",
    device: a.info.device ?? "",
    description: a.info.description ?? "",
    isFallbackAdapter: isSoftwareAdapter(a),
    features: [...a.features].map(String).sort(),
    limits,
  };
}

/**
 * Inspects the runtime, tfjs, backends and the WebGPU adapter. Selects a backend as the library would
 * (so afterwards that backend is active), and prints the report with `print: true`.
 *
 * @example
 * ```ts
 * import { doctor } from "./doctor.ts";
 * const report = await doctor({ backend: "cpu" });
 * console.log(report.backend, report.runtime.deno, report.adapter?.name ?? "no adapter");
 * ```
 *
 * @category Backend
 */
export async function doctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const webgpuApi = !!(globalThis.navigator as { gpu?: unknown } | undefined)?.gpu;
  const raw = await requestAdapter();
  const adapter = raw ? describeAdapter(raw) : null;
  const info = await initBackend({ backend: options.backend ?? "auto" });
  const vulkanEnv: Record<string, string> = {};
  for (const k of ["VK_DRIVER_FILES", "VK_ICD_FILENAMES", "VK_ADD_DRIVER_FILES", "LD_LIBRARY_PATH"]) {
    const v = readEnv(k);
    if (v) vulkanEnv[k] = v;
  }
  let memoryBytes: number | undefined;
  try {
    memoryBytes = Deno.systemMemoryInfo().total;
  } catch {
    memoryBytes = undefined; // needs --allow-sys
  }
  const advice: string[] = [];
  if (!webgpuApi) {
    advice.push("this Deno has no navigator.gpu: use Deno >= 2.0 (WebGPU needs no flag since 2.x)");
  } else if (Deno.build.os === "linux") advice.push(...linuxAdvice(adapter, vulkanEnv));
  else if (!adapter) advice.push("no WebGPU adapter found: install or update the GPU driver");
  if (info.name === "wasm" && !info.blas && !envSaysNoBlas()) {
    advice.push(
      ffiAllowed()
        ? "no native CBLAS: install OpenBLAS for 5x faster wasm matmuls (Debian/Ubuntu: apt-get install " +
          "libopenblas0)"
        : "wasm matmuls stay on XNNPACK: allow FFI (--allow-ffi or -A) to use a native CBLAS such as OpenBLAS",
    );
  }
  if (info.name === "wasm" && !info.native && ffiAllowed() && readEnv("COHERENCE_NATIVE") !== "off") {
    advice.push(
      `no native kernels (${
        nativeKernelsMissing || "not loaded"
      }): their packed-weight GEMM runs products by weights ` +
        "1.2–1.7x faster than OpenBLAS (bench/gemm_ceiling.ts: batched decoding, prefill)",
    );
  }
  const report: DoctorReport = {
    runtime: {
      deno: Deno.version.deno,
      v8: Deno.version.v8,
      typescript: Deno.version.typescript,
      os: Deno.build.os,
      arch: Deno.build.arch,
      cpus: navigator.hardwareConcurrency,
      memoryBytes,
    },
    tfjs: (tf.version as Record<string, string>)["tfjs"] ?? tf.version_core,
    backendsAvailable: Object.keys((tf.engine() as unknown as { registryFactory: object }).registryFactory)
      .sort(),
    backend: info.name,
    backendNotes: info.notes,
    webgpuApi,
    adapter,
    vulkanEnv,
    advice,
  };
  if (options.print) console.log(formatDoctorReport(report));
  return report;
}

/** The limits worth showing first: the ones that decide how large a model and batch fit. */
const KEY_LIMITS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
];

const BYTE_LIMITS = new Set([
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
]);

function bytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(n % 2 ** 30 ? 2 : 0)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(0)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(0)} KiB`;
  return `${n} B`;
}

/**
 * The report as aligned text.
 *
 * @example
 * ```ts
 * import { doctor, formatDoctorReport } from "./doctor.ts";
 * console.log(formatDoctorReport(await doctor({ backend: "cpu" })));
 * ```
 *
 * @category Backend
 */
export function formatDoctorReport(r: DoctorReport): string {
  const rows: [string, string][] = [
    ["deno", `${r.runtime.deno} (v8 ${r.runtime.v8}, typescript ${r.runtime.typescript})`],
    ["os / arch", `${r.runtime.os} / ${r.runtime.arch}`],
    ["cpus", String(r.runtime.cpus)],
  ];
  if (r.runtime.memoryBytes) rows.push(["memory", bytes(r.runtime.memoryBytes)]);
  rows.push(
    ["tfjs", r.tfjs],
    ["backends", r.backendsAvailable.join(", ")],
    ["backend", r.backend],
    ["webgpu api", r.webgpuApi ? "yes" : "no"],
  );
  if (r.adapter) {
    const a = r.adapter;
    rows.push(
      ["adapter", a.name],
      ["fallback", a.isFallbackAdapter ? "yes (software rasteriser)" : "no"],
      ["features", a.features.join(", ") || "(none)"],
    );
    for (const k of KEY_LIMITS) {
      if (k in a.limits) rows.push([k, BYTE_LIMITS.has(k) ? bytes(a.limits[k]) : String(a.limits[k])]);
    }
  } else rows.push(["adapter", "none found"]);
  for (const [k, v] of Object.entries(r.vulkanEnv)) rows.push([k, v]);
  for (const n of r.backendNotes) rows.push(["note", n]);
  for (const a of r.advice) rows.push(["advice", a]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return ["Coherence Lab doctor", ...rows.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join("\n");
}
