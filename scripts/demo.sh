#!/usr/bin/env bash
# The main job on the bundled model: quantize it several ways and evaluate each against the original.
# Usage: scripts/demo.sh path/to/microscale   (make demo passes the freshly built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/microscale}
model=models/wp-tiny
text=data/wp-test.txt
calib=data/wp-calib.txt
out=${DEMO_OUT:-out/demo}
mkdir -p "$out"

# A quarter of the test text keeps the demo within a few minutes on 2 cores; `microscale eval` without
# --max-windows scores all of it.
eval_flags=(--text "$text" --seqlen 512 --max-windows 20 --decode-tokens 0)
calib_flags=(--calib "$calib" --calib-samples 16 --calib-seqlen 512)

run() {  # name, quantize flags...
  local name=$1; shift
  echo "== $name: microscale quantize $model --out $out/$name $*" >&2
  "$bin" quantize "$model" --out "$out/$name" --force --quiet "$@" > "$out/$name.quantize.txt"
  tail -n 4 "$out/$name.quantize.txt" >&2
  "$bin" eval "$out/$name" --reference "$model" "${eval_flags[@]}" --json "$out/$name.json" > "$out/$name.eval.txt"
}

run rtn-mxfp4          --method rtn --format mxfp4
run rtn-mxfp4-had32    --method rtn --format mxfp4 --hadamard 32
run rtn-nvfp4          --method rtn --format nvfp4
run rtn-nvfp4-had16    --method rtn --format nvfp4 --hadamard 16
run gptq-nvfp4         --method gptq --format nvfp4 "${calib_flags[@]}"
run mr-gptq-nvfp4      --method mr-gptq --format nvfp4 "${calib_flags[@]}"
run mr-gptq-nvfp4-qep  --method mr-gptq --format nvfp4 --qep "${calib_flags[@]}"

python3 scripts/summarize.py "$out" rtn-mxfp4 rtn-mxfp4-had32 rtn-nvfp4 rtn-nvfp4-had16 gptq-nvfp4 mr-gptq-nvfp4 mr-gptq-nvfp4-qep
