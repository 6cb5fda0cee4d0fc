#include "microscale/cuda/statistics_device.hpp"

#include <cublas_v2.h>

#include <cstdint>

#include "microscale/core/error.hpp"
#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/cuda/statistics_launchers.hpp"

namespace microscale::cuda {
namespace {

void check_blas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("{} failed: {}", what, cublasGetStatusString(status));
}

std::size_t square(std::int64_t d) { return static_cast<std::size_t>(d) * static_cast<std::size_t>(d); }

// Grows `array` to at least n elements; the old contents are not kept.
template <typename T>
void reserve(DeviceArray<T>& array, std::size_t n) {
  if (array.size() < n) array = DeviceArray<T>(n);
}

// The running sums of one InputStatistics, column-major like the host matrices (zero at the start).
struct DeviceSums final : quantizers::StatisticsSums::Extra {
  DeviceSums(std::int64_t d, bool with_cross) : dim(d), hessian(square(d)), cross(with_cross ? square(d) : 0) {
    check_cuda(cudaMemset(hessian.data(), 0, hessian.bytes()), "input statistics: zeroing the Hessian sums");
    if (with_cross) check_cuda(cudaMemset(cross.data(), 0, cross.bytes()), "input statistics: zeroing the cross sums");
  }
  std::int64_t dim;
  DeviceArray<double> hessian, cross;
};

class DeviceStatisticsProducts final : public quantizers::StatisticsProducts {
 public:
  DeviceStatisticsProducts() {
    const char* why = nullptr;
    if (device_count(&why) == 0) fail("--device cuda: no usable CUDA device ({})", why ? why : "none found");
    check_blas(cublasCreate(&blas_), "cublasCreate (input statistics)");
    // Default math, set explicitly: FP32 routines then compute in at least FP32 precision (cuBLAS
    // uses TF32 only under CUBLAS_TF32_TENSOR_OP_MATH, BF16x9 emulation only under its own mode), so
    // the products carry the same ~sqrt(rows)·2^-24 rounding as OpenBLAS's. TF32 (10-bit mantissa)
    // would err ~2^-11 per input, far beyond that. Pedantic math would only also forbid algorithms
    // that are as accurate, at a possible cost in speed.
    check_blas(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode (input statistics)");
  }
  ~DeviceStatisticsProducts() override { cublasDestroy(blas_); }
  DeviceStatisticsProducts(const DeviceStatisticsProducts&) = delete;
  DeviceStatisticsProducts& operator=(const DeviceStatisticsProducts&) = delete;

  void fold(ConstMatrixView chunk, std::span<const float> delta, double keep, double add,
            quantizers::StatisticsSums& sums) override {
    const std::int64_t d = chunk.cols, m = chunk.rows;
    DeviceSums& device = sums_of(sums, d, !delta.empty());
    const std::size_t count = static_cast<std::size_t>(m * d);
    reserve(rows_, count);
    reserve(product_, square(d));
    check_cuda(cudaMemcpy(rows_.data(), chunk.data.data(), count * sizeof(float), cudaMemcpyHostToDevice),
               "input statistics: rows upload");

    // Column-major mapping: the row-major chunk x̂ [m, d] is the column-major d x m matrix A = x̂ᵀ
    // (lda = d), so x̂ᵀx̂ = A·Aᵀ is Ssyrk with OP_N, n = d, k = m. The lower triangle (FILL_MODE_LOWER)
    // puts entry (j >= i) at i*d + j: exactly where the host's row-major upper syrk puts it and where
    // the column-major sums keep (j, i).
    const float one = 1.0f, zero = 0.0f;
    const int n = static_cast<int>(d), k = static_cast<int>(m);
    check_blas(cublasSsyrk(blas_, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, n, k, &one, rows_.data(), n, &zero,
                           product_.data(), n),
               "cublasSsyrk (input statistics)");
    check_cuda(detail::launch_fold_running_average(device.hessian.data(), product_.data(), d, true, keep, add, nullptr),
               "input statistics: Hessian running average");
    if (delta.empty()) return;

    reserve(delta_, count);
    check_cuda(cudaMemcpy(delta_.data(), delta.data(), count * sizeof(float), cudaMemcpyHostToDevice),
               "input statistics: delta upload");
    // C = δᵀx̂ (d x d, column-major, C(i, j) = sum_t δ[t][i] x̂[t][j] at j*d + i, as the host keeps it):
    // with D = δᵀ and A = x̂ᵀ column-major d x m, C = D·Aᵀ, Sgemm(OP_N, OP_T). Same stream as the
    // fold above, so the product buffer is reused only after that kernel has read it.
    check_blas(cublasSgemm(blas_, CUBLAS_OP_N, CUBLAS_OP_T, n, n, k, &one, delta_.data(), n, rows_.data(), n, &zero,
                           product_.data(), n),
               "cublasSgemm (input statistics)");
    check_cuda(detail::launch_fold_running_average(device.cross.data(), product_.data(), d, false, keep, add, nullptr),
               "input statistics: cross-term running average");
  }

  void publish(quantizers::StatisticsSums& sums) override {
    auto* device = dynamic_cast<DeviceSums*>(sums.extra.get());
    if (device == nullptr) return;  // nothing folded yet: the host matrices are the zero sums
    check_cuda(detail::launch_mirror_lower(device->hessian.data(), device->dim, nullptr),
               "input statistics: Hessian mirror");
    device->hessian.download({sums.hessian.data(), square(device->dim)});
    if (device->cross.size() > 0) device->cross.download({sums.cross.data(), square(device->dim)});
  }

 private:
  DeviceSums& sums_of(quantizers::StatisticsSums& sums, std::int64_t d, bool cross) {
    if (!sums.extra) {
      if (sums.hessian.rows() != d || (cross && sums.cross.rows() != d)) {
        fail("input statistics: sums of {} columns given a chunk of {}", sums.hessian.rows(), d);
      }
      sums.extra = std::make_unique<DeviceSums>(d, cross);
    }
    auto* device = dynamic_cast<DeviceSums*>(sums.extra.get());
    if (device == nullptr) fail("input statistics: these sums belong to another device hook");
    if (device->dim != d || (cross && device->cross.size() == 0)) {
      fail("input statistics: device sums of {} columns given a chunk of {}", device->dim, d);
    }
    return *device;
  }

  cublasHandle_t blas_ = nullptr;
  DeviceArray<float> rows_, delta_, product_;  // one chunk's x̂ and δ, and its d x d FP32 product
};

}  // namespace

std::unique_ptr<quantizers::StatisticsProducts> make_device_statistics_products() {
  return std::make_unique<DeviceStatisticsProducts>();
}

}  // namespace microscale::cuda
