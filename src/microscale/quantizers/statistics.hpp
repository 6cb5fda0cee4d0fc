#pragma once
// Streaming input statistics of one group of linear layers that share an input (q/k/v, gate/up).
//
// Rows are calibration tokens (a [tokens, in_features] activation matrix, as the model produces
// them). With x̂ the input the partly quantized model feeds this layer and x the input of the
// full-precision model:
//   hessian() = 2/n * sum x̂ᵀ x̂                        (GPTQ's convention, H of ||(W - Ŵ) X̂||²)
//   cross()   = 2/n * sum (x - x̂)ᵀ x̂  = 2/n * δ X̂ᵀ     (QEP's cross term, when tracked)
// Both are kept as running averages in double; each batch is multiplied out in float (syrk / gemm
// on chunks of at most 4096 rows) and then added in double, so long calibrations lose nothing.
// The products run where the StatisticsProducts hook says (statistics_products.hpp): OpenBLAS on
// the host by default, cuBLAS with cuda::make_device_statistics_products().
#include <cstdint>
#include <memory>
#include <vector>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"
#include "microscale/quantizers/statistics_products.hpp"

namespace microscale::quantizers {

class InputStatistics {
 public:
  // `dim` = in_features. `track_cross` keeps QEP's cross term, which needs the full-precision rows.
  // `products` (not owned, must outlive this object) says where the chunk products run; null: the host.
  explicit InputStatistics(std::int64_t dim, bool track_cross = false, StatisticsProducts* products = nullptr);

  // Adds a batch of input rows. `full_precision_rows` (same shape) is required when tracking the
  // cross term and refused otherwise. Throws microscale::Error on a shape mismatch.
  void add(ConstMatrixView quantized_stream_rows, ConstMatrixView full_precision_rows = {});

  // The first read after add() brings the sums up to date (from the device, when they are kept there).
  const Eigen::MatrixXd& hessian() const;  // symmetric, dim x dim
  const Eigen::MatrixXd& cross() const;    // throws unless tracked
  std::int64_t samples() const { return samples_; }
  std::int64_t dim() const { return dim_; }
  bool tracks_cross() const { return track_cross_; }

 private:
  void publish() const;

  std::int64_t dim_;
  bool track_cross_;
  std::int64_t samples_ = 0;
  std::unique_ptr<StatisticsProducts> own_products_;  // the host's, when none was given
  StatisticsProducts* products_;
  // Reading is logically const; it may only complete the sums' lazy update.
  mutable StatisticsSums sums_;
  mutable bool published_ = true;
  std::vector<float> delta_;  // chunk of x - x̂
};

}  // namespace microscale::quantizers
