#pragma once
// Hugging Face tokenizer.json loading and encoding that produces the same ids as the `tokenizers`
// library for BPE tokenizers: byte-level BPE (GPT-2, Llama 3, Qwen2 and the bundled model) and
// SentencePiece-style BPE (Llama 2, Mistral: "▁" for spaces, <0xNN> byte fallback, <unk>).
//
// encode(text) runs the same steps as `tokenizers`' Tokenizer.encode: added/special tokens are cut
// out first (those with "normalized": false from the raw text, the others after normalization),
// then normalizer, pre-tokenizer and BPE model run on the rest, and the post-processor's template
// (e.g. BOS) is added when add_special_tokens is true. Thread-safe: a Tokenizer is immutable after
// loading, and copies share it.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace microscale::tokenizer {

class Tokenizer {
 public:
  // Throws microscale::Error naming the file and the problem: missing file, malformed JSON, an
  // unsupported model / normalizer / pre-tokenizer / decoder / post-processor kind (the message
  // lists the supported ones), or inconsistent content (a merge naming an unknown token, ...).
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // The same from tokenizer.json text; `source_name` stands for the file in error messages.
  static Tokenizer from_json_text(std::string_view json_text, std::string_view source_name);

  // Throws microscale::Error when `text` is not well-formed UTF-8.
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Ids outside the vocabulary are skipped, as `tokenizers` does. Text the ids do not spell as
  // well-formed UTF-8 comes out with U+FFFD in its place.
  std::string decode(std::span<const std::int32_t> ids, bool skip_special_tokens = false) const;

  // Distinct tokens: the model's vocabulary and the added tokens.
  std::size_t vocab_size() const;
  std::optional<std::int32_t> token_id(std::string_view token) const;
  std::optional<std::string> token(std::int32_t id) const;
  bool is_special(std::int32_t id) const;  // an added token marked "special"

  // BOS: the first id the post-processor puts before the text; without one, a special token named
  // like a BOS (<s>, <|begin_of_text|>, <bos>, <|startoftext|>). EOS: the first id put after the
  // text; without one, a special token named like an EOS (</s>, <|end_of_text|>, <|endoftext|>,
  // <eos>, <|im_end|>, <|eot_id|>), in that order of preference.
  std::optional<std::int32_t> bos_id() const;
  std::optional<std::int32_t> eos_id() const;
  // What encode(text, true) adds before and after the ids of the text.
  std::span<const std::int32_t> special_prefix() const;
  std::span<const std::int32_t> special_suffix() const;

  const std::string& source() const;  // the file it was loaded from

 private:
  struct Impl;
  static Tokenizer load(const nlohmann::json& config, const std::string& source);
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace microscale::tokenizer
