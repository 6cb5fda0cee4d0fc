#include "microscale/export/gguf_export.hpp"

#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>

#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/export/checkpoint_layout.hpp"
#include "microscale/export/compressed_tensors.hpp"
#include "microscale/export/ggml_blocks.hpp"
#include "microscale/export/gguf_file.hpp"
#include "microscale/export/gguf_layout.hpp"
#include "microscale/export/gguf_tokenizer.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/model/rope.hpp"

namespace microscale::exporter {
namespace fs = std::filesystem;
namespace {

using model::LinearKind;

// llama_ftype values (llama.h / gguf-py LlamaFileType) describing the bulk of the weights.
constexpr std::uint32_t kFileTypeF32 = 0, kFileTypeF16 = 1, kFileTypeQ4_0 = 2, kFileTypeBF16 = 32,
                        kFileTypeMxfp4 = 38, kFileTypeNvfp4 = 39;

ggml::Type float_type(const io::TensorInfo& t) {
  switch (t.dtype) {
    case io::DType::F32: return ggml::Type::f32;
    case io::DType::F16: return ggml::Type::f16;
    case io::DType::BF16: return ggml::Type::bf16;
    default:
      fail("{}: tensor {} has dtype {}, which has no plain GGUF type (F32, F16, BF16)", t.file.string(), t.name,
           io::dtype_name(t.dtype));
  }
}

std::vector<std::byte> permute_rows(std::span<const std::byte> bytes, std::size_t row_bytes,
                                    const std::vector<std::int64_t>& perm) {
  std::vector<std::byte> out(bytes.size());
  for (std::size_t p = 0; p < perm.size(); ++p) {
    std::memcpy(out.data() + p * row_bytes, bytes.data() + static_cast<std::size_t>(perm[p]) * row_bytes, row_bytes);
  }
  return out;
}

template <typename T>
void permute_vector(std::vector<T>& values, std::size_t per_row, const std::vector<std::int64_t>& perm) {
  if (values.empty()) return;
  const auto bytes = std::as_bytes(std::span<const T>(values));
  const auto permuted = permute_rows(bytes, per_row * sizeof(T), perm);
  std::memcpy(values.data(), permuted.data(), permuted.size());
}

// Reorders the rows of a quantized matrix; groups run along rows, so every group stays whole.
void permute_rows(formats::QuantizedMatrix& q, const std::vector<std::int64_t>& perm) {
  const auto groups = static_cast<std::size_t>(q.groups_per_row());
  permute_vector(q.codes, static_cast<std::size_t>(q.cols / 2), perm);
  permute_vector(q.scale_codes, groups, perm);
  permute_vector(q.scales, groups, perm);
  permute_vector(q.zeros, groups, perm);
}

std::vector<std::byte> f32_bytes(const std::vector<float>& v) {
  const auto b = std::as_bytes(std::span<const float>(v));
  return {b.begin(), b.end()};
}

bool is_within(const fs::path& child, const fs::path& parent) {
  auto c = child.begin();
  for (auto p = parent.begin(); p != parent.end(); ++p, ++c) {
    if (c == child.end() || *c != *p) return false;
  }
  return true;
}

class Exporter {
 public:
  Exporter(const fs::path& model_dir, const model::ModelConfig& config, const nlohmann::json& config_json)
      : dir_(model_dir),
        config_(config),
        checkpoint_(model_dir),
        layout_(CheckpointLayout::from_config(config_json, model_dir / "config.json")),
        arch_(gguf::architecture_for(config, (model_dir / "config.json").string())) {}

  const CheckpointLayout& layout() const { return layout_; }
  const io::Checkpoint& checkpoint() const { return checkpoint_; }
  const std::string& arch() const { return arch_; }
  gguf::Writer& writer() { return writer_; }
  GgufExportReport& report() { return report_; }

  void add_tensors() {
    add_plain("model.embed_tokens.weight", "token_embd.weight");
    if (config_.rope.type == model::RopeType::llama3) add_rope_freqs();
    for (int l = 0; l < config_.num_layers; ++l) add_layer(l);
    add_f32("model.norm.weight", "output_norm.weight");
    if (!config_.tie_word_embeddings) {
      add_linear("lm_head", "output", {config_.vocab_size, config_.hidden_size}, nullptr);
    }
  }

 private:
  void count(ggml::Type type) { ++report_.tensors_by_type[std::string(ggml::traits(type).name)]; }

  // A float tensor kept in its stored type (the embedding, an unquantized linear), rows optionally permuted.
  void add_plain(const std::string& hf_name, const std::string& gguf_name, const std::vector<std::int64_t>* perm = nullptr) {
    const io::TensorInfo& t = checkpoint_.at(hf_name);
    if (t.shape.size() != 2) fail("{}: tensor {} should be 2-D, has {} dims", t.file.string(), hf_name, t.shape.size());
    const ggml::Type type = float_type(t);
    const auto rows = static_cast<std::size_t>(t.shape[0]);
    std::optional<std::vector<std::int64_t>> order;
    if (perm != nullptr) order = *perm;
    writer_.add_tensor(gguf_name, {static_cast<std::uint64_t>(t.shape[1]), rows}, type, [&t, rows, order] {
      if (!order) return std::vector<std::byte>(t.bytes.begin(), t.bytes.end());
      return permute_rows(t.bytes, t.bytes.size() / rows, *order);
    });
    count(type);
  }

  // A 1-D tensor (norm weight, bias) as F32, optionally permuted (q/k biases).
  void add_f32(const std::string& hf_name, const std::string& gguf_name,
               const std::vector<std::int64_t>* perm = nullptr) {
    const io::TensorInfo& t = checkpoint_.at(hf_name);
    if (t.shape.size() != 1) fail("{}: tensor {} should be 1-D, has {} dims", t.file.string(), hf_name, t.shape.size());
    std::vector<float> values = io::to_f32(t);
    if (perm != nullptr) permute_vector(values, 1, *perm);
    writer_.add_tensor(gguf_name, {values.size()}, ggml::Type::f32, f32_bytes(values));
    count(ggml::Type::f32);
  }

  void add_linear(const std::string& hf_prefix, const std::string& gguf_base, model::LinearShape shape,
                  const std::vector<std::int64_t>* perm) {
    const std::string name = gguf_base + ".weight";
    if (!layout_.is_quantized(checkpoint_, hf_prefix)) {
      add_plain(hf_prefix + ".weight", name, perm);
      return;
    }
    const formats::QuantSpec spec = layout_.spec();
    const auto type = ggml::type_for(spec);
    if (!type) fail("{}: internal error: unchecked format {}", dir_.string(), formats::describe(spec));
    std::optional<std::vector<std::int64_t>> order;
    if (perm != nullptr) order = *perm;
    const std::string what = fmt::format("{}: {}", dir_.string(), hf_prefix);
    // Decoded at write time, one linear at a time, so the model is never held in memory whole.
    writer_.add_tensor(name, {static_cast<std::uint64_t>(shape.in), static_cast<std::uint64_t>(shape.out)}, *type,
                       [this, hf_prefix, spec, order, shape, what] {
                         formats::QuantizedMatrix q = read_compressed_linear(checkpoint_, hf_prefix, spec);
                         if (q.rows != shape.out || q.cols != shape.in) {
                           fail("{} is [{}, {}], config.json says [{}, {}]", what, q.rows, q.cols, shape.out,
                                shape.in);
                         }
                         if (order) permute_rows(q, *order);
                         return ggml::to_blocks(q, what);
                       });
    count(*type);
    if (spec.format == formats::Format::nvfp4) {
      // llama.cpp multiplies the matmul output by "<base>.scale"; our values are e2m1 * e4m3 / global.
      const float global = checkpoint_.read_f32(hf_prefix + ".weight_global_scale").at(0);
      if (!(global > 0.0f) || !std::isfinite(global)) {
        fail("{}: {}.weight_global_scale is {}, not a positive finite number", dir_.string(), hf_prefix, global);
      }
      writer_.add_tensor(gguf_base + ".scale", {1}, ggml::Type::f32, f32_bytes({ggml::nvfp4_tensor_scale(global)}));
      count(ggml::Type::f32);
    }
  }

  void add_layer(int l) {
    const std::string hf = fmt::format("model.layers.{}.", l);
    add_f32(hf + "input_layernorm.weight", gguf::block_tensor(l, "attn_norm"));
    add_f32(hf + "post_attention_layernorm.weight", gguf::block_tensor(l, "ffn_norm"));
    const bool permute = gguf::permutes_qk(arch_);
    const auto q_perm = gguf::rope_row_permutation(config_.q_dim(), config_.head_dim);
    const auto k_perm = gguf::rope_row_permutation(config_.kv_dim(), config_.head_dim);
    for (const LinearKind kind : model::kAllLinearKinds) {
      const std::vector<std::int64_t>* perm = nullptr;
      if (permute && kind == LinearKind::q) perm = &q_perm;
      if (permute && kind == LinearKind::k) perm = &k_perm;
      const std::string prefix = hf + model::linear_name(kind);
      const std::string base = fmt::format("blk.{}.{}", l, gguf::linear_base(kind));
      add_linear(prefix, base, model::linear_shape(config_, kind), perm);
      const bool has_bias = ((kind == LinearKind::q || kind == LinearKind::k || kind == LinearKind::v) && config_.qkv_bias) ||
                            (kind == LinearKind::o && config_.o_bias) ||
                            ((kind == LinearKind::gate || kind == LinearKind::up || kind == LinearKind::down) &&
                             config_.mlp_bias);
      if (has_bias) add_f32(prefix + ".bias", base + ".bias", perm);
    }
    if (config_.qk_norm) {
      add_f32(hf + "self_attn.q_norm.weight", gguf::block_tensor(l, "attn_q_norm"));
      add_f32(hf + "self_attn.k_norm.weight", gguf::block_tensor(l, "attn_k_norm"));
    }
  }

  // Llama 3 long-context RoPE: llama.cpp divides each frequency by rope_freqs[i] (as convert_hf_to_gguf.py
  // writes it); computed from the same scaled frequencies our runtime uses.
  void add_rope_freqs() {
    model::RopeConfig plain = config_.rope;
    plain.type = model::RopeType::standard;
    const auto base = model::rope_inverse_frequencies(plain, config_.head_dim);
    const auto scaled = model::rope_inverse_frequencies(config_.rope, config_.head_dim);
    std::vector<float> factors(base.size());
    for (std::size_t i = 0; i < base.size(); ++i) {
      factors[i] = static_cast<float>(static_cast<double>(base[i]) / static_cast<double>(scaled[i]));
    }
    writer_.add_tensor("rope_freqs.weight", {factors.size()}, ggml::Type::f32, f32_bytes(factors));
    count(ggml::Type::f32);
  }

  fs::path dir_;
  const model::ModelConfig& config_;
  io::Checkpoint checkpoint_;
  CheckpointLayout layout_;
  std::string arch_;
  gguf::Writer writer_;
  GgufExportReport report_;
};

std::uint32_t file_type(const CheckpointLayout& layout, const io::Checkpoint& checkpoint) {
  if (layout.quantized()) {
    switch (layout.spec().format) {
      case formats::Format::mxfp4: return kFileTypeMxfp4;
      case formats::Format::nvfp4: return kFileTypeNvfp4;
      case formats::Format::int4: return kFileTypeQ4_0;
    }
  }
  switch (checkpoint.at("model.embed_tokens.weight").dtype) {
    case io::DType::F16: return kFileTypeF16;
    case io::DType::BF16: return kFileTypeBF16;
    default: return kFileTypeF32;
  }
}

}  // namespace

std::string_view fuse_rotation_refusal() {
  return "--fuse-rotation is refused: the 4-bit codes live in the rotated basis (W·R), and folding Rᵀ back "
         "(W·R·Rᵀ) gives weights that are no longer on the FP4/INT4 grid, so they cannot be stored as 4-bit "
         "blocks; and no GGUF engine applies the block Hadamard rotation to activations online. Use --dequantized "
         "for a BF16 checkpoint with the rotation folded back, or keep compressed-tensors and run it with microscale";
}

void check_gguf_architecture(const model::ModelConfig& config, std::string_view source) {
  const std::string arch = gguf::architecture_for(config, source);
  if (arch == "qwen3" && (config.qkv_bias || config.o_bias)) {
    fail("{}: qwen3 with attention_bias has no GGUF export (llama.cpp's qwen3 graph has no attention biases)", source);
  }
  if (arch == "qwen2" && (config.o_bias || config.mlp_bias)) {
    fail("{}: qwen2 with an o_proj or MLP bias has no GGUF export (llama.cpp's qwen2 graph has none)", source);
  }
}

void check_gguf_exportable(const formats::QuantSpec& spec, const rotation::RotationSpec& rotation,
                           const model::ModelConfig& config, std::string_view source) {
  std::string why;
  const auto type = ggml::type_for(spec, &why);
  if (!type) {
    fail("{}: GGUF export refused: {}. GGUF holds mxfp4 (group 32, ggml MXFP4), nvfp4 (group 16, ggml NVFP4) and "
         "symmetric int4 with group size 32 (ggml Q4_0)",
         source, why);
  }
  if (rotation.enabled()) {
    fail("{}: GGUF export refused: the checkpoint is Hadamard-rotated (block {}): its weights are stored as W·R and "
         "need every linear's input rotated online by R, which llama.cpp does not do. Quantize without --hadamard, "
         "or write --dequantized (BF16, rotation folded back) or compressed-tensors and run it with microscale",
         source, rotation.block);
  }
  const std::int64_t block = ggml::traits(*type).block_elements;
  const std::pair<const char*, std::int64_t> rows[] = {{"hidden_size (q/k/v/gate/up/lm_head inputs)", config.hidden_size},
                                                       {"num_heads * head_dim (o_proj input)", config.q_dim()},
                                                       {"intermediate_size (down_proj input)", config.intermediate_size}};
  for (const auto& [what, length] : rows) {
    if (length % block != 0) {
      fail("{}: GGUF export refused: {} is {}, not a multiple of the {}-element ggml {} block", source, what, length,
           block, ggml::traits(*type).name);
    }
  }
  check_gguf_architecture(config, source);
}

GgufExportReport write_gguf(const fs::path& model_dir, const fs::path& gguf_path, const GgufExportOptions& options) {
  // Refusals first: nothing is read beyond config.json before the output path and format are known good.
  if (gguf_path.extension() != ".gguf") fail("{}: the GGUF output path should end in .gguf", gguf_path.string());
  std::error_code ec;
  if (fs::exists(gguf_path, ec) && !options.overwrite) {
    fail("{}: exists; pass --force to replace it", gguf_path.string());
  }
  if (fs::is_directory(gguf_path, ec)) fail("{}: is a directory, expected a .gguf file path", gguf_path.string());
  const fs::path input = fs::weakly_canonical(fs::absolute(model_dir), ec);
  const fs::path output = fs::weakly_canonical(fs::absolute(gguf_path), ec);
  if (!input.empty() && is_within(output, input)) {
    fail("{}: is inside the input model directory {}; choose another --out (the input is never modified)",
         gguf_path.string(), model_dir.string());
  }
  const fs::path config_path = model_dir / "config.json";
  const nlohmann::json config_json = io::read_json_file(config_path);
  const model::ModelConfig config = model::parse_config(config_json, config_path);
  Exporter exporter(model_dir, config, config_json);
  const CheckpointLayout& layout = exporter.layout();
  if (layout.quantized()) {
    check_gguf_exportable(layout.spec(), layout.rotation(), config, config_path.string());
  } else {
    check_gguf_architecture(config, config_path.string());
  }

  const std::string& arch = exporter.arch();
  auto& w = exporter.writer();
  auto key = [&arch](std::string_view k) { return fmt::format("{}.{}", arch, k); };
  auto u32 = [](std::int64_t v) { return gguf::u32(static_cast<std::uint32_t>(v)); };
  w.set("general.architecture", gguf::str(arch));
  w.set("general.name", gguf::str(options.name.empty() ? fs::absolute(model_dir).lexically_normal().filename().string()
                                                       : options.name));
  w.set("general.file_type", gguf::u32(file_type(layout, exporter.checkpoint())));
  w.set("general.quantization_version", gguf::u32(2));  // GGML_QNT_VERSION
  w.set(key("context_length"), u32(config.max_position_embeddings));
  w.set(key("embedding_length"), u32(config.hidden_size));
  w.set(key("block_count"), u32(config.num_layers));
  w.set(key("feed_forward_length"), u32(config.intermediate_size));
  w.set(key("attention.head_count"), u32(config.num_heads));
  w.set(key("attention.head_count_kv"), u32(config.num_kv_heads));
  w.set(key("attention.layer_norm_rms_epsilon"), gguf::f32(static_cast<float>(config.rms_norm_eps)));
  w.set(key("attention.key_length"), u32(config.head_dim));
  w.set(key("attention.value_length"), u32(config.head_dim));
  w.set(key("rope.freq_base"), gguf::f32(static_cast<float>(config.rope.theta)));
  w.set(key("rope.dimension_count"), u32(config.head_dim));
  w.set(key("vocab_size"), u32(config.vocab_size));
  // Provenance, and what microscale needs to read its own export back (llama.cpp ignores these keys).
  w.set("microscale.source_model_type", gguf::str(config.model_type));
  if (layout.quantized()) w.set("microscale.quantization", gguf::str(formats::describe(layout.spec())));
  if (config.rope.type == model::RopeType::llama3) {
    w.set("microscale.rope.llama3.factor", gguf::f32(static_cast<float>(config.rope.factor)));
    w.set("microscale.rope.llama3.low_freq_factor", gguf::f32(static_cast<float>(config.rope.low_freq_factor)));
    w.set("microscale.rope.llama3.high_freq_factor", gguf::f32(static_cast<float>(config.rope.high_freq_factor)));
    w.set("microscale.rope.llama3.original_context_length", u32(config.rope.original_max_position_embeddings));
  }
  for (auto& kv : gguf::tokenizer_metadata(model_dir, config.vocab_size)) {
    if (kv.key == "tokenizer.ggml.model" || kv.key == "tokenizer.ggml.pre") {
      auto& named = exporter.report().tokenizer;
      named += (named.empty() ? "" : "/") + std::get<std::string>(std::get<gguf::Scalar>(kv.value));
    }
    w.set(std::move(kv.key), std::move(kv.value));
  }
  exporter.add_tensors();

  GgufExportReport report = exporter.report();
  report.bytes = w.write(gguf_path);
  report.path = gguf_path;
  report.architecture = arch;
  for (const auto& [type, n] : report.tensors_by_type) report.tensors += static_cast<std::size_t>(n);
  return report;
}

}  // namespace microscale::exporter
