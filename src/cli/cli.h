// The `keygate` command line: parses argv (CLI11, in this one translation unit) and dispatches to
// `serve` or a subcommand working straight on the store.
#ifndef KEYGATE_CLI_CLI_H_
#define KEYGATE_CLI_CLI_H_

namespace keygate::cli {

// Returns the process exit code (see docs/cli.md for the table).
int Main(int argc, char** argv);

}  // namespace keygate::cli

#endif  // KEYGATE_CLI_CLI_H_
