// MR-GPTQ (and GPTQ) time for the seven linears of one Llama-3-8B-shaped decoder layer, with the
// factorisation and lazy updates on the host (LAPACK/OpenBLAS, all cores) against the GPU
// (cuSOLVER/cuBLAS), in the same run; the column loop and quantizer run on the host in both. Before
// that, the time to accumulate the layer's input statistics (InputStatistics: H = 2/n X̂ᵀX̂, and with
// --qep QEP's cross term) on the host (OpenBLAS) against the GPU (cuBLAS, FP64 sums kept on the device)
// for the four inputs of the layer (q/k/v, o, gate/up: 4096 wide; down: 14336), plus one longer run
// of a 4096-wide input (--big-tokens), and the layer's total of statistics and GPTQ.
//
//   cuda_gptq_bench [--tokens 2048] [--big-tokens 16384] [--qep] [--method mr-gptq|gptq]
//                   [--format mxfp4|nvfp4] [--out table.md]
//
// Weights are Gaussian, inputs Gaussian with per-channel scales (a Hessian far from diagonal, so the
// factorisation does real work); q/k/v share one Hessian, gate/up another, as in the pipeline. GPTQ
// runs on the host's Hessians, so its table is comparable with runs that predate the device statistics.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <fmt/format.h>

#include "microscale/core/openblas_kernels.hpp"
#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/cuda/gptq_device.hpp"
#include "microscale/cuda/statistics_device.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "llama_shapes.hpp"
#include "microscale/quantizers/hessian_ops.hpp"
#include "microscale/quantizers/statistics.hpp"

namespace {

using namespace microscale;

Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  Matrix m(rows, cols);
  for (auto& v : m.data) v = normal(rng);
  return m;
}

// Calibration inputs of one linear group: Gaussian rows with log-normal channel scales; with `qep`
// also a full-precision stream 5% away from it.
struct Inputs {
  Matrix x_hat, x;
};

Inputs inputs_for(std::int64_t dim, std::int64_t tokens, std::uint32_t seed, bool qep) {
  Inputs in{random_matrix(tokens, dim, seed, 1.0f), {}};
  std::mt19937 rng(seed + 1);
  std::lognormal_distribution<float> scale(0.0f, 0.7f);
  std::vector<float> channel(static_cast<std::size_t>(dim));
  for (auto& s : channel) s = scale(rng);
  for (std::int64_t r = 0; r < tokens; ++r)
    for (std::int64_t c = 0; c < dim; ++c) in.x_hat(r, c) *= channel[static_cast<std::size_t>(c)];
  if (qep) {
    in.x = random_matrix(tokens, dim, seed + 2, 0.05f);
    for (std::size_t k = 0; k < in.x.data.size(); ++k) in.x.data[k] = in.x_hat.data[k] * (1.0f + in.x.data[k]);
  }
  return in;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// One accumulation, host and device, each timed from construction to the Hessian in host memory.
struct TimedStatistics {
  Eigen::MatrixXd hessian;  // the host's
  double host_s = 0, device_s = 0;
  double difference = 0;  // max |H_gpu - H_host| / max |H_host|
};

TimedStatistics timed_statistics(const Inputs& in, quantizers::StatisticsProducts& device_products) {
  const bool qep = !in.x.data.empty();
  const std::int64_t dim = in.x_hat.cols;
  const auto run = [&](quantizers::StatisticsProducts* products, double& seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    quantizers::InputStatistics stats(dim, qep, products);
    const double constructed = seconds_since(t0);
    stats.add(in.x_hat.view(), qep ? in.x.view() : ConstMatrixView{});
    const double added = seconds_since(t0);
    const Eigen::MatrixXd& h = stats.hessian();
    if (qep) (void)stats.cross();
    seconds = seconds_since(t0);
    std::fprintf(stderr, "  %s: construct %.3f s, add %.3f s, read %.3f s\n", products ? "GPU" : "host", constructed,
                 added - constructed, seconds - added);
    return h;  // copied after the clock stopped
  };
  TimedStatistics t;
  t.hessian = run(nullptr, t.host_s);
  const Eigen::MatrixXd device = run(&device_products, t.device_s);
  t.difference = (device - t.hessian).cwiseAbs().maxCoeff() / t.hessian.cwiseAbs().maxCoeff();
  return t;
}

std::string device_name() {
  cudaDeviceProp properties{};
  cuda::check_cuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  return properties.name;
}

}  // namespace

int main(int argc, char** argv) {
  microscale::core::restart_with_faster_openblas_kernels(argv);  // its BLAS figures with the CLI's kernels
  CLI::App app("Statistics and MR-GPTQ of one 8B-shaped decoder layer: host vs GPU");
  std::int64_t tokens = 2048, big_tokens = 16384;
  bool qep = false;
  std::string method = "mr-gptq", format = "mxfp4", out;
  app.add_option("--tokens", tokens, "calibration tokens behind each Hessian")->capture_default_str();
  app.add_option("--big-tokens", big_tokens, "tokens of the extra 4096-wide statistics run (0: none)")
      ->capture_default_str();
  app.add_flag("--qep", qep, "statistics with QEP's cross term (a full-precision stream beside the quantized one)");
  app.add_option("--method", method, "mr-gptq | gptq")->capture_default_str();
  app.add_option("--format", format, "mxfp4 | nvfp4")->capture_default_str();
  app.add_option("--out", out, "also write the markdown table here");
  CLI11_PARSE(app, argc, argv);

  const char* why = nullptr;
  if (cuda::device_count(&why) == 0) {
    std::fprintf(stderr, "cuda_gptq_bench: no CUDA device (%s)\n", why ? why : "none");
    return 2;
  }
  const formats::Format f = formats::parse_format(format);
  const formats::QuantSpec spec = formats::make_spec(f, f == formats::Format::mxfp4 ? 32 : 16, true, formats::ScaleSearch::mse);
  const rotation::RotationSpec rotation{f == formats::Format::mxfp4 ? 32 : 16, false, 0};
  const model::ModelConfig config = bench::llama3_8b_config(1);
  const std::vector<bench::LayerLinear> linears = bench::layer_linears(config);
  const auto device_products = cuda::make_device_statistics_products();
  {
    // cuBLAS loads its kernels on first use: keep that one-off cost out of the timings.
    quantizers::InputStatistics warm_up(64, qep, device_products.get());
    const Inputs in = inputs_for(64, 256, 99, qep);
    warm_up.add(in.x_hat.view(), qep ? in.x.view() : ConstMatrixView{});
    (void)warm_up.hessian();
  }
  struct StatisticsRow {
    const char* name;
    std::int64_t dim, tokens;
    TimedStatistics t;
  };
  std::vector<StatisticsRow> statistics;
  const std::vector<bench::LayerInput> inputs = bench::layer_inputs(config);  // one Hessian per input group
  std::vector<Eigen::MatrixXd> hessians;
  for (std::size_t i = 0; i < std::size(inputs); ++i) {
    const std::int64_t dim = inputs[i].width;
    const char* name = inputs[i].name.c_str();
    std::fprintf(stderr, "statistics of the %s (%lld x %lld)...\n", name, static_cast<long long>(tokens),
                 static_cast<long long>(dim));
    TimedStatistics t = timed_statistics(inputs_for(dim, tokens, static_cast<std::uint32_t>(i + 1), qep), *device_products);
    hessians.push_back(std::move(t.hessian));
    statistics.push_back({name, dim, tokens, std::move(t)});
  }
  if (big_tokens > 0) {
    std::fprintf(stderr, "statistics of a 4096-wide input from %lld tokens...\n", static_cast<long long>(big_tokens));
    TimedStatistics t = timed_statistics(inputs_for(4096, big_tokens, 5, qep), *device_products);
    t.hessian.resize(0, 0);
    statistics.push_back({"4096-wide input, more tokens", 4096, big_tokens, std::move(t)});
  }
  const auto device_algebra = cuda::make_device_linear_algebra();

  std::string table = fmt::format(
      "{} {} on one Llama-3-8B-shaped layer ({} calibration tokens), device {}\n\n"
      "| linear | shape | host s | GPU s | speedup | objective GPU / host |\n|---|---|---|---|---|---|\n",
      method, format, tokens, device_name());
  double host_total = 0, device_total = 0;
  for (const bench::LayerLinear& l : linears) {
    const Matrix w = random_matrix(l.rows, l.cols, 100 + static_cast<std::uint32_t>(l.rows + l.cols), 0.02f);
    const Eigen::MatrixXd& h = hessians[l.input];
    const auto run = [&](quantizers::GptqLinearAlgebra* algebra, double& seconds) {
      quantizers::GptqOptions options;
      options.linear_algebra = algebra;
      const auto t0 = std::chrono::steady_clock::now();
      quantizers::LayerResult r = method == "gptq" ? quantizers::gptq(w.view(), h, spec, options, l.name)
                                                   : quantizers::mr_gptq(w.view(), h, spec, rotation, options, l.name);
      seconds = seconds_since(t0);
      return r;
    };
    double host_s = 0, device_s = 0;
    const auto host = run(nullptr, host_s);
    const auto device = run(device_algebra.get(), device_s);
    Matrix rotated = w;
    rotation::rotate_rows(rotated.view(), host.rotation);
    const Eigen::MatrixXd hr = method == "gptq" ? h : quantizers::detail::conjugate_by_rotation(h, rotation);
    const double objective_ratio = quantizers::layer_objective(rotated.view(), device.dequantized.view(), hr) /
                                   quantizers::layer_objective(rotated.view(), host.dequantized.view(), hr);
    host_total += host_s;
    device_total += device_s;
    table += fmt::format("| {} | {}x{} | {:.2f} | {:.2f} | {:.2f}x | {:.9f} |\n", l.name, l.rows, l.cols, host_s,
                         device_s, host_s / device_s, objective_ratio);
    std::fprintf(stderr, "%s done (host %.2f s, GPU %.2f s)\n", l.name.c_str(), host_s, device_s);
  }
  table += fmt::format("| **layer** | | {:.2f} | {:.2f} | {:.2f}x | |\n", host_total, device_total,
                       host_total / device_total);

  table += fmt::format(
      "\nInput statistics of the same layer ({}), host (OpenBLAS) vs GPU (cuBLAS FP32 products, FP64 sums on "
      "the device), each from construction to the Hessian in host memory\n\n"
      "| statistics | tokens x dim | host s | GPU s | speedup | max abs(H GPU - H host) / max abs(H host) |\n"
      "|---|---|---|---|---|---|\n",
      qep ? "H and QEP's cross term" : "H = 2/n X^T X");
  const auto row = [&](const StatisticsRow& r) {
    table += fmt::format("| {} | {}x{} | {:.3f} | {:.3f} | {:.2f}x | {:.2e} |\n", r.name, r.tokens, r.dim, r.t.host_s,
                         r.t.device_s, r.t.host_s / r.t.device_s, r.t.difference);
  };
  double statistics_host = 0, statistics_device = 0;
  for (std::size_t i = 0; i < std::size(inputs); ++i) {
    row(statistics[i]);
    statistics_host += statistics[i].t.host_s;
    statistics_device += statistics[i].t.device_s;
  }
  table += fmt::format("| **layer statistics** | | {:.2f} | {:.2f} | {:.2f}x | |\n", statistics_host,
                       statistics_device, statistics_host / statistics_device);
  table += fmt::format("| **layer: statistics + {}** | | {:.2f} | {:.2f} | {:.2f}x | |\n", method,
                       statistics_host + host_total, statistics_device + device_total,
                       (statistics_host + host_total) / (statistics_device + device_total));
  for (std::size_t i = std::size(inputs); i < statistics.size(); ++i) row(statistics[i]);  // not in the totals
  std::fputs(table.c_str(), stdout);
  if (!out.empty()) std::ofstream(out) << table;
  return 0;
}
