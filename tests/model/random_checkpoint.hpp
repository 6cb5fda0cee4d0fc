#pragma once
// Writes a small random checkpoint for any supported architecture (F32 weights, so the runtime sees
// exactly the values the reference uses), and returns its tensors by name.
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/io/safetensors.hpp"

namespace microscale::testing {

struct RandomModelSpec {
  std::string model_type = "llama";
  int hidden = 32;
  int intermediate = 48;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 8;
  int vocab = 64;
  bool tied = false;
  bool attention_bias = false;  // llama/qwen3: q,k,v,o biases (qwen2 always has q,k,v biases)
  nlohmann::json extra = nlohmann::json::object();  // merged into config.json (rope_scaling, ...)
};

using TensorMap = std::map<std::string, std::vector<float>>;

inline nlohmann::json random_model_config(const RandomModelSpec& s) {
  nlohmann::json c = {{"model_type", s.model_type},
                      {"hidden_size", s.hidden},
                      {"intermediate_size", s.intermediate},
                      {"num_hidden_layers", s.layers},
                      {"num_attention_heads", s.heads},
                      {"num_key_value_heads", s.kv_heads},
                      {"head_dim", s.head_dim},
                      {"vocab_size", s.vocab},
                      {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", s.tied},
                      {"attention_bias", s.attention_bias},
                      {"torch_dtype", "float32"},
                      {"eos_token_id", 1}};
  for (auto& [key, value] : s.extra.items()) c[key] = value;
  return c;
}

inline TensorMap write_random_model(const std::filesystem::path& dir, const RandomModelSpec& s, unsigned seed = 7) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.15f);
  TensorMap tensors;
  io::SafetensorsWriter writer;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float center) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = center + normal(rng);
    writer.add(name, io::DType::F32, shape, io::as_bytes_vector(std::span<const float>(v)));
    tensors[name] = std::move(v);
  };
  const bool qkv_bias = s.model_type == "qwen2" || s.attention_bias;
  const bool o_bias = s.model_type != "qwen2" && s.attention_bias;
  const int q_dim = s.heads * s.head_dim;
  const int kv_dim = s.kv_heads * s.head_dim;
  add("model.embed_tokens.weight", {s.vocab, s.hidden}, 0.0f);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.hidden}, 1.0f);
    add(p + "post_attention_layernorm.weight", {s.hidden}, 1.0f);
    add(p + "self_attn.q_proj.weight", {q_dim, s.hidden}, 0.0f);
    add(p + "self_attn.k_proj.weight", {kv_dim, s.hidden}, 0.0f);
    add(p + "self_attn.v_proj.weight", {kv_dim, s.hidden}, 0.0f);
    add(p + "self_attn.o_proj.weight", {s.hidden, q_dim}, 0.0f);
    if (qkv_bias) {
      add(p + "self_attn.q_proj.bias", {q_dim}, 0.0f);
      add(p + "self_attn.k_proj.bias", {kv_dim}, 0.0f);
      add(p + "self_attn.v_proj.bias", {kv_dim}, 0.0f);
    }
    if (o_bias) add(p + "self_attn.o_proj.bias", {s.hidden}, 0.0f);
    if (s.model_type == "qwen3") {
      add(p + "self_attn.q_norm.weight", {s.head_dim}, 1.0f);
      add(p + "self_attn.k_norm.weight", {s.head_dim}, 1.0f);
    }
    add(p + "mlp.gate_proj.weight", {s.intermediate, s.hidden}, 0.0f);
    add(p + "mlp.up_proj.weight", {s.intermediate, s.hidden}, 0.0f);
    add(p + "mlp.down_proj.weight", {s.hidden, s.intermediate}, 0.0f);
  }
  add("model.norm.weight", {s.hidden}, 1.0f);
  if (!s.tied) add("lm_head.weight", {s.vocab, s.hidden}, 0.0f);
  writer.write(dir / "model.safetensors");
  std::ofstream(dir / "config.json") << random_model_config(s).dump(2);
  return tensors;
}

}  // namespace microscale::testing
