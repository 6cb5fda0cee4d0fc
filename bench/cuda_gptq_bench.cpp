// MR-GPTQ (and GPTQ) time for the seven linears of one Llama-3-8B-shaped decoder layer, with the
// factorisation and lazy updates on the host (LAPACK/OpenBLAS, all cores) against the GPU
// (cuSOLVER/cuBLAS), in the same run; the column loop and quantizer run on the host in both.
//
//   cuda_gptq_bench [--tokens 2048] [--method mr-gptq|gptq] [--format mxfp4|nvfp4] [--out table.md]
//
// Weights are Gaussian, inputs Gaussian with per-channel scales (a Hessian far from diagonal, so the
// factorisation does real work); q/k/v share one Hessian, gate/up another, as in the pipeline.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <fmt/format.h>

#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/cuda/gptq_device.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "microscale/quantizers/hessian_ops.hpp"
#include "microscale/quantizers/statistics.hpp"

namespace {

using namespace microscale;

struct Linear {
  const char* name;
  std::int64_t rows, cols;
  int hessian;  // 0: hidden-size input (q/k/v/gate/up, o is separate), see make_hessians
};

Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed, float sigma) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  Matrix m(rows, cols);
  for (auto& v : m.data) v = normal(rng);
  return m;
}

Eigen::MatrixXd hessian_for(std::int64_t dim, std::int64_t tokens, std::uint32_t seed) {
  Matrix x = random_matrix(tokens, dim, seed, 1.0f);
  std::mt19937 rng(seed + 1);
  std::lognormal_distribution<float> scale(0.0f, 0.7f);
  std::vector<float> channel(static_cast<std::size_t>(dim));
  for (auto& s : channel) s = scale(rng);
  for (std::int64_t r = 0; r < tokens; ++r)
    for (std::int64_t c = 0; c < dim; ++c) x(r, c) *= channel[static_cast<std::size_t>(c)];
  quantizers::InputStatistics stats(dim);
  stats.add(x.view());
  return stats.hessian();
}

std::string device_name() {
  cudaDeviceProp properties{};
  cuda::check_cuda(cudaGetDeviceProperties(&properties, 0), "cudaGetDeviceProperties");
  return properties.name;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("MR-GPTQ on one 8B-shaped decoder layer: host vs GPU linear algebra");
  std::int64_t tokens = 2048;
  std::string method = "mr-gptq", format = "mxfp4", out;
  app.add_option("--tokens", tokens, "calibration tokens behind each Hessian")->capture_default_str();
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
  const Linear linears[] = {{"q_proj", 4096, 4096, 0},   {"k_proj", 1024, 4096, 0}, {"v_proj", 1024, 4096, 0},
                            {"o_proj", 4096, 4096, 1},   {"gate_proj", 14336, 4096, 2},
                            {"up_proj", 14336, 4096, 2}, {"down_proj", 4096, 14336, 3}};
  std::fprintf(stderr, "building Hessians from %lld tokens...\n", static_cast<long long>(tokens));
  const Eigen::MatrixXd hessians[] = {hessian_for(4096, tokens, 1), hessian_for(4096, tokens, 2),
                                      hessian_for(4096, tokens, 3), hessian_for(14336, tokens, 4)};
  const auto device_algebra = cuda::make_device_linear_algebra();

  std::string table = fmt::format(
      "{} {} on one Llama-3-8B-shaped layer ({} calibration tokens), device {}\n\n"
      "| linear | shape | host s | GPU s | speedup | objective GPU / host |\n|---|---|---|---|---|---|\n",
      method, format, tokens, device_name());
  double host_total = 0, device_total = 0;
  for (const Linear& l : linears) {
    const Matrix w = random_matrix(l.rows, l.cols, 100 + static_cast<std::uint32_t>(l.rows + l.cols), 0.02f);
    const Eigen::MatrixXd& h = hessians[l.hessian];
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
    std::fprintf(stderr, "%s done (host %.2f s, GPU %.2f s)\n", l.name, host_s, device_s);
  }
  table += fmt::format("| **layer** | | {:.2f} | {:.2f} | {:.2f}x | |\n", host_total, device_total,
                       host_total / device_total);
  std::fputs(table.c_str(), stdout);
  if (!out.empty()) std::ofstream(out) << table;
  return 0;
}
