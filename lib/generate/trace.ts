/**
 * The record of a generation run: per row, the kept tokens with their log-probabilities, cosims, probe
 * values and (optionally) hidden states, plus every rewind and the run's timing. Renders as a table with
 * cosim sparklines in Jupyter.
 *
 * @example
 * ```ts
 * import { GenerationTrace } from "./trace.ts";
 * const trace = new GenerationTrace([[1, 2, 3]], { returnHidden: false });
 * trace.rows[0].tokens.push(4);
 * console.log(trace.toString());
 * ```
 *
 * @module
 */
import { escapeHtml, JUPYTER_DISPLAY } from "../display.ts";

/**
 * Why a row stopped.
 *
 * @category Generation
 */
export type FinishReason = "stop" | "length" | "stopped" | "maxSteps" | "context";

/**
 * One rewind of one row.
 *
 * @category Generation
 */
export interface RewindEvent {
  /** The forward step (0 = the step sampled from the prefill) after which the rewind was requested. */
  step: number;
  /** Kept generated length before the rewind. */
  from: number;
  /** The generated index the row went back to (tokens y_to.. were dropped). */
  to: number;
  /** The new seed, when one was given. */
  seed?: number;
}

/**
 * Everything recorded for one row (sequence) of a run. Arrays are indexed by generated index t.
 *
 * @category Generation
 */
export interface TraceRow {
  /** Row index in the batch. */
  row: number;
  /** The prompt's token ids (without padding). */
  prompt: number[];
  /** Kept generated tokens y_0, y_1, ... (dropped ones removed on rewind). */
  tokens: number[];
  /** log p(y_t) under the unmodified model distribution (temperature 1, no filters). */
  logprobs: number[];
  /** log q(y_t) under the distribution actually sampled from (0 for greedy rows). */
  sampledLogprobs: number[];
  /** cosim(t) = cos(h_t, h_{t-1}); NaN at t = 0. */
  cosims: number[];
  /** Probe values by probe name: one array of `width` numbers per generated index. */
  probes: Record<string, number[][]>;
  /** h_t per generated index, when the run was asked to return hidden states. */
  hiddens?: Float32Array[];
  /** Why the row stopped (undefined while it runs). */
  finishReason?: FinishReason;
  /**
   * The seed of the row's current PRNG stream (`new Prng(seed)` after a reseeding rewind or with
   * `seeds`; with a shared `seed`, the row draws from `new Prng(seed, row)`).
   */
  seed: number;
  /** Rewinds, in order. */
  rewinds: RewindEvent[];
}

/**
 * Timing and counters of a run.
 *
 * @category Generation
 */
export interface TraceStats {
  /** Forward steps run after the prefill (each one feeds exactly one token per row). */
  steps: number;
  /** Device readbacks made by the generation loop (one per step). */
  readbacks: number;
  /** Tokens produced in all steps by active rows, including ones later dropped by rewinds. */
  tokensProduced: number;
  /** Milliseconds spent in the prefill forward. */
  prefillMs: number;
  /** Milliseconds from the first sampling step to the end. */
  decodeMs: number;
}

/**
 * Options stored with the trace.
 *
 * @category Generation
 */
export interface GenerationTraceOptions {
  /** Whether rows carry `hiddens`. */
  returnHidden: boolean;
  /** Turns token ids into text for display (e.g. `tokenizer.decode`). */
  decode?: (ids: number[]) => string;
}

/** An inline SVG polyline of the finite cosims (NaN skipped), 160x28 px. */
function sparkline(values: number[]): string {
  const pts = values.map((v, i) => [i, v] as const).filter(([, v]) => Number.isFinite(v));
  if (pts.length < 2) return "";
  const lo = Math.min(...pts.map(([, v]) => v)), hi = Math.max(...pts.map(([, v]) => v));
  const w = 160, h = 28, n = Math.max(values.length - 1, 1), span = hi - lo || 1;
  const coords = pts.map(([i, v]) =>
    `${((i / n) * w).toFixed(1)},${(h - 2 - ((v - lo) / span) * (h - 4)).toFixed(1)}`
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><polyline fill="none" ` +
    `stroke="#3366cc" stroke-width="1.2" points="${coords.join(" ")}"/></svg>`;
}

function finiteStats(values: number[]): { mean: number; min: number } {
  const f = values.filter(Number.isFinite);
  if (f.length === 0) return { mean: NaN, min: NaN };
  return { mean: f.reduce((a, b) => a + b, 0) / f.length, min: Math.min(...f) };
}

/**
 * The live record of a generation (filled in as steps arrive; complete once the run ends).
 *
 * @example
 * ```ts
 * import { GenerationTrace } from "./trace.ts";
 * const trace = new GenerationTrace([[5, 6]], { returnHidden: false, decode: (ids) => ids.join(" ") });
 * trace.rows[0].tokens.push(7, 8);
 * trace.rows[0].cosims.push(NaN, 0.93);
 * console.log(trace.texts(), trace.toString());
 * ```
 *
 * @category Generation
 */
export class GenerationTrace {
  /** One record per row. */
  readonly rows: TraceRow[];
  /** Counters and timing. */
  readonly stats: TraceStats = { steps: 0, readbacks: 0, tokensProduced: 0, prefillMs: 0, decodeMs: 0 };
  /** Whether rows carry hidden states. */
  readonly returnHidden: boolean;
  #decode?: (ids: number[]) => string;

  /**
   * An empty trace for the given prompts.
   *
   * @param prompts one token-id array per row
   * @param options whether hidden states are kept, and an optional decoder for display
   * @param seeds the seed of each row's PRNG stream (default 0)
   */
  constructor(prompts: number[][], options: GenerationTraceOptions, seeds: number[] = []) {
    this.returnHidden = options.returnHidden;
    this.#decode = options.decode;
    this.rows = prompts.map((prompt, row) => ({
      row,
      prompt: [...prompt],
      tokens: [],
      logprobs: [],
      sampledLogprobs: [],
      cosims: [],
      probes: {},
      ...(options.returnHidden ? { hiddens: [] } : {}),
      seed: seeds[row] ?? 0,
      rewinds: [],
    }));
  }

  /** Decode tokens per second over the decode phase (kept and dropped tokens alike). */
  get tokensPerSecond(): number {
    return this.stats.decodeMs > 0 ? (this.stats.tokensProduced * 1000) / this.stats.decodeMs : NaN;
  }

  /** The generated text of every row (requires a decoder). */
  texts(): string[] {
    const decode = this.#decode;
    if (!decode) {
      throw new Error("GenerationTrace.texts: no decoder was given (pass a tokenizer to generateText)");
    }
    return this.rows.map((r) => decode(r.tokens));
  }

  /** Plain-data form (hidden states as arrays of numbers). */
  toJSON(): { rows: unknown[]; stats: TraceStats } {
    return {
      rows: this.rows.map((r) => ({
        ...r,
        cosims: r.cosims.map((c) => (Number.isFinite(c) ? c : null)),
        hiddens: r.hiddens?.map((h) => Array.from(h)),
      })),
      stats: { ...this.stats },
    };
  }

  /** A short multi-line summary. */
  toString(): string {
    const head = `GenerationTrace: ${this.rows.length} row(s), ${this.stats.steps} steps, ` +
      `${this.stats.readbacks} readbacks, ${this.tokensPerSecond.toFixed(1)} tok/s`;
    const lines = this.rows.map((r) => {
      const { mean, min } = finiteStats(r.cosims);
      const text = this.#decode ? ` ${JSON.stringify(this.#decode(r.tokens)).slice(0, 80)}` : "";
      return `  row ${r.row}: ${r.tokens.length} tokens (${r.finishReason ?? "running"}), cosim mean ` +
        `${mean.toFixed(4)} min ${min.toFixed(4)}, ${r.rewinds.length} rewinds${text}`;
    });
    return [head, ...lines].join("\n");
  }

  /** Jupyter rich display: a table with a cosim sparkline per row. */
  [JUPYTER_DISPLAY](): Record<string, string> {
    const cells = this.rows.map((r) => {
      const { mean, min } = finiteStats(r.cosims);
      const text = this.#decode ? this.#decode(r.tokens) : r.tokens.join(" ");
      return `<tr><td>${r.row}</td><td>${r.tokens.length}</td><td>${r.finishReason ?? "running"}</td>` +
        `<td>${mean.toFixed(4)}</td><td>${min.toFixed(4)}</td><td>${r.rewinds.length}</td>` +
        `<td>${sparkline(r.cosims)}</td><td style="text-align:left;white-space:pre-wrap">${
          escapeHtml(text.slice(0, 400))
        }</td></tr>`;
    });
    const html = `<div><p>${this.stats.steps} steps, ${this.stats.readbacks} readbacks, ` +
      `${
        this.tokensPerSecond.toFixed(1)
      } tok/s</p><table><thead><tr><th>row</th><th>tokens</th><th>finish</th>` +
      `<th>cosim mean</th><th>cosim min</th><th>rewinds</th><th>cosim</th><th>text</th></tr></thead><tbody>` +
      cells.join("") + "</tbody></table></div>";
    return { "text/plain": this.toString(), "text/html": html };
  }
}
