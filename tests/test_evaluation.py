"""Evaluation outputs: metrics that are never NaN, plot data that is small, strict and exact for any k."""

import itertools
import json

import numpy as np
import pytest
import torch

from textrnn import evaluation, metrics
from textrnn.evaluation import split_metrics, thin_curve, write_test_plots
from textrnn.model import loss_function, predicted_labels, probabilities

PNG = b"\x89PNG\r\n\x1a\n"


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path}: {constant} is not JSON")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def random_logits(n, k, seed=0):
    """Labels and logits that lean towards them: [n] for two classes, [n, k] otherwise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    if k == 2:
        return torch.from_numpy(rng.normal(size=n) + 2.0 * labels - 1.0).float(), labels
    return torch.from_numpy(rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]).float(), labels


def points(rows, label):
    return [(row["fpr"], row["tpr"]) for row in rows if row["class"] == label]


# ---------------------------------------------------------------- metrics


@pytest.mark.parametrize("k", [2, 3, 5])
def test_metrics_agree_with_the_models_loss_and_decision_rule(k):
    logits, labels = random_logits(1000, k)
    logits[:10] = 0.0  # ties: at 0 for one logit, equal logits for k
    got = split_metrics(logits, labels)
    target = torch.from_numpy(labels)
    loss = loss_function(k)(logits.double(), target).item()
    predicted = predicted_labels(logits).numpy()
    assert np.array_equal(metrics.predicted_labels(logits.double().numpy()), predicted)
    assert metrics.mean_loss(logits.numpy(), labels) == pytest.approx(loss, abs=1e-12)
    assert got["loss"] == round(loss, 6) and got["accuracy"] == round(float(np.mean(predicted == labels)), 6)
    assert ("f1_macro" in got) == (k > 2)


def test_macro_f1_averages_the_classes_that_occur():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 5.0, 0]])  # predicts 0, 1, 1, 1
    got = split_metrics(logits, np.array([0, 0, 1, 1]))  # class 2 neither occurs nor is predicted
    # class 0: precision 1, recall 1/2 -> 2/3; class 1: precision 2/3, recall 1 -> 4/5
    assert got == {
        "accuracy": 0.75,
        "loss": round(float(loss_function(3)(logits, torch.tensor([0, 0, 1, 1]))), 6),
        "f1_macro": round((2 / 3 + 4 / 5) / 2, 6),
    }


def test_metrics_refuse_an_empty_split_and_non_finite_logits():
    with pytest.raises(ValueError, match="the split is empty"):
        split_metrics(torch.zeros(0), np.zeros(0, dtype=np.int64))
    with pytest.raises(ValueError, match="NaN or infinity"):
        split_metrics(torch.tensor([0.5, float("nan")]), np.array([0, 1]))
    with pytest.raises(ValueError, match="do not fit"):
        split_metrics(torch.zeros(3), np.array([0, 1]))


# ---------------------------------------------------------------- plot data


def test_two_classes_exact_confusion_and_roc(tmp_path):
    labels = np.array([0, 0, 0, 1, 1])
    logits = torch.tensor([-2.0, 0.5, -1.0, 3.0, -0.2])  # predicts 0, 1, 0, 1, 0
    skipped = write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, ["neg", "pos"])
    assert skipped == []
    assert strict_json(tmp_path / "data/confusion.json") == [
        {"actual": "neg", "predicted": "neg", "count": 2},
        {"actual": "neg", "predicted": "pos", "count": 1},
        {"actual": "pos", "predicted": "neg", "count": 1},
        {"actual": "pos", "predicted": "pos", "count": 1},
    ]
    # Ranked: 3 (pos), 0.5 (neg), -0.2 (pos), -1 (neg), -2 (neg): the corners of the staircase.
    assert strict_json(tmp_path / "data/roc.json") == [
        {"class": "pos", "fpr": fpr, "tpr": tpr}
        for fpr, tpr in [(0.0, 0.0), (0.0, 0.5), (0.3333, 0.5), (0.3333, 1.0), (1.0, 1.0)]
    ]
    for png in ("confusion.png", "roc.png"):
        assert (tmp_path / "png" / png).read_bytes()[:8] == PNG


def test_three_classes_exact_confusion_and_one_curve_per_class(tmp_path):
    labels = np.array([0, 0, 1, 1, 2, 2, 2])
    logits = torch.tensor([[2.0, 0, 0], [0, 1, 0.5], [0, 3, 0], [0, 0, 1], [0, 0.5, 2], [0, 0, 4], [1, 0.2, 0]])
    write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, ["a", "b", "c"])
    counts = {(r["actual"], r["predicted"]): r["count"] for r in strict_json(tmp_path / "data/confusion.json")}
    assert counts == {
        ("a", "a"): 1,
        ("a", "b"): 1,
        ("a", "c"): 0,
        ("b", "a"): 0,
        ("b", "b"): 1,
        ("b", "c"): 1,
        ("c", "a"): 1,
        ("c", "b"): 0,
        ("c", "c"): 2,
    }
    rows = strict_json(tmp_path / "data/roc.json")
    assert [row["class"] for row in rows] == sorted((row["class"] for row in rows), key="abc".index)
    # Each class against the rest, ranked by its probability (torch's softmax): sklearn's curve.
    from sklearn.metrics import roc_curve

    probs = probabilities(logits.double()).numpy()
    for c, name in enumerate("abc"):
        fpr, tpr, _ = roc_curve(labels == c, probs[:, c])
        assert points(rows, name) == list(zip(fpr.round(4).tolist(), tpr.round(4).tolist(), strict=True)), name


@pytest.mark.parametrize("k, n", [(2, 25_000), (3, 30_000), (20, 20_000)])
def test_plot_data_is_small_and_strict_for_many_rows(tmp_path, k, n):
    logits, labels = random_logits(n, k, seed=k)
    names = ["neg", "pos"] if k == 2 else [f"class {c}" for c in range(k)]
    write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, names)
    confusion = strict_json(tmp_path / "data/confusion.json")
    rows = strict_json(tmp_path / "data/roc.json")
    assert len(confusion) == k * k and sum(r["count"] for r in confusion) == n
    accuracy = sum(r["count"] for r in confusion if r["actual"] == r["predicted"]) / n
    assert round(accuracy, 6) == split_metrics(logits, labels)["accuracy"]
    curves = names[1:] if k == 2 else names
    assert [row["class"] for row in rows] == [name for name in curves for _ in points(rows, name)]
    for name in curves:
        curve = points(rows, name)
        assert curve[0] == (0.0, 0.0) and curve[-1] == (1.0, 1.0), name
        assert 20 <= len(curve) <= evaluation.MAX_CURVE_POINTS, name
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(curve)), name  # a staircase
    assert len(rows) <= max(evaluation.MAX_CURVE_POINTS, evaluation.MAX_ROC_POINTS)
    assert sum(p.stat().st_size for p in (tmp_path / "data").iterdir()) < 100_000
    assert (tmp_path / "data/roc.json").read_text().count("\n") == len(rows) + 2  # one row per line


def test_thinning_keeps_the_ends_and_only_corners():
    fpr = np.sort(np.r_[0.0, np.random.default_rng(0).random(998), 1.0])
    tpr = np.sqrt(fpr)
    thin_fpr, thin_tpr = thin_curve(fpr, tpr, 200)
    assert len(thin_fpr) <= 200 and len(thin_fpr) >= 190
    assert (thin_fpr[0], thin_tpr[0], thin_fpr[-1], thin_tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    originals = set(zip(fpr.round(4), tpr.round(4), strict=True))
    assert set(zip(thin_fpr, thin_tpr, strict=True)) <= originals
    short_fpr, short_tpr = thin_curve(fpr[:50], tpr[:50], 200)  # short curves are kept whole
    assert np.array_equal(short_fpr, fpr[:50].round(4)) and np.array_equal(short_tpr, tpr[:50].round(4))


def test_a_class_absent_from_the_split_has_no_curve_and_no_nan(tmp_path, caplog):
    logits, labels = random_logits(300, 3)
    labels[labels == 2] = 0  # no row of class "c"
    skipped = write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, ["a", "b", "c"])
    assert skipped == ["c"] and "no ROC curve for class 'c'" in caplog.text
    rows = strict_json(tmp_path / "data/roc.json")
    assert {row["class"] for row in rows} == {"a", "b"}
    confusion = strict_json(tmp_path / "data/confusion.json")
    assert len(confusion) == 9 and all(r["count"] == 0 for r in confusion if r["actual"] == "c")


def test_a_split_of_one_class_gives_an_empty_roc_file(tmp_path):
    logits, _ = random_logits(50, 2)
    skipped = write_test_plots(tmp_path / "data", tmp_path / "png", logits, np.ones(50, dtype=np.int64), ["neg", "pos"])
    assert skipped == ["pos"]
    assert strict_json(tmp_path / "data/roc.json") == []
    assert (tmp_path / "png/roc.png").read_bytes()[:8] == PNG


def test_write_test_plots_refuses_an_empty_split_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="the split is empty"):
        write_test_plots(
            tmp_path / "data", tmp_path / "png", torch.zeros(0), np.zeros(0, dtype=np.int64), ["neg", "pos"]
        )
    assert not (tmp_path / "data").exists() and not (tmp_path / "png").exists()


# ---------------------------------------------------------------- numpy twins of sklearn.metrics, to the bit


def scored_rows(seed: int, n: int, classes: int, ties: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    if ties:  # few distinct scores: long runs of ties, as rounded probabilities give
        scores = np.round(scores, 1)
    return scores, rng.integers(0, classes, size=n)


@pytest.mark.parametrize(
    "seed, n, ties", [(0, 2, False), (1, 3, True), (2, 50, True), (3, 5000, False), (4, 5000, True)]
)
def test_roc_curve_and_auc_are_sklearns(seed, n, ties):
    from sklearn.metrics import auc, roc_curve

    scores, labels = scored_rows(seed, n, 2, ties)
    labels[:2] = [0, 1]  # both classes
    fpr, tpr = metrics.roc_curve(labels == 1, scores)
    expected_fpr, expected_tpr, _ = roc_curve(labels == 1, scores, drop_intermediate=True)
    assert fpr.tobytes() == expected_fpr.tobytes() and tpr.tobytes() == expected_tpr.tobytes()
    assert metrics.auc(fpr, tpr) == auc(expected_fpr, expected_tpr)


@pytest.mark.parametrize("seed, classes", [(0, 2), (1, 3), (2, 7)])
def test_confusion_matrix_and_macro_f1_are_sklearns(seed, classes):
    from sklearn.metrics import confusion_matrix, f1_score

    _, labels = scored_rows(seed, 400, classes, False)
    _, predicted = scored_rows(seed + 100, 400, classes - 1 if classes > 2 else classes, False)  # a class never guessed
    matrix = metrics.confusion_matrix(labels, predicted, classes)
    assert matrix.dtype == np.int64
    assert np.array_equal(matrix, confusion_matrix(labels, predicted, labels=range(classes)))
    expected = f1_score(labels, predicted, labels=np.union1d(labels, predicted), average="macro", zero_division=0.0)
    assert metrics.f1_macro(labels, predicted) == expected
