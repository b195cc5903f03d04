/**
 * Backend selection and the doctor report.
 *
 * @module
 */
export * from "./backend.ts";
export * from "./doctor.ts";
