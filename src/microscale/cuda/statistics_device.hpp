#pragma once
// GPTQ's and QEP's input statistics on the GPU (quantize --device cuda): each chunk's FP32 products
// x̂ᵀx̂ (cuBLAS Ssyrk) and x̂ᵀδ (cuBLAS Sgemm) are folded into FP64 running sums that stay on the
// device until InputStatistics reads them, so a chunk costs one upload of its rows. The host path's
// arithmetic, in another summation order: results agree to FP32 rounding of the products.
#include <memory>

#include "microscale/quantizers/statistics_products.hpp"

namespace microscale::cuda {

// One cuBLAS handle and one set of scratch buffers (grown as needed) for every InputStatistics it
// serves, one after another (not from several threads at once). Throws microscale::Error when no
// CUDA device is usable.
std::unique_ptr<quantizers::StatisticsProducts> make_device_statistics_products();

}  // namespace microscale::cuda
