#pragma once
// Reading tokenizer.json fields with errors that say where the problem is:
// "<file>: pre_tokenizer.pretokenizers[1].behavior: expected a string".
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace microscale::tokenizer {

using Json = nlohmann::json;

class ConfigPath {
 public:
  ConfigPath(std::string file, std::string where) : file_(std::move(file)), where_(std::move(where)) {}
  ConfigPath operator/(std::string_view key) const;
  ConfigPath operator[](std::size_t index) const;
  [[noreturn]] void fail(std::string_view problem) const;
  std::string describe() const;  // "<file>: <where>"
  const std::string& file() const { return file_; }

 private:
  std::string file_;
  std::string where_;
};

// Field access on a JSON object; a missing required field or a wrong type is an error.
const Json& require(const Json& object, std::string_view key, const ConfigPath& at);
std::string require_string(const Json& object, std::string_view key, const ConfigPath& at);
std::string optional_string(const Json& object, std::string_view key, std::string_view fallback, const ConfigPath& at);
bool optional_bool(const Json& object, std::string_view key, bool fallback, const ConfigPath& at);
std::int64_t optional_int(const Json& object, std::string_view key, std::int64_t fallback, const ConfigPath& at);
// A component's "type" field; errors if `value` is not an object with a string "type".
std::string component_type(const Json& value, const ConfigPath& at);

}  // namespace microscale::tokenizer
