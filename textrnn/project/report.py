"""`textrnn report`: a pull request's results as Markdown, the comment `cml comment create` would post.

The report describes the workspace (in CI: the pull request's checkout after `dvc pull` or
`dvc repro`) against a git revision:

- the metrics that changed, from ``dvc metrics diff --all --json REV``, and the params that changed,
  from ``dvc params diff --json REV``: DVC does the diffing, this module only lays it out;
- the model's metrics beside the baseline's, per split (the workspace's values of the same document);
- the training and evaluation PNGs, as image links relative to the report.

The revision, when none is given: where HEAD left the main branch (the merge base of HEAD and
``origin/main``, else ``main``), which is what a pull request changes; when HEAD is on the main
branch (or there is none), HEAD~1, what the last commit changed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_path

# The pipeline's outputs (dvc.yaml): the evaluate and baseline stages' metrics, the train and evaluate PNGs.
MODEL_METRICS = "metrics/metrics.json"
BASELINE_METRICS = "metrics/baseline.json"
PLOT_DIRS = ("plots/training", "plots/evaluation")
# Where HEAD left the main branch: the remote's copy first (a CI checkout may have no local main).
MAIN_BRANCHES = ("origin/main", "main")
SPLITS = ("train", "valid", "test")
DIGITS = 4  # metrics' decimals: what a reader compares, and what keeps the tables narrow
MISSING = "—"

DESCRIPTION = """\
Write a Markdown report of the workspace against a git revision, as a pull request comment
(`textrnn report --output report.md && cml comment create report.md`): the metrics and params that
changed (`dvc metrics diff`, `dvc params diff`), the model's metrics beside the baseline's per
split, and the PNGs of plots/training and plots/evaluation as image links. Run it in the project's
root, after `dvc repro` or `dvc pull`.

REV defaults to the merge base of HEAD and the main branch (origin/main, else main): what a
branch changes. When HEAD is on the main branch, or there is none, it is HEAD~1.
"""


@dataclass(frozen=True)
class Revision:
    sha: str
    chosen_as: str  # how the user would name it: "HEAD~1", "the merge base of HEAD and origin/main", "v1.0"


# --- running git and DVC ---------------------------------------------------------------------------


def _git(root: Path, *args: str) -> str | None:
    """git's stdout, stripped, or None when it fails."""
    try:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    except FileNotFoundError:
        raise UserError("git is not on PATH; install git (the report compares git revisions)") from None
    return result.stdout.strip() if result.returncode == 0 else None


def _commit(root: Path, rev: str) -> str | None:
    return _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")


def resolve_revision(root: Path, rev: str | None) -> Revision:
    """``rev`` as a commit, or the default described in the module's docstring."""
    if not (root / "dvc.yaml").is_file():
        raise UserError(f"{root} holds no dvc.yaml; run `textrnn report` in the project's root")
    if _git(root, "rev-parse", "--git-dir") is None:
        raise UserError(f"{root} is not in a git repository; run `textrnn report` in the project's git checkout")
    if rev is not None:
        sha = _commit(root, rev)
        if sha is None:
            raise UserError(
                f"unknown revision {rev!r}; name a commit, branch or tag of this repository "
                f"(`git log --oneline` lists them; in a shallow clone, `git fetch` it first)"
            )
        return Revision(sha, rev)
    head = _commit(root, "HEAD")
    if head is None:
        raise UserError("HEAD has no commit yet; commit the project, then run `textrnn report`")
    for branch in MAIN_BRANCHES:
        if _commit(root, branch) is None:
            continue
        base = _git(root, "merge-base", "HEAD", branch)
        if base is None:
            raise UserError(
                f"HEAD and {branch} share no commit in this clone (a shallow one?); fetch more history "
                f"(`git fetch --unshallow`) or name the revision: `textrnn report REV`"
            )
        if base != head:
            return Revision(base, f"the merge base of HEAD and {branch}")
        break  # HEAD is on the main branch: the last commit's change
    parent = _commit(root, "HEAD~1")
    if parent is None:
        raise UserError("HEAD has no parent commit to compare with; name a revision: `textrnn report REV`")
    return Revision(parent, "HEAD~1")


def dvc_json(root: Path, *args: str) -> tuple[dict, list[str]]:
    """The JSON document that ``dvc ARGS`` prints, and DVC's lines about what it could not read.

    DVC exits 0 when a metrics or params file of a revision is missing or unreadable, and says so on
    stderr only; those lines go into the report, which would otherwise look complete. A failure
    (a non-zero exit) is one line naming the command and DVC's error.
    """
    command = f"dvc {' '.join(args)}"
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, capture_output=True, text=True)
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    if result.returncode != 0:
        errors = [line for line in lines if line.startswith("ERROR")] or lines[-1:]  # not a traceback's last line
        said = errors[0] if errors else f"exit status {result.returncode}"
        raise UserError(f"`{command}` failed: {said}; run it in the project's root to see DVC's whole message")
    try:
        document = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        raise UserError(f"`{command}` did not print JSON; check that `dvc --version` runs here") from None
    unread = [line for line in lines if "failed to load" in line]
    return (document if isinstance(document, dict) else {}), unread


# --- Markdown --------------------------------------------------------------------------------------


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(text: str) -> str:
    """``text`` safe inside a table cell: one line, no column separator."""
    return " ".join(text.split()).replace("|", "\\|")


def format_metric(value: object) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{DIGITS}f}" if math.isfinite(value) else str(value)
    return _cell(str(value))


def format_param(value: object) -> str:
    """Params as written (Python's shortest float: ``0.001``, ``3e-05``), never rounded away.

    None is ``null``: DVC gives None for a param set to null (``train.patience``) and for one absent.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return _cell(json.dumps(value))
    return _cell(str(value))


def format_metric_change(old: object, new: object, diff: object) -> str:
    """DVC's ``diff`` with its sign, or a word where there is no number to give."""
    if old is None:
        return "added"
    if new is None:
        return "removed"
    if not (_is_number(diff) and _is_number(old) and _is_number(new)):
        return ""
    if isinstance(diff, int):
        return f"{diff:+d}"
    if diff != 0 and abs(diff) < 0.5 * 10**-DIGITS:  # would read as +0.0000
        return f"{diff:+.1e}"
    return f"{diff:+.{DIGITS}f}"


def metric_order(key: str) -> tuple:
    """train, valid, test, then anything else; in a split, accuracy first, then the others by name."""
    first, _, rest = key.partition(".")
    split_rank = SPLITS.index(first) if first in SPLITS and rest else len(SPLITS)
    return (split_rank, rest != "accuracy", key)


def _file_order(model_file: str, baseline_file: str):
    return lambda path: ({model_file: 0, baseline_file: 1}.get(path, 2), path)


def _table(header: Sequence[str], align: str, rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def metrics_section(metrics_diff: dict, model_file: str, baseline_file: str) -> list[str]:
    rows, unchanged = [], 0
    for path in sorted(metrics_diff, key=_file_order(model_file, baseline_file)):
        entries = metrics_diff[path] or {}
        for key in sorted(entries, key=metric_order):
            entry = entries[key]
            old, new = entry.get("old"), entry.get("new")
            if old == new:
                unchanged += 1
                continue
            change = format_metric_change(old, new, entry.get("diff"))
            rows.append([_cell(path), _cell(key), format_metric(old), format_metric(new), change])
    lines = ["### Metrics", ""]
    if rows:
        lines += _table(["file", "metric", "old", "new", "change"], "llrrr", rows)
        if unchanged:
            lines += ["", f"{unchanged} other {'metric' if unchanged == 1 else 'metrics'} unchanged."]
    else:
        lines.append("No metric changed." if unchanged else "No metrics in either revision.")
    return lines


def params_section(params_diff: dict) -> list[str]:
    rows = []
    for path in sorted(params_diff):
        entries = params_diff[path] or {}
        for key in sorted(entries):
            entry = entries[key]
            old, new = entry.get("old"), entry.get("new")
            name = key if path == "params.yaml" else f"{path}:{key}"
            diff = entry.get("diff")
            change = "" if not _is_number(diff) else f"{diff:+d}" if isinstance(diff, int) else f"{diff:+.4g}"
            rows.append([_cell(name), format_param(old), format_param(new), change])
    lines = ["### Params", ""]
    return lines + (_table(["param", "old", "new", "change"], "lllr", rows) if rows else ["No param changed."])


def _split_metrics(entries: dict) -> dict[str, object]:
    """The workspace's per-split values of one metrics file: ``{"test.accuracy": 0.87, ...}``."""
    return {
        key: entry.get("new")
        for key, entry in entries.items()
        if key.partition(".")[0] in SPLITS and "." in key and entry.get("new") is not None
    }


def baseline_section(metrics_diff: dict, model_file: str, baseline_file: str) -> list[str]:
    model = _split_metrics(metrics_diff.get(model_file) or {})
    baseline = _split_metrics(metrics_diff.get(baseline_file) or {})
    rows = []
    for key in sorted(model.keys() | baseline.keys(), key=metric_order):
        split, _, metric = key.partition(".")
        ours, theirs = model.get(key), baseline.get(key)
        gap = format_metric_change(theirs, ours, ours - theirs) if _is_number(ours) and _is_number(theirs) else ""
        rows.append([split, _cell(metric), format_metric(ours), format_metric(theirs), gap])
    lines = ["### Model and baseline", ""]
    if not rows:
        return lines + [f"Neither {model_file} nor {baseline_file} holds per-split metrics in the workspace."]
    header = ["split", "metric", f"model ({model_file})", f"baseline ({baseline_file})", "model - baseline"]
    lines += _table(header, "llrrr", rows)
    if not baseline:
        lines += ["", f"{baseline_file} holds no per-split metrics (`baseline.enabled: false`, or it has not run)."]
    return lines


def plots_section(links: Sequence[str]) -> list[str]:
    lines = ["### Plots", ""]
    if not links:
        folders = " and ".join(PLOT_DIRS)
        return lines + [f"No PNGs in {folders}: they are DVC outputs; `dvc pull` or `dvc repro` first."]
    for link in links:
        folder, name = Path(link).parent.name, Path(link).stem
        lines.append(f"![{folder}: {name}]({link})")
    return lines


def format_report(
    metrics_diff: dict,
    params_diff: dict,
    revision: Revision,
    plot_links: Sequence[str],
    unread: Sequence[str] = (),
    model_file: str = MODEL_METRICS,
    baseline_file: str = BASELINE_METRICS,
) -> str:
    """The Markdown report from ``dvc metrics diff --all --json`` and ``dvc params diff --json``.

    ``unread``: DVC's lines about files it could not read, quoted at the top.
    """
    lines = [
        "## textrnn report",
        "",
        f"The workspace against `{revision.sha[:7]}` ({revision.chosen_as}), "
        "from `dvc metrics diff` and `dvc params diff`.",
        "",
    ]
    if unread:
        lines += ["DVC could not read everything (a file missing in a revision, or unreadable):", ""]
        lines += [f"- `{line}`" for line in unread] + [""]
    lines += [
        *metrics_section(metrics_diff, model_file, baseline_file),
        "",
        *params_section(params_diff),
        "",
        *baseline_section(metrics_diff, model_file, baseline_file),
        "",
        *plots_section(plot_links),
    ]
    return "\n".join(lines) + "\n"


# --- the PNGs --------------------------------------------------------------------------------------


def find_pngs(root: Path, plot_dirs: Sequence[str] = PLOT_DIRS) -> list[str]:
    """The PNGs of ``plot_dirs`` (not their subfolders), as paths relative to ``root``, folder by folder."""
    return [f"{folder}/{png.name}" for folder in plot_dirs for png in sorted((root / folder).glob("*.png"))]


def link_pngs(root: Path, pngs: Sequence[str], report_dir: Path | None, copy: bool) -> list[str]:
    """Links to ``pngs`` (relative to ``root``) from a report in ``report_dir`` (None: ``root`` itself).

    With ``copy``, each PNG is copied to the same relative path under ``report_dir`` and linked there:
    a folder that holds the report and its images, to attach or upload as a whole.
    """
    if report_dir is None:
        return list(pngs)
    links = []
    for png in pngs:
        source = root / png
        if copy:
            target = report_dir / png
            if not (target.exists() and target.samefile(source)):
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
            links.append(png)
        else:
            links.append(Path(os.path.relpath(source.resolve(), report_dir.resolve())).as_posix())
    return links


# --- the command -----------------------------------------------------------------------------------


def make_report(root: Path, rev: str | None, output: Path | None = None, copy_plots: bool = False) -> str:
    """The report of the project in ``root``; written to ``output`` (atomically) when given."""
    revision = resolve_revision(root, rev)
    metrics_diff, metrics_unread = dvc_json(root, "metrics", "diff", "--all", "--json", revision.sha)
    params_diff, params_unread = dvc_json(root, "params", "diff", "--json", revision.sha)
    report_dir = None if output is None else output.parent
    links = link_pngs(root, find_pngs(root), report_dir, copy_plots)
    unread = list(dict.fromkeys(metrics_unread + params_unread))
    text = format_report(metrics_diff, params_diff, revision, links, unread)
    if output is not None:
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "revision",
        nargs="?",
        metavar="REV",
        help="the git revision to compare with (default: the merge base of HEAD and main, or HEAD~1 on main)",
    )
    parser.add_argument("-o", "--output", type=Path, metavar="FILE", help="write the report here (default: stdout)")
    parser.add_argument(
        "--copy-plots",
        action="store_true",
        help="copy the PNGs beside FILE (same relative paths) and link the copies",
    )


def run(args: argparse.Namespace) -> None:
    if args.copy_plots and args.output is None:
        raise UserError("--copy-plots copies the PNGs beside the report file; give --output FILE too")
    text = make_report(Path.cwd(), args.revision, args.output, args.copy_plots)
    if args.output is None:
        sys.stdout.write(text)
