// Writes the seeds of the harnesses whose inputs the repository has no small examples of, into
// OUT_DIR/<harness>/: for gguf_fuzz, tiny random Llamas (one layer, hidden 64, tied embeddings)
// exported to each GGUF block type with a byte-level BPE tokenizer (Llama 3's fixture) and a
// SentencePiece-style one (Llama 2's); for model_fuzz, the model fixtures of tests/fixtures/model and
// RTN MXFP4/NVFP4/INT4 compressed-tensors exports of one, each as its config.json and weights in
// model_fuzz's input layout. A few hundred kB each: small enough for many runs a second.
#include <cstdio>
#include <fstream>

#include "microscale/export/gguf_export.hpp"
#include "microscale/pipeline/quantize_job.hpp"
#include "support/random_checkpoint.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using microscale::formats::Format;

constexpr std::pair<Format, int> kFormats[] = {{Format::mxfp4, 32}, {Format::nvfp4, 16}, {Format::int4, 32}};

fs::path quantized(const fs::path& model, const fs::path& out, Format format, int group) {
  microscale::pipeline::QuantizeOptions o;
  o.model_dir = model;
  o.out_dir = out;
  o.spec = microscale::formats::make_spec(format, group, true, microscale::formats::ScaleSearch::absmax);
  o.quiet = true;
  microscale::pipeline::quantize_checkpoint(o);
  return out;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// model_fuzz's layout: u32 size of config.json, config.json, model.safetensors.
void write_model_seed(const fs::path& dir, const fs::path& seed) {
  const std::string config = read_bytes(dir / "config.json");
  const std::string weights = read_bytes(dir / "model.safetensors");
  const auto n = static_cast<std::uint32_t>(config.size());
  std::ofstream out(seed, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 4);
  out << config << weights;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  const fs::path out = argv[1];
  const fs::path root = MICROSCALE_SOURCE_DIR;
  fs::create_directories(out / "gguf_fuzz");
  fs::create_directories(out / "model_fuzz");
  microscale::testing::TempDir work;
  for (const char* tokenizer : {"llama3", "llama2"}) {
    microscale::testing::RandomModelSpec spec = microscale::testing::tiny_llama_spec();
    spec.hidden = 64;  // ggml's NVFP4 block is 64 elements
    spec.intermediate = 128;
    spec.layers = 1;
    spec.heads = 4;
    spec.kv_heads = 1;
    spec.head_dim = 16;
    spec.vocab = 3072;  // both fixtures have fewer tokens
    spec.tied = true;
    spec.stand_in_tokenizer = false;
    spec.tokenizer_json = root / "tests/fixtures/tokenizer" / tokenizer / "tokenizer.json";
    const fs::path model = work / (std::string("model-") + tokenizer);
    microscale::testing::write_random_model(model, spec);
    for (const auto& [format, group] : kFormats) {
      const std::string name = std::string(tokenizer) + "-" + std::string(microscale::formats::format_name(format));
      microscale::exporter::write_gguf(quantized(model, work / ("q-" + name), format, group),
                                       out / "gguf_fuzz" / (name + ".gguf"));
    }
  }
  for (const char* fixture : {"llama31-tiny", "qwen2-tiny", "qwen3-tiny"}) {
    write_model_seed(root / "tests/fixtures/model" / fixture, out / "model_fuzz" / (std::string(fixture) + ".bin"));
  }
  for (const auto& [format, group] : kFormats) {
    const std::string name = "llama31-tiny-" + std::string(microscale::formats::format_name(format));
    write_model_seed(quantized(root / "tests/fixtures/model/llama31-tiny", work / name, format, group),
                     out / "model_fuzz" / (name + ".bin"));
  }
  return 0;
}
