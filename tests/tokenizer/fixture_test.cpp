// Every tokenizer family against the ids, decodes and vocabulary sizes that the `tokenizers` library
// produced for the same strings (tests/fixtures/tokenizer, written by tools/make_tokenizer_fixtures.py).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::tokenizer {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(MICROSCALE_SOURCE_DIR) / "tests/fixtures/tokenizer";

nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str());
}

const std::vector<std::string>& corpus() {
  static const auto strings = read_json(kFixtures / "corpus.json").get<std::vector<std::string>>();
  return strings;
}

std::string shorten(const std::string& text) {
  return text.size() <= 60 ? text : text.substr(0, 60) + "... (" + std::to_string(text.size()) + " bytes)";
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, MatchesTheReferenceLibrary) {
  const auto folder = kFixtures / GetParam();
  const Tokenizer tokenizer = Tokenizer::from_file(folder / "tokenizer.json");
  const auto expected = read_json(folder / "expected.json");
  const auto& cases = expected.at("cases");
  ASSERT_EQ(cases.size(), corpus().size());

  EXPECT_EQ(tokenizer.vocab_size(), expected.at("vocab_size").get<std::size_t>());
  const auto prefix = expected.at("special_prefix").get<std::vector<std::int32_t>>();
  const auto suffix = expected.at("special_suffix").get<std::vector<std::int32_t>>();
  EXPECT_EQ(std::vector(tokenizer.special_prefix().begin(), tokenizer.special_prefix().end()), prefix);
  EXPECT_EQ(std::vector(tokenizer.special_suffix().begin(), tokenizer.special_suffix().end()), suffix);

  int failures = 0;
  for (std::size_t i = 0; i < cases.size() && failures < 10; ++i) {
    const std::string& text = corpus()[i];
    const auto& c = cases[i];
    const auto plain = c.at("ids").get<std::vector<std::int32_t>>();
    std::vector<std::int32_t> with_special = prefix;
    with_special.insert(with_special.end(), plain.begin(), plain.end());
    with_special.insert(with_special.end(), suffix.begin(), suffix.end());

    const auto got_plain = tokenizer.encode(text, false);
    const auto got_special = tokenizer.encode(text, true);
    EXPECT_EQ(got_plain, plain) << "case " << i << ": \"" << shorten(text) << "\"";
    EXPECT_EQ(got_special, with_special) << "case " << i << ": \"" << shorten(text) << "\"";

    const std::string decoded = c.contains("decoded") ? c["decoded"].get<std::string>() : text;
    const std::string decoded_skip = c.contains("decoded_skip_special") ? c["decoded_skip_special"].get<std::string>() : decoded;
    EXPECT_EQ(tokenizer.decode(with_special, false), decoded) << "case " << i << ": \"" << shorten(text) << "\"";
    EXPECT_EQ(tokenizer.decode(with_special, true), decoded_skip) << "case " << i << ": \"" << shorten(text) << "\"";
    if (::testing::Test::HasFailure()) ++failures;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, FixtureTest,
                         ::testing::Values("gpt2", "gpt2_added", "llama3", "qwen2", "llama2", "mistral", "spm_unk"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace microscale::tokenizer
