#pragma once
// RoPE inverse frequencies inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, optionally rescaled
// by Llama 3's long-context rule (transformers' _compute_llama3_parameters): wavelengths longer than
// original_max_position_embeddings / low_freq_factor are divided by `factor`, those shorter than
// original / high_freq_factor are kept, and the band between is interpolated smoothly.
#include <cstdint>
#include <vector>

#include "microscale/model/config.hpp"

namespace microscale::model {

std::vector<float> rope_inverse_frequencies(const RopeConfig& rope, std::int64_t head_dim);

}  // namespace microscale::model
