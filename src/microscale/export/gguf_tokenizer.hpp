#pragma once
// The tokenizer in GGUF metadata (llama.cpp's "tokenizer.ggml.*" keys), from and back to tokenizer.json.
//
// Two tokenizer models, each as llama.cpp's llama-vocab.cpp reads it:
//
// "gpt2", byte-level BPE, with the pre-tokenizer named the way llama.cpp knows it:
//   ByteLevel(use_regex, no prefix space)                    -> "gpt-2"
//   Split(Llama 3 regex) + ByteLevel(use_regex = false)      -> "llama-bpe"
//   Split(Qwen2 regex)   + ByteLevel(use_regex = false)      -> "qwen2"   (NFC normalizer allowed)
// Keys: .model, .pre, .tokens (by id, padded to vocab_size with "[PADn]"), .token_type (1 normal,
// 3 control = special added token, 4 user-defined = other added token, 5 unused padding), .merges ("a b").
//
// "llama", SentencePiece-style BPE (Llama 2, Mistral: "▁" for spaces, <0xNN> byte fallback), whose
// merge list becomes per-token scores (gguf_spm_scores.hpp). Accepted spellings of the spaces: Llama 2's
// normalizer Prepend("▁") + Replace(" ", "▁"), or a Metaspace("▁", split = false) pre-tokenizer.
// Keys: .model, .tokens, .scores (f32), .token_type (as above, plus 2 unknown and 6 byte),
// .add_space_prefix, .unknown_token_id. One difference remains and is documented: a Metaspace
// tokenizer puts no "▁" before a text that starts with a space, llama.cpp always puts one.
//
// Both: .bos_token_id / .eos_token_id (u32), .add_bos_token / .add_eos_token (what the post-processor
// adds to a single sequence). Anything else is refused with the tokenizer file named: llama.cpp would
// silently tokenize differently.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "microscale/export/gguf_file.hpp"

namespace microscale::exporter::gguf {

// Reads <model_dir>/tokenizer.json; throws naming the file for a tokenizer GGUF cannot describe.
std::vector<KeyValue> tokenizer_metadata(const std::filesystem::path& model_dir, std::int64_t vocab_size);

// A tokenizer.json text that tokenizes as llama.cpp does with the file's tokenizer.ggml.* keys ("gpt2"
// and "llama" models), for tokenizer::Tokenizer::from_json_text. Throws naming the file for others.
std::string tokenizer_json(const File& file);

}  // namespace microscale::exporter::gguf
