#include "microscale/tokenizer/added_tokens.hpp"

#include <algorithm>

#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

// A word character as Rust's regex crate defines \w: Alphabetic, marks, decimal digits, connector
// punctuation and the joiners.
bool is_word_character(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  static const Regex word = Regex::from_oniguruma(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])", "word character");
  std::string spelled;
  utf8::append(spelled, c);
  return !word.find_all(spelled).empty();
}

bool ends_with_word(std::string_view text) { return !text.empty() && is_word_character(utf8::previous_code_point(text, text.size())); }

bool starts_with_word(std::string_view text) {
  std::size_t pos = 0;
  return !text.empty() && is_word_character(utf8::next_code_point(text, pos));
}

// Start of the whitespace run that ends `text`.
std::size_t trailing_whitespace_start(std::string_view text) {
  std::size_t end = text.size();
  while (end > 0) {
    std::size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    std::size_t probe = start;
    if (!utf8::is_whitespace(utf8::next_code_point(text, probe))) break;
    end = start;
  }
  return end;
}

// Length of the whitespace run that starts `text`.
std::size_t leading_whitespace_length(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t next = pos;
    if (!utf8::is_whitespace(utf8::next_code_point(text, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<AddedToken> tokens, const std::vector<std::string>& patterns)
    : tokens_(std::move(tokens)) {
  trie_.emplace_back();
  for (std::size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& pattern = patterns[t];
    if (pattern.empty()) continue;
    first_byte_[static_cast<unsigned char>(pattern[0])] = true;
    std::int32_t node = 0;
    for (char c : pattern) {
      const auto byte = static_cast<unsigned char>(c);
      std::int32_t next = child(node, byte);
      if (next < 0) {
        next = static_cast<std::int32_t>(trie_.size());
        auto& children = trie_[static_cast<std::size_t>(node)].children;
        children.insert(std::lower_bound(children.begin(), children.end(), std::pair{byte, std::int32_t{0}},
                                         [](const auto& a, const auto& b) { return a.first < b.first; }),
                        {byte, next});
        trie_.emplace_back();
      }
      node = next;
    }
    // The same pattern twice: the first token keeps it.
    if (trie_[static_cast<std::size_t>(node)].token < 0) trie_[static_cast<std::size_t>(node)].token = static_cast<std::int32_t>(t);
  }
}

std::int32_t AddedTokenMatcher::child(std::int32_t node, unsigned char byte) const {
  const auto& children = trie_[static_cast<std::size_t>(node)].children;
  const auto it = std::lower_bound(children.begin(), children.end(), byte,
                                   [](const auto& entry, unsigned char b) { return entry.first < b; });
  return it != children.end() && it->first == byte ? it->second : -1;
}

std::vector<AddedTokenMatcher::Match> AddedTokenMatcher::leftmost_longest(std::string_view text) const {
  std::vector<Match> matches;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    std::int32_t node = 0, best = -1;
    std::size_t best_end = pos;
    for (std::size_t i = pos; i < text.size(); ++i) {
      node = child(node, static_cast<unsigned char>(text[i]));
      if (node < 0) break;
      if (trie_[static_cast<std::size_t>(node)].token >= 0) {
        best = trie_[static_cast<std::size_t>(node)].token;
        best_end = i + 1;
      }
    }
    if (best < 0) {
      ++pos;
      continue;
    }
    matches.push_back({pos, best_end, best});
    pos = best_end;
  }
  return matches;
}

std::vector<AddedTokenSplit> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<AddedTokenSplit> parts;
  if (text.empty()) return parts;
  std::size_t done = 0;  // end of the last part emitted
  for (const Match& m : leftmost_longest(text)) {
    const AddedToken& token = tokens_[static_cast<std::size_t>(m.token)];
    std::size_t begin = m.begin, end = m.end;
    if (token.single_word) {
      const bool space_before = begin == 0 || !ends_with_word(text.substr(0, begin));
      const bool space_after = end == text.size() || !starts_with_word(text.substr(end));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) begin = std::max(trailing_whitespace_start(text.substr(0, begin)), done);
    if (token.rstrip) end += leading_whitespace_length(text.substr(end));
    if (begin > done) parts.push_back({{done, begin}, -1});
    parts.push_back({{begin, end}, token.id});
    done = std::max(done, end);
  }
  if (done < text.size()) parts.push_back({{done, text.size()}, -1});
  return parts;
}

}  // namespace microscale::tokenizer
