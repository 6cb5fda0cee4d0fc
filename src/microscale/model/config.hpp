#pragma once
// The architecture of a decoder-only checkpoint, read from its config.json. Every supported family
// (llama, mistral, qwen2, qwen3) is the same pre-norm decoder layer; what differs is data here:
// which linears carry biases, whether q/k get a per-head RMSNorm, the RoPE frequencies.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace microscale::model {

enum class RopeType { standard, llama3 };

struct RopeConfig {
  RopeType type = RopeType::standard;
  double theta = 10000.0;
  // llama3 only (Llama 3.1+ long-context scaling).
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  std::int64_t original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string model_type;        // "llama" | "mistral" | "qwen2" | "qwen3"
  std::int64_t hidden_size = 0;
  std::int64_t intermediate_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  std::int64_t head_dim = 0;     // explicit in config.json, else hidden_size / num_heads (qwen3: 128)
  std::int64_t vocab_size = 0;
  std::int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;         // qwen2 always; llama/qwen3 with attention_bias
  bool o_bias = false;           // llama/qwen3 with attention_bias
  bool mlp_bias = false;         // llama with mlp_bias
  bool qk_norm = false;          // qwen3: RMSNorm over head_dim on every q and k head, before RoPE
  // Sliding-window attention only changes results for sequences longer than the window; the runtime
  // implements full causal attention and refuses longer sequences. 0 = no window.
  std::int64_t sliding_window = 0;
  RopeConfig rope;
  std::string dtype;             // "bfloat16", ... as stored (informational: compute is FP32)
  std::optional<std::int64_t> bos_token_id;
  std::vector<std::int64_t> eos_token_ids;

  std::int64_t q_dim() const { return num_heads * head_dim; }
  std::int64_t kv_dim() const { return num_kv_heads * head_dim; }
  // Parameters of the matmul weights, embeddings and norms (what a float checkpoint stores).
  std::int64_t parameter_count() const;
  // Those of one decoder layer (its linears, biases and norms).
  std::int64_t layer_parameter_count() const;
};

// Parses and validates; throws microscale::Error naming `source` (the config.json path) and the key.
ModelConfig parse_config(const nlohmann::json& json, const std::filesystem::path& source);
ModelConfig load_config(const std::filesystem::path& model_dir);

// Model types and RoPE types this runtime implements (for error messages and docs).
const std::vector<std::string>& supported_model_types();
const std::vector<std::string>& supported_rope_types();

}  // namespace microscale::model
