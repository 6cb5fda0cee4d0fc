#pragma once
// One linear layer of the GPU runtime, in whichever form its checkpoint allows: BF16 weights (cuBLAS),
// or MXFP4/NVFP4 codes (the W4A16 GEMV, with the checkpoint's input rotation fused), plus an optional
// FP32 bias. INT4 checkpoints arrive here already dequantized to BF16 by the loader.
#include <cstdint>
#include <initializer_list>
#include <optional>

#include <cuda_runtime_api.h>

#include "microscale/cuda/fp4_linear.hpp"

namespace microscale::cuda {

struct GpuLinear {
  std::int64_t out = 0;
  std::int64_t in = 0;
  DeviceArray<bf16_bits> weight;            // BF16 [out, in]; empty when fp4 is set
  std::optional<Fp4Weight> fp4;             // the 4-bit codes, as the checkpoint stores them
  std::optional<DeviceRotation> rotation;   // inputs are rotated by this (x * R) before the product
  DeviceArray<float> bias;                  // empty, or [out]
  std::size_t bytes() const;
};

// Linears that read the same input (q/k/v, gate/up) stacked into one [sum of outs, in], so that one
// GEMV streams all their weights (fewer launches and split-K finishes, and longer matrices run nearer
// to memory bandwidth). Possible when they store their weights the same way: all BF16, or all 4-bit
// of one format in the rows layout with one NVFP4 tensor scale and the same input rotation (stack
// first, then repack with to_mma_layout); biases on all or none. On
// success the parts' device memory is released (they keep their shapes) and the stack is returned;
// otherwise nothing changes and nullopt is returned.
std::optional<GpuLinear> stack_linears(std::initializer_list<GpuLinear*> parts);

// Shared scratch of the linears of one model (one stream): cuBLAS, the GEMV's split-K buffer, a
// rotated copy of the input, and a BF16 copy of a 4-bit weight (or of a slab of it) for the large-batch
// path. Buffers only grow; size them (reserve) before capturing a CUDA graph, since nothing may allocate then.
class LinearContext {
 public:
  Blas blas;
  GemvWorkspace gemv;
  bf16_bits* rotated_input(std::int64_t elements);
  bf16_bits* dequantized_weight(std::int64_t elements);

 private:
  DeviceArray<bf16_bits> rotated_;
  DeviceArray<bf16_bits> dequantized_;
};

// Batches (rows) from which a 4-bit linear is dequantized to BF16 and multiplied by cuBLAS instead of
// the GEMV (docs/benchmarks.md: at batch 64 the GEMV re-reads the weights 4 times and loses).
inline constexpr std::int64_t kDequantizeFromRows = 64;
// Whether that path decodes a 4-bit weight in slabs of default_slab_rows rows, each multiplied while
// it is still in L2 (dequantize_gemm_bf16), instead of whole before one GEMM. Off until both are timed
// on the H100 (fp4_driver --bench: the `slab deq+cuBLAS` rows and the slab sweep); off, the runtime
// launches exactly what it did before the slabbed path existed.
inline constexpr bool kSlabbedDequantize = false;

// y[rows, out] = BF16((x R) W^T + bias), x [rows, in] BF16 on the device.
void linear_forward(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, bf16_bits* y, LinearContext& ctx,
                    cudaStream_t stream);
// The same with FP32 output and no BF16 rounding (the output head). Bias not supported (heads have none).
void linear_forward_f32(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, float* y, LinearContext& ctx,
                        cudaStream_t stream);

}  // namespace microscale::cuda
