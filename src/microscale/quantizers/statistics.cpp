#include "microscale/quantizers/statistics.hpp"

#include <cblas.h>

#include <algorithm>

#include "microscale/core/error.hpp"

namespace microscale::quantizers {
namespace {

// A float product over at most this many rows: its rounding error stays ~sqrt(rows) * 2^-24.
constexpr std::int64_t kChunkRows = 4096;
// Smaller accumulations stay on one thread (an OpenMP team costs more than they do).
constexpr std::int64_t kParallelWork = std::int64_t{1} << 18;

}  // namespace

InputStatistics::InputStatistics(std::int64_t dim, bool track_cross) : dim_(dim), track_cross_(track_cross) {
  if (dim <= 0) fail("input statistics: dimension must be positive, got {}", dim);
  hessian_ = Eigen::MatrixXd::Zero(dim, dim);
  if (track_cross_) cross_ = Eigen::MatrixXd::Zero(dim, dim);
}

const Eigen::MatrixXd& InputStatistics::cross() const {
  if (!track_cross_) fail("input statistics: the QEP cross term was not tracked (construct with track_cross)");
  return cross_;
}

void InputStatistics::add(ConstMatrixView quantized, ConstMatrixView full) {
  if (quantized.cols != dim_) {
    fail("input statistics: rows have {} columns, expected {}", quantized.cols, dim_);
  }
  if (quantized.data.size() != static_cast<std::size_t>(quantized.rows * quantized.cols)) {
    fail("input statistics: view of {}x{} holds {} values", quantized.rows, quantized.cols, quantized.data.size());
  }
  const bool has_full = full.rows != 0 || !full.data.empty();
  if (track_cross_ && !has_full) {
    fail("input statistics: the QEP cross term needs the full-precision rows alongside the quantized ones");
  }
  if (!track_cross_ && has_full) {
    fail("input statistics: full-precision rows given but the cross term is not tracked");
  }
  if (has_full && (full.rows != quantized.rows || full.cols != quantized.cols ||
                   full.data.size() != quantized.data.size())) {
    fail("input statistics: full-precision rows are {}x{}, quantized rows {}x{}", full.rows, full.cols,
         quantized.rows, quantized.cols);
  }
  if (quantized.rows == 0) return;

  const auto d = static_cast<std::size_t>(dim_);
  scratch_.resize(d * d);
  if (track_cross_) delta_.resize(static_cast<std::size_t>(std::min(kChunkRows, quantized.rows)) * d);

  for (std::int64_t first = 0; first < quantized.rows; first += kChunkRows) {
    const std::int64_t m = std::min(kChunkRows, quantized.rows - first);
    const float* xq = quantized.data.data() + first * dim_;
    // Running average: S <- S * n/(n+m) + 2/(n+m) * chunk product.
    const double keep = static_cast<double>(samples_) / static_cast<double>(samples_ + m);
    const double add = 2.0 / static_cast<double>(samples_ + m);

    // Upper triangle of x̂ᵀx̂, row-major: entry (i, j >= i) at scratch[i * d + j]. Read as column-major
    // that is the lower triangle, so column i of H from the diagonal down is scratch row i.
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(dim_), static_cast<int>(m), 1.0f, xq,
                static_cast<int>(dim_), 0.0f, scratch_.data(), static_cast<int>(dim_));
    double* h = hessian_.data();
#pragma omp parallel for schedule(static) if (dim_ * dim_ > kParallelWork)
    for (std::int64_t i = 0; i < dim_; ++i) {
      const float* s = scratch_.data() + i * dim_;
      double* column = h + i * dim_;
      for (std::int64_t j = i; j < dim_; ++j) column[j] = column[j] * keep + add * static_cast<double>(s[j]);
    }
    hessian_.triangularView<Eigen::StrictlyUpper>() = hessian_.transpose();

    if (track_cross_) {
      const float* xf = full.data.data() + first * dim_;
      const std::size_t count = static_cast<std::size_t>(m) * d;
      for (std::size_t k = 0; k < count; ++k) delta_[k] = xf[k] - xq[k];
      // scratch (row-major) = x̂ᵀ δ : scratch[j][i] = sum_t x̂[t][j] * δ[t][i] = C(i, j), so row j of
      // scratch is column j of the column-major C and both are walked contiguously.
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(dim_), static_cast<int>(dim_),
                  static_cast<int>(m), 1.0f, xq, static_cast<int>(dim_), delta_.data(), static_cast<int>(dim_), 0.0f,
                  scratch_.data(), static_cast<int>(dim_));
      double* c = cross_.data();
#pragma omp parallel for schedule(static) if (dim_ * dim_ > kParallelWork)
      for (std::int64_t j = 0; j < dim_; ++j) {
        const float* s = scratch_.data() + j * dim_;
        double* column = c + j * dim_;
        for (std::int64_t i = 0; i < dim_; ++i) column[i] = column[i] * keep + add * static_cast<double>(s[i]);
      }
    }
    samples_ += m;
  }
}

}  // namespace microscale::quantizers
