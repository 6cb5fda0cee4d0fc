// Exhaustive checks of the scalar codecs against the bit-formula references in reference.hpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "microscale/formats/codecs.hpp"
#include "reference.hpp"

namespace mf = microscale::formats;

namespace {

float next_up(float x) { return std::nextafter(x, std::numeric_limits<float>::infinity()); }
float next_down(float x) { return std::nextafter(x, -std::numeric_limits<float>::infinity()); }

std::vector<float> random_floats(std::size_t n, float lo, float hi, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

}  // namespace

// ---- E2M1 ----------------------------------------------------------------------------------------
TEST(E2M1, DecodesEveryCodeByTheBitFormula) {
  const float expected[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (unsigned c = 0; c < 16; ++c) {
    EXPECT_EQ(mf::e2m1_to_float(static_cast<std::uint8_t>(c)), static_cast<float>(ref::e2m1_value(c))) << c;
    EXPECT_EQ(std::fabs(mf::e2m1_to_float(static_cast<std::uint8_t>(c))), expected[c & 7]) << c;
  }
}

TEST(E2M1, EveryValueRoundTrips) {
  for (unsigned c = 0; c < 16; ++c) {
    const float v = mf::e2m1_to_float(static_cast<std::uint8_t>(c));
    // +0 and -0 keep their sign bit
    EXPECT_EQ(mf::e2m1_from_float(v), c) << "value " << v;
  }
}

TEST(E2M1, MidpointsRoundToEvenCodeAndNeighboursToNearest) {
  const float mags[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  for (int i = 0; i < 7; ++i) {
    const float mid = (mags[i] + mags[i + 1]) / 2;
    const unsigned even = (i % 2 == 0) ? i : i + 1;
    EXPECT_EQ(mf::e2m1_from_float(mid), even) << "midpoint " << mid;
    EXPECT_EQ(mf::e2m1_from_float(-mid), even | 8u) << "midpoint " << -mid;
    EXPECT_EQ(mf::e2m1_from_float(next_down(mid)), static_cast<unsigned>(i)) << mid;
    EXPECT_EQ(mf::e2m1_from_float(next_up(mid)), static_cast<unsigned>(i + 1)) << mid;
  }
  // The exact thresholds compressed-tensors' cast_to_fp4 documents.
  EXPECT_EQ(mf::e2m1_from_float(0.25f), 0u);
  EXPECT_EQ(mf::e2m1_from_float(0.75f), 2u);
  EXPECT_EQ(mf::e2m1_from_float(1.25f), 2u);
  EXPECT_EQ(mf::e2m1_from_float(1.75f), 4u);
  EXPECT_EQ(mf::e2m1_from_float(2.5f), 4u);
  EXPECT_EQ(mf::e2m1_from_float(3.5f), 6u);
  EXPECT_EQ(mf::e2m1_from_float(5.0f), 6u);
}

TEST(E2M1, Saturates) {
  for (float x : {6.0f, 6.5f, 7.0f, 100.0f, 3e38f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(mf::e2m1_from_float(x), 0x7u) << x;
    EXPECT_EQ(mf::e2m1_from_float(-x), 0xFu) << x;
  }
}

TEST(E2M1, RandomValuesMatchNearestSearch) {
  for (float x : random_floats(200000, -8.0f, 8.0f, 1)) ASSERT_EQ(mf::e2m1_from_float(x), ref::e2m1_encode(x)) << x;
  for (float x : random_floats(20000, -0.3f, 0.3f, 2)) ASSERT_EQ(mf::e2m1_from_float(x), ref::e2m1_encode(x)) << x;
}

// ---- E4M3 ----------------------------------------------------------------------------------------
TEST(E4M3, DecodesEveryCodeByTheBitFormula) {
  for (unsigned c = 0; c < 256; ++c) {
    const float got = mf::e4m3_to_float(static_cast<std::uint8_t>(c));
    if ((c & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(got)) << c;
    } else {
      EXPECT_EQ(got, static_cast<float>(ref::e4m3_value(c))) << c;
    }
  }
  EXPECT_EQ(mf::e4m3_to_float(0x7E), 448.0f);
  EXPECT_EQ(mf::e4m3_to_float(0x01), 0x1p-9f);
  EXPECT_EQ(mf::e4m3_to_float(0x08), 0x1p-6f);
  EXPECT_EQ(mf::e4m3_to_float(0x38), 1.0f);
  EXPECT_EQ(mf::e4m3_to_float(0x20), 0.125f);
}

TEST(E4M3, EveryFiniteValueRoundTrips) {
  for (unsigned c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float v = mf::e4m3_to_float(static_cast<std::uint8_t>(c));
    EXPECT_EQ(mf::e4m3_from_float(v), c) << "value " << v;
  }
}

TEST(E4M3, MidpointsRoundToEvenAndNeighboursToNearest) {
  for (unsigned c = 0; c < 0x7E; ++c) {
    const float lo = mf::e4m3_to_float(static_cast<std::uint8_t>(c));
    const float hi = mf::e4m3_to_float(static_cast<std::uint8_t>(c + 1));
    const float mid = (lo + hi) / 2;  // exact: needs one more bit than E4M3 has
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2);
    const unsigned even = (c % 2 == 0) ? c : c + 1;
    EXPECT_EQ(mf::e4m3_from_float(mid), even) << mid;
    EXPECT_EQ(mf::e4m3_from_float(-mid), even | 0x80u) << mid;
    EXPECT_EQ(mf::e4m3_from_float(next_down(mid)), c) << mid;
    EXPECT_EQ(mf::e4m3_from_float(next_up(mid)), c + 1) << mid;
  }
}

TEST(E4M3, SaturatesAndKeepsNaN) {
  for (float x : {448.0f, 449.0f, 463.9f, 464.0f, 480.0f, 1e6f, 3e38f, std::numeric_limits<float>::infinity()}) {
    EXPECT_EQ(mf::e4m3_from_float(x), 0x7Eu) << x;
    EXPECT_EQ(mf::e4m3_from_float(-x), 0xFEu) << x;
  }
  EXPECT_EQ(mf::e4m3_from_float(std::numeric_limits<float>::quiet_NaN()) & 0x7F, 0x7Fu);
  EXPECT_EQ(mf::e4m3_from_float(0x1p-11f), 0x00u);      // below half the smallest subnormal
  EXPECT_EQ(mf::e4m3_from_float(0x1p-10f), 0x00u);      // exactly half: ties to even (0)
  EXPECT_EQ(mf::e4m3_from_float(0x1.8p-10f), 0x01u);
  EXPECT_EQ(mf::e4m3_from_float(3 * 0x1p-10f), 0x02u);  // 1.5 * 2^-9: tie between codes 1 and 2 -> 2
}

TEST(E4M3, RandomValuesMatchNearestSearch) {
  for (float x : random_floats(100000, -500.0f, 500.0f, 3)) ASSERT_EQ(mf::e4m3_from_float(x), ref::e4m3_encode(x)) << x;
  for (float x : random_floats(100000, -0.05f, 0.05f, 4)) ASSERT_EQ(mf::e4m3_from_float(x), ref::e4m3_encode(x)) << x;
}

// ---- UE8M0 ---------------------------------------------------------------------------------------
TEST(E8M0, DecodesEveryCode) {
  for (unsigned c = 0; c < 255; ++c)
    EXPECT_EQ(static_cast<double>(mf::e8m0_to_float(static_cast<std::uint8_t>(c))), ref::e8m0_value(c)) << c;
  EXPECT_TRUE(std::isnan(mf::e8m0_to_float(0xFF)));
  EXPECT_EQ(mf::e8m0_to_float(127), 1.0f);
  EXPECT_EQ(mf::e8m0_to_float(0), 0x1p-127f);
  EXPECT_EQ(mf::e8m0_to_float(254), 0x1p127f);
}

TEST(E8M0, FromExponentClamps) {
  for (int e = -127; e <= 127; ++e) EXPECT_EQ(mf::e8m0_from_exponent(e), e + 127);
  EXPECT_EQ(mf::e8m0_from_exponent(-300), 0);
  EXPECT_EQ(mf::e8m0_from_exponent(128), 254);
  EXPECT_EQ(mf::e8m0_from_exponent(1000), 254);
}

// ---- BF16 and FP16 -------------------------------------------------------------------------------
TEST(BF16, DecodesEveryPatternAndRoundTrips) {
  for (unsigned b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float v = mf::bf16_to_float(bits);
    const double want = ref::bf16_value(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(v)) << b;
      ASSERT_TRUE(std::isnan(mf::bf16_to_float(mf::bf16_from_float(v)))) << b;
      continue;
    }
    ASSERT_EQ(static_cast<double>(v), want) << b;
    ASSERT_EQ(mf::bf16_from_float(v), bits) << b;
  }
}

TEST(BF16, MidpointsTieToEven) {
  for (unsigned b = 0; b < 0x7F7F; ++b) {  // positive finite, each with its successor
    const float lo = mf::bf16_to_float(static_cast<std::uint16_t>(b));
    const float hi = mf::bf16_to_float(static_cast<std::uint16_t>(b + 1));
    const float mid = std::bit_cast<float>((std::bit_cast<std::uint32_t>(lo) + std::bit_cast<std::uint32_t>(hi)) / 2);
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2) << b;
    const unsigned even = (b % 2 == 0) ? b : b + 1;
    ASSERT_EQ(mf::bf16_from_float(mid), even) << b;
    ASSERT_EQ(mf::bf16_from_float(next_down(mid)), b) << b;
    ASSERT_EQ(mf::bf16_from_float(next_up(mid)), b + 1) << b;
  }
  // Above the largest finite BF16 plus half an ulp: infinity.
  EXPECT_EQ(mf::bf16_from_float(3.4e38f), 0x7F80u);
}

TEST(BF16, RandomFloatsMatchNeighbourComparison) {
  std::mt19937 rng(5);
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (!std::isfinite(x)) continue;
    ASSERT_EQ(mf::bf16_to_float(mf::bf16_from_float(x)), ref::bf16_round(x)) << x;
  }
}

TEST(FP16, DecodesEveryPatternAndRoundTrips) {
  for (unsigned b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const float v = mf::fp16_to_float(bits);
    const double want = ref::fp16_value(bits);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(v)) << b;
      ASSERT_TRUE(std::isnan(mf::fp16_to_float(mf::fp16_from_float(v)))) << b;
      continue;
    }
    ASSERT_EQ(static_cast<double>(v), want) << b;
    ASSERT_EQ(mf::fp16_from_float(v), bits) << b;
  }
}

TEST(FP16, MidpointsTieToEvenAndOverflowToInf) {
  for (unsigned b = 0; b < 0x7BFF; ++b) {
    const float lo = mf::fp16_to_float(static_cast<std::uint16_t>(b));
    const float hi = mf::fp16_to_float(static_cast<std::uint16_t>(b + 1));
    const float mid = (lo + hi) / 2;
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2) << b;
    const unsigned even = (b % 2 == 0) ? b : b + 1;
    ASSERT_EQ(mf::fp16_from_float(mid), even) << b;
    ASSERT_EQ(mf::fp16_from_float(-mid), even | 0x8000u) << b;
    ASSERT_EQ(mf::fp16_from_float(next_down(mid)), b) << b;
    ASSERT_EQ(mf::fp16_from_float(next_up(mid)), b + 1) << b;
  }
  EXPECT_EQ(mf::fp16_from_float(65504.0f), 0x7BFFu);
  EXPECT_EQ(mf::fp16_from_float(next_down(65520.0f)), 0x7BFFu);
  EXPECT_EQ(mf::fp16_from_float(65520.0f), 0x7C00u);
  EXPECT_EQ(mf::fp16_from_float(-1e9f), 0xFC00u);
  EXPECT_EQ(mf::fp16_from_float(0x1p-25f), 0x0000u);         // half the smallest subnormal: ties to 0
  EXPECT_EQ(mf::fp16_from_float(next_up(0x1p-25f)), 0x0001u);
  EXPECT_EQ(mf::fp16_from_float(1e-30f), 0x0000u);
}

#if defined(__F16C__)
TEST(FP16, RandomFloatsMatchF16C) {
  std::mt19937 rng(6);
  for (int i = 0; i < 500000; ++i) {
    const float x = std::bit_cast<float>(static_cast<std::uint32_t>(rng()));
    if (std::isnan(x)) continue;
    const auto want = static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
    ASSERT_EQ(mf::fp16_from_float(x), want) << x;
  }
}
#endif
