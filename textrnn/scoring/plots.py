"""Matplotlib PNGs for people; DVC renders the same data from the TSV/JSON files."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no display, no global figure registry, a lighter import

from textrnn.core.filesystem import atomic_path

log = logging.getLogger("evaluate")
MISSING_GLYPH = re.compile(r"^Glyph (\d+) (.* )?missing from")

# Characters of a class name drawn on the many-class figure: longer ones (an intent's sentence) are
# cut, else their labels take the figure's width and the layout gives up.
NAME_CHARS = 30


def short_name(name: str) -> str:
    return name if len(name) <= NAME_CHARS else name[: NAME_CHARS - 1] + "\u2026"


def drawn(name: str) -> str:
    """A class name as matplotlib draws it as written: text between two ``$`` would be read as TeX."""
    return name.replace("$", "\\$")


def _save(figure: Figure, path: Path) -> None:
    with atomic_path(path) as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    # Matplotlib warns once per missing glyph (two lines each, naming its own source line): one line instead.
    lacking = []
    for warning in caught:
        missing = MISSING_GLYPH.search(str(warning.message))
        if missing is None:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        elif chr(int(missing.group(1))) not in lacking:
            lacking.append(chr(int(missing.group(1))))
    if lacking:
        log.warning(
            "evaluate: %s: the font lacks characters of the class names (%s); they are drawn as boxes there "
            "(the JSON files and `dvc plots show` keep them)",
            Path(path).name,
            ", ".join(lacking),
        )


def plot_curves(
    path: Path, epochs: Sequence[int], curves: Mapping[str, Sequence[float]], ylabel: str, best_epoch: int
) -> None:
    """One curve per split (train, valid, ...) on one chart, as the course notebook plots its losses."""
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for split, values in curves.items():
        axes.plot(epochs, values, marker="o", label=split)
    axes.axvline(best_epoch, color="grey", linestyle=":", label=f"best (epoch {best_epoch})")
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_xticks(list(epochs))
    axes.legend()
    axes.grid(alpha=0.3)
    _save(figure, path)


def plot_confusion(path: Path, matrix: np.ndarray, label_names: list[str], title: str) -> None:
    figure = Figure(figsize=(1.2 * len(label_names) + 2.5, 1.2 * len(label_names) + 2))
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    axes.set_xticks(range(len(label_names)), [drawn(name) for name in label_names])
    axes.set_yticks(range(len(label_names)), [drawn(name) for name in label_names])
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    _save(figure, path)


def plot_confusion_shares(
    path: Path,
    shares: np.ndarray,
    tick_names: list[str] | None,
    pairs: Sequence[tuple[str, str, int]],
    title: str,
) -> None:
    """Many classes: a heatmap of ``shares`` [actual, predicted] (each row's share of that class's
    rows, no text in the cells; class names on the axes when ``tick_names`` is given, else class
    positions) beside a bar chart of the most frequent mistakes ``pairs`` (actual, predicted, count).
    The figure's size and its number of artists do not grow with the number of classes."""
    figure = Figure(figsize=(16, 7), layout="constrained")  # constrained: the bars' long names get their room
    heatmap, bars = figure.subplots(1, 2)
    image = heatmap.imshow(shares, cmap="Blues", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    figure.colorbar(image, ax=heatmap, label="share of the actual class's rows")
    if tick_names is not None:
        tick_names = [drawn(short_name(name)) for name in tick_names]
        heatmap.set_xticks(range(len(tick_names)), tick_names, rotation=90, fontsize=6)
        heatmap.set_yticks(range(len(tick_names)), tick_names, fontsize=6)
        heatmap.set_xlabel("predicted")
        heatmap.set_ylabel("actual")
    else:
        heatmap.set_xlabel("predicted (classes in label order)")
        heatmap.set_ylabel("actual (classes in label order)")
    heatmap.set_title(title, fontsize=10)
    if pairs:
        names = [f"{drawn(short_name(actual))} \u2192 {drawn(short_name(predicted))}" for actual, predicted, _ in pairs]
        bars.barh(range(len(pairs)), [count for _, _, count in pairs], color="tab:blue")
        bars.set_yticks(range(len(pairs)), names, fontsize=7)
        bars.invert_yaxis()  # the most frequent mistake on top
        bars.set_xlabel("test rows")
        bars.set_title(f"The {len(pairs)} most frequent mistakes (actual \u2192 predicted)", fontsize=10)
    else:
        bars.set_axis_off()
        bars.text(0.5, 0.5, "no mistake", ha="center", va="center")
    _save(figure, path)


def plot_roc(path: Path, curves: Sequence[tuple[str, np.ndarray, np.ndarray, float]], title: str) -> None:
    """ROC curves, one per (class name, fpr, tpr, AUC), on one chart."""
    figure = Figure(figsize=(4.5, 4.5))
    axes = figure.subplots()
    for name, fpr, tpr, auc in curves:
        axes.plot(fpr, tpr, label=f"{drawn(name)} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title(title)
    if curves:
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, "no curve: the split has a single class", ha="center", va="center")
    _save(figure, path)
