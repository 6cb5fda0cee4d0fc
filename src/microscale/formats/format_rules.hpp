#pragma once
// Per-format scale rules (internal to the formats module). Each format keeps its specifics in its
// own file: mxfp4.cpp, nvfp4.cpp, int4.cpp; scale_search.cpp holds the shared MSE selection.
#include <cstdint>
#include <span>

#include "microscale/formats/format.hpp"

namespace microscale::formats::detail {

// ---- mxfp4.cpp ----
// Unbiased shared exponent of a group with absolute maximum amax > 0 under `rounding` (not clamped).
int mx_shared_exponent(float amax, MxRounding rounding);
GroupParams mxfp4_params(std::uint8_t e8m0_code);
GroupParams mxfp4_choose(std::span<const float> group, const QuantSpec& spec);

// ---- nvfp4.cpp ----
// E4M3 code of the group scale by absmax: e4m3(amax / 6 * global_scale), a zero code replaced by
// 0x20 (0.125) as compressed-tensors does, so that a scale is never 0.
std::uint8_t nvfp4_absmax_code(float amax, float global_scale);
GroupParams nvfp4_params(std::uint8_t e4m3_code, float global_scale);
GroupParams nvfp4_choose(std::span<const float> group, const QuantSpec& spec, float global_scale);

// ---- int4.cpp ----
float round_to_bf16(float x);
inline constexpr float kInt4ZeroGroupScale = 0x1p-7f;  // BF16 epsilon, compressed-tensors' zero-scale fallback
GroupParams int4_absmax(float min, float max, bool symmetric);
GroupParams int4_choose(std::span<const float> group, const QuantSpec& spec);

// ---- scale_search.cpp ----
// The candidate with the least squared error; candidates[0] (the absmax choice) wins ties, so the
// result is never worse than absmax.
// `amax` is the group's absolute maximum (it normalises the error sums).
GroupParams least_error_fp4(std::span<const float> group, float amax, std::span<const GroupParams> candidates);
GroupParams least_error_int4(std::span<const float> group, float amax, std::span<const GroupParams> candidates);

}  // namespace microscale::formats::detail
