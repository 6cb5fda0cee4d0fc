#pragma once
// GPU-vs-CPU checks of the FP4 kernels, shared by the gtest suite (tests/cuda/test_fp4_kernels.cpp) and
// the standalone driver that scripts/gpu-run.sh builds without gtest (bench/cuda/fp4_driver.cu).
//
// References are the CPU modules: formats::quantize / dequantize, rotation::rotate_rows, the codecs,
// and dot products in double. Quantization, dequantization and the Hadamard kernel must match
// bit-for-bit; GEMV/GEMM outputs must lie within the bound derived in gemv_tolerance() below.
// Every output buffer is poisoned (0xFF bytes: BF16 NaN) before the kernel runs, so an unwritten
// element fails the check. Inputs are random normals with outliers, all-zero groups and tiny values.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "microscale/core/matrix.hpp"
#include "microscale/cuda/fp4_linear.hpp"
#include "microscale/formats/codecs.hpp"
#include "microscale/formats/quantize.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::cuda::checks {

struct CheckResult {
  std::string name;
  bool pass = false;
  std::string detail;
};

inline std::string shape_name(const char* what, formats::Format f, std::int64_t rows, std::int64_t cols,
                              std::int64_t batch, int block, bool separate = false,
                              Fp4Layout layout = Fp4Layout::rows) {
  char buf[240];
  std::snprintf(buf, sizeof buf, "%s %s %lldx%lld batch %lld rot %d%s%s", what,
                std::string(formats::format_name(f)).c_str(), static_cast<long long>(rows),
                static_cast<long long>(cols), static_cast<long long>(batch), block,
                separate ? " (separate hadamard kernel)" : (block > 0 ? " (fused)" : ""),
                layout == Fp4Layout::mma_tiles ? " [tensor cores]" : "");
  return buf;
}

// The weight on the device in `layout` (the tile repack must accept every weight the checks build).
inline Fp4Weight device_weight(const formats::QuantizedMatrix& q, Fp4Layout layout) {
  Fp4Weight w = upload_weight(q);
  if (layout == Fp4Layout::mma_tiles && !to_mma_layout(w)) throw std::runtime_error("to_mma_layout refused the weight");
  return w;
}

// Activation-like values: normal, a few large outliers, an all-zero 32-block per row, some tiny values.
inline std::vector<float> activation_values(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> pick(0, 99);
  std::vector<float> v(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t zero_block = cols >= 64 ? (r * 32) % (cols - 31) / 32 * 32 : -1;
    for (std::int64_t c = 0; c < cols; ++c) {
      float x = normal(rng);
      const int p = pick(rng);
      if (p == 0) x *= 40.0f;
      if (p == 1) x *= 1e-30f;
      if (zero_block >= 0 && c >= zero_block && c < zero_block + 32) x = 0.0f;
      v[static_cast<std::size_t>(r * cols + c)] = x;
    }
  }
  return v;
}

inline std::vector<std::uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<std::uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = formats::bf16_from_float(v[i]);
  return out;
}

inline std::vector<float> from_bf16(const std::vector<std::uint16_t>& v) {
  std::vector<float> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = formats::bf16_to_float(v[i]);
  return out;
}

inline formats::QuantSpec fp4_spec(formats::Format f) {
  return formats::make_spec(f, f == formats::Format::mxfp4 ? 32 : 16, true, formats::ScaleSearch::absmax,
                            formats::MxRounding::ocp);
}

// A random weight quantized on the CPU (rows of normals with per-row magnitudes spanning 2^-6..2^6,
// times `magnitude`).
inline formats::QuantizedMatrix random_weight(formats::Format f, std::int64_t rows, std::int64_t cols,
                                              std::uint32_t seed, float magnitude = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix w(rows, cols);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float row_magnitude = std::ldexp(1.0f, static_cast<int>(r % 13) - 6);
    for (std::int64_t c = 0; c < cols; ++c) w(r, c) = normal(rng) * row_magnitude * magnitude * 0.02f;
  }
  return formats::quantize(w.view(), fp4_spec(f), "random weight");
}

template <typename T>
DeviceArray<T> device_copy(const std::vector<T>& host) {
  DeviceArray<T> d(host.size());
  d.upload(host);
  return d;
}

template <typename T>
DeviceArray<T> poisoned(std::size_t n) {
  DeviceArray<T> d(n);
  check_cuda(cudaMemset(d.data(), 0xFF, d.bytes()), "poison");
  return d;
}

template <typename T>
std::vector<T> host_copy(const DeviceArray<T>& d) {
  check_cuda(cudaDeviceSynchronize(), "synchronize");
  std::vector<T> h(d.size());
  d.download(h);
  return h;
}

// The GEMV error bound. The kernel computes y = BF16(sum of FP32 products), with every product
// w * x exact inside an FMA and at most n rounded additions/multiplications on any path from a
// product to the output: a lane's chain over its group (<= 32), its steps along K (K / 1024), the
// group-scale and tensor-scale multiplies, the 5-level warp tree and the split-K atomics
// (<= K / 1024). With n = 64 + K / 256 (generous) and S = sum |w_k x_k|, the FP32 result is within
// gamma S of the exact sum, gamma = n * 2^-24 (standard forward error of recursive summation);
// rounding that to BF16 adds at most half an ulp, <= 2^-8 of its magnitude. Hence
//   |y - y_ref| <= gamma S + 2^-8 (|y_ref| + gamma S).
// A wrong nibble, scale, row or column shifts y by about |w x| for some k, far outside this bound
// unless that product is itself below ~2^-8 |y|; the bit-exact quantize/dequantize checks cover
// the decoding exactly.
//
// The tensor-core kernel is checked with k = 8 K, i.e. n = 64 + K / 32: its products are exact too
// (BF16 x BF16 into FP32), but an mma may align and truncate its 16 products and the accumulator
// instead of rounding each addition to nearest, so each of a warp's K / 128 mma steps is allowed
// 2 roundings of up to 2^-23 (= 4 units of 2^-24) relative, plus the 8-warp sum and the split-K atomics.
inline double gemv_tolerance(double y_ref, double abs_sum, std::int64_t k) {
  const double gamma = (64.0 + static_cast<double>(k) / 256.0) * std::ldexp(1.0, -24);
  return gamma * abs_sum + std::ldexp(1.0, -8) * (std::fabs(y_ref) + gamma * abs_sum) + 1e-35;
}

// Compares a BF16 result [batch, rows] with x'[batch, cols] * W^T computed in double.
inline CheckResult compare_gemv(std::string name, const std::vector<float>& w, const std::vector<float>& x,
                                const std::vector<std::uint16_t>& y, std::int64_t rows, std::int64_t cols,
                                std::int64_t batch, std::int64_t chain_k) {
  CheckResult result{std::move(name), true, {}};
  double worst = 0.0;
  std::int64_t bad = 0;
  for (std::int64_t b = 0; b < batch; ++b) {
    for (std::int64_t n = 0; n < rows; ++n) {
      double sum = 0.0, abs_sum = 0.0;
      const float* wr = w.data() + n * cols;
      const float* xr = x.data() + b * cols;
      for (std::int64_t k = 0; k < cols; ++k) {
        const double p = static_cast<double>(wr[k]) * xr[k];
        sum += p;
        abs_sum += std::fabs(p);
      }
      const double got = formats::bf16_to_float(y[static_cast<std::size_t>(b * rows + n)]);
      const double tol = gemv_tolerance(sum, abs_sum, chain_k);
      const double err = std::fabs(got - sum);
      if (!(err <= tol)) {
        if (bad < 3) {
          char buf[200];
          std::snprintf(buf, sizeof buf, " [b=%lld n=%lld got %.6g want %.6g tol %.3g]", static_cast<long long>(b),
                        static_cast<long long>(n), got, sum, tol);
          result.detail += buf;
        }
        ++bad;
      }
      if (tol > 0 && err / tol > worst) worst = err / tol;
    }
  }
  char buf[120];
  std::snprintf(buf, sizeof buf, "worst error / bound = %.3f, %lld outside", worst, static_cast<long long>(bad));
  result.detail = buf + result.detail;
  result.pass = bad == 0;
  return result;
}

// GEMV: fused rotation (block > 0, separate = false), separate Hadamard kernel then GEMV
// (separate = true), or no rotation (block = 0).
inline CheckResult check_gemv(formats::Format f, std::int64_t rows, std::int64_t cols, std::int64_t batch, int block,
                              bool separate, std::uint32_t seed, Fp4Layout layout = Fp4Layout::rows,
                              float magnitude = 1.0f) {
  const std::string name = shape_name("gemv", f, rows, cols, batch, block, separate, layout);
  const formats::QuantizedMatrix q = random_weight(f, rows, cols, seed, magnitude);
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(batch, cols, seed + 1));
  std::vector<float> x = from_bf16(x_bits);

  const Fp4Weight dw = device_weight(q, layout);
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint16_t> dy = poisoned<std::uint16_t>(static_cast<std::size_t>(batch * rows));
  GemvWorkspace workspace;
  rotation::RotationSpec spec{block, true, seed + 2};
  if (block > 0) {
    const DeviceRotation rot = upload_rotation(spec, cols);
    if (separate) {
      DeviceArray<std::uint16_t> dxr = poisoned<std::uint16_t>(x_bits.size());
      hadamard_bf16(rot, dx.data(), dxr.data(), batch, cols);
      gemv_w4a16(dw, dxr.data(), batch, dy.data(), nullptr, workspace);
      x = from_bf16(host_copy(dxr));  // the GEMV's own input (the Hadamard kernel is checked bit-exactly)
    } else {
      gemv_w4a16(dw, dx.data(), batch, dy.data(), &rot, workspace);
      rotation::rotate_rows(MatrixView{x, batch, cols}, spec);
      // The tensor cores take BF16 operands: the tile path rotates into BF16 first (the Hadamard
      // kernel, bit-exact to rotate_rows then rounding), the GEMV keeps the rotated values in FP32.
      if (layout == Fp4Layout::mma_tiles) x = from_bf16(to_bf16(x));
    }
  } else {
    gemv_w4a16(dw, dx.data(), batch, dy.data(), nullptr, workspace);
  }
  return compare_gemv(name, w.data, x, host_copy(dy), rows, cols, batch,
                      layout == Fp4Layout::mma_tiles ? 8 * cols : cols);
}

// Tile-layout edge cases: MXFP4 scales above 2^1 (a non-zero exponent shift), NVFP4 groups whose
// scale byte is zero while their codes are not (they decode to 0 on the CPU), against the CPU
// decode of the same codes; and a NaN scale, which to_mma_layout must refuse.
inline CheckResult check_mma_edge_scales(formats::Format f, std::uint32_t seed) {
  const std::int64_t rows = 48, cols = 256, batch = 3;
  CheckResult result{shape_name("tile edge scales", f, rows, cols, batch, 0, false, Fp4Layout::mma_tiles), true, {}};
  formats::QuantizedMatrix q = random_weight(f, rows, cols, seed, 4096.0f);
  for (std::size_t i = 0; i < q.scale_codes.size(); i += 7) {
    if (f == formats::Format::nvfp4) q.scale_codes[i] = 0;
  }
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(batch, cols, seed + 1));
  Fp4Weight dw = upload_weight(q);
  if (!to_mma_layout(dw)) return {result.name, false, "to_mma_layout refused finite scales"};
  if (f == formats::Format::mxfp4 && dw.exponent_shift == 0) return {result.name, false, "expected a non-zero exponent shift"};
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint16_t> dy = poisoned<std::uint16_t>(static_cast<std::size_t>(batch * rows));
  GemvWorkspace workspace;
  gemv_w4a16(dw, dx.data(), batch, dy.data(), nullptr, workspace);
  result = compare_gemv(result.name, w.data, from_bf16(x_bits), host_copy(dy), rows, cols, batch, 8 * cols);
  formats::QuantizedMatrix bad = q;
  bad.scale_codes[5] = f == formats::Format::mxfp4 ? 0xFF : 0x7F;
  Fp4Weight dbad = upload_weight(bad);
  if (to_mma_layout(dbad) || dbad.layout != Fp4Layout::rows) {
    result.pass = false;
    result.detail += "; a NaN scale was repacked";
  }
  return result;
}

inline CheckResult check_hadamard(std::int64_t rows, std::int64_t cols, int block, bool signs, std::uint32_t seed) {
  CheckResult result{shape_name("hadamard bf16", formats::Format::mxfp4, rows, cols, 0, block) +
                         (signs ? " signs" : " no-signs"),
                     true,
                     {}};
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(rows, cols, seed));
  std::vector<float> x = from_bf16(x_bits);
  const rotation::RotationSpec spec{block, signs, seed + 7};
  rotation::rotate_rows(MatrixView{x, rows, cols}, spec);
  const std::vector<std::uint16_t> want = to_bf16(x);
  const DeviceRotation rot = upload_rotation(spec, cols);
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint16_t> dy = poisoned<std::uint16_t>(x_bits.size());
  hadamard_bf16(rot, dx.data(), dy.data(), rows, cols);
  const std::vector<std::uint16_t> got = host_copy(dy);
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < got.size(); ++i) mismatches += got[i] != want[i];
  result.pass = mismatches == 0;
  result.detail = std::to_string(mismatches) + " of " + std::to_string(got.size()) + " BF16 values differ";
  return result;
}

// Runs rotate_quantize on BF16 rows `x_bits` (rotation block 0 = none) and compares codes and
// scale bytes with `want_codes` / `want_scales`.
inline CheckResult compare_rotate_quantize(std::string name, formats::Format f, const std::vector<std::uint16_t>& x_bits,
                                           std::int64_t rows, std::int64_t cols, int block, std::uint32_t rot_seed,
                                           float global, const std::vector<std::uint8_t>& want_codes,
                                           const std::vector<std::uint8_t>& want_scales) {
  CheckResult result{std::move(name), true, {}};
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint8_t> codes = poisoned<std::uint8_t>(want_codes.size());
  DeviceArray<std::uint8_t> scales = poisoned<std::uint8_t>(want_scales.size());
  if (block > 0) {
    const DeviceRotation rot = upload_rotation(rotation::RotationSpec{block, true, rot_seed}, cols);
    rotate_quantize(dx.data(), rows, cols, &rot, f, global, codes.data(), scales.data());
    check_cuda(cudaDeviceSynchronize(), "rotate_quantize");
  } else {
    rotate_quantize(dx.data(), rows, cols, nullptr, f, global, codes.data(), scales.data());
  }
  const std::vector<std::uint8_t> got_codes = host_copy(codes);
  const std::vector<std::uint8_t> got_scales = host_copy(scales);
  std::size_t code_diff = 0, scale_diff = 0;
  for (std::size_t i = 0; i < got_codes.size(); ++i) code_diff += got_codes[i] != want_codes[i];
  for (std::size_t i = 0; i < got_scales.size(); ++i) scale_diff += got_scales[i] != want_scales[i];
  result.pass = code_diff == 0 && scale_diff == 0;
  result.detail = std::to_string(code_diff) + " code bytes and " + std::to_string(scale_diff) + " scale bytes differ";
  return result;
}

// formats::quantize of random activations; `global_factor` != 1 scales the tensor's own NVFP4 global
// scale so that groups saturate at 448 or get E4M3-subnormal scales.
inline CheckResult check_rotate_quantize(formats::Format f, std::int64_t rows, std::int64_t cols, int block,
                                         std::uint32_t seed, float global_factor = 1.0f) {
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(rows, cols, seed));
  std::vector<float> x = from_bf16(x_bits);
  if (block > 0) rotation::rotate_rows(MatrixView{x, rows, cols}, rotation::RotationSpec{block, true, seed + 3});
  const formats::QuantSpec qspec = fp4_spec(f);
  const float global = formats::tensor_global_scale(qspec, x) * global_factor;
  const formats::QuantizedMatrix want = formats::quantize(ConstMatrixView{x, rows, cols}, qspec, global, "activations");
  std::string name = shape_name("rotate+quantize", f, rows, cols, 0, block);
  if (global_factor != 1.0f) name += " global x" + std::to_string(global_factor);
  CheckResult result = compare_rotate_quantize(std::move(name), f, x_bits, rows, cols, block, seed + 3, global,
                                               want.codes, want.scale_codes);
  result.detail += " (formats::quantize)";
  return result;
}

// Values that sit exactly on the E2M1 decisions, for finite inputs: per group, an amax that makes the
// scale exactly E * 2^j (E a chosen E4M3 value, NVFP4 with a power-of-two global scale) or 2^e (MXFP4),
// and elements at exactly midpoint * scale (ties), one BF16 step either side, both signs, +-0, tiny
// values; the scale exponent sweeps from E4M3-subnormal / E8M0-minimum scales to saturating ones
// (amax / 6 * global > 448), and some groups are all zero. Compared with formats::quantize of the same
// FP32 rows (rotated on the CPU when block > 0), with `global` passed as is.
inline CheckResult check_rotate_quantize_edges(formats::Format f, int block, float global, std::uint32_t seed) {
  const bool nv = f == formats::Format::nvfp4;
  const int group = nv ? 16 : 32;
  const std::int64_t rows = 7, cols = 2048 + 3 * std::max(group, block);  // a partial 256-column segment at row ends
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> pick(0, 1 << 20);
  std::vector<float> x(static_cast<std::size_t>(rows * cols), 0.0f);
  const float mids[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  auto bf16_step = [](float v, int dir) {  // the neighbouring BF16 value
    std::uint32_t b = formats::bf16_from_float(v);
    b = dir > 0 ? b + 1 : (b > 0 ? b - 1 : 0);
    return formats::bf16_to_float(static_cast<std::uint16_t>(b));
  };
  const std::int64_t groups = rows * cols / group;
  for (std::int64_t g = 0; g < groups; ++g) {
    float* v = x.data() + g * group;
    const int kind = pick(rng) % 8;
    if (kind == 0) continue;  // all zero
    // scale = E * 2^j: E in [1, 1.875] (an E4M3 significand), j from deep subnormal to saturating.
    const float e4 = 1.0f + static_cast<float>(pick(rng) % 8) / 8.0f;
    const int j = nv ? pick(rng) % 60 - 40 : pick(rng) % 250 - 130;  // MXFP4: E8M0's whole range
    const float scale = nv ? e4 * std::ldexp(1.0f, j) : std::ldexp(1.0f, j);
    // NVFP4: amax / 6 * global = E * 2^j * global is then exact; pick amax so the scale is E * 2^j / global.
    const float unit = nv ? scale / global : scale;
    const float amax = 6.0f * unit;
    for (int i = 0; i < group; ++i) {
      const float m = mids[pick(rng) % 7] * unit;
      const int variant = pick(rng) % 6;
      float value = m;
      if (variant == 1) value = bf16_step(m, +1);
      if (variant == 2) value = bf16_step(m, -1);
      if (variant == 3) value = i % 2 ? 0.0f : -0.0f;
      if (variant == 4) value = unit * 1e-3f;
      value = formats::bf16_to_float(formats::bf16_from_float(value));
      v[i] = pick(rng) % 2 ? -value : value;
    }
    v[pick(rng) % group] = formats::bf16_to_float(formats::bf16_from_float(kind == 1 ? -amax : amax));
  }
  const std::vector<std::uint16_t> x_bits = to_bf16(x);
  std::vector<float> xf = from_bf16(x_bits);
  const std::uint32_t rot_seed = seed + 5;
  if (block > 0) rotation::rotate_rows(MatrixView{xf, rows, cols}, rotation::RotationSpec{block, true, rot_seed});
  const formats::QuantizedMatrix want = formats::quantize(ConstMatrixView{xf, rows, cols}, fp4_spec(f), global, "edges");
  char name[160];
  std::snprintf(name, sizeof name, "rotate+quantize edges %s %lldx%lld rot %d global %g",
                std::string(formats::format_name(f)).c_str(), static_cast<long long>(rows),
                static_cast<long long>(cols), block, static_cast<double>(global));
  return compare_rotate_quantize(name, f, x_bits, rows, cols, block, rot_seed, global, want.codes, want.scale_codes);
}

// Every finite BF16 value once, shuffled into groups so that each group's scale meets values of
// many magnitudes (every E2M1 threshold and its ties are hit), quantized without rotation and
// compared bit for bit with the CPU quantizer.
inline CheckResult check_quantize_every_bf16(formats::Format f, float global, std::uint32_t seed) {
  std::vector<std::uint16_t> x_bits;
  for (std::uint32_t b = 0; b < 65536; ++b) {
    if (((b >> 7) & 0xFFu) != 0xFFu) x_bits.push_back(static_cast<std::uint16_t>(b));  // not inf / NaN
  }
  x_bits.resize(65536, 0);
  std::shuffle(x_bits.begin(), x_bits.end(), std::mt19937(seed));
  const std::int64_t rows = 64, cols = 1024;
  const std::vector<float> x = from_bf16(x_bits);
  const formats::QuantizedMatrix want = formats::quantize(ConstMatrixView{x, rows, cols}, fp4_spec(f), global, "every bf16");
  char name[120];
  std::snprintf(name, sizeof name, "quantize every bf16 value %s global %g", std::string(formats::format_name(f)).c_str(),
                static_cast<double>(global));
  return compare_rotate_quantize(name, f, x_bits, rows, cols, 0, 0, global, want.codes, want.scale_codes);
}

// Non-finite inputs (the CPU quantizer rejects them, so this is the kernel's own policy): a group's
// amax ignores NaN (fmaxf), its scale follows the CPU rules for that amax (an inf amax gives E8M0 254
// / E4M3 448), a NaN element gets code 0 and every other element e2m1(x / scale), +-inf giving +-6.
// Rotation spreads NaN and inf over their Hadamard block (inf - inf = NaN).
inline CheckResult check_rotate_quantize_nonfinite(formats::Format f, int block, std::uint32_t seed) {
  const bool nv = f == formats::Format::nvfp4;
  const int group = nv ? 16 : 32;
  const std::int64_t rows = 3, cols = 1024 + 2 * 256;
  std::vector<float> x = activation_values(rows, cols, seed);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<std::int64_t> where(0, rows * cols - 1);
  const float inf = std::numeric_limits<float>::infinity();
  for (int i = 0; i < 6; ++i) x[static_cast<std::size_t>(where(rng))] = std::numeric_limits<float>::quiet_NaN();
  for (int i = 0; i < 6; ++i) x[static_cast<std::size_t>(where(rng))] = i % 2 ? inf : -inf;
  const std::vector<std::uint16_t> x_bits = to_bf16(x);
  std::vector<float> xf = from_bf16(x_bits);
  const std::uint32_t rot_seed = seed + 9;
  if (block > 0) rotation::rotate_rows(MatrixView{xf, rows, cols}, rotation::RotationSpec{block, true, rot_seed});
  const float global = 2688.0f / 5.0f;
  std::vector<std::uint8_t> want_codes(static_cast<std::size_t>(rows * cols / 2), 0);
  std::vector<std::uint8_t> want_scales(static_cast<std::size_t>(rows * cols / group), 0);
  for (std::int64_t g = 0; g < rows * cols / group; ++g) {
    const float* v = xf.data() + g * group;
    float amax = 0.0f;
    for (int i = 0; i < group; ++i) amax = std::fmax(amax, std::fabs(v[i]));  // fmax ignores NaN
    std::uint8_t code;
    float scale;
    if (nv) {
      const float wanted = amax / 6.0f * global;
      code = formats::e4m3_from_float(std::min(wanted, 448.0f));
      if (code == 0) code = 0x20;
      scale = formats::e4m3_to_float(code) / global;
    } else {
      code = amax > 0.0f ? formats::e8m0_from_exponent(std::isinf(amax) ? 127 : std::ilogb(amax) - 2) : 0;
      scale = formats::e8m0_to_float(code);
    }
    want_scales[static_cast<std::size_t>(g)] = code;
    for (int i = 0; i < group; ++i) {
      const std::uint8_t c = std::isnan(v[i]) ? 0 : formats::e2m1_from_float(v[i] / scale);
      want_codes[static_cast<std::size_t>((g * group + i) / 2)] |= static_cast<std::uint8_t>(c << (4 * (i % 2)));
    }
  }
  char name[160];
  std::snprintf(name, sizeof name, "rotate+quantize nan/inf policy %s rot %d", std::string(formats::format_name(f)).c_str(),
                block);
  return compare_rotate_quantize(name, f, x_bits, rows, cols, block, rot_seed, global, want_codes, want_scales);
}

inline CheckResult check_dequantize(formats::Format f, std::int64_t rows, std::int64_t cols, std::uint32_t seed,
                                    Fp4Layout layout = Fp4Layout::rows) {
  CheckResult result{shape_name("dequantize bf16", f, rows, cols, 0, 0, false, layout), true, {}};
  const formats::QuantizedMatrix q = random_weight(f, rows, cols, seed);
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<std::uint16_t> want = to_bf16(w.data);
  const Fp4Weight dw = device_weight(q, layout);
  DeviceArray<std::uint16_t> out = poisoned<std::uint16_t>(want.size());
  dequantize_bf16(dw, out.data());
  const std::vector<std::uint16_t> got = host_copy(out);
  std::size_t diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) diff += got[i] != want[i];
  result.pass = diff == 0;
  result.detail = std::to_string(diff) + " of " + std::to_string(got.size()) + " values differ";
  return result;
}

// The large-batch path: dequantize to BF16, then cuBLAS. Same bound with n = K (cuBLAS's summation
// order is unknown; K rounded additions is the worst case of any order).
inline CheckResult check_dequant_gemm(formats::Format f, std::int64_t rows, std::int64_t cols, std::int64_t batch,
                                      std::uint32_t seed) {
  const formats::QuantizedMatrix q = random_weight(f, rows, cols, seed);
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<float> w_bf16 = from_bf16(to_bf16(w.data));  // what cuBLAS multiplies
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(batch, cols, seed + 1));
  const Fp4Weight dw = upload_weight(q);
  DeviceArray<std::uint16_t> wb = poisoned<std::uint16_t>(static_cast<std::size_t>(rows * cols));
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint16_t> dy = poisoned<std::uint16_t>(static_cast<std::size_t>(batch * rows));
  dequantize_bf16(dw, wb.data());
  Blas blas;
  blas.gemm_bf16(dx.data(), wb.data(), batch, rows, cols, dy.data());
  return compare_gemv(shape_name("dequant+cublas", f, rows, cols, batch, 0), w_bf16, from_bf16(x_bits), host_copy(dy),
                      rows, cols, batch, 256 * cols);
}

// Weight rows [row0, row0 + count) through dequantize_bf16_rows, bit for bit against the CPU decode of
// those rows. The output has 16 rows more than the range, poisoned, and they must stay poisoned (a
// range that ends inside a row tile must not spill the rest of the tile).
inline CheckResult check_dequantize_rows(formats::Format f, std::int64_t rows, std::int64_t cols, std::int64_t row0,
                                         std::int64_t count, std::uint32_t seed, Fp4Layout layout) {
  CheckResult result{shape_name("dequantize bf16 rows", f, rows, cols, 0, 0, false, layout), true, {}};
  result.name += " [" + std::to_string(row0) + ", " + std::to_string(row0 + count) + ")";
  const formats::QuantizedMatrix q = random_weight(f, rows, cols, seed);
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<std::uint16_t> all = to_bf16(w.data);
  const Fp4Weight dw = device_weight(q, layout);
  DeviceArray<std::uint16_t> out = poisoned<std::uint16_t>(static_cast<std::size_t>((count + 16) * cols));
  dequantize_bf16_rows(dw, row0, count, out.data());
  const std::vector<std::uint16_t> got = host_copy(out);
  const std::size_t range = static_cast<std::size_t>(count * cols);
  std::size_t diff = 0, spilled = 0;
  for (std::size_t i = 0; i < range; ++i) diff += got[i] != all[static_cast<std::size_t>(row0 * cols) + i];
  for (std::size_t i = range; i < got.size(); ++i) spilled += got[i] != 0xFFFF;
  result.pass = diff == 0 && spilled == 0;
  result.detail = std::to_string(diff) + " of " + std::to_string(range) + " values differ, " + std::to_string(spilled) +
                  " written past the range";
  return result;
}

template <typename T>
std::size_t bits_differ(const std::vector<T>& a, const std::vector<T>& b) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], sizeof(T)) != 0;
  return n;
}

// The slabbed large-batch path (dequantize_gemm_bf16 / _f32 with slab_rows) against the double product
// of the dequantized weights (the bound of check_dequant_gemm) and against the whole-weight path it
// would replace (dequantize_bf16, then one GEMM). Every output is a full-K dot product either way, but
// cuBLAS may choose another algorithm for a slab's shape, so slabs agree with the whole path within the
// bound, not bit for bit; with one slab (slab_rows 0, or >= rows) the GEMM is the same one and every bit
// must match. `f32`: the FP32-output variant, rounded to BF16 on the host for the bound (that rounding
// is the bound's half ulp).
inline CheckResult check_slabbed_gemm(formats::Format f, std::int64_t rows, std::int64_t cols, std::int64_t batch,
                                      std::int64_t slab_rows, std::uint32_t seed, Fp4Layout layout, bool f32 = false) {
  std::string name = shape_name("slabbed dequant+cublas", f, rows, cols, batch, 0, false, layout) + " slab " +
                     std::to_string(slab_rows) + (f32 ? " fp32 out" : "");
  const formats::QuantizedMatrix q = random_weight(f, rows, cols, seed);
  Matrix w(rows, cols);
  formats::dequantize(q, w.view());
  const std::vector<float> w_bf16 = from_bf16(to_bf16(w.data));  // what cuBLAS multiplies
  const std::vector<std::uint16_t> x_bits = to_bf16(activation_values(batch, cols, seed + 1));
  const Fp4Weight dw = device_weight(q, layout);
  DeviceArray<std::uint16_t> dx = device_copy(x_bits);
  DeviceArray<std::uint16_t> whole = poisoned<std::uint16_t>(static_cast<std::size_t>(rows * cols));
  DeviceArray<std::uint16_t> scratch = poisoned<std::uint16_t>(static_cast<std::size_t>(slab_scratch_elements(dw, slab_rows)));
  const std::span<bf16_bits> slab_scratch(scratch.data(), scratch.size());
  const std::size_t outputs = static_cast<std::size_t>(batch * rows);
  Blas blas;
  dequantize_bf16(dw, whole.data());
  std::vector<std::uint16_t> got;  // the slabbed output, in BF16 for the bound
  std::size_t differ = 0;          // outputs whose bits differ from the whole-weight path
  if (f32) {
    DeviceArray<float> y_whole = poisoned<float>(outputs), y = poisoned<float>(outputs);
    blas.gemm_bf16_f32(dx.data(), whole.data(), batch, rows, cols, y_whole.data());
    dequantize_gemm_bf16_f32(dw, dx.data(), batch, y.data(), blas, slab_scratch, slab_rows);
    const std::vector<float> slabbed = host_copy(y);
    differ = bits_differ(slabbed, host_copy(y_whole));
    got = to_bf16(slabbed);
  } else {
    DeviceArray<std::uint16_t> y_whole = poisoned<std::uint16_t>(outputs), y = poisoned<std::uint16_t>(outputs);
    blas.gemm_bf16(dx.data(), whole.data(), batch, rows, cols, y_whole.data());
    dequantize_gemm_bf16(dw, dx.data(), batch, y.data(), blas, slab_scratch, slab_rows);
    got = host_copy(y);
    differ = bits_differ(got, host_copy(y_whole));
  }
  CheckResult result = compare_gemv(std::move(name), w_bf16, from_bf16(x_bits), got, rows, cols, batch, 256 * cols);
  const std::int64_t slab = slab_rows == 0 ? rows : std::min(slab_rows, rows);
  const std::int64_t slabs = (rows + slab - 1) / slab;
  char buf[120];
  std::snprintf(buf, sizeof buf, "; %lld slabs, %zu of %zu outputs differ in bits from the whole-weight path",
                static_cast<long long>(slabs), differ, outputs);
  result.detail += buf;
  if (slabs == 1 && differ != 0) result.pass = false;
  return result;
}

// The whole suite. `quick` keeps shapes small (for compute-sanitizer).
inline std::vector<CheckResult> run_all(bool quick) {
  using formats::Format;
  std::vector<CheckResult> out;
  std::uint32_t seed = 1000;
  for (Format f : {Format::mxfp4, Format::nvfp4}) {
    const std::int64_t odd_k = f == Format::nvfp4 ? 48 : 96;       // nvfp4: not a multiple of 32 (padded rows)
    const std::int64_t mid_k = f == Format::nvfp4 ? 1040 : 1056;  // not a multiple of 1024 (partial step)
    out.push_back(check_dequantize(f, 37, odd_k, ++seed));
    out.push_back(check_dequantize(f, 64, mid_k, ++seed));
    out.push_back(check_gemv(f, 1, 32, 1, 0, false, ++seed));
    out.push_back(check_gemv(f, 5, odd_k, 3, 0, false, ++seed));
    out.push_back(check_gemv(f, 3, odd_k, 2, 16, false, ++seed));
    for (std::int64_t batch = 1; batch <= 17; batch += quick ? 4 : 1)
      out.push_back(check_gemv(f, 97, mid_k, batch, 0, false, ++seed));
    out.push_back(check_gemv(f, 70, 4096, 1, 128, false, ++seed));
    out.push_back(check_gemv(f, 70, 4096, 5, 64, true, ++seed));
    // 513 row tiles keep K = 4096 whole, so batch 1 takes the prefetching GEMV (a fixed seed leaves
    // the later checks' seeds as they were).
    if (!quick) out.push_back(check_gemv(f, 16400, 4096, 1, 128, false, 7000 + static_cast<std::uint32_t>(f)));
    out.push_back(check_quantize_every_bf16(f, f == Format::nvfp4 ? 2688.0f / 5.0f : 1.0f, ++seed));
    out.push_back(check_rotate_quantize(f, 3, odd_k, 0, ++seed));
    out.push_back(check_rotate_quantize(f, 9, mid_k, 16, ++seed));
    out.push_back(check_rotate_quantize(f, 4, 4096, 256, ++seed));
    // Every Hadamard block, rows ending inside a warp's 256-column segment (cols not a multiple of 32
    // for NVFP4), exact ties, extreme scales, non-finite values.
    for (int b : {0, 2, 4, 8, 16, 32, 64, 128, 256})
      out.push_back(check_rotate_quantize(f, 5, 1280 + std::max(b, f == Format::nvfp4 ? 16 : 32), b, ++seed));
    out.push_back(check_rotate_quantize(f, 3, 256, 256, ++seed));
    for (int b : {0, 16, 128}) {
      out.push_back(check_rotate_quantize_edges(f, b, f == Format::nvfp4 ? 64.0f : 1.0f, ++seed));
      out.push_back(check_rotate_quantize_nonfinite(f, b, ++seed));
    }
    if (f == Format::nvfp4) {
      for (float g : {0.25f, 1.0f / 1024.0f, 1.0f / 65536.0f, 0x1p-40f})
        out.push_back(check_rotate_quantize_edges(f, 0, g, ++seed));
      for (float factor : {0.37f, 3.3f, 1e-4f, 1e4f})
        out.push_back(check_rotate_quantize(f, 6, 1056, factor < 1.0f ? 32 : 0, ++seed, factor));
    }
    out.push_back(check_dequant_gemm(f, 100, mid_k, 33, ++seed));
    // The tensor-core kernel and its tile layout: odd rows (partial row tiles), K not a multiple of
    // 64 (padded chunk), every batch width class (1, 2..8, 16, 32, 64) and more than one pass.
    constexpr Fp4Layout tiles = Fp4Layout::mma_tiles;
    out.push_back(check_dequantize(f, 37, odd_k, ++seed, tiles));
    out.push_back(check_dequantize(f, 64, mid_k, ++seed, tiles));
    out.push_back(check_gemv(f, 1, 32, 1, 0, false, ++seed, tiles));
    out.push_back(check_gemv(f, 5, odd_k, 3, 0, false, ++seed, tiles));
    out.push_back(check_gemv(f, 3, odd_k, 2, 16, false, ++seed, tiles));
    for (std::int64_t batch : {1, 2, 7, 8, 9, 16, 17, 33, 64, 65})
      out.push_back(check_gemv(f, 97, mid_k, batch, 0, false, ++seed, tiles));
    out.push_back(check_gemv(f, 70, 4096, 5, 64, false, ++seed, tiles));
    out.push_back(check_mma_edge_scales(f, ++seed));
    if (!quick) {
      out.push_back(check_gemv(f, 1024, 4096, 1, 0, false, ++seed, tiles));   // split K across blocks
      out.push_back(check_gemv(f, 4096, 4096, 16, 0, false, ++seed, tiles));
      out.push_back(check_gemv(f, 64, 28672, 1, 128, false, ++seed, tiles));
      out.push_back(check_gemv(f, 200, 8192, 40, 0, false, ++seed, tiles));
      out.push_back(check_dequantize(f, 512, 4096, ++seed, tiles));
    }
    if (!quick) {
      out.push_back(check_gemv(f, 1024, 4096, 1, 0, false, ++seed));   // split-K for fill
      out.push_back(check_gemv(f, 4096, 4096, 16, 0, false, ++seed));  // batch 16, chunked K
      out.push_back(check_gemv(f, 300, 14336, 2, 32, false, ++seed));  // fused rotation over 2 chunks
      out.push_back(check_gemv(f, 64, 28672, 1, 128, false, ++seed));  // long rows, split
      out.push_back(check_gemv(f, 200, 8192, 40, 128, false, ++seed)); // batch > 16: three passes
      out.push_back(check_gemv(f, 4096, 1024, 4, 0, false, ++seed));
      out.push_back(check_rotate_quantize(f, 64, 14336, 128, ++seed));
      out.push_back(check_dequant_gemm(f, 512, 4096, 64, ++seed));
    }
  }
  for (int block : {2, 8, 16, 32, 64, 128, 256}) out.push_back(check_hadamard(5, 1024, block, block != 32, ++seed));
  out.push_back(check_hadamard(3, 4096 + 256 + 16, 16, true, ++seed));
  if (!quick) out.push_back(check_hadamard(128, 14336, 128, true, ++seed));
  // The slabbed large-batch path (its own seeds, so the checks above keep their inputs): row ranges of
  // both layouts, slabs that do not divide N, N not a multiple of 16, odd batches and batch 1, one slab
  // (bit-identical to the whole-weight path), FP32 output, and the default slab rule on a shape it cuts.
  std::uint32_t slab_seed = 5000;
  for (Format f : {Format::mxfp4, Format::nvfp4}) {
    const std::int64_t odd_k = f == Format::nvfp4 ? 48 : 96;
    const std::int64_t mid_k = f == Format::nvfp4 ? 1040 : 1056;
    for (Fp4Layout layout : {Fp4Layout::rows, Fp4Layout::mma_tiles}) {
      out.push_back(check_dequantize_rows(f, 100, mid_k, 32, 37, ++slab_seed, layout));  // ends inside a row tile
      out.push_back(check_dequantize_rows(f, 100, odd_k, 96, 4, ++slab_seed, layout));   // the partial last tile
      out.push_back(check_slabbed_gemm(f, 200, mid_k, 33, 64, ++slab_seed, layout));     // 3 x 64 + 8 rows
      out.push_back(check_slabbed_gemm(f, 160, odd_k, 7, 48, ++slab_seed, layout));      // 3 x 48 + 16 rows
      out.push_back(check_slabbed_gemm(f, 200, mid_k, 1, 16, ++slab_seed, layout));      // 13 slabs, batch 1
      out.push_back(check_slabbed_gemm(f, 200, mid_k, 65, 0, ++slab_seed, layout));      // whole: same bits
      out.push_back(check_slabbed_gemm(f, 200, mid_k, 65, 208, ++slab_seed, layout));    // one slab covers N
      out.push_back(check_slabbed_gemm(f, 200, mid_k, 33, 64, ++slab_seed, layout, true));
    }
    if (!quick) {
      out.push_back(check_slabbed_gemm(f, 2100, 4096, 64, default_slab_rows(2100, 4096), ++slab_seed,
                                       Fp4Layout::mma_tiles));  // 2048 + 52 rows
    }
  }
  return out;
}

}  // namespace microscale::cuda::checks
