#include "microscale/tokenizer/normalizer.hpp"

#include <vector>

#include "microscale/tokenizer/regex.hpp"
#include "microscale/tokenizer/unicode_normalization.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

class Nfc final : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return to_nfc(text); }
};

class Nfd final : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return to_nfd(text); }
};

// Prepends a string to any non-empty text (Llama 2 prepends "▁").
class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view text) const override {
    return text.empty() ? std::string() : prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

// Replaces every non-overlapping match of a literal or regex with `content`.
class Replace final : public Normalizer {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    std::size_t done = 0;
    for (const Span& match : pattern_.find_all(text)) {
      out.append(text.substr(done, match.begin - done));
      out += content_;
      done = match.end;
    }
    out.append(text.substr(done));
    return out;
  }

 private:
  Regex pattern_;
  std::string content_;
};

// Removes leading and/or trailing Unicode whitespace.
class Strip final : public Normalizer {
 public:
  Strip(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    std::size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        std::size_t next = begin;
        if (!utf8::is_whitespace(utf8::next_code_point(text, next))) break;
        begin = next;
      }
    }
    if (right_) {
      while (end > begin) {
        const char32_t c = utf8::previous_code_point(text, end);
        if (!utf8::is_whitespace(c)) break;
        std::size_t start = end - 1;
        while ((static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        end = start;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> stages) : stages_(std::move(stages)) {}
  std::string normalize(std::string_view text) const override {
    std::string current(text);
    for (const auto& stage : stages_) current = stage->normalize(current);
    return current;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> stages_;
};

}  // namespace

std::unique_ptr<Normalizer> parse_normalizer(const Json& config, const ConfigPath& at) {
  if (config.is_null()) return nullptr;
  const std::string type = component_type(config, at);
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "NFD") return std::make_unique<Nfd>();
  if (type == "Prepend") return std::make_unique<Prepend>(require_string(config, "prepend", at));
  if (type == "Replace")
    return std::make_unique<Replace>(regex_from_config(require(config, "pattern", at), at / "pattern"),
                                     require_string(config, "content", at));
  if (type == "Strip")
    return std::make_unique<Strip>(optional_bool(config, "strip_left", true, at),
                                   optional_bool(config, "strip_right", true, at));
  if (type == "Sequence") {
    const Json& list = require(config, "normalizers", at);
    if (!list.is_array()) (at / "normalizers").fail("expected a list");
    std::vector<std::unique_ptr<Normalizer>> stages;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto stage = parse_normalizer(list[i], (at / "normalizers")[i])) stages.push_back(std::move(stage));
    }
    return std::make_unique<Sequence>(std::move(stages));
  }
  (at / "type").fail("normalizer '" + type + "' is not supported (supported: NFC, NFD, Prepend, Replace, Strip, Sequence)");
}

}  // namespace microscale::tokenizer
