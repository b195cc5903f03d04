/**
 * nanoGPT token files (`train.bin` / `val.bin`: raw little-endian uint16 ids, no header) read by window,
 * never whole: OpenWebText's `train.bin` is ~17 GB. A `BatchSampler` over a {@linkcode BinTokenFile} draws
 * the same batches as over the ids in memory, reading only B·(T+1) ids per batch.
 *
 * @module
 */
import type { TokenWindows } from "./sampler.ts";

/**
 * A token file opened for random-access reads of id windows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BinTokenFile } from "./bin_files.ts";
 * const path = await Deno.makeTempFile({ suffix: ".bin" });
 * await Deno.writeFile(path, new Uint8Array(Uint16Array.from([5, 6, 7, 50256]).buffer));
 * const f = BinTokenFile.open(path);
 * assert.equal(f.length, 4);
 * assert.deepEqual(Array.from(f.read(1, 3)), [6, 7, 50256]);
 * f.close();
 * ```
 *
 * @example A BatchSampler over the file draws the batches it would draw over the ids in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { BinTokenFile } from "./bin_files.ts";
 * import { BatchSampler } from "./sampler.ts";
 * const ids = Uint16Array.from({ length: 500 }, (_, i) => (i * 7) % 50257);
 * const path = await Deno.makeTempFile({ suffix: ".bin" });
 * await Deno.writeFile(path, new Uint8Array(ids.buffer));
 * const file = BinTokenFile.open(path);
 * const a = new BatchSampler(file, { batchSize: 3, blockSize: 16, seed: 5 }).next();
 * const b = new BatchSampler(ids, { batchSize: 3, blockSize: 16, seed: 5 }).next();
 * assert.deepEqual([a.x, a.y], [b.x, b.y]);
 * file.close();
 * ```
 *
 * @category Data
 */
export class BinTokenFile implements TokenWindows {
  /** Number of ids in the file. */
  readonly length: number;
  /** The path read. */
  readonly path: string;
  /** Bytes per id. */
  readonly width: 2 | 4;
  #file: Deno.FsFile;

  private constructor(path: string, file: Deno.FsFile, bytes: number, width: 2 | 4) {
    this.path = path;
    this.#file = file;
    this.width = width;
    this.length = bytes / width;
  }

  /** Opens `path` (uint16 by default, as nanoGPT writes; uint32 for vocabularies above 65536). */
  static open(path: string, dtype: "uint16" | "uint32" = "uint16"): BinTokenFile {
    const width = dtype === "uint16" ? 2 : 4;
    let file: Deno.FsFile;
    try {
      file = Deno.openSync(path, { read: true });
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        throw new Error(`token file '${path}' not found (nanoGPT's prepare.py writes train.bin and val.bin)`);
      }
      throw e;
    }
    const bytes = file.statSync().size;
    if (bytes % width !== 0) {
      file.close();
      throw new Error(`token file '${path}' has ${bytes} bytes, not a whole number of ${dtype} ids`);
    }
    return new BinTokenFile(path, file, bytes, width);
  }

  /** `n` ids from `offset` (a fresh array; reads only those bytes). */
  read(offset: number, n: number): Uint16Array | Uint32Array {
    if (!(offset >= 0 && n >= 0 && offset + n <= this.length)) {
      throw new RangeError(
        `BinTokenFile.read(${offset}, ${n}) is outside '${this.path}' (${this.length} ids)`,
      );
    }
    const buf = new Uint8Array(n * this.width);
    this.#file.seekSync(offset * this.width, Deno.SeekMode.Start);
    let got = 0;
    while (got < buf.length) {
      const r = this.#file.readSync(buf.subarray(got));
      if (r === null || r === 0) throw new Error(`token file '${this.path}': unexpected end of file`);
      got += r;
    }
    return this.width === 2 ? new Uint16Array(buf.buffer) : new Uint32Array(buf.buffer);
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}
