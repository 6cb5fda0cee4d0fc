#pragma once
// Hessian repair, damping and factorisation shared by GPTQ and QEP (not a public API: include
// microscale/quantizers/gptq.hpp or qep.hpp instead).
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include <Eigen/Core>

#include "microscale/rotation/hadamard.hpp"

namespace microscale::quantizers::detail {

struct HessianRepair {
  std::vector<std::int64_t> dead_columns;  // H_ii == 0: the input never reached these columns
  std::int64_t invalid_columns = 0;        // non-finite entries or a negative diagonal
  std::int64_t nonfinite_entries = 0;
};

// Makes h usable, in place, warning (naming `layer`) about what it changed:
//  * a column with any NaN/Inf entry or a negative diagonal is decorrelated from the others
//    (row and column zeroed) and given the mean valid diagonal, so GPTQ treats it like RTN would;
//  * a dead column (diagonal exactly 0) gets diagonal 1, as GPTQ does; the caller zeroes its weights.
HessianRepair repair_hessian(Eigen::MatrixXd& h, std::string_view layer);

struct DampedCholesky {
  bool ok = false;
  double damp = 0;            // fraction of the mean diagonal finally added
  bool damped_extra = false;  // the first attempt failed
};

// Column-major upper Cholesky (A = UᵀU) of A + λI in place, λ = damp * mean(diag A). On failure
// the damping grows tenfold, with a warning naming `layer`, up to a few times; `ok` is false if all
// fail (the upper triangle and diagonal then hold garbage). The strictly lower triangle is untouched.
// `factor` computes the plain upper Cholesky factor in place and returns 0, or the (1-based) column
// at which the matrix was found not positive definite, as LAPACK's dpotrf does; by default dpotrf
// itself (the GPU path passes cuSOLVER's, so both share this damping policy).
using UpperCholesky = std::function<std::int64_t(double* a, std::int64_t d)>;
std::int64_t lapack_upper_cholesky(double* a, std::int64_t d);
DampedCholesky damped_cholesky_upper(double* a, std::int64_t d, double damp, std::string_view layer,
                                     const UpperCholesky& factor = lapack_upper_cholesky);

// Rᵀ M R for the block rotation R (M any d x d matrix), e.g. the Hessian of rotated inputs x R.
// Computed with the rotation module's float transform. A disabled spec returns M unchanged.
Eigen::MatrixXd conjugate_by_rotation(const Eigen::MatrixXd& m, const rotation::RotationSpec& spec);

}  // namespace microscale::quantizers::detail
