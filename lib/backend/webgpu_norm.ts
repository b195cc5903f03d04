/**
 * Fused LayerNorm and RMSNorm on the webgpu backend: one WGSL program, one workgroup per row, that reduces
 * the row's statistics in workgroup memory and writes the normalised row times the gain (plus the bias) in
 * a single launch, where the composition of stock ops in `lib/nn/norm.ts` takes six to eight. Registered
 * lazily as the webgpu kernels `CoherenceLayerNorm` and `CoherenceRmsNorm`; {@linkcode fusedLayerNorm} and
 * {@linkcode fusedRmsNorm} wrap them in `tf.customGrad` with the analytic backward in ordinary tf ops, so
 * training goes through them too. Every other backend keeps the stock composition (they return null).
 *
 * @module
 * @internal Used inside the library; not part of the stable API.
 */
import { tf } from "../deps.ts";
import type { Tensor } from "../tensor_types.ts";
import {
  type KernelArgs,
  registerOwnKernel,
  stockKernel,
  type WebGPUProgramBackend,
} from "./stock_kernels.ts";
import { webgpuKernelsEnabled } from "./backend.ts";

type TensorInfo = tf.TensorInfo;

/** The kernels' names in tfjs' registry. */
const LAYER_NORM = "CoherenceLayerNorm";
const RMS_NORM = "CoherenceRmsNorm";

/**
 * Threads per workgroup (one workgroup normalises one row); a power of two for the tree reduction. 64 beat
 * 128 and 256 on llvmpipe ([512, 768]: 30, 41, 82 ms); not yet measured on a hardware GPU.
 */
const WG = 64;

let calls = 0;

/**
 * How many times a fused norm kernel ran since the last reset (tests use it to check that the webgpu path
 * is really taken, and that other backends decline it).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fusedNormCalls } from "./webgpu_norm.ts";
 * fusedNormCalls(true); // reset
 * assert.equal(fusedNormCalls(), 0);
 * ```
 *
 * @category Backend
 */
export function fusedNormCalls(reset = false): number {
  const n = calls;
  if (reset) calls = 0;
  return n;
}

/**
 * The WGSL body. Statistics are two-pass in fp32; LayerNorm's first pass sums `x - x[row, 0]` rather than
 * `x`, so a large common offset (x + 1000) cancels exactly before any rounding and the mean keeps its
 * precision. The row index comes from the workgroup id (tfjs lays a dispatch over 65535 rows out over x/y/z);
 * workgroups past the last row still reach every barrier (uniform control flow) but load and store nothing.
 */
function userCode(kind: "layer" | "rms", bias: boolean): string {
  const centre = kind === "layer";
  const out = bias ? "d * rstd * gain[j] + bias[j]" : "d * rstd * gain[j]";
  return `
    var<workgroup> normPartial : array<f32, ${WG}>;

    // The sum of every thread's v over the workgroup; every thread must call it (it has barriers).
    fn normRowSum(v : f32) -> f32 {
      let li = i32(localIndex);
      normPartial[li] = v;
      workgroupBarrier();
      for (var s = ${WG / 2}; s > 0; s = s >> 1u) {
        if (li < s) {
          normPartial[li] = normPartial[li] + normPartial[li + s];
        }
        workgroupBarrier();
      }
      let total = normPartial[0];
      workgroupBarrier(); // everyone has read the total before normPartial is reused
      return total;
    }

    fn main(index : i32) {
      let li = i32(localIndex);
      let row = i32(workgroupId.z * numWorkgroups.x * numWorkgroups.y +
                    workgroupId.y * numWorkgroups.x + workgroupId.x);
      let width = uniforms.width;
      let valid = row < uniforms.rows;
      let base = row * width;
      var shift = 0.0;
      ${centre ? "if (valid) { shift = x[base]; }" : ""}
      var s = 0.0;
      if (valid) {
        for (var j = li; j < width; j = j + ${WG}) {
          ${centre ? "s = s + (x[base + j] - shift);" : "s = s + x[base + j] * x[base + j];"}
        }
      }
      ${
    centre
      ? `let mean = normRowSum(s) / f32(width);
      var q = 0.0;
      if (valid) {
        for (var j = li; j < width; j = j + ${WG}) {
          let d = (x[base + j] - shift) - mean;
          q = q + d * d;
        }
      }
      let rstd = 1.0 / sqrt(normRowSum(q) / f32(width) + uniforms.eps);`
      : `let mean = 0.0;
      let rstd = 1.0 / sqrt(normRowSum(s) / f32(width) + uniforms.eps);`
  }
      if (valid) {
        for (var j = li; j < width; j = j + ${WG}) {
          let d = (x[base + j] - shift) - mean;
          result[base + j] = ${out};
        }
      }
    }`;
}

/** One row per workgroup over `[rows, width]` (tfjs-webgpu's program shape). */
function program(kind: "layer" | "rms", bias: boolean, rows: number, width: number): object {
  const variableNames = bias ? ["x", "gain", "bias"] : ["x", "gain"];
  return {
    variableNames,
    outputShape: [rows, width],
    shaderKey: `coherence${kind === "layer" ? "LayerNorm" : "RmsNorm"}${bias ? "Bias" : ""}`,
    dispatchLayout: { x: [0, 1] },
    dispatch: [rows, 1, 1],
    workgroupSize: [WG, 1, 1],
    uniforms: "rows : i32, width : i32, eps : f32,",
    getUserCode: () => userCode(kind, bias),
  };
}

/** The kernel: x of any rank (normalised over its last axis), gain and optional bias `[width]`; attr eps. */
function normKernel(kind: "layer" | "rms"): (args: KernelArgs) => TensorInfo {
  return (args) => {
    const be = args.backend as WebGPUProgramBackend;
    const { x, gain, bias } = args.inputs as { x: TensorInfo; gain: TensorInfo; bias?: TensorInfo };
    const eps = args.attrs!.eps as number;
    const width = x.shape[x.shape.length - 1];
    const rows = x.shape.reduce((a, b) => a * b, 1) / width;
    // The program indexes flat memory, so x is bound as [rows, width] (the same buffer; no copy).
    const x2: TensorInfo = { dataId: x.dataId, shape: [rows, width], dtype: x.dtype };
    const inputs = bias ? [x2, gain, bias] : [x2, gain];
    const y = be.runWebGPUProgram(program(kind, !!bias, rows, width), inputs, "float32", [
      { type: "int32", data: [rows] },
      { type: "int32", data: [width] },
      { type: "float32", data: [eps] },
    ]);
    try {
      return stockKernel("Reshape", "webgpu")({ inputs: { x: y }, backend: be, attrs: { shape: x.shape } });
    } finally {
      be.disposeData(y.dataId); // the reshape holds its own reference
    }
  };
}

function register(): void {
  registerOwnKernel(LAYER_NORM, "webgpu", normKernel("layer"));
  registerOwnKernel(RMS_NORM, "webgpu", normKernel("rms"));
}

/** Whether the fused kernel takes these tensors: webgpu, float32, a non-empty last axis, `[width]` params. */
function applies(x: Tensor, params: (Tensor | undefined)[]): boolean {
  if (
    tf.getBackend() !== "webgpu" || !webgpuKernelsEnabled() || x.dtype !== "float32" || x.rank < 1 ||
    x.size === 0
  ) return false;
  const width = x.shape[x.rank - 1];
  return params.every((p) => !p || (p.dtype === "float32" && p.rank === 1 && p.shape[0] === width));
}

/**
 * Sums each of `ts` (shaped like x) over every axis but the last: the gradients of `[width]` parameters.
 * As one row of ones times the `[rows, width]` matrix: tfjs-webgpu sums over a leading axis by a transpose
 * and a reduction, about 9x slower than this product on llvmpipe ([512, 768]). A rank-1 t is cloned, not
 * returned, since it may be the upstream gradient, which the engine disposes on its own.
 */
function sumRows(...ts: Tensor[]): Tensor[] {
  const width = ts[0].shape[ts[0].rank - 1];
  if (ts[0].rank === 1) return ts.map((t) => tf.clone(t));
  const ones = tf.ones([1, ts[0].size / width]);
  return ts.map((t) => tf.reshape(tf.matMul(ones, tf.reshape(t, [-1, width])), [width]));
}

/**
 * LayerNorm over the last axis, `(x - mean) / sqrt(var + eps) * gain + bias` with the biased variance, as
 * one webgpu kernel launch, differentiable (analytic backward: with x̂ the normalised input, σ = sqrt(var +
 * eps) and gy = gain·dy, dx = (gy − mean(gy) − x̂·mean(gy·x̂)) / σ, dgain = Σ_rows dy·x̂, dbias = Σ_rows dy).
 * Returns null where the kernel does not apply (another backend, non-float32 tensors, an empty x, a gain
 * or bias that is not `[width]`), so the caller takes the stock composition.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { fusedLayerNorm } from "./webgpu_norm.ts";
 * await tf.setBackend("cpu");
 * assert.equal(fusedLayerNorm(tf.ones([2, 3]), tf.ones([3]), tf.zeros([3]), 1e-5), null); // cpu: not here
 * ```
 *
 * @category Backend
 */
export function fusedLayerNorm<T extends Tensor>(
  x: T,
  gain: Tensor,
  bias: Tensor | undefined,
  eps: number,
): T | null {
  if (!applies(x, [gain, bias])) return null;
  register();
  calls++;
  const forward = (xs: Tensor, g: Tensor, b?: Tensor): Tensor =>
    tf.engine().runKernel(LAYER_NORM, b ? { x: xs, gain: g, bias: b } : { x: xs, gain: g }, {
      eps,
    }) as Tensor;
  // The backward recomputes x̂ and 1/σ with stock ops, centring on each row's first element first (as the
  // kernel does), so that a large common offset cancels exactly and x̂ keeps the kernel's precision.
  const backward = (dy: Tensor, xs: Tensor, g: Tensor, withBias: boolean): Tensor[] => {
    const shifted = tf.sub(xs, tf.slice(xs, new Array(xs.rank).fill(0), [...xs.shape.slice(0, -1), 1]));
    const centred = tf.sub(shifted, tf.mean(shifted, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps));
    const xhat = tf.mul(centred, rstd);
    const gy = tf.mul(dy, g);
    const dx = tf.mul(
      tf.sub(tf.sub(gy, tf.mean(gy, -1, true)), tf.mul(xhat, tf.mean(tf.mul(gy, xhat), -1, true))),
      rstd,
    );
    return [dx, ...(withBias ? sumRows(tf.mul(dy, xhat), dy) : sumRows(tf.mul(dy, xhat)))];
  };
  if (bias) {
    const f = tf.customGrad((xs, g, b, save) => {
      (save as tf.GradSaveFunc)([xs as Tensor, g as Tensor]);
      return {
        value: forward(xs as Tensor, g as Tensor, b as Tensor),
        gradFunc: (dy: Tensor, [sx, sg]: Tensor[]) => backward(dy, sx, sg, true),
      };
    });
    return f(x, gain, bias) as T;
  }
  const f = tf.customGrad((xs, g, save) => {
    (save as tf.GradSaveFunc)([xs as Tensor, g as Tensor]);
    return {
      value: forward(xs as Tensor, g as Tensor),
      gradFunc: (dy: Tensor, [sx, sg]: Tensor[]) => backward(dy, sx, sg, false),
    };
  });
  return f(x, gain) as T;
}

/**
 * RMSNorm over the last axis, `x / sqrt(mean(x²) + eps) * gain` (the gain used as is, not `1 + gain`), as
 * one webgpu kernel launch, differentiable (analytic backward: with rms = sqrt(mean(x²) + eps), x̂ = x / rms
 * and gy = gain·dy, dx = (gy − x̂·mean(gy·x̂)) / rms, dgain = Σ_rows dy·x̂). Returns null where the kernel
 * does not apply (another backend, non-float32 tensors, an empty x, a gain that is not `[width]`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import { fusedRmsNorm } from "./webgpu_norm.ts";
 * await tf.setBackend("cpu");
 * assert.equal(fusedRmsNorm(tf.ones([2, 3]), tf.ones([3]), 1e-6), null); // cpu: not here
 * ```
 *
 * @category Backend
 */
export function fusedRmsNorm<T extends Tensor>(x: T, gain: Tensor, eps: number): T | null {
  if (!applies(x, [gain])) return null;
  register();
  calls++;
  const f = tf.customGrad((xs, g, save) => {
    (save as tf.GradSaveFunc)([xs as Tensor, g as Tensor]);
    return {
      value: tf.engine().runKernel(RMS_NORM, { x: xs as Tensor, gain: g as Tensor }, { eps }) as Tensor,
      gradFunc: (dy: Tensor, [sx, sg]: Tensor[]) => {
        const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(sx), -1, true), eps));
        const xhat = tf.mul(sx, rstd);
        const gy = tf.mul(dy, sg);
        const dx = tf.mul(tf.sub(gy, tf.mul(xhat, tf.mean(tf.mul(gy, xhat), -1, true))), rstd);
        return [dx, ...sumRows(tf.mul(dy, xhat))];
      },
    };
  });
  return f(x, gain) as T;
}
