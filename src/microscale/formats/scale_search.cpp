// MSE scale selection shared by the formats: every format proposes a short list of candidate group
// parameters (its absmax choice first), and the one with the least squared error after quantizing wins.
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats::detail {
namespace {

template <typename ErrorOf>
GroupParams least_error(std::span<const GroupParams> candidates, ErrorOf error_of) {
  GroupParams best = candidates[0];
  float best_error = error_of(best);
  for (std::size_t i = 1; i < candidates.size(); ++i) {
    const float e = error_of(candidates[i]);
    if (e < best_error) {  // strict: an equal error keeps the earlier (absmax-nearer) candidate
      best_error = e;
      best = candidates[i];
    }
  }
  return best;
}

}  // namespace

GroupParams least_error_fp4(std::span<const float> group, float amax, std::span<const GroupParams> candidates) {
  const float unit = error_unit(amax);
  return least_error(candidates, [&](const GroupParams& p) { return fp4_squared_error(group, p.scale, unit); });
}

GroupParams least_error_int4(std::span<const float> group, float amax, std::span<const GroupParams> candidates) {
  const float unit = error_unit(amax);
  return least_error(candidates, [&](const GroupParams& p) { return int4_squared_error(group, p.scale, p.zero, unit); });
}

}  // namespace microscale::formats::detail
