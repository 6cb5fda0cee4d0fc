#pragma once
// The arithmetic of rotate-and-quantize's inner loop, host-callable so that a CPU test proves it
// against what it replaces (tests/cuda/test_e2m1_encode.cpp): formats::detail::e2m1_code of IEEE
// quotients. The kernel is bound by instruction issue (ncu), so each step here is written for the
// fewest instructions that still give the CPU's bits.
#include <cstdint>

#include "microscale/cuda/host_device.hpp"

namespace microscale::cuda::detail {

// RN(a / b) from y = RN(1 / b) with one multiply and two FMAs instead of an IEEE division (about ten
// instructions and a slow-path branch on the GPU): q = RN(a y) is within an ulp of a / b, the FMA
// gives the remainder a - b q exactly, and one correction by it rounds correctly (Markstein's
// theorem). That needs the quotient and the remainder clear of overflow and underflow; see
// quotient_is_safe.
//
// The sign is a's (b > 0), set explicitly: for a = -0 the correction computes +0 + -0 = +0, where the
// IEEE quotient is -0 (E2M1 code 8, not 0); the GPU checks caught that on the H100.
MICROSCALE_HOST_DEVICE inline float quotient_rn(float a, float b, float y) {
  const float q = mul_rn(a, y);
  const float corrected = fma_rn(fma_rn(-q, b, a), y, q);
  return bits_float((float_bits(corrected) & 0x7FFFFFFFu) | (float_bits(a) & 0x80000000u));
}

// True when NVFP4's group arithmetic may use quotient_rn: RN(amax / 6) exactly (amax = 0 or in
// [2^-100, 2^60]: the quotient is normal and the remainder, a multiple of 2^-147, is exact), and for
// every |a| <= amax a quotient RN(a / b) that is exact wherever it can reach E2M1's first threshold
// (b in [2^-60, 2^60]: quotients stay below 2^120, and those >= 2^-3 have remainders that are
// multiples of 2^-109). Smaller quotients may be an ulp off, which cannot move them past 0.25 or change
// their sign, so their codes still match. Groups that fail this (or hold NaN or Inf) take IEEE
// division.
MICROSCALE_HOST_DEVICE inline bool quotient_is_safe(float amax, float b) {
  return b >= 0x1p-60f && b <= 0x1p60f && amax <= 0x1p60f && (amax >= 0x1p-100f || amax == 0.0f);
}

// The E2M1 codes of q[0..7] packed into a word (code i in bits [4i, 4i + 4)), each the same as
// formats::detail::e2m1_code: midpoint thresholds with ties to the even code, sign in bit 3. NaN is
// not handled (its code would be 7 with its sign, where the CPU gives magnitude 0): callers check for
// NaN once per group and use e2m1_word_with_nan there.
//
// With t = min(|q|, 6) in binade [2^e, 2^(e+1)) (e = 0 below 1), adding M = 2^(e + 22) rounds t to a
// multiple of 2^(e - 1), E2M1's spacing in that binade, with the FPU's ties-to-even, which is the rule
// of the thresholds. bits(t + M) - bits(M) is that multiple k, and the code is k + 2e, where
// 2e = (bits(M) >> 22) - 298. The 8 constants 298 << 4i are subtracted once, from the word's start
// value (the fields never carry: each final field is 0..7). The sign bits are gathered by funnel
// shifts (bits 28..31 of each q, then masked to bit 3), one instruction per value.
MICROSCALE_HOST_DEVICE inline std::uint32_t e2m1_word(const float (&q)[8]) {
  constexpr std::uint32_t kBias = 298u;
  std::uint32_t magnitudes = 0u - kBias * 0x11111111u;
  std::uint32_t signs = 0u;
MICROSCALE_UNROLL
  for (int i = 7; i >= 0; --i) {
    const float t = fminf(fabsf(q[i]), 6.0f);
    const std::uint32_t exponent = float_bits(t) & 0x7F800000u;
    const std::uint32_t magic = (exponent > 0x3F800000u ? exponent : 0x3F800000u) + (22u << 23);
    const std::uint32_t rounded = float_bits(add_rn(t, bits_float(magic)));
    magnitudes += (rounded - magic + (magic >> 22)) << (4 * i);
    signs = funnel_left(float_bits(q[i]), signs, 4);
  }
  return magnitudes | (signs & 0x88888888u);
}

// e2m1_word for values that may be NaN: a NaN keeps its sign bit and gets magnitude 0, as on the CPU
// (its comparisons are all false).
MICROSCALE_HOST_DEVICE inline std::uint32_t e2m1_word_with_nan(const float (&q)[8]) {
  std::uint32_t word = e2m1_word(q);
MICROSCALE_UNROLL
  for (int i = 0; i < 8; ++i) {
    if (q[i] != q[i]) word &= ~(0x7u << (4 * i));
  }
  return word;
}

}  // namespace microscale::cuda::detail
