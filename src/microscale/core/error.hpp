#pragma once
// One exception type for every user-facing failure. The message must name the file (or tensor,
// or flag) and the problem, because the CLI prints it as-is and exits non-zero.
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace microscale {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// fail("{}: tensor {} has {} bytes, expected {}", path, name, got, want)
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace microscale
