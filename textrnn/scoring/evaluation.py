"""Metrics and plot data of a model's logits on a split: small strict JSON for DVC, PNGs for people.

Plot data files (strict JSON lists, one row per line, so that a git diff shows the rows that changed),
each within its byte budget below for any number of classes k, so that all of them stay under 100 KB::

    confusion.json  [{"actual": name, "predicted": name, "count": int}, ...]   the diagonal, then the
                      non-zero cells off it (see confusion_cell_rows)
    roc.json        [{"class": name, "fpr": float, "tpr": float}, ...]       curves from (0, 0) to (1, 1)
    classes.json    [{"class": name, "support": int, "precision": float, "recall": float, "f1": float,
                      "auc": float | null}, ...]                              one row per class, label order

Two classes give the ROC curve of class 1; k classes give one one-vs-rest curve for each of the
MAX_ROC_CLASSES classes with the most test rows (ties: label order) that have a curve. A class that
has no row in the split, or that every row belongs to, has no curve (its rates would be 0/0): its
``auc`` is null. When confusion.json would overflow CONFUSION_BYTES, confusion.json keeps the most
frequent test classes that fit and counts every other class as FOLDED_CLASSES (its counts still sum
to the split's rows); when classes.json would overflow CLASSES_BYTES it keeps the most frequent
classes that fit. Each cut is said in one log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from textrnn.core.filesystem import atomic_path
from textrnn.scoring import metrics
from textrnn.scoring.plots import plot_confusion, plot_confusion_shares, plot_roc

log = logging.getLogger("textrnn")

CONFUSION_FILE, ROC_FILE, CLASSES_FILE = "confusion.json", "roc.json", "classes.json"
CONFUSION_PNG, ROC_PNG = "confusion.png", "roc.png"
# Bytes of each plot data file at most: together under 100 KB beside metrics.json.
CONFUSION_BYTES, ROC_BYTES, CLASSES_BYTES = 40_000, 30_000, 25_000
MAX_ROC_CLASSES = 10  # curves in roc.json and roc.png: a panel each in DVC's chart
# Points per curve: at most MAX_CURVE_POINTS (a curve is drawn at a few hundred pixels), fewer
# when ROC_BYTES would overflow, never fewer than its two ends.
MAX_CURVE_POINTS = 200
RATE_DECIMALS = 4  # rates in roc.json
SCORE_DECIMALS = 4  # precision, recall, f1 and auc in classes.json
FOLDED_CLASSES = "(other classes)"
# confusion.png: counts written in the cells up to TEXT_CLASSES classes; beyond, row shares as a
# heatmap of at most HEATMAP_CLASSES classes (the most frequent), their names on the axes up to
# TICK_CLASSES, beside the TOP_PAIRS most frequent mistakes.
TEXT_CLASSES, HEATMAP_CLASSES, TICK_CLASSES, TOP_PAIRS = 20, 300, 60, 20
NAMES_IN_A_LINE = 10  # class names a log line lists before "and N more"

if TYPE_CHECKING:
    import torch

Logits = Union["torch.Tensor", np.ndarray]  # a tensor is read as numpy; torch itself is not needed here


def _as_numpy(logits: Logits) -> np.ndarray:
    """Logits as numpy, float32 kept as it is: textrnn.scoring.metrics reads them as float64 a part at a time."""
    if hasattr(logits, "detach"):  # a torch tensor
        logits = logits.detach().cpu().numpy()
    logits = np.asarray(logits)
    return logits if logits.dtype in (np.float32, np.float64) else logits.astype(np.float64)


def split_metrics(logits: Logits, labels: np.ndarray) -> dict[str, float | None]:
    """``accuracy``, ``loss``, ``f1_macro``, ``majority`` and ``roc_auc`` (two classes, logits [n])
    or ``roc_auc_macro`` (logits [n, k]).

    See textrnn.scoring.metrics.split_metrics: rounded, never NaN, ValueError on an empty split.
    """
    return metrics.split_metrics(_as_numpy(logits), labels)


def one_class_warning(logits: Logits, labels: np.ndarray, label_names: list[str], split: str) -> str | None:
    """metrics.one_class_warning of these logits' predictions."""
    predicted = metrics.predicted_labels(_as_numpy(logits))
    return metrics.one_class_warning(np.asarray(labels, dtype=np.int64), predicted, label_names, split)


def most_frequent(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Every class, by descending number of rows in ``labels`` (ties: label order)."""
    return np.argsort(-np.bincount(labels, minlength=n_classes), kind="stable")


def name_list(names: list[str]) -> str:
    """Up to NAMES_IN_A_LINE names for a log line, then how many more."""
    shown = ", ".join(repr(name) for name in names[:NAMES_IN_A_LINE])
    return shown + (f" and {len(names) - NAMES_IN_A_LINE} more" if len(names) > NAMES_IN_A_LINE else "")


# ---------------------------------------------------------------- rows and their size


def _row_line(row: dict[str, Any]) -> str:
    return json.dumps(row, allow_nan=False, ensure_ascii=False)


def rows_text(rows: list[dict[str, Any]]) -> str:
    """A strict JSON list, one row per line."""
    return "[\n" + ",\n".join(map(_row_line, rows)) + "\n]\n" if rows else "[]\n"


def rows_bytes(rows: list[dict[str, Any]]) -> int:
    return len(rows_text(rows).encode("utf-8"))


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """``rows_text(rows)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(rows_text(rows), encoding="utf-8")


# ---------------------------------------------------------------- ROC


@dataclass
class Curve:
    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def roc_curves(
    logits: Logits,
    labels: np.ndarray,
    label_names: list[str],
    max_classes: int = MAX_ROC_CLASSES,
    scores: metrics.RankingScores | None = None,
) -> tuple[list[Curve], list[str]]:
    """Full ROC curves (sklearn's, corners only) in label order, and the names of the classes that
    have none.

    Two classes: the curve of class 1. k classes: class c against the rest, for the ``max_classes``
    classes with the most rows (ties: label order) among those that have a curve. ``scores``:
    ``metrics.RankingScores(logits)`` when the caller has them.
    """
    logits, labels = _as_numpy(logits), np.asarray(labels, dtype=np.int64)
    scores = metrics.RankingScores(logits) if scores is None else scores
    classes = scores.classes
    defined = metrics.has_curve(labels, len(label_names))
    skipped = [label_names[label] for label in classes if not defined[label]]
    chosen = [label for label in most_frequent(labels, len(label_names)) if defined[label] and label in classes]
    curves = []
    for label in sorted(chosen[:max_classes]):
        column = 0 if logits.ndim == 1 else label
        fpr, tpr = metrics.roc_curve(labels == label, scores.column(column))
        curves.append(Curve(label_names[label], fpr, tpr, metrics.auc(fpr, tpr)))
    return curves, skipped


def thin_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` (>= 2) of the curve's corners, evenly spaced along them, both ends kept,
    rounded to RATE_DECIMALS with repeated points dropped."""
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    fpr, tpr = fpr.round(RATE_DECIMALS), tpr.round(RATE_DECIMALS)
    repeated = np.r_[False, (np.diff(fpr) == 0) & (np.diff(tpr) == 0)]
    return fpr[~repeated], tpr[~repeated]


def points_per_curve(curves: list[Curve], max_bytes: int = ROC_BYTES) -> int:
    """Points per curve such that roc.json stays within ``max_bytes``: MAX_CURVE_POINTS at most, 2 at least."""
    if not curves:
        return MAX_CURVE_POINTS
    # The longest row a point can make: a name, and two rates with every decimal.
    row = max(len(_row_line({"class": c.label, "fpr": 0.0001, "tpr": 0.0001}).encode("utf-8")) for c in curves)
    return max(2, min(MAX_CURVE_POINTS, (max_bytes - 4) // (len(curves) * (row + 2))))


def roc_rows(curves: list[Curve], max_bytes: int = ROC_BYTES) -> list[dict[str, Any]]:
    """The rows of roc.json: each curve thinned to ``points_per_curve``."""
    rows: list[dict[str, Any]] = []
    points = points_per_curve(curves, max_bytes)
    for curve in curves:
        fpr, tpr = thin_curve(curve.fpr, curve.tpr, points)
        rows.extend({"class": curve.label, "fpr": float(x), "tpr": float(y)} for x, y in zip(fpr, tpr, strict=True))
    return rows


# ---------------------------------------------------------------- confusion


def confusion_cell_rows(labels: np.ndarray, predicted: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    """Rows of (actual, predicted, count) for classes 0..len(names)-1: first the diagonal, every class
    in label order, zeros included; then the non-zero cells off it, in label order (by actual, then
    predicted). DVC's chart orders its axes by first appearance: so every class is on both axes, in
    label order, while the zero cells off the diagonal (most of them, for many classes) are left out."""
    actual, guessed, counts = metrics.confusion_cells(labels, predicted, len(names))
    diagonal = np.zeros(len(names), dtype=np.int64)
    on = actual == guessed
    diagonal[actual[on]] = counts[on]
    off = [(a, p, c) for a, p, c in zip(actual.tolist(), guessed.tolist(), counts.tolist(), strict=True) if a != p]
    cells = [(c, c, count) for c, count in enumerate(diagonal.tolist())] + off
    return [{"actual": names[a], "predicted": names[p], "count": count} for a, p, count in cells]


def folded_name(label_names: list[str]) -> str:
    """FOLDED_CLASSES, made unlike every class name."""
    name = FOLDED_CLASSES
    while name in label_names:
        name += "*"
    return name


def folded_confusion_rows(
    labels: np.ndarray, predicted: np.ndarray, label_names: list[str], kept: int
) -> list[dict[str, Any]]:
    """``confusion_cell_rows`` with the ``kept`` most frequent classes of ``labels`` (in label order)
    and every other class counted as one, named by ``folded_name``, last."""
    n_classes = len(label_names)
    keep = np.sort(most_frequent(labels, n_classes)[:kept])
    index = np.full(n_classes, kept, dtype=np.int64)
    index[keep] = np.arange(kept)
    names = [label_names[c] for c in keep.tolist()] + [folded_name(label_names)]
    return confusion_cell_rows(index[labels], index[predicted], names)


def confusion_rows(
    labels: np.ndarray, predicted: np.ndarray, label_names: list[str], max_bytes: int = CONFUSION_BYTES
) -> tuple[list[dict[str, Any]], int | None]:
    """The rows of confusion.json and, when the non-zero cells of all classes overflow ``max_bytes``,
    the number of classes kept (the most that fit; the others folded, see folded_confusion_rows)."""
    n_classes = len(label_names)
    rows = confusion_cell_rows(labels, predicted, label_names)
    if rows_bytes(rows) <= max_bytes:
        return rows, None
    low, high = 0, n_classes - 1  # a fold of 0 classes is one cell: it always fits
    while low < high:
        middle = (low + high + 1) // 2
        if rows_bytes(folded_confusion_rows(labels, predicted, label_names, middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return folded_confusion_rows(labels, predicted, label_names, low), low


def most_confused_pairs(
    labels: np.ndarray, predicted: np.ndarray, label_names: list[str], top: int = TOP_PAIRS
) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent mistakes as (actual, predicted, count), most first (ties: label order)."""
    actual, guessed, counts = metrics.confusion_cells(labels, predicted, len(label_names))
    wrong = actual != guessed
    actual, guessed, counts = actual[wrong], guessed[wrong], counts[wrong]
    order = np.argsort(-counts, kind="stable")[:top]
    return [(label_names[actual[i]], label_names[guessed[i]], int(counts[i])) for i in order.tolist()]


def dense_confusion(labels: np.ndarray, predicted: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [actual, predicted] among ``classes`` (rows and columns in that order), k_shown² only."""
    index = np.full(n_classes, -1, dtype=np.int64)
    index[classes] = np.arange(len(classes))
    actual, guessed = index[labels], index[predicted]
    inside = (actual >= 0) & (guessed >= 0)
    return metrics.confusion_matrix(actual[inside], guessed[inside], len(classes))


# ---------------------------------------------------------------- per class


def class_rows(
    logits: np.ndarray,
    labels: np.ndarray,
    label_names: list[str],
    max_bytes: int = CLASSES_BYTES,
    scores: metrics.RankingScores | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """The rows of classes.json (label order) and, when all of them would overflow ``max_bytes``,
    the number kept: the classes with the most rows (ties: label order) that fit.

    Two classes share one AUC: ranking by the logit, class 0's curve is class 1's mirrored.
    ``scores``: ``metrics.RankingScores(logits)`` when the caller has them.
    """
    n_classes = len(label_names)
    quality = metrics.class_scores(labels, metrics.predicted_labels(logits), n_classes)
    aucs = metrics.class_aucs(metrics.RankingScores(logits) if scores is None else scores, labels)
    aucs = np.repeat(aucs, n_classes) if logits.ndim == 1 else aucs
    rows = [
        {
            "class": name,
            "support": int(quality["support"][c]),
            **{key: round(float(quality[key][c]), SCORE_DECIMALS) for key in ("precision", "recall", "f1")},
            "auc": None if np.isnan(aucs[c]) else round(float(aucs[c]), SCORE_DECIMALS),
        }
        for c, name in enumerate(label_names)
    ]
    if rows_bytes(rows) <= max_bytes:
        return rows, None
    sizes = np.array([len(_row_line(row).encode("utf-8")) + 2 for row in rows])
    order = most_frequent(labels, n_classes)
    kept = int(np.searchsorted(np.cumsum(sizes[order]), max_bytes - 4, side="right"))
    return [rows[c] for c in sorted(order[:kept].tolist())], kept


# ---------------------------------------------------------------- the test split's files


def write_test_plots(
    data_dir: Path, png_dir: Path, logits: Logits, labels: np.ndarray, label_names: list[str]
) -> list[str]:
    """confusion.json, roc.json and classes.json in ``data_dir`` (for `dvc plots`, git), confusion.png
    and roc.png in ``png_dir``. Returns the classes that have no ROC curve (they are logged too)."""
    data_dir, png_dir = Path(data_dir), Path(png_dir)
    logits, labels = _as_numpy(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no rows to plot: the split is empty")
    if not np.isfinite(logits).all():
        raise ValueError("the logits hold NaN or infinity")
    n_classes = len(label_names)
    predicted = metrics.predicted_labels(logits)
    scores = metrics.RankingScores(logits)  # once, for the curves and the AUCs
    curves, skipped = roc_curves(logits, labels, label_names, scores=scores)
    if skipped:
        log.warning(
            "evaluate: no ROC curve for class %s: the test split has no row of it, or only rows of it",
            name_list(skipped),
        )
    if logits.ndim == 2 and n_classes - len(skipped) > MAX_ROC_CLASSES:
        log.info(
            "evaluate: roc.json: the curves of the %d classes with the most test rows, of %d: %s",
            len(curves),
            n_classes,
            name_list([curve.label for curve in curves]),
        )
    confusion, kept = confusion_rows(labels, predicted, label_names)
    if kept is not None:
        log.info(
            "evaluate: confusion.json: the %d classes with the most test rows; the other %d are counted as %r "
            "(all %d classes would exceed %d bytes)",
            kept,
            n_classes - kept,
            folded_name(label_names),
            n_classes,
            CONFUSION_BYTES,
        )
    per_class, kept = class_rows(logits, labels, label_names, scores=scores)
    if kept is not None:
        log.info(
            "evaluate: classes.json: the %d classes with the most test rows, of %d (all would exceed %d bytes)",
            kept,
            n_classes,
            CLASSES_BYTES,
        )
    write_rows(data_dir / CONFUSION_FILE, confusion)
    write_rows(data_dir / ROC_FILE, roc_rows(curves))
    write_rows(data_dir / CLASSES_FILE, per_class)
    if n_classes <= TEXT_CLASSES:
        matrix = metrics.confusion_matrix(labels, predicted, n_classes)
        plot_confusion(png_dir / CONFUSION_PNG, matrix, label_names, "Confusion matrix (test)")
    else:
        shown = np.sort(most_frequent(labels, n_classes)[:HEATMAP_CLASSES])
        counts = dense_confusion(labels, predicted, shown, n_classes)
        support = np.bincount(labels, minlength=n_classes)[shown]
        shares = counts / np.maximum(support, 1)[:, None]  # a row of no test row stays 0
        which = "" if len(shown) == n_classes else f"the {len(shown)} most frequent of {n_classes} classes, "
        plot_confusion_shares(
            png_dir / CONFUSION_PNG,
            shares,
            [label_names[c] for c in shown.tolist()] if len(shown) <= TICK_CLASSES else None,
            most_confused_pairs(labels, predicted, label_names),
            f"Confusion (test): {which}share of each actual class's rows",
        )
    if logits.ndim == 1:
        title = "ROC (test)"
    elif len(curves) < n_classes - len(skipped):
        title = f"ROC, the {len(curves)} most frequent classes against the rest (test)"
    else:
        title = "ROC, each class against the rest (test)"
    plot_roc(png_dir / ROC_PNG, [(c.label, c.fpr, c.tpr, c.auc) for c in curves], title)
    return skipped
