#!/usr/bin/env bash
# Runs the CPU benchmarks (make bench). Figures go to stdout; docs/benchmarks.md records them with the
# machine they ran on. The GPU benchmark runs on a GPU machine: scripts/gpu-run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
echo "# machine: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p'), $(nproc) cores"
for b in theory_bench tokenizer_bench layer_quant_bench prefill_bench eval_memory_bench; do
  if [ -x "$build/$b" ]; then
    echo "## $b"
    "$build/$b"
  fi
done
echo "## accuracy table (bench/accuracy_table.sh)"
BIN="$build/microscale" bash bench/accuracy_table.sh models/wp-tiny out/accuracy
