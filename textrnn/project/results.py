"""`textrnn results`: the README's Results table, regenerated through the DVC queue and checked against the README.

For each dataset row picked (IMDB = ``download.dataset``'s default; sst2 and trec6 as folders given
with ``--dataset NAME=PATH``) and each configuration (the defaults, ``presets/recommended.yaml``),
one experiment per seed (1, 2, 3) is queued with ``--force`` (every stage reruns: nothing comes
from DVC's run cache), the queue runs, and the experiments' metrics are read back from
``dvc exp show --json`` by their names. The table is printed as the README's rows (mean ± sample
std over the seeds, 3 decimals; the baseline stage's figures once, from the defaults' runs, as it
does not depend on the seed), followed by the cells that differ from the README's table.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from textrnn.core.errors import UserError
from textrnn.project import experiments

DATASETS = ("imdb", "sst2", "trec6")  # the README's order
CONFIGURATIONS = ("defaults", "recommended")
SPLIT_NAMES = ("train", "valid", "test")
SEEDS = (1, 2, 3)
DIGITS = 3
README = Path("README.md")


@dataclass(frozen=True)
class Row:
    dataset: str  # one of DATASETS
    configuration: str  # one of CONFIGURATIONS, or "baseline"
    cells: tuple[str, ...]  # train, valid, test as the README writes them: "0.807 ± 0.004" or "1.000"


def format_cell(values: list[float], digits: int = DIGITS) -> str:
    """Mean ± sample standard deviation (n - 1) of ``values``, or the value alone when there is one."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    mean = sum(values) / len(values)
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _configuration(cell: str) -> str | None:
    text = cell.lower()
    if "baseline" in text:
        return "baseline"
    if "recommended" in text:
        return "recommended"
    if "defaults" in text:
        return "defaults"
    return None  # the course notebook's own run: a figure copied from it, not regenerated here


def parse_readme_table(text: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """The Results table's regenerated cells by (dataset, configuration): "**0.950 ± 0.015**" read as "0.950 ± 0.015".

    A row with an empty dataset cell belongs to the dataset named above it; the dataset is the
    first word of its cell, lower-cased ("IMDB (20,000 / ...)" -> "imdb").
    """
    section = re.search(r"^## Results\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    if section is None:
        raise UserError("README.md has no '## Results' section; run from the project's root")
    table: dict[tuple[str, str], tuple[str, ...]] = {}
    dataset = None
    for line in section.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        header_or_rule = cells[:1] and (cells[0].startswith("dataset") or cells[0].startswith("---"))
        if len(cells) != 6 or header_or_rule:
            continue
        if cells[0]:
            dataset = cells[0].split()[0].lower()
        configuration = _configuration(cells[1])
        if dataset in DATASETS and configuration is not None:
            table[dataset, configuration] = tuple(c.replace("**", "") for c in cells[3:6])
    if not table:
        raise UserError("README.md's Results table has no rows of imdb, sst2 or trec6")
    return table


def format_rows(rows: list[Row]) -> str:
    """The rows as Markdown table rows: dataset | configuration | train | valid | test."""
    lines = ["| dataset | configuration | train | valid | test |", "|---|---|---|---|---|"]
    lines += [f"| {r.dataset} | {r.configuration} | {' | '.join(r.cells)} |" for r in rows]
    return "\n".join(lines)


def differences(rows: list[Row], readme: dict[tuple[str, str], tuple[str, ...]]) -> list[str]:
    """One line per cell that differs from the README's (or a row the README lacks)."""
    lines = []
    for row in rows:
        expected = readme.get((row.dataset, row.configuration))
        if expected is None:
            lines.append(f"{row.dataset} {row.configuration}: not in README.md's table")
            continue
        for split, got, want in zip(SPLIT_NAMES, row.cells, expected, strict=True):
            if got != want:
                lines.append(f"{row.dataset} {row.configuration} {split}: README {want}, now {got}")
    return lines


def rows_from_runs(
    runs: dict[str, experiments.Run], tag: str, picked: list[tuple[str, str]], seeds: tuple[int, ...] = SEEDS
) -> list[Row]:
    """The table's rows from the runs named by ``experiment_name``; the baseline row from the defaults' runs."""
    rows = []
    for dataset in DATASETS:
        configurations = [c for d, c in picked if d == dataset]
        for configuration in configurations:
            missing = [str(s) for s in seeds if experiment_name(tag, dataset, configuration, s) not in runs]
            if missing:
                raise UserError(
                    f"no metrics for {dataset} {configuration} seed(s) {', '.join(missing)} of run {tag} in "
                    f"`dvc exp show`; `dvc queue status` lists failures, `dvc queue logs NAME` shows why"
                )
            named = [runs[experiment_name(tag, dataset, configuration, seed)] for seed in seeds]
            cells = [[run.metrics[f"metrics.json:{split}.accuracy"] for run in named] for split in SPLIT_NAMES]
            rows.append(Row(dataset, configuration, tuple(format_cell(v) for v in cells)))
        if "defaults" in configurations:
            named = [runs[experiment_name(tag, dataset, "defaults", seed)] for seed in seeds]
            values = [[run.metrics.get(f"baseline.json:{split}.accuracy") for run in named] for split in SPLIT_NAMES]
            if any(v is None for split in values for v in split):
                continue  # baseline.enabled: false
            if any(len(set(v)) != 1 for v in values):
                raise UserError(f"{dataset}: the baseline's figures differ between seeds; it should not read the seed")
            known = cast(list[list[float]], values)  # no None, as checked above
            rows.append(Row(dataset, "baseline", tuple(format_cell(v[:1]) for v in known)))
    return rows


def experiment_name(tag: str, dataset: str, configuration: str, seed: int) -> str:
    return f"{tag}-{dataset}-{configuration}-s{seed}"


def pick(only: list[str] | None, folders: dict[str, str]) -> list[tuple[str, str]]:
    """(dataset, configuration) pairs from ``--only`` items "trec6" or "trec6:recommended"; all by default."""
    items = only or [d for d in DATASETS if d == "imdb" or d in folders]
    picked = []
    for item in items:
        dataset, _, configuration = item.partition(":")
        if dataset not in DATASETS:
            raise UserError(f"--only {item}: unknown dataset '{dataset}'; use one of {', '.join(DATASETS)}")
        if configuration and configuration not in CONFIGURATIONS:
            raise UserError(f"--only {item}: unknown configuration; use one of {', '.join(CONFIGURATIONS)}")
        if dataset != "imdb" and dataset not in folders:
            raise UserError(f"--only {item}: give its folder with --dataset {dataset}=PATH")
        for c in [configuration] if configuration else CONFIGURATIONS:
            if (dataset, c) not in picked:
                picked.append((dataset, c))
    return picked


def parse_folders(items: list[str] | None) -> dict[str, str]:
    folders = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or name not in DATASETS or name == "imdb" or not path:
            raise UserError(f"--dataset {item}: give NAME=PATH with NAME one of sst2, trec6 (IMDB is the default)")
        if not Path(path).is_dir():
            raise UserError(f"--dataset {item}: {path} is not a folder")
        folders[name] = str(Path(path).resolve())  # queued experiments run in a copy: a relative path breaks there
    return folders


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()


def queue_and_run(
    tag: str, picked: list[tuple[str, str]], folders: dict[str, str], jobs: int, seeds: tuple[int, ...] = SEEDS
) -> None:
    from textrnn.project import presets

    preset = presets.as_set_options(presets.load_preset(presets.preset_path("recommended")))
    names: dict[str, str] = {}
    for dataset, configuration in picked:
        options = ["-S", f"download.dataset={folders[dataset]}"] if dataset != "imdb" else []
        options += preset if configuration == "recommended" else []
        for seed in seeds:
            name = experiment_name(tag, dataset, configuration, seed)
            experiments.dvc(
                "exp", "run", "--queue", "--force", "-n", name, "-S", f"train.seed={seed}", *options, capture=True
            )
            names[name] = name
            print(f"queued {name}", file=sys.stderr)
    workers = min(jobs, len(names))
    experiments.dvc("queue", "start", "-j", str(workers), capture=True)
    # Followed through git as `textrnn seeds` follows its own: polling `dvc queue status` can stop a worker.
    experiments.wait_for_experiments(
        dict(names),
        {},
        workers,
        10.0,
        experiments.dvc,
        experiments.git,
        experiments.workers_alive,
        lambda text: print(text, file=sys.stderr),
        time.monotonic,
        time.sleep,
        time.monotonic(),
        line=_ended_line,
    )


def _ended_line(name: str, run: experiments.Run | None, _name: str, elapsed: float, gone: bool = False) -> str:
    if run is not None:
        return f"{name}: done"
    if gone:
        return f"{name}: no longer queued, and no worker runs it"
    return f"{name}: FAILED; `dvc queue logs {name}` shows why"


def run(args) -> None:
    readme = parse_readme_table(README.read_text(encoding="utf-8"))
    folders = parse_folders(args.dataset)
    picked = pick(args.only, folders)
    if args.tag:
        tag = args.tag  # read back the experiments of an earlier run, run nothing
    else:
        if _git("status", "--porcelain", "--untracked-files=no"):
            raise UserError(
                "the workspace has uncommitted changes to tracked files; commit or stash them: "
                "queued experiments would run them, and the figures must come from a commit"
            )
        tag = f"results-{_git('rev-parse', '--short', 'HEAD')}-{time.strftime('%Y%m%d%H%M%S')}"
        print(f"run {tag}: {len(picked) * len(SEEDS)} experiments, {args.jobs} at a time", file=sys.stderr)
        queue_and_run(tag, picked, folders, args.jobs)
    runs = {run.name: run for run in experiments.finished(experiments.runs_from_exp_show(experiments.exp_show()))}
    rows = rows_from_runs(runs, tag, picked)
    print(format_rows(rows))
    diff = differences(rows, readme)
    print("\n" + ("\n".join(["differs from README.md:", *diff]) if diff else "every cell equals README.md's"))
    print(f"(run {tag}; read it again with `textrnn results --tag {tag}` and the same --only/--dataset)")
