/**
 * PhaseGPT: Kuramoto phase-coupled oscillators as a sequence mixer (spec `phasegpt.md`). Importing this
 * module registers the `kuramoto` mixer kind and the `phasegpt-*` model presets.
 *
 * @module
 */
export {
  addFrequencyJitter,
  addPhaseNoise,
  COHERENCE_MODES,
  type CoherenceMode,
  type CoherenceOptions,
  coherenceRegularizer,
  COUPLING_DIVISORS,
  COUPLING_SIGNS,
  type CouplingDivisor,
  type CouplingSign,
  kuramotoStep,
  type KuramotoStepOptions,
  type NoiseSource,
  ORDER_PARAMETER_DEFINITIONS,
  orderParameter,
  type OrderParameterDefinition,
  wrapPhase,
} from "./primitives.ts";
export {
  KURAMOTO_OPTION_KEYS,
  KURAMOTO_PRESETS,
  kuramotoMixer,
  type KuramotoOptions,
  type KuramotoPreset,
  PhaseInputState,
  type PhaseReadout,
  PrefixSumState,
  type PrefixTotals,
  type ResolvedKuramotoOptions,
  resolveKuramotoOptions,
} from "./mixer.ts";
export {
  createPhaseGPT,
  PHASE_A_PRESETS,
  PHASEGPT_SCALES,
  phaseGPTConfig,
  type PhaseGPTOptions,
  type PhaseGPTPresetSpec,
} from "./presets.ts";
export {
  causalityCheck,
  type CausalityCheckOptions,
  type CausalityReport,
  type CoherenceStats,
  CoherenceTracker,
  type CoherenceTrackerOptions,
} from "./diagnostics.ts";
export { phaseGPTFamily, phaseGPTHFConfig, phaseGPTWeights } from "./load.ts";
export * from "./experiments/mod.ts";
