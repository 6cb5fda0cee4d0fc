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
  return model_.logits(ConstMatrixView(hidden_.view()).middle_rows(first, count));
}

}  // namespace microscale::eval
