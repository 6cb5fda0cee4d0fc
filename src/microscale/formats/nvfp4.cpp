// NVFP4: 16 E2M1 elements share one E4M3 scale, and the tensor has one FP32 "global" scale.
//
// compressed-tensors convention (nvfp4-pack-quantized; see docs/modules/formats.md for the sources):
//   weight_global_scale g = 448 * 6 / amax(tensor)                 (FP32)
//   weight_scale        s = e4m3(amax(group) / 6 * g)              (RNE, clamped to 448; 0 -> 0.125)
//   dequant             w = e2m1 * (s / g)
// so the group with the tensor's amax gets scale code 448 and every group scale is relative to it.
#include <algorithm>
#include <cmath>

#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"
#include "microscale/formats/quantize.hpp"

namespace microscale::formats {

float nvfp4_global_scale_for_amax(float amax) {
  if (!(amax > 0.0f) || !std::isfinite(amax)) return 1.0f;
  return (448.0f * 6.0f) / amax;
}

float tensor_global_scale(const QuantSpec& spec, std::span<const float> weights) {
  if (spec.format != Format::nvfp4) return 1.0f;
  return nvfp4_global_scale_for_amax(detail::group_amax(weights));
}

namespace detail {

namespace {
constexpr std::uint8_t kZeroScaleFallback = 0x20;  // E4M3 0.125, compressed-tensors' FP8 epsilon
constexpr std::uint8_t kLargestFiniteCode = 0x7E;  // 448
}  // namespace

std::uint8_t nvfp4_absmax_code(float amax, float global_scale) {
  const float scale = amax / 6.0f * global_scale;
  if (!(scale > 0.0f)) return kZeroScaleFallback;  // also NaN (a NaN group passed to choose())
  const std::uint8_t code = e4m3_from_float(std::min(scale, 448.0f));
  return code == 0 ? kZeroScaleFallback : code;
}

GroupParams nvfp4_params(std::uint8_t e4m3_code, float global_scale) {
  GroupParams p;
  p.scale_code = e4m3_code;
  p.scale = e4m3_to_float(e4m3_code) / global_scale;
  return p;
}

namespace {

// MSE: the E4M3 codes themselves from 8 below the absmax code (one binade: 0.5x) to 2 above it.
// Positive E4M3 codes are monotonic in value, so a code window is a scale window.
GroupParams nvfp4_search(std::span<const float> group, float amax, const GroupParams& absmax, float global_scale) {
  GroupParams candidates[12];
  std::size_t n = 0;
  candidates[n++] = absmax;
  const int code = absmax.scale_code;
  for (int c = code - 8; c <= code + 2; ++c) {
    if (c == code || c < 1 || c > kLargestFiniteCode) continue;
    candidates[n++] = nvfp4_params(static_cast<std::uint8_t>(c), global_scale);
  }
  return least_error_fp4(group, amax, std::span<const GroupParams>(candidates, n));
}

}  // namespace

GroupParams nvfp4_choose(std::span<const float> group, const QuantSpec& spec, float global_scale) {
  const float amax = group_amax(group);
  const GroupParams absmax = nvfp4_params(nvfp4_absmax_code(amax, global_scale), global_scale);
  if (spec.scale == ScaleSearch::absmax || !(amax > 0.0f)) return absmax;
  return nvfp4_search(group, amax, absmax, global_scale);
}

}  // namespace detail
}  // namespace microscale::formats
