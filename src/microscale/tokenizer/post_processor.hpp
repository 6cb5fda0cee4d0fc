#pragma once
// Post-processors add special tokens around an encoded text when add_special_tokens is true. For a
// single sequence every supported kind amounts to fixed ids before and after the text, so that is
// what parsing produces. Supported types: TemplateProcessing, ByteLevel (adds nothing),
// RobertaProcessing / BertProcessing (cls ... sep), Sequence.
#include <cstdint>
#include <vector>

#include "microscale/tokenizer/config.hpp"

namespace microscale::tokenizer {

struct SpecialAffixes {
  std::vector<std::int32_t> prefix;  // e.g. BOS
  std::vector<std::int32_t> suffix;  // e.g. EOS
};

// Empty affixes for a JSON null; throws naming the file and field for an unsupported or malformed one.
SpecialAffixes parse_post_processor(const Json& config, const ConfigPath& at);

}  // namespace microscale::tokenizer
