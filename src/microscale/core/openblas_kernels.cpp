#include "microscale/core/openblas_kernels.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include <cblas.h>
#include <unistd.h>

namespace microscale::core {

CpuVectorFeatures detect_cpu_vector_features() {
  // libgcc's checks include the OS's XSAVE state (XCR0), not only the CPUID bits.
  __builtin_cpu_init();
  CpuVectorFeatures f;
  f.avx = __builtin_cpu_supports("avx");
  f.avx2 = __builtin_cpu_supports("avx2");
  f.fma = __builtin_cpu_supports("fma");
  f.avx512f = __builtin_cpu_supports("avx512f");
  f.avx512bw = __builtin_cpu_supports("avx512bw");
  f.avx512dq = __builtin_cpu_supports("avx512dq");
  f.avx512vl = __builtin_cpu_supports("avx512vl");
  f.avx512cd = __builtin_cpu_supports("avx512cd");
  return f;
}

std::string openblas_core_name() {
  const char* name = openblas_get_corename();
  return name != nullptr ? std::string(name) : std::string();
}

namespace {

// Instruction-set levels of OpenBLAS's x86-64 core names (as openblas_get_corename spells them).
enum class Level { sse, avx, avx2, avx512 };

std::optional<Level> level_of(std::string_view core) {
  static constexpr std::array<std::pair<std::string_view, Level>, 14> kCores{{
      {"Prescott", Level::sse},     {"Core2", Level::sse},        {"Penryn", Level::sse},
      {"Dunnington", Level::sse},   {"Nehalem", Level::sse},      {"Atom", Level::sse},
      {"Opteron", Level::sse},      {"Barcelona", Level::sse},    {"Sandybridge", Level::avx},
      {"Bulldozer", Level::avx},    {"Haswell", Level::avx2},     {"Zen", Level::avx2},
      {"SkylakeX", Level::avx512},  {"Cooperlake", Level::avx512},
  }};
  const auto it = std::find_if(kCores.begin(), kCores.end(), [&](const auto& c) { return c.first == core; });
  if (it == kCores.end()) return std::nullopt;
  return it->second;
}

}  // namespace

std::optional<std::string> faster_openblas_core(std::string_view current, const CpuVectorFeatures& f) {
  const std::optional<Level> have = level_of(current);
  if (!have) return std::nullopt;
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512cd && f.avx2 && f.fma;
  const bool avx2 = f.avx && f.avx2 && f.fma;
  // A core of AVX2 or later was detected on purpose (OpenBLAS knew the model): keep it.
  if (*have >= Level::avx2 || !avx2) return std::nullopt;
  return avx512 ? "SkylakeX" : "Haswell";
}

void restart_with_faster_openblas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const std::optional<std::string> core = faster_openblas_core(openblas_core_name(), detect_cpu_vector_features());
  if (!core || setenv("OPENBLAS_CORETYPE", core->c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");  // execv returned: it failed
}

}  // namespace microscale::core
