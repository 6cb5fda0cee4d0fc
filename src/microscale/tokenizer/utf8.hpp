#pragma once
// UTF-8 helpers the tokenizer needs: validation, code point iteration, encoding, Rust-compatible
// lossy decoding (the `tokenizers` decoders produce text with String::from_utf8_lossy), and the
// Unicode White_Space property (Rust's char::is_whitespace).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace microscale::tokenizer::utf8 {

// Byte offset of the first byte that does not start a well-formed UTF-8 sequence, if any.
std::optional<std::size_t> first_invalid_byte(std::string_view text);

// Number of bytes of the sequence a lead byte starts (1 for ASCII and for stray bytes).
inline std::size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Decodes the code point at `pos` of well-formed UTF-8 and advances `pos` past it.
char32_t next_code_point(std::string_view text, std::size_t& pos);

// Decodes the code point that ends right before `end` (well-formed UTF-8, end > 0).
char32_t previous_code_point(std::string_view text, std::size_t end);

void append(std::string& out, char32_t code_point);

// Like Rust's String::from_utf8_lossy: every maximal ill-formed subsequence becomes one U+FFFD.
std::string decode_lossy(std::string_view bytes);

// Unicode White_Space (Rust's char::is_whitespace and regex \s).
bool is_whitespace(char32_t c);

}  // namespace microscale::tokenizer::utf8
