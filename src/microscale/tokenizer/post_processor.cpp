#include "microscale/tokenizer/post_processor.hpp"

#include <map>
#include <string>

namespace microscale::tokenizer {
namespace {

std::vector<std::int32_t> ids_of(const Json& value, const ConfigPath& at) {
  if (!value.is_array()) at.fail("expected a list of ids");
  std::vector<std::int32_t> ids;
  for (const Json& id : value) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > INT32_MAX)
      at.fail("expected non-negative 32-bit ids");
    ids.push_back(static_cast<std::int32_t>(id.get<std::int64_t>()));
  }
  return ids;
}

SpecialAffixes parse_template(const Json& config, const ConfigPath& at) {
  std::map<std::string, std::vector<std::int32_t>> special_ids;
  const Json& specials = require(config, "special_tokens", at);
  if (!specials.is_object()) (at / "special_tokens").fail("expected an object");
  for (const auto& [name, entry] : specials.items()) {
    const ConfigPath here = at / "special_tokens" / name;
    special_ids[name] = ids_of(require(entry, "ids", here), here / "ids");
  }
  const Json& single = require(config, "single", at);
  if (!single.is_array()) (at / "single").fail("expected a list of template pieces");
  SpecialAffixes affixes;
  bool seen_sequence = false;
  for (std::size_t i = 0; i < single.size(); ++i) {
    const ConfigPath here = (at / "single")[i];
    const Json& piece = single[i];
    if (piece.is_object() && piece.contains("Sequence")) {
      if (seen_sequence) here.fail("a single-sequence template may hold the sequence only once");
      seen_sequence = true;
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      const std::string name = require_string(piece["SpecialToken"], "id", here / "SpecialToken");
      const auto it = special_ids.find(name);
      if (it == special_ids.end()) here.fail("special token \"" + name + "\" is not in special_tokens");
      auto& side = seen_sequence ? affixes.suffix : affixes.prefix;
      side.insert(side.end(), it->second.begin(), it->second.end());
    } else {
      here.fail("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  if (!seen_sequence) (at / "single").fail("the template has no $A sequence");
  return affixes;
}

// RobertaProcessing / BertProcessing carry "cls": [token, id] and "sep": [token, id].
std::int32_t pair_id(const Json& config, std::string_view key, const ConfigPath& at) {
  const Json& value = require(config, key, at);
  if (!value.is_array() || value.size() != 2) (at / key).fail("expected [token, id]");
  return ids_of(Json::array({value[1]}), at / key).front();
}

}  // namespace

SpecialAffixes parse_post_processor(const Json& config, const ConfigPath& at) {
  if (config.is_null()) return {};
  const std::string type = component_type(config, at);
  if (type == "TemplateProcessing") return parse_template(config, at);
  if (type == "ByteLevel") return {};
  if (type == "RobertaProcessing" || type == "BertProcessing")
    return {{pair_id(config, "cls", at)}, {pair_id(config, "sep", at)}};
  if (type == "Sequence") {
    const Json& list = require(config, "processors", at);
    if (!list.is_array()) (at / "processors").fail("expected a list");
    // Each stage wraps what the previous ones produced.
    SpecialAffixes affixes;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const SpecialAffixes stage = parse_post_processor(list[i], (at / "processors")[i]);
      affixes.prefix.insert(affixes.prefix.begin(), stage.prefix.begin(), stage.prefix.end());
      affixes.suffix.insert(affixes.suffix.end(), stage.suffix.begin(), stage.suffix.end());
    }
    return affixes;
  }
  (at / "type").fail("post-processor '" + type +
                     "' is not supported (supported: TemplateProcessing, ByteLevel, RobertaProcessing, "
                     "BertProcessing, Sequence)");
}

}  // namespace microscale::tokenizer
