#pragma once
// Reading whole files (text, config.json, tokenizer.json, index files) with errors that name the file.
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

namespace microscale::io {

// The file's bytes. Throws microscale::Error naming `path` (and `what` it was meant to be) when it is
// missing or unreadable.
std::string read_file(const std::filesystem::path& path, std::string_view what = "file");

// Throws microscale::Error naming `path` when it is missing, unreadable or not well-formed JSON.
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace microscale::io
