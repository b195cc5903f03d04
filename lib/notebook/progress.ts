/**
 * Progress reporting that suits where the code runs: in Jupyter one HTML bar updated in place (display
 * updates, no widgets needed); in an interactive terminal one line redrawn with `\r`; in CI or logs
 * (`CI` set, or stderr not a TTY) throttled lines, at most one every `intervalSec`, plus the final line.
 *
 * @module
 */
import { type DisplaySink, escapeHtml, jupyterSink } from "./jupyter.ts";

/**
 * How a {@linkcode Progress} reports.
 *
 * @category Notebook
 */
export type ProgressMode = "auto" | "jupyter" | "tty" | "lines" | "silent";

/**
 * Options for {@linkcode Progress}.
 *
 * @category Notebook
 */
export interface ProgressOptions {
  /** Label shown before the bar (default "progress"). */
  label?: string;
  /** Unit name for the rate (default "it"). */
  unit?: string;
  /** `"auto"` (default) picks jupyter, tty or lines from the environment. */
  mode?: ProgressMode;
  /** Lines mode: seconds between printed lines (default 10). */
  intervalSec?: number;
  /** Jupyter and tty modes: milliseconds between redraws (default 200). */
  redrawMs?: number;
  /** Where lines go (default stderr). */
  write?: (text: string) => void;
  /** Display sink for jupyter mode (default the kernel's). */
  sink?: DisplaySink;
  /** Clock in milliseconds (default `performance.now`); tests inject a fake one. */
  now?: () => number;
}

let progressIds = 0;

function envFlag(name: string): boolean {
  try {
    const v = Deno.env.get(name);
    return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
  } catch {
    return false; // no --allow-env: assume not CI
  }
}

/**
 * Picks the report mode for this environment.
 *
 * @category Notebook
 * @internal Used inside the library; not part of the stable API.
 */
export function detectProgressMode(): Exclude<ProgressMode, "auto"> {
  if (jupyterSink()) return "jupyter";
  if (envFlag("CI")) return "lines";
  try {
    return Deno.stderr.isTerminal() ? "tty" : "lines";
  } catch {
    return "lines";
  }
}

/**
 * "1m05s", "3.2s", "2h01m".
 *
 * @category Notebook
 */
export function formatProgressDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)}s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m` : `${m}m${String(r).padStart(2, "0")}s`;
}

function formatRate(rate: number, unit: string): string {
  if (!Number.isFinite(rate)) return `? ${unit}/s`;
  if (rate >= 100) return `${rate.toFixed(0)} ${unit}/s`;
  if (rate >= 1) return `${rate.toFixed(2)} ${unit}/s`;
  return rate > 0 ? `${(1 / rate).toFixed(2)} s/${unit}` : `0 ${unit}/s`;
}

/**
 * A progress reporter for loops.
 *
 * @example
 * ```ts
 * import { Progress } from "./progress.ts";
 * const bar = new Progress(100, { label: "train", unit: "step" });
 * for (let i = 0; i < 100; i++) bar.tick(1, { loss: (1 / (i + 1)).toFixed(3) });
 * await bar.done();
 * ```
 *
 * @category Notebook
 */
export class Progress {
  /** Total units, or undefined when unknown. */
  readonly total?: number;
  /** Resolved report mode. */
  readonly mode: Exclude<ProgressMode, "auto">;
  #label: string;
  #unit: string;
  #intervalMs: number;
  #redrawMs: number;
  #write: (text: string) => void;
  #sink?: DisplaySink;
  #now: () => number;
  #start: number;
  #last = -Infinity;
  #count = 0;
  #info: Record<string, unknown> = {};
  #displayId = `coherence-progress-${++progressIds}-${Date.now()}`;
  #shown = false;
  #chain: Promise<void> = Promise.resolve();
  #finished = false;

  /** Starts a reporter for `total` units (omit when unknown). */
  constructor(total?: number, options: ProgressOptions = {}) {
    if (total !== undefined && !(total >= 0)) throw new Error(`Progress: total must be >= 0, got ${total}`);
    this.total = total;
    this.#label = options.label ?? "progress";
    this.#unit = options.unit ?? "it";
    this.#intervalMs = (options.intervalSec ?? 10) * 1000;
    this.#redrawMs = options.redrawMs ?? 200;
    this.#write = options.write ?? ((t) => Deno.stderr.writeSync(new TextEncoder().encode(t)));
    this.#now = options.now ?? (() => performance.now());
    this.#sink = options.sink;
    const mode = options.mode ?? "auto";
    this.mode = mode === "auto" ? (this.#sink ? "jupyter" : detectProgressMode()) : mode;
    if (this.mode === "jupyter") this.#sink ??= jupyterSink();
    if (this.mode === "jupyter" && !this.#sink) this.mode = "lines"; // asked for jupyter outside a kernel
    this.#start = this.#now();
  }

  /** Units done so far. */
  get count(): number {
    return this.#count;
  }

  /** Advances by `n` units; `info` (e.g. `{loss: 1.2}`) is shown after the bar. */
  tick(n = 1, info?: Record<string, unknown>): void {
    this.update(this.#count + n, info);
  }

  /** Sets the absolute count. */
  update(count: number, info?: Record<string, unknown>): void {
    if (this.#finished) return;
    this.#count = count;
    if (info) this.#info = { ...this.#info, ...info };
    const now = this.#now();
    const gap = this.mode === "lines" ? this.#intervalMs : this.#redrawMs;
    if (now - this.#last < gap) return;
    this.#last = now;
    this.#render(false);
  }

  /** The status line: label, count/total, percentage, rate, elapsed, ETA, info. */
  text(): string {
    const elapsed = (this.#now() - this.#start) / 1000;
    const rate = elapsed > 0 ? this.#count / elapsed : NaN;
    const parts = [this.#label];
    if (this.total !== undefined) {
      const pct = this.total > 0 ? (100 * this.#count) / this.total : 100;
      parts.push(`${this.#count}/${this.total} (${pct.toFixed(0)}%)`);
    } else parts.push(`${this.#count}`);
    parts.push(formatRate(rate, this.#unit), `elapsed ${formatProgressDuration(elapsed)}`);
    if (this.total !== undefined && this.#count < this.total) {
      parts.push(`ETA ${formatProgressDuration(rate > 0 ? (this.total - this.#count) / rate : NaN)}`);
    }
    const info = Object.entries(this.#info).map(([k, v]) => `${k}=${v}`).join(" ");
    if (info) parts.push(info);
    return parts.join(" | ");
  }

  /** The HTML bar shown in Jupyter. */
  html(): string {
    const frac = this.total ? Math.min(1, this.#count / this.total) : this.#finished ? 1 : 0;
    const colour = this.#finished ? "#2ca02c" : "#4269d0";
    return `<div style="font-family:monospace;font-size:12px">` +
      `<div style="width:320px;height:10px;background:#e5e5e5;border-radius:3px;display:inline-block;` +
      `vertical-align:middle;margin-right:8px"><div style="width:${(frac * 100).toFixed(1)}%;height:100%;` +
      `background:${colour};border-radius:3px"></div></div>${escapeHtml(this.text())}</div>`;
  }

  #render(final: boolean): void {
    if (this.mode === "silent") return;
    if (this.mode === "lines") this.#write(this.text() + "\n");
    else if (this.mode === "tty") this.#write("\r\x1b[2K" + this.text() + (final ? "\n" : ""));
    else {
      const bundle = { "text/html": this.html(), "text/plain": this.text() };
      const options = { displayId: this.#displayId, update: this.#shown };
      this.#shown = true;
      const sink = this.#sink!;
      // Display calls are async; chain them so updates arrive in order without blocking the loop.
      this.#chain = this.#chain.then(() => sink(bundle, options)).catch(() => {});
    }
  }

  /** Prints the final state (always, regardless of throttling) and waits for pending display updates. */
  async done(info?: Record<string, unknown>): Promise<void> {
    if (this.#finished) return await this.#chain;
    if (info) this.#info = { ...this.#info, ...info };
    this.#finished = true;
    this.#render(true);
    await this.#chain;
  }
}
