#include "microscale/pipeline/sequential.hpp"

#include <algorithm>
#include <optional>

#include "microscale/core/error.hpp"
#include "microscale/core/log.hpp"
#include "microscale/core/progress.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/model/model.hpp"
#include "microscale/pipeline/activation_buffer.hpp"
#include "microscale/pipeline/calibration.hpp"
#include "microscale/pipeline/quantize_job.hpp"
#include "microscale/quantizers/gptq.hpp"
#include "microscale/quantizers/gptq_linear_algebra.hpp"
#include "microscale/quantizers/hessian_ops.hpp"
#include "microscale/quantizers/qep.hpp"
#include "microscale/quantizers/statistics.hpp"
#include "microscale/tokenizer/tokenizer.hpp"

#ifdef MICROSCALE_HAVE_CUDA
#include "microscale/cuda/gptq_device.hpp"
#include "microscale/cuda/statistics_device.hpp"
#endif

namespace microscale::pipeline {
namespace {

using model::LinearKind;

std::string weight_name(int layer, LinearKind kind) {
  return fmt::format("model.layers.{}.{}.weight", layer, model::linear_name(kind));
}

// Runs `rows` of a stream through one layer in chunks of whole sequences, showing each chunk's
// inputs of `kind` to `observe` (or nothing), and writing the outputs back when `update` is set.
struct StreamRunner {
  const model::Model& model;
  int seqlen;
  int samples;
  int chunk_samples;

  template <typename Observe>
  void run(int layer, ActivationBuffer& stream, bool update, Observe&& observe) const {
    for (int first = 0; first < samples; first += chunk_samples) {
      const int count = std::min(chunk_samples, samples - first);
      MatrixView rows = stream.rows(static_cast<std::int64_t>(first) * seqlen, static_cast<std::int64_t>(count) * seqlen);
      Matrix scratch;
      MatrixView target = rows;
      if (!update) {
        scratch = Matrix(rows.rows, rows.cols);
        std::copy(rows.data.begin(), rows.data.end(), scratch.data.begin());
        target = scratch.view();
      }
      model.forward_layer(layer, target, count, seqlen,
                          [&](LinearKind kind, ConstMatrixView input) { observe(first, kind, input); });
    }
  }
};

double qep_alpha_for(const CalibrationOptions& c, LinearKind kind) {
  const bool mlp = kind == LinearKind::gate || kind == LinearKind::up || kind == LinearKind::down;
  const double chosen = mlp ? c.qep_alpha_mlp : c.qep_alpha_attn;
  if (chosen >= 0) return chosen;
  return quantizers::default_qep_alpha(model::linear_name(kind));
}

#ifndef MICROSCALE_HAVE_CUDA
constexpr const char* kBuiltWithoutCuda =
    "--device cuda: this microscale was built without CUDA (nvcc was not found when it was configured)";
#endif

std::unique_ptr<quantizers::GptqLinearAlgebra> make_linear_algebra(bool gpu) {
  if (!gpu) return quantizers::make_host_linear_algebra();
#ifdef MICROSCALE_HAVE_CUDA
  return cuda::make_device_linear_algebra();
#else
  fail("{}", kBuiltWithoutCuda);
#endif
}

// Null on the host: each InputStatistics then multiplies with OpenBLAS on its own scratch. On the GPU
// one hook (one cuBLAS handle, one set of scratch buffers) serves every group of every layer.
std::unique_ptr<quantizers::StatisticsProducts> make_statistics_products(bool gpu) {
  if (!gpu) return nullptr;
#ifdef MICROSCALE_HAVE_CUDA
  return cuda::make_device_statistics_products();
#else
  fail("{}", kBuiltWithoutCuda);
#endif
}

}  // namespace

void measure_error(QuantizedLinear& entry, ConstMatrixView reference) {
  Matrix dequant(entry.quantized.rows, entry.quantized.cols);
  formats::dequantize(entry.quantized, dequant.view());
  entry.squared_error = entry.squared_norm = 0;
  for (std::size_t i = 0; i < dequant.data.size(); ++i) {
    const double d = static_cast<double>(reference.data[i]) - dequant.data[i];
    entry.squared_error += d * d;
    entry.squared_norm += static_cast<double>(reference.data[i]) * reference.data[i];
  }
}

QuantizedLinears quantize_calibrated(const io::Checkpoint& checkpoint, const std::vector<const io::TensorInfo*>& linears,
                                     const QuantizeOptions& o) {
  const auto& c = o.calibration;
  // First, so that a missing GPU is reported before any calibration work.
  const std::unique_ptr<quantizers::GptqLinearAlgebra> algebra = make_linear_algebra(c.gpu);
  const std::unique_ptr<quantizers::StatisticsProducts> products = make_statistics_products(c.gpu);
  model::Model net = model::Model::load(o.model_dir, {.stream_layers = true});
  const auto& config = net.config();
  const tokenizer::Tokenizer tokenizer = tokenizer::Tokenizer::from_file(o.model_dir / "tokenizer.json");
  const int seqlen = static_cast<int>(std::min<std::int64_t>(c.seqlen, config.max_position_embeddings));
  if (seqlen < c.seqlen && !o.quiet) {
    log::info("calibration windows capped at the model's context: {} tokens", seqlen);
  }
  const CalibrationSet calib = load_calibration(c.text, tokenizer, c.samples, seqlen, c.seed);
  if (!o.quiet) {
    log::info("calibration: {} windows of {} tokens from {} ({} tokens in the text)", calib.samples, seqlen,
              c.text.string(), calib.text_tokens);
  }
  // Every linear the user asked for must be one the runtime knows, or it would silently stay dense.
  std::map<std::string, bool> wanted;
  for (const io::TensorInfo* t : linears) wanted[t->name] = false;

  const std::int64_t rows = static_cast<std::int64_t>(calib.samples) * seqlen;
  const std::filesystem::path spill_dir = o.out_dir.parent_path().empty() ? "." : o.out_dir.parent_path();
  ActivationBuffer quantized_stream(rows, config.hidden_size, c.activation_budget_bytes, spill_dir);
  std::optional<ActivationBuffer> full_stream;
  if (c.qep) full_stream.emplace(rows, config.hidden_size, c.activation_budget_bytes, spill_dir);
  {
    const Matrix embedded = net.embed(calib.tokens);
    std::copy(embedded.data.begin(), embedded.data.end(), quantized_stream.view().data.begin());
    if (full_stream) std::copy(embedded.data.begin(), embedded.data.end(), full_stream->view().data.begin());
  }
  // Whole sequences per forward call, about 64 MB of the widest activation at a time.
  const std::int64_t widest = std::max(config.hidden_size, config.intermediate_size);
  const int chunk_samples = static_cast<int>(std::clamp<std::int64_t>((16 << 20) / (widest * seqlen), 1, calib.samples));
  const StreamRunner runner{net, seqlen, calib.samples, chunk_samples};

  quantizers::GptqOptions gptq_options;
  gptq_options.damp = c.damp;
  gptq_options.block_size = c.block_size;
  gptq_options.act_order = c.act_order;
  gptq_options.linear_algebra = algebra.get();

  QuantizedLinears out;
  Progress progress(fmt::format("quantize {}{}", method_name(o.method), c.qep ? "+qep" : ""), config.num_layers * 4,
                    o.quiet);
  for (int layer = 0; layer < config.num_layers; ++layer) {
    net.ensure_layer(layer);
    std::optional<model::LayerWeights> original;
    if (c.qep) original = net.layer(layer);  // the full-precision stream runs through these

    // Each group is calibrated on the inputs the groups before it produce, already quantized ("true
    // sequential" GPTQ).
    for (const model::InputGroup& group : model::kInputGroups) {
      const LinearKind input_kind = group.kinds.front();
      const std::int64_t dim = net.layer(layer).linear(input_kind).in_features();
      quantizers::InputStatistics stats(dim, c.qep, products.get());
      if (!c.qep) {
        runner.run(layer, quantized_stream, false, [&](int, LinearKind kind, ConstMatrixView input) {
          if (kind == input_kind) stats.add(input);
        });
      } else {
        // Pair each chunk's quantized-stream inputs with the full-precision ones for the cross term.
        for (int first = 0; first < calib.samples; first += chunk_samples) {
          const int count = std::min(chunk_samples, calib.samples - first);
          const std::int64_t r0 = static_cast<std::int64_t>(first) * seqlen, n = static_cast<std::int64_t>(count) * seqlen;
          auto capture = [&](ActivationBuffer& stream) {
            Matrix h(n, config.hidden_size), captured;
            const MatrixView src = stream.rows(r0, n);
            std::copy(src.data.begin(), src.data.end(), h.data.begin());
            net.forward_layer(layer, h.view(), count, seqlen, [&](LinearKind kind, ConstMatrixView input) {
              if (kind == input_kind) {
                captured = Matrix(input.rows, input.cols);
                std::copy(input.data.begin(), input.data.end(), captured.data.begin());
              }
            });
            return captured;
          };
          const Matrix x_hat = capture(quantized_stream);
          std::swap(net.layer(layer), *original);
          const Matrix x = capture(*full_stream);
          std::swap(net.layer(layer), *original);
          stats.add(x_hat.view(), x.view());
        }
      }

      std::optional<float> shared_global;
      for (const LinearKind kind : group.kinds) {
        const std::string name = weight_name(layer, kind);
        auto it = wanted.find(name);
        if (it == wanted.end()) continue;  // not selected: stays dense
        it->second = true;
        model::Linear& linear = net.layer(layer).linear(kind);
        Matrix w = c.qep ? quantizers::qep_correct((original ? original->linear(kind) : linear).weight.view(), stats,
                                                   qep_alpha_for(c, kind), c.damp, name)
                         : linear.weight;
        // Fused linears (q/k/v, gate/up) share one NVFP4 tensor scale, as engines that fuse them expect.
        if (!shared_global && o.spec.format == formats::Format::nvfp4) {
          float amax_scale = std::numeric_limits<float>::max();
          for (const LinearKind k : group.kinds) {
            Matrix candidate = net.layer(layer).linear(k).weight;
            if (o.rotation.enabled()) rotation::rotate_rows(candidate.view(), o.rotation);
            amax_scale = std::min(amax_scale, formats::tensor_global_scale(o.spec, candidate.data));
          }
          shared_global = amax_scale;
        }
        gptq_options.global_scale = shared_global;

        quantizers::LayerResult result;
        Matrix reference = linear.weight;  // what the error report compares against, in the quantized basis
        if (o.rotation.enabled()) rotation::rotate_rows(reference.view(), o.rotation);
        switch (o.method) {
          case Method::mr_gptq:
            result = quantizers::mr_gptq(w.view(), stats.hessian(), o.spec, o.rotation, gptq_options, name);
            break;
          case Method::gptq:
          case Method::rtn: {
            Eigen::MatrixXd hessian = stats.hessian();
            if (o.rotation.enabled()) {
              rotation::rotate_rows(w.view(), o.rotation);
              hessian = quantizers::detail::conjugate_by_rotation(hessian, o.rotation);
            }
            result = o.method == Method::gptq ? quantizers::gptq(w.view(), hessian, o.spec, gptq_options, name)
                                              : quantizers::rtn(w.view(), o.spec, shared_global, name);
            result.rotation = o.rotation;
            break;
          }
        }
        // The rest of the model now sees the quantized weight (back in the original basis).
        linear.weight = quantizers::dequantized_in_original_basis(result);
        QuantizedLinear entry{std::move(result.quantized)};
        measure_error(entry, reference.view());
        out.emplace(name, std::move(entry));
      }
      progress.advance(1, fmt::format("layer {}", layer));
    }
    // Propagate both streams to the next layer: the quantized one through the quantized layer.
    runner.run(layer, quantized_stream, true, [](int, LinearKind, ConstMatrixView) {});
    if (c.qep) {
      std::swap(net.layer(layer), *original);
      runner.run(layer, *full_stream, true, [](int, LinearKind, ConstMatrixView) {});
    }
    net.release_layer(layer);
  }
  progress.finish();
  for (const auto& [name, done] : wanted) {
    if (!done) fail("{}: {} is not a linear the runtime knows how to calibrate", o.model_dir.string(), name);
  }
  return out;
}

}  // namespace microscale::pipeline
