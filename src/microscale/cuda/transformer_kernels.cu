// The non-matmul kernels of a decoder layer: embedding, RMSNorm, RoPE, KV append, causal GQA
// attention, element-wise ops, argmax. Plain and obviously correct first: every kernel reads BF16
// storage and does its arithmetic in FP32 (double where the CPU runtime does: the RMSNorm scale and
// RoPE's cos/sin), so results follow model::Model up to BF16 rounding of the stored activations.
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "microscale/cuda/transformer_launchers.hpp"

namespace microscale::cuda::detail {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float bf16_to_float(std::uint16_t b) { return __uint_as_float(std::uint32_t{b} << 16); }
__device__ __forceinline__ std::uint16_t float_to_bf16(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

// Grid for a grid-stride loop over n items (capped: the loops stride over the rest).
unsigned grid_for(std::int64_t n) {
  const std::int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > 65535 ? 65535 : blocks));
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
  v = warp_sum(v);
  __syncthreads();  // partial[] may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x >> 5);
  float total = 0.0f;
  for (int w = 0; w < warps; ++w) total += partial[w];  // fixed order: every thread gets the same value
  return total;
}

__global__ void embed_kernel(const std::uint16_t* table, const std::int32_t* tokens, std::int64_t rows,
                             std::int64_t hidden, float* residual) {
  const std::int64_t n = rows * hidden;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / hidden, c = i % hidden;
    residual[i] = bf16_to_float(table[static_cast<std::int64_t>(tokens[r]) * hidden + c]);
  }
}

__device__ __forceinline__ float load_as_float(const float* p) { return *p; }
__device__ __forceinline__ float load_as_float(const std::uint16_t* p) { return bf16_to_float(*p); }

// The second half of both RMSNorm kernels: this thread's partial sum of squares in, the block's row
// [n] written normalized to out. Each thread writes only the elements it summed, and the sum is
// complete (block_sum synchronises) before any write, so out may alias in.
template <typename In>
__device__ void write_rms_normalized(const In* in, std::int64_t n, float partial_sum, const float* weight, double eps,
                                     std::uint16_t* out) {
  const float sum = block_sum(partial_sum);
  // The CPU's formula: the scale in double, rounded once to float.
  const float inv = static_cast<float>(1.0 / sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    out[i] = float_to_bf16(weight[i] * (load_as_float(in + i) * inv));
  }
}

// One block per segment.
template <typename In>
__global__ void rms_norm_kernel(const In* x, std::int64_t n, const float* weight, double eps, std::uint16_t* out) {
  const std::int64_t s = blockIdx.x;
  const In* in = x + s * n;
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = load_as_float(in + i);
    sum = fmaf(v, v, sum);
  }
  write_rms_normalized(in, n, sum, weight, eps, out + s * n);
}

// residual[s, :] += FP32(delta[s, :]), then out[s, :] = the RMSNorm of the updated row: the residual add
// that closes a sub-layer fused with the norm that opens the next one (one pass over the row instead of
// two kernels). Same per-thread order and block sum as rms_norm_kernel, so the same bits.
__global__ void add_rms_norm_kernel(float* residual, const std::uint16_t* delta, std::int64_t n, const float* weight,
                                    double eps, std::uint16_t* out) {
  const std::int64_t s = blockIdx.x;
  float* row = residual + s * n;
  const std::uint16_t* d = delta + s * n;
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    const float v = row[i] + bf16_to_float(d[i]);
    row[i] = v;
    sum = fmaf(v, v, sum);
  }
  write_rms_normalized<float>(row, n, sum, weight, eps, out + s * n);
}

int norm_threads(std::int64_t n) {
  // Enough threads that each holds a few values: for a decode step (one row of 4096) a block of 256
  // walked 16 values per thread in series and was latency-bound (15 us per norm in ncu).
  return n >= 4096 ? 1024 : n >= 1024 ? 512 : n <= 128 ? 128 : 256;
}

template <typename In>
cudaError_t rms_norm(const In* x, std::int64_t segments, std::int64_t n, const float* weight, double eps,
                     std::uint16_t* out, cudaStream_t stream) {
  if (segments <= 0) return cudaSuccess;
  const int threads = norm_threads(n);
  // One block per segment; grids are 1-D with up to 2^31 - 1 blocks.
  rms_norm_kernel<In><<<static_cast<unsigned>(segments), threads, 0, stream>>>(x, n, weight, eps, out);
  return cudaGetLastError();
}

// Thread per (row, head, i < half) over the q heads then the k heads: a decode step has one row, so
// parallelism must come from the heads (a thread per frequency looping over 40 heads took 20 us).
__global__ void rope_kernel(std::uint16_t* q, int q_heads, std::uint16_t* k, int k_heads, std::int64_t rows,
                            int seqlen, int head_dim, const float* inv_freq, const std::int32_t* start,
                            const KvAppend cache) {
  const int half = head_dim / 2;
  const int heads = q_heads + k_heads;
  const std::int64_t n = rows * heads * half;
  const std::int32_t first = *start;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < n;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = idx / (static_cast<std::int64_t>(heads) * half);
    const int rest = static_cast<int>(idx % (static_cast<std::int64_t>(heads) * half));
    const int h = rest / half, i = rest % half;
    const std::int64_t position = first + r % seqlen;
    // transformers (and model::make_rope_table): the angle is an FP32 product, cos/sin of that value.
    const float angle = __fmul_rn(static_cast<float>(position), inv_freq[i]);
    const float c = static_cast<float>(cos(static_cast<double>(angle)));
    const float sn = static_cast<float>(sin(static_cast<double>(angle)));
    const bool is_key = h >= q_heads;
    const std::int64_t source = is_key ? (r * k_heads + (h - q_heads)) * head_dim + i : (r * q_heads + h) * head_dim + i;
    std::uint16_t* in = is_key ? k : q;
    const float x0 = bf16_to_float(in[source]), x1 = bf16_to_float(in[source + half]);
    std::uint16_t* out = in;
    std::int64_t target = source;
    if (is_key && cache.keys != nullptr) {
      // Row (b, t) of this call is cache row b*capacity + first + t; the key's offset within its row is kept.
      const std::int64_t kv_dim = static_cast<std::int64_t>(k_heads) * head_dim;
      const std::int64_t row_in_cache = (r / seqlen) * cache.capacity + first + r % seqlen;
      target = row_in_cache * kv_dim + (source - r * kv_dim);
      out = cache.keys;
      cache.cached_values[target] = cache.values[source];
      cache.cached_values[target + half] = cache.values[source + half];
    }
    out[target] = float_to_bf16(x0 * c - x1 * sn);
    out[target + half] = float_to_bf16(x1 * c + x0 * sn);
  }
}

// ---- attention ----------------------------------------------------------------------------------
//
// Block = (query tile of 8 consecutive positions, head, sequence), 8 warps, warp w owns query t0 + w.
// Keys go through shared memory in tiles of 32 (FP32, K rows padded by one float so that lane j
// reading key j's element d hits bank (j + d) % 32). Per tile, lane j scores key j against the warp's
// query (no shuffles), the warp does an online-softmax update (running max m, running sum l, the
// accumulator rescaled by exp(m_old - m_new)), and lane l accumulates output dims l, l+32, ... from the
// tile's values. All 8 warps load tiles even when they own no query (decode: seqlen 1), so loading
// a tile takes 2 rounds of 16-byte loads at head_dim 128.
constexpr int kTileKeys = 32;
constexpr int kQueriesPerBlock = 8;

template <int PER_LANE>  // head_dim / 32
__global__ void __launch_bounds__(kThreads) attention_kernel(const std::uint16_t* q, const std::uint16_t* k_cache,
                                                             const std::uint16_t* v_cache, std::uint16_t* out,
                                                             int seqlen, std::int64_t capacity,
                                                             const std::int32_t* start, int heads, int kv_heads,
                                                             float scale) {
  constexpr int kHd = PER_LANE * 32;
  extern __shared__ float smem[];
  float* ks = smem;                              // [kTileKeys][kHd + 1]
  float* vs = ks + kTileKeys * (kHd + 1);        // [kTileKeys][kHd]
  float* qs = vs + kTileKeys * kHd;              // [kQueriesPerBlock][kHd]

  const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
  const std::int64_t b = blockIdx.z;
  const int h = static_cast<int>(blockIdx.y);
  const int t0 = static_cast<int>(blockIdx.x) * kQueriesPerBlock;
  const int t = t0 + warp;
  const bool active = t < seqlen;
  const int first = *start;
  const int kvh = h / (heads / kv_heads);
  const std::int64_t q_dim = static_cast<std::int64_t>(heads) * kHd;
  const std::int64_t kv_dim = static_cast<std::int64_t>(kv_heads) * kHd;
  const std::int64_t q_row = b * seqlen + t;

  if (active) {
    for (int d = lane; d < kHd; d += 32) qs[warp * kHd + d] = bf16_to_float(q[q_row * q_dim + h * kHd + d]);
  }
  const int my_last = first + t;  // the last key this warp's query sees
  const int block_last = first + min(t0 + kQueriesPerBlock, seqlen) - 1;

  float m = -INFINITY, l = 0.0f;
  float acc[PER_LANE];
#pragma unroll
  for (int i = 0; i < PER_LANE; ++i) acc[i] = 0.0f;

  for (int k0 = 0; k0 <= block_last; k0 += kTileKeys) {
    __syncthreads();  // the previous tile is consumed (and, the first time, qs is written)
    constexpr int kChunks = kTileKeys * kHd / 8;  // 16-byte chunks of 8 BF16 per tile (K or V)
    for (int c = static_cast<int>(threadIdx.x); c < kChunks; c += blockDim.x) {
      const int j = c / (kHd / 8);
      const int d = (c % (kHd / 8)) * 8;
      const int key = k0 + j;
      float kv[8], vv[8];
      if (key <= block_last) {
        const std::int64_t offset = (b * capacity + key) * kv_dim + kvh * kHd + d;
        const uint4 kr = *reinterpret_cast<const uint4*>(k_cache + offset);
        const uint4 vr = *reinterpret_cast<const uint4*>(v_cache + offset);
        const std::uint32_t kw[4] = {kr.x, kr.y, kr.z, kr.w}, vw[4] = {vr.x, vr.y, vr.z, vr.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          kv[2 * e] = __uint_as_float(kw[e] << 16);
          kv[2 * e + 1] = __uint_as_float(kw[e] & 0xFFFF0000u);
          vv[2 * e] = __uint_as_float(vw[e] << 16);
          vv[2 * e + 1] = __uint_as_float(vw[e] & 0xFFFF0000u);
        }
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) kv[e] = vv[e] = 0.0f;
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        ks[j * (kHd + 1) + d + e] = kv[e];
        vs[j * kHd + d + e] = vv[e];
      }
    }
    __syncthreads();
    if (active && k0 <= my_last) {  // warp-uniform
      const int key = k0 + lane;
      const bool visible = key <= my_last;
      float s = 0.0f;
#pragma unroll 8
      for (int d = 0; d < kHd; ++d) s = fmaf(qs[warp * kHd + d], ks[lane * (kHd + 1) + d], s);
      s = visible ? s * scale : -INFINITY;
      const float m_new = fmaxf(m, warp_max(s));  // finite: key k0 <= my_last is visible
      const float correction = expf(m - m_new);   // 0 on the first tile (m = -inf)
      const float p = visible ? expf(s - m_new) : 0.0f;
      l = l * correction + warp_sum(p);
#pragma unroll
      for (int i = 0; i < PER_LANE; ++i) acc[i] *= correction;
      for (int j = 0; j < kTileKeys; ++j) {
        const float pj = __shfl_sync(0xffffffffu, p, j);
#pragma unroll
        for (int i = 0; i < PER_LANE; ++i) acc[i] = fmaf(pj, vs[j * kHd + lane + 32 * i], acc[i]);
      }
      m = m_new;
    }
  }
  if (active) {
    const float inv = 1.0f / l;
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) out[q_row * q_dim + h * kHd + lane + 32 * i] = float_to_bf16(acc[i] * inv);
  }
}

// Decode (one query per sequence): block = (head, sequence), and the 8 warps split the keys: warp w
// takes tiles w, w + 8, ... of 32 keys, lane j scoring key j straight from the cache (its row is 16-byte
// loads; the query is broadcast from shared memory), with the same online softmax as above. The
// warps' (max, sum, accumulator) then merge in shared memory. attention_kernel's block would walk
// every tile with one warp working, after two block-wide barriers per tile.
template <int PER_LANE>
__global__ void __launch_bounds__(kThreads) decode_attention_kernel(const std::uint16_t* q, const std::uint16_t* k_cache,
                                                                    const std::uint16_t* v_cache, std::uint16_t* out,
                                                                    std::int64_t capacity, const std::int32_t* start,
                                                                    int heads, int kv_heads, float scale) {
  constexpr int kHd = PER_LANE * 32;
  constexpr int kWarpsPerBlock = kThreads / 32;
  __shared__ float qs[kHd];
  __shared__ float warp_m[kWarpsPerBlock], warp_l[kWarpsPerBlock];
  __shared__ float warp_acc[kWarpsPerBlock][kHd];
  const int warp = static_cast<int>(threadIdx.x >> 5), lane = static_cast<int>(threadIdx.x & 31);
  const int h = static_cast<int>(blockIdx.x);
  const std::int64_t b = blockIdx.y;
  const int last = *start;  // the query sits at position *start and sees keys 0..last
  const int kvh = h / (heads / kv_heads);
  const std::int64_t q_dim = static_cast<std::int64_t>(heads) * kHd;
  const std::int64_t kv_dim = static_cast<std::int64_t>(kv_heads) * kHd;
  for (int d = static_cast<int>(threadIdx.x); d < kHd; d += blockDim.x) qs[d] = bf16_to_float(q[b * q_dim + h * kHd + d]);
  __syncthreads();

  float m = -INFINITY, l = 0.0f;
  float acc[PER_LANE];
#pragma unroll
  for (int i = 0; i < PER_LANE; ++i) acc[i] = 0.0f;
  const std::uint16_t* keys = k_cache + b * capacity * kv_dim + kvh * kHd;
  const std::uint16_t* values = v_cache + b * capacity * kv_dim + kvh * kHd;
  for (int k0 = warp * kTileKeys; k0 <= last; k0 += kWarpsPerBlock * kTileKeys) {
    const int key = k0 + lane;
    const bool visible = key <= last;
    float s = 0.0f;
    if (visible) {
      const uint4* row = reinterpret_cast<const uint4*>(keys + static_cast<std::int64_t>(key) * kv_dim);
#pragma unroll 4
      for (int c = 0; c < kHd / 8; ++c) {
        const uint4 raw = row[c];
        const std::uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s = fmaf(qs[8 * c + 2 * e], __uint_as_float(w[e] << 16), s);
          s = fmaf(qs[8 * c + 2 * e + 1], __uint_as_float(w[e] & 0xFFFF0000u), s);
        }
      }
    }
    s = visible ? s * scale : -INFINITY;
    const float m_new = fmaxf(m, warp_max(s));  // finite: key k0 <= last is visible
    const float correction = expf(m - m_new);   // 0 on the warp's first tile (m = -inf)
    const float p = visible ? expf(s - m_new) : 0.0f;
    l = l * correction + warp_sum(p);
#pragma unroll
    for (int i = 0; i < PER_LANE; ++i) acc[i] *= correction;
    const int keys_here = min(kTileKeys, last - k0 + 1);  // invisible keys' rows may hold anything
    for (int j = 0; j < keys_here; ++j) {
      const float pj = __shfl_sync(0xffffffffu, p, j);
      const std::uint16_t* v = values + static_cast<std::int64_t>(k0 + j) * kv_dim;
#pragma unroll
      for (int i = 0; i < PER_LANE; ++i) acc[i] = fmaf(pj, bf16_to_float(v[lane + 32 * i]), acc[i]);
    }
    m = m_new;
  }
  if (lane == 0) {
    warp_m[warp] = m;  // -inf and l = 0 for a warp that had no keys
    warp_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < PER_LANE; ++i) warp_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float top = warp_m[0];  // warp 0 always holds key 0
#pragma unroll
  for (int w = 1; w < kWarpsPerBlock; ++w) top = fmaxf(top, warp_m[w]);
  float total = 0.0f;
  float weight[kWarpsPerBlock];
#pragma unroll
  for (int w = 0; w < kWarpsPerBlock; ++w) {
    weight[w] = expf(warp_m[w] - top);  // 0 for a warp without keys
    total += warp_l[w] * weight[w];
  }
  for (int d = static_cast<int>(threadIdx.x); d < kHd; d += blockDim.x) {
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarpsPerBlock; ++w) o += warp_acc[w][d] * weight[w];
    out[b * q_dim + h * kHd + d] = float_to_bf16(o / total);
  }
}

template <int PER_LANE>
cudaError_t attention(const std::uint16_t* q, const std::uint16_t* k_cache, const std::uint16_t* v_cache,
                      std::uint16_t* out, int batch, int seqlen, std::int64_t capacity, const std::int32_t* start,
                      int heads, int kv_heads, cudaStream_t stream) {
  constexpr int kHd = PER_LANE * 32;
  constexpr std::size_t kSmem =
      sizeof(float) * (kTileKeys * (kHd + 1) + kTileKeys * kHd + kQueriesPerBlock * kHd);
  static const cudaError_t attribute = cudaFuncSetAttribute(
      attention_kernel<PER_LANE>, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem));
  if (attribute != cudaSuccess) return attribute;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(kHd)));
  if (seqlen == 1) {
    decode_attention_kernel<PER_LANE><<<dim3(static_cast<unsigned>(heads), static_cast<unsigned>(batch)), kThreads, 0,
                                        stream>>>(q, k_cache, v_cache, out, capacity, start, heads, kv_heads, scale);
    return cudaGetLastError();
  }
  const dim3 grid(static_cast<unsigned>((seqlen + kQueriesPerBlock - 1) / kQueriesPerBlock),
                  static_cast<unsigned>(heads), static_cast<unsigned>(batch));
  attention_kernel<PER_LANE><<<grid, kThreads, kSmem, stream>>>(q, k_cache, v_cache, out, seqlen, capacity, start,
                                                                 heads, kv_heads, scale);
  return cudaGetLastError();
}

__global__ void add_bias_kernel(std::uint16_t* y, std::int64_t rows, std::int64_t cols, const float* bias) {
  const std::int64_t n = rows * cols;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    y[i] = float_to_bf16(bf16_to_float(y[i]) + bias[i % cols]);
  }
}

__global__ void add_residual_kernel(float* residual, const std::uint16_t* delta, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    residual[i] += bf16_to_float(delta[i]);
  }
}

// BF16(silu(gate) * up), the MLP's activation, from BF16 inputs.
__device__ __forceinline__ std::uint16_t silu_times(std::uint16_t gate, std::uint16_t up) {
  const float g = bf16_to_float(gate);
  return float_to_bf16(g / (1.0f + expf(-g)) * bf16_to_float(up));
}

// gate[r, c] = BF16(silu(gu[r, c]) * gu[r, width + c]) from the stacked gate/up product [rows, 2*width].
__global__ void silu_mul_stacked_kernel(const std::uint16_t* gate_up, std::int64_t rows, std::int64_t width,
                                        std::uint16_t* gate) {
  const std::int64_t n = rows * width;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / width, c = i % width;
    gate[i] = silu_times(gate_up[r * 2 * width + c], gate_up[r * 2 * width + width + c]);
  }
}

// Columns [0, a), [a, a+b), [a+b, a+b+c) of src [rows, a+b+c] into three dense matrices.
__global__ void split3_kernel(const std::uint16_t* src, std::int64_t rows, std::int64_t a, std::int64_t b,
                              std::int64_t c, std::uint16_t* out_a, std::uint16_t* out_b, std::uint16_t* out_c) {
  const std::int64_t width = a + b + c, n = rows * width;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t r = i / width, col = i % width;
    if (col < a) {
      out_a[r * a + col] = src[i];
    } else if (col < a + b) {
      out_b[r * b + col - a] = src[i];
    } else {
      out_c[r * c + col - a - b] = src[i];
    }
  }
}

__global__ void silu_mul_kernel(std::uint16_t* gate, const std::uint16_t* up, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    gate[i] = silu_times(gate[i], up[i]);
  }
}

// Argmax in two stages: kArgmaxParts blocks per row each scan a contiguous slice, then one warp per
// row picks among the slices (a single block per row over a 128256-word vocabulary took 200 us). Ties
// go to the smaller index, as std::max_element does; a NaN never wins over a number. The partial
// results live in a fixed device buffer: one argmax at a time (GpuModel uses one stream).
constexpr int kArgmaxParts = 64;
constexpr std::int64_t kArgmaxMaxRows = 256;  // GpuModel decodes at most 256 sequences at once
__device__ float g_argmax_value[kArgmaxMaxRows * kArgmaxParts];
__device__ std::int64_t g_argmax_index[kArgmaxMaxRows * kArgmaxParts];

// Better candidate: larger value, or equal value at a smaller index; `index < 0` means none yet.
__device__ __forceinline__ bool better(float v, std::int64_t i, float best, std::int64_t best_i) {
  if (i < 0) return false;
  if (best_i < 0) return true;
  return v > best || (v == best && i < best_i);
}

__device__ void block_best(float& value, std::int64_t& index) {
  __shared__ float values[kThreads];
  __shared__ std::int64_t indices[kThreads];
  values[threadIdx.x] = value;
  indices[threadIdx.x] = index;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (static_cast<int>(threadIdx.x) < stride &&
        better(values[threadIdx.x + stride], indices[threadIdx.x + stride], values[threadIdx.x], indices[threadIdx.x])) {
      values[threadIdx.x] = values[threadIdx.x + stride];
      indices[threadIdx.x] = indices[threadIdx.x + stride];
    }
    __syncthreads();
  }
  value = values[0];
  index = indices[0];
}

__global__ void __launch_bounds__(kThreads) argmax_parts_kernel(const float* logits, std::int64_t cols) {
  const std::int64_t row = blockIdx.y;
  const std::int64_t slice = (cols + kArgmaxParts - 1) / kArgmaxParts;
  const std::int64_t begin = blockIdx.x * slice, end = begin + slice < cols ? begin + slice : cols;
  const float* x = logits + row * cols;
  float value = 0.0f;
  std::int64_t index = -1;
  for (std::int64_t c = begin + threadIdx.x; c < end; c += blockDim.x) {
    const float v = x[c];
    if (index < 0 || v > value) {  // strictly greater: this thread's first maximum wins
      value = v;
      index = c;
    }
  }
  block_best(value, index);
  if (threadIdx.x == 0) {
    g_argmax_value[row * kArgmaxParts + blockIdx.x] = value;
    g_argmax_index[row * kArgmaxParts + blockIdx.x] = index;
  }
}

__global__ void argmax_finish_kernel(std::int32_t* out) {
  const std::int64_t row = blockIdx.x;
  float value = 0.0f;
  std::int64_t index = -1;
  for (int p = static_cast<int>(threadIdx.x); p < kArgmaxParts; p += blockDim.x) {
    const float v = g_argmax_value[row * kArgmaxParts + p];
    const std::int64_t i = g_argmax_index[row * kArgmaxParts + p];
    if (better(v, i, value, index)) {
      value = v;
      index = i;
    }
  }
  block_best(value, index);
  if (threadIdx.x == 0) out[row] = static_cast<std::int32_t>(index < 0 ? 0 : index);
}

__global__ void increment_kernel(std::int32_t* counter, std::int32_t amount) { *counter += amount; }

__device__ __forceinline__ std::uint64_t mix64(std::uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

__global__ void fill_uniform_bf16_kernel(std::uint16_t* out, std::int64_t n, std::uint64_t seed, float scale) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::uint64_t r = mix64(seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(i));
    const float u = static_cast<float>(r >> 40) * (1.0f / 16777216.0f);  // [0, 1)
    out[i] = float_to_bf16((2.0f * u - 1.0f) * scale);
  }
}

__global__ void fill_random_bytes_kernel(std::uint8_t* out, std::int64_t n, std::uint64_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    out[i] = static_cast<std::uint8_t>(mix64(seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(i)) >> 56);
  }
}

}  // namespace

cudaError_t launch_embed(const std::uint16_t* table, const std::int32_t* tokens, std::int64_t rows,
                         std::int64_t hidden, float* residual, cudaStream_t stream) {
  embed_kernel<<<grid_for(rows * hidden), kThreads, 0, stream>>>(table, tokens, rows, hidden, residual);
  return cudaGetLastError();
}

cudaError_t launch_rms_norm_f32(const float* x, std::int64_t segments, std::int64_t n, const float* weight,
                                double eps, std::uint16_t* out, cudaStream_t stream) {
  return rms_norm(x, segments, n, weight, eps, out, stream);
}

cudaError_t launch_rms_norm_bf16(const std::uint16_t* x, std::int64_t segments, std::int64_t n, const float* weight,
                                 double eps, std::uint16_t* out, cudaStream_t stream) {
  return rms_norm(x, segments, n, weight, eps, out, stream);
}

cudaError_t launch_add_rms_norm(float* residual, const std::uint16_t* delta, std::int64_t segments, std::int64_t n,
                                const float* weight, double eps, std::uint16_t* out, cudaStream_t stream) {
  if (segments <= 0) return cudaSuccess;
  add_rms_norm_kernel<<<static_cast<unsigned>(segments), norm_threads(n), 0, stream>>>(residual, delta, n, weight, eps,
                                                                                      out);
  return cudaGetLastError();
}

cudaError_t launch_rope(std::uint16_t* q, int q_heads, std::uint16_t* k, int k_heads, std::int64_t rows, int seqlen,
                        int head_dim, const float* inv_freq, const std::int32_t* start, const KvAppend& cache,
                        cudaStream_t stream) {
  rope_kernel<<<grid_for(rows * (q_heads + k_heads) * (head_dim / 2)), kThreads, 0, stream>>>(
      q, q_heads, k, k_heads, rows, seqlen, head_dim, inv_freq, start, cache);
  return cudaGetLastError();
}

cudaError_t launch_attention(const std::uint16_t* q, const std::uint16_t* k_cache, const std::uint16_t* v_cache,
                             std::uint16_t* out, int batch, int seqlen, std::int64_t capacity,
                             const std::int32_t* start, int heads, int kv_heads, int head_dim, cudaStream_t stream) {
  switch (head_dim) {
    case 32: return attention<1>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 64: return attention<2>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 96: return attention<3>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 128: return attention<4>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 160: return attention<5>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 192: return attention<6>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    case 256: return attention<8>(q, k_cache, v_cache, out, batch, seqlen, capacity, start, heads, kv_heads, stream);
    default: return cudaErrorInvalidValue;
  }
}

cudaError_t launch_add_bias(std::uint16_t* y, std::int64_t rows, std::int64_t cols, const float* bias,
                            cudaStream_t stream) {
  add_bias_kernel<<<grid_for(rows * cols), kThreads, 0, stream>>>(y, rows, cols, bias);
  return cudaGetLastError();
}

cudaError_t launch_add_residual(float* residual, const std::uint16_t* delta, std::int64_t n, cudaStream_t stream) {
  add_residual_kernel<<<grid_for(n), kThreads, 0, stream>>>(residual, delta, n);
  return cudaGetLastError();
}

cudaError_t launch_silu_mul_stacked(const std::uint16_t* gate_up, std::int64_t rows, std::int64_t width,
                                    std::uint16_t* gate, cudaStream_t stream) {
  silu_mul_stacked_kernel<<<grid_for(rows * width), kThreads, 0, stream>>>(gate_up, rows, width, gate);
  return cudaGetLastError();
}

cudaError_t launch_split3(const std::uint16_t* src, std::int64_t rows, std::int64_t a, std::int64_t b, std::int64_t c,
                          std::uint16_t* out_a, std::uint16_t* out_b, std::uint16_t* out_c, cudaStream_t stream) {
  split3_kernel<<<grid_for(rows * (a + b + c)), kThreads, 0, stream>>>(src, rows, a, b, c, out_a, out_b, out_c);
  return cudaGetLastError();
}

cudaError_t launch_silu_mul(std::uint16_t* gate, const std::uint16_t* up, std::int64_t n, cudaStream_t stream) {
  silu_mul_kernel<<<grid_for(n), kThreads, 0, stream>>>(gate, up, n);
  return cudaGetLastError();
}

cudaError_t launch_argmax(const float* logits, std::int64_t rows, std::int64_t cols, std::int32_t* out,
                          cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (rows > kArgmaxMaxRows || cols <= 0) return cudaErrorInvalidValue;
  argmax_parts_kernel<<<dim3(kArgmaxParts, static_cast<unsigned>(rows)), kThreads, 0, stream>>>(logits, cols);
  argmax_finish_kernel<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(out);
  return cudaGetLastError();
}

cudaError_t launch_increment(std::int32_t* counter, std::int32_t amount, cudaStream_t stream) {
  increment_kernel<<<1, 1, 0, stream>>>(counter, amount);
  return cudaGetLastError();
}

cudaError_t launch_fill_uniform_bf16(std::uint16_t* out, std::int64_t n, std::uint64_t seed, float scale,
                                     cudaStream_t stream) {
  fill_uniform_bf16_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, scale);
  return cudaGetLastError();
}

cudaError_t launch_fill_random_bytes(std::uint8_t* out, std::int64_t n, std::uint64_t seed, cudaStream_t stream) {
  fill_random_bytes_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed);
  return cudaGetLastError();
}

}  // namespace microscale::cuda::detail
