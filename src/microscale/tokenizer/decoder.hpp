#pragma once
// Decoders turn token strings back into text. Each stage rewrites the list of token strings, as in
// `tokenizers`' decode_chain; the final text is their concatenation. Supported types: ByteLevel,
// Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence.
#include <memory>
#include <string>
#include <vector>

#include "microscale/tokenizer/config.hpp"

namespace microscale::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for a JSON null; throws naming the file and field for an unsupported or malformed one.
std::unique_ptr<Decoder> parse_decoder(const Json& config, const ConfigPath& at);

}  // namespace microscale::tokenizer
