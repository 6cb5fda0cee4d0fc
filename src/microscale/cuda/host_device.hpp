#pragma once
// What device helpers need to be callable from host code too (so that CPU tests can check them against
// the reference they replace): the host/device qualifier, and float operations whose rounding is
// fixed on both sides (explicit _rn intrinsics on the device, so that nvcc cannot contract a multiply
// and an add into an FMA; plain IEEE operations on the host, where the build does not contract them).
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MICROSCALE_HOST_DEVICE __host__ __device__
#else
#define MICROSCALE_HOST_DEVICE
#endif
// Loop unrolling where the device compiler reads it (the host compiler would warn).
#if defined(__CUDA_ARCH__)
#define MICROSCALE_UNROLL _Pragma("unroll")
#else
#define MICROSCALE_UNROLL
#endif

#if !defined(__CUDA_ARCH__)
#include <cmath>
#endif

namespace microscale::cuda::detail {

MICROSCALE_HOST_DEVICE inline std::uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

MICROSCALE_HOST_DEVICE inline float bits_float(std::uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

MICROSCALE_HOST_DEVICE inline float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

MICROSCALE_HOST_DEVICE inline float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

MICROSCALE_HOST_DEVICE inline float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// The high word of (hi:lo) << shift, shift in [0, 32]: one funnel-shift instruction on the device.
MICROSCALE_HOST_DEVICE inline std::uint32_t funnel_left(std::uint32_t lo, std::uint32_t hi, unsigned shift) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_l(lo, hi, shift);
#else
  return static_cast<std::uint32_t>(((static_cast<std::uint64_t>(hi) << 32 | lo) << shift) >> 32);
#endif
}

}  // namespace microscale::cuda::detail
