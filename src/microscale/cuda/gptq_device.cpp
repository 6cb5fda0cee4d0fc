#include "microscale/cuda/gptq_device.hpp"

#include <cublas_v2.h>
#include <cusolverDn.h>

#include <cstdint>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/core/log.hpp"
#include "microscale/cuda/fp4_linear.hpp"

namespace microscale::cuda {
namespace {

void check_solver(cusolverStatus_t status, const char* what) {
  if (status != CUSOLVER_STATUS_SUCCESS) fail("{} failed (cuSOLVER status {})", what, static_cast<int>(status));
}
void check_blas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("{} failed: {}", what, cublasGetStatusString(status));
}

std::size_t square(std::int64_t d) { return static_cast<std::size_t>(d) * static_cast<std::size_t>(d); }

class DeviceLinearAlgebra final : public quantizers::GptqLinearAlgebra {
 public:
  DeviceLinearAlgebra() {
    const char* why = nullptr;
    if (device_count(&why) == 0) fail("--device cuda: no usable CUDA device ({})", why ? why : "none found");
    check_solver(cusolverDnCreate(&solver_), "cusolverDnCreate");
    check_blas(cublasCreate(&blas_), "cublasCreate");
  }
  ~DeviceLinearAlgebra() override {
    if (blas_ != nullptr) cublasDestroy(blas_);
    if (solver_ != nullptr) cusolverDnDestroy(solver_);
  }
  DeviceLinearAlgebra(const DeviceLinearAlgebra&) = delete;
  DeviceLinearAlgebra& operator=(const DeviceLinearAlgebra&) = delete;

  quantizers::detail::DampedCholesky factor_inverse(double* a, std::int64_t d, double damp,
                                                    std::string_view layer) override {
    if (d == 0) return quantizers::detail::damped_cholesky_upper(a, d, damp, layer);
    DeviceArray<double> matrix(square(d));
    DeviceArray<int> info(1);
    const int n = static_cast<int>(d);
    // One damping attempt: upload, factor on the device. On failure the host needs its matrix back
    // untouched below the diagonal (potrf only writes the upper triangle), so nothing is downloaded;
    // on success the factor stays on the device for the inverse.
    const quantizers::detail::UpperCholesky potrf = [&](double* host, std::int64_t) -> std::int64_t {
      matrix.upload({host, square(d)});
      int lwork = 0;
      check_solver(cusolverDnDpotrf_bufferSize(solver_, CUBLAS_FILL_MODE_UPPER, n, matrix.data(), n, &lwork),
                   "cusolverDnDpotrf_bufferSize");
      DeviceArray<double> workspace(static_cast<std::size_t>(std::max(lwork, 1)));
      check_solver(cusolverDnDpotrf(solver_, CUBLAS_FILL_MODE_UPPER, n, matrix.data(), n, workspace.data(), lwork,
                                    info.data()),
                   "cusolverDnDpotrf");
      return read_info(info);
    };
    quantizers::detail::DampedCholesky result = quantizers::detail::damped_cholesky_upper(a, d, damp, layer, potrf);
    if (!result.ok) return result;

    std::size_t device_bytes = 0, host_bytes = 0;
    check_solver(cusolverDnXtrtri_bufferSize(solver_, CUBLAS_FILL_MODE_UPPER, CUBLAS_DIAG_NON_UNIT, d, CUDA_R_64F,
                                             matrix.data(), d, &device_bytes, &host_bytes),
                 "cusolverDnXtrtri_bufferSize");
    DeviceArray<std::uint8_t> device_buffer(std::max<std::size_t>(device_bytes, 1));
    std::vector<std::uint8_t> host_buffer(std::max<std::size_t>(host_bytes, 1));
    check_solver(cusolverDnXtrtri(solver_, CUBLAS_FILL_MODE_UPPER, CUBLAS_DIAG_NON_UNIT, d, CUDA_R_64F, matrix.data(),
                                  d, device_buffer.data(), device_bytes, host_buffer.data(), host_bytes, info.data()),
                 "cusolverDnXtrtri");
    if (const std::int64_t singular = read_info(info); singular != 0) {
      log::warn("{}: inverting the Cholesky factor failed (singular at column {}); no error compensation", layer,
                singular);
      result.ok = false;
      return result;
    }
    matrix.download({a, square(d)});
    return result;
  }

  void start(std::span<double> work, std::int64_t rows, std::int64_t d, const double* u) override {
    host_work_ = work.data();
    rows_ = rows;
    d_ = d;
    work_ = DeviceArray<double>(static_cast<std::size_t>(rows * d));
    work_.upload({work.data(), static_cast<std::size_t>(rows * d)});
    u_ = DeviceArray<double>(square(d));
    u_.upload({u, square(d)});
  }

  void sync_block(std::int64_t begin, std::int64_t end, std::span<const std::int64_t> extra_columns) override {
    if (rows_ == 0) return;
    copy_columns_to_host(begin, end - begin);
    for (const std::int64_t column : extra_columns) copy_columns_to_host(column, 1);
  }

  void update_trailing(const double* errors, std::int64_t ld, std::int64_t begin, std::int64_t end) override {
    const std::int64_t width = end - begin;
    if (end >= d_ || rows_ == 0 || width == 0) return;
    if (errors_.size() < static_cast<std::size_t>(rows_ * ld)) errors_ = DeviceArray<double>(static_cast<std::size_t>(rows_ * ld));
    check_cuda(cudaMemcpy2D(errors_.data(), static_cast<std::size_t>(ld) * sizeof(double), errors,
                            static_cast<std::size_t>(ld) * sizeof(double), static_cast<std::size_t>(width) * sizeof(double),
                            static_cast<std::size_t>(rows_), cudaMemcpyHostToDevice),
               "GPTQ errors upload");
    // Row-major work[:, end:] -= E · U[begin:end, end:], as column-major: Wᵀ -= U_subᵀ · Eᵀ.
    const double minus_one = -1.0, one = 1.0;
    check_blas(cublasDgemm(blas_, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(d_ - end), static_cast<int>(rows_),
                           static_cast<int>(width), &minus_one, u_.data() + begin * d_ + end, static_cast<int>(d_),
                           errors_.data(), static_cast<int>(ld), &one, work_.data() + end, static_cast<int>(d_)),
               "cublasDgemm (GPTQ lazy update)");
  }

 private:
  static std::int64_t read_info(const DeviceArray<int>& info) {
    int value = 0;
    info.download({&value, 1});
    return value;
  }
  void copy_columns_to_host(std::int64_t first, std::int64_t count) {
    const std::size_t pitch = static_cast<std::size_t>(d_) * sizeof(double);
    check_cuda(cudaMemcpy2D(host_work_ + first, pitch, work_.data() + first, pitch,
                            static_cast<std::size_t>(count) * sizeof(double), static_cast<std::size_t>(rows_),
                            cudaMemcpyDeviceToHost),
               "GPTQ working weights download");
  }

  cusolverDnHandle_t solver_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  double* host_work_ = nullptr;
  std::int64_t rows_ = 0, d_ = 0;
  DeviceArray<double> work_, u_, errors_;
};

}  // namespace

std::unique_ptr<quantizers::GptqLinearAlgebra> make_device_linear_algebra() {
  return std::make_unique<DeviceLinearAlgebra>();
}

}  // namespace microscale::cuda
