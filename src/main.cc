// keygate: argv -> `serve` or a subcommand. Everything else lives in cli/ and server/.
#include "cli/cli.h"

int main(int argc, char** argv) { return keygate::cli::Main(argc, argv); }
