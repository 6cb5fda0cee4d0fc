#pragma once
// Which tensors of a checkpoint are quantized: the weights of the decoder's linear layers
// (model.layers.N.self_attn.{q,k,v,o}_proj, model.layers.N.mlp.{gate,up,down}_proj, and the same
// names inside MoE experts), never embeddings or norms; lm_head only when asked.
#include <string>
#include <string_view>

namespace microscale::pipeline {

struct LinearSelection {
  bool include_lm_head = false;
  // True when `tensor_name` is "<prefix>.weight" of a selected linear.
  bool selects(std::string_view tensor_name) const;
};

// "model.layers.0.self_attn.q_proj.weight" -> "model.layers.0.self_attn.q_proj"
std::string linear_prefix(std::string_view weight_name);

}  // namespace microscale::pipeline
