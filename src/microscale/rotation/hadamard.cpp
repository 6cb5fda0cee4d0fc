#include "microscale/rotation/hadamard.hpp"

#include <cmath>
#include <cstddef>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "microscale/core/error.hpp"

namespace microscale::rotation {
namespace {

bool is_power_of_two(std::int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

// splitmix64 (Vigna): a tiny, fully specified generator, so the signs are identical everywhere.
std::uint64_t splitmix64_next(std::uint64_t& state) {
  state += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One butterfly stage between two halves; separate restrict pointers let GCC vectorise it.
inline void butterfly(float* __restrict a, float* __restrict b, std::size_t h) {
  for (std::size_t j = 0; j < h; ++j) {
    const float x = a[j];
    const float y = b[j];
    a[j] = x + y;
    b[j] = x - y;
  }
}

// The first three stages (strides 1, 2, 4) on 8 consecutive values. Strides below the vector width
// do not auto-vectorise, so with AVX2 they are done in-register by swapping neighbours and blending
// sums (low half of each pair) with differences (high half).
inline void fwht8(float* v) {
#if defined(__AVX2__)
  __m256 x = _mm256_loadu_ps(v);
  __m256 s = _mm256_permute_ps(x, 0b10110001);  // [x1 x0 x3 x2 ...]
  x = _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0b10101010);
  s = _mm256_permute_ps(x, 0b01001110);  // [x2 x3 x0 x1 ...]
  x = _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0b11001100);
  s = _mm256_permute2f128_ps(x, x, 1);  // swap 128-bit halves
  x = _mm256_blend_ps(_mm256_add_ps(x, s), _mm256_sub_ps(s, x), 0b11110000);
  _mm256_storeu_ps(v, x);
#else
  for (std::size_t h = 1; h < 8; h *= 2) {
    for (std::size_t i = 0; i < 8; i += 2 * h) butterfly(v + i, v + i + h, h);
  }
#endif
}

// v <- v H (no 1/sqrt(n)); n must be a power of two.
void fwht_unscaled(float* v, std::size_t n) {
  std::size_t h = 1;
  if (n >= 8) {
    for (std::size_t i = 0; i < n; i += 8) fwht8(v + i);
    h = 8;
  }
  for (; h < n; h *= 2) {
    for (std::size_t i = 0; i < n; i += 2 * h) butterfly(v + i, v + i + h, h);
  }
}

inline void multiply(float* __restrict v, const float* __restrict factor, std::size_t n) {
  for (std::size_t j = 0; j < n; ++j) v[j] *= factor[j];
}

void check_spec(const MatrixView& rows, const RotationSpec& spec) {
  if (spec.block < 0 || !is_power_of_two(spec.block)) {
    fail("rotation: block size {} is not a power of two", spec.block);
  }
  if (rows.rows < 0 || rows.cols < 0) fail("rotation: negative matrix shape {}x{}", rows.rows, rows.cols);
  if (rows.cols % spec.block != 0) {
    fail("rotation: row length {} is not a multiple of the block size {}", rows.cols, spec.block);
  }
  if (rows.data.size() != static_cast<std::size_t>(rows.rows * rows.cols)) {
    fail("rotation: matrix view holds {} values, expected {}x{}", rows.data.size(), rows.rows, rows.cols);
  }
}

enum class Direction { Forward, Inverse };

void apply(MatrixView rows, const RotationSpec& spec, Direction direction) {
  if (!spec.enabled()) {
    if (spec.block < 0) fail("rotation: block size {} is not a power of two", spec.block);
    return;
  }
  check_spec(rows, spec);
  // Fold the 1/sqrt(b) normalisation into the sign vector: one multiply pass per block.
  std::vector<float> factor = rotation_signs(spec, rows.cols);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(spec.block)));
  for (float& f : factor) f *= scale;

  const std::size_t cols = static_cast<std::size_t>(rows.cols);
  const std::size_t block = static_cast<std::size_t>(spec.block);
  float* base = rows.data.data();
  const float* f = factor.data();
  const std::int64_t n_rows = rows.rows;
#pragma omp parallel for schedule(static) if (n_rows * rows.cols > (1 << 15))
  for (std::int64_t r = 0; r < n_rows; ++r) {
    float* row = base + static_cast<std::size_t>(r) * cols;
    for (std::size_t c = 0; c < cols; c += block) {
      // x R = (x d) H / sqrt(b);  x R^T = (x H / sqrt(b)) d.
      if (direction == Direction::Forward) {
        multiply(row + c, f + c, block);
        fwht_unscaled(row + c, block);
      } else {
        fwht_unscaled(row + c, block);
        multiply(row + c, f + c, block);
      }
    }
  }
}

}  // namespace

void fwht(std::span<float> v) {
  if (!is_power_of_two(static_cast<std::int64_t>(v.size()))) {
    fail("fwht: length {} is not a power of two", v.size());
  }
  fwht_unscaled(v.data(), v.size());
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(v.size())));
  for (float& x : v) x *= scale;
}

std::vector<float> rotation_signs(const RotationSpec& spec, std::int64_t cols) {
  if (cols < 0) fail("rotation: negative row length {}", cols);
  std::vector<float> signs(static_cast<std::size_t>(cols), 1.0f);
  if (spec.random_signs) {
    std::uint64_t state = spec.seed;
    for (float& s : signs) s = (splitmix64_next(state) >> 63) != 0 ? -1.0f : 1.0f;
  }
  return signs;
}

void rotate_rows(MatrixView rows, const RotationSpec& spec) { apply(rows, spec, Direction::Forward); }

void unrotate_rows(MatrixView rows, const RotationSpec& spec) { apply(rows, spec, Direction::Inverse); }

}  // namespace microscale::rotation
