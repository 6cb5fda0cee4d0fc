#include "microscale/quantizers/statistics_products.hpp"

#include <cblas.h>

#include <vector>

#include "microscale/core/error.hpp"

namespace microscale::quantizers {
namespace {

// Smaller accumulations stay on one thread (an OpenMP team costs more than they do).
constexpr std::int64_t kParallelWork = std::int64_t{1} << 18;

class HostStatisticsProducts final : public StatisticsProducts {
 public:
  void fold(ConstMatrixView chunk, std::span<const float> delta, double keep, double add,
            StatisticsSums& sums) override {
    if (sums.extra) fail("input statistics: these sums are kept on a device; the host cannot fold into them");
    const std::int64_t dim = chunk.cols;
    const int d = static_cast<int>(dim), m = static_cast<int>(chunk.rows);
    scratch_.resize(static_cast<std::size_t>(dim * dim));
    // Upper triangle of x̂ᵀx̂, row-major: entry (i, j >= i) at scratch[i * d + j]. Read as column-major
    // that is the lower triangle, so column i of H from the diagonal down is scratch row i.
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, d, m, 1.0f, chunk.data.data(), d, 0.0f, scratch_.data(), d);
    double* h = sums.hessian.data();
#pragma omp parallel for schedule(static) if (dim * dim > kParallelWork)
    for (std::int64_t i = 0; i < dim; ++i) {
      const float* s = scratch_.data() + i * dim;
      double* column = h + i * dim;
      for (std::int64_t j = i; j < dim; ++j) column[j] = column[j] * keep + add * static_cast<double>(s[j]);
    }
    if (delta.empty()) return;
    // scratch (row-major) = x̂ᵀ δ : scratch[j][i] = sum_t x̂[t][j] * δ[t][i] = C(i, j), so row j of
    // scratch is column j of the column-major C and both are walked contiguously.
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, m, 1.0f, chunk.data.data(), d, delta.data(), d, 0.0f,
                scratch_.data(), d);
    double* c = sums.cross.data();
#pragma omp parallel for schedule(static) if (dim * dim > kParallelWork)
    for (std::int64_t j = 0; j < dim; ++j) {
      const float* s = scratch_.data() + j * dim;
      double* column = c + j * dim;
      for (std::int64_t i = 0; i < dim; ++i) column[i] = column[i] * keep + add * static_cast<double>(s[i]);
    }
  }

  // Once per read rather than once per chunk: the mirror is a strided copy of half the matrix.
  void publish(StatisticsSums& sums) override {
    sums.hessian.triangularView<Eigen::StrictlyUpper>() = sums.hessian.transpose();
  }

 private:
  std::vector<float> scratch_;  // dim x dim float product of one chunk, reused between calls
};

}  // namespace

std::unique_ptr<StatisticsProducts> make_host_statistics_products() {
  return std::make_unique<HostStatisticsProducts>();
}

}  // namespace microscale::quantizers
