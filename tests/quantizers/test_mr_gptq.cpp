// MR-GPTQ: GPTQ in a block-rotated basis with MSE scales and static act-order groups.
#include <gtest/gtest.h>

#include <cstring>

#include "microscale/core/error.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "microscale/quantizers/hessian_ops.hpp"
#include "quantizers/problems.hpp"

namespace microscale::quantizers {
namespace {

using formats::Format;
using formats::ScaleSearch;
using testing::make_problem;
using testing::Problem;
using testing::Tails;

bool same_bits(const Matrix& a, const Matrix& b) {
  return a.data.size() == b.data.size() &&
         std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)) == 0;
}

TEST(MrGptq, WithoutRotationIsGptqWithMseAndStaticActOrder) {
  const Problem p = make_problem(24, 128, 256, 4u);
  const auto spec = formats::make_spec(Format::mxfp4, 32, true, ScaleSearch::absmax);
  GptqOptions loose;
  loose.act_order = false;
  loose.static_groups = false;
  const LayerResult mr = mr_gptq(p.w.view(), p.h, spec, {}, loose, "l");
  auto forced = spec;
  forced.scale = ScaleSearch::mse;
  GptqOptions strict;
  strict.act_order = true;
  strict.static_groups = true;
  const LayerResult plain = gptq(p.w.view(), p.h, forced, strict, "l");
  EXPECT_TRUE(same_bits(mr.dequantized, plain.dequantized));
  EXPECT_EQ(mr.quantized.spec.scale, ScaleSearch::mse);
  EXPECT_FALSE(mr.rotation.enabled());
}

TEST(MrGptq, ConjugatedHessianMatchesDenseRotation) {
  // Rᵀ H R against R built densely by rotating the identity's rows (row i of I R is row i of R).
  const Problem p = make_problem(4, 64, 200, 8u);
  const rotation::RotationSpec spec{32, true, 77};
  Matrix r(64, 64);
  for (std::int64_t i = 0; i < 64; ++i) r(i, i) = 1.0f;
  rotation::rotate_rows(r.view(), spec);
  Eigen::MatrixXd rd(64, 64);
  for (std::int64_t i = 0; i < 64; ++i)
    for (std::int64_t j = 0; j < 64; ++j) rd(i, j) = r(i, j);
  const Eigen::MatrixXd want = rd.transpose() * p.h * rd;
  const Eigen::MatrixXd got = detail::conjugate_by_rotation(p.h, spec);
  EXPECT_LT((got - want).norm(), 1e-5 * want.norm());
  // Non-symmetric input too (QEP's cross term).
  const Eigen::MatrixXd m = Eigen::MatrixXd::Random(64, 64);
  EXPECT_LT((detail::conjugate_by_rotation(m, spec) - rd.transpose() * m * rd).norm(), 1e-5 * m.norm());
}

TEST(MrGptq, ResultIsInTheRotatedBasisAndPacksExactly) {
  const Problem p = make_problem(32, 128, 256, 9u, Tails::heavy);
  for (const Format format : {Format::mxfp4, Format::nvfp4}) {
    const auto spec = formats::make_spec(format, format == Format::mxfp4 ? 32 : 16, true, ScaleSearch::absmax);
    const rotation::RotationSpec rot{64, true, 1234};
    const LayerResult mr = mr_gptq(p.w.view(), p.h, spec, rot, {}, "l");
    EXPECT_TRUE(mr.rotation.enabled());
    Matrix unpacked(p.w.rows, p.w.cols);
    formats::dequantize(mr.quantized, unpacked.view());
    EXPECT_TRUE(same_bits(unpacked, mr.dequantized));

    // The objective is basis independent: rotated pair against the rotated Hessian, or back-rotated
    // weights against the original one.
    Matrix rotated_w = p.w;
    rotation::rotate_rows(rotated_w.view(), rot);
    const double in_rotated =
        layer_objective(rotated_w.view(), mr.dequantized.view(), detail::conjugate_by_rotation(p.h, rot));
    const double in_original = layer_objective(p.w.view(), dequantized_in_original_basis(mr).view(), p.h);
    EXPECT_NEAR(in_rotated, in_original, 1e-4 * in_original);

    // Static groups: scales from the rotated, unquantized weight with MSE search.
    auto mse = spec;
    mse.scale = ScaleSearch::mse;
    const formats::GroupQuantizer quantizer(mse, formats::tensor_global_scale(mse, rotated_w.data));
    const std::int64_t g = mse.group_size;
    for (std::int64_t r = 0; r < p.w.rows; r += 7) {
      for (std::int64_t k = 0; k < p.w.cols / g; ++k) {
        const auto want = quantizer.choose(rotated_w.view().row(r).subspan(static_cast<std::size_t>(k * g),
                                                                           static_cast<std::size_t>(g)));
        EXPECT_EQ(mr.quantized.params(r, k).scale, want.scale);
      }
    }
  }
}

// Where rotations help: heavy-tailed weights and outlier input channels. Margins are recorded in
// docs/modules/quantizers.md.
TEST(MrGptq, BeatsGptqOnHeavyTailedLayersForFp4) {
  for (const std::uint32_t seed : {31u, 32u}) {
    const Problem p = make_problem(64, 256, 512, seed, Tails::heavy);
    for (const Format format : {Format::mxfp4, Format::nvfp4}) {
      const int group = format == Format::mxfp4 ? 32 : 16;
      const auto spec = formats::make_spec(format, group, true, ScaleSearch::absmax);
      auto spec_mse = spec;
      spec_mse.scale = ScaleSearch::mse;
      SCOPED_TRACE(formats::describe(spec) + " seed " + std::to_string(seed));
      const double rtn_obj = layer_objective(p.w.view(), rtn(p.w.view(), spec).dequantized.view(), p.h);
      const double gptq_obj = layer_objective(p.w.view(), gptq(p.w.view(), p.h, spec).dequantized.view(), p.h);
      const double gptq_mse_obj =
          layer_objective(p.w.view(), gptq(p.w.view(), p.h, spec_mse).dequantized.view(), p.h);
      for (const int block : {group, 128}) {
        const LayerResult mr = mr_gptq(p.w.view(), p.h, spec, {block, true, 7}, {}, "l");
        const double mr_obj = layer_objective(p.w.view(), dequantized_in_original_basis(mr).view(), p.h);
        EXPECT_LT(mr_obj, gptq_obj) << "rotation block " << block;
        RecordProperty(fmt::format("{}_seed{}_rot{}", formats::format_name(format), seed, block),
                       fmt::format("rtn 1 gptq {:.4f} gptq_mse {:.4f} mr {:.4f}", gptq_obj / rtn_obj,
                                   gptq_mse_obj / rtn_obj, mr_obj / rtn_obj));
      }
    }
  }
}

}  // namespace
}  // namespace microscale::quantizers

namespace microscale::quantizers {
namespace {

// Gaussian layers: recorded for the docs, no ordering asserted (rotation has little to fix there).
TEST(MrGptq, RecordsMarginsOnGaussianLayers) {
  const testing::Problem p = testing::make_problem(64, 256, 512, 33u, testing::Tails::gaussian);
  for (const formats::Format format : {formats::Format::mxfp4, formats::Format::nvfp4}) {
    const int group = format == formats::Format::mxfp4 ? 32 : 16;
    const auto spec = formats::make_spec(format, group, true, formats::ScaleSearch::absmax);
    const double rtn_obj = layer_objective(p.w.view(), rtn(p.w.view(), spec).dequantized.view(), p.h);
    const double gptq_obj = layer_objective(p.w.view(), gptq(p.w.view(), p.h, spec).dequantized.view(), p.h);
    const LayerResult mr = mr_gptq(p.w.view(), p.h, spec, {128, true, 7}, {}, "l");
    const double mr_obj = layer_objective(p.w.view(), dequantized_in_original_basis(mr).view(), p.h);
    EXPECT_TRUE(std::isfinite(mr_obj));
    RecordProperty(fmt::format("{}_gaussian_rot128", formats::format_name(format)),
                   fmt::format("rtn 1 gptq {:.4f} mr {:.4f}", gptq_obj / rtn_obj, mr_obj / rtn_obj));
  }
}

}  // namespace
}  // namespace microscale::quantizers
