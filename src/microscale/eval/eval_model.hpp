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
  virtual LogitsFn logits_fn() = 0;  // all positions of one sequence
  virtual DecodeTiming decode(std::span<const std::int32_t> prompt, int new_tokens) = 0;
  virtual std::string backend() const = 0;  // "cpu", or "cuda (<device name>)"
};

std::unique_ptr<EvalModel> load_eval_model(const std::filesystem::path& dir, Device device);

// The GPU implementation (gpu_eval_model.cpp); without CUDA compiled in, or without a device, it
// throws a microscale::Error saying so.
std::unique_ptr<EvalModel> load_gpu_eval_model(const std::filesystem::path& dir);

}  // namespace microscale::eval
