#pragma once
// What the export and the import of GGUF tokenizers share: llama.cpp's token types and the
// pre-tokenizer regexes it knows by name (llama-vocab.cpp).
#include <cstdint>

namespace microscale::exporter::gguf {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum TokenType : std::int32_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

inline constexpr const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
inline constexpr const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// SentencePiece's stand-in for a space, U+2581.
inline constexpr const char* kSpacePiece = "\xE2\x96\x81";

}  // namespace microscale::exporter::gguf
