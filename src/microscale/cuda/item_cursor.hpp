#pragma once
// A grid-stride walk over items (outer, inner), inner in [0, inner_count), advanced without dividing:
// a 64-bit division per item costs more instructions than the memory-bound kernels spend on a lane's
// share of the item. Host-callable too, so that a CPU test checks the walk against the division.
#include <cstdint>

#include "microscale/cuda/host_device.hpp"

namespace microscale::cuda::detail {

struct ItemCursor {
  std::int64_t outer;
  std::int64_t inner;
  std::int64_t inner_count;
  std::int64_t step_outer;
  std::int64_t step_inner;

  // Item `first` of a walk that advances by `step` items; `count` inner items per outer one.
  MICROSCALE_HOST_DEVICE ItemCursor(std::int64_t first, std::int64_t step, std::int64_t count)
      : outer(first / count), inner(first % count), inner_count(count), step_outer(step / count),
        step_inner(step % count) {}
  MICROSCALE_HOST_DEVICE void advance() {
    outer += step_outer;
    inner += step_inner;
    if (inner >= inner_count) {
      inner -= inner_count;
      ++outer;
    }
  }
};

}  // namespace microscale::cuda::detail
