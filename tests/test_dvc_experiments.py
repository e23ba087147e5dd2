"""End to end, the DVC side: an experiment with metrics/params/plots diffs, and a dataset folder as a dependency.

Apart from tests/test_pipeline.py so that the two files run side by side under pytest-xdist.
"""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_dataset_dir, make_project, reproduced_project, run, synthetic_reviews, write_hf_parquet

from textrnn.model import load_checkpoint

pytestmark = pytest.mark.slow  # end to end: dvc repro, dvc exp run

DVC = [sys.executable, "-m", "dvc"]
EPOCHS = 3  # conftest.SMALL_PARAMS


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return reproduced_project(tmp_path_factory.mktemp("experiments"))


def test_a_dataset_folder_in_the_project_is_a_dependency_dvc_watches(tmp_path):
    """download.dataset as a relative path to a folder inside the project: changed rows rerun download,
    and the path works in an experiment's temporary copy of the project too."""
    make_dataset_dir(tmp_path / "project/datasets/mine")
    project = make_project(tmp_path / "project", Path("datasets/mine"))  # committed with the project
    run(DVC + ["repro", "download"], project)  # the stage under test; the others add only time
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "reproduced"], project)

    def add_rows(n_train: int) -> None:
        write_hf_parquet(project / "datasets/mine/train.parquet", synthetic_reviews(n_train, 0), ["neg", "pos"])

    add_rows(300)
    status = json.loads(run(DVC + ["status", "download", "--json"], project).stdout)
    assert status == {"download": [{"changed deps": {"datasets/mine": "modified"}}]}
    output = run(DVC + ["repro", "download"], project)
    assert "Running stage 'download'" in output.stdout
    assert "download: datasets/mine -> data/raw (test 120, train 300 rows;" in output.stderr
    assert len(pd.read_parquet(project / "data/raw/train.parquet")) == 300
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "more rows"], project)

    add_rows(360)  # not committed: the experiment's copy of the project holds it all the same
    output = run(DVC + ["exp", "run", "--temp", "download"], project)
    text = output.stdout + output.stderr
    assert "Running stage 'download'" in text
    assert "download: datasets/mine -> data/raw (test 120, train 360 rows;" in text
    assert len(pd.read_parquet(project / "data/raw/train.parquet")) == 300  # --temp leaves the workspace as it was


def series(plot, field):
    """(rev, filename) -> [(step, value)] of one `dvc plots show/diff --json` chart."""
    assert len(plot) == 1 and plot[0]["type"] == "vega"
    found = {}
    for point in plot[0]["content"]["data"]["values"]:
        found.setdefault((point["rev"], point.get("filename")), []).append((int(point["step"]), float(point[field])))
    return found


def test_experiment_and_diffs(project):
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "baseline"], project)
    committed = json.loads((project / "metrics/metrics.json").read_text())

    run(DVC + ["exp", "run", "-S", "train.hidden_size=8"], project)
    assert load_checkpoint(project / "models/model.pt").model.config.hidden_size == 8

    diff = json.loads(run(DVC + ["metrics", "diff", "--all", "--json"], project).stdout)
    changes = diff["metrics/metrics.json"]
    new = json.loads((project / "metrics/metrics.json").read_text())
    assert set(changes) == {
        f"{split}.{metric}"
        for split in ("train", "valid", "test")
        for metric in ("accuracy", "loss", "f1_macro", "majority", "roc_auc")
    }
    for key, change in changes.items():
        split, metric = key.split(".")
        assert change["old"] == committed[split][metric] and change["new"] == new[split][metric], key
    for split in ("train", "valid", "test"):  # a different model: its losses differ
        assert changes[f"{split}.loss"]["old"] != changes[f"{split}.loss"]["new"]
    changed = json.loads(run(DVC + ["metrics", "diff", "--json"], project).stdout)["metrics/metrics.json"]
    assert {"train.loss", "valid.loss", "test.loss"} <= set(changed)
    assert all(changed[key]["old"] != changed[key]["new"] for key in changed)  # only what changed
    plain = run(DVC + ["metrics", "diff"], project).stdout
    assert "metrics/metrics.json" in plain and "test.loss" in plain

    params = json.loads(run(DVC + ["params", "diff", "--json"], project).stdout)
    assert params == {"params.yaml": {"train.hidden_size": {"old": 16, "new": 8, "diff": -8}}}

    plots = json.loads(run(DVC + ["plots", "show", "--json"], project).stdout)["data"]
    assert set(plots) == {"Loss", "Accuracy", "Confusion matrix (test)", "ROC (test)"}
    epochs = list(range(1, EPOCHS + 1))
    for title, metric in (("Loss", "loss"), ("Accuracy", "accuracy")):
        found = series(plots[title], metric)  # train and valid on one chart
        assert set(found) == {("workspace", f"train/{metric}.tsv"), ("workspace", f"valid/{metric}.tsv")}, title
        for key, points in found.items():
            assert [step for step, _ in points] == epochs, key
    train_loss = pd.read_csv(project / "plots/training/plots/metrics/train/loss.tsv", sep="\t")["loss"].tolist()
    assert [v for _, v in series(plots["Loss"], "loss")[("workspace", "train/loss.tsv")]] == train_loss
    confusion = plots["Confusion matrix (test)"][0]["content"]["data"]["values"]
    assert len(confusion) == 4 and {p["actual"] for p in confusion} == {"neg", "pos"}
    assert sum(int(p["count"]) for p in confusion) == 120
    roc = plots["ROC (test)"][0]["content"]["data"]["values"]
    assert {"fpr", "tpr"} <= set(roc[0]) and roc[-1]["fpr"] == 1.0 and roc[-1]["tpr"] == 1.0

    plots_diff = json.loads(run(DVC + ["plots", "diff", "--json", "HEAD"], project).stdout)["data"]
    assert set(plots_diff) == set(plots)
    found = series(plots_diff["Loss"], "loss")
    assert set(found) == {(rev, f"{split}/loss.tsv") for rev in ("HEAD", "workspace") for split in ("train", "valid")}
    assert found[("HEAD", "train/loss.tsv")] != found[("workspace", "train/loss.tsv")]


def test_seeds_in_a_fresh_clone_run_every_seed_and_count_each_once(tmp_path):
    """A clone with the committed dvc.lock but no cache (no earlier `dvc repro`), seeds on another dataset:
    the second seed restores the shared stages from the run cache, where DVC looks up data/split's
    listing as the committed dvc.lock records it. textrnn seeds reproduces those stages once first."""
    make_dataset_dir(tmp_path / "origin/datasets/mine")
    origin = make_project(tmp_path / "origin", Path("datasets/mine"), {"train": {"epochs": 1}})
    run(DVC + ["repro", "split"], origin)  # the lock records data/split, which holds build_vocab's deps
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-qm", "dvc.lock"], origin)
    run(["git", "clone", "-q", str(origin), "clone"], tmp_path)
    clone = tmp_path / "clone"
    other = make_dataset_dir(tmp_path / "other", n_train=200, n_test=80)

    result = run([sys.executable, "-m", "textrnn", "seeds", "--seeds", "1,2", "-S", f"download.dataset={other}"], clone)
    assert (
        "seeds: dvc.lock records data/split, which queued experiments read and no local cache holds "
        "(a fresh clone); reproducing them once first: dvc repro split"
    ) in result.stderr
    ended = [line for line in result.stderr.splitlines() if line.startswith("seed ")]
    assert [line.split(" (")[0] for line in sorted(ended)] == ["seed 1", "seed 2"]
    assert all(" test 0." in line and "  valid 0." in line and "  train 0." in line for line in ended), ended
    table = result.stdout.splitlines()
    assert table[0].split() == ["group", "runs", "test", "valid", "train"]
    assert table[1].split()[:2] == ["1", "2"] and table[2].split()[:2] == ["baseline", "-"]
    assert len(table) == 3
    assert run(["git", "status", "--porcelain"], clone).stdout == ""  # params.yaml, dvc.lock as committed
    summary = run([sys.executable, "-m", "textrnn", "summary"], clone).stdout
    assert summary.splitlines()[1].split()[:2] == ["1", "2"]  # each run once
