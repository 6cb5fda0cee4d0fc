#pragma once
// How llama.cpp names and orders a decoder's tensors in GGUF, for the architectures microscale runs:
//   HF model_type   GGUF general.architecture   RoPE in llama.cpp
//   llama, mistral  "llama"                     "normal" (interleaved pairs): q/k rows permuted on export
//   qwen2           "qwen2"                     NEOX (half-split, as in HF): no permutation
//   qwen3           "qwen3"                     NEOX: no permutation
// Tensor names: token_embd.weight, output_norm.weight, output.weight (absent when tied), rope_freqs.weight
// (llama3 scaling), blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, attn_q_norm, attn_k_norm,
// ffn_norm, ffn_gate, ffn_up, ffn_down}.{weight, bias}, and "<base>.scale" (F32 {1}) for NVFP4 linears.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/model/config.hpp"
#include "microscale/model/model.hpp"

namespace microscale::exporter::gguf {

// "llama" | "qwen2" | "qwen3"; throws naming `source` for other model types.
std::string architecture_for(const model::ModelConfig& config, std::string_view source);
// Whether export permutes q/k rows (llama.cpp's "normal" RoPE rotates neighbouring pairs, HF rotates
// element i with i + head_dim/2).
bool permutes_qk(std::string_view architecture);

// "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down".
std::string_view linear_base(model::LinearKind kind);
std::string block_tensor(int layer, std::string_view base, std::string_view suffix = "weight");

// The row order convert_hf_to_gguf.py gives q_proj/k_proj for llama: within each head of `head_dim` rows,
// rows reshaped (2, head_dim/2) and transposed, so GGUF row 2i + j holds HF row j * head_dim/2 + i.
// Returns perm with gguf_row[p] = hf_row[perm[p]]. Row permutation keeps quantization groups (which run
// along rows) intact, so it applies to packed codes and their scales alike.
std::vector<std::int64_t> rope_row_permutation(std::int64_t rows, std::int64_t head_dim);
// inverse[perm[p]] = p.
std::vector<std::int64_t> inverse_permutation(const std::vector<std::int64_t>& perm);

}  // namespace microscale::exporter::gguf
