// The CLI's restart with the OpenBLAS kernels its CPU runs (core/openblas_kernels), seen from outside:
// with OPENBLAS_VERBOSE=2 OpenBLAS prints "Core: NAME" each time it loads, so a restart prints two.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "microscale/core/openblas_kernels.hpp"
#include "support/run_command.hpp"

namespace microscale {
namespace {

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(CliOpenblasKernels, RestartsOnlyWhenTheRuleNamesFasterKernels) {
  // This process loaded OpenBLAS as the CLI first does, so its core is the one the CLI starts with.
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) GTEST_SKIP() << "OPENBLAS_CORETYPE is set for the tests";
  const auto faster = core::faster_openblas_core(core::openblas_core_name(), core::detect_cpu_vector_features());
  const testing::CommandResult r = testing::run_command("OPENBLAS_VERBOSE=2 " + testing::cli() + " --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string printed = r.out + r.err;
  if (faster) {
    EXPECT_EQ(count_of(printed, "Core: "), 2) << printed;
    EXPECT_EQ(count_of(printed, "Core: " + *faster + "\n"), 1) << printed;
  } else {
    EXPECT_EQ(count_of(printed, "Core: "), 1) << printed;
  }
}

TEST(CliOpenblasKernels, KeepsTheKernelsTheUserChose) {
  const testing::CommandResult r =
      testing::run_command("OPENBLAS_CORETYPE=Prescott OPENBLAS_VERBOSE=2 " + testing::cli() + " --help");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string printed = r.out + r.err;
  EXPECT_EQ(count_of(printed, "Core: "), 1) << printed;
  EXPECT_EQ(count_of(printed, "Core: Prescott\n"), 1) << printed;
}

}  // namespace
}  // namespace microscale
