#!/usr/bin/env sh
# Retrains the small reFlow model data/models/reflow-wiki-tiny used by notebooks 21-23 and repackages it
# (weights, state, tokenizer, config, training log, command).
#
#   COHERENCE_DATA_DIR=../shared/data data/models/train_reflow_wiki.sh
#   PACKAGE_ONLY=1 data/models/train_reflow_wiki.sh   # only repackage a finished run in $RUN
#
# WikiText-2's train split is not available offline, so the model trains on the valid split (90 %) and
# holds out its last 10 %. The word-level tokenizer (data/configs/reflow-wiki-words) is rebuilt first.
# About 20 minutes on 2 shared CPU cores with the wasm backend.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUN=${RUN:-out/reflow-wiki-tiny}
DEST=data/models/reflow-wiki-tiny
CONFIG=data/configs/reflow-wiki-tiny.json
# What `deno task train` runs (lib/cli/train.ts registers the reFlow presets).
CMD="deno run -A lib/cli/train.ts --config $CONFIG --out $RUN --backend wasm"
if [ "${PACKAGE_ONLY:-0}" != 1 ]; then
  deno run -A data/configs/reflow_wiki_words.ts
  echo "train_reflow_wiki: $CMD"
  $CMD
fi
# The trainer copies tokenizer.json only; this config names <unk> as the unknown token (special.unk).
data/models/package_run.sh "$RUN" "$DEST" data/models/train_reflow_wiki.sh "$CMD" \
  data/configs/reflow-wiki-words/tokenizer_config.json
