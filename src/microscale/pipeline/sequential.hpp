#pragma once
// Calibrated quantization (GPTQ, MR-GPTQ, QEP): the model runs layer by layer on calibration text; each
// decoder layer's linears are quantized from the inputs that the partly quantized model really feeds it.
#include <map>
#include <string>
#include <vector>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::pipeline {

struct QuantizeOptions;

struct QuantizedLinear {
  formats::QuantizedMatrix quantized;  // in the rotated basis when a rotation is used
  // ||W - Ŵ||² and ||W||² against the weight it approximates (in the same basis), for the report.
  // Only the numbers are kept, so the job never holds a float copy of the whole model.
  double squared_error = 0;
  double squared_norm = 0;
};
// Fills the error figures of `entry` from the weight it approximates.
void measure_error(QuantizedLinear& entry, ConstMatrixView reference);

using QuantizedLinears = std::map<std::string, QuantizedLinear>;  // by weight tensor name

QuantizedLinears quantize_calibrated(const io::Checkpoint& checkpoint, const std::vector<const io::TensorInfo*>& linears,
                                     const QuantizeOptions& options);

}  // namespace microscale::pipeline
