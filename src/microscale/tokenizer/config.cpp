#include "microscale/tokenizer/config.hpp"

#include "microscale/core/error.hpp"

namespace microscale::tokenizer {

ConfigPath ConfigPath::operator/(std::string_view key) const {
  return ConfigPath(file_, where_.empty() ? std::string(key) : where_ + "." + std::string(key));
}

ConfigPath ConfigPath::operator[](std::size_t index) const {
  return ConfigPath(file_, where_ + "[" + std::to_string(index) + "]");
}

std::string ConfigPath::describe() const { return where_.empty() ? file_ : file_ + ": " + where_; }

void ConfigPath::fail(std::string_view problem) const { microscale::fail("{}: {}", describe(), problem); }

const Json& require(const Json& object, std::string_view key, const ConfigPath& at) {
  if (!object.is_object()) at.fail("expected a JSON object");
  const auto it = object.find(key);
  if (it == object.end()) (at / key).fail("missing");
  return *it;
}

std::string require_string(const Json& object, std::string_view key, const ConfigPath& at) {
  const Json& value = require(object, key, at);
  if (!value.is_string()) (at / key).fail("expected a string");
  return value.get<std::string>();
}

std::string optional_string(const Json& object, std::string_view key, std::string_view fallback, const ConfigPath& at) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string(fallback);
  if (!it->is_string()) (at / key).fail("expected a string");
  return it->get<std::string>();
}

bool optional_bool(const Json& object, std::string_view key, bool fallback, const ConfigPath& at) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) (at / key).fail("expected true or false");
  return it->get<bool>();
}

std::int64_t optional_int(const Json& object, std::string_view key, std::int64_t fallback, const ConfigPath& at) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) (at / key).fail("expected an integer");
  return it->get<std::int64_t>();
}

std::string component_type(const Json& value, const ConfigPath& at) {
  if (!value.is_object()) at.fail("expected a JSON object");
  return require_string(value, "type", at);
}

}  // namespace microscale::tokenizer
