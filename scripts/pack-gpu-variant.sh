#!/usr/bin/env bash
# Adds another build of the GPU tests and benchmarks (a branch's) to a bundle of scripts/pack-gpu-bundle.sh,
# as BUNDLE/variant-NAME.tar.xz. The `variants` stage of run.sh runs its test_cuda, cuda_decode_bench and
# (when packed) fp4_driver with the bundle's libraries before the bundle's own binaries, so that one call
# on the GPU machine checks and times branches beside main (device time is scarce: docs/modules/cuda.md).
#
#   scripts/pack-gpu-variant.sh BUNDLE NAME BUILD_DIR [DRIVER]
#
# BUILD_DIR: a CMake build of the branch made on this machine like build-gpu (so it needs the libraries
# the bundle carries), with test_cuda and cuda_decode_bench built. DRIVER: the branch's
# scripts/build-cuda-driver.sh output. NAME: letters, digits, '-' and '_'.
set -euo pipefail

BUNDLE=${1:?usage: scripts/pack-gpu-variant.sh BUNDLE NAME BUILD_DIR [DRIVER]}
NAME=${2:?usage: scripts/pack-gpu-variant.sh BUNDLE NAME BUILD_DIR [DRIVER]}
BUILD=${3:?usage: scripts/pack-gpu-variant.sh BUNDLE NAME BUILD_DIR [DRIVER]}
DRIVER=${4:-}
LIMIT_MB=40   # the device tool carries 64 MiB with the working tree (about 22 MB)

[[ "$NAME" =~ ^[A-Za-z0-9_-]+$ ]] || { echo "pack-gpu-variant: bad name '$NAME'" >&2; exit 1; }
[[ -f "$BUNDLE/payload.tar.xz" ]] || { echo "pack-gpu-variant: $BUNDLE has no payload.tar.xz (run scripts/pack-gpu-bundle.sh first)" >&2; exit 1; }
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
for b in test_cuda cuda_decode_bench; do
  [[ -x "$BUILD/$b" ]] || { echo "pack-gpu-variant: $BUILD/$b is missing (build it first)" >&2; exit 1; }
  cp "$BUILD/$b" "$STAGE/$b"
done
if [[ -n "$DRIVER" ]]; then
  [[ -x "$DRIVER" ]] || { echo "pack-gpu-variant: $DRIVER is missing" >&2; exit 1; }
  cp "$DRIVER" "$STAGE/fp4_driver"
fi
strip --strip-unneeded "$STAGE"/*
tar -C "$STAGE" -cJf "$BUNDLE/variant-$NAME.tar.xz.tmp" .
mv "$BUNDLE/variant-$NAME.tar.xz.tmp" "$BUNDLE/variant-$NAME.tar.xz"
total_kb=$(du -sk "$BUNDLE" | cut -f1)
echo "variant $NAME: $(du -h "$BUNDLE/variant-$NAME.tar.xz" | cut -f1); bundle $((total_kb / 1024)) MB (limit ${LIMIT_MB} MB)"
if (( total_kb > LIMIT_MB * 1024 )); then
  echo "pack-gpu-variant: the bundle is over ${LIMIT_MB} MB" >&2
  exit 1
fi
