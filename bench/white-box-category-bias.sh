#!/usr/bin/env bash
# Regenerates the "category-bias" section of docs/white-box-results.md: FairSteer on a variant of the demo model whose
# bias CAN be predicted from the prompt (docs/white-box.md, "A model whose bias the gate can see").
#  1. LoRA SFT of the demo model on generated:bbq-category-bias (suite seeds 7000+): ambiguous items of age, disability,
#     gender-identity, religion and ses answered with the stereotype, of the other four categories with "Cannot be
#     determined.", disambiguated items (one third) with the correct option. models/demo itself is not changed.
#  2. FairSteer fitted on it from scratch (suite seed 11), then vanilla, gated, ungated, gate-only and random-vector
#     steering on the 300 held-out probes of suite seed 0, with the gate's firings split by category group.
# About 30 minutes on the shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf runs/demo-catbias runs/wb-steer-catbias
dotnet run -c Release --project src/BiasFree.Cli -- train --method sft --base demo --data generated:bbq-category-bias \
    --count 800 --epochs 2 --threads 1 --out runs/demo-catbias
dotnet run -c Release --project bench/BiasFree.Bench -- white-box --model runs/demo-catbias --steering runs/wb-steer-catbias \
    --probes 300 --no-overhead --group-categories age,disability,gender-identity,religion,ses \
    --out docs/white-box-results.md --section category-bias
