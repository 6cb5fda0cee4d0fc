#pragma once
// A model loaded for `microscale eval` on one backend: what the evaluation asks of it (perplexity
// logits, task logits, decode timing), so run_evaluation is the same code for the CPU and the GPU.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "microscale/eval/efficiency.hpp"
#include "microscale/eval/logits_source.hpp"
#include "microscale/eval/tasks.hpp"
#include "microscale/model/config.hpp"

namespace microscale::eval {

enum class Device { cpu, cuda };
Device parse_device(std::string_view name);  // "cpu" | "cuda"

class EvalModel {
 public:
  virtual ~EvalModel() = default;
  virtual const model::ModelConfig& config() const = 0;
  virtual std::vector<std::filesystem::path> weight_files() const = 0;
  virtual LogitsSource& source() = 0;
  virtual BatchLogitsFn batch_logits_fn() = 0;  // all positions of each of several sequences
  // Whether decode() measures anything meaningful: a model streamed from its checkpoint would reload
  // every layer for every token, so it is not timed.
  virtual bool can_time_decode() const { return true; }
  virtual DecodeTiming decode(std::span<const std::int32_t> prompt, int new_tokens) = 0;
  virtual std::string backend() const = 0;  // "cpu", "cpu, layers streamed", or "cuda (<device name>)"
};

// stream_layers (CPU only): keep one decoder layer in memory at a time, loading each from the mapped
// checkpoint when it is needed (model::LoadOptions::stream_layers), for models whose FP32 copy does
// not fit. GGUF files are decoded into memory whole and cannot be streamed.
std::unique_ptr<EvalModel> load_eval_model(const std::filesystem::path& dir, Device device, bool stream_layers = false);

// The GPU implementation (gpu_eval_model.cpp); without CUDA compiled in, or without a device, it
// throws a microscale::Error saying so.
std::unique_ptr<EvalModel> load_gpu_eval_model(const std::filesystem::path& dir);

}  // namespace microscale::eval
