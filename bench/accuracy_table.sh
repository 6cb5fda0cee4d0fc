#!/usr/bin/env bash
# The accuracy table of docs/benchmarks.md: {RTN, GPTQ, MR-GPTQ} x {MXFP4, NVFP4, INT4 g128} x {-, QEP}
# on a model, each evaluated against the original (perplexity, KL, top-1) with the quantization time.
# Usage: bench/accuracy_table.sh [MODEL_DIR] [OUT_DIR]   (defaults: models/wp-tiny, out/accuracy)
# Environment: BIN (default build/microscale), SAMPLES (calibration windows, default 64),
# SEQLEN (default 512), WINDOWS (eval windows, default all).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/wp-tiny}
out=${2:-out/accuracy}
bin=${BIN:-build/microscale}
samples=${SAMPLES:-64}
seqlen=${SEQLEN:-512}
eval_flags=(--text data/wp-test.txt --seqlen "$seqlen" --quiet)
[ -n "${WINDOWS:-}" ] && eval_flags+=(--max-windows "$WINDOWS")
mkdir -p "$out"
results="$out/results.tsv"
printf "method\tformat\tqep\tppl\tref_ppl\tkl_mean\tkl_p99\ttop1\tquant_seconds\n" > "$results"

for method in rtn gptq mr-gptq; do
  for format in mxfp4 nvfp4 int4; do
    for qep in no yes; do
      name="$method-$format-$qep"
      flags=(--method "$method" --format "$format" --seed 0 --quiet --force)
      [ "$format" = int4 ] && flags+=(--group-size 128)
      [ "$qep" = yes ] && flags+=(--qep)
      if [ "$method" != rtn ] || [ "$qep" = yes ]; then
        flags+=(--calib data/wp-calib.txt --calib-samples "$samples" --calib-seqlen "$seqlen")
      fi
      start=$EPOCHREALTIME
      "$bin" quantize "$model" --out "$out/$name" "${flags[@]}" > "$out/$name.quantize.txt"
      seconds=$(python3 -c "print($EPOCHREALTIME - $start)")
      "$bin" eval "$out/$name" --reference "$model" "${eval_flags[@]}" --json "$out/$name.json" > "$out/$name.eval.txt"
      python3 - "$out/$name.json" "$method" "$format" "$qep" "$seconds" >> "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p, kl = r["perplexity"], r["kl_divergence"]
print("\t".join([sys.argv[2], sys.argv[3], sys.argv[4], f"{p['ppl']:.4f}", f"{p['reference_ppl']:.4f}",
                 f"{kl['mean']:.5f}", f"{kl['p99']:.5f}", f"{100 * r['top1_agreement']:.2f}", f"{float(sys.argv[5]):.1f}"]))
PY
      tail -n 1 "$results"
      rm -rf "${out:?}/$name"  # keep the reports, not the checkpoints
    done
  done
done
column -t -s $'\t' "$results"
