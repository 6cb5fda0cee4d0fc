// `eval --stream-layers`: a CPU model streamed from its checkpoint, one layer in memory at a time,
// gives exactly the figures of the resident model (the same operations in the same order), and says
// where streaming cannot apply.
#include <gtest/gtest.h>

#include <fstream>

#include "microscale/core/error.hpp"
#include "microscale/eval/evaluate.hpp"
#include "support/random_checkpoint.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir.hpp"

namespace microscale::testing {
namespace {

const std::filesystem::path kRoot = MICROSCALE_SOURCE_DIR;
const std::filesystem::path kModel = kRoot / "models/wp-tiny";

// A short slice of each bundled task file.
std::filesystem::path task_slice(const TempDir& dir, const char* name, int items) {
  const auto path = dir / (std::string(name) + ".jsonl");
  write_first_lines(kRoot / "data/tasks" / (std::string(name) + ".jsonl"), path, items);
  return path;
}

eval::EvalOptions options_for(const TempDir& dir, const std::filesystem::path& reference) {
  eval::EvalOptions o;
  o.model_dir = kModel;
  o.reference_dir = reference;
  o.text = kRoot / "data/wp-test.txt";
  o.seqlen = 128;
  o.max_windows = 3;
  o.tasks = {task_slice(dir, "wp-cloze", 4), task_slice(dir, "wp-lastword", 4)};
  o.decode_tokens = 4;
  o.threads = 1;
  o.quiet = true;
  return o;
}

void expect_same_task(const eval::TaskResult& a, const eval::TaskResult& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(a.acc, b.acc) << a.name;
  EXPECT_EQ(a.acc_norm, b.acc_norm) << a.name;
  EXPECT_EQ(a.ppl, b.ppl) << a.name;
}

TEST(EvalStreaming, StreamedLayersGiveTheResidentFiguresExactly) {
  TempDir dir;
  // The reference: another model with wp-tiny's tokenizer and vocabulary, so that KL is far from 0.
  RandomModelSpec spec;
  spec.vocab = 4096;
  spec.max_positions = 512;
  spec.tokenizer_json = kModel / "tokenizer.json";
  write_random_model(dir / "reference", spec);

  eval::EvalOptions resident = options_for(dir, dir / "reference");
  resident.stream_layers = eval::LayerStreaming::off;
  eval::EvalOptions streamed = resident;
  streamed.stream_layers = eval::LayerStreaming::on;
  const eval::EvalReport a = eval::run_evaluation(resident);
  const eval::EvalReport b = eval::run_evaluation(streamed);

  EXPECT_EQ(a.backend, "cpu");
  EXPECT_EQ(b.backend, "cpu, layers streamed");
  ASSERT_TRUE(a.perplexity.reference && b.perplexity.reference);
  EXPECT_GT(a.perplexity.reference->kl_mean, 0.1);
  EXPECT_EQ(a.perplexity.window_nll, b.perplexity.window_nll);
  EXPECT_EQ(a.perplexity.ppl, b.perplexity.ppl);
  EXPECT_EQ(a.perplexity.reference->reference_ppl, b.perplexity.reference->reference_ppl);
  EXPECT_EQ(a.perplexity.reference->kl_mean, b.perplexity.reference->kl_mean);
  EXPECT_EQ(a.perplexity.reference->kl_max, b.perplexity.reference->kl_max);
  EXPECT_EQ(a.perplexity.reference->top1_agreement, b.perplexity.reference->top1_agreement);
  ASSERT_EQ(a.tasks.size(), 2u);
  ASSERT_EQ(b.tasks.size(), 2u);
  ASSERT_EQ(b.reference_tasks.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    expect_same_task(a.tasks[i], b.tasks[i]);
    expect_same_task(a.reference_tasks[i], b.reference_tasks[i]);
  }
  // Decoding a streamed model would time the loading of every layer for every token.
  EXPECT_EQ(a.decode_tokens, 4);
  EXPECT_TRUE(a.decode_note.empty());
  EXPECT_EQ(b.decode_tokens, 0);
  EXPECT_EQ(b.decode_note, "not timed: layers streamed");
  EXPECT_NE(eval::format_table(b).find("decode not timed: layers streamed"), std::string::npos)
      << eval::format_table(b);
  EXPECT_EQ(eval::to_json(b)["efficiency"]["decode_note"], "not timed: layers streamed");
}

TEST(EvalStreaming, AutomaticKeepsASmallModelResident) {
  TempDir dir;
  eval::EvalOptions o = options_for(dir, kModel);
  o.tasks.clear();
  o.decode_tokens = 0;
  EXPECT_EQ(eval::run_evaluation(o).backend, "cpu");
}

std::string error_of(const eval::EvalOptions& o) {
  try {
    eval::run_evaluation(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(EvalStreaming, RefusedWhereItCannotApply) {
  TempDir dir;
  eval::EvalOptions o = options_for(dir, kModel);
  o.stream_layers = eval::LayerStreaming::on;
  o.device = eval::Device::cuda;
  const std::string cuda = error_of(o);
  EXPECT_NE(cuda.find("models/wp-tiny"), std::string::npos) << cuda;
  EXPECT_NE(cuda.find("layer streaming is for the CPU runtime"), std::string::npos) << cuda;

  EXPECT_EQ(eval::parse_layer_streaming("auto"), eval::LayerStreaming::automatic);
  EXPECT_EQ(eval::parse_layer_streaming("off"), eval::LayerStreaming::off);
  try {
    eval::parse_layer_streaming("sometimes");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must be auto, on or off, is 'sometimes'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace microscale::testing
