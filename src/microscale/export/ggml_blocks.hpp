#pragma once
// ggml tensor types as llama.cpp stores them in GGUF files, kept in one place: the type numbers, the
// block layouts, conversion from our QuantizedMatrix (checkpoint layout) into blocks, and a decoder of
// blocks to float written from the block definitions (not from formats::dequantize), so that tests can
// hold the two against each other.
//
// Block layouts (ggml-common.h; every row of a tensor is a whole number of blocks):
//   Q4_0  (32 elements, 18 bytes): fp16 d; qs[16]. Byte j: low nibble = element j, high nibble =
//         element j + 16 (the two halves of the block, not neighbouring pairs). value = (nibble - 8) * d.
//   MXFP4 (32 elements, 17 bytes): u8 e (E8M0); qs[16], nibbles as Q4_0. value = E2M1(nibble) * 2^(e - 127)
//         (llama.cpp: doubled E2M1 table times 2^(e - 128)).
//   NVFP4 (64 elements, 36 bytes): u8 d[4] (unsigned E4M3, one per 16-element sub-block); qs[32]. Sub-block
//         s uses qs[8s .. 8s+7]: low nibble = element j, high nibble = element j + 8 of the sub-block.
//         value = E2M1(nibble) * E4M3(d[s]); the codes 0 and 0x7F decode to 0. The per-tensor factor
//         lives outside the blocks, in an F32 tensor "<base>.scale" that llama.cpp multiplies the
//         matmul output by.
// Our checkpoint layout packs element 2i in the low nibble and 2i+1 in the high nibble of byte i; the
// nibble values themselves (E2M1 with the sign in bit 3, INT4 u = q + 8) are the same as ggml's.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/formats/format.hpp"

namespace microscale::exporter::ggml {

enum class Type : std::uint32_t { f32 = 0, f16 = 1, q4_0 = 2, bf16 = 30, mxfp4 = 39, nvfp4 = 40 };

struct TypeTraits {
  std::string_view name;       // "F32", "Q4_0", "MXFP4", ... (ggml's names)
  std::int64_t block_elements; // elements per block (1 for plain types)
  std::size_t block_bytes;     // bytes per block
};

// Traits of a type number found in a file; nullopt for a type this module does not know.
std::optional<TypeTraits> traits(std::uint32_t type);
TypeTraits traits(Type type);
std::string type_name(std::uint32_t type);  // the ggml name, or "type N" when unknown

// Bytes of a row of `elements` values. Throws microscale::Error naming `what` when the row is not a
// whole number of blocks.
std::size_t row_bytes(Type type, std::int64_t elements, std::string_view what);

struct BlockQ4_0 {
  std::uint16_t d;  // IEEE half
  std::uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "block_q4_0 is 18 bytes");

struct BlockMxfp4 {
  std::uint8_t e;  // E8M0 exponent
  std::uint8_t qs[16];
};
static_assert(sizeof(BlockMxfp4) == 17, "block_mxfp4 is 17 bytes");

struct BlockNvfp4 {
  std::uint8_t d[4];  // unsigned E4M3 per 16-element sub-block
  std::uint8_t qs[32];
};
static_assert(sizeof(BlockNvfp4) == 36, "block_nvfp4 is 36 bytes");

// The ggml type that holds `spec` exactly, or nullopt with `why` filled in (for refusals).
std::optional<Type> type_for(const formats::QuantSpec& spec, std::string* why = nullptr);

// The matrix as ggml blocks, rows one after another. Throws microscale::Error naming `what` when the
// spec has no ggml type, a row is not a whole number of blocks, an INT4 scale is not exactly an FP16
// value, or a scale code is one ggml cannot decode (E8M0 0xFF, a negative or NaN E4M3 scale).
// NVFP4's global scale is not part of the blocks (see nvfp4_tensor_scale).
std::vector<std::byte> to_blocks(const formats::QuantizedMatrix& q, std::string_view what);

// The F32 multiplier llama.cpp applies to the output of an NVFP4 matmul: our value is
// e2m1 * e4m3 / global_scale, so the stored factor is 1 / global_scale.
float nvfp4_tensor_scale(float global_scale);

// Decodes `count` elements of `type` from `bytes` (exactly row_bytes(type, count) of them) into `out`.
// Written from the block definitions above; F16/BF16/F32 are plain little-endian values.
void dequantize(Type type, std::span<const std::byte> bytes, std::span<float> out);

}  // namespace microscale::exporter::ggml
