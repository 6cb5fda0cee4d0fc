#pragma once
// `microscale eval` as a library call: perplexity (and, against a reference model, KL divergence and
// top-1 agreement) on a text, zero-shot tasks, and efficiency figures; reported as JSON and as a
// one-screen table.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "microscale/eval/eval_model.hpp"
#include "microscale/eval/perplexity.hpp"
#include "microscale/eval/tasks.hpp"

namespace microscale::eval {

// How the CPU runtime holds the weights: all layers as FP32 (resident), one layer at a time loaded
// from the mapped checkpoint (streamed: memory of about one layer plus the output head, decode speed
// not measured), or streamed only when the resident FP32 weights of the model and the reference would
// take more than three quarters of the memory available (automatic).
enum class LayerStreaming { automatic, on, off };
LayerStreaming parse_layer_streaming(std::string_view name);  // "auto" | "on" | "off"

struct EvalOptions {
  std::filesystem::path model_dir;
  std::optional<std::filesystem::path> reference_dir;
  std::filesystem::path text;
  int seqlen = 0;              // 0 = min(2048, max_position_embeddings, sliding_window)
  int max_windows = 0;         // 0 = every full window of the text
  // "gptq": score every position of a window; "llama.cpp": only its second half, as llama.cpp's
  // perplexity tool does (for comparing with that engine's figure).
  std::string protocol = "gptq";
  std::vector<std::filesystem::path> tasks;
  int threads = 0;             // 0 = OpenMP / OpenBLAS defaults
  int decode_tokens = 32;      // greedy tokens for the decode-speed figure (0 = skip)
  bool quiet = false;          // no progress on stderr
  Device device = Device::cpu; // cuda: model and reference run on the GPU (cuda::GpuModel)
  LayerStreaming stream_layers = LayerStreaming::automatic;  // CPU only
};

struct ModelSummary {
  std::string dir;
  std::string model_type;
  std::int64_t parameters = 0;
  std::string dtype;
  std::string quantization;    // quantization_config.format (or quant_method), empty if none
  std::uint64_t weight_bytes = 0;
};

struct EvalReport {
  EvalOptions options;
  ModelSummary model;
  std::optional<ModelSummary> reference;
  std::int64_t text_tokens = 0;
  PerplexityResult perplexity;
  std::vector<TaskResult> tasks;
  std::vector<TaskResult> reference_tasks;  // same tasks on the reference, when there is one
  std::string backend;                      // "cpu" or "cuda (<device>)"
  std::uint64_t peak_rss_bytes = 0;
  double prefill_tokens_per_second = 0.0;
  double decode_tokens_per_second = 0.0;
  int decode_tokens = 0;
  std::string decode_note;                  // why decode was not timed, when it was asked for and not
  double seconds = 0.0;
};

EvalReport run_evaluation(const EvalOptions& options);

nlohmann::json to_json(const EvalReport& report);
std::string format_table(const EvalReport& report);

}  // namespace microscale::eval
