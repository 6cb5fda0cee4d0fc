// The rotate-and-quantize kernel's encoding arithmetic (cuda/e2m1_encode.hpp), run on the CPU against
// what it replaces: formats::detail::e2m1_code (seven threshold comparisons) for the packed codes,
// and IEEE division for quotient_rn. Host-only, so it runs everywhere.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
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

// NVFP4's group scales: E4M3 values divided by a global scale, as rotate_quantize forms them.
std::vector<float> nvfp4_scales(std::mt19937& rng) {
  std::vector<float> scales;
  std::uniform_real_distribution<float> log_global(-40.0f, 40.0f);
  for (int g = 0; g < 64; ++g) {
    const float global = std::exp2(log_global(rng)) * (1.0f + static_cast<float>(g) / 64.0f);
    for (std::uint32_t code = 1; code < 0x7F; code += 3) scales.push_back(formats::e4m3_to_float(static_cast<std::uint8_t>(code)) / global);
  }
  // Adversarial divisors for a one-step correction: all-ones and single-bit mantissas.
  for (std::uint32_t e = 100; e < 150; e += 7) {
    scales.push_back(bits_float(e << 23 | 0x7FFFFFu));
    scales.push_back(bits_float(e << 23 | 0x000001u));
    scales.push_back(bits_float(e << 23));
  }
  return scales;
}

TEST(QuotientRn, EqualsIeeeDivisionWhereTheGroupIsSafe) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> mantissa(0, 0x7FFFFF);
  std::uniform_int_distribution<int> exponent_step(-30, 3);
  std::int64_t checked = 0, exact_mismatches = 0, code_mismatches = 0, ties = 0;
  const float mids[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  for (const float b : nvfp4_scales(rng)) {
    const float y = 1.0f / b;
    for (int i = 0; i < 4000; ++i) {
      float a;
      if (i % 4 == 0) {
        // A tie or its neighbours: a near midpoint * b (exactly when that product is representable).
        const float tie = mids[i / 4 % 7] * b;
        a = std::nextafter(tie, (i / 28) % 3 == 0 ? 0.0f : (i / 28) % 3 == 1 ? tie : 1e30f);
        ties += std::fma(mids[i / 4 % 7], b, -a) == 0.0f;
      } else {
        // |a| up to 8 b (quotients up to 8), or far smaller.
        const int e = static_cast<int>(float_bits(b) >> 23) + exponent_step(rng);
        if (e <= 0 || e >= 255) continue;
        a = bits_float(static_cast<std::uint32_t>(e) << 23 | mantissa(rng)) * (i % 2 ? -1.0f : 1.0f);
      }
      if (!quotient_is_safe(std::fabs(a), b)) continue;
      const float want = a / b, got = quotient_rn(a, b, y);
      ++checked;
      if (std::fabs(want) >= 0.125f) exact_mismatches += float_bits(want) != float_bits(got);
      code_mismatches += formats::detail::e2m1_code(want) != formats::detail::e2m1_code(got);
    }
  }
  EXPECT_GT(checked, 1000000);
  EXPECT_GT(ties, 1000);
  EXPECT_EQ(exact_mismatches, 0);
  EXPECT_EQ(code_mismatches, 0);
}

TEST(QuotientRn, KeepsTheSignOfZeroAndOfUnderflowingQuotients) {
  // -0 / s is -0 (E2M1 code 8); a tiny negative a over a large s underflows to -0 or a negative
  // subnormal. A plain one-step correction returns +0 for a = -0.
  std::int64_t mismatches = 0, checked = 0;
  for (const float b : {1.0f, 0.375f, 0x1.8p-7f, 0x1.ep50f, 448.0f / 3.0f}) {
    const float y = 1.0f / b;
    for (const float a : {0.0f, -0.0f, -std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::denorm_min(),
                          -0x1p-140f, -0x1.8p-126f, -std::numeric_limits<float>::min()}) {
      ASSERT_TRUE(quotient_is_safe(1.0f, b));  // the group's amax (another element) is 1; a is any smaller value
      const float want = a / b, got = quotient_rn(a, b, y);
      mismatches += std::signbit(want) != std::signbit(got);
      mismatches += formats::detail::e2m1_code(want) != formats::detail::e2m1_code(got);
      ++checked;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(checked, 35);
}

TEST(QuotientRn, DividesEveryAmaxBySixExactly) {
  // NVFP4's amax / 6 for every float mantissa of three binades and a sweep of exponents.
  const float y6 = 1.0f / 6.0f;
  std::int64_t mismatches = 0, checked = 0;
  for (const std::uint32_t e : {27u, 127u, 186u}) {
    for (std::uint32_t m = 0; m <= 0x7FFFFFu; ++m) {
      const float a = bits_float(e << 23 | m);
      mismatches += float_bits(quotient_rn(a, 6.0f, y6)) != float_bits(a / 6.0f);
      ++checked;
    }
  }
  for (std::uint32_t e = 27; e <= 186; ++e) {
    for (std::uint32_t m = 0; m <= 0x7FFFFFu; m += 4099) {
      const float a = bits_float(e << 23 | m);
      ASSERT_TRUE(quotient_is_safe(a, 6.0f)) << a;
      mismatches += float_bits(quotient_rn(a, 6.0f, y6)) != float_bits(a / 6.0f);
      ++checked;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(checked, 3 * (1 << 23));
}

TEST(QuotientRn, SafetyExcludesOverflowAndUnderflow) {
  EXPECT_TRUE(quotient_is_safe(0.0f, 1.0f));
  EXPECT_TRUE(quotient_is_safe(0x1p60f, 0x1p-60f));
  EXPECT_FALSE(quotient_is_safe(0x1p61f, 1.0f));
  EXPECT_FALSE(quotient_is_safe(1.0f, 0x1p-61f));
  EXPECT_FALSE(quotient_is_safe(1.0f, 0x1p61f));
  EXPECT_FALSE(quotient_is_safe(0x1p-101f, 1.0f));
  EXPECT_FALSE(quotient_is_safe(std::numeric_limits<float>::infinity(), 1.0f));
  EXPECT_FALSE(quotient_is_safe(std::numeric_limits<float>::quiet_NaN(), 1.0f));
}

}  // namespace
}  // namespace microscale::cuda::detail
