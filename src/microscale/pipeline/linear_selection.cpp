#include "microscale/pipeline/linear_selection.hpp"

namespace microscale::pipeline {

bool LinearSelection::selects(std::string_view name) const {
  if (!name.ends_with(".weight")) return false;
  if (include_lm_head && name == "lm_head.weight") return true;
  if (!name.starts_with("model.layers.")) return false;
  const std::string_view prefix = name.substr(0, name.size() - std::string_view(".weight").size());
  return prefix.ends_with("_proj") &&
         (prefix.find(".self_attn.") != std::string_view::npos || prefix.find(".mlp.") != std::string_view::npos);
}

std::string linear_prefix(std::string_view weight_name) {
  return std::string(weight_name.substr(0, weight_name.size() - std::string_view(".weight").size()));
}

}  // namespace microscale::pipeline
