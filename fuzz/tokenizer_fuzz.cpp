// libFuzzer harness: a tokenizer.json of arbitrary text, loaded, then used to encode and decode a
// fixed text with special tokens, byte fallback and Unicode in it.
#include <string>

#include "fuzz_input.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  microscale::fuzz::expect_clean([&] {
    const auto tok = microscale::tokenizer::Tokenizer::from_json_text(text, "fuzz/tokenizer.json");
    const auto ids = tok.encode("Hello  world!\n\xE2\x80\x94 caf\xC3\xA9 <s> 123\t\xF0\x9F\x99\x82", true);
    (void)tok.decode(ids);
  });
  return 0;
}
