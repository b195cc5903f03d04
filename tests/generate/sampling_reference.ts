/**
 * A plain-JS, float64, one-row reference of the sampling semantics documented in
 * lib/generate/sampling.ts, written independently of the device code (sorting with Array.sort, no
 * tensors) so the tests can compare the two on many random inputs.
 *
 * @module
 */
import type { SamplingParams } from "../../lib/generate/sampling.ts";

/** The reference's answer for one row. */
export interface ReferenceSample {
  token: number;
  logprob: number;
  sampledLogprob: number;
}

function logSoftmax(x: number[]): number[] {
  const m = Math.max(...x);
  if (m === -Infinity) return x.map(() => NaN);
  const z = Math.log(x.reduce((s, v) => s + Math.exp(v - m), 0)) + m;
  return x.map((v) => v - z);
}

/** Samples one token from `logits` with `u` in [0, 1); `seen` holds tokens already in the sequence. */
export function referenceSample(
  logits: number[],
  params: SamplingParams,
  u: number,
  seen: Set<number> = new Set(),
): ReferenceSample {
  const raw = logSoftmax(logits);
  const penalty = params.repetitionPenalty ?? 1;
  let l = logits.map((v, i) => (seen.has(i) && penalty !== 1 ? (v > 0 ? v / penalty : v * penalty) : v));
  const banned = new Set(params.bannedTokens ?? []);
  l = l.map((v, i) => (banned.has(i) ? -Infinity : v));
  const temperature = params.temperature ?? 1;
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < l.length; i++) if (l[i] > l[best]) best = i;
    return { token: best, logprob: raw[best], sampledLogprob: 0 };
  }
  const lt = l.map((v) => v / temperature);
  const k = params.topK ?? 0, p = params.topP ?? 1;
  let threshold = -Infinity;
  if (k > 0 || p < 1) {
    const sorted = [...lt].sort((a, b) => b - a);
    const thrK = k > 0 ? sorted[Math.min(k, sorted.length) - 1] : -Infinity;
    const kept = sorted.filter((v) => v >= thrK && v > -Infinity);
    const probs = kept.map((v) => Math.exp(v - kept[0]));
    const z = probs.reduce((s, v) => s + v, 0);
    let before = 0, nKeep = 0;
    for (let i = 0; i < kept.length; i++) {
      if (p >= 1 || before < p) nKeep = i + 1;
      before += probs[i] / z;
    }
    threshold = kept[Math.max(nKeep, 1) - 1];
  }
  const masked = lt.map((v) => (v >= threshold && v > -Infinity ? v : -Infinity));
  const logq = logSoftmax(masked);
  let cum = 0, token = -1;
  for (let i = 0; i < logq.length; i++) {
    if (masked[i] === -Infinity) continue;
    cum += Math.exp(logq[i]);
    token = i;
    if (cum > u) break;
  }
  return { token, logprob: raw[token], sampledLogprob: logq[token] };
}
