// CPU runtime speed: prefill and KV-cache decode tokens/s.
//
//   prefill_bench [--model models/wp-tiny] [--threads 2] [--seqlen 512] [--batch 1]
//                 [--synthetic-layers 4] [--decode 32] [--repeats 3]
//
// 1. The bundled model (loaded from disk), prefill of batch x seqlen tokens, then greedy decode.
// 2. A Llama-3.2-1B-shaped model with random weights built in memory (hidden 2048, 32 heads, 8 KV heads,
//    intermediate 8192, vocab 128256, tied embeddings; FP32 weights, no checkpoint written). Only
//    --synthetic-layers of its 16 layers are built (4 by default, ~2 GB of RAM instead of ~5 GB); the
//    16-layer figure is extrapolated: time(16) = time(head + embed) + 16/L * time(L layers), with the
//    head timed separately.
// Token ids are arbitrary (speed does not depend on them). Best of --repeats runs.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "microscale/core/openblas_kernels.hpp"
#include "microscale/model/kernels.hpp"
#include "microscale/model/model.hpp"

namespace {

using microscale::Matrix;
using microscale::model::KvCache;
using microscale::model::Model;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<std::int32_t> tokens_for(std::int64_t count, std::int64_t vocab) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(count));
  std::uint64_t state = 12345;
  for (auto& x : t) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<std::int32_t>((state >> 33) % static_cast<std::uint64_t>(vocab));
  }
  return t;
}

// Uniform values in [-scale, scale] from a xorshift stream: fast enough for a billion weights.
void fill(std::vector<float>& v, float scale, std::uint64_t seed) {
  std::uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
  for (auto& x : v) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    x = scale * (static_cast<float>(s >> 40) / static_cast<float>(1 << 23) - 1.0f);
  }
}

Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Matrix m(rows, cols);
  fill(m.data, 1.0f / std::sqrt(static_cast<float>(cols)), seed);
  return m;
}

Model synthetic_llama_1b(int layers) {
  microscale::model::ModelConfig c;
  c.model_type = "llama";
  c.hidden_size = 2048;
  c.intermediate_size = 8192;
  c.num_layers = layers;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 64;
  c.vocab_size = 128256;
  c.max_position_embeddings = 131072;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = true;
  c.rope.theta = 500000.0;
  c.dtype = "float32";
  microscale::model::ModelWeights w;
  w.embedding = random_matrix(c.vocab_size, c.hidden_size, 1);
  w.final_norm.assign(static_cast<std::size_t>(c.hidden_size), 1.0f);
  for (int l = 0; l < layers; ++l) {
    microscale::model::LayerWeights lw;
    const std::uint64_t seed = 100 + 10 * static_cast<std::uint64_t>(l);
    lw.q.weight = random_matrix(c.q_dim(), c.hidden_size, seed + 1);
    lw.k.weight = random_matrix(c.kv_dim(), c.hidden_size, seed + 2);
    lw.v.weight = random_matrix(c.kv_dim(), c.hidden_size, seed + 3);
    lw.o.weight = random_matrix(c.hidden_size, c.q_dim(), seed + 4);
    lw.gate.weight = random_matrix(c.intermediate_size, c.hidden_size, seed + 5);
    lw.up.weight = random_matrix(c.intermediate_size, c.hidden_size, seed + 6);
    lw.down.weight = random_matrix(c.hidden_size, c.intermediate_size, seed + 7);
    lw.input_norm.assign(static_cast<std::size_t>(c.hidden_size), 1.0f);
    lw.post_attention_norm.assign(static_cast<std::size_t>(c.hidden_size), 1.0f);
    w.layers.push_back(std::move(lw));
  }
  return Model::from_weights(c, std::move(w));
}

struct Timing {
  double prefill_seconds = 1e30;   // whole forward (embed, layers, head) of batch*seqlen tokens
  double head_seconds = 1e30;      // final norm + lm_head of the same rows
  double decode_seconds = 1e30;    // `decode` single-token steps with the KV cache
  double decode_head_seconds = 1e30;
};

Timing measure(const Model& m, int batch, int seqlen, int decode, int repeats) {
  Timing t;
  const auto tokens = tokens_for(static_cast<std::int64_t>(batch) * seqlen, m.config().vocab_size);
  for (int r = 0; r < repeats; ++r) {
    auto start = Clock::now();
    Matrix hidden = m.embed(tokens);
    for (int l = 0; l < m.config().num_layers; ++l) m.forward_layer(l, hidden.view(), batch, seqlen);
    auto head_start = Clock::now();
    const Matrix logits = m.logits(hidden.view());
    t.head_seconds = std::min(t.head_seconds, seconds_since(head_start));
    t.prefill_seconds = std::min(t.prefill_seconds, seconds_since(start));
    if (logits.rows == 0) std::abort();
  }
  if (decode > 0) {
    const auto prompt = tokens_for(16, m.config().vocab_size);
    for (int r = 0; r < repeats; ++r) {
      KvCache cache(m.config(), 1, 16 + decode);
      m.forward_cached(prompt, 1, 16, cache);
      std::int32_t next = prompt.back();
      auto start = Clock::now();
      for (int s = 0; s < decode; ++s) {
        const std::int32_t token[] = {next};
        const Matrix logits = m.forward_cached(token, 1, 1, cache);
        next = static_cast<std::int32_t>(std::max_element(logits.data.begin(), logits.data.end()) - logits.data.begin());
      }
      t.decode_seconds = std::min(t.decode_seconds, seconds_since(start));
      Matrix one(1, m.config().hidden_size);
      std::fill(one.data.begin(), one.data.end(), 0.5f);
      start = Clock::now();
      for (int s = 0; s < decode; ++s) m.logits(one.view());
      t.decode_head_seconds = std::min(t.decode_head_seconds, seconds_since(start));
    }
  }
  return t;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double load_average() {
  std::ifstream in("/proc/loadavg");
  double one_minute = -1;
  in >> one_minute;
  return one_minute;
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

}  // namespace

int main(int argc, char** argv) {
  microscale::core::restart_with_faster_openblas_kernels(argv);  // its BLAS figures with the CLI's kernels
  CLI::App app{"CPU prefill / decode speed of the microscale runtime"};
  std::string model_dir = "models/wp-tiny";
  int threads = 2, seqlen = 512, batch = 1, synthetic_layers = 4, decode = 32, repeats = 3;
  int synthetic_seqlen = 512;
  app.add_option("--model", model_dir, "Model directory to load (empty to skip)");
  app.add_option("--threads", threads, "OpenMP + OpenBLAS threads");
  app.add_option("--seqlen", seqlen, "Prefill length for the loaded model");
  app.add_option("--batch", batch, "Sequences per prefill");
  app.add_option("--synthetic-layers", synthetic_layers, "Layers of the 1B-shaped model to build (0 to skip)");
  app.add_option("--synthetic-seqlen", synthetic_seqlen, "Prefill length for the 1B-shaped model");
  app.add_option("--decode", decode, "Decode steps timed (0 to skip)");
  app.add_option("--repeats", repeats, "Runs per measurement (best is reported)");
  CLI11_PARSE(app, argc, argv);
  microscale::model::set_num_threads(threads);
  fmt::print("CPU: {} ({} logical CPUs); threads {}; load average {:.1f}\n", cpu_name(),
             std::thread::hardware_concurrency(), threads, load_average());
  const auto wall_start = Clock::now();
  const double cpu_start = cpu_seconds();

  try {
    if (!model_dir.empty()) {
      const Model m = Model::load(model_dir);
      const Timing t = measure(m, batch, seqlen, decode, repeats);
      fmt::print("{} ({} layers, hidden {}): prefill {}x{} tokens: {:.0f} tok/s ({:.3f} s); decode {:.1f} tok/s\n",
                 model_dir, m.config().num_layers, m.config().hidden_size, batch, seqlen,
                 batch * seqlen / t.prefill_seconds, t.prefill_seconds, decode / t.decode_seconds);
    }
    if (synthetic_layers > 0) {
      const auto build = Clock::now();
      const Model m = synthetic_llama_1b(synthetic_layers);
      fmt::print("synthetic Llama-1B shape, {} of 16 layers built in {:.1f} s\n", synthetic_layers, seconds_since(build));
      const Timing t = measure(m, 1, synthetic_seqlen, decode > 0 ? std::min(decode, 16) : 0, std::min(repeats, 2));
      const double scale = 16.0 / synthetic_layers;
      const double prefill16 = t.head_seconds + scale * (t.prefill_seconds - t.head_seconds);
      fmt::print("  prefill 1x{}: measured {:.0f} tok/s with {} layers; extrapolated to 16 layers: {:.0f} tok/s "
                 "({:.2f} s, of which lm_head {:.2f} s)\n",
                 synthetic_seqlen, synthetic_seqlen / t.prefill_seconds, synthetic_layers,
                 synthetic_seqlen / prefill16, prefill16, t.head_seconds);
      if (decode > 0) {
        const int steps = std::min(decode, 16);
        const double decode16 = t.decode_head_seconds + scale * (t.decode_seconds - t.decode_head_seconds);
        fmt::print("  decode: measured {:.2f} tok/s with {} layers; extrapolated to 16 layers: {:.2f} tok/s\n",
                   steps / t.decode_seconds, synthetic_layers, steps / decode16);
      }
    }
    // On a shared machine the process may get far less than `threads` cores: say how much it got.
    fmt::print("CPU time / wall time: {:.2f} cores used on average; load average now {:.1f}\n",
               (cpu_seconds() - cpu_start) / seconds_since(wall_start), load_average());
  } catch (const std::exception& e) {
    fmt::print(stderr, "prefill_bench: {}\n", e.what());
    return 1;
  }
  return 0;
}
