// INT4: unsigned nibble codes u in [0, 15], value = (u - zero) * scale, scale exactly BF16.
//
// compressed-tensors pack-quantized (calculate_qparams; see docs/modules/formats.md):
//   symmetric:  scale = amax / 7.5 (= amax / ((q_max - q_min) / 2) with q in [-8, 7]), zero point 0;
//               q = clamp(round(x / scale), -8, 7). Our u = q + 8, zero = 8.
//   asymmetric: min' = min(min, 0), max' = max(max, 0), scale = (max' - min') / 15,
//               zp = clamp(round(-8 - min' / scale), -8, 7). Our zero = zp + 8 = clamp(round(-min'/scale), 0, 15).
//   A zero scale (all-zero group) becomes the scale dtype's epsilon, 2^-7 for BF16; every code then
//   decodes to 0.
// The scale is rounded to BF16 before any value is encoded, so a BF16 checkpoint dequantizes bit-exactly.
#include <algorithm>
#include <cmath>
#include <limits>

#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats::detail {

float round_to_bf16(float x) { return bf16_to_float(bf16_from_float(x)); }

namespace {

float usable_scale(float scale) {
  if (!(scale > 0.0f)) return kInt4ZeroGroupScale;
  if (!std::isfinite(scale)) return bf16_to_float(0x7F7F);  // the largest finite BF16
  return scale;
}

GroupParams int4_params(float scale, float zero) {
  GroupParams p;
  p.scale = scale;
  p.zero = zero;
  return p;
}

GroupParams int4_asymmetric(float lo, float hi) {
  float range = hi - lo;
  if (!std::isfinite(range)) range = std::numeric_limits<float>::max();
  const float scale = usable_scale(round_to_bf16(range / 15.0f));
  float zero = std::nearbyint(-lo / scale);
  zero = zero >= 0.0f ? (zero <= 15.0f ? zero : 15.0f) : 0.0f;  // NaN (a NaN group) -> 0
  return int4_params(scale, std::fabs(zero));                      // fabs: never a -0 zero point
}

}  // namespace

GroupParams int4_absmax(float min, float max, bool symmetric) {
  const float lo = std::min(min, 0.0f);
  const float hi = std::max(max, 0.0f);
  if (symmetric) {
    const float amax = std::max(-lo, hi);
    return int4_params(usable_scale(round_to_bf16(amax / 7.5f)), 8.0f);
  }
  return int4_asymmetric(lo, hi);
}

namespace {

// MSE: shrink the range by p = 1.00, 0.99, ..., 0.50 (both ends for asymmetric), as GPTQ's find_params
// grid does; p = 1 is the absmax choice itself. Neighbouring p often round to the same BF16 scale, so
// repeats are skipped.
GroupParams int4_search(std::span<const float> group, float lo, float hi, bool symmetric, const GroupParams& absmax) {
  constexpr int kSteps = 50;
  GroupParams candidates[kSteps + 1];
  std::size_t n = 0;
  candidates[n++] = absmax;
  for (int i = 1; i <= kSteps; ++i) {
    const float p = static_cast<float>(100 - i) / 100.0f;
    const GroupParams c = int4_absmax(p * lo, p * hi, symmetric);
    const GroupParams& last = candidates[n - 1];
    if (c.scale == last.scale && c.zero == last.zero) continue;
    candidates[n++] = c;
  }
  return least_error_int4(group, std::max(-lo, hi), std::span<const GroupParams>(candidates, n));
}

}  // namespace

GroupParams int4_choose(std::span<const float> group, const QuantSpec& spec) {
  const MinMax mm = group_min_max(group);
  const GroupParams absmax = int4_absmax(mm.min, mm.max, spec.symmetric);
  if (spec.scale == ScaleSearch::absmax) return absmax;
  const float lo = std::min(mm.min, 0.0f);
  const float hi = std::max(mm.max, 0.0f);
  if (lo == 0.0f && hi == 0.0f) return absmax;
  return int4_search(group, lo, hi, spec.symmetric, absmax);
}

}  // namespace microscale::formats::detail
