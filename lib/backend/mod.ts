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
