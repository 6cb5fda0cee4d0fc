#pragma once
// The calibration activations of one stream ([samples*seqlen, hidden] floats). Held in memory while
// they fit the budget; beyond it they live in a memory-mapped temporary file (unlinked at once, so
// nothing is left behind even on a crash) and the kernel pages them to disk as needed.
#include <cstdint>
#include <filesystem>
#include <vector>

#include "microscale/core/matrix.hpp"

namespace microscale::pipeline {

class ActivationBuffer {
 public:
  // budget_bytes == 0: always in memory.
  ActivationBuffer(std::int64_t rows, std::int64_t cols, std::uint64_t budget_bytes,
                   const std::filesystem::path& spill_dir);
  ~ActivationBuffer();
  ActivationBuffer(const ActivationBuffer&) = delete;
  ActivationBuffer& operator=(const ActivationBuffer&) = delete;

  MatrixView view() { return {{data_, static_cast<std::size_t>(rows_ * cols_)}, rows_, cols_}; }
  MatrixView rows(std::int64_t first, std::int64_t count) {
    return {{data_ + first * cols_, static_cast<std::size_t>(count * cols_)}, count, cols_};
  }
  bool spilled() const { return mapped_ != nullptr; }

 private:
  std::int64_t rows_, cols_;
  std::vector<float> memory_;
  void* mapped_ = nullptr;
  std::size_t mapped_bytes_ = 0;
  float* data_ = nullptr;
};

}  // namespace microscale::pipeline
