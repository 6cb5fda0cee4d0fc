// microscale: a thin command line over libmicroscale. Every failure the library reports is a
// microscale::Error whose message names the file and the problem; it is printed and the exit code is 1.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cli/commands.hpp"
#include "microscale/core/error.hpp"
#include "microscale/core/openblas_kernels.hpp"

namespace {

// OpenBLAS chose its kernels when it was loaded; on a CPU it did not recognise it may have chosen
// kernels far older than the CPU (core/openblas_kernels.hpp). Start this program again, once, with
// OPENBLAS_CORETYPE naming the kernels the CPU runs. A variable the user set is left alone, and if
// the program cannot be started again it goes on with the kernels it has.
void restart_with_faster_openblas_kernels(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;
  const auto core = microscale::core::faster_openblas_core(microscale::core::openblas_core_name(),
                                                           microscale::core::detect_cpu_vector_features());
  if (!core || setenv("OPENBLAS_CORETYPE", core->c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);
  unsetenv("OPENBLAS_CORETYPE");
}

}  // namespace

int main(int argc, char** argv) {
  restart_with_faster_openblas_kernels(argv);
  CLI::App app{"microscale: 4-bit (MXFP4, NVFP4, INT4) post-training quantization of LLMs"};
  app.require_subcommand(1);
  microscale::cli::register_inspect(app);
  microscale::cli::register_quantize(app);
  microscale::cli::register_eval(app);
  microscale::cli::register_export(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const microscale::Error& e) {
    fmt::print(stderr, "microscale: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "microscale: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
