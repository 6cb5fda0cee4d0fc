#pragma once
// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when it is loaded, from the
// CPU's family and model numbers. Virtual machines that present a generic model ("Intel Xeon
// Processor") get the oldest x86-64 kernels (Prescott, SSE3) even where AVX-512 runs: GPTQ
// calibration of the bundled model took 2.4x as long as with SkylakeX's on such a VM
// (docs/benchmarks.md, "The demo table"). The choice
// can only be changed by OPENBLAS_CORETYPE before the library loads, so the CLI asks which kernels a
// misdetected CPU should get and starts itself again with that variable set.
#include <optional>
#include <string>
#include <string_view>

namespace microscale::core {

// The vector extensions that decide which OpenBLAS x86-64 kernels run (as the OS enables them).
struct CpuVectorFeatures {
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
  bool avx512cd = false;
};

CpuVectorFeatures detect_cpu_vector_features();

// The name of the kernels OpenBLAS chose ("Prescott", "Haswell", ...).
std::string openblas_core_name();

// The OPENBLAS_CORETYPE to use instead of `current` when OpenBLAS fell back to a core without AVX2
// (an SSE-only core, or Sandybridge's AVX) on a CPU that has AVX2 + FMA: "SkylakeX" where AVX-512
// F/BW/DQ/VL/CD run too, else "Haswell". Nothing when `current` has AVX2 or later (OpenBLAS knew the
// CPU), when the CPU lacks AVX2 + FMA, or when `current` is a name this rule does not know.
std::optional<std::string> faster_openblas_core(std::string_view current, const CpuVectorFeatures& features);

// For a program's main, before any other work: when faster_openblas_core names kernels for this CPU
// and OPENBLAS_CORETYPE is not set, sets it and starts the program again from /proc/self/exe with the
// same arguments (so at most once). Returns only when nothing is to be done or the restart failed; the
// program then goes on with the kernels already loaded. A variable the user set is left alone.
void restart_with_faster_openblas_kernels(char** argv);

}  // namespace microscale::core
