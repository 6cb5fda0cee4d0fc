#pragma once
// Launchers of the decoder-layer kernels (transformer_kernels.cu), internal to the cuda module: plain
// pointers in, cudaError_t out, like launchers.hpp. Shapes are checked by the callers (gpu_model.cpp).
//
// Conventions: activations row-major [rows, features], rows = batch * seqlen with row b*seqlen + t the
// token t of sequence b. BF16 as raw std::uint16_t. `start` is a device pointer to the position of
// token 0 of every sequence (the KV-cache length), so a captured CUDA graph stays valid as it grows.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace microscale::cuda::detail {

// residual[r, :] = FP32(table[tokens[r], :]).
cudaError_t launch_embed(const std::uint16_t* table, const std::int32_t* tokens, std::int64_t rows,
                         std::int64_t hidden, float* residual, cudaStream_t stream);

// out[s, :] = BF16(weight * x[s, :] / sqrt(mean(x[s, :]^2) + eps)) for `segments` segments of n values.
// The FP32 input is the residual stream; the BF16 one (may alias out) is the per-head q/k norm.
cudaError_t launch_rms_norm_f32(const float* x, std::int64_t segments, std::int64_t n, const float* weight,
                                double eps, std::uint16_t* out, cudaStream_t stream);
cudaError_t launch_rms_norm_bf16(const std::uint16_t* x, std::int64_t segments, std::int64_t n, const float* weight,
                                 double eps, std::uint16_t* out, cudaStream_t stream);

// residual[s, :] += FP32(delta[s, :]) and out[s, :] = the RMSNorm of the updated row, bit-identical to
// launch_add_residual followed by launch_rms_norm_f32.
cudaError_t launch_add_rms_norm(float* residual, const std::uint16_t* delta, std::int64_t segments, std::int64_t n,
                                const float* weight, double eps, std::uint16_t* out, cudaStream_t stream);

// HF rotate_half RoPE on q [rows, q_heads*head_dim] and k [rows, k_heads*head_dim]; row (b, t) is at
// position *start + t; angle = FP32(position * inv_freq[i]), cos/sin in double. q is rotated in place.
// Without a cache (`cache.keys` null) k is too; with one, the rotated keys and the values v go
// straight to cache row (b*capacity + *start + t) and k is left as it was (one kernel instead of a
// RoPE and an append: a decode step launches it once per layer).
struct KvAppend {
  const std::uint16_t* values = nullptr;  // [rows, k_heads*head_dim]
  std::uint16_t* keys = nullptr;          // [batch*capacity, k_heads*head_dim]
  std::uint16_t* cached_values = nullptr;
  std::int64_t capacity = 0;
};
cudaError_t launch_rope(std::uint16_t* q, int q_heads, std::uint16_t* k, int k_heads, std::int64_t rows, int seqlen,
                        int head_dim, const float* inv_freq, const std::int32_t* start, const KvAppend& cache,
                        cudaStream_t stream);

// Causal GQA attention: query (b, t) of head h attends to keys 0..*start+t of sequence b, kv head
// h / (heads / kv_heads). k/v caches are [batch*capacity, kv_heads*head_dim]. head_dim: 32..256, a
// multiple of 32. out [batch*seqlen, heads*head_dim].
cudaError_t launch_attention(const std::uint16_t* q, const std::uint16_t* k_cache, const std::uint16_t* v_cache,
                             std::uint16_t* out, int batch, int seqlen, std::int64_t capacity,
                             const std::int32_t* start, int heads, int kv_heads, int head_dim, cudaStream_t stream);

// y[r, c] = BF16(y[r, c] + bias[c]).
cudaError_t launch_add_bias(std::uint16_t* y, std::int64_t rows, std::int64_t cols, const float* bias,
                            cudaStream_t stream);
// residual += FP32(delta), element-wise over n.
cudaError_t launch_add_residual(float* residual, const std::uint16_t* delta, std::int64_t n, cudaStream_t stream);
// gate = BF16(silu(gate) * up), element-wise over n.
cudaError_t launch_silu_mul(std::uint16_t* gate, const std::uint16_t* up, std::int64_t n, cudaStream_t stream);
// gate[r, c] = BF16(silu(gate_up[r, c]) * gate_up[r, width + c]): the stacked gate/up product's halves.
cudaError_t launch_silu_mul_stacked(const std::uint16_t* gate_up, std::int64_t rows, std::int64_t width,
                                    std::uint16_t* gate, cudaStream_t stream);
// The three column blocks (widths a, b, c) of src [rows, a+b+c] into dense [rows, a], [rows, b], [rows, c].
cudaError_t launch_split3(const std::uint16_t* src, std::int64_t rows, std::int64_t a, std::int64_t b, std::int64_t c,
                          std::uint16_t* out_a, std::uint16_t* out_b, std::uint16_t* out_c, cudaStream_t stream);

// out[r] = the first index of the maximum of logits[r, :] (std::max_element's choice).
cudaError_t launch_argmax(const float* logits, std::int64_t rows, std::int64_t cols, std::int32_t* out,
                          cudaStream_t stream);
// *counter += amount (the KV-cache length, advanced inside a captured decode step).
cudaError_t launch_increment(std::int32_t* counter, std::int32_t amount, cudaStream_t stream);

// Deterministic pseudo-random fills for models with random weights (benchmarks).
cudaError_t launch_fill_uniform_bf16(std::uint16_t* out, std::int64_t n, std::uint64_t seed, float scale,
                                     cudaStream_t stream);
cudaError_t launch_fill_random_bytes(std::uint8_t* out, std::int64_t n, std::uint64_t seed, cudaStream_t stream);

}  // namespace microscale::cuda::detail
