// The FP32 rounding bound that tests/cuda holds the device statistics to (statistics_reference.hpp),
// checked where it can be on any machine: the host products sit well inside it, so does a plain
// sequential FP32 sum (the order in which one GPU GEMM thread accumulates its entry), and products of
// TF32-rounded inputs fall clearly outside it, so the bound would catch a device that used TF32.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "microscale/quantizers/statistics.hpp"
#include "quantizers/statistics_reference.hpp"

namespace microscale::quantizers {
namespace {

using testing::kStatisticsChunkRows;
using testing::rounding_units;

constexpr double kBound = 2.0;  // in units of u·sqrt(4096)·|A|, as tests/cuda uses it

// 2/n Σ aᵀb with each chunk's entries summed one row after another in FP32 (fused multiply-adds),
// then folded into double like InputStatistics.
Eigen::MatrixXd sequential_fp32(const Matrix& a, const Matrix& b) {
  const std::int64_t n = a.rows, d = a.cols;
  Eigen::MatrixXd sums = Eigen::MatrixXd::Zero(d, d);
  std::int64_t samples = 0;
  for (std::int64_t first = 0; first < n; first += kStatisticsChunkRows) {
    const std::int64_t m = std::min(kStatisticsChunkRows, n - first);
    const double keep = static_cast<double>(samples) / static_cast<double>(samples + m);
    const double add = 2.0 / static_cast<double>(samples + m);
    for (std::int64_t i = 0; i < d; ++i) {
      for (std::int64_t j = 0; j < d; ++j) {
        float acc = 0.0f;
        for (std::int64_t t = first; t < first + m; ++t) acc = std::fma(a(t, i), b(t, j), acc);
        sums(i, j) = sums(i, j) * keep + add * static_cast<double>(acc);
      }
    }
    samples += m;
  }
  return sums;
}

TEST(InputStatisticsRounding, HostAndSequentialSumsAreInsideTheBoundAndTf32IsNot) {
  for (const std::int64_t d : {96, 77}) {
    const std::int64_t rows = 5000;  // chunks of 4096 and 904
    const auto in = testing::statistics_inputs(rows, d, static_cast<std::uint32_t>(d));
    const auto hessian = testing::reference_hessian(in);
    const auto cross = testing::reference_cross(in);

    InputStatistics host(d, true);
    host.add(in.x_hat.view(), in.x.view());
    Matrix delta(rows, d);
    for (std::size_t k = 0; k < delta.data.size(); ++k) delta.data[k] = in.x.data[k] - in.x_hat.data[k];

    const auto tf32 = testing::tf32_rounded(in);
    InputStatistics reduced(d, true);
    reduced.add(tf32.x_hat.view(), tf32.x.view());

    const double host_h = rounding_units(host.hessian(), hessian), host_c = rounding_units(host.cross(), cross);
    const double seq_h = rounding_units(sequential_fp32(in.x_hat, in.x_hat), hessian);
    const double seq_c = rounding_units(sequential_fp32(delta, in.x_hat), cross);
    const double tf32_h = rounding_units(reduced.hessian(), hessian), tf32_c = rounding_units(reduced.cross(), cross);
    std::printf("d %lld: rounding units (bound %.1f): host H %.3f C %.3f, sequential FP32 H %.3f C %.3f, TF32 H %.2f C %.2f\n",
                static_cast<long long>(d), kBound, host_h, host_c, seq_h, seq_c, tf32_h, tf32_c);
    EXPECT_LT(host_h, kBound / 4);
    EXPECT_LT(host_c, kBound / 4);
    EXPECT_LT(seq_h, kBound);
    EXPECT_LT(seq_c, kBound);
    EXPECT_GT(tf32_h, 2 * kBound);
    EXPECT_GT(tf32_c, 2 * kBound);
  }
}

}  // namespace
}  // namespace microscale::quantizers
