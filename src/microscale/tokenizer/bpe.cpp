#include "microscale/tokenizer/bpe.hpp"

#include <bit>
#include <queue>

#include "microscale/core/error.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

std::pair<std::string, std::string> parse_merge(const Json& entry, const ConfigPath& at) {
  if (entry.is_string()) {
    // Legacy format "left right": exactly one space.
    const std::string& line = entry.get_ref<const std::string&>();
    const std::size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      at.fail("expected \"left right\" with exactly one space, got \"" + line + "\"");
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (entry.is_array() && entry.size() == 2 && entry[0].is_string() && entry[1].is_string())
    return {entry[0].get<std::string>(), entry[1].get<std::string>()};
  at.fail("expected \"left right\" or [\"left\", \"right\"]");
}

constexpr char32_t kCharacterTableSize = 0x3000;

}  // namespace

void MergeTable::reserve(std::size_t count) {
  std::size_t capacity = 16;
  while (capacity < count * 2) capacity *= 2;
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
}

void MergeTable::insert_or_assign(std::int32_t left, std::int32_t right, Merge merge) {
  const std::uint64_t key = pack(left, right);
  for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
    Slot& slot = slots_[i];
    if (slot.key == key || slot.key == kEmpty) {
      slot.key = key;
      slot.merge = merge;
      return;
    }
  }
}

BpeModel BpeModel::from_config(const Json& model, const ConfigPath& at) {
  BpeModel bpe;
  bpe.where_ = at.describe();
  if (const auto it = model.find("dropout"); it != model.end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() != 0.0) (at / "dropout").fail("BPE dropout is not supported (it makes encoding random)");
  }
  const Json& vocab = require(model, "vocab", at);
  if (!vocab.is_object()) (at / "vocab").fail("expected an object {token: id}");
  bpe.vocab_.reserve(vocab.size());
  std::int32_t max_id = -1;
  for (const auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<std::int64_t>() < 0 || id.get<std::int64_t>() > INT32_MAX)
      (at / "vocab").fail("token \"" + token + "\" has an id that is not a non-negative 32-bit integer");
    const auto value = static_cast<std::int32_t>(id.get<std::int64_t>());
    bpe.vocab_.emplace(token, value);
    max_id = std::max(max_id, value);
  }
  bpe.tokens_by_id_.assign(static_cast<std::size_t>(max_id + 1), nullptr);
  for (const auto& [token, id] : bpe.vocab_) {
    const std::string*& slot = bpe.tokens_by_id_[static_cast<std::size_t>(id)];
    // Two tokens with one id: keep a deterministic one (the smaller string).
    if (!slot || token < *slot) slot = &token;
  }

  bpe.continuing_subword_prefix_ = optional_string(model, "continuing_subword_prefix", "", at);
  bpe.end_of_word_suffix_ = optional_string(model, "end_of_word_suffix", "", at);
  bpe.fuse_unk_ = optional_bool(model, "fuse_unk", false, at);
  bpe.byte_fallback_ = optional_bool(model, "byte_fallback", false, at);
  bpe.ignore_merges_ = optional_bool(model, "ignore_merges", false, at);
  if (const auto it = model.find("unk_token"); it != model.end() && !it->is_null()) {
    bpe.unk_token_ = require_string(model, "unk_token", at);
    bpe.unk_id_ = bpe.token_id(*bpe.unk_token_);
  }
  for (int b = 0; b < 256; ++b) bpe.byte_ids_[b] = bpe.token_id(fmt::format("<0x{:02X}>", b)).value_or(-1);

  const Json& merges = require(model, "merges", at);
  if (!merges.is_array()) (at / "merges").fail("expected a list");
  bpe.merges_.reserve(merges.size());
  const std::size_t prefix_length = bpe.continuing_subword_prefix_.size();
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const ConfigPath here = (at / "merges")[rank];
    const auto [left, right] = parse_merge(merges[rank], here);
    const auto left_id = bpe.token_id(left);
    const auto right_id = bpe.token_id(right);
    if (!left_id || !right_id) here.fail("merge token \"" + (left_id ? right : left) + "\" is not in the vocabulary");
    // With a continuing-subword prefix the right part loses it when merged ("a" + "##b" -> "ab").
    const std::string merged = left + (right.size() >= prefix_length ? right.substr(prefix_length) : std::string());
    const auto merged_id = bpe.token_id(merged);
    if (!merged_id) here.fail("merged token \"" + merged + "\" is not in the vocabulary");
    // A repeated pair keeps its last rank, as in `tokenizers`.
    bpe.merges_.insert_or_assign(*left_id, *right_id, Merge{static_cast<std::int32_t>(rank), *merged_id});
  }
  if (bpe.continuing_subword_prefix_.empty() && bpe.end_of_word_suffix_.empty()) {
    bpe.character_ids_.assign(kCharacterTableSize, -1);
    std::string spelled;
    for (char32_t c = 0; c < kCharacterTableSize; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      spelled.clear();
      utf8::append(spelled, c);
      bpe.character_ids_[c] = bpe.token_id(spelled).value_or(-1);
    }
  }
  return bpe;
}

std::optional<std::int32_t> BpeModel::token_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= tokens_by_id_.size()) return nullptr;
  return tokens_by_id_[static_cast<std::size_t>(id)];
}

std::optional<std::int32_t> BpeModel::character_id(std::string_view character) const {
  if (!character_ids_.empty() && character.size() <= 3) {
    std::size_t pos = 0;
    const char32_t c = utf8::next_code_point(character, pos);
    if (c < kCharacterTableSize) {
      const std::int32_t id = character_ids_[c];
      return id >= 0 ? std::optional(id) : std::nullopt;
    }
  }
  return token_id(character);
}

// One symbol per character (with prefix/suffix where configured); characters missing from the
// vocabulary become their <0xNN> byte tokens (byte fallback) or the unk token (fused when asked).
void BpeModel::initial_symbols(std::string_view piece, std::vector<std::int32_t>& symbols) const {
  constexpr std::int32_t kNone = -1;
  std::int32_t pending_unk = kNone;  // an unk not yet emitted (so that the next one can fuse)
  std::string decorated;
  for (std::size_t pos = 0; pos < piece.size();) {
    const std::size_t begin = pos;
    pos += utf8::sequence_length(static_cast<unsigned char>(piece[pos]));
    std::string_view symbol = piece.substr(begin, pos - begin);
    if ((begin > 0 && !continuing_subword_prefix_.empty()) || (pos == piece.size() && !end_of_word_suffix_.empty())) {
      decorated.assign(begin > 0 ? continuing_subword_prefix_ : std::string());
      decorated += symbol;
      if (pos == piece.size()) decorated += end_of_word_suffix_;
      symbol = decorated;
    }
    if (const auto id = character_id(symbol)) {
      if (pending_unk != kNone) symbols.push_back(pending_unk);
      pending_unk = kNone;
      symbols.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes_known = true;
      for (char b : symbol) all_bytes_known = all_bytes_known && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all_bytes_known) {
        // As in `tokenizers`, a pending unk stays pending across byte-fallback tokens.
        for (char b : symbol) symbols.push_back(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (unk_token_) {
      if (!unk_id_) fail("{}: unk_token \"{}\" is not in the vocabulary", where_, *unk_token_);
      if (pending_unk != kNone && !fuse_unk_) symbols.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk != kNone) symbols.push_back(pending_unk);
}

// Few symbols: scan for the lowest-ranked pair (leftmost on ties) and merge it, until none is left.
// Same order as the priority queue below, without its bookkeeping.
void BpeModel::merge_short(std::vector<std::int32_t>& symbols) const {
  while (symbols.size() >= 2) {
    const Merge* best = nullptr;
    std::size_t best_position = 0;
    for (std::size_t i = 0; i + 1 < symbols.size(); ++i) {
      const Merge* m = find_merge(symbols[i], symbols[i + 1]);
      if (m && (!best || m->rank < best->rank)) {
        best = m;
        best_position = i;
      }
    }
    if (!best) return;
    symbols[best_position] = best->merged_id;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best_position) + 1);
  }
}

// Many symbols: a priority queue of candidate pairs over a linked list, O(n log n).
void BpeModel::merge_long(std::vector<std::int32_t>& symbols) const {
  const auto count = static_cast<std::int32_t>(symbols.size());
  std::vector<std::int32_t> prev(symbols.size()), next(symbols.size());
  for (std::int32_t i = 0; i < count; ++i) {
    prev[static_cast<std::size_t>(i)] = i - 1;
    next[static_cast<std::size_t>(i)] = i + 1 < count ? i + 1 : -1;
  }
  struct Candidate {
    std::int32_t rank, position, merged_id;
    // priority_queue pops the "largest": make that the lowest rank, then the leftmost position.
    bool operator<(const Candidate& other) const {
      return rank != other.rank ? rank > other.rank : position > other.position;
    }
  };
  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(storage));
  for (std::int32_t i = 0; i + 1 < count; ++i) {
    if (const Merge* m = find_merge(symbols[static_cast<std::size_t>(i)], symbols[static_cast<std::size_t>(i + 1)]))
      queue.push({m->rank, i, m->merged_id});
  }
  constexpr std::int32_t kRemoved = -1;
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const auto pos = static_cast<std::size_t>(top.position);
    if (symbols[pos] == kRemoved || next[pos] < 0) continue;
    const auto right = static_cast<std::size_t>(next[pos]);
    // Skip candidates made stale by an earlier merge of either symbol.
    const Merge* current = find_merge(symbols[pos], symbols[right]);
    if (!current || current->merged_id != top.merged_id) continue;
    symbols[pos] = top.merged_id;
    symbols[right] = kRemoved;
    next[pos] = next[right];
    if (next[right] >= 0) prev[static_cast<std::size_t>(next[right])] = top.position;
    if (prev[pos] >= 0) {
      const auto left = static_cast<std::size_t>(prev[pos]);
      if (const Merge* m = find_merge(symbols[left], symbols[pos])) queue.push({m->rank, prev[pos], m->merged_id});
    }
    if (next[pos] >= 0) {
      if (const Merge* m = find_merge(symbols[pos], symbols[static_cast<std::size_t>(next[pos])]))
        queue.push({m->rank, top.position, m->merged_id});
    }
  }
  std::erase(symbols, kRemoved);
}

void BpeModel::tokenize(std::string_view piece, std::vector<std::int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const auto id = token_id(piece)) {
      out.push_back(*id);
      return;
    }
  }
  thread_local std::vector<std::int32_t> symbols;
  symbols.clear();
  initial_symbols(piece, symbols);
  // Past a few dozen symbols the quadratic scan loses to the queue.
  constexpr std::size_t kShortPiece = 24;
  if (symbols.size() <= kShortPiece) {
    merge_short(symbols);
  } else {
    merge_long(symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
}

}  // namespace microscale::tokenizer
