"""The `textrnn` command (also `python -m textrnn`)."""

from __future__ import annotations

import argparse

from textrnn.runtime import cli_main


def build_parser() -> argparse.ArgumentParser:
    from textrnn import predict

    parser = argparse.ArgumentParser(prog="textrnn", description="textrnn: a hand-written RNN text classifier.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    predict_parser = commands.add_parser(
        "predict",
        help="score texts with a trained model; prints one JSON line per text",
        description=predict.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_arguments(predict_parser)
    predict_parser.set_defaults(run=predict.run)
    return parser


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
