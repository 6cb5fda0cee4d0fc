// Standalone GPU driver: the checks of tests/cuda/fp4_checks.hpp (PASS/FAIL lines) and the FP4 kernel
// benchmark (markdown tables). scripts/gpu-run.sh builds it with plain nvcc on machines that lack the
// library's Debian dependencies; the CPU references are the real formats/rotation sources.
//
//   fp4_driver --checks [--quick]        run the checks, exit 1 if any fails
//   fp4_driver --bench [--out FILE]      run the benchmark, print tables (and write them to FILE);
//              [--sections LIST]         only some tables: w4a16 (with the launch and slab sweeps), hadamard,
//                                        activations; gemv (batch 1 and 4 only) and tc (the tensor-core
//                                        kernel at batch 1 to 64), not in the default set
//   fp4_driver --profile                 a few plain W4A16 launches to run under ncu
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <random>
#include <span>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "cuda/fp4_checks.hpp"
#include "llama_dims.hpp"
#include "microscale/core/error.hpp"

namespace ms = microscale;
namespace mc = microscale::cuda;
using ms::formats::Format;

namespace {

#define CK(call) mc::check_cuda((call), #call)

int run_checks(bool quick) {
  const auto results = mc::checks::run_all(quick);
  int failed = 0;
  for (const auto& r : results) {
    std::printf("%s  %s: %s\n", r.pass ? "PASS" : "FAIL", r.name.c_str(), r.detail.c_str());
    failed += r.pass ? 0 : 1;
  }
  std::printf("checks: %zu run, %d failed\n", results.size(), failed);
  return failed == 0 ? 0 : 1;
}

// ---- timing ----------------------------------------------------------------------------------
// `body(i)` enqueues one operation on `stream` (i rotates among input copies so that repeated runs
// stream from HBM, not L2). Captured as a CUDA graph of `per_graph` operations so that launch gaps do
// not count; the median over `reps` graph replays, divided by per_graph, is the time per operation.
double time_us(cudaStream_t stream, const std::function<void(int)>& body, int per_graph = 20, int reps = 25) {
  for (int i = 0; i < 3; ++i) body(i);  // warm-up outside the graph (module load, workspace, cuBLAS)
  CK(cudaStreamSynchronize(stream));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  for (int i = 0; i < per_graph; ++i) body(i);
  CK(cudaStreamEndCapture(stream, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  CK(cudaGraphLaunch(exec, stream));  // warm replay
  cudaEvent_t start, stop;
  CK(cudaEventCreate(&start));
  CK(cudaEventCreate(&stop));
  std::vector<float> ms_list;
  for (int r = 0; r < reps; ++r) {
    CK(cudaEventRecord(start, stream));
    CK(cudaGraphLaunch(exec, stream));
    CK(cudaEventRecord(stop, stream));
    CK(cudaEventSynchronize(stop));
    float t = 0;
    CK(cudaEventElapsedTime(&t, start, stop));
    ms_list.push_back(t);
  }
  CK(cudaEventDestroy(start));
  CK(cudaEventDestroy(stop));
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  std::sort(ms_list.begin(), ms_list.end());
  return 1000.0 * ms_list[ms_list.size() / 2] / per_graph;
}

// Uniform values in [-scale, scale) from a xorshift stream (fast enough for gigabytes of weights).
std::vector<std::uint16_t> random_bf16(std::size_t n, std::uint32_t seed, float scale) {
  std::uint64_t state = 0x9E3779B97F4A7C15ULL * (seed + 1);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const float u = static_cast<float>(state >> 40) * 0x1p-24f * 2.0f - 1.0f;
    x = ms::formats::bf16_from_float(u * scale);
  }
  return v;
}

// Random codes and plausible scales straight into the device layout (the benchmark does not need a
// CPU quantization of 1.9 GB of weights; the checks cover correctness).
mc::Fp4Weight random_fp4(Format f, std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * cols / 2));
  std::uint64_t state = 0x2545F4914F6CDD1DULL * (seed + 1);
  for (auto& c : codes) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    c = static_cast<std::uint8_t>(state >> 56);
  }
  const int group = f == Format::mxfp4 ? 32 : 16;
  std::vector<std::uint8_t> scales(static_cast<std::size_t>(rows * cols / group));
  std::uniform_int_distribution<int> sc(f == Format::mxfp4 ? 118 : 0x30, f == Format::mxfp4 ? 122 : 0x70);
  for (auto& s : scales) s = static_cast<std::uint8_t>(sc(rng));
  return mc::upload_weight(f, rows, cols, codes, scales, 1000.0f);
}

struct Markdown {
  std::string text;
  bool quiet = false;  // collect only
  void line(const char* fmt_text, ...) __attribute__((format(printf, 2, 3))) {
    char buf[1024];
    va_list args;
    va_start(args, fmt_text);
    std::vsnprintf(buf, sizeof buf, fmt_text, args);
    va_end(args);
    if (!quiet) {
      std::printf("%s\n", buf);
      std::fflush(stdout);
    }
    text += buf;
    text += "\n";
  }
};

// Slab sizes (weight rows) that the benchmark times besides the default rule, for the large-batch path.
constexpr std::int64_t kSlabSweep[] = {512, 1024, 2048, 4096};

constexpr double kL2Flush = 160.0 * 1024 * 1024;  // rotate copies until this many bytes are touched (> 3x L2)

int copies_for(double bytes) { return std::clamp(static_cast<int>(kL2Flush / bytes) + 1, 1, 20); }

// Enough random BF16 [n, k] weights (seeds 77, 78, ...) that rotating among them touches kL2Flush bytes.
std::vector<mc::DeviceArray<std::uint16_t>> bf16_weight_copies(std::int64_t n, std::int64_t k) {
  std::vector<mc::DeviceArray<std::uint16_t>> copies;
  for (int c = 0; c < copies_for(2.0 * n * k); ++c) {
    copies.emplace_back(static_cast<std::size_t>(n * k));
    copies.back().upload(random_bf16(static_cast<std::size_t>(n * k), 77 + c, 0.02f));
  }
  return copies;
}

// The same for random_fp4 weights (seeds seed, seed + 1, ...), repacked into the tile layout if asked.
std::vector<mc::Fp4Weight> fp4_weight_copies(Format f, std::int64_t n, std::int64_t k, std::uint32_t seed, bool tiles,
                                             cudaStream_t stream) {
  std::vector<mc::Fp4Weight> copies;
  copies.push_back(random_fp4(f, n, k, seed));
  const int count = copies_for(static_cast<double>(copies.front().bytes()));
  for (int i = 1; i < count; ++i) copies.push_back(random_fp4(f, n, k, seed + i));
  if (tiles)
    for (auto& w : copies) CK(mc::to_mma_layout(w, stream) ? cudaSuccess : cudaErrorInvalidValue);
  return copies;
}

// Which tables --bench prints (--sections w4a16,hadamard,activations; all by default): the GPU
// machine is scarce, so a run can time only what a change touched.
struct Sections {
  bool w4a16 = true, hadamard = true, activations = true, gemv = false, tc = false;
};

bool parse_sections(const std::string& list, Sections& s) {
  s = Sections{false, false, false, false, false};
  std::size_t at = 0;
  while (at <= list.size()) {
    const std::size_t comma = std::min(list.find(',', at), list.size());
    const std::string name = list.substr(at, comma - at);
    if (name == "w4a16") s.w4a16 = true;
    else if (name == "hadamard") s.hadamard = true;
    else if (name == "activations") s.activations = true;
    else if (name == "gemv") s.gemv = true;
    else if (name == "tc") s.tc = true;
    else return false;
    at = comma + 1;
  }
  return true;
}

int run_bench(const char* out_path, const Sections& sections) {
  Markdown md;
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  md.line("# FP4 kernel benchmark on %s (%d SMs, L2 %d MB)", prop.name, prop.multiProcessorCount,
          prop.l2CacheSize / (1024 * 1024));
  md.line("%s", "");
  md.line("Times are medians of 25 replays of a CUDA graph of 20 operations (CUDA events), inputs rotated "
          "among copies so that more than 160 MB is touched between reuses (L2 is not warm).");
  md.line("%s", "");

  // Copy bandwidth: bytes read + bytes written.
  const std::size_t copy_bytes = 1ull << 30;
  mc::DeviceArray<std::uint8_t> src(copy_bytes), dst(copy_bytes);
  CK(cudaMemset(src.data(), 1, copy_bytes));
  const double copy_us = time_us(stream, [&](int) {
    CK(cudaMemcpyAsync(dst.data(), src.data(), copy_bytes, cudaMemcpyDeviceToDevice, stream));
  }, 5, 11);
  const double copy_gbs = 2.0 * copy_bytes / (copy_us * 1e3);
  md.line("Device-to-device copy of 1 GiB: %.1f us, **%.0f GB/s** (read + write); the fractions below are of this.",
          copy_us, copy_gbs);
  md.line("%s", "");

  mc::Blas blas;
  mc::GemvWorkspace workspace;
  Markdown splits_md, slabs_md;  // collected during the main table, printed after it
  splits_md.quiet = true;
  slabs_md.quiet = true;
  using Shape = ms::bench::LinearShapeRow;
  const auto& shapes = ms::bench::kLlama3LinearShapes;
  const std::int64_t batches[] = {1, 4, 16, 64, 2048};

  if (sections.w4a16) {
    md.line("## W4A16 linear y = x W^T (BF16 x and y, FP32 accumulation)");
    md.line("%s", "");
    md.line("FP4 paths: `tc` = the tensor-core kernel on the tile layout (batch <= 64 per pass); `gemv` = the FP32 GEMV on "
            "the row layout (batch <= 16 per pass; batch 64 = 4 passes); `deq+cuBLAS` = dequantize the FP4 weight to BF16 "
            "and call cuBLAS (the large-batch path; timed together); `slab deq+cuBLAS (auto R rows)` = the same in slabs of R "
            "weight rows (default_slab_rows), each dequantized into one reused scratch and multiplied at once. GB/s "
            "counts weights (codes + scales), x and y once; speedup = cuBLAS BF16 time / FP4 time.");
    md.line("%s", "");
    md.line("| shape | N x K | batch | cuBLAS BF16 us | MXFP4 us | MXFP4 GB/s | of copy | speedup | NVFP4 us | NVFP4 GB/s | "
            "of copy | speedup | path | MXFP4 gemv speedup | NVFP4 gemv speedup |");
    md.line("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const Shape& s : shapes) {
      const std::vector<mc::DeviceArray<std::uint16_t>> wb = bf16_weight_copies(s.n, s.k);
      // [format][layout: 0 rows, 1 tiles] copies of the weight
      std::vector<mc::Fp4Weight> wq[2][2];
      const Format fmts[2] = {Format::mxfp4, Format::nvfp4};
      for (int f = 0; f < 2; ++f)
        for (int layout = 0; layout < 2; ++layout) wq[f][layout] = fp4_weight_copies(fmts[f], s.n, s.k, 5, layout == 1, stream);
      mc::DeviceArray<std::uint16_t> scratch(static_cast<std::size_t>(s.n * s.k));  // dequantized weight
      for (std::int64_t batch : batches) {
        const auto xh = random_bf16(static_cast<std::size_t>(batch * s.k), 9, 1.0f);
        mc::DeviceArray<std::uint16_t> x(xh.size()), y(static_cast<std::size_t>(batch * s.n));
        x.upload(xh);
        const double t_blas = time_us(stream, [&](int i) {
          blas.gemm_bf16(x.data(), wb[i % wb.size()].data(), batch, s.n, s.k, y.data(), stream);
        });
        // The large-batch path on the tile layout: dequantize to BF16 (whole, slab_rows 0, or in slabs) and
        // cuBLAS. The scratch holds the whole weight, so any slab fits at its start.
        const std::span<std::uint16_t> dequantized(scratch.data(), scratch.size());
        auto large_batch_us = [&](int f, std::int64_t slab_rows) {
          const auto& tiles = wq[f][1];
          return time_us(stream, [&](int i) {
            mc::dequantize_gemm_bf16(tiles[i % tiles.size()], x.data(), batch, y.data(), blas, dequantized, slab_rows,
                                     stream);
          }, 5, 11);
        };
        double t[2], gbs[2], t_gemv[2] = {0, 0};
        const bool small = batch <= 64;
        for (int f = 0; f < 2; ++f) {
          const auto& tiles = wq[f][1];
          if (small) {
            t[f] = time_us(stream, [&](int i) {
              mc::gemv_w4a16(tiles[i % tiles.size()], x.data(), batch, y.data(), nullptr, workspace, stream);
            });
            const auto& rows = wq[f][0];
            t_gemv[f] = time_us(stream, [&](int i) {
              mc::gemv_w4a16(rows[i % rows.size()], x.data(), batch, y.data(), nullptr, workspace, stream);
            });
          } else {
            t[f] = large_batch_us(f, 0);
          }
          const double bytes = static_cast<double>(wq[f][0][0].bytes()) + 2.0 * batch * (s.k + s.n);
          gbs[f] = bytes / (t[f] * 1e3);
        }
        char gemv_cols[64] = "| |";
        if (small) std::snprintf(gemv_cols, sizeof gemv_cols, "| %.2fx | %.2fx |", t_blas / t_gemv[0], t_blas / t_gemv[1]);
        md.line("| %s | %lldx%lld | %lld | %.1f | %.1f | %.0f | %.0f%% | %.2fx | %.1f | %.0f | %.0f%% | %.2fx | %s %s", s.name,
                static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(batch), t_blas, t[0],
                gbs[0], 100.0 * gbs[0] / copy_gbs, t_blas / t[0], t[1], gbs[1], 100.0 * gbs[1] / copy_gbs,
                t_blas / t[1], small ? "tc" : "deq+cuBLAS", gemv_cols);
        double whole[2] = {t[0], t[1]};  // deq+cuBLAS of the whole weight (the main path above batch 64)
        if (batch == 64) {
          // The other large-batch option at batch 64, for the record.
          for (int f = 0; f < 2; ++f) whole[f] = large_batch_us(f, 0);
          md.line("| %s | %lldx%lld | 64 | %.1f | %.1f | | | %.2fx | %.1f | | | %.2fx | deq+cuBLAS | | |", s.name,
                  static_cast<long long>(s.n), static_cast<long long>(s.k), t_blas, whole[0], t_blas / whole[0],
                  whole[1], t_blas / whole[1]);
        }
        if (batch >= 64) {
          // The slabbed large-batch path: the default slab size in the main table, a sweep in its own.
          const std::int64_t auto_rows = mc::default_slab_rows(s.n, s.k);
          double ta[2];
          for (int f = 0; f < 2; ++f) ta[f] = large_batch_us(f, auto_rows);
          md.line("| %s | %lldx%lld | %lld | %.1f | %.1f | | | %.2fx | %.1f | | | %.2fx | slab deq+cuBLAS (auto %lld rows) "
                  "| | |",
                  s.name, static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(batch), t_blas,
                  ta[0], t_blas / ta[0], ta[1], t_blas / ta[1], static_cast<long long>(auto_rows));
          for (int f = 0; f < 2; ++f) {
            std::string sweep;
            double best = whole[f];
            std::string best_name = "whole";
            if (ta[f] < best) best = ta[f], best_name = "auto";
            for (std::int64_t rows : kSlabSweep) {
              if (rows >= s.n) break;  // one slab: the whole weight
              const double us = large_batch_us(f, rows);
              char buf[48];
              std::snprintf(buf, sizeof buf, " %lld: %.1f;", static_cast<long long>(rows), us);
              sweep += buf;
              if (us < best) best = us, best_name = std::to_string(rows);
            }
            slabs_md.line("| %s | %lldx%lld | %lld | %s | %.1f | %.1f (%lld rows, %lld slabs) | %s (%.1f us) |%s",
                          s.name, static_cast<long long>(s.n), static_cast<long long>(s.k),
                          static_cast<long long>(batch), std::string(ms::formats::format_name(fmts[f])).c_str(),
                          whole[f], ta[f], static_cast<long long>(auto_rows),
                          static_cast<long long>((s.n + auto_rows - 1) / auto_rows), best_name.c_str(), best,
                          sweep.c_str());
          }
        }
        if (batch == 1 || batch == 16) {
          // The tensor-core kernel's launch choices (MXFP4): the automatic ones against a sweep of K
          // splits, with and without the software pipeline.
          const auto& tiles = wq[0][1];
          std::string sweep;
          double best = 1e30;
          std::string best_name;
          for (bool pipelined : {true, false}) {
            for (int splits : {1, 2, 4, 8, 16, 32}) {
              if (splits > s.k / 64) break;
              const double us = time_us(stream, [&](int i) {
                mc::gemv_w4a16(tiles[i % tiles.size()], x.data(), batch, y.data(), nullptr, workspace, stream,
                               mc::MmaTuning{splits, pipelined});
              });
              char buf[48];
              std::snprintf(buf, sizeof buf, " %s%d: %.1f;", pipelined ? "p" : "", splits, us);
              sweep += buf;
              if (us < best) best = us, best_name = std::string(pipelined ? "p" : "") + std::to_string(splits);
            }
          }
          const double pipelined_auto = time_us(stream, [&](int i) {
            mc::gemv_w4a16(tiles[i % tiles.size()], x.data(), batch, y.data(), nullptr, workspace, stream,
                           mc::MmaTuning{0, true});
          });
          splits_md.line("| %s | %lldx%lld | %lld | %.1f | %.1f | %s (%.1f us) |%s", s.name, static_cast<long long>(s.n),
                         static_cast<long long>(s.k), static_cast<long long>(batch), t[0], pipelined_auto,
                         best_name.c_str(), best, sweep.c_str());
        }
      }
    }
    // A sweep table: title, caption, header rows, then the rows gathered while timing (also printed).
    const auto sweep_table = [&md](const char* title, const char* caption, const char* header, const char* rule,
                                   const Markdown& rows) {
      md.line("%s", "");
      md.line("%s", title);
      md.line("%s", "");
      md.line("%s", caption);
      md.line("%s", "");
      md.line("%s", header);
      md.line("%s", rule);
      md.text += rows.text;
      std::printf("%s", rows.text.c_str());
    };
    sweep_table("### Launch choices of the tensor-core kernel (MXFP4): automatic vs a sweep",
                "Sweep entries are K splits, `p` = software-pipelined (not the default: slower in most shapes), times in us.",
                "| shape | N x K | batch | auto (default, not pipelined) us | auto (pipelined) us | best | sweep |",
                "|---|---|---|---|---|---|---|", splits_md);
    sweep_table("### Slab sizes of the large-batch path: the whole weight vs slabs (dequantize_gemm_bf16)",
                "`whole` = dequantize the whole weight to BF16, then one cuBLAS GEMM (slab_rows 0); `auto` = slabs of "
                "default_slab_rows (the most rows whose BF16 slab fits 16 MiB, at least 1024); sweep entries are slab "
                "rows: time in us (sizes >= N are one slab, the whole weight, and not timed). Tile layout, same inputs "
                "as the table above.",
                "| shape | N x K | batch | format | whole us | auto us | best | sweep |", "|---|---|---|---|---|---|---|---|",
                slabs_md);
    md.line("%s", "");
  }
  // Quick tables of one kernel against cuBLAS BF16, for comparing variants of it: the GEMV on the row
  // layout at batch 1 and 4 (`gemv`), the tensor-core kernel on the tile layout at batch 1 to 64 with
  // its register-pipelined option beside the default (`tc`).
  const auto quick_table = [&](const char* title, bool tiles, std::initializer_list<std::int64_t> batches) {
    md.line("%s", title);
    md.line("%s", "");
    md.line("| shape | N x K | batch | cuBLAS us | MXFP4 us | of copy | speedup | NVFP4 us | of copy | speedup |%s",
            tiles ? " MXFP4 pipelined us |" : "");
    md.line("|---|---|---|---|---|---|---|---|---|---|%s", tiles ? "---|" : "");
    for (const Shape& s : shapes) {
      const std::vector<mc::DeviceArray<std::uint16_t>> wb = bf16_weight_copies(s.n, s.k);
      const std::vector<mc::Fp4Weight> wq[2] = {fp4_weight_copies(Format::mxfp4, s.n, s.k, 5, tiles, stream),
                                                fp4_weight_copies(Format::nvfp4, s.n, s.k, 5, tiles, stream)};
      for (std::int64_t batch : batches) {
        const auto xh = random_bf16(static_cast<std::size_t>(batch * s.k), 9, 1.0f);
        mc::DeviceArray<std::uint16_t> x(xh.size()), y(static_cast<std::size_t>(batch * s.n));
        x.upload(xh);
        const double t_blas = time_us(stream, [&](int i) {
          blas.gemm_bf16(x.data(), wb[i % wb.size()].data(), batch, s.n, s.k, y.data(), stream);
        });
        double t[2], frac[2];
        for (int f = 0; f < 2; ++f) {
          t[f] = time_us(stream, [&](int i) {
            mc::gemv_w4a16(wq[f][i % wq[f].size()], x.data(), batch, y.data(), nullptr, workspace, stream);
          });
          const double bytes = static_cast<double>(wq[f][0].bytes()) + 2.0 * batch * (s.k + s.n);
          frac[f] = bytes / (t[f] * 1e3) / copy_gbs;
        }
        char pipelined[32] = "";
        if (tiles) {
          const double us = time_us(stream, [&](int i) {
            mc::gemv_w4a16(wq[0][i % wq[0].size()], x.data(), batch, y.data(), nullptr, workspace, stream,
                           mc::MmaTuning{0, true});
          });
          std::snprintf(pipelined, sizeof pipelined, " %.1f |", us);
        }
        md.line("| %s | %lldx%lld | %lld | %.1f | %.1f | %.0f%% | %.2fx | %.1f | %.0f%% | %.2fx |%s", s.name,
                static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(batch), t_blas, t[0],
                100.0 * frac[0], t_blas / t[0], t[1], 100.0 * frac[1], t_blas / t[1], pipelined);
      }
    }
    md.line("%s", "");
  };
  if (sections.gemv) quick_table("## GEMV (row layout) against cuBLAS BF16", false, {1, 4});
  if (sections.tc) quick_table("## Tensor-core kernel (tile layout) against cuBLAS BF16", true, {1, 4, 16, 64});
  if (sections.hadamard) {
    // ---- online rotation: fused into the GEMV vs the separate kernel followed by the plain GEMV ----
    md.line("## Online block Hadamard (b = 128, random signs): fused into the GEMV vs separate kernel + GEMV or tensor cores");
    md.line("%s", "");
    md.line("| shape | N x K | batch | format | GEMV only us | GEMV fused us | hadamard + GEMV us | tc only us | "
            "hadamard + tc us | hadamard alone us |");
    md.line("|---|---|---|---|---|---|---|---|---|---|");
    const Shape rot_shapes[] = {shapes[2], shapes[3], shapes[7]};  // 8B gate/up and down, 70B down
    for (const Shape& s : rot_shapes) {
      const mc::DeviceRotation rot = mc::upload_rotation(ms::rotation::RotationSpec{128, true, 42}, s.k);
      for (Format f : {Format::mxfp4, Format::nvfp4}) {
        const std::vector<mc::Fp4Weight> ws = fp4_weight_copies(f, s.n, s.k, 3, false, stream);
        const std::vector<mc::Fp4Weight> wt = fp4_weight_copies(f, s.n, s.k, 3, true, stream);
        for (std::int64_t batch : {1, 16}) {
          const auto xh = random_bf16(static_cast<std::size_t>(batch * s.k), 9, 1.0f);
          mc::DeviceArray<std::uint16_t> x(xh.size()), xr(xh.size()), y(static_cast<std::size_t>(batch * s.n));
          x.upload(xh);
          auto gemv = [&](const std::vector<mc::Fp4Weight>& w, const mc::DeviceRotation* r) {
            return time_us(stream, [&](int i) {
              mc::gemv_w4a16(w[i % w.size()], x.data(), batch, y.data(), r, workspace, stream);
            });
          };
          auto separate = [&](const std::vector<mc::Fp4Weight>& w) {
            return time_us(stream, [&](int i) {
              mc::hadamard_bf16(rot, x.data(), xr.data(), batch, s.k, stream);
              mc::gemv_w4a16(w[i % w.size()], xr.data(), batch, y.data(), nullptr, workspace, stream);
            });
          };
          const double alone = time_us(stream, [&](int) { mc::hadamard_bf16(rot, x.data(), xr.data(), batch, s.k, stream); });
          md.line("| %s | %lldx%lld | %lld | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |", s.name,
                  static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(batch),
                  std::string(ms::formats::format_name(f)).c_str(), gemv(ws, nullptr), gemv(ws, &rot), separate(ws),
                  gemv(wt, nullptr), separate(wt), alone);
        }
      }
    }
    md.line("%s", "");

  }
  if (sections.activations) {
    // ---- bandwidth of the activation kernels on a large input ----
    md.line("## Activation kernels on 8192 x 8192 BF16 (bandwidth)");
    md.line("%s", "");
    md.line("| kernel | us | GB/s | of copy |");
    md.line("|---|---|---|---|");
    {
      const std::int64_t rows = 8192, cols = 8192;
      const std::size_t n = static_cast<std::size_t>(rows * cols);
      std::vector<mc::DeviceArray<std::uint16_t>> xs;
      for (int c = 0; c < 2; ++c) {
        xs.emplace_back(n);
        xs.back().upload(random_bf16(n, 100 + c, 1.0f));
      }
      mc::DeviceArray<std::uint16_t> y(n);
      mc::DeviceArray<std::uint8_t> codes(n / 2), scales(n / 16);
      auto report = [&](const char* name, double us, double bytes) {
        const double g = bytes / (us * 1e3);
        md.line("| %s | %.1f | %.0f | %.0f%% |", name, us, g, 100.0 * g / copy_gbs);
      };
      for (int block : {16, 32, 64, 128, 256}) {
        const mc::DeviceRotation rot = mc::upload_rotation(ms::rotation::RotationSpec{block, true, 1}, cols);
        const double us = time_us(stream, [&](int i) { mc::hadamard_bf16(rot, xs[i % 2].data(), y.data(), rows, cols, stream); }, 10, 15);
        const std::string name = "hadamard b=" + std::to_string(block) + " (bf16 -> bf16)";
        report(name.c_str(), us, 4.0 * n);
      }
      const mc::DeviceRotation rot = mc::upload_rotation(ms::rotation::RotationSpec{128, true, 1}, cols);
      for (Format f : {Format::mxfp4, Format::nvfp4}) {
        const double group = f == Format::mxfp4 ? 32.0 : 16.0;
        const double bytes = 2.0 * n + n / 2.0 + n / group;
        for (bool rotate : {false, true}) {
          const double us = time_us(stream, [&](int i) {
            mc::rotate_quantize(xs[i % 2].data(), rows, cols, rotate ? &rot : nullptr, f, 100.0f, codes.data(),
                                scales.data(), stream);
          }, 10, 15);
          const std::string name = std::string(rotate ? "rotate(b=128)+quantize " : "quantize ") +
                                   std::string(ms::formats::format_name(f));
          report(name.c_str(), us, bytes);
        }
      }
    }
  }
  CK(cudaStreamDestroy(stream));
  if (out_path != nullptr) {
    if (FILE* fp = std::fopen(out_path, "w")) {
      std::fputs(md.text.c_str(), fp);
      std::fclose(fp);
    } else {
      std::fprintf(stderr, "cannot write %s\n", out_path);
    }
  }
  return 0;
}

// A few plain launches for a profiler (ncu): Llama-3-8B gate/up (14336 x 4096) and q/o (4096 x 4096),
// MXFP4, the tensor-core kernel at batch 1 and 16 and the GEMV at batch 1, each launched 3 times; then
// the fused rotate-and-quantize of activations.
int run_profile() {
  const auto& shapes = ms::bench::kLlama3LinearShapes;
  for (const ms::bench::LinearShapeRow& shape : {shapes[2], shapes[0]}) {  // 8B gate/up, q/o
    const std::int64_t n = shape.n, k = shape.k;
    mc::Fp4Weight rows = random_fp4(Format::mxfp4, n, k, 1);
    mc::Fp4Weight tiles = random_fp4(Format::mxfp4, n, k, 1);
    CK(mc::to_mma_layout(tiles) ? cudaSuccess : cudaErrorInvalidValue);
    mc::GemvWorkspace workspace;
    for (std::int64_t batch : {1, 16}) {
      mc::DeviceArray<std::uint16_t> x(static_cast<std::size_t>(batch * k)), y(static_cast<std::size_t>(batch * n));
      x.upload(random_bf16(static_cast<std::size_t>(batch * k), 3, 1.0f));
      for (int i = 0; i < 3; ++i) mc::gemv_w4a16(tiles, x.data(), batch, y.data(), nullptr, workspace);
      if (batch == 1)
        for (int i = 0; i < 3; ++i) mc::gemv_w4a16(rows, x.data(), batch, y.data(), nullptr, workspace);
    }
  }
  // The fused rotate(b=128)-and-quantize of an 8192 x 8192 activation, both formats.
  {
    const std::int64_t rows = 8192, cols = 8192;
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    mc::DeviceArray<std::uint16_t> x(n);
    x.upload(random_bf16(n, 5, 1.0f));
    mc::DeviceArray<std::uint8_t> codes(n / 2), scales(n / 16);
    const mc::DeviceRotation rot = mc::upload_rotation(ms::rotation::RotationSpec{128, true, 1}, cols);
    for (Format f : {Format::mxfp4, Format::nvfp4})
      for (int i = 0; i < 2; ++i) mc::rotate_quantize(x.data(), rows, cols, &rot, f, 100.0f, codes.data(), scales.data());
  }
  CK(cudaDeviceSynchronize());
  std::printf("profile launches done\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool checks = false, bench = false, quick = false, profile = false;
  Sections sections;
  const char* out = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--checks")) checks = true;
    else if (!std::strcmp(argv[i], "--bench")) bench = true;
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--profile")) profile = true;
    else if (!std::strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!std::strcmp(argv[i], "--sections") && i + 1 < argc && parse_sections(argv[i + 1], sections)) ++i;
    else {
      std::fprintf(stderr,
                   "usage: %s [--checks [--quick]] [--bench [--sections w4a16,hadamard,activations,gemv,tc] [--out FILE]] "
                   "[--profile]\n",
                   argv[0]);
      return 2;
    }
  }
  const char* why = nullptr;
  if (mc::device_count(&why) == 0) {
    std::printf("SKIP  no CUDA device: %s\n", why);
    return 0;
  }
  try {
    int rc = 0;
    if (checks) rc |= run_checks(quick);
    if (bench) rc |= run_bench(out, sections);
    if (profile) rc |= run_profile();
    return rc;
  } catch (const std::exception& e) {
    std::printf("FAIL  exception: %s\n", e.what());
    return 1;
  }
}
