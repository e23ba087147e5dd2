"""The baseline stage's work, as a function of its params section and its paths (stages/baseline.py calls it)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from textrnn import baseline
from textrnn.core.errors import UserError
from textrnn.core.filesystem import write_json
from textrnn.data import splits as split_files

log = logging.getLogger("textrnn")


def run(params: dict[str, Any], split_dir: Path, metrics_path: Path) -> dict[str, Any]:
    """TF-IDF + logistic regression fit on the train split, C picked on valid: its metrics, written to ``metrics_path``.

    With ``enabled: false`` nothing is fit and the file says so (dvc.yaml's output still exists).
    """
    if not params["enabled"]:
        result: dict[str, Any] = {"enabled": False}
        write_json(metrics_path, result)
        log.info("baseline: skipped (baseline.enabled is false) -> %s", metrics_path)
        return result
    split_dir = Path(split_dir)
    label_names = split_files.read_labels(split_dir)
    texts, labels = {}, {}
    for name in split_files.SPLITS:
        path = split_dir / f"{name}.parquet"
        labels[name] = split_files.read_split_labels(path, len(label_names))
        if len(labels[name]) == 0:
            raise UserError(f"{path}: no rows; the baseline needs every split; rerun `dvc repro split`")
        texts[name] = list(split_files.iter_texts(path))
    started = time.perf_counter()
    scores = baseline.fit_and_score(texts, labels, label_names, params["C"], params["class_weight"])
    result = {"enabled": True, **scores}
    write_json(metrics_path, result)
    log.info(
        "baseline: TF-IDF (%d word 1-2 grams) + logistic regression, C=%s picked on valid: test accuracy %.4f "
        "(%.1f s) -> %s",
        result["features"],
        result["C"],
        result["test"]["accuracy"],
        time.perf_counter() - started,
        metrics_path,
    )
    return result
