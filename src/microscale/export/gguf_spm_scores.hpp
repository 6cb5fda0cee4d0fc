#pragma once
// SentencePiece-style BPE in two descriptions, and the translation between them.
//
// tokenizer.json (Hugging Face `tokenizers`) lists merges: at each step the adjacent pair with the
// lowest merge rank is joined. llama.cpp's "llama" tokenizer model (LLAMA_VOCAB_TYPE_SPM) has no
// merges but a score per token: at each step it joins the adjacent pair whose concatenation is the
// vocabulary token with the highest score (the leftmost pair on ties).
//
// The two agree when each token's score orders it as its first merge ranks it (score = -rank): the
// pair a tokenizer would join first is then the one whose result scores highest. For tokenizers that
// were converted from a SentencePiece model (Llama 2, Mistral) the merge list is every split of every
// token ordered by the token's score, so the ordering is the same by construction. A token that no
// merge produces is refused on export: llama.cpp could still form it, `tokenizers` never would.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace microscale::exporter::gguf {

using MergePair = std::pair<std::string, std::string>;

struct SpmScores {
  std::vector<float> scores;            // by token id
  std::vector<std::int32_t> unmerged;   // ids of multi-character `mergeable` tokens no merge produces
};

// Score of each token: minus the rank of the first merge whose result it is. Tokens no merge produces
// (single characters, byte tokens, specials) score below every merge, -merges.size(). Exact in FP32 up
// to 2^24 merges. `mergeable[id]` marks the tokens merging may produce (normal vocabulary tokens).
SpmScores scores_from_merges(std::span<const std::string> tokens, const std::vector<bool>& mergeable,
                             std::span<const MergePair> merges);

// The inverse, for reading a GGUF back into a tokenizer.json: every split of every mergeable token
// into two vocabulary tokens, ordered by the token's score (highest first, then by id, then by split
// point). Splits are at UTF-8 character boundaries.
std::vector<MergePair> merges_from_scores(std::span<const std::string> tokens, const std::vector<bool>& mergeable,
                                          std::span<const float> scores);

}  // namespace microscale::exporter::gguf
