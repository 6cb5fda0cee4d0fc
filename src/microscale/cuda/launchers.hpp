#pragma once
// Kernel launchers (internal to the cuda module): plain pointers in, cudaError_t out. The .cu files
// implement them; fp4_linear.cpp validates arguments and turns errors into microscale::Error, so
// the .cu files need no fmt and the host checks stay in one place.
#include <cstdint>

#include <cuda_runtime_api.h>

namespace microscale::cuda::detail {

enum class Fp4Kind : int { mxfp4 = 0, nvfp4 = 1 };

struct GemvArgs {
  Fp4Kind kind;
  const std::uint8_t* codes;    // [rows, padded_cols / 2]
  const std::uint8_t* scales;   // [rows, padded_cols / group]
  std::int64_t rows;
  std::int64_t cols;            // true K (activations have this row length)
  std::int64_t padded_cols;     // multiple of 32
  float out_scale;              // 1 (mxfp4) or 1 / global_scale (nvfp4)
  const std::uint16_t* x;       // [batch, cols] BF16
  std::int64_t batch;           // 1..16
  const float* rotation;        // per-column factors, or null (no rotation)
  int rotation_block;
  std::uint16_t* y;             // [batch, rows] BF16
  float* partial;               // zeroed FP32 scratch of batch * rows (split-K path)
  unsigned* arrivals;           // zeroed counters, one per 2 rows (split-K path)
};
cudaError_t launch_gemv(const GemvArgs& args, cudaStream_t stream);

// ---- the tensor-core tile layout (fp4_mma.cu; the layout itself is described in fp4_linear.hpp) ----
struct MmaArgs {
  Fp4Kind kind;
  const std::uint8_t* tiles;    // [row_tiles, chunks] x 512 bytes of codes
  const std::uint8_t* scales;   // [row_tiles, chunks] x 32 (mxfp4) or 64 (nvfp4) bytes
  std::int64_t rows;
  std::int64_t cols;            // true K, a multiple of 16
  std::int64_t chunks;          // K / 64, rounded up
  std::uint32_t scale_bias;     // mxfp4: (126 - exponent_shift) in each byte; unused for nvfp4
  float out_scale;              // 2^exponent_shift (mxfp4) or 2^9 / global_scale (nvfp4)
  const std::uint16_t* x;       // [batch, cols] BF16
  std::int64_t batch;           // 1..64
  std::uint16_t* y;             // [batch, rows] BF16
  float* partial;               // zeroed FP32 scratch of batch * rows (split-K)
  unsigned* arrivals;           // zeroed counters, one per row tile (split-K)
  int splits;                   // K splits across blocks; 0 = chosen for the device
  bool pipelined;               // request the next chunks before decoding the current ones
};
cudaError_t launch_mma(const MmaArgs& args, cudaStream_t stream);
// The K splits launch_mma picks for `args` when args.splits == 0 (for the benchmark's record).
int mma_auto_splits(const MmaArgs& args);

// Row-major codes [rows, padded_cols / 2] and scales [rows, padded_cols / group] into the tile layout
// (zero-filled past rows / cols; groups whose NVFP4 scale is zero get zero codes, as they decode to 0).
cudaError_t launch_repack_mma(Fp4Kind kind, const std::uint8_t* codes, const std::uint8_t* scales, std::int64_t rows,
                              std::int64_t cols, std::int64_t padded_cols, std::int64_t chunks, std::uint8_t* tiles,
                              std::uint8_t* tile_scales, cudaStream_t stream);
// Weight rows [row0, row0 + rows) of the tile layout decoded to BF16 [rows, cols] (out's row 0 is weight
// row row0), with exactly the values of launch_dequantize_bf16. row0 must start a row tile (a multiple
// of 16; cudaErrorInvalidValue otherwise); rows may end inside one (the weight's last tile, or a slab's).
cudaError_t launch_dequantize_mma_bf16(Fp4Kind kind, const std::uint8_t* tiles, const std::uint8_t* tile_scales,
                                       std::int64_t row0, std::int64_t rows, std::int64_t cols, std::int64_t chunks,
                                       float global_scale, std::uint16_t* out, cudaStream_t stream);

cudaError_t launch_hadamard_bf16(const float* factors, int block, const std::uint16_t* x, std::uint16_t* y,
                                 std::int64_t rows, std::int64_t cols, cudaStream_t stream);

// The rotation, when `negative` is not null, multiplies column c by magnitude, negated where bit c % 32
// of negative[c / 32] is set (DeviceRotation's sign words), before the block Hadamard.
cudaError_t launch_rotate_quantize(const std::uint16_t* x, std::int64_t rows, std::int64_t cols,
                                   const std::uint32_t* negative, float magnitude, int block, Fp4Kind kind,
                                   float global_scale, std::uint8_t* codes, std::uint8_t* scales,
                                   cudaStream_t stream);

// Weight rows [row0, row0 + rows) of the row layout decoded to BF16 [rows, cols] (out's row 0 is weight row row0).
cudaError_t launch_dequantize_bf16(Fp4Kind kind, const std::uint8_t* codes, const std::uint8_t* scales,
                                   std::int64_t row0, std::int64_t rows, std::int64_t cols, std::int64_t padded_cols,
                                   float global_scale, std::uint16_t* out, cudaStream_t stream);

}  // namespace microscale::cuda::detail
