#pragma once
// Layer-wise weight quantizers: round-to-nearest, GPTQ (Frantar et al. 2022) and MR-GPTQ
// (Egiazarian et al. 2025). docs/modules/quantizers.md has the algorithms, defaults and sources.
//
// Conventions: a weight W is [out_features, in_features] (row-major, groups along a row); the
// Hessian H is [in, in] with H = 2/n * sum xᵀx over n input rows x (InputStatistics::hessian()), so
// the GPTQ objective is tr((W - Ŵ) H (W - Ŵ)ᵀ) = 2/n * ||(W - Ŵ) Xᵀ||².
#include <cstdint>
#include <optional>
#include <string_view>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"
#include "microscale/formats/format.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::quantizers {

class GptqLinearAlgebra;  // gptq_linear_algebra.hpp

struct GptqOptions {
  double damp = 0.01;      // λ = damp * mean(diag H) added to the diagonal (GPTQ's percdamp)
  int block_size = 128;    // columns per lazy batch; the trailing update is one GEMM per batch
  bool act_order = true;   // process columns by descending H_ii
  // Fix every group's scale up front, from the unquantized weights in the original column order,
  // before processing in act-order ("static reordering"): no permutation or g_idx at inference.
  // Without it a group's scale is chosen when GPTQ first reaches one of its columns, from the
  // error-updated weights of the whole group. Groups always keep their contiguous original columns,
  // so every result packs into the standard format (see docs/modules/quantizers.md, "g_idx").
  bool static_groups = false;
  // NVFP4 tensor scale; default: formats::tensor_global_scale of the weight being quantized. Pass
  // one shared value for layers fused at inference (q/k/v, gate/up).
  std::optional<float> global_scale;
  // Where the factorisation and the lazy-batch updates run; null = the host (LAPACK/OpenBLAS). The
  // GPU's is cuda::make_device_linear_algebra() (quantize --device cuda). Not owned.
  GptqLinearAlgebra* linear_algebra = nullptr;
};

struct LayerResult {
  formats::QuantizedMatrix quantized;
  Matrix dequantized;              // == formats::dequantize(quantized), bit for bit
  rotation::RotationSpec rotation; // basis of both (disabled: the original basis); MR-GPTQ sets it
  std::int64_t dead_columns = 0;   // zero Hessian diagonal: weights set to 0
  std::int64_t invalid_hessian_columns = 0;  // NaN/Inf/negative-diagonal columns, quantized without compensation
  double damp = 0;                 // damping fraction finally used
  bool damped_extra = false;       // Cholesky needed more damping than asked
  bool identity_fallback = false;  // Cholesky failed at any damping: no error compensation at all
};

// Round-to-nearest (formats::quantize). Throws microscale::Error naming `layer` on bad input.
LayerResult rtn(ConstMatrixView w, const formats::QuantSpec& spec, std::optional<float> global_scale = {},
                std::string_view layer = "layer");

// GPTQ with the Cholesky factor of the inverse Hessian and lazy batch updates. Works for every
// format and scale search of `spec`. Throws microscale::Error (naming `layer`) on shape mismatches
// or non-finite weights; a broken Hessian (NaN/Inf, dead columns, not positive definite) is
// repaired with a warning through log::warn instead.
LayerResult gptq(ConstMatrixView w, const Eigen::MatrixXd& hessian, const formats::QuantSpec& spec,
                 const GptqOptions& options = {}, std::string_view layer = "layer");

// MR-GPTQ: W' = W R and H' = Rᵀ H R with the block rotation R, then GPTQ with MSE scale search,
// act-order and static groups forced on. The result is in the rotated basis (result.rotation):
// inference computes (x R) Ŵ'ᵀ. The NVFP4 global scale defaults to the rotated weight's.
LayerResult mr_gptq(ConstMatrixView w, const Eigen::MatrixXd& hessian, formats::QuantSpec spec,
                    const rotation::RotationSpec& rotation, GptqOptions options = {},
                    std::string_view layer = "layer");

// result.dequantized brought back to the original basis (Ŵ' Rᵀ); a copy when there is no rotation.
Matrix dequantized_in_original_basis(const LayerResult& result);

// tr((W - Ŵ) H (W - Ŵ)ᵀ), in double. W, Ŵ: [rows, d]; H: [d, d], symmetric.
double layer_objective(ConstMatrixView w, ConstMatrixView w_hat, const Eigen::MatrixXd& hessian);

}  // namespace microscale::quantizers
