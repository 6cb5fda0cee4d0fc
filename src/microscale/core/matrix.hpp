#pragma once
// Non-owning views over row-major float matrices. A linear layer's weight is [out_features, in_features]
// as in PyTorch: rows are output channels, quantization groups run along a row (the input dimension).
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace microscale {

struct MatrixView {
  std::span<float> data;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::span<float> row(std::int64_t r) const {
    return data.subspan(static_cast<std::size_t>(r * cols), static_cast<std::size_t>(cols));
  }
};

struct ConstMatrixView {
  std::span<const float> data;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  ConstMatrixView() = default;
  ConstMatrixView(std::span<const float> d, std::int64_t r, std::int64_t c) : data(d), rows(r), cols(c) {}
  ConstMatrixView(MatrixView m) : data(m.data), rows(m.rows), cols(m.cols) {}  // NOLINT: widening is safe
  std::span<const float> row(std::int64_t r) const {
    return data.subspan(static_cast<std::size_t>(r * cols), static_cast<std::size_t>(cols));
  }
  // Rows [first, first + count) as a view (Eigen's middleRows).
  ConstMatrixView middle_rows(std::int64_t first, std::int64_t count) const {
    return {data.subspan(static_cast<std::size_t>(first * cols), static_cast<std::size_t>(count * cols)), count, cols};
  }
};

// An owning row-major matrix, for results.
struct Matrix {
  std::vector<float> data;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  Matrix() = default;
  Matrix(std::int64_t r, std::int64_t c) : data(static_cast<std::size_t>(r * c), 0.0f), rows(r), cols(c) {}
  MatrixView view() { return {data, rows, cols}; }
  ConstMatrixView view() const { return {data, rows, cols}; }
  float& operator()(std::int64_t r, std::int64_t c) { return data[static_cast<std::size_t>(r * cols + c)]; }
  float operator()(std::int64_t r, std::int64_t c) const { return data[static_cast<std::size_t>(r * cols + c)]; }
};

}  // namespace microscale
