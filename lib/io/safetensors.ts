/**
 * Reader and writer for the safetensors format (Hugging Face's weight file format).
 *
 * Layout: 8 bytes little-endian u64 header length N, N bytes of UTF-8 JSON header
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}}`), then the data
 * section; offsets are relative to the data section and must tile it exactly.
 *
 * Files are read tensor by tensor with seeks, so multi-GiB checkpoints never sit in one buffer; each
 * tensor lands in a fresh, aligned buffer (misaligned offsets are thereby copied). F16 and BF16 are
 * upcast exactly to Float32Array; I64/U64 become Int32Array when every value fits (else a clear error),
 * or BigInt64Array/BigUint64Array with `{ int64: "bigint" }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/w.safetensors";
 * await writeSafetensors(path, { w: { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
 * const tensors = await readSafetensors(path);
 * assert.deepEqual(tensors.get("w")?.data, new Float32Array([1, 2, 3, 4]));
 * ```
 *
 * @module
 */
import { type AtomicWriteOptions, writeFileAtomicWith } from "./atomic.ts";
import { assertSafeRelativePath, notRegularFileReason } from "./paths.ts";

/**
 * Element types of the safetensors format this module reads and writes.
 *
 * @category IO
 */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/**
 * Bytes per element of each supported dtype.
 *
 * @category IO
 */
export const SAFETENSORS_DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

/**
 * Headers larger than this are refused as corrupt (the reference implementation uses the same bound).
 *
 * @category IO
 */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

/**
 * The typed array a tensor is decoded into: F64 -> Float64Array; F32/F16/BF16 -> Float32Array;
 * I64/U64 -> Int32Array (or BigInt64Array/BigUint64Array on request); I32 -> Int32Array; I16 -> Int16Array;
 * I8 -> Int8Array; U32 -> Uint32Array; U16 -> Uint16Array; U8 and BOOL -> Uint8Array (BOOL as 0/1).
 *
 * @category IO
 */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint32Array
  | Uint16Array
  | Uint8Array
  | BigInt64Array
  | BigUint64Array;

/**
 * A decoded tensor. `dtype` is the dtype stored in the file; `data` is row-major.
 *
 * @category IO
 */
export interface LoadedTensor {
  /** The tensor's name in the file. */
  name: string;
  /** The dtype stored in the file (the data may be upcast, see {@link SafetensorsData}). */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first ([] for a scalar). */
  shape: number[];
  /** Row-major values. */
  data: SafetensorsData;
}

/**
 * What the header says about one tensor.
 *
 * @category IO
 */
export interface SafetensorsTensorInfo {
  /** Stored dtype. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first. */
  shape: number[];
  /** Bytes in the file (elements * dtype size). */
  byteLength: number;
  /** [begin, end) relative to the start of the data section. */
  dataOffsets: [number, number];
}

/**
 * Options of the readers.
 *
 * @category IO
 */
export interface SafetensorsReadOptions {
  /**
   * How I64/U64 tensors are returned. "int32" (default): Int32Array, throwing if a value does not fit;
   * "bigint": BigInt64Array / BigUint64Array.
   */
  int64?: "int32" | "bigint";
}

/**
 * A tensor to write: a dtype, a shape and row-major values.
 *
 * @category IO
 */
export interface SafetensorsTensorInput {
  /** The dtype to store. */
  dtype: SafetensorsDtype;
  /** Dimensions, outermost first; the product must equal `data.length`. */
  shape: readonly number[];
  /**
   * Values. Floats may come as any numeric array (F16/BF16 are rounded to nearest even); integers must be
   * integers in range of the dtype; I64/U64 also accept BigInt64Array/BigUint64Array; BOOL takes 0/1.
   */
  data: ArrayLike<number> | BigInt64Array | BigUint64Array;
}

/**
 * Tensors to write, by name.
 *
 * @category IO
 */
export type SafetensorsTensorMap =
  | Record<string, SafetensorsTensorInput>
  | Map<string, SafetensorsTensorInput>;

/**
 * The error thrown for malformed or unsupported safetensors input; names the file and tensor.
 *
 * @category IO
 */
export class SafetensorsFormatError extends Error {
  /** The file (or "<bytes>" for in-memory input). */
  readonly file: string;
  /** The tensor concerned, if any. */
  readonly tensor?: string;
  /**
   * Builds the message `safetensors <file> tensor "<tensor>": <message>`.
   *
   * @param file The file concerned.
   * @param message What is wrong.
   * @param tensor The tensor concerned.
   */
  constructor(file: string, message: string, tensor?: string) {
    super(`safetensors ${file}${tensor === undefined ? "" : ` tensor "${tensor}"`}: ${message}`);
    this.name = "SafetensorsFormatError";
    this.file = file;
    this.tensor = tensor;
  }
}

// The format is little-endian and typed arrays use host order; every machine Deno runs on is LE.
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isDtype(x: unknown): x is SafetensorsDtype {
  return typeof x === "string" && Object.hasOwn(SAFETENSORS_DTYPE_BYTES, x);
}

// ---------------------------------------------------------------------------------------------------------
// Pickle refusal

const PICKLE_EXTENSIONS = [".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"];

/** The message for a pickle checkpoint: why it is refused and how to convert it. */
function pickleMessage(path: string): string {
  return `"${path}" is a PyTorch pickle checkpoint. It is refused because loading a pickle can execute ` +
    `arbitrary code. Convert it once to safetensors in Python:\n` +
    `  import torch; from safetensors.torch import save_file\n` +
    `  sd = torch.load("${path}", map_location="cpu", weights_only=True)\n` +
    `  save_file({k: v.contiguous().clone() for k, v in sd.items()}, "model.safetensors")\n` +
    `(or: transformers' model.save_pretrained(folder, safe_serialization=True)).`;
}

function hasPickleExtension(path: string): boolean {
  const lower = path.toLowerCase();
  return PICKLE_EXTENSIONS.some((e) => lower.endsWith(e));
}

/** Zip (torch >= 1.6 `torch.save`) or raw pickle (protocol 2..5) magic. */
function looksLikePickle(head: Uint8Array): boolean {
  if (head.length >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    return true;
  }
  return head.length >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5;
}

/**
 * Throws a {@link SafetensorsFormatError} explaining the danger and the conversion when `path` names a
 * PyTorch pickle checkpoint (`.bin`, `.pt`, `.pth`, `.ckpt`, `.pkl`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { refusePickleCheckpoint } from "./safetensors.ts";
 * refusePickleCheckpoint("model.safetensors"); // fine
 * assert.throws(() => refusePickleCheckpoint("pytorch_model.bin"), /arbitrary code/);
 * ```
 *
 * @category IO
 */
export function refusePickleCheckpoint(path: string): void {
  if (hasPickleExtension(path)) throw new SafetensorsFormatError(path, pickleMessage(path));
}

// ---------------------------------------------------------------------------------------------------------
// Header parsing (shared by the file and the in-memory readers)

interface ParsedHeader {
  entries: Map<string, SafetensorsTensorInfo>;
  metadata: Record<string, string>;
}

function isNonNegInt(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function parseHeader(file: string, headerBytes: Uint8Array, dataLength: number): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(headerBytes);
  } catch {
    throw new SafetensorsFormatError(
      file,
      "header is not valid UTF-8 (not a safetensors file, or corrupted)",
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SafetensorsFormatError(
      file,
      `header is not valid JSON (${(err as Error).message}); not a safetensors file, or corrupted`,
    );
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    throw new SafetensorsFormatError(file, "header JSON is not an object");
  }
  let metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsTensorInfo>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        throw new SafetensorsFormatError(file, "__metadata__ must be an object of strings");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") {
          throw new SafetensorsFormatError(file, `__metadata__["${k}"] must be a string, got ${typeof v}`);
        }
      }
      // fromEntries defines own properties, so a "__proto__" key stays data instead of a prototype.
      metadata = Object.fromEntries(Object.entries(raw as Record<string, string>));
      continue;
    }
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      throw new SafetensorsFormatError(file, "header entry is not an object", name);
    }
    const { dtype, shape, data_offsets: offs } = raw as Record<string, unknown>;
    if (!isDtype(dtype)) {
      const supported = Object.keys(SAFETENSORS_DTYPE_BYTES).join(", ");
      throw new SafetensorsFormatError(
        file,
        `unsupported dtype ${JSON.stringify(dtype)} (supported: ${supported})`,
        name,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
      throw new SafetensorsFormatError(
        file,
        `shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
        name,
      );
    }
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isNonNegInt) || offs[0] > offs[1]) {
      throw new SafetensorsFormatError(
        file,
        `data_offsets ${JSON.stringify(offs)} is not [begin, end] with 0 <= begin <= end`,
        name,
      );
    }
    let numel = 1;
    for (const d of shape as number[]) numel *= d;
    const byteLength = numel * SAFETENSORS_DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(byteLength)) {
      throw new SafetensorsFormatError(file, `shape ${JSON.stringify(shape)} is absurdly large`, name);
    }
    const [begin, end] = offs as [number, number];
    if (end - begin !== byteLength) {
      throw new SafetensorsFormatError(
        file,
        `dtype ${dtype} with shape ${JSON.stringify(shape)} needs ${byteLength} bytes but data_offsets ` +
          `[${begin}, ${end}] span ${end - begin}`,
        name,
      );
    }
    entries.set(name, { dtype, shape: [...(shape as number[])], byteLength, dataOffsets: [begin, end] });
  }
  // The tensors must tile the data section exactly: sorted by offset, no overlap, no gap, no tail.
  const sorted = [...entries].sort((a, b) =>
    a[1].dataOffsets[0] - b[1].dataOffsets[0] || a[1].dataOffsets[1] - b[1].dataOffsets[1]
  );
  let cursor = 0;
  for (const [name, info] of sorted) {
    const [begin, end] = info.dataOffsets;
    if (end > dataLength) {
      throw new SafetensorsFormatError(
        file,
        `data_offsets [${begin}, ${end}] point past the end of the data section (${dataLength} bytes; ` +
          `file truncated?)`,
        name,
      );
    }
    if (begin < cursor) {
      throw new SafetensorsFormatError(
        file,
        `data_offsets [${begin}, ${end}] overlap the previous tensor`,
        name,
      );
    }
    if (begin > cursor) {
      throw new SafetensorsFormatError(
        file,
        `data_offsets [${begin}, ${end}] leave a gap of ${begin - cursor} bytes after offset ${cursor}`,
        name,
      );
    }
    cursor = end;
  }
  if (cursor !== dataLength) {
    throw new SafetensorsFormatError(
      file,
      `tensors cover ${cursor} bytes but the data section holds ${dataLength} (trailing garbage or a ` +
        `corrupted header)`,
    );
  }
  return { entries, metadata };
}

// ---------------------------------------------------------------------------------------------------------
// Element decoding

let f16Table: Float32Array | undefined;

/** All 65536 half-precision values as float32 (exact), built once on first use. */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac === 0 ? Infinity : NaN;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  f16Table = t;
  return t;
}

// The hot loops live in small monomorphic functions so V8 optimises them (measured ~3x faster than inline).

function f16ToF32(src: Uint16Array): Float32Array {
  const table = halfTable();
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]];
  return out;
}

function bf16ToF32(src: Uint16Array): Float32Array {
  // bfloat16 is the top half of a float32: shifting the bits up is an exact upcast. Int32Array takes the
  // shifted (possibly negative) int without a conversion.
  const out = new Int32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
  return new Float32Array(out.buffer);
}

/**
 * Decodes raw little-endian bytes of one tensor. `bytes` must start at an offset aligned for the dtype
 * and must not be shared with anything else (the result may be a view of it).
 */
function decodeElements(
  file: string,
  name: string,
  dtype: SafetensorsDtype,
  bytes: Uint8Array,
  options: SafetensorsReadOptions,
): SafetensorsData {
  if (!HOST_LITTLE_ENDIAN) {
    throw new SafetensorsFormatError(file, "big-endian hosts are not supported", name);
  }
  const n = bytes.byteLength / SAFETENSORS_DTYPE_BYTES[dtype];
  const buf = bytes.buffer as ArrayBuffer;
  const off = bytes.byteOffset;
  switch (dtype) {
    case "F64":
      return new Float64Array(buf, off, n);
    case "F32":
      return new Float32Array(buf, off, n);
    case "F16":
      return f16ToF32(new Uint16Array(buf, off, n));
    case "BF16":
      return bf16ToF32(new Uint16Array(buf, off, n));
    case "I64":
    case "U64": {
      if (options.int64 === "bigint") {
        return dtype === "I64" ? new BigInt64Array(buf, off, n) : new BigUint64Array(buf, off, n);
      }
      // Each value is (low, high) int32 words; it fits int32 iff high is the sign extension of low.
      const words = new Int32Array(buf, off, 2 * n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i], hi = words[2 * i + 1];
        if (dtype === "I64" ? hi !== (lo >> 31) : (hi !== 0 || lo < 0)) {
          const v = dtype === "I64"
            ? new BigInt64Array(buf, off + 8 * i, 1)[0]
            : new BigUint64Array(buf, off + 8 * i, 1)[0];
          throw new SafetensorsFormatError(
            file,
            `${dtype} value ${v} at index ${i} does not fit in int32; read with { int64: "bigint" }`,
            name,
          );
        }
        out[i] = lo;
      }
      return out;
    }
    case "I32":
      return new Int32Array(buf, off, n);
    case "I16":
      return new Int16Array(buf, off, n);
    case "I8":
      return new Int8Array(buf, off, n);
    case "U32":
      return new Uint32Array(buf, off, n);
    case "U16":
      return new Uint16Array(buf, off, n);
    case "U8":
    case "BOOL":
      return new Uint8Array(buf, off, n);
  }
}

// ---------------------------------------------------------------------------------------------------------
// File reader

async function readExactAt(
  file: Deno.FsFile,
  path: string,
  position: number,
  length: number,
  tensor?: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let off = 0;
  while (off < length) {
    const n = await file.read(out.subarray(off));
    if (n === null) {
      const at = position + off;
      throw new SafetensorsFormatError(
        path,
        `unexpected end of file at byte ${at} (wanted ${length} bytes from ${position}; truncated?)`,
        tensor,
      );
    }
    off += n;
  }
  return out;
}

/**
 * An open safetensors file. The header is parsed and validated on open; tensors are read one at a time
 * with seeks. Reads on one instance are serialised, so concurrent `read` calls are safe.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/t.safetensors";
 * await writeSafetensors(path, { ids: { dtype: "I64", shape: [3], data: [5, 6, 7] } }, { note: "hi" });
 * const f = await SafetensorsFile.open(path);
 * try {
 *   assert.deepEqual(f.names(), ["ids"]);
 *   assert.equal(f.info("ids").dtype, "I64");
 *   assert.deepEqual(f.metadata, { note: "hi" });
 *   assert.deepEqual((await f.read("ids")).data, new Int32Array([5, 6, 7])); // I64 is read as int32
 * } finally {
 *   f.close();
 * }
 * ```
 *
 * @category IO
 */
export class SafetensorsFile {
  /** The file's path. */
  readonly path: string;
  /** The `__metadata__` string map (empty if absent). */
  readonly metadata: Record<string, string>;
  /** Total file size in bytes. */
  readonly size: number;
  #file: Deno.FsFile | undefined;
  #entries: Map<string, SafetensorsTensorInfo>;
  #dataStart: number;
  #options: SafetensorsReadOptions;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(
    path: string,
    file: Deno.FsFile,
    size: number,
    dataStart: number,
    header: ParsedHeader,
    options: SafetensorsReadOptions,
  ) {
    this.path = path;
    this.#file = file;
    this.size = size;
    this.#dataStart = dataStart;
    this.#entries = header.entries;
    this.metadata = header.metadata;
    this.#options = options;
  }

  /**
   * Opens and validates a safetensors file. Throws {@link SafetensorsFormatError} for malformed files and
   * for pickle checkpoints.
   *
   * @example
   * ```ts
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/t.safetensors";
   * await writeSafetensors(path, { b: { dtype: "BOOL", shape: [2], data: [1, 0] } });
   * const f = await SafetensorsFile.open(path);
   * f.close();
   * ```
   */
  static async open(path: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsFile> {
    refusePickleCheckpoint(path);
    // Checked before opening: opening a FIFO blocks until a writer appears, and a device never ends.
    const why = await notRegularFileReason(path);
    if (why === "does not exist") throw new SafetensorsFormatError(path, "file not found");
    if (why) throw new SafetensorsFormatError(path, why);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) {
        throw new SafetensorsFormatError(path, "file not found");
      }
      throw err;
    }
    try {
      const stat = await file.stat();
      if (!stat.isFile) throw new SafetensorsFormatError(path, "not a regular file");
      const size = stat.size;
      if (size < 8) {
        throw new SafetensorsFormatError(
          path,
          `file is ${size} bytes, shorter than the 8-byte header length (truncated?)`,
        );
      }
      const head = await readExactAt(file, path, 0, Math.min(size, 9));
      const headerLen = new DataView(head.buffer).getBigUint64(0, true);
      const pickle = looksLikePickle(head) && (head.length < 9 || head[8] !== 0x7b /* { */);
      if (headerLen > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
        if (pickle) throw new SafetensorsFormatError(path, pickleMessage(path));
        throw new SafetensorsFormatError(
          path,
          `header length ${headerLen} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit ` +
            `(not a safetensors file, or corrupted)`,
        );
      }
      const n = Number(headerLen);
      if (8 + n > size) {
        if (pickle) throw new SafetensorsFormatError(path, pickleMessage(path));
        throw new SafetensorsFormatError(
          path,
          `header length ${n} runs past the end of the ${size}-byte file (truncated or not safetensors)`,
        );
      }
      if (pickle) throw new SafetensorsFormatError(path, pickleMessage(path));
      const headerBytes = await readExactAt(file, path, 8, n);
      const header = parseHeader(path, headerBytes, size - 8 - n);
      return new SafetensorsFile(path, file, size, 8 + n, header, options);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Tensor names in header order.
   *
   * @example
   * ```ts
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * for (const name of f.names()) console.log(name, f.info(name).shape);
   * f.close();
   * ```
   */
  names(): string[] {
    return [...this.#entries.keys()];
  }

  /**
   * Whether the file holds a tensor called `name`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * assert.equal(f.has("lm_head.weight"), false);
   * f.close();
   * ```
   */
  has(name: string): boolean {
    return this.#entries.has(name);
  }

  /**
   * Dtype, shape and size of a tensor, without reading it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * assert.deepEqual(f.info("wte.weight").shape, [2, 2]);
   * f.close();
   * ```
   */
  info(name: string): SafetensorsTensorInfo {
    const e = this.#entries.get(name);
    if (!e) throw new SafetensorsFormatError(this.path, "no such tensor in this file", name);
    return { ...e, shape: [...e.shape], dataOffsets: [...e.dataOffsets] };
  }

  /**
   * Reads and decodes one tensor (one seek + read of exactly its bytes).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * const t = await f.read("wte.weight");
   * assert.deepEqual(t.shape, [2, 2]);
   * assert.deepEqual(t.data, new Float32Array([1, 2, 3, 4]));
   * f.close();
   * ```
   */
  read(name: string, options: SafetensorsReadOptions = {}): Promise<LoadedTensor> {
    const e = this.#entries.get(name);
    if (!e) return Promise.reject(new SafetensorsFormatError(this.path, "no such tensor in this file", name));
    const opts = { ...this.#options, ...options };
    const job = this.#queue.then(async () => {
      const file = this.#file;
      if (!file) throw new SafetensorsFormatError(this.path, "read after close()", name);
      const bytes = await readExactAt(
        file,
        this.path,
        this.#dataStart + e.dataOffsets[0],
        e.byteLength,
        name,
      );
      const data = decodeElements(this.path, name, e.dtype, bytes, opts);
      return { name, dtype: e.dtype, shape: [...e.shape], data };
    });
    this.#queue = job.catch(() => {});
    return job;
  }

  /**
   * Reads every tensor (one at a time) into a map by name.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * const all = await f.readAll();
   * assert.equal(all.size, 1);
   * f.close();
   * ```
   */
  async readAll(options: SafetensorsReadOptions = {}): Promise<Map<string, LoadedTensor>> {
    const out = new Map<string, LoadedTensor>();
    for (const name of this.#entries.keys()) out.set(name, await this.read(name, options));
    return out;
  }

  /**
   * Closes the file handle; further reads throw. Safe to call twice.
   *
   * @example
   * ```ts
   * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
   * const path = (await Deno.makeTempDir()) + "/m.safetensors";
   * await writeSafetensors(path, { "wte.weight": { dtype: "F32", shape: [2, 2], data: [1, 2, 3, 4] } });
   * const f = await SafetensorsFile.open(path);
   * f.close();
   * ```
   */
  close(): void {
    const f = this.#file;
    this.#file = undefined;
    f?.close();
  }

  /** Closes the file (for `using f = await SafetensorsFile.open(path)`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Reads every tensor of a safetensors file into a map by name (closing the file afterwards).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/h.safetensors";
 * await writeSafetensors(path, { h: { dtype: "F16", shape: [2], data: [0.5, -2] } });
 * assert.deepEqual((await readSafetensors(path)).get("h")?.data, new Float32Array([0.5, -2]));
 * ```
 *
 * @category IO
 */
export async function readSafetensors(
  path: string,
  options: SafetensorsReadOptions = {},
): Promise<Map<string, LoadedTensor>> {
  const f = await SafetensorsFile.open(path, options);
  try {
    return await f.readAll();
  } finally {
    f.close();
  }
}

/**
 * Result of {@link decodeSafetensors}.
 *
 * @category IO
 */
export interface DecodedSafetensors {
  /** Tensors by name. */
  tensors: Map<string, LoadedTensor>;
  /** The `__metadata__` string map (empty if absent). */
  metadata: Record<string, string>;
}

/**
 * Decodes a whole safetensors file held in memory (e.g. a small fetched file). Every tensor is copied
 * into its own aligned buffer, so the result never aliases `bytes`.
 *
 * @param label Name used in error messages (default "<bytes>").
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ x: { dtype: "I32", shape: [2], data: [1, 2] } });
 * assert.deepEqual(decodeSafetensors(bytes).tensors.get("x")?.data, new Int32Array([1, 2]));
 * ```
 *
 * @category IO
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: SafetensorsReadOptions = {},
  label = "<bytes>",
): DecodedSafetensors {
  if (bytes.length < 8) {
    throw new SafetensorsFormatError(
      label,
      `only ${bytes.length} bytes, shorter than the 8-byte header length`,
    );
  }
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    if (looksLikePickle(bytes) && bytes[8] !== 0x7b) {
      throw new SafetensorsFormatError(label, pickleMessage(label));
    }
    throw new SafetensorsFormatError(
      label,
      `header length ${headerLen} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit`,
    );
  }
  const n = Number(headerLen);
  if (8 + n > bytes.length) {
    throw new SafetensorsFormatError(
      label,
      `header length ${n} runs past the end of the ${bytes.length} bytes`,
    );
  }
  const header = parseHeader(label, bytes.subarray(8, 8 + n), bytes.length - 8 - n);
  const tensors = new Map<string, LoadedTensor>();
  for (const [name, e] of header.entries) {
    const start = 8 + n + e.dataOffsets[0];
    const copy = bytes.slice(start, start + e.byteLength);
    tensors.set(name, {
      name,
      dtype: e.dtype,
      shape: [...e.shape],
      data: decodeElements(label, name, e.dtype, copy, options),
    });
  }
  return { tensors, metadata: header.metadata };
}

// ---------------------------------------------------------------------------------------------------------
// Writer

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> IEEE half bits, round to nearest even (overflow -> inf, NaN kept quiet). */
function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // rounds to zero
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half++; // a carry into the exponent is correct
  return sign | half;
}

/** float32 bits -> bfloat16 bits, round to nearest even, NaN kept quiet. */
function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) & 0x8000) | 0x7fc0;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

const INT_RANGES: Partial<Record<SafetensorsDtype, [number, number]>> = {
  I32: [-(2 ** 31), 2 ** 31 - 1],
  I16: [-32768, 32767],
  I8: [-128, 127],
  U32: [0, 2 ** 32 - 1],
  U16: [0, 65535],
  U8: [0, 255],
  BOOL: [0, 1],
};

type IntArrayCtor =
  | Int32ArrayConstructor
  | Int16ArrayConstructor
  | Int8ArrayConstructor
  | Uint32ArrayConstructor
  | Uint16ArrayConstructor
  | Uint8ArrayConstructor;

const INT_CTORS: Partial<Record<SafetensorsDtype, IntArrayCtor>> = {
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
};

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Encodes one tensor's values as little-endian bytes of its dtype, validating count and range. */
function encodeElements(file: string, name: string, t: SafetensorsTensorInput): Uint8Array {
  const { dtype, shape, data } = t;
  if (!isDtype(dtype)) {
    throw new SafetensorsFormatError(file, `unsupported dtype ${JSON.stringify(dtype)}`, name);
  }
  if (!Array.isArray(shape) || !shape.every(isNonNegInt)) {
    throw new SafetensorsFormatError(
      file,
      `shape ${JSON.stringify(shape)} is not a list of non-negative integers`,
      name,
    );
  }
  const n = numelOf(shape);
  if (data.length !== n) {
    throw new SafetensorsFormatError(
      file,
      `shape ${JSON.stringify(shape)} has ${n} elements but data has ${data.length}`,
      name,
    );
  }
  const isBig = data instanceof BigInt64Array || data instanceof BigUint64Array;
  if (isBig && dtype !== "I64" && dtype !== "U64") {
    throw new SafetensorsFormatError(
      file,
      `BigInt data can only be written as I64 or U64, not ${dtype}`,
      name,
    );
  }
  const nums = data as ArrayLike<number>;
  switch (dtype) {
    case "F64":
      return bytesOf(data instanceof Float64Array ? data : Float64Array.from(nums));
    case "F32":
      return bytesOf(data instanceof Float32Array ? data : Float32Array.from(nums));
    case "F16": {
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32ToF16Bits(nums[i]);
      return bytesOf(out);
    }
    case "BF16": {
      const f = data instanceof Float32Array ? data : Float32Array.from(nums);
      const bits = new Uint32Array(f.buffer, f.byteOffset, n);
      const out = new Uint16Array(n);
      for (let i = 0; i < n; i++) out[i] = f32BitsToBf16(bits[i]);
      return bytesOf(out);
    }
    case "I64":
    case "U64": {
      if (dtype === "I64" && data instanceof BigInt64Array) return bytesOf(data);
      if (dtype === "U64" && data instanceof BigUint64Array) return bytesOf(data);
      const out = dtype === "I64" ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = data[i] as number | bigint;
        if (typeof v === "bigint") {
          if (dtype === "U64" && v < 0n) {
            throw new SafetensorsFormatError(file, `value ${v} at index ${i} is negative for U64`, name);
          }
          out[i] = v;
          continue;
        }
        if (!Number.isSafeInteger(v) || (dtype === "U64" && v < 0)) {
          throw new SafetensorsFormatError(
            file,
            `value ${v} at index ${i} is not a valid ${dtype} integer`,
            name,
          );
        }
        out[i] = BigInt(v);
      }
      return bytesOf(out);
    }
    default: {
      const Ctor = INT_CTORS[dtype]!;
      if (data instanceof Ctor && dtype !== "BOOL") return bytesOf(data);
      const [lo, hi] = INT_RANGES[dtype]!;
      const out = new Ctor(n);
      for (let i = 0; i < n; i++) {
        const v = Number(nums[i]);
        if (!Number.isInteger(v) || v < lo || v > hi) {
          const want = dtype === "BOOL" ? "0 or 1" : `an integer in [${lo}, ${hi}]`;
          throw new SafetensorsFormatError(file, `value ${nums[i]} at index ${i} is not ${want}`, name);
        }
        out[i] = v;
      }
      return bytesOf(out);
    }
  }
}

interface PlannedTensor {
  name: string;
  input: SafetensorsTensorInput;
  byteLength: number;
}

/** Orders the tensors and builds the padded header, as the reference implementation lays files out. */
function planFile(
  file: string,
  tensors: SafetensorsTensorMap,
  metadata: Record<string, string> | undefined,
): { header: Uint8Array; plan: PlannedTensor[] } {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const plan: PlannedTensor[] = [];
  const seen = new Set<string>();
  for (const [name, input] of entries) {
    if (typeof name !== "string" || name === "" || name === "__metadata__") {
      throw new SafetensorsFormatError(file, `invalid tensor name ${JSON.stringify(name)}`);
    }
    if (seen.has(name)) throw new SafetensorsFormatError(file, "duplicate tensor name", name);
    seen.add(name);
    if (!input || !isDtype(input.dtype)) {
      throw new SafetensorsFormatError(file, `unsupported dtype ${JSON.stringify(input?.dtype)}`, name);
    }
    if (!Array.isArray(input.shape) || !input.shape.every(isNonNegInt)) {
      throw new SafetensorsFormatError(
        file,
        `shape ${JSON.stringify(input.shape)} is not a list of non-negative integers`,
        name,
      );
    }
    plan.push({ name, input, byteLength: numelOf(input.shape) * SAFETENSORS_DTYPE_BYTES[input.dtype] });
  }
  // Larger elements first (then by name): with the 8-byte padded header every tensor stays aligned.
  plan.sort((a, b) =>
    SAFETENSORS_DTYPE_BYTES[b.input.dtype] - SAFETENSORS_DTYPE_BYTES[a.input.dtype] ||
    (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const json: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsFormatError(file, `metadata["${k}"] must be a string, got ${typeof v}`);
      }
    }
    json.__metadata__ = metadata;
  }
  let offset = 0;
  for (const p of plan) {
    json[p.name] = {
      dtype: p.input.dtype,
      shape: [...p.input.shape],
      data_offsets: [offset, offset + p.byteLength],
    };
    offset += p.byteLength;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil(text.length / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + text.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(text, 8);
  return { header, plan };
}

/**
 * Encodes tensors as a complete safetensors file in memory (for small files; use
 * {@link writeSafetensors} for checkpoints).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ a: { dtype: "U8", shape: [3], data: [1, 2, 3] } }, { format: "pt" });
 * assert.equal(bytes.length % 8, 3); // header is padded to 8, data is 3 bytes
 * ```
 *
 * @category IO
 */
export function encodeSafetensors(
  tensors: SafetensorsTensorMap,
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const { header, plan } = planFile("<bytes>", tensors, metadata);
  const parts = plan.map((p) => encodeElements("<bytes>", p.name, p.input));
  const out = new Uint8Array(header.length + parts.reduce((s, p) => s + p.length, 0));
  out.set(header, 0);
  let o = header.length;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Writes tensors to a safetensors file atomically (temp file + fsync + rename; a failed write leaves any
 * previous file intact). Tensors are encoded and written one at a time, so memory stays at one tensor.
 * The layout follows the reference implementation: `__metadata__` first, tensors ordered by element size
 * then name, header padded with spaces to a multiple of 8 bytes.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * const path = (await Deno.makeTempDir()) + "/ckpt.safetensors";
 * await writeSafetensors(
 *   path,
 *   { "wte.weight": { dtype: "BF16", shape: [2, 3], data: new Float32Array(6).fill(0.25) } },
 *   { format: "pt", step: "100" },
 * );
 * ```
 *
 * @category IO
 */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsTensorMap,
  metadata?: Record<string, string>,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const { header, plan } = planFile(path, tensors, metadata);
  // Catch count mismatches before touching the disk; value-range errors surface while streaming, and the
  // atomic writer then removes its temp file.
  for (const p of plan) {
    const n = numelOf(p.input.shape);
    if (p.input.data.length !== n) {
      throw new SafetensorsFormatError(
        path,
        `shape ${JSON.stringify(p.input.shape)} has ${n} elements but data has ${p.input.data.length}`,
        p.name,
      );
    }
  }
  await writeFileAtomicWith(path, async (sink) => {
    await sink.write(header);
    for (const p of plan) await sink.write(encodeElements(path, p.name, p.input));
  }, options);
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoints: one file or an index + shards

/**
 * The name of a single-file Hugging Face checkpoint.
 *
 * @category IO
 */
export const SAFETENSORS_SINGLE_FILE = "model.safetensors";
/**
 * The name of a sharded Hugging Face checkpoint's index.
 *
 * @category IO
 */
export const SAFETENSORS_INDEX_FILE = "model.safetensors.index.json";

/**
 * A model checkpoint behind one interface: a single `model.safetensors` or a sharded checkpoint
 * (`model.safetensors.index.json` with its `weight_map` from tensor name to shard file).
 *
 * @example
 * ```ts
 * import { openCheckpoint } from "./safetensors.ts";
 * const ckpt = await openCheckpoint("data/models/tiny-gpt2");
 * try {
 *   for (const name of ckpt.names()) console.log(name, ckpt.info(name).shape);
 * } finally {
 *   ckpt.close();
 * }
 * ```
 *
 * @category IO
 */
export class SafetensorsCheckpoint {
  /** The folder (or file) the checkpoint was opened from. */
  readonly source: string;
  /** The safetensors files, in index order. */
  readonly files: string[];
  /** `__metadata__` of the (first) safetensors file. */
  readonly metadata: Record<string, string>;
  /** The index json's `metadata` object (e.g. `total_size`), or `{}` for a single file. */
  readonly indexMetadata: Record<string, unknown>;
  #owner: Map<string, SafetensorsFile>;
  #shards: SafetensorsFile[];

  private constructor(
    source: string,
    shards: SafetensorsFile[],
    owner: Map<string, SafetensorsFile>,
    indexMetadata: Record<string, unknown>,
  ) {
    this.source = source;
    this.#shards = shards;
    this.files = shards.map((s) => s.path);
    this.metadata = shards[0]?.metadata ?? {};
    this.#owner = owner;
    this.indexMetadata = indexMetadata;
  }

  /**
   * Opens a checkpoint folder (index + shards, or `model.safetensors`), a `.safetensors` file, or an
   * `.index.json` file. Refuses pickle checkpoints with a conversion hint.
   *
   * @example
   * ```ts
   * import { SafetensorsCheckpoint } from "./safetensors.ts";
   * const ckpt = await SafetensorsCheckpoint.open("data/models/tiny-gpt2");
   * ckpt.close();
   * ```
   */
  static async open(path: string, options: SafetensorsReadOptions = {}): Promise<SafetensorsCheckpoint> {
    refusePickleCheckpoint(path);
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw new Error(`openCheckpoint: "${path}" does not exist`);
      throw err;
    }
    if (!stat.isFile && !stat.isDirectory) {
      throw new Error(`openCheckpoint: "${path}" ${await notRegularFileReason(path)}`);
    }
    if (stat.isFile) {
      if (path.endsWith(".json")) return await SafetensorsCheckpoint.#openIndex(path, path, options);
      const f = await SafetensorsFile.open(path, options);
      return new SafetensorsCheckpoint(path, [f], new Map(f.names().map((n) => [n, f])), {});
    }
    const folder = path.replace(/\/+$/, "") || "/";
    const index = `${folder}/${SAFETENSORS_INDEX_FILE}`;
    for (const name of [SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE]) {
      // Present but unusable (a directory, a FIFO, a dangling link): say so rather than "has neither".
      const why = await notRegularFileReason(`${folder}/${name}`);
      if (why && why !== "does not exist") throw new Error(`openCheckpoint: "${folder}/${name}" ${why}`);
    }
    if (await isFile(index)) return await SafetensorsCheckpoint.#openIndex(index, folder, options);
    const single = `${folder}/${SAFETENSORS_SINGLE_FILE}`;
    if (await isFile(single)) {
      const f = await SafetensorsFile.open(single, options);
      return new SafetensorsCheckpoint(folder, [f], new Map(f.names().map((n) => [n, f])), {});
    }
    const listing: string[] = [];
    for await (const e of Deno.readDir(folder)) listing.push(e.name);
    listing.sort();
    const pickle = listing.find((n) => hasPickleExtension(n));
    if (pickle) throw new SafetensorsFormatError(`${folder}/${pickle}`, pickleMessage(`${folder}/${pickle}`));
    throw new Error(
      `openCheckpoint: "${folder}" has neither ${SAFETENSORS_SINGLE_FILE} nor ${SAFETENSORS_INDEX_FILE}; ` +
        `it contains: ${listing.length ? listing.join(", ") : "(nothing)"}`,
    );
  }

  static async #openIndex(
    indexPath: string,
    source: string,
    options: SafetensorsReadOptions,
  ): Promise<SafetensorsCheckpoint> {
    let index: unknown;
    try {
      index = JSON.parse(await Deno.readTextFile(indexPath));
    } catch (err) {
      throw new Error(`openCheckpoint: ${indexPath} is not valid JSON (${(err as Error).message})`);
    }
    const weightMap = (index as { weight_map?: unknown })?.weight_map;
    if (weightMap === null || typeof weightMap !== "object" || Array.isArray(weightMap)) {
      throw new Error(`openCheckpoint: ${indexPath} has no "weight_map" object (tensor name -> shard file)`);
    }
    const dir = indexPath.includes("/") ? indexPath.slice(0, indexPath.lastIndexOf("/")) : ".";
    const byFile = new Map<string, SafetensorsFile>();
    const owner = new Map<string, SafetensorsFile>();
    try {
      for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
        assertSafeRelativePath(shard, `shard file name for tensor "${name}" in ${indexPath}`);
        let f = byFile.get(shard);
        if (!f) {
          const shardPath = `${dir}/${shard}`;
          const why = await notRegularFileReason(shardPath);
          if (why === "does not exist") {
            throw new Error(
              `openCheckpoint: shard "${shard}" listed in ${indexPath} (for tensor "${name}") is missing`,
            );
          }
          if (why) {
            throw new Error(
              `openCheckpoint: shard "${shardPath}" listed in ${indexPath} (for tensor "${name}") ${why}`,
            );
          }
          f = await SafetensorsFile.open(shardPath, options);
          byFile.set(shard, f);
        }
        if (!f.has(name)) {
          throw new SafetensorsFormatError(
            f.path,
            `listed in ${indexPath} but not present in the shard`,
            name,
          );
        }
        owner.set(name, f);
      }
    } catch (err) {
      for (const f of byFile.values()) f.close();
      throw err;
    }
    const meta = (index as { metadata?: unknown }).metadata;
    const indexMetadata = meta && typeof meta === "object" && !Array.isArray(meta)
      ? meta as Record<string, unknown>
      : {};
    return new SafetensorsCheckpoint(source, [...byFile.values()], owner, indexMetadata);
  }

  /**
   * Tensor names (index order for sharded checkpoints, header order otherwise).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * assert.deepEqual(ckpt.names(), ["norm.weight"]);
   * ckpt.close();
   * ```
   */
  names(): string[] {
    return [...this.#owner.keys()];
  }

  /**
   * Whether the checkpoint holds a tensor called `name`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * assert.equal(ckpt.has("lm_head.weight"), false);
   * ckpt.close();
   * ```
   */
  has(name: string): boolean {
    return this.#owner.has(name);
  }

  /**
   * Dtype, shape and byte size of a tensor, without reading it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * assert.equal(ckpt.info("norm.weight").dtype, "BF16");
   * ckpt.close();
   * ```
   */
  info(name: string): SafetensorsTensorInfo {
    return this.#file(name).info(name);
  }

  /**
   * Reads one tensor from whichever shard holds it.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * const t = await ckpt.read("norm.weight");
   * assert.deepEqual(t.data, new Float32Array([1, 1]));
   * ckpt.close();
   * ```
   */
  read(name: string, options: SafetensorsReadOptions = {}): Promise<LoadedTensor> {
    try {
      return this.#file(name).read(name, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Reads every tensor, one at a time.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * const all = await ckpt.readAll();
   * assert.equal(all.size, 1);
   * ckpt.close();
   * ```
   */
  async readAll(options: SafetensorsReadOptions = {}): Promise<Map<string, LoadedTensor>> {
    const out = new Map<string, LoadedTensor>();
    for (const name of this.#owner.keys()) out.set(name, await this.read(name, options));
    return out;
  }

  /**
   * Closes every shard.
   *
   * @example
   * ```ts
   * import { openCheckpoint, writeSafetensors } from "./safetensors.ts";
   * const dir = await Deno.makeTempDir();
   * await writeSafetensors(`${dir}/model.safetensors`, { "norm.weight": { dtype: "BF16", shape: [2], data: [1, 1] } });
   * const ckpt = await openCheckpoint(dir);
   * ckpt.close();
   * ```
   */
  close(): void {
    for (const f of this.#shards) f.close();
  }

  /** Closes every shard (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #file(name: string): SafetensorsFile {
    const f = this.#owner.get(name);
    if (!f) throw new SafetensorsFormatError(this.source, "no such tensor in this checkpoint", name);
    return f;
  }
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

/**
 * Opens a checkpoint folder: `model.safetensors.index.json` + shards, or a single `model.safetensors`
 * (also accepts a `.safetensors` file or an index file directly). Shorthand for
 * {@link SafetensorsCheckpoint.open}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { openCheckpoint } from "./safetensors.ts";
 * const ckpt = await openCheckpoint("data/models/tiny-gpt2");
 * const wte = await ckpt.read("transformer.wte.weight");
 * assert.deepEqual(wte.shape, [266, 32]); // [vocab, d_model]
 * ckpt.close();
 * ```
 *
 * @category IO
 */
export function openCheckpoint(
  path: string,
  options: SafetensorsReadOptions = {},
): Promise<SafetensorsCheckpoint> {
  return SafetensorsCheckpoint.open(path, options);
}
