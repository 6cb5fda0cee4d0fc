#pragma once
// Normalizers: text -> text before pre-tokenization. Supported types: NFC, NFD, Prepend, Replace,
// Strip, Sequence (those used by GPT-2, Llama 2/3, Mistral and Qwen2 tokenizer.json files).
#include <memory>
#include <string>
#include <string_view>

#include "microscale/tokenizer/config.hpp"

namespace microscale::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // `text` is well-formed UTF-8 and so is the result.
  virtual std::string normalize(std::string_view text) const = 0;
};

// nullptr for a JSON null; throws naming the file and field for an unsupported or malformed one.
std::unique_ptr<Normalizer> parse_normalizer(const Json& config, const ConfigPath& at);

}  // namespace microscale::tokenizer
