"""The project's `plots:` section and templates draw every chart, for two classes and for three.

A throwaway git + DVC repo holds the project's dvc.yaml `plots:` section and .dvc/plots templates,
with plot data written by the library for two revisions: no training is needed.
"""

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import ROOT, run

from textrnn.evaluation import write_test_plots

pytestmark = pytest.mark.slow  # end to end: dvc plots show / diff

DVC = [sys.executable, "-m", "dvc"]
ADDED_BY_DVC = {"rev", "filename", "field"}


def declared_plots():
    """{title: [data files]} of the project's dvc.yaml."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    return {title: list(spec["y"]) for entry in plots for title, spec in entry.items()}


def read_rows(path: Path):
    if path.suffix == ".tsv":  # DVC reads every TSV value as a string
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle, delimiter="\t"))
    return json.loads(path.read_text())


def write_revision(repo: Path, k: int, seed: int, n: int) -> dict:
    """Every declared data file, as the stages would write it; returns {file: rows}."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=n) + 2.0 * labels - 1.0 if k == 2 else rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    names = ["neg", "pos"] if k == 2 else ["ABBR", "DESC", "ENTY"]
    write_test_plots(repo / "metrics/plots", repo / "plots/evaluation", logits, labels, names)
    for split in ("train", "valid"):  # DVCLive's per-epoch TSVs
        for metric in ("loss", "accuracy"):
            path = repo / f"plots/training/plots/metrics/{split}/{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            values = rng.random(3)
            path.write_text(f"step\t{metric}\n" + "".join(f"{step}\t{v:.4f}\n" for step, v in enumerate(values, 1)))
    return {file: read_rows(repo / file) for files in declared_plots().values() for file in files}


def drawn(chart) -> dict:
    """{rev: the chart's data points, less what DVC adds} of one `dvc plots --json` chart."""
    assert len(chart) == 1 and chart[0]["type"] == "vega"
    points = {}
    for point in chart[0]["content"]["data"]["values"]:
        points.setdefault(point["rev"], []).append({k: v for k, v in point.items() if k not in ADDED_BY_DVC})
    return points


def expected(files: dict, title: str) -> list:
    return [row for file in declared_plots()[title] for row in files[file]]


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)
    run(DVC + ["init", "-q"], repo)
    run(DVC + ["config", "core.analytics", "false"], repo)
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": plots}, sort_keys=False))
    return repo


def test_the_project_declares_the_evaluation_charts():
    assert declared_plots() == {
        "Loss": ["plots/training/plots/metrics/train/loss.tsv", "plots/training/plots/metrics/valid/loss.tsv"],
        "Accuracy": [
            "plots/training/plots/metrics/train/accuracy.tsv",
            "plots/training/plots/metrics/valid/accuracy.tsv",
        ],
        "Confusion matrix (test)": ["metrics/plots/confusion.json"],
        "ROC (test)": ["metrics/plots/roc.json"],
    }


@pytest.mark.parametrize("k", [2, 3])
def test_plots_show_and_diff_draw_every_chart_per_revision(repo, k):
    committed = write_revision(repo, k, seed=1, n=300)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "first"], repo)
    workspace = write_revision(repo, k, seed=2, n=400)

    show = json.loads(run(DVC + ["plots", "show", "--json"], repo).stdout)
    assert "errors" not in show
    assert set(show["data"]) == set(declared_plots())
    for title, chart in show["data"].items():
        assert drawn(chart) == {"workspace": expected(workspace, title)}, title
        assert chart[0]["revisions"] == ["workspace"]

    diff = json.loads(run(DVC + ["plots", "diff", "--json", "HEAD"], repo).stdout)
    assert "errors" not in diff
    assert set(diff["data"]) == set(declared_plots())
    for title, chart in diff["data"].items():
        assert drawn(chart) == {"workspace": expected(workspace, title), "HEAD": expected(committed, title)}, title

    confusion = diff["data"]["Confusion matrix (test)"][0]["content"]
    assert confusion["spec"]["transform"][0]["aggregate"] == [{"op": "sum", "field": "count", "as": "cell_count"}]
    curves = {p["class"] for p in diff["data"]["ROC (test)"][0]["content"]["data"]["values"]}
    assert curves == ({"pos"} if k == 2 else {"ABBR", "DESC", "ENTY"})

    html = run(DVC + ["plots", "diff", "HEAD", "-o", str(repo.parent / "html")], repo)
    assert "failed to load" not in (html.stdout + html.stderr).lower()
    assert (repo.parent / "html" / "index.html").is_file()
