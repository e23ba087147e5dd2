"""Sharing without retraining: push from one clone to a DVC remote, pull into a fresh clone, predict there."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import make_dataset_dir, make_project, run

pytestmark = pytest.mark.slow  # end to end: dvc repro, push and pull

OUTPUTS = [
    "models/model.pt",
    "data/vocab.txt",
    "data/vectors/test/ids.npy",
    "data/vectors/meta.json",
    "plots/training/loss.png",
    "metrics/metrics.json",
]


def dvc(*args: str, cwd: Path):
    return run([sys.executable, "-m", "dvc", *args], cwd)


def predict(project: Path) -> str:
    return run([sys.executable, "-m", "textrnn", "predict", "a great film", "awful, boring waste", ""], project).stdout


def test_a_fresh_clone_pulls_the_trained_model_and_predicts_without_training(tmp_path):
    origin = make_project(tmp_path / "a", make_dataset_dir(tmp_path / "dataset"))
    dvc("repro", cwd=origin)
    dvc("remote", "add", "-d", "storage", str(tmp_path / "remote"), cwd=origin)
    run(["git", "add", "-A"], origin)
    run(["git", "commit", "-qm", "trained"], origin)
    dvc("push", cwd=origin)
    expected = predict(origin)

    clone = tmp_path / "b"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / "models/model.pt").exists()
    assert json.loads(dvc("status", "--json", cwd=clone).stdout) != {}  # outputs missing before the pull
    dvc("pull", cwd=clone)

    assert json.loads(dvc("status", "--json", cwd=clone).stdout) == {}
    assert "up to date" in dvc("status", cwd=clone).stdout
    for path in OUTPUTS:
        assert (clone / path).read_bytes() == (origin / path).read_bytes(), path
    lines = predict(clone)
    assert lines == expected
    assert [json.loads(line)["index"] for line in lines.splitlines()] == [0, 1, 2]
