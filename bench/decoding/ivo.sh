#!/usr/bin/env bash
# Regenerates the IVO results of docs/decoding-methods.md: trains a value model on the demo model (prompts from suite
# seed 13), prints its reward per round, then runs vanilla sampling, tokenwise IVO and blockwise IVO on held-out
# BBQ-style probes (suite seed 7, never trained on) and prints each run's headline rows and decoding costs.
#
#   bash bench/decoding/ivo.sh [MODEL_FOLDER]     # default: the demo model
#
# Environment: WORK (folder for the value model and the run store, default runs-ivo), LIMIT (probes, default 400),
# PROMPTS / ROLLOUTS / ITERATIONS / FIT_STEPS (value training, defaults 64 / 4 / 2 / 60), THREADS (torch threads, 1),
# VALUE_MODEL (a value model folder from an earlier run of this script: skips the training and prints its rounds).
# --concurrency 1 makes each row's latency its own decoding time (for tokens/s); --no-cache decodes every reply.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-runs-ivo}
LIMIT=${LIMIT:-400}
THREADS=${THREADS:-1}
MODEL=()
TARGET=()
if [[ $# -ge 1 ]]; then MODEL=(--model "$1"); TARGET=(--target "$1" --temperature 1); fi
dotnet build -c Release src/BiasFree.Cli >/dev/null
dotnet build -c Release bench/BiasFree.Bench >/dev/null
CLI=(src/BiasFree.Cli/bin/Release/net10.0/linux-x64/BiasFree.Cli)
VALUE=${VALUE_MODEL:-$WORK/value}
COMMON=(--seed 7 --limit "$LIMIT" --concurrency 1 --no-cache --runs-dir "$WORK/runs" --value-model "$VALUE" "${TARGET[@]}")

rm -rf "$WORK/runs"
echo "## value training"
if [[ -z "${VALUE_MODEL:-}" ]]; then
  rm -rf "$WORK/value"
  "${CLI[@]}" value train --out "$VALUE" "${MODEL[@]}" --prompts "${PROMPTS:-64}" --rollouts "${ROLLOUTS:-4}" \
    --iterations "${ITERATIONS:-2}" --fit-steps "${FIT_STEPS:-60}" --threads "$THREADS" | grep -vE '^progress '
else
  python3 -c 'import json,sys; [print(r) for r in json.load(open(sys.argv[1]))["rounds"]]' "$VALUE/value.json"
fi

run() { # id, then run options
  local id=$1; shift
  echo "## $id"
  "${CLI[@]}" run --run-id "$id" "${COMMON[@]}" "$@" | grep -E '^\| [^|]+ \| (none|ivo|ivo-block) \| multiple choice' || true
  "${CLI[@]}" report "$id" --runs-dir "$WORK/runs" | grep -E '^\| [^|]+ \| (ivo|ivo-block) \| [0-9]+ \|' || true
  dotnet run -c Release --no-build --project bench/BiasFree.Bench -- decoding-costs --runs-dir "$WORK/runs" --run-id "$id"
}

run ivo-default --method none,ivo,ivo-block                                   # β 5, k 10; blocks of 4, W 2, B 4
run ivo-variants --method ivo,ivo-block --ivo-beta 20 --ivo-block-tokens 2     # a stronger β; blocks of 2
