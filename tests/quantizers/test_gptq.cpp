// GPTQ against a slow reference written the other way round: one column at a time, the explicit
// inverse Hessian (Eigen's LU inverse), the OBS update W[:, j+1:] -= err * Hinv[j, j+1:] / Hinv[j, j]
// and column j removed from Hinv by its Schur complement. The library instead uses the Cholesky
// factor of the inverse, lazy batches and a GEMM per batch; both must pick the same codes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "quantizers/problems.hpp"

namespace microscale::quantizers {
namespace {

using formats::Format;
using formats::QuantSpec;
using formats::ScaleSearch;
using testing::make_problem;
using testing::Problem;
using testing::Tails;

struct Reference {
  Matrix dequantized;
  std::vector<formats::GroupParams> params;
};

Reference reference_gptq(const Matrix& w, const Eigen::MatrixXd& hessian, const QuantSpec& spec, double damp,
                         bool act_order, bool static_groups) {
  const std::int64_t rows = w.rows, d = w.cols, group = spec.group_for(d), groups = d / group;
  const float global = formats::tensor_global_scale(spec, w.data);
  const formats::GroupQuantizer quantizer(spec, global);

  Eigen::MatrixXd h = hessian;
  Eigen::MatrixXd wd(rows, d);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < d; ++c) wd(r, c) = w(r, c);
  for (std::int64_t c = 0; c < d; ++c) {
    if (h(c, c) == 0) {
      h(c, c) = 1;
      wd.col(c).setZero();
    }
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  if (act_order) {
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return h(a, a) > h(b, b); });
  }
  const double lambda = damp * h.diagonal().mean();
  Eigen::MatrixXd hinv = (h + lambda * Eigen::MatrixXd::Identity(d, d)).inverse();

  Reference ref;
  ref.dequantized = Matrix(rows, d);
  ref.params.resize(static_cast<std::size_t>(rows * groups));
  std::vector<char> chosen(static_cast<std::size_t>(groups), 0);
  std::vector<float> values(static_cast<std::size_t>(group));
  auto choose_group = [&](std::int64_t g) {
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t t = 0; t < group; ++t) values[static_cast<std::size_t>(t)] = static_cast<float>(wd(r, g * group + t));
      ref.params[static_cast<std::size_t>(r * groups + g)] = quantizer.choose(values);
    }
    chosen[static_cast<std::size_t>(g)] = 1;
  };
  if (static_groups) {
    for (std::int64_t g = 0; g < groups; ++g) choose_group(g);
  }
  // Columns are visited in `order`; the remaining ones are those not yet quantized.
  std::vector<char> done(static_cast<std::size_t>(d), 0);
  for (const std::int64_t j : order) {
    const std::int64_t g = j / group;
    if (!chosen[static_cast<std::size_t>(g)]) choose_group(g);
    const double pivot = hinv(j, j);
    for (std::int64_t r = 0; r < rows; ++r) {
      const double value = wd(r, j);
      const float q = quantizer.fake_quant(static_cast<float>(value), ref.params[static_cast<std::size_t>(r * groups + g)]);
      ref.dequantized(r, j) = q;
      const double err = value - q;
      for (std::int64_t c = 0; c < d; ++c) {
        if (!done[static_cast<std::size_t>(c)] && c != j) wd(r, c) -= err * hinv(j, c) / pivot;
      }
    }
    done[static_cast<std::size_t>(j)] = 1;
    const Eigen::VectorXd column = hinv.col(j);
    hinv -= column * column.transpose() / pivot;
  }
  return ref;
}

struct Case {
  QuantSpec spec;
  bool act_order;
  bool static_groups;
  int block;
  std::int64_t rows, d;
};

std::string describe(const Case& c) {
  return fmt::format("{} act_order={} static={} block={} {}x{}", formats::describe(c.spec), c.act_order,
                     c.static_groups, c.block, c.rows, c.d);
}

std::vector<Case> cases() {
  using formats::make_spec;
  std::vector<Case> out;
  const QuantSpec specs[] = {
      make_spec(Format::mxfp4, 32, true, ScaleSearch::absmax), make_spec(Format::mxfp4, 32, true, ScaleSearch::mse),
      make_spec(Format::nvfp4, 16, true, ScaleSearch::absmax), make_spec(Format::nvfp4, 16, true, ScaleSearch::mse),
      make_spec(Format::int4, 32, true, ScaleSearch::absmax),  make_spec(Format::int4, 32, false, ScaleSearch::absmax),
      make_spec(Format::int4, 64, false, ScaleSearch::mse),    make_spec(Format::int4, 0, true, ScaleSearch::absmax),
  };
  int i = 0;
  for (const auto& spec : specs) {
    for (const bool act : {false, true}) {
      for (const bool fixed : {false, true}) {
        // Batches that straddle groups (24 vs 16/32), that are smaller than a group, and the default.
        const int blocks[] = {24, 8, 128};
        const std::int64_t shapes[][2] = {{24, 64}, {40, 128}, {32, 96}};
        std::int64_t d = shapes[i % 3][1];
        if (spec.group_size != 0 && d % spec.group_size != 0) d = 128;
        out.push_back({spec, act, fixed, blocks[i % 3], shapes[i % 3][0], d});
        ++i;
      }
    }
  }
  return out;
}

TEST(Gptq, MatchesColumnByColumnReference) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Problem p = make_problem(c.rows, c.d, 3 * c.d, 11u + static_cast<std::uint32_t>(c.d + c.block));
    GptqOptions options;
    options.block_size = c.block;
    options.act_order = c.act_order;
    options.static_groups = c.static_groups;
    const LayerResult got = gptq(p.w.view(), p.h, c.spec, options, "test.layer");
    const Reference want = reference_gptq(p.w, p.h, c.spec, options.damp, c.act_order, c.static_groups);

    std::int64_t differing = 0;
    for (std::size_t k = 0; k < got.dequantized.data.size(); ++k) {
      if (got.dequantized.data[k] != want.dequantized.data[k]) ++differing;
    }
    // Rounding ties may flip a handful of codes between the two orders of arithmetic.
    EXPECT_LE(differing, 3) << "of " << got.dequantized.data.size();
    const double got_obj = layer_objective(p.w.view(), got.dequantized.view(), p.h);
    const double want_obj = layer_objective(p.w.view(), want.dequantized.view(), p.h);
    EXPECT_NEAR(got_obj, want_obj, 1e-5 * want_obj);
    if (differing == 0) {
      // Same group parameters as the reference chose.
      for (std::int64_t r = 0; r < c.rows; ++r) {
        for (std::int64_t g = 0; g < got.quantized.groups_per_row(); ++g) {
          const auto a = got.quantized.params(r, g);
          const auto b = want.params[static_cast<std::size_t>(r * got.quantized.groups_per_row() + g)];
          ASSERT_EQ(a.scale, b.scale) << "row " << r << " group " << g;
          ASSERT_EQ(a.zero, b.zero) << "row " << r << " group " << g;
        }
      }
    }
  }
}

TEST(Gptq, PackedResultDequantizesToTheSameBits) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(describe(c));
    const Problem p = make_problem(c.rows, c.d, 2 * c.d, 5u, Tails::heavy);
    GptqOptions options;
    options.block_size = c.block;
    options.act_order = c.act_order;
    options.static_groups = c.static_groups;
    const LayerResult got = gptq(p.w.view(), p.h, c.spec, options, "test.layer");
    Matrix unpacked(c.rows, c.d);
    formats::dequantize(got.quantized, unpacked.view());
    ASSERT_EQ(0, std::memcmp(unpacked.data.data(), got.dequantized.data.data(), unpacked.data.size() * sizeof(float)));
  }
}

TEST(Gptq, StaticGroupsUseScalesOfTheUnquantizedWeights) {
  const auto spec = formats::make_spec(Format::nvfp4, 16, true, ScaleSearch::mse);
  const Problem p = make_problem(32, 128, 256, 3u);
  GptqOptions options;
  options.static_groups = true;
  const LayerResult got = gptq(p.w.view(), p.h, spec, options, "test.layer");
  const formats::GroupQuantizer quantizer(spec, formats::tensor_global_scale(spec, p.w.data));
  for (std::int64_t r = 0; r < p.w.rows; ++r) {
    for (std::int64_t g = 0; g < 8; ++g) {
      const auto want = quantizer.choose(p.w.view().row(r).subspan(static_cast<std::size_t>(g * 16), 16));
      EXPECT_EQ(got.quantized.params(r, g).scale, want.scale);
      EXPECT_EQ(got.quantized.params(r, g).scale_code, want.scale_code);
    }
  }
}

// Objective margins (GPTQ / RTN) are recorded in docs/modules/quantizers.md.
TEST(Gptq, ObjectiveNoWorseThanRoundToNearest) {
  using formats::make_spec;
  const QuantSpec specs[] = {
      make_spec(Format::mxfp4, 32, true, ScaleSearch::absmax), make_spec(Format::nvfp4, 16, true, ScaleSearch::absmax),
      make_spec(Format::nvfp4, 16, true, ScaleSearch::mse),    make_spec(Format::int4, 32, true, ScaleSearch::absmax),
      make_spec(Format::int4, 128, false, ScaleSearch::absmax), make_spec(Format::int4, 0, true, ScaleSearch::mse),
  };
  for (const Tails tails : {Tails::gaussian, Tails::heavy}) {
    const Problem p = make_problem(64, 256, 512, 21u, tails);
    for (const auto& spec : specs) {
      SCOPED_TRACE(formats::describe(spec) + (tails == Tails::heavy ? " heavy" : " gaussian"));
      const double base = layer_objective(p.w.view(), rtn(p.w.view(), spec).dequantized.view(), p.h);
      for (const bool act : {false, true}) {
        for (const bool fixed : {false, true}) {
          GptqOptions options;
          options.act_order = act;
          options.static_groups = fixed;
          const double obj = layer_objective(p.w.view(), gptq(p.w.view(), p.h, spec, options).dequantized.view(), p.h);
          EXPECT_LT(obj, base) << "act_order=" << act << " static=" << fixed;
          RecordProperty(fmt::format("{}_{}_act{}_static{}", formats::describe(spec),
                                     tails == Tails::heavy ? "heavy" : "gauss", act, fixed),
                         fmt::format("{:.4f}", obj / base));
        }
      }
    }
  }
}

TEST(Gptq, RejectsBadShapesAndWeights) {
  const auto spec = formats::make_spec(Format::mxfp4, 32, true, ScaleSearch::absmax);
  Problem p = make_problem(8, 64, 128, 1u);
  const Eigen::MatrixXd wrong = Eigen::MatrixXd::Identity(32, 32);
  try {
    gptq(p.w.view(), wrong, spec, {}, "model.layers.3.mlp.up_proj");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.3.mlp.up_proj"), std::string::npos) << e.what();
  }
  Problem odd = make_problem(8, 48, 96, 1u);
  EXPECT_THROW(gptq(odd.w.view(), odd.h, spec, {}, "odd"), Error);
  p.w(2, 5) = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(gptq(p.w.view(), p.h, spec, {}, "nan"), Error);
  GptqOptions bad;
  bad.block_size = 0;
  Problem ok = make_problem(8, 64, 128, 1u);
  EXPECT_THROW(gptq(ok.w.view(), ok.h, spec, bad, "block"), Error);
}

}  // namespace
}  // namespace microscale::quantizers
