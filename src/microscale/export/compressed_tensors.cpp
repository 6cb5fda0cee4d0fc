#include "microscale/export/compressed_tensors.hpp"

#include <cstring>

#include "microscale/core/error.hpp"
#include "microscale/formats/codecs.hpp"

namespace microscale::exporter {
namespace {

using formats::Format;

std::vector<std::byte> bytes_of(std::span<const std::uint8_t> values) {
  auto b = std::as_bytes(values);
  return {b.begin(), b.end()};
}

template <typename T>
std::vector<std::byte> bytes_of_values(const std::vector<T>& values) {
  std::vector<std::byte> out(values.size() * sizeof(T));
  std::memcpy(out.data(), values.data(), out.size());
  return out;
}

// Eight nibbles per little-endian int32 word, element i of a word at bits 4i (compressed-tensors' packing).
std::vector<std::int32_t> nibbles_to_words_along_rows(std::span<const std::uint8_t> packed_pairs, std::int64_t rows,
                                                      std::int64_t cols) {
  // Two nibbles per byte with element 2i low is the same bit order as eight per word: copy bytes.
  std::vector<std::int32_t> words(static_cast<std::size_t>(rows * cols / 8));
  std::memcpy(words.data(), packed_pairs.data(), words.size() * sizeof(std::int32_t));
  return words;
}

// Zero points are packed along dim 0: word (r/8, g) holds rows r..r+7 of group column g.
std::vector<std::int32_t> pack_zero_points(std::span<const std::uint8_t> zeros, std::int64_t rows,
                                           std::int64_t groups) {
  const std::int64_t packed_rows = (rows + 7) / 8;
  std::vector<std::int32_t> words(static_cast<std::size_t>(packed_rows * groups), 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t g = 0; g < groups; ++g) {
      auto& word = words[static_cast<std::size_t>((r / 8) * groups + g)];
      const auto nibble = static_cast<std::uint32_t>(zeros[static_cast<std::size_t>(r * groups + g)] & 0xF);
      word = static_cast<std::int32_t>(static_cast<std::uint32_t>(word) | (nibble << (4 * (r % 8))));
    }
  }
  return words;
}

std::vector<std::uint8_t> unpack_zero_points(std::span<const std::int32_t> words, std::int64_t rows,
                                             std::int64_t groups) {
  std::vector<std::uint8_t> zeros(static_cast<std::size_t>(rows * groups));
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t g = 0; g < groups; ++g) {
      const auto word = static_cast<std::uint32_t>(words[static_cast<std::size_t>((r / 8) * groups + g)]);
      zeros[static_cast<std::size_t>(r * groups + g)] = static_cast<std::uint8_t>((word >> (4 * (r % 8))) & 0xF);
    }
  }
  return zeros;
}

const io::TensorInfo& expect(const io::Checkpoint& checkpoint, const std::string& name, io::DType dtype,
                             const std::vector<std::int64_t>& shape) {
  const io::TensorInfo& t = checkpoint.at(name);
  if (t.dtype != dtype) {
    fail("{}: tensor {} has dtype {}, expected {}", t.file.string(), name, io::dtype_name(t.dtype),
         io::dtype_name(dtype));
  }
  if (t.shape != shape) {
    fail("{}: tensor {} has shape [{}], expected [{}]", t.file.string(), name, fmt::join(t.shape, ", "),
         fmt::join(shape, ", "));
  }
  return t;
}

template <typename T>
std::vector<T> copy_values(const io::TensorInfo& t) {
  std::vector<T> out(t.bytes.size() / sizeof(T));
  std::memcpy(out.data(), t.bytes.data(), out.size() * sizeof(T));
  return out;
}

}  // namespace

std::string_view compression_format(const formats::QuantSpec& spec) {
  switch (spec.format) {
    case Format::nvfp4: return "nvfp4-pack-quantized";
    case Format::mxfp4: return "mxfp4-pack-quantized";
    case Format::int4: return "pack-quantized";
  }
  return "";
}

std::vector<OwnedTensor> compressed_linear_tensors(const std::string& prefix, const formats::QuantizedMatrix& q) {
  std::vector<OwnedTensor> out;
  auto add = [&out](std::string name, io::DType dtype, std::vector<std::int64_t> shape, std::vector<std::byte> data) {
    out.push_back({std::move(name), dtype, std::move(shape), std::move(data)});
  };
  const std::int64_t groups = q.groups_per_row();
  switch (q.spec.format) {
    case Format::nvfp4:
    case Format::mxfp4: {
      add(prefix + ".weight_packed", io::DType::U8, {q.rows, q.cols / 2}, bytes_of(q.codes));
      const io::DType scale_dtype = q.spec.format == Format::nvfp4 ? io::DType::F8_E4M3 : io::DType::U8;
      add(prefix + ".weight_scale", scale_dtype, {q.rows, groups}, bytes_of(q.scale_codes));
      if (q.spec.format == Format::nvfp4) {
        add(prefix + ".weight_global_scale", io::DType::F32, {1},
                   bytes_of_values(std::vector<float>{q.global_scale}));
      }
      break;
    }
    case Format::int4: {
      if (q.cols % 8 != 0) fail("{}: int4 export needs in_features divisible by 8, got {}", prefix, q.cols);
      add(prefix + ".weight_packed", io::DType::I32, {q.rows, q.cols / 8},
                 bytes_of_values(nibbles_to_words_along_rows(q.codes, q.rows, q.cols)));
      std::vector<std::uint16_t> scales(q.scales.size());
      for (std::size_t i = 0; i < scales.size(); ++i) scales[i] = formats::bf16_from_float(q.scales[i]);
      add(prefix + ".weight_scale", io::DType::BF16, {q.rows, groups}, bytes_of_values(scales));
      if (!q.spec.symmetric) {
        add(prefix + ".weight_zero_point", io::DType::I32, {(q.rows + 7) / 8, groups},
                   bytes_of_values(pack_zero_points(q.zeros, q.rows, groups)));
      }
      add(prefix + ".weight_shape", io::DType::I64, {2},
                 bytes_of_values(std::vector<std::int64_t>{q.rows, q.cols}));
      break;
    }
  }
  return out;
}

formats::QuantizedMatrix read_compressed_linear(const io::Checkpoint& checkpoint, std::string_view prefix_view,
                                                const formats::QuantSpec& spec) {
  const std::string prefix(prefix_view);
  formats::QuantizedMatrix q;
  q.spec = spec;
  const io::TensorInfo& packed = checkpoint.at(prefix + ".weight_packed");
  if (packed.shape.size() != 2) fail("{}: tensor {}.weight_packed should be 2-D", packed.file.string(), prefix);
  q.rows = packed.shape[0];
  if (spec.format == Format::int4) {
    const auto shape_values = copy_values<std::int64_t>(expect(checkpoint, prefix + ".weight_shape", io::DType::I64, {2}));
    q.cols = shape_values[1];
    if (shape_values[0] != q.rows || q.cols != packed.shape[1] * 8) {
      fail("{}: {}.weight_shape [{}, {}] contradicts weight_packed [{}, {}]", packed.file.string(), prefix,
           shape_values[0], shape_values[1], packed.shape[0], packed.shape[1]);
    }
    expect(checkpoint, prefix + ".weight_packed", io::DType::I32, {q.rows, q.cols / 8});
  } else {
    q.cols = packed.shape[1] * 2;
    expect(checkpoint, prefix + ".weight_packed", io::DType::U8, {q.rows, q.cols / 2});
  }
  const std::int64_t group = spec.group_for(q.cols);
  if (q.cols % group != 0) {
    fail("{}: {} has {} input features, not a multiple of the group size {}", packed.file.string(), prefix, q.cols,
         group);
  }
  const std::int64_t groups = q.cols / group;
  q.codes.resize(static_cast<std::size_t>(q.rows * q.cols / 2));
  std::memcpy(q.codes.data(), packed.bytes.data(), q.codes.size());

  switch (spec.format) {
    case Format::nvfp4:
    case Format::mxfp4: {
      const io::DType scale_dtype = spec.format == Format::nvfp4 ? io::DType::F8_E4M3 : io::DType::U8;
      q.scale_codes = copy_values<std::uint8_t>(expect(checkpoint, prefix + ".weight_scale", scale_dtype, {q.rows, groups}));
      if (spec.format == Format::nvfp4) {
        q.global_scale = copy_values<float>(expect(checkpoint, prefix + ".weight_global_scale", io::DType::F32, {1}))[0];
      }
      break;
    }
    case Format::int4: {
      const auto& scale = checkpoint.at(prefix + ".weight_scale");
      if (scale.shape != std::vector<std::int64_t>{q.rows, groups}) {
        fail("{}: tensor {}.weight_scale has shape [{}], expected [{}, {}]", scale.file.string(), prefix,
             fmt::join(scale.shape, ", "), q.rows, groups);
      }
      q.scales.resize(static_cast<std::size_t>(q.rows * groups));
      io::to_f32(scale, q.scales);
      if (!spec.symmetric) {
        const auto words = copy_values<std::int32_t>(
            expect(checkpoint, prefix + ".weight_zero_point", io::DType::I32, {(q.rows + 7) / 8, groups}));
        q.zeros = unpack_zero_points(words, q.rows, groups);
      }
      break;
    }
  }
  return q;
}

nlohmann::json quantization_config(const formats::QuantSpec& spec, const rotation::RotationSpec& rotation,
                                   const std::vector<std::string>& ignore) {
  const bool is_float = spec.format != Format::int4;
  std::string strategy = "group";
  if (spec.format == Format::nvfp4) strategy = "tensor_group";
  if (spec.format == Format::int4 && spec.group_size == 0) strategy = "channel";
  nlohmann::json weights = {
      {"num_bits", 4},
      {"type", is_float ? "float" : "int"},
      {"symmetric", spec.symmetric},
      {"strategy", strategy},
      {"group_size", spec.group_size == 0 ? nlohmann::json(nullptr) : nlohmann::json(spec.group_size)},
      {"dynamic", false},
      {"actorder", nullptr},
      {"block_structure", nullptr},
      {"observer", spec.scale == formats::ScaleSearch::mse ? "mse" : "minmax"},
      {"observer_kwargs", nlohmann::json::object()},
  };
  if (spec.format == Format::mxfp4) weights["scale_dtype"] = "uint8";
  nlohmann::json config = {
      {"quant_method", "compressed-tensors"},
      {"format", compression_format(spec)},
      {"quantization_status", "compressed"},
      {"config_groups",
       {{"group_0",
         {{"targets", {"Linear"}},
          {"weights", weights},
          {"input_activations", nullptr},
          {"output_activations", nullptr},
          {"format", compression_format(spec)}}}}},
      {"ignore", ignore},
      {"kv_cache_scheme", nullptr},
      {"sparsity_config", nlohmann::json::object()},
      {"global_compression_ratio", nullptr},
  };
  nlohmann::json ours = {
      {"format", formats::format_name(spec.format)},
      {"group_size", spec.group_size},
      {"symmetric", spec.symmetric},
      {"scale_search", formats::scale_search_name(spec.scale)},
      {"mx_rounding", formats::mx_rounding_name(spec.mx_rounding)},
  };
  if (rotation.enabled()) {
    // The weights are stored in the rotated basis W·R; the runtime must rotate each quantized linear's
    // input rows by the same R (block Walsh-Hadamard, optional seeded signs) before the matmul.
    ours["rotation"] = {{"type", "block_hadamard"},
                        {"block_size", rotation.block},
                        {"random_signs", rotation.random_signs},
                        {"seed", rotation.seed},
                        {"applies_to", "inputs of every quantized linear"}};
  }
  config["microscale"] = ours;
  return config;
}

ParsedQuantizationConfig parse_quantization_config(const nlohmann::json& qc, const std::filesystem::path& path) {
  try {
    if (qc.value("quant_method", "") != "compressed-tensors") {
      fail("{}: quantization_config.quant_method is '{}', only 'compressed-tensors' is supported", path.string(),
           qc.value("quant_method", ""));
    }
    ParsedQuantizationConfig parsed;
    const std::string format = qc.value("format", "");
    const auto& groups = qc.at("config_groups");
    if (groups.size() != 1) {
      fail("{}: quantization_config has {} config_groups; microscale reads checkpoints with exactly one",
           path.string(), groups.size());
    }
    const auto& weights = groups.begin().value().at("weights");
    const int bits = weights.at("num_bits").get<int>();
    if (bits != 4) fail("{}: {}-bit weights are not supported (4-bit only)", path.string(), bits);
    const int group_size = weights.at("group_size").is_null() ? 0 : weights.at("group_size").get<int>();
    const bool symmetric = weights.value("symmetric", true);
    formats::Format kind;
    if (format == "nvfp4-pack-quantized") {
      kind = Format::nvfp4;
    } else if (format == "mxfp4-pack-quantized") {
      kind = Format::mxfp4;
    } else if (format == "pack-quantized") {
      kind = Format::int4;
    } else {
      fail("{}: compressed-tensors format '{}' is not supported (supported: nvfp4-pack-quantized, "
           "mxfp4-pack-quantized, pack-quantized)",
           path.string(), format);
    }
    auto scale = formats::ScaleSearch::absmax;
    auto rounding = formats::MxRounding::ocp;
    if (qc.contains("microscale")) {
      const auto& ours = qc.at("microscale");
      scale = formats::parse_scale_search(ours.value("scale_search", "absmax"));
      rounding = formats::parse_mx_rounding(ours.value("mx_rounding", "ocp"));
      if (ours.contains("rotation")) {
        const auto& r = ours.at("rotation");
        parsed.rotation.block = r.at("block_size").get<int>();
        parsed.rotation.random_signs = r.at("random_signs").get<bool>();
        parsed.rotation.seed = r.at("seed").get<std::uint64_t>();
      }
    }
    parsed.spec = formats::make_spec(kind, group_size, symmetric, scale, rounding);
    return parsed;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed quantization_config: {}", path.string(), e.what());
  }
}

}  // namespace microscale::exporter
