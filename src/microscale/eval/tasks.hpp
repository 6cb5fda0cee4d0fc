#pragma once
// Zero-shot tasks scored by log-likelihood, from JSON Lines files (one JSON object per line; blank
// lines and lines starting with '#' are skipped). A file holds one kind of item:
//
//   multiple choice  {"context": "...", "choices": ["...", "..."], "label": 1}
//       The model reads context + choice (choices are appended verbatim, so give them their leading
//       space). ll(choice) = sum of log p(continuation tokens | everything before). acc: argmax ll is the
//       label; acc_norm: argmax of ll / len(choice), len counted in Unicode code points as
//       lm-evaluation-harness does (Python len of the choice string; equal to bytes for ASCII).
//
//   last word (LAMBADA-style)  {"text": "... the final word"}
//       Split at the last space: context = text before it, target = " word". Correct when greedy
//       decoding reproduces every target token (argmax at each target position, teacher-forced).
//       Also reported: ppl = exp(mean over items of -ll(target)).
//
// Tokenization follows lm-evaluation-harness' pair encoding: trailing spaces of the context move to
// the continuation; whole = encode(context + continuation), context tokens = encode(context), and the
// continuation is whole[len(context tokens):]. Both are encoded as the model's tokenizer does for a
// fresh text (its post-processor's special tokens, e.g. BOS, included), like the perplexity stream.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::eval {

enum class TaskKind { multiple_choice, last_word };

struct MultipleChoiceItem {
  std::string context;
  std::vector<std::string> choices;
  int label = 0;
  int line = 0;
};

struct LastWordItem {
  std::string text;
  int line = 0;
};

struct TaskFile {
  std::string name;  // file name without .jsonl
  std::filesystem::path path;
  TaskKind kind = TaskKind::multiple_choice;
  std::vector<MultipleChoiceItem> multiple_choice;
  std::vector<LastWordItem> last_word;
  std::size_t size() const { return kind == TaskKind::multiple_choice ? multiple_choice.size() : last_word.size(); }
};

// Throws microscale::Error naming the file and line for malformed input.
TaskFile load_task_file(const std::filesystem::path& path);
TaskFile parse_task_lines(std::string_view content, const std::filesystem::path& path);

// How the scorer reaches a tokenizer and a model: text -> token ids (as for a fresh text), and
// tokens -> logits [tokens, vocab] of one sequence.
using EncodeFn = std::function<std::vector<std::int32_t>(std::string_view text)>;
using LogitsFn = std::function<Matrix(std::span<const std::int32_t> tokens)>;

// The logits of several sequences at once: `use(i, logits)` receives sequence i's [tokens, vocab]
// logits, once for each i. A backend may run every sequence through one layer before the next (a CPU
// model streamed from its checkpoint does, so that it loads each layer once per batch, not once per
// sequence).
using LogitsConsumer = std::function<void(std::size_t index, ConstMatrixView logits)>;
using BatchLogitsFn =
    std::function<void(std::span<const std::vector<std::int32_t>> sequences, const LogitsConsumer& use)>;
BatchLogitsFn one_at_a_time(LogitsFn logits);

struct EncodedPair {
  std::vector<std::int32_t> context;
  std::vector<std::int32_t> continuation;
};
EncodedPair encode_pair(const EncodeFn& encode, std::string_view context, std::string_view continuation);

// Sum of log p(continuation | context) and whether every continuation token is the argmax.
struct ContinuationScore {
  double log_likelihood = 0.0;
  bool greedy = false;
};
ContinuationScore score_continuation(const LogitsFn& logits, const EncodedPair& pair);
// What the model reads for a pair: the context and the continuation minus its last token (row i of
// the logits predicts token i + 1). Throws unless both have a token.
std::vector<std::int32_t> continuation_input(const EncodedPair& pair);
// The score from the logits of continuation_input(pair).
ContinuationScore score_continuation(ConstMatrixView logits, const EncodedPair& pair);

struct TaskResult {
  std::string name;
  TaskKind kind = TaskKind::multiple_choice;
  std::int64_t items = 0;
  double acc = 0.0;
  double acc_norm = 0.0;  // multiple choice only
  double ppl = 0.0;       // last word only
};

// Items are scored in batches of about `tokens_per_batch` input tokens (at least one item a batch),
// which bounds what a layer-by-layer backend holds; progress advances a batch at a time.
TaskResult evaluate_task(const TaskFile& task, const EncodeFn& encode, const BatchLogitsFn& logits, bool quiet = true,
                         std::int64_t tokens_per_batch = 4096);
TaskResult evaluate_task(const TaskFile& task, const EncodeFn& encode, const LogitsFn& logits, bool quiet = true);

std::size_t code_point_count(std::string_view utf8);

}  // namespace microscale::eval
