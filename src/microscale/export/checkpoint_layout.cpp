#include "microscale/export/checkpoint_layout.hpp"

#include "microscale/core/error.hpp"
#include "microscale/core/finite.hpp"
#include "microscale/export/compressed_tensors.hpp"
#include "microscale/formats/quantize.hpp"

namespace microscale::exporter {

CheckpointLayout CheckpointLayout::from_config(const nlohmann::json& config,
                                               const std::filesystem::path& config_path) {
  CheckpointLayout layout;
  layout.config_path_ = config_path;
  if (config.contains("quantization_config") && !config.at("quantization_config").is_null()) {
    const auto parsed = parse_quantization_config(config.at("quantization_config"), config_path);
    layout.quantized_ = true;
    layout.spec_ = parsed.spec;
    layout.rotation_ = parsed.rotation;
  }
  return layout;
}

bool CheckpointLayout::is_quantized(const io::Checkpoint& checkpoint, std::string_view linear_prefix) const {
  return quantized_ && checkpoint.find(std::string(linear_prefix) + ".weight_packed") != nullptr;
}

Matrix CheckpointLayout::load_weight(const io::Checkpoint& checkpoint, std::string_view linear_prefix) const {
  if (is_quantized(checkpoint, linear_prefix)) {
    const formats::QuantizedMatrix q = read_compressed_linear(checkpoint, linear_prefix, spec_);
    Matrix weight(q.rows, q.cols);
    formats::dequantize(q, weight.view());
    const io::TensorInfo& packed = checkpoint.at(std::string(linear_prefix) + ".weight_packed");
    require_finite_weights(weight.data, weight.cols, packed.file.string(), std::string(linear_prefix) + " (decoded)");
    return weight;
  }
  const std::string name = std::string(linear_prefix) + ".weight";
  const io::TensorInfo& info = checkpoint.at(name);
  if (info.shape.size() != 2) {
    fail("{}: tensor {} should be 2-D [out, in], has {} dims", info.file.string(), name, info.shape.size());
  }
  Matrix weight(info.shape[0], info.shape[1]);
  io::to_f32(info, weight.data);
  require_finite_weights(weight.data, weight.cols, info.file.string(), name);
  return weight;
}

rotation::RotationSpec CheckpointLayout::input_rotation(const io::Checkpoint& checkpoint,
                                                        std::string_view linear_prefix) const {
  return is_quantized(checkpoint, linear_prefix) ? rotation_ : rotation::RotationSpec{};
}

}  // namespace microscale::exporter
