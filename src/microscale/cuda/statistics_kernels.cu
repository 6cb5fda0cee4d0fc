// The element-wise halves of the input statistics on the device (statistics_device.cpp does the
// products with cuBLAS): folding a chunk's FP32 product into the FP64 running sums, and mirroring
// the Hessian's lower triangle into its upper one before it is downloaded.
#include <cstdint>

#include <cuda_runtime.h>

#include "microscale/cuda/statistics_launchers.hpp"

namespace microscale::cuda::detail {
namespace {

constexpr int kThreads = 256;

// One column per blockIdx.y (striding on when d exceeds the grid), its rows over x: each warp
// walks a contiguous stretch of a column-major column, so loads and stores coalesce.
dim3 grid_for(std::int64_t d) {
  const std::int64_t row_blocks = (d + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned>(row_blocks), static_cast<unsigned>(d < 65535 ? d : 65535));
}

__global__ void fold_kernel(double* sums, const float* product, std::int64_t d, bool lower, double keep, double add) {
  for (std::int64_t col = blockIdx.y; col < d; col += gridDim.y) {
    double* s = sums + col * d;
    const float* p = product + col * d;
    for (std::int64_t row = (lower ? col : 0) + blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
         row < d; row += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
      s[row] = s[row] * keep + add * static_cast<double>(p[row]);
    }
  }
}

__global__ void mirror_kernel(double* m, std::int64_t d) {
  for (std::int64_t col = blockIdx.y; col < d; col += gridDim.y) {
    for (std::int64_t row = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; row < col;
         row += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
      m[col * d + row] = m[row * d + col];  // reads the lower triangle only, writes the upper only
    }
  }
}

}  // namespace

cudaError_t launch_fold_running_average(double* sums, const float* product, std::int64_t d, bool lower, double keep,
                                        double add, cudaStream_t stream) {
  if (d <= 0) return cudaSuccess;
  fold_kernel<<<grid_for(d), kThreads, 0, stream>>>(sums, product, d, lower, keep, add);
  return cudaGetLastError();
}

cudaError_t launch_mirror_lower(double* m, std::int64_t d, cudaStream_t stream) {
  if (d <= 1) return cudaSuccess;
  mirror_kernel<<<grid_for(d), kThreads, 0, stream>>>(m, d);
  return cudaGetLastError();
}

}  // namespace microscale::cuda::detail
