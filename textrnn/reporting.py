"""Per-epoch logging: DVCLive files for `dvc plots`, a log line for people, PNG curves at the end."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List

from dvclive import Live

from textrnn.plots import plot_curves
from textrnn.training import EpochStats

log = logging.getLogger("train")


class EpochReporter:
    """Called after each epoch: logs train/valid loss and accuracy with step = epoch."""

    def __init__(self, live_dir: Path, epochs: int):
        self.live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
        self.epochs = epochs

    def __call__(self, stats: EpochStats) -> None:
        self.live.step = stats.epoch
        for split in ("train", "valid"):
            self.live.log_metric(f"{split}/loss", getattr(stats, f"{split}_loss"))
            self.live.log_metric(f"{split}/accuracy", getattr(stats, f"{split}_accuracy"))
        self.live.make_summary()
        skipped = f", {stats.skipped_steps} non-finite steps skipped" if stats.skipped_steps else ""
        log.info("epoch %d/%d: train loss %.4f acc %.4f | valid loss %.4f acc %.4f | %.1f s, %.0f tokens/s%s",
                 stats.epoch, self.epochs, stats.train_loss, stats.train_accuracy, stats.valid_loss,
                 stats.valid_accuracy, stats.seconds, stats.tokens / stats.seconds, skipped)


def plot_history(plots_dir: Path, history: List[EpochStats], best_epoch: int) -> None:
    epochs = [s.epoch for s in history]
    for metric in ("loss", "accuracy"):
        plot_curves(Path(plots_dir) / f"{metric}.png", epochs, [getattr(s, f"train_{metric}") for s in history],
                    [getattr(s, f"valid_{metric}") for s in history], metric, best_epoch)
