#pragma once
// Device helpers shared by the kernels: scale codecs ported bit-for-bit from formats/codecs.cpp, the
// E2M1 nibble decoder, and the warp-level Hadamard transform of 8 values per lane.
// Every FP32 operation whose rounding the CPU reference fixes is written with an explicit _rn
// intrinsic, so nvcc cannot contract it into an FMA and change the bits.
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "microscale/cuda/item_cursor.hpp"

namespace microscale::cuda::detail {

// ---- scale codecs (same results as formats::e8m0_to_float / e4m3_to_float / e4m3_from_float) ----
__device__ __forceinline__ float e8m0_to_float_dev(std::uint32_t code) {
  if (code == 0xFFu) return __int_as_float(0x7FC00000);
  if (code == 0u) return __int_as_float(0x00400000);  // 2^-127, an FP32 subnormal
  return __int_as_float(static_cast<int>(code << 23));
}

__device__ __forceinline__ float e4m3_to_float_dev(std::uint32_t code) {
  const std::uint32_t magnitude = code & 0x7Fu;
  if (magnitude == 0x7Fu) return __int_as_float(0x7FC00000);
  const std::uint32_t exponent = magnitude >> 3;
  const std::uint32_t mantissa = magnitude & 0x7u;
  const float value = exponent == 0 ? static_cast<float>(mantissa) * 0x1p-9f
                                    : __int_as_float(static_cast<int>(((exponent - 7u + 127u) << 23) | (mantissa << 20)));
  return (code & 0x80u) ? -value : value;
}

// Positive finite x only (scales are amax-based), saturating at 448, round to nearest even.
__device__ __forceinline__ std::uint32_t e4m3_from_positive_dev(float a) {
  if (!(a == a)) return 0x7Fu;
  if (a >= 448.0f) return 0x7Eu;
  if (a < 0.015625f) {
    const float steps = __fmul_rn(a, 512.0f);
    const auto lower = static_cast<std::uint32_t>(steps);
    const float frac = __fsub_rn(steps, static_cast<float>(lower));
    return lower + ((frac > 0.5f || (frac == 0.5f && (lower & 1u))) ? 1u : 0u);
  }
  const std::uint32_t u = static_cast<std::uint32_t>(__float_as_int(a));
  const std::uint32_t r = (u + ((1u << 19) - 1u) + ((u >> 20) & 1u)) >> 20 << 20;
  const std::uint32_t exponent = (r >> 23) - 127u + 7u;
  const std::uint32_t code = (exponent << 3) | ((r >> 20) & 0x7u);
  return code < 0x7Eu ? code : 0x7Eu;
}

// NVFP4's 256 possible group scales E4M3(code) / global_scale into a block's shared table, each
// divided once per block instead of once per weight (the dequantize kernels), and optionally their
// correctly rounded reciprocals (rotate-and-quantize's quotient_rn); the block must call it whole (it
// ends with a barrier).
__device__ __forceinline__ void fill_nvfp4_scale_table(float* table, float global_scale,
                                                       float* reciprocals = nullptr) {  // [256] each
  for (int i = static_cast<int>(threadIdx.x); i < 256; i += static_cast<int>(blockDim.x)) {
    table[i] = __fdiv_rn(e4m3_to_float_dev(static_cast<std::uint32_t>(i)), global_scale);
    if (reciprocals != nullptr) reciprocals[i] = __frcp_rn(table[i]);
  }
  __syncthreads();
}

// Split-K finish of the W4A16 kernels, called by a whole warp after it added its partial sums of
// rows [row0, row0 + group_rows) for every activation row into `partial` (FP32, [batch, rows]): the
// last of `splits` arrivals on `counter` rounds those sums to BF16 into y and leaves the sums and the
// counter zeroed for the next call, so no second kernel runs. The fence orders this warp's atomics
// before its arrival; the reader's fence orders the arrivals before its reads.
__device__ __forceinline__ void finish_split_k_rows(float* partial, std::uint16_t* y, unsigned* counter,
                                                    int splits, std::int64_t row0, int group_rows, int batch,
                                                    std::int64_t rows) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  __threadfence();
  __syncwarp();
  unsigned previous = 0;
  if (lane == 0) previous = atomicAdd(counter, 1u);
  previous = __shfl_sync(0xFFFFFFFFu, previous, 0);
  if (previous != static_cast<unsigned>(splits - 1)) return;
  __threadfence();
  for (int o = lane; o < group_rows * batch; o += 32) {
    const std::int64_t row = row0 + o % group_rows;
    if (row < rows) {
      const std::int64_t at = static_cast<std::int64_t>(o / group_rows) * rows + row;
      const __nv_bfloat16 b = __float2bfloat16_rn(__ldcg(partial + at));
      y[at] = *reinterpret_cast<const std::uint16_t*>(&b);
      __stcg(partial + at, 0.0f);
    }
  }
  if (lane == 0) *counter = 0;
}

// Two E2M1 nibbles at bit 0 and bit 16 of `w` as an FP16 pair scaled by 2^-14: the 3 magnitude bits
// become FP16 exponent/mantissa bits [11:9] (E2M1's subnormal 0.5 lands on FP16's subnormal range,
// so no special case), the sign goes to bit 15. Three integer operations for two weights; the
// caller multiplies by 2^14 once per group (folded into the group scale).
__device__ __forceinline__ float2 e2m1_pair_scaled(std::uint32_t w) {
  const std::uint32_t bits = ((w << 9) & 0x0E000E00u) | ((w << 12) & 0x80008000u);
  __half2 h;
  *reinterpret_cast<std::uint32_t*>(&h) = bits;
  return __half22float2(h);
}

// ---- the warp-level block Hadamard transform ------------------------------------------------------
// A warp holds 32 E consecutive values of a row, E per lane (lane l has elements E l .. E l + E - 1).
// Computes v <- (v * factor) H_b per block of b (b a power of two in 2..32 E), with exactly the
// operations of rotation::rotate_rows: one rounded multiply by the factor (the caller's), then
// butterflies of strides 1, 2, 4, ... (a + b low, a - b high). Strides below E stay in registers;
// larger strides exchange with lane l ^ (stride / E). All 32 lanes must call it (shuffles), with
// `block` uniform across the warp.
template <int E>
__device__ __forceinline__ void warp_hadamard(float (&v)[E], int block) {
#pragma unroll
  for (int h = 1; h < E; h *= 2) {
    if (h < block) {
#pragma unroll
      for (int i = 0; i < E; ++i) {
        if ((i & h) == 0) {
          const float a = v[i];
          const float b = v[i + h];
          v[i] = __fadd_rn(a, b);
          v[i + h] = __fsub_rn(a, b);
        }
      }
    }
  }
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (int h = E; h < block; h *= 2) {
    const int partner_mask = h / E;
    // The lower lane computes v + other, the upper one other - v: one FMA with a factor of +-1 (the
    // product is exact, so the single rounding gives the same bits as the add or subtract).
    const float sign = (lane & partner_mask) != 0 ? -1.0f : 1.0f;
#pragma unroll
    for (int i = 0; i < E; ++i) {
      const float other = __shfl_xor_sync(0xFFFFFFFFu, v[i], partner_mask);
      v[i] = __fmaf_rn(sign, v[i], other);
    }
  }
}

__device__ __forceinline__ void bf16x8_to_float(const uint4& raw, float (&v)[8]) {
  const std::uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    v[2 * i] = __int_as_float(static_cast<int>(words[i] << 16));
    v[2 * i + 1] = __int_as_float(static_cast<int>(words[i] & 0xFFFF0000u));
  }
}

__device__ __forceinline__ std::uint32_t pack_bf16x2(float lo, float hi) {
  const __nv_bfloat162 p = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const std::uint32_t*>(&p);
}

}  // namespace microscale::cuda::detail
