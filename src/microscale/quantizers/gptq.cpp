#include "microscale/quantizers/gptq.hpp"

#include <cblas.h>
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/core/log.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/quantizers/gptq_linear_algebra.hpp"
#include "microscale/quantizers/hessian_ops.hpp"

namespace microscale::quantizers {
namespace {

// Below this many scalar operations a loop runs on one thread: on a busy machine the fork/join of
// an OpenMP team costs more than small layers' work (tests quantize 24x64 matrices).
constexpr std::int64_t kParallelWork = std::int64_t{1} << 18;

void check_weight(ConstMatrixView w, std::string_view layer) {
  if (w.rows < 0 || w.cols < 0 || w.data.size() != static_cast<std::size_t>(w.rows * w.cols)) {
    fail("{}: weight view of {}x{} holds {} values", layer, w.rows, w.cols, w.data.size());
  }
  for (std::size_t i = 0; i < w.data.size(); ++i) {
    if (!std::isfinite(w.data[i])) {
      fail("{}: weight has a non-finite value at row {}, column {}", layer, static_cast<std::int64_t>(i) / w.cols,
           static_cast<std::int64_t>(i) % w.cols);
    }
  }
}

// U with Uᵀ U = (P H Pᵀ + λI)^-1, upper triangular, row-major (the lower triangle holds garbage).
// With J the reversal permutation and J A J = L Lᵀ, A^-1 = (J L^-1 J)ᵀ (J L^-1 J) and J L^-1 J is
// upper triangular, so U = J L^-1 J: one Cholesky and one triangular inverse, no explicit A^-1.
// Reversing both axes of a square matrix is reversing its flat storage, in either layout.
struct InverseFactor {
  std::vector<double> upper;  // d x d row-major
  detail::DampedCholesky cholesky;
};

InverseFactor inverse_cholesky_factor(const Eigen::MatrixXd& h, const std::vector<std::int64_t>& perm, double damp,
                                      GptqLinearAlgebra& algebra, std::string_view layer) {
  const std::int64_t d = h.rows();
  InverseFactor out;
  out.upper.resize(static_cast<std::size_t>(d * d));
  double* a = out.upper.data();
  // a = P H Pᵀ (symmetric, so layout does not matter), then reversed.
#pragma omp parallel for schedule(static) if (d * d > kParallelWork)
  for (std::int64_t j = 0; j < d; ++j) {
    const double* column = h.data() + perm[static_cast<std::size_t>(j)] * d;
    for (std::int64_t i = 0; i < d; ++i) a[i + j * d] = column[perm[static_cast<std::size_t>(i)]];
  }
  std::reverse(out.upper.begin(), out.upper.end());
  // Column-major: A = U'ᵀU' with U' = Lᵀ; the inverse (Lᵀ)^-1 = (L^-1)ᵀ, read row-major, is L^-1 in
  // the lower half.
  out.cholesky = algebra.factor_inverse(a, d, damp, layer);
  if (!out.cholesky.ok) {
    std::fill(out.upper.begin(), out.upper.end(), 0.0);
    for (std::int64_t i = 0; i < d; ++i) out.upper[static_cast<std::size_t>(i * d + i)] = 1.0;
    return out;
  }
  std::reverse(out.upper.begin(), out.upper.end());  // row-major J L^-1 J = U
  return out;
}

// LAPACK and OpenBLAS directly on the host working weights.
class HostLinearAlgebra final : public GptqLinearAlgebra {
 public:
  detail::DampedCholesky factor_inverse(double* a, std::int64_t d, double damp, std::string_view layer) override {
    detail::DampedCholesky result = detail::damped_cholesky_upper(a, d, damp, layer);
    if (!result.ok || d == 0) return result;
    const lapack_int info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', static_cast<lapack_int>(d), a,
                                           static_cast<lapack_int>(d));
    if (info != 0) {
      log::warn("{}: inverting the Cholesky factor failed (singular at column {}); no error compensation", layer,
                info);
      result.ok = false;
    }
    return result;
  }
  void start(std::span<double> work, std::int64_t rows, std::int64_t d, const double* u) override {
    work_ = work.data();
    rows_ = rows;
    d_ = d;
    u_ = u;
  }
  void sync_block(std::int64_t, std::int64_t, std::span<const std::int64_t>) override {}  // already current
  void update_trailing(const double* errors, std::int64_t ld, std::int64_t begin, std::int64_t end) override {
    if (end >= d_) return;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows_), static_cast<int>(d_ - end),
                static_cast<int>(end - begin), -1.0, errors, static_cast<int>(ld), u_ + begin * d_ + end,
                static_cast<int>(d_), 1.0, work_ + end, static_cast<int>(d_));
  }

 private:
  double* work_ = nullptr;
  const double* u_ = nullptr;
  std::int64_t rows_ = 0, d_ = 0;
};

// The moment GPTQ first reaches a column of a group whose scale is chosen dynamically. Columns of
// the group beyond the current lazy batch have not yet received the batch's pending updates, so
// their current values are W[q] - err[0:k] . U[b:b+k, q]; `pending` holds those U entries.
struct GroupEvent {
  std::int64_t group = 0;
  std::int64_t done_in_block = 0;                 // k: columns of this block already quantized
  std::vector<std::int64_t> positions;            // processing position of each group column (original order)
  std::vector<std::int64_t> outside;              // indices into `positions` that lie beyond the block
  std::vector<double> pending;                    // k x outside.size(), row-major
};

}  // namespace

std::unique_ptr<GptqLinearAlgebra> make_host_linear_algebra() { return std::make_unique<HostLinearAlgebra>(); }

LayerResult rtn(ConstMatrixView w, const formats::QuantSpec& spec, std::optional<float> global_scale,
                std::string_view layer) {
  check_weight(w, layer);
  LayerResult result;
  const float scale = global_scale ? *global_scale : formats::tensor_global_scale(spec, w.data);
  result.quantized = formats::quantize(w, spec, scale, layer);
  result.dequantized = Matrix(w.rows, w.cols);
  formats::dequantize(result.quantized, result.dequantized.view());
  return result;
}

LayerResult gptq(ConstMatrixView w, const Eigen::MatrixXd& hessian, const formats::QuantSpec& spec,
                 const GptqOptions& options, std::string_view layer) {
  check_weight(w, layer);
  const std::int64_t rows = w.rows;
  const std::int64_t d = w.cols;
  if (hessian.rows() != d || hessian.cols() != d) {
    fail("{}: Hessian is {}x{} but the weight has {} input columns", layer, hessian.rows(), hessian.cols(), d);
  }
  const std::int64_t group = spec.group_for(d);
  if (group <= 0 || d % group != 0) fail("{}: {} columns are not a multiple of the group size {}", layer, d, group);
  if (options.block_size <= 0) fail("{}: GPTQ block size must be positive, got {}", layer, options.block_size);
  if (!(options.damp >= 0) || !std::isfinite(options.damp)) {
    fail("{}: GPTQ damping must be a finite non-negative fraction, got {}", layer, options.damp);
  }

  LayerResult result;
  const float global_scale = options.global_scale ? *options.global_scale : formats::tensor_global_scale(spec, w.data);
  const formats::GroupQuantizer quantizer(spec, global_scale);
  const std::int64_t groups = d / group;
  std::vector<formats::GroupParams> params(static_cast<std::size_t>(rows * groups));
  result.dequantized = Matrix(rows, d);
  if (rows == 0 || d == 0) {
    result.quantized = formats::pack_with_params(w, spec, global_scale, params, layer);
    return result;
  }

  Eigen::MatrixXd h = hessian;
  const detail::HessianRepair repair = detail::repair_hessian(h, layer);
  result.dead_columns = static_cast<std::int64_t>(repair.dead_columns.size());
  result.invalid_hessian_columns = repair.invalid_columns;

  // Original-order float weights with dead columns zeroed (static group scales are chosen from these).
  std::vector<float> original(w.data.begin(), w.data.end());
  for (const std::int64_t c : repair.dead_columns) {
    for (std::int64_t r = 0; r < rows; ++r) original[static_cast<std::size_t>(r * d + c)] = 0.0f;
  }

  // Processing order: descending H_ii (stable, so ties keep their original order) or the identity.
  std::vector<std::int64_t> perm(static_cast<std::size_t>(d));
  std::iota(perm.begin(), perm.end(), 0);
  if (options.act_order) {
    std::stable_sort(perm.begin(), perm.end(), [&](std::int64_t a, std::int64_t b) { return h(a, a) > h(b, b); });
  }
  std::vector<std::int64_t> position(static_cast<std::size_t>(d));
  for (std::int64_t p = 0; p < d; ++p) position[static_cast<std::size_t>(perm[static_cast<std::size_t>(p)])] = p;

  std::unique_ptr<GptqLinearAlgebra> host_algebra;
  GptqLinearAlgebra* algebra = options.linear_algebra;
  if (algebra == nullptr) {
    host_algebra = make_host_linear_algebra();
    algebra = host_algebra.get();
  }
  InverseFactor factor = inverse_cholesky_factor(h, perm, options.damp, *algebra, layer);
  result.damp = factor.cholesky.damp;
  result.damped_extra = factor.cholesky.damped_extra;
  result.identity_fallback = !factor.cholesky.ok;
  h.resize(0, 0);  // the factor is all GPTQ needs from here on
  const double* u = factor.upper.data();

  // Working weights in processing order, double.
  std::vector<double> work(static_cast<std::size_t>(rows * d));
#pragma omp parallel for schedule(static) if (rows * d > kParallelWork)
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* src = original.data() + r * d;
    double* dst = work.data() + r * d;
    for (std::int64_t p = 0; p < d; ++p) dst[p] = src[perm[static_cast<std::size_t>(p)]];
  }

  if (options.static_groups) {
#pragma omp parallel for schedule(static) if (rows * d * 8 > kParallelWork)
    for (std::int64_t r = 0; r < rows; ++r) {
      for (std::int64_t g = 0; g < groups; ++g) {
        params[static_cast<std::size_t>(r * groups + g)] =
            quantizer.choose(std::span<const float>(original.data() + r * d + g * group, static_cast<std::size_t>(group)));
      }
    }
  }

  // Where each dynamically scaled group is first reached.
  std::vector<std::int64_t> first_reached(static_cast<std::size_t>(d), -1);
  if (!options.static_groups) {
    std::vector<char> seen(static_cast<std::size_t>(groups), 0);
    for (std::int64_t p = 0; p < d; ++p) {
      const std::int64_t g = perm[static_cast<std::size_t>(p)] / group;
      if (!seen[static_cast<std::size_t>(g)]) {
        seen[static_cast<std::size_t>(g)] = 1;
        first_reached[static_cast<std::size_t>(p)] = g;
      }
    }
  }

  const std::int64_t block = options.block_size;
  std::vector<double> errors(static_cast<std::size_t>(rows * block));
  float* dequantized = result.dequantized.data.data();
  algebra->start(work, rows, d, u);
  std::vector<std::int64_t> outside_columns;

  for (std::int64_t b = 0; b < d; b += block) {
    const std::int64_t end = std::min(b + block, d);
    const std::int64_t width = end - b;

    // Group events of this block, with the pending-update coefficients gathered once for all rows.
    std::vector<GroupEvent> events;
    std::vector<std::int64_t> event_at(static_cast<std::size_t>(width), -1);
    for (std::int64_t p = b; p < end; ++p) {
      const std::int64_t g = first_reached[static_cast<std::size_t>(p)];
      if (g < 0) continue;
      GroupEvent event;
      event.group = g;
      event.done_in_block = p - b;
      for (std::int64_t t = 0; t < group; ++t) {
        const std::int64_t q = position[static_cast<std::size_t>(g * group + t)];
        event.positions.push_back(q);
        if (q >= end) event.outside.push_back(t);
      }
      const auto k = static_cast<std::size_t>(event.done_in_block);
      event.pending.resize(k * event.outside.size());
      for (std::size_t i = 0; i < k; ++i) {
        for (std::size_t o = 0; o < event.outside.size(); ++o) {
          const std::int64_t q = event.positions[static_cast<std::size_t>(event.outside[o])];
          event.pending[i * event.outside.size() + o] = u[(b + static_cast<std::int64_t>(i)) * d + q];
        }
      }
      for (const std::int64_t t : event.outside) outside_columns.push_back(event.positions[static_cast<std::size_t>(t)]);
      event_at[static_cast<std::size_t>(p - b)] = static_cast<std::int64_t>(events.size());
      events.push_back(std::move(event));
    }
    // The block's columns, and the later columns its group events read, must be current on the host.
    algebra->sync_block(b, end, outside_columns);
    outside_columns.clear();

#pragma omp parallel if (rows * width * (width + group) > kParallelWork)
    {
      std::vector<float> values(static_cast<std::size_t>(group));
#pragma omp for schedule(static)
      for (std::int64_t r = 0; r < rows; ++r) {
        double* row = work.data() + r * d;
        double* err = errors.data() + r * block;
        for (std::int64_t p = b; p < end; ++p) {
          const std::int64_t event_index = event_at[static_cast<std::size_t>(p - b)];
          if (event_index >= 0) {
            const GroupEvent& event = events[static_cast<std::size_t>(event_index)];
            for (std::int64_t t = 0; t < group; ++t) {
              values[static_cast<std::size_t>(t)] = static_cast<float>(row[event.positions[static_cast<std::size_t>(t)]]);
            }
            const std::size_t outside = event.outside.size();
            for (std::size_t o = 0; o < outside; ++o) {
              const std::int64_t t = event.outside[o];
              double v = row[event.positions[static_cast<std::size_t>(t)]];
              for (std::int64_t i = 0; i < event.done_in_block; ++i) {
                v -= err[i] * event.pending[static_cast<std::size_t>(i) * outside + o];
              }
              values[static_cast<std::size_t>(t)] = static_cast<float>(v);
            }
            params[static_cast<std::size_t>(r * groups + event.group)] = quantizer.choose(values);
          }
          const std::int64_t column = perm[static_cast<std::size_t>(p)];
          const formats::GroupParams& prm = params[static_cast<std::size_t>(r * groups + column / group)];
          const double value = row[p];
          const float q = quantizer.fake_quant(static_cast<float>(value), prm);
          dequantized[r * d + column] = q;
          const double e = (value - static_cast<double>(q)) / u[p * d + p];
          err[p - b] = e;
          const double* u_row = u + p * d;
          for (std::int64_t t = p + 1; t < end; ++t) row[t] -= e * u_row[t];
        }
      }
    }

    // Lazy batch: the rest of the row receives this block's errors in one GEMM.
    algebra->update_trailing(errors.data(), block, b, end);
  }

  result.quantized = formats::pack_with_params(result.dequantized.view(), spec, global_scale, params, layer);
  return result;
}

LayerResult mr_gptq(ConstMatrixView w, const Eigen::MatrixXd& hessian, formats::QuantSpec spec,
                    const rotation::RotationSpec& rotation, GptqOptions options, std::string_view layer) {
  check_weight(w, layer);
  if (hessian.rows() != w.cols || hessian.cols() != w.cols) {
    fail("{}: Hessian is {}x{} but the weight has {} input columns", layer, hessian.rows(), hessian.cols(), w.cols);
  }
  spec.scale = formats::ScaleSearch::mse;
  options.act_order = true;
  options.static_groups = true;
  Matrix rotated(w.rows, w.cols);
  std::copy(w.data.begin(), w.data.end(), rotated.data.begin());
  rotation::rotate_rows(rotated.view(), rotation);
  const Eigen::MatrixXd rotated_hessian = detail::conjugate_by_rotation(hessian, rotation);
  LayerResult result = gptq(rotated.view(), rotated_hessian, spec, options, layer);
  result.rotation = rotation;
  return result;
}

Matrix dequantized_in_original_basis(const LayerResult& result) {
  Matrix out = result.dequantized;
  rotation::unrotate_rows(out.view(), result.rotation);
  return out;
}

double layer_objective(ConstMatrixView w, ConstMatrixView w_hat, const Eigen::MatrixXd& hessian) {
  const std::int64_t rows = w.rows;
  const std::int64_t d = w.cols;
  if (w_hat.rows != rows || w_hat.cols != d || hessian.rows() != d || hessian.cols() != d ||
      w.data.size() != static_cast<std::size_t>(rows * d) || w_hat.data.size() != w.data.size()) {
    fail("layer objective: shapes W {}x{}, Ŵ {}x{}, H {}x{} do not match", rows, d, w_hat.rows, w_hat.cols,
         hessian.rows(), hessian.cols());
  }
  if (rows == 0 || d == 0) return 0.0;
  std::vector<double> error(w.data.size());
  for (std::size_t i = 0; i < error.size(); ++i) {
    error[i] = static_cast<double>(w.data[i]) - static_cast<double>(w_hat.data[i]);
  }
  std::vector<double> product(error.size());
  // product = E H (H symmetric: its column-major storage read row-major is H itself).
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows), static_cast<int>(d),
              static_cast<int>(d), 1.0, error.data(), static_cast<int>(d), hessian.data(), static_cast<int>(d), 0.0,
              product.data(), static_cast<int>(d));
  double total = 0;
  for (std::size_t i = 0; i < error.size(); ++i) total += error[i] * product[i];
  return total;
}

}  // namespace microscale::quantizers
