#!/usr/bin/env bash
# Builds llama.cpp's perplexity and tokenize tools (a test-only engine, never part of `make test`) from the source
# distribution of llama-cpp-python on PyPI, which vendors a pinned llama.cpp tree. CPU only: the
# bundled model is tiny, and the point is to check that llama.cpp reads our GGUF bytes as we meant.
#
# Usage: tools/llamacpp/build.sh [PREFIX]      (default PREFIX: build-llamacpp/ in the repository)
# Result: PREFIX/bin/llama-perplexity, PREFIX/bin/llama-tokenize, PREFIX/VERSION (the sdist and the vendored llama.cpp commit).
# Needs: python3 -m pip (to download the sdist), cmake, a C++17 compiler; ~10 min on 2 cores.
# Idempotent: a finished build is reused.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
prefix="$(realpath -m "${1:-$root/build-llamacpp}")"
version="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
jobs="${JOBS:-$(nproc)}"

if [ -x "$prefix/bin/llama-perplexity" ] && [ -x "$prefix/bin/llama-tokenize" ] && grep -q "llama-cpp-python $version" "$prefix/VERSION" 2>/dev/null; then
  echo "llama.cpp: reusing $prefix/bin/llama-perplexity and llama-tokenize ($(head -1 "$prefix/VERSION"))"
  exit 0
fi

mkdir -p "$prefix/src"
sdist="$prefix/src/llama_cpp_python-$version.tar.gz"
if [ ! -f "$sdist" ]; then
  echo "llama.cpp: downloading the llama-cpp-python $version source distribution from PyPI"
  python3 -m pip download --quiet --no-deps --no-binary :all: --dest "$prefix/src" "llama-cpp-python==$version"
fi
tree="$prefix/src/llama_cpp_python-$version"
[ -d "$tree" ] || tar -xzf "$sdist" -C "$prefix/src"
llama="$tree/vendor/llama.cpp"
[ -f "$llama/CMakeLists.txt" ] || { echo "llama.cpp: $llama has no CMakeLists.txt (unexpected sdist layout)" >&2; exit 1; }

# Only what the two tools need: no server, no network (curl/openssl), no tests or examples.
cmake -S "$llama" -B "$prefix/cmake" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON > "$prefix/configure.log" 2>&1 \
  || { tail -30 "$prefix/configure.log" >&2; exit 1; }
cmake --build "$prefix/cmake" --target llama-perplexity llama-tokenize -j "$jobs" > "$prefix/build.log" 2>&1 \
  || { tail -30 "$prefix/build.log" >&2; exit 1; }
mkdir -p "$prefix/bin"
for tool in llama-perplexity llama-tokenize; do
  cp "$(find "$prefix/cmake" -name "$tool" -type f -perm -u+x | head -1)" "$prefix/bin/"
done
commit="$(sed -n 's/.*LLAMA_COMMIT = "\([^"]*\)".*/\1/p' "$prefix/cmake/common/build-info.cpp" 2>/dev/null | head -1)"
{
  echo "llama-cpp-python $version"
  echo "llama.cpp commit ${commit:-unknown} (as its build info records it)"
} > "$prefix/VERSION"
echo "llama.cpp: built $prefix/bin/llama-perplexity and llama-tokenize ($(head -1 "$prefix/VERSION"))"
