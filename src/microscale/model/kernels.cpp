#include "microscale/model/kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <cblas.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <omp.h>

#include "microscale/core/error.hpp"

namespace microscale::model {

// Below this many elements a parallel region costs more than it saves (and on a busy machine a
// barrier can wait a whole scheduler time slice).
constexpr std::int64_t kParallelMin = 1 << 16;
// Up to this many rows a linear is computed as matrix-vector products.
constexpr std::int64_t kGemvRows = 2;
// OpenBLAS threads every call above a small size, and handing work to its worker threads costs a
// scheduler time slice on a busy machine (measured: 10 ms for a 256x256 sgemv with 2 threads on a
// loaded 2-core box, 0.03 ms on one thread). Products below this many multiply-adds run on the
// calling thread.
constexpr std::int64_t kBlasParallelMin = std::int64_t{1} << 22;

// Runs the BLAS calls of its scope on one thread when the work is small. openblas_set_num_threads is
// process-global, so this only acts outside OpenMP parallel regions (the runtime never calls BLAS
// from inside one).
class SmallBlasScope {
 public:
  explicit SmallBlasScope(std::int64_t multiply_adds) {
    if (multiply_adds < kBlasParallelMin && !omp_in_parallel()) {
      const int threads = openblas_get_num_threads();
      if (threads > 1) {
        restore_ = threads;
        openblas_set_num_threads(1);
      }
    }
  }
  ~SmallBlasScope() {
    if (restore_ > 0) openblas_set_num_threads(restore_);
  }
  SmallBlasScope(const SmallBlasScope&) = delete;
  SmallBlasScope& operator=(const SmallBlasScope&) = delete;

 private:
  int restore_ = 0;
};

void rms_norm(ConstMatrixView x, std::span<const float> weight, double eps, MatrixView out) {
  const auto n = static_cast<std::int64_t>(weight.size());
  if (n == 0 || x.cols % n != 0 || out.cols != x.cols || out.rows != x.rows) {
    fail("rms_norm: shape mismatch (x {}x{}, weight {}, out {}x{})", x.rows, x.cols, n, out.rows, out.cols);
  }
  const std::int64_t segments = x.rows * (x.cols / n);
  const float* w = weight.data();
#pragma omp parallel for schedule(static) if (x.rows * x.cols > kParallelMin)
  for (std::int64_t s = 0; s < segments; ++s) {
    const float* in = x.data.data() + s * n;
    float* o = out.data.data() + s * n;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t i = 0; i < n; ++i) sum += in[i] * in[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum) / static_cast<double>(n) + eps));
#pragma omp simd
    for (std::int64_t i = 0; i < n; ++i) o[i] = w[i] * (in[i] * inv);
  }
}

void linear(ConstMatrixView x, ConstMatrixView weight, std::span<const float> bias, MatrixView y) {
  if (x.cols != weight.cols || y.rows != x.rows || y.cols != weight.rows ||
      (!bias.empty() && static_cast<std::int64_t>(bias.size()) != weight.rows)) {
    fail("linear: shape mismatch (x {}x{}, W {}x{}, bias {}, y {}x{})", x.rows, x.cols, weight.rows, weight.cols,
         bias.size(), y.rows, y.cols);
  }
  if (x.rows == 0) return;
  const SmallBlasScope scope(x.rows * weight.rows * weight.cols);
  if (x.rows <= kGemvRows) {
    // A few rows (decoding): matrix-vector products stream W once each, where sgemm would first
    // repack all of W for a product with almost nothing in it.
    for (std::int64_t r = 0; r < x.rows; ++r) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(weight.rows), static_cast<int>(weight.cols), 1.0f,
                  weight.data.data(), static_cast<int>(weight.cols), x.data.data() + r * x.cols, 1, 0.0f,
                  y.data.data() + r * y.cols, 1);
    }
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(x.rows), static_cast<int>(weight.rows),
              static_cast<int>(x.cols), 1.0f, x.data.data(), static_cast<int>(x.cols), weight.data.data(),
                static_cast<int>(weight.cols), 0.0f, y.data.data(), static_cast<int>(y.cols));
  }
  if (bias.empty()) return;
  const float* b = bias.data();
#pragma omp parallel for schedule(static) if (y.rows * y.cols > kParallelMin)
  for (std::int64_t r = 0; r < y.rows; ++r) {
    float* row = y.data.data() + r * y.cols;
#pragma omp simd
    for (std::int64_t c = 0; c < y.cols; ++c) row[c] += b[c];
  }
}

void silu_mul(MatrixView gate, ConstMatrixView up) {
  if (gate.rows != up.rows || gate.cols != up.cols) fail("silu_mul: shape mismatch");
  const std::int64_t n = gate.rows * gate.cols;
  float* g = gate.data.data();
  const float* u = up.data.data();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

RopeTable make_rope_table(std::span<const float> inv_freq, std::int64_t start, std::int64_t count) {
  RopeTable table;
  table.start = start;
  table.count = count;
  table.half = static_cast<std::int64_t>(inv_freq.size());
  table.cos.resize(static_cast<std::size_t>(count * table.half));
  table.sin.resize(table.cos.size());
  for (std::int64_t t = 0; t < count; ++t) {
    for (std::int64_t i = 0; i < table.half; ++i) {
      // transformers forms the angle as an FP32 product and takes cos/sin of that FP32 value.
      const float angle = static_cast<float>(start + t) * inv_freq[static_cast<std::size_t>(i)];
      table.cos[static_cast<std::size_t>(t * table.half + i)] = static_cast<float>(std::cos(double{angle}));
      table.sin[static_cast<std::size_t>(t * table.half + i)] = static_cast<float>(std::sin(double{angle}));
    }
  }
  return table;
}

void apply_rope(MatrixView x, int heads, std::int64_t head_dim, int seqlen, const RopeTable& table) {
  const std::int64_t half = head_dim / 2;
  if (x.cols != heads * head_dim || half != table.half || seqlen > table.count || x.rows % seqlen != 0) {
    fail("apply_rope: shape mismatch (x {}x{}, {} heads of {}, table {}x{}, seqlen {})", x.rows, x.cols, heads,
         head_dim, table.count, table.half, seqlen);
  }
#pragma omp parallel for schedule(static) if (x.rows * x.cols > kParallelMin)
  for (std::int64_t r = 0; r < x.rows; ++r) {
    const float* c = table.cos.data() + (r % seqlen) * half;
    const float* s = table.sin.data() + (r % seqlen) * half;
    for (int h = 0; h < heads; ++h) {
      float* lo = x.data.data() + r * x.cols + h * head_dim;
      float* hi = lo + half;
#pragma omp simd
      for (std::int64_t i = 0; i < half; ++i) {
        const float a = lo[i];
        const float b = hi[i];
        lo[i] = a * c[i] - b * s[i];  // x*cos + rotate_half(x)*sin, rotate_half = [-x2, x1]
        hi[i] = b * c[i] + a * s[i];
      }
    }
  }
}

namespace {

// exp(x) for x <= 0 without libm's scalar call: x = n ln2 + r with |r| <= ln2/2, e^r by its
// degree-6 Taylor polynomial (relative error < 3e-7, a few float ulps), 2^n by building the exponent
// bits. Inputs below -87 are clamped (e^-87 ~ 1.6e-38, negligible next to the row maximum's 1); NaN
// gives NaN.
constexpr float kLog2e = 1.44269504f;
constexpr float kLn2Hi = 0.693145752f;   // ln 2 split in two so n * ln2 stays exact enough
constexpr float kLn2Lo = 1.42860677e-6f;
constexpr float kTaylor[] = {1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};

inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);
  // fmax keeps n a number when x is NaN (an overflowed activation): converting NaN to an integer is
  // undefined, while the NaN still reaches the result through r.
  const float n = std::fmax(std::nearbyint(x * kLog2e), -126.0f);
  const float r = x - n * kLn2Hi - n * kLn2Lo;
  float p = kTaylor[0];
  for (int i = 1; i < 7; ++i) p = p * r + kTaylor[i];
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

#if defined(__AVX2__) && defined(__FMA__)
// The same computation 8 lanes at a time (GCC does not vectorise the scalar loop: the clamp's
// comparison may trap under the default -ftrapping-math).
inline __m256 exp_nonpositive8(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kTaylor[0]);
  for (int i = 1; i < 7; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kTaylor[i]));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}
#endif

// row[0..n) <- softmax(row[0..n)).
void softmax_in_place(float* row, std::int64_t n) {
  float peak = row[0];
  for (std::int64_t j = 1; j < n; ++j) peak = std::max(peak, row[j]);
  float sum = 0.0f;
  std::int64_t j = 0;
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 shift = _mm256_set1_ps(peak);
  __m256 acc = _mm256_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive8(_mm256_sub_ps(_mm256_loadu_ps(row + j), shift));
    _mm256_storeu_ps(row + j, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (float v : lanes) sum += v;
#endif
  for (; j < n; ++j) {
    row[j] = exp_nonpositive(row[j] - peak);
    sum += row[j];
  }
  const float inv = 1.0f / sum;
#pragma omp simd
  for (std::int64_t k = 0; k < n; ++k) row[k] *= inv;
}

}  // namespace

void causal_attention(ConstMatrixView q, ConstMatrixView keys, ConstMatrixView values, const AttentionShape& s,
                      MatrixView out) {
  const std::int64_t q_dim = s.heads * s.head_dim;
  const std::int64_t kv_dim = s.kv_heads * s.head_dim;
  const std::int64_t rows = static_cast<std::int64_t>(s.batch) * s.seqlen;
  const std::int64_t context = s.start + s.seqlen;
  if (q.cols != q_dim || q.rows != rows || out.cols != q_dim || out.rows != rows || keys.cols != kv_dim ||
      values.cols != kv_dim || keys.rows < s.batch * s.capacity || values.rows < s.batch * s.capacity ||
      context > s.capacity || s.heads % s.kv_heads != 0) {
    fail("causal_attention: shape mismatch (q {}x{}, keys {}x{}, batch {}, seqlen {}, start {}, capacity {})",
         q.rows, q.cols, keys.rows, keys.cols, s.batch, s.seqlen, s.start, s.capacity);
  }
  const int group = s.heads / s.kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  // Queries in blocks, so a block only multiplies against the keys its last query can see: scores
  // S = Q K^T (sgemm), masked softmax per row, then O = P V (sgemm). Masked entries of P are zero.
  constexpr std::int64_t kBlock = 128;
  std::vector<float> scores(static_cast<std::size_t>(std::min<std::int64_t>(kBlock, s.seqlen) * context));
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.heads; ++h) {
      const int kvh = h / group;
      const float* k = keys.data.data() + (b * s.capacity) * kv_dim + kvh * s.head_dim;
      const float* v = values.data.data() + (b * s.capacity) * kv_dim + kvh * s.head_dim;
      for (std::int64_t t0 = 0; t0 < s.seqlen; t0 += kBlock) {
        const std::int64_t m = std::min<std::int64_t>(kBlock, s.seqlen - t0);
        const std::int64_t visible = s.start + t0 + m;  // keys the block's last query sees
        const SmallBlasScope scope(m * visible * s.head_dim);
        const float* qb = q.data.data() + (b * s.seqlen + t0) * q_dim + h * s.head_dim;
        float* ob = out.data.data() + (b * s.seqlen + t0) * q_dim + h * s.head_dim;
        if (m == 1) {  // decoding: one query against the cache
          cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(visible), static_cast<int>(s.head_dim), scale, k,
                      static_cast<int>(kv_dim), qb, 1, 0.0f, scores.data(), 1);
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(visible),
                      static_cast<int>(s.head_dim), scale, qb, static_cast<int>(q_dim), k, static_cast<int>(kv_dim),
                      0.0f, scores.data(), static_cast<int>(visible));
        }
#pragma omp parallel for schedule(static) if (m * visible > kParallelMin)
        for (std::int64_t i = 0; i < m; ++i) {
          float* row = scores.data() + i * visible;
          const std::int64_t keep = s.start + t0 + i + 1;
          softmax_in_place(row, keep);
          std::fill(row + keep, row + visible, 0.0f);
        }
        if (m == 1) {
          cblas_sgemv(CblasRowMajor, CblasTrans, static_cast<int>(visible), static_cast<int>(s.head_dim), 1.0f, v,
                      static_cast<int>(kv_dim), scores.data(), 1, 0.0f, ob, 1);
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(s.head_dim),
                      static_cast<int>(visible), 1.0f, scores.data(), static_cast<int>(visible), v,
                      static_cast<int>(kv_dim), 0.0f, ob, static_cast<int>(q_dim));
        }
      }
    }
  }
}

void set_num_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

}  // namespace microscale::model
