"""Per-epoch logging: DVCLive files for `dvc plots`, a log line for people, PNG curves and the best epoch's summary.

An epoch's metrics are a dict named ``split/metric`` (``train/loss``, ``valid/accuracy``, ...);
everything below iterates over it, so a new metric needs no change here.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from dvclive import Live

from textrnn.core.filesystem import write_json
from textrnn.scoring.plots import plot_curves

if TYPE_CHECKING:  # only its fields are read: the reporter does not need the training code
    from textrnn.training.loop import EpochStats

log = logging.getLogger("train")

SUMMARY_FILE = "metrics.json"


def by_split(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{"train/loss": x}`` as ``{"train": {"loss": x}}``."""
    nested: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        split, _, metric = name.rpartition("/")
        nested.setdefault(split, {})[metric] = value
    return nested


class EpochReporter:
    """Called after each epoch: logs every metric with step = epoch. ``finish`` writes the summary."""

    def __init__(self, live_dir: Path, epochs: int):
        self.live_dir = Path(live_dir)
        self.live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
        self.epochs = epochs
        self.logged: dict[int, dict[str, float]] = {}

    def __call__(self, stats: EpochStats) -> None:
        self.logged[stats.epoch] = dict(stats.metrics)
        self.live.step = stats.epoch
        for name, value in stats.metrics.items():
            self.live.log_metric(name, value)
        values = " | ".join(
            f"{split} " + " ".join(f"{metric} {value:.4f}" for metric, value in metrics.items())
            for split, metrics in by_split(stats.metrics).items()
        )
        skipped = f", {stats.skipped_steps} non-finite steps skipped" if stats.skipped_steps else ""
        log.info(
            "epoch %d/%d: %s | %.1f s, %.0f tokens/s%s",
            stats.epoch,
            self.epochs,
            values,
            stats.seconds,
            stats.tokens / stats.seconds,
            skipped,
        )

    def finish(self, best_epoch: int) -> None:
        """Write the summary: the metrics of ``best_epoch``, the checkpoint's epoch (not the last one)."""
        if best_epoch not in self.logged:
            raise ValueError(f"epoch {best_epoch} was never reported (reported: {sorted(self.logged)})")
        write_json(
            self.live_dir / SUMMARY_FILE, {"best_epoch": best_epoch, **by_split(self.logged[best_epoch])}, indent=4
        )


def plot_history(plots_dir: Path, history: list[EpochStats], best_epoch: int) -> None:
    """One PNG per metric (loss, accuracy, ...), every split on one chart."""
    epochs = [s.epoch for s in history]
    metrics = sorted({name.split("/", 1)[1] for name in history[0].metrics})
    splits = list(by_split(history[0].metrics))
    for metric in metrics:
        curves = {split: [s.metrics[f"{split}/{metric}"] for s in history] for split in splits}
        plot_curves(Path(plots_dir) / f"{metric}.png", epochs, curves, metric, best_epoch)
