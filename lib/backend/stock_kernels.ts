/**
 * The stock tfjs kernel functions, for the adapter's own kernels that call them on `TensorInfo`s.
 *
 * @module
 * @internal Used inside the library; not part of the stable API.
 */
import { tf } from "../deps.ts";

/** A kernel function as the registry holds it. */
export type StockKernel = (
  args: { inputs: object; backend: unknown; attrs?: object },
) => tf.TensorInfo;

/** The registered kernel `name` of `backend`; throws when it is missing. */
export function stockKernel(name: string, backend: string): StockKernel {
  const k = tf.getKernel(name, backend);
  if (!k) throw new Error(`stockKernel: ${backend} kernel ${name} is not registered`);
  return k.kernelFunc as unknown as StockKernel;
}

/** A kernel function on `TensorInfo`s, as our overrides write them. */
export type OwnKernel = (args: KernelArgs) => tf.TensorInfo;

/**
 * Registers a kernel of our own under a new name (one tfjs has not) for `backend`, once: later calls, and
 * calls after another copy of this module registered it, do nothing.
 */
export function registerOwnKernel(name: string, backend: string, kernel: OwnKernel): void {
  if (tf.getKernel(name, backend)) return;
  tf.registerKernel({
    kernelName: name,
    backendName: backend,
    kernelFunc: kernel as unknown as tf.KernelFunc,
  });
}

/**
 * Kernels of ours registered over a backend's stock ones by name, and the way back: the one mechanism the
 * wasm matmul adapter, the webgpu matmuls and the wasm `Identity` share. While installed, `stock(name)` is
 * the replaced kernel (what an override falls back to).
 */
export class KernelOverride {
  #stock: Map<string, tf.KernelConfig> | null = null;

  constructor(readonly backend: string, readonly kernels: Record<string, OwnKernel>) {}

  /** Whether our kernels are registered now. */
  get installed(): boolean {
    return this.#stock !== null;
  }

  /** Registers our kernels (idempotent); false when a stock kernel is missing (backend not bundled). */
  install(): boolean {
    if (this.#stock) return true;
    const stock = new Map<string, tf.KernelConfig>();
    for (const name of Object.keys(this.kernels)) {
      const k = tf.getKernel(name, this.backend);
      if (!k) return false;
      stock.set(name, k);
    }
    for (const [name, k] of stock) {
      tf.unregisterKernel(name, this.backend);
      tf.registerKernel({ ...k, kernelFunc: this.kernels[name] as unknown as tf.KernelFunc });
    }
    this.#stock = stock;
    return true;
  }

  /** Restores the stock kernels (idempotent). */
  uninstall(): void {
    if (!this.#stock) return;
    for (const [name, k] of this.#stock) {
      tf.unregisterKernel(name, this.backend);
      tf.registerKernel(k);
    }
    this.#stock = null;
  }

  /** The stock kernel our `name` replaced; only while installed (our kernels run only then). */
  stock(name: string): OwnKernel {
    const k = this.#stock?.get(name);
    if (!k) throw new Error(`KernelOverride: ${this.backend} ${name} is not overridden now`);
    return k.kernelFunc as unknown as OwnKernel;
  }
}

/** The slice of tfjs-webgpu's `WebGPUBackend` that our WGSL programs use. */
export interface WebGPUProgramBackend {
  runWebGPUProgram(
    program: object,
    inputs: tf.TensorInfo[],
    dtype: tf.DataType,
    uniforms?: { type: string; data: number[] }[],
  ): tf.TensorInfo;
  disposeData(id: tf.TensorInfo["dataId"]): boolean;
  device?: { limits: { maxComputeWorkgroupsPerDimension: number } };
}

/** What the registry passes a kernel. */
export interface KernelArgs {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

/** The inputs, attributes and sizes of a `CoherenceDecodeAttention` call (every backend's kernel). */
export interface DecodeAttentionCall {
  q: tf.TensorInfo;
  k: tf.TensorInfo;
  v: tf.TensorInfo;
  mask?: tf.TensorInfo;
  length: number;
  scale: number;
  /** Rows, query heads, head width, key/value heads, cache capacity. */
  b: number;
  h: number;
  hd: number;
  hkv: number;
  cap: number;
}

/** Unpacks a decode-attention kernel call: q `[B, H, hd]`, k and v `[B, Hkv, C, hd]`, mask, length, scale. */
export function decodeAttentionCall(args: KernelArgs): DecodeAttentionCall {
  const { q, k, v, mask } = args.inputs as {
    q: tf.TensorInfo;
    k: tf.TensorInfo;
    v: tf.TensorInfo;
    mask?: tf.TensorInfo;
  };
  const [b, h, hd] = q.shape;
  const [, hkv, cap] = k.shape;
  return {
    q,
    k,
    v,
    mask,
    length: args.attrs!.length as number,
    scale: args.attrs!.scale as number,
    b,
    h,
    hd,
    hkv,
    cap,
  };
}

/**
 * softmax(scores + mask) over the last axis with `backend`'s stock kernels: `scores` holds `[B·H, L]`
 * values (any shape of that size), `mask` is an additive `[B, 1, L]` or absent. Returns `[B·H, L]`;
 * intermediates go to `temps` for the caller to dispose.
 */
export function maskedSoftmax(
  be: unknown,
  backend: string,
  scores: tf.TensorInfo,
  mask: tf.TensorInfo | undefined,
  dims: { b: number; h: number; length: number },
  temps: tf.TensorInfo[],
): tf.TensorInfo {
  const { b, h, length } = dims;
  const reshape = (x: tf.TensorInfo, shape: number[]) => {
    const r = stockKernel("Reshape", backend)({ inputs: { x }, backend: be, attrs: { shape } });
    temps.push(r);
    return r;
  };
  let logits = scores;
  if (mask) {
    const masked = stockKernel("Add", backend)({
      inputs: { a: reshape(scores, [b, h, length]), b: mask },
      backend: be,
    });
    temps.push(masked);
    logits = masked;
  }
  // Stock wasm Softmax needs a non-negative axis.
  const p = stockKernel("Softmax", backend)({
    inputs: { logits: reshape(logits, [b * h, length]) },
    backend: be,
    attrs: { dim: 1 },
  });
  temps.push(p);
  return p;
}
