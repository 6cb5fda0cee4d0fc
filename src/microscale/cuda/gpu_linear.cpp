#include "microscale/cuda/gpu_linear.hpp"

#include "microscale/core/error.hpp"
#include "microscale/cuda/transformer_launchers.hpp"

namespace microscale::cuda {
namespace {

template <typename T>
T* grown(DeviceArray<T>& buffer, std::int64_t elements) {
  if (buffer.size() < static_cast<std::size_t>(elements)) buffer = DeviceArray<T>(static_cast<std::size_t>(elements));
  return buffer.data();
}

// x, or x R in the context's scratch when the linear rotates its inputs (separate Hadamard kernel:
// the paths below that reach cuBLAS cannot fuse it).
const bf16_bits* rotated(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, LinearContext& ctx,
                         cudaStream_t stream) {
  if (!lin.rotation) return x;
  bf16_bits* xr = ctx.rotated_input(rows * lin.in);
  hadamard_bf16(*lin.rotation, x, xr, rows, lin.in, stream);
  return xr;
}

// The BF16 weight: the stored one, or the 4-bit one decoded into the context's scratch.
const bf16_bits* bf16_weight(const GpuLinear& lin, LinearContext& ctx, cudaStream_t stream) {
  if (!lin.fp4) return lin.weight.data();
  bf16_bits* w = ctx.dequantized_weight(lin.out * lin.in);
  dequantize_bf16(*lin.fp4, w, stream);
  return w;
}

}  // namespace

std::size_t GpuLinear::bytes() const { return weight.bytes() + (fp4 ? fp4->bytes() : 0) + bias.bytes(); }

bf16_bits* LinearContext::rotated_input(std::int64_t elements) { return grown(rotated_, elements); }
bf16_bits* LinearContext::dequantized_weight(std::int64_t elements) { return grown(dequantized_, elements); }

void linear_forward(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, bf16_bits* y, LinearContext& ctx,
                    cudaStream_t stream) {
  if (rows <= 0) return;
  if (lin.fp4 && rows < kDequantizeFromRows) {
    gemv_w4a16(*lin.fp4, x, rows, y, lin.rotation ? &*lin.rotation : nullptr, ctx.gemv, stream);
  } else {
    const bf16_bits* input = rotated(lin, x, rows, ctx, stream);
    ctx.blas.gemm_bf16(input, bf16_weight(lin, ctx, stream), rows, lin.out, lin.in, y, stream);
  }
  if (lin.bias.size() > 0) check_cuda(detail::launch_add_bias(y, rows, lin.out, lin.bias.data(), stream), "bias");
}

void linear_forward_f32(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, float* y, LinearContext& ctx,
                        cudaStream_t stream) {
  if (rows <= 0) return;
  if (lin.bias.size() > 0) fail("linear_forward_f32: a linear with a bias is not supported as the output head");
  const bf16_bits* input = rotated(lin, x, rows, ctx, stream);
  ctx.blas.gemm_bf16_f32(input, bf16_weight(lin, ctx, stream), rows, lin.out, lin.in, y, stream);
}

}  // namespace microscale::cuda
