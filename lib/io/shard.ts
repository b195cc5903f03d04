/**
 * The pieces every resumable, shardable experiment harness shares (Recync, PhaseGPT): a results file holds
 * one JSON line per finished unit with a string `id`; a rerun reads the ids already there and skips them;
 * `--shard i/n` keeps the units whose plan index is i mod n, so n array-job tasks cover a plan exactly once.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShard, selectShard } from "./shard.ts";
 * const units = [0, 1, 2, 3, 4].map((index) => ({ index }));
 * assert.deepEqual(selectShard(units, parseShard("1/2")).map((u) => u.index), [1, 3]);
 * ```
 *
 * @module
 */
import { readJsonl } from "./atomic.ts";

/**
 * A shard selector `{index, count}` parsed from `i/n` (0-based i).
 *
 * @category IO
 */
export interface ShardSpec {
  /** This shard, 0 ≤ index < count. */
  index: number;
  /** Number of shards. */
  count: number;
}

/**
 * Parses `--shard i/n` (0-based i, as Slurm's `$SLURM_ARRAY_TASK_ID` with `--array=0-(n-1)`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseShard } from "./shard.ts";
 * assert.deepEqual(parseShard("2/8"), { index: 2, count: 8 });
 * assert.throws(() => parseShard("8/8"), /0 <= i < n/);
 * ```
 *
 * @category IO
 */
export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`--shard "${text}": expected i/n with integers, e.g. 0/4`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || index >= count) throw new Error(`--shard "${text}": need 0 <= i < n and n >= 1`);
  return { index, count };
}

/**
 * The units of one shard: plan index mod count == shard index (all units without a shard).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { selectShard } from "./shard.ts";
 * assert.deepEqual(selectShard([{ index: 0 }, { index: 1 }, { index: 2 }], { index: 1, count: 2 }), [{ index: 1 }]);
 * ```
 *
 * @category IO
 */
export function selectShard<U extends { index: number }>(units: U[], shard?: ShardSpec): U[] {
  if (!shard) return units;
  return units.filter((u) => u.index % shard.count === shard.index);
}

/**
 * The ids of the units already finished in a results file (a missing file: none). A torn last line (a
 * crash during an append) is ignored, so that unit is redone.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finishedIds } from "./shard.ts";
 * assert.equal((await finishedIds("/nonexistent/results.jsonl")).size, 0);
 * ```
 *
 * @category IO
 */
export async function finishedIds(path: string): Promise<Set<string>> {
  const { records } = await readJsonl<{ id?: unknown }>(path, { allowMissing: true });
  const ids = new Set<string>();
  for (const r of records) if (typeof r?.id === "string") ids.add(r.id);
  return ids;
}
