#pragma once
// Reading a JSON file (config.json, tokenizer.json, index files) with errors that name the file.
#include <filesystem>

#include <nlohmann/json.hpp>

namespace microscale::io {

// Throws microscale::Error naming `path` when it is missing, unreadable or not well-formed JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace microscale::io
