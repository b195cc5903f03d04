/**
 * Backend selection and the doctor report.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./doctor.ts";
export * from "./wasm_matmul.ts";
export * from "./decode_attention.ts";
export * from "./wasm_heap.ts";
export * from "./wasm_identity.ts";
export * from "./native_blas.ts";
export * from "./native_kernels.ts";
export * from "./wasm_gather.ts";
export * from "./wasm_gelu.ts";
export * from "./webgpu_matmul.ts";
export { fusedLayerNorm, fusedNormCalls, fusedRmsNorm } from "./webgpu_norm.ts";
export { fusedAttention, fusedAttentionCalls } from "./webgpu_fused_attention.ts";
