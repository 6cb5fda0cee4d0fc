// Task files and their scoring, with a byte-level toy tokenizer and a bigram "model" whose
// log-likelihoods have a closed form.
#include <gtest/gtest.h>

#include <cmath>

#include "microscale/core/error.hpp"
#include "microscale/eval/tasks.hpp"

namespace microscale::testing {
namespace {

// One token per byte.
std::vector<std::int32_t> bytes_of(std::string_view s) {
  std::vector<std::int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

// Bigram logits: the byte after x scores 5, everything else 0, so
// log p(next = x + 1) = 5 - log(e^5 + 255) and log p(other) = -log(e^5 + 255).
constexpr int kVocab = 256;
Matrix bigram_logits(std::span<const std::int32_t> ids) {
  Matrix out(static_cast<std::int64_t>(ids.size()), kVocab);
  for (std::size_t t = 0; t < ids.size(); ++t) out(static_cast<std::int64_t>(t), (ids[t] + 1) % kVocab) = 5.0f;
  return out;
}
const double kLogZ = std::log(std::exp(5.0) + 255.0);
const double kLogHit = 5.0 - kLogZ;
const double kLogMiss = -kLogZ;

std::string error_of(std::string_view content) {
  try {
    eval::parse_task_lines(content, "tasks/t.jsonl");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tasks, ParsesBothKindsAndSkipsCommentsAndBlankLines) {
  const auto mc = eval::parse_task_lines(
      "# a comment\n{\"context\": \"abc\", \"choices\": [\"d\", \"x\"], \"label\": 0}\n\n"
      "{\"context\": \"q\", \"choices\": [\"r\", \"s\", \"t\"], \"label\": 2, \"source\": \"extra keys are fine\"}\r\n",
      "dir/my-task.jsonl");
  EXPECT_EQ(mc.name, "my-task");
  EXPECT_EQ(mc.kind, eval::TaskKind::multiple_choice);
  ASSERT_EQ(mc.multiple_choice.size(), 2u);
  EXPECT_EQ(mc.multiple_choice[1].choices.size(), 3u);
  EXPECT_EQ(mc.multiple_choice[1].label, 2);
  EXPECT_EQ(mc.multiple_choice[1].line, 4);
  const auto lw = eval::parse_task_lines("{\"text\": \"one two\"}\n", "lw.jsonl");
  EXPECT_EQ(lw.kind, eval::TaskKind::last_word);
  ASSERT_EQ(lw.last_word.size(), 1u);
}

TEST(Tasks, MalformedLinesNameFileAndLine) {
  EXPECT_NE(error_of("{\"text\": \"a b\"}\n{not json\n").find("tasks/t.jsonl:2"), std::string::npos);
  EXPECT_NE(error_of("\n\n{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 2}").find("tasks/t.jsonl:3: label 2"),
            std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"a\", \"choices\": [\"b\"], \"label\": 0}").find(":1: \"choices\""),
            std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"a\", \"label\": 0}").find(":1:"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"a\", \"choices\": [\"b\", 3], \"label\": 0}").find(":1:"), std::string::npos);
  EXPECT_NE(error_of("{\"context\": \"a\", \"choices\": [\"b\", \"c\"], \"label\": 0}\n{\"text\": \"x y\"}")
                .find(":2: mixes"),
            std::string::npos);
  EXPECT_NE(error_of("{\"text\": \"nospace\"}").find(":1:"), std::string::npos);
  EXPECT_NE(error_of("[1, 2]").find(":1:"), std::string::npos);
  EXPECT_NE(error_of("{\"other\": 1}").find(":1:"), std::string::npos);
  EXPECT_NE(error_of("\n# only comments\n").find("no task items"), std::string::npos);
  EXPECT_THROW(eval::load_task_file("/nonexistent/t.jsonl"), Error);
}

TEST(Tasks, PairEncodingMovesTrailingSpacesToTheContinuation) {
  const auto pair = eval::encode_pair(bytes_of, "abc  ", "d");
  EXPECT_EQ(pair.context, bytes_of("abc"));
  EXPECT_EQ(pair.continuation, bytes_of("  d"));
}

TEST(Tasks, ContinuationScoreHasTheClosedForm) {
  const auto s = eval::score_continuation(bigram_logits, eval::encode_pair(bytes_of, "abc", "dex"));
  EXPECT_NEAR(s.log_likelihood, 2 * kLogHit + kLogMiss, 1e-6);
  EXPECT_FALSE(s.greedy);
  EXPECT_TRUE(eval::score_continuation(bigram_logits, eval::encode_pair(bytes_of, "abc", "defg")).greedy);
}

TEST(Tasks, MultipleChoiceAccuracyAndLengthNormalisedAccuracy) {
  // Item 1: "d" wins either way. Item 2: "defgh" (5 hits) beats "x" (1 miss) either way.
  // Item 3: "q" (one miss, -6.0) beats "defghijk" (8 hits, -8.0) on the sum, but per character the
  // long one wins (-1.0 vs -6.0): acc misses it, acc_norm gets it.
  const auto task = eval::parse_task_lines(
      "{\"context\": \"abc\", \"choices\": [\"d\", \"dx\", \"z\"], \"label\": 0}\n"
      "{\"context\": \"abc\", \"choices\": [\"x\", \"defgh\"], \"label\": 1}\n"
      "{\"context\": \"abc\", \"choices\": [\"q\", \"defghijk\"], \"label\": 1}\n",
      "mc.jsonl");
  ASSERT_GT(kLogMiss, 8 * kLogHit);  // the premise of item 3
  const auto r = eval::evaluate_task(task, bytes_of, bigram_logits);
  EXPECT_EQ(r.items, 3);
  EXPECT_DOUBLE_EQ(r.acc, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.acc_norm, 1.0);
}

TEST(Tasks, LengthNormalisationCountsCodePoints) {
  EXPECT_EQ(eval::code_point_count("abc"), 3u);
  EXPECT_EQ(eval::code_point_count("caf\xC3\xA9"), 4u);           // é: 2 bytes, 1 code point
  EXPECT_EQ(eval::code_point_count("\xE2\x80\x94 \xF0\x9F\x99\x82"), 3u);  // em dash, space, emoji
}

TEST(Tasks, LastWordAccuracyAndPerplexity) {
  // "\x1f !\"#": context "\x1f", target " !\"#" = bytes 32..35, each the successor of the one before:
  // all greedy hits. "ab x": target " x" after 'b': two misses.
  const auto task = eval::parse_task_lines("{\"text\": \"\\u001f !\\\"#\"}\n{\"text\": \"ab x\"}\n", "lw.jsonl");
  const auto r = eval::evaluate_task(task, bytes_of, bigram_logits);
  EXPECT_DOUBLE_EQ(r.acc, 0.5);
  EXPECT_NEAR(r.ppl, std::exp(-(4 * kLogHit + 2 * kLogMiss) / 2), 1e-6);
}

TEST(Tasks, BatchesHoldWholeItemsWithinTheTokenBudgetAndScoreAsOneAtATime) {
  const auto task = eval::parse_task_lines(
      "{\"context\": \"abc\", \"choices\": [\"d\", \"dx\", \"z\"], \"label\": 0}\n"
      "{\"context\": \"abc\", \"choices\": [\"x\", \"defgh\"], \"label\": 1}\n"
      "{\"context\": \"abc\", \"choices\": [\"q\", \"defghijk\"], \"label\": 1}\n",
      "mc.jsonl");
  // Inputs are context + continuation minus its last token: item 1 reads 3 + 4 + 3 = 10 tokens,
  // item 2 3 + 7 = 10, item 3 3 + 10 = 13.
  for (const auto& [budget, want] : std::vector<std::pair<std::int64_t, std::vector<std::size_t>>>{
           {1, {3, 2, 2}}, {19, {3, 2, 2}}, {20, {5, 2}}, {32, {5, 2}}, {33, {7}}}) {
    std::vector<std::size_t> batches;
    const eval::BatchLogitsFn batched = [&](std::span<const std::vector<std::int32_t>> sequences,
                                            const eval::LogitsConsumer& use) {
      batches.push_back(sequences.size());
      // Hand the logits back last to first: the scorer must match them by index.
      for (std::size_t i = sequences.size(); i-- > 0;) use(i, bigram_logits(sequences[i]).view());
    };
    const auto r = eval::evaluate_task(task, bytes_of, batched, /*quiet=*/true, budget);
    EXPECT_EQ(batches, want) << "budget " << budget;
    const auto one = eval::evaluate_task(task, bytes_of, bigram_logits);
    EXPECT_EQ(r.acc, one.acc);
    EXPECT_EQ(r.acc_norm, one.acc_norm);
    EXPECT_DOUBLE_EQ(r.acc, 2.0 / 3.0);
  }
}

TEST(Tasks, BundledTaskFilesParse) {
  const std::filesystem::path root = MICROSCALE_SOURCE_DIR;
  const auto cloze = eval::load_task_file(root / "data/tasks/wp-cloze.jsonl");
  EXPECT_EQ(cloze.kind, eval::TaskKind::multiple_choice);
  EXPECT_GE(cloze.size(), 100u);
  for (const auto& item : cloze.multiple_choice) EXPECT_EQ(item.choices.size(), 4u);
  const auto lastword = eval::load_task_file(root / "data/tasks/wp-lastword.jsonl");
  EXPECT_EQ(lastword.kind, eval::TaskKind::last_word);
  EXPECT_GE(lastword.size(), 100u);
}

}  // namespace
}  // namespace microscale::testing
