// Memory-bound kernels over activation rows and weights: the online block Hadamard rotation (BF16 in,
// BF16 out), the fused rotate-and-quantize of activations to MXFP4/NVFP4, and the whole-weight
// dequantization to BF16 (for the cuBLAS large-batch path).
//
// The Hadamard kernel works on 256-element segments, one warp each, 8 consecutive elements per lane
// (one 16-byte BF16 load); Hadamard blocks (b <= 256) are aligned to segments, so a block is
// transformed with register butterflies and warp shuffles. Rotate-and-quantize uses 1024-element
// items with 32 elements per lane (see namespace rq below).
#include <cstdint>

#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "microscale/cuda/device_math.cuh"
#include "microscale/cuda/launchers.hpp"
#include "microscale/formats/e2m1_thresholds.hpp"

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
  const std::int64_t segments = (cols + 255) / 256;
  const std::int64_t items = rows * segments;
  for (std::int64_t item = static_cast<std::int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); item < items;
       item += static_cast<std::int64_t>(gridDim.x) * kWarps) {
    const std::int64_t row = item / segments;
    const std::int64_t local = (item % segments) * 256 + lane * 8;
    float v[8];
    load_segment<true>(x, row, cols, local, factors, block, v);
    if (local < cols) {
      const uint4 out = make_uint4(pack_bf16x2(v[0], v[1]), pack_bf16x2(v[2], v[3]), pack_bf16x2(v[4], v[5]),
                                   pack_bf16x2(v[6], v[7]));
      __stcs(reinterpret_cast<uint4*>(y + row * cols + local), out);
    }
  }
}

// ---- rotate-and-quantize ----------------------------------------------------------------------------
// A warp takes 1024 consecutive columns of a row per item, 32 contiguous per lane. Per item that
// amortises the index math and the scale work over 4x the elements of a 256-column segment, a lane
// owns whole quantization groups (no amax shuffles), and Hadamard strides below 32 stay in registers.
// Items stream through a per-warp ring of shared memory filled by cp.async with coalesced 16-byte
// copies, kStages - 1 items ahead of the one being computed, so loads stay in flight without holding
// registers; each lane then reads its own 64 bytes from the ring.
//
// The codes come from comparisons only (formats/e2m1_thresholds.hpp): the seven decision thresholds
// of a group are per scale, not per element. MXFP4's are midpoint * 2^e; NVFP4's depend on the E4M3
// code and the global scale only, so each block tabulates them once for all 128 codes. Groups for
// which that reasoning does not hold (a NaN or inf in the group; an NVFP4 scale that under- or
// overflowed to 0 or inf) take the previous per-element path: the same IEEE quotient as the CPU.
namespace rq {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 3;
constexpr int kItemCols = 1024;
constexpr int kUnits = kItemCols * 2 / 16;  // 16-byte units of one item
constexpr int kCodes = 128;                 // NVFP4 threshold table: one row per E4M3 code
namespace et = formats::e2m1_thresholds;

// Swizzled slot of 16-byte unit u of an item. The copies write units 32j + lane, the reads take
// units 4 lane + k; XOR-ing the unit's bank quad (u & 7) with bits 3..5 of u gives 8 distinct quads
// for every 8 consecutive lanes in both patterns, so neither side has bank conflicts.
__device__ __forceinline__ int swizzle(int u) { return u ^ ((u >> 3) & 7); }

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  const auto s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  // src_bytes 0 fills zeros (columns past the row end) without reading.
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Comparison results as all-ones / zero masks: seven of them and the sign sum with 3-input adds.
__device__ __forceinline__ std::uint32_t mask_gt(float a, float b) {
  std::uint32_t r;
  asm("set.gt.u32.f32 %0, %1, %2;" : "=r"(r) : "f"(a), "f"(b));
  return r;
}
__device__ __forceinline__ std::uint32_t mask_ge(float a, float b) {
  std::uint32_t r;
  asm("set.ge.u32.f32 %0, %1, %2;" : "=r"(r) : "f"(a), "f"(b));
  return r;
}

// max that propagates NaN (sm_80+): a group's maximum is NaN exactly when the group holds a NaN, so
// one comparison per group routes it to the exact path.
__device__ __forceinline__ float fmax_nan(float a, float b) {
  float d;
  asm("max.NaN.f32 %0, %1, %2;" : "=f"(d) : "f"(a), "f"(b));
  return d;
}

// E2M1 codes of 8 values (not NaN) under thresholds t, element i in nibble i. Each nibble is
// -(sum of masks) with the sign weighted -8; accumulating the negated nibbles in base 16 (mod 2^32)
// and negating once gives the word: a compare per threshold, about 2 adds and a shift per element.
__device__ __forceinline__ std::uint32_t encode8(const float* v, const float (&t)[et::kCount]) {
  std::uint32_t acc = 0;
#pragma unroll
  for (int i = 7; i >= 0; --i) {
    const float a = fabsf(v[i]);
    const auto sign = static_cast<std::uint32_t>(__float_as_int(v[i]) >> 31);  // all ones for negative, -0 too
    acc = acc * 16u + mask_gt(a, t[0]) + mask_ge(a, t[1]) + mask_gt(a, t[2]) + mask_ge(a, t[3]) + mask_gt(a, t[4]) +
          mask_ge(a, t[5]) + mask_gt(a, t[6]) + sign * 8u;
  }
  return 0u - acc;
}

// E4M3 codes of min(w, 448) for two non-negative values (lo in bits 0..7, hi in 8..15), round to
// nearest even, by the sm_89+ conversion cvt.rn.satfinite.e4m3x2.f32. For non-negative non-NaN input
// this is the formats module's e4m3_from_float: same RNE on the 3-bit significand, subnormal codes
// (steps of 2^-9) rounded RNE too, satfinite clamping everything above 448 (including inf) to 0x7E.
// A zero code becomes 0x20 as in nvfp4_absmax_code (a scale is never 0).
__device__ __forceinline__ std::uint32_t e4m3_codes(float lo, float hi) {
  const std::uint32_t pair =
      __nv_cvt_float2_to_fp8x2(make_float2(fminf(lo, 448.0f), fminf(hi, 448.0f)), __NV_SATFINITE, __NV_E4M3);
  const std::uint32_t c0 = pair & 0xFFu, c1 = pair >> 8;
  return (c0 == 0 ? 0x20u : c0) | ((c1 == 0 ? 0x20u : c1) << 8);
}

// The previous per-element path for one group of N values at v: NaN-ignoring amax, the scale as
// the CPU computes it, the IEEE quotient, e2m1_code_dev. Writes N / 8 words; returns the scale code.
template <int KIND, int N>
__device__ __forceinline__ std::uint32_t quantize_group_exact(const float* v, float global_scale, std::uint32_t* words) {
  float amax = 0.0f;
#pragma unroll
  for (int i = 0; i < N; ++i) amax = fmaxf(amax, fabsf(v[i]));
  std::uint32_t scale_code;
  float scale, inverse = 0.0f;
  if constexpr (KIND == static_cast<int>(Fp4Kind::mxfp4)) {
    if (amax > 0.0f) {
      int e = ilogbf(amax) - 2;
      e = e < -127 ? -127 : (e > 127 ? 127 : e);
      scale_code = static_cast<std::uint32_t>(e + 127);
    } else {
      scale_code = 0;
    }
    scale = e8m0_to_float_dev(scale_code);
    inverse = scale_code == 254u ? __int_as_float(0x00400000) : __int_as_float(static_cast<int>((254u - scale_code) << 23));
  } else {
    scale_code = e4m3_codes(__fmul_rn(__fdiv_rn(amax, 6.0f), global_scale), 0.0f) & 0xFFu;
    scale = __fdiv_rn(e4m3_to_float_dev(scale_code), global_scale);
  }
#pragma unroll
  for (int w = 0; w < N / 8; ++w) {
    std::uint32_t word = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float x = v[8 * w + i];
      const float q = KIND == static_cast<int>(Fp4Kind::mxfp4) ? __fmul_rn(x, inverse) : __fdiv_rn(x, scale);
      word |= e2m1_code_dev(q) << (4 * i);
    }
    words[w] = word;
  }
  return scale_code;
}

template <int KIND, bool ROTATE>
__global__ void __launch_bounds__(kThreads) rotate_quantize_kernel(const std::uint16_t* x, std::int64_t rows,
                                                                   std::int64_t cols, const float* factors, int block,
                                                                   float global_scale, std::uint8_t* codes,
                                                                   std::uint8_t* scales) {
  constexpr bool kMx = KIND == static_cast<int>(Fp4Kind::mxfp4);
  constexpr int kGroup = kMx ? 32 : 16;
  constexpr int kGroups = 32 / kGroup;  // per lane and item
  __shared__ uint4 ring[kWarps][kStages][kUnits];
  __shared__ float4 table[kMx ? 1 : kCodes][2];  // NVFP4: thresholds 0..6 and the scale, per E4M3 code

  if constexpr (!kMx) {
    // s = e4m3 / global as the CPU computes it; thresholds by directed FP64 -> FP32 rounding of the
    // exact products boundary * s (see e2m1_thresholds.hpp). Code 0 and 0x7F are never looked up.
    for (int code = static_cast<int>(threadIdx.x); code < kCodes; code += kThreads) {
      const float s = __fdiv_rn(e4m3_to_float_dev(static_cast<std::uint32_t>(code)), global_scale);
      float t[et::kCount];
#pragma unroll
      for (int k = 0; k < et::kCount; ++k) {
        const double p = et::boundary(k) * static_cast<double>(s);
        t[k] = et::strict(k) ? __double2float_rd(p) : __double2float_ru(p);
      }
      table[code][0] = make_float4(t[0], t[1], t[2], t[3]);
      table[code][1] = make_float4(t[4], t[5], t[6], s);
    }
    __syncthreads();
  }

  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x & 31);
  const std::int64_t segments = (cols + kItemCols - 1) / kItemCols;
  const std::int64_t items = rows * segments;
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * kWarps + warp;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * kWarps;
  const bool vector_codes = (reinterpret_cast<std::uintptr_t>(codes) % 16 == 0) && (cols % 32 == 0);

  auto issue = [&](std::int64_t item, int stage) {
    const std::int64_t row = item / segments;
    const std::int64_t col0 = (item % segments) * kItemCols;
    const std::uint16_t* src = x + row * cols;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int u = 32 * j + lane;
      const std::int64_t col = col0 + 8 * u;
      const bool inside = col < cols;
      cp_async16(&ring[warp][stage][swizzle(u)], src + (inside ? col : 0), inside ? 16 : 0);
    }
  };

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    const std::int64_t item = first + s * stride;
    if (item < items) issue(item, s);
    cp_async_commit();  // empty groups keep the count uniform
  }

  int stage = 0;
  for (std::int64_t item = first; item < items; item += stride) {
    {
      const std::int64_t ahead = item + (kStages - 1) * stride;
      if (ahead < items) issue(ahead, (stage + kStages - 1) % kStages);
      cp_async_commit();
    }
    const std::int64_t row = item / segments;
    const std::int64_t col = (item % segments) * kItemCols + 32 * lane;  // this lane's first column

    // Factors before the wait, so their (L1/L2) latency overlaps it.
    float f[32];
    if constexpr (ROTATE) {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        const float4 q = col + 4 * k < cols ? __ldg(reinterpret_cast<const float4*>(factors + col + 4 * k))
                                            : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        f[4 * k] = q.x;
        f[4 * k + 1] = q.y;
        f[4 * k + 2] = q.z;
        f[4 * k + 3] = q.w;
      }
    }

    cp_async_wait<kStages - 1>();
    __syncwarp();  // every lane's copies of this item have landed
    float v[32];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      float part[8];
      bf16x8_to_float(ring[warp][stage][swizzle(4 * lane + k)], part);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[8 * k + i] = part[i];
    }
    __syncwarp();  // all reads done before the next issue overwrites this stage
    stage = stage + 1 == kStages ? 0 : stage + 1;

    if constexpr (ROTATE) {
      // rotation::rotate_rows' operations: one rounded multiply, then butterflies of stride 1, 2, 4,
      // ... with a + b low and a - b high. Past the row end values and factors are zero, and whole
      // blocks lie past it (cols is a multiple of the block), so nothing stored depends on them.
#pragma unroll
      for (int i = 0; i < 32; ++i) v[i] = __fmul_rn(v[i], f[i]);
#pragma unroll
      for (int h = 1; h < 32; h *= 2) {
        if (h < block) {
#pragma unroll
          for (int i = 0; i < 32; ++i) {
            if ((i & h) == 0) {
              const float a = v[i], b = v[i + h];
              v[i] = __fadd_rn(a, b);
              v[i + h] = __fsub_rn(a, b);
            }
          }
        }
      }
      // Strides 32..128 pair lane l with l ^ (stride / 32). fma(+-1, v, other) is the one rounding
      // of other + v (low lane) or other - v (high lane), signed zeros and infinities included.
      for (int h = 32; h < block; h *= 2) {
        const int partner = h / 32;
        const float sign = (lane & partner) != 0 ? -1.0f : 1.0f;
#pragma unroll
        for (int i = 0; i < 32; ++i) v[i] = __fmaf_rn(sign, v[i], __shfl_xor_sync(0xFFFFFFFFu, v[i], partner));
      }
    }

    std::uint32_t words[4];
    std::uint32_t scale_codes[kGroups];
    if constexpr (kMx) {
      float amax = 0.0f;
#pragma unroll
      for (int i = 0; i < 32; ++i) amax = fmax_nan(amax, fabsf(v[i]));
      if (amax <= 3.40282347e38f) {
        // floor(log2 amax) - 2 clamped at -127, from the exponent field (a subnormal or zero amax has
        // field 0 and gets code 0, as the CPU's clamp and zero rule give).
        const int code = max(static_cast<int>(__float_as_uint(amax) >> 23) - 2, 0);
        scale_codes[0] = static_cast<std::uint32_t>(code);
        const float scale = e8m0_to_float_dev(scale_codes[0]);
        float t[et::kCount];
#pragma unroll
        for (int k = 0; k < et::kCount; ++k) t[k] = __fmul_rn(et::midpoint(k), scale);  // exact
#pragma unroll
        for (int w = 0; w < 4; ++w) words[w] = encode8(v + 8 * w, t);
      } else {
        scale_codes[0] = quantize_group_exact<KIND, 32>(v, global_scale, words);
      }
    } else {
      float amax[2] = {0.0f, 0.0f};
#pragma unroll
      for (int i = 0; i < 32; ++i) amax[i / 16] = fmax_nan(amax[i / 16], fabsf(v[i]));
      const std::uint32_t pair = e4m3_codes(__fmul_rn(__fdiv_rn(amax[0], 6.0f), global_scale),
                                            __fmul_rn(__fdiv_rn(amax[1], 6.0f), global_scale));
#pragma unroll
      for (int g = 0; g < 2; ++g) {
        const std::uint32_t code = (pair >> (8 * g)) & 0xFFu;
        const float4 lo = table[code][0];
        const float4 hi = table[code][1];
        const float t[et::kCount] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z};
        const float s = hi.w;
        if (amax[g] <= 3.40282347e38f && s > 0.0f && s <= 3.40282347e38f) {
          scale_codes[g] = code;
          words[2 * g] = encode8(v + 16 * g, t);
          words[2 * g + 1] = encode8(v + 16 * g + 8, t);
        } else {
          scale_codes[g] = quantize_group_exact<KIND, 16>(v + 16 * g, global_scale, words + 2 * g);
        }
      }
    }

    if (col < cols) {
      std::uint8_t* out = codes + row * (cols / 2) + col / 2;
      if (vector_codes && col + 32 <= cols) {
        *reinterpret_cast<uint4*>(out) = make_uint4(words[0], words[1], words[2], words[3]);
      } else {
#pragma unroll
        for (int w = 0; w < 4; ++w)
          if (col + 8 * w < cols) reinterpret_cast<std::uint32_t*>(out)[w] = words[w];
      }
      std::uint8_t* scale_out = scales + row * (cols / kGroup) + col / kGroup;
#pragma unroll
      for (int g = 0; g < kGroups; ++g)
        if (col + kGroup * g < cols) scale_out[g] = static_cast<std::uint8_t>(scale_codes[g]);
    }
  }
}

}  // namespace rq

template <int KIND>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(const std::uint8_t* codes, const std::uint8_t* scales,
                                                              std::int64_t rows, std::int64_t cols,
                                                              std::int64_t padded_cols, float global_scale,
                                                              std::uint16_t* out) {
  constexpr int kGroup = KIND == static_cast<int>(Fp4Kind::mxfp4) ? 32 : 16;
  const std::int64_t per_row = cols / 8;
  const std::int64_t n = rows * per_row;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t row = i / per_row;
    const std::int64_t k = (i % per_row) * 8;
    const std::uint32_t word = *reinterpret_cast<const std::uint32_t*>(codes + row * (padded_cols / 2) + k / 2);
    const std::uint32_t code = scales[row * (padded_cols / kGroup) + k / kGroup];
    const float scale = KIND == static_cast<int>(Fp4Kind::mxfp4)
                            ? e8m0_to_float_dev(code)
                            : __fdiv_rn(e4m3_to_float_dev(code), global_scale);
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

namespace {

// One wave of resident blocks, each warp looping over items: the per-warp ring then streams
// continuously instead of refilling at every block start.
template <int KIND, bool ROTATE>
cudaError_t launch_rq(const std::uint16_t* x, std::int64_t rows, std::int64_t cols, const float* factors, int block,
                      float global_scale, std::uint8_t* codes, std::uint8_t* scales, cudaStream_t stream) {
  const auto kernel = rq::rotate_quantize_kernel<KIND, ROTATE>;
  const std::int64_t items = rows * ((cols + rq::kItemCols - 1) / rq::kItemCols);
  int device = 0, sms = 1, per_sm = 1;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, rq::kThreads, 0) != cudaSuccess || per_sm < 1)
    per_sm = 1;
  const std::int64_t wanted = (items + rq::kWarps - 1) / rq::kWarps;
  const std::int64_t resident = static_cast<std::int64_t>(sms > 0 ? sms : 1) * per_sm;
  const int grid = static_cast<int>(wanted < resident ? wanted : resident);
  kernel<<<grid, rq::kThreads, 0, stream>>>(x, rows, cols, factors, block, global_scale, codes, scales);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_rotate_quantize(const std::uint16_t* x, std::int64_t rows, std::int64_t cols, const float* factors,
                                   int block, Fp4Kind kind, float global_scale, std::uint8_t* codes,
                                   std::uint8_t* scales, cudaStream_t stream) {
  if (rows * cols == 0) return cudaSuccess;
  constexpr int mx = static_cast<int>(Fp4Kind::mxfp4), nv = static_cast<int>(Fp4Kind::nvfp4);
  const bool rotate = factors != nullptr;
  if (kind == Fp4Kind::mxfp4) {
    return rotate ? launch_rq<mx, true>(x, rows, cols, factors, block, global_scale, codes, scales, stream)
                  : launch_rq<mx, false>(x, rows, cols, factors, block, global_scale, codes, scales, stream);
  }
  return rotate ? launch_rq<nv, true>(x, rows, cols, factors, block, global_scale, codes, scales, stream)
                : launch_rq<nv, false>(x, rows, cols, factors, block, global_scale, codes, scales, stream);
}

cudaError_t launch_dequantize_bf16(Fp4Kind kind, const std::uint8_t* codes, const std::uint8_t* scales,
                                   std::int64_t rows, std::int64_t cols, std::int64_t padded_cols,
                                   float global_scale, std::uint16_t* out, cudaStream_t stream) {
  const std::int64_t n = rows * (cols / 8);
  if (n == 0) return cudaSuccess;
  const int blocks = grid_for((n + 31) / 32);
  if (kind == Fp4Kind::mxfp4) {
    dequantize_kernel<0><<<blocks, kThreads, 0, stream>>>(codes, scales, rows, cols, padded_cols, global_scale, out);
  } else {
    dequantize_kernel<1><<<blocks, kThreads, 0, stream>>>(codes, scales, rows, cols, padded_cols, global_scale, out);
  }
  return cudaGetLastError();
}

}  // namespace microscale::cuda::detail
