#pragma once
// The GPU runtime: the decoder of model::Model (llama, mistral, qwen2, qwen3) on one CUDA device.
//
// Storage is BF16 (weights, linear inputs and outputs, the KV cache) except the residual stream, which
// stays FP32 (it is small and keeps the comparison with the FP32 CPU runtime tight); norms, RoPE,
// softmax and every accumulation are FP32. Linears: BF16 weights through cuBLAS; MXFP4/NVFP4 weights
// stay 4-bit on the device and run through gemv_w4a16 (the tensor-core kernel, or the FP32 GEMV with
// the input rotation fused; dequantize + cuBLAS from 64 rows); INT4 weights are dequantized on the
// host to BF16.
//
//   GpuModel m = GpuModel::load(dir);
//   Matrix logits = m.logits_for(tokens, batch, seqlen);     // FP32 [batch*seqlen, vocab] on the host
//
//   m.reset_cache(batch, capacity);                           // generation with the device KV cache
//   Matrix last = m.prefill(prompt, batch, seqlen);           // logits of each sequence's last token
//   Matrix next = m.decode_step(tokens /* batch */);          // [batch, vocab]
//
// One stream per model; every public call returns with the device idle (results are on the host).
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"
#include "microscale/model/config.hpp"

namespace microscale::cuda {

// Which kernel multiplies MXFP4/NVFP4 linears by batches below 64 rows: the tensor-core kernel on
// weights repacked into its tile layout (the default: it holds up from batch 4 to 64, where the GEMV
// falls to 0.2-0.6x of cuBLAS), or the FP32 GEMV on the checkpoint's row layout (fuses the input
// rotation; 4% faster at batch-1 decode, 1.86x against 1.79x of BF16: docs/benchmarks.md).
enum class Fp4Kernels { tensor_cores, gemv };

class GpuModel {
 public:
  // config.json + safetensors (+ quantization_config): quantized linears reach the device as codes.
  static GpuModel load(const std::filesystem::path& dir, Fp4Kernels kernels = Fp4Kernels::tensor_cores);
  // Random weights generated on the device (no checkpoint): `linears` nullopt = BF16, else mxfp4 or
  // nvfp4 for every decoder linear (the head and the embedding stay BF16, as checkpoints keep them).
  static GpuModel random(const model::ModelConfig& config, std::optional<formats::Format> linears,
                         std::uint64_t seed = 1, Fp4Kernels kernels = Fp4Kernels::tensor_cores);

  GpuModel(GpuModel&&) noexcept;
  GpuModel& operator=(GpuModel&&) noexcept;
  ~GpuModel();

  const model::ModelConfig& config() const;
  const std::filesystem::path& dir() const;  // empty for random models
  std::size_t weight_bytes() const;          // device bytes of all weights
  std::string device_name() const;

  // ---- scoring (no cache): sequences [batch][seqlen] start at position 0 ----
  // Logits of every position, FP32 [batch*seqlen, vocab] (materialised in chunks of rows on the device).
  Matrix logits_for(std::span<const std::int32_t> tokens, int batch, int seqlen);
  // The two halves of logits_for: run() leaves the final hidden states on the device, logits_rows()
  // fetches rows [first, first+count) of the logits (what perplexity scoring uses to bound memory).
  void run(std::span<const std::int32_t> tokens, int batch, int seqlen);
  Matrix logits_rows(std::int64_t first, std::int64_t count);

  // ---- generation with the KV cache ----
  void reset_cache(int batch, std::int64_t capacity);  // allocates; length 0
  std::int64_t cache_length() const;
  // Appends seqlen tokens per sequence; returns the logits of every appended position
  // [batch*seqlen, vocab] (forward_cached) or of the last one of each sequence [batch, vocab] (prefill).
  Matrix forward_cached(std::span<const std::int32_t> tokens, int batch, int seqlen);
  Matrix prefill(std::span<const std::int32_t> tokens, int batch, int seqlen);
  // One token per sequence; [batch, vocab].
  Matrix decode_step(std::span<const std::int32_t> tokens);
  // `steps` greedy decode steps entirely on the device, starting from `first` (one token per
  // sequence), each step feeding its argmax to the next; with use_graph the step is captured once as a
  // CUDA graph and replayed (no per-kernel launch cost). Returns the generated tokens [steps][batch].
  // Used for timing: nothing crosses to the host between steps. With `seconds_per_step`, the steady
  // state is timed with CUDA events: the steps after the first two (the eager one, which sizes the
  // buffers, and the one that captures the graph); all steps when there are fewer than 3.
  std::vector<std::int32_t> greedy_decode(std::span<const std::int32_t> first, int steps, bool use_graph,
                                          double* seconds_per_step = nullptr);

  // Waits for the device (for callers that time with host clocks).
  void synchronize();

  struct State;  // everything on the device (gpu_model.cpp)

 private:
  explicit GpuModel(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace microscale::cuda
