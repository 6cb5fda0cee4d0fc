#pragma once
// The compressed-tensors checkpoint layout (the format vLLM and transformers load), for one linear:
//
//   nvfp4 (format "nvfp4-pack-quantized"):  weight_packed U8 [out, in/2]   E2M1 codes, element 2i in the low nibble
//                                           weight_scale F8_E4M3 [out, in/16]
//                                           weight_global_scale F32 [1]    value = e2m1 * weight_scale / global
//   mxfp4 (format "mxfp4-pack-quantized"):  weight_packed U8 [out, in/2]
//                                           weight_scale U8 [out, in/32]   E8M0 exponent byte, 2^(s-127)
//   int4  (format "pack-quantized"):        weight_packed I32 [out, in/8]  8 nibbles per word, element i at
//                                                                           bits 4i, stored as q + 8
//                                           weight_scale BF16 [out, groups]
//                                           weight_zero_point I32 [ceil(out/8), groups]  (asymmetric only,
//                                                                           packed along dim 0, stored zp + 8)
//                                           weight_shape I64 [2]
// Our INT4 codes are already the unsigned nibble u = q + 8 (value = (u - zero) * scale, zero = zp + 8), so
// the nibbles are copied, not recomputed.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/formats/format.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::exporter {

// compressed-tensors' name for the storage format of a spec.
std::string_view compression_format(const formats::QuantSpec& spec);

struct OwnedTensor {
  std::string name;
  io::DType dtype;
  std::vector<std::int64_t> shape;
  std::vector<std::byte> data;
};

// The tensors of one quantized linear ("<prefix>.weight_packed", ...), in the order they are stored.
std::vector<OwnedTensor> compressed_linear_tensors(const std::string& prefix, const formats::QuantizedMatrix& q);

// Reads one quantized linear back. Validates dtypes and shapes, naming the file and tensor on error.
formats::QuantizedMatrix read_compressed_linear(const io::Checkpoint& checkpoint, std::string_view prefix,
                                                const formats::QuantSpec& spec);

// The "quantization_config" object for config.json. The rotation, when enabled, is recorded under
// the "microscale" key (block size, signs, seed) so that our runtime rotates activations online.
nlohmann::json quantization_config(const formats::QuantSpec& spec, const rotation::RotationSpec& rotation,
                                   const std::vector<std::string>& ignore);

// The inverse of quantization_config(); throws naming `config_path` on anything it cannot represent.
struct ParsedQuantizationConfig {
  formats::QuantSpec spec;
  rotation::RotationSpec rotation;
};
ParsedQuantizationConfig parse_quantization_config(const nlohmann::json& quantization_config,
                                                   const std::filesystem::path& config_path);

}  // namespace microscale::exporter
