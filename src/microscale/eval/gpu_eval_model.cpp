// `eval --device cuda`: cuda::GpuModel behind the EvalModel interface (compiled to a clear error
// when the build has no CUDA module).
#include "microscale/core/error.hpp"
#include "microscale/eval/eval_model.hpp"

#if defined(MICROSCALE_HAVE_CUDA)

#include <algorithm>

#include "microscale/cuda/gpu_model.hpp"
#include "microscale/io/safetensors.hpp"

namespace microscale::eval {
namespace {

class GpuLogitsSource final : public LogitsSource {
 public:
  explicit GpuLogitsSource(cuda::GpuModel& model) : model_(model) {}
  std::int64_t vocab_size() const override { return model_.config().vocab_size; }
  std::string name() const override { return model_.dir().string(); }
  // Both return with the device idle, so the caller's host clock times the GPU work.
  void run(std::span<const std::int32_t> tokens, int batch, int seqlen) override { model_.run(tokens, batch, seqlen); }
  Matrix logits(std::int64_t first, std::int64_t count) override { return model_.logits_rows(first, count); }

 private:
  cuda::GpuModel& model_;
};

class GpuEvalModel final : public EvalModel {
 public:
  explicit GpuEvalModel(const std::filesystem::path& dir)
      : model_(cuda::GpuModel::load(dir)), source_(model_), files_(io::Checkpoint(dir).files()) {}
  const model::ModelConfig& config() const override { return model_.config(); }
  std::vector<std::filesystem::path> weight_files() const override { return files_; }
  LogitsSource& source() override { return source_; }
  BatchLogitsFn batch_logits_fn() override {
    return one_at_a_time(
        [this](std::span<const std::int32_t> ids) { return model_.logits_for(ids, 1, static_cast<int>(ids.size())); });
  }
  // Greedy decoding at batch 1 with the device KV cache and the graph-captured step; the time is the
  // steady-state step time (CUDA events), as GpuModel::greedy_decode measures it.
  DecodeTiming decode(std::span<const std::int32_t> prompt, int new_tokens) override {
    DecodeTiming timing;
    timing.prompt_tokens = static_cast<int>(prompt.size());
    timing.new_tokens = new_tokens;
    model_.reset_cache(1, static_cast<std::int64_t>(prompt.size()) + new_tokens);
    const Matrix last = model_.prefill(prompt, 1, static_cast<int>(prompt.size()));
    const auto row = last.view().row(0);
    const std::int32_t first[] = {static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin())};
    double per_step = 0.0;
    // Step s feeds the token step s-1 produced (the prefill's argmax first), as measure_decode does;
    // the tokens it reports are the ones fed.
    const std::vector<std::int32_t> generated = model_.greedy_decode(first, new_tokens, /*use_graph=*/true, &per_step);
    timing.output.push_back(first[0]);
    timing.output.insert(timing.output.end(), generated.begin(), generated.end() - 1);
    timing.seconds = per_step * new_tokens;
    timing.tokens_per_second = per_step > 0 ? 1.0 / per_step : 0.0;
    return timing;
  }
  std::string backend() const override { return "cuda (" + model_.device_name() + ")"; }

 private:
  cuda::GpuModel model_;
  GpuLogitsSource source_;
  std::vector<std::filesystem::path> files_;
};

}  // namespace

std::unique_ptr<EvalModel> load_gpu_eval_model(const std::filesystem::path& dir) {
  return std::make_unique<GpuEvalModel>(dir);
}

}  // namespace microscale::eval

#else

namespace microscale::eval {

std::unique_ptr<EvalModel> load_gpu_eval_model(const std::filesystem::path& dir) {
  fail("{}: --device cuda needs the CUDA module, and this build has none (configure with nvcc 13 available and "
       "-DMICROSCALE_CUDA=ON)", dir.string());
}

}  // namespace microscale::eval

#endif
