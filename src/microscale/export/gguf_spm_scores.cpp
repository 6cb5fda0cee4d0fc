#include "microscale/export/gguf_spm_scores.hpp"

#include <algorithm>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "microscale/tokenizer/utf8.hpp"

namespace microscale::exporter::gguf {
namespace {

// Token text -> id, for the tokens merging may produce or join.
std::unordered_map<std::string_view, std::int32_t> index_of(std::span<const std::string> tokens) {
  std::unordered_map<std::string_view, std::int32_t> index;
  index.reserve(tokens.size());
  for (std::size_t id = 0; id < tokens.size(); ++id) index.emplace(tokens[id], static_cast<std::int32_t>(id));
  return index;
}

bool is_multi_character(std::string_view token) {
  return !token.empty() && tokenizer::utf8::sequence_length(static_cast<unsigned char>(token[0])) < token.size();
}

}  // namespace

SpmScores scores_from_merges(std::span<const std::string> tokens, const std::vector<bool>& mergeable,
                             std::span<const MergePair> merges) {
  const float unmerged_score = -static_cast<float>(merges.size());
  SpmScores out{std::vector<float>(tokens.size(), unmerged_score), {}};
  std::vector<bool> produced(tokens.size(), false);
  const auto index = index_of(tokens);
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    joined = merges[rank].first + merges[rank].second;
    const auto it = index.find(joined);
    if (it == index.end()) continue;  // a merge into no token: `tokenizers` refuses such files already
    const auto id = static_cast<std::size_t>(it->second);
    if (produced[id]) continue;  // later merges into the same token never decide its priority
    produced[id] = true;
    out.scores[id] = -static_cast<float>(rank);
  }
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    if (mergeable[id] && !produced[id] && is_multi_character(tokens[id])) {
      out.unmerged.push_back(static_cast<std::int32_t>(id));
    }
  }
  return out;
}

std::vector<MergePair> merges_from_scores(std::span<const std::string> tokens, const std::vector<bool>& mergeable,
                                          std::span<const float> scores) {
  const auto index = index_of(tokens);
  struct Split {
    float score;
    std::int32_t id;
    std::size_t at;
  };
  std::vector<Split> splits;
  for (std::size_t id = 0; id < tokens.size(); ++id) {
    if (!mergeable[id]) continue;
    const std::string_view token = tokens[id];
    for (std::size_t at = tokenizer::utf8::sequence_length(static_cast<unsigned char>(token.empty() ? 0 : token[0]));
         at < token.size(); at += tokenizer::utf8::sequence_length(static_cast<unsigned char>(token[at]))) {
      const auto left = index.find(token.substr(0, at));
      const auto right = index.find(token.substr(at));
      // Both halves must be tokens merging works with: a control token's text typed literally is not one.
      if (left == index.end() || right == index.end()) continue;
      if (!mergeable[static_cast<std::size_t>(left->second)] && is_multi_character(left->first)) continue;
      if (!mergeable[static_cast<std::size_t>(right->second)] && is_multi_character(right->first)) continue;
      splits.push_back({scores[id], static_cast<std::int32_t>(id), at});
    }
  }
  std::sort(splits.begin(), splits.end(), [](const Split& a, const Split& b) {
    return std::tie(b.score, a.id, a.at) < std::tie(a.score, b.id, b.at);
  });
  std::vector<MergePair> merges;
  merges.reserve(splits.size());
  for (const Split& s : splits) {
    const std::string& token = tokens[static_cast<std::size_t>(s.id)];
    merges.emplace_back(token.substr(0, s.at), token.substr(s.at));
  }
  return merges;
}

}  // namespace microscale::exporter::gguf
