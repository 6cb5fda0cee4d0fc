#pragma once
// A stand-in for {fmt}, used only by the standalone GPU driver (bench/cuda/fp4_driver.cu) on machines
// without libfmt-dev: microscale::fail() then throws the unformatted message template. Numerics are
// unaffected; only error texts lose their arguments.
#include <string>
#include <type_traits>

namespace fmt {
template <typename... Args>
struct basic_format_string {
  const char* text;
  template <typename S>
  constexpr basic_format_string(const S& s) : text(s) {}  // NOLINT: implicit like fmt's
};
template <typename... Args>
using format_string = basic_format_string<std::type_identity_t<Args>...>;
template <typename... Args>
std::string format(format_string<Args...> f, Args&&...) {
  return std::string(f.text) + " (arguments not shown: built with the fmt shim)";
}
}  // namespace fmt
