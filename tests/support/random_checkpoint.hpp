#pragma once
// Writes a small random checkpoint for any supported architecture, and returns its tensors by name:
// F32 weights by default (the runtime then sees exactly the values a reference uses), or BF16 as
// Hugging Face checkpoints come (the values returned are then the BF16-rounded ones). The one
// checkpoint generator of the tests; tiny_llama_spec() is the BF16 Llama the pipeline, export and
// CLI tests quantize.
#include <filesystem>
#include <map>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/formats/codecs.hpp"
#include "microscale/io/atomic_file.hpp"
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
  io::DType dtype = io::DType::F32;  // F32 or BF16
  float weight_std = 0.15f;          // weights ~ N(0, std), norm weights ~ 1 + N(0, std)
  int max_positions = 256;
  // tokenizer.json: copied from this file when set; a stand-in (not a tokenizer) when
  // stand_in_tokenizer; none otherwise.
  std::filesystem::path tokenizer_json;
  bool stand_in_tokenizer = false;
  nlohmann::json extra = nlohmann::json::object();  // merged into config.json (rope_scaling, ...)
};

// A BF16 Llama of 2 layers, hidden 64, with a stand-in tokenizer: what the tests that quantize,
// export or run the CLI on a model directory start from (set vocab and tokenizer_json as needed).
inline RandomModelSpec tiny_llama_spec() {
  RandomModelSpec s;
  s.hidden = 64;
  s.intermediate = 128;
  s.heads = 4;
  s.kv_heads = 2;
  s.head_dim = 16;
  s.vocab = 96;
  s.dtype = io::DType::BF16;
  s.weight_std = 0.05f;
  s.max_positions = 128;
  s.stand_in_tokenizer = true;
  s.extra = {{"architectures", {"LlamaForCausalLM"}}, {"bos_token_id", 0}, {"eos_token_id", 0}};
  return s;
}

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
                      {"max_position_embeddings", s.max_positions},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 10000.0},
                      {"hidden_act", "silu"},
                      {"tie_word_embeddings", s.tied},
                      {"attention_bias", s.attention_bias},
                      {"torch_dtype", s.dtype == io::DType::BF16 ? "bfloat16" : "float32"},
                      {"eos_token_id", 1}};
  for (auto& [key, value] : s.extra.items()) c[key] = value;
  return c;
}

inline TensorMap write_random_model(const std::filesystem::path& dir, const RandomModelSpec& s, unsigned seed = 7) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, s.weight_std);
  const bool bf16 = s.dtype == io::DType::BF16;
  TensorMap tensors;
  io::SafetensorsWriter writer;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, float center) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) {
      x = center + normal(rng);
      if (bf16) x = formats::bf16_to_float(formats::bf16_from_float(x));
    }
    writer.add(name, s.dtype, shape,
               bf16 ? io::bf16_bytes_vector(v) : io::as_bytes_vector(std::span<const float>(v)));
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
  io::write_file_atomic(dir / "config.json", random_model_config(s).dump(2));
  if (!s.tokenizer_json.empty()) {
    io::copy_file_atomic(s.tokenizer_json, dir / "tokenizer.json");
  } else if (s.stand_in_tokenizer) {
    io::write_file_atomic(dir / "tokenizer.json", std::string("{\"stand-in\": \"not a real tokenizer\"}\n"));
  }
  return tensors;
}

}  // namespace microscale::testing
