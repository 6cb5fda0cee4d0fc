// Perplexity of the bundled model against transformers' figures (tests/fixtures/model/wp-tiny-ppl.json),
// and `microscale eval` end to end. The full test text (82 windows of 512) takes too long for a unit
// test, so the first windows are compared, window by window, with the fixture's per-window NLLs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "microscale/eval/perplexity.hpp"
#include "microscale/model/model.hpp"
#include "microscale/tokenizer/tokenizer.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir.hpp"

namespace microscale::testing {
namespace {

const std::filesystem::path kRoot = MICROSCALE_SOURCE_DIR;
const std::filesystem::path kModel = kRoot / "models/wp-tiny";
const std::filesystem::path kText = kRoot / "data/wp-test.txt";

nlohmann::json ppl_fixture() {
  return nlohmann::json::parse(std::ifstream(kRoot / "tests/fixtures/model/wp-tiny-ppl.json"));
}

// exp(mean of the fixture's first `windows` window NLLs at `seqlen`).
double fixture_ppl(int seqlen, int windows) {
  const auto nll = ppl_fixture().at("seqlen_" + std::to_string(seqlen)).at("window_nll").get<std::vector<double>>();
  double sum = 0;
  for (int w = 0; w < windows; ++w) sum += nll[static_cast<std::size_t>(w)];
  return std::exp(sum / windows);
}

TEST(WpTinyPerplexity, MatchesTransformersWindowByWindow) {
  const auto tok = tokenizer::Tokenizer::from_file(kModel / "tokenizer.json");
  std::ifstream in(kText, std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto tokens = tok.encode(text, true);
  const auto fixture = ppl_fixture();
  ASSERT_EQ(static_cast<std::int64_t>(tokens.size()), fixture.at("token_count").get<std::int64_t>());
  const model::Model m = model::Model::load(kModel);
  for (auto [seqlen, windows] : {std::pair{512, 4}, std::pair{128, 16}}) {
    eval::PerplexityOptions o;
    o.seqlen = seqlen;
    o.max_windows = windows;
    o.quiet = true;
    const auto r = eval::evaluate_perplexity(m, tokens, o);
    const auto want = fixture.at("seqlen_" + std::to_string(seqlen)).at("window_nll").get<std::vector<double>>();
    for (int w = 0; w < windows; ++w) {
      EXPECT_NEAR(r.window_nll[static_cast<std::size_t>(w)], want[static_cast<std::size_t>(w)], 1e-5)
          << "seqlen " << seqlen << " window " << w;
    }
    const double expected = fixture_ppl(seqlen, windows);
    EXPECT_LT(std::abs(r.ppl / expected - 1.0), 1e-3) << r.ppl << " vs " << expected;
  }
}

std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

std::string eval_command(const std::string& args) { return cli() + " eval " + args + " --threads 1 --quiet"; }

TEST(EvalCli, PerplexityTasksAndJsonOnWpTiny) {
  TempDir dir;
  // A three-item slice of each bundled task keeps this quick.
  for (const char* name : {"wp-cloze", "wp-lastword"}) {
    write_first_lines(kRoot / "data/tasks" / (std::string(name) + ".jsonl"), dir / (std::string(name) + ".jsonl"), 3);
  }
  const auto json_path = dir / "result.json";
  const auto r = run_command(eval_command(
      quote(kModel) + " --text " + quote(kText) + " --seqlen 128 --max-windows 3 --decode-tokens 4 --reference " +
      quote(kModel) + " --tasks " + quote(dir / "wp-cloze.jsonl") + " " + quote(dir / "wp-lastword.jsonl") +
      " --json " + quote(json_path)));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("perplexity"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("top-1 agreement"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wp-cloze (3)"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(std::ifstream(json_path));
  EXPECT_EQ(j["perplexity"]["seqlen"], 128);
  EXPECT_EQ(j["perplexity"]["windows"], 3);
  EXPECT_EQ(j["perplexity"]["positions"], 3 * 127);
  EXPECT_LT(std::abs(j["perplexity"]["ppl"].get<double>() / fixture_ppl(128, 3) - 1.0), 1e-3);
  // The model against itself.
  EXPECT_EQ(j["kl_divergence"]["mean"].get<double>(), 0.0);
  EXPECT_EQ(j["top1_agreement"].get<double>(), 1.0);
  EXPECT_EQ(j["perplexity"]["reference_ppl"].get<double>(), j["perplexity"]["ppl"].get<double>());
  ASSERT_EQ(j["tasks"].size(), 2u);
  EXPECT_EQ(j["tasks"][0]["name"], "wp-cloze");
  EXPECT_EQ(j["tasks"][0]["items"], 3);
  EXPECT_TRUE(j["tasks"][0].contains("acc_norm"));
  EXPECT_EQ(j["tasks"][1]["kind"], "last_word");
  EXPECT_EQ(j["tasks"][1]["reference"]["acc"], j["tasks"][1]["acc"]);
  EXPECT_EQ(j["efficiency"]["weight_bytes"].get<std::uint64_t>(), std::filesystem::file_size(kModel / "model.safetensors"));
  EXPECT_GT(j["efficiency"]["peak_rss_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["efficiency"]["prefill_tokens_per_second"].get<double>(), 0.0);
  EXPECT_GT(j["efficiency"]["decode_tokens_per_second"].get<double>(), 0.0);
}

TEST(EvalCli, StreamedLayersSayTheyAreStreamedAndSkipTheDecodeTiming) {
  const auto r = run_command(eval_command(quote(kModel) + " --text " + quote(kText) +
                                          " --seqlen 128 --max-windows 2 --stream-layers on"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("backend cpu, layers streamed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("decode not timed: layers streamed"), std::string::npos) << r.out;

  const auto bad = run_command(eval_command(quote(kModel) + " --text " + quote(kText) + " --stream-layers maybe"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--stream-layers"), std::string::npos) << bad.err;
}

TEST(EvalCli, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  std::ofstream(dir / "empty.txt").flush();
  auto r = run_command(eval_command(quote(kModel) + " --text " + quote(dir / "empty.txt")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("empty.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("empty"), std::string::npos) << r.err;

  std::ofstream(dir / "short.txt") << "Prince Andrew looked at the sky.";
  r = run_command(eval_command(quote(kModel) + " --text " + quote(dir / "short.txt") + " --seqlen 128"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("short.txt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("at least 128 tokens"), std::string::npos) << r.err;

  r = run_command(eval_command(quote(kModel) + " --text " + quote(kText) + " --seqlen 4096"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("max_position_embeddings"), std::string::npos) << r.err;

  std::ofstream(dir / "bad.jsonl") << "{\"text\": \"one two\"}\n{\"text\": 3}\n";
  r = run_command(eval_command(quote(kModel) + " --text " + quote(kText) + " --seqlen 64 --max-windows 1 --tasks " +
                               quote(dir / "bad.jsonl")));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.jsonl:2"), std::string::npos) << r.err;

  // A reference whose tokenizer splits the text differently.
  const auto other = dir / "other";
  std::filesystem::create_directories(other);
  std::filesystem::create_symlink(kModel / "config.json", other / "config.json");
  std::filesystem::create_symlink(kModel / "model.safetensors", other / "model.safetensors");
  std::filesystem::create_symlink(kRoot / "tests/fixtures/tokenizer/gpt2/tokenizer.json", other / "tokenizer.json");
  r = run_command(eval_command(quote(kModel) + " --text " + quote(kText) + " --seqlen 64 --max-windows 1 --reference " +
                               quote(other)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tokenize"), std::string::npos) << r.err;

  r = run_command(eval_command(quote(dir / "no-model") + " --text " + quote(kText)));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no-model"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace microscale::testing
