#pragma once
// Unicode canonical normalization (NFC, NFD) for the tokenizer's NFC/NFD normalizers (Qwen2 uses NFC).
// Tables are generated from Python's unicodedata by tools/make_tokenizer_fixtures.py; the algorithm
// is the standard one: full canonical decomposition, canonical ordering by combining class, then
// canonical composition of unblocked pairs (Hangul syllables algorithmically).
#include <string>
#include <string_view>

namespace microscale::tokenizer {

// Input must be well-formed UTF-8.
std::string to_nfc(std::string_view text);
std::string to_nfd(std::string_view text);

// The Unicode version of the tables, e.g. "14.0.0".
std::string_view unicode_normalization_version();

}  // namespace microscale::tokenizer
