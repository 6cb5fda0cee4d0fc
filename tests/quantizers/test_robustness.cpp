// Broken Hessians (dead columns, NaN, not positive definite) and determinism across thread counts.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <limits>

#include "microscale/core/error.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "microscale/quantizers/statistics.hpp"
#include "quantizers/problems.hpp"

namespace microscale::quantizers {
namespace {

using formats::Format;
using formats::ScaleSearch;
using testing::all_finite;
using testing::CapturedLog;
using testing::make_problem;
using testing::Problem;

const formats::QuantSpec kNvfp4 = formats::make_spec(Format::nvfp4, 16, true, ScaleSearch::absmax);

TEST(GptqRobustness, DeadColumnsAreZeroedWithAWarning) {
  Problem p = make_problem(16, 64, 128, 1u);
  for (const std::int64_t c : {3, 40}) {
    p.h.row(c).setZero();
    p.h.col(c).setZero();
  }
  CapturedLog log;
  const LayerResult got = gptq(p.w.view(), p.h, kNvfp4, {}, "model.layers.7.mlp.down_proj");
  EXPECT_EQ(got.dead_columns, 2);
  EXPECT_TRUE(all_finite(got.dequantized));
  for (std::int64_t r = 0; r < 16; ++r) {
    EXPECT_EQ(got.dequantized(r, 3), 0.0f);
    EXPECT_EQ(got.dequantized(r, 40), 0.0f);
  }
  EXPECT_TRUE(log.warned_about("model.layers.7.mlp.down_proj"));
}

TEST(GptqRobustness, NonFiniteHessianEntriesAreIsolatedWithAWarning) {
  Problem p = make_problem(16, 64, 128, 2u);
  p.h(5, 9) = p.h(9, 5) = std::numeric_limits<double>::quiet_NaN();
  p.h(20, 20) = std::numeric_limits<double>::infinity();
  CapturedLog log;
  const LayerResult got = gptq(p.w.view(), p.h, kNvfp4, {}, "model.layers.1.self_attn.o_proj");
  EXPECT_EQ(got.invalid_hessian_columns, 3);
  EXPECT_TRUE(all_finite(got.dequantized));
  EXPECT_TRUE(log.warned_about("model.layers.1.self_attn.o_proj"));
  // Still better than RTN on the healthy part of the problem.
  Problem clean = make_problem(16, 64, 128, 2u);
  EXPECT_LT(layer_objective(p.w.view(), got.dequantized.view(), clean.h),
            layer_objective(p.w.view(), rtn(p.w.view(), kNvfp4).dequantized.view(), clean.h));
}

TEST(GptqRobustness, AllNanHessianFallsBackToRoundToNearest) {
  Problem p = make_problem(8, 64, 128, 3u);
  p.h.setConstant(std::numeric_limits<double>::quiet_NaN());
  CapturedLog log;
  GptqOptions options;
  options.act_order = false;
  const LayerResult got = gptq(p.w.view(), p.h, kNvfp4, options, "l");
  const LayerResult plain = rtn(p.w.view(), kNvfp4);
  EXPECT_EQ(0, std::memcmp(got.dequantized.data.data(), plain.dequantized.data.data(),
                           got.dequantized.data.size() * sizeof(float)));
  EXPECT_FALSE(log.warnings.empty());
}

TEST(GptqRobustness, IndefiniteHessianGetsMoreDampingWithAWarning) {
  Problem p = make_problem(16, 64, 128, 4u);
  // Shift the spectrum well below zero: 1% of the mean diagonal cannot fix that, 10x-100x can.
  const double mean = p.h.diagonal().mean();
  p.h -= 0.2 * mean * Eigen::MatrixXd::Identity(64, 64);
  for (std::int64_t i = 0; i < 64; ++i) p.h(i, i) = std::max(p.h(i, i), 1e-3 * mean);
  CapturedLog log;
  const LayerResult got = gptq(p.w.view(), p.h, kNvfp4, {}, "model.layers.2.mlp.gate_proj");
  EXPECT_TRUE(got.damped_extra);
  EXPECT_GT(got.damp, 0.01);
  EXPECT_FALSE(got.identity_fallback);
  EXPECT_TRUE(all_finite(got.dequantized));
  EXPECT_TRUE(log.warned_about("model.layers.2.mlp.gate_proj"));
}

TEST(GptqRobustness, SameBytesForAnyThreadCount) {
  const Problem p = make_problem(48, 256, 400, 5u, testing::Tails::heavy);
  const auto spec = formats::make_spec(Format::nvfp4, 16, true, ScaleSearch::mse);
  GptqOptions options;
  options.block_size = 32;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const LayerResult one = gptq(p.w.view(), p.h, spec, options, "l");
  InputStatistics stats_one(256);
  stats_one.add(p.x.view());
  omp_set_num_threads(std::max(2, threads));
  const LayerResult many = gptq(p.w.view(), p.h, spec, options, "l");
  const LayerResult again = gptq(p.w.view(), p.h, spec, options, "l");
  InputStatistics stats_many(256);
  stats_many.add(p.x.view());
  omp_set_num_threads(threads);
  for (const LayerResult* r : {&many, &again}) {
    EXPECT_EQ(one.quantized.codes, r->quantized.codes);
    EXPECT_EQ(one.quantized.scale_codes, r->quantized.scale_codes);
    EXPECT_EQ(0, std::memcmp(one.dequantized.data.data(), r->dequantized.data.data(),
                             one.dequantized.data.size() * sizeof(float)));
  }
  EXPECT_EQ(0, std::memcmp(stats_one.hessian().data(), stats_many.hessian().data(),
                           static_cast<std::size_t>(256 * 256) * sizeof(double)));
}

}  // namespace
}  // namespace microscale::quantizers
