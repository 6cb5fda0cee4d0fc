#pragma once
// QEP (Arai & Ichikawa, NeurIPS 2025): before a layer is quantized, correct its weight for the error
// its input already carries from the quantized layers upstream.
//
// With X the layer's input in the full-precision model, X̂ the input in the partly quantized model
// and δ = X - X̂ (columns are tokens), the correction minimising ||W X - W' X̂||² is
//     W' = W + W δ X̂ᵀ (X̂ X̂ᵀ)^-1,
// and QEP applies a fraction α of it, with damping λ = damp * mean(diag(X̂ X̂ᵀ)) on the inverse:
//     W*(α) = W + α W δ X̂ᵀ (X̂ X̂ᵀ + λ I)^-1.
// The corrected weight is then quantized (RTN, GPTQ, ...) with the Hessian of X̂.
#include <string_view>

#include <Eigen/Core>

#include "microscale/core/matrix.hpp"
#include "microscale/quantizers/statistics.hpp"

namespace microscale::quantizers {

// W*(α) from statistics that tracked the cross term. α = 0 returns W exactly. Statistics that are
// not finite, or a system that cannot be solved, leave W uncorrected with a warning naming `layer`.
// Throws microscale::Error on shape mismatches or a non-finite weight.
Matrix qep_correct(ConstMatrixView w, const InputStatistics& stats, double alpha, double damp = 0.01,
                   std::string_view layer = "layer");

// The same from the matrices: hessian = 2/n X̂ X̂ᵀ, cross = 2/n δ X̂ᵀ (any common scale works).
Matrix qep_correct(ConstMatrixView w, const Eigen::MatrixXd& hessian, const Eigen::MatrixXd& cross, double alpha,
                   double damp = 0.01, std::string_view layer = "layer");

// The propagation strength of the QEP paper's experiments and its reference code: 1/2 for every
// linear except the MLP down projection (names containing "down_proj"), which is not corrected.
double default_qep_alpha(std::string_view linear_name);

}  // namespace microscale::quantizers
