// FP4 GPU kernels against the CPU modules (tests/cuda/fp4_checks.hpp has the checks and the GEMV
// error bound). Without a CUDA device every GPU test is skipped with the reason; the host-side
// argument checks run everywhere the CUDA module is built.
#include <gtest/gtest.h>

#if defined(MICROSCALE_HAVE_CUDA)

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "cuda/fp4_checks.hpp"
#include "cuda/require_device.hpp"
#include "microscale/core/error.hpp"

namespace microscale::cuda {
namespace {

void expect_all(const std::vector<checks::CheckResult>& results) {
  for (const auto& r : results) EXPECT_TRUE(r.pass) << r.name << ": " << r.detail;
}

TEST(CudaFp4, ArgumentErrorsAreReportedBeforeAnyDeviceWork) {
  const std::vector<std::uint8_t> codes(8), scales(1);
  // 16 columns cannot hold an MXFP4 group of 32.
  EXPECT_THROW(upload_weight(formats::Format::mxfp4, 1, 16, codes, scales, 1.0f), Error);
  EXPECT_THROW(upload_weight(formats::Format::int4, 1, 16, codes, scales, 1.0f), Error);
  EXPECT_THROW(upload_weight(formats::Format::nvfp4, 1, 16, codes, scales, 0.0f), Error);
  EXPECT_THROW(upload_rotation(rotation::RotationSpec{512, false, 0}, 1024), Error);
  EXPECT_THROW(upload_rotation(rotation::RotationSpec{24, false, 0}, 48), Error);
}

TEST(CudaFp4, ToleranceBoundIsBf16HalfUlpPlusSummationError) {
  // With no cancellation (S = |y|) and K = 0 the bound is (64 * 2^-24)(1 + 2^-8)|y| + 2^-8 |y|.
  const double y = 3.0;
  const double bound = checks::gemv_tolerance(y, y, 0);
  const double gamma = 64.0 * std::ldexp(1.0, -24);
  EXPECT_NEAR(bound, gamma * y + std::ldexp(1.0, -8) * (y + gamma * y), 1e-30);
}

TEST(CudaFp4, DequantizeMatchesCpuBitExactly) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    expect_all({checks::check_dequantize(f, 37, f == formats::Format::nvfp4 ? 48 : 96, 1),
                checks::check_dequantize(f, 64, 4096, 2)});
  }
}

TEST(CudaFp4, HadamardMatchesRotateRowsBitExactly) {
  REQUIRE_DEVICE();
  for (int block : {2, 8, 16, 32, 64, 128, 256}) expect_all({checks::check_hadamard(5, 1024, block, block != 32, 3)});
  expect_all({checks::check_hadamard(3, 4368, 16, true, 4)});
}

TEST(CudaFp4, RotateQuantizeMatchesFormatsQuantizeBitExactly) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    expect_all({checks::check_rotate_quantize(f, 3, f == formats::Format::nvfp4 ? 48 : 96, 0, 5),
                checks::check_rotate_quantize(f, 9, 1056, 16, 6), checks::check_rotate_quantize(f, 4, 4096, 256, 7),
                checks::check_rotate_quantize(f, 16, 14336, 128, 8)});
  }
}

TEST(CudaFp4, GemvWithinDerivedBoundAtOddShapesAndBatches) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    const std::int64_t odd_k = f == formats::Format::nvfp4 ? 48 : 96;
    expect_all({checks::check_gemv(f, 1, 32, 1, 0, false, 9), checks::check_gemv(f, 5, odd_k, 3, 0, false, 10),
                checks::check_gemv(f, 3, odd_k, 2, 16, false, 11)});
    for (std::int64_t batch = 1; batch <= 17; ++batch) expect_all({checks::check_gemv(f, 97, 1056, batch, 0, false, 12)});
    expect_all({checks::check_gemv(f, 1024, 4096, 1, 0, false, 13), checks::check_gemv(f, 300, 14336, 2, 32, false, 14),
                checks::check_gemv(f, 70, 4096, 5, 64, true, 15), checks::check_gemv(f, 200, 8192, 40, 128, false, 16)});
    // Enough row tiles (513, the last one partial) that the plan keeps K = 4096 whole: batch 1 takes
    // the prefetching kernel (kPrefetchMinChunk), which the shapes above never reach.
    expect_all({checks::check_gemv(f, 16400, 4096, 1, 128, false, 17)});
  }
}

TEST(CudaFp4, TileLayoutDequantizesToTheCpuValuesBitExactly) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    expect_all({checks::check_dequantize(f, 37, f == formats::Format::nvfp4 ? 48 : 96, 21, Fp4Layout::mma_tiles),
                checks::check_dequantize(f, 64, 4096, 22, Fp4Layout::mma_tiles)});
  }
}

TEST(CudaFp4, TensorCoreKernelWithinDerivedBoundAtOddShapesAndBatches) {
  REQUIRE_DEVICE();
  constexpr Fp4Layout tiles = Fp4Layout::mma_tiles;
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    const std::int64_t odd_k = f == formats::Format::nvfp4 ? 48 : 96;
    expect_all({checks::check_gemv(f, 1, 32, 1, 0, false, 30, tiles), checks::check_gemv(f, 5, odd_k, 3, 0, false, 31, tiles),
                checks::check_gemv(f, 3, odd_k, 2, 16, false, 32, tiles)});
    for (std::int64_t batch : {1, 2, 5, 8, 9, 16, 17, 32, 33, 64, 65, 130})
      expect_all({checks::check_gemv(f, 97, 1056, batch, 0, false, 33, tiles)});
    expect_all({checks::check_gemv(f, 1024, 4096, 1, 0, false, 34, tiles),
                checks::check_gemv(f, 300, 14336, 2, 32, false, 35, tiles),
                checks::check_gemv(f, 4096, 4096, 16, 0, false, 36, tiles),
                checks::check_gemv(f, 200, 8192, 40, 128, false, 37, tiles)});
  }
}

TEST(CudaFp4, TileLayoutHandlesLargeAndZeroScalesAndRefusesNaN) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) expect_all({checks::check_mma_edge_scales(f, 40)});
}

TEST(CudaFp4, DequantizeThenCublasWithinBound) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4})
    expect_all({checks::check_dequant_gemm(f, 100, 1056, 33, 17)});
}

TEST(CudaFp4, RowRangeAndSlabArgumentsAreCheckedBeforeAnyDeviceWork) {
  Fp4Weight w;  // shape only: every call below must fail before it touches the (absent) device buffers
  w.layout = Fp4Layout::mma_tiles;
  w.rows = 100;
  w.cols = 64;
  w.padded_cols = 64;
  EXPECT_THROW(dequantize_bf16_rows(w, 8, 16, nullptr), Error);    // not a row tile boundary
  EXPECT_THROW(dequantize_bf16_rows(w, 96, 16, nullptr), Error);   // past the last row
  EXPECT_THROW(dequantize_bf16_rows(w, -16, 16, nullptr), Error);
  EXPECT_THROW(dequantize_bf16_rows(w, 0, -1, nullptr), Error);
  EXPECT_THROW(slab_scratch_elements(w, 24), Error);               // slabs are multiples of 16
  EXPECT_THROW(slab_scratch_elements(w, -16), Error);
  EXPECT_EQ(slab_scratch_elements(w, 0), 100 * 64);                // the whole weight
  EXPECT_EQ(slab_scratch_elements(w, 32), 32 * 64);
  EXPECT_EQ(slab_scratch_elements(w, 112), 100 * 64);              // one slab covers the weight
  w.format = formats::Format::int4;
  EXPECT_THROW(dequantize_bf16_rows(w, 0, 16, nullptr), Error);
}

TEST(CudaFp4, SignWordsFlipTheRoundedProductAsTheNegativeFactorWould) {
  // Host-only: rotate-and-quantize multiplies by DeviceRotation::magnitude and flips the sign bit where
  // negative_sign_words says so; that must equal the product with the factor itself, bit for bit.
  const std::int64_t cols = 1040;  // not a multiple of 32: the last word is partial
  std::vector<float> factors = rotation::rotation_signs(rotation::RotationSpec{16, true, 9}, cols);
  const float magnitude = static_cast<float>(1.0 / std::sqrt(16.0));
  for (float& f : factors) f *= magnitude;
  const std::vector<std::uint32_t> words = negative_sign_words(factors);
  ASSERT_EQ(words.size(), 33u);
  std::int64_t negatives = 0, mismatches = 0;
  const float values[] = {1.0f, -3.5f, 0.0f, -0.0f, 1e-40f, -7.25e30f, std::numeric_limits<float>::infinity(),
                          0.3333333f};
  for (std::int64_t c = 0; c < cols; ++c) {
    const bool negative = ((words[c / 32] >> (c % 32)) & 1u) != 0;
    negatives += negative;
    EXPECT_EQ(negative, std::signbit(factors[c])) << c;
    for (const float v : values) {
      std::uint32_t bits, want;
      const float product = v * magnitude, exact = v * factors[c];
      std::memcpy(&bits, &product, sizeof bits);
      std::memcpy(&want, &exact, sizeof want);
      mismatches += (bits ^ (negative ? 0x80000000u : 0u)) != want;
    }
  }
  EXPECT_GT(negatives, cols / 4);
  EXPECT_LT(negatives, 3 * cols / 4);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(words.back() >> (cols % 32), 0u);  // no bits past the last column
}

TEST(CudaFp4, DefaultSlabRowsFitTheByteBudgetButKeepTheGemmWide) {
  // Llama-3 8B and 70B linears: 16 MiB of BF16 rows, at least 1024 rows, never more than the weight.
  EXPECT_EQ(default_slab_rows(4096, 4096), 2048);    // 8B q/o: 2 slabs of 16 MiB
  EXPECT_EQ(default_slab_rows(14336, 4096), 2048);   // 8B gate/up: 7 slabs
  EXPECT_EQ(default_slab_rows(1024, 4096), 1024);    // 8B k/v: one slab, the whole weight
  EXPECT_EQ(default_slab_rows(4096, 14336), 1024);   // 8B down: the minimum wins (28 MiB slabs)
  EXPECT_EQ(default_slab_rows(8192, 8192), 1024);    // 70B q/o: 16 MiB exactly
  EXPECT_EQ(default_slab_rows(8192, 28672), 1024);   // 70B down: the minimum wins (56 MiB slabs)
  EXPECT_EQ(default_slab_rows(100, 28672), 112);     // fewer rows than the minimum: the whole weight
  EXPECT_EQ(default_slab_rows(8192, 1024), 8192);    // 16 MiB in all: one slab
  for (std::int64_t cols : {16, 1000, 4096, 5000, 100000}) {
    const std::int64_t slab = default_slab_rows(1 << 20, cols);
    EXPECT_EQ(slab % 16, 0) << cols;
    EXPECT_TRUE(slab == kMinSlabRows || (slab * cols * 2 <= kSlabBytes && (slab + 16) * cols * 2 > kSlabBytes)) << cols;
  }
  EXPECT_THROW(default_slab_rows(0, 4096), Error);
}

TEST(CudaFp4, RowRangeDequantizeMatchesCpuBitExactly) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    for (Fp4Layout layout : {Fp4Layout::rows, Fp4Layout::mma_tiles}) {
      expect_all({checks::check_dequantize_rows(f, 100, 1056, 32, 37, 50, layout),
                  checks::check_dequantize_rows(f, 100, f == formats::Format::nvfp4 ? 48 : 96, 96, 4, 51, layout),
                  checks::check_dequantize_rows(f, 64, 4096, 0, 64, 52, layout)});
    }
  }
}

TEST(CudaFp4, SlabbedDequantizeThenCublasMatchesTheWholeWeightPath) {
  REQUIRE_DEVICE();
  for (auto f : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    for (Fp4Layout layout : {Fp4Layout::rows, Fp4Layout::mma_tiles}) {
      expect_all({checks::check_slabbed_gemm(f, 200, 1056, 33, 64, 60, layout),   // the last slab 8 rows
                  checks::check_slabbed_gemm(f, 160, 1056, 7, 48, 61, layout),    // the last slab 16 rows
                  checks::check_slabbed_gemm(f, 200, 1056, 1, 16, 62, layout),
                  checks::check_slabbed_gemm(f, 200, 1056, 65, 0, 63, layout),    // whole: same bits
                  checks::check_slabbed_gemm(f, 200, 1056, 65, 256, 64, layout),  // one slab: same bits
                  checks::check_slabbed_gemm(f, 200, 1056, 33, 64, 65, layout, true)});
    }
    expect_all({checks::check_slabbed_gemm(f, 2100, 4096, 64, default_slab_rows(2100, 4096), 66, Fp4Layout::mma_tiles)});
  }
}

}  // namespace
}  // namespace microscale::cuda

#else

TEST(CudaFp4, NotBuilt) { GTEST_SKIP() << "no CUDA device: the library was built without the CUDA module"; }

#endif
