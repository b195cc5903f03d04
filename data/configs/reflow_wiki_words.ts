// Writes data/configs/reflow-wiki-words/{tokenizer.json,tokenizer_config.json}: a word-level tokenizer of the
// 5000 most frequent words of WikiText-2 valid plus every default reFlow probe word, so that the probes of the
// twelve experiments are single tokens on the small model trained with data/configs/reflow-wiki-tiny.json.
//   COHERENCE_DATA_DIR=../shared/data deno run -A data/configs/reflow_wiki_words.ts
import { WordTokenizer } from "../../lib/reflow/experiments/word_tokenizer.ts";
import { defaultProbeWords } from "../../lib/reflow/experiments/defaults.ts";

const dataDir = Deno.env.get("COHERENCE_DATA_DIR") ?? "../shared/data";
const text = await Deno.readTextFile(`${dataDir}/wikitext-2/valid.txt`);
const top = WordTokenizer.fromCorpus(text, 5000).toJSON().words.slice(1);
const words = [...new Set([...top.filter((w) => w !== "<unk>"), ...defaultProbeWords()])];
const tok = new WordTokenizer(words);
const out = new URL("./reflow-wiki-words/", import.meta.url);
await Deno.mkdir(out, { recursive: true });
await Deno.writeTextFile(new URL("tokenizer.json", out), JSON.stringify(tok.toTokenizerJson()));
await Deno.writeTextFile(new URL("tokenizer_config.json", out), JSON.stringify({ unk_token: "<unk>" }));
console.log(`wrote ${tok.vocabSize} words to ${out.pathname}`);
