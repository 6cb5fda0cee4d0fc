// BPE merging against a slow string-based reference, round trips on random text, and the small API.
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "microscale/tokenizer/tokenizer.hpp"
#include "microscale/tokenizer/unicode_normalization.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(MICROSCALE_SOURCE_DIR) / "tests/fixtures/tokenizer";

// Textbook BPE on strings: repeatedly merge the adjacent pair with the lowest rank (leftmost among
// equals) until no pair has a merge. Quadratic, written without ids or queues.
std::vector<std::string> reference_bpe(const std::string& word, const std::map<std::pair<std::string, std::string>, int>& ranks) {
  std::vector<std::string> symbols;
  for (char c : word) symbols.emplace_back(1, c);
  while (true) {
    int best_rank = -1;
    std::size_t best = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = ranks.find({symbols[i], symbols[i + 1]});
      if (it != ranks.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        best = i;
      }
    }
    if (best_rank < 0) return symbols;
    symbols[best] += symbols[best + 1];
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

TEST(Bpe, MergesLikeTheTextbookAlgorithmOnShortAndLongWords) {
  // Random merges over {a, b, c}; several pairs may build the same token, as in real vocabularies.
  std::mt19937 rng(42);
  std::vector<std::string> tokens{"a", "b", "c"};
  nlohmann::json vocab = {{"a", 0}, {"b", 1}, {"c", 2}};
  nlohmann::json merges = nlohmann::json::array();
  std::map<std::pair<std::string, std::string>, int> ranks;
  while (merges.size() < 80) {
    const std::string& left = tokens[rng() % tokens.size()];
    const std::string& right = tokens[rng() % tokens.size()];
    if (left.size() + right.size() > 6 || ranks.contains({left, right})) continue;
    const std::string merged = left + right;
    ranks[{left, right}] = static_cast<int>(merges.size());
    merges.push_back(nlohmann::json::array({left, right}));
    if (!vocab.contains(merged)) {
      vocab[merged] = static_cast<int>(tokens.size());
      tokens.push_back(merged);
    }
  }
  nlohmann::json config = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  const auto tokenizer = Tokenizer::from_json_text(config.dump(), "random-merges");

  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t length = 1 + rng() % (trial < 150 ? 20 : 400);  // below and above the queue threshold
    std::string word;
    for (std::size_t i = 0; i < length; ++i) word.push_back("abc"[rng() % 3]);
    std::vector<std::int32_t> expected;
    for (const std::string& symbol : reference_bpe(word, ranks)) expected.push_back(vocab.at(symbol).get<std::int32_t>());
    ASSERT_EQ(tokenizer.encode(word), expected) << word;
  }
}

std::string random_utf8(std::mt19937& rng, std::size_t characters) {
  std::string text;
  for (std::size_t i = 0; i < characters; ++i) {
    char32_t c = 0;
    switch (rng() % 4) {
      case 0: c = 0x20 + rng() % 0x5F; break;    // ASCII
      case 1: c = 0x09 + rng() % 5; break;       // tabs and newlines
      case 2: c = 0x80 + rng() % 0x2F80; break;  // Latin to CJK punctuation, marks included
      default: c = rng() % 0x110000; break;      // anything, astral planes included
    }
    if (c >= 0xD800 && c <= 0xDFFF) c = 'x';
    if (c == 0) c = ' ';
    utf8::append(text, c);
  }
  return text;
}

TEST(Bpe, ByteLevelDecodeInvertsEncodeOnRandomText) {
  std::mt19937 rng(7);
  for (const char* name : {"gpt2", "llama3", "qwen2"}) {
    const auto tokenizer = Tokenizer::from_file(kFixtures / name / "tokenizer.json");
    for (int trial = 0; trial < 200; ++trial) {
      const std::string text = random_utf8(rng, rng() % 80);
      // Qwen2 normalizes to NFC first, so its round trip gives the NFC form.
      const std::string expected = std::string(name) == "qwen2" ? to_nfc(text) : text;
      ASSERT_EQ(tokenizer.decode(tokenizer.encode(text), /*skip_special_tokens=*/true), expected) << name;
      ASSERT_EQ(tokenizer.decode(tokenizer.encode(text, false)), expected) << name;
    }
  }
}

TEST(Bpe, LongPiecesStayFast) {
  // One 200k-character piece (no pre-tokenizer): quadratic merging would take minutes.
  const auto tokenizer = Tokenizer::from_file(kFixtures / "llama2" / "tokenizer.json");
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "abcdefghij";
  const auto ids = tokenizer.encode(text, false);
  EXPECT_GT(ids.size(), 10000u);
  EXPECT_EQ(tokenizer.decode(ids), text);
}

TEST(TokenizerApi, SpecialTokensVocabularyAndLookups) {
  const auto gpt2 = Tokenizer::from_file(kFixtures / "gpt2" / "tokenizer.json");
  EXPECT_FALSE(gpt2.bos_id());
  EXPECT_EQ(gpt2.eos_id(), gpt2.token_id("<|endoftext|>"));
  EXPECT_TRUE(gpt2.special_prefix().empty());
  EXPECT_EQ(gpt2.token_id("\u0120the"), gpt2.encode(" the", false).at(0));  // "Ġthe"
  EXPECT_EQ(gpt2.token(*gpt2.token_id("\u0120the")), "\u0120the");
  EXPECT_FALSE(gpt2.token(1 << 30));
  EXPECT_FALSE(gpt2.token_id("not a token"));
  EXPECT_TRUE(gpt2.is_special(*gpt2.eos_id()));
  EXPECT_FALSE(gpt2.is_special(*gpt2.token_id("a")));

  const auto llama3 = Tokenizer::from_file(kFixtures / "llama3" / "tokenizer.json");
  EXPECT_EQ(llama3.bos_id(), llama3.token_id("<|begin_of_text|>"));
  EXPECT_EQ(llama3.eos_id(), llama3.token_id("<|end_of_text|>"));
  EXPECT_EQ(llama3.encode("hi").front(), *llama3.bos_id());
  EXPECT_NE(llama3.encode("hi", false).front(), *llama3.bos_id());

  const auto llama2 = Tokenizer::from_file(kFixtures / "llama2" / "tokenizer.json");
  EXPECT_EQ(llama2.bos_id(), 1);
  EXPECT_EQ(llama2.eos_id(), 2);
  EXPECT_EQ(llama2.token_id("<0x0A>"), 3 + 0x0A);

  const auto with_template = Tokenizer::from_file(kFixtures / "gpt2_added" / "tokenizer.json");
  EXPECT_EQ(with_template.bos_id(), with_template.token_id("<|bos|>"));
  EXPECT_EQ(with_template.eos_id(), with_template.token_id("<|endoftext|>"));
  const auto ids = with_template.encode("x");
  EXPECT_EQ(ids.front(), *with_template.bos_id());
  EXPECT_EQ(ids.back(), *with_template.eos_id());
  EXPECT_EQ(with_template.decode(ids, true), " x");  // add_prefix_space put the space there
}

TEST(TokenizerApi, ConcurrentEncodingGivesTheSameIds) {
  const auto tokenizer = Tokenizer::from_file(kFixtures / "qwen2" / "tokenizer.json");
  std::mt19937 rng(3);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) texts.push_back(random_utf8(rng, 200));
  std::vector<std::vector<std::int32_t>> expected;
  for (const auto& t : texts) expected.push_back(tokenizer.encode(t));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      const Tokenizer copy = tokenizer;  // copies share the loaded data
      for (int round = 0; round < 5; ++round)
        for (std::size_t i = 0; i < texts.size(); ++i) mismatches[w] += copy.encode(texts[i]) != expected[i];
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

}  // namespace
}  // namespace microscale::tokenizer
