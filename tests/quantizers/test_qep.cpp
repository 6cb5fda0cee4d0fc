// Input statistics and the QEP correction, against quantities computed directly in double.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include <Eigen/Dense>

#include "microscale/core/error.hpp"
#include "microscale/quantizers/qep.hpp"
#include "microscale/quantizers/statistics.hpp"
#include "quantizers/problems.hpp"

namespace microscale::quantizers {
namespace {

using testing::make_problem;
using testing::Problem;

Eigen::MatrixXd to_eigen(const Matrix& m) {
  Eigen::MatrixXd out(m.rows, m.cols);
  for (std::int64_t i = 0; i < m.rows; ++i)
    for (std::int64_t j = 0; j < m.cols; ++j) out(i, j) = m(i, j);
  return out;
}

// x̂: the full-precision input plus the kind of error an upstream quantized layer leaves.
Matrix perturbed(const Matrix& x, std::uint32_t seed, double relative) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix out = x;
  for (auto& v : out.data) v = static_cast<float>(v * (1.0 + relative * normal(rng)) + 0.05 * relative * normal(rng));
  return out;
}

ConstMatrixView rows_of(const Matrix& m, std::int64_t first, std::int64_t count) {
  return {std::span<const float>(m.data).subspan(static_cast<std::size_t>(first * m.cols),
                                                 static_cast<std::size_t>(count * m.cols)),
          count, m.cols};
}

TEST(InputStatistics, RunningAveragesMatchDirectProducts) {
  const Problem p = make_problem(4, 48, 301, 2u);
  const Matrix xq = perturbed(p.x, 3u, 0.1);
  InputStatistics stats(48, true);
  // Uneven batches, including a single row.
  stats.add(rows_of(xq, 0, 100), rows_of(p.x, 0, 100));
  stats.add(rows_of(xq, 100, 1), rows_of(p.x, 100, 1));
  stats.add(rows_of(xq, 101, 200), rows_of(p.x, 101, 200));
  EXPECT_EQ(stats.samples(), 301);

  const Eigen::MatrixXd xf = to_eigen(p.x), xh = to_eigen(xq);
  const Eigen::MatrixXd h = 2.0 / 301 * xh.transpose() * xh;
  const Eigen::MatrixXd c = 2.0 / 301 * (xf - xh).transpose() * xh;
  EXPECT_LT((stats.hessian() - h).norm(), 1e-6 * h.norm());
  EXPECT_LT((stats.cross() - c).norm(), 1e-5 * c.norm());
  EXPECT_EQ(stats.hessian(), stats.hessian().transpose());

  InputStatistics plain(48);
  plain.add(xq.view());
  EXPECT_LT((plain.hessian() - h).norm(), 1e-6 * h.norm());
  EXPECT_THROW(plain.cross(), Error);
  EXPECT_THROW(plain.add(xq.view(), p.x.view()), Error);
  EXPECT_THROW(stats.add(xq.view()), Error);
  EXPECT_THROW(stats.add(rows_of(xq, 0, 5), rows_of(p.x, 0, 6)), Error);
  Matrix narrow(3, 47);
  EXPECT_THROW(plain.add(narrow.view()), Error);
}

TEST(Qep, FullCorrectionIsTheLeastSquaresWeight) {
  // α = 1, λ ≈ 0: W' = argmin ||X Wᵀ - X̂ W'ᵀ|| (rows of X are tokens), solved here by QR on the data.
  const Problem p = make_problem(20, 32, 400, 5u);
  const Matrix xq = perturbed(p.x, 6u, 0.15);
  InputStatistics stats(32, true);
  stats.add(xq.view(), p.x.view());
  const Matrix corrected = qep_correct(p.w.view(), stats, 1.0, 1e-12, "l");

  const Eigen::MatrixXd xf = to_eigen(p.x), xh = to_eigen(xq), w = to_eigen(p.w);
  const Eigen::MatrixXd least_squares = xh.colPivHouseholderQr().solve(xf * w.transpose()).transpose();
  const Eigen::MatrixXd got = to_eigen(corrected);
  EXPECT_LT((got - least_squares).norm(), 2e-4 * least_squares.norm());
  // And it really is better on the calibration data than the uncorrected weight.
  EXPECT_LT((xf * w.transpose() - xh * got.transpose()).norm(), (xf * w.transpose() - xh * w.transpose()).norm());

  // α scales the correction linearly.
  const Eigen::MatrixXd half = to_eigen(qep_correct(p.w.view(), stats, 0.5, 1e-12, "l"));
  EXPECT_LT((half - (w + 0.5 * (least_squares - w))).norm(), 2e-4 * least_squares.norm());
}

TEST(Qep, DampingMatchesClosedForm) {
  const Problem p = make_problem(10, 32, 200, 12u);
  const Matrix xq = perturbed(p.x, 13u, 0.2);
  InputStatistics stats(32, true);
  stats.add(xq.view(), p.x.view());
  const Eigen::MatrixXd h = stats.hessian(), c = stats.cross(), w = to_eigen(p.w);
  const double lambda = 0.01 * h.diagonal().mean();
  const Eigen::MatrixXd want =
      w + 0.5 * w * c * (h + lambda * Eigen::MatrixXd::Identity(32, 32)).inverse();
  EXPECT_LT((to_eigen(qep_correct(p.w.view(), stats, 0.5, 0.01)) - want).norm(), 1e-5 * want.norm());
}

TEST(Qep, ZeroAlphaReturnsTheWeightBitForBit) {
  const Problem p = make_problem(10, 32, 100, 7u);
  const Matrix xq = perturbed(p.x, 8u, 0.3);
  InputStatistics stats(32, true);
  stats.add(xq.view(), p.x.view());
  const Matrix same = qep_correct(p.w.view(), stats, 0.0, 0.01, "l");
  ASSERT_EQ(same.data.size(), p.w.data.size());
  EXPECT_EQ(0, std::memcmp(same.data.data(), p.w.data.data(), same.data.size() * sizeof(float)));
}

TEST(Qep, BrokenStatisticsLeaveTheWeightUncorrected) {
  const Problem p = make_problem(6, 16, 64, 9u);
  Eigen::MatrixXd h = p.h;
  Eigen::MatrixXd c = Eigen::MatrixXd::Constant(16, 16, 0.01);
  c(3, 4) = std::numeric_limits<double>::quiet_NaN();
  testing::CapturedLog log;
  const Matrix out = qep_correct(p.w.view(), h, c, 0.5, 0.01, "model.layers.0.self_attn.q_proj");
  EXPECT_EQ(0, std::memcmp(out.data.data(), p.w.data.data(), out.data.size() * sizeof(float)));
  EXPECT_TRUE(log.warned_about("model.layers.0.self_attn.q_proj"));

  // A dead input column (never non-zero in X̂) gets no correction and no NaN.
  h.row(5).setZero();
  h.col(5).setZero();
  c.setConstant(0.01);
  c.col(5).setZero();
  const Matrix dead = qep_correct(p.w.view(), h, c, 1.0, 0.01, "l");
  EXPECT_TRUE(testing::all_finite(dead));
  for (std::int64_t r = 0; r < p.w.rows; ++r) EXPECT_FLOAT_EQ(dead(r, 5), p.w(r, 5));

  EXPECT_THROW(qep_correct(p.w.view(), Eigen::MatrixXd::Identity(8, 8), c, 0.5), Error);
  InputStatistics untracked(16);
  untracked.add(p.x.view());
  EXPECT_THROW(qep_correct(p.w.view(), untracked, 0.5), Error);
}

TEST(Qep, DefaultAlphaFollowsThePaper) {
  EXPECT_EQ(default_qep_alpha("model.layers.3.self_attn.q_proj"), 0.5);
  EXPECT_EQ(default_qep_alpha("model.layers.3.mlp.gate_proj"), 0.5);
  EXPECT_EQ(default_qep_alpha("model.layers.3.mlp.down_proj"), 0.0);
}

}  // namespace
}  // namespace microscale::quantizers
