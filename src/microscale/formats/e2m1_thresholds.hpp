#pragma once
// The E2M1 code of x / scale, decided by comparing x itself with seven per-scale thresholds.
//
// formats::detail::e2m1_code rounds q = RN(x / scale) (IEEE FP32 division) by the midpoints
// 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 with ties to the even code: a > 0.25, a >= 0.75, a > 1.25, ...
// for a = |q|. A kernel that divides every element is bound by the divisions; this header moves the
// rounding decision onto the scale, so that each element needs comparisons only (the CUDA
// rotate-and-quantize kernel uses it for NVFP4: device_math.cuh, e2m1_thresholds_dev).
//
// Why it is exact. RN is monotone, and every midpoint m is an FP32 number with an even significand.
//   RN(y) > m  <=>  y > m + u/2   (u = the gap above m; at y = m + u/2 the tie goes to even m),
//   RN(y) >= m <=>  y >= m - d/2  (d = the gap below m; at y = m - d/2 the tie goes to even m).
// With y = |x| / s (s > 0) both become |x| > P or |x| >= P for the real number P = b * s, b the
// boundary above. b has at most 25 significant bits and s 24, so P is exact in FP64 (49 <= 53 bits,
// far from FP64's range limits for any positive finite FP32 s). For FP32 a:
//   a > P  <=>  a > RD(P)    (RD(P) is the largest float <= P),
//   a >= P <=>  a >= RU(P)   (RU(P) is the smallest float >= P),
// with RD/RU the FP64 -> FP32 conversions rounding down / up (cvt.rm / cvt.rp on the GPU), which
// also handle P beyond FLT_MAX (RD -> FLT_MAX, RU -> inf) and below the subnormals (RD -> 0).
// So magnitude(a) = [a > T0] + [a >= T1] + [a > T2] + ... + [a > T6] with these T equals the
// magnitude of e2m1_code(x / s) for every float x that is not NaN, every positive finite s. The sign
// bit of x / s is the sign bit of x (s > 0), -0 included.
//
// For a power-of-two scale 2^e (MXFP4) the thresholds are m * 2^e themselves (exact for e >= -127,
// finite for e <= 125) with the same strictness, because x * 2^-e is then exact or below 0.25.
#include <cmath>
#include <cstdint>

namespace microscale::formats::e2m1_thresholds {

inline constexpr int kCount = 7;
inline constexpr float kMidpoint[kCount] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
// Whether the comparison is strict (ties at the midpoint round down to the even code below).
inline constexpr bool kStrict[kCount] = {true, false, true, false, true, false, true};
// The boundaries b in the quotient domain (exact doubles): m + u/2 for strict, m - d/2 otherwise.
inline constexpr double kBoundary[kCount] = {0.25 + 0x1p-26, 0.75 - 0x1p-25, 1.25 + 0x1p-24, 1.75 - 0x1p-24,
                                             2.5 + 0x1p-23,  3.5 - 0x1p-23,  5.0 + 0x1p-22};

// Host version of the FP64 -> FP32 directed conversions (the GPU uses __double2float_rd / _ru).
inline float round_down(double p) {
  float r = static_cast<float>(p);  // round to nearest: at most one float away
  if (static_cast<double>(r) > p) r = std::nextafter(r, -INFINITY);
  return r;
}
inline float round_up(double p) {
  float r = static_cast<float>(p);
  if (static_cast<double>(r) < p) r = std::nextafter(r, INFINITY);
  return r;
}

// Threshold k for the positive finite FP32 scale s (any s: normal or subnormal).
inline float threshold(int k, float s) {
  const double p = kBoundary[k] * static_cast<double>(s);
  return kStrict[k] ? round_down(p) : round_up(p);
}

// The E2M1 magnitude (0..7) of |x| under thresholds t (x not NaN).
inline std::uint32_t magnitude(float a, const float (&t)[kCount]) {
  std::uint32_t m = 0;
  for (int k = 0; k < kCount; ++k) m += kStrict[k] ? (a > t[k] ? 1u : 0u) : (a >= t[k] ? 1u : 0u);
  return m;
}

}  // namespace microscale::formats::e2m1_thresholds
