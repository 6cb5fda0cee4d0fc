#include "microscale/eval/logits_source.hpp"

#include "microscale/core/error.hpp"

namespace microscale::eval {

void CpuLogitsSource::run(std::span<const std::int32_t> tokens, int batch, int seqlen) {
  hidden_ = model_.embed(tokens);
  for (int layer = 0; layer < model_.config().num_layers; ++layer) {
    model_.forward_layer(layer, hidden_.view(), batch, seqlen);
  }
}

Matrix CpuLogitsSource::logits(std::int64_t first, std::int64_t count) {
  if (first < 0 || count < 0 || first + count > hidden_.rows) {
    fail("CpuLogitsSource::logits: rows [{}, {}) outside the {} rows of the last run", first, first + count,
         hidden_.rows);
  }
  const ConstMatrixView all = hidden_.view();
  const ConstMatrixView rows{all.data.subspan(static_cast<std::size_t>(first * all.cols),
                                              static_cast<std::size_t>(count * all.cols)),
                             count, all.cols};
  return model_.logits(rows);
}

}  // namespace microscale::eval
