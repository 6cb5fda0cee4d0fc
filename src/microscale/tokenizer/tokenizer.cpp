#include "microscale/tokenizer/tokenizer.hpp"

#include <unordered_map>
#include <unordered_set>

#include "microscale/core/error.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/tokenizer/added_tokens.hpp"
#include "microscale/tokenizer/bpe.hpp"
#include "microscale/tokenizer/decoder.hpp"
#include "microscale/tokenizer/normalizer.hpp"
#include "microscale/tokenizer/post_processor.hpp"
#include "microscale/tokenizer/pre_tokenizer.hpp"
#include "microscale/tokenizer/utf8.hpp"

namespace microscale::tokenizer {

struct Tokenizer::Impl {
  std::string source;
  BpeModel model;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Decoder> decoder;
  SpecialAffixes affixes;
  std::unordered_map<std::int32_t, AddedToken> added_by_id;
  TokenIds added_ids;  // content -> id
  std::unordered_set<std::string, StringHash, std::equal_to<>> special_contents;
  AddedTokenMatcher raw_matcher;         // "normalized": false tokens, searched in the input
  AddedTokenMatcher normalized_matcher;  // the others, searched in each normalized piece
  std::size_t vocab_size = 0;
  std::optional<std::int32_t> bos, eos;

  explicit Impl(BpeModel m) : model(std::move(m)) {}
  void register_added_tokens(std::vector<AddedToken> tokens);
  void choose_bos_and_eos();
  void encode_piece(std::string_view text, bool at_input_start, std::vector<Piece>& scratch,
                    std::vector<std::int32_t>& out) const;
};

namespace {

void check_model(const Json& model, const ConfigPath& at) {
  if (!model.is_object()) at.fail("expected a JSON object");
  std::string type = optional_string(model, "type", "", at);
  if (type.empty()) {
    // Old files leave the type out; `tokenizers` then recognizes a BPE model by its merges.
    if (model.contains("merges")) return;
    at.fail("the model has no \"type\" and is not a BPE model (supported: BPE)");
  }
  if (type != "BPE") (at / "type").fail("model '" + type + "' is not supported (supported: BPE)");
}

void check_no_truncation_or_padding(const Json& config, const ConfigPath& at) {
  for (const char* key : {"truncation", "padding"}) {
    if (const auto it = config.find(key); it != config.end() && !it->is_null())
      (at / key).fail("is set; truncation and padding are not supported (they change the ids), set it to null");
  }
}

std::vector<AddedToken> parse_added_tokens(const Json& config, const ConfigPath& at) {
  std::vector<AddedToken> tokens;
  const auto it = config.find("added_tokens");
  if (it == config.end() || it->is_null()) return tokens;
  if (!it->is_array()) (at / "added_tokens").fail("expected a list");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const Json& entry = (*it)[i];
    const ConfigPath here = (at / "added_tokens")[i];
    AddedToken token;
    token.content = require_string(entry, "content", here);
    const std::int64_t id = optional_int(entry, "id", -1, here);
    if (id < 0 || id > INT32_MAX) (here / "id").fail("expected a non-negative 32-bit id");
    token.id = static_cast<std::int32_t>(id);
    token.single_word = optional_bool(entry, "single_word", false, here);
    token.lstrip = optional_bool(entry, "lstrip", false, here);
    token.rstrip = optional_bool(entry, "rstrip", false, here);
    token.normalized = optional_bool(entry, "normalized", true, here);
    token.special = optional_bool(entry, "special", false, here);
    tokens.push_back(std::move(token));
  }
  return tokens;
}

}  // namespace

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  // read_json_file names the file when it is missing or not well-formed JSON.
  return load(io::read_json_file(tokenizer_json), tokenizer_json.string());
}

Tokenizer Tokenizer::from_json_text(std::string_view json_text, std::string_view source_name) {
  Json config;
  try {
    config = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    fail("{}: not valid JSON: {}", source_name, e.what());
  }
  return load(config, std::string(source_name));
}

Tokenizer Tokenizer::load(const Json& config, const std::string& source) {
  const ConfigPath root(source, "");
  if (!config.is_object()) root.fail("expected a JSON object at the top level");

  check_no_truncation_or_padding(config, root);
  const Json& model_config = require(config, "model", root);
  check_model(model_config, root / "model");
  auto impl = std::make_shared<Impl>(BpeModel::from_config(model_config, root / "model"));
  impl->source = source;
  impl->normalizer = parse_normalizer(config.value("normalizer", Json()), root / "normalizer");
  impl->pre_tokenizer = parse_pre_tokenizer(config.value("pre_tokenizer", Json()), root / "pre_tokenizer");
  impl->decoder = parse_decoder(config.value("decoder", Json()), root / "decoder");
  impl->affixes = parse_post_processor(config.value("post_processor", Json()), root / "post_processor");

  impl->register_added_tokens(parse_added_tokens(config, root));
  impl->choose_bos_and_eos();
  return Tokenizer(std::move(impl));
}

// Added tokens take the id the model already gives their content, or the next free one, exactly as
// `tokenizers` assigns them on loading (for files it wrote, that is the id in the file).
void Tokenizer::Impl::register_added_tokens(std::vector<AddedToken> tokens) {
  std::vector<AddedToken> specials, others;
  const auto model_size = static_cast<std::int32_t>(model.vocab().size());
  std::optional<std::int32_t> max_added;
  for (AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    if (token.special && special_contents.insert(token.content).second) specials.push_back(token);
    std::int32_t id = 0;
    if (const auto it = added_ids.find(token.content); it != added_ids.end()) {
      id = it->second;
    } else if (const auto model_id = model.token_id(token.content)) {
      id = *model_id;
    } else {
      id = max_added && (*max_added >= model_size || model_size == 0) ? *max_added + 1 : model_size;
    }
    token.id = id;
    added_ids[token.content] = id;
    max_added = std::max(max_added.value_or(id), id);
    added_by_id[id] = token;
    if (!special_contents.contains(token.content)) others.push_back(token);
  }
  for (auto* list : {&specials, &others}) {
    for (AddedToken& token : *list) token.id = added_ids.at(token.content);
  }
  std::vector<AddedToken> raw, normalized;
  std::vector<std::string> raw_patterns, normalized_patterns;
  for (const auto* list : {&specials, &others}) {
    for (const AddedToken& token : *list) {
      if (token.normalized) {
        normalized_patterns.push_back(normalizer ? normalizer->normalize(token.content) : token.content);
        normalized.push_back(token);
      } else {
        raw_patterns.push_back(token.content);
        raw.push_back(token);
      }
    }
  }
  raw_matcher = AddedTokenMatcher(std::move(raw), raw_patterns);
  normalized_matcher = AddedTokenMatcher(std::move(normalized), normalized_patterns);

  vocab_size = model.vocab().size();
  for (const auto& [content, id] : added_ids) {
    if (!model.token_id(content)) ++vocab_size;
  }
}

void Tokenizer::Impl::choose_bos_and_eos() {
  if (!affixes.prefix.empty()) bos = affixes.prefix.front();
  if (!affixes.suffix.empty()) eos = affixes.suffix.front();
  const auto first_special_named = [&](std::initializer_list<std::string_view> names) -> std::optional<std::int32_t> {
    for (std::string_view name : names) {
      if (special_contents.contains(name)) return added_ids.find(name)->second;
    }
    return std::nullopt;
  };
  if (!bos) bos = first_special_named({"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>"});
  if (!eos) eos = first_special_named({"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>", "<|eot_id|>"});
}

void Tokenizer::Impl::encode_piece(std::string_view text, bool at_input_start, std::vector<Piece>& scratch,
                                   std::vector<std::int32_t>& out) const {
  const std::string normalized = normalizer ? normalizer->normalize(text) : std::string(text);
  const auto parts = normalized_matcher.empty() ? std::vector<AddedTokenSplit>{{{0, normalized.size()}, -1}}
                                                : normalized_matcher.split(normalized);
  for (const AddedTokenSplit& part : parts) {
    if (part.token_id >= 0) {
      out.push_back(part.token_id);
      continue;
    }
    if (part.span.end == part.span.begin) continue;
    Piece piece{normalized.substr(part.span.begin, part.span.end - part.span.begin), at_input_start && part.span.begin == 0};
    if (!pre_tokenizer) {
      model.tokenize(piece.text, out);
      continue;
    }
    scratch.clear();
    pre_tokenizer->split(piece, scratch);
    for (const Piece& word : scratch) model.tokenize(word.text, out);
  }
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (const auto bad = utf8::first_invalid_byte(text))
    fail("{}: cannot encode text that is not valid UTF-8 (byte {} of {})", impl_->source, *bad, text.size());
  std::vector<std::int32_t> ids;
  if (add_special_tokens) ids = impl_->affixes.prefix;
  ids.reserve(ids.size() + text.size() / 3 + 8);
  std::vector<Piece> scratch;
  const auto parts = impl_->raw_matcher.empty() ? std::vector<AddedTokenSplit>{{{0, text.size()}, -1}}
                                                : impl_->raw_matcher.split(text);
  for (const AddedTokenSplit& part : parts) {
    if (part.token_id >= 0) {
      ids.push_back(part.token_id);
    } else if (part.span.end > part.span.begin) {
      impl_->encode_piece(text.substr(part.span.begin, part.span.end - part.span.begin), part.span.begin == 0, scratch, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), impl_->affixes.suffix.begin(), impl_->affixes.suffix.end());
  return ids;
}

std::string Tokenizer::decode(std::span<const std::int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (std::int32_t id : ids) {
    const std::string* token = nullptr;
    if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) {
      token = &it->second.content;
    } else {
      token = impl_->model.token(id);
    }
    // Special-ness goes by content, so a model token spelled like a special token is one too.
    if (token && !(skip_special_tokens && impl_->special_contents.contains(*token))) tokens.push_back(*token);
  }
  if (!impl_->decoder) {
    std::string joined;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0) joined.push_back(' ');
      joined += tokens[i];
    }
    return joined;
  }
  impl_->decoder->decode_chain(tokens);
  std::string text;
  for (const std::string& t : tokens) text += t;
  return text;
}

std::size_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<std::int32_t> Tokenizer::token_id(std::string_view token) const {
  if (const auto it = impl_->added_ids.find(token); it != impl_->added_ids.end()) return it->second;
  return impl_->model.token_id(token);
}

std::optional<std::string> Tokenizer::token(std::int32_t id) const {
  if (const auto it = impl_->added_by_id.find(id); it != impl_->added_by_id.end()) return it->second.content;
  if (const std::string* token = impl_->model.token(id)) return *token;
  return std::nullopt;
}

bool Tokenizer::is_special(std::int32_t id) const {
  const auto content = token(id);
  return content && impl_->special_contents.contains(*content);
}

std::optional<std::int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<std::int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::span<const std::int32_t> Tokenizer::special_prefix() const { return impl_->affixes.prefix; }
std::span<const std::int32_t> Tokenizer::special_suffix() const { return impl_->affixes.suffix; }
const std::string& Tokenizer::source() const { return impl_->source; }

}  // namespace microscale::tokenizer
