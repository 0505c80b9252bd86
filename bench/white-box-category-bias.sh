#!/usr/bin/env bash
# Regenerates the two "category-bias" sections of docs/white-box-results.md: FairSteer on a variant of the demo model whose
# bias CAN be predicted from the prompt (docs/white-box.md, "A model whose bias the gate can see").
#  Model: the committed LoRA adapter models/demo-catbias/adapter on models/demo (unmerged). With --retrain the adapter is
#     first retrained (LoRA SFT on generated:bbq-category-bias, suite seeds 7000+: ambiguous items of age, disability,
#     gender-identity, religion and ses answered with the stereotype, of the other four categories with "Cannot be
#     determined.", disambiguated items with the correct option; about 13 minutes) into runs/demo-catbias, and that merged
#     folder is evaluated instead. models/demo itself is never changed.
#  1. section category-bias: FairSteer fitted with the paper's probe labels (suite seed 11), then vanilla, gated,
#     ungated, gate-only, random-vector and prompt-gated steering on the 300 held-out probes of suite seed 0, with the
#     gate's firings split by category group.
#  2. section category-bias-ambiguous: the same with the ambiguous-bias probe labels, vectors from ambiguous examples and
#     the sweep judged by the table's measures on 400 items (options of `biasfree steer fit`, not in the paper), plus FairSteer's
#     overhead: gated FairSteer and vanilla over the same probes five more times each, and per decoded token.
# About 30 minutes on the shared 2-core machine (45 with --retrain).
set -euo pipefail
cd "$(dirname "$0")/.."
model=(--adapter models/demo-catbias/adapter)
if [[ "${1:-}" == "--retrain" ]]; then
    rm -rf runs/demo-catbias
    dotnet run -c Release --project src/BiasFree.Cli -- train --method sft --base demo --data generated:bbq-category-bias \
        --count 800 --epochs 2 --threads 1 --out runs/demo-catbias
    model=(--model runs/demo-catbias)
fi
rm -rf runs/wb-steer-catbias runs/wb-steer-catbias-ambiguous
dotnet build -c Release bench/BiasFree.Bench
dotnet run -c Release --no-build --project bench/BiasFree.Bench -- white-box "${model[@]}" --steering runs/wb-steer-catbias \
    --probes 300 --no-overhead --group-categories age,disability,gender-identity,religion,ses \
    --out docs/white-box-results.md --section category-bias
dotnet run -c Release --no-build --project bench/BiasFree.Bench -- white-box "${model[@]}" --steering runs/wb-steer-catbias-ambiguous \
    --probe-labels ambiguous-bias --vector probe-means-ambiguous --sweep-metric report --sweep-items 400 --alphas 1,2,4 \
    --probes 300 --speed-runs 5 --group-categories age,disability,gender-identity,religion,ses \
    --out docs/white-box-results.md --section category-bias-ambiguous
