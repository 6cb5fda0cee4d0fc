#include "microscale/export/gguf_tokenizer.hpp"

#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::exporter::gguf {
namespace {

using nlohmann::json;

constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

enum TokenType : std::int32_t { normal = 1, control = 3, user_defined = 4, unused = 5 };

bool is_byte_level(const json& p, bool use_regex) {
  return p.is_object() && p.value("type", "") == "ByteLevel" && p.value("use_regex", true) == use_regex &&
         !p.value("add_prefix_space", false);
}

// llama.cpp's name for the pre-tokenizer, or nullopt.
std::optional<std::string> pre_name(const json& t) {
  const json& pre = t.contains("pre_tokenizer") ? t["pre_tokenizer"] : json();
  const json& norm = t.contains("normalizer") ? t["normalizer"] : json();
  if (is_byte_level(pre, true) && norm.is_null()) return "gpt-2";
  if (!pre.is_object() || pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers")) return std::nullopt;
  const json& list = pre["pretokenizers"];
  if (!list.is_array() || list.size() != 2 || !is_byte_level(list[1], false)) return std::nullopt;
  const json& split = list[0];
  if (!split.is_object() || split.value("type", "") != "Split" || split.value("behavior", "") != "Isolated" ||
      split.value("invert", false) || !split.contains("pattern") || !split["pattern"].is_object()) {
    return std::nullopt;
  }
  const std::string regex = split["pattern"].value("Regex", "");
  if (regex == kLlama3Regex && norm.is_null()) return "llama-bpe";
  if (regex == kQwen2Regex && (norm.is_null() || (norm.is_object() && norm.value("type", "") == "NFC"))) return "qwen2";
  return std::nullopt;
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

std::string merge_text(const json& m, const std::string& file) {
  if (m.is_string()) return m.get<std::string>();
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return m[0].get<std::string>() + " " + m[1].get<std::string>();
  }
  fail("{}: a merge is neither \"a b\" nor [\"a\", \"b\"]", file);
}

}  // namespace

std::vector<KeyValue> tokenizer_metadata(const std::filesystem::path& model_dir, std::int64_t vocab_size) {
  const auto path = model_dir / "tokenizer.json";
  const std::string file = path.string();
  const json t = io::read_json_file(path);
  const json& model = t.contains("model") ? t["model"] : json();
  if (!model.is_object() || model.value("type", "BPE") != "BPE" || !model.contains("vocab") || !model.contains("merges")) {
    fail("{}: only BPE tokenizers can be exported to GGUF", file);
  }
  if (model.value("byte_fallback", false) || (t.contains("pre_tokenizer") && t["pre_tokenizer"].is_object() &&
                                              t["pre_tokenizer"].value("type", "") == "Metaspace")) {
    fail("{}: SentencePiece-style BPE tokenizers (Llama 2, Mistral) are not exported to GGUF: llama.cpp's 'llama' "
         "tokenizer needs per-token scores that tokenizer.json does not have; convert that model with llama.cpp's "
         "convert_hf_to_gguf.py from the --dequantized output instead",
         file);
  }
  const auto pre = pre_name(t);
  if (!pre) {
    fail("{}: the normalizer/pre-tokenizer ({} / {}) matches none that llama.cpp knows by name (GPT-2 ByteLevel, "
         "Llama 3 or Qwen2 Split + ByteLevel, no prefix space); exporting it would tokenize differently in llama.cpp",
         file, t.value("normalizer", json()).dump(), t.value("pre_tokenizer", json()).dump().substr(0, 200));
  }

  std::vector<std::string> tokens(static_cast<std::size_t>(vocab_size));
  std::vector<std::int32_t> types(static_cast<std::size_t>(vocab_size), unused);
  std::vector<bool> seen(static_cast<std::size_t>(vocab_size), false);
  auto place = [&](std::int64_t id, const std::string& token, std::int32_t type) {
    if (id < 0 || id >= vocab_size) {
      fail("{}: token '{}' has id {}, outside the model's vocab_size {}", file, token, id, vocab_size);
    }
    tokens[static_cast<std::size_t>(id)] = token;
    types[static_cast<std::size_t>(id)] = type;
    seen[static_cast<std::size_t>(id)] = true;
  };
  for (const auto& [token, id] : model["vocab"].items()) place(id.get<std::int64_t>(), token, normal);
  if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
    for (const json& a : t["added_tokens"]) {
      place(a.at("id").get<std::int64_t>(), a.at("content").get<std::string>(),
            a.value("special", false) ? control : user_defined);
    }
  }
  for (std::int64_t i = 0; i < vocab_size; ++i) {
    if (!seen[static_cast<std::size_t>(i)]) tokens[static_cast<std::size_t>(i)] = fmt::format("[PAD{}]", i);
  }
  std::vector<std::string> merges;
  merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) merges.push_back(merge_text(m, file));

  // BOS/EOS and whether they are added come from the tokenizer itself (its post-processor), which is
  // also what `microscale eval` tokenizes with.
  const auto tok = tokenizer::Tokenizer::from_file(path);
  std::vector<KeyValue> kvs = {
      {"tokenizer.ggml.model", str("gpt2")},
      {"tokenizer.ggml.pre", str(*pre)},
      {"tokenizer.ggml.tokens", string_array(tokens)},
      {"tokenizer.ggml.token_type", i32_array(types)},
      {"tokenizer.ggml.merges", string_array(merges)},
  };
  const auto prefix = tok.special_prefix();
  const auto suffix = tok.special_suffix();
  if (prefix.size() > 1 || suffix.size() > 1) {
    fail("{}: the post-processor adds {} tokens before and {} after the text; GGUF can describe one BOS and one EOS",
         file, prefix.size(), suffix.size());
  }
  // Without a post-processor BOS, tokenizer_config.json's bos_token/eos_token name them (as transformers
  // and convert_hf_to_gguf.py read them), then the tokenizer's own guess by name.
  auto configured = [&](const char* key) -> std::optional<std::int32_t> {
    const auto config_path = model_dir / "tokenizer_config.json";
    if (!std::filesystem::exists(config_path)) return std::nullopt;
    const json c = io::read_json_file(config_path);
    if (!c.contains(key)) return std::nullopt;
    const json& v = c[key];
    const std::string content = v.is_string() ? v.get<std::string>()
                                : v.is_object() ? v.value("content", "") : std::string();
    return content.empty() ? std::nullopt : tok.token_id(content);
  };
  auto bos = prefix.empty() ? configured("bos_token") : std::optional<std::int32_t>(prefix[0]);
  if (!bos) bos = tok.bos_id();
  auto eos = suffix.empty() ? configured("eos_token") : std::optional<std::int32_t>(suffix[0]);
  if (!eos) eos = tok.eos_id();
  if (bos) kvs.push_back({"tokenizer.ggml.bos_token_id", u32(static_cast<std::uint32_t>(*bos))});
  if (eos) kvs.push_back({"tokenizer.ggml.eos_token_id", u32(static_cast<std::uint32_t>(*eos))});
  if (!suffix.empty() && eos && suffix[0] != *eos) {
    fail("{}: the post-processor appends token {} which is not the EOS token {}", file, suffix[0], *eos);
  }
  kvs.push_back({"tokenizer.ggml.add_bos_token", boolean(!prefix.empty())});
  kvs.push_back({"tokenizer.ggml.add_eos_token", boolean(!suffix.empty())});
  return kvs;
}

std::string tokenizer_json(const File& f) {
  const std::string file = f.path().string();
  const std::string kind = f.get_string("tokenizer.ggml.model");
  if (kind != "gpt2") {
    fail("{}: tokenizer.ggml.model '{}' is not supported (microscale reads the byte-level BPE model 'gpt2')", file, kind);
  }
  const std::string pre = f.get_string("tokenizer.ggml.pre");
  const Array& tokens = f.get_array("tokenizer.ggml.tokens", ValueType::string);
  const Array& types = f.get_array("tokenizer.ggml.token_type", ValueType::i32);
  const Array& merges = f.get_array("tokenizer.ggml.merges", ValueType::string);
  if (types.items.size() != tokens.items.size()) {
    fail("{}: tokenizer.ggml.token_type has {} entries for {} tokens", file, types.items.size(), tokens.items.size());
  }
  json vocab = json::object();
  json added = json::array();
  for (std::size_t id = 0; id < tokens.items.size(); ++id) {
    const auto& token = std::get<std::string>(tokens.items[id]);
    const auto type = std::get<std::int32_t>(types.items[id]);
    if (type == control || type == user_defined) {
      added.push_back({{"id", id}, {"content", token}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                       {"normalized", false}, {"special", type == control}});
    }
    vocab[token] = id;
  }
  json merge_list = json::array();
  for (const auto& m : merges.items) merge_list.push_back(std::get<std::string>(m));

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
  json post = nullptr;
  const bool add_bos = optional_flag("tokenizer.ggml.add_bos_token") && bos;
  const bool add_eos = optional_flag("tokenizer.ggml.add_eos_token") && eos;
  if (add_bos || add_eos) {
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
    post = {{"type", "TemplateProcessing"}, {"single", single}, {"pair", single}, {"special_tokens", specials}};
  }
  const json t = {
      {"version", "1.0"},
      {"added_tokens", added},
      {"normalizer", pre == "qwen2" ? json{{"type", "NFC"}} : json()},
      {"pre_tokenizer", pre_tokenizer_for(pre, file)},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
        // llama.cpp's llama-bpe pre-tokenizer looks whole words up in the vocabulary first, as Llama 3's
        // tokenizer.json asks with ignore_merges.
        {"ignore_merges", pre == "llama-bpe" || pre == "llama3"}, {"vocab", vocab}, {"merges", merge_list}}},
  };
  return t.dump();
}

}  // namespace microscale::exporter::gguf
