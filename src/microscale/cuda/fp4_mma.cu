// W4A16 on the tensor cores for batch 1..64: FP4 weights in the tile layout of fp4_linear.hpp are
// decoded to BF16 in registers, straight into the A fragments of mma.m16n8k16 (BF16 x BF16 -> FP32),
// with the activations as the B fragments. The weights are read once whatever the batch: the FP32
// GEMV (fp4_gemv.cu) decodes them again for every activation row, which made batch 16 bound by
// instruction issue (docs/benchmarks.md).
//
// Work split. The grid is (persistent blocks over row tiles) x (K slices). A block stages its K slice
// of the activations in shared memory once (16-byte loads), then each of its 8 warps streams whole
// tiles of 16 weight rows over the slice: per chunk of 64 columns, one 16-byte load per lane (512
// contiguous bytes per warp, U chunks in flight), 4 k-steps of decode + ldmatrix of the activations
// + mma. A warp keeps its own C fragments, so no block-wide reduction is needed. With more than one
// K slice the slices' sums meet in an FP32 scratch through atomicAdd, and the last slice of a row
// tile to arrive (a counter per tile) rounds them to BF16 and leaves scratch and counter zeroed, so
// no second kernel is launched.
//
// Decoding (4 integer operations and one BF16 multiply per pair of weights). A nibble s e1 e0 m at
// bits [15:12] (and [31:28]) becomes BF16 bits s at 15 and e1 e0 m at [8:6]: that BF16 number is
// exactly E2M1 * 2^-126 (E2M1's subnormal 0.5 lands on BF16's subnormal 2^-127), and one exact BF16
// multiply by C = scale * 2^(126 - shift) gives the weight times 2^-shift (shift = the weight's
// exponent_shift, undone by out_scale in FP32 at the end).
//  * MXFP4: C = 2^(E - 1 - shift) is the E8M0 byte plus a per-byte bias, shifted into BF16's exponent.
//  * NVFP4: the hardware converts two E4M3 codes to an FP16 pair exactly; moving the FP16 fields to
//    BF16 positions and adding 229 to each exponent gives C = E4M3 * 2^117 (shift 9, so every
//    product E2M1 * E4M3 * 2^-9 >= 2^-19 is a normal BF16 and exact).
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
constexpr int kChunk = 64;          // K columns per chunk: 4 mma k-steps of 16
constexpr int kTileBytes = 512;     // codes of 16 rows x 64 columns

template <int KIND>
struct TileScales;
template <>
struct TileScales<0> {  // mxfp4: [E(g, grp0), E(g+8, grp0), E(g, grp1), E(g+8, grp1)]
  using Word = std::uint32_t;
};
template <>
struct TileScales<1> {  // nvfp4: [s(g, j), s(g+8, j)] for the 4 k-steps j
  using Word = uint2;
};

__device__ __forceinline__ std::uint32_t bf16x2_mul(std::uint32_t a, std::uint32_t b) {
  std::uint32_t d;
  asm("mul.rn.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// The group-scale multipliers of k-step j as BF16 pairs (both halves equal): sg for row g, sg8 for g+8.
template <int KIND>
__device__ __forceinline__ void step_scales(const typename TileScales<KIND>::Word& s, int j, std::uint32_t bias,
                                            std::uint32_t& sg, std::uint32_t& sg8) {
  if constexpr (KIND == 0) {
    const std::uint32_t biased = s + bias;  // per byte: E + 126 - shift <= 254, no carries (host checks)
    const int shift = (j >> 1) * 16;
    sg = ((biased >> shift) & 0xFFu) * 0x00800080u;
    sg8 = ((biased >> (shift + 8)) & 0xFFu) * 0x00800080u;
  } else {
    const std::uint32_t word = j < 2 ? s.x : s.y;
    const auto pair = static_cast<unsigned short>(word >> ((j & 1) * 16));
    std::uint32_t h;
    asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(h) : "h"(pair));
    // FP16 exponent/mantissa >> 3 are BF16's fields (E4M3 has 3 mantissa bits, so nothing is lost);
    // +229 per exponent = -15 + 127 (re-bias) + 117 (the 2^117 of C). Signs kept as they are.
    const std::uint32_t c = (((h >> 3) & 0x0FFF0FFFu) + 0x72807280u) | (h & 0x80008000u);
    sg = __byte_perm(c, 0, 0x1010);
    sg8 = __byte_perm(c, 0, 0x3232);
  }
}

// A fragment of one k-step: registers {row g, k 2t..2t+1}, {g+8, 2t..}, {g, 2t+8..}, {g+8, 2t+8..};
// register r's two nibbles sit at bits [15-4r:12-4r] and [31-4r:28-4r] of q.
__device__ __forceinline__ void decode_step(std::uint32_t q, std::uint32_t sg, std::uint32_t sg8,
                                            std::uint32_t (&a)[4]) {
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const std::uint32_t bits = (q & 0x80008000u) | ((q >> 6) & 0x01C001C0u);
    a[r] = bf16x2_mul(bits, (r & 1) ? sg8 : sg);
    q <<= 4;
  }
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                         std::uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void ldmatrix_x2(std::uint32_t addr, std::uint32_t& r0, std::uint32_t& r1) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r0), "=r"(r1) : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t addr, std::uint32_t& r0, std::uint32_t& r1,
                                            std::uint32_t& r2, std::uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

struct MmaParams {
  const uint4* tiles;
  const std::uint8_t* scales;
  std::int64_t rows;
  std::int64_t cols;
  int row_tiles;
  int chunks;        // K / 64 of the weight
  int block_chunks;  // chunks per K slice (blockIdx.y)
  int splits;        // K slices (gridDim.y)
  std::uint32_t scale_bias;
  float out_scale;
  const std::uint16_t* x;
  int batch;
  std::uint16_t* y;
  float* partial;
  unsigned* arrivals;
};

// Shared memory of a block: its K slice of the activations, BF16 rows of slice + 8 elements (the 16
// bytes of padding put the 8 rows an ldmatrix reads in distinct banks), then 16 zero bytes that
// the lanes of absent rows (n >= batch) point their ldmatrix at.
__host__ __device__ constexpr int staged_row_bytes(int slice_cols) { return slice_cols * 2 + 16; }

template <int KIND, int NT, int U, bool PIPELINED>
__global__ void __launch_bounds__(kThreads) mma_kernel(const MmaParams p) {
  using Word = typename TileScales<KIND>::Word;
  extern __shared__ uint4 staged[];
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x & 31);
  const int g = lane >> 2, t = lane & 3;
  const int c_lo = static_cast<int>(blockIdx.y) * p.block_chunks;
  const int c_hi = min(p.chunks, c_lo + p.block_chunks);
  const int slice = (c_hi - c_lo) * kChunk;
  const int row_bytes = staged_row_bytes(p.block_chunks * kChunk);
  const int rows_staged = min(p.batch, NT * 8);
  char* base = reinterpret_cast<char*>(staged);
  char* zero = base + rows_staged * row_bytes;

  // ---- stage the slice: 16-byte loads, zeros past cols ----
  const std::int64_t k_lo = static_cast<std::int64_t>(c_lo) * kChunk;
  const int vectors = slice / 8;
  for (int i = static_cast<int>(threadIdx.x); i < rows_staged * vectors; i += kThreads) {
    const int n = i / vectors, v = i % vectors;
    const std::int64_t k = k_lo + 8 * v;
    const uint4 value = k < p.cols ? __ldg(reinterpret_cast<const uint4*>(p.x + n * p.cols + k)) : make_uint4(0, 0, 0, 0);
    *reinterpret_cast<uint4*>(base + n * row_bytes + v * 16) = value;
  }
  if (threadIdx.x == 0) *reinterpret_cast<uint4*>(zero) = make_uint4(0, 0, 0, 0);
  __syncthreads();

  // ldmatrix row addresses: lane l feeds row l % 8 of matrix l / 8; matrices (n8 tile 2m + l/16,
  // k half (l/8) % 2) for x4, (n8 tile 0, k half l/8) for x2 (lanes 16..31 ignored).
  const std::uint32_t shared_base = static_cast<std::uint32_t>(__cvta_generic_to_shared(base));
  const std::uint32_t shared_zero = static_cast<std::uint32_t>(__cvta_generic_to_shared(zero));
  // Absent rows (n >= batch) read the zero block at every k: their step mask is 0.
  constexpr int kLoads = NT > 1 ? NT / 2 : 1;
  std::uint32_t row_addr[kLoads], step_mask[kLoads];
#pragma unroll
  for (int m = 0; m < kLoads; ++m) {
    const int n = (NT > 1 ? 16 * m + 8 * (lane >> 4) : 0) + (lane & 7);
    const bool present = n < rows_staged;
    row_addr[m] = present ? shared_base + n * row_bytes + ((lane >> 3) & 1) * 16 : shared_zero;
    step_mask[m] = present ? 0xFFFFFFFFu : 0u;
  }

  // ---- each warp streams whole row tiles over the slice ----
  for (int tile = static_cast<int>(blockIdx.x) * kWarps + warp; tile < p.row_tiles;
       tile += static_cast<int>(gridDim.x) * kWarps) {
    const std::int64_t chunk0 = static_cast<std::int64_t>(tile) * p.chunks;
    const uint4* codes = p.tiles + chunk0 * (kTileBytes / 16) + lane;
    const Word* scales = reinterpret_cast<const Word*>(p.scales) + chunk0 * 8 + g;
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int i = 0; i < 4; ++i) acc[nt][i] = 0.0f;

    // Software pipeline: the next U chunks are requested before the current U are decoded, so each
    // warp keeps loads in flight while it computes.
    uint4 w[U], w_next[U];
    Word s[U], s_next[U];
    auto request = [&](int first, uint4 (&wr)[U], Word (&sr)[U]) {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = first + u;
        if (c < c_hi) {
          wr[u] = __ldcs(codes + static_cast<std::int64_t>(c) * (kTileBytes / 16));
          sr[u] = __ldg(scales + static_cast<std::int64_t>(c) * 8);
        } else {
          wr[u] = make_uint4(0, 0, 0, 0);
          sr[u] = Word{};
        }
      }
    };
    if constexpr (PIPELINED) request(c_lo, w, s);
    for (int c0 = c_lo; c0 < c_hi; c0 += U) {
      if constexpr (PIPELINED) {
        if (c0 + U < c_hi) request(c0 + U, w_next, s_next);
      } else {
        request(c0, w, s);
      }
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int c = c0 + u;
        if (c >= c_hi) continue;
        const std::uint32_t words[4] = {w[u].x, w[u].y, w[u].z, w[u].w};
        const std::uint32_t k_bytes = static_cast<std::uint32_t>((c - c_lo) * kChunk * 2);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          if (static_cast<std::int64_t>(c) * kChunk + j * 16 >= p.cols) continue;  // K padding
          std::uint32_t sg, sg8, a[4];
          step_scales<KIND>(s[u], j, p.scale_bias, sg, sg8);
          decode_step(words[j], sg, sg8, a);
          const std::uint32_t step = k_bytes + j * 32;
#pragma unroll
          for (int m = 0; m < kLoads; ++m) {
            const std::uint32_t addr = row_addr[m] + (step & step_mask[m]);
            if constexpr (NT == 1) {
              std::uint32_t b0, b1;
              ldmatrix_x2(addr, b0, b1);
              mma_bf16(acc[0], a, b0, b1);
            } else {
              std::uint32_t b0, b1, b2, b3;
              ldmatrix_x4(addr, b0, b1, b2, b3);
              mma_bf16(acc[2 * m], a, b0, b1);
              mma_bf16(acc[2 * m + 1], a, b2, b3);
            }
          }
        }
      }
      if constexpr (PIPELINED) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          w[u] = w_next[u];
          s[u] = s_next[u];
        }
      }
    }

    // ---- write: C fragment i of lane (g, t) is row g + 8 (i / 2), activation row n = 8 nt + 2t + i % 2 ----
    const std::int64_t row0 = static_cast<std::int64_t>(tile) * 16 + g;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const std::int64_t row = row0 + 8 * (i >> 1);
        const int n = nt * 8 + 2 * t + (i & 1);
        if (row < p.rows && n < p.batch) {
          const std::int64_t at = n * p.rows + row;
          const float value = acc[nt][i] * p.out_scale;
          if (p.splits > 1) {
            atomicAdd(p.partial + at, value);
          } else {
            const __nv_bfloat16 b = __float2bfloat16_rn(value);
            p.y[at] = *reinterpret_cast<const std::uint16_t*>(&b);
          }
        }
      }
    }
    if (p.splits > 1) {
      finish_split_k_rows(p.partial, p.y, p.arrivals + tile, p.splits, static_cast<std::int64_t>(tile) * 16, 16,
                          p.batch, p.rows);
    }
  }
}

// ---- the load-time repack: one thread per (row tile, chunk, lane) ----
template <int KIND>
__global__ void repack_kernel(const std::uint8_t* codes, const std::uint8_t* scales, std::int64_t rows,
                              std::int64_t cols, std::int64_t padded_cols, std::int64_t chunks, uint4* tiles,
                              std::uint8_t* tile_scales) {
  constexpr int kGroup = KIND == 0 ? 32 : 16;
  const std::int64_t n = (rows + 15) / 16 * chunks * 32;
  const std::int64_t row_bytes = padded_cols / 2, row_scales = padded_cols / kGroup;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t tile = i / (chunks * 32);
    const std::int64_t c = (i / 32) % chunks;
    const int lane = static_cast<int>(i % 32), g = lane >> 2, t = lane & 3;
    const std::int64_t row_g[2] = {tile * 16 + g, tile * 16 + g + 8};
    auto scale = [&](std::int64_t row, std::int64_t group) -> std::uint32_t {
      return row < rows && group * kGroup < cols ? scales[row * row_scales + group] : 0u;
    };
    std::uint32_t words[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const std::int64_t k0 = c * kChunk + j * 16;
      std::uint32_t word = 0;
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const std::int64_t row = row_g[r & 1];
        const std::int64_t k = k0 + 2 * t + 8 * (r >> 1);  // element pair (k, k + 1) = one code byte
        std::uint32_t byte = row < rows && k < cols ? codes[row * row_bytes + k / 2] : 0u;
        if (KIND == 1 && (scale(row, k0 / 16) & 0x7Fu) == 0) byte = 0;  // a zero scale decodes to 0
        word |= (byte & 0xFu) << (12 - 4 * r);
        word |= (byte >> 4) << (28 - 4 * r);
      }
      words[j] = word;
    }
    tiles[i] = make_uint4(words[0], words[1], words[2], words[3]);
    if (t == 0) {  // the 4 (mxfp4) or 8 (nvfp4) scale bytes of rows g and g + 8 in this chunk
      std::uint8_t* out = tile_scales + ((tile * chunks + c) * 8 + g) * (KIND == 0 ? 4 : 8);
      const int groups = KIND == 0 ? 2 : 4;
      for (int q = 0; q < groups; ++q) {
        const std::int64_t group = c * (kChunk / kGroup) + q;
        out[2 * q] = static_cast<std::uint8_t>(scale(row_g[0], group));
        out[2 * q + 1] = static_cast<std::uint8_t>(scale(row_g[1], group));
      }
    }
  }
}

// ---- the tile layout decoded to BF16, value for value as dequantize_kernel (activation_kernels.cu) ----
// A warp decodes one chunk (16 rows x 64 columns) into shared memory in fragment order, then writes it
// out row by row with 16-byte stores (a lane per 8 columns), so the BF16 weight is written coalesced.
template <int KIND>
__global__ void __launch_bounds__(kThreads) dequantize_mma_kernel(const uint4* tiles, const std::uint8_t* tile_scales,
                                                                  std::int64_t rows, std::int64_t cols,
                                                                  std::int64_t chunks, float global_scale,
                                                                  std::uint16_t* out) {
  constexpr int kPitch = kChunk + 8;  // BF16 elements per staged row (16 bytes of padding)
  __shared__ __align__(16) std::uint16_t staged[kWarps][16][kPitch];
  // NVFP4: the scale quotients once per block (with one division per weight pair NVFP4 dequantized
  // at half MXFP4's speed).
  __shared__ float nv_scales[KIND == 1 ? 256 : 1];
  if constexpr (KIND == 1) fill_nvfp4_scale_table(nv_scales, global_scale);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int lane = static_cast<int>(threadIdx.x & 31), g = lane >> 2, t = lane & 3;
  const std::int64_t row_tiles = (rows + 15) / 16;
  for (ItemCursor at(static_cast<std::int64_t>(blockIdx.x) * kWarps + warp, static_cast<std::int64_t>(gridDim.x) * kWarps,
                     chunks);
       at.outer < row_tiles; at.advance()) {
    const std::int64_t tile = at.outer, c = at.inner;
    const std::int64_t item = tile * chunks + c;
    const uint4 packed = tiles[item * 32 + lane];
    const std::uint32_t words[4] = {packed.x, packed.y, packed.z, packed.w};
    const std::uint8_t* sc = tile_scales + (item * 8 + g) * (KIND == 0 ? 4 : 8);
    float scales[KIND == 0 ? 4 : 8];
#pragma unroll
    for (int i = 0; i < (KIND == 0 ? 4 : 8); ++i) scales[i] = KIND == 0 ? e8m0_to_float_dev(sc[i]) : nv_scales[sc[i]];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float scale = scales[KIND == 0 ? 2 * (j >> 1) + (r & 1) : 2 * j + (r & 1)];
        const std::uint32_t lo = (words[j] >> (12 - 4 * r)) & 0xFu, hi = (words[j] >> (28 - 4 * r)) & 0xFu;
        const float2 f = e2m1_pair_scaled(lo | (hi << 16));  // exact: E2M1 values * 2^-14
        *reinterpret_cast<std::uint32_t*>(&staged[warp][g + 8 * (r & 1)][j * 16 + 2 * t + 8 * (r >> 1)]) =
            pack_bf16x2(__fmul_rn(f.x * 16384.0f, scale), __fmul_rn(f.y * 16384.0f, scale));
      }
    }
    __syncwarp();
#pragma unroll
    for (int pass = 0; pass < 4; ++pass) {
      const int r = pass * 4 + (lane >> 3);
      const std::int64_t row = tile * 16 + r;
      const std::int64_t k = c * kChunk + (lane & 7) * 8;
      if (row < rows && k < cols) {
        *reinterpret_cast<uint4*>(out + row * cols + k) = *reinterpret_cast<const uint4*>(&staged[warp][r][(lane & 7) * 8]);
      }
    }
    __syncwarp();
  }
}

int grid_for_items(std::int64_t items) {
  const std::int64_t blocks = (items + 255) / 256;
  return static_cast<int>(std::clamp<std::int64_t>(blocks, 1, static_cast<std::int64_t>(multiprocessor_count()) * 16));
}

constexpr int kSharedBudget = 96 * 1024;  // staged activations per block

template <int KIND, int NT, bool PIPELINED>
const void* kernel_for() {
  const void* kernel = reinterpret_cast<const void*>(&mma_kernel<KIND, NT, NT <= 2 ? 4 : 2, PIPELINED>);
  // Once per kernel: allow the staging budget (occupancy queries and launches see it).
  static const bool raised [[maybe_unused]] =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSharedBudget + 1024) == cudaSuccess;
  return kernel;
}

template <int KIND, bool PIPELINED>
const void* kernel_for_batch(std::int64_t batch) {
  if (batch <= 8) return kernel_for<KIND, 1, PIPELINED>();
  if (batch <= 16) return kernel_for<KIND, 2, PIPELINED>();
  if (batch <= 32) return kernel_for<KIND, 4, PIPELINED>();
  return kernel_for<KIND, 8, PIPELINED>();
}

const void* mma_kernel_for(const MmaArgs& a) {
  if (a.kind == Fp4Kind::mxfp4) return a.pipelined ? kernel_for_batch<0, true>(a.batch) : kernel_for_batch<0, false>(a.batch);
  return a.pipelined ? kernel_for_batch<1, true>(a.batch) : kernel_for_batch<1, false>(a.batch);
}

int shared_bytes(std::int64_t batch, int block_chunks) {
  return static_cast<int>(batch) * staged_row_bytes(block_chunks * kChunk) + 16;
}

// The launch shape: K slices of `block_chunks` chunks (gridDim.y) and one block per 8 row tiles
// (gridDim.x). As many slices as keep the whole grid in one wave of resident blocks, each warp still
// streaming at least kMinChunks chunks: the benchmark's sweep over slice counts (docs/benchmarks.md)
// found that fewer leave bandwidth unused on short matrices, and more pay for split-K atomics and
// for a second wave.
constexpr int kMinChunks = 4;

struct Shape {
  int block_chunks;
  int splits;
  int grid_x;
};

Shape launch_shape(const MmaArgs& a) {
  const int chunks = static_cast<int>(a.chunks);
  const int row_tiles = static_cast<int>((a.rows + 15) / 16);
  const int row_tile_blocks = (row_tiles + kWarps - 1) / kWarps;
  const int fit = std::max(1, ((kSharedBudget - 16) / static_cast<int>(a.batch) - 16) / (kChunk * 2));
  int splits = a.splits;
  if (splits <= 0) {
    const int resident = multiprocessor_count() *
                         resident_blocks(mma_kernel_for(a), kThreads, shared_bytes(a.batch, std::min(chunks, fit)));
    splits = std::clamp(resident / row_tile_blocks, 1, std::max(1, chunks / kMinChunks));
  }
  const int block_chunks = std::clamp((chunks + splits - 1) / splits, 1, std::min(chunks, fit));
  return Shape{block_chunks, (chunks + block_chunks - 1) / block_chunks, row_tile_blocks};
}

}  // namespace

int mma_auto_splits(const MmaArgs& a) {
  MmaArgs automatic = a;
  automatic.splits = 0;
  return launch_shape(automatic).splits;
}

cudaError_t launch_mma(const MmaArgs& a, cudaStream_t stream) {
  if (a.batch < 1 || a.batch > 64 || a.cols % 16 != 0 || a.chunks * kChunk < a.cols) return cudaErrorInvalidValue;
  const Shape shape = launch_shape(a);
  const MmaParams p{reinterpret_cast<const uint4*>(a.tiles), a.scales, a.rows, a.cols,
                    static_cast<int>((a.rows + 15) / 16), static_cast<int>(a.chunks), shape.block_chunks,
                    shape.splits, a.scale_bias, a.out_scale, a.x, static_cast<int>(a.batch), a.y, a.partial,
                    a.arrivals};
  const dim3 grid(static_cast<unsigned>(shape.grid_x), static_cast<unsigned>(shape.splits));
  void* params[] = {const_cast<MmaParams*>(&p)};
  return cudaLaunchKernel(mma_kernel_for(a), grid, dim3(kThreads), params,
                          static_cast<std::size_t>(shared_bytes(a.batch, shape.block_chunks)), stream);
}

cudaError_t launch_repack_mma(Fp4Kind kind, const std::uint8_t* codes, const std::uint8_t* scales, std::int64_t rows,
                              std::int64_t cols, std::int64_t padded_cols, std::int64_t chunks, std::uint8_t* tiles,
                              std::uint8_t* tile_scales, cudaStream_t stream) {
  const std::int64_t items = (rows + 15) / 16 * chunks * 32;
  if (items == 0) return cudaSuccess;
  auto* out = reinterpret_cast<uint4*>(tiles);
  if (kind == Fp4Kind::mxfp4) {
    repack_kernel<0><<<grid_for_items(items), 256, 0, stream>>>(codes, scales, rows, cols, padded_cols, chunks, out,
                                                                 tile_scales);
  } else {
    repack_kernel<1><<<grid_for_items(items), 256, 0, stream>>>(codes, scales, rows, cols, padded_cols, chunks, out,
                                                                 tile_scales);
  }
  return cudaGetLastError();
}

cudaError_t launch_dequantize_mma_bf16(Fp4Kind kind, const std::uint8_t* tiles, const std::uint8_t* tile_scales,
                                       std::int64_t row0, std::int64_t rows, std::int64_t cols, std::int64_t chunks,
                                       float global_scale, std::uint16_t* out, cudaStream_t stream) {
  if (row0 % 16 != 0) return cudaErrorInvalidValue;
  const std::int64_t items = (rows + 15) / 16 * chunks * 32;  // one lane each
  if (items == 0) return cudaSuccess;
  // Row tiles are stored one after another, [tile][chunk]: rows from a tile boundary on are the same
  // kernel on a weight that starts at that tile (it writes only rows < `rows` of a partial last tile).
  const std::int64_t first_tile = row0 / 16;
  const auto* in = reinterpret_cast<const uint4*>(tiles) + first_tile * chunks * (kTileBytes / 16);
  tile_scales += first_tile * chunks * 8 * (kind == Fp4Kind::mxfp4 ? 4 : 8);
  if (kind == Fp4Kind::mxfp4) {
    dequantize_mma_kernel<0><<<grid_for_items(items), kThreads, 0, stream>>>(in, tile_scales, rows, cols, chunks,
                                                                             global_scale, out);
  } else {
    dequantize_mma_kernel<1><<<grid_for_items(items), kThreads, 0, stream>>>(in, tile_scales, rows, cols, chunks,
                                                                             global_scale, out);
  }
  return cudaGetLastError();
}

}  // namespace microscale::cuda::detail
