// Memory-bound kernels over activation rows and weights: the online block Hadamard rotation (BF16 in,
// BF16 out), the fused rotate-and-quantize of activations to MXFP4/NVFP4, and the whole-weight
// dequantization to BF16 (for the cuBLAS large-batch path).
//
// Rotation and quantization work on 256-element segments, one warp each, 8 consecutive elements per
// lane (one 16-byte BF16 load). Hadamard blocks (b <= 256) and quantization groups (16 or 32) are
// aligned to segments, so a block is transformed with register butterflies and warp shuffles, and a
// group's absolute maximum needs shuffles among 2 (NVFP4) or 4 (MXFP4) lanes only.
#include <cstdint>

#include <cuda_runtime.h>

#include "microscale/cuda/device_math.cuh"
#include "microscale/cuda/launchers.hpp"

namespace microscale::cuda::detail {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

int grid_for(std::int64_t items_per_warp_work) {
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  const std::int64_t blocks = (items_per_warp_work + kWarps - 1) / kWarps;
  const std::int64_t cap = static_cast<std::int64_t>(sms > 0 ? sms : 1) * 16;
  return static_cast<int>(blocks < cap ? (blocks > 0 ? blocks : 1) : cap);
}

// The (row, 256-element segment) items of this warp.
__device__ ItemCursor warp_segments(std::int64_t cols) {
  return ItemCursor(static_cast<std::int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5),
                    static_cast<std::int64_t>(gridDim.x) * kWarps, (cols + 255) / 256);
}

// Loads lane's 8 values of a segment (zeros past the row end) and rotates them when factors != null.
template <bool ROTATE>
__device__ __forceinline__ void load_segment(const std::uint16_t* x, std::int64_t row, std::int64_t cols,
                                             std::int64_t local, const float* factors, int block, float (&v)[8]) {
  if (local < cols) {
    bf16x8_to_float(__ldcs(reinterpret_cast<const uint4*>(x + row * cols + local)), v);
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) v[i] = 0.0f;
  }
  if constexpr (ROTATE) {
    if (local < cols) {
      const float4 f0 = __ldg(reinterpret_cast<const float4*>(factors + local));
      const float4 f1 = __ldg(reinterpret_cast<const float4*>(factors + local + 4));
      const float f[8] = {f0.x, f0.y, f0.z, f0.w, f1.x, f1.y, f1.z, f1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = __fmul_rn(v[i], f[i]);
    }
    warp_hadamard8(v, block);
  }
}

__global__ void __launch_bounds__(kThreads) hadamard_kernel(const float* factors, int block, const std::uint16_t* x,
                                                            std::uint16_t* y, std::int64_t rows, std::int64_t cols) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  for (ItemCursor at = warp_segments(cols); at.outer < rows; at.advance()) {
    const std::int64_t row = at.outer;
    const std::int64_t local = at.inner * 256 + lane * 8;
    float v[8];
    load_segment<true>(x, row, cols, local, factors, block, v);
    if (local < cols) {
      const uint4 out = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                                   pack_bf16x2(v[6], v[7]));
      __stcs(reinterpret_cast<uint4*>(y + row * cols + local), out);
    }
  }
}

template <int KIND, bool ROTATE>
__global__ void __launch_bounds__(kThreads) rotate_quantize_kernel(const std::uint16_t* x, std::int64_t rows,
                                                                   std::int64_t cols, const float* factors, int block,
                                                                   float global_scale, std::uint8_t* codes,
                                                                   std::uint8_t* scales) {
  constexpr int kGroup = KIND == static_cast<int>(Fp4Kind::mxfp4) ? 32 : 16;
  constexpr int kLanesPerGroup = kGroup / 8;
  const int lane = static_cast<int>(threadIdx.x & 31);
  for (ItemCursor at = warp_segments(cols); at.outer < rows; at.advance()) {
    const std::int64_t row = at.outer;
    const std::int64_t local = at.inner * 256 + lane * 8;
    float v[8];
    load_segment<ROTATE>(x, row, cols, local, factors, block, v);

    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) amax = fmaxf(amax, fabsf(v[i]));
#pragma unroll
    for (int off = 1; off < kLanesPerGroup; off *= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, off));

    std::uint32_t scale_code;
    float scale = 0.0f;    // NVFP4 divides by it; MXFP4 multiplies by `inverse` instead
    float inverse = 0.0f;  // MXFP4: 1/scale, exact (a power of two)
    if constexpr (KIND == static_cast<int>(Fp4Kind::mxfp4)) {
      // OCP rule: exponent floor(log2(amax)) - 2, clamped to E8M0's range; all-zero groups get code 0.
      if (amax > 0.0f) {
        int e = ilogbf(amax) - 2;
        e = e < -127 ? -127 : (e > 127 ? 127 : e);
        scale_code = static_cast<std::uint32_t>(e + 127);
      } else {
        scale_code = 0;
      }
      // 2^(127 - code): exponent field 254 - code, or the subnormal 2^-127 for code 254.
      inverse = scale_code == 254u ? __int_as_float(0x00400000) : __int_as_float(static_cast<int>((254u - scale_code) << 23));
    } else {
      const float wanted = __fmul_rn(__fdiv_rn(amax, 6.0f), global_scale);
      scale_code = e4m3_from_positive_dev(fminf(wanted, 448.0f));
      if (scale_code == 0) scale_code = 0x20u;  // compressed-tensors' FP8 epsilon: a scale is never 0
      scale = __fdiv_rn(e4m3_to_float_dev(scale_code), global_scale);
    }

    std::uint32_t word = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      // The IEEE quotient, as the CPU computes it. For MXFP4 the product with the exact reciprocal of
      // the power-of-two scale is the same correctly rounded value, and far cheaper (ncu: this kernel
      // was bound by its instruction issue, not by memory).
      float q;
      if constexpr (KIND == static_cast<int>(Fp4Kind::mxfp4)) {
        q = __fmul_rn(v[i], inverse);
      } else {
        q = __fdiv_rn(v[i], scale);
      }
      word |= e2m1_code_dev(q) << (4 * i);
    }
    if (local < cols) {
      reinterpret_cast<std::uint32_t*>(codes + row * (cols / 2))[local / 8] = word;
      if (lane % kLanesPerGroup == 0) scales[row * (cols / kGroup) + local / kGroup] = static_cast<std::uint8_t>(scale_code);
    }
  }
}

template <int KIND>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(const std::uint8_t* codes, const std::uint8_t* scales,
                                                              std::int64_t rows, std::int64_t cols,
                                                              std::int64_t padded_cols, float global_scale,
                                                              std::uint16_t* out) {
  constexpr int kGroup = KIND == static_cast<int>(Fp4Kind::mxfp4) ? 32 : 16;
  __shared__ float nv_scales[KIND == 1 ? 256 : 1];  // NVFP4's scale quotients, once per block
  if constexpr (KIND == 1) fill_nvfp4_scale_table(nv_scales, global_scale);
  const std::int64_t per_row = cols / 8;
  const std::int64_t n = rows * per_row;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / per_row;
    const std::int64_t k = (i % per_row) * 8;
    const std::uint32_t word = *reinterpret_cast<const std::uint32_t*>(codes + row * (padded_cols / 2) + k / 2);
    const std::uint32_t code = scales[row * (padded_cols / kGroup) + k / kGroup];
    const float scale = KIND == static_cast<int>(Fp4Kind::mxfp4) ? e8m0_to_float_dev(code) : nv_scales[code];
    float v[8];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float2 f = e2m1_pair_scaled(word >> (4 * q));  // exact: E2M1 values * 2^-14
      v[q] = __fmul_rn(f.x * 16384.0f, scale);
      v[q + 4] = __fmul_rn(f.y * 16384.0f, scale);
    }
    const uint4 o = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                               pack_bf16x2(v[6], v[7]));
    *reinterpret_cast<uint4*>(out + row * cols + k) = o;
  }
}

}  // namespace

cudaError_t launch_hadamard_bf16(const float* factors, int block, const std::uint16_t* x, std::uint16_t* y,
                                 std::int64_t rows, std::int64_t cols, cudaStream_t stream) {
  const std::int64_t items = rows * ((cols + 255) / 256);
  if (items == 0) return cudaSuccess;
  hadamard_kernel<<<grid_for(items), kThreads, 0, stream>>>(factors, block, x, y, rows, cols);
  return cudaGetLastError();
}

cudaError_t launch_rotate_quantize(const std::uint16_t* x, std::int64_t rows, std::int64_t cols, const float* factors,
                                   int block, Fp4Kind kind, float global_scale, std::uint8_t* codes,
                                   std::uint8_t* scales, cudaStream_t stream) {
  const std::int64_t items = rows * ((cols + 255) / 256);
  if (items == 0) return cudaSuccess;
  const int grid = grid_for(items);
  const bool rotate = factors != nullptr;
  if (kind == Fp4Kind::mxfp4) {
    if (rotate) rotate_quantize_kernel<0, true><<<grid, kThreads, 0, stream>>>(x, rows, cols, factors, block, global_scale, codes, scales);
    else rotate_quantize_kernel<0, false><<<grid, kThreads, 0, stream>>>(x, rows, cols, factors, block, global_scale, codes, scales);
  } else {
    if (rotate) rotate_quantize_kernel<1, true><<<grid, kThreads, 0, stream>>>(x, rows, cols, factors, block, global_scale, codes, scales);
    else rotate_quantize_kernel<1, false><<<grid, kThreads, 0, stream>>>(x, rows, cols, factors, block, global_scale, codes, scales);
  }
  return cudaGetLastError();
}

cudaError_t launch_dequantize_bf16(Fp4Kind kind, const std::uint8_t* codes, const std::uint8_t* scales,
                                   std::int64_t row0, std::int64_t rows, std::int64_t cols, std::int64_t padded_cols,
                                   float global_scale, std::uint16_t* out, cudaStream_t stream) {
  const std::int64_t n = rows * (cols / 8);
  if (n == 0) return cudaSuccess;
  // Rows are independent in this layout: a row range is the same kernel on the range's first row.
  codes += row0 * (padded_cols / 2);
  scales += row0 * (padded_cols / (kind == Fp4Kind::mxfp4 ? 32 : 16));
  const int blocks = grid_for((n + 31) / 32);
  if (kind == Fp4Kind::mxfp4) {
    dequantize_kernel<0><<<blocks, kThreads, 0, stream>>>(codes, scales, rows, cols, padded_cols, global_scale, out);
  } else {
    dequantize_kernel<1><<<blocks, kThreads, 0, stream>>>(codes, scales, rows, cols, padded_cols, global_scale, out);
  }
  return cudaGetLastError();
}

}  // namespace microscale::cuda::detail
