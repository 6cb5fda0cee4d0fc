// GPTQ with its factorisation and lazy updates on the GPU (cuSOLVER + cuBLAS) against the host path
// (LAPACK + OpenBLAS). Both run the same column loop and quantizer in double; only the rounding of the
// two dense steps differs (~1e-16 relative), so the codes must agree except where a value sits on a
// rounding boundary, and the GPTQ objective must agree to ~1e-9.
#include <gtest/gtest.h>

#if defined(MICROSCALE_HAVE_CUDA)

#include <cstdio>

#include "cuda/require_device.hpp"
#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/cuda/gptq_device.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "quantizers/problems.hpp"

namespace microscale::cuda {
namespace {

struct Case {
  const char* name;
  formats::QuantSpec spec;
  bool act_order;
  bool static_groups;
  bool mr;  // MR-GPTQ (rotation 32, MSE scales, static groups)
};

void compare(const Case& c, std::int64_t rows, std::int64_t d, int block) {
  const auto p = quantizers::testing::make_problem(rows, d, 4 * d, 7, quantizers::testing::Tails::heavy);
  quantizers::GptqOptions options;
  options.block_size = block;
  options.act_order = c.act_order;
  options.static_groups = c.static_groups;
  const rotation::RotationSpec rotation{32, true, 3};
  const auto run = [&](quantizers::GptqLinearAlgebra* algebra) {
    options.linear_algebra = algebra;
    return c.mr ? quantizers::mr_gptq(p.w.view(), p.h, c.spec, rotation, options, c.name)
                : quantizers::gptq(p.w.view(), p.h, c.spec, options, c.name);
  };
  const quantizers::LayerResult host = run(nullptr);
  const auto device_algebra = make_device_linear_algebra();
  const quantizers::LayerResult device = run(device_algebra.get());

  const auto& a = host.quantized.codes;
  const auto& b = device.quantized.codes;
  ASSERT_EQ(a.size(), b.size());
  std::size_t differing = 0;
  for (std::size_t i = 0; i < a.size(); ++i) differing += a[i] != b[i] ? 1 : 0;
  const auto rotated = [&](const quantizers::LayerResult& r) {
    Matrix w = p.w;
    rotation::rotate_rows(w.view(), r.rotation);
    return w;
  };
  const Eigen::MatrixXd h = c.mr ? quantizers::detail::conjugate_by_rotation(p.h, rotation) : p.h;
  const double host_objective = quantizers::layer_objective(rotated(host).view(), host.dequantized.view(), h);
  const double device_objective = quantizers::layer_objective(rotated(device).view(), device.dequantized.view(), h);
  std::printf("%s %s %lldx%lld: %zu of %zu code bytes differ, objective host %.12g device %.12g\n",
              differing <= a.size() / 1000 ? "PASS" : "FAIL", c.name, static_cast<long long>(rows),
              static_cast<long long>(d), differing, a.size(), host_objective, device_objective);
  EXPECT_LE(differing, a.size() / 1000) << c.name;
  EXPECT_NEAR(device_objective / host_objective, 1.0, 1e-6) << c.name;
  if (c.static_groups) {
    EXPECT_EQ(host.quantized.scales, device.quantized.scales) << c.name;  // chosen before any update
    EXPECT_EQ(host.quantized.scale_codes, device.quantized.scale_codes) << c.name;
  }
  EXPECT_EQ(host.damp, device.damp);
  EXPECT_EQ(host.identity_fallback, device.identity_fallback);
}

TEST(GptqDevice, MatchesTheHostPathForEveryFormatAndOrder) {
  REQUIRE_DEVICE();
  const Case cases[] = {
      {"gptq nvfp4 act-order dynamic groups", formats::make_spec(formats::Format::nvfp4, 16, true, formats::ScaleSearch::absmax), true, false, false},
      {"gptq mxfp4 natural order", formats::make_spec(formats::Format::mxfp4, 32, true, formats::ScaleSearch::absmax), false, false, false},
      {"gptq int4 g128 asym act-order", formats::make_spec(formats::Format::int4, 128, false, formats::ScaleSearch::absmax), true, false, false},
      {"gptq int4 g32 static groups", formats::make_spec(formats::Format::int4, 32, true, formats::ScaleSearch::absmax), true, true, false},
      {"mr-gptq mxfp4", formats::make_spec(formats::Format::mxfp4, 32, true, formats::ScaleSearch::absmax), true, true, true},
  };
  for (const Case& c : cases) compare(c, 96, 512, 128);
  // Odd sizes: a last block narrower than the others, one row.
  compare(cases[0], 1, 272, 64);
  compare(cases[2], 33, 384, 100);
}

TEST(GptqDevice, NonPositiveDefiniteHessianGetsTheSameExtraDamping) {
  REQUIRE_DEVICE();
  auto p = quantizers::testing::make_problem(16, 64, 256, 3);
  p.h(5, 5) = 0.5 * p.h(5, 5);
  p.h(5, 6) = p.h(6, 5) = 10.0 * std::sqrt(p.h(5, 5) * p.h(6, 6));  // indefinite 2x2 minor
  quantizers::GptqOptions options;
  options.damp = 0.0;
  const auto spec = formats::make_spec(formats::Format::nvfp4, 16, true, formats::ScaleSearch::absmax);
  quantizers::testing::CapturedLog log;
  const auto host = quantizers::gptq(p.w.view(), p.h, spec, options, "host");
  const auto algebra = make_device_linear_algebra();
  options.linear_algebra = algebra.get();
  const auto device = quantizers::gptq(p.w.view(), p.h, spec, options, "device");
  EXPECT_TRUE(host.damped_extra);
  EXPECT_EQ(host.damped_extra, device.damped_extra);
  EXPECT_EQ(host.damp, device.damp);
  EXPECT_EQ(host.quantized.codes, device.quantized.codes);
}

}  // namespace
}  // namespace microscale::cuda

#else

TEST(GptqDevice, NotBuilt) { GTEST_SKIP() << "no CUDA device: the library was built without the CUDA module"; }

#endif  // MICROSCALE_HAVE_CUDA
