#include "microscale/tokenizer/byte_level.hpp"

#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer::byte_level {
namespace {

bool stands_for_itself(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

std::array<char32_t, 256> make_byte_to_code_point() {
  std::array<char32_t, 256> map{};
  char32_t next = 0x100;
  for (int b = 0; b < 256; ++b) map[static_cast<std::size_t>(b)] = stands_for_itself(b) ? static_cast<char32_t>(b) : next++;
  return map;
}

const std::array<char32_t, 256>& byte_to_code_point() {
  static const std::array<char32_t, 256> map = make_byte_to_code_point();
  return map;
}

}  // namespace

const std::array<std::string, 256>& byte_to_char() {
  static const std::array<std::string, 256> spelled = [] {
    std::array<std::string, 256> out;
    for (std::size_t b = 0; b < 256; ++b) utf8::append(out[b], byte_to_code_point()[b]);
    return out;
  }();
  return spelled;
}

std::optional<std::uint8_t> char_to_byte(char32_t c) {
  if (c < 0x100 && stands_for_itself(static_cast<int>(c))) return static_cast<std::uint8_t>(c);
  if (c >= 0x100 && c < 0x144) {
    // The 68 remapped bytes, in increasing byte order.
    static const std::array<std::uint8_t, 68> remapped = [] {
      std::array<std::uint8_t, 68> out{};
      std::size_t n = 0;
      for (int b = 0; b < 256; ++b)
        if (!stands_for_itself(b)) out[n++] = static_cast<std::uint8_t>(b);
      return out;
    }();
    return remapped[c - 0x100];
  }
  return std::nullopt;
}

void append_encoded(std::string_view bytes, std::string& out) {
  const auto& spelled = byte_to_char();
  for (char b : bytes) out += spelled[static_cast<unsigned char>(b)];
}

}  // namespace microscale::tokenizer::byte_level
