// W4A16 GEMV for batch 1..16: FP4 weights streamed from device memory, BF16 activations staged (and
// optionally Hadamard-rotated) in shared memory as FP32, FP32 accumulation, BF16 output.
//
// Work split. A block has 8 warps; a warp owns 4 consecutive rows (2 at batch 16; a tile of 32 rows
// per block) and walks them along K: lane l reads 16 bytes (32 codes) of each of its rows at k = 32 l + 1024 i, so a
// warp reads 512 contiguous bytes per row per step (coalesced 16-byte loads, 4 rows in flight).
// Blocks are persistent over row tiles. K is cut into chunks that fit shared memory (and, for short
// outputs such as k/v projections, into more chunks so that every SM gets work): each block stages
// its chunk of the activations once and then streams all its row tiles. With more than one chunk the
// partial sums meet in an FP32 scratch through atomicAdd, and the last warp to finish a row group
// rounds them to BF16 (no second kernel). Batch 1 over long chunks and batch 4 prefetch: a warp
// issues the next step's loads before it decodes the current one (kPrefetchMinChunk and
// kPrefetchMaxChunks say when).
//
// Decoding. Two E2M1 nibbles become an FP16 pair with three integer operations (e2m1_pair_scaled),
// one conversion gives two floats scaled by 2^-14; 2^14 is folded into the group scale. Nibbles p and
// p + 4 of a 32-bit word are decoded together, so the activations they meet are x[8j + p] and
// x[8j + p + 4]: two float4 loads from shared memory per 8 weights, reused by the warp's 4 rows.
// Shared memory rows carry 4 floats of padding per 32, so the 8 lanes of a quarter-warp reading
// float4s 32 floats apart hit distinct banks.
#include <algorithm>
#include <cstdint>

#include <cuda_runtime.h>

#include "microscale/cuda/device_facts.hpp"
#include "microscale/cuda/device_math.cuh"
#include "microscale/cuda/launchers.hpp"

namespace microscale::cuda::detail {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
// Rows per warp: 4 reuse each staged activation 4 times; at batch 16 two keep the accumulators in
// registers (4 spilled).
__host__ __device__ constexpr int rows_per_warp(int batch_tile) { return batch_tile >= 16 ? 2 : 4; }
constexpr int kStep = 1024;                         // K elements a warp covers per step (32 lanes x 32)
constexpr int kSharedBudget = 100 * 1024;           // bytes of staged activations per block

__host__ __device__ constexpr int padded_index(int k) { return k + (k >> 5) * 4; }

struct GemvParams {
  const std::uint8_t* codes;
  const std::uint8_t* scales;
  std::int64_t rows;
  std::int64_t cols;
  std::int64_t padded_cols;
  float out_scale;
  const std::uint16_t* x;
  int batch;
  const float* rotation;
  int rotation_block;
  std::uint16_t* y;
  float* partial;
  unsigned* arrivals;  // one per group of a warp's rows
  int chunk;   // K elements per chunk (blockIdx.y)
  int chunks;
};

template <int KIND>
__device__ __forceinline__ float group_scale_times_2p14(std::uint32_t code) {
  if constexpr (KIND == static_cast<int>(Fp4Kind::mxfp4)) {
    if (code == 0xFFu) return __int_as_float(0x7FC00000);
    const std::uint32_t biased = code + 14u;  // 2^(code - 127) * 2^14; code 0 (2^-127) gives 2^-113
    return __int_as_float(static_cast<int>((biased < 255u ? biased : 255u) << 23));
  } else {
    return e4m3_to_float_dev(code) * 16384.0f;
  }
}

// Batch 1 is held to 64 registers (4 blocks per SM, no spills): the split-K finish would otherwise
// take MXFP4 from 57 to 74 registers and one resident block fewer. Prefetching doubles the registers
// for codes, so that variant is held to 80 (3 blocks per SM, no spills).
template <int KIND, int B, bool ROTATE, bool PREFETCH>
__global__ void __launch_bounds__(kThreads, B == 1 ? (PREFETCH ? 3 : 4) : 1) gemv_kernel(const GemvParams p) {
  constexpr int kRowsPerWarp = rows_per_warp(B);
  constexpr int kRowsPerTile = kWarps * kRowsPerWarp;
  extern __shared__ float4 shared4[];
  float* xs = reinterpret_cast<float*>(shared4);
  const int stride = padded_index(p.chunk);
  const std::int64_t k0 = static_cast<std::int64_t>(blockIdx.y) * p.chunk;
  const int kc = static_cast<int>(min(static_cast<std::int64_t>(p.chunk), p.padded_cols - k0));
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x & 31);

  // ---- stage (and rotate) this chunk of the activations: a warp per 256-element segment ----
  const int segments = (kc + 255) / 256;
  for (int t = warp; t < B * segments; t += kWarps) {
    const int b = t / segments;
    const int local = (t % segments) * 256 + lane * 8;
    const std::int64_t k = k0 + local;
    float v[8];
    if (b < p.batch && k < p.cols) {
      const uint4 raw = __ldg(reinterpret_cast<const uint4*>(p.x + static_cast<std::int64_t>(b) * p.cols + k));
      bf16x8_to_float(raw, v);
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) v[i] = 0.0f;
    }
    if constexpr (ROTATE) {
      if (k < p.cols) {
        const float4 f0 = __ldg(reinterpret_cast<const float4*>(p.rotation + k));
        const float4 f1 = __ldg(reinterpret_cast<const float4*>(p.rotation + k + 4));
        const float f[8] = {f0.x, f0.y, f0.z, f0.w, f1.x, f1.y, f1.z, f1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i) v[i] = __fmul_rn(v[i], f[i]);
      }
      warp_hadamard<8>(v, p.rotation_block);
    }
    if (local < kc) {
      float4* dst = reinterpret_cast<float4*>(xs + b * stride + padded_index(local));
      dst[0] = make_float4(v[0], v[1], v[2], v[3]);
      dst[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
  }
  __syncthreads();

  // ---- stream the row tiles ----
  const std::int64_t row_bytes = p.padded_cols / 2;
  constexpr int kGroup = KIND == static_cast<int>(Fp4Kind::mxfp4) ? 32 : 16;
  const std::int64_t scales_per_row = p.padded_cols / kGroup;
  const std::int64_t tiles = (p.rows + kRowsPerTile - 1) / kRowsPerTile;
  for (std::int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const std::int64_t row0 = tile * kRowsPerTile + warp * kRowsPerWarp;
    float acc[kRowsPerWarp][B];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
      for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;

    // This lane's codes and scale bits of the warp's rows at chunk column `local` (zeros past the chunk).
    const auto load_step = [&](int local, uint4 (&packed)[kRowsPerWarp], std::uint32_t (&scale_bits)[kRowsPerWarp]) {
      const std::int64_t k = k0 + local;
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const std::int64_t row = row0 + r;
        if (row < p.rows && local < kc) {
          packed[r] = __ldcs(reinterpret_cast<const uint4*>(p.codes + row * row_bytes + k / 2));
          if constexpr (kGroup == 32) {
            scale_bits[r] = __ldg(p.scales + row * scales_per_row + k / 32);
          } else {
            scale_bits[r] = __ldg(reinterpret_cast<const unsigned short*>(p.scales + row * scales_per_row + k / 16));
          }
        } else {
          packed[r] = make_uint4(0, 0, 0, 0);
          scale_bits[r] = 0;
        }
      }
    };
    uint4 packed[kRowsPerWarp];
    std::uint32_t scale_bits[kRowsPerWarp];
    load_step(lane * 32, packed, scale_bits);
    for (int local = lane * 32; local < kc; local += kStep) {
      // PREFETCH: the next step's loads are issued before this step's decode, so that they are in
      // flight while it computes (twice the registers for codes).
      uint4 next_packed[kRowsPerWarp];
      std::uint32_t next_scale_bits[kRowsPerWarp];
      if constexpr (PREFETCH) load_step(local + kStep, next_packed, next_scale_bits);
      float s0[kRowsPerWarp], s1[kRowsPerWarp];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        s0[r] = group_scale_times_2p14<KIND>(scale_bits[r] & 0xFFu);
        s1[r] = kGroup == 32 ? s0[r] : group_scale_times_2p14<KIND>(scale_bits[r] >> 8);
      }
      const float* xk = xs + padded_index(local);
      // Small batches keep one FP32 partial per (row, group) and scale it once per group (fewer
      // multiplies); larger batches scale the decoded weights once and reuse them for every row of x.
      if constexpr (B <= 2) {
        float part[2][kRowsPerWarp][B];
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
            for (int b = 0; b < B; ++b) part[h][r][b] = 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float w[kRowsPerWarp][8];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
            const std::uint32_t word = j == 0 ? packed[r].x : j == 1 ? packed[r].y : j == 2 ? packed[r].z : packed[r].w;
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              const float2 f = e2m1_pair_scaled(word >> (4 * q));
              w[r][q] = f.x;
              w[r][q + 4] = f.y;
            }
          }
#pragma unroll
          for (int b = 0; b < B; ++b) {
            const float4 a0 = *reinterpret_cast<const float4*>(xk + b * stride + 8 * j);
            const float4 a1 = *reinterpret_cast<const float4*>(xk + b * stride + 8 * j + 4);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
              float s = part[j >> 1][r][b];
              s = fmaf(w[r][0], a0.x, s);
              s = fmaf(w[r][1], a0.y, s);
              s = fmaf(w[r][2], a0.z, s);
              s = fmaf(w[r][3], a0.w, s);
              s = fmaf(w[r][4], a1.x, s);
              s = fmaf(w[r][5], a1.y, s);
              s = fmaf(w[r][6], a1.z, s);
              s = fmaf(w[r][7], a1.w, s);
              part[j >> 1][r][b] = s;
            }
          }
        }
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r)
#pragma unroll
          for (int b = 0; b < B; ++b) acc[r][b] += part[0][r][b] * s0[r] + part[1][r][b] * s1[r];
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float w[kRowsPerWarp][8];
#pragma unroll
          for (int r = 0; r < kRowsPerWarp; ++r) {
            const std::uint32_t word = j == 0 ? packed[r].x : j == 1 ? packed[r].y : j == 2 ? packed[r].z : packed[r].w;
            const float s = j < 2 ? s0[r] : s1[r];
#pragma unroll
            for (int q = 0; q < 4; ++q) {
              const float2 f = e2m1_pair_scaled(word >> (4 * q));
              w[r][q] = f.x * s;
              w[r][q + 4] = f.y * s;
            }
          }
#pragma unroll
          for (int b = 0; b < B; ++b) {
            const float4 a0 = *reinterpret_cast<const float4*>(xk + b * stride + 8 * j);
            const float4 a1 = *reinterpret_cast<const float4*>(xk + b * stride + 8 * j + 4);
#pragma unroll
            for (int r = 0; r < kRowsPerWarp; ++r) {
              float s = acc[r][b];
              s = fmaf(w[r][0], a0.x, s);
              s = fmaf(w[r][1], a0.y, s);
              s = fmaf(w[r][2], a0.z, s);
              s = fmaf(w[r][3], a0.w, s);
              s = fmaf(w[r][4], a1.x, s);
              s = fmaf(w[r][5], a1.y, s);
              s = fmaf(w[r][6], a1.z, s);
              s = fmaf(w[r][7], a1.w, s);
              acc[r][b] = s;
            }
          }
        }
      }
      if constexpr (PREFETCH) {
#pragma unroll
        for (int r = 0; r < kRowsPerWarp; ++r) packed[r] = next_packed[r], scale_bits[r] = next_scale_bits[r];
      } else {
        load_step(local + kStep, packed, scale_bits);
      }
    }

    // ---- reduce across the warp and write ----
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
#pragma unroll
      for (int b = 0; b < B; ++b) {
        float s = acc[r][b];
#pragma unroll
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, off);
        const std::int64_t row = row0 + r;
        if (lane == ((r * B + b) & 31) && row < p.rows && b < p.batch) {
          const float value = s * p.out_scale;
          if (p.chunks == 1) {
            const __nv_bfloat16 o = __float2bfloat16_rn(value);
            p.y[static_cast<std::int64_t>(b) * p.rows + row] = *reinterpret_cast<const std::uint16_t*>(&o);
          } else {
            atomicAdd(p.partial + static_cast<std::int64_t>(b) * p.rows + row, value);
          }
        }
      }
    }
    // A warp whose rows all lie past the end has no counter (arrivals are sized by the rows).
    if (p.chunks > 1 && row0 < p.rows) {
      finish_split_k_rows(p.partial, p.y, p.arrivals + row0 / kRowsPerWarp, p.chunks, row0, kRowsPerWarp, p.batch,
                          p.rows);
    }
  }
}

// How a launch splits K and how many blocks it starts.
struct GemvPlan {
  std::int64_t chunk, chunks, grid_x;
  int shared;
};

template <int KIND, int B, bool ROTATE, bool PREFETCH>
GemvPlan plan_launch(const GemvArgs& a) {
  const void* kernel = reinterpret_cast<const void*>(&gemv_kernel<KIND, B, ROTATE, PREFETCH>);
  // Once per kernel: allow the shared-memory budget (occupancy queries and launches see it).
  static const bool raised [[maybe_unused]] =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBudget + 16 * 1024) == cudaSuccess;
  const auto blocks_per_sm = [kernel](int shared_bytes) { return resident_blocks(kernel, kThreads, shared_bytes); };
  const std::int64_t kp = a.padded_cols;
  // The largest chunk whose staged activations fit the budget (a multiple of a warp step).
  const std::int64_t fit = static_cast<std::int64_t>(kSharedBudget / (B * 4.5)) / kStep * kStep;
  std::int64_t chunk = kp <= std::max<std::int64_t>(fit, kStep) ? kp : std::max<std::int64_t>(fit, kStep);
  constexpr int kRowsPerTile = kWarps * rows_per_warp(B);
  const std::int64_t tiles = (a.rows + kRowsPerTile - 1) / kRowsPerTile;
  const int shared_full = static_cast<int>(B * padded_index(static_cast<int>(chunk)) * sizeof(float));
  const int target = multiprocessor_count() * blocks_per_sm(shared_full);
  // Too few row tiles to fill the chip: cut K further (each extra chunk re-stages only its slice).
  const std::int64_t chunks_for_fill = (target + tiles - 1) / tiles;
  if (chunks_for_fill > 1) {
    const std::int64_t want = (kp + chunks_for_fill - 1) / chunks_for_fill;
    chunk = std::min(chunk, std::max<std::int64_t>(kStep, (want + kStep - 1) / kStep * kStep));
  }
  const std::int64_t chunks = (kp + chunk - 1) / chunk;
  const int shared = static_cast<int>(B * padded_index(static_cast<int>(chunk)) * sizeof(float));
  const int per_sm = blocks_per_sm(shared);
  const std::int64_t grid_x = std::max<std::int64_t>(
      1, std::min<std::int64_t>(tiles, (static_cast<std::int64_t>(multiprocessor_count()) * per_sm + chunks - 1) / chunks));
  return {chunk, chunks, grid_x, shared};
}

template <int KIND, int B, bool ROTATE, bool PREFETCH>
cudaError_t launch_planned(const GemvArgs& a, const GemvPlan& plan, cudaStream_t stream) {
  GemvParams p{a.codes, a.scales, a.rows, a.cols, a.padded_cols, a.out_scale, a.x, static_cast<int>(a.batch),
               a.rotation, a.rotation_block, a.y, a.partial, a.arrivals, static_cast<int>(plan.chunk),
               static_cast<int>(plan.chunks)};
  gemv_kernel<KIND, B, ROTATE, PREFETCH><<<dim3(static_cast<unsigned>(plan.grid_x), static_cast<unsigned>(plan.chunks)),
                                           kThreads, plan.shared, stream>>>(p);
  return cudaGetLastError();
}

template <int KIND, int B, bool ROTATE, bool PREFETCH>
cudaError_t launch_typed(const GemvArgs& a, cudaStream_t stream) {
  return launch_planned<KIND, B, ROTATE, PREFETCH>(a, plan_launch<KIND, B, ROTATE, PREFETCH>(a), stream);
}

// When batch 1 prefetches: the prefetching kernel holds 80 registers (3 blocks per SM instead of 4),
// which pays only where the plan gives each block long chunks of K in at most two slices. Measured on
// the H100 (docs/benchmarks.md, sixth step): 8B gate/up (one 4096-column chunk) 26% faster, 70B q/o
// (two of 4096), gate/up (one of 8192) and down (two of 14336) 6-9% faster; 8B q/o (four of 1024) and
// down (four of 4096, the last half empty) 20-27% slower, k/v (1024-column slices) the same.
constexpr std::int64_t kPrefetchMinChunk = 4 * kStep;
constexpr std::int64_t kPrefetchMaxChunks = 2;

template <int KIND, bool ROTATE>
cudaError_t launch_batch(const GemvArgs& a, cudaStream_t stream) {
  if (a.batch <= 1) {
    const GemvPlan prefetching = plan_launch<KIND, 1, ROTATE, true>(a);
    if (prefetching.chunk >= kPrefetchMinChunk && prefetching.chunks <= kPrefetchMaxChunks) {
      return launch_planned<KIND, 1, ROTATE, true>(a, prefetching, stream);
    }
    return launch_typed<KIND, 1, ROTATE, false>(a, stream);
  }
  if (a.batch <= 2) return launch_typed<KIND, 2, ROTATE, false>(a, stream);
  // Batch 4 prefetches: 0-15% faster at every measured shape (one block per SM either way).
  if (a.batch <= 4) return launch_typed<KIND, 4, ROTATE, true>(a, stream);
  if (a.batch <= 8) return launch_typed<KIND, 8, ROTATE, false>(a, stream);
  return launch_typed<KIND, 16, ROTATE, false>(a, stream);
}

template <int KIND>
cudaError_t launch_kind(const GemvArgs& a, cudaStream_t stream) {
  return a.rotation != nullptr ? launch_batch<KIND, true>(a, stream) : launch_batch<KIND, false>(a, stream);
}

}  // namespace

cudaError_t launch_gemv(const GemvArgs& args, cudaStream_t stream) {
  if (args.batch < 1 || args.batch > 16) return cudaErrorInvalidValue;
  return args.kind == Fp4Kind::mxfp4 ? launch_kind<0>(args, stream) : launch_kind<1>(args, stream);
}

}  // namespace microscale::cuda::detail
