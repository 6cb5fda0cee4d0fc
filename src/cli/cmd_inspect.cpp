// `microscale inspect MODEL_DIR`: what a checkpoint holds and what `quantize` would do to it.
#include <map>
#include <memory>
#include <string>

#include <fmt/core.h>
#include <fmt/ranges.h>

#include "cli/commands.hpp"
#include "cli/format_helpers.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/io/safetensors.hpp"
#include "microscale/pipeline/linear_selection.hpp"

namespace microscale::cli {
namespace {

void inspect(const std::string& dir, bool include_lm_head, bool all) {
  const std::filesystem::path model_dir(dir);
  const nlohmann::json config = io::read_json_file(model_dir / "config.json");
  const io::Checkpoint checkpoint(model_dir);
  pipeline::LinearSelection selection{include_lm_head};

  fmt::print("model     {}  ({})\n", model_dir.string(), config.value("model_type", "unknown model_type"));
  auto field = [&](const char* key) {
    return config.contains(key) ? config.at(key).dump() : std::string("-");
  };
  fmt::print("config    layers {}  hidden {}  intermediate {}  heads {}  kv heads {}  vocab {}  context {}\n",
             field("num_hidden_layers"), field("hidden_size"), field("intermediate_size"),
             field("num_attention_heads"), field("num_key_value_heads"), field("vocab_size"),
             field("max_position_embeddings"));
  if (config.contains("quantization_config")) {
    const auto& qc = config.at("quantization_config");
    fmt::print("quantized {} ({})\n", qc.value("format", "?"), qc.value("quant_method", "?"));
    if (qc.contains("microscale")) fmt::print("          {}\n", qc.at("microscale").dump());
  }
  std::vector<std::string> files;
  for (const auto& f : checkpoint.files()) files.push_back(f.filename().string());
  fmt::print("files     {}\n\n", fmt::join(files, ", "));

  std::size_t width = 6;
  for (const io::TensorInfo* t : checkpoint.tensors()) width = std::max(width, t->name.size());
  std::uint64_t total = 0, selected_bytes = 0, params = 0, selected_params = 0;
  std::map<std::string, std::uint64_t> by_dtype;
  std::size_t selected = 0, shown = 0;
  for (const io::TensorInfo* t : checkpoint.tensors()) {
    const bool quantize = selection.selects(t->name);
    total += t->bytes.size();
    params += static_cast<std::uint64_t>(t->numel());
    by_dtype[std::string(io::dtype_name(t->dtype))] += t->bytes.size();
    if (quantize) {
      ++selected;
      selected_bytes += t->bytes.size();
      selected_params += static_cast<std::uint64_t>(t->numel());
    }
    // Long listings show the first layer's tensors and everything outside the repeated layers.
    const bool repeated = t->name.starts_with("model.layers.") && !t->name.starts_with("model.layers.0.");
    if (all || !repeated) {
      if (shown++ == 0) fmt::print("{:<{}}  {:<7}  {:>16}  {:>10}  {}\n", "tensor", width, "dtype", "shape", "size", "quantize");
      fmt::print("{:<{}}  {:<7}  {:>16}  {:>10}  {}\n", t->name, width, io::dtype_name(t->dtype),
                 fmt::format("[{}]", fmt::join(t->shape, ", ")), human_bytes(t->bytes.size()), quantize ? "yes" : "");
    }
  }
  if (!all && shown < checkpoint.tensors().size()) {
    fmt::print("... {} more tensors in layers 1+ (--all lists them)\n", checkpoint.tensors().size() - shown);
  }
  fmt::print("\n{} tensors, {} parameters, {}", checkpoint.tensors().size(), params, human_bytes(total));
  for (const auto& [dtype, bytes] : by_dtype) fmt::print("  {} {}", dtype, human_bytes(bytes));
  fmt::print("\nquantize would replace {} linear weights ({} parameters, {}); embeddings, norms{} stay as they are\n",
             selected, selected_params, human_bytes(selected_bytes), include_lm_head ? "" : " and lm_head");
}

}  // namespace

void register_inspect(CLI::App& app) {
  struct Flags {
    std::string model_dir;
    bool include_lm_head = false;
    bool all = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("inspect", "List a checkpoint's tensors and what quantize would change");
  cmd->add_option("MODEL_DIR", flags->model_dir, "model directory")->required();
  cmd->add_flag("--include-lm-head", flags->include_lm_head, "count lm_head as quantized");
  cmd->add_flag("--all", flags->all, "list every tensor, not only layer 0 and the rest");
  cmd->callback([flags] { inspect(flags->model_dir, flags->include_lm_head, flags->all); });
}

}  // namespace microscale::cli
