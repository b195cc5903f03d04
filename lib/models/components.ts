/**
 * The component contract: how a variant of the decoder is described as plain data and built from a
 * registry. A decoder has one input/output embedding and one sequence mixer per layer; each is chosen by
 * `kind` in {@linkcode DecoderConfig} (`embedding: { kind, ...options }`, `mixers: [{ kind, layers, ...options }]`)
 * and implemented by one registered object that declares its parameters (names, shapes, initialisers),
 * its hook points, optional per-sequence state for generation and optional auxiliary losses and metrics.
 *
 * The decoder, the trainer, the loaders and `countParameters` only read these declarations, so a research
 * layer (reFlow, PhaseGPT) is a folder that calls {@linkcode registerEmbedding} / {@linkcode registerMixer}
 * and never edits the decoder.
 *
 * @module
 */
import type { Scalar, Tensor, Tensor2D, Tensor3D, Tensor4D, Variable } from "../tensor_types.ts";
import type { RotaryTable } from "../nn/rotary.ts";
import type { ComponentSpec, DecoderConfig, MixerSpec } from "./types.ts";

/**
 * How a parameter is initialised by `createDecoder`. `"normal"`: N(0, std²) with the model's std;
 * `"residual"`: the same, scaled by 1/sqrt(2·nLayers) under the default "scaled" init (residual output
 * projections); `"ones"`, `"zeros"`; `{ std }`: N(0, std²) with this std; `{ fill }`: a constant.
 *
 * @category Models
 */
export type ParameterInit = "normal" | "residual" | "ones" | "zeros" | { std: number } | { fill: number };

/**
 * One declared parameter.
 *
 * @category Models
 */
export interface ParameterSpec {
  /** Its shape. */
  shape: number[];
  /** Its initialiser. */
  init: ParameterInit;
}

/**
 * Fires a hook point: runs registered hooks (which may replace the activation) and records captures.
 * `null` when the forward has neither hooks nor captures, so call sites test one flag.
 *
 * @category Models
 */
export type HookFire = ((name: string, layer: number | undefined, t: Tensor) => Tensor) | null;

/**
 * What every component sees during one forward pass besides its input.
 *
 * @category Models
 */
export interface ComponentContext {
  /** Hook dispatcher (null = no hooks). */
  fire: HookFire;
  /** Training mode (dropout on, no cache). */
  training: boolean;
  /**
   * Adds an auxiliary loss term (a scalar with gradients). Terms of the same name from several layers are
   * summed; the trainer adds `weight × term` to the loss when the training config gives the name a weight.
   */
  loss(name: string, value: Scalar): void;
  /** Records a named scalar metric (logged, never part of the loss); mixers get their layer prefix. */
  metric(name: string, value: Scalar): void;
}

/**
 * Per-forward state shared by the mixers.
 *
 * @category Models
 */
export interface MixerContext extends ComponentContext {
  /** This layer's index. */
  layer: number;
  /** Additive attention mask `[B, 1, T, L + T]` (see `attentionMaskBias`); absent when nothing is masked. */
  maskBias?: Tensor4D;
  /** Validity of the cached columns followed by the new ones, `[B, L + T]` (1 = real); absent = all valid. */
  valid?: Tensor2D;
  /** Position ids `[B, T]`. */
  positions: Tensor2D;
  /** RoPE angles for `positions`, when the model is rotary. */
  rope?: { table: RotaryTable; angles: { cos: Tensor4D; sin: Tensor4D } };
  /** This layer's per-sequence state when generating with a cache (what `createState` returned), else null. */
  state: MixerState | null;
  /** Dropout on attention-like weights (training only). */
  dropout?: { rate: number; seed: number };
}

/**
 * A mixer's per-sequence state for generation (softmax attention: its keys and values). The cache keeps
 * one per layer, aligned with its columns: column c of every layer state belongs to the same position
 * slot, and each row's validity over the columns is kept by the cache (a rewound row just invalidates its
 * columns, so most states need no rewind logic of their own).
 *
 * @category Models
 */
export interface MixerState {
  /** Takes the update a forward returned (called only after the whole forward succeeded); keeps its tensors. */
  commit(update: unknown): void;
  /** Keeps only these columns, in this order (dropping trailing or unused columns after a rewind). */
  keepColumns(columns: number[]): void;
  /** Keeps only these rows, in this order (beam pruning, dropping finished rows). */
  selectRows(rows: number[]): void;
  /** Told after row `row` was truncated to `length` valid positions (for states that keep running sums). */
  truncateRow?(row: number, length: number): void;
  /** Frees the state's tensors. */
  dispose(): void;
}

/**
 * A layer's token mixer, built by a {@linkcode MixerKind}.
 *
 * @category Models
 */
export interface SequenceMixer {
  /**
   * Mixes `x` `[B, T, d]` (already normalised). Returns the output and, when `ctx.state` is set, the
   * update for the state (committed by the cache after the forward succeeds).
   */
  forward(x: Tensor3D, ctx: MixerContext): { out: Tensor3D; update?: unknown };
  /**
   * A fresh per-sequence state for `batchSize` rows; absent = the mixer keeps nothing across steps.
   * `capacity`, when given, is how many columns the caller expects to store (a hint for preallocation).
   */
  createState?(batchSize: number, options?: { capacity?: number }): MixerState;
}

/**
 * Input embedding and LM head, built by an {@linkcode EmbeddingKind}.
 *
 * @category Models
 */
export interface EmbeddingComponent {
  /** Ids `[B, T]` and positions `[B, T]` to the residual stream `[B, T, d]`. */
  embed(ids: Tensor2D, positions: Tensor2D, ctx: ComponentContext): Tensor3D;
  /** Final hidden `[B, T, d]` to logits `[B, T, V]`. */
  unembed(hidden: Tensor3D, ctx: ComponentContext): Tensor3D;
  /**
   * Optional: the mean cross-entropy of the final hidden `[B, T, d]` against `targets` `[B, T]` computed
   * without the full `[B, T, V]` logits (e.g. in chunks), or null to let the caller use the logits. The
   * decoder asks for it when a forward is given `targets`.
   */
  loss?(hidden: Tensor3D, targets: Tensor2D, ctx: ComponentContext): Scalar | null;
  /** Frees derived tensors the component keeps (not the parameters). */
  dispose?(): void;
}

/**
 * A registered embedding implementation.
 *
 * @category Models
 */
export interface EmbeddingKind {
  /** The `kind` that selects it in `DecoderConfig.embedding`. */
  readonly kind: string;
  /** Option keys it accepts besides `kind` (others are errors). */
  readonly options: readonly string[];
  /** Throws a message naming the field when the options or the config do not fit. */
  validate?(spec: ComponentSpec, config: DecoderConfig): void;
  /**
   * Its parameters by full name. Names starting with `unembed.` are output-side and are listed after the
   * blocks (the Hugging Face order); all others come first.
   */
  parameters(spec: ComponentSpec, config: DecoderConfig): Map<string, ParameterSpec>;
  /** Its hook names (top level, e.g. `hook_embed`; output-side ones start with `unembed.`), in firing order. */
  hookNames(spec: ComponentSpec, config: DecoderConfig): string[];
  /** Builds it over the model's parameters. */
  create(spec: ComponentSpec, config: DecoderConfig, params: Map<string, Variable>): EmbeddingComponent;
}

/**
 * A registered mixer implementation.
 *
 * @category Models
 */
export interface MixerKind {
  /** The `kind` that selects it in `DecoderConfig.mixers`. */
  readonly kind: string;
  /** Option keys it accepts besides `kind` and `layers`. */
  readonly options: readonly string[];
  /** Throws a message naming the field when the options or the config do not fit. */
  validate?(spec: MixerSpec, config: DecoderConfig): void;
  /** Its parameters for layer `layer`, by full name (`blocks.{layer}.attn.*`). */
  parameters(spec: MixerSpec, config: DecoderConfig, layer: number): Map<string, ParameterSpec>;
  /** Its hook suffixes under `blocks.{layer}.attn.`, in firing order. */
  hookPoints(spec: MixerSpec, config: DecoderConfig, layer: number): string[];
  /** Builds layer `layer`'s mixer over the model's parameters. */
  create(spec: MixerSpec, config: DecoderConfig, params: Map<string, Variable>, layer: number): SequenceMixer;
}

const embeddings = new Map<string, EmbeddingKind>();
const mixers = new Map<string, MixerKind>();

/**
 * Registers an embedding kind (a research layer calls this from its own folder). Registering a kind
 * twice with a different object is an error, so two layers cannot silently shadow each other.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { embeddingKind, registerEmbedding } from "./components.ts";
 * import "./standard_components.ts";
 * // A variant that reuses the standard table under its own name.
 * registerEmbedding({ ...embeddingKind("standard"), kind: "my-table" });
 * assert.equal(embeddingKind("my-table").kind, "my-table");
 * ```
 *
 * @category Models
 */
export function registerEmbedding(kind: EmbeddingKind): void {
  register(embeddings, kind, "embedding");
}

/**
 * Registers a mixer kind; see {@linkcode registerEmbedding}.
 *
 * @category Models
 */
export function registerMixer(kind: MixerKind): void {
  register(mixers, kind, "mixer");
}

/**
 * The registered embedding kinds, sorted.
 *
 * @category Models
 */
export function embeddingKinds(): string[] {
  return [...embeddings.keys()].sort();
}

/**
 * The registered mixer kinds, sorted.
 *
 * @category Models
 */
export function mixerKinds(): string[] {
  return [...mixers.keys()].sort();
}

/**
 * The embedding kind named `kind`; an unknown kind is an error listing the registered ones.
 *
 * @category Models
 */
export function embeddingKind(kind: string): EmbeddingKind {
  const k = embeddings.get(kind);
  if (!k) {
    throw new Error(
      `unknown embedding kind '${kind}'; registered: ${embeddingKinds().join(", ")} ` +
        "(a research layer registers its kinds when its module is imported, e.g. from mod.ts)",
    );
  }
  return k;
}

/**
 * The mixer kind named `kind`; an unknown kind is an error listing the registered ones.
 *
 * @category Models
 */
export function mixerKind(kind: string): MixerKind {
  const k = mixers.get(kind);
  if (!k) {
    throw new Error(
      `unknown mixer kind '${kind}'; registered: ${mixerKinds().join(", ")} ` +
        "(a research layer registers its kinds when its module is imported, e.g. from mod.ts)",
    );
  }
  return k;
}

function register<K extends { kind: string }>(map: Map<string, K>, kind: K, what: string): void {
  if (typeof kind.kind !== "string" || !/^[a-z][a-z0-9_-]*$/.test(kind.kind)) {
    throw new Error(`register ${what}: kind must be a lower-case name, got ${JSON.stringify(kind.kind)}`);
  }
  const old = map.get(kind.kind);
  if (old && old !== kind) throw new Error(`register ${what}: kind '${kind.kind}' is already registered`);
  map.set(kind.kind, kind);
}

/**
 * The default embedding spec (token table, plus learned positions when the config says so).
 *
 * @category Models
 */
export const STANDARD_EMBEDDING: ComponentSpec = { kind: "standard" };
/**
 * The default mixer spec (causal softmax attention in every layer).
 *
 * @category Models
 */
export const STANDARD_MIXERS: MixerSpec[] = [{ kind: "attention" }];

/**
 * Each layer's mixer spec: later entries of `config.mixers` override earlier ones for the layers they
 * name (`layers` absent or `"all"` = every layer). Checks kinds, layer indices and option keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { layerMixers } from "./components.ts";
 * import { gpt2NewConfig } from "./scratch.ts";
 * const c = gpt2NewConfig({ nLayers: 3, dModel: 64, nHeads: 4 });
 * assert.deepEqual(layerMixers(c).map((m) => m.kind), ["attention", "attention", "attention"]);
 * ```
 *
 * @category Models
 */
export function layerMixers(config: DecoderConfig): MixerSpec[] {
  const list = config.mixers ?? STANDARD_MIXERS;
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error("DecoderConfig.mixers: must be a non-empty list of { kind, layers?, ...options }");
  }
  const out: MixerSpec[] = new Array(config.nLayers);
  list.forEach((spec, i) => {
    const where = `DecoderConfig.mixers[${i}]`;
    if (spec === null || typeof spec !== "object" || typeof spec.kind !== "string") {
      throw new Error(`${where}: must be an object with a string 'kind' (one of ${mixerKinds().join(", ")})`);
    }
    const kind = mixerKind(spec.kind);
    checkOptions(spec, ["kind", "layers", ...kind.options], where);
    const layers = spec.layers === undefined || spec.layers === "all"
      ? Array.from({ length: config.nLayers }, (_, l) => l)
      : spec.layers;
    if (!Array.isArray(layers)) throw new Error(`${where}.layers: must be "all" or a list of layer indices`);
    for (const l of layers) {
      if (!Number.isInteger(l) || l < 0 || l >= config.nLayers) {
        throw new Error(
          `${where}.layers: ${l} is not a layer index of this ${config.nLayers}-layer model ` +
            `(use integers 0..${config.nLayers - 1}, or "all")`,
        );
      }
      out[l] = spec;
    }
    kind.validate?.(spec, config);
  });
  for (let l = 0; l < config.nLayers; l++) {
    if (!out[l]) {
      throw new Error(`DecoderConfig.mixers: no entry covers layer ${l}; add one with layers: "all"`);
    }
  }
  return out;
}

/**
 * The embedding spec of `config`, checked (kind registered, option keys known).
 *
 * @category Models
 */
export function embeddingSpec(config: DecoderConfig): ComponentSpec {
  const spec = config.embedding ?? STANDARD_EMBEDDING;
  if (spec === null || typeof spec !== "object" || typeof spec.kind !== "string") {
    throw new Error(
      `DecoderConfig.embedding: must be an object with a string 'kind' (one of ${
        embeddingKinds().join(", ")
      })`,
    );
  }
  const kind = embeddingKind(spec.kind);
  checkOptions(spec, ["kind", ...kind.options], "DecoderConfig.embedding");
  kind.validate?.(spec, config);
  return spec;
}

function checkOptions(spec: object, allowed: string[], where: string): void {
  for (const k of Object.keys(spec)) {
    if (!allowed.includes(k)) {
      throw new Error(`${where}: unknown option '${k}'; allowed: ${allowed.join(", ")}`);
    }
  }
}
