#pragma once
// Inner loops shared by the formats (internal to the formats module). They are written as plain
// loops over 8 independent lanes so that GCC turns them into AVX2 code (-mavx2 -mfma, -O3) without
// intrinsics, and every path (vector, scalar tail, non-x86) computes the same codes: codes depend
// only on one division and comparisons, never on summation order.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace microscale::formats::detail {

inline constexpr int kLanes = 8;

// E2M1 magnitude nearest to a >= 0, ties to the even code, saturating at 6 (see e2m1_from_float).
inline float e2m1_round_magnitude(float a) {
  float v = 0.0f;
  v += a > 0.25f ? 0.5f : 0.0f;
  v += a >= 0.75f ? 0.5f : 0.0f;
  v += a > 1.25f ? 0.5f : 0.0f;
  v += a >= 1.75f ? 0.5f : 0.0f;
  v += a > 2.5f ? 1.0f : 0.0f;
  v += a >= 3.5f ? 1.0f : 0.0f;
  v += a > 5.0f ? 2.0f : 0.0f;
  return v;
}

// E2M1 code of q: magnitude index by the same midpoints (ties to the even code), sign in bit 3 (also
// for -0 and for negative values that round to 0), saturating at +-6.
inline std::uint32_t e2m1_code(float q) {
  const float a = std::fabs(q);
  const std::uint32_t magnitude = static_cast<std::uint32_t>(a > 0.25f) + static_cast<std::uint32_t>(a >= 0.75f) +
                                  static_cast<std::uint32_t>(a > 1.25f) + static_cast<std::uint32_t>(a >= 1.75f) +
                                  static_cast<std::uint32_t>(a > 2.5f) + static_cast<std::uint32_t>(a >= 3.5f) +
                                  static_cast<std::uint32_t>(a > 5.0f);
  return magnitude | (std::signbit(q) ? 0x8u : 0x0u);
}

// E2M1 codes of x[i] / scale for a whole group, into out[i]. Same rounding as e2m1_code, written as
// integer sums of comparisons so that GCC vectorises it (the sign comes from the bit pattern).
inline void e2m1_codes(const float* x, std::size_t n, float scale, std::int32_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    const float q = x[i] / scale;
    const float a = std::fabs(q);
    const std::int32_t magnitude = (a > 0.25f ? 1 : 0) + (a >= 0.75f ? 1 : 0) + (a > 1.25f ? 1 : 0) +
                                   (a >= 1.75f ? 1 : 0) + (a > 2.5f ? 1 : 0) + (a >= 3.5f ? 1 : 0) +
                                   (a > 5.0f ? 1 : 0);
    std::int32_t bits;
    std::memcpy(&bits, &q, sizeof bits);
    out[i] = magnitude | ((bits >> 28) & 0x8);
  }
}

// INT4 code u in [0, 15] for x under (scale, zero): clamp(rne(x / scale) + zero, 0, 15).
inline float int4_round_code(float x, float scale, float zero) {
  float q = std::nearbyint(x / scale) + zero;
  q = q < 0.0f ? 0.0f : q;
  q = q > 15.0f ? 15.0f : q;
  return q;
}

inline float fp4_fake_quant(float x, float scale) {
  const float v = e2m1_round_magnitude(std::fabs(x) / scale) * scale;
  return std::signbit(x) ? -v : v;
}

inline float int4_fake_quant(float x, float scale, float zero) {
  return (int4_round_code(x, scale, zero) - zero) * scale;
}

// How the error kernels divide by the scale: exactly (x / scale, what encode does) or by multiplying
// with a precomputed reciprocal, which is several times faster and differs only for quotients within
// one ulp of a rounding threshold. The MSE search ranks candidates with `fast` and confirms its
// winner against absmax with `exact` (scale_search.cpp).
enum class Division { exact, fast };

template <Division D>
inline float divided(float x, float scale, float inverse) {
  if constexpr (D == Division::exact) {
    return x / scale;
  } else {
    return x * inverse;
  }
}

// Sum over the group of ((x - q(x)) * unit)^2 for an FP4 scale (element * scale). `unit` is a power
// of two near 1 / amax(group), which keeps the squares inside float range for any group magnitude
// (1e-30 or 1e30 weights) without changing which candidate is smallest.
template <Division D = Division::exact>
inline float fp4_squared_error(std::span<const float> x, float scale, float unit) {
  const float inverse = 1.0f / scale;
  float lanes[kLanes] = {};
  const std::size_t n = x.size();
  const float* p = x.data();
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float a = std::fabs(p[i + j]);
      const float d = (a - e2m1_round_magnitude(divided<D>(a, scale, inverse)) * scale) * unit;
      lanes[j] += d * d;
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    const float a = std::fabs(p[i]);
    const float d = (a - e2m1_round_magnitude(divided<D>(a, scale, inverse)) * scale) * unit;
    lanes[j] += d * d;
  }
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

// The same for INT4 (u - zero) * scale.
template <Division D = Division::exact>
inline float int4_squared_error(std::span<const float> x, float scale, float zero, float unit) {
  const float inverse = 1.0f / scale;
  float lanes[kLanes] = {};
  const std::size_t n = x.size();
  const float* p = x.data();
  auto error = [&](float v) {
    float q = std::nearbyint(divided<D>(v, scale, inverse)) + zero;
    q = q < 0.0f ? 0.0f : q;
    q = q > 15.0f ? 15.0f : q;
    return (v - (q - zero) * scale) * unit;
  };
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float d = error(p[i + j]);
      lanes[j] += d * d;
    }
  }
  for (int j = 0; i < n; ++i, ++j) {
    const float d = error(p[i]);
    lanes[j] += d * d;
  }
  float sum = 0.0f;
  for (float l : lanes) sum += l;
  return sum;
}

// A power of two near 1 / amax (1 for an all-zero group), for the error sums above.
inline float error_unit(float amax) {
  if (!(amax > 0.0f) || !std::isfinite(amax)) return 1.0f;
  const int k = std::ilogb(amax);
  return std::ldexp(1.0f, k > 126 ? -126 : (k < -126 ? 126 : -k));
}

struct MinMax {
  float min = 0.0f;
  float max = 0.0f;
};

// Min and max of a group (of finite values), vectorisable.
inline MinMax group_min_max(std::span<const float> x) {
  float lo[kLanes], hi[kLanes];
  for (int j = 0; j < kLanes; ++j) lo[j] = hi[j] = x.empty() ? 0.0f : x[0];
  const std::size_t n = x.size();
  const float* p = x.data();
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      lo[j] = p[i + j] < lo[j] ? p[i + j] : lo[j];
      hi[j] = p[i + j] > hi[j] ? p[i + j] : hi[j];
    }
  }
  for (; i < n; ++i) {
    lo[0] = p[i] < lo[0] ? p[i] : lo[0];
    hi[0] = p[i] > hi[0] ? p[i] : hi[0];
  }
  MinMax r{lo[0], hi[0]};
  for (int j = 1; j < kLanes; ++j) {
    r.min = lo[j] < r.min ? lo[j] : r.min;
    r.max = hi[j] > r.max ? hi[j] : r.max;
  }
  return r;
}

inline float group_amax(std::span<const float> x) {
  const MinMax m = group_min_max(x);
  const float lo = std::fabs(m.min);
  const float hi = std::fabs(m.max);
  return lo > hi ? lo : hi;
}

}  // namespace microscale::formats::detail
