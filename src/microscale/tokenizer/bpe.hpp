#pragma once
// The BPE model of tokenizer.json ("type": "BPE"): a vocabulary, ranked merges (either "a b" strings
// or ["a", "b"] pairs), unk token with optional fusing, byte fallback to <0xNN> tokens,
// continuing_subword_prefix / end_of_word_suffix, and ignore_merges (Llama 3: a piece that is itself
// in the vocabulary is one token).
//
// Merging follows `tokenizers`: the lowest-ranked adjacent pair is merged first, leftmost among
// equal ranks, with a priority queue over a linked list of symbols: O(n log n) in the piece length.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "microscale/tokenizer/config.hpp"

namespace microscale::tokenizer {

// Hashing that lets unordered_map<std::string, ...> be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenIds = std::unordered_map<std::string, std::int32_t, StringHash, std::equal_to<>>;

// What merging an adjacent pair of tokens gives, and its priority (lower rank merges first).
struct Merge {
  std::int32_t rank;
  std::int32_t merged_id;
};

// Open-addressing hash table from (left id, right id) to Merge: the BPE inner loop is mostly these
// lookups, and std::unordered_map's node chasing made them the bottleneck.
class MergeTable {
 public:
  void reserve(std::size_t count);
  void insert_or_assign(std::int32_t left, std::int32_t right, Merge merge);
  const Merge* find(std::int32_t left, std::int32_t right) const {
    if (slots_.empty()) return nullptr;
    const std::uint64_t key = pack(left, right);
    for (std::size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.merge;
      if (slot.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // ids are non-negative, so no key is this
  struct Slot {
    std::uint64_t key = kEmpty;
    Merge merge{};
  };
  static std::uint64_t pack(std::int32_t left, std::int32_t right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) | static_cast<std::uint32_t>(right);
  }
  std::size_t slot_of(std::uint64_t key) const { return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  int shift_ = 64;
};

class BpeModel {
 public:
  static BpeModel from_config(const Json& model, const ConfigPath& at);
  // tokens_by_id_ points into vocab_'s keys: moving keeps them valid, copying would not.
  BpeModel(BpeModel&&) = default;
  BpeModel& operator=(BpeModel&&) = default;
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized piece.
  void tokenize(std::string_view piece, std::vector<std::int32_t>& out) const;

  std::optional<std::int32_t> token_id(std::string_view token) const;
  const std::string* token(std::int32_t id) const;  // nullptr for an id outside the vocabulary
  const TokenIds& vocab() const { return vocab_; }

 private:
  BpeModel() = default;
  const Merge* find_merge(std::int32_t left, std::int32_t right) const { return merges_.find(left, right); }
  std::optional<std::int32_t> character_id(std::string_view character) const;
  void initial_symbols(std::string_view piece, std::vector<std::int32_t>& symbols) const;
  void merge_short(std::vector<std::int32_t>& symbols) const;
  void merge_long(std::vector<std::int32_t>& symbols) const;

  TokenIds vocab_;
  std::vector<const std::string*> tokens_by_id_;
  MergeTable merges_;
  // Ids of the single characters below U+3000 (-1: not in the vocabulary), so that splitting a piece
  // into characters needs no string hashing. Empty when a prefix or suffix decorates characters.
  std::vector<std::int32_t> character_ids_;
  std::optional<std::string> unk_token_;
  std::optional<std::int32_t> unk_id_;
  std::string continuing_subword_prefix_;
  std::string end_of_word_suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::int32_t byte_ids_[256] = {};  // <0xNN> ids, -1 where absent
  std::string where_;               // for errors at encode time
};

}  // namespace microscale::tokenizer
