#pragma once
// GPT-2's reversible byte <-> character map: byte-level BPE vocabularies spell every byte as a
// printable character (printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100..U+0143 in byte order), so "Ġ" is the space byte 0x20 and "Ċ" is '\n'.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace microscale::tokenizer::byte_level {

// The UTF-8 spelling of each byte's character.
const std::array<std::string, 256>& byte_to_char();

// The byte a character stands for, if it is one of the 256.
std::optional<std::uint8_t> char_to_byte(char32_t c);

// Appends the byte-level spelling of `bytes` to `out`.
void append_encoded(std::string_view bytes, std::string& out);

}  // namespace microscale::tokenizer::byte_level
