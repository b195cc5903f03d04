import { assert, assertEquals, assertRejects, assertThrows } from "../assert.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  openCheckpoint,
  readSafetensors,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDtype,
  SafetensorsFile,
  SafetensorsFormatError,
  type SafetensorsTensorInput,
  writeSafetensors,
} from "../../lib/io/safetensors.ts";
import { tmpDir } from "./tmp.ts";

const enc = new TextEncoder();

/** Builds safetensors bytes from a raw header object (or string) and a data section, without validation. */
function rawFile(header: unknown, data: Uint8Array, headerLenOverride?: bigint): Uint8Array {
  const text = enc.encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLenOverride ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

async function tmpFile(bytes: Uint8Array, name = "t.safetensors"): Promise<string> {
  const dir = await tmpDir();
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, bytes);
  return path;
}

/** Expects open-or-read of `bytes` (as a file and in memory) to fail with a message matching `pattern`. */
async function expectMalformed(bytes: Uint8Array, pattern: RegExp, tensor?: string): Promise<void> {
  const path = await tmpFile(bytes);
  const err = await assertRejects(async () => {
    const f = await SafetensorsFile.open(path);
    try {
      await f.readAll();
    } finally {
      f.close();
    }
  }, SafetensorsFormatError);
  assert(err.message.includes(path), `message names the file: ${err.message}`);
  assert(pattern.test(err.message), `message ${JSON.stringify(err.message)} matches ${pattern}`);
  if (tensor) assert(err.message.includes(`"${tensor}"`), `message names tensor ${tensor}: ${err.message}`);
  const err2 = assertThrows(() => decodeSafetensors(bytes), SafetensorsFormatError);
  assert(pattern.test(err2.message), `in-memory message ${JSON.stringify(err2.message)} matches ${pattern}`);
}

const f32 = (xs: number[]) => new Uint8Array(new Float32Array(xs).buffer);

Deno.test("round trip of every dtype with metadata, file and in-memory", async () => {
  const tensors: Record<string, SafetensorsTensorInput> = {
    f64: { dtype: "F64", shape: [2, 2], data: [1.5, -1e300, Math.PI, 0] },
    f32: { dtype: "F32", shape: [3], data: new Float32Array([1.25, -3, 1e-30]) },
    f16: { dtype: "F16", shape: [4], data: [0.5, -2, 65504, 2 ** -24] },
    bf16: { dtype: "BF16", shape: [2, 1], data: [1.5, -3.140625] },
    i64: { dtype: "I64", shape: [3], data: [-(2 ** 31), 2 ** 31 - 1, 0] },
    i32: { dtype: "I32", shape: [2], data: new Int32Array([-7, 123456789]) },
    i16: { dtype: "I16", shape: [2], data: [-32768, 32767] },
    i8: { dtype: "I8", shape: [2], data: [-128, 127] },
    u64: { dtype: "U64", shape: [1], data: [2 ** 31 - 1] },
    u32: { dtype: "U32", shape: [1], data: [2 ** 32 - 1] },
    u16: { dtype: "U16", shape: [1], data: [65535] },
    u8: { dtype: "U8", shape: [3], data: new Uint8Array([0, 128, 255]) },
    bool: { dtype: "BOOL", shape: [3], data: [1, 0, 1] },
    scalar: { dtype: "F32", shape: [], data: [42] },
    empty: { dtype: "F32", shape: [0, 5], data: [] },
  };
  const metadata = { format: "pt", note: 'héllo "quoted"' };
  const path = (await tmpDir()) + "/all.safetensors";
  await writeSafetensors(path, tensors, metadata);
  const bytes = await Deno.readFile(path);
  assertEquals(bytes, encodeSafetensors(tensors, metadata), "streamed and in-memory writers agree");
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assertEquals(headerLen % 8, 0, "header padded to 8 bytes");
  // Every tensor starts aligned to its element size in the file.
  const f = await SafetensorsFile.open(path);
  try {
    assertEquals(f.metadata, metadata);
    assertEquals(f.names().sort(), Object.keys(tensors).sort());
    for (const name of f.names()) {
      const info = f.info(name);
      assertEquals((8 + headerLen + info.dataOffsets[0]) % SAFETENSORS_DTYPE_BYTES[info.dtype], 0, name);
    }
    const fromFile = await f.readAll();
    const fromBytes = decodeSafetensors(bytes).tensors;
    for (const [name, t] of Object.entries(tensors)) {
      for (const got of [fromFile.get(name)!, fromBytes.get(name)!]) {
        assertEquals(got.dtype, t.dtype, name);
        assertEquals(got.shape, [...t.shape], name);
        assertEquals(
          Array.from(got.data as ArrayLike<number>),
          Array.from(t.data as ArrayLike<number>),
          name,
        );
      }
    }
    assert(fromFile.get("f16")!.data instanceof Float32Array);
    assert(fromFile.get("bf16")!.data instanceof Float32Array);
    assert(fromFile.get("i64")!.data instanceof Int32Array);
    assert(fromFile.get("u64")!.data instanceof Int32Array);
    assert(fromFile.get("bool")!.data instanceof Uint8Array);
    assert(fromFile.get("f64")!.data instanceof Float64Array);
  } finally {
    f.close();
  }
});

Deno.test("I64 beyond int32 is a clear error, or BigInt64Array on request", async () => {
  const big = new BigInt64Array([1n, -(2n ** 40n), 2n ** 62n]);
  const path = (await tmpDir()) + "/ids.safetensors";
  await writeSafetensors(path, { ids: { dtype: "I64", shape: [3], data: big } });
  const err = await assertRejects(() => readSafetensors(path), SafetensorsFormatError);
  assert(/"ids".*-1099511627776 at index 1 does not fit in int32.*bigint/.test(err.message), err.message);
  const t = (await readSafetensors(path, { int64: "bigint" })).get("ids")!;
  assert(t.data instanceof BigInt64Array);
  assertEquals(Array.from(t.data), Array.from(big));
  // U64 with the top bit set does not fit either.
  const bytes = encodeSafetensors({ u: { dtype: "U64", shape: [1], data: new BigUint64Array([2n ** 63n]) } });
  assertThrows(() => decodeSafetensors(bytes), SafetensorsFormatError, "does not fit in int32");
  assertEquals(
    Array.from(decodeSafetensors(bytes, { int64: "bigint" }).tensors.get("u")!.data as BigUint64Array),
    [2n ** 63n],
  );
});

Deno.test("F16 upcast is exact for every bit pattern, and the writer rounds to nearest even", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const bytes = rawFile(
    { h: { dtype: "F16", shape: [65536], data_offsets: [0, 131072] } },
    new Uint8Array(all.buffer),
  );
  const vals = decodeSafetensors(bytes).tensors.get("h")!.data as Float32Array;
  // Spot values straight from the IEEE 754 binary16 definition.
  assertEquals(vals[0x3c00], 1);
  assertEquals(vals[0xc000], -2);
  assertEquals(vals[0x7bff], 65504);
  assertEquals(vals[0x0001], 2 ** -24);
  assertEquals(vals[0x03ff], 1023 * 2 ** -24);
  assertEquals(vals[0x0400], 2 ** -14);
  assertEquals(vals[0x3555], 0.333251953125);
  assertEquals(vals[0x7c00], Infinity);
  assertEquals(vals[0xfc00], -Infinity);
  assert(Number.isNaN(vals[0x7e00]));
  assert(Object.is(vals[0x8000], -0));
  // Monotone over positive finite values: each pattern is the next representable number.
  for (let h = 1; h < 0x7c00; h++) assert(vals[h] > vals[h - 1], `0x${h.toString(16)}`);
  // Writing back every finite value reproduces its bits exactly.
  const finite = Array.from(all).filter((h) => (h & 0x7c00) !== 0x7c00);
  const back = encodeSafetensors({
    h: { dtype: "F16", shape: [finite.length], data: finite.map((h) => vals[h]) },
  });
  const hdr = Number(new DataView(back.buffer).getBigUint64(0, true));
  assertEquals(Array.from(new Uint16Array(back.slice(8 + hdr).buffer)), finite);
  // Midpoints between neighbours round to the even pattern; overflow goes to infinity.
  const mids: number[] = [], want: number[] = [];
  for (const h of [0x0000, 0x0001, 0x03ff, 0x3c00, 0x3c01, 0x7bfe]) {
    mids.push((vals[h] + vals[h + 1]) / 2);
    want.push(h % 2 === 0 ? h : h + 1);
  }
  mids.push(65520, -1e6, 1e-10);
  want.push(0x7c00, 0xfc00, 0x0000);
  const out = decodeSafetensors(encodeSafetensors({ m: { dtype: "F16", shape: [mids.length], data: mids } }))
    .tensors.get("m")!.data as Float32Array;
  assertEquals(Array.from(out), want.map((h) => vals[h]));
});

Deno.test("BF16 upcast is exact and the writer rounds to nearest even", () => {
  const patterns = [0x3f80, 0xc049, 0x0001, 0x7f7f, 0xff80, 0x8000, 0x4049];
  const bytes = rawFile(
    { b: { dtype: "BF16", shape: [patterns.length], data_offsets: [0, 2 * patterns.length] } },
    new Uint8Array(new Uint16Array(patterns).buffer),
  );
  const v = decodeSafetensors(bytes).tensors.get("b")!.data as Float32Array;
  assertEquals(Array.from(v), [1, -3.140625, 2 ** -133, 3.3895313892515355e38, -Infinity, -0, 3.140625]);
  // 1 + 2^-8 is halfway between 1 (even) and 1 + 2^-7: rounds to 1; 1 + 3 * 2^-8 rounds up to 1 + 2^-6.
  const r = decodeSafetensors(encodeSafetensors({
    b: { dtype: "BF16", shape: [3], data: [1 + 2 ** -8, 1 + 3 * 2 ** -8, NaN] },
  })).tensors.get("b")!.data as Float32Array;
  assertEquals(r[0], 1);
  assertEquals(r[1], 1 + 2 ** -6);
  assert(Number.isNaN(r[2]));
});

Deno.test("misaligned offsets are copied into aligned arrays", async () => {
  // Header of 13 bytes-ish and a 1-byte tensor first: the F32 tensor starts at an odd file offset.
  const header = {
    a: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
    b: { dtype: "F32", shape: [2], data_offsets: [1, 9] },
    c: { dtype: "I64", shape: [1], data_offsets: [9, 17] },
  };
  const data = new Uint8Array(17);
  data[0] = 9;
  data.set(f32([1.5, -2.25]), 1);
  new DataView(data.buffer).setBigInt64(9, -3n, true);
  const bytes = rawFile(header, data);
  assert((8 + (bytes.length - 17) + 1) % 4 !== 0, "test really is misaligned");
  const path = await tmpFile(bytes);
  for (const got of [await readSafetensors(path), decodeSafetensors(bytes).tensors]) {
    assertEquals(Array.from(got.get("a")!.data as Uint8Array), [9]);
    assertEquals(Array.from(got.get("b")!.data as Float32Array), [1.5, -2.25]);
    assertEquals(Array.from(got.get("c")!.data as Int32Array), [-3]);
  }
});

Deno.test("decodeSafetensors never aliases its input", () => {
  const bytes = encodeSafetensors({ x: { dtype: "F32", shape: [2], data: [1, 2] } });
  const t = decodeSafetensors(bytes).tensors.get("x")!;
  bytes.fill(0, bytes.length - 8);
  assertEquals(Array.from(t.data as Float32Array), [1, 2]);
});

Deno.test("malformed files give one clear error naming file and tensor", async () => {
  const good = encodeSafetensors({
    a: { dtype: "F32", shape: [2], data: [1, 2] },
    b: { dtype: "F32", shape: [1], data: [3] },
  });
  // Truncated: the data section is shorter than the offsets claim.
  await expectMalformed(good.slice(0, good.length - 2), /past the end of the data section.*truncated/, "b");
  // Shorter than the length prefix.
  await expectMalformed(good.slice(0, 5), /shorter than the 8-byte header length/);
  // Header length past the end of the file.
  await expectMalformed(good.slice(0, 20), /header length \d+ runs past the end/);
  // Absurd header length: rejected before any allocation.
  await expectMalformed(rawFile({}, new Uint8Array(), 2n ** 60n), /exceeds the 100000000-byte limit/);
  await expectMalformed(rawFile({}, new Uint8Array(), 100_000_001n), /exceeds the 100000000-byte limit/);
  // Header not JSON / not UTF-8 / not an object.
  await expectMalformed(rawFile("{not json", new Uint8Array()), /header is not valid JSON/);
  await expectMalformed(
    (() => {
      const b = rawFile("{}", new Uint8Array());
      b[9] = 0xff;
      return b;
    })(),
    /not valid UTF-8/,
  );
  await expectMalformed(rawFile("[1, 2]", new Uint8Array()), /not an object/);
  // Offsets outside the data, overlapping, with a gap, trailing bytes.
  const d8 = new Uint8Array(8);
  await expectMalformed(
    rawFile({ x: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, d8),
    /past the end of the data section/,
    "x",
  );
  await expectMalformed(
    rawFile({
      x: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      y: { dtype: "F32", shape: [1], data_offsets: [4, 8] },
    }, d8),
    /overlap/,
    "y",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, d8),
    /gap of 4 bytes/,
    "x",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, d8),
    /cover 4 bytes but the data section holds 8/,
  );
  // Shape/dtype/byte-count mismatch.
  await expectMalformed(
    rawFile({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, d8),
    /needs 12 bytes but data_offsets \[0, 8\] span 8/,
    "x",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "F64", shape: [2], data_offsets: [0, 8] } }, d8),
    /needs 16 bytes/,
    "x",
  );
  // Unknown dtype, bad shape, bad offsets, bad metadata.
  await expectMalformed(
    rawFile({ x: { dtype: "F8_E4M3", shape: [8], data_offsets: [0, 8] } }, d8),
    /unsupported dtype "F8_E4M3"/,
    "x",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "U8", shape: [-8], data_offsets: [0, 8] } }, d8),
    /shape \[-8\] is not a list of non-negative integers/,
    "x",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "U8", shape: [8], data_offsets: [8, 0] } }, d8),
    /data_offsets \[8,0\] is not \[begin, end\]/,
    "x",
  );
  await expectMalformed(
    rawFile({ x: { dtype: "U8", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, d8),
    /absurdly large/,
    "x",
  );
  await expectMalformed(
    rawFile({ __metadata__: { step: 3 }, x: { dtype: "U8", shape: [8], data_offsets: [0, 8] } }, d8),
    /__metadata__\["step"\] must be a string/,
  );
});

Deno.test("pickle checkpoints are refused with the reason and a conversion recipe", async () => {
  const dir = await tmpDir();
  for (const name of ["pytorch_model.bin", "model.pt", "w.pth", "last.ckpt"]) {
    await Deno.writeFile(`${dir}/${name}`, new Uint8Array([0x80, 0x02, 0x8a, 0x0a, 0, 0, 0, 0, 0, 0]));
    const err = await assertRejects(() => SafetensorsFile.open(`${dir}/${name}`), SafetensorsFormatError);
    assert(err.message.includes("arbitrary code"), err.message);
    assert(err.message.includes("safetensors.torch import save_file"), err.message);
  }
  // Content sniffing: a zip (torch.save) or raw pickle renamed to .safetensors.
  const zip = new Uint8Array(64);
  zip.set([0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x00, 0x08]);
  const pkl = new Uint8Array(64);
  pkl.set([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20]);
  for (const bytes of [zip, pkl]) {
    const path = await tmpFile(bytes, "renamed.safetensors");
    const err = await assertRejects(() => SafetensorsFile.open(path), SafetensorsFormatError);
    assert(err.message.includes("pickle") && err.message.includes("arbitrary code"), err.message);
  }
  // A folder holding only a pickle checkpoint.
  const only = await tmpDir();
  await Deno.writeFile(`${only}/pytorch_model.bin`, zip);
  await Deno.writeTextFile(`${only}/config.json`, "{}");
  const err = await assertRejects(() => openCheckpoint(only), SafetensorsFormatError);
  assert(err.message.includes("pytorch_model.bin") && err.message.includes("arbitrary code"), err.message);
});

Deno.test("a valid file whose header length starts like pickle magic is still read", async () => {
  // Header length 0x0280 = 640: its first two bytes are 0x80 0x02, the pickle protocol-2 opcode.
  const meta = { pad: "x".repeat(640 - 53) };
  let bytes = encodeSafetensors({ x: { dtype: "U8", shape: [1], data: [7] } }, meta);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  // Adjust the padding so the header is exactly 640 bytes.
  meta.pad = "x".repeat(meta.pad.length + 640 - n);
  bytes = encodeSafetensors({ x: { dtype: "U8", shape: [1], data: [7] } }, meta);
  assertEquals([bytes[0], bytes[1]], [0x80, 0x02]);
  const got = await readSafetensors(await tmpFile(bytes));
  assertEquals(Array.from(got.get("x")!.data as Uint8Array), [7]);
});

Deno.test("writer validates its input before writing", async () => {
  const dir = await tmpDir();
  const path = `${dir}/bad.safetensors`;
  const cases: [Record<string, SafetensorsTensorInput>, RegExp][] = [
    [{ x: { dtype: "F32", shape: [3], data: [1, 2] } }, /3 elements but data has 2/],
    [{ x: { dtype: "I8", shape: [1], data: [200] } }, /not an integer in \[-128, 127\]/],
    [{ x: { dtype: "BOOL", shape: [1], data: [2] } }, /not 0 or 1/],
    [{ x: { dtype: "I32", shape: [1], data: [1.5] } }, /not an integer/],
    [{ x: { dtype: "Q4" as SafetensorsDtype, shape: [1], data: [1] } }, /unsupported dtype/],
    [{ __metadata__: { dtype: "F32", shape: [1], data: [1] } }, /invalid tensor name/],
  ];
  for (const [tensors, pattern] of cases) {
    const err = await assertRejects(() => writeSafetensors(path, tensors), SafetensorsFormatError);
    assert(pattern.test(err.message), err.message);
  }
  assertEquals([...Deno.readDirSync(dir)], [], "no file and no temp file left behind");
});

Deno.test("a failed save leaves the previous file intact", async () => {
  const path = (await tmpDir()) + "/ckpt.safetensors";
  await writeSafetensors(path, { w: { dtype: "F32", shape: [1], data: [1] } });
  const before = await Deno.readFile(path);
  await assertRejects(
    () =>
      writeSafetensors(path, { w: { dtype: "F32", shape: [1], data: [2] } }, undefined, {
        hooks: {
          beforeRename: () => {
            throw new Error("simulated crash");
          },
        },
      }),
    Error,
    "simulated crash",
  );
  assertEquals(await Deno.readFile(path), before);
  assertEquals([...Deno.readDirSync(path.slice(0, path.lastIndexOf("/")))].length, 1);
});

Deno.test("concurrent reads on one file return the right tensors; reads after close fail", async () => {
  const tensors: Record<string, SafetensorsTensorInput> = {};
  for (let i = 0; i < 20; i++) {
    tensors[`t${i}`] = {
      dtype: "F32",
      shape: [100],
      data: Float32Array.from({ length: 100 }, (_, j) => i * 1000 + j),
    };
  }
  const path = (await tmpDir()) + "/many.safetensors";
  await writeSafetensors(path, tensors);
  const f = await SafetensorsFile.open(path);
  const all = await Promise.all(f.names().map((n) => f.read(n)));
  for (const t of all) {
    const i = Number(t.name.slice(1));
    assertEquals((t.data as Float32Array)[0], i * 1000);
    assertEquals((t.data as Float32Array)[99], i * 1000 + 99);
  }
  await assertRejects(() => f.read("nope"), SafetensorsFormatError, "no such tensor");
  f.close();
  await assertRejects(() => f.read("t0"), SafetensorsFormatError, "after close");
});

Deno.test("sharded checkpoint: index + shards behind one interface", async () => {
  const dir = await tmpDir();
  await writeSafetensors(`${dir}/model-00001-of-00002.safetensors`, {
    "a.weight": { dtype: "F32", shape: [2], data: [1, 2] },
    "b.weight": { dtype: "BF16", shape: [1], data: [0.5] },
  }, { format: "pt" });
  await writeSafetensors(`${dir}/model-00002-of-00002.safetensors`, {
    "c.weight": { dtype: "I64", shape: [2], data: [3, 4] },
  }, { format: "pt" });
  const index = {
    metadata: { total_size: 26 },
    weight_map: {
      "a.weight": "model-00001-of-00002.safetensors",
      "b.weight": "model-00001-of-00002.safetensors",
      "c.weight": "model-00002-of-00002.safetensors",
    },
  };
  await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, JSON.stringify(index));
  const ckpt = await openCheckpoint(dir);
  try {
    assertEquals(ckpt.names(), ["a.weight", "b.weight", "c.weight"]);
    assertEquals(ckpt.files.length, 2);
    assertEquals(ckpt.indexMetadata, { total_size: 26 });
    assertEquals(ckpt.metadata, { format: "pt" });
    assertEquals(ckpt.info("c.weight").dtype, "I64");
    assertEquals(Array.from((await ckpt.read("c.weight")).data as Int32Array), [3, 4]);
    assertEquals(Array.from((await ckpt.read("b.weight")).data as Float32Array), [0.5]);
    assertEquals((await ckpt.readAll()).size, 3);
    await assertRejects(() => ckpt.read("d.weight"), SafetensorsFormatError, "no such tensor");
  } finally {
    ckpt.close();
  }
  // The index file can also be opened directly.
  const direct = await openCheckpoint(`${dir}/model.safetensors.index.json`);
  assertEquals(direct.names().length, 3);
  direct.close();

  // A tensor the index lists but its shard lacks.
  const bad1 = { weight_map: { ...index.weight_map, "z.weight": "model-00002-of-00002.safetensors" } };
  await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, JSON.stringify(bad1));
  await assertRejects(() => openCheckpoint(dir), SafetensorsFormatError, "not present in the shard");
  // A missing shard.
  const bad2 = { weight_map: { ...index.weight_map, "z.weight": "model-00003-of-00003.safetensors" } };
  await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, JSON.stringify(bad2));
  await assertRejects(() => openCheckpoint(dir), Error, `shard "model-00003-of-00003.safetensors"`);
  // Shard names that would escape the folder.
  for (const evil of ["../outside.safetensors", "/etc/passwd", "a\\..\\b.safetensors", "sub/../../x"]) {
    await Deno.writeTextFile(
      `${dir}/model.safetensors.index.json`,
      JSON.stringify({ weight_map: { "a.weight": evil } }),
    );
    await assertRejects(() => openCheckpoint(dir), Error, "Unsafe shard file name");
  }
  // No weight_map.
  await Deno.writeTextFile(`${dir}/model.safetensors.index.json`, "{}");
  await assertRejects(() => openCheckpoint(dir), Error, `no "weight_map"`);
});

Deno.test("a folder without weights lists what it holds", async () => {
  const dir = await tmpDir();
  await Deno.writeTextFile(`${dir}/config.json`, "{}");
  await assertRejects(() => openCheckpoint(dir), Error, "it contains: config.json");
  await assertRejects(() => openCheckpoint(`${dir}/missing`), Error, "does not exist");
});

Deno.test("tensors past 4 GiB are reached by seeking, without reading the rest (sparse file)", async () => {
  const big = 5 * 2 ** 30; // 5 GiB of zeros that are never read or even stored (sparse)
  const header = enc.encode(JSON.stringify({
    pad: { dtype: "U8", shape: [big], data_offsets: [0, big] },
    tail: { dtype: "F32", shape: [2], data_offsets: [big, big + 8] },
  }));
  const path = (await tmpDir()) + "/sparse.safetensors";
  const file = await Deno.open(path, { write: true, create: true });
  try {
    const prefix = new Uint8Array(8 + header.length);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    prefix.set(header, 8);
    await file.write(prefix);
    await file.truncate(8 + header.length + big);
    await file.seek(8 + header.length + big, Deno.SeekMode.Start);
    await file.write(f32([6.5, -1]));
  } finally {
    file.close();
  }
  const f = await SafetensorsFile.open(path);
  try {
    assertEquals(f.size, 8 + header.length + big + 8);
    assertEquals(f.info("pad").byteLength, big);
    assertEquals(Array.from((await f.read("tail")).data as Float32Array), [6.5, -1]);
  } finally {
    f.close();
  }
});

Deno.test("metadata keys like __proto__ stay plain data", () => {
  const { metadata } = decodeSafetensors(rawFile('{"__metadata__": {"__proto__": "x"}}', new Uint8Array()));
  assertEquals(Object.getPrototypeOf(metadata), Object.prototype);
  assertEquals(Object.getOwnPropertyDescriptor(metadata, "__proto__")?.value, "x");
});

const FIXTURE = new URL("../../../shared/fixtures/hf/tiny-gpt2/", import.meta.url).pathname;
const hasFixture = (() => {
  try {
    return Deno.statSync(`${FIXTURE}model.safetensors`).isFile;
  } catch {
    return false;
  }
})();
if (!hasFixture) console.log(`note: ${FIXTURE} absent; skipping the tiny-gpt2 fixture test`);

Deno.test({
  name: "reads the tiny-gpt2 fixture written by Python safetensors",
  ignore: !hasFixture,
  fn: async () => {
    const ckpt = await openCheckpoint(FIXTURE);
    try {
      assertEquals(ckpt.names().length, 28);
      assertEquals(ckpt.metadata, { format: "pt" });
      const wte = await ckpt.read("transformer.wte.weight");
      assertEquals(wte.dtype, "F32");
      assertEquals(wte.shape, [512, 64]);
      const d = wte.data as Float32Array;
      // Reference values computed with numpy from the same file.
      assert(Math.abs(d[3 * 64 + 5] - 0.0178031) < 1e-7);
      assert(Math.abs(d[511 * 64 + 63] - -0.06747356) < 1e-7);
      let sum = 0;
      for (const x of d) sum += x;
      assert(Math.abs(sum - 2.6888014123072708) < 1e-9, `sum ${sum}`);
    } finally {
      ckpt.close();
    }
    const ref = await readSafetensors(`${FIXTURE}reference.safetensors`);
    assertEquals(ref.get("logits")!.shape, [2, 24, 512]);
    assertEquals(ref.get("greedy_ids")!.dtype, "I32");
  },
});
