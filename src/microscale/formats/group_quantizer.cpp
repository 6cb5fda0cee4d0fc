// GroupQuantizer: the per-group primitives (choose / encode / decode), dispatching on the format.
#include <cmath>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"
#include "microscale/formats/quantize.hpp"

namespace microscale::formats {

GroupQuantizer::GroupQuantizer(QuantSpec spec, float global_scale) : spec_(spec), global_scale_(global_scale) {
  if (spec_.format != Format::nvfp4) {
    global_scale_ = 1.0f;
  } else if (!(global_scale > 0.0f) || !std::isfinite(global_scale)) {
    fail("nvfp4 global scale must be a positive finite number (got {})", global_scale);
  }
}

GroupParams GroupQuantizer::choose(std::span<const float> group) const {
  switch (spec_.format) {
    case Format::mxfp4: return detail::mxfp4_choose(group, spec_);
    case Format::nvfp4: return detail::nvfp4_choose(group, spec_, global_scale_);
    case Format::int4: return detail::int4_choose(group, spec_);
  }
  return {};
}

std::uint8_t GroupQuantizer::encode(float x, const GroupParams& p) const {
  if (spec_.format == Format::int4) return static_cast<std::uint8_t>(detail::int4_round_code(x, p.scale, p.zero));
  return e2m1_from_float(x / p.scale);
}

float GroupQuantizer::decode(std::uint8_t code, const GroupParams& p) const {
  if (spec_.format == Format::int4) return (static_cast<float>(code & 0xFu) - p.zero) * p.scale;
  return e2m1_to_float(code) * p.scale;
}

void GroupQuantizer::fake_quant(std::span<const float> group, const GroupParams& p, std::span<float> out) const {
  if (out.size() != group.size())
    fail("fake_quant: output has {} values for a group of {}", out.size(), group.size());
  const std::size_t n = group.size();
  const float* in = group.data();
  float* o = out.data();
  if (spec_.format == Format::int4) {
    for (std::size_t i = 0; i < n; ++i) o[i] = detail::int4_fake_quant(in[i], p.scale, p.zero);
  } else {
    for (std::size_t i = 0; i < n; ++i) o[i] = detail::fp4_fake_quant(in[i], p.scale);
  }
}

double GroupQuantizer::squared_error(std::span<const float> group, const GroupParams& p) const {
  const float unit = detail::error_unit(detail::group_amax(group));
  const float normalised = spec_.format == Format::int4 ? detail::int4_squared_error(group, p.scale, p.zero, unit)
                                                        : detail::fp4_squared_error(group, p.scale, unit);
  return static_cast<double>(normalised) / (static_cast<double>(unit) * unit);
}

}  // namespace microscale::formats
