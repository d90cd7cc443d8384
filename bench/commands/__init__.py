"""One module per `brainbench` subcommand, each with `add_parser(subparsers)` and `run(args)`."""
