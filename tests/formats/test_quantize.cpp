// Whole-matrix quantization against the slow references in reference.hpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/quantize.hpp"
#include "reference.hpp"

namespace mf = microscale::formats;
using microscale::ConstMatrixView;
using microscale::Matrix;

namespace {

// Rows with varied character: Gaussian rows, heavy-tailed rows, rows with a few large outliers,
// all-zero groups, tiny values, and huge values, so every branch of the scale rules is exercised.
Matrix test_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::student_t_distribution<float> heavy(2.0f);
  Matrix m(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const int kind = static_cast<int>(r % 6);
    const float row_scale = std::pow(10.0f, static_cast<float>(static_cast<int>(rng() % 9)) - 5.0f);
    for (std::int64_t c = 0; c < cols; ++c) {
      float x = kind == 1 ? heavy(rng) : normal(rng);
      if (kind == 2 && rng() % 17 == 0) x *= 40.0f;
      if (kind == 3 && (c / 16) % 3 == 1) x = 0.0f;  // zero groups at group sizes 16/32 and zero stretches
      if (kind == 4) x *= 1e-30f;                      // tiny (E4M3/E8M0 underflow paths)
      if (kind == 5) x *= 1e30f;
      m(r, c) = x * row_scale;
    }
  }
  return m;
}

struct Case {
  mf::Format format;
  int group;
  bool symmetric;
  mf::MxRounding rounding;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (auto r : {mf::MxRounding::ocp, mf::MxRounding::no_clip, mf::MxRounding::even})
    cases.push_back({mf::Format::mxfp4, 32, true, r});
  cases.push_back({mf::Format::nvfp4, 16, true, mf::MxRounding::ocp});
  for (int g : {32, 64, 128, 0})
    for (bool sym : {true, false}) cases.push_back({mf::Format::int4, g, sym, mf::MxRounding::ocp});
  return cases;
}

std::string name_of(const mf::QuantSpec& s) { return mf::describe(s); }

std::uint8_t code_at(const mf::QuantizedMatrix& q, std::int64_t r, std::int64_t c) {
  const std::uint8_t byte = q.codes[static_cast<std::size_t>((r * q.cols + c) / 2)];
  return (c % 2 == 0) ? (byte & 0xF) : (byte >> 4);
}

ref::Params ref_absmax(const mf::QuantSpec& spec, std::span<const float> g, float global) {
  switch (spec.format) {
    case mf::Format::mxfp4: return ref::mxfp4_absmax(g, spec.mx_rounding);
    case mf::Format::nvfp4: return ref::nvfp4_absmax(g, global);
    case mf::Format::int4: return ref::int4_absmax(g, spec.symmetric);
  }
  return {};
}

std::vector<ref::Params> ref_candidates(const mf::QuantSpec& spec, std::span<const float> g, float global) {
  switch (spec.format) {
    case mf::Format::mxfp4: return ref::mxfp4_candidates(g, spec.mx_rounding);
    case mf::Format::nvfp4: return ref::nvfp4_candidates(g, global);
    case mf::Format::int4: return ref::int4_candidates(g, spec.symmetric);
  }
  return {};
}

ref::Params params_of(const mf::QuantizedMatrix& q, std::int64_t r, std::int64_t g) {
  const mf::GroupParams p = q.params(r, g);
  return {p.scale, p.zero, q.spec.format == mf::Format::int4 ? std::uint8_t{0} : p.scale_code};
}

double ref_global(const mf::QuantSpec& spec, const Matrix& w) {
  if (spec.format != mf::Format::nvfp4) return 1.0;
  return 2688.0f / ref::amax_of(w.data);
}

}  // namespace

// Absmax: every scale, zero point and code equals the reference, bit for bit.
TEST(Quantize, AbsmaxMatchesReferenceBitExactly) {
  const Matrix w = test_matrix(24, 256, 11);
  for (const Case& k : all_cases()) {
    const auto spec = mf::make_spec(k.format, k.group, k.symmetric, mf::ScaleSearch::absmax, k.rounding);
    SCOPED_TRACE(name_of(spec));
    const mf::QuantizedMatrix q = mf::quantize(w.view(), spec, "w");
    const auto global = static_cast<float>(ref_global(spec, w));
    ASSERT_EQ(q.global_scale, global);
    const std::int64_t group = spec.group_for(w.cols);
    for (std::int64_t r = 0; r < w.rows; ++r) {
      for (std::int64_t g = 0; g < w.cols / group; ++g) {
        const auto values = w.view().row(r).subspan(static_cast<std::size_t>(g * group), static_cast<std::size_t>(group));
        const ref::Params want = ref_absmax(spec, values, global);
        const ref::Params got = params_of(q, r, g);
        ASSERT_EQ(got.scale, want.scale) << "row " << r << " group " << g;
        ASSERT_EQ(got.zero, want.zero) << "row " << r << " group " << g;
        ASSERT_EQ(got.code, want.code) << "row " << r << " group " << g;
        for (std::int64_t i = 0; i < group; ++i)
          ASSERT_EQ(code_at(q, r, g * group + i), ref::encode(spec.format, values[i], want))
              << "row " << r << " col " << g * group + i << " x " << values[i];
      }
    }
  }
}

// MSE: the chosen parameters are one of the reference candidates, their error is the least among
// them (up to float summation in the fast path), and never more than absmax's, group by group.
TEST(Quantize, MseScalesAreCandidatesAndNeverWorseThanAbsmax) {
  const Matrix w = test_matrix(24, 256, 12);
  for (const Case& k : all_cases()) {
    const auto spec = mf::make_spec(k.format, k.group, k.symmetric, mf::ScaleSearch::mse, k.rounding);
    SCOPED_TRACE(name_of(spec));
    const mf::QuantizedMatrix q = mf::quantize(w.view(), spec, "w");
    const float global = q.global_scale;
    const std::int64_t group = spec.group_for(w.cols);
    int improved = 0;
    for (std::int64_t r = 0; r < w.rows; ++r) {
      for (std::int64_t g = 0; g < w.cols / group; ++g) {
        const auto values = w.view().row(r).subspan(static_cast<std::size_t>(g * group), static_cast<std::size_t>(group));
        const ref::Params got = params_of(q, r, g);
        const auto candidates = ref_candidates(spec, values, global);
        bool found = false;
        double least = INFINITY;
        for (const auto& c : candidates) {
          found = found || c == got;
          least = std::min(least, ref::squared_error(spec.format, values, c));
        }
        ASSERT_TRUE(found) << "row " << r << " group " << g << " scale " << got.scale << " zero " << got.zero;
        const double err = ref::squared_error(spec.format, values, got);
        const double absmax_err = ref::squared_error(spec.format, values, ref_absmax(spec, values, global));
        const double slack = 1e-5 * absmax_err + 1e-300;
        ASSERT_LE(err, absmax_err + slack) << "row " << r << " group " << g;
        ASSERT_LE(err, least + 1e-5 * least + 1e-300) << "row " << r << " group " << g;
        improved += err < absmax_err * (1 - 1e-6);
        for (std::int64_t i = 0; i < group; ++i)
          ASSERT_EQ(code_at(q, r, g * group + i), ref::encode(spec.format, values[i], got));
      }
    }
    EXPECT_GT(improved, 0) << "MSE search never improved on absmax";
  }
}

TEST(Quantize, DequantizeDecodesEveryCode) {
  const Matrix w = test_matrix(12, 128, 13);
  for (const Case& k : all_cases()) {
    for (auto search : {mf::ScaleSearch::absmax, mf::ScaleSearch::mse}) {
      const auto spec = mf::make_spec(k.format, k.group, k.symmetric, search, k.rounding);
      SCOPED_TRACE(name_of(spec));
      const mf::QuantizedMatrix q = mf::quantize(w.view(), spec, "w");
      Matrix out(w.rows, w.cols);
      mf::dequantize(q, out.view());
      const std::int64_t group = q.group_size();
      double err = 0, norm = 0;
      for (std::int64_t r = 0; r < w.rows; ++r) {
        for (std::int64_t c = 0; c < w.cols; ++c) {
          const ref::Params p = params_of(q, r, c / group);
          ASSERT_EQ(static_cast<double>(out(r, c)), ref::decode(spec.format, code_at(q, r, c), p)) << r << "," << c;
          const double d = static_cast<double>(w(r, c)) - out(r, c);
          err += d * d;
          norm += static_cast<double>(w(r, c)) * w(r, c);
        }
      }
      EXPECT_NEAR(mf::relative_error(w.view(), q), err / norm, 1e-12 * (err / norm) + 1e-300);
      // The GroupQuantizer primitives agree with the packed result.
      const mf::GroupQuantizer gq(spec, q.global_scale);
      for (std::int64_t r = 0; r < w.rows; r += 5) {
        const mf::GroupParams p = q.params(r, 0);
        std::vector<float> fq(static_cast<std::size_t>(group));
        gq.fake_quant(w.view().row(r).subspan(0, static_cast<std::size_t>(group)), p, fq);
        for (std::int64_t c = 0; c < group; ++c) {
          ASSERT_EQ(gq.encode(w(r, c), p), code_at(q, r, c));
          ASSERT_EQ(gq.decode(code_at(q, r, c), p), out(r, c));
          ASSERT_EQ(gq.fake_quant(w(r, c), p), out(r, c));
          ASSERT_EQ(fq[static_cast<std::size_t>(c)], out(r, c));
        }
        const auto first = w.view().row(r).subspan(0, static_cast<std::size_t>(group));
        const double want = ref::squared_error(spec.format, first, params_of(q, r, 0));
        EXPECT_NEAR(gq.squared_error(first, p), want, 1e-5 * want + 1e-300);
      }
    }
  }
}

TEST(Quantize, PackWithOwnParamsReproducesQuantize) {
  const Matrix w = test_matrix(12, 256, 14);
  for (const Case& k : all_cases()) {
    for (auto search : {mf::ScaleSearch::absmax, mf::ScaleSearch::mse}) {
      const auto spec = mf::make_spec(k.format, k.group, k.symmetric, search, k.rounding);
      SCOPED_TRACE(name_of(spec));
      const mf::QuantizedMatrix q = mf::quantize(w.view(), spec, "w");
      std::vector<mf::GroupParams> params;
      for (std::int64_t r = 0; r < q.rows; ++r)
        for (std::int64_t g = 0; g < q.groups_per_row(); ++g) params.push_back(q.params(r, g));
      const mf::QuantizedMatrix p = mf::pack_with_params(w.view(), spec, q.global_scale, params, "w");
      EXPECT_EQ(p.codes, q.codes);
      EXPECT_EQ(p.scale_codes, q.scale_codes);
      EXPECT_EQ(p.scales, q.scales);
      EXPECT_EQ(p.zeros, q.zeros);
      EXPECT_EQ(p.global_scale, q.global_scale);
      // And GroupQuantizer::choose gives the same parameters group by group.
      const mf::GroupQuantizer gq(spec, q.global_scale);
      const std::int64_t group = q.group_size();
      for (std::int64_t r = 0; r < q.rows; ++r) {
        for (std::int64_t g = 0; g < q.groups_per_row(); ++g) {
          const auto values = w.view().row(r).subspan(static_cast<std::size_t>(g * group), static_cast<std::size_t>(group));
          const mf::GroupParams c = gq.choose(values);
          const mf::GroupParams s = q.params(r, g);
          ASSERT_EQ(c.scale, s.scale);
          ASSERT_EQ(c.zero, s.zero);
          if (spec.format != mf::Format::int4) {
            ASSERT_EQ(c.scale_code, s.scale_code);
          }
        }
      }
    }
  }
}

TEST(Quantize, PackWithParamsRejectsParamsACheckpointCannotHold) {
  const Matrix w = test_matrix(2, 64, 15);
  auto expect_rejected = [&](const mf::QuantSpec& spec, float global, mf::GroupParams bad, const char* fragment) {
    std::vector<mf::GroupParams> params(static_cast<std::size_t>(2 * (64 / spec.group_for(64))),
                                        mf::GroupQuantizer(spec, global).choose(w.view().row(0).subspan(0, static_cast<std::size_t>(spec.group_for(64)))));
    params[1] = bad;
    try {
      mf::pack_with_params(w.view(), spec, global, params, "layers.0.q_proj");
      FAIL() << "accepted " << fragment;
    } catch (const microscale::Error& e) {
      EXPECT_NE(std::string(e.what()).find("layers.0.q_proj"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  const auto sym = mf::make_spec(mf::Format::int4, 32, true, mf::ScaleSearch::absmax);
  const auto asym = mf::make_spec(mf::Format::int4, 32, false, mf::ScaleSearch::absmax);
  expect_rejected(sym, 1.0f, {0.1f, 8.0f, 0}, "BF16");
  expect_rejected(sym, 1.0f, {0.125f, 7.0f, 0}, "zero point 8");
  expect_rejected(asym, 1.0f, {0.125f, 16.0f, 0}, "[0, 15]");
  expect_rejected(asym, 1.0f, {0.0f, 3.0f, 0}, "positive");
  const auto mx = mf::make_spec(mf::Format::mxfp4, 32, true, mf::ScaleSearch::absmax);
  expect_rejected(mx, 1.0f, {0.5f, 0.0f, 127}, "E8M0");
  expect_rejected(mx, 1.0f, {NAN, 0.0f, 0xFF}, "NaN");
  const auto nv = mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax);
  expect_rejected(nv, 10.0f, {0.2f, 0.0f, 0x38}, "E4M3");
  expect_rejected(nv, 10.0f, {0.0f, 0.0f, 0x00}, "E4M3 scale code");
}

TEST(Quantize, NonFiniteWeightsNameTensorAndPosition) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    Matrix w = test_matrix(4, 256, 16);
    w(2, 37) = bad;
    for (const Case& k : all_cases()) {
      const auto spec = mf::make_spec(k.format, k.group, k.symmetric, mf::ScaleSearch::mse, k.rounding);
      try {
        mf::quantize(w.view(), spec, "model.layers.3.mlp.down_proj.weight");
        FAIL() << "no error for " << bad;
      } catch (const microscale::Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("model.layers.3.mlp.down_proj.weight"), std::string::npos) << msg;
        EXPECT_NE(msg.find("row 2, column 37"), std::string::npos) << msg;
      }
    }
  }
}

TEST(Quantize, ShapeErrors) {
  const Matrix w = test_matrix(3, 48, 17);
  auto message = [&](const mf::QuantSpec& spec, ConstMatrixView v) -> std::string {
    try {
      mf::quantize(v, spec, "emb");
    } catch (const microscale::Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string mx = message(mf::make_spec(mf::Format::mxfp4, 32, true, mf::ScaleSearch::absmax), w.view());
  EXPECT_NE(mx.find("48 columns is not a multiple of the group size 32"), std::string::npos) << mx;
  EXPECT_NE(mx.find("emb"), std::string::npos) << mx;
  EXPECT_NE(message(mf::make_spec(mf::Format::int4, 128, true, mf::ScaleSearch::mse), w.view()).find("group size 128"),
            std::string::npos);
  // nvfp4 (16) divides 48; per-channel int4 takes any even width.
  EXPECT_EQ(message(mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax), w.view()), "");
  EXPECT_EQ(message(mf::make_spec(mf::Format::int4, 0, false, mf::ScaleSearch::absmax), w.view()), "");
  const Matrix odd = test_matrix(2, 7, 18);
  EXPECT_NE(message(mf::make_spec(mf::Format::int4, 0, true, mf::ScaleSearch::absmax), odd.view()).find("odd"),
            std::string::npos);
  std::vector<float> short_data(10);
  EXPECT_NE(message(mf::make_spec(mf::Format::int4, 0, true, mf::ScaleSearch::absmax), ConstMatrixView(short_data, 2, 8))
                .find("holds 10 values"),
            std::string::npos);
  EXPECT_THROW(mf::make_spec(mf::Format::mxfp4, 16, true, mf::ScaleSearch::absmax), microscale::Error);
  EXPECT_THROW(mf::make_spec(mf::Format::nvfp4, 16, false, mf::ScaleSearch::absmax), microscale::Error);
  EXPECT_THROW(mf::make_spec(mf::Format::int4, 33, true, mf::ScaleSearch::absmax), microscale::Error);
  EXPECT_THROW(mf::parse_format("fp4"), microscale::Error);
  EXPECT_THROW(mf::GroupQuantizer(mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax), 0.0f),
               microscale::Error);
  Matrix wrong(3, 32);
  const auto q = mf::quantize(w.view(), mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax));
  EXPECT_THROW(mf::dequantize(q, wrong.view()), microscale::Error);
}

TEST(Quantize, AllZeroGroupsDequantizeToZeroWithDocumentedScales) {
  Matrix w(2, 256);
  for (std::int64_t c = 128; c < 256; ++c) w(1, c) = 0.01f * static_cast<float>(c - 190);
  for (const Case& k : all_cases()) {
    for (auto search : {mf::ScaleSearch::absmax, mf::ScaleSearch::mse}) {
      const auto spec = mf::make_spec(k.format, k.group, k.symmetric, search, k.rounding);
      SCOPED_TRACE(name_of(spec));
      const auto q = mf::quantize(w.view(), spec, "w");
      Matrix out(2, 256);
      mf::dequantize(q, out.view());
      for (std::int64_t c = 0; c < 256; ++c) {
        ASSERT_EQ(out(0, c), 0.0f);
        if (c < 128 && spec.group_size != 0) {
          ASSERT_EQ(out(1, c), 0.0f);
        }
      }
      const mf::GroupParams p = q.params(0, 0);
      EXPECT_TRUE(std::isfinite(p.scale) && p.scale > 0);
      switch (spec.format) {
        case mf::Format::mxfp4: EXPECT_EQ(p.scale_code, 0); break;     // 2^-127, as llama.cpp
        case mf::Format::nvfp4: EXPECT_EQ(p.scale_code, 0x20); break;  // 0.125, as compressed-tensors
        case mf::Format::int4:
          EXPECT_EQ(p.scale, 0x1p-7f);
          EXPECT_EQ(p.zero, spec.symmetric ? 8.0f : 0.0f);
          break;
      }
    }
  }
  // An all-zero tensor: NVFP4 global scale 1.
  EXPECT_EQ(mf::quantize(Matrix(2, 32).view(), mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::mse)).global_scale,
            1.0f);
}

TEST(Quantize, Nvfp4GlobalScaleConvention) {
  const Matrix w = test_matrix(6, 64, 19);
  const auto spec = mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax);
  const auto q = mf::quantize(w.view(), spec);
  const float amax = ref::amax_of(w.data);
  EXPECT_EQ(q.global_scale, 2688.0f / amax);
  EXPECT_EQ(mf::tensor_global_scale(spec, w.data), q.global_scale);
  EXPECT_EQ(mf::nvfp4_global_scale_for_amax(amax), q.global_scale);
  // The group holding the tensor's amax gets the largest scale code, 448.
  std::uint8_t largest = 0;
  for (auto c : q.scale_codes) largest = std::max(largest, c);
  EXPECT_EQ(largest, 0x7E);
  // A shared (smaller) global scale, as for fused q/k/v: every group scale is e4m3(amax/6*g).
  const float shared = q.global_scale / 3.0f;
  const auto qs = mf::quantize(w.view(), spec, shared, "q_proj");
  EXPECT_EQ(qs.global_scale, shared);
  for (std::int64_t r = 0; r < w.rows; ++r)
    for (std::int64_t g = 0; g < 4; ++g)
      ASSERT_EQ(qs.params(r, g).scale_code,
                ref::nvfp4_absmax(w.view().row(r).subspan(static_cast<std::size_t>(16 * g), 16), shared).code);
  // Dequantized value = e2m1 * (e4m3 scale / global).
  Matrix out(w.rows, w.cols);
  mf::dequantize(qs, out.view());
  EXPECT_EQ(static_cast<double>(out(0, 0)),
            static_cast<double>(static_cast<float>(ref::e2m1_value(code_at(qs, 0, 0))) *
                                (static_cast<float>(ref::e4m3_value(qs.scale_codes[0])) / shared)));
}

TEST(Quantize, MxRoundingRulesOnKnownGroups) {
  // amax = 7 = 1.75 * 2^2: ocp -> 2^0 (7 clips to 6), no_clip -> 2^1, even -> 2^1.
  // amax = 6 = 1.5 * 2^2: ocp, no_clip and even -> 2^0 (6 fits exactly).
  // amax = 6.5: ocp -> 2^0, no_clip -> 2^1, even -> 2^0 (1.625 < 1.75).
  struct Row { float amax; int ocp, no_clip, even; };
  for (const Row& t : {Row{7.0f, 0, 1, 1}, Row{6.0f, 0, 0, 0}, Row{6.5f, 0, 1, 0}, Row{1.0f, -2, -2, -2},
                       Row{0.875f, -3, -2, -2}}) {
    std::vector<float> g(32, 0.1f);
    g[5] = -t.amax;
    for (auto [rule, want] : {std::pair{mf::MxRounding::ocp, t.ocp}, std::pair{mf::MxRounding::no_clip, t.no_clip},
                              std::pair{mf::MxRounding::even, t.even}}) {
      const auto spec = mf::make_spec(mf::Format::mxfp4, 32, true, mf::ScaleSearch::absmax, rule);
      const auto p = mf::GroupQuantizer(spec, 1.0f).choose(g);
      EXPECT_EQ(static_cast<int>(p.scale_code) - 127, want) << t.amax << " " << mf::mx_rounding_name(rule);
    }
  }
}

TEST(Quantize, Int4SymmetricScaleIsAmaxOver7p5InBf16) {
  std::vector<float> g(32, 0.0f);
  g[3] = 1.0f;
  g[9] = -3.0f;  // amax 3 -> 0.4 -> BF16 0.400390625
  const auto spec = mf::make_spec(mf::Format::int4, 32, true, mf::ScaleSearch::absmax);
  const mf::GroupQuantizer gq(spec, 1.0f);
  const auto p = gq.choose(g);
  EXPECT_EQ(p.scale, 0.400390625f);
  EXPECT_EQ(p.zero, 8.0f);
  EXPECT_EQ(gq.encode(-3.0f, p), 1u);  // -3 / 0.4004 = -7.49 -> -7 -> u = 1
  EXPECT_EQ(gq.encode(3.0f, p), 15u);  // 7.49 -> 7 -> u = 15
  const auto asym = mf::make_spec(mf::Format::int4, 32, false, mf::ScaleSearch::absmax);
  const auto pa = mf::GroupQuantizer(asym, 1.0f).choose(g);
  EXPECT_EQ(pa.scale, ref::bf16_round(4.0f / 15.0f));
  EXPECT_EQ(pa.zero, std::nearbyint(3.0f / pa.scale));
}

TEST(Quantize, SizesAndBitsPerWeight) {
  struct Row { mf::QuantSpec spec; double bits; };
  const std::int64_t rows = 6, cols = 256;
  for (const Row& t : {Row{mf::make_spec(mf::Format::mxfp4, 32, true, mf::ScaleSearch::absmax), 4.25},
                       Row{mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax), 4.5},
                       Row{mf::make_spec(mf::Format::int4, 32, true, mf::ScaleSearch::absmax), 4.5},
                       Row{mf::make_spec(mf::Format::int4, 128, true, mf::ScaleSearch::absmax), 4.125},
                       Row{mf::make_spec(mf::Format::int4, 128, false, mf::ScaleSearch::absmax), 4.15625},
                       Row{mf::make_spec(mf::Format::int4, 0, false, mf::ScaleSearch::absmax), 4.0 + 20.0 / 256}}) {
    SCOPED_TRACE(mf::describe(t.spec));
    EXPECT_DOUBLE_EQ(mf::bits_per_weight(t.spec, cols), t.bits);
    const auto q = mf::quantize(test_matrix(rows, cols, 20).view(), t.spec);
    const double global_bytes = t.spec.format == mf::Format::nvfp4 ? 4.0 : 0.0;
    EXPECT_DOUBLE_EQ(static_cast<double>(q.storage_bytes()), t.bits * rows * cols / 8 + global_bytes);
    EXPECT_EQ(q.codes.size(), static_cast<std::size_t>(rows * cols / 2));
  }
}

TEST(Quantize, NamesRoundTrip) {
  for (auto f : {mf::Format::mxfp4, mf::Format::nvfp4, mf::Format::int4}) EXPECT_EQ(mf::parse_format(mf::format_name(f)), f);
  for (auto r : {mf::MxRounding::ocp, mf::MxRounding::no_clip, mf::MxRounding::even})
    EXPECT_EQ(mf::parse_mx_rounding(mf::mx_rounding_name(r)), r);
  EXPECT_EQ(mf::describe(mf::make_spec(mf::Format::int4, 0, false, mf::ScaleSearch::mse)), "int4 per-channel asym mse");
  EXPECT_EQ(mf::describe(mf::make_spec(mf::Format::mxfp4, 0, true, mf::ScaleSearch::absmax)), "mxfp4 g32 absmax ocp");
  EXPECT_EQ(mf::describe(mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::mse)), "nvfp4 g16 mse");
}

// choose() is also called by GPTQ-style code on updated weights, outside quantize()'s input checks:
// it must never return a zero, infinite or NaN scale, even for extreme or non-finite groups.
TEST(Quantize, ChooseNeverReturnsABadScale) {
  std::vector<std::vector<float>> groups;
  groups.push_back(std::vector<float>(32, 3e38f));
  groups.push_back(std::vector<float>(32, -3e38f));
  groups.back()[7] = 3e38f;
  groups.push_back(std::vector<float>(32, 1e-44f));
  groups.push_back(std::vector<float>(32, NAN));
  groups.push_back(std::vector<float>(32, 0.5f));
  groups.back()[0] = NAN;
  groups.push_back(std::vector<float>(32, INFINITY));
  for (const Case& k : all_cases()) {
    for (auto search : {mf::ScaleSearch::absmax, mf::ScaleSearch::mse}) {
      const auto spec = mf::make_spec(k.format, k.group == 0 ? 32 : k.group, k.symmetric, search, k.rounding);
      const mf::GroupQuantizer gq(spec, 2.5f);
      for (const auto& g : groups) {
        const auto p = gq.choose(std::span<const float>(g).subspan(0, static_cast<std::size_t>(std::min(32, spec.group_size))));
        EXPECT_TRUE(std::isfinite(p.scale) && p.scale > 0.0f) << mf::describe(spec) << " first value " << g[0];
        EXPECT_TRUE(p.zero >= 0.0f && p.zero <= 15.0f);
      }
    }
  }
}
