#pragma once
// GpuModel's device state (internal to the cuda module): weights, activation buffers, the KV cache and
// the captured decode graph. gpu_model_load.cpp fills the weights; gpu_model.cpp runs them.
#include <cstdint>
#include <filesystem>
#include <vector>

#include <cuda_runtime_api.h>

#include "microscale/cuda/gpu_linear.hpp"
#include "microscale/cuda/gpu_model.hpp"
#include "microscale/model/config.hpp"

namespace microscale::cuda {

struct GpuLayer {
  GpuLinear q, k, v, o, gate, up, down;
  // q/k/v and gate/up stacked into one linear each where stack_linears allows (then the parts keep
  // only their shapes); out == 0 when they run separately.
  GpuLinear qkv, gate_up;
  DeviceArray<float> input_norm, post_attention_norm;  // [hidden]
  DeviceArray<float> q_norm, k_norm;                   // [head_dim] (qwen3), else empty
};

// An owned stream (blocking, so that DeviceArray's plain cudaMemcpy calls order with it).
class Stream {
 public:
  Stream();
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

// A CUDA event for timing on a stream.
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(cudaStream_t stream);
  double seconds_until(const Event& later) const;  // both recorded and complete

 private:
  cudaEvent_t event_ = nullptr;
};

// An instantiated CUDA graph (the decode step), destroyed with its owner.
class GraphExec {
 public:
  GraphExec() = default;
  ~GraphExec() { reset(); }
  GraphExec(const GraphExec&) = delete;
  GraphExec& operator=(const GraphExec&) = delete;
  void reset();
  bool ready() const { return exec_ != nullptr; }
  cudaGraphExec_t get() const { return exec_; }
  void capture_end(cudaStream_t stream);  // ends a capture begun on `stream` and instantiates it

 private:
  cudaGraphExec_t exec_ = nullptr;
};

struct GpuModel::State {
  model::ModelConfig config;
  std::filesystem::path dir;
  Stream stream;
  LinearContext linear;

  DeviceArray<bf16_bits> embedding;  // [vocab, hidden]; empty when tied (then head.weight is the table)
  std::vector<GpuLayer> layers;
  DeviceArray<float> final_norm;
  GpuLinear head;
  DeviceArray<float> inv_freq;       // [head_dim / 2], model::rope_inverse_frequencies

  // Activations for up to `rows` tokens (grown on demand).
  std::int64_t rows = 0;
  DeviceArray<float> residual;       // FP32 [rows, hidden]
  DeviceArray<bf16_bits> x, q, k, v, attention, gate, up, delta;
  DeviceArray<bf16_bits> qkv, gate_up;  // outputs of the stacked linears [rows, q+2kv], [rows, 2*intermediate]
  DeviceArray<std::int32_t> tokens;  // [rows]
  DeviceArray<std::int32_t> zero;    // the start position of cache-less runs
  DeviceArray<float> logits;         // FP32 [kLogitsRows, vocab]
  std::int64_t hidden_rows = 0;      // rows of final hidden states left by the last run

  // KV cache: per layer [batch * capacity, kv_dim]; `length` mirrored on the device for graphs.
  int cache_batch = 0;
  std::int64_t cache_capacity = 0;
  std::int64_t cache_length = 0;
  std::vector<DeviceArray<bf16_bits>> k_cache, v_cache;
  DeviceArray<std::int32_t> device_length;
  GraphExec decode_graph;            // valid for this cache (batch, buffers)

  const bf16_bits* embedding_table() const {
    return config.tie_word_embeddings ? head.weight.data() : embedding.data();
  }
  std::size_t weight_bytes() const;
};

// Rows of logits materialised at once on the device (128k vocab: 128 MB of FP32).
inline constexpr std::int64_t kLogitsRows = 256;

// Host BF16 conversion (round to nearest even; NaN stays NaN).
std::uint16_t float_to_bf16_bits(float f);

}  // namespace microscale::cuda
