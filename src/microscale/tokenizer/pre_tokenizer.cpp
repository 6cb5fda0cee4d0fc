#include "microscale/tokenizer/pre_tokenizer.hpp"

#include <algorithm>
#include <optional>

#include "microscale/tokenizer/byte_level.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

// GPT-2's pre-tokenization regex, which ByteLevel applies when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void emit_spans(const Piece& piece, const std::vector<Span>& spans, std::vector<Piece>& out) {
  for (const Span& span : spans) {
    out.push_back(Piece{piece.text.substr(span.begin, span.end - span.begin),
                        piece.at_input_start && span.begin == 0});
  }
}

std::vector<Span> literal_matches(std::string_view text, std::string_view needle) {
  std::vector<Span> matches;
  if (needle.empty()) return matches;
  for (std::size_t pos = text.find(needle); pos != std::string_view::npos; pos = text.find(needle, pos + needle.size()))
    matches.push_back({pos, pos + needle.size()});
  return matches;
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), regex_(use_regex ? std::optional(Regex::from_oniguruma(kGpt2Pattern, "ByteLevel")) : std::nullopt) {}

  void split(const Piece& piece, std::vector<Piece>& out) const override {
    Piece prefixed = piece;
    if (add_prefix_space_ && !piece.text.empty() && piece.text.front() != ' ') prefixed.text.insert(0, 1, ' ');
    const std::size_t first = out.size();
    if (regex_) {
      emit_spans(prefixed, split_spans(prefixed.text.size(), regex_->find_all(prefixed.text), SplitBehavior::Isolated, false), out);
    } else if (!prefixed.text.empty()) {
      out.push_back(std::move(prefixed));
    }
    for (std::size_t i = first; i < out.size(); ++i) {
      std::string spelled;
      spelled.reserve(out[i].text.size() * 2);
      byte_level::append_encoded(out[i].text, spelled);
      out[i].text = std::move(spelled);
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Regex> regex_;
};

class Split final : public PreTokenizer {
 public:
  Split(Regex pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    emit_spans(piece, split_spans(piece.text.size(), pattern_.find_all(piece.text), behavior_, invert_), out);
  }

 private:
  Regex pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// Spaces become the replacement character ("▁"), which is prepended to the piece according to the
// prepend scheme, and the piece is optionally split before each replacement character.
class Metaspace final : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  Metaspace(std::string replacement, Prepend prepend, bool split)
      : replacement_(std::move(replacement)), prepend_(prepend), split_(split) {}

  void split(const Piece& piece, std::vector<Piece>& out) const override {
    Piece replaced{std::string(), piece.at_input_start};
    replaced.text.reserve(piece.text.size() + replacement_.size());
    for (char c : piece.text) {
      if (c == ' ') {
        replaced.text += replacement_;
      } else {
        replaced.text.push_back(c);
      }
    }
    const bool starts_with_replacement = replaced.text.starts_with(replacement_);
    if (!starts_with_replacement && !replaced.text.empty() &&
        (prepend_ == Prepend::Always || (prepend_ == Prepend::First && piece.at_input_start)))
      replaced.text.insert(0, replacement_);
    if (split_) {
      emit_spans(replaced, split_spans(replaced.text.size(), literal_matches(replaced.text, replacement_),
                                       SplitBehavior::MergedWithNext, false), out);
    } else if (!replaced.text.empty()) {
      out.push_back(std::move(replaced));
    }
  }

 private:
  std::string replacement_;
  Prepend prepend_;
  bool split_;
};

// Numeric characters (Unicode N) isolated one by one, or runs of them kept together.
class Digits final : public PreTokenizer {
 public:
  explicit Digits(bool individual_digits)
      : numeric_(Regex::from_oniguruma(R"(\p{N})", "Digits")), individual_(individual_digits) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    const auto behavior = individual_ ? SplitBehavior::Isolated : SplitBehavior::Contiguous;
    emit_spans(piece, split_spans(piece.text.size(), numeric_.find_all(piece.text), behavior, false), out);
  }

 private:
  Regex numeric_;
  bool individual_;
};

// Splits on Unicode whitespace, which is removed.
class WhitespaceSplit final : public PreTokenizer {
 public:
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    std::vector<Span> matches;
    for (std::size_t pos = 0; pos < piece.text.size();) {
      const std::size_t begin = pos;
      if (utf8::is_whitespace(utf8::next_code_point(piece.text, pos))) matches.push_back({begin, pos});
    }
    emit_spans(piece, split_spans(piece.text.size(), matches, SplitBehavior::Removed, false), out);
  }
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> stages) : stages_(std::move(stages)) {}
  void split(const Piece& piece, std::vector<Piece>& out) const override {
    std::vector<Piece> current{piece};
    std::vector<Piece> next;
    for (const auto& stage : stages_) {
      next.clear();
      for (const Piece& p : current) stage->split(p, next);
      current.swap(next);
    }
    for (Piece& p : current) {
      if (!p.text.empty()) out.push_back(std::move(p));
    }
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> stages_;
};

SplitBehavior parse_behavior(const Json& config, const ConfigPath& at) {
  const std::string name = require_string(config, "behavior", at);
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  (at / "behavior").fail("unknown split behavior '" + name +
                         "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

Metaspace::Prepend parse_prepend_scheme(const Json& config, const ConfigPath& at) {
  if (const auto it = config.find("prepend_scheme"); it != config.end() && !it->is_null()) {
    const std::string scheme = require_string(config, "prepend_scheme", at);
    if (scheme == "always") return Metaspace::Prepend::Always;
    if (scheme == "first") return Metaspace::Prepend::First;
    if (scheme == "never") return Metaspace::Prepend::Never;
    (at / "prepend_scheme").fail("unknown prepend scheme '" + scheme + "' (expected always, first or never)");
  }
  // Files older than prepend_scheme carry add_prefix_space instead.
  return optional_bool(config, "add_prefix_space", true, at) ? Metaspace::Prepend::Always : Metaspace::Prepend::Never;
}

}  // namespace

std::vector<Span> split_spans(std::size_t text_size, const std::vector<Span>& matches, SplitBehavior behavior,
                              bool invert) {
  // The text as alternating (span, is_match) parts covering all of it.
  struct Part {
    Span span;
    bool is_match;
  };
  std::vector<Part> parts;
  parts.reserve(matches.size() * 2 + 1);
  std::size_t done = 0;
  for (const Span& m : matches) {
    if (m.begin > done) parts.push_back({{done, m.begin}, invert});
    parts.push_back({m, !invert});
    done = m.end;
  }
  if (done < text_size || parts.empty()) parts.push_back({{done, text_size}, invert});

  std::vector<Span> pieces;
  pieces.reserve(parts.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const Part& p : parts) pieces.push_back(p.span);
      break;
    case SplitBehavior::Removed:
      for (const Part& p : parts) {
        if (!p.is_match) pieces.push_back(p.span);
      }
      break;
    case SplitBehavior::Contiguous:
      for (const Part& p : parts) {
        if (p.is_match == previous_match && !pieces.empty()) {
          pieces.back().end = p.span.end;
        } else {
          pieces.push_back(p.span);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::MergedWithPrevious:
      for (const Part& p : parts) {
        if (p.is_match && !previous_match && !pieces.empty()) {
          pieces.back().end = p.span.end;
        } else {
          pieces.push_back(p.span);
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::MergedWithNext:
      // Walk backwards: a match joins the piece that follows it.
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->is_match && !previous_match && !pieces.empty()) {
          pieces.back().begin = it->span.begin;
        } else {
          pieces.push_back(it->span);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
  }
  std::erase_if(pieces, [](const Span& s) { return s.end == s.begin; });
  return pieces;
}

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const Json& config, const ConfigPath& at) {
  if (config.is_null()) return nullptr;
  const std::string type = component_type(config, at);
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(optional_bool(config, "add_prefix_space", true, at),
                                       optional_bool(config, "use_regex", true, at));
  if (type == "Split")
    return std::make_unique<Split>(regex_from_config(require(config, "pattern", at), at / "pattern"),
                                   parse_behavior(config, at), optional_bool(config, "invert", false, at));
  if (type == "Metaspace") {
    std::string replacement = require_string(config, "replacement", at);
    if (replacement.empty() || utf8::sequence_length(static_cast<unsigned char>(replacement[0])) != replacement.size())
      (at / "replacement").fail("expected a single character");
    return std::make_unique<Metaspace>(std::move(replacement), parse_prepend_scheme(config, at),
                                       optional_bool(config, "split", true, at));
  }
  if (type == "Digits") return std::make_unique<Digits>(optional_bool(config, "individual_digits", false, at));
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplit>();
  if (type == "Sequence") {
    const Json& list = require(config, "pretokenizers", at);
    if (!list.is_array()) (at / "pretokenizers").fail("expected a list");
    std::vector<std::unique_ptr<PreTokenizer>> stages;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto stage = parse_pre_tokenizer(list[i], (at / "pretokenizers")[i])) stages.push_back(std::move(stage));
    }
    return std::make_unique<Sequence>(std::move(stages));
  }
  (at / "type").fail("pre-tokenizer '" + type +
                     "' is not supported (supported: ByteLevel, Split, Metaspace, Digits, WhitespaceSplit, Sequence)");
}

}  // namespace microscale::tokenizer
