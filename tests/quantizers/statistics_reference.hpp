#pragma once
// What InputStatistics should produce, computed in double, and how far an FP32 implementation of it
// may stray: shared by the host test (tests/quantizers) and the device test (tests/cuda).
//
// Each entry of a chunk's product is a sum of m <= 4096 products rounded in FP32. Rounding errors of
// a sum are at most m·u times the sum of the terms' magnitudes (u = 2^-24, the worst case when every
// rounding goes the same way) and, since the roundings are independent and of either sign, about
// sqrt(m)·u times it in practice (Higham, Accuracy and Stability of Numerical Algorithms, §4.2; blocked
// summation as in BLAS does better still). So the error of entry (i, j) is measured in units of
// u·sqrt(m)·|A|(i, j), with |A| the same statistic computed from absolute values.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"

namespace microscale::quantizers::testing {

constexpr double kUnitRoundoff = 0x1p-24;  // FP32
constexpr std::int64_t kStatisticsChunkRows = 4096;  // InputStatistics' float product size

// A quantized stream x̂ and a full-precision stream x = x̂ + δ: channels of unequal scale (e^{±1.4}),
// a mean offset so that off-diagonal sums grow like diagonal ones (the hard case for rounding), and
// δ ~ 5% of x̂, like a quantization error.
struct StatisticsInputs {
  Matrix x_hat, x;
};

inline StatisticsInputs statistics_inputs(std::int64_t rows, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> scale(static_cast<std::size_t>(d)), offset(static_cast<std::size_t>(d));
  for (std::size_t c = 0; c < scale.size(); ++c) {
    scale[c] = std::exp(0.7 * normal(rng));
    offset[c] = 0.5 * normal(rng);
  }
  StatisticsInputs in{Matrix(rows, d), Matrix(rows, d)};
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < d; ++c) {
      const double s = scale[static_cast<std::size_t>(c)];
      const double v = s * (offset[static_cast<std::size_t>(c)] + normal(rng));
      in.x_hat(r, c) = static_cast<float>(v);
      in.x(r, c) = static_cast<float>(v + 0.05 * s * normal(rng));
    }
  }
  return in;
}

// value = 2/n Σ_t a_tiᵀ b_tj in double, magnitude = the same from |a| and |b|.
struct Reference {
  Eigen::MatrixXd value, magnitude;
};

inline Reference reference_product(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  const double scale = 2.0 / static_cast<double>(a.rows());
  return {scale * (a.transpose() * b), scale * (a.cwiseAbs().transpose() * b.cwiseAbs())};
}

inline Eigen::MatrixXd to_double(const Matrix& m) {
  Eigen::MatrixXd out(m.rows, m.cols);
  for (std::int64_t r = 0; r < m.rows; ++r)
    for (std::int64_t c = 0; c < m.cols; ++c) out(r, c) = m(r, c);
  return out;
}

// H = 2/n Σ x̂ᵀx̂.
inline Reference reference_hessian(const StatisticsInputs& in) {
  const Eigen::MatrixXd x_hat = to_double(in.x_hat);
  return reference_product(x_hat, x_hat);
}

// C = 2/n Σ δᵀx̂ with δ = float(x - x̂), rounded as InputStatistics rounds it.
inline Reference reference_cross(const StatisticsInputs& in) {
  Matrix delta(in.x.rows, in.x.cols);
  for (std::size_t k = 0; k < delta.data.size(); ++k) delta.data[k] = in.x.data[k] - in.x_hat.data[k];
  return reference_product(to_double(delta), to_double(in.x_hat));
}

// max over entries of |got - value| / (u · sqrt(chunk rows) · magnitude).
inline double rounding_units(const Eigen::MatrixXd& got, const Reference& r,
                             std::int64_t chunk_rows = kStatisticsChunkRows) {
  const double unit = kUnitRoundoff * std::sqrt(static_cast<double>(chunk_rows));
  double worst = 0;
  for (Eigen::Index j = 0; j < got.cols(); ++j)
    for (Eigen::Index i = 0; i < got.rows(); ++i)
      worst = std::max(worst, std::abs(got(i, j) - r.value(i, j)) / (unit * r.magnitude(i, j)));
  return worst;
}

// The values a TF32 product would multiply: 10 explicit mantissa bits, rounded to nearest (even).
inline Matrix round_to_tf32(const Matrix& m) {
  Matrix out = m;
  for (float& v : out.data) {
    std::uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    bits += 0xFFFu + ((bits >> 13) & 1u);
    bits &= ~0x1FFFu;
    std::memcpy(&v, &bits, sizeof bits);
  }
  return out;
}

// The same streams as a TF32 product would see them: x̂ and δ = x - x̂ each rounded to TF32.
inline StatisticsInputs tf32_rounded(const StatisticsInputs& in) {
  Matrix delta(in.x.rows, in.x.cols);
  for (std::size_t k = 0; k < delta.data.size(); ++k) delta.data[k] = in.x.data[k] - in.x_hat.data[k];
  delta = round_to_tf32(delta);
  StatisticsInputs out{round_to_tf32(in.x_hat), Matrix(in.x.rows, in.x.cols)};
  for (std::size_t k = 0; k < delta.data.size(); ++k) out.x.data[k] = out.x_hat.data[k] + delta.data[k];
  return out;
}

}  // namespace microscale::quantizers::testing
