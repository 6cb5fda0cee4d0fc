#pragma once
// What a model costs to run on this machine: checkpoint bytes, peak resident memory, decode speed.
// (Prefill speed comes out of the perplexity run, which is a prefill of every window.)
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "microscale/model/model.hpp"

namespace microscale::eval {

// Sum of the sizes of the given files (the checkpoint's safetensors files).
std::uint64_t file_bytes(const std::vector<std::filesystem::path>& files);

// Peak resident set size of this process so far (getrusage), in bytes.
std::uint64_t peak_rss_bytes();

struct DecodeTiming {
  int prompt_tokens = 0;
  int new_tokens = 0;
  double seconds = 0.0;             // the new tokens only (the prompt's prefill is not timed)
  double tokens_per_second = 0.0;
  std::vector<std::int32_t> output; // the greedy tokens
};

// Greedy decoding of `new_tokens` tokens after `prompt`, batch 1, one token per step with the KV cache.
DecodeTiming measure_decode(const model::Model& model, std::span<const std::int32_t> prompt, int new_tokens);

}  // namespace microscale::eval
