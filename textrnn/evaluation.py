"""Metrics and plot data of a model's logits on a split: small strict JSON for DVC, PNGs for people.

Plot data files (one JSON object per line, so that a git diff shows the rows that changed)::

    confusion.json  [{"actual": name, "predicted": name, "count": int}, ...]   k * k rows, label order
    roc.json        [{"class": name, "fpr": float, "tpr": float}, ...]       one curve per class, from (0, 0) to (1, 1)

Two classes give the ROC curve of class 1; k classes give one one-vs-rest curve per class. A class
that has no row in the split, or that every row belongs to, has no curve (its rates would be 0/0).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from textrnn import metrics
from textrnn.io import atomic_path
from textrnn.plots import plot_confusion, plot_roc

log = logging.getLogger("textrnn")

CONFUSION_FILE, ROC_FILE = "confusion.json", "roc.json"
CONFUSION_PNG, ROC_PNG = "confusion.png", "roc.png"
# Points of roc.json: at most MAX_CURVE_POINTS per curve and about MAX_ROC_POINTS in all, so that the
# file stays small for any number of classes. A curve is drawn at a few hundred pixels.
MAX_CURVE_POINTS = 200
MAX_ROC_POINTS = 1000
MIN_CURVE_POINTS = 20
RATE_DECIMALS = 4

if TYPE_CHECKING:
    import torch

Logits = Union["torch.Tensor", np.ndarray]  # a tensor is read as float64 numpy; torch itself is not needed here


def _as_numpy(logits: Logits) -> np.ndarray:
    if hasattr(logits, "detach"):  # a torch tensor
        logits = logits.detach().cpu().double().numpy()
    return np.asarray(logits, dtype=np.float64)


def split_metrics(logits: Logits, labels: np.ndarray) -> dict[str, float]:
    """``accuracy``, ``loss`` (and ``f1_macro`` for k logits) of logits [n] (two classes) or [n, k].

    See textrnn.metrics.split_metrics: rounded, never NaN, ValueError on an empty split.
    """
    return metrics.split_metrics(_as_numpy(logits), labels)


@dataclass
class Curve:
    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float


def ranking_scores(logits: np.ndarray) -> np.ndarray:
    """Scores [n, classes] that rank rows as the class probabilities do: the logit of class 1 for
    one logit per row, else the log-softmax, in float64 (float32 probabilities saturate at 1 and tie)."""
    if logits.ndim == 1:
        return logits[:, None]
    top = logits.max(axis=1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))


def roc_curves(logits: Logits, labels: np.ndarray, label_names: list[str]) -> tuple[list[Curve], list[str]]:
    """Full ROC curves (sklearn's, corners only) and the names of the classes that have none.

    Two classes: the curve of class 1. k classes: class c against the rest, for each c.
    """
    logits, labels = _as_numpy(logits), np.asarray(labels)
    scores = ranking_scores(logits)
    classes = [1] if logits.ndim == 1 else range(len(label_names))
    curves, skipped = [], []
    for column, label in enumerate(classes):
        positive = labels == label
        if positive.all() or not positive.any():
            skipped.append(label_names[label])
            continue
        fpr, tpr = metrics.roc_curve(positive, scores[:, column])
        curves.append(Curve(label_names[label], fpr, tpr, metrics.auc(fpr, tpr)))
    return curves, skipped


def thin_curve(fpr: np.ndarray, tpr: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` of the curve's corners, evenly spaced along them, both ends kept,
    rounded to RATE_DECIMALS with repeated points dropped."""
    if len(fpr) > max_points:
        keep = np.unique(np.linspace(0, len(fpr) - 1, max_points).round().astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    fpr, tpr = fpr.round(RATE_DECIMALS), tpr.round(RATE_DECIMALS)
    repeated = np.r_[False, (np.diff(fpr) == 0) & (np.diff(tpr) == 0)]
    return fpr[~repeated], tpr[~repeated]


def points_per_curve(curves: int) -> int:
    return max(MIN_CURVE_POINTS, min(MAX_CURVE_POINTS, MAX_ROC_POINTS // max(curves, 1)))


def roc_rows(curves: list[Curve]) -> list[dict[str, Any]]:
    """The rows of roc.json: each curve thinned to ``points_per_curve``."""
    rows = []
    for curve in curves:
        fpr, tpr = thin_curve(curve.fpr, curve.tpr, points_per_curve(len(curves)))
        rows.extend({"class": curve.label, "fpr": float(x), "tpr": float(y)} for x, y in zip(fpr, tpr, strict=True))
    return rows


def confusion_rows(matrix: np.ndarray, label_names: list[str]) -> list[dict[str, Any]]:
    """The rows of confusion.json: one per (actual, predicted) cell, in label order, zeros included."""
    return [
        {"actual": actual, "predicted": predicted, "count": int(matrix[i, j])}
        for i, actual in enumerate(label_names)
        for j, predicted in enumerate(label_names)
    ]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """A strict JSON list, one row per line, atomically."""
    lines = ",\n".join(json.dumps(row, allow_nan=False, ensure_ascii=False) for row in rows)
    with atomic_path(path) as tmp:
        tmp.write_text(f"[\n{lines}\n]\n" if rows else "[]\n", encoding="utf-8")


def write_test_plots(
    data_dir: Path, png_dir: Path, logits: Logits, labels: np.ndarray, label_names: list[str]
) -> list[str]:
    """confusion.json and roc.json in ``data_dir`` (for `dvc plots`), confusion.png and roc.png in
    ``png_dir``. Returns the classes that have no ROC curve (they are logged too)."""
    data_dir, png_dir = Path(data_dir), Path(png_dir)
    logits, labels = _as_numpy(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no rows to plot: the split is empty")
    if not np.isfinite(logits).all():
        raise ValueError("the logits hold NaN or infinity")
    matrix = metrics.confusion_matrix(labels, metrics.predicted_labels(logits), len(label_names))
    curves, skipped = roc_curves(logits, labels, label_names)
    if skipped:
        log.warning(
            "evaluate: no ROC curve for class %s: the test split has no row of it, or only rows of it",
            ", ".join(repr(name) for name in skipped),
        )
    write_rows(data_dir / CONFUSION_FILE, confusion_rows(matrix, label_names))
    write_rows(data_dir / ROC_FILE, roc_rows(curves))
    plot_confusion(png_dir / CONFUSION_PNG, matrix, label_names, "Confusion matrix (test)")
    title = "ROC, each class against the rest (test)" if logits.ndim == 2 else "ROC (test)"
    plot_roc(png_dir / ROC_PNG, [(c.label, c.fpr, c.tpr, c.auc) for c in curves], title)
    return skipped
