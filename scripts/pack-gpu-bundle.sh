#!/usr/bin/env bash
# Packs (xz-compressed, DIR/payload.tar.xz + DIR/run.sh) what the GPU machine needs to run the GPU runtime's checks, built HERE (Debian 12, glibc 2.36;
# the GPU machine has a newer glibc but none of our Debian libraries): the stripped `microscale` CLI,
# `test_cuda` and `cuda_decode_bench` into DIR/bin, every non-system shared library they load into
# DIR/lib, and DIR/run.sh (what to run there, see the end of this file).
#
#   scripts/pack-gpu-bundle.sh DIR [BUILD_DIR=build-gpu] [DRIVER=build-driver/fp4_driver]
#
# DRIVER is the standalone kernel driver of scripts/build-cuda-driver.sh (kernel checks and the kernel
# benchmark table); it is packed when it exists.
#
# Left out on purpose (the GPU machine has them, in torch's cu13 nvidia wheels, found by run.sh):
# libcublas / libcublasLt (600 MB), libcusolver, libcusparse, libnvJitLink; and the driver (libcuda),
# which must always be the machine's own. glibc's libc/libm/libpthread/libdl/librt/ld-linux are the
# system's; libstdc++/libgcc_s are included (ours are what the binaries were built against).
set -euo pipefail

DIR=${1:?usage: scripts/pack-gpu-bundle.sh DIR [BUILD_DIR]}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-$ROOT/build-gpu}
DRIVER=${3:-$ROOT/build-driver/fp4_driver}
BINARIES=(microscale test_cuda cuda_decode_bench cuda_gptq_bench)
LIMIT_MB=45

rm -rf "$DIR"
mkdir -p "$DIR/bin" "$DIR/lib"
for b in "${BINARIES[@]}"; do
  [[ -x "$BUILD/$b" ]] || { echo "pack-gpu-bundle: $BUILD/$b is missing (build it first)" >&2; exit 1; }
  cp "$BUILD/$b" "$DIR/bin/$b"
  strip --strip-unneeded "$DIR/bin/$b"
done
if [[ -x "$DRIVER" ]]; then
  cp "$DRIVER" "$DIR/bin/fp4_driver"
  strip --strip-unneeded "$DIR/bin/fp4_driver"
fi

skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libpthread\.so|libdl\.so|librt\.so|libutil\.so|libcuda\.so|libcublas|libcublasLt|libcusolver|libcusparse|libnvJitLink)'
declare -A seen=()
for b in "${BINARIES[@]}" $([[ -x "$DIR/bin/fp4_driver" ]] && echo fp4_driver); do
  while read -r name path; do
    [[ -n "$path" && "$path" != "not" ]] || continue
    [[ "$name" =~ $skip ]] && continue
    [[ -n "${seen[$name]:-}" ]] && continue
    seen[$name]=1
    cp -L "$path" "$DIR/lib/$name"
    strip --strip-unneeded "$DIR/lib/$name" 2>/dev/null || true
  done < <(ldd "$DIR/bin/$b" | awk '/=>/ {print $1, $3}')
done

echo "bundle $DIR (before compression):"
du -h "$DIR/bin"/* "$DIR/lib"/* | sort -h
# OpenBLAS alone is 35 MB; xz brings the whole payload to a fraction. run.sh unpacks it to a temp dir.
tar -C "$DIR" -cJf "$DIR/payload.tar.xz" bin lib
rm -rf "$DIR/bin" "$DIR/lib"
cp "$ROOT/scripts/gpu-bundle-run.sh" "$DIR/run.sh"
chmod +x "$DIR/run.sh"
ls -la "$DIR"
total_kb=$(du -sk "$DIR" | cut -f1)
echo "total $((total_kb / 1024)) MB (limit ${LIMIT_MB} MB)"
if (( total_kb > LIMIT_MB * 1024 )); then
  echo "pack-gpu-bundle: the bundle is over ${LIMIT_MB} MB" >&2
  exit 1
fi
