"""Accuracy, loss, macro-F1, per-class scores, the confusion cells and ROC curves of a split from
its logits, in numpy.

Shared by the RNN and the baseline. A numpy twin of ``textrnn.model``'s ``predicted_labels`` and
``loss_function``, and of the sklearn.metrics functions the stages need (tests check that they
agree), so that evaluate needs neither sklearn (a slow import: docs/decisions.md) nor, here, torch. What runs for
every number of classes k allocates neither k x k nor a float64 copy of [n, k] logits: the
confusion is kept as its non-zero cells (``confusion_matrix`` is for the few classes a figure
shows), the log-softmax is made a column at a time (``RankingScores``).
"""

from __future__ import annotations

import numpy as np

DECIMALS = 6
# Predictions this concentrated on one class, on labels that are not, mean a model that learnt
# (almost) nothing beyond the class shares.
ONE_CLASS_SHARE = 0.98


def predicted_labels(logits: np.ndarray) -> np.ndarray:
    """One logit per row (two classes): class 1 where it is positive; k logits: the argmax (first on ties)."""
    return (logits > 0).astype(np.int64) if logits.ndim == 1 else logits.argmax(axis=1).astype(np.int64)


def mean_loss(logits: np.ndarray, labels: np.ndarray, scores: RankingScores | None = None) -> float:
    """Binary cross-entropy on one logit per row, cross-entropy on k logits, averaged, in float64.
    ``scores``: ``RankingScores(logits)`` when the caller has them."""
    if np.ndim(logits) == 1:
        logits = np.asarray(logits, dtype=np.float64)
        # log(1 + e^z) - y z, the stable form of BCEWithLogitsLoss
        return float(np.mean(np.logaddexp(0.0, logits) - labels * logits))
    scores = RankingScores(logits) if scores is None else scores
    picked = np.asarray(scores.logits[np.arange(len(labels)), labels], dtype=np.float64)
    return float(np.mean(scores.top + scores.log_sum - picked))


# Rows of k logits turned to float64 at a time: the [n, k] matrix is never copied whole.
ROW_CHUNK = 4096


class RankingScores:
    """Scores that rank rows as the class probabilities do, in float64 (float32 probabilities
    saturate at 1 and tie), one column at a time: the logit of class 1 for one logit per row, else
    the log-softmax of each class. Holds [n] per-row normalizers, never a float64 copy of [n, k]."""

    def __init__(self, logits: np.ndarray):
        self.logits = np.asarray(logits)  # [n] or [n, k], float32 or float64 (read as float64 exactly)
        if self.logits.ndim == 1:
            self.classes = np.array([1])
            return
        n, k = self.logits.shape
        self.classes = np.arange(k)
        self.top, self.log_sum = np.empty(n), np.empty(n)  # row max, log sum exp(row - max)
        for start in range(0, n, ROW_CHUNK):
            rows = np.asarray(self.logits[start : start + ROW_CHUNK], dtype=np.float64)
            top = rows.max(axis=1, keepdims=True)
            self.top[start : start + len(rows)] = top[:, 0]
            self.log_sum[start : start + len(rows)] = np.log(np.exp(rows - top).sum(axis=1))

    def column(self, index: int) -> np.ndarray:
        """[n] float64 scores of ``self.classes[index]``."""
        if self.logits.ndim == 1:
            return np.asarray(self.logits, dtype=np.float64)
        return np.asarray(self.logits[:, index], dtype=np.float64) - self.top - self.log_sum


def split_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """The metrics of a split, rounded to 6 decimals, for two classes and for k alike:

    - ``accuracy``, ``loss``;
    - ``f1_macro``: the mean F1 over the classes that occur in the labels or the predictions;
    - ``majority``: the share of the split's most frequent class (the accuracy of always guessing it);
    - ``roc_auc`` (two classes: class 1 by its logit) or ``roc_auc_macro`` (k: the mean one-vs-rest
      AUC of the classes that have a curve, i.e. some rows of the class and some of others);
      None when no class has one (a split of one class).

    Raises ValueError on an empty split or non-finite logits: no metric is ever NaN.
    """
    logits, labels = np.asarray(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no rows to score: the split is empty")
    if logits.shape[0] != len(labels) or logits.ndim not in (1, 2):
        raise ValueError(f"logits of shape {logits.shape} do not fit {len(labels)} labels")
    if not np.isfinite(logits).all():
        raise ValueError("the logits hold NaN or infinity")
    predicted = predicted_labels(logits)
    scores = RankingScores(logits)
    metrics: dict[str, float | None] = {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": mean_loss(logits, labels, scores),
        "f1_macro": f1_macro(labels, predicted),
        "majority": majority_share(labels),
    }
    aucs = class_aucs(scores, labels)
    defined = aucs[~np.isnan(aucs)]
    auc_name = "roc_auc" if logits.ndim == 1 else "roc_auc_macro"
    metrics[auc_name] = float(np.mean(defined)) if len(defined) else None
    return {name: None if value is None else round(value, DECIMALS) for name, value in metrics.items()}


def majority_share(labels: np.ndarray) -> float:
    """The share of the most frequent class among ``labels`` (non-empty)."""
    return float(np.bincount(labels).max() / len(labels))


def f1_macro(labels: np.ndarray, predicted: np.ndarray) -> float:
    """sklearn's ``f1_score(labels, predicted, labels=union of both, average="macro", zero_division=0)``."""
    n_classes = int(max(labels.max(), predicted.max())) + 1
    true, guessed, true_positives = class_counts(labels, predicted, n_classes)
    occurs = (true + guessed) > 0
    return float(np.mean(2.0 * true_positives[occurs] / (true[occurs] + guessed[occurs])))


def class_counts(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """Per class c in 0..n_classes-1, float64 [n_classes] each: rows labelled c, rows predicted c, rows both."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    true = np.bincount(labels, minlength=n_classes).astype(np.float64)
    guessed = np.bincount(predicted, minlength=n_classes).astype(np.float64)
    true_positives = np.bincount(labels[labels == predicted], minlength=n_classes).astype(np.float64)
    return true, guessed, true_positives


def class_scores(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, np.ndarray]:
    """``support`` (int64), ``precision``, ``recall``, ``f1`` [n_classes] of each class: sklearn's
    ``precision_recall_fscore_support(labels=range(n_classes), zero_division=0)``."""
    true, guessed, true_positives = class_counts(labels, predicted, n_classes)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(guessed > 0, true_positives / guessed, 0.0)
        recall = np.where(true > 0, true_positives / true, 0.0)
        f1 = np.where(true + guessed > 0, 2.0 * true_positives / (true + guessed), 0.0)
    return {"support": true.astype(np.int64), "precision": precision, "recall": recall, "f1": f1}


def one_class_warning(labels: np.ndarray, predicted: np.ndarray, label_names: list[str], split: str) -> str | None:
    """A one-line warning when at least ONE_CLASS_SHARE of ``split``'s rows are predicted as one class
    while the labels are more mixed than that (a model that learnt little beyond the class shares);
    else None."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    guesses = np.bincount(predicted)
    share = guesses.max() / len(predicted)
    majority = majority_share(labels)
    if share < ONE_CLASS_SHARE or majority >= ONE_CLASS_SHARE:
        return None
    return (
        f"the model predicts {label_names[int(guesses.argmax())]!r} for {share:.1%} of the {split} rows, whose "
        f"most frequent class {label_names[int(np.bincount(labels).argmax())]!r} is only {majority:.1%} of them: "
        f"it has learnt little beyond the class shares (see f1_macro)"
    )


def has_curve(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes] booleans: the split has rows of the class and rows of other classes."""
    support = np.bincount(np.asarray(labels, dtype=np.int64), minlength=n_classes)
    return (support > 0) & (support < len(labels))


def class_aucs(scores: RankingScores, labels: np.ndarray) -> np.ndarray:
    """The ROC AUC of each of ``scores.classes`` against the rest, NaN where the class has no curve;
    equal to sklearn's ``roc_auc_score(labels == c, score of c)``. One sort per class."""
    defined = has_curve(labels, int(max(scores.classes.max(), np.max(labels))) + 1)
    aucs = np.full(len(scores.classes), np.nan)
    for index, label in enumerate(scores.classes):
        if defined[label]:
            aucs[index] = auc(*roc_curve(labels == label, scores.column(index)))
    return aucs


def confusion_cells(labels: np.ndarray, predicted: np.ndarray, n_classes: int) -> tuple[np.ndarray, ...]:
    """The non-zero cells of the confusion matrix: (actual, predicted, count) int64 arrays, in
    label order (by actual, then predicted). Memory O(rows), never O(n_classes²)."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    codes, counts = np.unique(labels * n_classes + predicted, return_counts=True)
    actual, guessed = np.divmod(codes, n_classes)
    return actual, guessed, counts.astype(np.int64)


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
