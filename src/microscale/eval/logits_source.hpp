#pragma once
// What perplexity scoring needs from a model: run a batch of windows, then hand out rows of their
// logits a chunk at a time. The CPU runtime (model::Model) and the GPU runtime (cuda::GpuModel) both
// provide it, so the window cutting and the scoring code are shared by both backends.
#include <cstdint>
#include <span>
#include <string>

#include "microscale/core/matrix.hpp"
#include "microscale/model/model.hpp"

namespace microscale::eval {

class LogitsSource {
 public:
  virtual ~LogitsSource() = default;
  virtual std::int64_t vocab_size() const = 0;
  virtual std::string name() const = 0;  // the model directory, for messages
  // Runs `batch` sequences of `seqlen` tokens ([batch][seqlen], each from position 0).
  virtual void run(std::span<const std::int32_t> tokens, int batch, int seqlen) = 0;
  // FP32 logits [count, vocab] of rows [first, first+count) of the last run.
  virtual Matrix logits(std::int64_t first, std::int64_t count) = 0;
};

// model::Model on the CPU: run() keeps the final hidden states, logits() applies the head to a slice.
class CpuLogitsSource final : public LogitsSource {
 public:
  explicit CpuLogitsSource(const model::Model& model) : model_(model) {}
  std::int64_t vocab_size() const override { return model_.config().vocab_size; }
  std::string name() const override { return model_.dir().string(); }
  void run(std::span<const std::int32_t> tokens, int batch, int seqlen) override;
  Matrix logits(std::int64_t first, std::int64_t count) override;

 private:
  const model::Model& model_;
  Matrix hidden_;
};

}  // namespace microscale::eval
