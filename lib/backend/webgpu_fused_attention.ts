/**
 * Fused causal attention for prefill and training on the webgpu backend: one WGSL kernel computes
 * softmax(q·kᵀ·scale + mask)·v without writing the `[B, H, T, L]` scores or pattern to memory
 * (flash-attention style: keys and values stream through workgroup memory in tiles, with an online
 * softmax). Registered lazily as the webgpu kernel `CoherenceFusedAttention`; {@linkcode fusedAttention}
 * wraps it in `tf.customGrad` with the analytic backward in stock ops, so training works too.
 *
 * Layout of one workgroup (64 invocations): it owns one (row b, query head h) and a block of BQ query
 * positions; LANES adjacent invocations share a query position and each owns an interleaved slice of
 * SLICE = ⌈hd / LANES⌉ head columns (d = lane + i·LANES) of the query and of the fp32 accumulator, in
 * registers. LANES is the smallest power of two with SLICE ≤ 16, so any hd ≤ 256 costs at most 32
 * registers of q and accumulator per invocation (one query row per invocation would need 2·hd, 512 at
 * hd 256, and spill), and BQ = 64 / LANES rows share each key/value tile. Per tile of BK keys: load K
 * and V tiles into workgroup memory; each invocation writes its slice's partial dot products; after a
 * barrier each invocation sums its row's LANES partials, updates the running max m and sum l, rescales
 * its accumulator slice by exp(m_old − m_new) and adds p·V. Tiles are sized to fit 16 KiB of workgroup
 * memory (WebGPU's guaranteed minimum), so the same kernel runs on every adapter.
 *
 * With a mask, a tile whose mask entries are all ≤ -5e8 for every row of the block is skipped once every
 * row of the block has seen an attendable column (its exp would underflow to exactly 0): a causal
 * prefill skips the tiles above the diagonal. Fully masked rows (every entry -1e9) are never skipped
 * and give what stock softmax gives: uniform weights, i.e. the mean of v over the L columns (exactly so
 * while |q·k·scale| < 32, where -1e9 + s rounds to -1e9 in fp32, as in the stock ops).
 *
 * @module
 * @internal Used inside the library; not part of the stable API.
 */
import { tf } from "../deps.ts";
import type { Tensor4D } from "../tensor_types.ts";
import { type KernelArgs, registerOwnKernel, type WebGPUProgramBackend } from "./stock_kernels.ts";
import { webgpuKernelsEnabled } from "./backend.ts";

/** The kernel's name in tfjs' registry. */
const KERNEL = "CoherenceFusedAttention";

/** Invocations per workgroup. */
const WG = 64;

/** Workgroup memory budget in floats (16 KiB: WebGPU's guaranteed `maxComputeWorkgroupStorageSize`). */
const WG_FLOATS = 4096;

/** Largest head width the kernel takes. */
const MAX_HD = 256;

/** WebGPU's guaranteed `maxComputeWorkgroupsPerDimension`. */
const MAX_DISPATCH = 65535;

type TensorInfo = tf.TensorInfo;

/** The tile geometry for head width `hd` (compile-time constants of the shader). */
interface Tiles {
  /** Invocations per query row, slice per invocation, padded head width LANES·SLICE. */
  lanes: number;
  slice: number;
  hdp: number;
  /** Query rows per workgroup, keys per tile. */
  bq: number;
  bk: number;
}

/** LANES, SLICE, BQ, BK for `hd` (see the module comment). */
function tiles(hd: number): Tiles {
  let lanes = 1;
  while (Math.ceil(hd / lanes) > 16) lanes *= 2;
  const slice = Math.ceil(hd / lanes), hdp = lanes * slice;
  // K tile + V tile (BK·HDP each) + partial sums (WG·BK) within the budget.
  const bk = Math.min(32, Math.floor(WG_FLOATS / (2 * hdp + WG)));
  return { lanes, slice, hdp, bq: WG / lanes, bk };
}

/** The WGSL body (tfjs-webgpu wraps it with the bindings `q`, `k`, `v`, `mask`, `result`, `uniforms`). */
function shader(hd: number, masked: boolean): string {
  const { lanes, slice, hdp, bq, bk } = tiles(hd);
  return `
    const HD = ${hd};
    const HDP = ${hdp};
    const LANES = ${lanes};
    const SLICE = ${slice};
    const BQ = ${bq};
    const BK = ${bk};
    const WG = ${WG};
    var<workgroup> kTile : array<f32, ${bk * hdp}>;
    var<workgroup> vTile : array<f32, ${bk * hdp}>;
    var<workgroup> part : array<f32, ${WG * bk}>;
    var<workgroup> live : atomic<u32>;

    fn main(index : i32) {
      let li = i32(localIndex);
      let row = li / LANES;
      let lane = li % LANES;
      let head = i32(workgroupId.y);
      let batch = i32(workgroupId.z);
      let t = i32(workgroupId.x) * BQ + row;
      let inRange = t < uniforms.rows;
      let kvBase = (batch * uniforms.kvHeads + head / uniforms.group) * uniforms.cols * HD;
      let qRow = ((batch * uniforms.heads + head) * uniforms.rows + t) * HD;
      let maskRow = (batch * uniforms.rows + t) * uniforms.cols;
      var qr : array<f32, SLICE>;
      var acc : array<f32, SLICE>;
      for (var i = 0; i < SLICE; i++) {
        let d = lane + i * LANES;
        var x = 0.0;
        if (inRange && d < HD) {
          x = q[qRow + d];
        }
        qr[i] = x;
        acc[i] = 0.0;
      }
      var m = -3.0e38;
      var lsum = 0.0;
      var sc : array<f32, BK>;
      let tileCount = (uniforms.cols + BK - 1) / BK;
      for (var tile = 0; tile < tileCount; tile++) {
        let k0 = tile * BK;
        // Vote: does any row of the block need this tile? (The previous tile's reads end before this barrier.)
        if (inRange) {
          ${
    masked
      ? `var need = m <= -2.5e8; // no attendable column seen yet: masked columns still count
          for (var j = lane; j < BK; j += LANES) {
            if (k0 + j < uniforms.cols && mask[maskRow + k0 + j] > -5.0e8) {
              need = true;
            }
          }`
      : "let need = true;"
  }
          if (need) {
            atomicOr(&live, 1u);
          }
        }
        workgroupBarrier();
        let run = atomicLoad(&live) != 0u;
        if (run) {
          for (var idx = li; idx < BK * HDP; idx += WG) {
            let j = idx / HDP;
            let d = idx % HDP;
            var kx = 0.0;
            var vx = 0.0;
            if (k0 + j < uniforms.cols && d < HD) {
              let g = kvBase + (k0 + j) * HD + d;
              kx = k[g];
              vx = v[g];
            }
            kTile[idx] = kx;
            vTile[idx] = vx;
          }
        }
        workgroupBarrier();
        if (li == 0) {
          atomicStore(&live, 0u); // every read of live came before the barrier above
        }
        if (run) {
          for (var j = 0; j < BK; j++) {
            var s = 0.0;
            for (var i = 0; i < SLICE; i++) {
              s = s + qr[i] * kTile[j * HDP + lane + i * LANES];
            }
            part[(row * BK + j) * LANES + lane] = s;
          }
        }
        workgroupBarrier();
        if (run && inRange) {
          var mt = m;
          for (var j = 0; j < BK; j++) {
            var s = -3.0e38; // past the last column: weight exp(-3e38 - mt) = 0
            if (k0 + j < uniforms.cols) {
              var dot = 0.0;
              for (var r = 0; r < LANES; r++) {
                dot = dot + part[(row * BK + j) * LANES + r];
              }
              s = dot * uniforms.scale${masked ? " + mask[maskRow + k0 + j]" : ""};
            }
            sc[j] = s;
            mt = max(mt, s);
          }
          let alpha = exp(m - mt);
          lsum = lsum * alpha;
          for (var i = 0; i < SLICE; i++) {
            acc[i] = acc[i] * alpha;
          }
          for (var j = 0; j < BK; j++) {
            let p = exp(sc[j] - mt);
            lsum = lsum + p;
            for (var i = 0; i < SLICE; i++) {
              acc[i] = acc[i] + p * vTile[j * HDP + lane + i * LANES];
            }
          }
          m = mt;
        }
      }
      if (inRange) {
        for (var i = 0; i < SLICE; i++) {
          let d = lane + i * LANES;
          if (d < HD) {
            result[qRow + d] = acc[i] / lsum; // lsum ≥ 1: the max column contributes exp(0)
          }
        }
      }
    }`;
}

/** The webgpu kernel: q `[B, H, T, hd]`, k and v `[B, Hkv, L, hd]`, optional mask `[B, 1, T, L]`; attr `scale`. */
function webgpuFusedAttentionKernel(args: KernelArgs): TensorInfo {
  const be = args.backend as WebGPUProgramBackend;
  const { q, k, v, mask } = args.inputs as { q: TensorInfo; k: TensorInfo; v: TensorInfo; mask?: TensorInfo };
  const scale = args.attrs!.scale as number;
  const [b, h, t, hd] = q.shape;
  const [, hkv, l] = k.shape;
  const masked = mask !== undefined;
  const program = {
    variableNames: masked ? ["q", "k", "v", "mask"] : ["q", "k", "v"],
    outputShape: [b, h, t, hd],
    // The shader bakes in hd (and the tiles derived from it); tfjs appends ranks, dtypes and input names.
    shaderKey: `coherenceFusedAttention_${hd}`,
    dispatchLayout: { x: [0, 1, 2, 3] },
    dispatch: [Math.ceil(t / tiles(hd).bq), h, b],
    workgroupSize: [WG, 1, 1],
    uniforms: "heads : i32, kvHeads : i32, group : i32, rows : i32, cols : i32, scale : f32,",
    getUserCode: () => shader(hd, masked),
  };
  const uniforms = [
    ...[h, hkv, h / hkv, t, l].map((x) => ({ type: "int32", data: [x] })),
    { type: "float32", data: [scale] },
  ];
  return be.runWebGPUProgram(program, masked ? [q, k, v, mask] : [q, k, v], "float32", uniforms);
}

let calls = 0;

/**
 * How many times the fused attention kernel ran (forward passes) since the last reset; tests use it to
 * check that prefill and training take the fused path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fusedAttentionCalls } from "./webgpu_fused_attention.ts";
 * fusedAttentionCalls(true); // reset
 * assert.equal(fusedAttentionCalls(), 0);
 * ```
 *
 * @category Backend
 */
export function fusedAttentionCalls(reset = false): number {
  const n = calls;
  if (reset) calls = 0;
  return n;
}

/**
 * The backward of z = softmax(q·kᵀ·scale + mask)·v in stock ops, recomputing the pattern P:
 * dV = Pᵀ dZ, dP = dZ Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = dS K · scale, dK = dSᵀ Q · scale. Grouped
 * heads: `[B, H, T, ·]` reshapes to `[B, Hkv, G·T, ·]` (head h = j·G + g), so the products over the
 * grouped axis sum the G query heads onto their key/value head.
 */
function backward(
  dz: Tensor4D,
  q: Tensor4D,
  k: Tensor4D,
  v: Tensor4D,
  mask: Tensor4D | undefined,
  scale: number,
): Tensor4D[] {
  const [b, h, t, hd] = q.shape;
  const [, hkv, l] = k.shape;
  const g = h / hkv;
  const qg = tf.reshape(q, [b, hkv, g * t, hd]);
  let s = tf.reshape(tf.mul(tf.matMul(qg, k, false, true), scale), [b, h, t, l]);
  if (mask) s = tf.add(s, mask);
  const p = tf.reshape(tf.softmax(s, -1), [b, hkv, g * t, l]);
  const dzg = tf.reshape(dz, [b, hkv, g * t, hd]);
  const dv = tf.matMul(p, dzg, true, false);
  const dp = tf.matMul(dzg, v, false, true);
  const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true)));
  const dq = tf.reshape(tf.mul(tf.matMul(ds, k), scale), [b, h, t, hd]);
  const dk = tf.mul(tf.matMul(ds, qg, true, false), scale);
  return [dq, dk, dv] as Tensor4D[];
}

/**
 * Attention z = softmax(q·kᵀ·scale + mask)·v in one fused kernel on the webgpu backend: `q`
 * `[B, H, T, hd]`, `k` and `v` `[B, Hkv, L, hd]` (query head h reads key/value head `floor(h / (H / Hkv))`),
 * `mask` an optional additive `[B, 1, T, L]` (0 = attend, -1e9 = not; it carries causality and padding),
 * `scale` defaulting to 1/√hd. Returns z `[B, H, T, hd]`, differentiable in q, k and v (the mask gets no
 * gradient), or null where the kernel does not apply (another backend, our webgpu kernels switched off
 * with `initBackend({ webgpuKernels: false })`, hd > 256, non-float32 inputs,
 * shapes that do not fit, a mask of another shape), so the caller takes the stock path. Fully masked
 * rows give the mean of v, as stock softmax does.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../deps.ts";
 * import type { Tensor4D } from "../tensor_types.ts";
 * import { fusedAttention } from "./webgpu_fused_attention.ts";
 * await tf.setBackend("cpu");
 * const q = tf.ones([1, 2, 3, 4]) as Tensor4D, kv = tf.ones([1, 1, 3, 4]) as Tensor4D;
 * assert.equal(fusedAttention(q, kv, kv), null); // cpu: not here, use the stock ops
 * ```
 *
 * @category Backend
 */
export function fusedAttention(
  q: Tensor4D,
  k: Tensor4D,
  v: Tensor4D,
  mask?: Tensor4D,
  scale: number = 1 / Math.sqrt(q.shape[3]),
): Tensor4D | null {
  if (tf.getBackend() !== "webgpu" || !webgpuKernelsEnabled()) return null;
  if (q.rank !== 4 || k.rank !== 4 || v.rank !== 4) return null;
  const [b, h, t, hd] = q.shape;
  const [kb, hkv, l, khd] = k.shape;
  if (kb !== b || khd !== hd || hd < 1 || hd > MAX_HD || t < 1 || l < 1 || h % hkv !== 0) return null;
  if (v.shape.some((d, i) => d !== k.shape[i])) return null;
  if (q.dtype !== "float32" || k.dtype !== "float32" || v.dtype !== "float32") return null;
  if (mask) {
    const [mb, m1, mt, ml] = mask.shape;
    if (mask.rank !== 4 || mb !== b || m1 !== 1 || mt !== t || ml !== l || mask.dtype !== "float32") {
      return null;
    }
  }
  // One workgroup per (row, head, block of query rows) along z, y, x; i32 indexing in the shader.
  if (Math.ceil(t / tiles(hd).bq) > MAX_DISPATCH || h > MAX_DISPATCH || b > MAX_DISPATCH) return null;
  if (Math.max(q.size, k.size, mask?.size ?? 0) >= 2 ** 31) return null;
  registerOwnKernel(KERNEL, "webgpu", webgpuFusedAttentionKernel);
  const f = tf.customGrad(
    ((qq: Tensor4D, kk: Tensor4D, vv: Tensor4D, save: tf.GradSaveFunc) => {
      save([qq, kk, vv]);
      calls++;
      const inputs: Record<string, tf.Tensor> = { q: qq, k: kk, v: vv };
      if (mask) inputs.mask = mask;
      const value = tf.engine().runKernel(KERNEL, inputs, { scale }) as Tensor4D;
      const gradFunc = (dz: Tensor4D, saved: tf.Tensor[]): Tensor4D[] => {
        const [sq, sk, sv] = saved as Tensor4D[];
        return backward(dz, sq, sk, sv, mask, scale);
      };
      return { value, gradFunc };
    }) as unknown as Parameters<typeof tf.customGrad<Tensor4D>>[0],
  );
  return f(q, k, v) as Tensor4D;
}
