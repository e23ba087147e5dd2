"""The split stage's work, as a function of its params section and its paths (stages/split.py calls it)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from textrnn.data import splits as split_files
from textrnn.errors import UserError
from textrnn.io import atomic_dir

log = logging.getLogger("textrnn")


def run(params: dict[str, Any], raw_dir: Path, out_dir: Path) -> dict[str, int]:
    """train / valid / test split files: the dataset's own valid and test when it has them, else carved from train."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    label_names = split_files.read_labels(raw_dir)
    train_path = raw_dir / "train.parquet"
    where = str(train_path)
    labels = split_files.read_split_labels(train_path, len(label_names))
    rows = np.arange(len(labels))
    has = {name: (raw_dir / f"{name}.parquet").exists() for name in ("valid", "test")}
    outputs: dict[str, np.ndarray] = {}
    if not has["test"]:
        rows, outputs["test"] = split_files.stratified_indices(
            labels, params["test_size"], params["seed"], "test", where, label_names
        )
        log.info("split: the dataset has no test split; carved %d rows out of train", len(outputs["test"]))
    valid_from = params["valid_from"]
    if valid_from == "dataset" and not has["valid"]:
        raise UserError(
            f"split.valid_from is 'dataset' but {raw_dir} has no valid split (the dataset has no "
            f"validation split); set split.valid_from: auto to carve valid out of train"
        )
    use_own_valid = has["valid"] and valid_from in ("auto", "dataset")
    if use_own_valid:
        outputs["train"] = rows
        log.info("split: valid is the dataset's own validation split")
    else:
        rest, valid = split_files.stratified_indices(
            labels[rows], params["valid_size"], params["seed"], "valid", where, label_names
        )
        outputs["train"], outputs["valid"] = rows[rest], rows[valid]
        ignored = (
            " (the dataset's own validation split is left out: split.valid_from is 'train')" if has["valid"] else ""
        )
        log.info("split: valid is %s of train, stratified%s", params["valid_size"], ignored)
    with atomic_dir(out_dir) as tmp:
        split_files.write_reordered(train_path, {tmp / f"{name}.parquet": index for name, index in outputs.items()})
        for name in ("valid", "test"):
            if name not in outputs:
                split_files.read_split_labels(raw_dir / f"{name}.parquet", len(label_names))  # checked, then copied
                shutil.copyfile(raw_dir / f"{name}.parquet", tmp / f"{name}.parquet")
        split_files.write_labels(tmp, label_names)
    sizes = {name: split_files.num_rows(out_dir / f"{name}.parquet") for name in split_files.SPLITS}
    log.info("split: train %d, valid %d, test %d rows -> %s", sizes["train"], sizes["valid"], sizes["test"], out_dir)
    return sizes
