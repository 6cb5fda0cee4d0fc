// GGUF export and import of the bundled model (models/wp-tiny) after RTN quantization to each format
// GGUF holds: the imported weights equal our dequantized weights, the logits equal the quantized
// directory's, the tokenizer survives, the Python `gguf` package decodes the file to the same floats,
// and the CLI refuses what GGUF cannot hold before doing any work.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>

#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/export/checkpoint_layout.hpp"
#include "microscale/export/ggml_blocks.hpp"
#include "microscale/export/gguf_export.hpp"
#include "microscale/export/gguf_file.hpp"
#include "microscale/export/gguf_import.hpp"
#include "microscale/export/gguf_layout.hpp"
#include "microscale/io/atomic_file.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/model/model.hpp"
#include "microscale/pipeline/quantize_job.hpp"
#include "microscale/tokenizer/tokenizer.hpp"
#include "support/run_command.hpp"
#include "support/temp_dir.hpp"

namespace microscale {
namespace {

namespace fs = std::filesystem;
namespace gguf = exporter::gguf;
namespace ggml = exporter::ggml;
using formats::Format;
using testing::cli;
using testing::run_command;

const fs::path kRoot = MICROSCALE_SOURCE_DIR;
const fs::path kModel = kRoot / "models/wp-tiny";

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

formats::QuantSpec spec_of(Format format) {
  const int group = format == Format::nvfp4 ? 16 : 32;
  return formats::make_spec(format, group, true, formats::ScaleSearch::absmax);
}

// One RTN quantization and one export per format, shared by the tests of this file.
struct Exported {
  fs::path dir;   // what `microscale quantize` wrote
  fs::path file;  // its GGUF export
};

class WpTinyGguf : public ::testing::TestWithParam<Format> {
 public:
  static void SetUpTestSuite() { temp_ = std::make_unique<testing::TempDir>(); }
  static void TearDownTestSuite() { temp_.reset(); }

 protected:
  static const Exported& exported(Format format) {
    static std::map<Format, Exported> cache;
    auto it = cache.find(format);
    if (it != cache.end()) return it->second;
    const std::string name(formats::format_name(format));
    Exported e{*temp_ / ("q-" + name), *temp_ / ("wp-tiny-" + name + ".gguf")};
    pipeline::QuantizeOptions o;
    o.model_dir = kModel;
    o.out_dir = e.dir;
    o.spec = spec_of(format);
    o.quiet = true;
    pipeline::quantize_checkpoint(o);
    exporter::write_gguf(e.dir, e.file);
    return cache.emplace(format, e).first->second;
  }
  static std::unique_ptr<testing::TempDir> temp_;
};
std::unique_ptr<testing::TempDir> WpTinyGguf::temp_;

TEST_P(WpTinyGguf, MetadataDescribesTheModelTheWayLlamaCppReadsIt) {
  const gguf::File f(exported(GetParam()).file);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_u32("llama.block_count"), 6u);
  EXPECT_EQ(f.get_u32("llama.embedding_length"), 256u);
  EXPECT_EQ(f.get_u32("llama.feed_forward_length"), 768u);
  EXPECT_EQ(f.get_u32("llama.attention.head_count"), 8u);
  EXPECT_EQ(f.get_u32("llama.attention.head_count_kv"), 4u);
  EXPECT_EQ(f.get_u32("llama.attention.key_length"), 32u);
  EXPECT_EQ(f.get_u32("llama.rope.dimension_count"), 32u);
  EXPECT_EQ(f.get_u32("llama.context_length"), 512u);
  EXPECT_FLOAT_EQ(f.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_FLOAT_EQ(f.get_f32("llama.rope.freq_base"), 10000.0f);
  const std::map<Format, std::uint32_t> file_types = {{Format::mxfp4, 38}, {Format::nvfp4, 39}, {Format::int4, 2}};
  EXPECT_EQ(f.get_u32("general.file_type"), file_types.at(GetParam()));
  EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "gpt-2");
  const auto& tokens = f.get_array("tokenizer.ggml.tokens", gguf::ValueType::string);
  ASSERT_EQ(tokens.items.size(), 4096u);
  EXPECT_EQ(std::get<std::string>(tokens.items[0]), "<|endoftext|>");
  const auto& types = f.get_array("tokenizer.ggml.token_type", gguf::ValueType::i32);
  EXPECT_EQ(std::get<std::int32_t>(types.items[0]), 3);  // control
  EXPECT_EQ(std::get<std::int32_t>(types.items[1]), 1);  // normal
  const auto& merges = f.get_array("tokenizer.ggml.merges", gguf::ValueType::string);
  EXPECT_EQ(std::get<std::string>(merges.items[0]), "\xc4\xa0 t");  // "Ġ t"
  EXPECT_EQ(f.get_u32("tokenizer.ggml.bos_token_id"), 0u);
  EXPECT_EQ(f.get_u32("tokenizer.ggml.eos_token_id"), 0u);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));

  const std::map<Format, ggml::Type> linear_types = {
      {Format::mxfp4, ggml::Type::mxfp4}, {Format::nvfp4, ggml::Type::nvfp4}, {Format::int4, ggml::Type::q4_0}};
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").type, linear_types.at(GetParam()));
  EXPECT_EQ(f.tensor("blk.5.ffn_down.weight").ne, (std::vector<std::uint64_t>{768, 256}));
  EXPECT_EQ(f.tensor("token_embd.weight").type, ggml::Type::bf16);
  EXPECT_EQ(f.tensor("output.weight").type, ggml::Type::bf16);  // lm_head is not quantized by default
  EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").type, ggml::Type::f32);
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.scale") != nullptr, GetParam() == Format::nvfp4);
  // 1 embedding + 6 * (2 norms + 7 linears) + final norm + output (+ 7 scales per layer for NVFP4)
  EXPECT_EQ(f.tensors().size(), 1u + 6 * 9 + 2 + (GetParam() == Format::nvfp4 ? 6 * 7 : 0));
}

TEST_P(WpTinyGguf, QkRowsArePermutedForLlamaCppRope) {
  // GGUF row 2i + j of each head is HF row j * head_dim/2 + i (convert_hf_to_gguf.py's permute).
  const Exported& e = exported(GetParam());
  const gguf::File f(e.file);
  const auto& t = f.tensor("blk.2.attn_k.weight");
  std::vector<float> values(static_cast<std::size_t>(t.elements()));
  ggml::dequantize(t.type, t.bytes, values);
  const io::Checkpoint checkpoint(e.dir);
  const auto layout = exporter::CheckpointLayout::from_config(io::read_json_file(e.dir / "config.json"), e.dir);
  const Matrix hf = layout.load_weight(checkpoint, "model.layers.2.self_attn.k_proj");
  const std::int64_t cols = 256, head_dim = 32;
  auto gguf_row = [&](std::int64_t r) { return std::span<const float>(values).subspan(static_cast<std::size_t>(r * cols), cols); };
  // NVFP4 blocks carry e2m1 * e4m3 without the tensor factor "<base>.scale".
  float scale = 1.0f;
  if (const auto* s = f.find_tensor("blk.2.attn_k.scale")) std::memcpy(&scale, s->bytes.data(), 4);
  auto same_codes = [&](std::int64_t gguf_r, std::int64_t hf_r) {
    for (std::int64_t c = 0; c < cols; ++c) {
      const float a = gguf_row(gguf_r)[static_cast<std::size_t>(c)] * scale;
      const float b = hf(hf_r, c);
      if (std::abs(a - b) > 1e-6f * std::max(1.0f, std::abs(b))) return false;
    }
    return true;
  };
  const std::int64_t head = 3;
  EXPECT_TRUE(same_codes(head * head_dim + 0, head * head_dim + 0));
  EXPECT_TRUE(same_codes(head * head_dim + 1, head * head_dim + 16));
  EXPECT_TRUE(same_codes(head * head_dim + 2, head * head_dim + 1));
  EXPECT_TRUE(same_codes(head * head_dim + 31, head * head_dim + 31));
  EXPECT_FALSE(same_codes(head * head_dim + 1, head * head_dim + 1));
}

TEST_P(WpTinyGguf, ImportedWeightsEqualOurDequantizedWeights) {
  const Exported& e = exported(GetParam());
  const exporter::GgufModel imported = exporter::read_gguf_model(e.file);
  const io::Checkpoint checkpoint(e.dir);
  const auto layout = exporter::CheckpointLayout::from_config(io::read_json_file(e.dir / "config.json"), e.dir);
  EXPECT_EQ(imported.config.num_layers, 6);
  EXPECT_EQ(imported.config.vocab_size, 4096);
  EXPECT_FALSE(imported.config.tie_word_embeddings);
  for (int l = 0; l < 6; ++l) {
    for (const auto kind : model::kAllLinearKinds) {
      const std::string prefix = "model.layers." + std::to_string(l) + "." + model::linear_name(kind);
      const Matrix ours = layout.load_weight(checkpoint, prefix);
      const Matrix& theirs = imported.weights.layers[static_cast<std::size_t>(l)].linear(kind).weight;
      ASSERT_EQ(theirs.rows, ours.rows);
      ASSERT_EQ(theirs.cols, ours.cols);
      for (std::size_t i = 0; i < ours.data.size(); ++i) {
        if (GetParam() == Format::nvfp4) {
          // llama.cpp's product (e2m1 * e4m3) * (1 / global) against our e2m1 * (e4m3 / global): one rounding apart.
          ASSERT_NEAR(theirs.data[i], ours.data[i], std::abs(ours.data[i]) * 2.4e-7f) << prefix << " " << i;
        } else {
          ASSERT_EQ(theirs.data[i], ours.data[i]) << prefix << " " << i;  // bit for bit (up to the sign of 0)
        }
      }
    }
    const auto norm = checkpoint.read_f32("model.layers." + std::to_string(l) + ".input_layernorm.weight");
    EXPECT_EQ(imported.weights.layers[static_cast<std::size_t>(l)].input_norm, norm);
  }
  EXPECT_EQ(imported.weights.embedding.data, checkpoint.read_f32("model.embed_tokens.weight"));
  EXPECT_EQ(imported.weights.lm_head.weight.data, checkpoint.read_f32("lm_head.weight"));
}

TEST_P(WpTinyGguf, LogitsEqualTheQuantizedDirectory) {
  const Exported& e = exported(GetParam());
  const model::Model dir_model = model::Model::load(e.dir);
  const model::Model gguf_model = exporter::load_gguf(e.file);
  const auto tok = tokenizer::Tokenizer::from_file(kModel / "tokenizer.json");
  const auto ids = tok.encode("The history of the city begins with a small settlement on the river.", true);
  const Matrix a = dir_model.forward(ids, 1, static_cast<int>(ids.size()));
  const Matrix b = gguf_model.forward(ids, 1, static_cast<int>(ids.size()));
  ASSERT_EQ(a.data.size(), b.data.size());
  float worst = 0;
  for (std::size_t i = 0; i < a.data.size(); ++i) worst = std::max(worst, std::abs(a.data[i] - b.data[i]));
  EXPECT_LT(worst, GetParam() == Format::nvfp4 ? 1e-3f : 1e-4f);
}

TEST_P(WpTinyGguf, TokenizerRoundTrips) {
  const auto original = tokenizer::Tokenizer::from_file(kModel / "tokenizer.json");
  const auto imported = exporter::read_gguf_tokenizer(exported(GetParam()).file);
  const std::string text = testing::read_text(kRoot / "data/wp-test.txt").substr(0, 20000) +
                           " <|endoftext|> café  \n\n  naïve 1234567 'll 's";
  EXPECT_EQ(imported.encode(text, true), original.encode(text, true));
  EXPECT_EQ(imported.vocab_size(), original.vocab_size());
  EXPECT_EQ(imported.eos_id(), original.eos_id());
  const auto ids = original.encode(text, false);
  EXPECT_EQ(imported.decode(ids), original.decode(ids));
}

// The reference reader: gguf-py's GGUFReader + gguf.quants.dequantize, bit for bit against ours.
TEST_P(WpTinyGguf, PythonGgufPackageDecodesTheSameFloats) {
  const Exported& e = exported(GetParam());
  testing::TempDir out;
  const auto r = run_command(std::string("PYTHONPATH=") + q(MICROSCALE_PYDEPS_DIR) + " " + MICROSCALE_TEST_PYTHON + " " +
                             q(kRoot / "tools/gguf_dequantize.py") + " " + q(e.file) + " " + q(out.path()));
  if (r.exit_code == 3 || r.exit_code == 127) {
    GTEST_SKIP() << "the Python gguf package is not available (run scripts/install-deps.sh, which installs "
                    "gguf==0.19.0 into build-pydeps/): "
                 << r.err;
  }
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto index = nlohmann::json::parse(testing::read_text(out / "index.json"));
  const gguf::File f(e.file);
  ASSERT_EQ(index.size(), f.tensors().size());
  for (const auto& entry : index) {
    const auto& t = f.tensor(entry["name"].get<std::string>());
    EXPECT_EQ(entry["type"].get<std::string>(), ggml::traits(t.type).name);
    std::vector<float> ours(static_cast<std::size_t>(t.elements()));
    ggml::dequantize(t.type, t.bytes, ours);
    const std::string theirs = testing::read_text(out / entry["file"].get<std::string>());
    ASSERT_EQ(theirs.size(), ours.size() * 4) << t.name;
    EXPECT_EQ(std::memcmp(theirs.data(), ours.data(), theirs.size()), 0) << t.name << " differs from gguf-py";
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, WpTinyGguf, ::testing::Values(Format::mxfp4, Format::nvfp4, Format::int4),
                         [](const auto& info) { return std::string(formats::format_name(info.param)); });

TEST(GgufExport, UnquantizedModelKeepsItsFloatsAndLogits) {
  testing::TempDir dir;
  const auto file = dir / "wp-tiny-bf16.gguf";
  exporter::write_gguf(kModel, file);
  const gguf::File f(file);
  EXPECT_EQ(f.get_u32("general.file_type"), 32u);  // MOSTLY_BF16
  EXPECT_EQ(f.tensor("blk.0.ffn_up.weight").type, ggml::Type::bf16);
  const model::Model a = model::Model::load(kModel);
  const model::Model b = exporter::load_gguf(file);
  const std::vector<std::int32_t> ids = {5, 300, 17, 4000, 81, 9, 1022};
  const Matrix la = a.forward(ids, 1, 7), lb = b.forward(ids, 1, 7);
  for (std::size_t i = 0; i < la.data.size(); ++i) ASSERT_NEAR(la.data[i], lb.data[i], 1e-4f) << i;
}

TEST(GgufImport, NonFiniteWeightsAreRefusedNamingTheTensor) {
  testing::TempDir dir;
  const auto file = dir / "wp-tiny-bf16.gguf";
  exporter::write_gguf(kModel, file);
  std::uint64_t at = 0;
  {
    const gguf::File f(file);
    const auto& norm = f.tensor("blk.2.attn_norm.weight");
    ASSERT_EQ(norm.type, ggml::Type::f32);
    at = f.data_offset() + norm.offset + 4 * 11;  // element 11
  }
  std::fstream patch(file, std::ios::in | std::ios::out | std::ios::binary);
  const float inf = std::numeric_limits<float>::infinity();
  patch.seekp(static_cast<std::streamoff>(at));
  patch.write(reinterpret_cast<const char*>(&inf), 4);
  patch.close();
  try {
    exporter::load_gguf(file);
    ADD_FAILURE() << "loaded a model with an infinite weight";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wp-tiny-bf16.gguf: blk.2.attn_norm.weight holds inf at [11]"), std::string::npos)
        << e.what();
  }
}

TEST(GgufExport, RefusesOutputInsideTheInputAndExistingFiles) {
  testing::TempDir dir;
  EXPECT_THROW(exporter::write_gguf(kModel, kModel / "x.gguf"), Error);
  EXPECT_FALSE(fs::exists(kModel / "x.gguf"));
  EXPECT_THROW(exporter::write_gguf(kModel, dir / "x.bin"), Error);
  io::write_file_atomic(dir / "old.gguf", "old");
  try {
    exporter::write_gguf(kModel, dir / "old.gguf");
    ADD_FAILURE() << "replaced an existing file without overwrite";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos) << e.what();
  }
  EXPECT_EQ(testing::read_text(dir / "old.gguf"), "old");
}

// ---- the CLI ----

class GgufCli : public ::testing::Test {
 protected:
  // Runs a command that must be refused before any work: non-zero exit, `needle` in the message, and
  // nothing left next to the output (no file, no staging directory).
  void expect_refused(const std::string& args, const std::string& needle) {
    const auto r = run_command(cli() + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
    EXPECT_TRUE(fs::is_empty(dir_.path())) << args << ": left files behind";
  }
  testing::TempDir dir_;
};

TEST_F(GgufCli, QuantizeExportGgufWritesOneFileAndNothingElse) {
  const auto out = dir_ / "m.gguf";
  const auto r = run_command(cli() + " quantize " + q(kModel) + " --format int4 --group-size 32 --export gguf --out " +
                             q(out) + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + out.string()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Q4_0 42"), std::string::npos) << r.out;
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir_.path())) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"m.gguf"});
  EXPECT_EQ(gguf::File(out).tensor("blk.0.ffn_gate.weight").type, ggml::Type::q4_0);

  // Evaluating the file works on its own and against the original directory as the reference.
  const auto text = dir_ / "text.txt";
  io::write_file_atomic(text, testing::read_text(kRoot / "data/wp-test.txt").substr(0, 4000));
  const auto e = run_command(cli() + " eval " + q(out) + " --reference " + q(kModel) + " --text " + q(text) +
                             " --seqlen 64 --max-windows 2 --decode-tokens 0 --quiet");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NE(e.out.find("KL mean"), std::string::npos) << e.out;
  // The GPU runtime reads checkpoint directories only; a .gguf on --device cuda is refused, GPU or not.
  const auto g = run_command(cli() + " eval " + q(out) + " --text " + q(text) + " --seqlen 64 --device cuda --quiet");
  EXPECT_EQ(g.exit_code, 1);
  EXPECT_NE(g.err.find("GGUF files are evaluated on the CPU"), std::string::npos) << g.err;
  fs::remove(text);

  // Replacing it needs --force.
  const auto again = run_command(cli() + " quantize " + q(kModel) + " --format int4 --group-size 32 --export gguf --out " + q(out));
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;
}

TEST_F(GgufCli, ExportCommandConvertsAQuantizedDirectory) {
  testing::TempDir work;
  const auto qdir = work / "q";
  ASSERT_EQ(run_command(cli() + " quantize " + q(kModel) + " --format mxfp4 --out " + q(qdir) + " --quiet").exit_code, 0);
  const auto r = run_command(cli() + " export " + q(qdir) + " --to gguf --out " + q(dir_ / "m.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("MXFP4 42"), std::string::npos) << r.out;
  const auto bad = run_command(cli() + " export " + q(qdir) + " --to onnx --out " + q(dir_ / "n.gguf"));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("--to onnx"), std::string::npos) << bad.err;
}

TEST_F(GgufCli, RefusesWhatGgufCannotHoldBeforeAnyWork) {
  const std::string base = "quantize " + q(kModel) + " --export gguf --out " + q(dir_ / "m.gguf") + " ";
  expect_refused(base + "--format int4 --group-size 128", "group size 128");
  expect_refused(base + "--format int4", "group size 128");  // int4's default group
  expect_refused(base + "--format int4 --group-size 32 --asymmetric", "asymmetric");
  expect_refused(base + "--format int4 --group-size 0", "per-channel");
  expect_refused(base + "--format mxfp4 --hadamard 32", "Hadamard-rotated");
  expect_refused(base + "--format nvfp4 --hadamard 16 --fuse-rotation", "--fuse-rotation is refused");
  expect_refused("quantize " + q(kModel) + " --export onnx --out " + q(dir_ / "m.onnx"), "--export onnx");
  expect_refused("quantize " + q(kModel) + " --export gguf --out " + q(dir_ / "m.safetensors"), "should be the .gguf");
}

TEST_F(GgufCli, ExportRefusesRotatedAndUnsupportedDirectories) {
  testing::TempDir work;
  const auto rotated = work / "rotated";
  ASSERT_EQ(run_command(cli() + " quantize " + q(kModel) + " --format nvfp4 --hadamard 16 --out " + q(rotated) +
                        " --quiet").exit_code, 0);
  expect_refused("export " + q(rotated) + " --to gguf --out " + q(dir_ / "r.gguf"), "Hadamard-rotated");
  expect_refused("export " + q(rotated) + " --to gguf --fuse-rotation --out " + q(dir_ / "r.gguf"),
                 "no longer on the FP4/INT4 grid");
  const auto g128 = work / "g128";
  ASSERT_EQ(run_command(cli() + " quantize " + q(kModel) + " --format int4 --out " + q(g128) + " --quiet").exit_code, 0);
  expect_refused("export " + q(g128) + " --to gguf --out " + q(dir_ / "g.gguf"), "Q4_0");
}

}  // namespace
}  // namespace microscale
