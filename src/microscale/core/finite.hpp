#pragma once
// Finding NaN and infinity in weights: the quantizers refuse them (nothing sensible rounds them) and so
// does the runtime (one non-finite weight turns every later activation into NaN, and the figures into
// nonsense).
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>

namespace microscale {

// Index of the first non-finite value, or -1 (a single pass the compiler can vectorise).
inline std::int64_t first_non_finite(std::span<const float> x) {
  // x - x is NaN exactly when x is NaN or +-inf.
  constexpr std::size_t kBlock = 256;
  for (std::size_t start = 0; start < x.size(); start += kBlock) {
    const std::size_t end = start + kBlock < x.size() ? start + kBlock : x.size();
    int bad = 0;
    for (std::size_t i = start; i < end; ++i) bad |= (x[i] - x[i] != 0.0f) ? 1 : 0;
    if (bad) {
      for (std::size_t i = start; i < end; ++i)
        if (!std::isfinite(x[i])) return static_cast<std::int64_t>(i);
    }
  }
  return -1;
}

// Throws microscale::Error "<file>: <tensor> holds nan at [row, column]: the runtime needs finite
// weights" (at [index] for cols == 0, a vector) when a value is NaN or infinite.
void require_finite_weights(std::span<const float> values, std::int64_t cols, std::string_view file,
                            std::string_view tensor);
// That error for element `index` (row-major, `cols` columns; 0 for a vector), for callers that found
// the value themselves (in BF16 bits, in an embedding row).
[[noreturn]] void fail_non_finite_weight(float value, std::int64_t index, std::int64_t cols, std::string_view file,
                                         std::string_view tensor);

}  // namespace microscale
