"""The training summary is the checkpoint's epoch (the best), not the last; the per-epoch TSVs keep every epoch."""

import json

import pandas as pd
import pytest

from textrnn.training.loop import EpochStats
from textrnn.training.reporting import EpochReporter, plot_history

PNG = b"\x89PNG\r\n\x1a\n"


def epoch(number, valid_loss):
    metrics = {
        "train/loss": 1.0 / number,
        "train/accuracy": 0.5 + number / 100,
        "valid/loss": valid_loss,
        "valid/accuracy": 0.6 + number / 100,
    }
    return EpochStats(epoch=number, metrics=metrics, skipped_steps=0, seconds=2.0, tokens=1000)


@pytest.fixture
def history():
    return [epoch(1, 0.7), epoch(2, 0.5), epoch(3, 0.6)]


def test_summary_holds_the_best_epoch_and_the_tsvs_every_epoch(tmp_path, history, caplog):
    caplog.set_level("INFO")
    reporter = EpochReporter(tmp_path, epochs=3)
    for stats in history:
        reporter(stats)
    reporter.finish(best_epoch=2)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {
        "best_epoch": 2,
        "train": {"loss": 0.5, "accuracy": 0.52},
        "valid": {"loss": 0.5, "accuracy": 0.62},
    }
    for split in ("train", "valid"):
        for metric in ("loss", "accuracy"):
            table = pd.read_csv(tmp_path / f"plots/metrics/{split}/{metric}.tsv", sep="\t")
            assert table["step"].tolist() == [1, 2, 3]
            assert table[metric].tolist() == [s.metrics[f"{split}/{metric}"] for s in history]
    assert (
        "epoch 3/3: train loss 0.3333 accuracy 0.5300 | valid loss 0.6000 accuracy 0.6300 | 2.0 s, 500 tokens/s"
        in caplog.text
    )


def test_finish_refuses_an_epoch_never_reported(tmp_path, history):
    reporter = EpochReporter(tmp_path, epochs=3)
    reporter(history[0])
    with pytest.raises(ValueError, match=r"epoch 2 was never reported \(reported: \[1\]\)"):
        reporter.finish(best_epoch=2)
    assert not (tmp_path / "metrics.json").exists()


def test_plot_history_draws_one_png_per_metric(tmp_path, history):
    plot_history(tmp_path, history, best_epoch=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.png", "loss.png"]
    assert all(p.read_bytes()[:8] == PNG for p in tmp_path.iterdir())
