/**
 * Learning-rate schedules as pure functions of the optimiser step.
 *
 * Steps count from 0: the first optimiser update uses `learningRate(schedule, 0)`.
 *
 * @module
 */

/**
 * A constant learning rate.
 *
 * @category Training
 */
export interface ConstantSchedule {
  /** Selects the constant schedule. */
  kind: "constant";
  /** The learning rate at every step. */
  lr: number;
  /** Optional linear warm-up from 0 over this many steps (default 0). */
  warmupSteps?: number;
}

/**
 * Linear warm-up from 0 to `lr` over `warmupSteps`, then a half-cosine from `lr` down to `minLr` over the
 * following steps until `decaySteps`, then flat at `minLr` (nanoGPT's schedule).
 *
 * @category Training
 */
export interface CosineSchedule {
  /** Selects the cosine schedule. */
  kind: "cosine";
  /** Peak learning rate. */
  lr: number;
  /** The floor reached at `decaySteps` and kept afterwards. */
  minLr: number;
  /** Steps of linear warm-up from 0. */
  warmupSteps: number;
  /** The step at which the cosine reaches `minLr` (counted from step 0, warm-up included). */
  decaySteps: number;
}

/**
 * Linear warm-up (optional), then a straight line from `lr` down to `minLr` at `decaySteps`, then flat.
 *
 * @category Training
 */
export interface LinearSchedule {
  /** Selects the linear-decay schedule. */
  kind: "linear";
  /** Peak learning rate. */
  lr: number;
  /** Floor reached at `decaySteps` and kept afterwards. */
  minLr: number;
  /** Steps of linear warm-up from 0 (default 0). */
  warmupSteps?: number;
  /** Step at which the decay reaches `minLr` (warm-up included). */
  decaySteps: number;
}

/**
 * PhaseGPT's `LambdaLR` (spec §4.3): multiplier s / W during warm-up (so the first update runs at lr 0),
 * then max(floor, ½(1 + cos(π·(s − W) / (totalSteps − W)))) with π written as 3.14159 and the cosine in
 * float32, as the original code does: the multiplier equals the original's to one float32 ulp (6e-8; torch's
 * float32 cosine is not always correctly rounded).
 *
 * @category Training
 */
export interface LambdaCosineFloorSchedule {
  /** Selects PhaseGPT's LambdaLR. */
  kind: "lambda-cosine-floor";
  /** Peak (base) learning rate. */
  lr: number;
  /** Warm-up steps W (the original: 100). */
  warmupSteps: number;
  /** Total optimiser steps of the run (the original: batches per epoch × epochs). */
  totalSteps: number;
  /** Lowest multiplier (default 0.1, the original's floor). */
  floor?: number;
}

/**
 * Any of the learning-rate schedules, told apart by `kind`.
 *
 * @category Training
 */
export type LrSchedule = ConstantSchedule | CosineSchedule | LinearSchedule | LambdaCosineFloorSchedule;

/**
 * The schedule kinds, for validation messages.
 *
 * @category Training
 */
export const LR_SCHEDULE_KINDS: readonly string[] = ["constant", "cosine", "linear", "lambda-cosine-floor"];

/**
 * The multiplier of PhaseGPT's LambdaLR at step `step` (see {@linkcode LambdaCosineFloorSchedule}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lambdaCosineFloor } from "./schedule.ts";
 * assert.equal(lambdaCosineFloor(0, 100, 1100), 0); // first update at lr 0
 * assert.equal(lambdaCosineFloor(50, 100, 1100), 0.5);
 * assert.equal(lambdaCosineFloor(100, 100, 1100), 1);
 * assert.equal(lambdaCosineFloor(1099, 100, 1100), 0.1); // the floor
 * ```
 *
 * @category Training
 */
export function lambdaCosineFloor(
  step: number,
  warmupSteps: number,
  totalSteps: number,
  floor = 0.1,
): number {
  if (step < warmupSteps) return step / warmupSteps;
  // As the original: π written as 3.14159, and the cosine taken on a float32 tensor (torch.cos), so the
  // argument, the cosine and ½(1 + cos) are float32 values.
  const progress = (step - warmupSteps) / (totalSteps - warmupSteps);
  const f = Math.fround;
  return Math.max(floor, f(0.5 * f(1 + f(Math.cos(f(3.14159 * progress))))));
}

/**
 * The learning rate for optimiser step `step` (0-based).
 *
 * Warm-up is `lr * step / warmupSteps`, so the first update runs at learning rate 0 as in nanoGPT and
 * PhaseGPT; choose `warmupSteps: 0` to start at the full rate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { learningRate } from "./schedule.ts";
 * const s = { kind: "cosine", lr: 1e-3, minLr: 1e-4, warmupSteps: 10, decaySteps: 110 } as const;
 * const near = (a: number, b: number) => Math.abs(a - b) < 1e-12;
 * assert.ok(near(learningRate(s, 5), 0.0005)); // half-way through warm-up
 * assert.ok(near(learningRate(s, 60), 0.00055)); // half-way down the cosine
 * assert.ok(near(learningRate(s, 500), 0.0001)); // the floor
 * ```
 *
 * @category Training
 */
export function learningRate(schedule: LrSchedule, step: number): number {
  if (!Number.isFinite(step) || step < 0) {
    throw new RangeError(`learningRate: step must be >= 0, got ${step}`);
  }
  if (schedule.kind === "lambda-cosine-floor") {
    return schedule.lr * lambdaCosineFloor(step, schedule.warmupSteps, schedule.totalSteps, schedule.floor);
  }
  const warmup = schedule.warmupSteps ?? 0;
  if (step < warmup) return schedule.lr * step / warmup;
  switch (schedule.kind) {
    case "constant":
      return schedule.lr;
    case "cosine": {
      if (step >= schedule.decaySteps) return schedule.minLr;
      const ratio = (step - warmup) / (schedule.decaySteps - warmup);
      const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
      return schedule.minLr + coeff * (schedule.lr - schedule.minLr);
    }
    case "linear": {
      if (step >= schedule.decaySteps) return schedule.minLr;
      const ratio = (step - warmup) / (schedule.decaySteps - warmup);
      return schedule.lr + ratio * (schedule.minLr - schedule.lr);
    }
    default:
      throw new Error(
        `unknown learning-rate schedule kind '${(schedule as { kind: string }).kind}': use one of ${
          LR_SCHEDULE_KINDS.join(", ")
        }`,
      );
  }
}

/**
 * Checks a schedule's fields and returns it, or throws one message naming the bad field and what is allowed.
 *
 * @example
 * ```ts
 * import { validateSchedule } from "./schedule.ts";
 * validateSchedule({ kind: "constant", lr: 3e-4 }); // ok
 * ```
 *
 * @category Training
 */
export function validateSchedule(schedule: LrSchedule, where = "schedule"): LrSchedule {
  const s = schedule as unknown as Record<string, unknown>;
  if (typeof s !== "object" || s === null) throw new Error(`${where} must be an object with a 'kind'`);
  if (!LR_SCHEDULE_KINDS.includes(s.kind as string)) {
    throw new Error(`${where}.kind is '${s.kind}': use one of ${LR_SCHEDULE_KINDS.join(", ")}`);
  }
  const positive = (key: string, optional = false, allowZero = false) => {
    const v = s[key];
    if (v === undefined && optional) return;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
      throw new Error(
        `${where}.${key} must be a ${allowZero ? "non-negative" : "positive"} number, got ${v}`,
      );
    }
  };
  positive("lr");
  if (schedule.kind === "lambda-cosine-floor") {
    positive("warmupSteps", false, true);
    positive("totalSteps");
    const floor = schedule.floor ?? 0.1;
    if (typeof floor !== "number" || !(floor >= 0 && floor <= 1)) {
      throw new Error(`${where}.floor must be a number in [0, 1], got ${schedule.floor}`);
    }
    if (schedule.totalSteps <= schedule.warmupSteps) {
      throw new Error(
        `${where}.totalSteps (${schedule.totalSteps}) must exceed warmupSteps (${schedule.warmupSteps})`,
      );
    }
    return schedule;
  }
  positive("warmupSteps", schedule.kind !== "cosine", true);
  if (schedule.kind !== "constant") {
    positive("minLr", false, true);
    positive("decaySteps");
    if (schedule.decaySteps <= (schedule.warmupSteps ?? 0)) {
      throw new Error(
        `${where}.decaySteps (${schedule.decaySteps}) must exceed warmupSteps (${schedule.warmupSteps})`,
      );
    }
  }
  return schedule;
}
