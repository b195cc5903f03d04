/**
 * tokenizer.json files that used to load and then encode "hello world" to [] (or worse): refused at load,
 * naming the file and the field.
 */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { loadTokenizer } from "../../lib/tokenizers/hf.ts";
import { tmpDir } from "../io/tmp.ts";

const FIXTURE = new URL("../tokenizers/fixtures/gpt2-bpe", import.meta.url).pathname;
type Json = Record<string, unknown> & {
  model: Record<string, unknown>;
  added_tokens: Record<string, unknown>[];
};

async function withTokenizer(edit: (j: Json) => void): Promise<string> {
  const dir = await tmpDir();
  const j = JSON.parse(await Deno.readTextFile(`${FIXTURE}/tokenizer.json`)) as Json;
  edit(j);
  await Deno.writeTextFile(`${dir}/tokenizer.json`, JSON.stringify(j));
  return dir;
}

const vocab = (j: Json) => j.model.vocab as Record<string, number>;

const cases: [string, (j: Json) => void, string][] = [
  ["an empty vocab {}", (j) => {
    j.model.vocab = {};
    j.model.merges = [];
    j.added_tokens = [];
  }, "model.vocab is empty"],
  ["a vocab that is an array", (j) => void (j.model.vocab = [["a", 0]]), "model.vocab must be an object"],
  ["string ids", (j) => void (vocab(j).a = "0" as unknown as number), `the id "0"`],
  ["negative ids", (j) => void (vocab(j).a = -1), "the id -1"],
  ["an id of 1e12", (j) => void (vocab(j).a = 1e12), "the id 1000000000000"],
  ["fractional ids", (j) => void (vocab(j).a = 1.5), "the id 1.5"],
  ["duplicate ids", (j) => {
    const v = vocab(j);
    v.b = v.a;
  }, "is given to both"],
  ["a gap in the ids", (j) => {
    const v = vocab(j);
    const last = Object.entries(v).find(([, id]) => id === 5)![0];
    v[last] = 100000;
  }, "token ids are not dense"],
  ["an unknown model.type", (j) => void (j.model.type = "Magic"), `model.type "Magic" is not a known`],
  ["an added token without an integer id", (j) => void (j.added_tokens[0].id = "x"), "added_tokens[0]"],
];

for (const [name, edit, expected] of cases) {
  Deno.test(`tokenizer.json with ${name} is refused at load, naming file and field`, async () => {
    const dir = await withTokenizer(edit);
    const err = await assertRejects(() => loadTokenizer(dir), Error, expected);
    assert(err.message.includes(`${dir}/tokenizer.json`), err.message);
  });
}

Deno.test("a tokenizer that encodes ordinary text to nothing is refused by the load-time probe", async () => {
  const dir = await withTokenizer((j) => {
    // Dense and well typed, but no token can be produced for letters: only punctuation survives.
    j.model.vocab = { "!": 0 };
    j.model.merges = [];
    j.added_tokens = [];
  });
  await assertRejects(() => loadTokenizer(dir), Error, `encodes "hello world" to no tokens`);
});

Deno.test("a special token named in tokenizer_config.json but absent from the vocab is refused", async () => {
  const dir = await withTokenizer(() => {});
  await Deno.writeTextFile(`${dir}/tokenizer_config.json`, JSON.stringify({ eos_token: "<|nope|>" }));
  await assertRejects(
    () => loadTokenizer(dir),
    Error,
    `eos_token "<|nope|>" is not in the tokenizer's vocabulary`,
  );
});

Deno.test("the untouched fixture still loads and round-trips", async () => {
  const dir = await withTokenizer(() => {});
  const tok = await loadTokenizer(dir);
  assertEquals(tok.decode(tok.encode("hello world")), "hello world");
});
