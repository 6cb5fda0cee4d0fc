// FP4 GPU kernels against the CPU modules (tests/cuda/fp4_checks.hpp has the checks and the GEMV
// error bound). Without a CUDA device every GPU test is skipped with the reason; the host-side
// argument checks run everywhere the CUDA module is built.
#include <gtest/gtest.h>

#if defined(MICROSCALE_HAVE_CUDA)

#include <cstdint>
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

}  // namespace
}  // namespace microscale::cuda

#else

TEST(CudaFp4, NotBuilt) { GTEST_SKIP() << "no CUDA device: the library was built without the CUDA module"; }

#endif
