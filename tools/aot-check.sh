#!/usr/bin/env bash
# Publishes `biasfree` with Native AOT and checks that it gives the JIT build's results: the same run (the demo model,
# two methods, 300 probes) by both, then their score tables and every result row (times aside) compared.
# On demand, not in CI: Native AOT needs a C toolchain (clang or gcc) and takes minutes to compile.
# Usage: tools/aot-check.sh [--all] [WORK_DIR]    (the published executable is left in WORK_DIR/aot)
#   --all: also trains with every trainer not covered by the run above (small settings: the value model, DiffPO's
#   aligner, Safe-RLHF, DPO, the judge, a tiny demo model) and runs the white-box methods that use their outputs and a
#   dialogue suite judged by the trained judge, with both builds, and compares every weight file byte for byte, the
#   training records (times aside) and the result rows (about five minutes more here).
# The publish warnings are TorchSharp's own (IL2104, IL3053, IL3000): it is not annotated for trimming or AOT.
# See docs/runs-and-reports.md, "Twelfth round" and "Thirteenth round".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
all=0
if [ "${1:-}" = --all ]; then all=1; shift; fi
work="$(realpath -m "${1:-$root/artifacts/aot-check}")"
mkdir -p "$work"
# Each build in its own artifacts folder, so the repository's bin/ and obj/ (a JIT build's) are left as they are.
dotnet publish "$root/src/BiasFree.Cli" -c Release -p:PublishAot=true -p:SelfContained=true -p:TreatWarningsAsErrors=false \
  --artifacts-path "$work/build-aot" -o "$work/aot"
dotnet build "$root/src/BiasFree.Cli" -c Release --artifacts-path "$work/build-jit" -o "$work/jit"
rm -rf "$work/runs-aot" "$work/runs-jit"
args=(run --method none --method self-awareness --limit 300 --run-id aot-check)
"$work/aot/BiasFree.Cli" "${args[@]}" --runs-dir "$work/runs-aot" > "$work/aot.out"
dotnet "$work/jit/BiasFree.Cli.dll" "${args[@]}" --runs-dir "$work/runs-jit" > "$work/jit.out"
status=0
for kind in aot jit; do
  if [ "$kind" = aot ]; then cli=("$work/aot/BiasFree.Cli"); else cli=(dotnet "$work/jit/BiasFree.Cli.dll"); fi
  "${cli[@]}" report aot-check --runs-dir "$work/runs-$kind" --format md -o "$work/$kind.md" > /dev/null
  "${cli[@]}" report aot-check --runs-dir "$work/runs-$kind" --format jsonl -o "$work/$kind.jsonl" > /dev/null
  grep '^| biasfree-demo' "$work/$kind.md" > "$work/$kind.scores"
  sed -E 's/"(started|completed)":"[^"]*",?//g; s/"latencyMs":[0-9]+,?//g' "$work/$kind.jsonl" > "$work/$kind.rows"
done
for part in scores rows; do
  if cmp -s "$work/aot.$part" "$work/jit.$part"; then
    echo "$part: identical ($(wc -l < "$work/aot.$part") lines)"
  else
    echo "$part: DIFFER"; diff "$work/aot.$part" "$work/jit.$part" | head -20; status=1
  fi
done
if [ "$all" = 1 ]; then
  export BIASFREE_DEMO_MODEL="$root/models/demo"
  rows() { sed -E 's/"(started|completed)":"[^"]*",?//g; s/"latencyMs":[0-9]+,?//g' "$@"; }
  for kind in aot jit; do
    if [ "$kind" = aot ]; then cli=("$work/aot/BiasFree.Cli"); else cli=(dotnet "$work/jit/BiasFree.Cli.dll"); fi
    o="$work/all-$kind"; rm -rf "$o"; mkdir -p "$o"
    "${cli[@]}" value train --prompts 8 --rollouts 2 --iterations 1 --fit-steps 6 --batch-size 8 --checkpoint-every 3 --threads 1 -o "$o/value" > "$o/value.log"
    "${cli[@]}" diffpo train --count 40 --steps 6 --eval-every 3 --checkpoint-every 3 --threads 1 -o "$o/aligner" > "$o/diffpo.log"
    "${cli[@]}" train --method safe-rlhf --data generated:bbq --count 60 --rl-iterations 2 --score-model-steps 6 --rl-prompts 4 --rl-samples 2 --threads 1 -o "$o/safe-rlhf" > "$o/safe-rlhf.log"
    "${cli[@]}" train --method dpo --data generated:bbq --count 60 --steps 6 --eval-every 3 --threads 1 -o "$o/dpo" > "$o/dpo.log"
    "${cli[@]}" judge train --count 32 --sft-steps 4 --dpo-steps 4 --threads 1 --out "$o/judge" > "$o/judge.log"
    "${cli[@]}" demo-model train -o "$o/demo-small" --steps 30 --batch-size 8 --hidden-size 64 --layers 2 --heads 2 --threads 1 > "$o/demo.log"
    "${cli[@]}" run --method none,biasfilter,persona-judge,draft-persona,judge-persona,ivo,ivo-block,diffpo --limit 12 \
      --reward-model "$o/dpo" --reward-ref "$root/models/demo" --value-model "$o/value" --aligner "$o/aligner" --run-id white-box --runs-dir "$o/runs" > "$o/white-box.log"
    "${cli[@]}" run --suite fairmt-builtin --method none,self-reflection --judge "demo:$o/judge" --limit 6 --run-id dialogues --runs-dir "$o/runs" > "$o/dialogues.log"
    for r in white-box dialogues; do
      "${cli[@]}" report "$r" --runs-dir "$o/runs" --format jsonl -o "$o/$r.jsonl" > /dev/null
      # A dialogue's earlier turns are keyed under "none" for both methods, so which method's request found the other's
      # reply in the cache depends on timing: the "cached" flag is left out of that comparison.
      if [ "$r" = dialogues ]; then rows "$o/$r.jsonl" | sed -E 's/"cached":(true|false),?//g'; else rows "$o/$r.jsonl"; fi \
        | sed "s|$o/|OUT/|g" > "$o/$r.rows"
    done
    # The training records' times and this build's own folder aside.
    find "$o" -name '*.json' -not -path '*/runs/*' | while read -r f; do
      sed -E '/"((train_|elapsed_)?seconds|created_utc)":/d' "$f" | sed "s|$o/|OUT/|g" > "$f.cmp"
    done
  done
  compared=0
  while read -r f; do
    compared=$((compared + 1))
    cmp -s "$work/all-aot/$f" "$work/all-jit/$f" || { echo "DIFFER: $f"; status=1; }
  done < <(cd "$work/all-jit" && find . -type f \( -name '*.safetensors' -o -name '*.cmp' -o -name '*.rows' \) | sort)
  echo "--all: $compared files compared (weights, training records, result rows)$([ "$status" = 0 ] && echo ", all identical")"
fi
exit $status
