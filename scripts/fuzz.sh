#!/usr/bin/env bash
# Fuzzes the readers of untrusted input with libFuzzer, ASan and UBSan: safetensors, GGUF, a model
# directory loaded and run, tokenizer.json, config.json and task files (fuzz/*_fuzz.cpp). Not part of
# `make test`: a finding becomes a unit test of its module, with what it showed as the input.
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]     (default 60 s each, every harness)
#
# Builds into build-fuzz/ with clang; seeds each corpus from the repository's own fixtures; keeps the
# corpora in build-fuzz/corpus/<harness>/ between runs and writes crashing inputs to
# build-fuzz/findings/<harness>/ (a harness goes on after a crash: -fork=1 -ignore_crashes=1). Exits 1
# if any harness found something new.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=(safetensors_fuzz gguf_fuzz model_fuzz tokenizer_fuzz config_fuzz tasks_fuzz)
build=build-fuzz

bash scripts/install-deps.sh
# libFuzzer comes with clang's runtime libraries (Debian: clang, libclang-rt-dev).
for p in clang libclang-rt-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "fuzz: installing $p" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  fi
done
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
    -DMICROSCALE_FUZZ=ON -DMICROSCALE_CUDA=OFF -DMICROSCALE_BENCH=OFF -DBUILD_TESTING=OFF
fi
cmake --build "$build" -j "$(nproc)" --target "${harnesses[@]}" make_seeds

seed() {  # seed HARNESS FILE...: copy the files into the harness's corpus
  local dir="$build/corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do cp -f "$f" "$dir/seed-$(echo "$f" | tr '/' '_')"; done
}
seed safetensors_fuzz tests/fixtures/io/reference.safetensors tests/fixtures/io/sharded/*.safetensors \
  tests/fixtures/model/qwen3-tiny/model.safetensors
seed tokenizer_fuzz tests/fixtures/tokenizer/*/tokenizer.json
seed config_fuzz models/wp-tiny/config.json tests/fixtures/model/*/config*.json
seed tasks_fuzz data/tasks/*.jsonl
if [ ! -f "$build/seeds/done" ]; then  # tiny GGUF files and model directories (fuzz/make_seeds.cpp)
  rm -rf "$build/seeds"
  "$build/make_seeds" "$build/seeds" && touch "$build/seeds/done"
fi
seed gguf_fuzz "$build"/seeds/gguf_fuzz/*
seed model_fuzz "$build"/seeds/model_fuzz/*
status=0
for h in "${harnesses[@]}"; do
  findings="$build/findings/$h"
  mkdir -p "$findings"
  before=$(ls "$findings" | wc -l)
  echo "== $h: ${seconds}s"
  "$build/$h" "$build/corpus/$h" -fork=1 -ignore_crashes=1 -max_total_time="$seconds" -max_len=1048576 \
    -rss_limit_mb=4096 -artifact_prefix="$findings/" >"$build/$h.log" 2>&1 || true
  grep -o '#[0-9]*: cov: [0-9]* ft: [0-9]* corp: [0-9]*' "$build/$h.log" | tail -1 | sed 's/^/   runs /' || true
  after=$(ls "$findings" | wc -l)
  if [ "$after" -gt "$before" ]; then
    status=1
    echo "   FINDINGS: $((after - before)) new in $findings (log: $build/$h.log)"
  fi
done
exit $status
