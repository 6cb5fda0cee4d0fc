#include "microscale/tokenizer/decoder.hpp"

#include <optional>

#include "microscale/tokenizer/byte_level.hpp"
#include "microscale/tokenizer/regex.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {
namespace {

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

// Characters back to bytes; a token with a character outside the byte alphabet (an added token
// such as "<|endoftext|>" is inside it, but e.g. "日本" is not) keeps its UTF-8 bytes. The bytes of
// all tokens are then read as UTF-8, ill-formed sequences becoming U+FFFD.
class ByteLevel final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const std::size_t mark = bytes.size();
      bool all_mapped = true;
      for (std::size_t pos = 0; pos < token.size();) {
        const auto byte = byte_level::char_to_byte(utf8::next_code_point(token, pos));
        if (!byte) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(*byte));
      }
      if (!all_mapped) {
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, utf8::decode_lossy(bytes));
  }
};

// The replacement character becomes a space, except in the first token where it is dropped
// (unless the prepend scheme is "never").
class Metaspace final : public Decoder {
 public:
  Metaspace(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      out.reserve(tokens[i].size());
      const std::string& token = tokens[i];
      for (std::size_t pos = 0; pos < token.size();) {
        if (token.compare(pos, replacement_.size(), replacement_) == 0) {
          if (!(i == 0 && strip_first_)) out.push_back(' ');
          pos += replacement_.size();
        } else {
          out.push_back(token[pos++]);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class Replace final : public Decoder {
 public:
  Replace(Regex pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string out;
      std::size_t done = 0;
      for (const Span& match : pattern_.find_all(token)) {
        out.append(token, done, match.begin - done);
        out += content_;
        done = match.end;
      }
      out.append(token, done);
      token = std::move(out);
    }
  }

 private:
  Regex pattern_;
  std::string content_;
};

// Runs of <0xNN> tokens become the text their bytes spell, or one U+FFFD per byte when those bytes
// are not well-formed UTF-8.
class ByteFallback final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (!utf8::first_invalid_byte(pending)) {
        out.push_back(pending);
      } else {
        for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementCharacter);
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      if (const auto byte = parse_byte_token(token)) {
        pending.push_back(static_cast<char>(*byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
  }

 private:
  static std::optional<unsigned char> parse_byte_token(std::string_view token) {
    if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
    int value = 0;
    for (char c : token.substr(3, 2)) {
      int digit = -1;
      if (c >= '0' && c <= '9') digit = c - '0';
      if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
      if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    return static_cast<unsigned char>(value);
  }
};

class Fuse final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    tokens.assign(1, std::move(joined));
  }
};

// Removes up to `start` leading and `stop` trailing copies of a character from every token.
class Strip final : public Decoder {
 public:
  Strip(std::string content, std::size_t start, std::size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string_view view = token;
      for (std::size_t i = 0; i < start_ && view.starts_with(content_); ++i) view.remove_prefix(content_.size());
      for (std::size_t i = 0; i < stop_ && view.ends_with(content_); ++i) view.remove_suffix(content_.size());
      token = std::string(view);
    }
  }

 private:
  std::string content_;
  std::size_t start_, stop_;
};

class Sequence final : public Decoder {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Decoder>> stages) : stages_(std::move(stages)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& stage : stages_) stage->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> stages_;
};

std::string single_character(const Json& config, std::string_view key, const ConfigPath& at) {
  std::string value = require_string(config, key, at);
  if (value.empty() || utf8::first_invalid_byte(value) ||
      utf8::sequence_length(static_cast<unsigned char>(value[0])) != value.size())
    (at / key).fail("expected a single character");
  return value;
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const Json& config, const ConfigPath& at) {
  if (config.is_null()) return nullptr;
  const std::string type = component_type(config, at);
  if (type == "ByteLevel") return std::make_unique<ByteLevel>();
  if (type == "Metaspace") {
    std::string scheme = optional_string(config, "prepend_scheme", "", at);
    if (scheme.empty()) scheme = optional_bool(config, "add_prefix_space", true, at) ? "always" : "never";
    if (scheme != "always" && scheme != "first" && scheme != "never")
      (at / "prepend_scheme").fail("unknown prepend scheme '" + scheme + "' (expected always, first or never)");
    return std::make_unique<Metaspace>(single_character(config, "replacement", at), scheme != "never");
  }
  if (type == "Replace")
    return std::make_unique<Replace>(regex_from_config(require(config, "pattern", at), at / "pattern"),
                                     require_string(config, "content", at));
  if (type == "ByteFallback") return std::make_unique<ByteFallback>();
  if (type == "Fuse") return std::make_unique<Fuse>();
  if (type == "Strip") {
    const auto start = optional_int(config, "start", 0, at), stop = optional_int(config, "stop", 0, at);
    if (start < 0 || stop < 0) at.fail("Strip start and stop must be non-negative");
    return std::make_unique<Strip>(single_character(config, "content", at), static_cast<std::size_t>(start),
                                   static_cast<std::size_t>(stop));
  }
  if (type == "Sequence") {
    const Json& list = require(config, "decoders", at);
    if (!list.is_array()) (at / "decoders").fail("expected a list");
    std::vector<std::unique_ptr<Decoder>> stages;
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (auto stage = parse_decoder(list[i], (at / "decoders")[i])) stages.push_back(std::move(stage));
    }
    return std::make_unique<Sequence>(std::move(stages));
  }
  (at / "type").fail("decoder '" + type +
                     "' is not supported (supported: ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence)");
}

}  // namespace microscale::tokenizer
