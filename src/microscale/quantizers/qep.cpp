#include "microscale/quantizers/qep.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <cmath>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/core/log.hpp"
#include "microscale/quantizers/hessian_ops.hpp"

namespace microscale::quantizers {
namespace {

Matrix copy_of(ConstMatrixView w) {
  Matrix out(w.rows, w.cols);
  std::copy(w.data.begin(), w.data.end(), out.data.begin());
  return out;
}

bool all_finite(const Eigen::MatrixXd& m) { return m.allFinite(); }

}  // namespace

Matrix qep_correct(ConstMatrixView w, const InputStatistics& stats, double alpha, double damp, std::string_view layer) {
  if (!stats.tracks_cross()) {
    fail("{}: QEP needs statistics with the cross term (full-precision and quantized inputs)", layer);
  }
  return qep_correct(w, stats.hessian(), stats.cross(), alpha, damp, layer);
}

Matrix qep_correct(ConstMatrixView w, const Eigen::MatrixXd& hessian, const Eigen::MatrixXd& cross, double alpha,
                   double damp, std::string_view layer) {
  const std::int64_t rows = w.rows;
  const std::int64_t d = w.cols;
  if (w.data.size() != static_cast<std::size_t>(rows * d)) {
    fail("{}: weight view of {}x{} holds {} values", layer, rows, d, w.data.size());
  }
  if (hessian.rows() != d || hessian.cols() != d || cross.rows() != d || cross.cols() != d) {
    fail("{}: QEP statistics are {}x{} and {}x{} but the weight has {} input columns", layer, hessian.rows(),
         hessian.cols(), cross.rows(), cross.cols(), d);
  }
  for (const float v : w.data) {
    if (!std::isfinite(v)) fail("{}: weight has a non-finite value", layer);
  }
  if (!std::isfinite(alpha)) fail("{}: QEP alpha must be finite, got {}", layer, alpha);
  if (!(damp >= 0) || !std::isfinite(damp)) fail("{}: QEP damping must be finite and non-negative, got {}", layer, damp);
  if (alpha == 0.0 || rows == 0 || d == 0) return copy_of(w);
  if (!all_finite(hessian) || !all_finite(cross)) {
    log::warn("{}: QEP statistics contain NaN/Inf; the weight is left uncorrected", layer);
    return copy_of(w);
  }

  // Dead inputs (X̂ column always 0) get H_ii = 1; their cross-term column is 0, so they get no
  // correction and stay as they are.
  Eigen::MatrixXd h = hessian;
  for (std::int64_t i = 0; i < d; ++i) {
    if (h(i, i) < 0) {
      log::warn("{}: QEP Hessian has a negative diagonal at column {}; the weight is left uncorrected", layer, i);
      return copy_of(w);
    }
    if (h(i, i) == 0) h(i, i) = 1.0;
  }
  const detail::DampedCholesky cholesky = detail::damped_cholesky_upper(h.data(), d, damp, layer);
  if (!cholesky.ok) {
    log::warn("{}: QEP system could not be factorised; the weight is left uncorrected", layer);
    return copy_of(w);
  }

  // m = W C, rows x d row-major. Column-major view: mᵀ = Cᵀ Wᵀ, where row-major W read column-major is
  // Wᵀ (d x rows, ld d) and the column-major result (d x rows, ld d) read row-major is m.
  std::vector<double> weight(w.data.begin(), w.data.end());
  std::vector<double> solution(weight.size());
  cblas_dgemm(CblasColMajor, CblasTrans, CblasNoTrans, static_cast<int>(d), static_cast<int>(rows),
              static_cast<int>(d), 1.0, cross.data(), static_cast<int>(d), weight.data(), static_cast<int>(d), 0.0,
              solution.data(), static_cast<int>(d));
  // Solve (H + λI) Y' = mᵀ; Y' read row-major is Y = m (H + λI)^-1 (H symmetric).
  const lapack_int info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', static_cast<lapack_int>(d),
                                         static_cast<lapack_int>(rows), h.data(), static_cast<lapack_int>(d),
                                         solution.data(), static_cast<lapack_int>(d));
  if (info != 0) {
    log::warn("{}: QEP solve failed (LAPACK info {}); the weight is left uncorrected", layer, info);
    return copy_of(w);
  }
  Matrix out(rows, d);
  for (std::size_t i = 0; i < weight.size(); ++i) {
    const double v = weight[i] + alpha * solution[i];
    if (!std::isfinite(static_cast<float>(v))) {
      log::warn("{}: QEP correction overflowed; the weight is left uncorrected", layer);
      return copy_of(w);
    }
    out.data[i] = static_cast<float>(v);
  }
  if (cholesky.damped_extra) {
    log::info("{}: QEP used damping {:g} instead of {:g}", layer, cholesky.damp, damp);
  }
  return out;
}

double default_qep_alpha(std::string_view linear_name) {
  return linear_name.find("down_proj") != std::string_view::npos ? 0.0 : 0.5;
}

}  // namespace microscale::quantizers
