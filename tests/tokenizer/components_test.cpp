// The tokenizer's building blocks against hand-derived expectations (each value below was worked
// out by hand or checked with Python / the `tokenizers` library when the test was written).
#include <gtest/gtest.h>

#include "microscale/tokenizer/byte_level.hpp"
#include "microscale/tokenizer/pre_tokenizer.hpp"
#include "microscale/tokenizer/regex.hpp"
#include "microscale/tokenizer/unicode_normalization.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

std::vector<std::string> pieces(std::string_view text, const std::vector<Span>& spans) {
  std::vector<std::string> out;
  for (const Span& s : spans) out.emplace_back(text.substr(s.begin, s.end - s.begin));
  return out;
}

std::vector<std::string> split_on_dash(SplitBehavior behavior, bool invert) {
  const std::string text = "the-final--countdown-";
  return pieces(text, split_spans(text.size(), Regex::literal("-", "test").find_all(text), behavior, invert));
}

using Strings = std::vector<std::string>;

TEST(SplitSpans, EveryBehaviorAsTokenizersDoes) {
  EXPECT_EQ(split_on_dash(SplitBehavior::Removed, false), (Strings{"the", "final", "countdown"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::Removed, true), (Strings{"-", "-", "-", "-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::Isolated, false), (Strings{"the", "-", "final", "-", "-", "countdown", "-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::MergedWithPrevious, false), (Strings{"the-", "final-", "-", "countdown-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::MergedWithPrevious, true), (Strings{"the", "-final", "-", "-countdown", "-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::MergedWithNext, false), (Strings{"the", "-final", "-", "-countdown", "-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::MergedWithNext, true), (Strings{"the-", "final-", "-", "countdown-"}));
  EXPECT_EQ(split_on_dash(SplitBehavior::Contiguous, false), (Strings{"the", "-", "final", "--", "countdown", "-"}));
}

TEST(SplitSpans, EmptyTextGivesNoPieces) {
  EXPECT_TRUE(split_spans(0, {}, SplitBehavior::Isolated, false).empty());
}

TEST(Regex, OnigurumaWhitespaceBecomesWhiteSpaceProperty) {
  EXPECT_EQ(oniguruma_to_pcre2(R"(\s+(?!\S)|[^\s\p{L}])"), R"(\p{White_Space}+(?!\P{White_Space})|[^\p{White_Space}\p{L}])");
  // An escaped backslash followed by "s" is a backslash and an s, not \s.
  EXPECT_EQ(oniguruma_to_pcre2(R"(\\s)"), R"(\\s)");
  // U+180E is White_Space for PCRE2's \s but not for Oniguruma's (nor for the rewrite).
  const Regex space = Regex::from_oniguruma(R"(\s)", "test");
  EXPECT_TRUE(space.find_all("\xE1\xA0\x8E").empty());
  EXPECT_EQ(space.find_all("\xC2\x85").size(), 1u);  // NEL is White_Space
}

TEST(Regex, Gpt2PatternSplitsContractionsWordsNumbersAndSpaces) {
  const Regex gpt2 = Regex::from_oniguruma(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "test");
  const std::string text = "I'm  here, 123 times!\n";
  EXPECT_EQ(pieces(text, gpt2.find_all(text)), (Strings{"I", "'m", " ", " here", ",", " 123", " times", "!", "\n"}));
}

TEST(Regex, LiteralQuotesMetacharacters) {
  const std::string text = "a.b\\Ec.";
  EXPECT_EQ(pieces(text, Regex::literal(".", "test").find_all(text)), (Strings{".", "."}));
  EXPECT_EQ(pieces(text, Regex::literal("\\E", "test").find_all(text)), (Strings{"\\E"}));
}

TEST(Utf8, LossyDecodingReplacesEachMaximalIllFormedPart) {
  EXPECT_EQ(utf8::decode_lossy("ok"), "ok");
  EXPECT_EQ(utf8::decode_lossy("\xF0\x9F\x98"), "\uFFFD");               // truncated 4-byte sequence
  EXPECT_EQ(utf8::decode_lossy("\xC0\x80"), "\uFFFD\uFFFD");             // overlong: C0 never starts one
  EXPECT_EQ(utf8::decode_lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");   // a surrogate
  EXPECT_EQ(utf8::decode_lossy("a\xE2\x82"), "a\uFFFD");
  EXPECT_EQ(utf8::decode_lossy("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");  // above U+10FFFF
  EXPECT_EQ(utf8::decode_lossy("\xFFx\xE2\x82\xAC"), "\uFFFDx\u20AC");
}

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_FALSE(utf8::first_invalid_byte("h\u00e9llo \U0001F600"));
  EXPECT_EQ(utf8::first_invalid_byte("ab\xC3"), 2u);
  EXPECT_EQ(utf8::first_invalid_byte("\xED\xBF\xBF"), 0u);
}

TEST(ByteLevel, MapsEveryByteToOneCharacterAndBack) {
  const auto& spelled = byte_level::byte_to_char();
  EXPECT_EQ(spelled[' '], "\u0120");   // Ġ
  EXPECT_EQ(spelled['\n'], "\u010A");  // Ċ
  EXPECT_EQ(spelled['A'], "A");
  EXPECT_EQ(spelled[0xAD], "\u0143");  // the last remapped byte
  for (int b = 0; b < 256; ++b) {
    std::size_t pos = 0;
    const char32_t c = utf8::next_code_point(spelled[static_cast<std::size_t>(b)], pos);
    ASSERT_EQ(byte_level::char_to_byte(c), b);
  }
  EXPECT_FALSE(byte_level::char_to_byte(U'\u0144'));
  EXPECT_FALSE(byte_level::char_to_byte(U' '));
}

TEST(UnicodeNormalization, ComposesDecomposesAndOrdersMarks) {
  EXPECT_EQ(to_nfc("cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(to_nfd("caf\u00e9"), "cafe\u0301");
  EXPECT_EQ(to_nfc("\u212b"), "\u00c5");                 // Angstrom sign: singleton decomposition
  EXPECT_EQ(to_nfc("a\u0301\u0323"), "\u1ea1\u0301");    // marks reordered (220 before 230), then composed
  EXPECT_EQ(to_nfd("\u1e9b\u0323"), "\u017f\u0323\u0307");
  EXPECT_EQ(to_nfc("\u1e9b\u0323"), "\u1e9b\u0323");
  EXPECT_EQ(to_nfc("\u1100\u1161\u11a8"), "\uac01");      // Hangul L V T -> one syllable
  EXPECT_EQ(to_nfd("\uac01"), "\u1100\u1161\u11a8");
  EXPECT_EQ(to_nfc("\u0344"), "\u0308\u0301");            // excluded from composition
  EXPECT_EQ(to_nfc("\u0301e"), "\u0301e");                // a leading mark stays
  EXPECT_EQ(to_nfc("plain ascii"), "plain ascii");
}

}  // namespace
}  // namespace microscale::tokenizer
