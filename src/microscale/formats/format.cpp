// QuantSpec construction and naming, size accounting, and reading group parameters back out of a
// QuantizedMatrix.
#include <string>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format.hpp"

namespace microscale::formats {

QuantSpec make_spec(Format format, int group_size, bool symmetric, ScaleSearch scale, MxRounding mx_rounding) {
  QuantSpec spec;
  spec.format = format;
  spec.symmetric = symmetric;
  spec.scale = scale;
  spec.mx_rounding = mx_rounding;
  switch (format) {
    case Format::mxfp4:
    case Format::nvfp4: {
      const int fixed = format == Format::mxfp4 ? 32 : 16;
      // 0 means "the format's own group size"; anything else must be that size.
      if (group_size != 0 && group_size != fixed)
        fail("{} uses groups of {} values (got group size {})", format_name(format), fixed, group_size);
      if (!symmetric) fail("{} is symmetric; asymmetric quantization is only available for int4", format_name(format));
      spec.group_size = fixed;
      break;
    }
    case Format::int4:
      if (group_size < 0 || group_size % 2 != 0)
        fail("int4 group size must be 0 (per-channel) or a positive even number, e.g. 32, 64, 128 (got {})",
             group_size);
      spec.group_size = group_size;
      break;
  }
  return spec;
}

Format parse_format(std::string_view name) {
  if (name == "mxfp4") return Format::mxfp4;
  if (name == "nvfp4") return Format::nvfp4;
  if (name == "int4") return Format::int4;
  fail("unknown weight format '{}' (expected mxfp4, nvfp4 or int4)", name);
}

std::string_view format_name(Format format) {
  switch (format) {
    case Format::mxfp4: return "mxfp4";
    case Format::nvfp4: return "nvfp4";
    case Format::int4: return "int4";
  }
  return "?";
}

MxRounding parse_mx_rounding(std::string_view name) {
  if (name == "ocp") return MxRounding::ocp;
  if (name == "no_clip" || name == "no-clip") return MxRounding::no_clip;
  if (name == "even") return MxRounding::even;
  fail("unknown MXFP4 scale rounding '{}' (expected ocp, no_clip or even)", name);
}

std::string_view mx_rounding_name(MxRounding rounding) {
  switch (rounding) {
    case MxRounding::ocp: return "ocp";
    case MxRounding::no_clip: return "no_clip";
    case MxRounding::even: return "even";
  }
  return "?";
}

ScaleSearch parse_scale_search(std::string_view name) {
  if (name == "absmax") return ScaleSearch::absmax;
  if (name == "mse") return ScaleSearch::mse;
  fail("unknown scale search '{}' (expected absmax or mse)", name);
}

std::string_view scale_search_name(ScaleSearch search) {
  return search == ScaleSearch::absmax ? "absmax" : "mse";
}

std::string describe(const QuantSpec& spec) {
  std::string text{format_name(spec.format)};
  text += spec.group_size == 0 ? " per-channel" : fmt::format(" g{}", spec.group_size);
  if (spec.format == Format::int4) text += spec.symmetric ? " sym" : " asym";
  text += " ";
  text += scale_search_name(spec.scale);
  if (spec.format == Format::mxfp4) {
    text += " ";
    text += mx_rounding_name(spec.mx_rounding);
  }
  return text;
}

double bits_per_weight(const QuantSpec& spec, std::int64_t cols) {
  const auto group = static_cast<double>(spec.group_for(cols));
  if (group <= 0) fail("bits_per_weight: {} has no groups for {} columns", describe(spec), cols);
  switch (spec.format) {
    case Format::mxfp4:
    case Format::nvfp4: return 4.0 + 8.0 / group;
    case Format::int4: return 4.0 + 16.0 / group + (spec.symmetric ? 0.0 : 4.0 / group);
  }
  return 0.0;
}

GroupParams QuantizedMatrix::params(std::int64_t row, std::int64_t group) const {
  const auto index = static_cast<std::size_t>(row * groups_per_row() + group);
  GroupParams p;
  switch (spec.format) {
    case Format::mxfp4:
      p.scale_code = scale_codes[index];
      p.scale = e8m0_to_float(p.scale_code);
      break;
    case Format::nvfp4:
      p.scale_code = scale_codes[index];
      p.scale = e4m3_to_float(p.scale_code) / global_scale;
      break;
    case Format::int4:
      p.scale = scales[index];
      p.zero = spec.symmetric ? 8.0f : static_cast<float>(zeros[index]);
      break;
  }
  return p;
}

std::size_t QuantizedMatrix::storage_bytes() const {
  std::size_t bytes = codes.size() + scale_codes.size() + 2 * scales.size() + (zeros.size() + 1) / 2;
  if (spec.format == Format::nvfp4) bytes += sizeof(float);
  return bytes;
}

}  // namespace microscale::formats
