"""The `textrnn` command (also `python -m textrnn`): predict, presets, seeds and their summary, report."""

from __future__ import annotations

import argparse
import sys

from textrnn.runtime import cli_main


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"distinct integers >= 0, got {text!r}")
    return seeds


def run_preset(args: argparse.Namespace) -> None:
    from textrnn import presets

    preset = presets.load_preset(presets.preset_path(args.name))
    if args.apply:
        presets.apply(preset)
        print(f"params.yaml: applied presets/{args.name}.yaml; run `dvc repro` (or `dvc exp run`)", file=sys.stderr)
    else:
        print(" ".join(presets.as_set_options(preset)))


def run_summary(args: argparse.Namespace) -> None:
    from textrnn import experiments

    runs = experiments.runs_from_exp_show(experiments.exp_show())
    print(experiments.format_summary(experiments.group_by_params(runs), args.metric or None))


def run_seeds(args: argparse.Namespace) -> None:
    from textrnn import experiments, presets

    options = presets.as_set_options(presets.load_preset(presets.preset_path(args.preset))) if args.preset else []
    for item in args.set_param or []:
        options += ["-S", item]
    experiments.queue_seeds(args.seeds, options, args.jobs)
    run_summary(args)


def run_results(args: argparse.Namespace) -> None:
    from textrnn import results

    results.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description="textrnn: a hand-written RNN text classifier.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from textrnn import predict

    predict_parser = commands.add_parser(
        "predict",
        help="score texts with a trained model; prints one JSON line per text",
        description=predict.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    predict.add_arguments(predict_parser)
    predict_parser.set_defaults(run=predict.run)

    preset = commands.add_parser(
        "preset",
        help="print a preset as `-S` options for `dvc exp run`, or apply it to params.yaml",
        description="Print presets/NAME.yaml as DVC's -S options: dvc exp run $(textrnn preset recommended)",
    )
    preset.add_argument("name", metavar="NAME", help="a preset in presets/ (without .yaml), or a path to one")
    preset.add_argument("--apply", action="store_true", help="write it into params.yaml instead (comments kept)")
    preset.set_defaults(run=run_preset)

    summary = commands.add_parser(
        "summary",
        help="mean ± std of every metric over experiments that differ only in their seed",
        description="Group `dvc exp show`'s experiments by their params (train.seed left out) and print the mean "
        "and the sample standard deviation of each metric.",
    )
    summary.add_argument(
        "--metric",
        action="append",
        metavar="FILE:KEY",
        help="only this metric, e.g. metrics.json:test.accuracy (repeatable)",
    )
    summary.set_defaults(run=run_summary)

    seeds = commands.add_parser(
        "seeds",
        help="run one experiment per seed through the DVC queue, then print the summary",
        description="dvc exp run --queue -S train.seed=S1,S2,... [preset and -S options], dvc queue start, "
        "wait, then `textrnn summary`.",
    )
    seeds.add_argument(
        "--seeds", type=_seeds, default=[1, 2, 3], metavar="S1,S2,...", help="the seeds (default: 1,2,3)"
    )
    seeds.add_argument("--preset", metavar="NAME", help="run at this preset")
    seeds.add_argument(
        "-S",
        "--set-param",
        action="append",
        metavar="SECTION.KEY=VALUE",
        help="another param for every seed's run, as dvc exp run -S (repeatable)",
    )
    seeds.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (default: 1)")
    seeds.add_argument("--metric", action="append", metavar="FILE:KEY", help="as for summary")
    seeds.set_defaults(run=run_seeds)

    from textrnn import report

    report_parser = commands.add_parser(
        "report",
        help="Markdown for a pull request: metrics and params diff against a revision, the baseline, the plots",
        description=report.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_arguments(report_parser)
    report_parser.set_defaults(run=report.run)

    results = commands.add_parser(
        "results",
        help="regenerate README.md's Results table through the DVC queue and say which cells differ",
        description="For each dataset and configuration (the defaults, presets/recommended.yaml): seeds 1, 2, 3 "
        "queued with --force, run, then printed as README.md's rows (mean ± sample std) beside the cells that "
        "differ from README.md. IMDB is download.dataset's default; sst2 and trec6 are folders (--dataset).",
    )
    results.add_argument(
        "--dataset",
        action="append",
        metavar="NAME=PATH",
        help="the folder of sst2 or trec6 (parquet files), e.g. trec6=/data/trec6 (repeatable)",
    )
    results.add_argument(
        "--only",
        action="append",
        metavar="DATASET[:CONFIG]",
        help="only these rows, e.g. trec6 or trec6:recommended (repeatable; default: IMDB and every --dataset)",
    )
    results.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (default: 1)")
    results.add_argument("--tag", help="print the table of an earlier run's experiments (its tag); run nothing")
    results.set_defaults(run=run_results)
    return parser


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
