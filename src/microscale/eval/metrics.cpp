#include "microscale/eval/metrics.hpp"

#include <algorithm>
#include <cmath>

#include "microscale/core/error.hpp"

namespace microscale::eval {

double log_sum_exp(std::span<const float> logits) {
  if (logits.empty()) fail("log_sum_exp: empty logits");
  const double peak = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float z : logits) sum += std::exp(static_cast<double>(z) - peak);
  return peak + std::log(sum);
}

double token_nll(std::span<const float> logits, std::int32_t target) {
  if (target < 0 || static_cast<std::size_t>(target) >= logits.size()) {
    fail("token_nll: target {} outside [0, {})", target, logits.size());
  }
  return log_sum_exp(logits) - static_cast<double>(logits[static_cast<std::size_t>(target)]);
}

std::int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) fail("argmax: empty logits");
  return static_cast<std::int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

double kl_divergence(std::span<const float> reference_logits, std::span<const float> model_logits) {
  if (reference_logits.size() != model_logits.size()) {
    fail("kl_divergence: {} reference logits vs {} model logits (vocabularies differ)", reference_logits.size(),
         model_logits.size());
  }
  const double ref_lse = log_sum_exp(reference_logits);
  const double model_lse = log_sum_exp(model_logits);
  double kl = 0.0;
  for (std::size_t i = 0; i < reference_logits.size(); ++i) {
    const double log_p = static_cast<double>(reference_logits[i]) - ref_lse;
    const double log_q = static_cast<double>(model_logits[i]) - model_lse;
    kl += std::exp(log_p) * (log_p - log_q);
  }
  return std::max(kl, 0.0);  // rounding can leave -1e-17 for identical distributions
}

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) fail("percentile of an empty set");
  std::sort(values.begin(), values.end());
  if (fraction <= 0.0) return values.front();
  if (fraction >= 1.0) return values.back();
  const double position = fraction * static_cast<double>(values.size() - 1);
  const auto below = static_cast<std::size_t>(position);
  const std::size_t above = std::min(below + 1, values.size() - 1);
  const double weight = position - static_cast<double>(below);
  return (1.0 - weight) * values[below] + weight * values[above];
}

}  // namespace microscale::eval
