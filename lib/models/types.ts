/**
 * The contracts shared by every model family, the generation loop and the trainer.
 *
 * Shapes use B = batch, T = new positions in this forward, L = cached columns, d = model width,
 * V = vocabulary, H = query heads, Hkv = key/value heads, hd = head width.
 *
 * @module
 */
import type { Scalar, Tensor, Tensor2D, Tensor3D, Variable } from "../tensor_types.ts";
import type { RopeScaling } from "../nn/rotary.ts";

/**
 * A decoder's architecture as plain data. The Hugging Face families (gpt2, gpt_neox, llama, qwen2) are
 * translated into this form from their `config.json`; from-scratch models are written in it directly.
 *
 * @category Models
 */
export interface DecoderConfig {
  /** Where the config came from: an HF `model_type` ("gpt2", "gpt_neox", "llama", "qwen2") or "scratch". */
  family: string;
  /** Vocabulary size V (rows of the token embedding). */
  vocabSize: number;
  /** Model width d. */
  dModel: number;
  /** Number of transformer blocks. */
  nLayers: number;
  /** Number of query heads H. */
  nHeads: number;
  /** Key/value heads (grouped-query attention); equals nHeads for multi-head attention. */
  nKvHeads: number;
  /** Per-head width; usually dModel / nHeads. */
  headDim: number;
  /** Hidden width of the MLP (for SwiGLU: the width of the gate and up projections). */
  dMlp: number;
  /** Longest sequence (learned position table size, rotary cache size). */
  maxPositions: number;
  /** Normalisation kind used in every block and at the end. */
  norm: "layernorm" | "rmsnorm";
  /** Epsilon inside the norms. */
  normEps: number;
  /** "learned": a position table added to the embedding (GPT-2); "rotary": RoPE on q and k. */
  positional: "learned" | "rotary";
  /** Rotary: how many leading dims of each head are rotated (NeoX rotary_pct * headDim); defaults to headDim. */
  rotaryDim?: number;
  /** Rotary base (rope_theta). */
  ropeTheta?: number;
  /** Rotary frequency scaling (HF `rope_type` "linear" or "llama3"); absent = plain RoPE. */
  ropeScaling?: RopeScaling;
  /** MLP kind and activation. "gelu" is exact erf GELU, "gelu_new"/"gelu_tanh" the tanh approximation. */
  mlp: "gelu" | "gelu_new" | "gelu_tanh" | "relu" | "swiglu";
  /** NeoX parallel residual: x + attn(ln1(x)) + mlp(ln2(x)). */
  parallelResidual: boolean;
  /** Biases on q, k, v projections. */
  qkvBias: boolean;
  /** Bias on the attention output projection. */
  attnOutBias: boolean;
  /** Biases on the MLP projections. */
  mlpBias: boolean;
  /** Whether norms carry a bias (LayerNorm); RMSNorm has none. */
  normBias: boolean;
  /** LM head shares the token embedding matrix. */
  tieEmbeddings: boolean;
  /** Dropout probability used only when forward runs with `training: true`. */
  dropout?: number;
  /** The input embedding and LM head by registered kind (default `{ kind: "standard" }`). */
  embedding?: ComponentSpec;
  /**
   * Each layer's sequence mixer by registered kind (default `[{ kind: "attention" }]`, every layer); later
   * entries override earlier ones for the layers they list, e.g.
   * `[{ kind: "attention" }, { kind: "kuramoto", layers: [7] }]`.
   */
  mixers?: MixerSpec[];
}

/**
 * A component chosen by `kind`, with its options as plain data.
 *
 * @category Models
 */
export interface ComponentSpec {
  /** The registered kind (see `embeddingKinds()` / `mixerKinds()`). */
  kind: string;
  /** Kind-specific options. */
  [option: string]: unknown;
}

/**
 * A mixer spec: a component spec plus the layers it applies to.
 *
 * @category Models
 */
export interface MixerSpec extends ComponentSpec {
  /** Layer indices, or "all" (default). */
  layers?: number[] | "all";
}

/**
 * Every field of {@linkcode DecoderConfig}, as a runtime list that the compiler keeps complete (a new
 * field that is not added here is a type error), so config validators never re-list fields by hand.
 *
 * @category Models
 */
export const DECODER_CONFIG_FIELDS: Record<keyof DecoderConfig, true> = {
  family: true,
  vocabSize: true,
  dModel: true,
  nLayers: true,
  nHeads: true,
  nKvHeads: true,
  headDim: true,
  dMlp: true,
  maxPositions: true,
  norm: true,
  normEps: true,
  positional: true,
  rotaryDim: true,
  ropeTheta: true,
  ropeScaling: true,
  mlp: true,
  parallelResidual: true,
  qkvBias: true,
  attnOutBias: true,
  mlpBias: true,
  normBias: true,
  tieEmbeddings: true,
  dropout: true,
  embedding: true,
  mixers: true,
};

/**
 * A hook: receives an activation and may return a replacement of the same shape (or nothing to keep it).
 * It runs inside the model's `tf.tidy`, so it must not keep tensors without `tf.keep`.
 *
 * @category Models
 */
export type HookFn = (activation: Tensor, context: HookContext) => Tensor | void;

/**
 * Where a hook fired.
 *
 * @category Models
 */
export interface HookContext {
  /** Full hook name, e.g. `blocks.3.hook_resid_post`. */
  name: string;
  /** Block index for block-level hooks; undefined for `hook_embed` and `ln_final.*`. */
  layer?: number;
}

/**
 * Hook registrations by exact hook name.
 *
 * @category Models
 */
export type Hooks = Record<string, HookFn | HookFn[]>;

/**
 * Token ids as the model takes them: an int32 tensor [batch, time], or plain numbers (`[[1, 2, 3]]`, or
 * `[1, 2, 3]` for one row) or typed arrays.
 *
 * @category Models
 */
export type ModelInputIds = Tensor2D | ArrayLike<number> | readonly ArrayLike<number>[];

/**
 * Options for one forward pass.
 *
 * @category Models
 */
export interface ForwardOptions {
  /** Key/value cache to extend with this forward's positions (generation). Mutated in place. */
  cache?: KVCacheLike;
  /**
   * Position ids [B, T]; default: the cache's next position per row, counting on (0..T-1 without cache).
   */
  positions?: Tensor2D;
  /**
   * [B, T] with 1 for real tokens and 0 for padding (left-padded ragged prompts). Padding columns are
   * never attended to and are stored in the cache as invalid. Default: all real.
   */
  attentionMask?: Tensor2D;
  /** Hooks to run (run-with-hooks). Zero cost when absent. */
  hooks?: Hooks;
  /** Hook names whose activations to return in `activations` (run-with-cache); `true` = all. */
  capture?: string[] | true;
  /** Compute logits only for the last position of each row ([B, 1, V]); saves the LM head on prefill. */
  lastOnly?: boolean;
  /**
   * Next-token targets `[B, T]`: when the embedding can score them without the full logit tensor (reFlow's
   * chunked head at large B·T·V), the result carries `loss` and its `logits` hold the last position only.
   */
  targets?: Tensor2D;
  /** Training mode: dropout active, no cache. */
  training?: boolean;
  /** Seed for dropout masks in training mode. */
  dropoutSeed?: number;
}

/**
 * The result of one forward pass. The caller owns (and must dispose) every tensor in it.
 *
 * @category Models
 */
export interface ForwardResult {
  /** [B, T, V] (or [B, 1, V] with `lastOnly`, or when `loss` is present). */
  logits: Tensor3D;
  /** Mean cross-entropy against `ForwardOptions.targets`, when the embedding computed it (then `logits` is the last position). */
  loss?: Scalar;
  /** Final hidden state after the final norm, [B, T, d] (or [B, 1, d] with `lastOnly`). */
  hidden: Tensor3D;
  /** Residual stream before the final norm, same shape as `hidden`. */
  residual: Tensor3D;
  /** Captured activations by hook name (only with `capture`). */
  activations?: Map<string, Tensor>;
  /**
   * Auxiliary loss terms the components computed (scalars with gradients), by name; present only when a
   * component added one. Terms of the same name from several layers are summed.
   */
  aux?: Record<string, Scalar>;
  /** Named scalar metrics (e.g. `blocks.7.attn.R`), logged but never part of the loss. */
  metrics?: Record<string, Scalar>;
}

/**
 * The per-sequence state of generation (every layer's mixer state, e.g. keys and values) with per-row
 * rewind. Each row (sequence) keeps its own valid length and
 * next position, so one sequence of a batch can be truncated without touching the others.
 *
 * @category Models
 */
export interface KVCacheLike {
  /** Rows (batch size). */
  readonly batchSize: number;
  /** Next position id of each row (= number of valid cached positions in that row). */
  rowLengths(): number[];
  /** Truncates every row to `length` valid positions. */
  truncate(length: number): void;
  /** Truncates one row to `length` valid positions, leaving the other rows untouched. */
  truncateRow(row: number, length: number): void;
  /** Keeps only these rows, in this order (the batch size becomes `rows.length`). */
  selectRows(rows: number[]): void;
  /** Frees every tensor the cache holds. */
  dispose(): void;
}

/**
 * A causal language model: the one interface generation, hooks, Recync and training rely on.
 *
 * @category Models
 */
export interface CausalLM {
  /** The architecture this model was built from. */
  readonly config: DecoderConfig;
  /** Every hook name this model can fire, in execution order. */
  readonly hookNames: string[];
  /** One forward pass; `ids` is an int32 [batch, time] tensor or plain numbers (`[[1, 2, 3]]`, typed arrays). */
  forward(ids: ModelInputIds, options?: ForwardOptions): ForwardResult;
  /** A fresh, empty cache for `batchSize` rows (`capacity`: positions expected, a preallocation hint). */
  createCache(batchSize: number, options?: { capacity?: number }): KVCacheLike;
  /** Trainable parameters by canonical name. */
  parameters(): Map<string, Variable>;
  /** Frees the weights. */
  dispose(): void;
}
