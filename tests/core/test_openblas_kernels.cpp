// The rule that picks OpenBLAS kernels for a CPU its model table did not know (core/openblas_kernels).
#include <gtest/gtest.h>

#include "microscale/core/openblas_kernels.hpp"

namespace microscale::core {
namespace {

CpuVectorFeatures avx2_cpu() {
  CpuVectorFeatures f;
  f.avx = f.avx2 = f.fma = true;
  return f;
}

CpuVectorFeatures avx512_cpu() {
  CpuVectorFeatures f = avx2_cpu();
  f.avx512f = f.avx512bw = f.avx512dq = f.avx512vl = f.avx512cd = true;
  return f;
}

TEST(OpenblasKernels, FallbackCoresOnAnAvx512CpuGetSkylakeX) {
  for (const char* core : {"Prescott", "Core2", "Nehalem", "Sandybridge", "Barcelona"})
    EXPECT_EQ(faster_openblas_core(core, avx512_cpu()), std::optional<std::string>("SkylakeX")) << core;
}

TEST(OpenblasKernels, FallbackCoresOnAnAvx2CpuGetHaswell) {
  EXPECT_EQ(faster_openblas_core("Prescott", avx2_cpu()), std::optional<std::string>("Haswell"));
  // One AVX-512 part missing (no BW, as on Knights Landing) is not enough for SkylakeX's kernels.
  CpuVectorFeatures f = avx512_cpu();
  f.avx512bw = false;
  EXPECT_EQ(faster_openblas_core("Prescott", f), std::optional<std::string>("Haswell"));
}

TEST(OpenblasKernels, DeliberateChoicesAndUnknownNamesAreKept) {
  for (const char* core : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids", "Neoverse N1", ""})
    EXPECT_EQ(faster_openblas_core(core, avx512_cpu()), std::nullopt) << core;
}

TEST(OpenblasKernels, CpusWithoutAvx2AndFmaKeepTheirCore) {
  CpuVectorFeatures sse;
  EXPECT_EQ(faster_openblas_core("Prescott", sse), std::nullopt);
  CpuVectorFeatures no_fma = avx2_cpu();
  no_fma.fma = false;
  EXPECT_EQ(faster_openblas_core("Sandybridge", no_fma), std::nullopt);
}

TEST(OpenblasKernels, TheLoadedLibraryNamesItsCore) {
  EXPECT_FALSE(openblas_core_name().empty());
}

}  // namespace
}  // namespace microscale::core
