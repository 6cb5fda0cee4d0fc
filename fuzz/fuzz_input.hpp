#pragma once
// What the harnesses share: the readers take paths, so each input is written to one scratch file per
// process (in /dev/shm when there is one: no disk traffic at tens of thousands of runs a second), and
// a microscale::Error is the expected answer to bad input. Anything else escaping a reader (another
// exception type, a crash, a sanitizer report) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <string_view>

#include "microscale/core/error.hpp"

namespace microscale::fuzz {

inline std::filesystem::path scratch_path(std::string_view name) {
  static const std::filesystem::path dir = std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
  return dir / ("microscale-fuzz-" + std::to_string(::getpid()) + "-" + std::string(name));
}

// Writes the input to `path` (replacing what was there).
inline void write_input(const std::filesystem::path& path, const std::uint8_t* data, std::size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

// Runs `f`; a microscale::Error is bad input reported as it should be.
template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const microscale::Error&) {
  }
}

}  // namespace microscale::fuzz
