/**
 * Feed-forward blocks: a two-layer MLP with GELU (exact or tanh), ReLU, or the gated SwiGLU of Llama.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor, Tensor2D } from "../tensor_types.ts";
import { nativeGeluTanh } from "../backend/wasm_gelu.ts";

/**
 * Activations and MLP kinds (the `mlp` field of a DecoderConfig).
 *
 * @category NN
 */
export type MlpKind = "gelu" | "gelu_new" | "gelu_tanh" | "relu" | "swiglu";

/**
 * `x @ w (+ bias)` for `x` of any rank >= 2 and `w` `[in, out]`; one fused kernel where the backend has it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { linear } from "./mlp.ts";
 * await tf.ready();
 * const y = linear(tf.ones([2, 3, 4]), tf.ones([4, 5]), tf.zeros([5]));
 * assert.deepEqual(y.shape, [2, 3, 5]);
 * ```
 *
 * @category NN
 */
export function linear<T extends Tensor>(x: T, w: Tensor, bias?: Tensor): T {
  return tf.tidy(() => {
    const inDim = x.shape[x.rank - 1];
    const outDim = w.shape[1]!;
    const flat = tf.reshape(x, [-1, inDim]) as Tensor2D;
    const y = tf.fused.matMul({ a: flat, b: w as Tensor2D, bias });
    return tf.reshape(y, [...x.shape.slice(0, -1), outDim]) as T;
  });
}

/**
 * Exact GELU: `0.5 x (1 + erf(x / sqrt 2))` (PyTorch `gelu`, GPT-NeoX's `hidden_act: "gelu"`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { geluExact } from "./mlp.ts";
 * await tf.ready();
 * const y = await geluExact(tf.tensor1d([0, 1])).array();
 * assert.deepEqual(y.map((v) => +v.toFixed(4)), [0, 0.8413]);
 * ```
 *
 * @category NN
 */
export function geluExact<T extends Tensor>(x: T): T {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)) as T);
}

/**
 * Tanh-approximated GELU (GPT-2's `gelu_new`, PyTorch `gelu(approximate="tanh")`):
 * `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { geluTanh } from "./mlp.ts";
 * await tf.ready();
 * const y = await geluTanh(tf.tensor1d([1])).array();
 * assert.deepEqual(y.map((v) => +v.toFixed(4)), [0.8412]);
 * ```
 *
 * @category NN
 */
export function geluTanh<T extends Tensor>(x: T): T {
  // 0.5 (1 + tanh(z)) = sigmoid(2 z): x * sigmoid(x (c1 + c2 x^2)) with c1 = 2 sqrt(2/pi), c2 = 0.044715 c1.
  // Five kernels instead of eight, and sigmoid where tfjs-wasm's tanh is a scalar loop.
  // On wasm with the native kernels and no gradient tape, one vectorised pass (lib/backend/wasm_gelu.ts).
  return nativeGeluTanh(x, GELU_C1, GELU_C2) ??
    tf.tidy(() => tf.mul(x, tf.sigmoid(tf.mul(x, tf.add(tf.mul(tf.square(x), GELU_C2), GELU_C1)))) as T);
}

const GELU_C1 = 2 * Math.sqrt(2 / Math.PI);
const GELU_C2 = 0.044715 * GELU_C1;

/**
 * Applies the activation of a non-gated MLP kind.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { activation } from "./mlp.ts";
 * await tf.ready();
 * assert.deepEqual(await activation("relu", tf.tensor1d([-1, 2])).array(), [0, 2]);
 * ```
 *
 * @category NN
 */
export function activation<T extends Tensor>(kind: MlpKind, x: T): T {
  switch (kind) {
    case "gelu":
      return geluExact(x);
    case "gelu_new":
    case "gelu_tanh":
      return geluTanh(x);
    case "relu":
      return tf.relu(x);
    case "swiglu":
      return tf.tidy(() => tf.mul(x, tf.sigmoid(x)) as T); // SiLU, the gate's activation
    default:
      throw new Error(
        `activation: unknown MLP kind '${kind}' (use gelu, gelu_new, gelu_tanh, relu or swiglu)`,
      );
  }
}

/**
 * Weights of one MLP, `[in, out]` layout. `wGate` only for SwiGLU.
 *
 * @category NN
 */
export interface MlpWeights {
  /** Up projection `[d, dMlp]`. */
  wIn: Tensor;
  /** Up projection bias `[dMlp]`. */
  bIn?: Tensor;
  /** SwiGLU gate projection `[d, dMlp]`. */
  wGate?: Tensor;
  /** SwiGLU gate bias `[dMlp]`. */
  bGate?: Tensor;
  /** Down projection `[dMlp, d]`. */
  wOut: Tensor;
  /** Down projection bias `[d]`. */
  bOut?: Tensor;
}

/**
 * Where an MLP hook fires: `pre` (activation input), `pre_linear` (SwiGLU up projection), `post`.
 *
 * @category NN
 */
export type MlpHookPoint = "pre" | "pre_linear" | "post";

/**
 * One MLP: `out(act(in(x)))`, or for SwiGLU `out(silu(gate(x)) * in(x))`. `hook` lets the caller observe
 * or replace the hidden activation (TransformerLens `mlp.hook_pre`, `mlp.hook_pre_linear`, `mlp.hook_post`;
 * for SwiGLU `pre` is the gate pre-activation and `pre_linear` the up projection).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tf } from "../../mod.ts";
 * import { mlpForward } from "./mlp.ts";
 * await tf.ready();
 * const y = mlpForward("swiglu", tf.ones([1, 2, 4]), { wIn: tf.ones([4, 8]), wGate: tf.ones([4, 8]), wOut: tf.ones([8, 4]) });
 * assert.deepEqual(y.shape, [1, 2, 4]);
 * ```
 *
 * @category NN
 */
export function mlpForward<T extends Tensor>(
  kind: MlpKind,
  x: T,
  w: MlpWeights,
  hook?: (point: MlpHookPoint, t: Tensor) => Tensor,
): T {
  return tf.tidy(() => {
    let hidden: Tensor;
    if (kind === "swiglu") {
      if (!w.wGate) throw new Error("mlpForward: SwiGLU needs a gate projection (wGate)");
      let pre: Tensor = linear(x, w.wGate, w.bGate);
      if (hook) pre = hook("pre", pre);
      let up: Tensor = linear(x, w.wIn, w.bIn);
      if (hook) up = hook("pre_linear", up);
      hidden = tf.mul(activation("swiglu", pre), up);
    } else {
      let pre: Tensor = linear(x, w.wIn, w.bIn);
      if (hook) pre = hook("pre", pre);
      hidden = activation(kind, pre);
    }
    if (hook) hidden = hook("post", hidden);
    return linear(hidden, w.wOut, w.bOut) as T;
  });
}
