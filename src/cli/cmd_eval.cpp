// `microscale eval MODEL_DIR --text FILE [...]`: perplexity, KL against a reference, zero-shot tasks and
// efficiency figures. The work is eval::run_evaluation; this file only maps flags to options.
#include <fstream>
#include <memory>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "microscale/core/error.hpp"
#include "microscale/eval/evaluate.hpp"

namespace microscale::cli {

void register_eval(CLI::App& app) {
  struct Flags {
    eval::EvalOptions options;
    std::string model_dir, reference_dir, text, json_out, device = "cpu", stream_layers = "auto";
    std::vector<std::string> tasks;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Perplexity (and KL divergence / top-1 agreement against --reference), zero-shot tasks, speed and memory");
  cmd->add_option("model_dir", flags->model_dir, "Model directory (config.json, safetensors, tokenizer.json) or a .gguf file")
      ->required();
  cmd->add_option("--reference", flags->reference_dir,
                  "Reference model directory or .gguf (e.g. the unquantized model): adds KL(P_ref || P_model), top-1 "
                  "agreement and its perplexity on the same windows");
  cmd->add_option("--text", flags->text, "UTF-8 text for perplexity (tokenized once as a whole)")->required();
  cmd->add_option("--seqlen", flags->options.seqlen,
                  "Window length in tokens (default 2048, capped by max_position_embeddings)");
  cmd->add_option("--max-windows", flags->options.max_windows, "Evaluate only the first N windows (default all)");
  cmd->add_option("--protocol", flags->options.protocol,
                  "Perplexity protocol: gptq (score every position of a window) or llama.cpp (score the second "
                  "half of each window, as llama-perplexity does)")
      ->check(CLI::IsMember({"gptq", "llama.cpp"}))
      ->capture_default_str();
  cmd->add_option("--tasks", flags->tasks, "Task files (JSON Lines, see docs/modules/eval.md)")->expected(1, -1);
  cmd->add_option("--json", flags->json_out, "Write the full result as JSON to this file");
  cmd->add_option("--threads", flags->options.threads, "Threads for OpenMP and OpenBLAS (default: all cores)");
  cmd->add_option("--decode-tokens", flags->options.decode_tokens,
                  "Greedy tokens generated for the decode-speed figure (0 to skip; default 32)");
  cmd->add_option("--device", flags->device,
                  "cpu (default) or cuda: run the model (and the reference) on the GPU; perplexity, KL, tasks and "
                  "the prefill/decode speeds then come from the GPU runtime")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--stream-layers", flags->stream_layers,
                  "CPU runtime: on holds one decoder layer at a time, loaded from the checkpoint when needed "
                  "(memory of about one layer and the output head; decode speed is then not measured); off holds "
                  "them all as FP32; auto streams when that would take more than 3/4 of the available memory")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->options.quiet, "No progress lines on stderr");
  cmd->callback([flags] {
    eval::EvalOptions options = flags->options;
    options.model_dir = flags->model_dir;
    if (!flags->reference_dir.empty()) options.reference_dir = flags->reference_dir;
    options.text = flags->text;
    options.device = eval::parse_device(flags->device);
    options.stream_layers = eval::parse_layer_streaming(flags->stream_layers);
    options.tasks.assign(flags->tasks.begin(), flags->tasks.end());
    if (options.max_windows < 0) fail("--max-windows must be positive, is {}", options.max_windows);
    if (options.threads < 0) fail("--threads must be positive, is {}", options.threads);
    if (options.decode_tokens < 0) fail("--decode-tokens must be 0 or more, is {}", options.decode_tokens);
    const eval::EvalReport report = eval::run_evaluation(options);
    fmt::print("{}", eval::format_table(report));
    if (!flags->json_out.empty()) {
      std::ofstream out(flags->json_out);
      if (!out) fail("{}: cannot write the JSON result", flags->json_out);
      out << eval::to_json(report).dump(2) << "\n";
      if (!out) fail("{}: writing the JSON result failed", flags->json_out);
    }
  });
}

}  // namespace microscale::cli
