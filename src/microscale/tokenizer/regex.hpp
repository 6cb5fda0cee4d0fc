#pragma once
// PCRE2 (UTF + UCP, JIT where available) for the regexes a tokenizer.json carries. Those were written
// for Oniguruma, which `tokenizers` runs them with; `from_oniguruma` rewrites the one construct whose
// meaning differs in PCRE2 for the patterns in use: \s and \S, which Oniguruma defines as the Unicode
// White_Space property (PCRE2's \s also takes U+180E).
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/tokenizer/config.hpp"

namespace microscale::tokenizer {

struct Span {
  std::size_t begin = 0;
  std::size_t end = 0;
};

class Regex {
 public:
  // Throws microscale::Error with `context` and PCRE2's message when the pattern does not compile.
  static Regex from_oniguruma(std::string_view pattern, std::string_view context);
  // Matches `literal` exactly (for "String" split patterns).
  static Regex literal(std::string_view literal, std::string_view context);

  // Every non-overlapping match, leftmost first, in a well-formed UTF-8 text. After an empty match
  // the search resumes one character later.
  std::vector<Span> find_all(std::string_view text) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  Regex(std::string pattern, std::string_view context);
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
};

// A tokenizer.json pattern object: {"String": "literal"} or {"Regex": "oniguruma pattern"}.
Regex regex_from_config(const Json& pattern, const ConfigPath& at);

// The rewrite `from_oniguruma` applies (exposed for tests).
std::string oniguruma_to_pcre2(std::string_view pattern);

}  // namespace microscale::tokenizer
