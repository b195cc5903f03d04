/**
 * Two test-only variants that prove the component contract (not shipped): a factorised tied embedding
 * (`test-factorised`: E = R·Φ at both ends, like reFlow) and a stateful mixer with an auxiliary loss
 * (`test-running-mean`: a causal mean over the valid columns, projected, whose per-sequence state is the
 * column inputs). Importing this module registers both kinds.
 *
 * @module
 */
import { tf } from "../lib/deps.ts";
import type { Scalar, Tensor2D, Tensor3D } from "../lib/tensor_types.ts";
import { embedTokens } from "../lib/nn/embedding.ts";
import {
  type EmbeddingKind,
  type MixerKind,
  type MixerState,
  registerEmbedding,
  registerMixer,
} from "../lib/models/components.ts";
import { requireParameter } from "../lib/models/standard_components.ts";

/** x0 = R[ids]·Φ, logits = (h·Φᵀ)·Rᵀ; `signals` (S) is the one option. */
export const testFactorised: EmbeddingKind = {
  kind: "test-factorised",
  options: ["signals"],
  validate(spec) {
    const s = spec.signals;
    if (!Number.isInteger(s) || (s as number) < 1) {
      throw new Error(`embedding.signals must be a positive integer, got ${JSON.stringify(s)}`);
    }
  },
  parameters(spec, c) {
    const s = spec.signals as number;
    return new Map([
      ["embed.W_recipe", { shape: [c.vocabSize, s], init: "normal" as const }],
      ["embed.W_basis", { shape: [s, c.dModel], init: { std: 1 / Math.sqrt(s) } }],
    ]);
  },
  hookNames: () => ["hook_embed", "hook_signals"],
  create(_spec, _c, params) {
    const r = requireParameter(params, "embed.W_recipe") as Tensor2D;
    const phi = requireParameter(params, "embed.W_basis") as Tensor2D;
    return {
      embed(ids, _positions, { fire }) {
        const [b, t] = ids.shape;
        const rows = embedTokens(ids, r); // [B, T, S]
        let x = tf.reshape(tf.matMul(tf.reshape(rows, [b * t, -1]), phi), [b, t, -1]) as Tensor3D;
        if (fire) x = fire("hook_embed", undefined, x) as Tensor3D;
        return x;
      },
      unembed(h, { fire }) {
        const [b, t, d] = h.shape;
        let sig = tf.reshape(tf.matMul(tf.reshape(h, [b * t, d]), phi, false, true), [b, t, -1]) as Tensor3D;
        if (fire) sig = fire("hook_signals", undefined, sig) as Tensor3D;
        return tf.reshape(tf.matMul(tf.reshape(sig, [b * t, -1]), r, false, true), [b, t, -1]) as Tensor3D;
      },
    };
  },
};

/** The running-mean mixer's state: the inputs of every column, `[B, L, d]`. */
class ColumnInputs implements MixerState {
  x: Tensor3D | null = null;
  commit(update: unknown): void {
    const next = tf.keep(update as Tensor3D);
    this.x?.dispose();
    this.x = next;
  }
  keepColumns(columns: number[]): void {
    if (!this.x) return;
    const old = this.x;
    this.x = columns.length ? tf.tidy(() => tf.gather(old, tf.tensor1d(columns, "int32"), 1)) : null;
    old.dispose();
  }
  selectRows(rows: number[]): void {
    if (!this.x) return;
    const old = this.x;
    this.x = tf.tidy(() => tf.gather(old, tf.tensor1d(rows, "int32"), 0));
    old.dispose();
  }
  dispose(): void {
    this.x?.dispose();
    this.x = null;
  }
}

/**
 * out_i = W_mix · mean of x_j over valid j ≤ i (cached columns included); aux loss `toy_energy` =
 * mean(out²); metric `mean_abs` = mean |mean|.
 */
export const testRunningMean: MixerKind = {
  kind: "test-running-mean",
  options: [],
  parameters(_spec, c, layer) {
    return new Map([[`blocks.${layer}.attn.W_mix`, {
      shape: [c.dModel, c.dModel],
      init: "residual" as const,
    }]]);
  },
  hookPoints: () => ["hook_mean"],
  create(_spec, _c, params, layer) {
    const w = requireParameter(params, `blocks.${layer}.attn.W_mix`) as Tensor2D;
    return {
      forward(x, ctx) {
        const [b, t, d] = x.shape;
        const state = ctx.state as ColumnInputs | null;
        const all = state?.x ? tf.concat([state.x, x], 1) as Tensor3D : x;
        const cols = all.shape[1], past = cols - t;
        // weight[b, i, j] = valid[b, j] · [j ≤ past + i]
        const causal = tf.linalg.bandPart(tf.ones([cols, cols]), -1, 0).slice([past, 0], [t, cols]);
        const valid = ctx.valid
          ? tf.reshape(ctx.valid, [ctx.valid.shape[0], 1, cols])
          : tf.ones([1, 1, cols]);
        const weights = tf.mul(causal.reshape([1, t, cols]), valid);
        const norm = tf.maximum(tf.sum(weights, -1, true), 1);
        let mean = tf.div(tf.matMul(tf.broadcastTo(weights, [b, t, cols]), all), norm) as Tensor3D;
        if (ctx.fire) mean = ctx.fire(`blocks.${ctx.layer}.attn.hook_mean`, ctx.layer, mean) as Tensor3D;
        const out = tf.reshape(tf.matMul(tf.reshape(mean, [b * t, d]), w), [b, t, d]) as Tensor3D;
        ctx.loss("toy_energy", tf.mean(tf.square(out)) as Scalar);
        ctx.metric("mean_abs", tf.mean(tf.abs(mean)) as Scalar);
        return state ? { out, update: all } : { out };
      },
      createState: () => new ColumnInputs(),
    };
  },
};

registerEmbedding(testFactorised);
registerMixer(testRunningMean);
