#pragma once
// Relative logit error as the tests define it: for one sequence, max |a - b| / max |b| over all
// positions and vocabulary entries (b = the reference).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::testing {

template <typename RefRow>
double relative_logit_error(const Matrix& got, const std::vector<RefRow>& want, std::int64_t first_row = 0) {
  double diff = 0.0, scale = 0.0;
  for (std::size_t t = 0; t < want.size(); ++t) {
    for (std::size_t i = 0; i < want[t].size(); ++i) {
      const double a = got(first_row + static_cast<std::int64_t>(t), static_cast<std::int64_t>(i));
      const double b = want[t][i];
      diff = std::max(diff, std::abs(a - b));
      scale = std::max(scale, std::abs(b));
    }
  }
  return diff / scale;
}

inline double relative_matrix_error(const Matrix& got, const Matrix& want) {
  double diff = 0.0, scale = 0.0;
  for (std::size_t i = 0; i < want.data.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(got.data[i]) - want.data[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want.data[i])));
  }
  return diff / scale;
}

template <typename Row>
std::int64_t argmax_of(const Row& row) {
  return std::max_element(row.begin(), row.end()) - row.begin();
}

}  // namespace microscale::testing
