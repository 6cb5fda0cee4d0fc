// The runtime's kernels at the edges: what a NaN reaching the attention does (found by
// fuzz/model_fuzz: the softmax's exponential converted a NaN to an integer, which is undefined;
// the sanitizer build of this test fails on that).
#include <gtest/gtest.h>

#include <cmath>

#include "microscale/core/matrix.hpp"
#include "microscale/model/kernels.hpp"

namespace microscale::testing {
namespace {

TEST(Kernels, ANanQueryGivesNanAttentionForItsRowOnly) {
  // One head of dimension 2, three positions; query 1 is NaN. It sees two keys (the scalar tail of
  // the softmax), query 2 sees three.
  model::AttentionShape shape;
  shape.seqlen = 3;
  shape.capacity = 3;
  shape.head_dim = 2;
  Matrix q(3, 2), k(3, 2), v(3, 2), out(3, 2);
  for (std::int64_t i = 0; i < 6; ++i) {
    q.data[static_cast<std::size_t>(i)] = 0.1f * static_cast<float>(i);
    k.data[static_cast<std::size_t>(i)] = 0.2f - 0.05f * static_cast<float>(i);
    v.data[static_cast<std::size_t>(i)] = static_cast<float>(i);
  }
  q(1, 0) = std::nanf("");
  model::causal_attention(q.view(), k.view(), v.view(), shape, out.view());
  // Row 0 sees key 0 alone: exactly value 0.
  EXPECT_EQ(out(0, 0), 0.0f);
  EXPECT_EQ(out(0, 1), 1.0f);
  EXPECT_TRUE(std::isnan(out(1, 0)));
  EXPECT_TRUE(std::isnan(out(1, 1)));
  EXPECT_TRUE(std::isfinite(out(2, 0)));
  EXPECT_TRUE(std::isfinite(out(2, 1)));
}

}  // namespace
}  // namespace microscale::testing
