#pragma once
// The 4-bit weight formats: what a group is, how its scale is stored, and the quantized-matrix container.
//
// Layout conventions (shared by every module, the checkpoint writer and the CUDA kernels):
//  * A weight is row-major [rows = out_features, cols = in_features]; groups run along a row.
//  * 4-bit codes are packed two per byte, element 2i in the low nibble, 2i+1 in the high nibble.
//  * FP4 codes are E2M1 (sign in bit 3). INT4 codes are unsigned nibbles u in [0, 15] with
//    value = (u - zero) * scale; symmetric INT4 has zero = 8.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::formats {

enum class Format { mxfp4, nvfp4, int4 };
enum class ScaleSearch { absmax, mse };
// MXFP4 shared-exponent rule (docs/modules/formats.md has the sources).
//  ocp:     OCP MX v1.0 and llama.cpp: exponent = floor(log2(amax)) - 2; values above 6*scale clip to 6.
//  no_clip: the smallest power of two with amax / scale <= 6 (nothing clips).
//  even:    compressed-tensors / vLLM reference ("even" in microxcaling): amax is first rounded to one
//           mantissa bit (significand >= 1.75 rounds up to the next power of two), then OCP's rule.
enum class MxRounding { ocp, no_clip, even };

struct QuantSpec {
  Format format = Format::nvfp4;
  int group_size = 16;        // mxfp4: 32, nvfp4: 16 (fixed by the format); int4: 32/64/128 or 0 = per-channel
  bool symmetric = true;      // int4 only; FP4 formats are always symmetric
  ScaleSearch scale = ScaleSearch::absmax;
  MxRounding mx_rounding = MxRounding::ocp;

  // The group size actually used for a row of `cols` columns (per-channel means the whole row).
  std::int64_t group_for(std::int64_t cols) const { return group_size == 0 ? cols : group_size; }
};

// Spec with the format's fixed group size filled in; validates the combination, throws microscale::Error.
QuantSpec make_spec(Format format, int group_size, bool symmetric, ScaleSearch scale,
                    MxRounding mx_rounding = MxRounding::ocp);
Format parse_format(std::string_view name);  // "mxfp4" | "nvfp4" | "int4"
std::string_view format_name(Format format);
MxRounding parse_mx_rounding(std::string_view name);  // "ocp" | "no_clip" | "even"
std::string_view mx_rounding_name(MxRounding rounding);
ScaleSearch parse_scale_search(std::string_view name);  // "absmax" | "mse"
std::string_view scale_search_name(ScaleSearch search);
std::string describe(const QuantSpec& spec);  // "nvfp4 g16 mse" etc.

// Bits per weight including scales (and zero points), for size reports: 4 + scale bits / group size
// (E8M0 and E4M3: 8, INT4's BF16 scale: 16) + 4 / group size for asymmetric INT4's zero point.
// NVFP4's one FP32 per tensor is not counted (it does not depend on cols).
double bits_per_weight(const QuantSpec& spec, std::int64_t cols);

// Decoded parameters of one group: value = element(code) * scale (FP4) or (code - zero) * scale (INT4).
// `scale` is the effective float multiplier (for NVFP4 it already includes the tensor scale).
struct GroupParams {
  float scale = 0.0f;
  float zero = 0.0f;           // int4 only
  std::uint8_t scale_code = 0; // E8M0 (mxfp4) or E4M3 (nvfp4) code of the stored group scale
};

// A quantized weight matrix as stored in checkpoints.
struct QuantizedMatrix {
  QuantSpec spec;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<std::uint8_t> codes;        // rows * cols / 2 bytes, packed
  std::vector<std::uint8_t> scale_codes;  // mxfp4 (E8M0) / nvfp4 (E4M3): rows * groups_per_row
  std::vector<float> scales;              // int4: rows * groups_per_row, each exactly representable in BF16
  std::vector<std::uint8_t> zeros;        // int4 asymmetric: rows * groups_per_row, in [0, 15]
  // nvfp4: the FP32 per-tensor scale in compressed-tensors' convention (weight_global_scale):
  // stored group scale s_e4m3 dequantizes as s_e4m3 / global_scale. 1.0 for other formats.
  float global_scale = 1.0f;

  std::int64_t group_size() const { return spec.group_for(cols); }
  std::int64_t groups_per_row() const { return cols / group_size(); }
  GroupParams params(std::int64_t row, std::int64_t group) const;
  // Bytes a checkpoint needs for this matrix: packed codes, 1-byte scale codes (FP4), 2-byte BF16
  // scales (INT4), 4-bit packed zero points (asymmetric INT4), and the FP32 global scale (NVFP4).
  std::size_t storage_bytes() const;
};

}  // namespace microscale::formats
