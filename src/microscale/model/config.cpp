#include "microscale/model/config.hpp"

#include <algorithm>
#include <fstream>

#include <fmt/ranges.h>

#include "microscale/core/error.hpp"

namespace microscale::model {
namespace {

using nlohmann::json;

const json* member(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::int64_t required_int(const json& object, const char* key, const std::filesystem::path& source) {
  const json* value = member(object, key);
  if (value == nullptr) fail("{}: missing required key \"{}\"", source.string(), key);
  if (!value->is_number_integer()) fail("{}: \"{}\" should be an integer, is {}", source.string(), key, value->dump());
  const auto v = value->get<std::int64_t>();
  if (v <= 0) fail("{}: \"{}\" should be positive, is {}", source.string(), key, v);
  return v;
}

std::int64_t optional_int(const json& object, const char* key, std::int64_t fallback,
                          const std::filesystem::path& source) {
  return member(object, key) == nullptr ? fallback : required_int(object, key, source);
}

double optional_number(const json& object, const char* key, double fallback, const std::filesystem::path& source) {
  const json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_number()) fail("{}: \"{}\" should be a number, is {}", source.string(), key, value->dump());
  return value->get<double>();
}

double required_number(const json& object, const char* key, const std::filesystem::path& source,
                       std::string_view where) {
  const json* value = member(object, key);
  if (value == nullptr) fail("{}: {} is missing \"{}\"", source.string(), where, key);
  if (!value->is_number()) fail("{}: {}.{} should be a number, is {}", source.string(), where, key, value->dump());
  return value->get<double>();
}

bool optional_bool(const json& object, const char* key, bool fallback, const std::filesystem::path& source) {
  const json* value = member(object, key);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) fail("{}: \"{}\" should be true or false, is {}", source.string(), key, value->dump());
  return value->get<bool>();
}

std::string optional_string(const json& object, const char* key, std::string fallback) {
  const json* value = member(object, key);
  return value != nullptr && value->is_string() ? value->get<std::string>() : fallback;
}

// RoPE: transformers >= 5 writes "rope_parameters" {rope_type, rope_theta, ...}; older versions write
// "rope_theta" at the top level and "rope_scaling" {rope_type | type, ...} (null for plain RoPE).
RopeConfig parse_rope(const json& config, const std::filesystem::path& source) {
  RopeConfig rope;
  rope.theta = optional_number(config, "rope_theta", 10000.0, source);
  const json* params = member(config, "rope_parameters");
  const char* where = "rope_parameters";
  if (params == nullptr) {
    params = member(config, "rope_scaling");
    where = "rope_scaling";
  }
  if (params == nullptr) return rope;
  if (!params->is_object()) fail("{}: \"{}\" should be an object, is {}", source.string(), where, params->dump());
  rope.theta = optional_number(*params, "rope_theta", rope.theta, source);
  std::string type = optional_string(*params, "rope_type", optional_string(*params, "type", "default"));
  if (type == "default") {
    rope.type = RopeType::standard;
  } else if (type == "llama3") {
    rope.type = RopeType::llama3;
    rope.factor = required_number(*params, "factor", source, where);
    rope.low_freq_factor = required_number(*params, "low_freq_factor", source, where);
    rope.high_freq_factor = required_number(*params, "high_freq_factor", source, where);
    rope.original_max_position_embeddings =
        static_cast<std::int64_t>(required_number(*params, "original_max_position_embeddings", source, where));
    if (rope.factor <= 0 || rope.low_freq_factor <= 0 || rope.high_freq_factor <= rope.low_freq_factor ||
        rope.original_max_position_embeddings <= 0) {
      fail("{}: {} has inconsistent llama3 parameters (factor {}, low_freq_factor {}, high_freq_factor {}, "
           "original_max_position_embeddings {})",
           source.string(), where, rope.factor, rope.low_freq_factor, rope.high_freq_factor,
           rope.original_max_position_embeddings);
    }
  } else {
    fail("{}: RoPE type \"{}\" ({}) is not supported; supported: {}", source.string(), type, where,
         fmt::join(supported_rope_types(), ", "));
  }
  if (rope.theta <= 0) fail("{}: rope_theta should be positive, is {}", source.string(), rope.theta);
  const double partial = optional_number(*params, "partial_rotary_factor",
                                         optional_number(config, "partial_rotary_factor", 1.0, source), source);
  if (partial != 1.0) fail("{}: partial_rotary_factor {} is not supported (only 1.0)", source.string(), partial);
  return rope;
}

std::int64_t parse_sliding_window(const json& config, const std::string& model_type,
                                  const std::filesystem::path& source) {
  const json* window = member(config, "sliding_window");
  if (window == nullptr || model_type == "llama") return 0;
  bool applies = model_type == "mistral";
  if (model_type == "qwen2" || model_type == "qwen3") {
    applies = optional_bool(config, "use_sliding_window", false, source);
    if (const json* types = member(config, "layer_types"); types != nullptr && types->is_array()) {
      for (const auto& t : *types) applies = applies || (t.is_string() && t.get<std::string>() == "sliding_attention");
    }
  }
  if (!applies) return 0;
  if (!window->is_number_integer() || window->get<std::int64_t>() <= 0) {
    fail("{}: \"sliding_window\" should be a positive integer or null, is {}", source.string(), window->dump());
  }
  return window->get<std::int64_t>();
}

}  // namespace

const std::vector<std::string>& supported_model_types() {
  static const std::vector<std::string> types = {"llama", "mistral", "qwen2", "qwen3"};
  return types;
}

const std::vector<std::string>& supported_rope_types() {
  static const std::vector<std::string> types = {"default", "llama3"};
  return types;
}

std::int64_t ModelConfig::layer_parameter_count() const {
  const std::int64_t h = hidden_size;
  std::int64_t per_layer = h * q_dim() * 2 + h * kv_dim() * 2 + 3 * h * intermediate_size + 2 * h;
  if (qkv_bias) per_layer += q_dim() + 2 * kv_dim();
  if (o_bias) per_layer += h;
  if (mlp_bias) per_layer += 2 * intermediate_size + h;
  if (qk_norm) per_layer += 2 * head_dim;
  return per_layer;
}

std::int64_t ModelConfig::parameter_count() const {
  const std::int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return layer_parameter_count() * num_layers + embeddings + hidden_size;
}

ModelConfig parse_config(const json& config, const std::filesystem::path& source) {
  if (!config.is_object()) fail("{}: should hold a JSON object", source.string());
  ModelConfig c;
  c.model_type = optional_string(config, "model_type", "");
  const auto& types = supported_model_types();
  if (std::find(types.begin(), types.end(), c.model_type) == types.end()) {
    fail("{}: model_type \"{}\" is not supported; supported: {}", source.string(), c.model_type,
         fmt::join(types, ", "));
  }
  const std::string act = optional_string(config, "hidden_act", "silu");
  if (act != "silu") fail("{}: hidden_act \"{}\" is not supported (only silu)", source.string(), act);

  c.hidden_size = required_int(config, "hidden_size", source);
  c.intermediate_size = required_int(config, "intermediate_size", source);
  c.num_layers = static_cast<int>(required_int(config, "num_hidden_layers", source));
  c.num_heads = static_cast<int>(required_int(config, "num_attention_heads", source));
  c.num_kv_heads = static_cast<int>(optional_int(config, "num_key_value_heads", c.num_heads, source));
  c.vocab_size = required_int(config, "vocab_size", source);
  c.max_position_embeddings = required_int(config, "max_position_embeddings", source);
  c.rms_norm_eps = optional_number(config, "rms_norm_eps", 1e-6, source);
  c.tie_word_embeddings = optional_bool(config, "tie_word_embeddings", false, source);
  // transformers' Qwen3Config defaults head_dim to 128; the others derive it from the hidden size.
  const std::int64_t default_head_dim = c.model_type == "qwen3" ? 128 : c.hidden_size / c.num_heads;
  c.head_dim = optional_int(config, "head_dim", default_head_dim, source);
  if (member(config, "head_dim") == nullptr && c.model_type != "qwen3" && c.hidden_size % c.num_heads != 0) {
    fail("{}: hidden_size {} is not a multiple of num_attention_heads {}", source.string(), c.hidden_size,
         c.num_heads);
  }
  if (c.head_dim % 2 != 0) fail("{}: head_dim {} should be even for RoPE", source.string(), c.head_dim);
  if (c.num_heads % c.num_kv_heads != 0) {
    fail("{}: num_attention_heads {} is not a multiple of num_key_value_heads {}", source.string(), c.num_heads,
         c.num_kv_heads);
  }
  if (c.rms_norm_eps <= 0) fail("{}: rms_norm_eps should be positive, is {}", source.string(), c.rms_norm_eps);

  const bool attention_bias = optional_bool(config, "attention_bias", false, source);
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases and no o bias
  } else if (c.model_type == "llama" || c.model_type == "qwen3") {
    c.qkv_bias = c.o_bias = attention_bias;
  }
  if (c.model_type == "llama") c.mlp_bias = optional_bool(config, "mlp_bias", false, source);
  c.qk_norm = c.model_type == "qwen3";
  c.sliding_window = parse_sliding_window(config, c.model_type, source);
  c.rope = parse_rope(config, source);
  c.dtype = optional_string(config, "dtype", optional_string(config, "torch_dtype", "float32"));

  if (const json* bos = member(config, "bos_token_id"); bos != nullptr && bos->is_number_integer()) {
    c.bos_token_id = bos->get<std::int64_t>();
  }
  if (const json* eos = member(config, "eos_token_id"); eos != nullptr) {
    if (eos->is_number_integer()) c.eos_token_ids.push_back(eos->get<std::int64_t>());
    if (eos->is_array()) {
      for (const auto& e : *eos) {
        if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<std::int64_t>());
      }
    }
  }
  return c;
}

ModelConfig load_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "config.json";
  std::ifstream in(path);
  if (!in) fail("{}: cannot open (is {} a model directory?)", path.string(), model_dir.string());
  json config;
  try {
    config = json::parse(in);
  } catch (const json::exception& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
  return parse_config(config, path);
}

}  // namespace microscale::model
