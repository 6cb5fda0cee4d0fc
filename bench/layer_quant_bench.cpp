// Time of RTN, GPTQ and MR-GPTQ on the linears of one Llama-3.2-1B-shaped decoder layer
// (hidden 2048, 8 KV heads of 64, MLP 8192), with random weights and random SPD Hessians built from
// random correlated inputs. Prints a Markdown table (one row per layer x method x format).
//
//   OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 build/layer_quant_bench --formats mxfp4,nvfp4,int4
#include <time.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "microscale/core/error.hpp"
#include "microscale/core/openblas_kernels.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "microscale/quantizers/statistics.hpp"

namespace {

using namespace microscale;

struct Linear {
  std::string name;
  std::int64_t out, in;
};

Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed, double scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, static_cast<float>(scale));
  Matrix m(rows, cols);
  for (auto& v : m.data) v = normal(rng);
  return m;
}

// Inputs with neighbouring channels correlated and channel scales spread over ~e^{±1}, so the
// Hessian is dense and act-order has something to sort.
Matrix random_inputs(std::int64_t n, std::int64_t d, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> scale(static_cast<std::size_t>(d));
  for (auto& s : scale) s = std::exp(0.7f * normal(rng));
  Matrix z = random_matrix(n, d, seed + 1, 1.0);
  Matrix x(n, d);
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < d; ++j) {
      const float left = j > 0 ? z(i, j - 1) : 0.0f;
      x(i, j) = (z(i, j) + 0.5f * left) * scale[static_cast<std::size_t>(j)];
    }
  }
  return x;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// CPU seconds of the whole process (all threads): on a shared, oversubscribed machine this stays
// meaningful when wall time does not.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

formats::QuantSpec spec_for(const std::string& format) {
  if (format == "mxfp4") return formats::make_spec(formats::Format::mxfp4, 32, true, formats::ScaleSearch::absmax);
  if (format == "nvfp4") return formats::make_spec(formats::Format::nvfp4, 16, true, formats::ScaleSearch::absmax);
  if (format == "int4") return formats::make_spec(formats::Format::int4, 128, true, formats::ScaleSearch::absmax);
  fail("unknown format {} (mxfp4, nvfp4, int4)", format);
}

}  // namespace

int main(int argc, char** argv) {
  microscale::core::restart_with_faster_openblas_kernels(argv);  // its BLAS figures with the CLI's kernels
  CLI::App app{"Layer quantization speed: RTN / GPTQ / MR-GPTQ on a 1B-shaped decoder layer"};
  std::vector<std::string> formats_list{"mxfp4", "nvfp4", "int4"};
  std::vector<std::string> methods{"rtn", "gptq", "mr_gptq"};
  std::int64_t calibration_rows = 2048;
  int rotation_block = 128;
  bool objective = false;
  bool small = false;
  app.add_option("--formats", formats_list, "mxfp4, nvfp4, int4 (int4: symmetric, group 128)")->delimiter(',');
  app.add_option("--methods", methods, "rtn, gptq, mr_gptq")->delimiter(',');
  app.add_option("--calibration-rows", calibration_rows, "input rows behind each random Hessian");
  app.add_option("--rotation-block", rotation_block, "MR-GPTQ Hadamard block size");
  app.add_flag("--objective", objective, "also print each result's objective relative to RTN");
  app.add_flag("--small", small, "a quarter-size layer (quick check)");
  CLI11_PARSE(app, argc, argv);

  try {
    const std::int64_t hidden = small ? 512 : 2048, kv = small ? 128 : 512, mlp = small ? 2048 : 8192;
    const std::vector<Linear> layer{{"q_proj", hidden, hidden},   {"k_proj", kv, hidden},
                                    {"v_proj", kv, hidden},       {"o_proj", hidden, hidden},
                                    {"gate_proj", mlp, hidden},   {"up_proj", mlp, hidden},
                                    {"down_proj", hidden, mlp}};

    // One Hessian per input width (the timing does not depend on which inputs built it).
    fmt::print("| step | shape | wall s | CPU s |\n|---|---|---|---|\n");
    std::vector<Eigen::MatrixXd> hessians;
    for (const std::int64_t d : {hidden, mlp}) {
      const Matrix x = random_inputs(calibration_rows, d, static_cast<std::uint32_t>(d));
      quantizers::InputStatistics stats(d);
      const auto start = std::chrono::steady_clock::now();
      const double cpu_start = cpu_seconds();
      stats.add(x.view());
      fmt::print("| input statistics | {} rows x {} | {:.2f} | {:.2f} |\n", calibration_rows, d, seconds_since(start),
                 cpu_seconds() - cpu_start);
      hessians.push_back(stats.hessian());
    }

    fmt::print("\n| linear | shape | method | format | wall s | CPU s |{}\n|---|---|---|---|---|---|{}\n",
               objective ? " objective / RTN |" : "", objective ? "---|" : "");
    double totals[3][3] = {};
    double cpu_totals[3][3] = {};
    for (const Linear& linear : layer) {
      const Matrix w = random_matrix(linear.out, linear.in, static_cast<std::uint32_t>(linear.out * 31 + linear.in), 0.02);
      const Eigen::MatrixXd& h = hessians[linear.in == hidden ? 0 : 1];
      for (std::size_t f = 0; f < formats_list.size(); ++f) {
        const formats::QuantSpec spec = spec_for(formats_list[f]);
        double rtn_objective = 0;
        for (std::size_t m = 0; m < methods.size(); ++m) {
          const auto start = std::chrono::steady_clock::now();
          const double cpu_start = cpu_seconds();
          quantizers::LayerResult result;
          if (methods[m] == "rtn") {
            result = quantizers::rtn(w.view(), spec, {}, linear.name);
          } else if (methods[m] == "gptq") {
            result = quantizers::gptq(w.view(), h, spec, {}, linear.name);
          } else if (methods[m] == "mr_gptq") {
            result = quantizers::mr_gptq(w.view(), h, spec, {rotation_block, true, 1}, {}, linear.name);
          } else {
            fail("unknown method {} (rtn, gptq, mr_gptq)", methods[m]);
          }
          const double seconds = seconds_since(start);
          const double cpu = cpu_seconds() - cpu_start;
          if (m < 3 && f < 3) {
            totals[m][f] += seconds;
            cpu_totals[m][f] += cpu;
          }
          std::string extra;
          if (objective) {
            const double obj = quantizers::layer_objective(
                w.view(), quantizers::dequantized_in_original_basis(result).view(), h);
            if (methods[m] == "rtn") rtn_objective = obj;
            extra = rtn_objective > 0 ? fmt::format(" {:.3f} |", obj / rtn_objective) : " |";
          }
          fmt::print("| {} | {}x{} | {} | {} | {:.2f} | {:.2f} |{}\n", linear.name, linear.out, linear.in, methods[m],
                     formats::describe(spec), seconds, cpu, extra);
          std::fflush(stdout);
        }
      }
    }
    fmt::print("\n| method | format | whole layer, wall s | CPU s |\n|---|---|---|---|\n");
    for (std::size_t m = 0; m < methods.size() && m < 3; ++m) {
      for (std::size_t f = 0; f < formats_list.size() && f < 3; ++f) {
        fmt::print("| {} | {} | {:.2f} | {:.2f} |\n", methods[m], formats_list[f], totals[m][f], cpu_totals[m][f]);
      }
    }
  } catch (const Error& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
  return 0;
}
