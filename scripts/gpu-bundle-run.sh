#!/usr/bin/env bash
# run.sh of a bundle made by scripts/pack-gpu-bundle.sh: the GPU runtime's checks on the GPU machine.
#
#   OUT=/path BUNDLE/run.sh            (repository root: $MICROSCALE_ROOT, default the bundle's parent's
#                                       parent, i.e. the bundle lives at REPO/out/gpu-bundle)
#
# Stages (each under `timeout`; a failure is recorded in summary.md and later stages still run):
#   0. variants                  for each BUNDLE/variant-NAME.tar.xz (scripts/pack-gpu-variant.sh: another
#                                branch's test_cuda, cuda_decode_bench and fp4_driver, run with this
#                                payload's libraries): its tests, its decode table and its kernel checks
#   1. test_cuda                 the gtest binary (label gpu): FP4 kernels + GpuModel vs the CPU runtime
#   2. eval cpu vs cuda          wp-tiny and RTN MXFP4 / NVFP4 exports of it (4 windows of 256 tokens)
#   3. cuda_decode_bench         Llama-3-8B-shaped random model, BF16 vs MXFP4 vs NVFP4 tokens/s
#   4. gptq                      quantize --method gptq --device cuda vs cpu on wp-tiny, and
#                                cuda_gptq_bench (MR-GPTQ on one 8B-shaped layer, host vs GPU)
#   5. kernels                   fp4_driver --checks, then --bench (the FP4 kernel table), when packed
#   6. profile                   ncu on fp4_driver --profile (W4A16 and rotate-quantize kernels; not default)
#   7. memcheck                  compute-sanitizer memcheck of test_cuda's kernel and decode tests
# STAGES="variants test eval decode gptq kernels memcheck" (the default) selects stages, e.g.
# STAGES="decode gptq". BENCH_SECTIONS=w4a16,hadamard,activations,gemv,tc (default: the first three)
# limits the kernel benchmark's tables (gemv: batch 1 and 4 GEMV only; tc: the tensor-core kernel at
# batch 1-64); VARIANT_SECTIONS (default activations,gemv) the variants' tables; VARIANT_MEMCHECK="NAME ..." runs compute-sanitizer on those
# variants' kernel and decode tests too.
# $OUT receives two files, refreshed after every stage (the device tool brings back at most 8):
# summary.md, and logs.tar.xz with every log, table and JSON (test_cuda.log, eval-*.json,
# cuda_decode_bench.md, fp4_bench.md, variant-NAME/...).
set -uo pipefail

BUNDLE=$(cd "$(dirname "$0")" && pwd)
ROOT=${MICROSCALE_ROOT:-$(cd "$BUNDLE/../.." && pwd)}
HERE=$(mktemp -d)   # bin/ and lib/ unpacked here
tar -C "$HERE" -xJf "$BUNDLE/payload.tar.xz" || { echo "run.sh: cannot unpack $BUNDLE/payload.tar.xz" >&2; exit 1; }
OUT=${OUT:-$BUNDLE/results}
mkdir -p "$OUT"
W=$(mktemp -d)   # every log; packed into $OUT/logs.tar.xz after each stage
SUMMARY=$W/summary.md
echo "# GPU runtime run ($(date -u +%FT%TZ))" > "$SUMMARY"
publish() { tar -C "$W" -cJf "$OUT/logs.tar.xz" . 2>/dev/null; cp "$SUMMARY" "$OUT/summary.md"; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP" "$HERE" "$W"' EXIT

# CUDA math libraries: torch's nvidia wheels (cu13 layout nvidia/cu13/lib, or older nvidia/*/lib).
NV_DIRS=""
if NV=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null); then
  NV_DIRS=$(find "$NV" -name 'libcublas*.so*' -o -name 'libcusolver*.so*' -o -name 'libcusparse*.so*' \
              -o -name 'libnvJitLink*.so*' 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ':')
fi
if [[ -z "$NV_DIRS" ]]; then
  NV_DIRS=$(find / -name 'libcublasLt.so.13' -not -path '/proc/*' 2>/dev/null | head -1 | xargs -r dirname)
fi
export LD_LIBRARY_PATH="$HERE/lib:${NV_DIRS%:}:${LD_LIBRARY_PATH:-}"
export MICROSCALE_SOURCE_DIR=$ROOT
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" | tee "$W/env.txt"
for b in microscale test_cuda cuda_decode_bench cuda_gptq_bench $([[ -x "$HERE/bin/fp4_driver" ]] && echo fp4_driver); do
  if ldd "$HERE/bin/$b" | grep -q "not found"; then
    echo "- FAIL: $b has unresolved libraries: $(ldd "$HERE/bin/$b" | grep 'not found' | tr -s ' \t' ' ')" | tee -a "$SUMMARY"
  fi
done
nvidia-smi > "$W/nvidia-smi.txt" 2>&1 || echo "- note: nvidia-smi failed (no GPU?)" >> "$SUMMARY"

STAGES=" ${STAGES:-variants test eval decode gptq kernels memcheck} "
want() { [[ "$STAGES" == *" $1 "* ]]; }

stage() {  # stage NAME SECONDS LOG command...
  local name=$1 seconds=$2 log=$3; shift 3
  echo "== $name" >&2
  local start=$SECONDS
  ( cd "$ROOT" && timeout "$seconds" "$@" ) > "$log" 2>&1
  local rc=$?
  local verdict=PASS
  (( rc == 0 )) || verdict="FAIL (exit $rc$( (( rc == 124 )) && echo ', timed out'))"
  echo "- $verdict: $name ($((SECONDS - start)) s, log ${log#"$W"/})" | tee -a "$SUMMARY" >&2
  publish
  return $rc
}

# The tests compute-sanitizer runs (stage 7, and variants named in VARIANT_MEMCHECK), and where it is.
CS=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null | head -1)
MEMCHECK_KERNEL_TESTS='CudaFp4*:E2m1Word*:QuotientRn*:ItemCursor*'
MEMCHECK_DECODE_TESTS='GpuModel.DecodeMatchesPrefill*:GpuModel.GraphDecode*'

# A driver's kernel checks (their FAIL lines and count into the summary), then its tables:
# kernel_checks_and_tables LABEL DRIVER LOG_DIR BENCH_SECONDS SECTIONS (empty = the driver's default).
kernel_checks_and_tables() {
  local label=$1 driver=$2 dir=$3 seconds=$4 sections=$5
  stage "${label}fp4_driver --checks" 300 "$dir/fp4_checks.log" "$driver" --checks
  grep -E "^FAIL|^checks:" "$dir/fp4_checks.log" >> "$SUMMARY"
  stage "${label}fp4_driver --bench" "$seconds" "$dir/fp4_bench.log" "$driver" --bench \
    ${sections:+--sections "$sections"} --out "$dir/fp4_bench.md"
}

# 0. variants: other builds of the tests and benchmarks, run with this payload's libraries.
for v in "$BUNDLE"/variant-*.tar.xz; do
  want variants && [[ -e "$v" ]] || break
  name=$(basename "$v" .tar.xz); name=${name#variant-}
  mkdir -p "$HERE/$name" "$W/variant-$name"
  tar -C "$HERE/$name" -xJf "$v" || { echo "- FAIL: cannot unpack $v" >> "$SUMMARY"; continue; }
  log=$W/variant-$name
  echo "## variant $name" >> "$SUMMARY"
  stage "$name test_cuda" 300 "$log/test_cuda.log" "$HERE/$name/test_cuda" --gtest_color=no
  grep -E "^FAIL |\[  FAILED  \] [A-Z]|\[  PASSED  \]" "$log/test_cuda.log" >> "$SUMMARY"
  stage "$name cuda_decode_bench" 300 "$log/cuda_decode_bench.log" "$HERE/$name/cuda_decode_bench" \
    --out "$log/cuda_decode_bench.md"
  { echo; cat "$log/cuda_decode_bench.md" 2>/dev/null; echo; } >> "$SUMMARY"
  if [[ " ${VARIANT_MEMCHECK:-} " == *" $name "* ]]; then
    stage "$name memcheck" 300 "$log/memcheck.log" "$CS" \
      --tool memcheck --error-exitcode 9 "$HERE/$name/test_cuda" --gtest_color=no \
      --gtest_filter="$MEMCHECK_KERNEL_TESTS:$MEMCHECK_DECODE_TESTS"
    grep -h "ERROR SUMMARY" "$log/memcheck.log" >> "$SUMMARY"
  fi
  [[ -x "$HERE/$name/fp4_driver" ]] && kernel_checks_and_tables "$name " "$HERE/$name/fp4_driver" "$log" 300 \
    "${VARIANT_SECTIONS:-activations,gemv}"
done

# 1. gtest (GPU tests print PASS/FAIL lines with their numbers).
want test && stage "test_cuda" 600 "$W/test_cuda.log" "$HERE/bin/test_cuda" --gtest_color=no
want test && grep -E "^(PASS|FAIL) |\[  FAILED  \] [A-Z]|\[  PASSED  \]|\[  SKIPPED \] [0-9]+ test" "$W/test_cuda.log" >> "$SUMMARY"

# 2. eval on the CPU and the GPU: wp-tiny and its RTN exports, 4 windows of 256 tokens.
CLI="$HERE/bin/microscale"
for f in mxfp4 nvfp4; do
  want eval || break
  stage "quantize wp-tiny $f" 120 "$W/quantize-$f.log" "$CLI" quantize models/wp-tiny --out "$TMP/wp-tiny-$f" --format "$f" --quiet
done
EVAL_ARGS=(--text data/wp-test.txt --seqlen 256 --max-windows 4 --decode-tokens 32 --quiet)
for m in wp-tiny wp-tiny-mxfp4 wp-tiny-nvfp4; do
  want eval || break
  dir=models/wp-tiny; ref=()
  [[ $m != wp-tiny ]] && { dir=$TMP/$m; ref=(--reference models/wp-tiny); }
  for d in cpu cuda; do
    stage "eval $m --device $d" 300 "$W/eval-$m-$d.log" "$CLI" eval "$dir" "${ref[@]}" "${EVAL_ARGS[@]}" --device "$d" \
      --json "$W/eval-$m-$d.json"
  done
done
want eval && python3 - "$W" >> "$SUMMARY" <<'PY'
import json, os, sys
out = sys.argv[1]
rows = ["", "## eval: cpu vs cuda (perplexity within 0.5%, KL means within 0.01 nats + 20%)", "",
        "| model | ppl cpu | ppl cuda | Δ | KL cpu | KL cuda | prefill tok/s cpu | cuda | decode tok/s cpu | cuda | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
for m in ["wp-tiny", "wp-tiny-mxfp4", "wp-tiny-nvfp4"]:
    try:
        c = json.load(open(os.path.join(out, f"eval-{m}-cpu.json")))
        g = json.load(open(os.path.join(out, f"eval-{m}-cuda.json")))
    except Exception as e:
        rows.append(f"| {m} | missing: {e} |"); continue
    pc, pg = c["perplexity"]["ppl"], g["perplexity"]["ppl"]
    kc = c.get("kl_divergence", {}).get("mean"); kg = g.get("kl_divergence", {}).get("mean")
    ok = abs(pg / pc - 1) <= 0.005
    if kc is not None and kg is not None: ok = ok and abs(kg - kc) <= 0.01 + 0.2 * kc
    ec, eg = c["efficiency"], g["efficiency"]
    fmt = lambda v: "-" if v is None else f"{v:.5f}"
    rows.append(f"| {m} | {pc:.4f} | {pg:.4f} | {100*(pg/pc-1):+.3f}% | {fmt(kc)} | {fmt(kg)} | "
                f"{ec['prefill_tokens_per_second']:.0f} | {eg['prefill_tokens_per_second']:.0f} | "
                f"{ec['decode_tokens_per_second']:.1f} | {eg['decode_tokens_per_second']:.1f} | {'PASS' if ok else 'FAIL'} |")
print("\n".join(rows))
with open(os.path.join(out, "eval_compare.md"), "w") as f: f.write("\n".join(rows) + "\n")
PY

# 3. decode / prefill benchmark.
if want decode; then
  stage "cuda_decode_bench" 600 "$W/cuda_decode_bench.log" "$HERE/bin/cuda_decode_bench" --out "$W/cuda_decode_bench.md"
  { echo; cat "$W/cuda_decode_bench.md" 2>/dev/null; } >> "$SUMMARY"
fi

# 4. GPTQ with the GPU's linear algebra: the CLI end to end (same calibration, both devices), then
# one 8B-shaped layer timed on both.
if want gptq; then
  for d in cpu cuda; do
    stage "quantize wp-tiny gptq --device $d" 300 "$W/gptq-$d.log" "$CLI" quantize models/wp-tiny \
      --out "$TMP/gptq-$d" --method gptq --format nvfp4 --calib data/wp-calib.txt --calib-samples 32 \
      --calib-seqlen 256 --device "$d"
  done
  if cmp -s "$TMP/gptq-cpu/model.safetensors" "$TMP/gptq-cuda/model.safetensors"; then
    echo "- gptq --device cuda wrote the same bytes as --device cpu" >> "$SUMMARY"
  else
    echo "- gptq --device cuda differs from --device cpu: $(cmp -l "$TMP/gptq-cpu/model.safetensors" \
      "$TMP/gptq-cuda/model.safetensors" 2>/dev/null | wc -l) bytes" >> "$SUMMARY"
  fi
  grep -h "total relative error" "$W"/gptq-*.log >> "$SUMMARY"
  stage "cuda_gptq_bench" 400 "$W/cuda_gptq_bench.log" "$HERE/bin/cuda_gptq_bench" --out "$W/cuda_gptq_bench.md"
  { echo; cat "$W/cuda_gptq_bench.md" 2>/dev/null; } >> "$SUMMARY"
fi

# 5. the FP4 kernels: every check (PASS/FAIL lines), then the benchmark table.
if want kernels && [[ -x "$HERE/bin/fp4_driver" ]]; then
  kernel_checks_and_tables "" "$HERE/bin/fp4_driver" "$W" 600 "${BENCH_SECTIONS:-}"
fi

# 6. ncu on the W4A16 and rotate-and-quantize kernels (speed of light, occupancy, warp stalls, memory).
if want profile && [[ -x "$HERE/bin/fp4_driver" ]]; then
  NCU=$(command -v ncu || ls /usr/local/cuda*/bin/ncu 2>/dev/null | head -1)
  stage "ncu fp4_driver --profile" 300 "$W/ncu.txt" "$NCU" --kernel-name-base demangled \
    --kernel-name "regex:mma_kernel|gemv_kernel|rotate_quantize_kernel" --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis "$HERE/bin/fp4_driver" --profile
fi

# 7. compute-sanitizer memcheck: the kernel tests, then the decode tests (RoPE/KV append, decode
# attention, the graph), each exiting non-zero on any error.
if want memcheck; then
  stage "memcheck kernel tests" 300 "$W/memcheck-kernels.log" "$CS" --tool memcheck --error-exitcode 9 \
    "$HERE/bin/test_cuda" --gtest_color=no --gtest_filter="$MEMCHECK_KERNEL_TESTS"
  stage "memcheck decode tests" 300 "$W/memcheck-decode.log" "$CS" --tool memcheck --error-exitcode 9 \
    "$HERE/bin/test_cuda" --gtest_color=no --gtest_filter="$MEMCHECK_DECODE_TESTS"
  grep -h "ERROR SUMMARY" "$W"/memcheck-*.log >> "$SUMMARY"
fi

cat "$SUMMARY"
publish
