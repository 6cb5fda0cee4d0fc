// Whole-matrix operations: quantize (choose + encode every group), pack_with_params, dequantize and
// relative_error. Rows are independent, so every loop runs OpenMP over rows.
#include "microscale/formats/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string>
#include <mutex>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/core/finite.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/format_rules.hpp"
#include "microscale/formats/group_kernels.hpp"

namespace microscale::formats {
namespace {

// Runs body(row) for every row on the OpenMP team; the first exception is rethrown on the caller's
// thread (exceptions must not escape an OpenMP region). Small matrices stay on the calling thread:
// waking a team costs more than quantizing a few thousand values, and much more on a busy machine.
// Rows are handed out dynamically (4 at a time): with a static split, one preempted thread on a
// shared machine holds up the whole team.
constexpr std::int64_t kParallelValues = 1 << 16;

template <typename Body>
void for_each_row(std::int64_t rows, std::int64_t cols, Body body) {
  std::exception_ptr error;
  std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 4) if (rows * cols >= kParallelValues)
  for (std::int64_t r = 0; r < rows; ++r) {
    try {
      body(r);
    } catch (...) {
      const std::lock_guard lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void check_shape(ConstMatrixView w, const QuantSpec& spec, std::string_view what) {
  if (w.rows < 0 || w.cols <= 0) fail("{}: cannot quantize a {}x{} matrix", what, w.rows, w.cols);
  if (w.data.size() != static_cast<std::size_t>(w.rows * w.cols))
    fail("{}: matrix view holds {} values but is declared {}x{}", what, w.data.size(), w.rows, w.cols);
  const std::int64_t group = spec.group_for(w.cols);
  if (w.cols % group != 0)
    fail("{}: {} columns is not a multiple of the group size {} ({})", what, w.cols, group, describe(spec));
  if (w.cols % 2 != 0)
    fail("{}: {} columns is odd, but 4-bit codes are packed two per byte ({})", what, w.cols, describe(spec));
}

void check_finite(ConstMatrixView w, std::string_view what) {
  const std::int64_t index = first_non_finite(w.data);
  if (index >= 0)
    fail("{}: weight at row {}, column {} is {}; quantization needs finite values", what, index / w.cols,
         index % w.cols, w.data[static_cast<std::size_t>(index)]);
}

QuantizedMatrix allocate(const QuantSpec& spec, std::int64_t rows, std::int64_t cols, float global_scale) {
  QuantizedMatrix q;
  q.spec = spec;
  q.rows = rows;
  q.cols = cols;
  q.global_scale = spec.format == Format::nvfp4 ? global_scale : 1.0f;
  const auto groups = static_cast<std::size_t>(rows * q.groups_per_row());
  q.codes.assign(static_cast<std::size_t>(rows * cols / 2), 0);
  if (spec.format == Format::int4) {
    q.scales.assign(groups, 0.0f);
    if (!spec.symmetric) q.zeros.assign(groups, 0);
  } else {
    q.scale_codes.assign(groups, 0);
  }
  return q;
}

void store_params(QuantizedMatrix& q, std::size_t index, const GroupParams& p) {
  if (q.spec.format == Format::int4) {
    q.scales[index] = p.scale;
    if (!q.spec.symmetric) q.zeros[index] = static_cast<std::uint8_t>(p.zero);
  } else {
    q.scale_codes[index] = p.scale_code;
  }
}

// Codes of one group, two per byte, element 2i in the low nibble. Same arithmetic as
// GroupQuantizer::encode (one division, then the shared rounding), written for the vectoriser:
// codes go to an int32 scratch first, then pairs are packed.
void encode_group(Format format, std::span<const float> group, const GroupParams& p, std::uint8_t* out) {
  constexpr std::size_t kChunk = 256;
  std::int32_t codes[kChunk];
  const float* x = group.data();
  for (std::size_t start = 0; start < group.size(); start += kChunk) {
    const std::size_t n = std::min(kChunk, group.size() - start);  // even: groups and chunks are even
    if (format == Format::int4) {
      for (std::size_t i = 0; i < n; ++i)
        codes[i] = static_cast<std::int32_t>(detail::int4_round_code(x[start + i], p.scale, p.zero));
    } else {
      detail::e2m1_codes(x + start, n, p.scale, codes);
    }
    std::uint8_t* o = out + start / 2;
    for (std::size_t i = 0; i < n / 2; ++i) o[i] = static_cast<std::uint8_t>(codes[2 * i] | (codes[2 * i + 1] << 4));
  }
}

// Why p cannot be stored in `spec`'s checkpoint layout, or empty when it can.
std::string invalid_params_reason(const QuantSpec& spec, float global_scale, const GroupParams& p) {
  switch (spec.format) {
    case Format::mxfp4:
      if (p.scale_code == 0xFF) return "E8M0 scale code 0xFF is NaN";
      if (p.scale != e8m0_to_float(p.scale_code))
        return fmt::format("scale {} is not the value of its E8M0 code {:#04x}", p.scale, p.scale_code);
      return {};
    case Format::nvfp4:
      if (p.scale_code == 0 || p.scale_code > 0x7E)
        return fmt::format("E4M3 scale code {:#04x} is not a positive finite scale", p.scale_code);
      if (p.scale != e4m3_to_float(p.scale_code) / global_scale)
        return fmt::format("scale {} is not its E4M3 code {:#04x} divided by the global scale {}", p.scale,
                           p.scale_code, global_scale);
      return {};
    case Format::int4:
      if (!(p.scale > 0.0f) || !std::isfinite(p.scale)) return fmt::format("scale {} is not positive and finite", p.scale);
      if (detail::round_to_bf16(p.scale) != p.scale) return fmt::format("scale {} is not exactly representable in BF16", p.scale);
      if (p.zero != std::floor(p.zero) || p.zero < 0.0f || p.zero > 15.0f)
        return fmt::format("zero point {} is not an integer in [0, 15]", p.zero);
      if (spec.symmetric && p.zero != 8.0f) return fmt::format("symmetric int4 needs zero point 8 (got {})", p.zero);
      return {};
  }
  return {};
}

QuantizedMatrix quantize_checked(ConstMatrixView weights, const QuantSpec& spec, float global_scale) {
  const GroupQuantizer quantizer(spec, global_scale);
  QuantizedMatrix q = allocate(spec, weights.rows, weights.cols, quantizer.global_scale());
  const std::int64_t group = q.group_size();
  const std::int64_t groups = q.groups_per_row();
  for_each_row(weights.rows, weights.cols, [&](std::int64_t r) {
    const auto row = weights.row(r);
    std::uint8_t* codes = q.codes.data() + r * weights.cols / 2;
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto values = row.subspan(static_cast<std::size_t>(g * group), static_cast<std::size_t>(group));
      const GroupParams p = quantizer.choose(values);
      store_params(q, static_cast<std::size_t>(r * groups + g), p);
      encode_group(spec.format, values, p, codes + g * group / 2);
    }
  });
  return q;
}

void check_consistent(const QuantizedMatrix& q) {
  const std::string what = describe(q.spec);
  if (q.rows < 0 || q.cols <= 0 || q.cols % 2 != 0 || q.cols % q.group_size() != 0)
    fail("quantized matrix ({}) has an invalid shape {}x{}", what, q.rows, q.cols);
  const auto groups = static_cast<std::size_t>(q.rows * q.groups_per_row());
  const bool ok_codes = q.codes.size() == static_cast<std::size_t>(q.rows * q.cols / 2);
  const bool ok_params = q.spec.format == Format::int4
                             ? q.scales.size() == groups && (q.spec.symmetric || q.zeros.size() == groups)
                             : q.scale_codes.size() == groups;
  if (!ok_codes || !ok_params)
    fail("quantized matrix ({}, {}x{}) has {} code bytes, {} scale codes, {} scales, {} zeros: inconsistent sizes",
         what, q.rows, q.cols, q.codes.size(), q.scale_codes.size(), q.scales.size(), q.zeros.size());
}

void dequantize_row(const QuantizedMatrix& q, std::int64_t r, float* out) {
  // Same products as GroupQuantizer::decode: e2m1 * scale, or (u - zero) * scale.
  static constexpr float kE2M1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                      -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  const std::int64_t group = q.group_size();
  const std::int64_t groups = q.groups_per_row();
  const std::uint8_t* codes = q.codes.data() + r * q.cols / 2;
  for (std::int64_t g = 0; g < groups; ++g) {
    const GroupParams p = q.params(r, g);
    const std::uint8_t* b = codes + g * group / 2;
    float* o = out + g * group;
    const float scale = p.scale;
    if (q.spec.format == Format::int4) {
      const float zero = p.zero;
      for (std::int64_t i = 0; i < group / 2; ++i) {
        o[2 * i] = (static_cast<float>(b[i] & 0xFu) - zero) * scale;
        o[2 * i + 1] = (static_cast<float>(b[i] >> 4) - zero) * scale;
      }
    } else {
      for (std::int64_t i = 0; i < group / 2; ++i) {
        o[2 * i] = kE2M1[b[i] & 0xFu] * scale;
        o[2 * i + 1] = kE2M1[b[i] >> 4] * scale;
      }
    }
  }
}

}  // namespace

QuantizedMatrix quantize(ConstMatrixView weights, const QuantSpec& spec, std::string_view what) {
  check_shape(weights, spec, what);
  check_finite(weights, what);
  return quantize_checked(weights, spec, tensor_global_scale(spec, weights.data));
}

QuantizedMatrix quantize(ConstMatrixView weights, const QuantSpec& spec, float global_scale, std::string_view what) {
  check_shape(weights, spec, what);
  check_finite(weights, what);
  return quantize_checked(weights, spec, global_scale);
}

QuantizedMatrix pack_with_params(ConstMatrixView values, const QuantSpec& spec, float global_scale,
                                 std::span<const GroupParams> params, std::string_view what) {
  check_shape(values, spec, what);
  check_finite(values, what);
  const GroupQuantizer quantizer(spec, global_scale);
  QuantizedMatrix q = allocate(spec, values.rows, values.cols, quantizer.global_scale());
  const std::int64_t group = q.group_size();
  const std::int64_t groups = q.groups_per_row();
  if (params.size() != static_cast<std::size_t>(values.rows * groups))
    fail("{}: {} group parameters given for {} rows x {} groups", what, params.size(), values.rows, groups);
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string reason = invalid_params_reason(spec, quantizer.global_scale(), params[i]);
    if (!reason.empty())
      fail("{}: group parameters of row {}, group {} do not fit {}: {}", what, static_cast<std::int64_t>(i) / groups,
           static_cast<std::int64_t>(i) % groups, describe(spec), reason);
  }
  for_each_row(values.rows, values.cols, [&](std::int64_t r) {
    const auto row = values.row(r);
    std::uint8_t* codes = q.codes.data() + r * values.cols / 2;
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto index = static_cast<std::size_t>(r * groups + g);
      store_params(q, index, params[index]);
      encode_group(spec.format, row.subspan(static_cast<std::size_t>(g * group), static_cast<std::size_t>(group)),
                   params[index], codes + g * group / 2);
    }
  });
  return q;
}

void dequantize(const QuantizedMatrix& q, MatrixView out) {
  check_consistent(q);
  if (out.rows != q.rows || out.cols != q.cols || out.data.size() != static_cast<std::size_t>(q.rows * q.cols))
    fail("dequantize: output is {}x{} ({} values) but the quantized matrix is {}x{}", out.rows, out.cols,
         out.data.size(), q.rows, q.cols);
  for_each_row(q.rows, q.cols, [&](std::int64_t r) { dequantize_row(q, r, out.row(r).data()); });
}

double relative_error(ConstMatrixView weights, const QuantizedMatrix& q) {
  check_consistent(q);
  if (weights.rows != q.rows || weights.cols != q.cols || weights.data.size() != static_cast<std::size_t>(q.rows * q.cols))
    fail("relative_error: weights are {}x{} but the quantized matrix is {}x{}", weights.rows, weights.cols, q.rows, q.cols);
  double error = 0.0;
  double norm = 0.0;
#pragma omp parallel reduction(+ : error, norm) if (q.rows * q.cols >= kParallelValues)
  {
    std::vector<float> buffer(static_cast<std::size_t>(q.cols));
#pragma omp for schedule(dynamic, 4)
    for (std::int64_t r = 0; r < q.rows; ++r) {
      dequantize_row(q, r, buffer.data());
      const auto w = weights.row(r);
      for (std::int64_t c = 0; c < q.cols; ++c) {
        const double x = w[static_cast<std::size_t>(c)];
        const double d = x - static_cast<double>(buffer[static_cast<std::size_t>(c)]);
        error += d * d;
        norm += x * x;
      }
    }
  }
  if (norm == 0.0) return error == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return error / norm;
}

}  // namespace microscale::formats
