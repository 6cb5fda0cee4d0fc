#include "microscale/core/finite.hpp"

#include <string>

#include "microscale/core/error.hpp"

namespace microscale {

void fail_non_finite_weight(float value, std::int64_t index, std::int64_t cols, std::string_view file,
                            std::string_view tensor) {
  const std::string where =
      cols > 0 ? fmt::format("[{}, {}]", index / cols, index % cols) : fmt::format("[{}]", index);
  fail("{}: {} holds {} at {}: the runtime needs finite weights", file, tensor, value, where);
}

void require_finite_weights(std::span<const float> values, std::int64_t cols, std::string_view file,
                            std::string_view tensor) {
  const std::int64_t at = first_non_finite(values);
  if (at >= 0) fail_non_finite_weight(values[static_cast<std::size_t>(at)], at, cols, file, tensor);
}

}  // namespace microscale
