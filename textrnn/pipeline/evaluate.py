"""The evaluate stage's work: a checkpoint + vectors -> train/valid/test metrics and the test split's plots.

The logits of one split are held at a time ([n] or [n, k] float32); the test split's are kept for its plots.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_dir, check_writable, write_json
from textrnn.data.splits import SPLITS
from textrnn.data.vectors import open_split, read_meta
from textrnn.model import load_checkpoint
from textrnn.scoring.evaluation import Logits, one_class_warning, split_metrics, write_test_plots
from textrnn.scoring.inference import predict_logits, resolve_device

log = logging.getLogger("evaluate")


def run(
    params: dict[str, Any], model_path: Path, vectors_dir: Path, metrics_path: Path, plot_data_dir: Path, png_dir: Path
) -> dict[str, dict[str, float | None]]:
    device = resolve_device(params["device"])
    # Every split is scored before anything is written: a read-only output stops the stage first.
    check_writable(metrics_path)
    for folder in (plot_data_dir, png_dir):
        check_writable(folder, folder=True)
    checkpoint = load_checkpoint(model_path)
    meta = read_meta(vectors_dir)
    if meta["vocab_sha256"] != checkpoint.inputs["vocab_sha256"]:
        raise UserError(
            f"{model_path} was trained on another vocabulary than the one {vectors_dir} was made with; "
            f"retrain with `dvc repro train`"
        )
    if meta["tokenizer"] != checkpoint.inputs["tokenizer"]:
        raise UserError(
            f"{model_path} was trained on tokens cut by other tokenizer rules than {vectors_dir}'s; "
            f"retrain with `dvc repro train`"
        )
    if meta["label_names"] != checkpoint.label_names:
        raise UserError(
            f"{model_path} predicts classes {checkpoint.label_names} but {vectors_dir} has "
            f"{meta['label_names']}; retrain with `dvc repro train`"
        )
    model = checkpoint.model.to(device)
    metrics: dict[str, dict[str, float | None]] = {}
    test: tuple[Logits, np.ndarray] | None = None  # the last split's logits and labels: test's
    for name in SPLITS:
        split = open_split(vectors_dir, name, model.config.vocabulary_size)
        if len(split) == 0:
            raise UserError(f"{vectors_dir / name} has no reviews to score; check the dataset's {name} split")
        logits = predict_logits(model, split, params["batch_size"], device, checkpoint.inputs["max_tokens"])
        metrics[name] = split_metrics(logits, split.labels)
        test = (logits, split.labels)
        log.info("evaluate: %s: %s", name, metrics[name])
    assert test is not None  # SPLITS ends with test
    warning = one_class_warning(*test, checkpoint.label_names, "test")
    if warning:
        log.warning("evaluate: %s", warning)
    with atomic_dir(plot_data_dir) as data_dir, atomic_dir(png_dir) as pngs:
        write_test_plots(data_dir, pngs, *test, checkpoint.label_names)
    write_json(metrics_path, metrics, indent=4)  # DVCLive's layout (indent 4): the same bytes for the same metrics
    log.info("evaluate: -> %s (model trained on %s)", metrics_path, checkpoint.metadata.get("train_device"))
    return metrics
