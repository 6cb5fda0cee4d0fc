#pragma once
// Where GPTQ's two heavy linear-algebra steps run: the damped Cholesky factorisation and triangular
// inverse of the (permuted) Hessian, O(d³), and the lazy-batch updates of the working weights,
// O(rows·d²). The column loop between them (the quantizer, the intra-block updates) always runs on
// the host, so every device computes the same algorithm with the same quantizer; only the rounding
// of the two dense steps differs (LAPACK/OpenBLAS here, cuSOLVER/cuBLAS in cuda/gptq_device.hpp).
//
// Protocol, as quantizers::gptq drives it:
//   factor_inverse(a, d, damp, layer)     once;
//   start(work, rows, d, u)               once, with the host working weights and the factor U;
//   for each block [b, end):
//     sync_block(b, end, extra)           host work[:, b:end] and the columns in `extra` made current;
//     ... the host quantizes the block's columns ...
//     update_trailing(errors, ld, b, end) work[:, end:] -= errors[:, 0:end-b] · U[b:end, end:].
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "microscale/quantizers/hessian_ops.hpp"

namespace microscale::quantizers {

class GptqLinearAlgebra {
 public:
  virtual ~GptqLinearAlgebra() = default;

  // `a` is d x d, column-major, symmetric positive semi-definite. On return, when result.ok, `a` holds
  // in its upper triangle the inverse of the upper Cholesky factor of a + λI (λ = damp·mean diagonal,
  // grown tenfold on failure exactly as detail::damped_cholesky_upper does); otherwise garbage.
  virtual detail::DampedCholesky factor_inverse(double* a, std::int64_t d, double damp, std::string_view layer) = 0;

  // `work` (rows x d, row-major) is the host copy; `u` (d x d, row-major) stays valid until the end.
  virtual void start(std::span<double> work, std::int64_t rows, std::int64_t d, const double* u) = 0;
  virtual void sync_block(std::int64_t begin, std::int64_t end, std::span<const std::int64_t> extra_columns) = 0;
  // `errors` is rows x (end - begin) with leading dimension `ld`.
  virtual void update_trailing(const double* errors, std::int64_t ld, std::int64_t begin, std::int64_t end) = 0;
};

// LAPACK (dpotrf, dtrtri) and BLAS (dgemm) on the host working weights themselves.
std::unique_ptr<GptqLinearAlgebra> make_host_linear_algebra();

}  // namespace microscale::quantizers
