// `deno task train` with the reFlow presets registered (lib/reflow/mod.ts), for configs such as
// data/configs/reflow-wiki-tiny.json. Kept because data/models/reflow-wiki-tiny was trained with it; lib/cli/train.ts
// now registers the presets itself, so `deno task train --config ...` is the same run.
//   COHERENCE_DATA_DIR=../shared/data deno run -A data/configs/train_reflow.ts --config data/configs/reflow-wiki-tiny.json --out out/reflow-wiki-tiny --backend wasm
import "../../lib/reflow/mod.ts";
import { trainMain } from "../../lib/cli/train.ts";

Deno.exit(await trainMain(Deno.args));
