// `deno task train` with the reFlow presets registered (lib/reflow/mod.ts), for configs such as
// data/configs/reflow-wiki-tiny.json:
//   COHERENCE_DATA_DIR=../shared/data deno run -A data/configs/train_reflow.ts --config data/configs/reflow-wiki-tiny.json --out out/reflow-wiki-tiny --backend wasm
import "../../lib/reflow/mod.ts";
import { trainMain } from "../../lib/cli/train.ts";

Deno.exit(await trainMain(Deno.args));
