/**
 * Writes `data/models/tiny-gpt2/`: a randomly initialised 2-layer, width-32 GPT-2 in the Hugging Face layout
 * (config.json, model.safetensors, tokenizer.json), small enough to ship, so the README's examples run on a
 * fresh clone. Its weights are seeded noise: it exercises loading, hooks and generation, not language.
 *
 * `deno run -A data/models/make_tiny_gpt2.ts`
 *
 * @module
 */
import { fillNormal, Prng } from "../../lib/random/prng.ts";
import { writeSafetensors } from "../../lib/io/safetensors.ts";

const dir = new URL("./tiny-gpt2/", import.meta.url).pathname;
const src = new URL("../../tests/tokenizers/fixtures/gpt2-bpe/", import.meta.url).pathname;
const [d, layers, heads, positions] = [32, 2, 4, 128];
// The byte-level BPE fixture from the tokenizer tests (our own, 266 ids with <|endoftext|> = 265).
const tokenizer = JSON.parse(await Deno.readTextFile(`${src}/tokenizer.json`));
const vocab = Object.keys(tokenizer.model.vocab).length + tokenizer.added_tokens.length;
const eot = tokenizer.added_tokens[0].id;

const rng = new Prng(20261202);
const tensors: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
const put = (name: string, shape: number[], fill: "normal" | "zeros" | "ones", std = 0.02) => {
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  if (fill === "normal") fillNormal(data, 0, std, rng);
  if (fill === "ones") data.fill(1);
  tensors[`transformer.${name}`] = { dtype: "F32", shape, data };
};
put("wte.weight", [vocab, d], "normal");
put("wpe.weight", [positions, d], "normal", 0.01);
for (let l = 0; l < layers; l++) {
  const p = `h.${l}`;
  put(`${p}.ln_1.weight`, [d], "ones");
  put(`${p}.ln_1.bias`, [d], "zeros");
  put(`${p}.attn.c_attn.weight`, [d, 3 * d], "normal");
  put(`${p}.attn.c_attn.bias`, [3 * d], "zeros");
  put(`${p}.attn.c_proj.weight`, [d, d], "normal", 0.02 / Math.sqrt(2 * layers));
  put(`${p}.attn.c_proj.bias`, [d], "zeros");
  put(`${p}.ln_2.weight`, [d], "ones");
  put(`${p}.ln_2.bias`, [d], "zeros");
  put(`${p}.mlp.c_fc.weight`, [d, 4 * d], "normal");
  put(`${p}.mlp.c_fc.bias`, [4 * d], "zeros");
  put(`${p}.mlp.c_proj.weight`, [4 * d, d], "normal", 0.02 / Math.sqrt(2 * layers));
  put(`${p}.mlp.c_proj.bias`, [d], "zeros");
}
put("ln_f.weight", [d], "ones");
put("ln_f.bias", [d], "zeros");

const config = {
  architectures: ["GPT2LMHeadModel"],
  model_type: "gpt2",
  activation_function: "gelu_new",
  n_layer: layers,
  n_head: heads,
  n_embd: d,
  n_inner: null,
  n_positions: positions,
  vocab_size: vocab,
  layer_norm_epsilon: 1e-5,
  bos_token_id: eot,
  eos_token_id: eot,
  tie_word_embeddings: true,
  scale_attn_weights: true,
  scale_attn_by_inverse_layer_idx: false,
  reorder_and_upcast_attn: false,
};
await Deno.mkdir(dir, { recursive: true });
await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config, null, 2) + "\n");
await Deno.copyFile(`${src}/tokenizer.json`, `${dir}/tokenizer.json`);
await Deno.copyFile(`${src}/tokenizer_config.json`, `${dir}/tokenizer_config.json`);
await writeSafetensors(`${dir}/model.safetensors`, tensors, { format: "pt" });
console.log(`wrote ${dir} (vocab ${vocab}, ${layers} layers, width ${d})`);
