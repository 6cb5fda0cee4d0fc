// Host side of the FP4 kernels: argument checks (every failure is a microscale::Error naming the
// problem), the load-time repack, and cuBLAS.
#include "microscale/cuda/fp4_linear.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <cublas_v2.h>

#include "microscale/core/error.hpp"
#include "microscale/cuda/launchers.hpp"

namespace microscale::cuda {
namespace {

detail::Fp4Kind kind_of(formats::Format format, const char* what) {
  switch (format) {
    case formats::Format::mxfp4: return detail::Fp4Kind::mxfp4;
    case formats::Format::nvfp4: return detail::Fp4Kind::nvfp4;
    case formats::Format::int4: break;
  }
  fail("{}: the GPU kernels support mxfp4 and nvfp4 weights, not int4", what);
}

int group_of(formats::Format format) { return format == formats::Format::mxfp4 ? 32 : 16; }

void check_aligned(const void* p, const char* what) {
  if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0) fail("{}: device pointer is not 16-byte aligned", what);
}

void check_rotation(const DeviceRotation* rotation, std::int64_t cols, const char* what) {
  if (rotation == nullptr) return;
  if (rotation->cols != cols)
    fail("{}: rotation was built for rows of {} columns, activations have {}", what, rotation->cols, cols);
}

}  // namespace

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("{}: CUDA error {} ({})", what, cudaGetErrorName(status), cudaGetErrorString(status));
}

int device_count(const char** why) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    if (why != nullptr) *why = cudaGetErrorString(status);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return 0;
  }
  if (count == 0 && why != nullptr) *why = "cudaGetDeviceCount returned 0";
  return count;
}

template <typename T>
void DeviceArray<T>::throw_size_mismatch(std::size_t got) const {
  fail("device array of {} elements cannot copy {} elements", size_, got);
}
template class DeviceArray<std::uint8_t>;
template class DeviceArray<std::uint16_t>;
template class DeviceArray<float>;
template class DeviceArray<std::int32_t>;
template class DeviceArray<std::uint32_t>;
template class DeviceArray<double>;

Fp4Weight upload_weight(formats::Format format, std::int64_t rows, std::int64_t cols,
                        std::span<const std::uint8_t> packed_codes, std::span<const std::uint8_t> scale_codes,
                        float global_scale) {
  kind_of(format, "upload_weight");
  const int group = group_of(format);
  if (rows <= 0 || cols <= 0 || cols % group != 0)
    fail("upload_weight: a {}x{} weight does not fit {} groups of {}", rows, cols, formats::format_name(format), group);
  if (packed_codes.size() != static_cast<std::size_t>(rows * cols / 2))
    fail("upload_weight: {} code bytes for a {}x{} weight (expected {})", packed_codes.size(), rows, cols, rows * cols / 2);
  if (scale_codes.size() != static_cast<std::size_t>(rows * (cols / group)))
    fail("upload_weight: {} scale bytes for a {}x{} weight (expected {})", scale_codes.size(), rows, cols,
         rows * (cols / group));
  if (format == formats::Format::nvfp4 && !(global_scale > 0.0f && std::isfinite(global_scale)))
    fail("upload_weight: nvfp4 global scale must be positive and finite (got {})", global_scale);

  Fp4Weight w;
  w.format = format;
  w.rows = rows;
  w.cols = cols;
  w.padded_cols = (cols + 31) / 32 * 32;
  w.global_scale = format == formats::Format::nvfp4 ? global_scale : 1.0f;
  const std::int64_t row_bytes = w.padded_cols / 2;
  const std::int64_t row_scales = w.padded_cols / group;
  w.codes = DeviceArray<std::uint8_t>(static_cast<std::size_t>(rows * row_bytes));
  w.scales = DeviceArray<std::uint8_t>(static_cast<std::size_t>(rows * row_scales));
  if (w.padded_cols == cols) {
    w.codes.upload(packed_codes);
    w.scales.upload(scale_codes);
  } else {
    // Zero codes and zero scales in the padding contribute exactly 0.
    std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * row_bytes), 0);
    std::vector<std::uint8_t> scales(static_cast<std::size_t>(rows * row_scales), 0);
    for (std::int64_t r = 0; r < rows; ++r) {
      std::memcpy(codes.data() + r * row_bytes, packed_codes.data() + r * (cols / 2), static_cast<std::size_t>(cols / 2));
      std::memcpy(scales.data() + r * row_scales, scale_codes.data() + r * (cols / group),
                  static_cast<std::size_t>(cols / group));
    }
    w.codes.upload(codes);
    w.scales.upload(scales);
  }
  return w;
}

Fp4Weight upload_weight(const formats::QuantizedMatrix& q) {
  kind_of(q.spec.format, "upload_weight");
  return upload_weight(q.spec.format, q.rows, q.cols, q.codes, q.scale_codes, q.global_scale);
}

bool to_mma_layout(Fp4Weight& w, cudaStream_t stream) {
  const detail::Fp4Kind kind = kind_of(w.format, "to_mma_layout");
  if (w.layout == Fp4Layout::mma_tiles) return true;
  // The scale range decides the exponent shift (fp4_mma.cu): NVFP4 always 9; MXFP4 the smallest
  // shift >= 0 that keeps every C = 2^(E - 1 - shift) a finite BF16, i.e. E - shift <= 128.
  std::vector<std::uint8_t> scales(w.scales.size());
  w.scales.download(scales);
  int shift = 9;
  if (kind == detail::Fp4Kind::mxfp4) {
    const std::uint8_t top = scales.empty() ? 0 : *std::max_element(scales.begin(), scales.end());
    if (top == 0xFF) return false;  // NaN scale
    shift = std::max(0, static_cast<int>(top) - 128);
  } else if (std::any_of(scales.begin(), scales.end(), [](std::uint8_t c) { return (c & 0x7F) == 0x7F; })) {
    return false;  // NaN scale
  }
  const std::int64_t chunks = (w.cols + 63) / 64;
  const std::int64_t row_tiles = (w.rows + 15) / 16;
  DeviceArray<std::uint8_t> tiles(static_cast<std::size_t>(row_tiles * chunks * 512));
  DeviceArray<std::uint8_t> tile_scales(static_cast<std::size_t>(row_tiles * chunks * (w.group() == 32 ? 32 : 64)));
  check_cuda(detail::launch_repack_mma(kind, w.codes.data(), w.scales.data(), w.rows, w.cols, w.padded_cols, chunks,
                                       tiles.data(), tile_scales.data(), stream),
             "repack for the tensor cores");
  check_cuda(cudaStreamSynchronize(stream), "repack for the tensor cores");
  w.codes = std::move(tiles);
  w.scales = std::move(tile_scales);
  w.padded_cols = chunks * 64;
  w.exponent_shift = shift;
  w.layout = Fp4Layout::mma_tiles;
  return true;
}

std::vector<std::uint32_t> negative_sign_words(std::span<const float> factors) {
  std::vector<std::uint32_t> words((factors.size() + 31) / 32, 0u);
  for (std::size_t i = 0; i < factors.size(); ++i) {
    if (std::signbit(factors[i])) words[i / 32] |= 1u << (i % 32);
  }
  return words;
}

DeviceRotation upload_rotation(const rotation::RotationSpec& spec, std::int64_t cols) {
  const int b = spec.block;
  if (b < 2 || b > 256 || (b & (b - 1)) != 0)
    fail("upload_rotation: the GPU rotates blocks of 2..256 (a power of two), not {}", b);
  if (cols <= 0 || cols % b != 0 || cols % 8 != 0)
    fail("upload_rotation: rows of {} columns are not a multiple of the block {} (and of 8)", cols, b);
  // The same FP32 factors rotation::rotate_rows multiplies by: sign * float(1 / sqrt(b)).
  std::vector<float> factors = rotation::rotation_signs(spec, cols);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(b)));
  for (float& f : factors) f *= scale;
  DeviceRotation r;
  r.block = b;
  r.cols = cols;
  r.factors = DeviceArray<float>(factors.size());
  r.factors.upload(factors);
  r.magnitude = scale;
  const std::vector<std::uint32_t> negative = negative_sign_words(factors);
  r.negative = DeviceArray<std::uint32_t>(negative.size());
  r.negative.upload(negative);
  return r;
}

namespace {

template <typename T>
T* grown_zeroed(DeviceArray<T>& buffer, std::size_t n, const char* what) {
  if (buffer.size() < n) {
    buffer = DeviceArray<T>(n);
    check_cuda(cudaMemset(buffer.data(), 0, buffer.bytes()), what);
  }
  return buffer.data();
}

// Passes of the tensor-core kernel (mma_tiles layout) over batches of up to 64 rows of x.
void mma_w4a16(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, bf16_bits* y, GemvWorkspace& workspace,
               cudaStream_t stream, MmaTuning tuning) {
  constexpr std::int64_t kPass = 64;
  const bool nv = w.format == formats::Format::nvfp4;
  detail::MmaArgs args{};
  args.kind = nv ? detail::Fp4Kind::nvfp4 : detail::Fp4Kind::mxfp4;
  args.tiles = w.codes.data();
  args.scales = w.scales.data();
  args.rows = w.rows;
  args.cols = w.cols;
  args.chunks = w.padded_cols / 64;
  args.scale_bias = static_cast<std::uint32_t>(126 - w.exponent_shift) * 0x01010101u;
  args.out_scale = nv ? std::ldexp(1.0f, w.exponent_shift) / w.global_scale : std::ldexp(1.0f, w.exponent_shift);
  args.partial = workspace.get(static_cast<std::size_t>(std::min(batch, kPass) * w.rows));
  args.arrivals = workspace.arrivals(static_cast<std::size_t>((w.rows + 15) / 16));
  args.splits = tuning.splits;
  args.pipelined = tuning.pipelined;
  for (std::int64_t b0 = 0; b0 < batch; b0 += kPass) {
    args.x = x + b0 * w.cols;
    args.batch = std::min(kPass, batch - b0);
    args.y = y + b0 * w.rows;
    check_cuda(detail::launch_mma(args, stream), "w4a16 tensor-core launch");
  }
}

}  // namespace

float* GemvWorkspace::get(std::size_t floats) { return grown_zeroed(buffer_, floats, "gemv workspace"); }
unsigned* GemvWorkspace::arrivals(std::size_t tiles) { return grown_zeroed(arrivals_, tiles, "gemv workspace"); }
bf16_bits* GemvWorkspace::rotated(std::size_t elements) {
  if (rotated_.size() < elements) rotated_ = DeviceArray<bf16_bits>(elements);
  return rotated_.data();
}

void gemv_w4a16(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, bf16_bits* y,
                const DeviceRotation* rotation, GemvWorkspace& workspace, cudaStream_t stream, MmaTuning tuning) {
  const detail::Fp4Kind kind = kind_of(w.format, "gemv_w4a16");
  if (batch < 1) fail("gemv_w4a16: batch must be at least 1 (got {})", batch);
  if (w.cols % 16 != 0) fail("gemv_w4a16: {} input features is not a multiple of 16", w.cols);
  check_rotation(rotation, w.cols, "gemv_w4a16");
  check_aligned(x, "gemv_w4a16 activations");
  if (w.layout == Fp4Layout::mma_tiles) {
    if (rotation != nullptr) {
      bf16_bits* xr = workspace.rotated(static_cast<std::size_t>(batch * w.cols));
      hadamard_bf16(*rotation, x, xr, batch, w.cols, stream);
      x = xr;
    }
    mma_w4a16(w, x, batch, y, workspace, stream, tuning);
    return;
  }
  constexpr std::int64_t kPass = 16;
  float* partial = workspace.get(static_cast<std::size_t>(std::min(batch, kPass) * w.rows));
  unsigned* arrivals = workspace.arrivals(static_cast<std::size_t>((w.rows + 1) / 2));
  for (std::int64_t b0 = 0; b0 < batch; b0 += kPass) {
    detail::GemvArgs args{};
    args.kind = kind;
    args.codes = w.codes.data();
    args.scales = w.scales.data();
    args.rows = w.rows;
    args.cols = w.cols;
    args.padded_cols = w.padded_cols;
    args.out_scale = kind == detail::Fp4Kind::nvfp4 ? 1.0f / w.global_scale : 1.0f;
    args.x = x + b0 * w.cols;
    args.batch = std::min(kPass, batch - b0);
    args.rotation = rotation != nullptr ? rotation->factors.data() : nullptr;
    args.rotation_block = rotation != nullptr ? rotation->block : 0;
    args.y = y + b0 * w.rows;
    args.partial = partial;
    args.arrivals = arrivals;
    check_cuda(detail::launch_gemv(args, stream), "gemv_w4a16 launch");
  }
}

void hadamard_bf16(const DeviceRotation& rotation, const bf16_bits* x, bf16_bits* y, std::int64_t rows,
                   std::int64_t cols, cudaStream_t stream) {
  check_rotation(&rotation, cols, "hadamard_bf16");
  check_aligned(x, "hadamard_bf16 input");
  check_aligned(y, "hadamard_bf16 output");
  check_cuda(detail::launch_hadamard_bf16(rotation.factors.data(), rotation.block, x, y, rows, cols, stream),
             "hadamard_bf16 launch");
}

void rotate_quantize(const bf16_bits* x, std::int64_t rows, std::int64_t cols, const DeviceRotation* rotation,
                     formats::Format format, float global_scale, std::uint8_t* codes, std::uint8_t* scale_codes,
                     cudaStream_t stream) {
  const detail::Fp4Kind kind = kind_of(format, "rotate_quantize");
  const int group = group_of(format);
  if (rows < 0 || cols <= 0 || cols % group != 0)
    fail("rotate_quantize: {} columns is not a multiple of the {} group {}", cols, formats::format_name(format), group);
  if (format == formats::Format::nvfp4 && !(global_scale > 0.0f && std::isfinite(global_scale)))
    fail("rotate_quantize: nvfp4 global scale must be positive and finite (got {})", global_scale);
  check_rotation(rotation, cols, "rotate_quantize");
  check_aligned(x, "rotate_quantize input");
  if (reinterpret_cast<std::uintptr_t>(codes) % 4 != 0) fail("rotate_quantize: codes pointer is not 4-byte aligned");
  check_cuda(detail::launch_rotate_quantize(x, rows, cols, rotation != nullptr ? rotation->negative.data() : nullptr,
                                            rotation != nullptr ? rotation->magnitude : 0.0f,
                                            rotation != nullptr ? rotation->block : 0, kind,
                                            format == formats::Format::nvfp4 ? global_scale : 1.0f, codes,
                                            scale_codes, stream),
             "rotate_quantize launch");
}

namespace {

void dequantize_rows(const Fp4Weight& w, std::int64_t row0, std::int64_t rows, bf16_bits* out, cudaStream_t stream,
                     const char* what) {
  const detail::Fp4Kind kind = kind_of(w.format, what);
  check_aligned(out, what);
  if (row0 < 0 || rows < 0 || row0 + rows > w.rows)
    fail("{}: rows [{}, {}) are outside the weight's {} rows", what, row0, row0 + rows, w.rows);
  if (row0 % 16 != 0) fail("{}: first row {} is not a multiple of 16", what, row0);
  if (w.layout == Fp4Layout::mma_tiles) {
    check_cuda(detail::launch_dequantize_mma_bf16(kind, w.codes.data(), w.scales.data(), row0, rows, w.cols,
                                                  w.padded_cols / 64, w.global_scale, out, stream),
               what);
    return;
  }
  check_cuda(detail::launch_dequantize_bf16(kind, w.codes.data(), w.scales.data(), row0, rows, w.cols, w.padded_cols,
                                            w.global_scale, out, stream),
             what);
}

// The effective slab: the whole weight for 0 (or anything that covers it).
std::int64_t slab_of(const Fp4Weight& w, std::int64_t slab_rows, const char* what) {
  if (slab_rows < 0 || slab_rows % 16 != 0)
    fail("{}: a slab of {} rows is not 0 (the whole weight) or a positive multiple of 16", what, slab_rows);
  return slab_rows == 0 ? w.rows : std::min(slab_rows, w.rows);
}

// dequantize_gemm_bf16 for either output type (gemm(slab, rows, output) multiplies one slab).
template <typename Out, typename Gemm>
void dequantize_gemm(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, Out* y, std::span<bf16_bits> scratch,
                     std::int64_t slab_rows, cudaStream_t stream, const char* what, Gemm gemm) {
  if (batch < 1) fail("{}: batch must be at least 1 (got {})", what, batch);
  const std::int64_t slab = slab_of(w, slab_rows, what);
  if (scratch.size() < static_cast<std::size_t>(slab * w.cols))
    fail("{}: a scratch of {} elements cannot hold a {}x{} slab", what, scratch.size(), slab, w.cols);
  // One stream: each slab's dequantize waits for the previous slab's GEMM to finish reading the scratch.
  // The first slab's dequantize_rows checks the format and the scratch's alignment before any launch.
  for (std::int64_t n0 = 0; n0 < w.rows; n0 += slab) {
    const std::int64_t rows = std::min(slab, w.rows - n0);
    dequantize_rows(w, n0, rows, scratch.data(), stream, what);
    gemm(scratch.data(), rows, y + n0);
  }
}

}  // namespace

void dequantize_bf16(const Fp4Weight& w, bf16_bits* out, cudaStream_t stream) {
  dequantize_rows(w, 0, w.rows, out, stream, "dequantize_bf16");
}

void dequantize_bf16_rows(const Fp4Weight& w, std::int64_t row0, std::int64_t rows, bf16_bits* out,
                          cudaStream_t stream) {
  dequantize_rows(w, row0, rows, out, stream, "dequantize_bf16_rows");
}

void dequantize_gemm_bf16(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, bf16_bits* y, Blas& blas,
                          std::span<bf16_bits> scratch, std::int64_t slab_rows, cudaStream_t stream) {
  dequantize_gemm(w, x, batch, y, scratch, slab_rows, stream, "dequantize_gemm_bf16",
                  [&](const bf16_bits* slab, std::int64_t rows, bf16_bits* out) {
                    blas.gemm_bf16_columns(x, slab, batch, rows, w.cols, out, w.rows, stream);
                  });
}

void dequantize_gemm_bf16_f32(const Fp4Weight& w, const bf16_bits* x, std::int64_t batch, float* y, Blas& blas,
                              std::span<bf16_bits> scratch, std::int64_t slab_rows, cudaStream_t stream) {
  dequantize_gemm(w, x, batch, y, scratch, slab_rows, stream, "dequantize_gemm_bf16_f32",
                  [&](const bf16_bits* slab, std::int64_t rows, float* out) {
                    blas.gemm_bf16_f32_columns(x, slab, batch, rows, w.cols, out, w.rows, stream);
                  });
}

std::int64_t slab_scratch_elements(const Fp4Weight& w, std::int64_t slab_rows) {
  return slab_of(w, slab_rows, "slab_scratch_elements") * w.cols;
}

std::int64_t default_slab_rows(std::int64_t rows, std::int64_t cols) {
  if (rows <= 0 || cols <= 0) fail("default_slab_rows: a {}x{} weight has no rows to slab", rows, cols);
  const std::int64_t fits = kSlabBytes / (cols * static_cast<std::int64_t>(sizeof(bf16_bits))) / 16 * 16;
  const std::int64_t whole = (rows + 15) / 16 * 16;
  return std::min(std::max(fits, kMinSlabRows), whole);
}

Blas::Blas() {
  cublasHandle_t h = nullptr;
  const cublasStatus_t status = cublasCreate(&h);
  if (status != CUBLAS_STATUS_SUCCESS) fail("cublasCreate failed: {}", cublasGetStatusString(status));
  // By default cuBLAS may reduce split-K partial sums in BF16, which costs several BF16 ulps on
  // long K; FP32 reduction is what the FP4 kernels do and what the tests bound.
  cublasSetMathMode(h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
  handle_ = h;
}

Blas::~Blas() {
  if (handle_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}

void Blas::gemm_bf16(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k,
                     bf16_bits* y, cudaStream_t stream) {
  gemm(x, w, batch, n, k, y, n, false, stream);
}

void Blas::gemm_bf16_f32(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k,
                         float* y, cudaStream_t stream) {
  gemm(x, w, batch, n, k, y, n, true, stream);
}

void Blas::gemm_bf16_columns(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n,
                             std::int64_t k, bf16_bits* y, std::int64_t ldy, cudaStream_t stream) {
  gemm(x, w, batch, n, k, y, ldy, false, stream);
}

void Blas::gemm_bf16_f32_columns(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n,
                                 std::int64_t k, float* y, std::int64_t ldy, cudaStream_t stream) {
  gemm(x, w, batch, n, k, y, ldy, true, stream);
}

void Blas::gemm(const bf16_bits* x, const bf16_bits* w, std::int64_t batch, std::int64_t n, std::int64_t k, void* y,
                std::int64_t ldy, bool f32_out, cudaStream_t stream) {
  if (ldy < n) fail("cublasGemmEx {}x{}x{}: output rows of {} elements cannot hold {} columns", batch, n, k, ldy, n);
  auto h = static_cast<cublasHandle_t>(handle_);
  cublasSetStream(h, stream);
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major view: y^T [n, batch] = W [n, k] (row-major, i.e. W^T column-major, transposed) * x^T, the
  // columns of y^T (rows of y) ldy elements apart.
  const cublasStatus_t status =
      cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(batch), static_cast<int>(k),
                   &alpha, w, CUDA_R_16BF, static_cast<int>(k), x, CUDA_R_16BF, static_cast<int>(k), &beta, y,
                   f32_out ? CUDA_R_32F : CUDA_R_16BF, static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) fail("cublasGemmEx {}x{}x{}: {}", batch, n, k, cublasGetStatusString(status));
}

}  // namespace microscale::cuda
