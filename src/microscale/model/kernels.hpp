#pragma once
// The FP32 building blocks of a decoder layer. Matmuls go to OpenBLAS (cblas_sgemm, which threads
// itself); element-wise work is OpenMP over rows. Activations are row-major [tokens, features].
#include <cstdint>
#include <span>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::model {

// out[r] = weight * x[r] / sqrt(mean(x[r]^2) + eps), row by row (HF LlamaRMSNorm in FP32).
// `out` may alias `x`. The row length is weight.size() (so a [tokens, heads*head_dim] matrix can be
// normalised per head by passing a view with cols = head_dim).
void rms_norm(ConstMatrixView x, std::span<const float> weight, double eps, MatrixView out);

// y = x W^T (+ bias): x [n, in], W [out, in] (PyTorch Linear layout), y [n, out].
void linear(ConstMatrixView x, ConstMatrixView weight, std::span<const float> bias, MatrixView y);

// gate <- silu(gate) * up, element-wise.
void silu_mul(MatrixView gate, ConstMatrixView up);

// Rotary embedding with HF's rotate_half convention: within each head of `head_dim`, element i and
// i + head_dim/2 rotate together by angle position * inv_freq[i]. Rows are laid out
// [batch][seqlen]; the row of (b, t) sits at position start + t.
struct RopeTable {
  std::int64_t start = 0;
  std::int64_t count = 0;
  std::int64_t half = 0;          // head_dim / 2
  std::vector<float> cos, sin;    // [count, half]
};
RopeTable make_rope_table(std::span<const float> inv_freq, std::int64_t start, std::int64_t count);
void apply_rope(MatrixView x, int heads, std::int64_t head_dim, int seqlen, const RopeTable& table);

// Causal softmax attention with grouped KV heads.
// q: [batch*seqlen, heads*head_dim]; query (b, t) sits at position start + t and attends to keys
// 0..start+t of its sequence. keys/values of sequence b are rows [b*capacity, b*capacity + start+seqlen)
// of [batch*capacity, kv_heads*head_dim] matrices. out: [batch*seqlen, heads*head_dim].
struct AttentionShape {
  int batch = 1;
  int seqlen = 1;
  std::int64_t start = 0;
  std::int64_t capacity = 1;
  int heads = 1;
  int kv_heads = 1;
  std::int64_t head_dim = 1;
};
void causal_attention(ConstMatrixView q, ConstMatrixView keys, ConstMatrixView values, const AttentionShape& shape,
                      MatrixView out);

// Both OpenMP and OpenBLAS thread pools (0 = leave as is).
void set_num_threads(int threads);

}  // namespace microscale::model
