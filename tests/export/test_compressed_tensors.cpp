// The compressed-tensors layout: round trips through safetensors, and an independent decoder written
// from the documented layout (not from our dequantizer) must agree with formats::dequantize.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "microscale/core/error.hpp"
#include "microscale/export/compressed_tensors.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/io/safetensors.hpp"
#include "support/temp_dir.hpp"

namespace microscale {
namespace {

using formats::Format;
using formats::QuantSpec;

Matrix random_matrix(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> heavy(4.0f);
  Matrix m(rows, cols);
  for (auto& x : m.data) x = 0.02f * heavy(rng);
  return m;
}

// Writes the tensors of one linear into <dir>/model.safetensors.
io::Checkpoint write_linear(const testing::TempDir& dir, const formats::QuantizedMatrix& q) {
  io::SafetensorsWriter writer;
  for (auto& t : exporter::compressed_linear_tensors("model.layers.0.mlp.up_proj", q)) {
    writer.add(t.name, t.dtype, t.shape, std::move(t.data));
  }
  writer.write(dir / "model.safetensors");
  return io::Checkpoint(dir.path());
}

// E2M1 by table, E4M3 by its bit formula: written independently of the library's codecs.
float e2m1_value(unsigned nibble) {
  static const float magnitude[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
  return (nibble & 8u ? -1.0f : 1.0f) * magnitude[nibble & 7u];
}
float e4m3_value(unsigned bits) {
  const int sign = bits >> 7, exponent = (bits >> 3) & 0xF, mantissa = bits & 7;
  const float v = exponent == 0 ? std::ldexp(mantissa / 8.0f, -6) : std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
  return sign ? -v : v;
}

template <typename T>
std::vector<T> tensor_values(const io::Checkpoint& c, const std::string& name) {
  const auto& t = c.at(name);
  std::vector<T> v(t.bytes.size() / sizeof(T));
  std::memcpy(v.data(), t.bytes.data(), v.size() * sizeof(T));
  return v;
}

Matrix decode_by_layout(const io::Checkpoint& c, const QuantSpec& spec, std::int64_t rows, std::int64_t cols) {
  const std::string p = "model.layers.0.mlp.up_proj";
  Matrix out(rows, cols);
  const std::int64_t group = spec.group_for(cols);
  const std::int64_t groups = cols / group;
  if (spec.format == Format::int4) {
    const auto words = tensor_values<std::int32_t>(c, p + ".weight_packed");
    const auto& scale_t = c.at(p + ".weight_scale");
    std::vector<float> scales(static_cast<std::size_t>(rows * groups));
    io::to_f32(scale_t, scales);
    std::vector<std::int32_t> zp_words;
    if (!spec.symmetric) zp_words = tensor_values<std::int32_t>(c, p + ".weight_zero_point");
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t k = 0; k < cols; ++k) {
        const auto word = static_cast<std::uint32_t>(words[static_cast<std::size_t>(r * (cols / 8) + k / 8)]);
        const int q = static_cast<int>((word >> (4 * (k % 8))) & 0xF) - 8;  // signed value, offset 8
        int zp = 0;
        if (!spec.symmetric) {
          const auto zw = static_cast<std::uint32_t>(zp_words[static_cast<std::size_t>((r / 8) * groups + k / group)]);
          zp = static_cast<int>((zw >> (4 * (r % 8))) & 0xF) - 8;
        }
        out(r, k) = static_cast<float>(q - zp) * scales[static_cast<std::size_t>(r * groups + k / group)];
      }
    }
    return out;
  }
  const auto packed = tensor_values<std::uint8_t>(c, p + ".weight_packed");
  const auto scale_codes = tensor_values<std::uint8_t>(c, p + ".weight_scale");
  const float global = spec.format == Format::nvfp4 ? tensor_values<float>(c, p + ".weight_global_scale")[0] : 1.0f;
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t k = 0; k < cols; ++k) {
      const std::uint8_t byte = packed[static_cast<std::size_t>((r * cols + k) / 2)];
      const unsigned nibble = k % 2 == 0 ? byte & 0xF : byte >> 4;
      const std::uint8_t s = scale_codes[static_cast<std::size_t>(r * groups + k / group)];
      const float scale = spec.format == Format::nvfp4 ? e4m3_value(s) / global : std::ldexp(1.0f, int(s) - 127);
      out(r, k) = e2m1_value(nibble) * scale;
    }
  }
  return out;
}

struct Case {
  const char* name;
  QuantSpec spec;
};

class CompressedTensorsLayout : public ::testing::TestWithParam<Case> {};

TEST_P(CompressedTensorsLayout, RoundTripsAndMatchesTheDocumentedLayout) {
  const QuantSpec spec = GetParam().spec;
  const std::int64_t rows = 24, cols = 256;  // rows not a multiple of 8: exercises zero-point padding
  const Matrix w = random_matrix(rows, cols, 7);
  const formats::QuantizedMatrix q = formats::quantize(w.view(), spec, "w");
  testing::TempDir dir;
  const io::Checkpoint checkpoint = write_linear(dir, q);

  const formats::QuantizedMatrix back = exporter::read_compressed_linear(checkpoint, "model.layers.0.mlp.up_proj", spec);
  EXPECT_EQ(back.rows, rows);
  EXPECT_EQ(back.cols, cols);
  EXPECT_EQ(back.codes, q.codes);
  EXPECT_EQ(back.scale_codes, q.scale_codes);
  EXPECT_EQ(back.scales, q.scales);
  EXPECT_EQ(back.zeros, q.zeros);
  EXPECT_EQ(back.global_scale, q.global_scale);

  Matrix ours(rows, cols);
  formats::dequantize(q, ours.view());
  const Matrix independent = decode_by_layout(checkpoint, spec, rows, cols);
  for (std::size_t i = 0; i < ours.data.size(); ++i) ASSERT_EQ(ours.data[i], independent.data[i]) << "element " << i;
  // And the quantization is real: values differ from the input but stay close.
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < ours.data.size(); ++i) {
    err += std::pow(ours.data[i] - w.data[i], 2);
    norm += std::pow(w.data[i], 2);
  }
  EXPECT_GT(err / norm, 1e-4);
  EXPECT_LT(err / norm, 0.05);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, CompressedTensorsLayout,
    ::testing::Values(
        Case{"nvfp4", formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::absmax)},
        Case{"nvfp4_mse", formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::mse)},
        Case{"mxfp4", formats::make_spec(Format::mxfp4, 32, true, formats::ScaleSearch::absmax)},
        Case{"int4_g32", formats::make_spec(Format::int4, 32, true, formats::ScaleSearch::absmax)},
        Case{"int4_g64_asym", formats::make_spec(Format::int4, 64, false, formats::ScaleSearch::absmax)},
        Case{"int4_channel", formats::make_spec(Format::int4, 0, true, formats::ScaleSearch::mse)}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(QuantizationConfig, RoundTripsSpecAndRotation) {
  for (const auto& spec : {formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::mse),
                           formats::make_spec(Format::mxfp4, 32, true, formats::ScaleSearch::absmax,
                                              formats::MxRounding::no_clip),
                           formats::make_spec(Format::int4, 128, false, formats::ScaleSearch::absmax),
                           formats::make_spec(Format::int4, 0, true, formats::ScaleSearch::absmax)}) {
    const rotation::RotationSpec rot{32, true, 1234};
    const auto json = exporter::quantization_config(spec, rot, {"lm_head"});
    EXPECT_EQ(json.at("quant_method"), "compressed-tensors");
    EXPECT_EQ(json.at("ignore"), nlohmann::json({"lm_head"}));
    const auto parsed = exporter::parse_quantization_config(json, "config.json");
    EXPECT_EQ(parsed.spec.format, spec.format);
    EXPECT_EQ(parsed.spec.group_size, spec.group_size);
    EXPECT_EQ(parsed.spec.symmetric, spec.symmetric);
    EXPECT_EQ(parsed.spec.scale, spec.scale);
    EXPECT_EQ(parsed.spec.mx_rounding, spec.mx_rounding);
    EXPECT_EQ(parsed.rotation.block, 32);
    EXPECT_TRUE(parsed.rotation.random_signs);
    EXPECT_EQ(parsed.rotation.seed, 1234u);
  }
  const auto nv = exporter::quantization_config(formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::absmax),
                                                {}, {});
  EXPECT_EQ(nv.at("format"), "nvfp4-pack-quantized");
  EXPECT_EQ(nv.at("config_groups").at("group_0").at("weights").at("strategy"), "tensor_group");
  EXPECT_FALSE(nv.at("microscale").contains("rotation"));
}

TEST(QuantizationConfig, RejectsWhatItCannotRepresent) {
  auto json = exporter::quantization_config(formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::absmax),
                                            {}, {});
  json["format"] = "marlin-24";
  try {
    exporter::parse_quantization_config(json, "/m/config.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/m/config.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("marlin-24"), std::string::npos);
  }
  json["quant_method"] = "gptq";
  EXPECT_THROW(exporter::parse_quantization_config(json, "config.json"), Error);
}

TEST(ReadCompressedLinear, NamesTheTensorOnAWrongShape) {
  const QuantSpec spec = formats::make_spec(Format::nvfp4, 16, true, formats::ScaleSearch::absmax);
  const Matrix w = random_matrix(8, 64, 3);
  auto q = formats::quantize(w.view(), spec, "w");
  testing::TempDir dir;
  io::SafetensorsWriter writer;
  for (auto& t : exporter::compressed_linear_tensors("x", q)) {
    if (t.name == "x.weight_scale") t.shape = {4, 8};  // same bytes, wrong shape
    writer.add(t.name, t.dtype, t.shape, std::move(t.data));
  }
  writer.write(dir / "model.safetensors");
  const io::Checkpoint c(dir.path());
  try {
    exporter::read_compressed_linear(c, "x", spec);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.weight_scale"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("shape"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace microscale
