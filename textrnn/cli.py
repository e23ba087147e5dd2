"""The `textrnn` command (also `python -m textrnn`): predict, presets, seeds and their summary, report."""

from __future__ import annotations

import argparse
import sys

from textrnn.core.params import PARALLEL_MAX, SEED_MAX
from textrnn.core.runtime import cli_main


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of integers, got {text!r}") from None
    if not seeds or min(seeds) < 0 or max(seeds) > SEED_MAX or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"distinct integers in [0, {SEED_MAX}] (train.seed's range), got {text!r}")
    return seeds


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    if jobs > PARALLEL_MAX:
        raise argparse.ArgumentTypeError(
            f"must be at most {PARALLEL_MAX} (the bound of every thread count), got {text!r}"
        )
    return jobs


def run_preset(args: argparse.Namespace) -> None:
    from textrnn.project import experiments, presets

    preset = presets.load_preset(presets.preset_path(args.name))
    if args.apply:
        presets.apply(preset)
        print(f"params.yaml: applied presets/{args.name}.yaml; run `dvc repro` (or `dvc exp run`)", file=sys.stderr)
        return
    options = presets.as_set_options(preset)
    if args.exp_run or args.queue:
        experiments.dvc("exp", "run", *(["--queue"] if args.queue else []), *options)
        return
    for word in presets.glob_words(options):
        print(
            f"note: {word} holds a shell pattern character ([, * or ?); unquoted in `$(...)` a shell may "
            f"expand it to file names: `textrnn preset {args.name} --run` (or --queue) passes it intact",
            file=sys.stderr,
        )
    print(" ".join(options))


def run_summary(args: argparse.Namespace) -> None:
    from textrnn.project import experiments

    document = experiments.exp_show(*(["--all-commits"] if args.all_commits else []))
    runs = experiments.finished(experiments.runs_from_exp_show(document))
    print(experiments.format_summary(experiments.group_by_params(runs), args.metric, all_metrics=args.all_metrics))


def run_seeds(args: argparse.Namespace) -> None:
    from textrnn.core.errors import UserError
    from textrnn.project import experiments, presets

    preset = presets.load_preset(presets.preset_path(args.preset)) if args.preset else {}
    if "seed" in preset.get("train", {}):
        raise UserError(
            f"preset {args.preset}: sets {experiments.SEED_KEY}, which textrnn seeds sets itself; "
            f"remove it from the preset, or give the seeds with --seeds"
        )
    options = presets.as_set_options(preset)
    for item in args.set_param or []:
        options += ["-S", item]
    result = experiments.queue_seeds(args.seeds, options, args.jobs)
    groups = experiments.group_by_params(result.runs)
    print(experiments.format_summary(groups, args.metric, all_metrics=args.all_metrics))
    if result.failed:
        raise UserError(
            f"{len(result.failed)} of {len(args.seeds)} experiments failed ({', '.join(result.failed)}); "
            f"`dvc queue logs NAME` shows why"
        )


def _summary_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metric",
        action="append",
        metavar="FILE:KEY",
        help="a column of this metric instead, e.g. metrics.json:test.loss (repeatable)",
    )
    parser.add_argument("--all-metrics", action="store_true", help="a column per metric (a wide table)")


def run_results(args: argparse.Namespace) -> None:
    from textrnn.project import results

    results.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description="textrnn: a hand-written RNN text classifier.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from textrnn.scoring import predict

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
        help="print a preset as `-S` options for `dvc exp run`, run or queue it, or apply it to params.yaml",
        description="Print presets/NAME.yaml as DVC's -S options, one shell word each (no spaces): "
        "dvc exp run $(textrnn preset recommended). --run and --queue call dvc exp run themselves.",
    )
    preset.add_argument("name", metavar="NAME", help="a preset in presets/ (without .yaml), or a path to one")
    action = preset.add_mutually_exclusive_group()
    action.add_argument("--apply", action="store_true", help="write it into params.yaml instead (comments kept)")
    action.add_argument(
        "--run", dest="exp_run", action="store_true", help="run `dvc exp run -S ...` at the preset (the workspace)"
    )
    action.add_argument("--queue", action="store_true", help="queue it: `dvc exp run --queue -S ...`")
    preset.set_defaults(run=run_preset)

    summary = commands.add_parser(
        "summary",
        help="mean ± std of test/valid/train accuracy over experiments that differ only in their seed",
        description="Group the finished experiments of `dvc exp show` (HEAD's; queued, running and failed ones "
        "left out) by their params, train.seed left out, and print each group's runs and the mean ± sample "
        "standard deviation of the RNN's test, valid and train accuracy, the baseline's once.",
    )
    _summary_options(summary)
    summary.add_argument(
        "-A", "--all-commits", action="store_true", help="the experiments of every commit, not only HEAD's"
    )
    summary.set_defaults(run=run_summary)

    seeds = commands.add_parser(
        "seeds",
        help="run one experiment per seed through the DVC queue, then print their summary",
        description="dvc exp run --queue --name seedS-XXXX -S train.seed=S [preset and -S options] for each "
        "seed, dvc queue start, a line as each experiment ends, then the summary of these experiments.",
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
        help="another param for every seed's run, as dvc exp run -S (repeatable; not train.seed)",
    )
    seeds.add_argument("-j", "--jobs", type=_jobs, default=1, help="queue workers, at least 1 (default: 1)")
    _summary_options(seeds)
    seeds.set_defaults(run=run_seeds)

    from textrnn.project import report

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
    results.add_argument("-j", "--jobs", type=_jobs, default=1, help="queue workers, at least 1 (default: 1)")
    results.add_argument("--tag", help="print the table of an earlier run's experiments (its tag); run nothing")
    results.set_defaults(run=run_results)
    return parser


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)
