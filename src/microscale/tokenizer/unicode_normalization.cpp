#include "microscale/tokenizer/unicode_normalization.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

struct CanonicalDecomposition {
  char32_t code_point, first, second;  // second == 0: a singleton decomposition
};
struct PrimaryComposition {
  char32_t first, second, composite;
};
struct CombiningClass {
  char32_t code_point;
  std::uint8_t value;
};
struct CodePointRange {
  char32_t first, last;
};

#include "microscale/tokenizer/unicode_normalization_data.inc"

// Hangul syllables decompose and compose arithmetically (Unicode chapter 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

int combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const auto* end = std::end(kCombiningClasses);
  const auto* it = std::lower_bound(std::begin(kCombiningClasses), end, c,
                                    [](const CombiningClass& e, char32_t v) { return e.code_point < v; });
  return it != end && it->code_point == c ? it->value : 0;
}

bool may_change_under_nfc(char32_t c) {
  if (c < 0xC0) return false;  // nothing below U+00C0 decomposes, combines or composes
  const auto* end = std::end(kNfcUnstableRanges);
  const auto* it = std::upper_bound(std::begin(kNfcUnstableRanges), end, c,
                                    [](char32_t v, const CodePointRange& r) { return v < r.first; });
  if (it == std::begin(kNfcUnstableRanges)) return false;
  --it;
  return c <= it->last;
}

void decompose_into(char32_t c, std::vector<char32_t>& out) {
  if (c >= kSBase && c < kSBase + kSCount) {
    const char32_t index = c - kSBase;
    out.push_back(kLBase + index / kNCount);
    out.push_back(kVBase + (index % kNCount) / kTCount);
    if (index % kTCount != 0) out.push_back(kTBase + index % kTCount);
    return;
  }
  if (c >= 0xC0) {
    const auto* end = std::end(kCanonicalDecompositions);
    const auto* it = std::lower_bound(std::begin(kCanonicalDecompositions), end, c,
                                      [](const CanonicalDecomposition& e, char32_t v) { return e.code_point < v; });
    if (it != end && it->code_point == c) {
      decompose_into(it->first, out);
      if (it->second != 0) decompose_into(it->second, out);
      return;
    }
  }
  out.push_back(c);
}

// Full canonical decomposition followed by the canonical ordering of each run of combining marks.
std::vector<char32_t> decompose_and_order(std::string_view text) {
  std::vector<char32_t> chars;
  chars.reserve(text.size());
  for (std::size_t pos = 0; pos < text.size();) decompose_into(utf8::next_code_point(text, pos), chars);
  std::size_t i = 0;
  while (i < chars.size()) {
    if (combining_class(chars[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t run_end = i;
    while (run_end < chars.size() && combining_class(chars[run_end]) != 0) ++run_end;
    std::stable_sort(chars.begin() + static_cast<std::ptrdiff_t>(i), chars.begin() + static_cast<std::ptrdiff_t>(run_end),
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = run_end;
  }
  return chars;
}

char32_t compose_pair(char32_t first, char32_t second) {
  if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount)
    return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
  if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
      second < kTBase + kTCount)
    return first + (second - kTBase);
  const auto* end = std::end(kPrimaryCompositions);
  const auto* it = std::lower_bound(std::begin(kPrimaryCompositions), end, std::pair{first, second},
                                    [](const PrimaryComposition& e, std::pair<char32_t, char32_t> v) {
                                      return e.first != v.first ? e.first < v.first : e.second < v.second;
                                    });
  return it != end && it->first == first && it->second == second ? it->composite : 0;
}

std::string encode(const std::vector<char32_t>& chars) {
  std::string out;
  out.reserve(chars.size());
  for (char32_t c : chars) utf8::append(out, c);
  return out;
}

}  // namespace

std::string to_nfd(std::string_view text) { return encode(decompose_and_order(text)); }

std::string to_nfc(std::string_view text) {
  bool stable = true;
  for (std::size_t pos = 0; pos < text.size() && stable;) {
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    stable = !may_change_under_nfc(utf8::next_code_point(text, pos));
  }
  if (stable) return std::string(text);

  std::vector<char32_t> chars = decompose_and_order(text);
  if (chars.empty()) return {};
  // Canonical composition: a mark composes with the last starter unless a character between them has
  // combining class 0 or >= its own (it is "blocked").
  std::size_t starter = 0;
  bool have_starter = combining_class(chars[0]) == 0;
  int last_class = 0;  // class of the last character kept after the starter; 0: none kept yet
  std::size_t write = 1;
  for (std::size_t read = 1; read < chars.size(); ++read) {
    const char32_t c = chars[read];
    const int cls = combining_class(c);
    const bool unblocked = last_class == 0 || last_class < cls;
    const char32_t composite = have_starter && unblocked ? compose_pair(chars[starter], c) : 0;
    if (composite != 0) {
      chars[starter] = composite;
      continue;
    }
    if (cls == 0) {
      starter = write;
      have_starter = true;
    }
    last_class = cls;
    chars[write++] = c;
  }
  chars.resize(write);
  return encode(chars);
}

std::string_view unicode_normalization_version() { return kUnicodeDataVersion; }

}  // namespace microscale::tokenizer
