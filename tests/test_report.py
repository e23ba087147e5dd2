"""`textrnn report`: Markdown laid out from DVC's own diff documents, the revision it compares with, its refusals."""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import make_project, run

from textrnn.core.errors import UserError
from textrnn.core.runtime import cli_main
from textrnn.project import report

# What `dvc metrics diff --all --json REV` and `dvc params diff --json REV` printed (DVC 3.67), trimmed.
METRICS_DIFF = {
    "metrics/baseline.json": {
        "train.accuracy": {"old": 0.99975, "new": 0.99975, "diff": 0.0},
        "test.accuracy": {"old": 0.9044, "new": 0.9031, "diff": -0.0013000000000000789},
        "test.loss": {"old": 0.248099, "new": 0.248099, "diff": 0.0},
        "C": {"old": 16, "new": 4, "diff": -12},
        "enabled": {"old": True, "new": True, "diff": 0},
    },
    "metrics/metrics.json": {
        "test.loss": {"old": 0.495567, "new": 0.45, "diff": -0.04556699999999997},
        "test.f1_macro": {"old": None, "new": 0.7},
        "test.accuracy": {"old": 0.78516, "new": 0.79, "diff": 0.0048400000000000665},
        "valid.loss": {"old": 0.481185, "new": 0.481189, "diff": 4.000000000004e-06},
        "valid.accuracy": {"old": 0.7956, "new": 0.7956, "diff": 0.0},
        "train.accuracy": {"old": 0.85745, "new": 0.9, "diff": 0.04254999999999998},
        "train.precision": {"old": 0.5, "new": None},
    },
}
PARAMS_DIFF = {
    "params.yaml": {
        "train.lr": {"old": 0.001, "new": 0.0003, "diff": -0.0007000000000000001},
        "baseline.C": {"old": "[1, 4, 16]", "new": "[1, 4]"},
        "train.patience": {"old": None, "new": 3},
        "train.hidden_size": {"old": 64, "new": 128, "diff": 64},
        "train.cell": {"old": "rnn", "new": "gru"},
    }
}
REVISION = report.Revision("1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b", "the merge base of HEAD and origin/main")
LINKS = ["plots/training/accuracy.png", "plots/training/loss.png", "plots/evaluation/roc.png"]

EXPECTED = """\
## textrnn report

The workspace against `1a2b3c4` (the merge base of HEAD and origin/main), from `dvc metrics diff` and `dvc params diff`.

### Metrics

| file | metric | old | new | change |
|---|---|---:|---:|---:|
| metrics/metrics.json | train.accuracy | 0.8575 | 0.9000 | +0.0425 |
| metrics/metrics.json | train.precision | 0.5000 | — | removed |
| metrics/metrics.json | valid.loss | 0.4812 | 0.4812 | +4.0e-06 |
| metrics/metrics.json | test.accuracy | 0.7852 | 0.7900 | +0.0048 |
| metrics/metrics.json | test.f1_macro | — | 0.7000 | added |
| metrics/metrics.json | test.loss | 0.4956 | 0.4500 | -0.0456 |
| metrics/baseline.json | test.accuracy | 0.9044 | 0.9031 | -0.0013 |
| metrics/baseline.json | C | 16 | 4 | -12 |

4 other metrics unchanged.

### Params

| param | old | new | change |
|---|---|---|---:|
| baseline.C | [1, 4, 16] | [1, 4] |  |
| train.cell | rnn | gru |  |
| train.hidden_size | 64 | 128 | +64 |
| train.lr | 0.001 | 0.0003 | -0.0007 |
| train.patience | null | 3 |  |

### Model and baseline

| split | metric | model (metrics/metrics.json) | baseline (metrics/baseline.json) | model - baseline |
|---|---|---:|---:|---:|
| train | accuracy | 0.9000 | 0.9998 | -0.0998 |
| valid | accuracy | 0.7956 | — |  |
| valid | loss | 0.4812 | — |  |
| test | accuracy | 0.7900 | 0.9031 | -0.1131 |
| test | f1_macro | 0.7000 | — |  |
| test | loss | 0.4500 | 0.2481 | +0.2019 |

### Plots

![training: accuracy](plots/training/accuracy.png)
![training: loss](plots/training/loss.png)
![evaluation: roc](plots/evaluation/roc.png)
"""


def test_the_report_lays_out_dvcs_diff_documents_as_this_markdown():
    assert report.format_report(METRICS_DIFF, PARAMS_DIFF, REVISION, LINKS) == EXPECTED


def test_a_report_with_nothing_changed_no_baseline_and_no_plots_says_each_and_quotes_what_dvc_could_not_read():
    metrics = {
        "metrics/metrics.json": {"test.accuracy": {"old": 0.8, "new": 0.8, "diff": 0.0}},
        "metrics/baseline.json": {"enabled": {"old": False, "new": False, "diff": 0}},
    }
    unread = ["DVC failed to load some metrics for following revisions: '1a2b3c4'."]
    text = report.format_report(metrics, {}, report.Revision("1a2b3c4d", "HEAD~1"), [], unread)
    assert text == (
        "## textrnn report\n\n"
        "The workspace against `1a2b3c4` (HEAD~1), from `dvc metrics diff` and `dvc params diff`.\n\n"
        "DVC could not read everything (a file missing in a revision, or unreadable):\n\n"
        "- `DVC failed to load some metrics for following revisions: '1a2b3c4'.`\n\n"
        "### Metrics\n\nNo metric changed.\n\n"
        "### Params\n\nNo param changed.\n\n"
        "### Model and baseline\n\n"
        "| split | metric | model (metrics/metrics.json) | baseline (metrics/baseline.json) | model - baseline |\n"
        "|---|---|---:|---:|---:|\n"
        "| test | accuracy | 0.8000 | — |  |\n\n"
        "metrics/baseline.json holds no per-split metrics (`baseline.enabled: false`, or it has not run).\n\n"
        "### Plots\n\n"
        "No PNGs in plots/training and plots/evaluation: they are DVC outputs; `dvc pull` or `dvc repro` first.\n"
    )


def test_a_table_cell_stays_one_cell_whatever_the_value_holds():
    assert report.format_param("a|b\nc") == "a\\|b c"
    assert report.format_param(["x", 1]) == '["x", 1]'
    assert report.format_param(3e-05) == "3e-05"
    assert report.format_metric(float("nan")) == "nan"
    assert report.format_metric(True) == "true"


def test_plot_links_are_relative_to_the_report_and_copies_sit_beside_it(tmp_path):
    root = tmp_path / "project"
    for name, data in [("training/loss.png", b"loss"), ("evaluation/roc.png", b"roc"), ("training/x.txt", b"")]:
        (root / "plots" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "plots" / name).write_bytes(data)
    pngs = report.find_pngs(root)
    assert pngs == ["plots/training/loss.png", "plots/evaluation/roc.png"]

    assert report.link_pngs(root, pngs, None, copy=False) == pngs  # on stdout: relative to the project's root
    elsewhere = tmp_path / "out" / "pr"
    assert report.link_pngs(root, pngs, elsewhere, copy=False) == [
        "../../project/plots/training/loss.png",
        "../../project/plots/evaluation/roc.png",
    ]
    assert report.link_pngs(root, pngs, elsewhere, copy=True) == pngs
    assert (elsewhere / "plots/training/loss.png").read_bytes() == b"loss"
    assert (elsewhere / "plots/evaluation/roc.png").read_bytes() == b"roc"
    assert report.link_pngs(root, pngs, root, copy=True) == pngs  # beside a report in the root: the PNGs themselves
    assert (root / "plots/training/loss.png").read_bytes() == b"loss"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def _repo(path: Path, branch: str = "main") -> Path:
    path.mkdir()
    (path / "dvc.yaml").write_text("stages: {}\n")
    _git(path, "init", "-q", "-b", branch)
    _git(path, "add", "dvc.yaml")
    _git(path, "commit", "-qm", "first")
    return path


def test_the_default_revision_is_where_head_left_main_else_head_parent(tmp_path):
    repo = _repo(tmp_path / "repo")
    with pytest.raises(UserError) as error:
        report.resolve_revision(repo, None)  # on main, one commit: nothing to compare with
    assert str(error.value) == "HEAD has no parent commit to compare with; name a revision: `textrnn report REV`"

    first = _git(repo, "rev-parse", "HEAD")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "second on main")
    second = _git(repo, "rev-parse", "HEAD")
    assert report.resolve_revision(repo, None) == report.Revision(first, "HEAD~1")

    _git(repo, "checkout", "-q", "-b", "feature")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "a")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "b")
    assert report.resolve_revision(repo, None) == report.Revision(second, "the merge base of HEAD and main")

    _git(repo, "update-ref", "refs/remotes/origin/main", first)  # the remote's main, preferred when fetched
    assert report.resolve_revision(repo, None) == report.Revision(first, "the merge base of HEAD and origin/main")
    assert report.resolve_revision(repo, "main") == report.Revision(second, "main")


def test_an_unknown_revision_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)  # as cli.py wires it (the slow test below runs the real command)
    command = cli_main(lambda: report.run(parser.parse_args(["no-such-branch", "--output", "report.md"])))
    monkeypatch.chdir(_repo(tmp_path / "repo"))
    try:
        with pytest.raises(SystemExit) as exit_:
            command()
    finally:
        gc.unfreeze()  # cli_main froze this test process's heap, as it does a command's
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        "error: unknown revision 'no-such-branch'; name a commit, branch or tag of this repository "
        "(`git log --oneline` lists them; in a shallow clone, `git fetch` it first)\n"
    )
    assert not Path("report.md").exists()


def test_copy_plots_without_an_output_file_is_refused_before_anything_runs(tmp_path, monkeypatch):
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    monkeypatch.chdir(tmp_path)  # no project here: the options are checked first
    with pytest.raises(UserError) as error:
        report.run(parser.parse_args(["--copy-plots"]))
    assert str(error.value) == "--copy-plots copies the PNGs beside the report file; give --output FILE too"


@pytest.mark.parametrize(
    "where, message",
    [
        ("no dvc.yaml", "{root} holds no dvc.yaml; run `textrnn report` in the project's root"),
        ("no git", "{root} is not in a git repository; run `textrnn report` in the project's git checkout"),
    ],
)
def test_a_report_outside_the_projects_root_is_refused(tmp_path, where, message):
    root = tmp_path / "dir"
    root.mkdir()
    if where == "no git":
        (root / "dvc.yaml").write_text("stages: {}\n")
    else:
        _git(root, "init", "-q")
    with pytest.raises(UserError) as error:
        report.make_report(root, None)
    assert str(error.value) == message.format(root=root)


def test_a_dvc_failure_is_one_line_naming_the_command_and_dvcs_error(tmp_path):
    repo = _repo(tmp_path / "repo")
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text("[core\n")  # DVC cannot read its config: it exits 1 with a traceback
    head = _git(repo, "rev-parse", "HEAD")
    with pytest.raises(UserError) as error:
        report.make_report(repo, "HEAD", repo / "report.md")
    assert str(error.value) == (
        f"`dvc metrics diff --all --json {head}` failed: ERROR: configuration error - config file error: "
        "Invalid line ('[core') (matched as neither section nor keyword) at line 1.: Invalid line ('[core') "
        "(matched as neither section nor keyword) at line 1.; run it in the project's root to see DVC's whole message"
    )
    assert not (repo / "report.md").exists()


def _write_metrics(project: Path, model: dict, baseline: dict) -> None:
    (project / "metrics").mkdir(exist_ok=True)
    (project / "metrics" / "metrics.json").write_text(json.dumps(model))
    (project / "metrics" / "baseline.json").write_text(json.dumps(baseline))
    data = {"valid": {"rows": 4, "duplicates_of_train": 0, "duplicate_share": 0.0}}  # the split stage's, unchanged
    (project / "metrics" / "data.json").write_text(json.dumps(data))


@pytest.mark.slow  # four subprocesses (two dvc, git, the command with torch's import): about 5 s of CPU
def test_the_command_on_a_project_whose_commit_changed_a_param_and_the_metrics(tmp_path):
    """The real `dvc` and this project's dvc.yaml, with metrics written by hand: DVC reads what a run would leave."""
    project = make_project(tmp_path / "project", tmp_path / "dataset")
    baseline = {"enabled": True, "C": 16, "features": 900, "train": {"accuracy": 1.0}, "test": {"accuracy": 0.9}}
    _write_metrics(project, {"train": {"accuracy": 0.8, "loss": 0.45}, "test": {"accuracy": 0.75}}, baseline)
    run(["git", "add", "metrics"], project)
    run(["git", "commit", "-qm", "results"], project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["hidden_size"] = 32
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _write_metrics(project, {"train": {"accuracy": 0.85, "loss": 0.4}, "test": {"accuracy": 0.78125}}, baseline)
    run(["git", "commit", "-qam", "hidden_size 32"], project)
    for png in ["plots/training/loss.png", "plots/evaluation/roc.png"]:  # DVC outputs, as `dvc pull` leaves them
        (project / png).parent.mkdir(parents=True, exist_ok=True)
        (project / png).write_bytes(png.encode())

    result = run([sys.executable, "-m", "textrnn", "report", "HEAD~1", "-o", "pr/report.md", "--copy-plots"], project)
    assert (result.stdout, result.stderr) == ("", "")
    previous = run(["git", "rev-parse", "--short=7", "HEAD~1"], project).stdout.strip()
    assert (project / "pr" / "report.md").read_text() == (
        "## textrnn report\n\n"
        f"The workspace against `{previous}` (HEAD~1), from `dvc metrics diff` and `dvc params diff`.\n\n"
        "### Metrics\n\n"
        "| file | metric | old | new | change |\n"
        "|---|---|---:|---:|---:|\n"
        "| metrics/metrics.json | train.accuracy | 0.8000 | 0.8500 | +0.0500 |\n"
        "| metrics/metrics.json | train.loss | 0.4500 | 0.4000 | -0.0500 |\n"
        "| metrics/metrics.json | test.accuracy | 0.7500 | 0.7812 | +0.0312 |\n\n"
        "8 other metrics unchanged.\n\n"
        "### Params\n\n"
        "| param | old | new | change |\n"
        "|---|---|---|---:|\n"
        "| train.hidden_size | 16 | 32 | +16 |\n\n"
        "### Model and baseline\n\n"
        "| split | metric | model (metrics/metrics.json) | baseline (metrics/baseline.json) | model - baseline |\n"
        "|---|---|---:|---:|---:|\n"
        "| train | accuracy | 0.8500 | 1.0000 | -0.1500 |\n"
        "| train | loss | 0.4000 | — |  |\n"
        "| test | accuracy | 0.7812 | 0.9000 | -0.1188 |\n\n"
        "### Plots\n\n"
        "![training: loss](plots/training/loss.png)\n"
        "![evaluation: roc](plots/evaluation/roc.png)\n"
    )
    assert (project / "pr" / "plots" / "evaluation" / "roc.png").read_bytes() == b"plots/evaluation/roc.png"
