#pragma once
// Writes a small Llama-shaped checkpoint (config.json, BF16 model.safetensors, a stand-in tokenizer.json)
// with seeded random weights, for tests that need a model directory but not a trained model.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/formats/codecs.hpp"
#include "microscale/io/atomic_file.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::testing {

struct TinyCheckpointShape {
  int hidden = 64;
  int intermediate = 128;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int vocab = 96;
  std::filesystem::path tokenizer_json;  // copied in when set; else a stand-in file
};

inline std::vector<std::byte> bf16_bytes_of(const std::vector<float>& values) {
  std::vector<std::byte> out(values.size() * 2);
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::uint16_t b = formats::bf16_from_float(values[i]);
    std::memcpy(out.data() + 2 * i, &b, 2);
  }
  return out;
}

// Returns the float values (already BF16-rounded) of every tensor written, by name.
inline std::map<std::string, std::vector<float>> write_tiny_checkpoint(const std::filesystem::path& dir,
                                                                       TinyCheckpointShape s = {},
                                                                       unsigned seed = 1) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::map<std::string, std::vector<float>> values;
  io::SafetensorsWriter writer;
  auto add = [&](const std::string& name, std::vector<std::int64_t> shape, bool ones) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = formats::bf16_to_float(formats::bf16_from_float(ones ? 1.0f + normal(rng) : normal(rng)));
    writer.add(name, io::DType::BF16, shape, bf16_bytes_of(v));
    values[name] = std::move(v);
  };
  const int head_dim = s.hidden / s.heads;
  add("model.embed_tokens.weight", {s.vocab, s.hidden}, false);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", {s.hidden}, true);
    add(p + "self_attn.q_proj.weight", {s.heads * head_dim, s.hidden}, false);
    add(p + "self_attn.k_proj.weight", {s.kv_heads * head_dim, s.hidden}, false);
    add(p + "self_attn.v_proj.weight", {s.kv_heads * head_dim, s.hidden}, false);
    add(p + "self_attn.o_proj.weight", {s.hidden, s.heads * head_dim}, false);
    add(p + "post_attention_layernorm.weight", {s.hidden}, true);
    add(p + "mlp.gate_proj.weight", {s.intermediate, s.hidden}, false);
    add(p + "mlp.up_proj.weight", {s.intermediate, s.hidden}, false);
    add(p + "mlp.down_proj.weight", {s.hidden, s.intermediate}, false);
  }
  add("model.norm.weight", {s.hidden}, true);
  add("lm_head.weight", {s.vocab, s.hidden}, false);
  writer.write(dir / "model.safetensors");

  const nlohmann::json config = {
      {"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"},
      {"hidden_size", s.hidden},                {"intermediate_size", s.intermediate},
      {"num_hidden_layers", s.layers},          {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.kv_heads},      {"vocab_size", s.vocab},
      {"max_position_embeddings", 128},         {"rms_norm_eps", 1e-5},
      {"rope_theta", 10000.0},                  {"hidden_act", "silu"},
      {"tie_word_embeddings", false},           {"torch_dtype", "bfloat16"},
      {"bos_token_id", 0},                      {"eos_token_id", 0}};
  io::write_file_atomic(dir / "config.json", config.dump(2));
  if (s.tokenizer_json.empty()) {
    io::write_file_atomic(dir / "tokenizer.json", std::string("{\"stand-in\": \"not a real tokenizer\"}\n"));
  } else {
    io::copy_file_atomic(s.tokenizer_json, dir / "tokenizer.json");
  }
  return values;
}

}  // namespace microscale::testing
