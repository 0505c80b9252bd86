#!/usr/bin/env bash
# Regenerates DiffPO's results in docs/decoding-methods.md: the demo model's answers (sampled at temperature 1) refined
# by a DiffPO aligner trained on our own trajectories, by the untrained demo model as aligner, with the released
# script's frozen tokens (r ~ U{0..12}) and without, after one Jacobi iteration and at convergence; vanilla and CoT
# beside them. Held-out BBQ-style probes: suite seed 7 is never trained on (neither by the demo model nor the aligner).
#
#   bash bench/decoding/diffpo.sh
#
# Environment: RUNS (folder, default runs-diffpo), LIMIT (probes, default 800), ALIGNER (default $RUNS/aligner: trained
# here by `biasfree diffpo train` unless it already holds a finished training; an interrupted one resumes).
# --concurrency 1 makes each row's latency its own decoding time (for tokens/s); --no-cache decodes every reply.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-runs-diffpo}
LIMIT=${LIMIT:-800}
ALIGNER=${ALIGNER:-$RUNS/aligner}
dotnet build -c Release src/BiasFree.Cli >/dev/null
dotnet build -c Release bench/BiasFree.Bench >/dev/null
CLI=(src/BiasFree.Cli/bin/Release/net10.0/linux-x64/BiasFree.Cli)
COMMON=(--seed 7 --limit "$LIMIT" --concurrency 1 --no-cache --runs-dir "$RUNS/store")

if [[ ! -f "$ALIGNER/diffpo_training.json" ]]; then
  echo "## training the aligner"
  OMP_WAIT_POLICY=PASSIVE nice -n 10 "${CLI[@]}" diffpo train --out "$ALIGNER" --threads 2 | grep -v '^progress'
fi
echo "## aligner: $(grep -E '"(steps|omega|states|trajectories|best_validation_loss|train_seconds)"' "$ALIGNER/diffpo_training.json" | tr -d ' \n')"

run() { # id, then run options
  local id=$1; shift
  echo "## $id"
  "${CLI[@]}" run --run-id "$id" "${COMMON[@]}" "$@" | grep -E '^diffpo: |^\| [^|]+ \| (none|cot|diffpo|cot\+diffpo) \| multiple choice' || true
  dotnet run -c Release --no-build --project bench/BiasFree.Bench -- decoding-costs --runs-dir "$RUNS/store" --run-id "$id"
}

rm -rf "$RUNS/store"
# The released script's settings (window 32, max_iter 1000, reserve 12), trained aligner; vanilla and CoT beside.
run dp-trained --method none,diffpo,cot,cot+diffpo --aligner "$ALIGNER"
# Nothing frozen: the aligner rewrites the whole answer.
run dp-trained-r0 --method diffpo --aligner "$ALIGNER" --diffpo-reserve 0
# The demo model itself as the aligner (no DiffPO training).
run dp-untrained-r0 --method diffpo --diffpo-reserve 0
# One Jacobi iteration only: where consistency training should pay off.
run dp-trained-iter1 --method diffpo --aligner "$ALIGNER" --diffpo-reserve 0 --diffpo-max-iter 1
run dp-untrained-iter1 --method diffpo --diffpo-reserve 0 --diffpo-max-iter 1

echo "## Jacobi refinement vs greedy decoding, random 125M bench model"
dotnet run -c Release --no-build --project bench/BiasFree.Bench -- diffpo --layers 12 --tokens 16 --windows 4,16 --repeats 1
