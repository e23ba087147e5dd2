"""Metrics of a trained model on the encoded splits."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score, roc_curve

from textrnn.model import loss_function, predicted_labels, probabilities
from textrnn.plots import plot_confusion, plot_roc


def split_metrics(logits: torch.Tensor, labels: np.ndarray) -> Dict[str, float]:
    """Accuracy and mean loss (and macro-F1 for more than two classes), rounded to 6 decimals."""
    binary = logits.dim() == 1
    target = torch.from_numpy(labels)
    loss = loss_function(2 if binary else logits.shape[1])(logits.double(), target).item() if len(labels) else float("nan")
    predicted = predicted_labels(logits).numpy()
    metrics = {"accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"), "loss": loss}
    if not binary:
        metrics["f1_macro"] = float(f1_score(labels, predicted, average="macro", labels=range(logits.shape[1])))
    return {name: round(value, 6) for name, value in metrics.items()}


def log_test_plots(live, plots_dir: Path, logits: torch.Tensor, labels: np.ndarray, label_names: List[str]) -> None:
    """Confusion matrix (and ROC for two classes) of the test split: DVCLive JSON for DVC, PNG for people."""
    predicted = predicted_labels(logits).numpy()
    names = np.array(label_names)
    live.log_sklearn_plot("confusion_matrix", names[labels], names[predicted], name="confusion_matrix",
                          title="Confusion matrix (test)")
    matrix = confusion_matrix(labels, predicted, labels=range(len(label_names)))
    plot_confusion(Path(plots_dir) / "confusion.png", matrix, label_names, "Confusion matrix (test)")
    if len(label_names) == 2:
        positive = probabilities(logits)[:, 1].numpy()
        live.log_sklearn_plot("roc", labels, positive, name="roc", title="ROC (test)")
        fpr, tpr, _ = roc_curve(labels, positive)
        plot_roc(Path(plots_dir) / "roc.png", fpr, tpr, roc_auc_score(labels, positive), "ROC (test)")
