// Building a GpuModel: from a checkpoint directory (plain or compressed-tensors quantized) or with
// random weights generated on the device (benchmarks: an 8B model without an 8B download).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "microscale/core/error.hpp"
#include "microscale/core/finite.hpp"
#include "microscale/cuda/gpu_model.hpp"
#include "microscale/cuda/gpu_model_state.hpp"
#include "microscale/cuda/transformer_launchers.hpp"
#include "microscale/export/checkpoint_layout.hpp"
#include "microscale/export/compressed_tensors.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/model/rope.hpp"

namespace microscale::cuda {
namespace {

using State = GpuModel::State;

void require_device(const std::string& what) {
  const char* why = "";
  if (device_count(&why) == 0) fail("{}: no CUDA device is available ({})", what, why);
}

// What the kernels support; checked before anything is uploaded.
void check_supported(const model::ModelConfig& c, const std::string& source) {
  const std::int64_t hd = c.head_dim;
  if (!(hd == 32 || hd == 64 || hd == 96 || hd == 128 || hd == 160 || hd == 192 || hd == 256)) {
    fail("{}: head_dim {} is not supported by the GPU attention kernel (32, 64, 96, 128, 160, 192, 256)", source, hd);
  }
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    fail("{}: {} attention heads are not a multiple of {} KV heads", source, c.num_heads, c.num_kv_heads);
  }
  if (c.hidden_size % 16 != 0 || c.intermediate_size % 16 != 0) {
    fail("{}: hidden_size {} and intermediate_size {} must be multiples of 16 on the GPU", source, c.hidden_size,
         c.intermediate_size);
  }
  if (c.max_position_embeddings > (std::int64_t{1} << 30)) fail("{}: max_position_embeddings is too large", source);
}

DeviceArray<float> upload_floats(std::span<const float> values) {
  DeviceArray<float> d(values.size());
  d.upload(values);
  return d;
}

DeviceArray<bf16_bits> upload_bf16(std::span<const float> values) {
  std::vector<bf16_bits> bits(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) bits[i] = float_to_bf16_bits(values[i]);
  DeviceArray<bf16_bits> d(bits.size());
  d.upload(bits);
  return d;
}

// A float tensor as BF16 on the device (BF16 tensors are copied bit for bit).
// Non-finite weights are refused as the CPU runtime refuses them (require_finite_weights).
DeviceArray<bf16_bits> upload_bf16(const io::TensorInfo& info) {
  const std::int64_t cols = info.shape.size() == 2 ? info.shape[1] : 0;
  if (info.dtype == io::DType::BF16) {
    std::vector<bf16_bits> bits(info.bytes.size() / sizeof(bf16_bits));
    std::memcpy(bits.data(), info.bytes.data(), bits.size() * sizeof(bf16_bits));
    // A BF16 value is NaN or infinite exactly when its 8 exponent bits are all ones.
    const auto bad = std::find_if(bits.begin(), bits.end(), [](bf16_bits b) { return (b & 0x7F80u) == 0x7F80u; });
    if (bad != bits.end()) {
      fail_non_finite_weight(formats::bf16_to_float(*bad), bad - bits.begin(), cols, info.file.string(), info.name);
    }
    DeviceArray<bf16_bits> d(bits.size());
    d.upload(bits);
    return d;
  }
  std::vector<float> values = io::to_f32(info);
  require_finite_weights(values, cols, info.file.string(), info.name);
  return upload_bf16(values);
}

class Loader {
 public:
  Loader(const std::filesystem::path& dir, const nlohmann::json& config_json, const model::ModelConfig& config)
      : dir_(dir), checkpoint_(dir), layout_(exporter::CheckpointLayout::from_config(config_json, dir / "config.json")),
        config_(config) {}

  const io::TensorInfo& require(const std::string& name, std::vector<std::int64_t> shape) const {
    const io::TensorInfo* info = checkpoint_.find(name);
    if (info == nullptr) fail("{}: missing tensor {} (model_type {})", dir_.string(), name, config_.model_type);
    if (info->shape != shape) {
      fail("{}: tensor {} has shape [{}], expected [{}] from config.json", info->file.string(), name,
           fmt::join(info->shape, ", "), fmt::join(shape, ", "));
    }
    return *info;
  }

  DeviceArray<float> vector(const std::string& name, std::int64_t size) const {
    const io::TensorInfo& info = require(name, {size});
    std::vector<float> values = io::to_f32(info);
    require_finite_weights(values, 0, info.file.string(), name);
    return upload_floats(values);
  }

  DeviceArray<bf16_bits> matrix_bf16(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    return upload_bf16(require(name, {rows, cols}));
  }

  GpuLinear linear(const std::string& prefix, std::int64_t out, std::int64_t in, bool bias) const {
    GpuLinear lin;
    lin.out = out;
    lin.in = in;
    if (layout_.is_quantized(checkpoint_, prefix)) {
      const formats::QuantSpec& spec = layout_.spec();
      if (spec.format == formats::Format::int4) {
        // No INT4 kernel: decoded on the host (exactly as the CPU runtime decodes it), stored as BF16.
        const Matrix w = layout_.load_weight(checkpoint_, prefix);
        check_shape(prefix, w.rows, w.cols, out, in);
        lin.weight = upload_bf16(w.data);
      } else {
        // MXFP4/NVFP4: the codes and scale bytes go to the device as stored.
        const formats::QuantizedMatrix q = exporter::read_compressed_linear(checkpoint_, prefix, spec);
        check_shape(prefix, q.rows, q.cols, out, in);
        lin.fp4 = upload_weight(q);
      }
      const rotation::RotationSpec rot = layout_.input_rotation(checkpoint_, prefix);
      if (rot.enabled()) lin.rotation = upload_rotation(rot, in);
    } else {
      lin.weight = matrix_bf16(prefix + ".weight", out, in);
    }
    if (bias) lin.bias = vector(prefix + ".bias", out);
    return lin;
  }

 private:
  void check_shape(const std::string& prefix, std::int64_t rows, std::int64_t cols, std::int64_t out,
                   std::int64_t in) const {
    if (rows != out || cols != in) {
      fail("{}: linear {} decodes to [{}, {}], expected [{}, {}] from config.json", dir_.string(), prefix, rows, cols,
           out, in);
    }
  }

  std::filesystem::path dir_;
  io::Checkpoint checkpoint_;
  exporter::CheckpointLayout layout_;
  const model::ModelConfig& config_;
};

DeviceArray<float> ones(std::int64_t n) { return upload_floats(std::vector<float>(static_cast<std::size_t>(n), 1.0f)); }

DeviceArray<bf16_bits> random_bf16(std::int64_t rows, std::int64_t cols, float scale, std::uint64_t seed,
                                   cudaStream_t stream) {
  DeviceArray<bf16_bits> d(static_cast<std::size_t>(rows * cols));
  check_cuda(detail::launch_fill_uniform_bf16(d.data(), rows * cols, seed, scale, stream), "random weights");
  return d;
}

// Random 4-bit codes with one constant group scale of 2^-7 (weights up to 6/128 in magnitude).
Fp4Weight random_fp4(formats::Format format, std::int64_t rows, std::int64_t cols, std::uint64_t seed,
                     cudaStream_t stream) {
  if (cols % 32 != 0) fail("random model: {} input features is not a multiple of 32", cols);
  Fp4Weight w;
  w.format = format;
  w.rows = rows;
  w.cols = cols;
  w.padded_cols = cols;
  // MXFP4: E8M0 120 = 2^-7. NVFP4: E4M3 0x38 = 1.0, divided by the global scale 128.
  w.global_scale = format == formats::Format::nvfp4 ? 128.0f : 1.0f;
  const int scale_byte = format == formats::Format::nvfp4 ? 0x38 : 120;
  w.codes = DeviceArray<std::uint8_t>(static_cast<std::size_t>(rows * cols / 2));
  w.scales = DeviceArray<std::uint8_t>(static_cast<std::size_t>(rows * (cols / w.group())));
  check_cuda(detail::launch_fill_random_bytes(w.codes.data(), rows * cols / 2, seed, stream), "random codes");
  check_cuda(cudaMemsetAsync(w.scales.data(), scale_byte, w.scales.bytes(), stream), "random scales");
  return w;
}

void use_kernels(GpuLinear& lin, Fp4Kernels kernels, cudaStream_t stream) {
  if (lin.fp4 && kernels == Fp4Kernels::tensor_cores) to_mma_layout(*lin.fp4, stream);
}

// One product for q/k/v and one for gate/up where their storage allows (gpu_linear.hpp), then the
// 4-bit weights into the layout of the chosen kernel (stacking works on the row layout).
void stack_layer(GpuLayer& l, Fp4Kernels kernels, cudaStream_t stream) {
  if (auto qkv = stack_linears({&l.q, &l.k, &l.v})) l.qkv = std::move(*qkv);
  if (auto gate_up = stack_linears({&l.gate, &l.up})) l.gate_up = std::move(*gate_up);
  for (GpuLinear* lin : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down, &l.qkv, &l.gate_up})
    use_kernels(*lin, kernels, stream);
}

void finish_common(State& s) {
  const model::ModelConfig& c = s.config;
  s.inv_freq = upload_floats(model::rope_inverse_frequencies(c.rope, c.head_dim));
  check_cuda(cudaStreamSynchronize(s.stream.get()), "model upload");
}

}  // namespace

GpuModel GpuModel::load(const std::filesystem::path& dir, Fp4Kernels kernels) {
  const auto config_path = dir / "config.json";
  require_device(dir.string());
  const nlohmann::json config_json = io::read_json_file(config_path);
  auto state = std::make_unique<State>();
  State& s = *state;
  s.config = model::parse_config(config_json, config_path);
  s.dir = dir;
  const model::ModelConfig& c = s.config;
  check_supported(c, config_path.string());
  const Loader loader(dir, config_json, c);

  if (c.tie_word_embeddings) {
    s.head.out = c.vocab_size;
    s.head.in = c.hidden_size;
    s.head.weight = loader.matrix_bf16("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
  } else {
    s.embedding = loader.matrix_bf16("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
    s.head = loader.linear("lm_head", c.vocab_size, c.hidden_size, false);
  }
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    GpuLayer l;
    l.q = loader.linear(p + "self_attn.q_proj", c.q_dim(), c.hidden_size, c.qkv_bias);
    l.k = loader.linear(p + "self_attn.k_proj", c.kv_dim(), c.hidden_size, c.qkv_bias);
    l.v = loader.linear(p + "self_attn.v_proj", c.kv_dim(), c.hidden_size, c.qkv_bias);
    l.o = loader.linear(p + "self_attn.o_proj", c.hidden_size, c.q_dim(), c.o_bias);
    l.gate = loader.linear(p + "mlp.gate_proj", c.intermediate_size, c.hidden_size, c.mlp_bias);
    l.up = loader.linear(p + "mlp.up_proj", c.intermediate_size, c.hidden_size, c.mlp_bias);
    l.down = loader.linear(p + "mlp.down_proj", c.hidden_size, c.intermediate_size, c.mlp_bias);
    l.input_norm = loader.vector(p + "input_layernorm.weight", c.hidden_size);
    l.post_attention_norm = loader.vector(p + "post_attention_layernorm.weight", c.hidden_size);
    if (c.qk_norm) {
      l.q_norm = loader.vector(p + "self_attn.q_norm.weight", c.head_dim);
      l.k_norm = loader.vector(p + "self_attn.k_norm.weight", c.head_dim);
    }
    stack_layer(l, kernels, s.stream.get());
    s.layers.push_back(std::move(l));
  }
  use_kernels(s.head, kernels, s.stream.get());
  s.final_norm = loader.vector("model.norm.weight", c.hidden_size);
  finish_common(s);
  return GpuModel(std::move(state));
}

GpuModel GpuModel::random(const model::ModelConfig& config, std::optional<formats::Format> linears,
                          std::uint64_t seed, Fp4Kernels kernels) {
  require_device("GpuModel::random");
  if (linears && *linears == formats::Format::int4) fail("GpuModel::random: int4 linears are not supported");
  if (config.hidden_size <= 0 || config.intermediate_size <= 0 || config.num_layers <= 0 || config.vocab_size <= 0 ||
      config.head_dim <= 0 || config.num_heads <= 0) {
    fail("GpuModel::random: the config has non-positive sizes");
  }
  auto state = std::make_unique<State>();
  State& s = *state;
  s.config = config;
  const model::ModelConfig& c = s.config;
  check_supported(c, "GpuModel::random");
  const cudaStream_t st = s.stream.get();
  std::uint64_t next_seed = seed * 1000003u;
  auto make_linear = [&](std::int64_t out, std::int64_t in, bool bias) {
    GpuLinear lin;
    lin.out = out;
    lin.in = in;
    if (linears) {
      lin.fp4 = random_fp4(*linears, out, in, ++next_seed, st);
    } else {
      lin.weight = random_bf16(out, in, static_cast<float>(1.0 / std::sqrt(static_cast<double>(in))), ++next_seed, st);
    }
    if (bias) lin.bias = upload_floats(std::vector<float>(static_cast<std::size_t>(out), 0.0f));
    return lin;
  };

  DeviceArray<bf16_bits> table = random_bf16(c.vocab_size, c.hidden_size, 1.0f, ++next_seed, st);
  s.head.out = c.vocab_size;
  s.head.in = c.hidden_size;
  if (c.tie_word_embeddings) {
    s.head.weight = std::move(table);
  } else {
    s.embedding = std::move(table);
    s.head.weight = random_bf16(c.vocab_size, c.hidden_size, static_cast<float>(1.0 / std::sqrt(double(c.hidden_size))),
                                ++next_seed, st);
  }
  for (int i = 0; i < c.num_layers; ++i) {
    GpuLayer l;
    l.q = make_linear(c.q_dim(), c.hidden_size, c.qkv_bias);
    l.k = make_linear(c.kv_dim(), c.hidden_size, c.qkv_bias);
    l.v = make_linear(c.kv_dim(), c.hidden_size, c.qkv_bias);
    l.o = make_linear(c.hidden_size, c.q_dim(), c.o_bias);
    l.gate = make_linear(c.intermediate_size, c.hidden_size, c.mlp_bias);
    l.up = make_linear(c.intermediate_size, c.hidden_size, c.mlp_bias);
    l.down = make_linear(c.hidden_size, c.intermediate_size, c.mlp_bias);
    l.input_norm = ones(c.hidden_size);
    l.post_attention_norm = ones(c.hidden_size);
    if (c.qk_norm) {
      l.q_norm = ones(c.head_dim);
      l.k_norm = ones(c.head_dim);
    }
    stack_layer(l, kernels, st);
    s.layers.push_back(std::move(l));
  }
  s.final_norm = ones(c.hidden_size);
  finish_common(s);
  return GpuModel(std::move(state));
}

}  // namespace microscale::cuda
