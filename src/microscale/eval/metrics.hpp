#pragma once
// Per-position statistics of next-token distributions given as logits, in float64.
//
//   nll(z, y)    = logsumexp(z) - z_y                       (natural log)
//   KL(P || Q)   = sum_i p_i (log p_i - log q_i), P = softmax(reference), Q = softmax(model)
//                  (the direction llama.cpp's perplexity tool reports: the reference is the truth)
//   top-1 agrees = argmax(reference) == argmax(model)       (first maximum on ties)
#include <cstdint>
#include <span>
#include <vector>

namespace microscale::eval {

double log_sum_exp(std::span<const float> logits);
double token_nll(std::span<const float> logits, std::int32_t target);
std::int32_t argmax(std::span<const float> logits);
double kl_divergence(std::span<const float> reference_logits, std::span<const float> model_logits);

// Linear-interpolation percentile of unsorted values (fraction in [0, 1]; numpy's default, and the
// rule llama.cpp uses for its KL percentiles). Throws for an empty input.
double percentile(std::vector<double> values, double fraction);

}  // namespace microscale::eval
