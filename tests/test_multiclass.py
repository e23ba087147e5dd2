"""End to end on 3-class datasets: k logits with cross-entropy, macro-F1, label names through to predict."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_dataset_dir, make_project, run, synthetic_reviews, write_hf_parquet

from textrnn.model import load_checkpoint

pytestmark = pytest.mark.slow  # end to end: dvc repro and predict

SPLIT_NAMES = ("train", "valid", "test")


def repro(project: Path) -> None:
    run([sys.executable, "-m", "dvc", "repro"], project)


def predict_file(project: Path, texts: list[str]) -> list[dict]:
    """`python -m textrnn predict --file` in the project (its own copy of the package) on ``texts``."""
    (project / "reviews.txt").write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    result = run([sys.executable, "-m", "textrnn", "predict", "--file", "reviews.txt"], project)
    return [json.loads(line) for line in result.stdout.splitlines()]


def check_project(project: Path, label_names: list[str]) -> pd.DataFrame:
    """Metrics for every split, a 3-output V, and predict agreeing with evaluate on the test split."""
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert set(metrics) == set(SPLIT_NAMES)
    for name in SPLIT_NAMES:
        assert list(metrics[name]) == ["accuracy", "loss", "f1_macro", "majority", "roc_auc_macro"]
        assert 0 <= metrics[name]["accuracy"] <= 1 and 0 <= metrics[name]["f1_macro"] <= 1
        assert metrics[name]["loss"] > 0

    checkpoint = load_checkpoint(project / "models/model.pt")
    model = checkpoint.model
    assert checkpoint.label_names == label_names
    assert model.config.num_classes == 3
    assert tuple(model.V.weight.shape) == (3, model.config.hidden_size) and tuple(model.V.bias.shape) == (3,)

    test = pd.read_parquet(project / "data/split/test.parquet")
    lines = predict_file(project, test["text"].tolist())
    assert [line["index"] for line in lines] == list(range(len(test)))
    for line in lines:
        assert list(line["probabilities"]) == label_names
        assert sum(line["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert line["label"] == max(line["probabilities"], key=line["probabilities"].get)
    predicted = [label_names.index(line["label"]) for line in lines]
    accuracy = sum(p == t for p, t in zip(predicted, test["label"], strict=True)) / len(test)
    assert accuracy == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)  # the same model, the same answers
    return test


def test_three_classes_with_class_label_and_test_split(tmp_path):
    label_names = ["sad", "meh", "glad"]  # ClassLabel order, not alphabetical
    dataset = make_dataset_dir(tmp_path / "dataset", n_classes=3, label_names=label_names)
    project = make_project(tmp_path / "project", dataset)
    repro(project)
    test = check_project(project, label_names)
    assert len(test) == 120  # the dataset's own test split, not a carved one


def test_three_string_classes_in_named_columns_without_test_split(tmp_path):
    frame = synthetic_reviews(240, seed=0, n_classes=3)
    strings = ["meh", "bad", "good"]  # no ClassLabel: the sorted values become the classes
    dataset = tmp_path / "dataset"
    write_hf_parquet(
        dataset / "train.parquet",
        pd.DataFrame({"review": frame["text"], "sentiment": [strings[i] for i in frame["label"]]}),
    )
    project = make_project(
        tmp_path / "project", dataset, {"download": {"text_column": "review", "label_column": "sentiment"}}
    )
    repro(project)
    label_names = sorted(strings)
    test = check_project(project, label_names)

    sizes = {name: len(pd.read_parquet(project / f"data/split/{name}.parquet")) for name in SPLIT_NAMES}
    assert sizes["test"] == 48 and sum(sizes.values()) == 240  # test carved out of train (test_size 0.2)
    assert sorted(test["label"].unique()) == [0, 1, 2]  # stratified: every class in the carved test split
    original = dict(zip(frame["text"], (strings[i] for i in frame["label"]), strict=True))
    assert [label_names[label] for label in test["label"]] == [original[text] for text in test["text"]]
