#include "microscale/eval/eval_model.hpp"

#include "microscale/core/error.hpp"
#include "microscale/export/gguf_import.hpp"
#include "microscale/model/model.hpp"

namespace microscale::eval {
namespace {

class CpuEvalModel final : public EvalModel {
 public:
  CpuEvalModel(model::Model model, bool streamed) : model_(std::move(model)), source_(model_), streamed_(streamed) {}
  const model::ModelConfig& config() const override { return model_.config(); }
  std::vector<std::filesystem::path> weight_files() const override { return model_.weight_files(); }
  LogitsSource& source() override { return source_; }
  BatchLogitsFn batch_logits_fn() override {
    if (streamed_) {
      return [this](std::span<const std::vector<std::int32_t>> sequences, const LogitsConsumer& use) {
        layer_by_layer(sequences, use);
      };
    }
    return one_at_a_time(
        [this](std::span<const std::int32_t> ids) { return model_.forward(ids, 1, static_cast<int>(ids.size())); });
  }
  bool can_time_decode() const override { return !streamed_; }
  DecodeTiming decode(std::span<const std::int32_t> prompt, int new_tokens) override {
    return measure_decode(model_, prompt, new_tokens);
  }
  std::string backend() const override { return streamed_ ? "cpu, layers streamed" : "cpu"; }

 private:
  // Every sequence through layer i before layer i + 1 is loaded: the same operations as
  // Model::forward on each sequence, so the same logits, with each layer loaded once per batch.
  void layer_by_layer(std::span<const std::vector<std::int32_t>> sequences, const LogitsConsumer& use) {
    std::vector<Matrix> hidden;
    hidden.reserve(sequences.size());
    for (const auto& ids : sequences) hidden.push_back(model_.embed(ids));
    for (int layer = 0; layer < model_.config().num_layers; ++layer) {
      model_.ensure_layer(layer);
      for (std::size_t i = 0; i < sequences.size(); ++i) {
        model_.forward_layer(layer, hidden[i].view(), 1, static_cast<int>(sequences[i].size()));
      }
      model_.release_layer(layer);
    }
    for (std::size_t i = 0; i < sequences.size(); ++i) {
      use(i, model_.logits(hidden[i].view()).view());
      hidden[i] = Matrix();
    }
  }

  model::Model model_;
  CpuLogitsSource source_;
  bool streamed_;
};

}  // namespace

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  fail("unknown device '{}' (expected cpu or cuda)", name);
}

std::unique_ptr<EvalModel> load_eval_model(const std::filesystem::path& dir, Device device, bool stream_layers) {
  if (exporter::is_gguf_path(dir)) {
    if (device == Device::cuda) {
      fail("{}: GGUF files are evaluated on the CPU (--device cuda reads checkpoint directories: evaluate the "
           "directory the GGUF was exported from)", dir.string());
    }
    if (stream_layers) {
      fail("{}: a GGUF file is decoded into memory whole and cannot be streamed layer by layer (evaluate the "
           "directory it was exported from)", dir.string());
    }
    return std::make_unique<CpuEvalModel>(exporter::load_gguf(dir), false);
  }
  if (device == Device::cuda) {
    if (stream_layers) fail("{}: layer streaming is for the CPU runtime; --device cuda holds the model on the GPU", dir.string());
    return load_gpu_eval_model(dir);
  }
  return std::make_unique<CpuEvalModel>(model::Model::load(dir, {.stream_layers = stream_layers}), stream_layers);
}

}  // namespace microscale::eval
