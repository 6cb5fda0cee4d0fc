// The runtime against transformers' FP32 logits (tests/fixtures/model, made by
// tools/make_model_fixtures.py): the bundled wp-tiny model and random tiny checkpoints of every
// supported family. Relative error of a sequence = max|a - b| / max|b| over its logits, b = transformers.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "microscale/io/safetensors.hpp"
#include "microscale/model/model.hpp"
#include "model/compare.hpp"
#include "support/temp_dir.hpp"

namespace microscale::testing {
namespace {

const std::filesystem::path kRoot = MICROSCALE_SOURCE_DIR;
const std::filesystem::path kFixtures = kRoot / "tests/fixtures/model";
constexpr double kTolerance = 1e-3;

struct LogitsFixture {
  std::vector<std::int32_t> ids;
  Matrix logits;
};

LogitsFixture read_logits_fixture(const std::filesystem::path& path) {
  io::SafetensorsFile file(path);
  LogitsFixture f;
  const io::TensorInfo* ids = file.find("input_ids");
  const io::TensorInfo* logits = file.find("logits");
  EXPECT_TRUE(ids && logits && ids->dtype == io::DType::I64 && logits->shape.size() == 2) << path;
  std::vector<std::int64_t> wide(static_cast<std::size_t>(ids->numel()));
  std::memcpy(wide.data(), ids->bytes.data(), wide.size() * sizeof(std::int64_t));
  f.ids.assign(wide.begin(), wide.end());
  f.logits = Matrix(logits->shape[0], logits->shape[1]);
  io::to_f32(*logits, f.logits.data);
  return f;
}

std::vector<std::vector<float>> rows_of(const Matrix& m) {
  std::vector<std::vector<float>> rows;
  for (std::int64_t r = 0; r < m.rows; ++r) rows.emplace_back(m.view().row(r).begin(), m.view().row(r).end());
  return rows;
}

void expect_matches(const model::Model& m, const LogitsFixture& f, const std::string& what) {
  const Matrix got = m.forward(f.ids, 1, static_cast<int>(f.ids.size()));
  ASSERT_EQ(got.rows, f.logits.rows) << what;
  ASSERT_EQ(got.cols, f.logits.cols) << what;
  const double err = relative_logit_error(got, rows_of(f.logits));
  EXPECT_LT(err, kTolerance) << what;
  int argmax_mismatches = 0;
  for (std::int64_t t = 0; t < got.rows; ++t) {
    argmax_mismatches += argmax_of(got.view().row(t)) != argmax_of(f.logits.view().row(t)) ? 1 : 0;
  }
  EXPECT_EQ(argmax_mismatches, 0) << what;
  std::printf("  %s: relative logit error %.2e over %lld positions\n", what.c_str(), err,
              static_cast<long long>(got.rows));
}

class RandomFamilyFixture : public ::testing::TestWithParam<const char*> {};

TEST_P(RandomFamilyFixture, LogitsMatchTransformers) {
  const auto dir = kFixtures / GetParam();
  ASSERT_TRUE(std::filesystem::exists(dir / "logits.safetensors")) << dir;
  const LogitsFixture f = read_logits_fixture(dir / "logits.safetensors");
  expect_matches(model::Model::load(dir), f, GetParam());
  // Same weights with a transformers-4.x style config.json (rope_theta / rope_scaling / torch_dtype).
  TempDir v4;
  std::filesystem::copy_file(dir / "config_v4_style.json", v4 / "config.json");
  std::filesystem::create_symlink(std::filesystem::absolute(dir / "model.safetensors"), v4 / "model.safetensors");
  expect_matches(model::Model::load(v4.path()), f, std::string(GetParam()) + " (v4-style config)");
  // And streamed layer by layer.
  expect_matches(model::Model::load(dir, {.stream_layers = true}), f, std::string(GetParam()) + " (streamed)");
}

INSTANTIATE_TEST_SUITE_P(Families, RandomFamilyFixture,
                         ::testing::Values("qwen2-tiny", "qwen3-tiny", "llama31-tiny", "mistral-tiny"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

const std::filesystem::path kWpTiny = kRoot / "models/wp-tiny";

TEST(WpTiny, LogitsMatchTransformers) {
  if (!std::filesystem::exists(kWpTiny / "config.json")) GTEST_SKIP() << "models/wp-tiny not present yet";
  const model::Model m = model::Model::load(kWpTiny);
  for (int len : {1, 17, 64}) {
    const auto path = kFixtures / ("wp-tiny-logits-len" + std::to_string(len) + ".safetensors");
    ASSERT_TRUE(std::filesystem::exists(path)) << path;
    expect_matches(m, read_logits_fixture(path), path.filename().string());
  }
}

TEST(WpTiny, GreedyGenerationWithKvCacheMatchesTransformers) {
  if (!std::filesystem::exists(kWpTiny / "config.json")) GTEST_SKIP() << "models/wp-tiny not present yet";
  const auto path = kFixtures / "wp-tiny-generate.json";
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
  const auto j = nlohmann::json::parse(std::ifstream(path));
  const auto prompt = j.at("prompt_ids").get<std::vector<std::int32_t>>();
  const auto want = j.at("output_ids").get<std::vector<std::int32_t>>();
  const model::Model m = model::Model::load(kWpTiny);
  EXPECT_EQ(m.generate_greedy(prompt, static_cast<int>(want.size()), /*stop_at_eos=*/false), want);
}

}  // namespace
}  // namespace microscale::testing
