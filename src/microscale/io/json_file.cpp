#include "microscale/io/json_file.hpp"

#include <fstream>
#include <sstream>

#include "microscale/core/error.hpp"

namespace microscale::io {

std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: {} not found", path.string(), what);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open the {} for reading", path.string(), what);
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) fail("{}: error while reading the {}", path.string(), what);
  return buffer.str();
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_file(path, "JSON file");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

}  // namespace microscale::io
