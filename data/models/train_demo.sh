#!/usr/bin/env sh
# Retrains the bundled demo model data/models/shakespeare-char from scratch with this library's trainer and
# repackages it (weights, state, config, tokenizer metadata, training log, command).
#
#   data/models/train_demo.sh            # writes the run to out/demo-run, then replaces data/models/shakespeare-char
#   RUN=out/my-run data/models/train_demo.sh
#   PACKAGE_ONLY=1 data/models/train_demo.sh   # only repackage a run that already finished in $RUN
#
# Tiny Shakespeare is read from $COHERENCE_DATA_DIR/tinyshakespeare/input.txt when that is set (e.g.
# COHERENCE_DATA_DIR=../shared/data), else downloaded once into the cache with its sha256 checked.
# Takes about an hour on 2 CPU cores with the wasm backend; Ctrl-C saves a checkpoint, and running the
# printed --resume command continues it.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
RUN=${RUN:-out/demo-run}
DEST=data/models/shakespeare-char
CONFIG=data/models/shakespeare-char.config.json

if [ "${PACKAGE_ONLY:-0}" != 1 ] && [ -e "$RUN/checkpoints/latest" ] && [ "${RESUME:-0}" != 1 ]; then
  echo "train_demo: $RUN already holds a run; remove it, set RUN=another/folder, or set RESUME=1 to continue it" >&2
  exit 1
fi
RESUME_FLAG=""
[ "${RESUME:-0}" = 1 ] && RESUME_FLAG="--resume"
CMD="deno run -A lib/cli/train.ts --config $CONFIG --out $RUN --backend wasm $RESUME_FLAG"
if [ "${PACKAGE_ONLY:-0}" = 1 ]; then
  echo "train_demo: packaging the finished run in $RUN (trained with: $CMD)"
else
  echo "train_demo: $CMD"
  $CMD
fi

data/models/package_run.sh "$RUN" "$DEST" data/models/train_demo.sh "$CMD"
