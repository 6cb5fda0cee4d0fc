// Theory bench: relative MSE ||x - q(x)||^2 / ||x||^2 of round-to-nearest quantization on i.i.d.
// synthetic data (Normal and Laplace), for every format and scale rule, with and without block
// Hadamard rotations; then the throughput of quantize() and of the rotation on this machine.
// Prints markdown (docs/benchmarks.md holds a run).
//
//   theory_bench [--log2-values 22] [--cols 4096] [--seed 20240601] [--min-seconds 0.5]
#include <omp.h>

#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace mf = microscale::formats;
namespace rot = microscale::rotation;
using microscale::Matrix;

namespace {

struct Config {
  std::string label;
  mf::QuantSpec spec;
};

std::vector<Config> configs() {
  using mf::Format, mf::ScaleSearch, mf::MxRounding;
  std::vector<Config> c;
  for (auto search : {ScaleSearch::absmax, ScaleSearch::mse}) {
    const std::string s{mf::scale_search_name(search)};
    c.push_back({"MXFP4 ocp, " + s, mf::make_spec(Format::mxfp4, 32, true, search, MxRounding::ocp)});
    c.push_back({"MXFP4 even, " + s, mf::make_spec(Format::mxfp4, 32, true, search, MxRounding::even)});
    c.push_back({"MXFP4 no_clip, " + s, mf::make_spec(Format::mxfp4, 32, true, search, MxRounding::no_clip)});
    c.push_back({"NVFP4, " + s, mf::make_spec(Format::nvfp4, 16, true, search)});
    c.push_back({"INT4 g32 sym, " + s, mf::make_spec(Format::int4, 32, true, search)});
  }
  return c;
}

Matrix sample(const std::string& distribution, std::int64_t rows, std::int64_t cols, std::uint64_t seed) {
  Matrix m(rows, cols);
  std::mt19937_64 rng(seed);
  if (distribution == "Normal") {
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (auto& x : m.data) x = d(rng);
  } else {  // Laplace(0, 1): a random sign times an Exp(1) magnitude
    std::exponential_distribution<float> d(1.0f);
    for (auto& x : m.data) {
      const float magnitude = d(rng);
      x = (rng() & 1u) ? magnitude : -magnitude;
    }
  }
  return m;
}

struct Timing {
  double wall = 0.0;  // seconds per call
  double cpu = 0.0;   // process CPU seconds per call (all threads)
};

// Wall and CPU time per call. On a shared machine the wall figure depends on the load; the CPU
// figure (GB per CPU-second, i.e. per fully used core) mostly does not.
template <typename F>
Timing time_per_call(F call, double min_seconds) {
  call();  // warm-up
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  double elapsed = 0.0;
  do {
    call();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  } while (elapsed < min_seconds);
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return {elapsed / calls, cpu / calls};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Relative MSE of RTN on synthetic data, and quantize/rotation throughput"};
  int log2_values = 22;
  std::int64_t cols = 4096;
  std::uint64_t seed = 20240601;
  double min_seconds = 0.5;
  bool skip_throughput = false;
  app.add_option("--log2-values", log2_values, "log2 of the number of samples per distribution")->check(CLI::Range(12, 28));
  app.add_option("--cols", cols, "row length (a multiple of 128)");
  app.add_option("--seed", seed, "random seed");
  app.add_option("--min-seconds", min_seconds, "minimum timing window per throughput figure");
  app.add_flag("--skip-throughput", skip_throughput, "only print the error tables");
  CLI11_PARSE(app, argc, argv);
  if (cols % 128 != 0 || (std::int64_t{1} << log2_values) % cols != 0) {
    fmt::print(stderr, "--cols must be a multiple of 128 that divides 2^--log2-values\n");
    return 2;
  }
  const std::int64_t rows = (std::int64_t{1} << log2_values) / cols;
  const std::vector<int> blocks = {0, 16, 32, 64, 128};
  const auto all = configs();

  fmt::print("## Relative MSE of RTN: {} x {} = 2^{} i.i.d. values per distribution, seed {}\n\n", rows, cols,
             log2_values, seed);
  fmt::print("Rotations are block Hadamard H_b / sqrt(b) along rows (no random signs: for i.i.d. symmetric\n"
             "data they do not change the distribution). Error is measured in the rotated basis, which is\n"
             "the same as in the original basis because the rotation is orthogonal.\n\n");
  for (const std::string distribution : {"Normal", "Laplace"}) {
    const Matrix original = sample(distribution, rows, cols, seed + (distribution == "Normal" ? 0 : 1));
    std::vector<std::vector<double>> table(all.size(), std::vector<double>(blocks.size()));
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      Matrix x = original;
      if (blocks[b] > 0) rot::rotate_rows(x.view(), rot::RotationSpec{blocks[b], false, 0});
      for (std::size_t c = 0; c < all.size(); ++c)
        table[c][b] = mf::relative_error(x.view(), mf::quantize(x.view(), all[c].spec, distribution));
    }
    fmt::print("### {}\n\n| format, scale | none | H16 | H32 | H64 | H128 |\n|---|---|---|---|---|---|\n", distribution);
    for (std::size_t c = 0; c < all.size(); ++c) {
      fmt::print("| {} |", all[c].label);
      for (double v : table[c]) fmt::print(" {:.5f} |", v);
      fmt::print("\n");
    }
    fmt::print("\n");
  }
  if (skip_throughput) return 0;

  const Matrix x = sample("Normal", rows, cols, seed);
  const double gigabytes = static_cast<double>(x.data.size()) * sizeof(float) / 1e9;
  fmt::print("## Throughput: {} OpenMP threads, {} hardware threads, {} MiB of FP32 input\n\n", omp_get_max_threads(),
             std::thread::hardware_concurrency(), x.data.size() * sizeof(float) >> 20);
  fmt::print("GB/s = FP32 input bytes / wall time with all threads; GB/cpu-s = the same per CPU-second\n"
             "(per fully used core), which is less sensitive to other load on the machine.\n\n");
  fmt::print("| operation | absmax GB/s | absmax GB/cpu-s | mse GB/s | mse GB/cpu-s |\n|---|---|---|---|---|\n");
  const std::vector<Config> speed = {
      {"quantize MXFP4 (ocp)", mf::make_spec(mf::Format::mxfp4, 32, true, mf::ScaleSearch::absmax)},
      {"quantize NVFP4", mf::make_spec(mf::Format::nvfp4, 16, true, mf::ScaleSearch::absmax)},
      {"quantize INT4 g32 sym", mf::make_spec(mf::Format::int4, 32, true, mf::ScaleSearch::absmax)},
      {"quantize INT4 g128 asym", mf::make_spec(mf::Format::int4, 128, false, mf::ScaleSearch::absmax)},
  };
  for (const Config& c : speed) {
    mf::QuantSpec mse = c.spec;
    mse.scale = mf::ScaleSearch::mse;
    const Timing t_abs = time_per_call([&] { mf::quantize(x.view(), c.spec); }, min_seconds);
    const Timing t_mse = time_per_call([&] { mf::quantize(x.view(), mse); }, min_seconds);
    fmt::print("| {} | {:.2f} | {:.2f} | {:.3f} | {:.3f} |\n", c.label, gigabytes / t_abs.wall, gigabytes / t_abs.cpu,
               gigabytes / t_mse.wall, gigabytes / t_mse.cpu);
  }
  {
    const auto q = mf::quantize(x.view(), speed[1].spec);
    Matrix out(rows, cols);
    const Timing t = time_per_call([&] { mf::dequantize(q, out.view()); }, min_seconds);
    fmt::print("| dequantize NVFP4 (bytes of FP32 output) | {:.2f} | {:.2f} | | |\n", gigabytes / t.wall, gigabytes / t.cpu);
  }
  fmt::print("\n| rotation (in place) | GB/s | GB/cpu-s |\n|---|---|---|\n");
  for (int block : {16, 32, 64, 128}) {
    Matrix y = x;
    const Timing t = time_per_call([&] { rot::rotate_rows(y.view(), rot::RotationSpec{block, true, 7}); }, min_seconds);
    fmt::print("| Hadamard block {} (random signs) | {:.2f} | {:.2f} |\n", block, gigabytes / t.wall, gigabytes / t.cpu);
  }
  return 0;
}
