#pragma once
// A deliberately plain reference decoder for the tests: scalar loops in double precision, one token
// at a time, attention recomputed from scratch, RoPE from the closed-form angle. It shares no code
// with the runtime (not even the RoPE frequency function).
#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "microscale/model/config.hpp"
#include "support/random_checkpoint.hpp"

namespace microscale::testing {

using Vec = std::vector<double>;

inline Vec ref_matvec(const std::vector<float>& w, const Vec& x, std::size_t out) {
  Vec y(out, 0.0);
  for (std::size_t o = 0; o < out; ++o) {
    for (std::size_t i = 0; i < x.size(); ++i) y[o] += static_cast<double>(w[o * x.size() + i]) * x[i];
  }
  return y;
}

inline Vec ref_rmsnorm(const Vec& x, const std::vector<float>& w, double eps, std::size_t offset = 0,
                       std::size_t n = 0) {
  if (n == 0) n = x.size();
  Vec y(x);
  double ms = 0.0;
  for (std::size_t i = 0; i < n; ++i) ms += x[offset + i] * x[offset + i];
  ms /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i) y[offset + i] = x[offset + i] / std::sqrt(ms + eps) * w[i];
  return y;
}

inline double ref_inv_freq(const model::RopeConfig& rope, std::int64_t head_dim, std::int64_t i) {
  double f = std::pow(rope.theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
  if (rope.type == model::RopeType::llama3) {
    const double wavelength = 2.0 * std::numbers::pi / f;
    const double lo = static_cast<double>(rope.original_max_position_embeddings) / rope.low_freq_factor;
    const double hi = static_cast<double>(rope.original_max_position_embeddings) / rope.high_freq_factor;
    if (wavelength > lo) return f / rope.factor;
    if (wavelength < hi) return f;
    const double ratio = static_cast<double>(rope.original_max_position_embeddings) / wavelength;
    const double s = (ratio - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
    return (1.0 - s) * f / rope.factor + s * f;
  }
  return f;
}

// Logits [tokens][vocab] of one sequence.
inline std::vector<Vec> reference_logits(const model::ModelConfig& c, const TensorMap& t,
                                         const std::vector<std::int32_t>& tokens) {
  const auto H = static_cast<std::size_t>(c.hidden_size);
  const auto I = static_cast<std::size_t>(c.intermediate_size);
  const auto d = static_cast<std::size_t>(c.head_dim);
  const auto nh = static_cast<std::size_t>(c.num_heads);
  const auto nkv = static_cast<std::size_t>(c.num_kv_heads);
  const std::size_t T = tokens.size();
  auto get = [&](const std::string& name) -> const std::vector<float>& { return t.at(name); };
  auto has = [&](const std::string& name) { return t.count(name) > 0; };

  std::vector<Vec> x(T, Vec(H));
  for (std::size_t p = 0; p < T; ++p) {
    for (std::size_t i = 0; i < H; ++i) x[p][i] = get("model.embed_tokens.weight")[tokens[p] * H + i];
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string pre = "model.layers." + std::to_string(l) + ".";
    auto lin = [&](const std::string& name, const Vec& in, std::size_t out) {
      Vec y = ref_matvec(get(pre + name + ".weight"), in, out);
      if (has(pre + name + ".bias")) {
        for (std::size_t o = 0; o < out; ++o) y[o] += get(pre + name + ".bias")[o];
      }
      return y;
    };
    std::vector<Vec> q(T), k(T), v(T);
    for (std::size_t p = 0; p < T; ++p) {
      const Vec xn = ref_rmsnorm(x[p], get(pre + "input_layernorm.weight"), c.rms_norm_eps);
      q[p] = lin("self_attn.q_proj", xn, nh * d);
      k[p] = lin("self_attn.k_proj", xn, nkv * d);
      v[p] = lin("self_attn.v_proj", xn, nkv * d);
      if (c.qk_norm) {
        for (std::size_t h = 0; h < nh; ++h) q[p] = ref_rmsnorm(q[p], get(pre + "self_attn.q_norm.weight"), c.rms_norm_eps, h * d, d);
        for (std::size_t h = 0; h < nkv; ++h) k[p] = ref_rmsnorm(k[p], get(pre + "self_attn.k_norm.weight"), c.rms_norm_eps, h * d, d);
      }
      // RoPE as a rotation of the pairs (i, i + d/2) by angle p * inv_freq_i.
      auto rotate = [&](Vec& vec, std::size_t heads) {
        for (std::size_t h = 0; h < heads; ++h) {
          for (std::size_t i = 0; i < d / 2; ++i) {
            const double angle = static_cast<double>(p) * ref_inv_freq(c.rope, c.head_dim, static_cast<std::int64_t>(i));
            const double a = vec[h * d + i], b = vec[h * d + i + d / 2];
            vec[h * d + i] = a * std::cos(angle) - b * std::sin(angle);
            vec[h * d + i + d / 2] = b * std::cos(angle) + a * std::sin(angle);
          }
        }
      };
      rotate(q[p], nh);
      rotate(k[p], nkv);
    }
    for (std::size_t p = 0; p < T; ++p) {
      Vec attn(nh * d, 0.0);
      for (std::size_t h = 0; h < nh; ++h) {
        const std::size_t g = h / (nh / nkv);
        Vec score(p + 1);
        double peak = -1e300;
        for (std::size_t j = 0; j <= p; ++j) {
          double s = 0.0;
          for (std::size_t i = 0; i < d; ++i) s += q[p][h * d + i] * k[j][g * d + i];
          score[j] = s / std::sqrt(static_cast<double>(d));
          peak = std::max(peak, score[j]);
        }
        double z = 0.0;
        for (auto& s : score) z += (s = std::exp(s - peak));
        for (std::size_t j = 0; j <= p; ++j) {
          for (std::size_t i = 0; i < d; ++i) attn[h * d + i] += score[j] / z * v[j][g * d + i];
        }
      }
      const Vec o = lin("self_attn.o_proj", attn, H);
      for (std::size_t i = 0; i < H; ++i) x[p][i] += o[i];
      const Vec xn = ref_rmsnorm(x[p], get(pre + "post_attention_layernorm.weight"), c.rms_norm_eps);
      const Vec gate = lin("mlp.gate_proj", xn, I);
      const Vec up = lin("mlp.up_proj", xn, I);
      Vec act(I);
      for (std::size_t i = 0; i < I; ++i) act[i] = gate[i] / (1.0 + std::exp(-gate[i])) * up[i];
      const Vec down = lin("mlp.down_proj", act, H);
      for (std::size_t i = 0; i < H; ++i) x[p][i] += down[i];
    }
  }
  const auto& head = c.tie_word_embeddings ? get("model.embed_tokens.weight") : get("lm_head.weight");
  std::vector<Vec> logits(T);
  for (std::size_t p = 0; p < T; ++p) {
    logits[p] = ref_matvec(head, ref_rmsnorm(x[p], get("model.norm.weight"), c.rms_norm_eps),
                           static_cast<std::size_t>(c.vocab_size));
  }
  return logits;
}

}  // namespace microscale::testing
