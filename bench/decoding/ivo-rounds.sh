#!/usr/bin/env bash
# Regenerates "IVO per round on held-out probes" in docs/decoding-methods.md: trains the value model exactly as ivo.sh
# does (prompts from suite seed 13; `value train` keeps each round's value model as OUT/rounds/V{r}), then
# `biasfree value eval` decodes held-out BBQ-style probes (suite seed 7, never trained on) with the base policy and with
# the tokenwise policy guided by each V_r, and prints one row per policy: mean reward with a 95 % bootstrap interval over
# probes, ambiguous BFS, disambiguated accuracy and disambiguated "unknown" (over-refusal) with the report's intervals.
#
#   bash bench/decoding/ivo-rounds.sh [MODEL_FOLDER]     # default: the demo model
#
# Environment: WORK (folder of the value model, default runs-ivo), LIMIT (held-out probes, default 400: 200 ambiguous
# and 200 disambiguated), THREADS (torch threads, 1), VALUE_MODEL (a value model folder from an earlier run of this
# script or of ivo.sh, with its rounds/ folders: skips the training).
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-runs-ivo}
LIMIT=${LIMIT:-400}
THREADS=${THREADS:-1}
MODEL=()
if [[ $# -ge 1 ]]; then MODEL=(--model "$1"); fi
dotnet build -c Release src/BiasFree.Cli >/dev/null
CLI=(src/BiasFree.Cli/bin/Release/net10.0/linux-x64/BiasFree.Cli)
VALUE=${VALUE_MODEL:-$WORK/value}

echo "## value training"
if [[ -z "${VALUE_MODEL:-}" ]]; then
  rm -rf "$WORK/value"
  nice -n 10 "${CLI[@]}" value train --out "$VALUE" "${MODEL[@]}" --prompts "${PROMPTS:-64}" --rollouts "${ROLLOUTS:-4}" \
    --iterations "${ITERATIONS:-2}" --fit-steps "${FIT_STEPS:-60}" --threads "$THREADS" | grep -vE '^progress '
else
  python3 -c 'import json,sys; [print(r) for r in json.load(open(sys.argv[1]))["rounds"]]' "$VALUE/value.json"
fi
echo "## held-out probes, one row per round"
nice -n 10 "${CLI[@]}" value eval --value-model "$VALUE" "${MODEL[@]}" --seed 7 --limit "$LIMIT" --threads "$THREADS" | grep -vE '^progress '
