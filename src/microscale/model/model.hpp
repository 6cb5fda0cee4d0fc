#pragma once
// The CPU runtime of a decoder-only transformer (llama, mistral, qwen2, qwen3) in FP32.
//
// One decoder layer implementation; the family differences are data (ModelConfig + which tensors a
// LayerWeights holds). Activations are row-major [batch*seqlen, hidden]: row b*seqlen + t is token t
// of sequence b. The API is shaped for sequential, layer-wise calibration:
//
//   Model m = Model::load(dir, {.stream_layers = true});
//   Matrix h = m.embed(tokens);                        // [batch*seqlen, hidden]
//   for (int i = 0; i < m.config().num_layers; ++i) {
//     m.ensure_layer(i);                               // load layer i from the mapped files
//     m.forward_layer(i, h.view(), batch, seqlen, [&](LinearKind k, ConstMatrixView x) { ... });
//     ... modify m.layer(i) ..., then m.release_layer(i);
//   }
//
// Memory: the token embedding stays in the memory-mapped checkpoint (rows are converted to FP32 on
// lookup); linear weights, biases and norms are held as FP32 copies (a BF16 checkpoint therefore takes
// twice its file size in RAM; quantized linears are decoded to float by exporter::CheckpointLayout).
// With stream_layers, a layer is resident only between ensure_layer and release_layer, and the output
// head is loaded on the first logits() call.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "microscale/core/matrix.hpp"
#include "microscale/model/config.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::model {

enum class LinearKind { q, k, v, o, gate, up, down };
inline constexpr LinearKind kAllLinearKinds[] = {LinearKind::q,    LinearKind::k,  LinearKind::v,   LinearKind::o,
                                                 LinearKind::gate, LinearKind::up, LinearKind::down};
const char* linear_name(LinearKind kind);  // "self_attn.q_proj", ..., "mlp.down_proj" (HF tensor names)

// The linears of a decoder layer grouped by the input they read, in the order a layer computes them:
// q/k/v, o, gate/up, down. Engines fuse the groups of several linears into one matmul (so NVFP4
// members must share one tensor scale), and sequential calibration quantizes group by group.
struct InputGroup {
  std::span<const LinearKind> kinds;
  bool mlp;
};
inline constexpr LinearKind kAttentionInputs[] = {LinearKind::q, LinearKind::k, LinearKind::v};
inline constexpr LinearKind kAttentionOutput[] = {LinearKind::o};
inline constexpr LinearKind kMlpInputs[] = {LinearKind::gate, LinearKind::up};
inline constexpr LinearKind kMlpOutput[] = {LinearKind::down};
inline constexpr InputGroup kInputGroups[] = {
    {kAttentionInputs, false}, {kAttentionOutput, false}, {kMlpInputs, true}, {kMlpOutput, true}};
// A linear's weight [out, in] and whether it carries a bias, as the architecture defines it.
struct LinearShape {
  std::int64_t out = 0;
  std::int64_t in = 0;
  bool bias = false;
};
LinearShape linear_shape(const ModelConfig& config, LinearKind kind);

struct Linear {
  Matrix weight;                            // [out, in]
  std::vector<float> bias;                  // empty, or [out]
  rotation::RotationSpec input_rotation;    // inputs rows are rotated by this before the matmul
  std::int64_t out_features() const { return weight.rows; }
  std::int64_t in_features() const { return weight.cols; }
};

struct LayerWeights {
  Linear q, k, v, o, gate, up, down;
  std::vector<float> input_norm;            // [hidden]
  std::vector<float> post_attention_norm;   // [hidden]
  std::vector<float> q_norm, k_norm;        // [head_dim] (qwen3), else empty
  Linear& linear(LinearKind kind);
  const Linear& linear(LinearKind kind) const;
};

// Everything a model holds, for models built in memory (tests, benchmarks).
struct ModelWeights {
  Matrix embedding;                         // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;            // [hidden]
  Linear lm_head;                           // [vocab, hidden]; ignored when tie_word_embeddings
};

// Called with each linear's input (rows = tokens, after the linear's input rotation if any), in the
// order q, k, v, o, gate, up, down.
using LinearObserver = std::function<void(LinearKind, ConstMatrixView)>;

struct LoadOptions {
  bool stream_layers = false;
};

// About what Model::load(dir, options) holds in memory for its weights: every layer (or, streamed,
// the one in use) and the output head as FP32. Activations, the KV cache and the mapped embedding
// rows it reads come on top.
std::uint64_t resident_weight_bytes(const ModelConfig& config, LoadOptions options);

// Keys and values of every layer for `batch` sequences of up to `capacity` positions.
class KvCache {
 public:
  KvCache(const ModelConfig& config, int batch, std::int64_t capacity);
  int batch() const { return batch_; }
  std::int64_t capacity() const { return capacity_; }
  std::int64_t length() const { return length_; }  // positions filled (same for all sequences)
  void clear() { length_ = 0; }

 private:
  friend class Model;
  int batch_;
  std::int64_t capacity_;
  std::int64_t length_ = 0;
  std::vector<Matrix> keys_, values_;       // per layer: [batch*capacity, kv_dim]
};

class Model {
 public:
  static Model load(const std::filesystem::path& dir, LoadOptions options = {});
  static Model from_weights(ModelConfig config, ModelWeights weights);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelConfig& config() const { return config_; }
  // The directory it was loaded from (empty for in-memory models).
  const std::filesystem::path& dir() const;
  // Paths of the checkpoint's weight files (empty for in-memory models).
  std::vector<std::filesystem::path> weight_files() const;

  // [n, hidden]; throws for an id outside [0, vocab).
  Matrix embed(std::span<const std::int32_t> tokens) const;
  // hidden: [batch*seqlen, hidden], positions 0..seqlen-1 of each sequence, updated in place.
  // A non-resident layer (stream_layers) is loaded for the call and dropped afterwards.
  void forward_layer(int layer, MatrixView hidden, int batch, int seqlen, const LinearObserver& observer = {}) const;
  // Final RMSNorm + output head: [rows, vocab].
  Matrix logits(ConstMatrixView hidden) const;
  // Logits for tokens laid out [batch][seqlen]: [batch*seqlen, vocab].
  Matrix forward(std::span<const std::int32_t> tokens, int batch, int seqlen) const;

  // Appends `seqlen` tokens per sequence ([batch][seqlen] layout) to the cache and returns their
  // logits [batch*seqlen, vocab]. Decoding is seqlen = 1.
  Matrix forward_cached(std::span<const std::int32_t> tokens, int batch, int seqlen, KvCache& cache) const;
  // Greedy continuation of one prompt (stops early at an EOS id of config.json when stop_at_eos).
  std::vector<std::int32_t> generate_greedy(std::span<const std::int32_t> prompt, int max_new_tokens,
                                            bool stop_at_eos = true) const;

  bool layer_resident(int i) const;
  LayerWeights& layer(int i);               // loads it first if needed
  const LayerWeights& layer(int i) const;   // throws if not resident
  void ensure_layer(int i);
  void release_layer(int i);                // no-op for in-memory models (nothing to reload from)

 private:
  struct Source;
  Model();
  LayerWeights load_layer(int i) const;
  const Linear& head() const;
  void check_layer_index(int i) const;
  void run_layer(const LayerWeights& w, int layer, MatrixView hidden, int batch, int seqlen, KvCache* cache,
                 const LinearObserver& observer) const;

  ModelConfig config_;
  std::unique_ptr<Source> source_;          // the mapped checkpoint, null for in-memory models
  std::vector<std::unique_ptr<LayerWeights>> layers_;  // null = not resident
  Matrix embedding_;                        // in-memory models only
  std::vector<float> final_norm_;
  std::vector<float> inv_freq_;
  struct Head;
  std::unique_ptr<Head> head_;              // lazily loaded output head
};

}  // namespace microscale::model
