#!/usr/bin/env bash
# Publishes `biasfree` with Native AOT and checks that it gives the JIT build's results: the same run (the demo model,
# two methods, 300 probes) by both, then their score tables and every result row (times aside) compared.
# On demand, not in CI: Native AOT needs a C toolchain (clang or gcc) and takes minutes to compile.
# Usage: tools/aot-check.sh [WORK_DIR]    (the published executable is left in WORK_DIR/aot)
# The publish warnings are TorchSharp's own (IL2104, IL3053, IL3000): it is not annotated for trimming or AOT.
# See docs/runs-and-reports.md, "Twelfth round".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
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
exit $status
