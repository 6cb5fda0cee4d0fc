#pragma once
// Scalar codecs of the element and scale types. Each is exact: round-to-nearest-even, saturating
// where the format saturates. These are the single source of truth for bit layouts.
#include <cstdint>

namespace microscale::formats {

// E2M1 (FP4): 1 sign, 2 exponent, 1 mantissa bit; magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6}.
// Encoding rounds to nearest, ties to even code, saturates at +-6; -0 encodes as 0x8.
std::uint8_t e2m1_from_float(float x);
float e2m1_to_float(std::uint8_t code);

// E4M3 "fn" (FP8): bias 7, max 448, no infinities, 0x7F/0xFF = NaN. Encoding saturates at +-448.
std::uint8_t e4m3_from_float(float x);
float e4m3_to_float(std::uint8_t code);

// UE8M0: 2^(code - 127); 0xFF is NaN.
float e8m0_to_float(std::uint8_t code);
std::uint8_t e8m0_from_exponent(int unbiased_exponent);  // clamps into [-127, 127]

// BF16 / FP16 (round to nearest even; NaN stays NaN).
std::uint16_t bf16_from_float(float x);
float bf16_to_float(std::uint16_t bits);
std::uint16_t fp16_from_float(float x);
float fp16_to_float(std::uint16_t bits);

}  // namespace microscale::formats
