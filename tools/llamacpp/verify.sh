#!/usr/bin/env bash
# Checks that llama.cpp reads microscale's GGUF export as microscale meant it: the bundled model is
# quantized (RTN) to MXFP4, NVFP4 and INT4 g32 (Q4_0) with `--export gguf`, then llama.cpp's
# perplexity tool and `microscale eval --protocol llama.cpp` score the same .gguf file on the same
# text with the same windows; the two perplexities must agree within 0.5%.
# Test-only (never part of `make test`): it builds llama.cpp first (tools/llamacpp/build.sh).
#
# Usage: tools/llamacpp/verify.sh [MICROSCALE_BINARY]      (default build/microscale)
# Prints a markdown table; exit status 1 when a format is off by more than 0.5%.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
microscale="${1:-build/microscale}"
[ -x "$microscale" ] || { echo "verify: $microscale not found (run make build first)" >&2; exit 1; }
prefix="$root/build-llamacpp"
"$root/tools/llamacpp/build.sh" "$prefix" >&2
perplexity_tool="$prefix/bin/llama-perplexity"
text=data/wp-test.txt
ctx=512  # the bundled model's context
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "llama.cpp: $(tr '\n' ';' < "$prefix/VERSION")"
echo
echo "| format | GGUF type | llama.cpp ppl | microscale ppl | difference | verdict |"
echo "|---|---|---:|---:|---:|---|"
status=0
for format in mxfp4 nvfp4 int4; do
  extra=()
  type=$(echo "$format" | tr a-z A-Z)
  if [ "$format" = int4 ]; then extra=(--group-size 32); type=Q4_0; fi
  gguf="$work/wp-tiny-$format.gguf"
  "$microscale" quantize models/wp-tiny --format "$format" "${extra[@]}" --export gguf --out "$gguf" --quiet > /dev/null
  "$perplexity_tool" -m "$gguf" -f "$text" -c "$ctx" > "$work/llama-$format.log" 2>&1 \
    || { echo "verify: llama-perplexity failed on $gguf:" >&2; tail -20 "$work/llama-$format.log" >&2; exit 1; }
  theirs=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$work/llama-$format.log")
  ours=$("$microscale" eval "$gguf" --text "$text" --seqlen "$ctx" --protocol llama.cpp --decode-tokens 0 --quiet \
           | awk '$1 == "perplexity" {print $2; exit}')
  verdict=$(python3 -c "
t, o = $theirs, $ours
d = (o - t) / t * 100
print(f'{d:+.3f}% | ' + ('PASS' if abs(d) <= 0.5 else 'FAIL'))")
  echo "| $format | $type | $theirs | $ours | $verdict |"
  [[ "$verdict" == *PASS ]] || status=1
done
exit "$status"
