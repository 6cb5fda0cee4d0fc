#pragma once
// GPU kernels for 4-bit weight-only linears (W4A16) on Hopper, with online block Hadamard rotation
// of activations and fused rotate-and-quantize of activations (docs/modules/cuda.md).
//
// Conventions (the same as the formats and rotation modules, so results compare with the CPU code):
//  * Weights are the checkpoint layout of formats::QuantizedMatrix: row-major [rows = out, cols = in],
//    4-bit E2M1 codes two per byte with element 2i in the low nibble, one scale byte per group
//    (MXFP4: E8M0, group 32; NVFP4: E4M3, group 16, value = e2m1 * e4m3 / global_scale).
//  * The device copy pads each row to a multiple of 32 elements with zero codes and zero scales, so
//    every row starts 16-byte aligned (identical to the checkpoint whenever cols % 32 == 0).
//  * Activations and outputs are BF16 (raw bits, std::uint16_t on the host side), row-major
//    [batch, features]; accumulation is FP32.
//  * Rotation: rows * R with R = blockdiag(D * H_b / sqrt(b)), exactly rotation::rotate_rows, in FP32.
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include <cuda_runtime_api.h>

#include "microscale/formats/format.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::cuda {

using bf16_bits = std::uint16_t;  // BF16 as stored in device memory

// Throws microscale::Error "<what>: <cuda error string>" unless status is cudaSuccess.
void check_cuda(cudaError_t status, const char* what);
// Number of CUDA devices, 0 when there is none or the driver is missing (never throws); `why` gets
// the runtime's explanation when it returns 0.
int device_count(const char** why = nullptr);

// An owning device allocation of n elements of T (cudaMalloc / cudaFree).
template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t n) : size_(n) {
    if (n > 0) check_cuda(cudaMalloc(reinterpret_cast<void**>(&data_), n * sizeof(T)), "cudaMalloc");
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  ~DeviceArray() { release(); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t bytes() const { return size_ * sizeof(T); }
  void upload(std::span<const T> host) {
    if (host.size() != size_) throw_size_mismatch(host.size());
    if (size_ > 0) check_cuda(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice), "upload");
  }
  void download(std::span<T> host) const {
    if (host.size() != size_) throw_size_mismatch(host.size());
    if (size_ > 0) check_cuda(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost), "download");
  }

 private:
  void release() {
    if (data_ != nullptr) cudaFree(data_);  // no throw from a destructor; a failed free leaks at worst
    data_ = nullptr;
    size_ = 0;
  }
  [[noreturn]] void throw_size_mismatch(std::size_t got) const;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

// How a 4-bit weight is laid out on the device.
//  * rows: the checkpoint layout, each row padded to a multiple of 32 elements with zero codes and
//    zero scales (every row starts 16-byte aligned). Read by the FP32 GEMV (fp4_gemv.cu), which can
//    fuse the input rotation.
//  * mma_tiles: the tensor-core layout, repacked on the device at load time (fp4_mma.cu). Rows are
//    cut into tiles of 16, K into chunks of 64 (zero-padded). Chunk (tile, c) is 512 bytes: lane l of
//    a warp holds 16 bytes, one 32-bit word per k-step j of 16 columns, and the word carries exactly
//    the 8 weights of lane l's A fragment of mma.m16n8k16 (rows g = l/4 and g+8, columns 2t, 2t+1,
//    2t+8, 2t+9 with t = l%4), nibbles placed so that decoding needs no shuffles. Scales follow the
//    same tiling: 32 (MXFP4) or 64 (NVFP4) bytes per chunk, rows g and g+8 side by side.
//    The kernel decodes weights times 2^-exponent_shift (exact in BF16; see fp4_mma.cu).
enum class Fp4Layout { rows, mma_tiles };

// A 4-bit weight on the device.
struct Fp4Weight {
  formats::Format format = formats::Format::mxfp4;
  Fp4Layout layout = Fp4Layout::rows;
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::int64_t padded_cols = 0;  // rows: cols rounded up to 32; mma_tiles: to 64
  float global_scale = 1.0f;     // nvfp4 only
  int exponent_shift = 0;        // mma_tiles only
  DeviceArray<std::uint8_t> codes;   // rows: rows * padded_cols / 2; mma_tiles: row tiles * padded_cols * 8
  DeviceArray<std::uint8_t> scales;  // rows: rows * padded_cols / group; mma_tiles: row tiles * chunks * 32|64
  int group() const { return format == formats::Format::mxfp4 ? 32 : 16; }
  std::size_t bytes() const { return codes.bytes() + scales.bytes(); }
};

// The load-time upload: pads rows to 32 elements (the rows layout). Throws for INT4 or inconsistent sizes.
Fp4Weight upload_weight(const formats::QuantizedMatrix& q);
Fp4Weight upload_weight(formats::Format format, std::int64_t rows, std::int64_t cols,
                        std::span<const std::uint8_t> packed_codes, std::span<const std::uint8_t> scale_codes,
                        float global_scale);

// Repacks a rows-layout weight into the mma_tiles layout on the device (the old buffers are freed).
// Leaves the weight as it is and returns false when its scales fall outside what the tile decode
// represents exactly: a NaN scale, or MXFP4 scales spanning more than 2^126 (both never produced by
// a sane quantizer); the rows layout then serves it.
bool to_mma_layout(Fp4Weight& w, cudaStream_t stream = nullptr);

// The rotation's per-column factor sign * 1/sqrt(b), on the device (the exact FP32 factors of
// rotation::rotate_rows). Block sizes 2..256 (a power of two) are supported on the GPU.
struct DeviceRotation {
  int block = 0;
  std::int64_t cols = 0;
  DeviceArray<float> factors;
  // The same factors as one magnitude and a sign bit per column (bit i of word w: column 32 w + i is
  // negative), for rotate-and-quantize: a lane of 32 values loads one word instead of 128 bytes of
  // factors, whose strided loads made that kernel bound by L1 (docs/benchmarks.md, fifth step).
  float magnitude = 0.0f;
  DeviceArray<std::uint32_t> negative;
};
DeviceRotation upload_rotation(const rotation::RotationSpec& spec, std::int64_t cols);
// DeviceRotation::negative from the factors: bit i of word w set where factor 32 w + i is negative
// (host-only, so that a CPU test checks it).
std::vector<std::uint32_t> negative_sign_words(std::span<const float> factors);

// Scratch of the W4A16 kernels: FP32 split-K partial sums and per-row-tile arrival counters (both
// kept zeroed between calls), and a BF16 copy of rotated activations. Buffers grow, never shrink;
// size them before capturing a CUDA graph (nothing may allocate then).
class GemvWorkspace {
 public:
  float* get(std::size_t floats);          // partial sums
  unsigned* arrivals(std::size_t tiles);   // split-K arrival counters of both W4A16 kernels
  bf16_bits* rotated(std::size_t elements);
 private:
  DeviceArray<float> buffer_;
  DeviceArray<std::uint32_t> arrivals_;
  DeviceArray<bf16_bits> rotated_;
};

// y[batch, rows] = x'[batch, cols] * W^T with x' = x * R when `rotation` is given and x' = x otherwise.
// Rows layout: the FP32 GEMV, batches of up to 16 per pass, the rotation fused into the activation
// staging. mma_tiles layout: the tensor-core kernel, batches of up to 64 per pass, the rotation by
// the separate Hadamard kernel into the workspace first. Any batch >= 1; each pass re-reads the weights.
// Launch choices of the tensor-core kernel that benchmarks sweep: how many blocks share a row tile's
// K (0 = chosen from the shape and the device), and whether each warp requests its next chunks before
// decoding the current ones (more loads in flight, more registers).
struct MmaTuning {
  int splits = 0;
  bool pipelined = false;  // the sweep in docs/benchmarks.md: faster in 13 of 16 shapes without
};
void gemv_w4a16(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, bf16_bits* y,
                const DeviceRotation* rotation, GemvWorkspace& workspace, cudaStream_t stream = nullptr,
                MmaTuning tuning = {});

// y = BF16(x * R), both [rows, cols] on the device (the separate online-rotation kernel).
void hadamard_bf16(const DeviceRotation& rotation, const bf16_bits* x, bf16_bits* y, std::int64_t rows,
                   std::int64_t cols, cudaStream_t stream = nullptr);

// Quantizes x (optionally rotated first, in FP32) to `format` with absmax scales, into the checkpoint
// layout: codes [rows, cols/2], scale codes [rows, cols/group]. MXFP4 uses the OCP shared-exponent
// rule (formats::MxRounding::ocp); NVFP4 uses `global_scale`. Bit-identical to formats::quantize of
// the FP32 rows (rotation::rotate_rows first when rotated). cols must be a multiple of the group.
void rotate_quantize(const bf16_bits* x, std::int64_t rows, std::int64_t cols, const DeviceRotation* rotation,
                     formats::Format format, float global_scale, std::uint8_t* codes, std::uint8_t* scale_codes,
                     cudaStream_t stream = nullptr);

// The whole weight decoded to BF16 [rows, cols] (bf16 of e2m1 * scale, scale as the CPU decodes it).
void dequantize_bf16(const Fp4Weight& w, bf16_bits* out, cudaStream_t stream = nullptr);
// Weight rows [row0, row0 + rows) decoded the same way into out [rows, cols] (out's row 0 is weight row
// row0), either layout. row0 must be a multiple of 16 (a row tile of the tile layout; asked of both
// layouts so that callers need not know which one a weight has); the range may end anywhere.
void dequantize_bf16_rows(const Fp4Weight& w, std::int64_t row0, std::int64_t rows, bf16_bits* out,
                          cudaStream_t stream = nullptr);

// cuBLAS BF16 GEMM y[batch, n] = x[batch, k] * W[n, k]^T with FP32 accumulation (the baseline, and the
// large-batch path after dequantize_bf16).
class Blas {
 public:
  Blas();
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  void gemm_bf16(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k,
                 bf16_bits* y, cudaStream_t stream = nullptr);
  // The same product with FP32 output (the output head: logits are not rounded to BF16).
  void gemm_bf16_f32(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k,
                     float* y, cudaStream_t stream = nullptr);
  // Either product into n columns of a wider row-major output whose rows are ldy >= n elements apart:
  // a slab of output features [n0, n0 + n) of y[batch, ldy] is written in place at y + n0.
  void gemm_bf16_columns(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k,
                         bf16_bits* y, std::int64_t ldy, cudaStream_t stream = nullptr);
  void gemm_bf16_f32_columns(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n,
                             std::int64_t k, float* y, std::int64_t ldy, cudaStream_t stream = nullptr);

 private:
  void gemm(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k, void* y,
            std::int64_t ldy, bool f32_out, cudaStream_t stream);
  void* handle_ = nullptr;  // cublasHandle_t
};

// The large-batch path of a 4-bit linear: y[batch, w.rows] = x[batch, w.cols] * W^T through a BF16 copy
// of W and cuBLAS (FP32 accumulation, every output a full-K dot product whatever the slabs).
//  * slab_rows = 0: the whole weight is decoded into `scratch`, then one GEMM.
//  * slab_rows > 0 (a multiple of 16): W's rows are cut into slabs of slab_rows (the last one may be
//    shorter); each slab is decoded into the same `scratch` and multiplied at once, writing its output
//    features in place (ldc = w.rows). The BF16 copy of the whole weight (33-470 MB for Llama-3 8B/70B)
//    exceeds the H100's 50 MB L2, so decoding it whole writes it to DRAM and cuBLAS reads it back; a
//    slab that fits is still in L2 when its GEMM reads it. slab_rows >= w.rows is one slab (as 0).
// `scratch` must hold slab_scratch_elements(w, slab_rows) elements. Errors (bad slab, short scratch,
// batch < 1) are microscale::Error before any device work.
void dequantize_gemm_bf16(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, bf16_bits* y, Blas& blas,
                          std::span<bf16_bits> scratch, std::int64_t slab_rows, cudaStream_t stream = nullptr);
// The same with FP32 output (the output head).
void dequantize_gemm_bf16_f32(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, float* y, Blas& blas,
                              std::span<bf16_bits> scratch, std::int64_t slab_rows, cudaStream_t stream = nullptr);
// BF16 elements of the scratch that dequantize_gemm_bf16 needs: one slab (the whole weight for 0).
std::int64_t slab_scratch_elements(const Fp4Weight& w, std::int64_t slab_rows);
// The slab size for a [rows, cols] weight when the caller has no measured better one: the most rows (a
// multiple of 16) whose BF16 slab fits kSlabBytes, but at least kMinSlabRows; rows rounded up to 16 (one
// slab, the whole weight) when that covers the weight anyway.
//  * kSlabBytes = 16 MiB, a third of L2: the GEMM streams x (batch * cols * 2 bytes, 16 MB at batch 2048
//    and K = 4096) and writes y through L2 at the same time as it reads the slab, and the slab must
//    survive from its dequantize to its GEMM.
//  * kMinSlabRows = 1024: at batch 2048 a GEMM of 1024 rows is 8 x 16 output tiles of 128 x 128, about
//    one wave on 132 SMs; a thinner slab leaves SMs idle in every slab's GEMM (and each slab costs a
//    dequantize launch, a GEMM launch and their tails). For K >= 8192 this minimum wins over the byte
//    budget (a 1024-row slab is 16 MB at K = 8192, 56 MB at K = 28672: no longer L2-resident).
// fp4_driver --bench times this choice against a sweep of slab sizes.
inline constexpr std::int64_t kSlabBytes = std::int64_t{16} << 20;
inline constexpr std::int64_t kMinSlabRows = 1024;
std::int64_t default_slab_rows(std::int64_t rows, std::int64_t cols);

}  // namespace microscale::cuda
