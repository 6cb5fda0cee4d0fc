#pragma once
// Perplexity the GPTQ-family way, optionally compared position by position with a reference model.
//
// The token stream (the whole text tokenized once, as the model's tokenizer does it) is cut into
// non-overlapping windows of `seqlen` tokens; the tail that does not fill a window is dropped. Each
// window is an independent sequence starting at position 0; positions 1..seqlen-1 are scored (the
// logits at t predict token t+1). mean NLL = mean over scored positions (every window has the same
// count, so this is also the mean of per-window means); ppl = exp(mean NLL).
//
// llama.cpp's perplexity tool cuts the same windows but scores only their second half (the logits at
// t >= seqlen/2), so that every scored token has at least seqlen/2 tokens of context; `score_from`
// reproduces that protocol for a like-for-like comparison with it.
//
// With a reference model, on the same windows and positions: KL(P_ref || P_model) per position (mean,
// median, 99th percentile, max), top-1 agreement (share of positions whose argmax agree) and the
// reference's own perplexity.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "microscale/core/matrix.hpp"
#include "microscale/eval/logits_source.hpp"
#include "microscale/model/model.hpp"

namespace microscale::eval {

// Statistics over scored positions. `targets[r]` is the token that logits row r predicts.
struct PositionStats {
  double nll_sum = 0.0;
  double reference_nll_sum = 0.0;
  std::int64_t positions = 0;
  std::int64_t top1_agree = 0;
  std::vector<double> kl;             // one value per position (only with a reference)
};
void accumulate_positions(PositionStats& stats, ConstMatrixView logits, std::span<const std::int32_t> targets,
                          const ConstMatrixView* reference_logits = nullptr);

struct PerplexityOptions {
  int seqlen = 2048;
  int max_windows = 0;                // 0 = all
  int score_from = 0;                 // first scored logits row of a window (llama.cpp: seqlen / 2)
  std::int64_t rows_per_batch = 2048; // windows are batched up to this many tokens
  std::int64_t logits_rows = 256;     // logits are materialised this many rows at a time
  std::string source = "text";        // names the text in error messages
  bool quiet = false;                 // no progress on stderr
};

struct ReferenceComparison {
  double reference_mean_nll = 0.0;
  double reference_ppl = 0.0;
  double kl_mean = 0.0;
  double kl_median = 0.0;
  double kl_p99 = 0.0;
  double kl_max = 0.0;
  double top1_agreement = 0.0;
};

struct PerplexityResult {
  int seqlen = 0;
  int windows = 0;
  std::int64_t positions = 0;         // scored positions: windows * (seqlen - 1 - score_from)
  int score_from = 0;
  double mean_nll = 0.0;
  double ppl = 0.0;
  std::vector<double> window_nll;     // mean NLL of each window
  std::optional<ReferenceComparison> reference;
  double model_seconds = 0.0;         // time spent in the evaluated model (embed, layers, logits)
  double prefill_tokens_per_second = 0.0;
};

// Number of full windows (after max_windows); throws naming options.source when there are none.
int count_windows(std::int64_t tokens, const PerplexityOptions& options);

// The reference, when given, must have the same vocabulary size.
PerplexityResult evaluate_perplexity(const model::Model& model, std::span<const std::int32_t> tokens,
                                     const PerplexityOptions& options, const model::Model* reference = nullptr);
// The same for any backend (the overload above wraps CpuLogitsSource). model_seconds times the
// model's run() and logits() calls, which must return with their work done.
PerplexityResult evaluate_perplexity(LogitsSource& model, std::span<const std::int32_t> tokens,
                                     const PerplexityOptions& options, LogitsSource* reference = nullptr);

}  // namespace microscale::eval
