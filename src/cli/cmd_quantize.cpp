// `microscale quantize MODEL_DIR --out OUT_DIR ...`: flags in, QuantizeOptions out, report printed.
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <unistd.h>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "cli/format_helpers.hpp"
#include "microscale/core/error.hpp"
#include "microscale/export/gguf_export.hpp"
#include "microscale/model/config.hpp"
#include "microscale/formats/format.hpp"
#include "microscale/pipeline/quantize_job.hpp"

namespace microscale::cli {
namespace {

struct QuantizeFlags {
  std::string model_dir, out_dir, method = "rtn", format = "nvfp4", scale, mx_rounding = "ocp";
  int group_size = -1;  // -1: the format's own (mxfp4 32, nvfp4 16, int4 128)
  bool asymmetric = false;
  int hadamard = -1;    // -1: 0 for rtn/gptq, the group size for mr-gptq
  bool random_signs = false;
  std::uint64_t seed = 0;
  bool dequantized = false, force = false, include_lm_head = false, quiet = false, fuse_rotation = false;
  std::string export_format = "compressed-tensors";
  std::string calib;
  int calib_samples = 128, calib_seqlen = 2048, block_size = 128;
  double damp = 0.01;
  bool no_act_order = false, qep = false;
  std::string qep_alpha;
  double activation_budget_gb = 0;
  std::string device = "cpu";
};

pipeline::QuantizeOptions to_options(const QuantizeFlags& f) {
  pipeline::QuantizeOptions o;
  o.model_dir = f.model_dir;
  o.out_dir = f.out_dir;
  o.method = pipeline::parse_method(f.method);
  const formats::Format format = formats::parse_format(f.format);
  int group = f.group_size;
  if (group < 0) group = format == formats::Format::mxfp4 ? 32 : format == formats::Format::nvfp4 ? 16 : 128;
  std::string scale = f.scale;
  if (scale.empty()) scale = o.method == pipeline::Method::mr_gptq ? "mse" : "absmax";
  o.spec = formats::make_spec(format, group, !f.asymmetric, formats::parse_scale_search(scale),
                              formats::parse_mx_rounding(f.mx_rounding));
  int block = f.hadamard;
  if (block < 0) block = o.method == pipeline::Method::mr_gptq ? static_cast<int>(std::min(128, std::max(16, group))) : 0;
  if (block != 0 && (block < 2 || (block & (block - 1)) != 0)) {
    fail("--hadamard must be 0 (off) or a power of two such as 16, 32, 64, 128; got {}", block);
  }
  o.rotation = {block, f.random_signs, f.seed};
  o.selection.include_lm_head = f.include_lm_head;
  o.dequantized = f.dequantized;
  o.force = f.force;
  o.quiet = f.quiet;
  auto& c = o.calibration;
  c.text = f.calib;
  c.samples = f.calib_samples;
  c.seqlen = f.calib_seqlen;
  c.seed = f.seed;
  c.damp = f.damp;
  c.block_size = f.block_size;
  c.act_order = !f.no_act_order;
  c.qep = f.qep;
  c.activation_budget_bytes = static_cast<std::uint64_t>(f.activation_budget_gb * 1e9);
  c.gpu = f.device == "cuda";
  if (!f.qep_alpha.empty()) {
    // "0.5" for every layer kind, or "attn=0.5,mlp=0.25"
    std::string rest = f.qep_alpha;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const std::string item = rest.substr(0, comma);
      rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
      const auto eq = item.find('=');
      try {
        if (eq == std::string::npos) {
          c.qep_alpha_attn = c.qep_alpha_mlp = std::stod(item);
        } else if (item.substr(0, eq) == "attn") {
          c.qep_alpha_attn = std::stod(item.substr(eq + 1));
        } else if (item.substr(0, eq) == "mlp") {
          c.qep_alpha_mlp = std::stod(item.substr(eq + 1));
        } else {
          fail("--qep-alpha: unknown layer kind '{}' (use attn= and mlp=)", item.substr(0, eq));
        }
      } catch (const std::logic_error&) {
        fail("--qep-alpha: '{}' is not a number", item);
      }
    }
  }
  if (c.gpu && o.method == pipeline::Method::rtn && !c.qep) {
    fail("--device cuda accelerates calibration (statistics, GPTQ, MR-GPTQ); round-to-nearest has nothing to "
         "offload without --qep (drop --device)");
  }
  if ((o.method != pipeline::Method::rtn || c.qep) && c.text.empty()) {
    fail("--method {}{} needs calibration text: pass --calib FILE", f.method, c.qep ? " --qep" : "");
  }
  return o;
}

void print_report(const pipeline::QuantizeOptions& o, const pipeline::QuantizeReport& r, bool show_output = true) {
  std::size_t width = 5;
  for (const auto& l : r.layers) width = std::max(width, l.name.size());
  fmt::print("{:<{}}  {:>11}  {:>10}\n", "layer", width, "shape", "rel. error");
  for (const auto& l : r.layers) {
    fmt::print("{:<{}}  {:>11}  {:>10.3e}\n", l.name, width, fmt::format("{}x{}", l.rows, l.cols), l.relative_error);
  }
  const double params = [&] {
    double n = 0;
    for (const auto& l : r.layers) n += static_cast<double>(l.rows) * static_cast<double>(l.cols);
    return n;
  }();
  fmt::print("\n{} {}{}{}: {} linear layers, total relative error {:.3e}\n", pipeline::method_name(o.method),
             formats::describe(o.spec), o.rotation.enabled() ? fmt::format(", hadamard {}", o.rotation.block) : "",
             o.calibration.qep && o.method != pipeline::Method::rtn ? ", qep" : "", r.layers.size(),
             r.total_relative_error);
  fmt::print("linear weights  {} -> {}  ({:.2f} bits/weight)\n", human_bytes(r.linear_bytes_before),
             human_bytes(r.linear_bytes_after), params > 0 ? 8.0 * static_cast<double>(r.linear_bytes_after) / params : 0.0);
  fmt::print("all tensors     {} -> {}  ({:.2f}x smaller)\n", human_bytes(r.bytes_before), human_bytes(r.bytes_after),
             r.bytes_after > 0 ? static_cast<double>(r.bytes_before) / static_cast<double>(r.bytes_after) : 0.0);
  if (show_output) {
    fmt::print("wrote {}{} in {:.1f} s\n", o.out_dir.string(), o.dequantized ? " (BF16 fake-quant)" : "", r.seconds);
  }
}

// Removes the staging directory of a GGUF export however the command ends.
class StagingDir {
 public:
  explicit StagingDir(std::filesystem::path path) : path_(std::move(path)) {}
  ~StagingDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// --export gguf: every refusal first, then quantize into a staging directory beside the .gguf, convert
// it (written to a temporary file and renamed), and remove the staging directory.
void quantize_to_gguf(pipeline::QuantizeOptions options) {
  namespace fs = std::filesystem;
  const fs::path gguf_path = options.out_dir;
  if (gguf_path.extension() != ".gguf") {
    fail("--export gguf: --out {} should be the .gguf file to write", gguf_path.string());
  }
  std::error_code ec;
  if (fs::exists(gguf_path, ec) && !options.force) fail("{}: exists; pass --force to replace it", gguf_path.string());
  const model::ModelConfig config = model::load_config(options.model_dir);
  const std::string source = options.model_dir.string();
  if (options.dequantized) {
    exporter::check_gguf_architecture(config, source);  // BF16 weights, rotation folded back: any format
  } else {
    exporter::check_gguf_exportable(options.spec, options.rotation, config, source);
  }
  const fs::path parent = gguf_path.has_parent_path() ? gguf_path.parent_path() : fs::path(".");
  StagingDir staging(parent / fmt::format(".{}.microscale-staging-{}", gguf_path.filename().string(), ::getpid()));
  options.out_dir = staging.path();
  options.force = true;
  const pipeline::QuantizeReport report = pipeline::quantize_checkpoint(options);
  print_report(options, report, /*show_output=*/false);
  exporter::GgufExportOptions export_options;
  export_options.overwrite = true;  // checked above, before any work
  export_options.name = fs::absolute(options.model_dir).lexically_normal().filename().string();
  if (export_options.name.empty()) export_options.name = fs::absolute(options.model_dir).parent_path().filename().string();
  const exporter::GgufExportReport written = exporter::write_gguf(staging.path(), gguf_path, export_options);
  print_gguf_report(written);
}

}  // namespace

void register_quantize(CLI::App& app) {
  auto flags = std::make_shared<QuantizeFlags>();
  CLI::App* cmd = app.add_subcommand("quantize", "Quantize a Hugging Face checkpoint's linear layers to 4 bits");
  cmd->add_option("MODEL_DIR", flags->model_dir, "input model directory (config.json + safetensors)")->required();
  cmd->add_option("--out", flags->out_dir,
                  "output directory (created; must be empty unless --force), or the .gguf file with --export gguf")
      ->required();
  cmd->add_option("--export", flags->export_format, "compressed-tensors | gguf")->capture_default_str();
  cmd->add_flag("--fuse-rotation", flags->fuse_rotation,
                "refused: a rotated 4-bit checkpoint cannot be un-rotated and stay 4-bit (see --dequantized)");
  cmd->add_option("--method", flags->method, "rtn | gptq | mr-gptq")->capture_default_str();
  cmd->add_option("--format", flags->format, "mxfp4 | nvfp4 | int4")->capture_default_str();
  cmd->add_option("--group-size", flags->group_size,
                  "int4 group size: 32, 64, 128, or 0 for per-channel (default 128); fixed for mxfp4 (32), nvfp4 (16)");
  cmd->add_flag("--asymmetric", flags->asymmetric, "int4 with a zero point per group");
  cmd->add_option("--scale", flags->scale, "absmax | mse (default absmax; mse for mr-gptq)");
  cmd->add_option("--mx-rounding", flags->mx_rounding, "MXFP4 scale rule: ocp (OCP MX v1.0, llama.cpp) | no_clip | even (compressed-tensors)")
      ->capture_default_str();
  cmd->add_option("--hadamard", flags->hadamard,
                  "block Hadamard rotation size: 0 (off), 16, 32, 64, 128 (default 0; the group size for mr-gptq)");
  cmd->add_flag("--random-signs", flags->random_signs, "random +-1 signs in the rotation (seeded by --seed)");
  cmd->add_option("--seed", flags->seed, "seed for rotation signs and calibration windows")->capture_default_str();
  cmd->add_flag("--dequantized", flags->dequantized, "write a BF16 fake-quant checkpoint that any engine can run");
  cmd->add_flag("--force", flags->force, "replace a non-empty output directory");
  cmd->add_flag("--include-lm-head", flags->include_lm_head, "also quantize lm_head");
  cmd->add_flag("--quiet", flags->quiet, "no progress on stderr");
  cmd->add_option("--calib", flags->calib, "calibration text: plain text, or JSONL with a \"text\" field");
  cmd->add_option("--calib-samples", flags->calib_samples, "number of calibration windows")->capture_default_str();
  cmd->add_option("--calib-seqlen", flags->calib_seqlen, "tokens per window (capped by the model)")
      ->capture_default_str();
  cmd->add_option("--damp", flags->damp, "GPTQ damping, fraction of the mean Hessian diagonal")->capture_default_str();
  cmd->add_option("--block-size", flags->block_size, "GPTQ lazy-update block size")->capture_default_str();
  cmd->add_flag("--no-act-order", flags->no_act_order, "process columns in their natural order");
  cmd->add_flag("--qep", flags->qep, "quantization error propagation on top of the method");
  cmd->add_option("--qep-alpha", flags->qep_alpha, "QEP strength: one value, or attn=A,mlp=B (default: the paper's)");
  cmd->add_option("--device", flags->device,
                  "where the calibration statistics (Hessians, QEP's cross term) and GPTQ's Cholesky factorisation "
                  "and lazy block updates run: cpu | cuda (cuBLAS/cuSOLVER)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_option("--activation-budget", flags->activation_budget_gb,
                  "GB of calibration activations to keep in memory before spilling to disk (0 = no limit)");
  cmd->callback([flags] {
    if (flags->fuse_rotation) fail("{}", exporter::fuse_rotation_refusal());
    if (flags->export_format != "compressed-tensors" && flags->export_format != "gguf") {
      fail("--export {}: unknown (use compressed-tensors or gguf)", flags->export_format);
    }
    if (flags->export_format == "gguf") {
      quantize_to_gguf(to_options(*flags));
      return;
    }
    const pipeline::QuantizeOptions options = to_options(*flags);
    const pipeline::QuantizeReport report = pipeline::quantize_checkpoint(options);
    print_report(options, report);
  });
}

}  // namespace microscale::cli
