#include "microscale/quantizers/hessian_ops.hpp"

#include <lapacke.h>

#include <cmath>

#include "microscale/core/log.hpp"
#include "microscale/core/matrix.hpp"

namespace microscale::quantizers::detail {
namespace {

constexpr int kDampingRetries = 8;

}  // namespace

HessianRepair repair_hessian(Eigen::MatrixXd& h, std::string_view layer) {
  HessianRepair repair;
  const std::int64_t d = h.rows();
  std::vector<char> invalid(static_cast<std::size_t>(d), 0);
  for (std::int64_t j = 0; j < d; ++j) {
    for (std::int64_t i = 0; i < d; ++i) {
      if (!std::isfinite(h(i, j))) {
        ++repair.nonfinite_entries;
        invalid[static_cast<std::size_t>(i)] = 1;
        invalid[static_cast<std::size_t>(j)] = 1;
      }
    }
    if (std::isfinite(h(j, j)) && h(j, j) < 0) invalid[static_cast<std::size_t>(j)] = 1;
  }

  double valid_sum = 0;
  std::int64_t valid_count = 0;
  for (std::int64_t j = 0; j < d; ++j) {
    if (!invalid[static_cast<std::size_t>(j)] && h(j, j) > 0) {
      valid_sum += h(j, j);
      ++valid_count;
    }
  }
  for (std::int64_t j = 0; j < d; ++j) {
    if (!invalid[static_cast<std::size_t>(j)]) continue;
    ++repair.invalid_columns;
    h.row(j).setZero();
    h.col(j).setZero();
  }
  if (repair.invalid_columns > 0) {
    const double fill = valid_count > 0 ? valid_sum / static_cast<double>(valid_count) : 1.0;
    for (std::int64_t j = 0; j < d; ++j) {
      if (invalid[static_cast<std::size_t>(j)]) h(j, j) = fill;
    }
    log::warn("{}: Hessian has {} non-finite entries and {} unusable input columns (NaN/Inf or negative "
              "diagonal); those columns are quantized without error compensation",
              layer, repair.nonfinite_entries, repair.invalid_columns);
  }

  for (std::int64_t j = 0; j < d; ++j) {
    if (h(j, j) == 0.0) {
      h(j, j) = 1.0;
      repair.dead_columns.push_back(j);
    }
  }
  if (!repair.dead_columns.empty()) {
    log::warn("{}: {} of {} input columns never saw a non-zero input (zero Hessian diagonal); their "
              "weights are set to 0",
              layer, repair.dead_columns.size(), d);
  }
  return repair;
}

std::int64_t lapack_upper_cholesky(double* a, std::int64_t d) {
  return LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', static_cast<lapack_int>(d), a, static_cast<lapack_int>(d));
}

DampedCholesky damped_cholesky_upper(double* a, std::int64_t d, double damp, std::string_view layer,
                                     const UpperCholesky& factor) {
  DampedCholesky result;
  result.damp = damp;
  if (d == 0) {
    result.ok = true;
    return result;
  }
  std::vector<double> diagonal(static_cast<std::size_t>(d));
  double mean = 0;
  for (std::int64_t i = 0; i < d; ++i) {
    diagonal[static_cast<std::size_t>(i)] = a[i + i * d];
    mean += a[i + i * d];
  }
  mean /= static_cast<double>(d);
  if (!(mean > 0) || !std::isfinite(mean)) mean = 1.0;

  for (int attempt = 0; attempt <= kDampingRetries; ++attempt) {
    const double lambda = result.damp * mean;
    for (std::int64_t i = 0; i < d; ++i) a[i + i * d] = diagonal[static_cast<std::size_t>(i)] + lambda;
    const std::int64_t info = factor(a, d);
    if (info == 0) {
      result.ok = true;
      return result;
    }
    // potrf overwrote (part of) the upper triangle; the strictly lower one still holds the input.
    for (std::int64_t j = 0; j < d; ++j) {
      for (std::int64_t i = 0; i < j; ++i) a[i + j * d] = a[j + i * d];
    }
    const double next = result.damp > 0 ? result.damp * 10.0 : 1e-4;
    if (attempt < kDampingRetries) {
      log::warn("{}: Hessian is not positive definite with damping {:g} of its mean diagonal (Cholesky "
                "failed at column {}); retrying with {:g}",
                layer, result.damp, info, next);
      result.damp = next;
      result.damped_extra = true;
    } else {
      log::warn("{}: Hessian still not positive definite with damping {:g}; giving up on it", layer, result.damp);
    }
  }
  return result;
}

Eigen::MatrixXd conjugate_by_rotation(const Eigen::MatrixXd& m, const rotation::RotationSpec& spec) {
  if (!spec.enabled()) return m;
  const std::int64_t d = m.rows();
  Matrix work(d, d);
  // work = M (row-major), then rows <- rows R: work = M R.
  for (std::int64_t i = 0; i < d; ++i) {
    for (std::int64_t j = 0; j < d; ++j) work(i, j) = static_cast<float>(m(i, j));
  }
  rotation::rotate_rows(work.view(), spec);
  // Transpose: (M R)ᵀ = Rᵀ Mᵀ; rotate rows again: Rᵀ Mᵀ R = (Rᵀ M R)ᵀ.
  Matrix transposed(d, d);
  for (std::int64_t i = 0; i < d; ++i) {
    for (std::int64_t j = 0; j < d; ++j) transposed(j, i) = work(i, j);
  }
  rotation::rotate_rows(transposed.view(), spec);
  Eigen::MatrixXd out(d, d);
  for (std::int64_t i = 0; i < d; ++i) {
    for (std::int64_t j = 0; j < d; ++j) out(j, i) = static_cast<double>(transposed(i, j));
  }
  return out;
}

}  // namespace microscale::quantizers::detail
