#pragma once
// Shared helpers for the io tests: a scratch directory, raw file crafting, error capture.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "microscale/core/error.hpp"

namespace microscale::io::test {

namespace fs = std::filesystem;

inline fs::path fixture_dir() { return fs::path(MICROSCALE_SOURCE_DIR) / "tests" / "fixtures" / "io"; }

// A fresh directory under the system temp dir, removed (with everything in it) on destruction.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            ("microscale-io-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
             (info ? std::string(info->name()) : std::string("x")));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

  // Names of everything in the directory (to spot leftover temporary files).
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

// A safetensors file from its parts: header length (the header's size unless overridden), the
// header text exactly as given, then `data`.
inline std::string safetensors_bytes(const std::string& header, const std::string& data,
                                     std::int64_t header_len_override = -1) {
  const std::uint64_t n = header_len_override >= 0 ? static_cast<std::uint64_t>(header_len_override) : header.size();
  return le64(n) + header + data;
}

// The message of the microscale::Error that `f` throws ("" and a test failure if none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-microscale exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected a microscale::Error";
  return "";
}

#define EXPECT_CONTAINS(haystack, needle)                                                    \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)                          \
      << "expected to find \"" << (needle) << "\" in: " << (haystack)

}  // namespace microscale::io::test
