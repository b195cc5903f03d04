#!/usr/bin/env bash
# A PhaseGPT plan as a Slurm job array: task i of N runs shard i/N of the plan into its own results file,
# and a dependent job writes one report over all of them. Submit from the repository root:
#
#   N=8 PLAN=data/configs/phasegpt/phase_a.json SCALE=cpu sbatch --array=0-7 data/configs/phasegpt/slurm_array.sh
#   sbatch --dependency=afterok:<array job id> --wrap \
#     "deno task phasegpt report results/phasegpt/phase_a.*.jsonl --out-dir results/phasegpt/phase_a_report"
#
# --array must be 0-(N-1): shards are 0-based. A task that is preempted or hits its time limit can simply be
# resubmitted with the same array index: the sweep skips the runs already in its results file.
#SBATCH --job-name=phasegpt
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=phasegpt_%A_%a.log
set -euo pipefail

PLAN="${PLAN:-data/configs/phasegpt/phase_a.json}"
SCALE="${SCALE:-cpu}"
OUT_DIR="${OUT_DIR:-results/phasegpt}"
# The shard count: N if given, else the array's own task count (Slurm sets it for --array jobs).
N="${N:-${SLURM_ARRAY_TASK_COUNT:-1}}"
TASK="${SLURM_ARRAY_TASK_ID:-0}"
BACKEND="${BACKEND:-auto}"

if [ "$TASK" -ge "$N" ]; then
  echo "task $TASK is outside 0..$((N - 1)): submit with --array=0-$((N - 1))" >&2
  exit 2
fi
mkdir -p "$OUT_DIR"
stem="$(basename "$PLAN" .json)"
out="$OUT_DIR/$stem.$TASK.jsonl"
echo "phasegpt: plan $PLAN, scale $SCALE, shard $TASK/$N -> $out"
exec deno task phasegpt sweep --plan "$PLAN" --scale "$SCALE" --shard "$TASK/$N" --out "$out" --backend "$BACKEND"
