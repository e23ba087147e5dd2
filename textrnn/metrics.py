"""Accuracy, loss and macro-F1 of a split from its logits, in numpy: shared by the RNN and the baseline.

A numpy twin of ``textrnn.model``'s ``predicted_labels`` and ``loss_function`` (tests check they
agree), so that the baseline stage needs neither torch nor the model's code.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

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
        metrics["f1_macro"] = float(
            f1_score(labels, predicted, labels=np.union1d(labels, predicted), average="macro", zero_division=0.0)
        )
    return {name: round(value, DECIMALS) for name, value in metrics.items()}
