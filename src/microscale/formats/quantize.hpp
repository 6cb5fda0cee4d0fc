#pragma once
// Quantizing a weight matrix, and the per-group primitives that GPTQ-style algorithms use.
#include <cstdint>
#include <span>
#include <string_view>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"

namespace microscale::formats {

// NVFP4 per-tensor scale (compressed-tensors convention): global = 448 * 6 / amax(tensor), so the
// largest group scale lands at 448. Returns 1.0 for other formats or an all-zero tensor.
float tensor_global_scale(const QuantSpec& spec, std::span<const float> weights);
// The same from a known amax (e.g. the largest amax of fused q/k/v or gate/up projections, which
// vLLM requires to share one global scale). 1.0 when amax is 0.
float nvfp4_global_scale_for_amax(float amax);

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
  // Vectorised fake_quant of a whole group (out may alias group).
  void fake_quant(std::span<const float> group, const GroupParams& p, std::span<float> out) const;
  // Sum of squared errors of the group quantized under p.
  double squared_error(std::span<const float> group, const GroupParams& p) const;

 private:
  QuantSpec spec_;
  float global_scale_;
};

// Round-to-nearest quantization of a whole matrix (OpenMP over rows). Throws microscale::Error
// naming `what` when a value is NaN/Inf or cols is not a multiple of the group size.
QuantizedMatrix quantize(ConstMatrixView weights, const QuantSpec& spec, std::string_view what = "tensor");
// The same with a given NVFP4 global scale instead of the tensor's own (ignored by other formats).
QuantizedMatrix quantize(ConstMatrixView weights, const QuantSpec& spec, float global_scale,
                         std::string_view what = "tensor");

// Packs values with fixed, already chosen group parameters (rows * groups_per_row of them, row-major),
// e.g. after GPTQ has decided every code. Each value is encoded to its nearest code under its group.
// The params must be ones GroupQuantizer(spec, global_scale).choose() can produce: FP4 scales equal
// to their decoded scale_code, INT4 scales exactly BF16 and zeros integers in [0, 15] (8 when
// symmetric); anything else throws microscale::Error.
QuantizedMatrix pack_with_params(ConstMatrixView values, const QuantSpec& spec, float global_scale,
                                 std::span<const GroupParams> params, std::string_view what = "tensor");

void dequantize(const QuantizedMatrix& q, MatrixView out);

// ||w - q(w)||^2 / ||w||^2 of a matrix against its quantized form.
double relative_error(ConstMatrixView weights, const QuantizedMatrix& q);

}  // namespace microscale::formats
