#include "microscale/model/model.hpp"

#include <algorithm>
#include <fstream>
#include <mutex>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/core/finite.hpp"
#include "microscale/export/checkpoint_layout.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/model/kernels.hpp"
#include "microscale/model/rope.hpp"

namespace microscale::model {
namespace {

std::string shape_string(std::span<const std::int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

std::string layer_prefix(int layer) { return fmt::format("model.layers.{}.", layer); }

void add_rows(MatrixView target, ConstMatrixView delta) {
  const std::int64_t n = target.rows * target.cols;
  float* t = target.data.data();
  const float* d = delta.data.data();
#pragma omp parallel for simd schedule(static) if (n > (1 << 16))
  for (std::int64_t i = 0; i < n; ++i) t[i] += d[i];
}

// A linear applied to `input`: rotate the rows when the checkpoint asks for it, show the observer
// exactly what the matmul consumes, multiply.
void project(const Linear& lin, LinearKind kind, ConstMatrixView input, MatrixView out,
             const LinearObserver& observer, Matrix& scratch) {
  ConstMatrixView x = input;
  if (lin.input_rotation.enabled()) {
    scratch.rows = input.rows;
    scratch.cols = input.cols;
    scratch.data.assign(input.data.begin(), input.data.end());
    rotation::rotate_rows(scratch.view(), lin.input_rotation);
    x = scratch.view();
  }
  if (observer) observer(kind, x);
  linear(x, lin.weight.view(), lin.bias, out);
}

std::int32_t argmax(std::span<const float> row) {
  return static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
}

}  // namespace

LinearShape linear_shape(const ModelConfig& c, LinearKind kind) {
  switch (kind) {
    case LinearKind::q: return {c.q_dim(), c.hidden_size, c.qkv_bias};
    case LinearKind::k: return {c.kv_dim(), c.hidden_size, c.qkv_bias};
    case LinearKind::v: return {c.kv_dim(), c.hidden_size, c.qkv_bias};
    case LinearKind::o: return {c.hidden_size, c.q_dim(), c.o_bias};
    case LinearKind::gate: return {c.intermediate_size, c.hidden_size, c.mlp_bias};
    case LinearKind::up: return {c.intermediate_size, c.hidden_size, c.mlp_bias};
    case LinearKind::down: return {c.hidden_size, c.intermediate_size, c.mlp_bias};
  }
  return {};
}

const char* linear_name(LinearKind kind) {
  switch (kind) {
    case LinearKind::q: return "self_attn.q_proj";
    case LinearKind::k: return "self_attn.k_proj";
    case LinearKind::v: return "self_attn.v_proj";
    case LinearKind::o: return "self_attn.o_proj";
    case LinearKind::gate: return "mlp.gate_proj";
    case LinearKind::up: return "mlp.up_proj";
    case LinearKind::down: return "mlp.down_proj";
  }
  return "?";
}

Linear& LayerWeights::linear(LinearKind kind) {
  return const_cast<Linear&>(static_cast<const LayerWeights&>(*this).linear(kind));
}

const Linear& LayerWeights::linear(LinearKind kind) const {
  switch (kind) {
    case LinearKind::q: return q;
    case LinearKind::k: return k;
    case LinearKind::v: return v;
    case LinearKind::o: return o;
    case LinearKind::gate: return gate;
    case LinearKind::up: return up;
    case LinearKind::down: return down;
  }
  return q;
}

KvCache::KvCache(const ModelConfig& config, int batch, std::int64_t capacity) : batch_(batch), capacity_(capacity) {
  if (batch <= 0 || capacity <= 0) fail("KvCache: batch {} and capacity {} must be positive", batch, capacity);
  keys_.reserve(static_cast<std::size_t>(config.num_layers));
  values_.reserve(static_cast<std::size_t>(config.num_layers));
  for (int i = 0; i < config.num_layers; ++i) {
    keys_.emplace_back(batch * capacity, config.kv_dim());
    values_.emplace_back(batch * capacity, config.kv_dim());
  }
}

// ---- the mapped checkpoint ----------------------------------------------------------------------

struct Model::Source {
  std::filesystem::path dir;
  std::filesystem::path config_path;
  io::Checkpoint checkpoint;
  exporter::CheckpointLayout layout;
  const io::TensorInfo* embedding = nullptr;

  Source(const std::filesystem::path& d, const nlohmann::json& config_json)
      : dir(d), config_path(d / "config.json"), checkpoint(d),
        layout(exporter::CheckpointLayout::from_config(config_json, d / "config.json")) {}

  // What to name when a tensor is missing: the single weights file, or the shard index.
  std::string weights_label() const {
    const auto& files = checkpoint.files();
    if (files.size() == 1) return files.front().string();
    return (dir / "model.safetensors.index.json").string();
  }

  const io::TensorInfo& require(const std::string& name, std::span<const std::int64_t> shape,
                                const ModelConfig& c) const {
    const io::TensorInfo* info = checkpoint.find(name);
    if (info == nullptr) {
      fail("{}: missing tensor {} (expected shape {} for model_type {} of {})", weights_label(), name,
           shape_string(shape), c.model_type, config_path.string());
    }
    if (!std::equal(info->shape.begin(), info->shape.end(), shape.begin(), shape.end())) {
      fail("{}: tensor {} has shape {}, expected {} from {}", info->file.string(), name, shape_string(info->shape),
           shape_string(shape), config_path.string());
    }
    return *info;
  }

  std::vector<float> read_vector(const std::string& name, std::int64_t size, const ModelConfig& c) const {
    const std::int64_t shape[] = {size};
    const io::TensorInfo& info = require(name, shape, c);
    std::vector<float> values = io::to_f32(info);
    require_finite_weights(values, 0, info.file.string(), name);
    return values;
  }

  // Checks the linear is there with the right shape (quantized linears: presence only; their decoded
  // shape is checked when loaded).
  void check_linear(const std::string& prefix, const LinearShape& shape, const ModelConfig& c) const {
    const std::int64_t dims[] = {shape.out, shape.in};
    if (!layout.is_quantized(checkpoint, prefix)) require(prefix + ".weight", dims, c);
    if (shape.bias) {
      const std::int64_t bias_dims[] = {shape.out};
      require(prefix + ".bias", bias_dims, c);
    }
  }

  Linear load_linear(const std::string& prefix, const LinearShape& shape, const ModelConfig& c) const {
    check_linear(prefix, shape, c);
    Linear lin;
    lin.weight = layout.load_weight(checkpoint, prefix);
    if (lin.weight.rows != shape.out || lin.weight.cols != shape.in) {
      fail("{}: linear {} decodes to [{}, {}], expected [{}, {}] from {}", weights_label(), prefix, lin.weight.rows,
           lin.weight.cols, shape.out, shape.in, config_path.string());
    }
    if (shape.bias) {
      const io::TensorInfo& bias = checkpoint.at(prefix + ".bias");
      lin.bias = io::to_f32(bias);
      require_finite_weights(lin.bias, 0, bias.file.string(), bias.name);
    }
    lin.input_rotation = layout.input_rotation(checkpoint, prefix);
    return lin;
  }
};

struct Model::Head {
  std::once_flag once;
  Linear linear;
};

Model::Model() : head_(std::make_unique<Head>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::filesystem::path& dir, LoadOptions options) {
  const auto config_path = dir / "config.json";
  std::ifstream in(config_path);
  if (!in) fail("{}: cannot open (is {} a model directory?)", config_path.string(), dir.string());
  nlohmann::json config_json;
  try {
    config_json = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON: {}", config_path.string(), e.what());
  }

  Model m;
  m.config_ = parse_config(config_json, config_path);
  m.source_ = std::make_unique<Source>(dir, config_json);
  const ModelConfig& c = m.config_;
  const Source& src = *m.source_;

  // Validate every tensor against the config before loading anything, so a contradiction is reported
  // up front (and before hours of streaming calibration).
  const std::int64_t embedding_shape[] = {c.vocab_size, c.hidden_size};
  m.source_->embedding = &src.require("model.embed_tokens.weight", embedding_shape, c);
  if (!c.tie_word_embeddings) src.check_linear("lm_head", {c.vocab_size, c.hidden_size, false}, c);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string prefix = layer_prefix(i);
    for (LinearKind kind : kAllLinearKinds) src.check_linear(prefix + linear_name(kind), linear_shape(c, kind), c);
    const std::int64_t hidden[] = {c.hidden_size};
    src.require(prefix + "input_layernorm.weight", hidden, c);
    src.require(prefix + "post_attention_layernorm.weight", hidden, c);
    if (c.qk_norm) {
      const std::int64_t head[] = {c.head_dim};
      src.require(prefix + "self_attn.q_norm.weight", head, c);
      src.require(prefix + "self_attn.k_norm.weight", head, c);
    }
  }
  m.final_norm_ = src.read_vector("model.norm.weight", c.hidden_size, c);
  m.inv_freq_ = rope_inverse_frequencies(c.rope, c.head_dim);
  m.layers_.resize(static_cast<std::size_t>(c.num_layers));
  if (!options.stream_layers) {
    for (int i = 0; i < c.num_layers; ++i) m.ensure_layer(i);
    m.head();  // load the output head now rather than on the first logits() call
  }
  return m;
}

Model Model::from_weights(ModelConfig config, ModelWeights weights) {
  Model m;
  m.config_ = std::move(config);
  const ModelConfig& c = m.config_;
  auto check = [](bool ok, std::string_view what) {
    if (!ok) fail("Model::from_weights: {} does not match the config", what);
  };
  check(weights.embedding.rows == c.vocab_size && weights.embedding.cols == c.hidden_size, "embedding");
  check(static_cast<int>(weights.layers.size()) == c.num_layers, "number of layers");
  check(static_cast<std::int64_t>(weights.final_norm.size()) == c.hidden_size, "final_norm");
  for (auto& layer : weights.layers) {
    for (LinearKind kind : kAllLinearKinds) {
      const LinearShape s = linear_shape(c, kind);
      const Linear& lin = layer.linear(kind);
      check(lin.weight.rows == s.out && lin.weight.cols == s.in, linear_name(kind));
      check(lin.bias.empty() || static_cast<std::int64_t>(lin.bias.size()) == s.out, "a bias");
    }
    check(static_cast<std::int64_t>(layer.input_norm.size()) == c.hidden_size, "input_norm");
    check(static_cast<std::int64_t>(layer.post_attention_norm.size()) == c.hidden_size, "post_attention_norm");
    check(!c.qk_norm || (static_cast<std::int64_t>(layer.q_norm.size()) == c.head_dim &&
                         static_cast<std::int64_t>(layer.k_norm.size()) == c.head_dim),
          "q_norm/k_norm");
    m.layers_.push_back(std::make_unique<LayerWeights>(std::move(layer)));
  }
  if (c.tie_word_embeddings) {
    m.head_->linear.weight = std::move(weights.embedding);  // embed() reads the head's matrix
  } else {
    check(weights.lm_head.weight.rows == c.vocab_size && weights.lm_head.weight.cols == c.hidden_size, "lm_head");
    m.embedding_ = std::move(weights.embedding);
    m.head_->linear = std::move(weights.lm_head);
  }
  std::call_once(m.head_->once, [] {});
  m.final_norm_ = std::move(weights.final_norm);
  m.inv_freq_ = rope_inverse_frequencies(c.rope, c.head_dim);
  return m;
}

std::uint64_t resident_weight_bytes(const ModelConfig& c, LoadOptions options) {
  // FP32 copies of the layers held at once and of the output head; the embedding table stays in the map.
  const std::int64_t layers = options.stream_layers ? std::min(c.num_layers, 1) : c.num_layers;
  const std::int64_t floats = c.layer_parameter_count() * layers + c.vocab_size * c.hidden_size + c.hidden_size;
  return static_cast<std::uint64_t>(floats) * sizeof(float);
}

const std::filesystem::path& Model::dir() const {
  static const std::filesystem::path none;
  return source_ ? source_->dir : none;
}

std::vector<std::filesystem::path> Model::weight_files() const {
  return source_ ? source_->checkpoint.files() : std::vector<std::filesystem::path>{};
}

// ---- layers ---------------------------------------------------------------------------------------

void Model::check_layer_index(int i) const {
  if (i < 0 || i >= config_.num_layers) fail("layer index {} out of range [0, {})", i, config_.num_layers);
}

LayerWeights Model::load_layer(int i) const {
  const ModelConfig& c = config_;
  const std::string prefix = layer_prefix(i);
  LayerWeights w;
  for (LinearKind kind : kAllLinearKinds) {
    w.linear(kind) = source_->load_linear(prefix + linear_name(kind), linear_shape(c, kind), c);
  }
  w.input_norm = source_->read_vector(prefix + "input_layernorm.weight", c.hidden_size, c);
  w.post_attention_norm = source_->read_vector(prefix + "post_attention_layernorm.weight", c.hidden_size, c);
  if (c.qk_norm) {
    w.q_norm = source_->read_vector(prefix + "self_attn.q_norm.weight", c.head_dim, c);
    w.k_norm = source_->read_vector(prefix + "self_attn.k_norm.weight", c.head_dim, c);
  }
  // The layer is now held as floats: its mapped bytes need not stay resident too (a streamed model
  // would otherwise end up holding the whole checkpoint's pages).
  source_->checkpoint.release_pages(prefix);
  return w;
}

bool Model::layer_resident(int i) const {
  check_layer_index(i);
  return layers_[static_cast<std::size_t>(i)] != nullptr;
}

void Model::ensure_layer(int i) {
  if (layer_resident(i)) return;
  layers_[static_cast<std::size_t>(i)] = std::make_unique<LayerWeights>(load_layer(i));
}

void Model::release_layer(int i) {
  check_layer_index(i);
  if (source_) layers_[static_cast<std::size_t>(i)].reset();
}

LayerWeights& Model::layer(int i) {
  ensure_layer(i);
  return *layers_[static_cast<std::size_t>(i)];
}

const LayerWeights& Model::layer(int i) const {
  if (!layer_resident(i)) fail("layer {} is not resident: call ensure_layer({}) first", i, i);
  return *layers_[static_cast<std::size_t>(i)];
}

const Linear& Model::head() const {
  std::call_once(head_->once, [this] {
    const ModelConfig& c = config_;
    if (c.tie_word_embeddings) {
      head_->linear.weight = Matrix(c.vocab_size, c.hidden_size);
      io::to_f32(*source_->embedding, head_->linear.weight.data);
      require_finite_weights(head_->linear.weight.data, c.hidden_size, source_->embedding->file.string(),
                             source_->embedding->name + " (the tied output head)");
      io::release_mapped_pages(source_->embedding->bytes);  // embed() reads back the few rows it needs
    } else {
      head_->linear = source_->load_linear("lm_head", {c.vocab_size, c.hidden_size, false}, c);
      source_->checkpoint.release_pages("lm_head.");
    }
  });
  return head_->linear;
}

// ---- compute --------------------------------------------------------------------------------------

Matrix Model::embed(std::span<const std::int32_t> tokens) const {
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  const std::int64_t hidden = config_.hidden_size;
  for (std::int32_t t : tokens) {
    if (t < 0 || t >= config_.vocab_size) fail("token id {} is outside the vocabulary [0, {})", t, config_.vocab_size);
  }
  Matrix out(n, hidden);
  if (source_) {
    // Convert only the rows looked up, straight from the mapped file.
    const io::TensorInfo& table = *source_->embedding;
    const std::size_t row_bytes = static_cast<std::size_t>(hidden) * io::dtype_size(table.dtype);
#pragma omp parallel for schedule(static) if (n * hidden > (1 << 16))
    for (std::int64_t r = 0; r < n; ++r) {
      io::TensorInfo row = table;
      row.shape = {hidden};
      row.bytes = table.bytes.subspan(static_cast<std::size_t>(tokens[static_cast<std::size_t>(r)]) * row_bytes,
                                      row_bytes);
      io::to_f32(row, out.view().row(r));
    }
    // Checked after the parallel loop (nothing may throw inside it); the row names the token.
    const std::int64_t bad = first_non_finite(out.data);
    if (bad >= 0) {
      const std::int32_t token = tokens[static_cast<std::size_t>(bad / hidden)];
      fail_non_finite_weight(out.data[static_cast<std::size_t>(bad)], bad % hidden, 0, table.file.string(),
                             fmt::format("{} row {} (token {})", table.name, token, token));
    }
  } else {
    const Matrix& table = config_.tie_word_embeddings ? head_->linear.weight : embedding_;
    for (std::int64_t r = 0; r < n; ++r) {
      const auto src = table.view().row(tokens[static_cast<std::size_t>(r)]);
      std::copy(src.begin(), src.end(), out.view().row(r).begin());
    }
  }
  return out;
}

void Model::run_layer(const LayerWeights& w, int layer, MatrixView hidden, int batch, int seqlen, KvCache* cache,
                      const LinearObserver& observer) const {
  const ModelConfig& c = config_;
  const std::int64_t n = static_cast<std::int64_t>(batch) * seqlen;
  if (batch <= 0 || seqlen <= 0 || hidden.rows != n || hidden.cols != c.hidden_size) {
    fail("forward_layer: hidden is {}x{}, expected {}x{} for batch {} x seqlen {}", hidden.rows, hidden.cols, n,
         c.hidden_size, batch, seqlen);
  }
  const std::int64_t start = cache ? cache->length_ : 0;
  if (c.sliding_window > 0 && start + seqlen > c.sliding_window) {
    fail("{}: a sequence of {} positions exceeds the model's sliding_window {}; sliding-window attention is not "
         "implemented (use at most {} positions)",
         source_ ? source_->config_path.string() : std::string("model"), start + seqlen, c.sliding_window,
         c.sliding_window);
  }

  Matrix x(n, c.hidden_size);
  Matrix scratch;
  rms_norm(hidden, w.input_norm, c.rms_norm_eps, x.view());
  Matrix q(n, c.q_dim()), k(n, c.kv_dim()), v(n, c.kv_dim());
  project(w.q, LinearKind::q, x.view(), q.view(), observer, scratch);
  project(w.k, LinearKind::k, x.view(), k.view(), observer, scratch);
  project(w.v, LinearKind::v, x.view(), v.view(), observer, scratch);
  if (c.qk_norm) {
    rms_norm(q.view(), w.q_norm, c.rms_norm_eps, q.view());
    rms_norm(k.view(), w.k_norm, c.rms_norm_eps, k.view());
  }
  const RopeTable table = make_rope_table(inv_freq_, start, seqlen);
  apply_rope(q.view(), c.num_heads, c.head_dim, seqlen, table);
  apply_rope(k.view(), c.num_kv_heads, c.head_dim, seqlen, table);

  AttentionShape shape{batch, seqlen, start, seqlen, c.num_heads, c.num_kv_heads, c.head_dim};
  ConstMatrixView keys = k.view();
  ConstMatrixView values = v.view();
  if (cache) {
    Matrix& ck = cache->keys_[static_cast<std::size_t>(layer)];
    Matrix& cv = cache->values_[static_cast<std::size_t>(layer)];
    for (int b = 0; b < batch; ++b) {
      const std::size_t count = static_cast<std::size_t>(seqlen * c.kv_dim());
      const std::size_t from = static_cast<std::size_t>(b * seqlen * c.kv_dim());
      const std::size_t to = static_cast<std::size_t>((b * cache->capacity_ + start) * c.kv_dim());
      std::copy_n(k.data.begin() + from, count, ck.data.begin() + to);
      std::copy_n(v.data.begin() + from, count, cv.data.begin() + to);
    }
    keys = ck.view();
    values = cv.view();
    shape.capacity = cache->capacity_;
  }
  Matrix attention(n, c.q_dim());
  causal_attention(q.view(), keys, values, shape, attention.view());
  q = Matrix();
  k = Matrix();
  v = Matrix();

  Matrix delta(n, c.hidden_size);
  project(w.o, LinearKind::o, attention.view(), delta.view(), observer, scratch);
  attention = Matrix();
  add_rows(hidden, delta.view());

  rms_norm(hidden, w.post_attention_norm, c.rms_norm_eps, x.view());
  Matrix gate(n, c.intermediate_size), up(n, c.intermediate_size);
  project(w.gate, LinearKind::gate, x.view(), gate.view(), observer, scratch);
  project(w.up, LinearKind::up, x.view(), up.view(), observer, scratch);
  silu_mul(gate.view(), up.view());
  up = Matrix();
  project(w.down, LinearKind::down, gate.view(), delta.view(), observer, scratch);
  add_rows(hidden, delta.view());
}

void Model::forward_layer(int layer, MatrixView hidden, int batch, int seqlen, const LinearObserver& observer) const {
  if (layer_resident(layer)) {
    run_layer(*layers_[static_cast<std::size_t>(layer)], layer, hidden, batch, seqlen, nullptr, observer);
  } else {
    const LayerWeights weights = load_layer(layer);
    run_layer(weights, layer, hidden, batch, seqlen, nullptr, observer);
  }
}

Matrix Model::logits(ConstMatrixView hidden) const {
  if (hidden.cols != config_.hidden_size) {
    fail("logits: hidden has {} columns, expected {}", hidden.cols, config_.hidden_size);
  }
  const Linear& lm_head = head();
  Matrix normed(hidden.rows, hidden.cols);
  rms_norm(hidden, final_norm_, config_.rms_norm_eps, normed.view());
  Matrix out(hidden.rows, config_.vocab_size);
  Matrix scratch;
  project(lm_head, LinearKind::down, normed.view(), out.view(), {}, scratch);
  return out;
}

Matrix Model::forward(std::span<const std::int32_t> tokens, int batch, int seqlen) const {
  if (batch <= 0 || seqlen <= 0 || tokens.size() != static_cast<std::size_t>(batch) * static_cast<std::size_t>(seqlen)) {
    fail("forward: {} tokens do not form batch {} x seqlen {}", tokens.size(), batch, seqlen);
  }
  Matrix hidden = embed(tokens);
  for (int i = 0; i < config_.num_layers; ++i) forward_layer(i, hidden.view(), batch, seqlen);
  return logits(hidden.view());
}

Matrix Model::forward_cached(std::span<const std::int32_t> tokens, int batch, int seqlen, KvCache& cache) const {
  if (batch <= 0 || seqlen <= 0 || tokens.size() != static_cast<std::size_t>(batch) * static_cast<std::size_t>(seqlen)) {
    fail("forward_cached: {} tokens do not form batch {} x seqlen {}", tokens.size(), batch, seqlen);
  }
  if (cache.batch_ != batch || static_cast<int>(cache.keys_.size()) != config_.num_layers) {
    fail("forward_cached: the cache was made for batch {} and {} layers, not batch {} and {} layers", cache.batch_,
         cache.keys_.size(), batch, config_.num_layers);
  }
  if (cache.keys_.front().cols != config_.kv_dim()) fail("forward_cached: the cache was made for another model");
  if (cache.length_ + seqlen > cache.capacity_) {
    fail("forward_cached: {} cached + {} new positions exceed the cache capacity {}", cache.length_, seqlen,
         cache.capacity_);
  }
  Matrix hidden = embed(tokens);
  for (int i = 0; i < config_.num_layers; ++i) {
    if (layer_resident(i)) {
      run_layer(*layers_[static_cast<std::size_t>(i)], i, hidden.view(), batch, seqlen, &cache, {});
    } else {
      const LayerWeights weights = load_layer(i);
      run_layer(weights, i, hidden.view(), batch, seqlen, &cache, {});
    }
  }
  cache.length_ += seqlen;
  return logits(hidden.view());
}

std::vector<std::int32_t> Model::generate_greedy(std::span<const std::int32_t> prompt, int max_new_tokens,
                                                 bool stop_at_eos) const {
  if (prompt.empty()) fail("generate_greedy: the prompt is empty");
  std::vector<std::int32_t> out;
  if (max_new_tokens <= 0) return out;
  KvCache cache(config_, 1, static_cast<std::int64_t>(prompt.size()) + max_new_tokens);
  Matrix logits = forward_cached(prompt, 1, static_cast<int>(prompt.size()), cache);
  std::int32_t next = argmax(logits.view().row(logits.rows - 1));
  for (int step = 0; step < max_new_tokens; ++step) {
    out.push_back(next);
    const bool eos = std::find(config_.eos_token_ids.begin(), config_.eos_token_ids.end(), next) !=
                     config_.eos_token_ids.end();
    if ((stop_at_eos && eos) || step + 1 == max_new_tokens) break;
    const std::int32_t token[] = {next};
    logits = forward_cached(token, 1, 1, cache);
    next = argmax(logits.view().row(0));
  }
  return out;
}

}  // namespace microscale::model
