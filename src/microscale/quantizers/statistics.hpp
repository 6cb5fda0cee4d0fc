#pragma once
// Streaming input statistics of one group of linear layers that share an input (q/k/v, gate/up).
//
// Rows are calibration tokens (a [tokens, in_features] activation matrix, as the model produces
// them). With x̂ the input the partly quantized model feeds this layer and x the input of the
// full-precision model:
//   hessian() = 2/n * sum x̂ᵀ x̂                        (GPTQ's convention, H of ||(W - Ŵ) X̂||²)
//   cross()   = 2/n * sum (x - x̂)ᵀ x̂  = 2/n * δ X̂ᵀ     (QEP's cross term, when tracked)
// Both are kept as running averages in double; each batch is multiplied out in float (BLAS syrk /
// gemm on chunks of at most 4096 rows) and then added in double, so long calibrations lose nothing.
#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"

namespace microscale::quantizers {

class InputStatistics {
 public:
  // `dim` = in_features. `track_cross` keeps QEP's cross term, which needs the full-precision rows.
  explicit InputStatistics(std::int64_t dim, bool track_cross = false);

  // Adds a batch of input rows. `full_precision_rows` (same shape) is required when tracking the
  // cross term and refused otherwise. Throws microscale::Error on a shape mismatch.
  void add(ConstMatrixView quantized_stream_rows, ConstMatrixView full_precision_rows = {});

  const Eigen::MatrixXd& hessian() const { return hessian_; }  // symmetric, dim x dim
  const Eigen::MatrixXd& cross() const;                         // throws unless tracked
  std::int64_t samples() const { return samples_; }
  std::int64_t dim() const { return dim_; }
  bool tracks_cross() const { return track_cross_; }

 private:
  std::int64_t dim_;
  bool track_cross_;
  std::int64_t samples_ = 0;
  Eigen::MatrixXd hessian_;
  Eigen::MatrixXd cross_;
  std::vector<float> scratch_;  // dim x dim float product of one chunk, reused between calls
  std::vector<float> delta_;    // chunk of x - x̂
};

}  // namespace microscale::quantizers
