"""Seeds through the DVC queue, and their mean ± std per metric from `dvc exp show`.

A single seed misleads: a vanilla RNN's test accuracy moves by points from seed to seed.
``textrnn seeds`` queues one named experiment per seed (``dvc exp run --queue --name seedS-XXXX
-S train.seed=S``), runs the queue, prints a line as each of them ends, and then the summary of
those experiments alone; ``textrnn summary`` prints it for every experiment already run.
Experiments are grouped by their params, the seed left out.
"""

from __future__ import annotations

import json
import math
import secrets
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textrnn.core.errors import UserError

SEED_KEY = "train.seed"
SEED_KEYS = (SEED_KEY,)
PARAMS_FILE = "params.yaml"
# The default columns: the RNN's accuracy per split (metrics/metrics.json), test first.
MODEL_COLUMNS = (
    ("test", "metrics.json:test.accuracy"),
    ("valid", "metrics.json:valid.accuracy"),
    ("train", "metrics.json:train.accuracy"),
)
# The baseline stage's file: it does not depend on train's params, so the summary shows it once.
BASELINE_FILE = "baseline.json"
# `dvc exp show --json`'s executor states; an experiment with no executor (run in the workspace, or
# its queue entry cleared) has ended well. Queued, running and failed ones carry the metrics of
# their baseline commit (git-tracked files), so they are no runs of their own.
DONE_STATES = ("success", "done")
FAILED_STATE = "failed"
WIDTH = 80


@dataclass
class Run:
    name: str
    rev: str
    state: str  # "success", "done" (no executor), "queued", "running", "failed"
    params: dict[str, Any]  # "section.key" -> value
    metrics: dict[str, float]  # "file:split.metric" -> value, e.g. "metrics.json:test.accuracy"

    @property
    def done(self) -> bool:
        return self.state in DONE_STATES and bool(self.metrics)


@dataclass
class Group:
    params: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        return [run.metrics[metric] for run in self.runs if metric in run.metrics]


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _run(name: str, rev: str, state: str, data: dict) -> Run:
    params = {}
    for source in (data.get("params") or {}).values():
        params.update(_flatten(source.get("data") or {}))
    metrics = {}
    for path, source in (data.get("metrics") or {}).items():
        for key, value in _flatten(source.get("data") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[f"{path.rsplit('/', 1)[-1]}:{key}"] = float(value)
    return Run(name, rev, state, params, metrics)


def runs_from_exp_show(document: list) -> list[Run]:
    """Every experiment in `dvc exp show --json`'s output, once per rev, in its order, whatever its state
    (the workspace and the commits left out: they are baselines, not runs)."""
    runs, seen = [], set()
    for commit in document:
        for experiment in commit.get("experiments") or []:
            executor = experiment.get("executor") or {}
            for revision in experiment.get("revs") or []:
                rev = revision.get("rev") or ""
                if rev in seen:
                    continue
                seen.add(rev)
                state = executor.get("state") or "done"
                if revision.get("error") and state in DONE_STATES:
                    state = FAILED_STATE
                name = experiment.get("name") or revision.get("name") or rev[:7]
                runs.append(_run(name, rev, state, revision.get("data") or {}))
    return runs


def finished(runs: list[Run]) -> list[Run]:
    """The runs that ended well and have metrics: the ones a summary counts."""
    return [run for run in runs if run.done]


def group_by_params(runs: list[Run], seed_keys: tuple[str, ...] = SEED_KEYS) -> list[Group]:
    groups: dict[str, Group] = {}
    for run in runs:
        params = {k: v for k, v in run.params.items() if k not in seed_keys}
        key = json.dumps(params, sort_keys=True, default=str)
        groups.setdefault(key, Group(params)).runs.append(run)
    return list(groups.values())


def format_value(value: Any) -> str:
    """A param's value as `-S` writes it: strings bare, the rest as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _cell(values: list[float], digits: int) -> str:
    """``mean ± std`` (sample std) where the values differ; the value alone where they agree; ``-`` for none."""
    if not values:
        return "-"
    if all(v == values[0] for v in values):
        return f"{values[0]:.{digits}f}"
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in [header, *rows]]
    return [line.rstrip() for line in lines]


def format_summary(
    groups: list[Group], metrics: list[str] | None = None, digits: int = 3, all_metrics: bool = False
) -> str:
    """A table, a row per group of runs that differ only in their seed: the number of runs and each metric's
    mean ± std (the value alone where the runs agree).

    By default the columns are the RNN's test, valid and train accuracy, and the baseline stage's
    accuracies come once, in a row of their own (one per distinct baseline), so the table fits in 80
    columns; the params that set the groups apart are listed under it. ``metrics`` picks other columns
    ("file:key", e.g. metrics.json:test.loss), ``all_metrics`` every one.
    """
    if not groups:
        return "no finished experiments with metrics (run some: `textrnn seeds`, or `dvc exp run --queue`)"
    if all_metrics:
        names = sorted({m for g in groups for run in g.runs for m in run.metrics})
        columns = [(name, name) for name in names]
    elif metrics:
        columns = [(name, name) for name in metrics]
    else:
        columns = list(MODEL_COLUMNS)
    labels = [str(number) for number in range(1, len(groups) + 1)]
    header = ["group", "runs", *(title for title, _ in columns)]
    rows = [
        [label, str(len(group.runs)), *(_cell(group.values(metric), digits) for _, metric in columns)]
        for label, group in zip(labels, groups, strict=True)
    ]
    if not metrics and not all_metrics:
        rows += _baseline_rows(groups, labels, digits)
    lines = _table(header, rows)
    keys = sorted({k for g in groups for k in g.params})
    varying = [k for k in keys if len({json.dumps(g.params.get(k), default=str) for g in groups}) > 1]
    if varying:
        lines.append("")
        for label, group in zip(labels, groups, strict=True):
            settings = ", ".join(f"{k}={format_value(group.params.get(k))}" for k in varying)
            lines += textwrap.wrap(
                f"{label}: {settings}", WIDTH, subsequent_indent=" " * (len(label) + 2), break_on_hyphens=False
            )
    known = {m for g in groups for run in g.runs for m in run.metrics}
    for metric in metrics or []:
        if metric not in known:  # a typo would read as a column of runs without that metric
            lines.append(
                f"note: no run has {metric} (FILE:KEY as `textrnn summary --all-metrics` lists them, "
                f"e.g. {MODEL_COLUMNS[0][1]})"
            )
    return "\n".join(lines)


def _baseline_rows(groups: list[Group], labels: list[str], digits: int) -> list[list[str]]:
    """The baseline's test, valid and train accuracy: one row per distinct triple, naming its groups."""
    by_cells: dict[tuple[str, ...], list[str]] = {}
    for label, group in zip(labels, groups, strict=True):
        cells = tuple(
            _cell(group.values(metric.replace("metrics.json:", f"{BASELINE_FILE}:")), digits)
            for _, metric in MODEL_COLUMNS
        )
        if any(cell != "-" for cell in cells):
            by_cells.setdefault(cells, []).append(label)
    if len(by_cells) == 1 and len(next(iter(by_cells.values()))) == len(groups):
        return [["baseline", "-", *next(iter(by_cells))]]
    return [[f"baseline {','.join(members)}", "-", *cells] for cells, members in by_cells.items()]


# ---- DVC ------------------------------------------------------------------------------------------------


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dvc(*args: str, capture: bool = False) -> str:
    """Run ``dvc ARGS``; return its stdout when ``capture``, else let it print to stderr (stdout holds our
    tables). `dvc queue start` must not be captured: its workers keep the pipe open until the queue is done."""
    if capture:
        result = subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True)
    else:
        result = subprocess.run([sys.executable, "-m", "dvc", *args], stdout=2, text=True)
    if result.returncode != 0:
        detail = (result.stderr or "").strip().splitlines()[-1:] if capture else []
        raise UserError(f"`dvc {' '.join(args)}` failed" + (f": {detail[0]}" if detail else ""))
    return result.stdout if capture else ""


def exp_show(*options: str, run_dvc: Callable[..., str] | None = None) -> list:
    run_dvc = run_dvc or dvc
    try:
        return json.loads(run_dvc("exp", "show", "--json", *options, capture=True))
    except json.JSONDecodeError:
        raise UserError("`dvc exp show --json` did not print JSON; is this a DVC project with a commit?") from None


def set_option_key(option: str) -> str:
    """The param that a ``-S`` value sets: ``params.yaml:train.seed=5`` -> ``train.seed``; Hydra's add
    and force-add prefixes (``+``, ``++``) set it too."""
    key, equals, _ = option.partition("=")
    if not equals or not key:
        raise UserError(f"-S {option}: expected SECTION.KEY=VALUE, e.g. -S train.hidden_size=128")
    path, colon, name = key.rpartition(":")
    return (name if colon and path == PARAMS_FILE else key).lstrip("+")


def check_set_options(options: list[str]) -> None:
    """Refuse a seed among ``options`` (``["-S", "section.key=value", ...]``): `textrnn seeds` sets
    train.seed itself, once per run."""
    for flag, option in zip(options[::2], options[1::2], strict=True):
        if flag not in ("-S", "--set-param"):
            raise UserError(f"{flag} {option}: expected -S SECTION.KEY=VALUE")
        if set_option_key(option) == SEED_KEY:
            raise UserError(f"-S {option}: textrnn seeds sets {SEED_KEY} itself; give the seeds with --seeds instead")


def stage_deps(document: dict) -> list[tuple[str, str]]:
    """(stage, dependency path) of every stage of a dvc.yaml or dvc.lock document."""
    stages = (document or {}).get("stages") or {}
    return [
        (name, dep if isinstance(dep, str) else str(dep.get("path", "")))
        for name, stage in stages.items()
        for dep in (stage or {}).get("deps") or []
    ]


def shared_outputs_missing(lock: dict, cache_dir: Path, deps: Sequence[tuple[str, str]] = ()) -> dict[str, list[str]]:
    """Stage -> its directory outputs, as ``lock`` (dvc.lock) records them, that hold another stage's
    dependency (of ``deps``, dvc.yaml's, or of the lock) and whose listing (``.dir`` object) is in no
    local cache.

    A queued experiment starts from dvc.lock as committed in its stash. When one of its stages comes from
    the run cache, DVC (3.x) looks up that stage's dependencies in dvc.lock's directory outputs as it
    found them at the start (``data/split/train.parquet`` in data/split): without their listing in the
    cache it stops with "failed to load directory ('data', 'split')". A fresh clone has the lock but
    no cache; the first seed runs every stage and so passes, the next restore from the run cache and fail.
    """
    stages = (lock or {}).get("stages") or {}
    deps = [*deps, *stage_deps(lock)]
    missing: dict[str, list[str]] = {}
    for name, stage in stages.items():
        for out in stage.get("outs") or []:
            path, md5 = out.get("path", ""), str(out.get("md5") or "")
            if not md5.endswith(".dir"):
                continue
            if not any(other != name and dep.startswith(path.rstrip("/") + "/") for other, dep in deps):
                continue
            if not (cache_dir / "files" / "md5" / md5[:2] / md5[2:]).is_file():
                missing.setdefault(name, []).append(path)
    return missing


def _only_missing_outputs(status: dict, lock: dict) -> bool:
    """Whether `dvc status --json`'s ``status`` shows nothing but outputs missing (and the deps that are them)."""
    outs = [out.get("path", "") for stage in (lock.get("stages") or {}).values() for out in stage.get("outs") or []]

    def produced(path: str) -> bool:
        return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outs)

    for items in status.values():
        for item in items:
            if not isinstance(item, dict) or not set(item) <= {"changed outs", "changed deps"}:
                return False
            for what in item.get("changed outs", {}).values():
                if what not in ("not in cache", "deleted"):
                    return False
            for path, what in item.get("changed deps", {}).items():
                if what != "deleted" or not produced(path):
                    return False
    return True


def prepare_shared_outputs(run_dvc: Callable[..., str], say: Callable[[str], None] = _say) -> list[str]:
    """Make the directory outputs that dvc.lock records and queued experiments look into available, by
    reproducing their stages once in the workspace (at dvc.lock's own params: nothing else changes).
    Returns the stages reproduced (none where the cache holds them already)."""
    lock_path = Path("dvc.lock")
    if not lock_path.is_file():
        return []
    from ruamel.yaml import YAML

    lock = YAML(typ="safe").load(lock_path.read_text(encoding="utf-8")) or {}
    pipeline = YAML(typ="safe").load(Path("dvc.yaml").read_text(encoding="utf-8")) if Path("dvc.yaml").is_file() else {}
    cache_dir = Path(run_dvc("cache", "dir", capture=True).strip())
    missing = shared_outputs_missing(lock, cache_dir, stage_deps(pipeline))
    if not missing:
        return []
    stages = sorted(missing)
    outputs = ", ".join(path for name in stages for path in missing[name])
    status = json.loads(run_dvc("status", "--with-deps", "--json", *stages, capture=True) or "{}")
    if not _only_missing_outputs(status, lock):
        raise UserError(
            f"dvc.lock records {outputs}, which queued experiments read and no local cache holds, and the "
            f"workspace no longer matches dvc.lock (`dvc status`); run `dvc repro {' '.join(stages)}` "
            f"(or `dvc pull`) first, then textrnn seeds"
        )
    say(
        f"seeds: dvc.lock records {outputs}, which queued experiments read and no local cache holds "
        f"(a fresh clone); reproducing them once first: dvc repro {' '.join(stages)}"
    )
    run_dvc("repro", *stages)
    return stages


def experiment_names(
    seeds: list[int], taken: set[str], token: Callable[[], str] = lambda: secrets.token_hex(2)
) -> dict[int, str]:
    """One new experiment name per seed, ``seed<S>-<token>``, none of them in ``taken``."""
    while True:
        tag = token()
        names = {seed: f"seed{seed}-{tag}" for seed in seeds}
        if not set(names.values()) & taken:
            return names


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}:{seconds:02d}"


def progress_line(seed: int, run: Run | None, name: str, elapsed: float, gone: bool = False) -> str:
    """One line for an experiment that ended: its accuracies, or where to read why it failed."""
    head = f"seed {seed} ({name}) after {_clock(elapsed)}:"
    if run is not None and run.metrics:
        cells = [f"{title} {run.metrics[metric]:.3f}" for title, metric in MODEL_COLUMNS if metric in run.metrics]
        return f"{head} {'  '.join(cells)}"
    if gone:
        return f"{head} no longer queued, and no worker runs it (`dvc queue remove`, or a worker killed?)"
    return f"{head} failed; `dvc queue logs {name}` shows why"


# ---- the queue, read from git ------------------------------------------------------------------------------
# `dvc queue status` and `dvc exp show` ask the queue's workers through kombu's filesystem broker, which can
# hand a worker a message file before it is written: the worker stops ("Unrecoverable error:
# JSONDecodeError" in .dvc/tmp/exps/celery/dvc-exp-worker-N.out) and the experiments behind it stay queued.
# So textrnn seeds watches git instead, where DVC (3.x) records each experiment as it ends: a ref
# refs/exps/<baseline[:2]>/<baseline[2:]>/<name> for one that succeeded, a reflog entry
# "dvc-exp:<rev>:<baseline>:<name>" of refs/exps/celery/failed for one that failed (and of
# refs/exps/celery/stash while queued).
FAILED_REF = "refs/exps/celery/failed"
STASH_REF = "refs/exps/celery/stash"
WORKER_PIDS = ".dvc/tmp/exps/celery/dvc-exp-worker-*.pid"


def git(*args: str) -> str:
    """``git ARGS``'s stdout; empty where it fails (a ref that does not exist yet)."""
    result = subprocess.run(["git", *args], capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else ""


@dataclass
class QueueState:
    succeeded: dict[str, str]  # name -> the experiment's commit
    failed: set[str]
    queued: set[str]

    @property
    def names(self) -> set[str]:
        return set(self.succeeded) | self.failed | self.queued


def _stash_names(text: str) -> set[str]:
    """The names in `git log -g --format=%gs REF`'s lines ("commit: dvc-exp:<rev>:<baseline>:<name>")."""
    return {line.rsplit(":", 1)[1] for line in text.splitlines() if "dvc-exp:" in line}


def queue_state(run_git: Callable[..., str]) -> QueueState:
    succeeded = {}
    for line in run_git("for-each-ref", "--format=%(objectname) %(refname)", "refs/exps").splitlines():
        commit, _, ref = line.partition(" ")
        parts = ref.split("/")
        if len(parts) == 5 and parts[2] != "celery":
            succeeded[parts[4]] = commit
    failed = _stash_names(run_git("log", "-g", "--format=%gs", FAILED_REF))
    queued = _stash_names(run_git("log", "-g", "--format=%gs", STASH_REF))
    return QueueState(succeeded, failed, queued)


def run_from_commit(name: str, commit: str, run_git: Callable[..., str]) -> Run:
    """An experiment's params (params.yaml) and metrics (dvc.yaml's metrics files) as its commit holds them,
    keyed as `dvc exp show` is read above."""
    from ruamel.yaml import YAML

    def load(path: str) -> Any:
        text = run_git("show", f"{commit}:{path}")
        return YAML(typ="safe").load(text) if text else None

    params = _flatten(load(PARAMS_FILE) or {})
    metrics: dict[str, float] = {}
    for stage in ((load("dvc.yaml") or {}).get("stages") or {}).values():
        for entry in stage.get("metrics") or []:
            path = entry if isinstance(entry, str) else next(iter(entry))
            for key, value in _flatten(load(path) or {}).items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    metrics[f"{path.rsplit('/', 1)[-1]}:{key}"] = float(value)
    return Run(name, commit, "success", params, metrics)


def workers_alive(pattern: str = WORKER_PIDS) -> bool:
    """Whether a queue worker's process is running (by its pid file)."""
    import glob
    import os

    for path in glob.glob(pattern):
        try:
            os.kill(int(Path(path).read_text().strip()), 0)
            return True
        except (OSError, ValueError):
            continue
    return False


@dataclass
class SeedsResult:
    runs: list[Run]  # this call's experiments that ended well, in seed order
    failed: list[str]  # the names of this call's experiments that did not


def queue_seeds(
    seeds: list[int],
    set_options: list[str],
    jobs: int,
    poll_seconds: float = 5.0,
    run_dvc: Callable[..., str] | None = None,
    run_git: Callable[..., str] | None = None,
    alive: Callable[[], bool] | None = None,
    say: Callable[[str], None] = _say,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] | None = None,
    token: Callable[[], str] = lambda: secrets.token_hex(2),
) -> SeedsResult:
    """Queue one named experiment per seed with ``set_options``, run the queue with ``jobs`` workers, say a
    line as each of them ends, and return them: only this call's experiments, whatever else is queued."""
    run_dvc, run_git = run_dvc or dvc, run_git or git
    alive, sleep = alive or workers_alive, sleep or time.sleep
    check_set_options(set_options)
    prepare_shared_outputs(run_dvc, say)
    names = experiment_names(seeds, queue_state(run_git).names, token)
    for seed, name in names.items():
        run_dvc("exp", "run", "--queue", "--name", name, *set_options, "-S", f"{SEED_KEY}={seed}", capture=True)
    workers = min(jobs, len(seeds))
    run_dvc("queue", "start", "-j", str(workers))
    say(
        f"seeds: queued {', '.join(names.values())} with {workers} worker{'s' if workers > 1 else ''}; "
        f"a line as each ends (`dvc queue logs NAME -f` follows one)"
    )
    start = clock()
    pending = dict(names)
    ended: dict[int, Run | None] = {}
    try:
        wait_for_experiments(pending, ended, workers, poll_seconds, run_dvc, run_git, alive, say, clock, sleep, start)
    except KeyboardInterrupt:
        say(
            f"seeds: the queue goes on without textrnn ({', '.join(pending.values())} not ended): "
            f"`dvc queue kill NAME` stops one, `textrnn summary` shows the finished"
        )
        raise
    done = [run for seed in seeds if (run := ended[seed]) is not None]
    failed = [names[seed] for seed in seeds if ended[seed] is None]
    return SeedsResult(done, failed)


def wait_for_experiments(
    pending, ended, workers, poll_seconds, run_dvc, run_git, alive, say, clock, sleep, start, line=progress_line
) -> None:
    """Poll git until every experiment of ``pending`` (key -> name; seeds key them by seed) has ended, moving
    each into ``ended`` (its Run, or None where it failed) and saying ``line(key, run, name, elapsed)``.

    A worker that stopped is started again (three times at most)."""
    idle_polls, restarts = 0, 0
    while pending:
        sleep(poll_seconds)
        state = queue_state(run_git)
        for seed, name in list(pending.items()):
            if name in state.succeeded:
                ended[seed] = run_from_commit(name, state.succeeded[name], run_git)
            elif name in state.failed:
                ended[seed] = None
            else:
                continue
            del pending[seed]
            say(line(seed, ended[seed], name, clock() - start))
        idle_polls = 0 if not pending or alive() else idle_polls + 1
        if idle_polls < 3:
            continue
        # no worker left, and experiments of this run not ended: those no longer queued are gone
        for seed, name in list(pending.items()):
            if name not in state.queued:
                ended[seed] = None
                del pending[seed]
                say(line(seed, None, name, clock() - start, gone=True))
        if pending:  # still queued: a worker stopped
            restarts += 1
            if restarts > 3:
                raise UserError(
                    f"the DVC queue's workers keep stopping with {', '.join(pending.values())} not run; "
                    f"see .dvc/tmp/exps/celery/*.out, then `dvc queue start`"
                )
            say("seeds: the queue has no worker left (see .dvc/tmp/exps/celery/*.out); starting it again")
            run_dvc("queue", "start", "-j", str(min(workers, len(pending))))
            idle_polls = 0
