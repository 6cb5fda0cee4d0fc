// What `eval` reads to decide whether a model fits (core/system_memory): /proc/meminfo's
// MemAvailable, capped by a cgroup v2 limit.
#include <gtest/gtest.h>

#include "microscale/core/system_memory.hpp"

namespace microscale {
namespace {

constexpr std::string_view kMeminfo =
    "MemTotal:       24566312 kB\n"
    "MemFree:         1034920 kB\n"
    "MemAvailable:   20971520 kB\n"
    "Buffers:          123456 kB\n";

TEST(SystemMemory, MemAvailableIsReadInKibibytes) {
  EXPECT_EQ(parse_mem_available(kMeminfo), std::optional<std::uint64_t>(20971520ull * 1024));
  EXPECT_EQ(parse_mem_available("MemAvailable: 1 kB"), std::optional<std::uint64_t>(1024));
}

TEST(SystemMemory, MalformedOrMissingMemAvailableIsUnknown) {
  EXPECT_EQ(parse_mem_available("MemTotal: 100 kB\nMemFree: 50 kB\n"), std::nullopt);
  EXPECT_EQ(parse_mem_available("MemAvailable: 100 MB\n"), std::nullopt);
  EXPECT_EQ(parse_mem_available("MemAvailable: lots kB\n"), std::nullopt);
  EXPECT_EQ(parse_mem_available("XMemAvailable: 100 kB\n"), std::nullopt);  // only the key at a line start
}

TEST(SystemMemory, CgroupHeadroomIsTheLimitMinusTheUsage) {
  EXPECT_EQ(parse_cgroup_headroom("8589934592\n", "1073741824\n"), std::optional<std::uint64_t>(7516192768ull));
  EXPECT_EQ(parse_cgroup_headroom("1000", "1500"), std::optional<std::uint64_t>(0));  // over the limit
  EXPECT_EQ(parse_cgroup_headroom("max\n", "1073741824\n"), std::nullopt);         // no limit of its own
  EXPECT_EQ(parse_cgroup_headroom("", "1"), std::nullopt);
}

TEST(SystemMemory, ThisMachineReportsSomething) {
  // Every Linux machine the project runs on has /proc/meminfo.
  const auto available = available_memory_bytes();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0u);
}

}  // namespace
}  // namespace microscale
