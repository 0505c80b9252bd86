#!/usr/bin/env bash
# Regenerates the table "The products per row count" in docs/engine-performance.md: CPU time of one decode step's bf16
# matrix products of the bench model per row count of x, through libtorch's linear (oneDNN) and Bf16Linear's two
# kernels, 1 torch thread, paths interleaved, medians. Extra arguments go to the benchmark (--rows 1,8,32, --repeats 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice -n 10 dotnet run -c Release --project bench/BiasFree.Bench -- kernels "$@"
