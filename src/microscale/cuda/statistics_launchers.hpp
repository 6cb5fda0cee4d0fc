#pragma once
// Launchers of the input-statistics kernels (statistics_kernels.cu), internal to the cuda module:
// plain pointers in, cudaError_t out, like launchers.hpp. Matrices are column-major d x d.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace microscale::cuda::detail {

// sums <- keep * sums + add * double(product), over the lower triangle (row >= column) when `lower`,
// else over every entry; the other entries of `sums` are left alone.
cudaError_t launch_fold_running_average(double* sums, const float* product, std::int64_t d, bool lower, double keep,
                                        double add, cudaStream_t stream);

// m(r, c) = m(c, r) for r < c: the strict upper triangle copied from the lower one.
cudaError_t launch_mirror_lower(double* m, std::int64_t d, cudaStream_t stream);

}  // namespace microscale::cuda::detail
