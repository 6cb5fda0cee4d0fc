#pragma once
// How a checkpoint directory stores its linear weights: plain (F32/F16/BF16 "<prefix>.weight") or
// quantized in compressed-tensors layout ("<prefix>.weight_packed", "<prefix>.weight_scale", ...),
// as `microscale quantize` writes and vLLM/transformers read. The runtime asks this class for a
// linear's float weight and for the rotation its inputs need, and never parses the layout itself.
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::exporter {

class CheckpointLayout {
 public:
  // `config` is the parsed config.json of the model directory (its "quantization_config", if any).
  static CheckpointLayout from_config(const nlohmann::json& config, const std::filesystem::path& config_path);

  bool quantized() const { return quantized_; }
  const formats::QuantSpec& spec() const { return spec_; }
  const rotation::RotationSpec& rotation() const { return rotation_; }

  // True when the checkpoint holds this linear in quantized form.
  bool is_quantized(const io::Checkpoint& checkpoint, std::string_view linear_prefix) const;
  // The linear's weight [out, in] as floats, decoded from whatever the checkpoint stores.
  // For a rotated checkpoint this is the rotated weight W·R (the runtime rotates inputs to match).
  Matrix load_weight(const io::Checkpoint& checkpoint, std::string_view linear_prefix) const;
  // The rotation to apply to this linear's input rows (disabled for unrotated linears).
  rotation::RotationSpec input_rotation(const io::Checkpoint& checkpoint, std::string_view linear_prefix) const;

 private:
  bool quantized_ = false;
  formats::QuantSpec spec_;
  rotation::RotationSpec rotation_;
  std::filesystem::path config_path_;
};

}  // namespace microscale::exporter
