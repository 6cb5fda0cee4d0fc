// The GPU runtime (cuda::GpuModel) against the CPU runtime (model::Model) on models/wp-tiny and on
// RTN MXFP4 / NVFP4 exports of it, plus the KV-cache decode path against prefill. Without a CUDA
// device every test that needs one is skipped with the reason.
//
// Tolerance. The CPU runtime is FP32 throughout; the GPU stores every linear input and output, q/k/v,
// the attention output and the KV cache in BF16 (8 significant bits: each store is off by up to
// 2^-9 = 0.2% relative), about ten such roundings per layer, six layers. Independent relative errors
// of ~0.1% (rms) over ~60 roundings grow to roughly 1% of a logit's magnitude, a little more after
// attention/softmax amplification. So we require, over all compared logits:
//   max |Δ| <= 6% of max |logit_cpu|   (a wrong head, position, scale or nibble moves logits by O(100%))
//   rms(Δ)  <= 2.5% of rms(logit_cpu)
//   perplexity within 0.5%, top-1 agreement >= 90% (near-ties may flip)
// Quantized models use the same bounds: both runtimes use the identical decoded weights, only the
// activations' rounding differs. GPU decode vs GPU prefill: same BF16 rounding points, but different
// kernels (GEMV vs GEMM, cuBLAS algorithms), so the same bounds apply. Every check prints its numbers.
#include <gtest/gtest.h>

#if defined(MICROSCALE_HAVE_CUDA)

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "microscale/core/error.hpp"
#include "cuda/require_device.hpp"
#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/cuda/gpu_model.hpp"
#include "microscale/eval/eval_model.hpp"
#include "microscale/eval/metrics.hpp"
#include "microscale/io/json_file.hpp"
#include "microscale/model/model.hpp"
#include "microscale/pipeline/quantize_job.hpp"
#include "microscale/tokenizer/tokenizer.hpp"
#include "support/temp_dir.hpp"

namespace microscale::cuda {
namespace {

// The repository root: $MICROSCALE_SOURCE_DIR when set (a bundle run on another machine, see
// scripts/pack-gpu-bundle.sh), else the source tree this was built from.
std::filesystem::path source_dir() {
  const char* env = std::getenv("MICROSCALE_SOURCE_DIR");
  return env != nullptr && *env != '\0' ? std::filesystem::path(env) : std::filesystem::path(MICROSCALE_SOURCE_DIR);
}
const std::filesystem::path kTiny = source_dir() / "models" / "wp-tiny";

std::vector<std::int32_t> text_tokens(std::size_t count) {
  const auto tok = tokenizer::Tokenizer::from_file(kTiny / "tokenizer.json");
  const std::string text = io::read_file(source_dir() / "data" / "wp-test.txt", "text");
  std::vector<std::int32_t> ids = tok.encode(text, true);
  if (ids.size() < count) throw std::runtime_error("data/wp-test.txt is too short for the test");
  ids.resize(count);
  return ids;
}

struct Comparison {
  double max_abs_diff = 0, max_abs = 0, rms_diff = 0, rms = 0;
  double ppl_a = 0, ppl_b = 0, top1 = 0;
};

// a: reference (CPU), b: GPU. Rows are [batch][seqlen]; perplexity scores position t by token t+1.
Comparison compare(const Matrix& a, const Matrix& b, std::span<const std::int32_t> tokens, int seqlen) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  Comparison c;
  double sum_d2 = 0, sum_a2 = 0, nll_a = 0, nll_b = 0;
  std::int64_t scored = 0, agree = 0;
  for (std::int64_t r = 0; r < a.rows; ++r) {
    const auto ra = a.view().row(r), rb = b.view().row(r);
    for (std::int64_t j = 0; j < a.cols; ++j) {
      const double d = std::abs(double(ra[j]) - double(rb[j]));
      c.max_abs_diff = std::max(c.max_abs_diff, std::isfinite(d) ? d : 1e30);
      c.max_abs = std::max(c.max_abs, std::abs(double(ra[j])));
      sum_d2 += d * d;
      sum_a2 += double(ra[j]) * ra[j];
    }
    agree += eval::argmax(ra) == eval::argmax(rb) ? 1 : 0;
    if ((r + 1) % seqlen != 0) {
      const std::int32_t target = tokens[static_cast<std::size_t>(r + 1)];
      nll_a += eval::token_nll(ra, target);
      nll_b += eval::token_nll(rb, target);
      ++scored;
    }
  }
  const double n = double(a.rows) * double(a.cols);
  c.rms_diff = std::sqrt(sum_d2 / n);
  c.rms = std::sqrt(sum_a2 / n);
  c.ppl_a = scored > 0 ? std::exp(nll_a / double(scored)) : 0;
  c.ppl_b = scored > 0 ? std::exp(nll_b / double(scored)) : 0;
  c.top1 = double(agree) / double(a.rows);
  return c;
}

void expect_close(const Comparison& c, const std::string& what, bool check_ppl = true) {
  const double ppl_rel = c.ppl_a > 0 ? std::abs(c.ppl_b / c.ppl_a - 1.0) : 0.0;
  const bool pass = c.max_abs_diff <= 0.06 * c.max_abs && c.rms_diff <= 0.025 * c.rms && c.top1 >= 0.90 &&
                    (!check_ppl || ppl_rel <= 0.005);
  std::printf("%s %s: max|dlogit| %.4f (%.2f%% of max|logit| %.3f), rms dlogit %.5f (%.2f%% of rms %.4f), "
              "top-1 agreement %.1f%%, ppl %.4f vs %.4f (%+.3f%%)\n",
              pass ? "PASS" : "FAIL", what.c_str(), c.max_abs_diff, 100 * c.max_abs_diff / c.max_abs, c.max_abs,
              c.rms_diff, 100 * c.rms_diff / c.rms, c.rms, 100 * c.top1, c.ppl_a, c.ppl_b, 100 * (c.ppl_b / c.ppl_a - 1));
  EXPECT_TRUE(pass) << what;
}

std::filesystem::path quantized_tiny(const testing::TempDir& dir, formats::Format format, int rotation_block) {
  pipeline::QuantizeOptions o;
  o.model_dir = kTiny;
  o.out_dir = dir / (std::string(formats::format_name(format)) + "-r" + std::to_string(rotation_block));
  o.method = pipeline::Method::rtn;
  o.spec = formats::make_spec(format, format == formats::Format::mxfp4 ? 32 : 16, true, formats::ScaleSearch::absmax);
  if (rotation_block > 0) o.rotation = rotation::RotationSpec{rotation_block, true, 7};
  o.quiet = true;
  pipeline::quantize_checkpoint(o);
  return o.out_dir;
}

// CPU vs GPU on `dir`: a batch of 4 windows of 128 (prefill GEMM paths, 512 rows) and batch 3 x
// seqlen 5 (15 rows: the 4-bit GEMV path), and batch 3 x seqlen 1.
// 4-bit checkpoints run once per W4A16 kernel (the tensor cores' tile layout and the FP32 GEMV).
void check_against_cpu(const std::filesystem::path& dir, const std::string& name, Fp4Kernels kernels) {
  const model::Model cpu = model::Model::load(dir);
  GpuModel gpu = GpuModel::load(dir, kernels);
  const auto tokens = text_tokens(512);
  for (auto [batch, seqlen] : {std::pair{4, 128}, std::pair{3, 5}, std::pair{3, 1}}) {
    const auto t = std::span(tokens).first(static_cast<std::size_t>(batch * seqlen));
    const Matrix a = cpu.forward(t, batch, seqlen);
    const Matrix b = gpu.logits_for(t, batch, seqlen);
    expect_close(compare(a, b, t, seqlen), name + (kernels == Fp4Kernels::gemv ? " (gemv)" : "") + " batch " + std::to_string(batch) + " x seqlen " + std::to_string(seqlen),
                 /*check_ppl=*/batch * seqlen >= 256);
  }
}

TEST(GpuModel, Bf16LogitsMatchCpu) {
  REQUIRE_DEVICE();
  check_against_cpu(kTiny, "wp-tiny bf16", Fp4Kernels::tensor_cores);
}

TEST(GpuModel, Mxfp4LogitsMatchCpu) {
  REQUIRE_DEVICE();
  testing::TempDir dir;
  const auto model = quantized_tiny(dir, formats::Format::mxfp4, 0);
  for (Fp4Kernels k : {Fp4Kernels::tensor_cores, Fp4Kernels::gemv}) check_against_cpu(model, "wp-tiny mxfp4 rtn", k);
}

TEST(GpuModel, Nvfp4LogitsMatchCpu) {
  REQUIRE_DEVICE();
  testing::TempDir dir;
  const auto model = quantized_tiny(dir, formats::Format::nvfp4, 0);
  for (Fp4Kernels k : {Fp4Kernels::tensor_cores, Fp4Kernels::gemv}) check_against_cpu(model, "wp-tiny nvfp4 rtn", k);
}

TEST(GpuModel, RotatedMxfp4LogitsMatchCpu) {
  // The fused rotation in the GEMV or the separate Hadamard before the tensor-core kernel (15 and 3
  // rows), and the separate Hadamard before cuBLAS (512 rows).
  REQUIRE_DEVICE();
  testing::TempDir dir;
  const auto model = quantized_tiny(dir, formats::Format::mxfp4, 32);
  for (Fp4Kernels k : {Fp4Kernels::tensor_cores, Fp4Kernels::gemv}) check_against_cpu(model, "wp-tiny mxfp4 rtn + hadamard 32", k);
}

// Prefill of a prompt + one decode step at a time reproduces the cache-less logits.
void check_decode_matches_prefill(const std::filesystem::path& dir, const std::string& name, int length = 24,
                                  int prompt_length = 9) {
  GpuModel gpu = GpuModel::load(dir);
  constexpr int kBatch = 2;
  const auto tokens = text_tokens(kBatch * length);
  const Matrix full = gpu.logits_for(tokens, kBatch, length);

  gpu.reset_cache(kBatch, length);
  std::vector<std::int32_t> prompt;
  for (int b = 0; b < kBatch; ++b) {
    prompt.insert(prompt.end(), tokens.begin() + b * length, tokens.begin() + b * length + prompt_length);
  }
  Matrix cached(kBatch * length, full.cols);  // laid out like `full`
  const Matrix first = gpu.forward_cached(prompt, kBatch, prompt_length);
  for (int b = 0; b < kBatch; ++b) {
    for (int t = 0; t < prompt_length; ++t) {
      const auto src = first.view().row(b * prompt_length + t);
      std::copy(src.begin(), src.end(), cached.view().row(b * length + t).begin());
    }
  }
  for (int t = prompt_length; t < length; ++t) {
    const std::int32_t step[kBatch] = {tokens[static_cast<std::size_t>(t)], tokens[static_cast<std::size_t>(length + t)]};
    const Matrix next = gpu.decode_step(step);
    for (int b = 0; b < kBatch; ++b) {
      const auto src = next.view().row(b);
      std::copy(src.begin(), src.end(), cached.view().row(b * length + t).begin());
    }
  }
  EXPECT_EQ(gpu.cache_length(), length);
  expect_close(compare(full, cached, tokens, length), name + " decode vs prefill", false);
}

TEST(GpuModel, DecodeMatchesPrefillBf16) {
  REQUIRE_DEVICE();
  check_decode_matches_prefill(kTiny, "wp-tiny bf16");
}

// Decode attention splits the keys among 8 warps in tiles of 32: past 256 keys a warp takes a second
// tile, and the last tile is partial.
TEST(GpuModel, DecodeMatchesPrefillPast256Keys) {
  REQUIRE_DEVICE();
  check_decode_matches_prefill(kTiny, "wp-tiny bf16, 300 positions", 300, 270);
}

TEST(GpuModel, DecodeMatchesPrefillNvfp4) {
  REQUIRE_DEVICE();
  testing::TempDir dir;
  check_decode_matches_prefill(quantized_tiny(dir, formats::Format::nvfp4, 16), "wp-tiny nvfp4 + hadamard 16");
}

TEST(GpuModel, GraphDecodeEqualsEagerDecodeAndCpuGreedy) {
  REQUIRE_DEVICE();
  GpuModel gpu = GpuModel::load(kTiny);
  const auto prompt = text_tokens(12);
  auto run = [&](bool graph) {
    gpu.reset_cache(1, 12 + 20);
    const Matrix last = gpu.prefill(prompt, 1, 12);
    const auto row = last.view().row(0);
    const std::int32_t first[] = {static_cast<std::int32_t>(std::max_element(row.begin(), row.end()) - row.begin())};
    std::vector<std::int32_t> out = {first[0]};
    const auto rest = gpu.greedy_decode(first, 20, graph);
    out.insert(out.end(), rest.begin(), rest.end() - 1);
    return out;
  };
  const auto eager = run(false);
  const auto graph = run(true);
  EXPECT_EQ(eager, graph);
  const model::Model cpu = model::Model::load(kTiny);
  const auto reference = cpu.generate_greedy(prompt, 20, false);
  std::size_t same = 0;
  while (same < reference.size() && same < eager.size() && reference[same] == eager[same]) ++same;
  std::printf("%s greedy decode: graph == eager: %s; first %zu of %zu tokens equal the CPU's\n",
              eager == graph ? "PASS" : "FAIL", eager == graph ? "yes" : "no", same, reference.size());
  // BF16 rounding may flip a near-tie eventually; the first few tokens must agree.
  EXPECT_GE(same, 4u);
}

TEST(GpuModel, RandomModelRunsWithGraphs) {
  REQUIRE_DEVICE();
  model::ModelConfig c;
  c.model_type = "qwen3";
  c.hidden_size = 256;
  c.intermediate_size = 512;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.vocab_size = 1000;
  c.max_position_embeddings = 256;
  c.qk_norm = true;
  c.qkv_bias = true;
  for (auto format : {std::optional<formats::Format>{}, std::optional{formats::Format::mxfp4},
                      std::optional{formats::Format::nvfp4}}) {
    GpuModel gpu = GpuModel::random(c, format, 3);
    std::vector<std::int32_t> tokens(2 * 70);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<std::int32_t>((i * 37) % 1000);
    const Matrix logits = gpu.logits_for(tokens, 2, 70);
    bool finite = true;
    for (float v : logits.data) finite = finite && std::isfinite(v);
    EXPECT_TRUE(finite);
    gpu.reset_cache(1, 40);
    gpu.prefill(std::span(tokens).first(8), 1, 8);
    const std::int32_t first[] = {5};
    double per_step = 0;
    const auto out = gpu.greedy_decode(first, 30, true, &per_step);
    EXPECT_EQ(out.size(), 30u);
    EXPECT_GT(per_step, 0.0);
    std::printf("%s random qwen3-shaped model (%s): logits finite, graph decode %.3f ms/step\n",
                finite ? "PASS" : "FAIL", format ? std::string(formats::format_name(*format)).c_str() : "bf16",
                per_step * 1e3);
  }
}

TEST(GpuModel, ErrorsAreClear) {
  REQUIRE_DEVICE();
  GpuModel gpu = GpuModel::load(kTiny);
  const std::int32_t bad[] = {4096};
  EXPECT_THROW(gpu.logits_for(bad, 1, 1), Error);
  const std::int32_t ok[] = {1, 2};
  EXPECT_THROW(gpu.logits_for(ok, 1, 1), Error);     // 2 tokens are not 1 x 1
  EXPECT_THROW(gpu.decode_step(ok), Error);          // no cache yet
  gpu.reset_cache(2, 1);
  gpu.decode_step(ok);
  EXPECT_THROW(gpu.decode_step(ok), Error);          // the cache is full
}

TEST(GpuModel, CudaDeviceIsRefusedClearlyWithoutAGpu) {
  const char* why = nullptr;
  if (device_count(&why) > 0) GTEST_SKIP() << "a CUDA device is present";
  try {
    eval::load_eval_model(kTiny, eval::Device::cuda);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace microscale::cuda

#endif  // MICROSCALE_HAVE_CUDA
