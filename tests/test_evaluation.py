"""Evaluation outputs: metrics that are never NaN, plot data that is small, strict and exact for any k."""

import itertools
import json

import numpy as np
import pytest
import torch

from textrnn.model import loss_function, predicted_labels, probabilities
from textrnn.scoring import evaluation, metrics
from textrnn.scoring.evaluation import split_metrics, thin_curve, write_test_plots

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
    auc = "roc_auc" if k == 2 else "roc_auc_macro"
    assert list(got) == ["accuracy", "loss", "f1_macro", "majority", auc]  # every k, binary included


def test_macro_f1_averages_the_classes_that_occur():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 5.0, 0], [0, 5.0, 0]])  # predicts 0, 1, 1, 1
    got = split_metrics(logits, np.array([0, 0, 1, 1]))  # class 2 neither occurs nor is predicted
    # class 0: precision 1, recall 1/2 -> 2/3; class 1: precision 2/3, recall 1 -> 4/5
    assert got == {
        "accuracy": 0.75,
        "loss": round(float(loss_function(3)(logits, torch.tensor([0, 0, 1, 1]))), 6),
        "f1_macro": round((2 / 3 + 4 / 5) / 2, 6),
        "majority": 0.5,
        # a (rows 0, 1) against b: row 0 outranks both b rows, row 1 ties them: (2 + 2 * 0.5) / 4;
        # b against a, the same by symmetry; c has no row, so no curve: it is left out.
        "roc_auc_macro": 0.75,
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
    assert strict_json(tmp_path / "data/confusion.json") == [  # the diagonal first, then the other cells
        {"actual": "neg", "predicted": "neg", "count": 2},
        {"actual": "pos", "predicted": "pos", "count": 1},
        {"actual": "neg", "predicted": "pos", "count": 1},
        {"actual": "pos", "predicted": "neg", "count": 1},
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
    # The diagonal, then the non-zero cells off it in label order: (a, c), (b, a) and (c, b) are 0.
    assert strict_json(tmp_path / "data/confusion.json") == [
        {"actual": "a", "predicted": "a", "count": 1},
        {"actual": "b", "predicted": "b", "count": 1},
        {"actual": "c", "predicted": "c", "count": 2},
        {"actual": "a", "predicted": "b", "count": 1},
        {"actual": "b", "predicted": "c", "count": 1},
        {"actual": "c", "predicted": "a", "count": 1},
    ]
    rows = strict_json(tmp_path / "data/roc.json")
    assert [row["class"] for row in rows] == sorted((row["class"] for row in rows), key="abc".index)
    # Each class against the rest, ranked by its probability (torch's softmax): sklearn's curve.
    from sklearn.metrics import precision_recall_fscore_support, roc_auc_score, roc_curve

    probs = probabilities(logits.double()).numpy()
    for c, name in enumerate("abc"):
        fpr, tpr, _ = roc_curve(labels == c, probs[:, c])
        assert points(rows, name) == list(zip(fpr.round(4).tolist(), tpr.round(4).tolist(), strict=True)), name
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, [0, 1, 1, 2, 2, 2, 0], labels=[0, 1, 2], zero_division=0
    )
    assert strict_json(tmp_path / "data/classes.json") == [
        {
            "class": name,
            "support": int(support[c]),
            "precision": round(float(precision[c]), 4),
            "recall": round(float(recall[c]), 4),
            "f1": round(float(f1[c]), 4),
            "auc": round(float(roc_auc_score(labels == c, probs[:, c])), 4),
        }
        for c, name in enumerate("abc")
    ]


def test_two_classes_share_one_auc_in_classes_json(tmp_path):
    labels = np.array([0, 0, 0, 1, 1])
    logits = np.array([-2.0, 0.5, -1.0, 3.0, -0.2])  # predicts 0, 1, 0, 1, 0
    write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, ["neg", "pos"])
    assert strict_json(tmp_path / "data/classes.json") == [
        {"class": "neg", "support": 3, "precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "auc": 0.8333},
        {"class": "pos", "support": 2, "precision": 0.5, "recall": 0.5, "f1": 0.5, "auc": 0.8333},
    ]


@pytest.mark.parametrize("k, n", [(2, 25_000), (3, 30_000), (20, 20_000)])
def test_plot_data_is_small_and_strict_for_many_rows(tmp_path, k, n):
    logits, labels = random_logits(n, k, seed=k)
    names = ["neg", "pos"] if k == 2 else [f"class {c}" for c in range(k)]
    write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, names)
    confusion = strict_json(tmp_path / "data/confusion.json")
    rows = strict_json(tmp_path / "data/roc.json")
    assert len(confusion) == k * k and sum(r["count"] for r in confusion) == n  # every cell is non-zero here
    accuracy = sum(r["count"] for r in confusion if r["actual"] == r["predicted"]) / n
    assert round(accuracy, 6) == split_metrics(logits, labels)["accuracy"]
    biggest = sorted(np.argsort(-np.bincount(labels), kind="stable")[: evaluation.MAX_ROC_CLASSES])
    curves = names[1:] if k == 2 else [names[c] for c in biggest]
    assert [row["class"] for row in rows] == [name for name in curves for _ in points(rows, name)]
    for name in curves:
        curve = points(rows, name)
        assert curve[0] == (0.0, 0.0) and curve[-1] == (1.0, 1.0), name
        assert 20 <= len(curve) <= evaluation.MAX_CURVE_POINTS, name
        assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in itertools.pairwise(curve)), name  # a staircase
    assert sum(p.stat().st_size for p in (tmp_path / "data").iterdir()) < 100_000
    assert (tmp_path / "data/roc.json").read_text().count("\n") == len(rows) + 2  # one row per line
    assert [row["class"] for row in strict_json(tmp_path / "data/classes.json")] == names


def skewed_labels(n, k, seed):
    """Labels of k classes with Zipf-like sizes (class c has about n / (c + 1) shares), some absent."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, k + 1)
    return rng.choice(k, size=n, p=weights / weights.sum())


def test_a_thousand_classes_stay_under_100_kb_and_sum_to_every_row(tmp_path, caplog):
    k, n = 1000, 6_000
    labels = skewed_labels(n, k, seed=0)
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(n, k)).astype(np.float32)
    logits[np.arange(n), labels] += 2.5  # right about half the time, the mistakes spread over many cells
    names = [f"intent_{c:04d}_{'x' * (c % 7)}" for c in range(k)]  # names of varied length
    caplog.set_level("INFO", logger="textrnn")
    skipped = write_test_plots(tmp_path / "data", tmp_path / "png", logits, labels, names)

    files = {path.name: path.stat().st_size for path in (tmp_path / "data").iterdir()}
    assert set(files) == {"confusion.json", "roc.json", "classes.json"}
    assert files["confusion.json"] <= evaluation.CONFUSION_BYTES
    assert files["roc.json"] <= evaluation.ROC_BYTES and files["classes.json"] <= evaluation.CLASSES_BYTES
    assert sum(files.values()) < 100_000 - 2_000  # metrics.json's few hundred bytes fit beside them

    support = np.bincount(labels, minlength=k)
    by_size = np.argsort(-support, kind="stable")
    assert skipped == [names[c] for c in range(k) if support[c] == 0]
    # confusion: the most frequent classes that fit, then one class for all others; every row counted
    confusion = strict_json(tmp_path / "data/confusion.json")
    assert sum(row["count"] for row in confusion) == n
    assert all(row["count"] > 0 for row in confusion if row["actual"] != row["predicted"])
    shown = list(dict.fromkeys(row["actual"] for row in confusion))
    kept = len(shown) - 1
    assert shown == [names[c] for c in sorted(by_size[:kept])] + ["(other classes)"]
    assert kept >= 20
    cells = {(row["actual"], row["predicted"]): row["count"] for row in confusion}
    for c in by_size[:kept]:
        assert sum(count for (actual, _), count in cells.items() if actual == names[c]) == support[c]
        assert cells.get((names[c], names[c]), 0) == int(np.sum((labels == c) & (logits.argmax(1) == c)))
    # roc: MAX_ROC_CLASSES curves, those of the most frequent classes, in label order
    roc_classes = list(dict.fromkeys(row["class"] for row in strict_json(tmp_path / "data/roc.json")))
    assert roc_classes == [names[c] for c in sorted(by_size[: evaluation.MAX_ROC_CLASSES])]
    # classes: the most frequent that fit, in label order
    per_class = strict_json(tmp_path / "data/classes.json")
    assert [row["class"] for row in per_class] == [names[c] for c in sorted(by_size[: len(per_class)])]
    assert len(per_class) >= 100
    assert [row["support"] for row in per_class] == [int(support[c]) for c in sorted(by_size[: len(per_class)])]
    said = [r.getMessage() for r in caplog.records]
    assert f"evaluate: roc.json: the curves of the 10 classes with the most test rows, of {k}: " in "\n".join(said)
    assert any(m.startswith(f"evaluate: confusion.json: the {kept} classes with the most test rows;") for m in said)
    assert any(m.startswith(f"evaluate: classes.json: the {len(per_class)} classes with the most") for m in said)
    assert (tmp_path / "png/confusion.png").read_bytes()[:8] == PNG


def test_confusion_rows_are_the_diagonal_then_the_non_zero_cells_and_sum_to_n():
    rng = np.random.default_rng(5)
    labels, predicted = rng.integers(0, 6, 500), rng.integers(0, 6, 500)
    predicted[labels == 5] = 5  # row "f" has one non-zero cell
    names = list("abcdef")
    predicted[labels == 4] = 3  # and row "e" has no right answer: its diagonal cell is 0
    rows, kept = evaluation.confusion_rows(labels, predicted, names)
    matrix = metrics.confusion_matrix(labels, predicted, 6)
    assert kept is None
    assert rows == [{"actual": names[c], "predicted": names[c], "count": int(matrix[c, c])} for c in range(6)] + [
        {"actual": names[a], "predicted": names[p], "count": int(matrix[a, p])}
        for a in range(6)
        for p in range(6)
        if matrix[a, p] and a != p
    ]
    assert rows[4] == {"actual": "e", "predicted": "e", "count": 0}
    assert sum(row["count"] for row in rows) == 500


def test_a_folded_confusion_keeps_the_biggest_classes_and_counts_the_rest_as_one():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])  # sizes 3, 2, 4, 1
    predicted = np.array([0, 1, 3, 1, 2, 2, 2, 0, 3, 3])
    names = ["w", "x", "y", "(other classes)"]  # a class with the fold's name: the fold takes another
    rows = evaluation.folded_confusion_rows(labels, predicted, names, kept=2)  # y (4 rows), then w (3)
    assert rows == [
        {"actual": "w", "predicted": "w", "count": 1},
        {"actual": "y", "predicted": "y", "count": 2},
        {"actual": "(other classes)*", "predicted": "(other classes)*", "count": 2},  # x as x, the 4th as itself
        {"actual": "w", "predicted": "(other classes)*", "count": 2},
        {"actual": "y", "predicted": "w", "count": 1},
        {"actual": "y", "predicted": "(other classes)*", "count": 1},
        {"actual": "(other classes)*", "predicted": "y", "count": 1},  # x predicted as y
    ]
    full, kept = evaluation.confusion_rows(labels, predicted, names, max_bytes=10_000)
    assert kept is None and sum(row["count"] for row in full) == 10
    budget = evaluation.rows_bytes(rows)
    assert evaluation.confusion_rows(labels, predicted, names, max_bytes=budget) == (rows, 2)


def test_most_confused_pairs_are_the_biggest_mistakes_first():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    predicted = np.array([1, 1, 0, 0, 2, 0, 0, 1, 2])
    pairs = evaluation.most_confused_pairs(labels, predicted, ["a", "b", "c"], top=3)
    assert pairs == [("a", "b", 2), ("c", "a", 2), ("b", "a", 1)]  # ties in label order


def test_the_roc_of_many_classes_is_the_most_frequent_ones(tmp_path):
    labels = np.repeat(np.arange(14), [5, 9, 1, 9, 2, 8, 7, 6, 3, 4, 10, 11, 12, 13])
    logits = np.random.default_rng(0).normal(size=(len(labels), 14))
    curves, skipped = evaluation.roc_curves(logits, labels, [str(c) for c in range(14)])
    # the 10 biggest: 13, 12, 11, 10, 1 and 3 (9 rows, label order), 5, 6, 7, 0
    assert [curve.label for curve in curves] == ["0", "1", "3", "5", "6", "7", "10", "11", "12", "13"]
    assert skipped == []


def test_roc_points_shrink_to_fit_the_byte_budget():
    rng = np.random.default_rng(0)
    curves = [
        evaluation.Curve(
            f"a long class name number {c}", *metrics.roc_curve(rng.random(2000) < 0.3, rng.random(2000)), 0.5
        )
        for c in range(10)
    ]
    rows = evaluation.roc_rows(curves, max_bytes=20_000)
    assert evaluation.rows_bytes(rows) <= 20_000
    assert len(rows) >= 10 * 20
    one = evaluation.roc_rows(curves[:1], max_bytes=20_000)
    assert len(one) == evaluation.MAX_CURVE_POINTS


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
    assert [r for r in confusion if "c" in (r["actual"], r["predicted"]) and r["count"]] == [
        r for r in confusion if r["predicted"] == "c" and r["actual"] != "c"
    ]
    assert {"actual": "c", "predicted": "c", "count": 0} in confusion and sum(r["count"] for r in confusion) == 300
    assert strict_json(tmp_path / "data/classes.json")[2] == {
        "class": "c",
        "support": 0,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "auc": None,
    }


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


@pytest.mark.parametrize("seed, classes", [(0, 2), (1, 3), (2, 7)])
def test_class_scores_are_sklearns(seed, classes):
    from sklearn.metrics import precision_recall_fscore_support

    _, labels = scored_rows(seed, 400, classes, False)
    _, predicted = scored_rows(seed + 100, 400, classes - 1, False)  # the last class is never guessed
    labels[labels == 1] = 0  # and class 1 never occurs
    got = metrics.class_scores(labels, predicted, classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=range(classes), zero_division=0
    )
    assert got["support"].tolist() == support.tolist()
    for key, expected in (("precision", precision), ("recall", recall), ("f1", f1)):
        assert got[key] == pytest.approx(expected, abs=1e-15), key


@pytest.mark.parametrize("seed, n, ties", [(0, 50, True), (1, 2000, False), (2, 2000, True)])
def test_binary_f1_majority_and_auc_are_sklearns(seed, n, ties):
    from sklearn.metrics import f1_score, roc_auc_score

    scores, labels = scored_rows(seed, n, 2, ties)
    labels = (scores + np.random.default_rng(seed).normal(size=n) > 0.8).astype(np.int64)  # unbalanced
    got = split_metrics(scores, labels)
    predicted = (scores > 0).astype(np.int64)
    assert got["f1_macro"] == round(f1_score(labels, predicted, average="macro"), 6)
    assert got["majority"] == round(max(np.mean(labels), 1 - np.mean(labels)), 6)
    assert got["roc_auc"] == round(roc_auc_score(labels, scores), 6)


@pytest.mark.parametrize("seed, k", [(0, 3), (1, 8)])
def test_macro_auc_is_sklearns_one_vs_rest(seed, k):
    from sklearn.metrics import roc_auc_score

    logits, labels = random_logits(600, k, seed)
    logits = logits.double().numpy()
    probs = probabilities(torch.from_numpy(logits)).numpy()
    aucs = metrics.class_aucs(metrics.RankingScores(logits), labels)
    assert aucs == pytest.approx([roc_auc_score(labels == c, probs[:, c]) for c in range(k)], abs=1e-12)
    expected = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert split_metrics(logits, labels)["roc_auc_macro"] == round(expected, 6)
    labels[labels == k - 1] = 0  # a class with no row has no curve: the mean is over the others
    aucs = metrics.class_aucs(metrics.RankingScores(logits), labels)
    assert np.isnan(aucs[k - 1]) and not np.isnan(aucs[: k - 1]).any()
    assert split_metrics(logits, labels)["roc_auc_macro"] == round(float(np.mean(aucs[: k - 1])), 6)


def test_majority_is_the_share_of_the_biggest_class_exactly():
    labels = np.array([2] * 7 + [0] * 3 + [1] * 90)
    assert metrics.majority_share(labels) == 0.9
    assert split_metrics(np.zeros((100, 3)), labels)["majority"] == 0.9


def test_a_split_of_one_class_has_no_auc_and_no_nan():
    got = split_metrics(np.array([0.3, -1.0, 2.0]), np.ones(3, dtype=np.int64))
    assert got["roc_auc"] is None and got["majority"] == 1.0
    assert json.loads(json.dumps(got, allow_nan=False)) == got


def test_a_model_that_predicts_the_majority_class_is_visible():
    # IMDB sampled 95% / 5%: a model that answers "neg" to nearly everything is 95% accurate.
    labels = np.array([0] * 950 + [1] * 50)
    logits = np.full(1000, -3.0)
    logits[-3:] = 1.0  # three positives found
    got = split_metrics(logits, labels)
    assert got["accuracy"] == 0.953 and got["majority"] == 0.95
    # neg: precision 950/997, recall 1 -> 1900/1947; pos: precision 1, recall 3/50 -> 6/53
    assert got["f1_macro"] == round((1900 / 1947 + 6 / 53) / 2, 6) == 0.544534
    message = evaluation.one_class_warning(logits, labels, ["neg", "pos"], "test")
    assert message == (
        "the model predicts 'neg' for 99.7% of the test rows, whose most frequent class 'neg' is only "
        "95.0% of them: it has learnt little beyond the class shares (see f1_macro)"
    )
    assert (
        evaluation.one_class_warning(logits[-100:], labels[-100:], ["neg", "pos"], "test") is None
    )  # 97% "neg": under 98%
    # labels as skewed as the predictions: nothing to warn about
    assert evaluation.one_class_warning(np.full(100, -3.0), np.zeros(100, np.int64), ["neg", "pos"], "test") is None


# ---------------------------------------------------------------- the evaluate stage's function


def write_stage_inputs(root, label_names, labels_of, bias):
    """data/vectors (reviews of 1-3 random token ids) and models/model.pt: an untrained RNN whose
    output bias is ``bias``, for the splits' ``labels_of[split]``."""
    from textrnn.data.vectors import SplitVectorsWriter, write_meta
    from textrnn.model import RNN, ModelConfig, save_checkpoint
    from textrnn.text import tokenizer

    rng = np.random.default_rng(0)
    vocabulary, sha = 30, "0" * 64
    for split, labels in labels_of.items():
        writer = SplitVectorsWriter(root / "data/vectors" / split)
        lengths = rng.integers(1, 4, len(labels))
        writer.append(rng.integers(2, vocabulary, lengths.sum()), lengths)
        writer.close(labels)
    counts = {split: {"reviews": len(labels)} for split, labels in labels_of.items()}
    write_meta(root / "data/vectors", label_names, sha, tokenizer.fingerprint(), counts)
    torch.manual_seed(0)
    k = len(label_names)
    model = RNN(ModelConfig(vocabulary, 4, 8, num_classes=k))
    with torch.no_grad():
        model.V.weight.mul_(0.01)
        model.V.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))
    inputs = {"vocab_sha256": sha, "tokenizer": tokenizer.fingerprint(), "max_tokens": None}
    save_checkpoint(root / "models/model.pt", model, model.state_dict(), label_names, {}, inputs)


def run_evaluate(root):
    from textrnn.pipeline import evaluate

    return evaluate.run(
        {"device": "cpu", "batch_size": 64},
        model_path=root / "models/model.pt",
        vectors_dir=root / "data/vectors",
        metrics_path=root / "metrics/metrics.json",
        plot_data_dir=root / "metrics/plots",
        png_dir=root / "plots/evaluation",
    )


def test_evaluate_warns_once_when_the_model_predicts_one_class(tmp_path, caplog):
    labels = {split: np.array([0] * 19 * m + [1] * m) for split, m in (("train", 10), ("valid", 2), ("test", 5))}
    write_stage_inputs(tmp_path, ["neg", "pos"], labels, bias=[-5.0])  # every review: "neg"
    written = run_evaluate(tmp_path)
    assert strict_json(tmp_path / "metrics/metrics.json") == written
    assert written["test"] == {
        "accuracy": 0.95,
        "loss": written["test"]["loss"],
        "f1_macro": round((2 * 95 / 195) / 2, 6),  # neg: 2 * 95 / (100 + 95); pos: 0
        "majority": 0.95,
        "roc_auc": written["test"]["roc_auc"],
    }
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "evaluate: the model predicts 'neg' for 100.0% of the test rows, whose most frequent class 'neg' is "
        "only 95.0% of them: it has learnt little beyond the class shares (see f1_macro)"
    ]


def test_evaluate_of_151_classes_writes_bounded_files(tmp_path, caplog):
    k = 151
    names = [f"intent_{c}" for c in range(k)]
    labels = {split: np.arange(n) % k for split, n in (("train", 2 * k), ("valid", k), ("test", 3 * k))}
    write_stage_inputs(tmp_path, names, labels, bias=np.linspace(0, 1, k))
    caplog.set_level("INFO", logger="textrnn")
    written = run_evaluate(tmp_path)
    for split in ("train", "valid", "test"):
        assert list(written[split]) == ["accuracy", "loss", "f1_macro", "majority", "roc_auc_macro"]
        assert written[split]["majority"] == round(1 / k, 6)  # every class equally often
    sizes = {path.name: path.stat().st_size for path in (tmp_path / "metrics/plots").iterdir()}
    assert set(sizes) == {"confusion.json", "roc.json", "classes.json"}
    assert sum(sizes.values()) + (tmp_path / "metrics/metrics.json").stat().st_size < 100_000
    assert len(strict_json(tmp_path / "metrics/plots/classes.json")) == k
    assert len({row["class"] for row in strict_json(tmp_path / "metrics/plots/roc.json")}) == 10
    assert sorted(p.name for p in (tmp_path / "plots/evaluation").iterdir()) == ["confusion.png", "roc.png"]
    assert (
        "evaluate: roc.json: the curves of the 10 classes with the most test rows, of 151: 'intent_0'," in caplog.text
    )


def test_dvc_confusion_template_writes_counts_in_the_cells_up_to_text_classes():
    from conftest import ROOT

    template = json.loads((ROOT / ".dvc/plots/confusion_counts.json").read_text())
    text_layer = [layer for layer in template["spec"]["layer"] if layer["mark"] == "text"]
    assert len(text_layer) == 1
    assert text_layer[0]["transform"][-1] == {"filter": f"datum.classes <= {evaluation.TEXT_CLASSES}"}


def test_long_class_names_leave_the_many_class_figure_as_it_is(tmp_path):
    """Names of 120 characters (an intent's sentence) are cut on the figure: the same size as with
    short names, the layout applied (it used to give up, the PNG growing wide around a thin heatmap)."""
    import warnings

    from PIL import Image

    from textrnn.scoring import plots

    sizes = []
    for length in (5, 120):
        names = [f"{'x' * length}{i}" for i in range(60)]
        pairs = [(names[i], names[i + 1], 3) for i in range(20)]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "constrained_layout not applied because axes sizes collapsed to zero"
            plots.plot_confusion_shares(tmp_path / f"{length}.png", np.eye(60), names, pairs, "Confusion")
        sizes.append(Image.open(tmp_path / f"{length}.png").size)
    assert sizes[0] == sizes[1]
    assert plots.short_name("x" * 120) == "x" * (plots.NAME_CHARS - 1) + "\u2026"
    assert plots.short_name("x" * plots.NAME_CHARS) == "x" * plots.NAME_CHARS


@pytest.mark.parametrize("n_classes", [3, 30])
def test_class_names_with_dollar_signs_are_drawn_as_written(tmp_path, n_classes):
    """Matplotlib reads text between two $ as TeX: "$a^$" failed the figure, "$5-$10" was drawn "5-10"."""
    from textrnn.scoring import plots

    names = ["$5-$10", "$a^$", "$$", *(f"c{i}" for i in range(n_classes - 3))]
    rng = np.random.default_rng(0)
    labels = np.arange(200) % n_classes
    logits = rng.normal(size=(200, n_classes)).astype(np.float32)
    write_test_plots(tmp_path, tmp_path, logits, labels, names)
    assert plots.drawn("$5-$10") == "\\$5-\\$10"


def test_class_names_the_font_lacks_are_one_log_line_not_a_warning_per_glyph(tmp_path, caplog, recwarn):
    names = ["体育", "财经", "pos"]
    labels = np.arange(30) % 3
    logits = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    with caplog.at_level("WARNING"):
        write_test_plots(tmp_path, tmp_path, logits, labels, names)
    assert not [w for w in recwarn if "Glyph" in str(w.message)]
    lacking = [r.getMessage() for r in caplog.records if "font" in r.getMessage()]
    assert lacking == [
        "evaluate: confusion.png: the font lacks characters of the class names (体, 育, 财, 经); they are drawn as "
        "boxes there (the JSON files and `dvc plots show` keep them)",
        "evaluate: roc.png: the font lacks characters of the class names (体, 育, 财, 经); they are drawn as "
        "boxes there (the JSON files and `dvc plots show` keep them)",
    ]
