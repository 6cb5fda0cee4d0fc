#include "microscale/export/ggml_blocks.hpp"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"

namespace microscale::exporter::ggml {
namespace {

using formats::Format;

// Nibble of element k in our checkpoint packing (element 2i low, 2i+1 high of byte i).
std::uint8_t our_nibble(std::span<const std::uint8_t> row_codes, std::int64_t k) {
  const std::uint8_t byte = row_codes[static_cast<std::size_t>(k / 2)];
  return static_cast<std::uint8_t>(k % 2 == 0 ? byte & 0x0F : byte >> 4);
}

// Packs `n` elements starting at `first` the ggml way: byte j = element j (low) | element j + n/2 (high).
void pack_halves(std::span<const std::uint8_t> row_codes, std::int64_t first, int n, std::uint8_t* qs) {
  for (int j = 0; j < n / 2; ++j) {
    qs[j] = static_cast<std::uint8_t>(our_nibble(row_codes, first + j) | (our_nibble(row_codes, first + j + n / 2) << 4));
  }
}

template <typename Block>
void append(std::vector<std::byte>& out, const Block& block) {
  const auto* p = reinterpret_cast<const std::byte*>(&block);
  out.insert(out.end(), p, p + sizeof(Block));
}

// ---- the block decoders, written from ggml's block definitions (F16/BF16 come from formats/codecs) ----

// E2M1 doubled, as ggml's kvalues table: the sign is bit 3, magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6} * 2.
constexpr std::int8_t kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// 2^(e - 128): half of the E8M0 scale, to pair with the doubled E2M1 table.
float e8m0_half(std::uint8_t e) { return std::ldexp(1.0f, static_cast<int>(e) - 128); }

// Unsigned E4M3 (bias 7, 3 mantissa bits) times 0.5; 0 and 0x7F decode to 0 as in llama.cpp.
float ue4m3_half(std::uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exponent = (x >> 3) & 0xF;
  const int mantissa = x & 0x7;
  const float raw = exponent == 0 ? std::ldexp(static_cast<float>(mantissa), -9)
                                  : std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return raw * 0.5f;
}

template <typename Block>
Block block_at(std::span<const std::byte> bytes, std::size_t i) {
  Block b;
  std::memcpy(&b, bytes.data() + i * sizeof(Block), sizeof(Block));
  return b;
}

}  // namespace

std::optional<TypeTraits> traits(std::uint32_t type) {
  switch (static_cast<Type>(type)) {
    case Type::f32: return TypeTraits{"F32", 1, 4};
    case Type::f16: return TypeTraits{"F16", 1, 2};
    case Type::q4_0: return TypeTraits{"Q4_0", 32, sizeof(BlockQ4_0)};
    case Type::bf16: return TypeTraits{"BF16", 1, 2};
    case Type::mxfp4: return TypeTraits{"MXFP4", 32, sizeof(BlockMxfp4)};
    case Type::nvfp4: return TypeTraits{"NVFP4", 64, sizeof(BlockNvfp4)};
  }
  return std::nullopt;
}

TypeTraits traits(Type type) { return *traits(static_cast<std::uint32_t>(type)); }

std::string type_name(std::uint32_t type) {
  const auto t = traits(type);
  return t ? std::string(t->name) : fmt::format("type {}", type);
}

std::size_t row_bytes(Type type, std::int64_t elements, std::string_view what) {
  const TypeTraits t = traits(type);
  if (elements < 0 || elements % t.block_elements != 0) {
    fail("{}: a row of {} elements is not a whole number of {}-element {} blocks", what, elements, t.block_elements,
         t.name);
  }
  return static_cast<std::size_t>(elements / t.block_elements) * t.block_bytes;
}

std::optional<Type> type_for(const formats::QuantSpec& spec, std::string* why) {
  auto refuse = [why](std::string reason) -> std::optional<Type> {
    if (why != nullptr) *why = std::move(reason);
    return std::nullopt;
  };
  switch (spec.format) {
    case Format::mxfp4: return Type::mxfp4;  // group 32 is fixed by the format
    case Format::nvfp4: return Type::nvfp4;  // group 16 is fixed by the format
    case Format::int4:
      if (!spec.symmetric) {
        return refuse("asymmetric int4 (a zero point per group) has no GGUF type: Q4_0 is symmetric");
      }
      if (spec.group_size != 32) {
        return refuse(fmt::format("int4 with {} has no GGUF type: Q4_0 holds symmetric int4 with group size 32 only",
                                  spec.group_size == 0 ? std::string("per-channel scales")
                                                       : fmt::format("group size {}", spec.group_size)));
      }
      return Type::q4_0;
  }
  return refuse("unknown format");
}

float nvfp4_tensor_scale(float global_scale) { return 1.0f / global_scale; }

std::vector<std::byte> to_blocks(const formats::QuantizedMatrix& q, std::string_view what) {
  std::string why;
  const auto type = type_for(q.spec, &why);
  if (!type) fail("{}: {}", what, why);
  const std::size_t bytes_per_row = row_bytes(*type, q.cols, what);
  std::vector<std::byte> out;
  out.reserve(bytes_per_row * static_cast<std::size_t>(q.rows));
  const std::int64_t groups = q.groups_per_row();
  for (std::int64_t r = 0; r < q.rows; ++r) {
    const std::span<const std::uint8_t> codes(q.codes.data() + static_cast<std::size_t>(r * q.cols / 2),
                                              static_cast<std::size_t>(q.cols / 2));
    const auto group_index = [&](std::int64_t g) { return static_cast<std::size_t>(r * groups + g); };
    switch (*type) {
      case Type::mxfp4:
        for (std::int64_t b = 0; b < q.cols / 32; ++b) {
          BlockMxfp4 block{};
          block.e = q.scale_codes[group_index(b)];
          if (block.e == 0xFF) fail("{}: row {} group {} has the E8M0 NaN scale 0xFF", what, r, b);
          pack_halves(codes, b * 32, 32, block.qs);
          append(out, block);
        }
        break;
      case Type::nvfp4:
        for (std::int64_t b = 0; b < q.cols / 64; ++b) {
          BlockNvfp4 block{};
          for (int s = 0; s < 4; ++s) {
            const std::uint8_t code = q.scale_codes[group_index(4 * b + s)];
            // ggml reads the scale as unsigned E4M3 and treats 0x7F as zero; ours are E4M3fn, where a set
            // sign bit or 0x7F (NaN) would mean something else.
            if ((code & 0x80) != 0 || code == 0x7F) {
              fail("{}: row {} group {} has the E4M3 scale code {:#04x}, which ggml's unsigned E4M3 cannot hold",
                   what, r, 4 * b + s, code);
            }
            block.d[s] = code;
            pack_halves(codes, b * 64 + s * 16, 16, block.qs + 8 * s);
          }
          append(out, block);
        }
        break;
      case Type::q4_0:
        for (std::int64_t b = 0; b < q.cols / 32; ++b) {
          const float scale = q.scales[group_index(b)];
          BlockQ4_0 block{};
          block.d = formats::fp16_from_float(scale);
          // Our scales are BF16 values; most are exact in FP16, but not beyond FP16's range or precision.
          if (formats::fp16_to_float(block.d) != scale) {
            fail("{}: row {} group {} has the scale {} which FP16 (Q4_0's scale type) cannot hold exactly",
                 what, r, b, scale);
          }
          pack_halves(codes, b * 32, 32, block.qs);
          append(out, block);
        }
        break;
      default: fail("{}: internal error: {} is not a block type", what, traits(*type).name);
    }
  }
  return out;
}

void dequantize(Type type, std::span<const std::byte> bytes, std::span<float> out) {
  const auto count = static_cast<std::int64_t>(out.size());
  const std::size_t expected = row_bytes(type, count, type_name(static_cast<std::uint32_t>(type)));
  if (bytes.size() != expected) {
    fail("ggml dequantize: {} bytes for {} {} values, expected {}", bytes.size(), count, traits(type).name, expected);
  }
  switch (type) {
    case Type::f32:
      std::memcpy(out.data(), bytes.data(), bytes.size());
      return;
    case Type::f16:
    case Type::bf16:
      for (std::size_t i = 0; i < out.size(); ++i) {
        std::uint16_t v;
        std::memcpy(&v, bytes.data() + 2 * i, 2);
        out[i] = type == Type::f16 ? formats::fp16_to_float(v) : formats::bf16_to_float(v);
      }
      return;
    case Type::q4_0:
      for (std::size_t i = 0; i < out.size() / 32; ++i) {
        const auto b = block_at<BlockQ4_0>(bytes, i);
        const float d = formats::fp16_to_float(b.d);
        for (int j = 0; j < 16; ++j) {
          out[32 * i + j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
          out[32 * i + j + 16] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
        }
      }
      return;
    case Type::mxfp4:
      for (std::size_t i = 0; i < out.size() / 32; ++i) {
        const auto b = block_at<BlockMxfp4>(bytes, i);
        const float d = e8m0_half(b.e);
        for (int j = 0; j < 16; ++j) {
          out[32 * i + j] = static_cast<float>(kE2M1Doubled[b.qs[j] & 0x0F]) * d;
          out[32 * i + j + 16] = static_cast<float>(kE2M1Doubled[b.qs[j] >> 4]) * d;
        }
      }
      return;
    case Type::nvfp4:
      for (std::size_t i = 0; i < out.size() / 64; ++i) {
        const auto b = block_at<BlockNvfp4>(bytes, i);
        for (int s = 0; s < 4; ++s) {
          const float d = ue4m3_half(b.d[s]);
          float* y = out.data() + 64 * i + 16 * s;
          for (int j = 0; j < 8; ++j) {
            y[j] = static_cast<float>(kE2M1Doubled[b.qs[8 * s + j] & 0x0F]) * d;
            y[j + 8] = static_cast<float>(kE2M1Doubled[b.qs[8 * s + j] >> 4]) * d;
          }
        }
      }
      return;
  }
  fail("ggml dequantize: unknown type {}", static_cast<std::uint32_t>(type));
}

}  // namespace microscale::exporter::ggml
