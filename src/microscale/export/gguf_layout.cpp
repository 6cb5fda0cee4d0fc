#include "microscale/export/gguf_layout.hpp"

#include <fmt/format.h>

#include "microscale/core/error.hpp"

namespace microscale::exporter::gguf {

std::string architecture_for(const model::ModelConfig& config, std::string_view source) {
  if (config.model_type == "llama" || config.model_type == "mistral") return "llama";
  if (config.model_type == "qwen2" || config.model_type == "qwen3") return config.model_type;
  fail("{}: model_type '{}' has no GGUF export (supported: llama, mistral, qwen2, qwen3)", source, config.model_type);
}

bool permutes_qk(std::string_view architecture) { return architecture == "llama"; }

std::string_view linear_base(model::LinearKind kind) {
  switch (kind) {
    case model::LinearKind::q: return "attn_q";
    case model::LinearKind::k: return "attn_k";
    case model::LinearKind::v: return "attn_v";
    case model::LinearKind::o: return "attn_output";
    case model::LinearKind::gate: return "ffn_gate";
    case model::LinearKind::up: return "ffn_up";
    case model::LinearKind::down: return "ffn_down";
  }
  return "";
}

std::string block_tensor(int layer, std::string_view base, std::string_view suffix) {
  return fmt::format("blk.{}.{}.{}", layer, base, suffix);
}

std::vector<std::int64_t> rope_row_permutation(std::int64_t rows, std::int64_t head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0 || rows % head_dim != 0) {
    fail("RoPE row permutation: {} rows are not whole heads of an even head_dim {}", rows, head_dim);
  }
  const std::int64_t half = head_dim / 2;
  std::vector<std::int64_t> perm(static_cast<std::size_t>(rows));
  for (std::int64_t h = 0; h < rows / head_dim; ++h) {
    for (std::int64_t i = 0; i < half; ++i) {
      for (std::int64_t j = 0; j < 2; ++j) {
        perm[static_cast<std::size_t>(h * head_dim + 2 * i + j)] = h * head_dim + j * half + i;
      }
    }
  }
  return perm;
}

std::vector<std::int64_t> inverse_permutation(const std::vector<std::int64_t>& perm) {
  std::vector<std::int64_t> inverse(perm.size());
  for (std::size_t p = 0; p < perm.size(); ++p) inverse[static_cast<std::size_t>(perm[p])] = static_cast<std::int64_t>(p);
  return inverse;
}

}  // namespace microscale::exporter::gguf
