#!/usr/bin/env sh
# Packages the newest checkpoint of a training run as a bundled model folder: weights, state, the
# run's config and log, token metadata (and tokenizer.json when the run has one), the command that
# produced it and any extra files named. The new folder is assembled beside the old one and then moved
# over it; the old folder's README.md is kept.
#
#   data/models/package_run.sh RUN DEST PRODUCER "COMMAND" [EXTRA_FILE ...]
set -eu
RUN=$1
DEST=$2
PRODUCER=$3
CMD=$4
shift 4
STEP_DIR="$RUN/checkpoints/$(cat "$RUN/checkpoints/latest")"
TMP="$DEST.tmp.$$"
rm -rf "$TMP"
mkdir -p "$TMP"
cp "$STEP_DIR/model.safetensors" "$STEP_DIR/state.json" "$TMP/"
if [ -f "$STEP_DIR/tokenizer.json" ]; then cp "$STEP_DIR/tokenizer.json" "$TMP/"; fi
cp "$RUN/log.jsonl" "$RUN/config.json" "$TMP/"
cp "$RUN/tokens/meta.json" "$TMP/tokens_meta.json"
for extra in "$@"; do cp "$extra" "$TMP/"; done
{
  echo "# Produced by $PRODUCER on $(date -u +%Y-%m-%dT%H:%M:%SZ) ($(uname -m), $(nproc) cores):"
  echo "${COHERENCE_DATA_DIR:+COHERENCE_DATA_DIR=$COHERENCE_DATA_DIR }$CMD"
} > "$TMP/COMMAND.txt"
if [ -f "$DEST/README.md" ]; then cp "$DEST/README.md" "$TMP/README.md"; fi
rm -rf "$DEST"
mv "$TMP" "$DEST"
echo "$PRODUCER: packaged $STEP_DIR into $DEST"
