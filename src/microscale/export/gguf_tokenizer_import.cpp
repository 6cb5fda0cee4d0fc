#include "microscale/export/gguf_tokenizer.hpp"

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/export/gguf_spm_scores.hpp"
#include "microscale/export/gguf_tokenizer_kinds.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::exporter::gguf {
namespace {

using nlohmann::json;

// GGUF strings are UTF-8 by the format's definition, and tokenizer.json can hold nothing else: a
// token or merge that is not is a corrupt file, reported as such rather than by the JSON writer.
const std::string& utf8_item(const Array& array, std::size_t index, std::string_view key, const std::string& file) {
  const auto& text = std::get<std::string>(array.items[index]);
  if (const auto bad = tokenizer::utf8::first_invalid_byte(text)) {
    fail("{}: {}[{}] is not valid UTF-8 (byte {} of {})", file, key, index, *bad, text.size());
  }
  return text;
}

json pre_tokenizer_for(const std::string& pre, const std::string& file) {
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  if (pre == "gpt-2") return byte_level;
  const char* regex = nullptr;
  if (pre == "llama-bpe" || pre == "llama3") regex = kLlama3Regex;
  if (pre == "qwen2") regex = kQwen2Regex;
  if (regex == nullptr) {
    fail("{}: tokenizer.ggml.pre '{}' is not supported (microscale reads gpt-2, llama-bpe and qwen2)", file, pre);
  }
  json level = byte_level;
  level["use_regex"] = false;
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}}, level}}};
}

// The post-processor that adds what tokenizer.ggml.add_bos_token / add_eos_token ask for, or null.
json post_processor_of(const File& f, const Array& tokens) {
  const std::string file = f.path().string();
  auto optional_id = [&f](std::string_view key) -> std::optional<std::uint32_t> {
    if (f.find(key) == nullptr) return std::nullopt;
    return f.get_u32(key);
  };
  auto optional_flag = [&f](std::string_view key) { return f.find(key) != nullptr && f.get_bool(key); };
  const auto bos = optional_id("tokenizer.ggml.bos_token_id");
  const auto eos = optional_id("tokenizer.ggml.eos_token_id");
  auto token_at = [&](std::uint32_t id, std::string_view what) {
    if (id >= tokens.items.size()) fail("{}: {} {} is outside the {} tokens", file, what, id, tokens.items.size());
    return std::get<std::string>(tokens.items[id]);
  };
  const bool add_bos = optional_flag("tokenizer.ggml.add_bos_token") && bos;
  const bool add_eos = optional_flag("tokenizer.ggml.add_eos_token") && eos;
  if (!add_bos && !add_eos) return nullptr;
  json single = json::array();
  json specials = json::object();
  auto special = [&](std::uint32_t id, std::string_view what) {
    const std::string name = token_at(id, what);
    single.push_back({{"SpecialToken", {{"id", name}, {"type_id", 0}}}});
    specials[name] = {{"id", name}, {"ids", {id}}, {"tokens", {name}}};
  };
  if (add_bos) special(*bos, "bos_token_id");
  single.push_back({{"Sequence", {{"id", "A"}, {"type_id", 0}}}});
  if (add_eos) special(*eos, "eos_token_id");
  return {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", specials}};
}

// The vocabulary, with control and user-defined tokens also listed as added tokens (cut out of the
// text before the model runs, as llama.cpp does).
struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  json vocab = json::object();
  json added = json::array();
};

Vocabulary vocabulary_of(const File& f) {
  const std::string file = f.path().string();
  const Array& tokens = f.get_array("tokenizer.ggml.tokens", ValueType::string);
  const Array& types = f.get_array("tokenizer.ggml.token_type", ValueType::i32);
  if (types.items.size() != tokens.items.size()) {
    fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file, types.items.size(), tokens.items.size());
  }
  Vocabulary v;
  for (std::size_t id = 0; id < tokens.items.size(); ++id) {
    const auto& token = utf8_item(tokens, id, "tokenizer.ggml.tokens", file);
    const auto type = std::get<std::int32_t>(types.items[id]);
    if (type == control || type == user_defined) {
      v.added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                         {"normalized", false}, {"special", type == control}});
    }
    v.vocab[token] = id;
    v.tokens.push_back(token);
    v.types.push_back(type);
  }
  return v;
}

json bpe_model(json vocab, json merges, json unk_token, bool sentencepiece, bool ignore_merges) {
  return {{"type", "BPE"},         {"dropout", nullptr},         {"unk_token", std::move(unk_token)},
          {"continuing_subword_prefix", nullptr},                {"end_of_word_suffix", nullptr},
          {"fuse_unk", sentencepiece}, {"byte_fallback", sentencepiece}, {"ignore_merges", ignore_merges},
          {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
}

// llama.cpp's "gpt2" model: byte-level BPE with its merge list and a named pre-tokenizer.
json byte_level_tokenizer(const File& f, Vocabulary v) {
  const std::string file = f.path().string();
  const std::string pre = f.get_string("tokenizer.ggml.pre");
  json merge_list = json::array();
  const Array& merges = f.get_array("tokenizer.ggml.merges", ValueType::string);
  for (std::size_t i = 0; i < merges.items.size(); ++i) {
    merge_list.push_back(utf8_item(merges, i, "tokenizer.ggml.merges", file));
  }
  return {
      {"normalizer", pre == "qwen2" ? json{{"type", "NFC"}} : json()},
      {"pre_tokenizer", pre_tokenizer_for(pre, file)},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      // llama.cpp's llama-bpe pre-tokenizer looks whole words up in the vocabulary first, as Llama 3's
      // tokenizer.json asks with ignore_merges.
      {"model", bpe_model(std::move(v.vocab), std::move(merge_list), nullptr, false, pre == "llama-bpe" || pre == "llama3")},
  };
}

// llama.cpp's "llama" model (SentencePiece BPE): merging by token score becomes the merge list that
// orders merging the same way (gguf_spm_scores.hpp), and the spaces are spelled as Llama 2's
// tokenizer.json spells them: "▁" for every space, one more before the text when add_space_prefix
// (llama.cpp's default) is set.
json sentencepiece_tokenizer(const File& f, Vocabulary v) {
  const std::string file = f.path().string();
  const Array& score_array = f.get_array("tokenizer.ggml.scores", ValueType::f32);
  if (score_array.items.size() != v.tokens.size()) {
    fail("{}: tokenizer.ggml.scores has {} entries for {} tokens", file, score_array.items.size(), v.tokens.size());
  }
  std::vector<float> scores;
  scores.reserve(score_array.items.size());
  for (const auto& s : score_array.items) scores.push_back(std::get<float>(s));
  std::vector<bool> mergeable(v.types.size());
  for (std::size_t id = 0; id < v.types.size(); ++id) mergeable[id] = v.types[id] == normal;
  json merge_list = json::array();
  for (auto& [a, b] : merges_from_scores(v.tokens, mergeable, scores)) merge_list.push_back({std::move(a), std::move(b)});

  const bool space_prefix = f.find("tokenizer.ggml.add_space_prefix") == nullptr || f.get_bool("tokenizer.ggml.add_space_prefix");
  json unk_token = nullptr;
  if (f.find("tokenizer.ggml.unknown_token_id") != nullptr) {
    const auto id = f.get_u32("tokenizer.ggml.unknown_token_id");
    if (id >= v.tokens.size()) fail("{}: unknown_token_id {} is outside the {} tokens", file, id, v.tokens.size());
    unk_token = v.tokens[id];
  }
  const json replace_spaces = {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", kSpacePiece}};
  json normalizers = json::array();
  if (space_prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", kSpacePiece}});
  normalizers.push_back(replace_spaces);
  json decoders = {{{"type", "Replace"}, {"pattern", {{"String", kSpacePiece}}}, {"content", " "}},
                   {{"type", "ByteFallback"}},
                   {{"type", "Fuse"}}};
  if (space_prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});
  return {
      {"normalizer", {{"type", "Sequence"}, {"normalizers", normalizers}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", decoders}}},
      {"model", bpe_model(std::move(v.vocab), std::move(merge_list), std::move(unk_token), true, false)},
  };
}

}  // namespace

std::string tokenizer_json(const File& f) {
  const std::string file = f.path().string();
  const std::string kind = f.get_string("tokenizer.ggml.model");
  if (kind != "gpt2" && kind != "llama") {
    fail("{}: tokenizer.ggml.model '{}' is not supported (microscale reads byte-level BPE 'gpt2' and SentencePiece "
         "BPE 'llama')",
         file, kind);
  }
  Vocabulary v = vocabulary_of(f);
  json t = {{"version", "1.0"},
            {"added_tokens", v.added},
            {"post_processor", post_processor_of(f, f.get_array("tokenizer.ggml.tokens", ValueType::string))}};
  t.update(kind == "gpt2" ? byte_level_tokenizer(f, std::move(v)) : sentencepiece_tokenizer(f, std::move(v)));
  return t.dump();
}

}  // namespace microscale::exporter::gguf
