#!/usr/bin/env bash
# Builds and runs the FP4 GPU kernels' checks and benchmark on a CUDA machine (Hopper, sm_90a), with
# nothing but nvcc (no Debian packages needed: scripts/build-cuda-driver.sh compiles the kernels, the
# CPU reference sources and the driver directly). Every stage is bounded by `timeout`; a failing stage
# is reported and the next one still runs. Results go to $OUT (default ./gpu-out):
#   build.log, checks.log (PASS/FAIL lines), memcheck.log, cuda_bench.md (tables), bench.log,
#   ptxas.log (registers / spills per kernel), summary.md (one line per stage).
# Usage: OUT=/some/dir scripts/gpu-run.sh        (total runtime well under 8 minutes on an H100)
set -u
set -x
root="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${OUT:-$root/gpu-out}"
mkdir -p "$OUT"
build="${BUILD_DIR:-/tmp/microscale-gpu-build}"
bin="$build/fp4_driver"
export PATH="/usr/local/cuda/bin:$PATH"
summary="$OUT/summary.md"
: > "$summary"

stage() {  # stage NAME SECONDS LOG command...
  local name="$1" limit="$2" log="$3"
  shift 3
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  local msg="stage $name: rc=$rc ($(( $(date +%s) - t0 )) s)"
  [ "$rc" -eq 124 ] && msg="$msg TIMED OUT after ${limit}s"
  [ "$rc" -eq 0 ] && msg="$msg OK" || msg="$msg FAILED (see $(basename "$log"))"
  echo "$msg" | tee -a "$summary"
  return "$rc"
}

{
  echo "## machine"
  nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem --format=csv 2>&1 | head -3
  nvcc --version | tail -1
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# 1. build (parallel nvcc of each source; ~2 minutes of one core for the GEMV instantiations)
stage build 200 "$OUT/build.log" env NVCC="$(command -v nvcc)" bash "$root/scripts/build-cuda-driver.sh" "$bin"
build_rc=$?
# Resource report of the kernels (registers, spills), cheap since the objects exist.
if [ "$build_rc" -eq 0 ]; then
  for f in fp4_gemv activation_kernels; do
    cuobjdump --dump-resource-usage "$build/obj/cuda_$f.cu.o" 2>/dev/null | grep -E "Function|REG" | \
      sed 's/_ZN10microscale4cuda6detail[0-9A-Za-z_]*__//' | head -60
  done > "$OUT/ptxas.log" 2>&1
fi

if [ "$build_rc" -eq 0 ]; then
  # 2. correctness (PASS/FAIL per check)
  stage checks 80 "$OUT/checks.log" "$bin" --checks
  grep -E "^(PASS|FAIL|SKIP)|checks:" "$OUT/checks.log" | tail -80
  # 3. memory checker on the quick subset
  if command -v compute-sanitizer > /dev/null; then
    stage memcheck 80 "$OUT/memcheck.log" compute-sanitizer --tool memcheck --error-exitcode 3 "$bin" --checks --quick
    tail -5 "$OUT/memcheck.log"
  else
    echo "stage memcheck: SKIPPED (compute-sanitizer not found)" | tee -a "$summary"
  fi
  # 4. benchmark (tables on stdout and in cuda_bench.md)
  stage bench 120 "$OUT/bench.log" "$bin" --bench --out "$OUT/cuda_bench.md"
  cat "$OUT/cuda_bench.md" 2>/dev/null || tail -40 "$OUT/bench.log"
fi

set +x
echo
echo "==================== summary ===================="
cat "$summary"
grep -c "^PASS" "$OUT/checks.log" 2>/dev/null | sed 's/^/checks passed: /'
grep "^FAIL" "$OUT/checks.log" 2>/dev/null | head -20
exit 0
