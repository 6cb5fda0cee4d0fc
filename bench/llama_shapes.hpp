#pragma once
// Llama-3-8B's configuration for the GPU benchmarks (decode on an 8B-shaped model, GPTQ on one
// 8B-shaped layer), and a layer's linears derived from it through the model module's input groups,
// so that the shapes are written once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llama_dims.hpp"
#include "microscale/model/config.hpp"
#include "microscale/model/model.hpp"

namespace microscale::bench {

inline model::ModelConfig llama3_8b_config(int layers = 32) {
  model::ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = kLlama3_8B.hidden;
  c.intermediate_size = kLlama3_8B.intermediate;
  c.num_layers = layers;
  c.num_heads = static_cast<int>(kLlama3_8B.heads);
  c.num_kv_heads = static_cast<int>(kLlama3_8B.kv_heads);
  c.head_dim = static_cast<int>(kLlama3_8B.head_dim);
  c.vocab_size = 128256;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5;
  c.rope.type = model::RopeType::llama3;
  c.rope.theta = 500000.0;
  c.rope.factor = 8.0;
  c.rope.low_freq_factor = 1.0;
  c.rope.high_freq_factor = 4.0;
  c.rope.original_max_position_embeddings = 8192;
  return c;
}

// "q_proj" from "self_attn.q_proj".
inline std::string short_linear_name(model::LinearKind kind) {
  const std::string_view full = model::linear_name(kind);
  return std::string(full.substr(full.find('.') + 1));
}

struct LayerLinear {
  std::string name;    // q_proj, ..., down_proj
  std::int64_t rows;   // out features
  std::int64_t cols;   // in features
  std::size_t input;   // index into model::kInputGroups: linears with the same input share a Hessian
};

// The linears of one decoder layer, in the order a layer computes them.
inline std::vector<LayerLinear> layer_linears(const model::ModelConfig& c) {
  std::vector<LayerLinear> out;
  for (std::size_t g = 0; g < std::size(model::kInputGroups); ++g) {
    for (const model::LinearKind kind : model::kInputGroups[g].kinds) {
      const model::LinearShape shape = model::linear_shape(c, kind);
      out.push_back({short_linear_name(kind), shape.out, shape.in, g});
    }
  }
  return out;
}

// One row per input group: its name ("q/k/v input") and width.
struct LayerInput {
  std::string name;
  std::int64_t width;
};

inline std::vector<LayerInput> layer_inputs(const model::ModelConfig& c) {
  std::vector<LayerInput> out;
  for (const model::InputGroup& group : model::kInputGroups) {
    std::string name;
    for (const model::LinearKind kind : group.kinds) {
      std::string part = short_linear_name(kind);
      part = part.substr(0, part.find("_proj"));
      name += (name.empty() ? "" : "/") + part;
    }
    out.push_back({name + " input", model::linear_shape(c, group.kinds.front()).in});
  }
  return out;
}

}  // namespace microscale::bench
