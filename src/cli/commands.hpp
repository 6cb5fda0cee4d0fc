#pragma once
// Each subcommand lives in its own cmd_<name>.cpp and registers itself on the root app.
#include <CLI/CLI.hpp>

namespace microscale::cli {

void register_inspect(CLI::App& app);
void register_quantize(CLI::App& app);
void register_eval(CLI::App& app);
void register_export(CLI::App& app);

}  // namespace microscale::cli
