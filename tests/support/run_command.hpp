#pragma once
// Runs a shell command and captures its exit code, stdout and stderr (for CLI end-to-end tests).
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "support/temp_dir.hpp"

namespace microscale::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Copies the first `lines` lines of `from` into `to` (a short slice of a task file, say).
inline void write_first_lines(const std::filesystem::path& from, const std::filesystem::path& to, int lines) {
  std::ifstream in(from);
  std::ofstream out(to);
  std::string line;
  for (int i = 0; i < lines && std::getline(in, line); ++i) out << line << "\n";
}

inline CommandResult run_command(const std::string& command) {
  TempDir capture;
  const std::string full = command + " >" + (capture / "out").string() + " 2>" + (capture / "err").string();
  const int status = std::system(full.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(capture / "out");
  r.err = read_text(capture / "err");
  return r;
}

inline std::string cli() { return MICROSCALE_CLI_PATH; }

}  // namespace microscale::testing
