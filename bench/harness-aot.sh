#!/usr/bin/env bash
# The harness benchmark with its client compiled ahead of time (Native AOT): publishes bench/HarnessAotClient (the same
# client code as `harness --client`), then runs the harness benchmark with every client process started from it.
# Arguments go to the harness benchmark (e.g. --quick, --sizes 50000 --in-flight 256 --latencies 50).
# Needs the Native AOT toolchain: clang (or gcc) and the ILCompiler package, which `dotnet publish` restores.
# See docs/runs-and-reports.md, "Twelfth round".
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/bench/HarnessAotClient/bin/aot"
dotnet publish "$root/bench/HarnessAotClient/HarnessAotClient.csproj" -c Release -o "$out"
dotnet run -c Release --project "$root/bench/BiasFree.Bench" -- harness --client-exe "$out/HarnessAotClient" "$@"
