#include "microscale/core/finite.hpp"

#include <string>

#include "microscale/core/error.hpp"

namespace microscale {

void require_finite_weights(std::span<const float> values, std::int64_t cols, std::string_view file,
                            std::string_view tensor) {
  const std::int64_t at = first_non_finite(values);
  if (at < 0) return;
  const std::string where =
      cols > 0 ? fmt::format("[{}, {}]", at / cols, at % cols) : fmt::format("[{}]", at);
  fail("{}: {} holds {} at {}: the runtime needs finite weights", file, tensor, values[static_cast<std::size_t>(at)],
       where);
}

}  // namespace microscale
