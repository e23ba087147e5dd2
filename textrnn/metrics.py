"""Accuracy, loss, macro-F1, the confusion matrix and ROC curves of a split from its logits, in numpy.

Shared by the RNN and the baseline. A numpy twin of ``textrnn.model``'s ``predicted_labels`` and
``loss_function``, and of the sklearn.metrics functions the stages need (tests check that they
agree to the bit), so that evaluate needs neither sklearn (2 s to import) nor, here, torch.
"""

from __future__ import annotations

import numpy as np

DECIMALS = 6


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """One logit per row (two classes): class 1 where it is positive; k logits: the argmax (first on ties)."""
    return (logits > 0).astype(np.int64) if logits.ndim == 1 else logits.argmax(axis=1).astype(np.int64)


def mean_loss(logits: np.ndarray, labels: np.ndarray) -> float:
    """Binary cross-entropy on one logit per row, cross-entropy on k logits, averaged, in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim == 1:
        # log(1 + e^z) - y z, the stable form of BCEWithLogitsLoss
        return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))
    top = logits.max(axis=1, keepdims=True)
    log_normalizer = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return float(np.mean(log_normalizer - logits[np.arange(len(labels)), labels]))


def split_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """``accuracy`` and ``loss`` (and ``f1_macro`` for k logits per row), rounded to 6 decimals.

    Macro-F1 averages over the classes that occur in the labels or the predictions. Raises
    ValueError on an empty split or non-finite logits: no metric is ever NaN.
    """
    logits, labels = np.asarray(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no rows to score: the split is empty")
    if logits.shape[0] != len(labels) or logits.ndim not in (1, 2):
        raise ValueError(f"logits of shape {logits.shape} do not fit {len(labels)} labels")
    if not np.isfinite(logits).all():
        raise ValueError("the logits hold NaN or infinity")
    predicted = predicted_labels(logits)
    metrics = {"accuracy": float(np.mean(predicted == labels)), "loss": mean_loss(logits, labels)}
    if logits.ndim == 2:
        metrics["f1_macro"] = f1_macro(labels, predicted)
    return {name: round(value, DECIMALS) for name, value in metrics.items()}


def f1_macro(labels: np.ndarray, predicted: np.ndarray) -> float:
    """sklearn's ``f1_score(labels, predicted, labels=union of both, average="macro", zero_division=0)``."""
    classes = np.union1d(labels, predicted)
    true_positives = np.array([np.sum((labels == c) & (predicted == c)) for c in classes], dtype=np.float64)
    true = np.array([np.sum(labels == c) for c in classes], dtype=np.float64)
    guessed = np.array([np.sum(predicted == c) for c in classes], dtype=np.float64)
    return float(np.mean(2.0 * true_positives / (true + guessed)))  # every class is in one or the other


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts [actual, predicted] for classes 0..n_classes-1: sklearn's ``confusion_matrix(labels=range(n))``."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    return np.bincount(labels * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct threshold, corners only: the fpr and tpr of
    sklearn's ``roc_curve(positive, scores, drop_intermediate=True)``, computed the same way."""
    order = np.argsort(scores, kind="stable")[::-1]
    scores, positive = scores[order], np.asarray(positive)[order]
    last_of_each_score = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]
    true_positives = np.cumsum(positive, dtype=np.float64)[last_of_each_score]
    false_positives = 1 + last_of_each_score.astype(np.float64) - true_positives
    if len(false_positives) > 2:
        corners = np.r_[True, np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2)), True]
        false_positives, true_positives = false_positives[corners], true_positives[corners]
    false_positives, true_positives = np.r_[0.0, false_positives], np.r_[0.0, true_positives]
    return false_positives / false_positives[-1], true_positives / true_positives[-1]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """The area under a ROC curve (fpr increasing), by the trapezoidal rule as sklearn's ``auc``."""
    return float(np.trapezoid(tpr, fpr))
