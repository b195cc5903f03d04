/**
 * tokenizer.json / model.safetensors / config.json that are not regular files: a FIFO (used to hang the
 * reader), a device (/dev/zero used to eat memory), a directory, a dangling symlink. Each is refused
 * before opening, with a message that says exactly what the path is.
 */
import { assert, assertRejects } from "../assert.ts";
import { openCheckpoint, readSafetensors } from "../../lib/io/safetensors.ts";
import { resolveModelSource } from "../../lib/io/hub.ts";
import { loadTokenizer } from "../../lib/tokenizers/hf.ts";
import { loadModel } from "../../lib/models/load.ts";
import { tmpDir } from "../io/tmp.ts";

const TOKENIZER_FIXTURE = new URL("../tokenizers/fixtures/gpt2-bpe", import.meta.url).pathname;
const MODEL_FIXTURE = new URL("../../data/models/tiny-gpt2", import.meta.url).pathname;

async function mkfifo(path: string): Promise<void> {
  const r = await new Deno.Command("mkfifo", { args: [path] }).output();
  assert(r.success, "mkfifo failed");
}

type Kind = "fifo" | "device" | "directory" | "dangling";
const KINDS: Record<Kind, string> = {
  fifo: "is a named pipe (FIFO), not a regular file",
  device: `is a symlink to "/dev/zero", which is a character device, not a regular file`,
  directory: "is a directory, not a regular file",
  dangling: "which does not exist (a dangling link)",
};

async function makeSpecial(path: string, kind: Kind): Promise<void> {
  if (kind === "fifo") await mkfifo(path);
  else if (kind === "device") await Deno.symlink("/dev/zero", path);
  else if (kind === "directory") await Deno.mkdir(path);
  else await Deno.symlink(`${path}.gone`, path);
}

async function copyFolder(from: string, to: string, skip: string): Promise<void> {
  for await (const e of Deno.readDir(from)) {
    if (e.isFile && e.name !== skip) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

for (const kind of Object.keys(KINDS) as Kind[]) {
  Deno.test(`tokenizer.json that is a ${kind === "dangling" ? "dangling symlink" : kind} is refused, naming what it is`, async () => {
    const dir = await tmpDir();
    await copyFolder(TOKENIZER_FIXTURE, dir, "tokenizer.json");
    await makeSpecial(`${dir}/tokenizer.json`, kind);
    const err = await assertRejects(() => loadTokenizer(dir), Error, KINDS[kind]);
    assert(err.message.includes(`${dir}/tokenizer.json`), err.message);
  });

  Deno.test(`model.safetensors that is a ${kind === "dangling" ? "dangling symlink" : kind} is refused without a self-contradicting message`, async () => {
    const dir = await tmpDir();
    await copyFolder(MODEL_FIXTURE, dir, "model.safetensors");
    await makeSpecial(`${dir}/model.safetensors`, kind);
    const e1 = await assertRejects(() => openCheckpoint(dir), Error, KINDS[kind]);
    assert(!e1.message.includes("has neither"), e1.message);
    await assertRejects(() => readSafetensors(`${dir}/model.safetensors`), Error, KINDS[kind]);
    const e2 = await assertRejects(() => loadModel(dir), Error, KINDS[kind]);
    assert(e2.message.includes(`${dir}/model.safetensors`), e2.message);
  });

  Deno.test(`config.json that is a ${kind === "dangling" ? "dangling symlink" : kind} is refused, naming what it is`, async () => {
    const dir = await tmpDir();
    await copyFolder(MODEL_FIXTURE, dir, "config.json");
    await makeSpecial(`${dir}/config.json`, kind);
    const e = await assertRejects(() => resolveModelSource(dir), Error, KINDS[kind]);
    assert(!e.message.includes("has no config.json"), e.message);
  });
}

Deno.test("a device passed straight to the safetensors reader is refused, not read", async () => {
  await assertRejects(() => readSafetensors("/dev/zero"), Error, "is a character device, not a regular file");
  await assertRejects(() => openCheckpoint("/dev/zero"), Error, "is a character device");
});
