#include "microscale/quantizers/statistics.hpp"

#include <algorithm>

#include "microscale/core/error.hpp"

namespace microscale::quantizers {
namespace {

// A float product over at most this many rows: its rounding error stays ~sqrt(rows) * 2^-24.
constexpr std::int64_t kChunkRows = 4096;

}  // namespace

InputStatistics::InputStatistics(std::int64_t dim, bool track_cross, StatisticsProducts* products)
    : dim_(dim), track_cross_(track_cross) {
  if (dim <= 0) fail("input statistics: dimension must be positive, got {}", dim);
  if (products == nullptr) own_products_ = make_host_statistics_products();
  products_ = products != nullptr ? products : own_products_.get();
  sums_.hessian = Eigen::MatrixXd::Zero(dim, dim);
  if (track_cross_) sums_.cross = Eigen::MatrixXd::Zero(dim, dim);
}

void InputStatistics::publish() const {
  if (published_) return;
  products_->publish(sums_);
  published_ = true;
}

const Eigen::MatrixXd& InputStatistics::hessian() const {
  publish();
  return sums_.hessian;
}

const Eigen::MatrixXd& InputStatistics::cross() const {
  if (!track_cross_) fail("input statistics: the QEP cross term was not tracked (construct with track_cross)");
  publish();
  return sums_.cross;
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
  if (track_cross_) delta_.resize(static_cast<std::size_t>(std::min(kChunkRows, quantized.rows)) * d);

  for (std::int64_t first = 0; first < quantized.rows; first += kChunkRows) {
    const std::int64_t m = std::min(kChunkRows, quantized.rows - first);
    const ConstMatrixView chunk = quantized.middle_rows(first, m);
    const std::size_t count = static_cast<std::size_t>(m) * d;
    std::span<const float> delta;
    if (track_cross_) {
      const float* xq = chunk.data.data();
      const float* xf = full.data.data() + first * dim_;
      for (std::size_t k = 0; k < count; ++k) delta_[k] = xf[k] - xq[k];
      delta = std::span<const float>(delta_.data(), count);
    }
    // Running average: S <- S * n/(n+m) + 2/(n+m) * chunk product.
    const double keep = static_cast<double>(samples_) / static_cast<double>(samples_ + m);
    const double add = 2.0 / static_cast<double>(samples_ + m);
    published_ = false;
    products_->fold(chunk, delta, keep, add, sums_);
    samples_ += m;
  }
}

}  // namespace microscale::quantizers
