// Bad input fails with microscale::Error naming the file and the problem, never with a crash.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::tokenizer {
namespace {

// A minimal valid tokenizer.json: a, b, ab and the merge "a b".
nlohmann::json minimal_config() {
  return nlohmann::json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
}

// The message of the Error that loading `config` throws ("" when it loads).
std::string load_error(const nlohmann::json& config) {
  try {
    Tokenizer::from_json_text(config.dump(), "fake/tokenizer.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_error(const nlohmann::json& config, std::initializer_list<std::string_view> parts) {
  const std::string message = load_error(config);
  ASSERT_FALSE(message.empty()) << "no error for " << config.dump();
  EXPECT_NE(message.find("fake/tokenizer.json"), std::string::npos) << message;
  for (std::string_view part : parts) EXPECT_NE(message.find(part), std::string::npos) << message;
}

TEST(TokenizerErrors, MinimalConfigLoadsAndMerges) {
  const auto tokenizer = Tokenizer::from_json_text(minimal_config().dump(), "fake/tokenizer.json");
  EXPECT_EQ(tokenizer.encode("abba"), (std::vector<std::int32_t>{2, 1, 0}));
  EXPECT_EQ(tokenizer.vocab_size(), 3u);
}

TEST(TokenizerErrors, MissingFile) {
  try {
    Tokenizer::from_file("/nonexistent/dir/tokenizer.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/tokenizer.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerErrors, MalformedJsonFile) {
  const auto path = std::filesystem::temp_directory_path() / "microscale_tokenizer_malformed.json";
  std::ofstream(path) << R"({"model": {"type": "BPE", "vocab": {"a": 0}, )";
  try {
    Tokenizer::from_file(path);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find("JSON"), std::string::npos) << message;
  }
  std::filesystem::remove(path);
}

TEST(TokenizerErrors, MalformedJsonText) {
  EXPECT_THROW(Tokenizer::from_json_text("[1, 2", "fake/tokenizer.json"), Error);
  expect_error(nlohmann::json::array(), {"object"});
}

TEST(TokenizerErrors, UnsupportedModelsListWhatIsSupported) {
  for (const char* type : {"WordPiece", "Unigram", "WordLevel"}) {
    auto config = minimal_config();
    config["model"]["type"] = type;
    expect_error(config, {type, "not supported", "supported: BPE"});
  }
  auto untyped_unigram = minimal_config();
  untyped_unigram["model"] = nlohmann::json::parse(R"({"unk_id": 0, "vocab": [["a", -1.0]]})");
  expect_error(untyped_unigram, {"supported: BPE"});
}

TEST(TokenizerErrors, UnsupportedComponentsListWhatIsSupported) {
  auto normalizer = minimal_config();
  normalizer["normalizer"] = {{"type", "Lowercase"}};
  expect_error(normalizer, {"normalizer", "Lowercase", "NFC"});

  auto nested = minimal_config();
  nested["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Sequence", "pretokenizers": [{"type": "BertPreTokenizer"}]})");
  expect_error(nested, {"pre_tokenizer.pretokenizers[0]", "BertPreTokenizer", "ByteLevel"});

  auto decoder = minimal_config();
  decoder["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
  expect_error(decoder, {"decoder", "WordPiece", "Metaspace"});

  auto post = minimal_config();
  post["post_processor"] = {{"type", "Mystery"}};
  expect_error(post, {"post_processor", "Mystery", "TemplateProcessing"});
}

TEST(TokenizerErrors, InconsistentContent) {
  auto unknown_merge = minimal_config();
  unknown_merge["model"]["merges"] = {"a b", "ab c"};
  expect_error(unknown_merge, {"merges[1]", "\"c\""});

  auto merged_missing = minimal_config();
  merged_missing["model"]["vocab"].erase("ab");
  expect_error(merged_missing, {"merges[0]", "\"ab\""});

  auto bad_merge = minimal_config();
  bad_merge["model"]["merges"] = {"a b c"};
  expect_error(bad_merge, {"merges[0]"});

  auto missing_vocab = minimal_config();
  missing_vocab["model"].erase("vocab");
  expect_error(missing_vocab, {"model.vocab", "missing"});

  auto bad_regex = minimal_config();
  bad_regex["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false})");
  expect_error(bad_regex, {"pre_tokenizer.pattern", "(unclosed"});

  auto bad_behavior = minimal_config();
  bad_behavior["pre_tokenizer"] = nlohmann::json::parse(R"({"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false})");
  expect_error(bad_behavior, {"Sideways"});

  auto truncation = minimal_config();
  truncation["truncation"] = {{"max_length", 512}};
  expect_error(truncation, {"truncation"});

  auto dropout = minimal_config();
  dropout["model"]["dropout"] = 0.1;
  expect_error(dropout, {"dropout"});

  auto bad_template = minimal_config();
  bad_template["post_processor"] = nlohmann::json::parse(
      R"({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {}})");
  expect_error(bad_template, {"<s>"});
}

TEST(TokenizerErrors, EncodingInvalidUtf8) {
  const auto tokenizer = Tokenizer::from_json_text(minimal_config().dump(), "fake/tokenizer.json");
  try {
    tokenizer.encode("ab\xC3");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("UTF-8"), std::string::npos) << e.what();
  }
}

TEST(TokenizerErrors, UnknownCharacterWithoutUnkTokenIsDropped) {
  // As in `tokenizers`: with neither unk_token nor byte fallback, unknown characters vanish, and
  // their neighbours then merge as if they had been adjacent.
  const auto tokenizer = Tokenizer::from_json_text(minimal_config().dump(), "fake/tokenizer.json");
  EXPECT_EQ(tokenizer.encode("axb"), (std::vector<std::int32_t>{2}));
}

TEST(TokenizerErrors, UnkTokenMissingFromVocabularyFailsWhenNeeded) {
  auto config = minimal_config();
  config["model"]["unk_token"] = "<unk>";
  const auto tokenizer = Tokenizer::from_json_text(config.dump(), "fake/tokenizer.json");
  EXPECT_EQ(tokenizer.encode("ab"), (std::vector<std::int32_t>{2}));
  EXPECT_THROW(tokenizer.encode("x"), Error);
}

}  // namespace
}  // namespace microscale::tokenizer
