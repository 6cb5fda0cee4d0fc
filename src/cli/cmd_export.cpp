// `microscale export QUANTIZED_DIR --to gguf --out FILE.gguf`: converts a directory that `microscale quantize`
// wrote (or a plain Hugging Face checkpoint) into another container. The work is exporter::write_gguf.
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/format_helpers.hpp"
#include "microscale/core/error.hpp"
#include "microscale/export/gguf_export.hpp"

namespace microscale::cli {

void register_export(CLI::App& app) {
  struct Flags {
    std::string model_dir, to = "gguf", out, name;
    bool force = false, fuse_rotation = false;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand("export", "Convert a quantized (or plain) model directory to GGUF for llama.cpp");
  cmd->add_option("MODEL_DIR", flags->model_dir, "model directory written by `microscale quantize` (or a HF checkpoint)")
      ->required();
  cmd->add_option("--to", flags->to, "target format: gguf")->capture_default_str();
  cmd->add_option("--out", flags->out, "the .gguf file to write")->required();
  cmd->add_option("--name", flags->name, "general.name in the file (default: the directory's name)");
  cmd->add_flag("--force", flags->force, "replace an existing file");
  cmd->add_flag("--fuse-rotation", flags->fuse_rotation,
                "refused: a rotated 4-bit checkpoint cannot be un-rotated and stay 4-bit (see --dequantized)");
  cmd->callback([flags] {
    if (flags->fuse_rotation) fail("{}", exporter::fuse_rotation_refusal());
    if (flags->to != "gguf") fail("--to {}: unknown target (supported: gguf)", flags->to);
    exporter::GgufExportOptions options;
    options.overwrite = flags->force;
    options.name = flags->name;
    print_gguf_report(exporter::write_gguf(flags->model_dir, flags->out, options));
  });
}

}  // namespace microscale::cli
