#pragma once
// Added tokens (special tokens such as <|endoftext|> and user-added ones) are cut out of the text
// before the normalizer and the model see it, as `tokenizers`' AddedVocabulary does: tokens with
// "normalized": false are searched in the raw text, the others in each normalized piece. Matching is
// leftmost-longest; "single_word" rejects a match touching a word character, "lstrip"/"rstrip"
// swallow the whitespace on that side.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/tokenizer/regex.hpp"

namespace microscale::tokenizer {

struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A part of a text: either an added token or a stretch of text between them.
struct AddedTokenSplit {
  Span span;
  std::int32_t token_id = -1;  // >= 0: this part is that added token
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // `patterns[i]` is the string searched for `tokens[i]` (its content, normalized or not).
  AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns);

  bool empty() const { return tokens_.empty(); }
  // Covers all of `text` (an empty text gives no parts).
  std::vector<AddedTokenSplit> split(std::string_view text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, std::int32_t>> children;  // sorted by byte
    std::int32_t token = -1;                                      // index into tokens_ ending here
  };
  struct Match {
    std::size_t begin, end;
    std::int32_t token;
  };
  std::vector<Match> leftmost_longest(std::string_view text) const;
  std::int32_t child(std::int32_t node, unsigned char byte) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> trie_;
  bool first_byte_[256] = {};
};

}  // namespace microscale::tokenizer
