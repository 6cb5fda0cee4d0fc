#include "microscale/pipeline/quantize_job.hpp"

#include <chrono>
#include <fstream>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "microscale/core/error.hpp"
#include "microscale/core/progress.hpp"
#include "microscale/export/checkpoint_writer.hpp"
#include "microscale/export/compressed_tensors.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/model/model.hpp"
#include "microscale/pipeline/sequential.hpp"
#include "microscale/quantizers/gptq.hpp"

namespace microscale::pipeline {
namespace {

void validate_linear(const io::TensorInfo& t, const QuantizeOptions& o) {
  if (t.shape.size() != 2) {
    fail("{}: tensor {} is a linear weight but has {} dims, expected 2", t.file.string(), t.name, t.shape.size());
  }
  if (t.dtype != io::DType::F32 && t.dtype != io::DType::F16 && t.dtype != io::DType::BF16) {
    fail("{}: tensor {} has dtype {}; only F32, F16 and BF16 weights can be quantized", t.file.string(), t.name,
         io::dtype_name(t.dtype));
  }
  const std::int64_t cols = t.shape[1];
  const std::int64_t group = o.spec.group_for(cols);
  if (cols % group != 0) {
    fail("{}: tensor {} has {} input features, not a multiple of the group size {} of {}", t.file.string(), t.name,
         cols, group, formats::describe(o.spec));
  }
  if (o.rotation.enabled() && cols % o.rotation.block != 0) {
    fail("{}: tensor {} has {} input features, not a multiple of the Hadamard block {}", t.file.string(), t.name,
         cols, o.rotation.block);
  }
}

// Linears that engines fuse into one matmul (model::kInputGroups of several members: q/k/v, gate/up)
// must share NVFP4's tensor scale: the key names the layer and the group.
std::string fused_group_key(const std::string& name) {
  for (std::size_t g = 0; g < std::size(model::kInputGroups); ++g) {
    const model::InputGroup& group = model::kInputGroups[g];
    if (group.kinds.size() < 2) continue;
    for (const model::LinearKind kind : group.kinds) {
      const auto at = name.rfind(model::linear_name(kind));
      if (at != std::string::npos) return fmt::format("{}group{}", name.substr(0, at), g);
    }
  }
  return name;
}

Matrix load_in_quantized_basis(const io::TensorInfo& t, const QuantizeOptions& o) {
  Matrix w(t.shape[0], t.shape[1]);
  io::to_f32(t, w.data);
  if (o.rotation.enabled()) rotation::rotate_rows(w.view(), o.rotation);
  return w;
}

// Round-to-nearest, one tensor at a time, straight from the mapped checkpoint.
QuantizedLinears quantize_rtn(const std::vector<const io::TensorInfo*>& linears, const QuantizeOptions& o) {
  std::map<std::string, float> shared_global;  // by fused group
  if (o.spec.format == formats::Format::nvfp4) {
    for (const io::TensorInfo* t : linears) {
      const Matrix w = load_in_quantized_basis(*t, o);
      const float scale = formats::tensor_global_scale(o.spec, w.data);
      auto [it, inserted] = shared_global.emplace(fused_group_key(t->name), scale);
      if (!inserted) it->second = std::min(it->second, scale);
    }
  }
  QuantizedLinears out;
  Progress progress("quantize rtn", static_cast<std::int64_t>(linears.size()), o.quiet);
  for (const io::TensorInfo* t : linears) {
    Matrix w = load_in_quantized_basis(*t, o);
    std::optional<float> global;
    if (auto it = shared_global.find(fused_group_key(t->name)); it != shared_global.end()) global = it->second;
    QuantizedLinear entry;
    entry.quantized = quantizers::rtn(w.view(), o.spec, global, t->name).quantized;
    measure_error(entry, w.view());
    out.emplace(t->name, std::move(entry));
    progress.advance(1, t->name);
  }
  return out;
}

}  // namespace

Method parse_method(std::string_view name) {
  if (name == "rtn") return Method::rtn;
  if (name == "gptq") return Method::gptq;
  if (name == "mr-gptq") return Method::mr_gptq;
  fail("unknown method '{}' (supported: rtn, gptq, mr-gptq)", name);
}

std::string_view method_name(Method method) {
  switch (method) {
    case Method::rtn: return "rtn";
    case Method::gptq: return "gptq";
    case Method::mr_gptq: return "mr-gptq";
  }
  return "";
}

QuantizeReport quantize_checkpoint(const QuantizeOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  const std::filesystem::path config_path = o.model_dir / "config.json";
  const nlohmann::json config = io::read_json_file(config_path);
  if (config.contains("quantization_config")) {
    fail("{}: the model is already quantized (config.json has quantization_config); quantize the original "
         "checkpoint instead",
         config_path.string());
  }
  const io::Checkpoint checkpoint(o.model_dir);

  std::vector<const io::TensorInfo*> linears;
  for (const io::TensorInfo* t : checkpoint.tensors()) {
    if (o.selection.selects(t->name)) {
      validate_linear(*t, o);
      linears.push_back(t);
    }
  }
  if (linears.empty()) {
    fail("{}: no linear layer weights found to quantize (expected names like "
         "model.layers.0.self_attn.q_proj.weight)",
         o.model_dir.string());
  }
  // Refuse a bad output directory before any work starts.
  exporter::ModelDirWriter writer(o.out_dir, o.model_dir, o.force);

  // RTN alone needs no calibration; QEP on top of RTN does.
  QuantizedLinears quantized = o.method == Method::rtn && !o.calibration.qep
                                   ? quantize_rtn(linears, o)
                                   : quantize_calibrated(checkpoint, linears, o);

  QuantizeReport report;
  double total_error = 0, total_norm = 0;
  for (const io::TensorInfo* t : checkpoint.tensors()) {
    report.bytes_before += t->bytes.size();
    auto it = quantized.find(t->name);
    if (it == quantized.end()) {
      writer.add_tensor_view(t->name, t->dtype, t->shape, t->bytes);
      report.bytes_after += t->bytes.size();
      continue;
    }
    const formats::QuantizedMatrix& q = it->second.quantized;
    LayerReport layer{t->name, q.rows, q.cols};
    layer.squared_error = it->second.squared_error;
    layer.squared_norm = it->second.squared_norm;
    layer.relative_error = layer.squared_norm > 0 ? layer.squared_error / layer.squared_norm : 0.0;
    total_error += layer.squared_error;
    total_norm += layer.squared_norm;
    report.layers.push_back(layer);
    report.linear_bytes_before += t->bytes.size();

    const std::string prefix = linear_prefix(t->name);
    if (o.dequantized) {
      Matrix dequant(q.rows, q.cols);
      formats::dequantize(q, dequant.view());
      // Fake-quant: back to the original basis so that any engine can run it without rotating inputs.
      if (o.rotation.enabled()) rotation::unrotate_rows(dequant.view(), o.rotation);
      auto bytes = io::bf16_bytes_vector(dequant.data);
      report.linear_bytes_after += bytes.size();
      writer.add_tensor(t->name, io::DType::BF16, t->shape, std::move(bytes));
    } else {
      for (auto& tensor : exporter::compressed_linear_tensors(prefix, q)) {
        report.linear_bytes_after += tensor.data.size();
        writer.add_tensor(std::move(tensor));
      }
    }
    it->second.quantized = {};  // free as we go
  }
  report.bytes_after += report.linear_bytes_after;
  report.total_relative_error = total_norm > 0 ? total_error / total_norm : 0.0;

  nlohmann::json out_config = config;
  std::vector<std::string> ignore;
  if (!o.selection.include_lm_head) ignore.push_back("lm_head");
  if (o.dequantized) {
    out_config["microscale_fake_quant"] = {
        {"method", method_name(o.method)},
        {"quantization", exporter::quantization_config(o.spec, o.rotation, ignore)["microscale"]}};
  } else {
    out_config["quantization_config"] = exporter::quantization_config(o.spec, o.rotation, ignore);
    auto& ours = out_config["quantization_config"]["microscale"];
    ours["method"] = method_name(o.method);
    ours["qep"] = o.calibration.qep;
    if (o.method != Method::rtn || o.calibration.qep) {
      const auto& c = o.calibration;
      ours["calibration"] = {{"file", c.text.filename().string()}, {"samples", c.samples}, {"seqlen", c.seqlen},
                             {"seed", c.seed}, {"damp", c.damp}, {"act_order", c.act_order}};
    }
  }
  writer.add_json("config.json", out_config);
  writer.copy_other_files(o.model_dir, {"config.json"});
  writer.commit();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace microscale::pipeline
