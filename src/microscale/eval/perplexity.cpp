#include "microscale/eval/perplexity.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "microscale/core/error.hpp"
#include "microscale/core/progress.hpp"
#include "microscale/eval/metrics.hpp"

namespace microscale::eval {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void merge(PositionStats& into, PositionStats&& from) {
  into.nll_sum += from.nll_sum;
  into.reference_nll_sum += from.reference_nll_sum;
  into.positions += from.positions;
  into.top1_agree += from.top1_agree;
  into.kl.insert(into.kl.end(), from.kl.begin(), from.kl.end());
}

}  // namespace

void accumulate_positions(PositionStats& stats, ConstMatrixView logits, std::span<const std::int32_t> targets,
                          const ConstMatrixView* reference_logits) {
  if (static_cast<std::int64_t>(targets.size()) != logits.rows) {
    fail("accumulate_positions: {} targets for {} logits rows", targets.size(), logits.rows);
  }
  if (reference_logits != nullptr &&
      (reference_logits->rows != logits.rows || reference_logits->cols != logits.cols)) {
    fail("accumulate_positions: reference logits are {}x{}, model logits {}x{}", reference_logits->rows,
         reference_logits->cols, logits.rows, logits.cols);
  }
  const auto n = static_cast<std::int64_t>(targets.size());
  for (std::int32_t target : targets) {  // validated here: nothing may throw inside the parallel loop
    if (target >= logits.cols) fail("accumulate_positions: target {} outside the vocabulary [0, {})", target, logits.cols);
  }
  std::vector<double> nll(static_cast<std::size_t>(n), 0.0), ref_nll(nll.size(), 0.0), kl(nll.size(), 0.0);
  std::vector<char> agree(nll.size(), 0);
#pragma omp parallel for schedule(static) if (n * logits.cols > (1 << 16))
  for (std::int64_t r = 0; r < n; ++r) {
    const std::int32_t target = targets[static_cast<std::size_t>(r)];
    if (target < 0) continue;  // an unscored position (the last of a window)
    const auto i = static_cast<std::size_t>(r);
    nll[i] = token_nll(logits.row(r), target);
    if (reference_logits != nullptr) {
      const auto ref = reference_logits->row(r);
      ref_nll[i] = token_nll(ref, target);
      kl[i] = kl_divergence(ref, logits.row(r));
      agree[i] = argmax(ref) == argmax(logits.row(r)) ? 1 : 0;
    }
  }
  for (std::int64_t r = 0; r < n; ++r) {
    if (targets[static_cast<std::size_t>(r)] < 0) continue;
    const auto i = static_cast<std::size_t>(r);
    stats.nll_sum += nll[i];
    stats.positions += 1;
    if (reference_logits != nullptr) {
      stats.reference_nll_sum += ref_nll[i];
      stats.kl.push_back(kl[i]);
      stats.top1_agree += agree[i];
    }
  }
}

int count_windows(std::int64_t tokens, const PerplexityOptions& options) {
  if (options.seqlen < 2) fail("perplexity: seqlen must be at least 2, is {}", options.seqlen);
  if (options.score_from < 0 || options.score_from > options.seqlen - 2) {
    fail("perplexity: scoring from position {} leaves nothing to score in windows of {} tokens", options.score_from,
         options.seqlen);
  }
  const std::int64_t full = tokens / options.seqlen;
  if (full == 0) {
    fail("{}: {} tokens, but one window of seqlen {} needs at least {} tokens{}", options.source, tokens,
         options.seqlen, options.seqlen, tokens == 0 ? " (the text is empty)" : "");
  }
  std::int64_t windows = full;
  if (options.max_windows > 0) windows = std::min<std::int64_t>(windows, options.max_windows);
  return static_cast<int>(windows);
}

PerplexityResult evaluate_perplexity(const model::Model& model, std::span<const std::int32_t> tokens,
                                     const PerplexityOptions& options, const model::Model* reference) {
  CpuLogitsSource source(model);
  if (reference == nullptr) return evaluate_perplexity(source, tokens, options, nullptr);
  CpuLogitsSource reference_source(*reference);
  return evaluate_perplexity(source, tokens, options, &reference_source);
}

PerplexityResult evaluate_perplexity(LogitsSource& model, std::span<const std::int32_t> tokens,
                                     const PerplexityOptions& options, LogitsSource* reference) {
  const int windows = count_windows(static_cast<std::int64_t>(tokens.size()), options);
  const int seqlen = options.seqlen;
  if (reference != nullptr && reference->vocab_size() != model.vocab_size()) {
    fail("reference model {} has vocab_size {}, the model {} has {}: their token distributions cannot be compared",
         reference->name(), reference->vocab_size(), model.name(), model.vocab_size());
  }
  const int per_batch = static_cast<int>(std::max<std::int64_t>(1, options.rows_per_batch / seqlen));
  const std::int64_t chunk_rows = std::max<std::int64_t>(1, options.logits_rows);

  PerplexityResult result;
  result.seqlen = seqlen;
  result.windows = windows;
  result.score_from = options.score_from;
  PositionStats total;
  Progress progress(reference ? "perplexity + KL" : "perplexity", windows, options.quiet);
  for (int w0 = 0; w0 < windows; w0 += per_batch) {
    const int batch = std::min(per_batch, windows - w0);
    const auto batch_tokens = tokens.subspan(static_cast<std::size_t>(w0) * static_cast<std::size_t>(seqlen),
                                             static_cast<std::size_t>(batch) * static_cast<std::size_t>(seqlen));
    auto start = Clock::now();
    model.run(batch_tokens, batch, seqlen);
    result.model_seconds += seconds_since(start);
    if (reference != nullptr) reference->run(batch_tokens, batch, seqlen);

    std::vector<PositionStats> per_window(static_cast<std::size_t>(batch));
    const std::int64_t rows = static_cast<std::int64_t>(batch) * seqlen;
    for (std::int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const std::int64_t count = std::min(chunk_rows, rows - r0);
      start = Clock::now();
      const Matrix logits = model.logits(r0, count);
      result.model_seconds += seconds_since(start);
      Matrix reference_logits;
      if (reference != nullptr) reference_logits = reference->logits(r0, count);
      // Split the chunk at window boundaries; the last position of a window predicts nothing, and
      // positions before score_from are context only.
      for (std::int64_t a = r0; a < r0 + count;) {
        const std::int64_t w = a / seqlen;
        const std::int64_t b = std::min(r0 + count, (w + 1) * seqlen);
        std::vector<std::int32_t> targets(static_cast<std::size_t>(b - a));
        for (std::int64_t r = a; r < b; ++r) {
          const std::int64_t t = r % seqlen;
          const bool scored = t >= options.score_from && t != seqlen - 1;
          targets[static_cast<std::size_t>(r - a)] = scored ? batch_tokens[static_cast<std::size_t>(r + 1)] : -1;
        }
        const ConstMatrixView model_rows = logits.view().middle_rows(a - r0, b - a);
        if (reference != nullptr) {
          const ConstMatrixView ref_rows = ConstMatrixView(reference_logits.view()).middle_rows(a - r0, b - a);
          accumulate_positions(per_window[static_cast<std::size_t>(w)], model_rows, targets, &ref_rows);
        } else {
          accumulate_positions(per_window[static_cast<std::size_t>(w)], model_rows, targets);
        }
        a = b;
      }
    }
    for (auto& stats : per_window) {
      result.window_nll.push_back(stats.nll_sum / static_cast<double>(stats.positions));
      merge(total, std::move(stats));
    }
    progress.advance(batch, fmt::format("ppl {:.4f}", std::exp(total.nll_sum / static_cast<double>(total.positions))));
  }
  progress.finish();

  result.positions = total.positions;
  result.mean_nll = total.nll_sum / static_cast<double>(total.positions);
  result.ppl = std::exp(result.mean_nll);
  result.prefill_tokens_per_second =
      result.model_seconds > 0 ? static_cast<double>(windows) * seqlen / result.model_seconds : 0.0;
  if (reference != nullptr) {
    ReferenceComparison cmp;
    cmp.reference_mean_nll = total.reference_nll_sum / static_cast<double>(total.positions);
    cmp.reference_ppl = std::exp(cmp.reference_mean_nll);
    double kl_sum = 0.0;
    for (double v : total.kl) kl_sum += v;
    cmp.kl_mean = kl_sum / static_cast<double>(total.kl.size());
    cmp.kl_median = percentile(total.kl, 0.5);
    cmp.kl_p99 = percentile(total.kl, 0.99);
    cmp.kl_max = *std::max_element(total.kl.begin(), total.kl.end());
    cmp.top1_agreement = static_cast<double>(total.top1_agree) / static_cast<double>(total.positions);
    result.reference = cmp;
  }
  return result;
}

}  // namespace microscale::eval
