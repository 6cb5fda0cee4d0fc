#include "microscale/cuda/gpu_linear.hpp"

#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

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

// y = input W^T through cuBLAS (BF16 or FP32 y): the stored BF16 weight, or the 4-bit one decoded into
// the context's scratch, whole or slab by slab (kSlabbedDequantize).
template <typename Out>
void cublas_product(const GpuLinear& lin, const bf16_bits* input, std::int64_t rows, Out* y, LinearContext& ctx,
                    cudaStream_t stream) {
  constexpr bool f32 = std::is_same_v<Out, float>;
  if (lin.fp4) {
    const std::int64_t slab = kSlabbedDequantize ? default_slab_rows(lin.out, lin.in) : 0;
    const std::int64_t elements = slab_scratch_elements(*lin.fp4, slab);
    const std::span<bf16_bits> scratch(ctx.dequantized_weight(elements), static_cast<std::size_t>(elements));
    if constexpr (f32) dequantize_gemm_bf16_f32(*lin.fp4, input, rows, y, ctx.blas, scratch, slab, stream);
    else dequantize_gemm_bf16(*lin.fp4, input, rows, y, ctx.blas, scratch, slab, stream);
  } else if constexpr (f32) {
    ctx.blas.gemm_bf16_f32(input, lin.weight.data(), rows, lin.out, lin.in, y, stream);
  } else {
    ctx.blas.gemm_bf16(input, lin.weight.data(), rows, lin.out, lin.in, y, stream);
  }
}

// Concatenation of device arrays (row-major stacking is appending).
template <typename T>
DeviceArray<T> concatenate(const std::vector<const DeviceArray<T>*>& parts) {
  std::size_t total = 0;
  for (const auto* p : parts) total += p->size();
  DeviceArray<T> out(total);
  std::size_t at = 0;
  for (const auto* p : parts) {
    if (p->size() > 0) {
      check_cuda(cudaMemcpy(out.data() + at, p->data(), p->bytes(), cudaMemcpyDeviceToDevice), "stack linears");
    }
    at += p->size();
  }
  return out;
}

bool same_rotation(const std::optional<DeviceRotation>& a, const std::optional<DeviceRotation>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  if (a->block != b->block || a->cols != b->cols || a->factors.size() != b->factors.size()) return false;
  std::vector<float> fa(a->factors.size()), fb(b->factors.size());
  a->factors.download(fa);
  b->factors.download(fb);
  return std::memcmp(fa.data(), fb.data(), fa.size() * sizeof(float)) == 0;
}

}  // namespace

std::optional<GpuLinear> stack_linears(std::initializer_list<GpuLinear*> parts) {
  const GpuLinear& first = **parts.begin();
  for (const GpuLinear* p : parts) {
    if (p->in != first.in || p->fp4.has_value() != first.fp4.has_value() ||
        (p->bias.size() > 0) != (first.bias.size() > 0) || !same_rotation(p->rotation, first.rotation)) {
      return std::nullopt;
    }
    if (p->fp4 && (p->fp4->layout != Fp4Layout::rows || p->fp4->format != first.fp4->format || p->fp4->padded_cols != first.fp4->padded_cols ||
                   p->fp4->global_scale != first.fp4->global_scale)) {
      return std::nullopt;
    }
  }
  GpuLinear stack;
  stack.in = first.in;
  for (const GpuLinear* p : parts) stack.out += p->out;
  if (first.fp4) {
    Fp4Weight w;
    w.format = first.fp4->format;
    w.rows = stack.out;
    w.cols = first.fp4->cols;
    w.padded_cols = first.fp4->padded_cols;
    w.global_scale = first.fp4->global_scale;
    std::vector<const DeviceArray<std::uint8_t>*> codes, scales;
    for (const GpuLinear* p : parts) {
      codes.push_back(&p->fp4->codes);
      scales.push_back(&p->fp4->scales);
    }
    w.codes = concatenate(codes);
    w.scales = concatenate(scales);
    stack.fp4 = std::move(w);
  } else {
    std::vector<const DeviceArray<bf16_bits>*> weights;
    for (const GpuLinear* p : parts) weights.push_back(&p->weight);
    stack.weight = concatenate(weights);
  }
  if (first.bias.size() > 0) {
    std::vector<const DeviceArray<float>*> biases;
    for (const GpuLinear* p : parts) biases.push_back(&p->bias);
    stack.bias = concatenate(biases);
  }
  // Every part has the same rotation (checked above) and gives its memory up below: the stack takes
  // the first part's whole, whatever members DeviceRotation has.
  stack.rotation = std::move((*parts.begin())->rotation);
  for (GpuLinear* p : parts) {  // shapes stay (the model reads q/k/v widths from them), memory goes
    p->weight = {};
    p->fp4.reset();
    p->bias = {};
    p->rotation.reset();
  }
  return stack;
}

std::size_t GpuLinear::bytes() const { return weight.bytes() + (fp4 ? fp4->bytes() : 0) + bias.bytes(); }

bf16_bits* LinearContext::rotated_input(std::int64_t elements) { return grown(rotated_, elements); }
bf16_bits* LinearContext::dequantized_weight(std::int64_t elements) { return grown(dequantized_, elements); }

void linear_forward(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, bf16_bits* y, LinearContext& ctx,
                    cudaStream_t stream) {
  if (rows <= 0) return;
  if (lin.fp4 && rows < kDequantizeFromRows) {
    gemv_w4a16(*lin.fp4, x, rows, y, lin.rotation ? &*lin.rotation : nullptr, ctx.gemv, stream);
  } else {
    cublas_product(lin, rotated(lin, x, rows, ctx, stream), rows, y, ctx, stream);
  }
  if (lin.bias.size() > 0) check_cuda(detail::launch_add_bias(y, rows, lin.out, lin.bias.data(), stream), "bias");
}

void linear_forward_f32(const GpuLinear& lin, const bf16_bits* x, std::int64_t rows, float* y, LinearContext& ctx,
                        cudaStream_t stream) {
  if (rows <= 0) return;
  if (lin.bias.size() > 0) fail("linear_forward_f32: a linear with a bias is not supported as the output head");
  cublas_product(lin, rotated(lin, x, rows, ctx, stream), rows, y, ctx, stream);
}

}  // namespace microscale::cuda
