// The fast transform against dense matrices built independently: the Sylvester Hadamard matrix is
// assembled from Kronecker products of [[1, 1], [1, -1]] and multiplied out in double precision.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "microscale/core/error.hpp"
#include "microscale/core/matrix.hpp"
#include "microscale/rotation/hadamard.hpp"

namespace microscale::rotation {
namespace {

using Dense = std::vector<std::vector<double>>;

Dense kron(const Dense& a, const Dense& b) {
  const std::size_t ra = a.size(), ca = a[0].size(), rb = b.size(), cb = b[0].size();
  Dense out(ra * rb, std::vector<double>(ca * cb));
  for (std::size_t i = 0; i < ra; ++i)
    for (std::size_t j = 0; j < ca; ++j)
      for (std::size_t k = 0; k < rb; ++k)
        for (std::size_t l = 0; l < cb; ++l) out[i * rb + k][j * cb + l] = a[i][j] * b[k][l];
  return out;
}

// Sylvester Hadamard H_n (entries +-1, unnormalised).
Dense sylvester(std::size_t n) {
  Dense h{{1.0}};
  const Dense h2{{1.0, 1.0}, {1.0, -1.0}};
  while (h.size() < n) h = kron(h, h2);
  return h;
}

// R = blockdiag(D_b H_b / sqrt(b)) for a row of `cols` columns; signs d given per column.
Dense dense_rotation(std::size_t cols, std::size_t block, const std::vector<float>& signs) {
  const Dense h = sylvester(block);
  Dense r(cols, std::vector<double>(cols, 0.0));
  const double scale = 1.0 / std::sqrt(static_cast<double>(block));
  for (std::size_t b0 = 0; b0 < cols; b0 += block)
    for (std::size_t i = 0; i < block; ++i)
      for (std::size_t j = 0; j < block; ++j) r[b0 + i][b0 + j] = signs[b0 + i] * h[i][j] * scale;
  return r;
}

// x * M, x row-major [rows x n].
std::vector<double> times(const Matrix& x, const Dense& m) {
  const std::size_t n = m.size();
  std::vector<double> out(static_cast<std::size_t>(x.rows) * n, 0.0);
  for (std::int64_t r = 0; r < x.rows; ++r)
    for (std::size_t k = 0; k < n; ++k) {
      const double xv = x(r, static_cast<std::int64_t>(k));
      for (std::size_t j = 0; j < n; ++j) out[static_cast<std::size_t>(r) * n + j] += xv * m[k][j];
    }
  return out;
}

Matrix random_matrix(std::int64_t rows, std::int64_t cols, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Matrix m(rows, cols);
  for (float& v : m.data) v = dist(gen);
  return m;
}

RotationSpec spec_of(int block, bool random_signs, std::uint64_t seed = 0) {
  RotationSpec s;
  s.block = block;
  s.random_signs = random_signs;
  s.seed = seed;
  return s;
}

TEST(Fwht, MatchesDenseSylvesterMatrix) {
  for (std::size_t n : {1u, 2u, 4u, 8u, 16u, 32u, 64u, 128u, 256u, 1024u}) {
    Matrix x = random_matrix(1, static_cast<std::int64_t>(n), 7u + static_cast<std::uint32_t>(n));
    const Dense h = sylvester(n);
    Dense hn = h;
    for (auto& row : hn)
      for (double& v : row) v /= std::sqrt(static_cast<double>(n));
    const std::vector<double> want = times(x, hn);
    fwht(x.data);
    for (std::size_t j = 0; j < n; ++j) {
      EXPECT_NEAR(x.data[j], want[j], 1e-5) << "n=" << n << " j=" << j;
    }
  }
}

TEST(Fwht, KnownSmallValues) {
  // [1, 2, 3, 4] H_4 / 2 = [10, -2, -4, 0] / 2.
  std::vector<float> v{1.0f, 2.0f, 3.0f, 4.0f};
  fwht(v);
  EXPECT_FLOAT_EQ(v[0], 5.0f);
  EXPECT_FLOAT_EQ(v[1], -1.0f);
  EXPECT_FLOAT_EQ(v[2], -2.0f);
  EXPECT_FLOAT_EQ(v[3], 0.0f);
  // A unit impulse maps to the first Hadamard row: all 1/sqrt(16).
  std::vector<float> e(16, 0.0f);
  e[0] = 1.0f;
  fwht(e);
  for (float x : e) EXPECT_FLOAT_EQ(x, 0.25f);
}

TEST(Fwht, RejectsNonPowerOfTwoLength) {
  std::vector<float> v(12, 1.0f);
  EXPECT_THROW(fwht(v), Error);
  std::vector<float> empty;
  EXPECT_THROW(fwht(empty), Error);
}

TEST(RotateRows, MatchesDenseBlockDiagonalRotation) {
  const std::int64_t cols = 256;
  for (int block : {16, 32, 64, 128, 256}) {
    for (bool random_signs : {false, true}) {
      const RotationSpec spec = spec_of(block, random_signs, 42);
      const Matrix x = random_matrix(5, cols, 11u + static_cast<std::uint32_t>(block));
      const Dense r = dense_rotation(cols, static_cast<std::size_t>(block), rotation_signs(spec, cols));
      const std::vector<double> want = times(x, r);
      Matrix got = x;
      rotate_rows(got.view(), spec);
      for (std::size_t i = 0; i < want.size(); ++i) {
        ASSERT_NEAR(got.data[i], want[i], 1e-5) << "block=" << block << " signs=" << random_signs << " i=" << i;
      }
      // unrotate_rows is x R^T.
      Dense rt(cols, std::vector<double>(cols));
      for (std::int64_t i = 0; i < cols; ++i)
        for (std::int64_t j = 0; j < cols; ++j) rt[i][j] = r[j][i];
      const std::vector<double> want_t = times(x, rt);
      Matrix got_t = x;
      unrotate_rows(got_t.view(), spec);
      for (std::size_t i = 0; i < want_t.size(); ++i) {
        ASSERT_NEAR(got_t.data[i], want_t[i], 1e-5) << "block=" << block << " signs=" << random_signs;
      }
    }
  }
}

TEST(RotateRows, IsOrthogonal) {
  // Rotating the identity's rows yields R itself; R R^T must be I.
  const std::int64_t n = 128;
  for (int block : {16, 64, 128}) {
    Matrix r(n, n);
    for (std::int64_t i = 0; i < n; ++i) r(i, i) = 1.0f;
    rotate_rows(r.view(), spec_of(block, true, 3));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        double dot = 0.0;
        for (std::int64_t k = 0; k < n; ++k) dot += static_cast<double>(r(i, k)) * r(j, k);
        ASSERT_NEAR(dot, i == j ? 1.0 : 0.0, 1e-6) << "block=" << block << " (" << i << "," << j << ")";
      }
  }
}

TEST(RotateRows, RoundTripRestoresRows) {
  const Matrix x = random_matrix(33, 512, 5);
  for (int block : {16, 32, 64, 128, 512}) {
    const RotationSpec spec = spec_of(block, true, 99);
    Matrix y = x;
    rotate_rows(y.view(), spec);
    double moved = 0.0;
    for (std::size_t i = 0; i < x.data.size(); ++i) moved += std::abs(y.data[i] - x.data[i]);
    EXPECT_GT(moved, 1.0) << "rotation should change the values";
    unrotate_rows(y.view(), spec);
    for (std::size_t i = 0; i < x.data.size(); ++i) ASSERT_NEAR(y.data[i], x.data[i], 1e-5) << "block=" << block;
  }
}

TEST(RotateRows, PreservesLinearLayerOutput) {
  // y = x W^T equals (x R)(W R)^T because R R^T = I.
  const std::int64_t in = 384, out = 8, tokens = 4;
  const Matrix x = random_matrix(tokens, in, 21);
  const Matrix w = random_matrix(out, in, 22);
  for (int block : {32, 128}) {
    const RotationSpec spec = spec_of(block, true, 1234);
    Matrix xr = x, wr = w;
    rotate_rows(xr.view(), spec);
    rotate_rows(wr.view(), spec);
    for (std::int64_t t = 0; t < tokens; ++t)
      for (std::int64_t o = 0; o < out; ++o) {
        double want = 0.0, got = 0.0;
        for (std::int64_t k = 0; k < in; ++k) {
          want += static_cast<double>(x(t, k)) * w(o, k);
          got += static_cast<double>(xr(t, k)) * wr(o, k);
        }
        EXPECT_NEAR(got, want, 1e-4 * (1.0 + std::abs(want))) << "block=" << block;
      }
  }
}

TEST(RotateRows, ManyRowsMatchRowByRowTransform) {
  // Enough rows to take the OpenMP path; each row must equal its independent per-block transform.
  const std::int64_t rows = 64, cols = 4096;
  const RotationSpec spec = spec_of(128, true, 8);
  const Matrix x = random_matrix(rows, cols, 9);
  Matrix got = x;
  rotate_rows(got.view(), spec);
  const std::vector<float> signs = rotation_signs(spec, cols);
  std::vector<float> block(128);
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c = 0; c < cols; c += 128) {
      for (std::int64_t j = 0; j < 128; ++j) block[j] = x(r, c + j) * signs[c + j];
      fwht(block);
      for (std::int64_t j = 0; j < 128; ++j) ASSERT_NEAR(got(r, c + j), block[j], 1e-5);
    }
}

TEST(RotateRows, DisabledSpecIsNoOp) {
  const Matrix x = random_matrix(3, 48, 1);
  Matrix y = x;
  rotate_rows(y.view(), RotationSpec{});
  unrotate_rows(y.view(), RotationSpec{});
  EXPECT_EQ(y.data, x.data);
}

TEST(RotateRows, RejectsBadBlockAndShape) {
  Matrix x(2, 96);
  EXPECT_THROW(rotate_rows(x.view(), spec_of(24, false)), Error);
  EXPECT_THROW(rotate_rows(x.view(), spec_of(3, false)), Error);
  EXPECT_THROW(unrotate_rows(x.view(), spec_of(-16, false)), Error);
  EXPECT_THROW(rotate_rows(x.view(), spec_of(64, false)), Error);  // 96 is not a multiple of 64
  try {
    rotate_rows(x.view(), spec_of(64, false));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("96"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("64"), std::string::npos) << e.what();
  }
  try {
    rotate_rows(x.view(), spec_of(24, false));
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("power of two"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(rotate_rows(x.view(), spec_of(32, false)));
}

TEST(RotationSigns, PinnedSplitmix64Stream) {
  // splitmix64 with seed 1234567 starts 6457827717110365317, 3203168211198807973,
  // 9817491932198370423, ... (Vigna's reference); the sign is the top bit of each output.
  const std::vector<float> want1234567{1, 1, -1, 1, -1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1, 1};
  EXPECT_EQ(rotation_signs(spec_of(16, true, 1234567), 16), want1234567);
  const std::vector<float> want0{-1, 1, 1, -1, 1, 1, 1, -1, 1, -1, 1, -1, -1, -1, -1, -1};
  EXPECT_EQ(rotation_signs(spec_of(16, true, 0), 16), want0);
}

TEST(RotationSigns, DeterministicPerSeedAndDifferentAcrossSeeds) {
  const auto a = rotation_signs(spec_of(64, true, 17), 4096);
  const auto b = rotation_signs(spec_of(64, true, 17), 4096);
  const auto c = rotation_signs(spec_of(64, true, 18), 4096);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // One sign per column of the full row: the block size does not change them.
  EXPECT_EQ(a, rotation_signs(spec_of(128, true, 17), 4096));
  int negative = 0;
  for (float s : a) {
    ASSERT_TRUE(s == 1.0f || s == -1.0f);
    negative += s < 0 ? 1 : 0;
  }
  EXPECT_GT(negative, 1800);
  EXPECT_LT(negative, 2300);
  for (float s : rotation_signs(spec_of(64, false, 17), 256)) EXPECT_EQ(s, 1.0f);
}

}  // namespace
}  // namespace microscale::rotation
