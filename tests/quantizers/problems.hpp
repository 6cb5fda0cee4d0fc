#pragma once
// Random layers for the quantizer tests: a weight, calibration inputs with correlated columns of
// unequal scale (so the Hessian is far from diagonal and act-order matters), and the Hessian
// 2/n XᵀX computed directly in double.
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "microscale/core/log.hpp"
#include "microscale/core/matrix.hpp"

namespace microscale::quantizers::testing {

struct Problem {
  Matrix w;           // [rows, d]
  Matrix x;           // [n, d] calibration inputs
  Eigen::MatrixXd h;  // 2/n xᵀx
};

enum class Tails { gaussian, heavy };

inline Eigen::MatrixXd hessian_of(const Matrix& x) {
  Eigen::MatrixXd xd(x.rows, x.cols);
  for (std::int64_t i = 0; i < x.rows; ++i)
    for (std::int64_t j = 0; j < x.cols; ++j) xd(i, j) = x(i, j);
  return 2.0 / static_cast<double>(x.rows) * (xd.transpose() * xd);
}

// heavy: Student-t(3)-like weights and a few input channels 10-30x larger than the rest (the
// outlier structure of LLM activations), which is where rotations pay off.
inline Problem make_problem(std::int64_t rows, std::int64_t d, std::int64_t n, std::uint32_t seed,
                            Tails tails = Tails::gaussian) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::chi_squared_distribution<double> chi3(3.0);
  Problem p;
  p.w = Matrix(rows, d);
  for (auto& v : p.w.data) {
    const double z = normal(rng);
    v = static_cast<float>(tails == Tails::heavy ? z / std::sqrt(chi3(rng) / 3.0) * 0.05 : z * 0.05);
  }
  // x = z * mix * diag(scale): neighbouring channels correlated, scales spanning ~e^{±1}.
  std::vector<double> scale(static_cast<std::size_t>(d));
  for (auto& s : scale) s = std::exp(0.7 * normal(rng));
  if (tails == Tails::heavy) {
    for (std::int64_t j = 0; j < d; j += std::max<std::int64_t>(d / 6, 1)) {
      scale[static_cast<std::size_t>(j)] *= 10.0 + 20.0 * std::abs(normal(rng));
    }
  }
  Eigen::MatrixXd z(n, d);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) z(i, j) = normal(rng);
  Eigen::MatrixXd mix = Eigen::MatrixXd::Identity(d, d);
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t k = std::max<std::int64_t>(0, j - 3); k < std::min(d, j + 4); ++k)
      if (k != j) mix(k, j) = 0.4 * normal(rng);
  const Eigen::MatrixXd xd = z * mix;
  p.x = Matrix(n, d);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < d; ++j) p.x(i, j) = static_cast<float>(xd(i, j) * scale[static_cast<std::size_t>(j)]);
  p.h = hessian_of(p.x);
  return p;
}

// Collects warnings while alive; restores the previous sink afterwards.
class CapturedLog {
 public:
  CapturedLog() {
    previous_ = log::set_sink([this](log::Level level, std::string_view message) {
      (level == log::Level::warning ? warnings : infos).emplace_back(message);
    });
  }
  ~CapturedLog() { log::set_sink(std::move(previous_)); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;

  bool warned_about(std::string_view needle) const {
    for (const auto& w : warnings)
      if (w.find(needle) != std::string::npos) return true;
    return false;
  }
  std::vector<std::string> warnings;
  std::vector<std::string> infos;

 private:
  log::Sink previous_;
};

inline bool all_finite(const Matrix& m) {
  for (const float v : m.data)
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace microscale::quantizers::testing
