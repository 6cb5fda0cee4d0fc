// MSE scale selection shared by the formats: every format proposes a short list of candidate group
// parameters (its absmax choice first), and the one with the least squared error after quantizing wins.
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats::detail {
namespace {

// Ranks the candidates with the fast (reciprocal) error, then makes sure the winner is really no
// worse than candidates[0] (absmax) with the exact error, so MSE can never lose to absmax.
template <typename FastError, typename ExactError>
GroupParams least_error(std::span<const GroupParams> candidates, FastError fast_error, ExactError exact_error) {
  std::size_t best = 0;
  float best_error = fast_error(candidates[0]);
  for (std::size_t i = 1; i < candidates.size(); ++i) {
    const float e = fast_error(candidates[i]);
    if (e < best_error) {  // strict: an equal error keeps the earlier (absmax-nearer) candidate
      best_error = e;
      best = i;
    }
  }
  if (best != 0 && !(exact_error(candidates[best]) <= exact_error(candidates[0]))) return candidates[0];
  return candidates[best];
}

}  // namespace

GroupParams least_error_fp4(std::span<const float> group, float amax, std::span<const GroupParams> candidates) {
  const float unit = error_unit(amax);
  return least_error(
      candidates, [&](const GroupParams& p) { return fp4_squared_error<Division::fast>(group, p.scale, unit); },
      [&](const GroupParams& p) { return fp4_squared_error<Division::exact>(group, p.scale, unit); });
}

GroupParams least_error_int4(std::span<const float> group, float amax, std::span<const GroupParams> candidates) {
  const float unit = error_unit(amax);
  return least_error(
      candidates, [&](const GroupParams& p) { return int4_squared_error<Division::fast>(group, p.scale, p.zero, unit); },
      [&](const GroupParams& p) { return int4_squared_error<Division::exact>(group, p.scale, p.zero, unit); });
}

}  // namespace microscale::formats::detail
