"""Per-epoch logging: DVCLive files for `dvc plots`, a log line for people, PNG curves and the best epoch's summary.

The epoch's metrics are a dict named ``split/metric`` (``train/loss``, ``valid/accuracy``, ...);
every output below iterates over it.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from dvclive import Live

from textrnn.io import write_json
from textrnn.plots import plot_curves

if TYPE_CHECKING:  # only its fields are read: the reporter does not need the training code
    from textrnn.training import EpochStats

log = logging.getLogger("train")

SUMMARY_FILE = "metrics.json"


def epoch_metrics(stats: EpochStats) -> dict[str, float]:
    """The epoch's metrics as ``{"split/metric": value}``."""
    return {"train/loss": stats.train_loss, "train/accuracy": stats.train_accuracy,
            "valid/loss": stats.valid_loss, "valid/accuracy": stats.valid_accuracy}


def _by_split(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    nested: dict[str, dict[str, float]] = defaultdict(dict)
    for name, value in metrics.items():
        split, _, metric = name.rpartition("/")
        nested[split][metric] = value
    return dict(nested)


class EpochReporter:
    """Called after each epoch: logs every metric with step = epoch. ``finish`` writes the summary."""

    def __init__(self, live_dir: Path, epochs: int):
        self.live_dir = Path(live_dir)
        self.live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
        self.epochs = epochs
        self.logged: dict[int, dict[str, float]] = {}

    def __call__(self, stats: EpochStats) -> None:
        metrics = epoch_metrics(stats)
        self.logged[stats.epoch] = metrics
        self.live.step = stats.epoch
        for name, value in metrics.items():
            self.live.log_metric(name, value)
        splits = " | ".join(
            f"{split} " + " ".join(f"{metric} {value:.4f}" for metric, value in values.items())
            for split, values in _by_split(metrics).items()
        )
        skipped = f", {stats.skipped_steps} non-finite steps skipped" if stats.skipped_steps else ""
        log.info("epoch %d/%d: %s | %.1f s, %.0f tokens/s%s", stats.epoch, self.epochs, splits,
                 stats.seconds, stats.tokens / stats.seconds, skipped)

    def finish(self, best_epoch: int) -> None:
        """``metrics.json``: the metrics of ``best_epoch`` (the checkpoint's epoch), not of the last one."""
        if best_epoch not in self.logged:
            raise ValueError(f"epoch {best_epoch} was never reported (reported: {sorted(self.logged)})")
        write_json(self.live_dir / SUMMARY_FILE, {"best_epoch": best_epoch, **_by_split(self.logged[best_epoch])})


def plot_history(plots_dir: Path, history: list[EpochStats], best_epoch: int) -> None:
    """One PNG per metric (``loss.png``, ``accuracy.png``, ...), a curve per split."""
    epochs = [s.epoch for s in history]
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for stats in history:
        for split, values in _by_split(epoch_metrics(stats)).items():
            for metric, value in values.items():
                series[metric][split].append(value)
    for metric, curves in series.items():
        plot_curves(Path(plots_dir) / f"{metric}.png", epochs, dict(curves), metric, best_epoch)
