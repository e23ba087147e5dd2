"""Per-epoch logging: DVCLive files for `dvc plots`, a log line for people, PNG curves at the end."""

from __future__ import annotations

import logging
from pathlib import Path

from dvclive import Live

from textrnn.plots import plot_curves
from textrnn.training import EpochStats, TrainResult

log = logging.getLogger("train")


class EpochReporter:
    """Called after each epoch: logs every per-epoch metric with step = epoch."""

    def __init__(self, live_dir: Path, epochs: int):
        self.live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
        self.epochs = epochs

    def __call__(self, stats: EpochStats) -> None:
        self.live.step = stats.epoch
        for name, value in stats.metrics.items():
            self.live.log_metric(name, value)
        self.live.make_summary()
        values = " | ".join(f"{name} {value:.4f}" for name, value in stats.metrics.items())
        skipped = f", {stats.skipped_steps} non-finite steps skipped" if stats.skipped_steps else ""
        log.info("epoch %d/%d: %s | %.1f s, %.0f tokens/s%s", stats.epoch, self.epochs, values, stats.seconds,
                 stats.tokens / stats.seconds, skipped)


    def finish(self, result: TrainResult) -> None:
        """The summary (plots/training/metrics.json) holds the best epoch's metrics: the checkpoint's epoch."""
        best = result.history[result.best_epoch - 1]
        summary: dict = {"best_epoch": best.epoch}
        for name, value in best.metrics.items():
            split, metric = name.split("/", 1)
            summary.setdefault(split, {})[metric] = value
        self.live.summary = summary
        self.live.step = best.epoch  # DVCLive writes it as "step"
        self.live.make_summary()


def plot_history(plots_dir: Path, history: list[EpochStats], best_epoch: int) -> None:
    """One PNG per metric (loss, accuracy, ...), train and valid on one chart."""
    epochs = [s.epoch for s in history]
    names = sorted({name.split("/", 1)[1] for name in history[0].metrics})
    splits = sorted({name.split("/", 1)[0] for name in history[0].metrics}, key=["train", "valid"].index)
    for metric in names:
        curves = {split: [s.metrics[f"{split}/{metric}"] for s in history] for split in splits}
        plot_curves(Path(plots_dir) / f"{metric}.png", epochs, curves, metric, best_epoch)
