// Memory-bound kernels over activation rows and weights: the online block Hadamard rotation (BF16 in,
// BF16 out), the fused rotate-and-quantize of activations to MXFP4/NVFP4, and the whole-weight
// dequantization to BF16 (for the cuBLAS large-batch path).
//
// A warp works on a segment of 32 E consecutive elements of a row, E per lane (16-byte BF16 loads).
// Hadamard blocks (b <= 256) are aligned to segments, so a block is transformed with register
// butterflies and warp shuffles. The plain rotation uses E = 8. Rotate-and-quantize uses E = 32: a
// lane then holds a whole MXFP4 group (two NVFP4 groups), so the absolute maximum needs no shuffles,
// and Hadamard 128 needs two shuffle stages instead of four. That kernel is bound by instruction
// issue (ncu: SM issue about 80%, DRAM about 25% with E = 8), so everything per element is counted.
#include <cstdint>

#include <cuda_runtime.h>

#include "microscale/cuda/device_facts.hpp"
#include "microscale/cuda/device_math.cuh"
#include "microscale/cuda/e2m1_encode.hpp"
#include "microscale/cuda/launchers.hpp"

namespace microscale::cuda::detail {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kRotateLaneElements = 8;     // hadamard_kernel
constexpr int kQuantizeLaneElements = 32;  // rotate_quantize_kernel

int grid_for(std::int64_t items_per_warp_work) {
  const std::int64_t blocks = (items_per_warp_work + kWarps - 1) / kWarps;
  const std::int64_t cap = static_cast<std::int64_t>(multiprocessor_count()) * 16;
  return static_cast<int>(blocks < cap ? (blocks > 0 ? blocks : 1) : cap);
}

// Segments (32 lanes of lane_elements values) per row: the launchers size grids by it, the kernels walk it.
__host__ __device__ std::int64_t segments_per_row(std::int64_t cols, int lane_elements) {
  const std::int64_t segment = 32 * lane_elements;
  return (cols + segment - 1) / segment;
}

// The (row, segment) items of this warp.
__device__ ItemCursor warp_segments(std::int64_t cols, int lane_elements) {
  return ItemCursor(static_cast<std::int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5),
                    static_cast<std::int64_t>(gridDim.x) * kWarps, segments_per_row(cols, lane_elements));
}

// Loads lane's E values of a segment starting at column `local` (zeros past the row end; rows are a
// multiple of 8 long).
template <int E>
__device__ __forceinline__ void load_lane(const std::uint16_t* x, std::int64_t row, std::int64_t cols,
                                          std::int64_t local, float (&v)[E]) {
  uint4 raw[E / 8];
#pragma unroll
  for (int j = 0; j < E / 8; ++j) {
    raw[j] = local + 8 * j < cols ? __ldcs(reinterpret_cast<const uint4*>(x + row * cols + local + 8 * j))
                                  : make_uint4(0, 0, 0, 0);
  }
#pragma unroll
  for (int j = 0; j < E / 8; ++j) bf16x8_to_float(raw[j], *reinterpret_cast<float(*)[8]>(v + 8 * j));
}

// The walk of both activation kernels: for each (row, segment) item of this warp, the lane's E values
// from column `local` (zeros past the row end) go to body(row, local, v).
template <int E, typename Body>
__device__ __forceinline__ void for_each_lane_values(const std::uint16_t* x, std::int64_t rows, std::int64_t cols,
                                                     Body&& body) {
  const int lane = static_cast<int>(threadIdx.x & 31);
  for (ItemCursor at = warp_segments(cols, E); at.outer < rows; at.advance()) {
    const std::int64_t local = at.inner * 32 * E + lane * E;
    float v[E];
    load_lane<E>(x, at.outer, cols, local, v);
    body(at.outer, local, v);
  }
}

// v * factor, factor = +-magnitude by bit i of `negative`: the sign-symmetric rounding makes it the
// rounded product with the magnitude, its sign bit flipped (an Inf or zero flips as the product would;
// a NaN's sign is cleared by the butterflies that follow, as every GPU NaN result is canonical).
template <int E>
__device__ __forceinline__ void apply_signed_magnitude(float (&v)[E], std::uint32_t negative, float magnitude) {
#pragma unroll
  for (int i = 0; i < E; ++i) {
    v[i] = __uint_as_float(__float_as_uint(__fmul_rn(v[i], magnitude)) ^ ((negative << (31 - i)) & 0x80000000u));
  }
}

__global__ void __launch_bounds__(kThreads) hadamard_kernel(const float* factors, int block, const std::uint16_t* x,
                                                            std::uint16_t* y, std::int64_t rows, std::int64_t cols) {
  constexpr int E = kRotateLaneElements;
  for_each_lane_values<E>(x, rows, cols, [&](std::int64_t row, std::int64_t local, float (&v)[E]) {
    if (local < cols) {
      const float4 f0 = __ldg(reinterpret_cast<const float4*>(factors + local));
      const float4 f1 = __ldg(reinterpret_cast<const float4*>(factors + local + 4));
      const float f[8] = {f0.x, f0.y, f0.z, f0.w, f1.x, f1.y, f1.z, f1.w};
#pragma unroll
      for (int i = 0; i < E; ++i) v[i] = __fmul_rn(v[i], f[i]);
    }
    warp_hadamard<E>(v, block);
    if (local < cols) {
      const uint4 out = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                                   pack_bf16x2(v[6], v[7]));
      __stcs(reinterpret_cast<uint4*>(y + row * cols + local), out);
    }
  });
}

// MXFP4's shared exponent (OCP rule: floor(log2(amax)) - 2, clamped to E8M0's range; all-zero groups
// get code 0) and the exact reciprocal of the scale, 2^(127 - code): exponent field 254 - code, or the
// subnormal 2^-127 for code 254. Multiplying by it gives the IEEE quotient the CPU computes.
__device__ __forceinline__ std::uint32_t mxfp4_scale_code(float amax, float& inverse) {
  std::uint32_t code = 0;
  if (amax > 0.0f) {
    int e = ilogbf(amax) - 2;
    e = e < -127 ? -127 : (e > 127 ? 127 : e);
    code = static_cast<std::uint32_t>(e + 127);
  }
  inverse = code == 254u ? __int_as_float(0x00400000) : __int_as_float(static_cast<int>((254u - code) << 23));
  return code;
}

// Codes and scale of one group of G values held by this lane. NVFP4 forms its quotients with
// quotient_rn (scale reciprocals from the block's table) where quotient_is_safe allows, else with IEEE
// division; MXFP4 multiplies by the exact reciprocal. Groups with a NaN take the NaN-aware encoder.
template <int KIND, int G>
__device__ __forceinline__ std::uint32_t quantize_group(const float* v, float global_scale, const float* nv_scales,
                                                        const float* nv_reciprocals, std::uint32_t (&words)[G / 8]) {
  float amax = 0.0f;
  bool nan = false;
#pragma unroll
  for (int i = 0; i < G; ++i) {
    amax = fmaxf(amax, fabsf(v[i]));
    nan |= v[i] != v[i];
  }
  std::uint32_t scale_code;
  float q[G];
  if constexpr (KIND == static_cast<int>(Fp4Kind::mxfp4)) {
    float inverse;
    scale_code = mxfp4_scale_code(amax, inverse);
#pragma unroll
    for (int i = 0; i < G; ++i) q[i] = __fmul_rn(v[i], inverse);
  } else {
    constexpr float kSixth = 1.0f / 6.0f;  // RN(1/6)
    const float sixth = quotient_is_safe(amax, 6.0f) ? quotient_rn(amax, 6.0f, kSixth) : __fdiv_rn(amax, 6.0f);
    scale_code = e4m3_from_positive_dev(fminf(__fmul_rn(sixth, global_scale), 448.0f));
    if (scale_code == 0) scale_code = 0x20u;  // compressed-tensors' FP8 epsilon: a scale is never 0
    const float scale = nv_scales[scale_code];
    if (quotient_is_safe(amax, scale) && !nan) {
      const float reciprocal = nv_reciprocals[scale_code];
#pragma unroll
      for (int i = 0; i < G; ++i) q[i] = quotient_rn(v[i], scale, reciprocal);
    } else {
#pragma unroll
      for (int i = 0; i < G; ++i) q[i] = __fdiv_rn(v[i], scale);
    }
  }
#pragma unroll
  for (int w = 0; w < G / 8; ++w) {
    const float(&part)[8] = *reinterpret_cast<const float(*)[8]>(q + 8 * w);
    words[w] = nan ? e2m1_word_with_nan(part) : e2m1_word(part);
  }
  return scale_code;
}

template <int KIND, bool ROTATE>
__global__ void __launch_bounds__(kThreads) rotate_quantize_kernel(const std::uint16_t* x, std::int64_t rows,
                                                                   std::int64_t cols, const std::uint32_t* negative,
                                                                   float magnitude, int block, float global_scale,
                                                                   std::uint8_t* codes, std::uint8_t* scales) {
  constexpr bool kMx = KIND == static_cast<int>(Fp4Kind::mxfp4);
  constexpr int kGroup = kMx ? 32 : 16;
  constexpr int E = kQuantizeLaneElements;
  __shared__ float nv_scales[kMx ? 1 : 256];
  __shared__ float nv_reciprocals[kMx ? 1 : 256];
  if constexpr (!kMx) fill_nvfp4_scale_table(nv_scales, global_scale, nv_reciprocals);
  for_each_lane_values<E>(x, rows, cols, [&](std::int64_t row, std::int64_t local, float (&v)[E]) {
    if constexpr (ROTATE) {
      apply_signed_magnitude(v, local < cols ? __ldg(negative + local / E) : 0u, magnitude);
      warp_hadamard<E>(v, block);
    }
#pragma unroll
    for (int g = 0; g < E / kGroup; ++g) {
      const std::int64_t k = local + g * kGroup;
      if (k < cols) {  // rows are a multiple of the group long
        std::uint32_t words[kGroup / 8];
        const std::uint32_t scale_code =
            quantize_group<KIND, kGroup>(v + g * kGroup, global_scale, nv_scales, nv_reciprocals, words);
        auto* out = reinterpret_cast<std::uint32_t*>(codes + row * (cols / 2) + k / 2);
#pragma unroll
        for (int w = 0; w < kGroup / 8; ++w) out[w] = words[w];
        scales[row * (cols / kGroup) + k / kGroup] = static_cast<std::uint8_t>(scale_code);
      }
    }
  });
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
  const std::int64_t items = rows * segments_per_row(cols, kRotateLaneElements);
  if (items == 0) return cudaSuccess;
  hadamard_kernel<<<grid_for(items), kThreads, 0, stream>>>(factors, block, x, y, rows, cols);
  return cudaGetLastError();
}

cudaError_t launch_rotate_quantize(const std::uint16_t* x, std::int64_t rows, std::int64_t cols,
                                   const std::uint32_t* negative, float magnitude, int block, Fp4Kind kind,
                                   float global_scale, std::uint8_t* codes, std::uint8_t* scales,
                                   cudaStream_t stream) {
  const std::int64_t items = rows * segments_per_row(cols, kQuantizeLaneElements);
  if (items == 0) return cudaSuccess;
  const int grid = grid_for(items);
  const bool rotate = negative != nullptr;
  if (kind == Fp4Kind::mxfp4) {
    if (rotate) rotate_quantize_kernel<0, true><<<grid, kThreads, 0, stream>>>(x, rows, cols, negative, magnitude, block, global_scale, codes, scales);
    else rotate_quantize_kernel<0, false><<<grid, kThreads, 0, stream>>>(x, rows, cols, negative, magnitude, block, global_scale, codes, scales);
  } else {
    if (rotate) rotate_quantize_kernel<1, true><<<grid, kThreads, 0, stream>>>(x, rows, cols, negative, magnitude, block, global_scale, codes, scales);
    else rotate_quantize_kernel<1, false><<<grid, kThreads, 0, stream>>>(x, rows, cols, negative, magnitude, block, global_scale, codes, scales);
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
