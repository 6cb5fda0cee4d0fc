// `microscale quantize` and `inspect` end to end, as a user runs them, on a generated checkpoint.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "microscale/export/compressed_tensors.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/rotation/hadamard.hpp"
#include "support/random_checkpoint.hpp"
#include "support/run_command.hpp"

namespace microscale {
namespace {

using testing::cli;
using testing::read_text;
using testing::run_command;

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files[e.path().filename()] = read_text(e.path());
  return files;
}

class QuantizeCli : public ::testing::Test {
 protected:
  void SetUp() override { weights_ = testing::write_random_model(dir_ / "model", testing::tiny_llama_spec()); }
  std::filesystem::path model() const { return dir_ / "model"; }
  testing::TempDir dir_;
  std::map<std::string, std::vector<float>> weights_;
};

TEST_F(QuantizeCli, NvFp4CheckpointHoldsExactlyWhatTheFormatsModuleComputes) {
  const auto before = snapshot(model());
  const auto out = dir_ / "out";
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) + " --format nvfp4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model.layers.1.mlp.down_proj"), std::string::npos);
  EXPECT_NE(r.out.find("total relative error"), std::string::npos);
  EXPECT_NE(r.out.find("bits/weight"), std::string::npos);
  EXPECT_EQ(snapshot(model()), before) << "the input must never change";

  EXPECT_EQ(read_text(out / "tokenizer.json"), read_text(model() / "tokenizer.json"));
  const auto config = io::read_json_file(out / "config.json");
  ASSERT_TRUE(config.contains("quantization_config"));
  EXPECT_EQ(config["quantization_config"]["format"], "nvfp4-pack-quantized");
  EXPECT_EQ(config["hidden_size"], 64);

  const io::Checkpoint in(model()), result(out);
  const auto spec = formats::make_spec(formats::Format::nvfp4, 16, true, formats::ScaleSearch::absmax);
  int quantized = 0;
  for (const io::TensorInfo* t : in.tensors()) {
    const bool linear = t->name.find("_proj.weight") != std::string::npos;
    if (!linear) {
      const io::TensorInfo& copy = result.at(t->name);
      ASSERT_EQ(copy.dtype, t->dtype);
      ASSERT_EQ(copy.shape, t->shape);
      ASSERT_EQ(0, std::memcmp(copy.bytes.data(), t->bytes.data(), t->bytes.size())) << t->name;
      continue;
    }
    ++quantized;
    EXPECT_EQ(result.find(t->name), nullptr) << "dense copy of " << t->name << " left behind";
    const std::string prefix = t->name.substr(0, t->name.size() - 7);
    const auto got = exporter::read_compressed_linear(result, prefix, spec);
    const auto& w = weights_.at(t->name);
    // Linears an engine fuses (q/k/v, gate/up) share one NVFP4 tensor scale: the smallest of theirs.
    float global = formats::tensor_global_scale(spec, w);
    for (const auto& [fused, partners] : {std::pair<std::string, std::vector<std::string>>{"q_proj", {"q_proj", "k_proj", "v_proj"}},
                                          {"k_proj", {"q_proj", "k_proj", "v_proj"}},
                                          {"v_proj", {"q_proj", "k_proj", "v_proj"}},
                                          {"gate_proj", {"gate_proj", "up_proj"}},
                                          {"up_proj", {"gate_proj", "up_proj"}}}) {
      if (t->name.find(fused) == std::string::npos) continue;
      for (const auto& partner : partners) {
        std::string other = t->name;
        other.replace(other.find(fused), fused.size(), partner);
        global = std::min(global, formats::tensor_global_scale(spec, weights_.at(other)));
      }
    }
    const auto want = formats::quantize(ConstMatrixView(w, t->shape[0], t->shape[1]), spec, global, t->name);
    EXPECT_EQ(got.codes, want.codes) << t->name;
    EXPECT_EQ(got.scale_codes, want.scale_codes) << t->name;
    EXPECT_EQ(got.global_scale, want.global_scale) << t->name;
  }
  EXPECT_EQ(quantized, 14);
}

TEST_F(QuantizeCli, HadamardRotationIsAppliedAndRecorded) {
  const auto out = dir_ / "out";
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) +
                             " --format mxfp4 --hadamard 32 --random-signs --seed 9");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto config = io::read_json_file(out / "config.json");
  const auto& rot = config["quantization_config"]["microscale"]["rotation"];
  EXPECT_EQ(rot["block_size"], 32);
  EXPECT_EQ(rot["random_signs"], true);
  EXPECT_EQ(rot["seed"], 9);

  const std::string name = "model.layers.0.self_attn.q_proj.weight";
  Matrix w(64, 64);
  w.data = weights_.at(name);
  const rotation::RotationSpec spec_rot{32, true, 9};
  rotation::rotate_rows(w.view(), spec_rot);
  const auto spec = formats::make_spec(formats::Format::mxfp4, 32, true, formats::ScaleSearch::absmax);
  const auto want = formats::quantize(w.view(), spec, name);
  const io::Checkpoint result(out);
  const auto got = exporter::read_compressed_linear(result, "model.layers.0.self_attn.q_proj", spec);
  EXPECT_EQ(got.codes, want.codes);
  EXPECT_EQ(got.scale_codes, want.scale_codes);
}

TEST_F(QuantizeCli, DequantizedWritesBf16FakeQuantInTheOriginalBasis) {
  const auto out = dir_ / "out";
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) +
                             " --format int4 --group-size 32 --hadamard 16 --dequantized");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto config = io::read_json_file(out / "config.json");
  EXPECT_FALSE(config.contains("quantization_config"));
  const io::Checkpoint result(out);
  const std::string name = "model.layers.1.mlp.up_proj.weight";
  const auto& t = result.at(name);
  ASSERT_EQ(t.dtype, io::DType::BF16);
  std::vector<float> got(static_cast<std::size_t>(t.numel()));
  io::to_f32(t, got);
  const auto& w = weights_.at(name);
  double err = 0, norm = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    err += std::pow(got[i] - w[i], 2);
    norm += std::pow(w[i], 2);
  }
  // INT4 g32 on Gaussian weights: about 1% relative squared error; a basis mix-up would be ~200%.
  EXPECT_GT(err / norm, 1e-4);
  EXPECT_LT(err / norm, 0.03);
}

TEST_F(QuantizeCli, RefusesANonEmptyOutputWithoutForce) {
  const auto out = dir_ / "out";
  std::filesystem::create_directories(out);
  io::write_file_atomic(out / "keep.txt", std::string("precious"));
  auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) + " --format nvfp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_EQ(read_text(out / "keep.txt"), "precious");
  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) + " --format nvfp4 --force");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out / "keep.txt"));
  EXPECT_TRUE(std::filesystem::exists(out / "model.safetensors"));
}

TEST_F(QuantizeCli, NanWeightFailsNamingTheTensorAndLeavesNoOutput) {
  testing::TempDir bad;
  auto values = testing::write_random_model(bad / "model", testing::tiny_llama_spec());
  // Rewrite one linear with a NaN in it.
  io::SafetensorsWriter writer;
  const io::Checkpoint original(bad / "model");
  std::vector<std::vector<std::byte>> keep;
  for (const io::TensorInfo* t : original.tensors()) {
    std::vector<std::byte> bytes(t->bytes.begin(), t->bytes.end());
    if (t->name == "model.layers.1.self_attn.v_proj.weight") {
      const std::uint16_t nan_bits = 0x7FC0;
      std::memcpy(bytes.data() + 2 * 37, &nan_bits, 2);
    }
    writer.add(t->name, t->dtype, t->shape, std::move(bytes));
  }
  writer.write(bad / "model" / "model.safetensors.new");
  std::filesystem::rename(bad / "model" / "model.safetensors.new", bad / "model" / "model.safetensors");

  const auto out = bad / "out";
  const auto r = run_command(cli() + " quantize " + q(bad / "model") + " --out " + q(out) + " --format nvfp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.layers.1.self_attn.v_proj.weight"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(bad.path())) {
    EXPECT_EQ(e.path().filename().string().find("staging"), std::string::npos) << "left " << e.path();
  }
}

TEST_F(QuantizeCli, ClearErrorsForBadInvocations) {
  auto r = run_command(cli() + " quantize " + q(dir_ / "missing") + " --out " + q(dir_ / "o") + " --format nvfp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;

  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(model() / "inside") + " --format nvfp4");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("inside the input"), std::string::npos) << r.err;

  // intermediate 128 / hidden 64 are not multiples of 48
  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --format int4 --group-size 48");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("48"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o"));

  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --format fp3");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fp3"), std::string::npos) << r.err;

  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --hadamard 24");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--hadamard"), std::string::npos) << r.err;

  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --device cuda");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("round-to-nearest has nothing to offload"), std::string::npos) << r.err;

  r = run_command(cli() + " quantize " + q(model()) + " --out " + q(dir_ / "o") + " --device tpu");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("tpu"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "o"));
}

// Where this machine has no usable GPU (always the case in CI), GPTQ on --device cuda stops before
// any calibration work with an error that says why; with a GPU, tests/cuda covers the real path.
TEST_F(QuantizeCli, GptqOnCudaWithoutAGpuIsAClearError) {
  const auto out = dir_ / "o";
  const auto calib = dir_ / "calib.txt";
  std::ofstream(calib) << "some calibration text for the test. " << std::string(2000, 'a');
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(out) +
                             " --method gptq --calib " + q(calib) + " --calib-samples 2 --calib-seqlen 16 --device cuda");
  if (r.exit_code == 0) GTEST_SKIP() << "this machine has a CUDA device: the GPU path ran (tests/cuda checks it)";
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--device cuda"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("calibration:"), std::string::npos) << "no work before the refusal: " << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

TEST_F(QuantizeCli, ReadOnlyOutputLocationLeavesNothing) {
  const auto parent = dir_ / "ro";
  std::filesystem::create_directories(parent);
  chmod(parent.c_str(), 0555);
  if (access(parent.c_str(), W_OK) == 0) {
    chmod(parent.c_str(), 0755);
    GTEST_SKIP() << "running with privileges that ignore directory permissions (root); cannot test a read-only dir";
  }
  const auto r = run_command(cli() + " quantize " + q(model()) + " --out " + q(parent / "out") + " --format nvfp4");
  chmod(parent.c_str(), 0755);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(parent.string()), std::string::npos) << r.err;
  EXPECT_TRUE(std::filesystem::is_empty(parent));
}

TEST_F(QuantizeCli, InspectListsTensorsAndWhatWouldBeQuantized) {
  const auto r = run_command(cli() + " inspect " + q(model()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("model.layers.0.mlp.gate_proj.weight"), std::string::npos);
  EXPECT_NE(r.out.find("BF16"), std::string::npos);
  EXPECT_NE(r.out.find("[128, 64]"), std::string::npos);
  EXPECT_NE(r.out.find("quantize would replace 14 linear weights"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace microscale
