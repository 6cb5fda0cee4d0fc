#pragma once
// Reading a .gguf (ours, or llama.cpp's for the same architectures and tensor types) back into the FP32
// runtime: config from the metadata, weights decoded by ggml::dequantize, NVFP4 ".scale" tensors
// multiplied in (as llama.cpp multiplies the matmul output), llama's q/k rows un-permuted to the HF
// order, and the tokenizer rebuilt as tokenizer.json text.
#include <filesystem>
#include <string>

#include "microscale/model/config.hpp"
#include "microscale/model/model.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

namespace microscale::exporter {

struct GgufModel {
  model::ModelConfig config;
  model::ModelWeights weights;
  std::string quantization;  // "MXFP4", "NVFP4", "Q4_0", ... of the linears; empty when all are float
};

// Throws microscale::Error naming the file for anything missing, malformed or unsupported.
GgufModel read_gguf_model(const std::filesystem::path& path);
tokenizer::Tokenizer read_gguf_tokenizer(const std::filesystem::path& path);
model::Model load_gguf(const std::filesystem::path& path);

// The ggml type of the file's first quantized linear ("MXFP4", "NVFP4", "Q4_0"), or empty when all are float.
std::string gguf_linear_type(const std::filesystem::path& path);

inline bool is_gguf_path(const std::filesystem::path& path) { return path.extension() == ".gguf"; }

}  // namespace microscale::exporter
