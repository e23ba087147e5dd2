"""`python -m textrnn COMMAND`: the project's command line."""
import argparse
from typing import List, Optional

from textrnn import predict
from textrnn.errors import cli_main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m textrnn",
                                     description="textrnn: a hand-written RNN text classifier.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict_parser = commands.add_parser(
        "predict", help="score reviews with a trained model; prints one JSON line per review",
        description=predict.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    predict.add_arguments(predict_parser)
    predict_parser.set_defaults(run=predict.run)
    return parser


@cli_main
def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
