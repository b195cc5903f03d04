/**
 * One-token decode attention on the webgpu backend: two WGSL programs that read a preallocated KV cache
 * buffer `[B, Hkv, capacity, hd]` in place (scores q·kᵀ over the first L columns; then the weighted sum of
 * values), with tfjs-webgpu's own mask add and softmax between them. Registered as the webgpu kernel
 * `CoherenceDecodeAttention` by `decodeAttention` (lib/backend/decode_attention.ts), the only caller.
 *
 * @module
 * @internal Used inside the library; not part of the stable API.
 */
import type { tf } from "../deps.ts";
import {
  decodeAttentionCall,
  type KernelArgs,
  maskedSoftmax,
  stockKernel,
  type WebGPUProgramBackend,
} from "./stock_kernels.ts";

type TensorInfo = tf.TensorInfo;

/** The sizes every program takes as uniforms, in this order. */
const UNIFORMS = "heads : i32, group : i32, kvHeads : i32, cap : i32, hd : i32, len : i32, scale : f32,";

/** A flat program over `outputShape` with the uniforms above (tfjs-webgpu's program shape). */
function program(key: string, variableNames: string[], outputShape: number[], body: string): object {
  const workgroupSize = [64, 1, 1];
  const size = outputShape.reduce((a, b) => a * b, 1);
  return {
    variableNames,
    outputShape,
    shaderKey: key,
    dispatchLayout: { x: outputShape.map((_, i) => i) },
    dispatch: [Math.ceil(size / workgroupSize[0]), 1, 1],
    workgroupSize,
    size: true,
    uniforms: UNIFORMS,
    getUserCode: () => `
    fn main(index : i32) {
      if (index < uniforms.size) {
        ${body}
      }
    }`,
  };
}

/** scores[b·H + h, l] = scale · q[b, h, :]·k[b, h / group, l, :]. */
const SCORES = `
        let row = index / uniforms.len;
        let l = index % uniforms.len;
        let b = row / uniforms.heads;
        let kv = b * uniforms.kvHeads + (row % uniforms.heads) / uniforms.group;
        let qb = row * uniforms.hd;
        let kb = (kv * uniforms.cap + l) * uniforms.hd;
        var s = 0.0;
        for (var j = 0; j < uniforms.hd; j++) {
          s = s + q[qb + j] * k[kb + j];
        }
        result[index] = s * uniforms.scale;`;

/** z[b·H + h, j] = Σ_l p[b·H + h, l] · v[b, h / group, l, j]. */
const VALUES = `
        let row = index / uniforms.hd;
        let j = index % uniforms.hd;
        let b = row / uniforms.heads;
        let kv = b * uniforms.kvHeads + (row % uniforms.heads) / uniforms.group;
        let pb = row * uniforms.len;
        let vb = kv * uniforms.cap * uniforms.hd + j;
        var z = 0.0;
        for (var l = 0; l < uniforms.len; l++) {
          z = z + p[pb + l] * v[vb + l * uniforms.hd];
        }
        result[index] = z;`;

/**
 * The webgpu kernel: q `[B, H, hd]`, k and v `[B, Hkv, C, hd]`, optional additive mask `[B, 1, length]`;
 * attrs `length` and `scale`. Returns z `[B, H, hd]`.
 */
export function webgpuDecodeAttentionKernel(
  args: KernelArgs,
): TensorInfo {
  const be = args.backend as WebGPUProgramBackend;
  const { q, k, v, mask, length, scale, b, h, hd, hkv, cap } = decodeAttentionCall(args);
  const uniforms = [
    ...[h, h / hkv, hkv, cap, hd, length].map((x) => ({ type: "int32", data: [x] })),
    { type: "float32", data: [scale] },
  ];
  const temps: TensorInfo[] = [];
  try {
    const scores = be.runWebGPUProgram(
      program("coherenceDecodeScores", ["q", "k"], [b * h, length], SCORES),
      [q, k],
      "float32",
      uniforms,
    );
    temps.push(scores);
    const p = maskedSoftmax(be, "webgpu", scores, mask, { b, h, length }, temps);
    const z = be.runWebGPUProgram(
      program("coherenceDecodeValues", ["p", "v"], [b * h, hd], VALUES),
      [p, v],
      "float32",
      uniforms,
    );
    temps.push(z);
    return stockKernel("Reshape", "webgpu")({ inputs: { x: z }, backend: be, attrs: { shape: [b, h, hd] } });
  } finally {
    for (const t of temps) be.disposeData(t.dataId);
  }
}
