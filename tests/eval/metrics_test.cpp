// Perplexity / KL / top-1 arithmetic against closed forms, on hand-made logits and on tiny in-memory
// models whose output head makes the logits known.
#include <gtest/gtest.h>

#include <cmath>

#include "microscale/core/error.hpp"
#include "microscale/eval/metrics.hpp"
#include "microscale/eval/perplexity.hpp"
#include "microscale/model/model.hpp"

namespace microscale::testing {
namespace {

using eval::kl_divergence;
using eval::token_nll;

TEST(Metrics, UniformLogitsGiveLogVocab) {
  const std::vector<float> logits(50, 3.25f);
  EXPECT_NEAR(token_nll(logits, 7), std::log(50.0), 1e-12);
  EXPECT_NEAR(eval::log_sum_exp(logits), 3.25 + std::log(50.0), 1e-12);
}

TEST(Metrics, NllOfKnownDistribution) {
  // p = (0.2, 0.3, 0.5): logits log p (any shift) give nll = -log p_target.
  const std::vector<float> logits = {std::log(0.2f) + 10, std::log(0.3f) + 10, std::log(0.5f) + 10};
  EXPECT_NEAR(token_nll(logits, 0), -std::log(0.2), 1e-6);
  EXPECT_NEAR(token_nll(logits, 2), -std::log(0.5), 1e-6);
  EXPECT_THROW(token_nll(logits, 3), Error);
  EXPECT_THROW(token_nll(logits, -1), Error);
}

TEST(Metrics, KlDivergenceClosedForms) {
  const std::vector<float> a = {0.1f, -2.0f, 3.0f, 0.5f};
  EXPECT_EQ(kl_divergence(a, a), 0.0);
  std::vector<float> shifted = a;
  for (auto& v : shifted) v += 4.0f;  // softmax is shift-invariant
  EXPECT_NEAR(kl_divergence(a, shifted), 0.0, 1e-12);
  // P = (1/2, 1/2), Q = (9/10, 1/10): KL(P||Q) = 1/2 ln(5/9) + 1/2 ln 5, and the reverse differs.
  const std::vector<float> p = {0.0f, 0.0f};
  const std::vector<float> q = {std::log(0.9f), std::log(0.1f)};
  EXPECT_NEAR(kl_divergence(p, q), 0.5 * std::log(0.5 / 0.9) + 0.5 * std::log(0.5 / 0.1), 1e-7);
  EXPECT_NEAR(kl_divergence(q, p), 0.9 * std::log(0.9 / 0.5) + 0.1 * std::log(0.1 / 0.5), 1e-7);
  EXPECT_THROW(kl_divergence(p, a), Error);
}

TEST(Metrics, ArgmaxTakesTheFirstMaximum) {
  EXPECT_EQ(eval::argmax(std::vector<float>{1, 5, 5, 2}), 1);
  EXPECT_EQ(eval::argmax(std::vector<float>{-3}), 0);
}

TEST(Metrics, PercentileInterpolatesLinearly) {
  EXPECT_DOUBLE_EQ(eval::percentile({4, 1, 3, 2}, 0.99), 3.97);  // 1 + 0.99 * 3 -> between 3 and 4
  EXPECT_DOUBLE_EQ(eval::percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(eval::percentile({7}, 0.99), 7.0);
  EXPECT_DOUBLE_EQ(eval::percentile({1, 2}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(eval::percentile({1, 2}, 1.0), 2.0);
  EXPECT_THROW(eval::percentile({}, 0.5), Error);
}

TEST(Metrics, AccumulateSkipsUnscoredPositionsAndCountsAgreement) {
  Matrix model(3, 2), ref(3, 2);
  model.data = {0, 0, 2, 0, 0, 1};   // uniform, argmax 0, argmax 1
  ref.data = {0, 0, 0, 2, 0, 3};     // uniform, argmax 1, argmax 1
  eval::PositionStats stats;
  const std::vector<std::int32_t> targets = {1, -1, 1};
  const ConstMatrixView ref_view = ref.view();
  eval::accumulate_positions(stats, model.view(), targets, &ref_view);
  EXPECT_EQ(stats.positions, 2);
  EXPECT_NEAR(stats.nll_sum, std::log(2.0) + std::log(1.0 + std::exp(-1.0)), 1e-9);
  EXPECT_NEAR(stats.reference_nll_sum, std::log(2.0) + std::log(1.0 + std::exp(-3.0)), 1e-9);
  EXPECT_EQ(stats.top1_agree, 2);  // row 0 ties (both 0), row 2 both 1; row 1 is skipped
  ASSERT_EQ(stats.kl.size(), 2u);
  EXPECT_NEAR(stats.kl[0], 0.0, 1e-12);
}

// A one-layer model whose output head is all zeros (uniform logits) or a scaled copy of the
// embedding, built in memory.
model::Model tiny_model(float head_scale, int vocab = 40) {
  model::ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 8;
  c.intermediate_size = 16;
  c.num_layers = 1;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.head_dim = 4;
  c.vocab_size = vocab;
  c.max_position_embeddings = 64;
  model::ModelWeights w;
  auto matrix = [](std::int64_t r, std::int64_t cols, float salt) {
    Matrix m(r, cols);
    for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = std::sin(0.7f * static_cast<float>(i) + salt) * 0.5f;
    return m;
  };
  w.embedding = matrix(vocab, 8, 0.1f);
  w.final_norm.assign(8, 1.0f);
  model::LayerWeights l;
  l.q.weight = matrix(8, 8, 1);
  l.k.weight = matrix(4, 8, 2);
  l.v.weight = matrix(4, 8, 3);
  l.o.weight = matrix(8, 8, 4);
  l.gate.weight = matrix(16, 8, 5);
  l.up.weight = matrix(16, 8, 6);
  l.down.weight = matrix(8, 16, 7);
  l.input_norm.assign(8, 1.0f);
  l.post_attention_norm.assign(8, 1.0f);
  w.layers.push_back(l);
  w.lm_head.weight = matrix(vocab, 8, 9);
  for (auto& v : w.lm_head.weight.data) v *= head_scale;
  return model::Model::from_weights(c, std::move(w));
}

std::vector<std::int32_t> stream(int n, int vocab) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 7 + 3) % vocab;
  return t;
}

TEST(Perplexity, UniformModelHasPerplexityVocab) {
  const model::Model m = tiny_model(0.0f);
  eval::PerplexityOptions o;
  o.seqlen = 16;
  o.quiet = true;
  const auto r = eval::evaluate_perplexity(m, stream(70, 40), o);  // 4 windows, 6 tokens dropped
  EXPECT_EQ(r.windows, 4);
  EXPECT_EQ(r.positions, 4 * 15);
  EXPECT_NEAR(r.ppl, 40.0, 1e-9);
  EXPECT_NEAR(r.mean_nll, std::log(40.0), 1e-12);
  ASSERT_EQ(r.window_nll.size(), 4u);
}

TEST(Perplexity, MatchesDirectComputationFromFullLogits) {
  const model::Model m = tiny_model(3.0f);
  const model::Model ref = tiny_model(2.0f);
  const auto tokens = stream(50, 40);
  eval::PerplexityOptions o;
  o.seqlen = 12;
  o.max_windows = 3;
  o.rows_per_batch = 24;  // two windows per batch, then one
  o.logits_rows = 5;      // chunks straddle window boundaries
  o.quiet = true;
  const auto r = eval::evaluate_perplexity(m, tokens, o, &ref);
  EXPECT_EQ(r.windows, 3);

  // Independently: each window on its own, every scored position by hand. (The batched forward
  // rounds differently from the single-window one at float precision, hence ~1e-7 tolerances.)
  double nll = 0, ref_nll = 0;
  std::vector<double> kls;
  int agree = 0, n = 0;
  for (int w = 0; w < 3; ++w) {
    const auto window = std::span(tokens).subspan(static_cast<std::size_t>(w * 12), 12);
    const Matrix a = m.forward(window, 1, 12), b = ref.forward(window, 1, 12);
    double window_nll = 0;
    for (int t = 0; t < 11; ++t) {
      const auto row = a.view().row(t), ref_row = b.view().row(t);
      const double lse = std::log([&] { double s = 0; for (float z : row) s += std::exp(double{z}); return s; }());
      const double ref_lse = std::log([&] { double s = 0; for (float z : ref_row) s += std::exp(double{z}); return s; }());
      const double x = lse - row[static_cast<std::size_t>(window[static_cast<std::size_t>(t + 1)])];
      window_nll += x;
      nll += x;
      ref_nll += ref_lse - ref_row[static_cast<std::size_t>(window[static_cast<std::size_t>(t + 1)])];
      double kl = 0;
      for (std::size_t i = 0; i < row.size(); ++i) {
        const double lp = ref_row[i] - ref_lse, lq = row[i] - lse;
        kl += std::exp(lp) * (lp - lq);
      }
      kls.push_back(kl);
      agree += std::max_element(row.begin(), row.end()) - row.begin() ==
                       std::max_element(ref_row.begin(), ref_row.end()) - ref_row.begin()
                   ? 1
                   : 0;
      ++n;
    }
    EXPECT_NEAR(r.window_nll[static_cast<std::size_t>(w)], window_nll / 11, 1e-6);
  }
  EXPECT_EQ(r.positions, n);
  EXPECT_NEAR(r.mean_nll, nll / n, 1e-6);
  EXPECT_NEAR(r.ppl / std::exp(nll / n), 1.0, 1e-6);
  ASSERT_TRUE(r.reference.has_value());
  EXPECT_NEAR(r.reference->reference_ppl / std::exp(ref_nll / n), 1.0, 1e-6);
  double kl_mean = 0;
  for (double k : kls) kl_mean += k / n;
  EXPECT_NEAR(r.reference->kl_mean, kl_mean, 1e-7);
  EXPECT_GT(r.reference->kl_mean, 1e-4);  // the two heads really differ
  std::sort(kls.begin(), kls.end());
  EXPECT_NEAR(r.reference->kl_max, kls.back(), 1e-7);
  const double pos = 0.99 * (n - 1);
  const auto lo = static_cast<std::size_t>(pos);
  EXPECT_NEAR(r.reference->kl_p99, kls[lo] + (pos - lo) * (kls[lo + 1] - kls[lo]), 1e-7);
  EXPECT_NEAR(r.reference->top1_agreement, static_cast<double>(agree) / n, 1e-12);

  // Against itself: KL 0, full agreement, same perplexity.
  const auto self = eval::evaluate_perplexity(m, tokens, o, &m);
  EXPECT_NEAR(self.reference->kl_mean, 0.0, 1e-12);
  EXPECT_EQ(self.reference->top1_agreement, 1.0);
  EXPECT_DOUBLE_EQ(self.reference->reference_ppl, self.ppl);
}

TEST(Perplexity, LlamaCppProtocolScoresOnlyTheSecondHalfOfEachWindow) {
  const model::Model m = tiny_model(3.0f);
  const auto tokens = stream(50, 40);
  eval::PerplexityOptions o;
  o.seqlen = 12;
  o.max_windows = 3;
  o.score_from = 6;
  o.logits_rows = 5;  // chunks straddle the scored/unscored boundary too
  o.quiet = true;
  const auto r = eval::evaluate_perplexity(m, tokens, o);
  EXPECT_EQ(r.positions, 3 * 5);  // logits rows 6..10 of each window predict tokens 7..11
  EXPECT_EQ(r.score_from, 6);
  double nll = 0;
  for (int w = 0; w < 3; ++w) {
    const auto window = std::span(tokens).subspan(static_cast<std::size_t>(w * 12), 12);
    const Matrix a = m.forward(window, 1, 12);
    for (int t = 6; t < 11; ++t) {
      const auto row = a.view().row(t);
      double s = 0;
      for (float z : row) s += std::exp(double{z});
      nll += std::log(s) - row[static_cast<std::size_t>(window[static_cast<std::size_t>(t + 1)])];
    }
  }
  EXPECT_NEAR(r.mean_nll, nll / 15, 1e-6);
  const auto all = eval::evaluate_perplexity(m, tokens, {.seqlen = 12, .max_windows = 3, .quiet = true});
  EXPECT_GT(std::abs(all.mean_nll - r.mean_nll), 1e-4);  // the protocols really score different positions

  o.score_from = 11;  // nothing left to score
  EXPECT_THROW(eval::evaluate_perplexity(m, tokens, o), Error);
}

TEST(Perplexity, TooShortTextNamesTheSourceAndTheTokensNeeded) {
  const model::Model m = tiny_model(1.0f);
  eval::PerplexityOptions o;
  o.seqlen = 32;
  o.source = "notes.txt";
  o.quiet = true;
  try {
    eval::evaluate_perplexity(m, stream(20, 40), o);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("notes.txt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("20 tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("at least 32"), std::string::npos) << msg;
  }
  EXPECT_THROW(eval::evaluate_perplexity(m, {}, o), Error);
  const model::Model other_vocab = tiny_model(1.0f, 41);
  o.seqlen = 8;
  EXPECT_THROW(eval::evaluate_perplexity(m, stream(20, 40), o, &other_vocab), Error);
}

}  // namespace
}  // namespace microscale::testing
