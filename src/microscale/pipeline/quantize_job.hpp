#pragma once
// `microscale quantize`: turns a Hugging Face checkpoint into a quantized one. Round-to-nearest works
// tensor by tensor straight from the mapped files; calibrated methods (GPTQ, MR-GPTQ, QEP) run the
// model layer by layer (see sequential.hpp). Either way the output is written by ModelDirWriter, so a
// failure leaves no partial directory and the input is never touched.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "microscale/formats/format.hpp"
#include "microscale/pipeline/linear_selection.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::pipeline {

enum class Method { rtn, gptq, mr_gptq };
Method parse_method(std::string_view name);
std::string_view method_name(Method method);

struct CalibrationOptions {
  std::filesystem::path text;       // plain text or JSONL with a "text" field
  int samples = 128;
  int seqlen = 2048;                // capped by the model's context
  std::uint64_t seed = 0;
  double damp = 0.01;
  int block_size = 128;
  bool act_order = true;
  bool qep = false;
  double qep_alpha_attn = -1;       // < 0: the paper's default for that layer kind
  double qep_alpha_mlp = -1;
  std::uint64_t activation_budget_bytes = 0;  // 0: keep activations in memory
  bool gpu = false;                 // statistics, GPTQ's factorisation and lazy updates on the CUDA device
};

struct QuantizeOptions {
  std::filesystem::path model_dir;
  std::filesystem::path out_dir;
  Method method = Method::rtn;
  formats::QuantSpec spec;
  rotation::RotationSpec rotation;
  LinearSelection selection;
  CalibrationOptions calibration;
  bool dequantized = false;  // write a BF16 fake-quant checkpoint instead of packed weights
  bool force = false;
  bool quiet = false;
};

struct LayerReport {
  std::string name;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  double relative_error = 0;   // ||W - Q(W)||^2 / ||W||^2
  double squared_error = 0;
  double squared_norm = 0;
};

struct QuantizeReport {
  std::vector<LayerReport> layers;
  double total_relative_error = 0;
  std::uint64_t bytes_before = 0;          // all tensors of the input
  std::uint64_t bytes_after = 0;           // all tensors of the output
  std::uint64_t linear_bytes_before = 0;   // the quantized linears only
  std::uint64_t linear_bytes_after = 0;
  double seconds = 0;
};

QuantizeReport quantize_checkpoint(const QuantizeOptions& options);

}  // namespace microscale::pipeline
