// MXFP4: 32 E2M1 elements share one UE8M0 (power-of-two) scale.
//
// Shared-exponent rules, for a group with absolute maximum amax = m * 2^k (1 <= m < 2):
//   ocp     (OCP MX v1.0 section 6.3, llama.cpp quantize_row_mxfp4_ref): e = k - 2. amax / 2^e = 4m lies
//           in [4, 8), so values above 6 * 2^e clip to 6.
//   no_clip: e = k - 2 when 4m <= 6, else k - 1: the smallest power of two with amax / 2^e <= 6.
//   even    (compressed-tensors generate_mx_scales, vLLM tests/quantization/reference_mxfp4.py):
//           amax is first rounded to one mantissa bit (m >= 1.75 carries into 2^(k+1)), then e = k' - 2;
//           the worst clip is 7 -> 6, no larger than an ordinary rounding step between 4 and 6.
// All-zero groups get code 0 (2^-127), as llama.cpp does and compressed-tensors' clamp produces; every
// element then encodes to 0. Exponents below -127 clamp to code 0 too.
#include <cmath>

#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats::detail {

int mx_shared_exponent(float amax, MxRounding rounding) {
  if (!std::isfinite(amax)) return 127;  // only reachable from choose() on an infinite group: largest scale
  const int k = std::ilogb(amax);                // floor(log2(amax)), exact, also for subnormals
  const float m = std::scalbn(amax, -k);         // significand in [1, 2), exact
  switch (rounding) {
    case MxRounding::ocp: return k - 2;
    case MxRounding::no_clip: return m > 1.5f ? k - 1 : k - 2;
    case MxRounding::even: return m >= 1.75f ? k - 1 : k - 2;
  }
  return k - 2;
}

GroupParams mxfp4_params(std::uint8_t e8m0_code) {
  GroupParams p;
  p.scale_code = e8m0_code;
  p.scale = e8m0_to_float(e8m0_code);
  return p;
}

namespace {

// MSE: the representable powers of two around the rule's choice, e-2 .. e+1 (this window holds the
// ocp, no_clip and even choices whichever rule is the base).
GroupParams mxfp4_search(std::span<const float> group, float amax, int e, const GroupParams& absmax) {
  GroupParams candidates[5];
  std::size_t n = 0;
  candidates[n++] = absmax;
  for (int d = -2; d <= 1; ++d) {
    const int code = e + d + 127;
    if (d == 0 || code < 0 || code > 254) continue;
    candidates[n++] = mxfp4_params(static_cast<std::uint8_t>(code));
  }
  return least_error_fp4(group, amax, std::span<const GroupParams>(candidates, n));
}

}  // namespace

GroupParams mxfp4_choose(std::span<const float> group, const QuantSpec& spec) {
  const float amax = group_amax(group);
  if (!(amax > 0.0f)) return mxfp4_params(0);
  const int e = mx_shared_exponent(amax, spec.mx_rounding);
  const GroupParams absmax = mxfp4_params(e8m0_from_exponent(e));
  if (spec.scale == ScaleSearch::absmax) return absmax;
  return mxfp4_search(group, amax, e, absmax);
}

}  // namespace microscale::formats::detail
