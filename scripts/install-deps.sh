#!/usr/bin/env bash
# Installs the Debian packages microscale builds and tests with. Idempotent: it asks apt only for
# what is missing, so a machine that already has everything pays nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libeigen3-dev libopenblas-dev liblapack-dev liblapacke-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev libpcre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev libomp-dev
  python3 python3-pip python3-numpy python3-yaml python3-tqdm
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -ne 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The reference GGUF reader for tests/export (gguf-py, pure Python; its numpy/pyyaml/tqdm come from apt
# above). Installed with --target into <repo>/build-pydeps (git-ignored, like every /build*/ folder):
# that needs no virtual environment and works on Debian's externally-managed Python.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -d "$repo/build-pydeps/gguf-0.19.0.dist-info" ]; then
  echo "install-deps: installing gguf==0.19.0 into $repo/build-pydeps" >&2
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$repo/build-pydeps" gguf==0.19.0 ||
    echo "install-deps: could not install gguf==0.19.0; the GGUF cross-check test will be skipped" >&2
fi
