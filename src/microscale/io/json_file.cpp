#include "microscale/io/json_file.hpp"

#include <fstream>
#include <sstream>

#include "microscale/core/error.hpp"

namespace microscale::io {

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("{}: file not found", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open for reading", path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON: {}", path.string(), e.what());
  }
}

}  // namespace microscale::io
