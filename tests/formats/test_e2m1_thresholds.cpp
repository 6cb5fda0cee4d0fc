// The per-scale E2M1 thresholds (formats/e2m1_thresholds.hpp, used by the CUDA rotate-and-quantize
// kernel) against the division they replace: e2m1_from_float(x / s) with an IEEE FP32 division.
// Every E4M3 scale code under many global scales (normal and subnormal s), every E8M0 scale, values
// walked float by float across each midpoint * s and random values over the whole range.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "microscale/formats/codecs.hpp"
#include "microscale/formats/e2m1_thresholds.hpp"

namespace mf = microscale::formats;
namespace et = microscale::formats::e2m1_thresholds;

namespace {

struct Thresholds {
  float t[et::kCount];
};

Thresholds for_scale(float s) {
  Thresholds r{};
  for (int k = 0; k < et::kCount; ++k) r.t[k] = et::threshold(k, s);
  return r;
}

// The code the thresholds give: magnitude from |x|, sign bit from x.
std::uint32_t code_by_thresholds(float x, const Thresholds& th) {
  return et::magnitude(std::fabs(x), th.t) | (std::signbit(x) ? 0x8u : 0x0u);
}

// Checks x near every midpoint * s (64 floats either side) and at the thresholds themselves.
// Returns the number of mismatches (and records the first few).
int check_scale(float s, const Thresholds& th) {
  int bad = 0;
  auto check = [&](float x) {
    if (!std::isfinite(x)) return;
    for (float y : {x, -x}) {
      const std::uint32_t want = mf::e2m1_from_float(y / s);
      const std::uint32_t got = code_by_thresholds(y, th);
      if (want != got) {
        if (++bad <= 5) ADD_FAILURE() << "s=" << s << " x=" << y << " want " << want << " got " << got;
      }
    }
  };
  for (int k = 0; k < et::kCount; ++k) {
    for (float centre : {et::kMidpoint[k] * s, th.t[k]}) {
      float lo = centre, hi = centre;
      for (int i = 0; i < 64; ++i) {
        check(lo);
        check(hi);
        lo = std::nextafter(lo, 0.0f);
        hi = std::nextafter(hi, INFINITY);
      }
    }
  }
  check(0.0f);
  check(std::numeric_limits<float>::denorm_min());
  check(std::numeric_limits<float>::max());
  return bad;
}

std::vector<float> global_scales() {
  // Realistic (2688 / tensor amax), powers of two, and extremes that make s subnormal or huge.
  std::vector<float> g = {1.0f, 2688.0f / 3.7f, 2688.0f / 112.5f, 2688.0f / 0.013f, 100.0f, 0.75f, 3.0f,
                          0x1p-20f, 0x1p20f, 1e30f, 1e-30f, 3e37f, 7e-37f};
  std::mt19937 rng(2024);
  std::uniform_real_distribution<float> exponent(-40.0f, 40.0f);
  for (int i = 0; i < 40; ++i) g.push_back(std::exp2(exponent(rng)));
  return g;
}

}  // namespace

TEST(E2M1Thresholds, EveryE4m3ScaleNearEveryMidpoint) {
  int bad = 0, scales = 0;
  for (float g : global_scales()) {
    for (unsigned c = 1; c < 0x7F; ++c) {
      const float s = mf::e4m3_to_float(static_cast<std::uint8_t>(c)) / g;  // as nvfp4_params computes it
      if (!(s > 0.0f) || !std::isfinite(s)) continue;  // the kernel divides for these (never in practice)
      ++scales;
      bad += check_scale(s, for_scale(s));
    }
  }
  EXPECT_GT(scales, 5000);
  EXPECT_EQ(bad, 0);
}

TEST(E2M1Thresholds, EveryE8m0ScaleIsMidpointTimesScale) {
  // MXFP4: the thresholds are m * 2^e (exact) with the same strictness as e2m1_code. e <= 125 is the
  // largest exponent a finite group maximum produces.
  int bad = 0;
  for (int e = -127; e <= 125; ++e) {
    const float s = std::ldexp(1.0f, e);
    Thresholds th{};
    for (int k = 0; k < et::kCount; ++k) {
      th.t[k] = et::kMidpoint[k] * s;
      ASSERT_EQ(static_cast<double>(th.t[k]), std::ldexp(static_cast<double>(et::kMidpoint[k]), e));  // exact
    }
    bad += check_scale(s, th);
  }
  EXPECT_EQ(bad, 0);
}

TEST(E2M1Thresholds, RandomValuesAndScales) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::uint32_t> bits(0, 0x7F7FFFFFu);  // every positive finite float
  std::uniform_real_distribution<float> unit(0.0f, 8.0f);
  int bad = 0;
  for (int i = 0; i < 20000; ++i) {
    const float s = std::bit_cast<float>(bits(rng));
    if (!(s > 0.0f)) continue;
    const Thresholds th = for_scale(s);
    for (int j = 0; j < 50; ++j) {
      const float x = j % 2 ? std::bit_cast<float>(bits(rng)) : unit(rng) * s;
      const std::uint32_t want = mf::e2m1_from_float(x / s);
      if (want != code_by_thresholds(x, th) && ++bad <= 5) ADD_FAILURE() << "s=" << s << " x=" << x;
    }
  }
  EXPECT_EQ(bad, 0);
}
