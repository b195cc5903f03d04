/**
 * A second model as judge of text quality (issue 13, outcomes beyond cosim): the negative log-likelihood of
 * each arm's outcome-window text under a model the user names, so an intervention that raises cosim while
 * making the text worse shows up. The judge reads text, not token ids, so it may have any tokenizer.
 *
 * Definition (named in every score): mean NLL in nats per judge token of the arm's text inside the outcome
 * window [from, to), conditioned on the prompt and the arm's own text before the window, each part encoded
 * separately with the judge's tokenizer (no special tokens) and the context cut from the left to fit the
 * judge's positions.
 *
 * @module
 */
import { tf } from "../deps.ts";
import type { Tensor2D } from "../tensor_types.ts";
import type { CausalLM } from "../models/types.ts";
import type { TextTokenizer } from "../tokenizers/types.ts";
import { tokenLosses } from "../train/loss.ts";
import type { RecyncUnitRecord } from "./harness.ts";

/**
 * The definition string stored with every judge score.
 *
 * @category Recync
 */
export const JUDGE_NLL_DEFINITION =
  "mean NLL (nats) per judge token of the arm's outcome-window text, given the prompt and the arm's text before the window";

/**
 * A judge: a model, its tokenizer and a label (its source).
 *
 * @category Recync
 */
export interface RecyncJudge {
  /** The judging model. */
  model: CausalLM;
  /** Its tokenizer. */
  tokenizer: TextTokenizer;
  /** Its source, stored with every score. */
  label: string;
}

/**
 * NLL of one continuation under the judge.
 *
 * @category Recync
 */
export interface JudgeNll {
  /** Mean NLL per judge token (nats); NaN when the continuation encodes to no tokens. */
  nll: number;
  /** Judge tokens scored. */
  tokens: number;
}

/**
 * Mean NLL of `continuation` after `context` under the judge (see the module doc for the definition).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initBackend } from "../backend/backend.ts";
 * import { CharTokenizer } from "../tokenizers/char.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { judgeNll } from "./judge.ts";
 * await initBackend({ backend: "cpu" });
 * const tokenizer = CharTokenizer.fromCorpus("abc ");
 * const model = createDecoder(gpt2NewConfig({ vocabSize: tokenizer.vocabSize, nLayers: 1, dModel: 16, nHeads: 2, maxPositions: 32 }), { seed: 1 });
 * const s = judgeNll({ model, tokenizer, label: "tiny" }, "ab", "cab");
 * assert.equal(s.tokens, 3);
 * assert.ok(Math.abs(s.nll - Math.log(tokenizer.vocabSize)) < 0.5); // near uniform for a random model
 * model.dispose();
 * ```
 *
 * @category Recync
 */
export function judgeNll(judge: RecyncJudge, context: string, continuation: string): JudgeNll {
  return judgeNlls(judge, [[context, continuation]])[0];
}

/**
 * NLL of several (context, continuation) pairs: one forward each, one packed readback for all of them.
 */
function judgeNlls(judge: RecyncJudge, pairs: [string, string][]): JudgeNll[] {
  const enc = (s: string) => (s ? judge.tokenizer.encode(s, { addSpecialTokens: false }) : []);
  const maxPos = judge.model.config.maxPositions;
  const jobs = pairs.map(([context, continuation]) => {
    const cont = enc(continuation);
    if (cont.length === 0) return null;
    if (cont.length + 1 > maxPos) {
      throw new Error(
        `judge ${judge.label}: the continuation has ${cont.length} tokens, more than its ${maxPos} positions allow`,
      );
    }
    let ctx = enc(context);
    // The first continuation token needs a token before it; use BOS/EOS when the context is empty.
    if (ctx.length === 0) {
      const start = judge.tokenizer.special.bos ?? judge.tokenizer.special.eos;
      if (start === undefined) {
        throw new Error(
          `judge ${judge.label}: nothing to condition on (empty context and no BOS/EOS token); give a prompt`,
        );
      }
      ctx = [start];
    }
    return { ctx: ctx.slice(Math.max(0, ctx.length + cont.length - maxPos)), cont };
  });
  const scored = jobs.filter((j): j is { ctx: number[]; cont: number[] } => j !== null);
  let sums: ArrayLike<number> = [];
  if (scored.length > 0) {
    const packed = tf.tidy(() =>
      tf.stack(scored.map(({ ctx, cont }) => {
        const ids = [...ctx, ...cont];
        const input = tf.tensor2d([ids.slice(0, -1)], [1, ids.length - 1], "int32") as Tensor2D;
        const { logits } = judge.model.forward(input);
        // Logits at positions ctx.length-1 … predict the continuation tokens.
        const tail = logits.slice([0, ctx.length - 1, 0], [1, cont.length, logits.shape[2]]);
        return tokenLosses(tail, tf.tensor1d(cont, "int32")).sum();
      }))
    );
    sums = packed.dataSync();
    packed.dispose();
  }
  let k = 0;
  return jobs.map((j) =>
    j === null ? { nll: NaN, tokens: 0 } : { nll: sums[k++] / j.cont.length, tokens: j.cont.length }
  );
}

/**
 * Judge scores of one unit: both arms over the unit's outcome window.
 *
 * @category Recync
 */
export interface RecyncJudgeScore {
  /** The judge's source. */
  model: string;
  /** {@linkcode JUDGE_NLL_DEFINITION}. */
  definition: string;
  /** Outcome window [from, to) in generated-token steps (the unit's metrics window). */
  from: number;
  /** End of the window (exclusive). */
  to: number;
  /** Baseline arm. */
  baseline: JudgeNll;
  /** Intervention arm. */
  intervention: JudgeNll;
}

/**
 * Scores both arms of a results line under the judge, over the unit's outcome window (`metrics.from` to
 * `metrics.to`), decoding its tokens with the generating model's tokenizer; null for a unit without metrics
 * (no crisis, policy never acted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { judgeRecyncUnit } from "./judge.ts";
 * // A unit without metrics is not scored, so no model is needed here.
 * assert.equal(judgeRecyncUnit({} as never, { metrics: null } as never, {} as never), null);
 * ```
 *
 * @category Recync
 */
export function judgeRecyncUnit(
  judge: RecyncJudge,
  record: Pick<RecyncUnitRecord, "prompt" | "baseline" | "intervention" | "metrics">,
  unitTokenizer: TextTokenizer,
): RecyncJudgeScore | null {
  const m = record.metrics;
  if (!m) return null;
  // The window is in the generating model's tokens, so its text comes from that model's tokenizer.
  const text = (a: RecyncUnitRecord["baseline"]): [string, string] => [
    record.prompt + unitTokenizer.decode(a.tokens.slice(0, m.from)),
    unitTokenizer.decode(a.tokens.slice(m.from, m.to)),
  ];
  const [baseline, intervention] = judgeNlls(judge, [text(record.baseline), text(record.intervention)]);
  return {
    model: judge.label,
    definition: JUDGE_NLL_DEFINITION,
    from: m.from,
    to: m.to,
    baseline,
    intervention,
  };
}
