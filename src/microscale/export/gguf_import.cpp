#include "microscale/export/gguf_import.hpp"

#include <cstring>

#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/core/finite.hpp"
#include "microscale/export/ggml_blocks.hpp"
#include "microscale/export/gguf_file.hpp"
#include "microscale/export/gguf_layout.hpp"
#include "microscale/export/gguf_tokenizer.hpp"

namespace microscale::exporter {
namespace {

using model::LinearKind;

class Importer {
 public:
  explicit Importer(const std::filesystem::path& path) : f_(path), file_(path.string()) {}

  GgufModel read() {
    GgufModel out;
    out.config = read_config();
    const auto& c = out.config;
    out.weights.embedding = matrix("token_embd.weight", c.vocab_size, c.hidden_size);
    out.weights.final_norm = vector("output_norm.weight", c.hidden_size);
    if (!c.tie_word_embeddings) out.weights.lm_head.weight = linear_weight("output", c.vocab_size, c.hidden_size, nullptr);
    const bool permuted = gguf::permutes_qk(arch_);
    const auto q_inverse = gguf::inverse_permutation(gguf::rope_row_permutation(c.q_dim(), c.head_dim));
    const auto k_inverse = gguf::inverse_permutation(gguf::rope_row_permutation(c.kv_dim(), c.head_dim));
    for (int l = 0; l < c.num_layers; ++l) {
      model::LayerWeights layer;
      layer.input_norm = vector(gguf::block_tensor(l, "attn_norm"), c.hidden_size);
      layer.post_attention_norm = vector(gguf::block_tensor(l, "ffn_norm"), c.hidden_size);
      if (c.qk_norm) {
        layer.q_norm = vector(gguf::block_tensor(l, "attn_q_norm"), c.head_dim);
        layer.k_norm = vector(gguf::block_tensor(l, "attn_k_norm"), c.head_dim);
      }
      for (const LinearKind kind : model::kAllLinearKinds) {
        const std::vector<std::int64_t>* inverse = nullptr;
        if (permuted && kind == LinearKind::q) inverse = &q_inverse;
        if (permuted && kind == LinearKind::k) inverse = &k_inverse;
        const std::string base = fmt::format("blk.{}.{}", l, gguf::linear_base(kind));
        const auto [rows, cols, bias] = model::linear_shape(c, kind);
        model::Linear& linear = layer.linear(kind);
        linear.weight = linear_weight(base, rows, cols, inverse);
        if (f_.find_tensor(base + ".bias") != nullptr) {
          linear.bias = vector(base + ".bias", rows);
          if (inverse != nullptr) linear.bias = unpermute(linear.bias, 1, *inverse);
        }
      }
      out.weights.layers.push_back(std::move(layer));
    }
    out.quantization = quantization_;
    return out;
  }

 private:
  std::int64_t u32_key(std::string_view k) const { return f_.get_u32(fmt::format("{}.{}", arch_, k)); }

  model::ModelConfig read_config() {
    arch_ = f_.get_string("general.architecture");
    model::ModelConfig c;
    if (arch_ != "llama" && arch_ != "qwen2" && arch_ != "qwen3") {
      fail("{}: general.architecture '{}' is not supported (microscale runs llama, qwen2, qwen3)", file_, arch_);
    }
    c.model_type = arch_;
    c.hidden_size = u32_key("embedding_length");
    c.intermediate_size = u32_key("feed_forward_length");
    c.num_layers = static_cast<int>(u32_key("block_count"));
    c.num_heads = static_cast<int>(u32_key("attention.head_count"));
    c.num_kv_heads = static_cast<int>(u32_key("attention.head_count_kv"));
    const std::string key_length = fmt::format("{}.attention.key_length", arch_);
    c.head_dim = f_.find(key_length) != nullptr ? f_.get_u32(key_length) : c.hidden_size / std::max(c.num_heads, 1);
    c.max_position_embeddings = u32_key("context_length");
    c.rms_norm_eps = f_.get_f32(fmt::format("{}.attention.layer_norm_rms_epsilon", arch_));
    const std::string freq_base = fmt::format("{}.rope.freq_base", arch_);
    c.rope.theta = f_.find(freq_base) != nullptr ? f_.get_f32(freq_base) : 10000.0;
    const std::string rope_dims = fmt::format("{}.rope.dimension_count", arch_);
    if (f_.find(rope_dims) != nullptr && f_.get_u32(rope_dims) != c.head_dim) {
      fail("{}: {} is {}, but microscale's runtime rotates the whole head ({} dims)", file_, rope_dims,
           f_.get_u32(rope_dims), c.head_dim);
    }
    if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0 || c.head_dim <= 0 ||
        c.num_layers <= 0 || c.hidden_size <= 0 || c.intermediate_size <= 0) {
      fail("{}: inconsistent hyperparameters (heads {}, kv heads {}, head_dim {}, layers {})", file_, c.num_heads,
           c.num_kv_heads, c.head_dim, c.num_layers);
    }
    if (f_.find_tensor("rope_freqs.weight") != nullptr) read_llama3_rope(c);
    const auto& embedding = f_.tensor("token_embd.weight");
    if (embedding.ne.size() != 2) fail("{}: token_embd.weight should be 2-D", file_);
    c.vocab_size = static_cast<std::int64_t>(embedding.ne[1]);
    c.tie_word_embeddings = f_.find_tensor("output.weight") == nullptr;
    c.qkv_bias = f_.find_tensor("blk.0.attn_q.bias") != nullptr;
    c.o_bias = f_.find_tensor("blk.0.attn_output.bias") != nullptr;
    c.mlp_bias = f_.find_tensor("blk.0.ffn_up.bias") != nullptr;
    c.qk_norm = f_.find_tensor("blk.0.attn_q_norm.weight") != nullptr;
    c.dtype = "gguf";
    if (f_.find("tokenizer.ggml.bos_token_id") != nullptr) c.bos_token_id = f_.get_u32("tokenizer.ggml.bos_token_id");
    if (f_.find("tokenizer.ggml.eos_token_id") != nullptr) {
      c.eos_token_ids.push_back(f_.get_u32("tokenizer.ggml.eos_token_id"));
    }
    return c;
  }

  // llama.cpp only stores the resulting per-frequency divisors; our runtime takes Llama 3's parameters, which
  // our own export records. Other writers' rope_freqs are refused rather than approximated.
  void read_llama3_rope(model::ModelConfig& c) {
    if (f_.find("microscale.rope.llama3.factor") == nullptr) {
      fail("{}: has rope_freqs.weight (scaled RoPE) without the microscale.rope.llama3.* keys that say which scaling it "
           "is; microscale reads scaled RoPE only from its own exports",
           file_);
    }
    c.rope.type = model::RopeType::llama3;
    c.rope.factor = f_.get_f32("microscale.rope.llama3.factor");
    c.rope.low_freq_factor = f_.get_f32("microscale.rope.llama3.low_freq_factor");
    c.rope.high_freq_factor = f_.get_f32("microscale.rope.llama3.high_freq_factor");
    c.rope.original_max_position_embeddings = f_.get_u32("microscale.rope.llama3.original_context_length");
  }

  const gguf::TensorInfo& expect(const std::string& name, std::vector<std::uint64_t> ne) const {
    const auto& t = f_.tensor(name);
    if (t.ne != ne) {
      fail("{}: tensor {} has shape {{{}}}, expected {{{}}}", file_, name, fmt::join(t.ne, ", "), fmt::join(ne, ", "));
    }
    return t;
  }

  std::vector<float> vector(const std::string& name, std::int64_t n) const {
    const auto& t = expect(name, {static_cast<std::uint64_t>(n)});
    std::vector<float> out(static_cast<std::size_t>(n));
    ggml::dequantize(t.type, t.bytes, out);
    require_finite_weights(out, 0, file_, name);
    return out;
  }

  Matrix matrix(const std::string& name, std::int64_t rows, std::int64_t cols) const {
    const auto& t = expect(name, {static_cast<std::uint64_t>(cols), static_cast<std::uint64_t>(rows)});
    Matrix m(rows, cols);
    ggml::dequantize(t.type, t.bytes, m.data);
    require_finite_weights(m.data, cols, file_, name);  // in the file's row order
    return m;
  }

  static std::vector<float> unpermute(const std::vector<float>& v, std::int64_t cols,
                                      const std::vector<std::int64_t>& inverse) {
    std::vector<float> out(v.size());
    for (std::size_t r = 0; r < inverse.size(); ++r) {
      std::memcpy(out.data() + r * static_cast<std::size_t>(cols),
                  v.data() + static_cast<std::size_t>(inverse[r]) * static_cast<std::size_t>(cols),
                  static_cast<std::size_t>(cols) * sizeof(float));
    }
    return out;
  }

  Matrix linear_weight(const std::string& base, std::int64_t rows, std::int64_t cols,
                       const std::vector<std::int64_t>* inverse) {
    const std::string name = base + ".weight";
    Matrix m = matrix(name, rows, cols);
    const auto type = f_.tensor(name).type;
    if (type != ggml::Type::f32 && type != ggml::Type::f16 && type != ggml::Type::bf16) {
      quantization_ = std::string(ggml::traits(type).name);
    }
    if (f_.find_tensor(base + ".scale") != nullptr) {
      // llama.cpp multiplies the matmul output by this factor; folding it into the weight is the same product.
      const float scale = vector(base + ".scale", 1)[0];
      for (float& x : m.data) x *= scale;
    }
    if (inverse != nullptr) m.data = unpermute(m.data, cols, *inverse);
    return m;
  }

  gguf::File f_;
  std::string file_;
  std::string arch_;
  std::string quantization_;
};

}  // namespace

GgufModel read_gguf_model(const std::filesystem::path& path) { return Importer(path).read(); }

tokenizer::Tokenizer read_gguf_tokenizer(const std::filesystem::path& path) {
  const gguf::File f(path);
  return tokenizer::Tokenizer::from_json_text(gguf::tokenizer_json(f), path.string() + " (tokenizer.ggml.*)");
}

std::string gguf_linear_type(const std::filesystem::path& path) {
  const gguf::File f(path);
  const auto* t = f.find_tensor("blk.0.ffn_up.weight");
  if (t == nullptr || t->type == ggml::Type::f32 || t->type == ggml::Type::f16 || t->type == ggml::Type::bf16) return "";
  return std::string(ggml::traits(t->type).name);
}

model::Model load_gguf(const std::filesystem::path& path) {
  GgufModel m = read_gguf_model(path);
  return model::Model::from_weights(std::move(m.config), std::move(m.weights));
}

}  // namespace microscale::exporter
