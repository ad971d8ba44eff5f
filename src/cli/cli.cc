#include "cli/cli.h"

#include <CLI/CLI.hpp>

namespace keygate::cli {

int Main(int argc, char** argv) {
  CLI::App app{"keygate: an LLM API gateway over a self-healing pool of upstream keys"};
  app.require_subcommand(1);
  app.add_subcommand("serve", "run the gateway");
  CLI11_PARSE(app, argc, argv);
  return 0;
}

}  // namespace keygate::cli
