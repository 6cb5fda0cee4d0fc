#include "microscale/eval/eval_model.hpp"

#include "microscale/core/error.hpp"
#include "microscale/export/gguf_import.hpp"
#include "microscale/model/model.hpp"

namespace microscale::eval {
namespace {

class CpuEvalModel final : public EvalModel {
 public:
  explicit CpuEvalModel(model::Model model) : model_(std::move(model)), source_(model_) {}
  const model::ModelConfig& config() const override { return model_.config(); }
  std::vector<std::filesystem::path> weight_files() const override { return model_.weight_files(); }
  LogitsSource& source() override { return source_; }
  LogitsFn logits_fn() override {
    return [this](std::span<const std::int32_t> ids) { return model_.forward(ids, 1, static_cast<int>(ids.size())); };
  }
  DecodeTiming decode(std::span<const std::int32_t> prompt, int new_tokens) override {
    return measure_decode(model_, prompt, new_tokens);
  }
  std::string backend() const override { return "cpu"; }

 private:
  model::Model model_;
  CpuLogitsSource source_;
};

}  // namespace

Device parse_device(std::string_view name) {
  if (name == "cpu") return Device::cpu;
  if (name == "cuda") return Device::cuda;
  fail("unknown device '{}' (expected cpu or cuda)", name);
}

std::unique_ptr<EvalModel> load_eval_model(const std::filesystem::path& dir, Device device) {
  if (exporter::is_gguf_path(dir)) {
    if (device == Device::cuda) {
      fail("{}: GGUF files are evaluated on the CPU (--device cuda reads checkpoint directories: evaluate the "
           "directory the GGUF was exported from)", dir.string());
    }
    return std::make_unique<CpuEvalModel>(exporter::load_gguf(dir));
  }
  if (device == Device::cuda) return load_gpu_eval_model(dir);
  return std::make_unique<CpuEvalModel>(model::Model::load(dir));
}

}  // namespace microscale::eval
