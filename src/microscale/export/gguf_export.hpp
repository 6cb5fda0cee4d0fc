#pragma once
// GGUF export: a model directory (what `microscale quantize` wrote, or a plain Hugging Face checkpoint)
// converted into one .gguf file that llama.cpp loads. Quantized linears become ggml blocks (MXFP4,
// NVFP4, Q4_0) with the same codes and scales, bit for bit; everything else keeps its stored float type
// (norms and biases become F32). See docs/modules/export.md.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "microscale/formats/format.hpp"
#include "microscale/model/config.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::exporter {

// Why --fuse-rotation is refused (the CLI and the README say the same).
std::string_view fuse_rotation_refusal();

// Refuses, before any work, what a GGUF file cannot hold: a format combination without a ggml type
// (GGUF holds mxfp4 g32, nvfp4 g16 and symmetric int4 g32 as Q4_0), a Hadamard-rotated checkpoint,
// a linear whose row length is not a whole number of ggml blocks, or an architecture llama.cpp would
// run differently. `source` names the model for error messages.
void check_gguf_exportable(const formats::QuantSpec& spec, const rotation::RotationSpec& rotation,
                           const model::ModelConfig& config, std::string_view source);
// The same for a plain (unquantized) model: only the architecture matters.
void check_gguf_architecture(const model::ModelConfig& config, std::string_view source);

struct GgufExportOptions {
  bool overwrite = false;       // replace an existing file
  std::string name;             // general.name; empty: the model directory's name
};

struct GgufExportReport {
  std::filesystem::path path;
  std::uint64_t bytes = 0;
  std::size_t tensors = 0;
  std::map<std::string, int> tensors_by_type;  // "MXFP4" -> 42, ...
  std::string architecture;
  std::string tokenizer;  // llama.cpp tokenizer model and pre-tokenizer: "gpt2/gpt-2", "llama", ...
};

// Writes `gguf_path` atomically (temporary file + rename); the model directory is only read.
GgufExportReport write_gguf(const std::filesystem::path& model_dir, const std::filesystem::path& gguf_path,
                            const GgufExportOptions& options = {});

}  // namespace microscale::exporter
