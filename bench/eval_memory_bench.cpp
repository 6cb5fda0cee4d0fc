// Memory and time of `microscale eval` with the layers resident (every layer held as FP32) against
// streamed from the checkpoint (one layer at a time, --stream-layers on), side by side in one run.
//
// Writes two random BF16 Llama-shaped checkpoints (the model and its reference, wp-tiny's tokenizer)
// into a scratch directory, then runs the CLI on them once each way, as separate processes, so each
// peak RSS is that run's alone. The figures must agree exactly; the bench says so, or fails.
//
//   build/eval_memory_bench [--hidden 1024 --intermediate 4096 --layers 8 --vocab 32000]
#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "microscale/core/openblas_kernels.hpp"
#include "microscale/model/config.hpp"
#include "microscale/model/model.hpp"
#include "support/random_checkpoint.hpp"
#include "support/run_command.hpp"

namespace {

using microscale::testing::RandomModelSpec;

const std::filesystem::path kRoot = MICROSCALE_SOURCE_DIR;

struct Run {
  double seconds = 0;
  std::uint64_t peak_rss = 0;
  nlohmann::json result;
};

Run run_eval(const std::filesystem::path& dir, const std::string& streaming, const std::string& common) {
  const auto json_path = dir / ("result-" + streaming + ".json");
  const std::string command = fmt::format("{} eval '{}' --reference '{}' {} --stream-layers {} --json '{}'",
                                          microscale::testing::cli(), (dir / "model").string(),
                                          (dir / "reference").string(), common, streaming, json_path.string());
  const auto r = microscale::testing::run_command(command);
  if (r.exit_code != 0) {
    fmt::print(stderr, "{}\nfailed ({}):\n{}", command, r.exit_code, r.err);
    std::exit(1);
  }
  Run run;
  run.result = nlohmann::json::parse(std::ifstream(json_path));
  run.seconds = run.result["seconds"].get<double>();
  run.peak_rss = run.result["efficiency"]["peak_rss_bytes"].get<std::uint64_t>();
  return run;
}

std::string megabytes(double bytes) { return fmt::format("{:.0f} MB", bytes / 1e6); }

}  // namespace

int main(int argc, char** argv) {
  microscale::core::restart_with_faster_openblas_kernels(argv);
  RandomModelSpec spec;
  spec.hidden = 1024;
  spec.intermediate = 4096;
  spec.layers = 8;
  spec.heads = 16;
  spec.kv_heads = 4;
  spec.head_dim = 64;
  spec.vocab = 32000;
  int threads = 2, windows = 4, seqlen = 256, task_items = 8;
  CLI::App app{"eval memory: resident against streamed layers"};
  app.add_option("--hidden", spec.hidden);
  app.add_option("--intermediate", spec.intermediate);
  app.add_option("--layers", spec.layers);
  app.add_option("--vocab", spec.vocab, "at least wp-tiny's 4096 tokens");
  app.add_option("--threads", threads);
  app.add_option("--windows", windows);
  app.add_option("--seqlen", seqlen);
  app.add_option("--task-items", task_items, "items of wp-cloze scored by both models");
  CLI11_PARSE(app, argc, argv);
  spec.dtype = microscale::io::DType::BF16;
  spec.weight_std = 0.02f;
  spec.max_positions = 2048;
  spec.tokenizer_json = kRoot / "models/wp-tiny/tokenizer.json";

  microscale::testing::TempDir dir;
  microscale::testing::write_random_model(dir / "model", spec, 7);
  microscale::testing::write_random_model(dir / "reference", spec, 8);
  microscale::testing::write_first_lines(kRoot / "data/tasks/wp-cloze.jsonl", dir / "wp-cloze.jsonl", task_items);
  const auto config = microscale::model::load_config(dir / "model");
  const std::string common =
      fmt::format("--text '{}' --seqlen {} --max-windows {} --tasks '{}' --decode-tokens 8 --threads {} --quiet",
                  (kRoot / "data/wp-test.txt").string(), seqlen, windows, (dir / "wp-cloze.jsonl").string(), threads);

  const Run resident = run_eval(dir.path(), "off", common);
  const Run streamed = run_eval(dir.path(), "on", common);
  const bool same = resident.result["perplexity"] == streamed.result["perplexity"] &&
                    resident.result["kl_divergence"] == streamed.result["kl_divergence"] &&
                    resident.result["top1_agreement"] == streamed.result["top1_agreement"] &&
                    resident.result["tasks"] == streamed.result["tasks"];

  const auto file_bytes = std::filesystem::file_size(dir / "model" / "model.safetensors");
  fmt::print("model: llama, hidden {}, intermediate {}, {} layers, vocab {}: {:.0f}M parameters, {} BF16 each "
             "(model and reference)\n",
             spec.hidden, spec.intermediate, spec.layers, spec.vocab, static_cast<double>(config.parameter_count()) / 1e6,
             megabytes(static_cast<double>(file_bytes)));
  fmt::print("estimated FP32 weights held per model: resident {}, streamed {}\n",
             megabytes(static_cast<double>(microscale::model::resident_weight_bytes(config, {.stream_layers = false}))),
             megabytes(static_cast<double>(microscale::model::resident_weight_bytes(config, {.stream_layers = true}))));
  fmt::print("eval: {} windows of {} + {} wp-cloze items, both models, {} threads\n\n", windows, seqlen, task_items,
             threads);
  fmt::print("| layers | peak RSS | wall s | perplexity | KL mean |\n|---|---|---|---|---|\n");
  for (const auto& [name, run] : {std::pair{"resident", &resident}, std::pair{"streamed", &streamed}}) {
    fmt::print("| {} | {} | {:.1f} | {:.4f} | {:.5f} |\n", name, megabytes(static_cast<double>(run->peak_rss)),
               run->seconds, run->result["perplexity"]["ppl"].get<double>(),
               run->result["kl_divergence"]["mean"].get<double>());
  }
  fmt::print("\nstreamed / resident: peak RSS {:.2f}x, time {:.2f}x; figures {}\n",
             static_cast<double>(streamed.peak_rss) / static_cast<double>(resident.peak_rss),
             streamed.seconds / resident.seconds, same ? "identical" : "DIFFER");
  return same ? 0 : 1;
}
