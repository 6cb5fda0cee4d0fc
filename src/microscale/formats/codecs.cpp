// Scalar codecs. Everything here works on the IEEE-754 bit patterns, so results do not depend on the
// FPU rounding mode, on F16C being present, or on the compiler contracting expressions.
#include "microscale/formats/codecs.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats {
namespace {

constexpr std::uint32_t kSignBit = 0x80000000u;

std::uint32_t bits_of(float x) { return std::bit_cast<std::uint32_t>(x); }
float float_of(std::uint32_t u) { return std::bit_cast<float>(u); }

// Rounds the FP32 bit pattern `u` (sign cleared, finite) to keep `keep` mantissa bits, ties to even.
// The carry may ripple into the exponent, which is exactly what rounding up to the next binade needs.
std::uint32_t round_mantissa_rne(std::uint32_t u, int keep) {
  const int drop = 23 - keep;
  const std::uint32_t half_minus_one = (1u << (drop - 1)) - 1u;
  const std::uint32_t lsb = (u >> drop) & 1u;
  return (u + half_minus_one + lsb) >> drop << drop;
}

}  // namespace

// ---- E2M1 ------------------------------------------------------------------------------------
// The thresholds live in group_kernels.hpp (shared with the vectorised loops): they are the midpoints
// between neighbouring magnitudes, and at a midpoint the even code wins.
std::uint8_t e2m1_from_float(float x) { return static_cast<std::uint8_t>(detail::e2m1_code(x)); }

float e2m1_to_float(std::uint8_t code) {
  static constexpr float kMagnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  const float m = kMagnitude[code & 0x7u];
  return (code & 0x8u) ? -m : m;
}

// ---- E4M3 (fn) -------------------------------------------------------------------------------
std::uint8_t e4m3_from_float(float x) {
  const std::uint32_t u = bits_of(x);
  const std::uint8_t sign = (u & kSignBit) ? 0x80u : 0x00u;
  const std::uint32_t a_bits = u & ~kSignBit;
  const float a = float_of(a_bits);
  if (std::isnan(a)) return static_cast<std::uint8_t>(sign | 0x7Fu);
  if (a >= 448.0f) return static_cast<std::uint8_t>(sign | 0x7Eu);  // saturate (also +-inf)
  if (a < 0.015625f) {
    // Below the smallest normal 2^-6 the codes are linear in steps of 2^-9 (code 8 is 2^-6 itself,
    // so rounding up out of the subnormal range lands on the right code). a * 512 is exact.
    const float steps = a * 512.0f;
    const auto lower = static_cast<std::uint32_t>(steps);
    const float frac = steps - static_cast<float>(lower);
    const std::uint32_t code = lower + ((frac > 0.5f || (frac == 0.5f && (lower & 1u))) ? 1u : 0u);
    return static_cast<std::uint8_t>(sign | code);
  }
  const std::uint32_t r = round_mantissa_rne(a_bits, 3);
  const int exponent = static_cast<int>(r >> 23) - 127 + 7;  // in [1, 15]
  const std::uint32_t mantissa = (r >> 20) & 0x7u;
  const std::uint32_t code = (static_cast<std::uint32_t>(exponent) << 3) | mantissa;
  return static_cast<std::uint8_t>(sign | std::min<std::uint32_t>(code, 0x7Eu));
}

float e4m3_to_float(std::uint8_t code) {
  const std::uint32_t magnitude = code & 0x7Fu;
  const bool negative = (code & 0x80u) != 0;
  if (magnitude == 0x7Fu) return std::numeric_limits<float>::quiet_NaN();
  const std::uint32_t exponent = magnitude >> 3;
  const std::uint32_t mantissa = magnitude & 0x7u;
  float value;
  if (exponent == 0) {
    value = static_cast<float>(mantissa) * 0x1p-9f;  // subnormal: m * 2^-9
  } else {
    value = float_of(((exponent - 7u + 127u) << 23) | (mantissa << 20));
  }
  return negative ? -value : value;
}

// ---- UE8M0 -----------------------------------------------------------------------------------
float e8m0_to_float(std::uint8_t code) {
  if (code == 0xFFu) return std::numeric_limits<float>::quiet_NaN();
  if (code == 0) return float_of(0x00400000u);  // 2^-127 is an FP32 subnormal
  return float_of(static_cast<std::uint32_t>(code) << 23);
}

std::uint8_t e8m0_from_exponent(int unbiased_exponent) {
  return static_cast<std::uint8_t>(std::clamp(unbiased_exponent, -127, 127) + 127);
}

// ---- BF16 ------------------------------------------------------------------------------------
std::uint16_t bf16_from_float(float x) {
  const std::uint32_t u = bits_of(x);
  if (std::isnan(x)) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // keep it a quiet NaN
  const std::uint32_t lsb = (u >> 16) & 1u;
  return static_cast<std::uint16_t>((u + 0x7FFFu + lsb) >> 16);  // overflow rounds to inf, as RNE should
}

float bf16_to_float(std::uint16_t bits) { return float_of(static_cast<std::uint32_t>(bits) << 16); }

// ---- FP16 ------------------------------------------------------------------------------------
std::uint16_t fp16_from_float(float x) {
  const std::uint32_t u = bits_of(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a_bits = u & ~kSignBit;
  if (a_bits > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u | ((a_bits >> 13) & 0x3FFu));
  if (a_bits >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (a_bits < 0x38800000u) {
    // Below 2^-14 FP16 is subnormal: steps of 2^-24. a * 2^24 is exact in FP32 (no underflow).
    const float steps = float_of(a_bits) * 0x1p24f;
    const auto lower = static_cast<std::uint32_t>(steps);
    const float frac = steps - static_cast<float>(lower);
    const std::uint32_t m = lower + ((frac > 0.5f || (frac == 0.5f && (lower & 1u))) ? 1u : 0u);
    return static_cast<std::uint16_t>(sign | m);  // m == 0x400 is the smallest normal, as it should be
  }
  const std::uint32_t r = round_mantissa_rne(a_bits, 10);
  const std::uint32_t exponent = (r >> 23) - 127u + 15u;
  const std::uint32_t mantissa = (r >> 13) & 0x3FFu;
  return static_cast<std::uint16_t>(sign | (exponent << 10) | mantissa);
}

float fp16_to_float(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = bits & 0x3FFu;
  if (exponent == 0x1Fu) return float_of(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    const float value = static_cast<float>(mantissa) * 0x1p-24f;
    return sign ? -value : value;
  }
  return float_of(sign | ((exponent - 15u + 127u) << 23) | (mantissa << 13));
}

}  // namespace microscale::formats
