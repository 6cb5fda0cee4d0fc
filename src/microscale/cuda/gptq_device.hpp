#pragma once
// GPTQ's dense linear algebra on the GPU (quantize --device cuda): the damped Cholesky factorisation
// (cuSOLVER dpotrf, with the host's damping policy) and triangular inverse (cuSOLVER Xtrtri) of the
// Hessian, and the lazy-batch updates of the working weights (cuBLAS dgemm), all in FP64 like the
// host path. The working weights live on the device; only the columns the host's column loop needs
// travel (the current block, and the later columns of groups whose scale is chosen in this block).
#include <memory>

#include "microscale/quantizers/gptq_linear_algebra.hpp"

namespace microscale::cuda {

// Throws microscale::Error when no CUDA device is usable.
std::unique_ptr<quantizers::GptqLinearAlgebra> make_device_linear_algebra();

}  // namespace microscale::cuda
