// Calibrated quantization end to end (GPTQ, MR-GPTQ, QEP) on a small random model with a real
// tokenizer: it runs, the result loads in the runtime, it beats RTN where theory says it must, and
// it is reproducible.
#include <gtest/gtest.h>

#include <cmath>

#include "microscale/model/model.hpp"
#include "microscale/pipeline/calibration.hpp"
#include "microscale/rotation/hadamard.hpp"
#include "microscale/tokenizer/tokenizer.hpp"
#include "support/run_command.hpp"
#include "support/random_checkpoint.hpp"

namespace microscale {
namespace {

using testing::cli;
using testing::read_text;
using testing::run_command;

const std::filesystem::path kTokenizer = std::filesystem::path(MICROSCALE_SOURCE_DIR) / "tests/fixtures/tokenizer/gpt2/tokenizer.json";
const std::filesystem::path kCalib = std::filesystem::path(MICROSCALE_SOURCE_DIR) / "data/wp-calib.txt";
const std::filesystem::path kTest = std::filesystem::path(MICROSCALE_SOURCE_DIR) / "data/wp-test.txt";

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

class CalibratedQuantize : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::RandomModelSpec spec = testing::tiny_llama_spec();
    spec.vocab = 3008;
    spec.tokenizer_json = kTokenizer;
    testing::write_random_model(dir_ / "model", spec, 5);
  }
  std::filesystem::path model() const { return dir_ / "model"; }

  // Quantizes with `flags`; returns the output directory.
  std::filesystem::path quantize(const std::string& name, const std::string& flags) {
    const auto out = dir_ / name;
    const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) + " --quiet --calib " + q(kCalib) +
                               " --calib-samples 8 --calib-seqlen 64 " + flags);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return out;
  }

  // Mean squared difference of the logits against the original model on held-out text.
  double logit_error(const std::filesystem::path& quantized) {
    const auto tokenizer = tokenizer::Tokenizer::from_file(kTokenizer);
    auto tokens = tokenizer.encode(read_text(kTest).substr(0, 4000), false);
    tokens.resize(4 * 64);
    const auto reference = model::Model::load(model()).forward(tokens, 4, 64);
    const auto got = model::Model::load(quantized).forward(tokens, 4, 64);
    double err = 0;
    for (std::size_t i = 0; i < got.data.size(); ++i) err += std::pow(got.data[i] - reference.data[i], 2);
    return err / static_cast<double>(got.data.size());
  }

  testing::TempDir dir_;
};

TEST_F(CalibratedQuantize, GptqBeatsRtnAndMrGptqRunsEndToEnd) {
  const double rtn = logit_error(quantize("rtn", "--method rtn --format nvfp4"));
  const double gptq = logit_error(quantize("gptq", "--method gptq --format nvfp4"));
  const auto mr_dir = quantize("mr", "--method mr-gptq --format nvfp4");
  const double mr = logit_error(mr_dir);
  EXPECT_GT(rtn, 0.0);
  EXPECT_LT(gptq, rtn);
  EXPECT_LT(mr, rtn);
  const auto config = read_text(mr_dir / "config.json");
  EXPECT_NE(config.find("block_hadamard"), std::string::npos);
  EXPECT_NE(config.find("\"mr-gptq\""), std::string::npos);
}

TEST_F(CalibratedQuantize, QepWithZeroAlphaIsExactlyTheBaseMethodAndSameSeedSameBytes) {
  const auto base = quantize("base", "--method gptq --format int4 --group-size 32 --seed 3");
  const auto again = quantize("again", "--method gptq --format int4 --group-size 32 --seed 3");
  const auto zero = quantize("zero", "--method gptq --format int4 --group-size 32 --seed 3 --qep --qep-alpha 0");
  EXPECT_EQ(read_text(base / "model.safetensors"), read_text(again / "model.safetensors"));
  EXPECT_EQ(read_text(base / "model.safetensors"), read_text(zero / "model.safetensors"));
  const auto qep = quantize("qep", "--method gptq --format int4 --group-size 32 --seed 3 --qep");
  EXPECT_NE(read_text(base / "model.safetensors"), read_text(qep / "model.safetensors"));
}

TEST_F(CalibratedQuantize, QepOnRtnRuns) {
  const auto out = quantize("rtn-qep", "--method rtn --format mxfp4 --qep");
  EXPECT_TRUE(std::filesystem::exists(out / "model.safetensors"));
}

TEST_F(CalibratedQuantize, TooLittleCalibrationTextSaysHowMuchIsNeeded) {
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --method gptq --calib " +
                             q(kTokenizer.parent_path().parent_path() / "corpus.json") + " --calib-samples 4096 --calib-seqlen 128");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("524288"), std::string::npos) << r.err;  // 4096 x 128
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o"));

  const auto missing = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --method gptq");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("--calib"), std::string::npos) << missing.err;
}

TEST(Calibration, WindowsAreReproducibleDistinctAndFromTheText) {
  const auto tokenizer = tokenizer::Tokenizer::from_file(kTokenizer);
  const auto a = pipeline::load_calibration(kCalib, tokenizer, 16, 32, 11);
  const auto b = pipeline::load_calibration(kCalib, tokenizer, 16, 32, 11);
  const auto c = pipeline::load_calibration(kCalib, tokenizer, 16, 32, 12);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
  ASSERT_EQ(a.tokens.size(), 16u * 32u);
  const auto all = tokenizer.encode(read_text(kCalib), false);
  std::set<std::int64_t> starts;
  for (int s = 0; s < 16; ++s) {
    // each window is an aligned, non-overlapping slice of the tokenized text
    bool found = false;
    for (std::size_t w = 0; w + 32 <= all.size(); w += 32) {
      if (std::equal(all.begin() + static_cast<long>(w), all.begin() + static_cast<long>(w) + 32, a.tokens.begin() + s * 32)) {
        found = starts.insert(static_cast<std::int64_t>(w)).second;
        break;
      }
    }
    EXPECT_TRUE(found) << "window " << s;
  }
}

TEST(Rotation, IsInvisibleWithoutQuantization) {
  testing::TempDir dir;
  testing::RandomModelSpec model_spec = testing::tiny_llama_spec();
  model_spec.vocab = 3008;
  testing::write_random_model(dir / "model", model_spec, 8);
  std::vector<std::int32_t> tokens(2 * 48);
  for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 977) % 3000);
  const auto reference = model::Model::load(dir / "model").forward(tokens, 2, 48);

  auto rotated = model::Model::load(dir / "model");
  const rotation::RotationSpec spec{32, true, 77};
  for (int l = 0; l < rotated.config().num_layers; ++l) {
    for (const auto kind : model::kAllLinearKinds) {
      auto& linear = rotated.layer(l).linear(kind);
      rotation::rotate_rows(linear.weight.view(), spec);
      linear.input_rotation = spec;
    }
  }
  const auto got = rotated.forward(tokens, 2, 48);
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < got.data.size(); ++i) {
    max_diff = std::max(max_diff, std::abs(double(got.data[i]) - reference.data[i]));
    max_ref = std::max(max_ref, std::abs(double(reference.data[i])));
  }
  EXPECT_LT(max_diff / max_ref, 1e-4);
}

}  // namespace
}  // namespace microscale
