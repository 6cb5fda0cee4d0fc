#pragma once
// Quantizing a weight matrix, and the per-group primitives that GPTQ-style algorithms use.
#include <cstdint>
#include <span>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"

namespace microscale::formats {

// NVFP4 per-tensor scale (compressed-tensors convention): global = 448 * 6 / amax(tensor), so the
// largest group scale lands at 448. Returns 1.0 for other formats or an all-zero tensor.
float tensor_global_scale(const QuantSpec& spec, std::span<const float> weights);

// Per-group operations for one format. `global_scale` is only used by NVFP4.
class GroupQuantizer {
 public:
  GroupQuantizer(QuantSpec spec, float global_scale);
  const QuantSpec& spec() const { return spec_; }
  float global_scale() const { return global_scale_; }

  // Scale (and zero) for one group of values, by absmax or MSE search as the spec says.
  GroupParams choose(std::span<const float> group) const;
  // Nearest code for x under p (round to nearest even, saturating).
  std::uint8_t encode(float x, const GroupParams& p) const;
  float decode(std::uint8_t code, const GroupParams& p) const;
  float fake_quant(float x, const GroupParams& p) const { return decode(encode(x, p), p); }

 private:
  QuantSpec spec_;
  float global_scale_;
};

// Round-to-nearest quantization of a whole matrix (OpenMP over rows). Throws microscale::Error
// naming `what` when a value is NaN/Inf or cols is not a multiple of the group size.
QuantizedMatrix quantize(ConstMatrixView weights, const QuantSpec& spec, std::string_view what = "tensor");

// Packs values with fixed, already chosen group parameters (rows * groups_per_row of them),
// e.g. after GPTQ has decided every code. Each value is encoded to its nearest code under its group.
QuantizedMatrix pack_with_params(ConstMatrixView values, const QuantSpec& spec, float global_scale,
                                 std::span<const GroupParams> params);

void dequantize(const QuantizedMatrix& q, MatrixView out);

// ||w - q(w)||^2 / ||w||^2 of a matrix against its quantized form.
double relative_error(ConstMatrixView weights, const QuantizedMatrix& q);

}  // namespace microscale::formats
