// Placeholder until the eval subcommand lands (owned by the runtime work).
#include "cli/commands.hpp"
#include "microscale/core/error.hpp"

namespace microscale::cli {
void register_eval(CLI::App& app) {
  app.add_subcommand("eval", "Evaluate a model (not available in this build yet)")->callback([] {
    fail("eval is not available in this build yet");
  });
}
}  // namespace microscale::cli
