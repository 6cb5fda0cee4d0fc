#pragma once
// Pre-tokenizers: split normalized text into the pieces the model tokenizes one by one, and may
// rewrite them (ByteLevel spells bytes as characters, Metaspace turns spaces into "▁").
// Supported types: ByteLevel, Split, Metaspace, Digits, WhitespaceSplit, Sequence.
#include <memory>
#include <string>
#include <vector>

#include "microscale/tokenizer/config.hpp"
#include "microscale/tokenizer/regex.hpp"

namespace microscale::tokenizer {

struct Piece {
  std::string text;
  // The piece begins where the caller's text begins (Metaspace's prepend_scheme "first" needs it).
  bool at_input_start = false;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Appends the non-empty pieces `piece` splits into to `out`.
  virtual void split(const Piece& piece, std::vector<Piece>& out) const = 0;
};

// How a split treats the pattern's matches (`tokenizers`' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// The pieces of `text` for the given matches (non-overlapping, in order), as `tokenizers` splits them;
// `invert` treats the text between matches as the matches. Empty pieces are dropped.
std::vector<Span> split_spans(std::size_t text_size, const std::vector<Span>& matches, SplitBehavior behavior,
                              bool invert);

// nullptr for a JSON null; throws naming the file and field for an unsupported or malformed one.
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& config, const ConfigPath& at);

}  // namespace microscale::tokenizer
