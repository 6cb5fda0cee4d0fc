#include "microscale/tokenizer/regex.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "microscale/core/error.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

// PCRE2's JIT needs a larger stack than its 32 KiB default for long runs of whitespace or symbols.
// One per thread, created on first use and released when the thread ends.
struct JitStack {
  pcre2_jit_stack* stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  JitStack() {
    if (stack && context) pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~JitStack() {
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(stack);
  }
  JitStack(const JitStack&) = delete;
  JitStack& operator=(const JitStack&) = delete;
};

pcre2_match_context* thread_match_context() {
  thread_local JitStack jit;
  return jit.context;
}

struct MatchData {
  pcre2_match_data* data;
  explicit MatchData(const pcre2_code* code) : data(pcre2_match_data_create_from_pattern(code, nullptr)) {}
  ~MatchData() { pcre2_match_data_free(data); }
  MatchData(const MatchData&) = delete;
  MatchData& operator=(const MatchData&) = delete;
};

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

struct Regex::Compiled {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Compiled() { pcre2_code_free(code); }
};

std::string oniguruma_to_pcre2(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '\\' || i + 1 == pattern.size()) {
      out.push_back(pattern[i]);
      continue;
    }
    // An escape: rewrite \s and \S (valid both inside and outside a class), copy any other pair as is
    // so that an escaped backslash never starts a new escape.
    const char next = pattern[++i];
    if (next == 's') {
      out += "\\p{White_Space}";
    } else if (next == 'S') {
      out += "\\P{White_Space}";
    } else {
      out.push_back('\\');
      out.push_back(next);
    }
  }
  return out;
}

Regex::Regex(std::string pattern, std::string_view context) : pattern_(std::move(pattern)) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern_.data()), pattern_.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code) fail("{}: regex /{}/ does not compile at offset {}: {}", context, pattern_, offset, pcre2_message(error));
  auto compiled = std::make_shared<Compiled>();
  compiled->code = code;
  compiled->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  compiled_ = std::move(compiled);
}

Regex Regex::from_oniguruma(std::string_view pattern, std::string_view context) {
  return Regex(oniguruma_to_pcre2(pattern), context);
}

Regex Regex::literal(std::string_view literal, std::string_view context) {
  std::string quoted = "\\Q";
  // \E inside \Q...\E would end the quote early: split it out.
  for (std::size_t i = 0; i < literal.size(); ++i) {
    if (literal[i] == '\\' && i + 1 < literal.size() && literal[i + 1] == 'E') {
      quoted += "\\E\\\\E\\Q";
      ++i;
    } else {
      quoted.push_back(literal[i]);
    }
  }
  quoted += "\\E";
  return Regex(std::move(quoted), context);
}

Regex regex_from_config(const Json& pattern, const ConfigPath& at) {
  if (pattern.is_object() && pattern.size() == 1) {
    if (const auto it = pattern.find("String"); it != pattern.end() && it->is_string())
      return Regex::literal(it->get<std::string>(), at.describe());
    if (const auto it = pattern.find("Regex"); it != pattern.end() && it->is_string())
      return Regex::from_oniguruma(it->get<std::string>(), at.describe());
  }
  at.fail(R"(expected {"String": "..."} or {"Regex": "..."})");
}

std::vector<Span> Regex::find_all(std::string_view text) const {
  std::vector<Span> spans;
  const MatchData match(compiled_->code);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  std::size_t start = 0;
  while (start <= text.size()) {
    int rc = 0;
    if (compiled_->jit) {
      rc = pcre2_jit_match(compiled_->code, subject, text.size(), start, 0, match.data, thread_match_context());
    }
    if (!compiled_->jit || rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(compiled_->code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, match.data, nullptr);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) fail("regex /{}/: matching failed: {}", pattern_, pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.data);
    const Span span{ovector[0], ovector[1]};
    spans.push_back(span);
    if (span.end > span.begin) {
      start = span.end;
    } else {
      if (span.end >= text.size()) break;
      start = span.end + utf8::sequence_length(static_cast<unsigned char>(text[span.end]));
    }
  }
  return spans;
}

}  // namespace microscale::tokenizer
