#pragma once
// The tokenizer in GGUF metadata (llama.cpp's "tokenizer.ggml.*" keys), from and back to tokenizer.json.
//
// Exported: byte-level BPE tokenizers, as llama.cpp's "gpt2" tokenizer model, with the pre-tokenizer
// named the way llama.cpp's llama-vocab.cpp knows it:
//   ByteLevel(use_regex, no prefix space)                    -> "gpt-2"
//   Split(Llama 3 regex) + ByteLevel(use_regex = false)      -> "llama-bpe"
//   Split(Qwen2 regex)   + ByteLevel(use_regex = false)      -> "qwen2"   (NFC normalizer allowed)
// Anything else is refused with the tokenizer file named: llama.cpp would silently tokenize differently.
// SentencePiece-style BPE (Llama 2, Mistral: "▁" spaces, byte fallback) is refused too: llama.cpp's
// "llama" tokenizer type needs per-token scores, which tokenizer.json does not carry.
//
// Keys: tokenizer.ggml.model "gpt2", .pre, .tokens (by id, padded to vocab_size with "[PADn]"),
// .token_type (1 normal, 3 control = special added token, 4 user-defined = other added token, 5 unused
// padding), .merges ("a b"), .bos_token_id / .eos_token_id (u32), .add_bos_token / .add_eos_token (what
// the post-processor adds to a single sequence).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "microscale/export/gguf_file.hpp"

namespace microscale::exporter::gguf {

// Reads <model_dir>/tokenizer.json; throws naming the file for a tokenizer GGUF cannot describe.
std::vector<KeyValue> tokenizer_metadata(const std::filesystem::path& model_dir, std::int64_t vocab_size);

// A tokenizer.json text equivalent to the file's tokenizer.ggml.* keys (gpt2 model only), for
// tokenizer::Tokenizer::from_json_text. Throws naming the file for other tokenizer models.
std::string tokenizer_json(const File& file);

}  // namespace microscale::exporter::gguf
