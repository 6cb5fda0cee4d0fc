// The rotate-and-quantize kernel's E2M1 encoder (cuda/e2m1_encode.hpp), run on the CPU against what it
// replaces: formats::detail::e2m1_code (seven threshold comparisons). Host-only, so it runs everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "microscale/cuda/e2m1_encode.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::cuda::detail {
namespace {

// Encodes `values` 8 at a time and counts the nibbles that differ from e2m1_code.
template <typename Encode>
std::int64_t mismatched_codes(const std::vector<float>& values, Encode encode) {
  std::int64_t mismatches = 0;
  for (std::size_t i = 0; i + 8 <= values.size(); i += 8) {
    const float q[8] = {values[i], values[i + 1], values[i + 2], values[i + 3],
                        values[i + 4], values[i + 5], values[i + 6], values[i + 7]};
    const std::uint32_t word = encode(q);
    for (int j = 0; j < 8; ++j) {
      mismatches += ((word >> (4 * j)) & 0xFu) != formats::detail::e2m1_code(q[j]);
    }
  }
  return mismatches;
}

TEST(E2m1Word, MatchesTheThresholdsOnEveryFloatFromAnEighthToEight) {
  // Every float of the binades [2^-3, 8) that hold all seven thresholds, both signs, interleaved so
  // that each word mixes binades; plus 6 and everything above clamps to code 7.
  std::int64_t mismatches = 0, checked = 0;
  std::vector<float> values;
  values.reserve(1 << 20);
  const std::uint32_t first = 0x3E000000u;  // 2^-3
  const std::uint32_t last = 0x41000000u;                                                // 8
  for (std::uint32_t bits = first; bits < last; ++bits) {
    values.push_back(bits_float(bits));
    values.push_back(-bits_float(bits));
    if (values.size() == (1u << 20)) {
      mismatches += mismatched_codes(values, [](const float (&q)[8]) { return e2m1_word(q); });
      checked += static_cast<std::int64_t>(values.size());
      values.clear();
    }
  }
  mismatches += mismatched_codes(values, [](const float (&q)[8]) { return e2m1_word(q); });
  checked += static_cast<std::int64_t>(values.size());
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(checked, 2 * static_cast<std::int64_t>(last - first));
}

TEST(E2m1Word, MatchesTheThresholdsOnEveryBf16AndTheSpecialValues) {
  std::vector<float> values;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const float v = formats::bf16_to_float(static_cast<std::uint16_t>(b));
    if (v == v) values.push_back(v);
  }
  const float specials[] = {0.0f, -0.0f, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::denorm_min(), -std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::min(), std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(), 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f,
                            std::nextafter(6.0f, 7.0f), std::nextafter(0.25f, 0.0f), std::nextafter(5.0f, 6.0f)};
  for (float s : specials) values.push_back(s);
  while (values.size() % 8 != 0) values.push_back(0.5f);
  EXPECT_EQ(mismatched_codes(values, [](const float (&q)[8]) { return e2m1_word(q); }), 0);
}

TEST(E2m1Word, WithNanGivesNanTheCpuCodes) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {nan, -nan, 1.0f, -3.0f, nan, 0.25f, -nan, 6.0f,
                                     -nan, -nan, -nan, -nan, nan, nan, nan, nan};
  EXPECT_EQ(mismatched_codes(values, [](const float (&q)[8]) { return e2m1_word_with_nan(q); }), 0);
  // Without the NaN pass the encoder gives NaN magnitude 7: the test above can fail.
  EXPECT_GT(mismatched_codes(values, [](const float (&q)[8]) { return e2m1_word(q); }), 0);
}

}  // namespace
}  // namespace microscale::cuda::detail
