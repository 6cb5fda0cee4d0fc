#include "microscale/eval/tasks.hpp"

#include "microscale/io/json_file.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/core/progress.hpp"
#include "microscale/eval/metrics.hpp"

namespace microscale::eval {
namespace {

using nlohmann::json;

std::string where(const std::filesystem::path& path, int line) { return fmt::format("{}:{}", path.string(), line); }

MultipleChoiceItem parse_multiple_choice(const json& j, const std::filesystem::path& path, int line) {
  MultipleChoiceItem item;
  item.line = line;
  const auto context = j.find("context");
  const auto choices = j.find("choices");
  const auto label = j.find("label");
  if (context == j.end() || !context->is_string()) fail("{}: \"context\" should be a string", where(path, line));
  if (choices == j.end() || !choices->is_array() || choices->size() < 2) {
    fail("{}: \"choices\" should be an array of at least two strings", where(path, line));
  }
  if (label == j.end() || !label->is_number_integer()) fail("{}: \"label\" should be an integer", where(path, line));
  item.context = context->get<std::string>();
  for (const auto& c : *choices) {
    if (!c.is_string() || c.get<std::string>().empty()) {
      fail("{}: every choice should be a non-empty string, found {}", where(path, line), c.dump());
    }
    item.choices.push_back(c.get<std::string>());
  }
  const auto l = label->get<std::int64_t>();
  if (l < 0 || l >= static_cast<std::int64_t>(item.choices.size())) {
    fail("{}: label {} is not an index into the {} choices", where(path, line), l, item.choices.size());
  }
  item.label = static_cast<int>(l);
  if (item.context.empty()) fail("{}: \"context\" is empty", where(path, line));
  return item;
}

LastWordItem parse_last_word(const json& j, const std::filesystem::path& path, int line) {
  const auto text = j.find("text");
  if (!text->is_string()) fail("{}: \"text\" should be a string", where(path, line));
  LastWordItem item{text->get<std::string>(), line};
  const auto space = item.text.find_last_of(' ');
  if (space == std::string::npos || space == 0 || space + 1 == item.text.size()) {
    fail("{}: \"text\" should be a context, a space, and a last word", where(path, line));
  }
  return item;
}

}  // namespace

std::size_t code_point_count(std::string_view utf8) {
  std::size_t count = 0;
  for (char c : utf8) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;  // skip continuation bytes
  return count;
}

TaskFile parse_task_lines(std::string_view content, const std::filesystem::path& path) {
  TaskFile task;
  task.path = path;
  task.name = path.stem().string();
  bool kind_known = false;
  std::istringstream in{std::string(content)};
  std::string text;
  int line = 0;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos || text[text.find_first_not_of(" \t")] == '#') continue;
    json j;
    try {
      j = json::parse(text);
    } catch (const json::exception& e) {
      fail("{}: not valid JSON ({})", where(path, line), e.what());
    }
    if (!j.is_object()) fail("{}: each line should be a JSON object", where(path, line));
    TaskKind kind;
    if (j.contains("choices") || j.contains("context")) {
      kind = TaskKind::multiple_choice;
    } else if (j.contains("text")) {
      kind = TaskKind::last_word;
    } else {
      fail("{}: expected {{\"context\", \"choices\", \"label\"}} (multiple choice) or {{\"text\"}} (last word)",
           where(path, line));
    }
    if (kind_known && kind != task.kind) {
      fail("{}: mixes multiple-choice and last-word items; use one kind per file", where(path, line));
    }
    task.kind = kind;
    kind_known = true;
    if (kind == TaskKind::multiple_choice) {
      task.multiple_choice.push_back(parse_multiple_choice(j, path, line));
    } else {
      task.last_word.push_back(parse_last_word(j, path, line));
    }
  }
  if (!kind_known) fail("{}: no task items", path.string());
  return task;
}

TaskFile load_task_file(const std::filesystem::path& path) {
  return parse_task_lines(io::read_file(path, "task file"), path);
}

EncodedPair encode_pair(const EncodeFn& encode, std::string_view context, std::string_view continuation) {
  std::string ctx(context);
  std::string cont(continuation);
  const auto kept = ctx.find_last_not_of(' ');
  const std::size_t spaces = kept == std::string::npos ? ctx.size() : ctx.size() - kept - 1;
  if (spaces > 0) {
    cont = ctx.substr(ctx.size() - spaces) + cont;
    ctx.resize(ctx.size() - spaces);
  }
  EncodedPair pair;
  pair.context = encode(ctx);
  const std::vector<std::int32_t> whole = encode(ctx + cont);
  if (whole.size() > pair.context.size()) pair.continuation.assign(whole.begin() + pair.context.size(), whole.end());
  return pair;
}

std::vector<std::int32_t> continuation_input(const EncodedPair& pair) {
  if (pair.context.empty() || pair.continuation.empty()) {
    fail("score_continuation: needs at least one context and one continuation token (got {} and {})",
         pair.context.size(), pair.continuation.size());
  }
  std::vector<std::int32_t> input(pair.context);
  input.insert(input.end(), pair.continuation.begin(), pair.continuation.end() - 1);
  return input;
}

ContinuationScore score_continuation(ConstMatrixView logits, const EncodedPair& pair) {
  const std::int64_t first = static_cast<std::int64_t>(pair.context.size()) - 1;
  if (first < 0 || logits.rows != first + static_cast<std::int64_t>(pair.continuation.size())) {
    fail("score_continuation: {} rows of logits for {} context and {} continuation tokens", logits.rows,
         pair.context.size(), pair.continuation.size());
  }
  ContinuationScore score;
  score.greedy = true;
  for (std::size_t i = 0; i < pair.continuation.size(); ++i) {
    const auto row = logits.row(first + static_cast<std::int64_t>(i));
    score.log_likelihood -= token_nll(row, pair.continuation[i]);
    score.greedy = score.greedy && argmax(row) == pair.continuation[i];
  }
  return score;
}

ContinuationScore score_continuation(const LogitsFn& logits, const EncodedPair& pair) {
  const Matrix out = logits(continuation_input(pair));
  return score_continuation(out.view(), pair);
}

BatchLogitsFn one_at_a_time(LogitsFn logits) {
  return [logits = std::move(logits)](std::span<const std::vector<std::int32_t>> sequences, const LogitsConsumer& use) {
    for (std::size_t i = 0; i < sequences.size(); ++i) use(i, logits(sequences[i]).view());
  };
}

namespace {

// One scored continuation: which item it belongs to and its tokens.
struct Query {
  std::size_t item;
  EncodedPair pair;
};

std::vector<Query> encode_queries(const TaskFile& task, const EncodeFn& encode) {
  std::vector<Query> queries;
  auto add = [&](std::size_t item, std::string_view context, std::string_view continuation, int line) {
    EncodedPair pair = encode_pair(encode, context, continuation);
    if (pair.context.empty() || pair.continuation.empty()) {
      fail("{}: the {} encodes to no tokens", where(task.path, line), pair.context.empty() ? "context" : "continuation");
    }
    queries.push_back({item, std::move(pair)});
  };
  if (task.kind == TaskKind::multiple_choice) {
    for (std::size_t i = 0; i < task.multiple_choice.size(); ++i) {
      const auto& item = task.multiple_choice[i];
      for (const auto& choice : item.choices) add(i, item.context, choice, item.line);
    }
  } else {
    for (std::size_t i = 0; i < task.last_word.size(); ++i) {
      const std::string_view text = task.last_word[i].text;
      const auto space = text.find_last_of(' ');
      add(i, text.substr(0, space), text.substr(space), task.last_word[i].line);
    }
  }
  return queries;
}

}  // namespace

TaskResult evaluate_task(const TaskFile& task, const EncodeFn& encode, const BatchLogitsFn& logits, bool quiet,
                         std::int64_t tokens_per_batch) {
  TaskResult result;
  result.name = task.name;
  result.kind = task.kind;
  result.items = static_cast<std::int64_t>(task.size());
  const std::vector<Query> queries = encode_queries(task, encode);
  std::vector<ContinuationScore> scores(queries.size());

  std::vector<std::vector<std::int32_t>> inputs;
  inputs.reserve(queries.size());
  for (const Query& q : queries) inputs.push_back(continuation_input(q.pair));

  // Batches end at item boundaries, so that progress counts whole items.
  Progress progress("task " + task.name, result.items, quiet);
  for (std::size_t begin = 0; begin < queries.size();) {
    std::size_t end = begin;
    std::int64_t tokens = 0;
    while (end < queries.size()) {
      std::size_t item_end = end;
      std::int64_t item_tokens = 0;
      for (; item_end < queries.size() && queries[item_end].item == queries[end].item; ++item_end) {
        item_tokens += static_cast<std::int64_t>(inputs[item_end].size());
      }
      if (end > begin && tokens + item_tokens > tokens_per_batch) break;
      tokens += item_tokens;
      end = item_end;
    }
    logits(std::span(inputs).subspan(begin, end - begin), [&](std::size_t i, ConstMatrixView rows) {
      scores[begin + i] = score_continuation(rows, queries[begin + i].pair);
    });
    progress.advance(static_cast<std::int64_t>(queries[end - 1].item - queries[begin].item + 1));
    begin = end;
  }
  progress.finish();

  double correct = 0.0, correct_norm = 0.0, nll_sum = 0.0;
  if (task.kind == TaskKind::multiple_choice) {
    std::size_t q = 0;
    for (const auto& item : task.multiple_choice) {
      int best = 0, best_norm = 0;
      double best_ll = -INFINITY, best_ll_norm = -INFINITY;
      for (std::size_t c = 0; c < item.choices.size(); ++c, ++q) {
        const double ll = scores[q].log_likelihood;
        const double ll_norm = ll / static_cast<double>(code_point_count(item.choices[c]));
        if (ll > best_ll) best_ll = ll, best = static_cast<int>(c);  // first maximum, as np.argmax
        if (ll_norm > best_ll_norm) best_ll_norm = ll_norm, best_norm = static_cast<int>(c);
      }
      correct += best == item.label ? 1.0 : 0.0;
      correct_norm += best_norm == item.label ? 1.0 : 0.0;
    }
    result.acc_norm = correct_norm / static_cast<double>(result.items);
  } else {
    for (const ContinuationScore& s : scores) {
      correct += s.greedy ? 1.0 : 0.0;
      nll_sum -= s.log_likelihood;
    }
    result.ppl = std::exp(nll_sum / static_cast<double>(result.items));
  }
  result.acc = correct / static_cast<double>(result.items);
  return result;
}

TaskResult evaluate_task(const TaskFile& task, const EncodeFn& encode, const LogitsFn& logits, bool quiet) {
  return evaluate_task(task, encode, one_at_a_time(logits), quiet);
}

}  // namespace microscale::eval
