// The kernels' division-free grid-stride walk (cuda/item_cursor.hpp) against the division it
// replaces: item i = first + k * step is (i / count, i % count). Host-only, so it runs everywhere.
#include <gtest/gtest.h>

#include <cstdint>

#include "microscale/cuda/item_cursor.hpp"

namespace microscale::cuda::detail {
namespace {

TEST(ItemCursor, WalksTheSameItemsAsDividing) {
  int cases = 0;
  for (const std::int64_t count : {1, 2, 3, 7, 16, 64, 255, 1024}) {
    for (const std::int64_t step : {1, 2, 5, 8, 63, 64, 65, 1000, 4224, 16896}) {
      for (const std::int64_t first : {0, 1, 6, 7, 130, 4223}) {
        ItemCursor at(first, step, count);
        for (std::int64_t k = 0; k < 300; ++k) {
          const std::int64_t item = first + k * step;
          ASSERT_EQ(at.outer, item / count) << "count " << count << " step " << step << " first " << first << " k " << k;
          ASSERT_EQ(at.inner, item % count) << "count " << count << " step " << step << " first " << first << " k " << k;
          at.advance();
        }
        ++cases;
      }
    }
  }
  EXPECT_EQ(cases, 8 * 10 * 6);
}

TEST(ItemCursor, LargeRowsStayExact) {
  // Beyond 32 bits: a 2^33-row walk with 112 segments a row.
  const std::int64_t count = 112, step = 132 * 8 * 16 + 5;
  const std::int64_t first = (std::int64_t{1} << 33) * count + 17;
  ItemCursor at(first, step, count);
  for (std::int64_t k = 0; k < 1000; ++k) at.advance();
  const std::int64_t item = first + 1000 * step;
  EXPECT_EQ(at.outer, item / count);
  EXPECT_EQ(at.inner, item % count);
}

}  // namespace
}  // namespace microscale::cuda::detail
