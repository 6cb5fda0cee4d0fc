#include "microscale/export/gguf_tokenizer.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/export/gguf_spm_scores.hpp"
#include "microscale/export/gguf_tokenizer_kinds.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::exporter::gguf {
namespace {

using nlohmann::json;

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

MergePair merge_pair(const json& m, const std::string& file) {
  if (m.is_string()) {
    const std::string text = m.get<std::string>();
    const auto space = text.find(' ');
    if (space != std::string::npos && text.find(' ', space + 1) == std::string::npos) {
      return {text.substr(0, space), text.substr(space + 1)};
    }
  } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  }
  fail("{}: a merge is neither \"a b\" nor [\"a\", \"b\"]: {}", file, m.dump());
}

std::vector<MergePair> merges_of(const json& model, const std::string& file) {
  std::vector<MergePair> merges;
  merges.reserve(model["merges"].size());
  for (const json& m : model["merges"]) merges.push_back(merge_pair(m, file));
  return merges;
}

bool is_byte_token(std::string_view token) {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
  return token.size() == 6 && token.substr(0, 3) == "<0x" && hex(token[3]) && hex(token[4]) && token[5] == '>';
}

// Tokens by id, padded to the model's vocab_size with "[PADn]" (unused), and their llama.cpp types.
struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
};

// `sentencepiece`: byte-fallback tokens <0xNN> are typed byte and the model's unk_token unknown, as
// llama.cpp's SentencePiece tokenizer needs them; otherwise every vocabulary token is normal.
Vocabulary vocabulary_of(const json& t, std::int64_t vocab_size, bool sentencepiece, const std::string& file) {
  const json& model = t["model"];
  const std::string unk = sentencepiece && model.value("unk_token", json()).is_string()
                              ? model["unk_token"].get<std::string>() : std::string();
  Vocabulary v{std::vector<std::string>(static_cast<std::size_t>(vocab_size)),
               std::vector<std::int32_t>(static_cast<std::size_t>(vocab_size), unused)};
  std::vector<bool> seen(static_cast<std::size_t>(vocab_size), false);
  auto place = [&](std::int64_t id, const std::string& token, std::int32_t type) {
    if (id < 0 || id >= vocab_size) {
      fail("{}: token '{}' has id {}, outside the model's vocab_size {}", file, token, id, vocab_size);
    }
    v.tokens[static_cast<std::size_t>(id)] = token;
    v.types[static_cast<std::size_t>(id)] = type;
    seen[static_cast<std::size_t>(id)] = true;
  };
  for (const auto& [token, id] : model["vocab"].items()) {
    const std::int32_t type = !sentencepiece ? normal : token == unk ? unknown : is_byte_token(token) ? byte : normal;
    place(id.get<std::int64_t>(), token, type);
  }
  if (t.contains("added_tokens") && t["added_tokens"].is_array()) {
    for (const json& a : t["added_tokens"]) {
      const auto content = a.at("content").get<std::string>();
      // The unknown token is usually an added special token too; llama.cpp must see it as unknown.
      const std::int32_t type = content == unk ? unknown : a.value("special", false) ? control : user_defined;
      place(a.at("id").get<std::int64_t>(), content, type);
    }
  }
  for (std::int64_t i = 0; i < vocab_size; ++i) {
    if (!seen[static_cast<std::size_t>(i)]) v.tokens[static_cast<std::size_t>(i)] = fmt::format("[PAD{}]", i);
  }
  return v;
}

bool is_type(const json& j, std::string_view type) { return j.is_object() && j.value("type", "") == type; }

// Whether llama.cpp's SentencePiece tokenizer should put a space before the text
// (tokenizer.ggml.add_space_prefix), for the two ways tokenizer.json spells SentencePiece's spaces:
//   normalizer Sequence[Prepend("▁"), Replace(" " -> "▁")], no pre-tokenizer   (Llama 2, legacy)
//   no normalizer, pre-tokenizer Metaspace("▁", split = false)                  (newer conversions)
// Anything else is refused: llama.cpp would place the spaces differently.
bool sentencepiece_space_prefix(const json& t, const std::string& file) {
  const json& norm = t.contains("normalizer") ? t["normalizer"] : json();
  const json& pre = t.contains("pre_tokenizer") ? t["pre_tokenizer"] : json();
  auto refuse = [&]() -> bool {
    fail("{}: a SentencePiece-style tokenizer whose normalizer/pre-tokenizer ({} / {}) is neither Llama 2's "
         "Prepend(\"\u2581\") + Replace(\" \", \"\u2581\") nor a Metaspace(\"\u2581\", split = false) pre-tokenizer; "
         "llama.cpp would place its spaces differently",
         file, norm.dump().substr(0, 200), pre.dump().substr(0, 200));
  };
  if (norm.is_null() && is_type(pre, "Metaspace")) {
    if (pre.value("replacement", "") != kSpacePiece || pre.value("split", true)) return refuse();
    return pre.value("prepend_scheme", "always") != "never";
  }
  if (!pre.is_null() || !is_type(norm, "Sequence") || !norm.contains("normalizers")) return refuse();
  const json& steps = norm["normalizers"];
  const bool prepends = steps.size() == 2 && is_type(steps[0], "Prepend") && steps[0].value("prepend", "") == kSpacePiece;
  const json& replace = steps.empty() ? json() : steps[steps.size() - 1];
  const bool replaces = is_type(replace, "Replace") && replace.value("content", "") == kSpacePiece &&
                        replace.contains("pattern") && replace["pattern"].is_object() &&
                        replace["pattern"].value("String", "") == " ";
  if (!replaces || (steps.size() == 2 && !prepends) || steps.size() > 2) return refuse();
  return prepends;
}

bool is_sentencepiece_style(const json& t) {
  const json& model = t["model"];
  return model.value("byte_fallback", false) || is_type(t.value("pre_tokenizer", json()), "Metaspace") ||
         t.value("normalizer", json()).dump().find(kSpacePiece) != std::string::npos;
}

// llama.cpp's "llama" tokenizer model: tokens with scores that order merging as the merge list does
// (gguf_spm_scores.hpp), byte-fallback tokens, an unknown token.
std::vector<KeyValue> sentencepiece_metadata(const json& t, std::int64_t vocab_size, const std::string& file) {
  const json& model = t["model"];
  const bool space_prefix = sentencepiece_space_prefix(t, file);
  if (!model.value("byte_fallback", false)) {
    fail("{}: a SentencePiece-style tokenizer without byte_fallback: llama.cpp's SentencePiece tokenizer spells "
         "every character it has no token for in <0xNN> byte tokens, where this tokenizer gives the unknown token",
         file);
  }
  if (model.value("ignore_merges", false) || !model.value("continuing_subword_prefix", json()).is_null() ||
      !model.value("end_of_word_suffix", json()).is_null()) {
    fail("{}: a SentencePiece-style tokenizer with ignore_merges, a continuing-subword prefix or an end-of-word "
         "suffix has no llama.cpp equivalent",
         file);
  }
  Vocabulary v = vocabulary_of(t, vocab_size, true, file);
  for (int b = 0; b < 256; ++b) {
    const std::string name = fmt::format("<0x{:02X}>", b);
    if (!model["vocab"].contains(name)) fail("{}: byte_fallback is on but the vocabulary has no token {}", file, name);
  }
  std::vector<bool> mergeable(v.types.size());
  for (std::size_t id = 0; id < v.types.size(); ++id) mergeable[id] = v.types[id] == normal;
  const auto merges = merges_of(model, file);
  const SpmScores scored = scores_from_merges(v.tokens, mergeable, merges);
  if (!scored.unmerged.empty()) {
    const auto id = scored.unmerged.front();
    fail("{}: {} vocabulary tokens, the first '{}' (id {}), are the result of no merge: llama.cpp's SentencePiece "
         "tokenizer could form them where this tokenizer never does",
         file, scored.unmerged.size(), v.tokens[static_cast<std::size_t>(id)], id);
  }
  std::vector<KeyValue> kvs = {
      {"tokenizer.ggml.model", str("llama")},
      {"tokenizer.ggml.tokens", string_array(v.tokens)},
      {"tokenizer.ggml.scores", f32_array(scored.scores)},
      {"tokenizer.ggml.token_type", i32_array(v.types)},
      {"tokenizer.ggml.add_space_prefix", boolean(space_prefix)},
  };
  const auto unk = std::find(v.types.begin(), v.types.end(), static_cast<std::int32_t>(unknown));
  if (unk != v.types.end()) {
    kvs.push_back({"tokenizer.ggml.unknown_token_id", u32(static_cast<std::uint32_t>(unk - v.types.begin()))});
  }
  return kvs;
}

// llama.cpp's "gpt2" tokenizer model: byte-level BPE with the merge list and a named pre-tokenizer.
std::vector<KeyValue> byte_level_metadata(const json& t, std::int64_t vocab_size, const std::string& file) {
  const auto pre = pre_name(t);
  if (!pre) {
    fail("{}: the normalizer/pre-tokenizer ({} / {}) matches none that llama.cpp knows by name (GPT-2 ByteLevel, "
         "Llama 3 or Qwen2 Split + ByteLevel, no prefix space); exporting it would tokenize differently in llama.cpp",
         file, t.value("normalizer", json()).dump(), t.value("pre_tokenizer", json()).dump().substr(0, 200));
  }
  const Vocabulary v = vocabulary_of(t, vocab_size, false, file);
  std::vector<std::string> merges;
  for (const auto& [a, b] : merges_of(t["model"], file)) merges.push_back(a + " " + b);
  return {
      {"tokenizer.ggml.model", str("gpt2")},
      {"tokenizer.ggml.pre", str(*pre)},
      {"tokenizer.ggml.tokens", string_array(v.tokens)},
      {"tokenizer.ggml.token_type", i32_array(v.types)},
      {"tokenizer.ggml.merges", string_array(merges)},
  };
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
  std::vector<KeyValue> kvs =
      is_sentencepiece_style(t) ? sentencepiece_metadata(t, vocab_size, file) : byte_level_metadata(t, vocab_size, file);

  // BOS/EOS and whether they are added come from the tokenizer itself (its post-processor), which is
  // also what `microscale eval` tokenizes with.
  const auto tok = tokenizer::Tokenizer::from_file(path);
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

}  // namespace microscale::exporter::gguf
