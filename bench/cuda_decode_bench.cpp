// Decode and prefill speed of the GPU runtime on a Llama-3-8B-shaped model with random weights
// (generated on the device: no checkpoint needed), BF16 vs MXFP4 vs NVFP4 linears, the 4-bit ones with
// each W4A16 kernel (tensor cores on the tile layout, the default; the FP32 GEMV on the row layout).
//
//   cuda_decode_bench [--layers 32] [--context 128] [--steps 128] [--prefill 2048] [--out table.md]
//
// Decode: batch 1, `context` tokens prefilled, then `steps` greedy steps on the device (argmax fed
// back without the host), the step captured once as a CUDA graph and replayed; the time is the
// steady state measured with CUDA events (GpuModel::greedy_decode). The same without the graph shows
// what launch overhead costs. Prefill: one sequence of `prefill` tokens, host-timed after a warm-up.
// The head and the embedding stay BF16 in every variant (as quantized checkpoints keep them).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#if defined(MICROSCALE_HAVE_CUDA)
#include "microscale/cuda/gpu_model.hpp"
#include "llama_shapes.hpp"
#endif

namespace {

#if defined(MICROSCALE_HAVE_CUDA)
using microscale::cuda::GpuModel;
using microscale::formats::Format;

struct Row {
  std::string name;
  double weight_gb = 0;
  double decode_graph = 0, decode_eager = 0, prefill = 0;  // tokens/s
  std::vector<std::int32_t> tokens;                          // the graph run's output (sanity)
};

std::vector<std::int32_t> prompt_tokens(int n, std::int64_t vocab) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((1000 + 7919 * i) % vocab);
  return t;
}

// Decode tokens/s (steady state of `steps` greedy steps after `context` prefilled tokens).
double decode_rate(GpuModel& m, int context, int steps, bool graph, std::vector<std::int32_t>* out) {
  m.reset_cache(1, context + steps);
  m.prefill(prompt_tokens(context, m.config().vocab_size), 1, context);
  const std::int32_t first[] = {1};
  double per_step = 0;
  const auto tokens = m.greedy_decode(first, steps, graph, &per_step);
  if (out != nullptr) *out = tokens;
  return per_step > 0 ? 1.0 / per_step : 0.0;
}

double prefill_rate(GpuModel& m, int tokens) {
  const auto prompt = prompt_tokens(tokens, m.config().vocab_size);
  m.reset_cache(1, tokens);
  m.prefill(prompt, 1, tokens);  // warm-up: buffers, cuBLAS heuristics
  m.reset_cache(1, tokens);
  const auto start = std::chrono::steady_clock::now();
  m.prefill(prompt, 1, tokens);  // returns after the last token's logits are on the host
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return tokens / s;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("GPU decode/prefill tokens/s on a Llama-3-8B-shaped random model: BF16 vs MXFP4 vs NVFP4");
  int layers = 32, context = 128, steps = 128, prefill = 2048;
  std::string out_path;
  app.add_option("--layers", layers, "Decoder layers (32 = Llama-3-8B)");
  app.add_option("--context", context, "Tokens prefilled before decoding");
  app.add_option("--steps", steps, "Decode steps timed (the first two are warm-up and graph capture)");
  app.add_option("--prefill", prefill, "Prefill length for the prefill figure (0 = skip)");
  app.add_option("--out", out_path, "Also write the markdown table to this file");
  CLI11_PARSE(app, argc, argv);
#if !defined(MICROSCALE_HAVE_CUDA)
  std::fprintf(stderr, "cuda_decode_bench: this build has no CUDA module\n");
  return 1;
#else
  try {
    const auto config = microscale::bench::llama3_8b_config(layers);
    std::vector<Row> rows;
    std::string device;
    using microscale::cuda::Fp4Kernels;
    struct Variant {
      std::optional<Format> format;
      Fp4Kernels kernels;
    };
    const Variant variants[] = {{std::nullopt, Fp4Kernels::tensor_cores},
                                {Format::mxfp4, Fp4Kernels::tensor_cores},
                                {Format::nvfp4, Fp4Kernels::tensor_cores},
                                {Format::mxfp4, Fp4Kernels::gemv},
                                {Format::nvfp4, Fp4Kernels::gemv}};
    for (const Variant& v : variants) {
      const auto& format = v.format;
      Row row;
      row.name = format ? std::string(microscale::formats::format_name(*format)) : "bf16";
      if (format) row.name += v.kernels == Fp4Kernels::tensor_cores ? " (tensor cores)" : " (gemv)";
      std::fprintf(stderr, "%s: generating weights...\n", row.name.c_str());
      GpuModel m = GpuModel::random(config, format, 1, v.kernels);
      device = m.device_name();
      row.weight_gb = static_cast<double>(m.weight_bytes()) / 1e9;
      decode_rate(m, context, 16, true, nullptr);  // warm-up
      row.decode_graph = decode_rate(m, context, steps, true, &row.tokens);
      row.decode_eager = decode_rate(m, context, steps, false, nullptr);
      if (prefill > 0) row.prefill = prefill_rate(m, prefill);
      std::fprintf(stderr, "%s: decode %.1f tok/s (graph), %.1f (eager), prefill %.0f tok/s\n", row.name.c_str(),
                   row.decode_graph, row.decode_eager, row.prefill);
      rows.push_back(std::move(row));
    }
    std::string table = fmt::format(
        "Llama-3-8B-shaped random model ({} layers), device: {}\n"
        "decode: batch 1 after {} prefilled tokens, steady state of {} greedy steps (CUDA events); "
        "prefill: {} tokens, batch 1\n\n"
        "| linears | weights GB | decode tok/s (graph) | x BF16 | decode tok/s (no graph) | weight GB/s (graph) "
        "| prefill tok/s | x BF16 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        layers, device, context, steps, prefill);
    const Row& base = rows.front();
    for (const Row& r : rows) {
      table += fmt::format("| {} | {:.2f} | {:.1f} | {:.2f} | {:.1f} | {:.0f} | {:.0f} | {:.2f} |\n", r.name,
                           r.weight_gb, r.decode_graph, r.decode_graph / base.decode_graph, r.decode_eager,
                           r.weight_gb * r.decode_graph, r.prefill, base.prefill > 0 ? r.prefill / base.prefill : 0.0);
    }
    table += "\n(weight GB/s = all weight bytes, head and embedding included, times decode tok/s: an upper bound "
             "on the bytes a step streams, since only one embedding row is read.)\n";
    std::fputs(table.c_str(), stdout);
    if (!out_path.empty()) {
      std::ofstream(out_path) << table;
    }
    bool ok = true;
    for (const Row& r : rows) ok = ok && r.decode_graph > 0 && r.tokens.size() == static_cast<std::size_t>(steps);
    std::printf("%s cuda_decode_bench: every variant decoded %d steps\n", ok ? "PASS" : "FAIL", steps);
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL cuda_decode_bench: %s\n", e.what());
    return 1;
  }
#endif
}
