#pragma once
// Where InputStatistics does its per-chunk work: multiplying out a chunk of at most 4096 rows in
// float and folding the product into running sums kept in double. The host (OpenBLAS ssyrk/sgemm,
// the default) folds straight into the sums' host matrices; the device (cuBLAS, in
// cuda/statistics_device.hpp) keeps its own copy of the sums on the GPU and hands them over only
// when they are read, so a chunk costs one upload instead of a dim x dim download and host update.
//
// Protocol, as InputStatistics drives it:
//   fold(chunk, delta, keep, add, sums)   per chunk, in row order;
//   publish(sums)                         before sums.hessian / sums.cross are read (may repeat).
#include <cstdint>
#include <memory>
#include <span>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"

namespace microscale::quantizers {

// One InputStatistics' running sums, column-major dim x dim, owned by it.
struct StatisticsSums {
  // What a hook keeps beside the host matrices (the device's copy); null until its first fold.
  struct Extra {
    virtual ~Extra() = default;
  };
  Eigen::MatrixXd hessian;  // folds touch the lower triangle only; publish mirrors it
  Eigen::MatrixXd cross;    // empty unless the cross term is tracked
  std::unique_ptr<Extra> extra;
};

class StatisticsProducts {
 public:
  virtual ~StatisticsProducts() = default;

  // `chunk` is rows x dim (row-major, rows <= 4096) of the quantized stream x̂; `delta` is empty or
  // the same shape holding δ = x - x̂. With P = float(x̂ᵀx̂) and Q = float(x̂ᵀδ) (products rounded in
  // FP32, never in a reduced precision such as TF32):
  //   hessian(j, i) <- keep * hessian(j, i) + add * P(j, i)   for j >= i (the lower triangle)
  //   cross(i, j)   <- keep * cross(i, j)   + add * Q(j, i)   (when delta is given)
  // The first fold into `sums` may create sums.extra; a hook refuses sums another hook created.
  virtual void fold(ConstMatrixView chunk, std::span<const float> delta, double keep, double add,
                    StatisticsSums& sums) = 0;
  // Makes the host matrices current: the Hessian's upper triangle mirrored from its lower one.
  virtual void publish(StatisticsSums& sums) = 0;
};

// OpenBLAS on the host (what InputStatistics uses when given no hook).
std::unique_ptr<StatisticsProducts> make_host_statistics_products();

}  // namespace microscale::quantizers
