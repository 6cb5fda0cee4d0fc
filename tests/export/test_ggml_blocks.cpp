// ggml blocks: blocks whose codes and scales are chosen by hand decode to the floats written out here;
// conversion from our QuantizedMatrix puts each nibble where ggml-common.h says; and random matrices
// decode through the blocks to exactly what formats::dequantize gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "microscale/core/error.hpp"
#include "microscale/export/ggml_blocks.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/quantize.hpp"

namespace microscale {
namespace {

namespace ggml = exporter::ggml;
using formats::Format;

// E2M1 values of the 16 codes (sign in bit 3).
constexpr float kE2M1[16] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6, -0.0f, -0.5f, -1, -1.5f, -2, -3, -4, -6};

formats::QuantizedMatrix one_row(Format format, int group, std::int64_t cols, std::vector<std::uint8_t> nibbles) {
  formats::QuantizedMatrix q;
  q.spec = formats::make_spec(format, group, true, formats::ScaleSearch::absmax);
  q.rows = 1;
  q.cols = cols;
  q.codes.resize(static_cast<std::size_t>(cols / 2));
  for (std::int64_t k = 0; k < cols; ++k) {
    q.codes[static_cast<std::size_t>(k / 2)] |= static_cast<std::uint8_t>(nibbles[static_cast<std::size_t>(k)] << (4 * (k % 2)));
  }
  return q;
}

std::vector<float> decode(ggml::Type type, const std::vector<std::byte>& bytes, std::size_t n) {
  std::vector<float> out(n);
  ggml::dequantize(type, bytes, out);
  return out;
}

TEST(GgmlBlocks, Sizes) {
  EXPECT_EQ(ggml::traits(ggml::Type::q4_0).block_bytes, 18u);
  EXPECT_EQ(ggml::traits(ggml::Type::mxfp4).block_bytes, 17u);
  EXPECT_EQ(ggml::traits(ggml::Type::nvfp4).block_bytes, 36u);
  EXPECT_EQ(ggml::row_bytes(ggml::Type::nvfp4, 256, "t"), 4u * 36u);
  EXPECT_THROW(ggml::row_bytes(ggml::Type::nvfp4, 32, "t"), Error);
  EXPECT_FALSE(ggml::traits(12u).has_value());
  EXPECT_EQ(ggml::type_name(40), "NVFP4");
}

TEST(GgmlBlocks, Mxfp4BlockByHand) {
  // Element k has code k % 16, the block's exponent byte is 129: scale 2^(129-127) = 4.
  std::vector<std::uint8_t> nib(32);
  for (int k = 0; k < 32; ++k) nib[k] = static_cast<std::uint8_t>(k % 16);
  auto q = one_row(Format::mxfp4, 32, 32, nib);
  q.scale_codes = {129};
  const auto bytes = ggml::to_blocks(q, "t");
  ASSERT_EQ(bytes.size(), 17u);
  EXPECT_EQ(std::to_integer<int>(bytes[0]), 129);
  // Byte j holds element j (low) and element j + 16 (high): both have code j here.
  for (int j = 0; j < 16; ++j) EXPECT_EQ(std::to_integer<int>(bytes[1 + j]), j | (j << 4)) << j;
  const std::vector<float> expected = {0, 2, 4, 6, 8, 12, 16, 24, 0, -2, -4, -6, -8, -12, -16, -24,
                                       0, 2, 4, 6, 8, 12, 16, 24, 0, -2, -4, -6, -8, -12, -16, -24};
  EXPECT_EQ(decode(ggml::Type::mxfp4, bytes, 32), expected);
}

TEST(GgmlBlocks, Mxfp4ExtremeExponents) {
  std::vector<std::uint8_t> nib(32, 1);  // 0.5
  nib[16] = 7;                           // 6
  auto q = one_row(Format::mxfp4, 32, 32, nib);
  q.scale_codes = {0};  // 2^-127: 0.5 * 2^-127 = 2^-128 is a float subnormal
  auto v = decode(ggml::Type::mxfp4, ggml::to_blocks(q, "t"), 32);
  EXPECT_EQ(v[0], std::ldexp(1.0f, -128));
  EXPECT_EQ(v[16], 6 * std::ldexp(1.0f, -127));
  q.scale_codes = {254};  // 2^127
  v = decode(ggml::Type::mxfp4, ggml::to_blocks(q, "t"), 32);
  EXPECT_EQ(v[0], std::ldexp(1.0f, 126));
  q.scale_codes = {255};  // NaN in E8M0: refused
  EXPECT_THROW(ggml::to_blocks(q, "t"), Error);
}

TEST(GgmlBlocks, Nvfp4BlockByHand) {
  // Element k has code (3k) % 16; the four 16-element groups have E4M3 scales 1, 2, 0.5 and 448.
  std::vector<std::uint8_t> nib(64);
  for (int k = 0; k < 64; ++k) nib[k] = static_cast<std::uint8_t>((3 * k) % 16);
  auto q = one_row(Format::nvfp4, 16, 64, nib);
  q.scale_codes = {0x38, 0x40, 0x30, 0x7E};
  q.global_scale = 4.0f;
  const auto bytes = ggml::to_blocks(q, "t");
  ASSERT_EQ(bytes.size(), 36u);
  EXPECT_EQ(std::to_integer<int>(bytes[0]), 0x38);
  EXPECT_EQ(std::to_integer<int>(bytes[3]), 0x7E);
  // Sub-block 1, byte 2: element 16 + 2 (low) and 16 + 2 + 8 (high).
  EXPECT_EQ(std::to_integer<int>(bytes[4 + 8 + 2]), ((3 * 18) % 16) | (((3 * 26) % 16) << 4));
  const float scales[4] = {1.0f, 2.0f, 0.5f, 448.0f};
  const auto v = decode(ggml::Type::nvfp4, bytes, 64);
  for (int k = 0; k < 64; ++k) EXPECT_EQ(v[k], kE2M1[(3 * k) % 16] * scales[k / 16]) << k;
  EXPECT_EQ(ggml::nvfp4_tensor_scale(4.0f), 0.25f);
}

TEST(GgmlBlocks, Nvfp4SubnormalScaleAndRefusedCodes) {
  std::vector<std::uint8_t> nib(64, 7);  // 6
  auto q = one_row(Format::nvfp4, 16, 64, nib);
  q.scale_codes = {0x01, 0x00, 0x07, 0x08};  // 2^-9, 0, 7 * 2^-9, 2^-6
  const auto v = decode(ggml::Type::nvfp4, ggml::to_blocks(q, "t"), 64);
  EXPECT_EQ(v[0], 6 * std::ldexp(1.0f, -9));
  EXPECT_EQ(v[16], 0.0f);
  EXPECT_EQ(v[32], 6 * 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(v[48], 6 * std::ldexp(1.0f, -6));
  q.scale_codes = {0x38, 0x7F, 0x38, 0x38};  // NaN in E4M3fn, zero in ggml: refused
  EXPECT_THROW(ggml::to_blocks(q, "t"), Error);
  q.scale_codes = {0x38, 0xB8, 0x38, 0x38};  // -1: ggml's E4M3 is unsigned
  EXPECT_THROW(ggml::to_blocks(q, "t"), Error);
  auto narrow = one_row(Format::nvfp4, 16, 32, std::vector<std::uint8_t>(32, 1));
  narrow.scale_codes = {0x38, 0x38};
  EXPECT_THROW(ggml::to_blocks(narrow, "t"), Error);  // 32 columns: not a whole 64-element block
}

TEST(GgmlBlocks, Q4_0BlockByHand) {
  // u = k % 16, value (u - 8) * 0.25; the scale 0.25 is FP16 0x3400.
  std::vector<std::uint8_t> nib(32);
  for (int k = 0; k < 32; ++k) nib[k] = static_cast<std::uint8_t>(k % 16);
  auto q = one_row(Format::int4, 32, 32, nib);
  q.scales = {0.25f};
  const auto bytes = ggml::to_blocks(q, "t");
  ASSERT_EQ(bytes.size(), 18u);
  EXPECT_EQ(std::to_integer<int>(bytes[0]), 0x00);
  EXPECT_EQ(std::to_integer<int>(bytes[1]), 0x34);
  const std::vector<float> expected = {-2, -1.75, -1.5, -1.25, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75,
                                       -2, -1.75, -1.5, -1.25, -1, -0.75, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75};
  EXPECT_EQ(decode(ggml::Type::q4_0, bytes, 32), expected);
}

TEST(GgmlBlocks, Q4_0RefusesScalesFp16CannotHold) {
  auto q = one_row(Format::int4, 32, 32, std::vector<std::uint8_t>(32, 9));
  for (const float bad : {1.0e-8f, 70000.0f, std::ldexp(1.0f + 1.0f / 128, -20)}) {
    q.scales = {formats::bf16_to_float(formats::bf16_from_float(bad))};
    try {
      ggml::to_blocks(q, "model.layers.0.mlp.up_proj");
      ADD_FAILURE() << "accepted the scale " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("FP16"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("model.layers.0.mlp.up_proj"), std::string::npos) << e.what();
    }
  }
  q.scales = {std::ldexp(1.0f, -24)};  // the smallest FP16 subnormal is exact
  EXPECT_NO_THROW(ggml::to_blocks(q, "t"));
}

TEST(GgmlBlocks, FormatsWithoutAGgmlTypeAreRefusedWithTheReason) {
  std::string why;
  EXPECT_FALSE(ggml::type_for(formats::make_spec(Format::int4, 128, true, formats::ScaleSearch::absmax), &why));
  EXPECT_NE(why.find("group size 128"), std::string::npos) << why;
  EXPECT_FALSE(ggml::type_for(formats::make_spec(Format::int4, 32, false, formats::ScaleSearch::absmax), &why));
  EXPECT_NE(why.find("asymmetric"), std::string::npos) << why;
  EXPECT_FALSE(ggml::type_for(formats::make_spec(Format::int4, 0, true, formats::ScaleSearch::absmax), &why));
  EXPECT_NE(why.find("per-channel"), std::string::npos) << why;
  EXPECT_EQ(ggml::type_for(formats::make_spec(Format::int4, 32, true, formats::ScaleSearch::absmax)), ggml::Type::q4_0);
}

// Random matrices through to_blocks + the block decoder give what formats::dequantize gives, bit for
// bit (NVFP4 before its tensor scale: e2m1 * e4m3 exactly).
class GgmlAgainstFormats : public ::testing::TestWithParam<Format> {};

TEST_P(GgmlAgainstFormats, BitExact) {
  const Format format = GetParam();
  const int group = format == Format::nvfp4 ? 16 : 32;
  const auto spec = formats::make_spec(format, group, true, formats::ScaleSearch::absmax);
  std::mt19937 rng(7);
  std::student_t_distribution<float> heavy(3.0f);
  Matrix w(24, 192);
  for (auto& x : w.data) x = 0.03f * heavy(rng);
  const auto q = formats::quantize(w.view(), spec);
  Matrix ours(q.rows, q.cols);
  formats::dequantize(q, ours.view());
  const auto type = *ggml::type_for(spec);
  const auto bytes = ggml::to_blocks(q, "t");
  ASSERT_EQ(bytes.size(), ggml::row_bytes(type, q.cols, "t") * static_cast<std::size_t>(q.rows));
  const auto theirs = decode(type, bytes, ours.data.size());
  for (std::size_t i = 0; i < theirs.size(); ++i) {
    float expected = ours.data[i];
    if (format == Format::nvfp4) {
      const auto r = static_cast<std::int64_t>(i) / q.cols, k = static_cast<std::int64_t>(i) % q.cols;
      const std::uint8_t byte = q.codes[static_cast<std::size_t>((r * q.cols + k) / 2)];
      const std::uint8_t code = k % 2 == 0 ? byte & 0xF : byte >> 4;
      expected = formats::e2m1_to_float(code) * formats::e4m3_to_float(q.params(r, k / 16).scale_code);
      // ...and with llama.cpp's tensor factor it is our value up to the one rounding of the product.
      EXPECT_NEAR(theirs[i] * ggml::nvfp4_tensor_scale(q.global_scale), ours.data[i],
                  std::abs(ours.data[i]) * 1.2e-7f) << i;
    }
    // Compared as values: our E2M1 code 0x8 decodes to -0, ggml's table has +0 there.
    ASSERT_EQ(theirs[i], expected) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GgmlAgainstFormats, ::testing::Values(Format::mxfp4, Format::nvfp4, Format::int4),
                         [](const auto& info) { return std::string(formats::format_name(info.param)); });

}  // namespace
}  // namespace microscale
