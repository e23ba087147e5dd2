"""Seeds through the DVC queue, and their mean ± std per metric from `dvc exp show`.

A single seed misleads: a vanilla RNN's test accuracy moves by points from seed to seed.
``textrnn seeds`` queues one experiment per seed (``dvc exp run --queue -S train.seed=1,2,3``),
runs the queue, and prints the summary; ``textrnn summary`` prints it for experiments already run.
Experiments are grouped by their params, the seed left out.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from textrnn.errors import UserError

SEED_KEYS = ("train.seed",)


@dataclass
class Run:
    name: str
    params: dict[str, Any]  # "section.key" -> value
    metrics: dict[str, float]  # "file:split.metric" -> value, e.g. "metrics.json:test.accuracy"


@dataclass
class Group:
    params: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    def stats(self, metric: str) -> tuple[float, float, int]:
        """Mean, sample standard deviation (n - 1) and count of ``metric`` over the group's runs."""
        values = [run.metrics[metric] for run in self.runs if metric in run.metrics]
        if not values:
            return math.nan, math.nan, 0
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
        return mean, std, len(values)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _run(name: str, data: dict) -> Run | None:
    params = {}
    for source in (data.get("params") or {}).values():
        params.update(_flatten(source.get("data") or {}))
    metrics = {}
    for path, source in (data.get("metrics") or {}).items():
        for key, value in _flatten(source.get("data") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{path.rsplit('/', 1)[-1]}:{key}"] = float(value)
    return Run(name, params, metrics) if metrics else None


def runs_from_exp_show(document: list) -> list[Run]:
    """Every experiment with metrics in `dvc exp show --json`'s output (the workspace and commits left out)."""
    runs = []
    for commit in document:
        for experiment in commit.get("experiments") or []:
            for revision in experiment.get("revs") or []:
                run = _run(
                    experiment.get("name") or revision.get("name") or revision["rev"][:7], revision.get("data") or {}
                )
                if run is not None:
                    runs.append(run)
    return runs


def group_by_params(runs: list[Run], seed_keys: tuple[str, ...] = SEED_KEYS) -> list[Group]:
    groups: dict[str, Group] = {}
    for run in runs:
        params = {k: v for k, v in run.params.items() if k not in seed_keys}
        key = json.dumps(params, sort_keys=True, default=str)
        groups.setdefault(key, Group(params)).runs.append(run)
    return list(groups.values())


def format_summary(groups: list[Group], metrics: list[str] | None = None, digits: int = 3) -> str:
    """A table: the params that differ between groups, the number of runs, and mean ± std per metric."""
    if not groups:
        return "no experiments with metrics (run some: `textrnn seeds`, or `dvc exp run --queue`)"
    names = metrics or sorted({m for g in groups for run in g.runs for m in run.metrics})
    keys = sorted({k for g in groups for k in g.params})
    varying = [k for k in keys if len({json.dumps(g.params.get(k), default=str) for g in groups}) > 1]
    header = [*varying, "runs", *names]
    rows = []
    for group in groups:
        cells = [str(group.params.get(k)) for k in varying] + [str(len(group.runs))]
        for name in names:
            mean, std, n = group.stats(name)
            cells.append(f"{mean:.{digits}f} ± {std:.{digits}f}" if n else "-")
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def dvc(*args: str, capture: bool = False) -> str:
    result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=capture, text=True)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise UserError(f"`dvc {' '.join(args)}` failed" + (f": {detail[0]}" if detail else ""))
    return result.stdout if capture else ""


def exp_show() -> list:
    try:
        return json.loads(dvc("exp", "show", "--json", capture=True))
    except json.JSONDecodeError:
        raise UserError("`dvc exp show --json` did not print JSON; is this a DVC project with a commit?") from None


def queue_seeds(seeds: list[int], set_options: list[str], jobs: int, poll_seconds: float = 5.0) -> None:
    """Queue one experiment per seed with ``set_options``, run the queue with ``jobs`` workers, wait for it."""
    dvc("exp", "run", "--queue", "-S", f"train.seed={','.join(map(str, seeds))}", *set_options)
    dvc("queue", "start", "-j", str(jobs))
    while True:
        status = dvc("queue", "status", capture=True)
        if not any(word in status for word in ("Queued", "Running")):
            break
        time.sleep(poll_seconds)
    if "Failed" in status:
        raise UserError(
            "some queued experiments failed; `dvc queue status` lists them and `dvc queue logs NAME` shows why"
        )
