#!/usr/bin/env bash
# Regenerates the table in docs/engine-performance.md: the engine's prefill/decode throughput against the memory-
# bandwidth bound and, when a python3 with torch is present (Debian: apt-get install python3-torch), against an eager
# PyTorch HF-style loop on the same weights and threads, interleaved, medians of the repeats. Without PyTorch it prints
# the engine alone. Extra arguments go to the benchmark (--quick, --dtypes bfloat16, --batches 1,8, --repeats 5, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 10 dotnet run -c Release --project bench/BiasFree.Bench -- --threads 1 --dtypes bfloat16 --prompt 32 --steps 16 --repeats 3 "$@"
