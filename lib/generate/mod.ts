/**
 * Generation: the on-device batch sampler, and the streaming `generate()` loop with
 * per-step cosim, probes, callbacks, rewind and batching.
 *
 * @example
 * ```ts
 * import { tf } from "../../mod.ts";
 * import { createDecoder, gpt2NewConfig } from "../models/scratch.ts";
 * import { Prng } from "../random/prng.ts";
 * import { generate } from "./mod.ts";
 * await tf.setBackend("cpu");
 * const rng = new Prng(1);
 * const model = createDecoder(gpt2NewConfig({ nLayers: 1, dModel: 16, nHeads: 2, vocabSize: 40, maxPositions: 32 }), {
 *   seed: rng.nextInt(1000),
 * });
 * const trace = await generate(model, [1, 2], { maxNewTokens: 4, seed: 2 }).collect();
 * console.log(trace.rows[0].tokens, trace.rows[0].cosims);
 * model.dispose();
 * ```
 *
 * @module
 */
export {
  sampleLogits,
  sampleOnHost,
  type SampleOutput,
  type SamplerPath,
  SAMPLING_PARAM_KEYS,
  type SamplingParams,
  TokenSampler,
  validateSamplingParams,
} from "./sampling.ts";
export {
  type FinishReason,
  GenerationTrace,
  type GenerationTraceOptions,
  type RewindEvent,
  type TraceRow,
  type TraceStats,
} from "./trace.ts";
export {
  generate,
  type GenerateOptions,
  generateText,
  type GenerateTextOptions,
  type GenerateTextResult,
  type GenerationControl,
  type GenerationPolicy,
  type GenerationProbe,
  type GenerationRun,
  type GenerationStep,
  type GenerationStepRow,
  type ProbeContext,
  type PromptIds,
  type StepCallback,
} from "./generate.ts";
