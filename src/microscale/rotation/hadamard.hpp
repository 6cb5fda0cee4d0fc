#pragma once
// Block-wise Walsh-Hadamard rotations along the input dimension.
//
// R = blockdiag(D_b * H_b / sqrt(b)) where H_b is the Sylvester Hadamard matrix of size b and D_b an
// optional diagonal of random +-1 signs (drawn from `seed`, one sign per column of the full row).
// R is orthogonal, so for a linear layer y = x W^T the rotated pair (x R, W R) gives the same y:
// the same right-multiplication applies to weight rows (offline) and activation rows (online).
//
// Per block of a row: x R = fwht(x * d) and x R^T = fwht(x) * d (H is symmetric, D diagonal).
//
// Signs: a splitmix64 stream seeded with `seed`; column j takes the j-th output (state advanced by
// 0x9E3779B97F4A7C15 before each output) and is -1 when that output's top bit is set, else +1.
// Written out in hadamard.cpp, so the signs are the same on every platform and compiler.
#include <cstdint>
#include <span>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::rotation {

struct RotationSpec {
  int block = 0;              // 0 = no rotation; else a power of two (16..128 typical, any up to the row)
  bool random_signs = false;
  std::uint64_t seed = 0;
  bool enabled() const { return block > 0; }
};

// In-place orthonormal fast Walsh-Hadamard transform (v <- v H / sqrt(n)) of a power-of-two-length
// vector. Throws microscale::Error if the length is not a power of two.
void fwht(std::span<float> v);

// The +-1 signs for a row of `cols` columns (all +1 without random_signs). Deterministic in seed.
std::vector<float> rotation_signs(const RotationSpec& spec, std::int64_t cols);

// rows <- rows * R  (each row transformed independently; OpenMP over rows). A disabled spec is a no-op.
// Throws microscale::Error if cols is not a multiple of spec.block or block is not a power of two.
void rotate_rows(MatrixView rows, const RotationSpec& spec);
// rows <- rows * R^T (the inverse).
void unrotate_rows(MatrixView rows, const RotationSpec& spec);

}  // namespace microscale::rotation
