#!/usr/bin/env bash
# Builds the standalone GPU driver (bench/cuda/fp4_driver.cu) with plain nvcc: the CUDA kernels, their
# host API, and the CPU reference sources of formats/ and rotation/, with a {fmt} stand-in so that no
# Debian package is needed. Usage: scripts/build-cuda-driver.sh OUTPUT_BINARY
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build-driver/fp4_driver}"
nvcc="${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}"
mkdir -p "$(dirname "$out")"
objdir="$(dirname "$out")/obj"
mkdir -p "$objdir"
flags=(-std=c++20 -O3 --expt-relaxed-constexpr -lineinfo -gencode=arch=compute_90a,code=sm_90a
       -I"$root/src" -I"$root/tests" -I"$root/bench" -I"$root/bench/cuda/fmt_shim" -DMICROSCALE_SOURCE_DIR="\"$root\""
       -Xcompiler=-Wall,-Wno-unused-parameter,-fopenmp)
# The kernels and their host API only: the GPU runtime and GPTQ files of cuda/ need the Debian
# libraries (fmt, Eigen, LAPACK) that this standalone build exists to avoid.
sources=("$root"/src/microscale/cuda/fp4_gemv.cu "$root"/src/microscale/cuda/fp4_mma.cu
         "$root"/src/microscale/cuda/activation_kernels.cu "$root"/src/microscale/cuda/device_facts.cpp
         "$root"/src/microscale/cuda/fp4_linear.cpp
         "$root"/src/microscale/formats/*.cpp "$root"/src/microscale/rotation/*.cpp "$root"/bench/cuda/fp4_driver.cu)
pids=()
objs=()
for src in "${sources[@]}"; do
  obj="$objdir/$(basename "$(dirname "$src")")_$(basename "$src").o"
  objs+=("$obj")
  "$nvcc" "${flags[@]}" -c "$src" -o "$obj" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
[ "$status" -eq 0 ] || { echo "build-cuda-driver: compilation failed" >&2; exit 1; }
"$nvcc" "${flags[@]}" "${objs[@]}" -o "$out" -lcublas -lcudart -lgomp
echo "build-cuda-driver: built $out"
