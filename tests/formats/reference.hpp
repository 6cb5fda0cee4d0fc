#pragma once
// Slow, independent reference implementations for the formats tests. They are written differently
// from src/microscale/formats on purpose: element values come from the bit formulas evaluated in
// double, encodings are exhaustive nearest-value searches over every code, binades are found by
// loops instead of ilogb, and errors are summed in double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <vector>

#include "microscale/formats/format.hpp"

namespace ref {

// ---- element and scale values from their bit formulas --------------------------------------------
// Generic minifloat with `e` exponent bits, `m` mantissa bits and bias `bias` (no inf/NaN handling).
inline double minifloat_value(unsigned code, int e, int m, int bias) {
  const unsigned sign = (code >> (e + m)) & 1u;
  const unsigned exponent = (code >> m) & ((1u << e) - 1u);
  const unsigned mantissa = code & ((1u << m) - 1u);
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - bias - m);
  } else {
    magnitude = std::ldexp(1.0 + static_cast<double>(mantissa) / (1u << m), static_cast<int>(exponent) - bias);
  }
  return sign ? -magnitude : magnitude;
}

inline double e2m1_value(unsigned code) { return minifloat_value(code & 0xFu, 2, 1, 1); }
inline double e4m3_value(unsigned code) {
  if ((code & 0x7Fu) == 0x7Fu) return std::numeric_limits<double>::quiet_NaN();
  return minifloat_value(code & 0xFFu, 4, 3, 7);
}
inline double e8m0_value(unsigned code) {
  if (code == 0xFFu) return std::numeric_limits<double>::quiet_NaN();
  return std::ldexp(1.0, static_cast<int>(code) - 127);
}
inline double fp16_value(std::uint16_t bits) {
  const unsigned exponent = (bits >> 10) & 0x1Fu;
  if (exponent == 0x1Fu) {
    if (bits & 0x3FFu) return std::numeric_limits<double>::quiet_NaN();
    return (bits & 0x8000u) ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  return minifloat_value(bits, 5, 10, 15);
}
inline double bf16_value(std::uint16_t bits) {
  const unsigned exponent = (bits >> 7) & 0xFFu;
  if (exponent == 0xFFu) {
    if (bits & 0x7Fu) return std::numeric_limits<double>::quiet_NaN();
    return (bits & 0x8000u) ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  return minifloat_value(bits, 8, 7, 127);
}

// ---- nearest-code searches ------------------------------------------------------------------------
// Nearest among `codes` (all of the same sign as x), ties to the code with mantissa lsb 0 (even).
template <typename ValueOf>
unsigned nearest_code(double a, unsigned first, unsigned last, ValueOf value_of) {
  unsigned best = first;
  double best_distance = std::fabs(a - value_of(first));
  for (unsigned c = first + 1; c <= last; ++c) {
    const double d = std::fabs(a - value_of(c));
    if (d < best_distance || (d == best_distance && (c & 1u) == 0 && (best & 1u) == 1)) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

inline std::uint8_t e2m1_encode(float x) {
  const unsigned magnitude = nearest_code(std::fabs(static_cast<double>(x)), 0, 7, [](unsigned c) { return e2m1_value(c); });
  return static_cast<std::uint8_t>(magnitude | (std::signbit(x) ? 0x8u : 0u));
}

inline std::uint8_t e4m3_encode(float x) {
  if (std::isnan(x)) return std::signbit(x) ? 0xFF : 0x7F;
  const double a = std::fabs(static_cast<double>(x));
  const unsigned magnitude = std::isinf(a) ? 0x7Eu : nearest_code(a, 0, 0x7E, [](unsigned c) { return e4m3_value(c); });
  return static_cast<std::uint8_t>(magnitude | (std::signbit(x) ? 0x80u : 0u));
}

// Round a finite float to the nearest BF16 (ties to even) by comparing the two neighbours.
inline float bf16_round(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  const std::uint32_t down = u & 0xFFFF0000u;
  const std::uint32_t up = down + 0x10000u;
  float fd, fu;
  std::memcpy(&fd, &down, 4);
  std::memcpy(&fu, &up, 4);
  // Rounding works as if the exponent were unbounded: above the largest BF16 the upper neighbour is
  // 2^128 (which then overflows to infinity).
  const double up_value = std::isinf(fu) ? std::copysign(std::ldexp(1.0, 128), static_cast<double>(x)) : fu;
  const double dd = std::fabs(static_cast<double>(x) - fd);
  const double du = std::fabs(up_value - x);
  if (dd < du) return fd;
  if (du < dd) return fu;
  return ((down >> 16) & 1u) ? fu : fd;
}

// Nearest integer to q (ties to even) clamped to [lo, hi], by search.
inline float nearest_int_clamped(float q, float zero) {
  int best = 0;
  double best_distance = std::numeric_limits<double>::infinity();
  for (int u = 0; u <= 15; ++u) {
    const double d = std::fabs(static_cast<double>(q) + zero - u);
    if (d < best_distance || (d == best_distance && ((u - static_cast<int>(zero)) % 2 == 0))) {
      best = u;
      best_distance = d;
    }
  }
  return static_cast<float>(best);
}

// ---- group parameters -------------------------------------------------------------------------------
struct Params {
  float scale = 0;
  float zero = 0;
  std::uint8_t code = 0;
  bool operator==(const Params&) const = default;
};

inline float amax_of(std::span<const float> g) {
  float a = 0;
  for (float x : g) a = std::max(a, std::fabs(x));
  return a;
}

// floor(log2(a)) and a / 2^floor(log2(a)) by halving/doubling.
inline void binade(double a, int& k, double& m) {
  k = 0;
  m = a;
  while (m >= 2.0) { m /= 2.0; ++k; }
  while (m < 1.0) { m *= 2.0; --k; }
}

inline int mx_exponent(float amax, microscale::formats::MxRounding rounding) {
  int k;
  double m;
  binade(amax, k, m);
  switch (rounding) {
    case microscale::formats::MxRounding::ocp: return k - 2;
    case microscale::formats::MxRounding::no_clip: {
      int e = k - 4;
      while (static_cast<double>(amax) > 6.0 * std::ldexp(1.0, e)) ++e;
      return e;
    }
    case microscale::formats::MxRounding::even: return (m >= 1.75 ? k + 1 : k) - 2;
  }
  return 0;
}

inline Params mx_params(int code) { return {static_cast<float>(e8m0_value(static_cast<unsigned>(code))), 0, static_cast<std::uint8_t>(code)}; }

inline Params mxfp4_absmax(std::span<const float> g, microscale::formats::MxRounding rounding) {
  const float amax = amax_of(g);
  if (amax == 0) return mx_params(0);
  const int e = std::clamp(mx_exponent(amax, rounding), -127, 127);
  return mx_params(e + 127);
}

inline std::vector<Params> mxfp4_candidates(std::span<const float> g, microscale::formats::MxRounding rounding) {
  const Params base = mxfp4_absmax(g, rounding);
  std::vector<Params> out{base};
  if (amax_of(g) == 0) return out;
  const int e = mx_exponent(amax_of(g), rounding);
  for (int d = -2; d <= 1; ++d) {
    const int code = e + d + 127;
    if (code >= 0 && code <= 254) out.push_back(mx_params(code));
  }
  return out;
}

inline Params nv_params(unsigned code, float global) {
  return {static_cast<float>(static_cast<float>(e4m3_value(code)) / global), 0, static_cast<std::uint8_t>(code)};
}

inline Params nvfp4_absmax(std::span<const float> g, float global) {
  const float scale = amax_of(g) / 6.0f * global;
  unsigned code = e4m3_encode(std::min(scale, 448.0f));
  if (code == 0) code = 0x20;
  return nv_params(code, global);
}

inline std::vector<Params> nvfp4_candidates(std::span<const float> g, float global) {
  const Params base = nvfp4_absmax(g, global);
  std::vector<Params> out{base};
  if (amax_of(g) == 0) return out;
  for (int c = base.code - 8; c <= base.code + 2; ++c)
    if (c >= 1 && c <= 0x7E) out.push_back(nv_params(static_cast<unsigned>(c), global));
  return out;
}

inline Params int4_from_range(float lo, float hi, bool symmetric) {
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  if (symmetric) {
    float scale = bf16_round(std::max(-lo, hi) / 7.5f);
    if (scale == 0) scale = 1.0f / 128;
    return {scale, 8.0f, 0};
  }
  float scale = bf16_round((hi - lo) / 15.0f);
  if (scale == 0) scale = 1.0f / 128;
  const float zero = nearest_int_clamped(-lo / scale, 0.0f);
  return {scale, zero, 0};
}

inline Params int4_absmax(std::span<const float> g, bool symmetric) {
  float lo = 0, hi = 0;
  for (float x : g) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  return int4_from_range(lo, hi, symmetric);
}

inline std::vector<Params> int4_candidates(std::span<const float> g, bool symmetric) {
  float lo = 0, hi = 0;
  for (float x : g) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
  }
  std::vector<Params> out;
  for (int i = 0; i <= 50; ++i) {
    const float p = static_cast<float>(100 - i) / 100.0f;
    out.push_back(int4_from_range(p * lo, p * hi, symmetric));
  }
  return out;
}

// ---- codes and errors -----------------------------------------------------------------------------
inline std::uint8_t encode(microscale::formats::Format f, float x, const Params& p) {
  const float q = x / p.scale;
  if (f == microscale::formats::Format::int4) return static_cast<std::uint8_t>(nearest_int_clamped(q, p.zero));
  return e2m1_encode(q);
}

inline double decode(microscale::formats::Format f, std::uint8_t code, const Params& p) {
  if (f == microscale::formats::Format::int4) return static_cast<float>((static_cast<float>(code) - p.zero) * p.scale);
  return static_cast<float>(static_cast<float>(e2m1_value(code)) * p.scale);
}

inline double squared_error(microscale::formats::Format f, std::span<const float> g, const Params& p) {
  double sum = 0;
  for (float x : g) {
    const double d = static_cast<double>(x) - decode(f, encode(f, x, p), p);
    sum += d * d;
  }
  return sum;
}

}  // namespace ref
