// microscale: a thin command line over libmicroscale. Every failure the library reports is a
// microscale::Error whose message names the file and the problem; it is printed and the exit code is 1.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cli/commands.hpp"
#include "microscale/core/error.hpp"
#include "microscale/core/openblas_kernels.hpp"

int main(int argc, char** argv) {
  // OpenBLAS may have loaded kernels far older than this CPU (core/openblas_kernels.hpp).
  microscale::core::restart_with_faster_openblas_kernels(argv);
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
