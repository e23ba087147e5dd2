"""The split stage's work, as a function of its params section and its paths (stages/split.py calls it).

What becomes test (``split.test_from``): ``auto`` takes the dataset's own labelled test split;
where the dataset has none (absent, or unlabelled as GLUE's are) but has a labelled validation
split, that validation split becomes test and valid is carved from train (GLUE-style results are
reported on the validation split); else test is carved from train. ``dataset``, ``validation`` and
``train`` ask for one of these. Valid (``split.valid_from``) is the dataset's own validation split
where it has a labelled one that test did not take, else carved from train.

Then the rows of valid and test whose text is also a text of train are counted (by 64-bit hashes
of the texts, as download wrote them) and written to the data metrics file.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from textrnn.core.errors import UserError
from textrnn.core.filesystem import atomic_dir, write_json
from textrnn.data import splits as split_files

log = logging.getLogger("textrnn")


def _test_source(params: dict[str, Any], labelled: dict[str, bool], unlabelled: dict[str, int]) -> tuple[str, str]:
    """Where test comes from (``"test"``: the dataset's test, ``"valid"``: its validation, ``"train"``: carved),
    and why, in words for the log."""
    test_from, valid_from = params["test_from"], params["valid_from"]
    no_test = (
        f"the dataset's test split has no labels ({unlabelled['test']} rows kept as unlabelled text)"
        if "test" in unlabelled
        else "the dataset has no test split"
    )
    no_valid = "its validation split has no labels" if "valid" in unlabelled else "the dataset has no validation split"
    if test_from == "dataset":
        if not labelled["test"]:
            raise UserError(f"split.test_from is 'dataset' but {no_test}; set split.test_from: auto")
        return "test", "split.test_from: dataset"
    if test_from == "validation":
        if not labelled["valid"]:
            raise UserError(f"split.test_from is 'validation' but {no_valid}; set split.test_from: auto")
        if valid_from == "dataset":
            raise UserError(
                "split.test_from is 'validation' and split.valid_from is 'dataset': the dataset's validation "
                "split cannot be both; set split.valid_from: auto to carve valid out of train"
            )
        return "valid", "split.test_from: validation"
    if test_from == "train":
        left_out = " (the dataset's own test split is left out)" if labelled["test"] else ""
        return "train", f"split.test_from: train{left_out}"
    if labelled["test"]:
        return "test", "split.test_from: auto"
    if labelled["valid"] and valid_from != "dataset":
        return "valid", f"split.test_from: auto; {no_test}: GLUE-style, results are reported on validation"
    if labelled["valid"]:
        return "train", f"split.test_from: auto; {no_test}, and split.valid_from: dataset keeps validation as valid"
    return "train", f"split.test_from: auto; {no_test}, and {no_valid}"


def leakage(hashes: dict[str, np.ndarray]) -> dict[str, dict[str, float | int]]:
    """Per split, from the hashes of its texts (``splits.hash_texts``): its rows and, for valid and
    test, how many have a text that train also has."""
    result: dict[str, dict[str, float | int]] = {"train": {"rows": len(hashes["train"])}}
    train = np.unique(hashes["train"])
    for name in ("valid", "test"):
        shared = int(np.isin(hashes[name], train).sum())
        result[name] = {
            "rows": len(hashes[name]),
            "duplicates_of_train": shared,
            "duplicate_share": round(shared / len(hashes[name]), 6) if len(hashes[name]) else 0.0,
        }
    return result


def run(params: dict[str, Any], raw_dir: Path, out_dir: Path, metrics_path: Path | None = None) -> dict[str, int]:
    """train / valid / test split files (see the module's docstring); the data metrics to ``metrics_path``."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    label_names = split_files.read_labels(raw_dir)
    train_path = raw_dir / "train.parquet"
    where = str(train_path)
    labels = split_files.read_split_labels(train_path, len(label_names))
    rows = np.arange(len(labels))
    labelled = {name: (raw_dir / f"{name}.parquet").exists() for name in ("valid", "test")}
    unlabelled = split_files.unlabelled_splits(raw_dir)
    test_source, why = _test_source(params, labelled, unlabelled)
    outputs: dict[str, np.ndarray] = {}
    copies = {}  # output split -> the raw split file copied as it is
    if test_source == "train":
        rows, outputs["test"] = split_files.stratified_indices(
            labels, params["test_size"], params["seed"], "test", where, label_names
        )
        log.info("split: test is %d rows carved out of train, stratified (%s)", len(outputs["test"]), why)
    else:
        copies["test"] = test_source
        own = "test" if test_source == "test" else "validation"
        log.info("split: test is the dataset's own %s split (%s)", own, why)
    valid_from = params["valid_from"]
    if valid_from == "dataset" and not labelled["valid"]:
        reason = (
            "its validation split has no labels" if "valid" in unlabelled else "the dataset has no validation split"
        )
        raise UserError(
            f"split.valid_from is 'dataset' but {reason}; set split.valid_from: auto to carve valid out of train"
        )
    if labelled["valid"] and valid_from in ("auto", "dataset") and test_source != "valid":
        outputs["train"] = rows
        copies["valid"] = "valid"
        log.info("split: valid is the dataset's own validation split")
    else:
        rest, valid = split_files.stratified_indices(
            labels[rows], params["valid_size"], params["seed"], "valid", where, label_names
        )
        outputs["train"], outputs["valid"] = rows[rest], rows[valid]
        if test_source == "valid":
            ignored = " (the dataset's validation split is test)"
        elif labelled["valid"]:
            ignored = " (the dataset's own validation split is left out: split.valid_from is 'train')"
        elif "valid" in unlabelled:
            ignored = " (the dataset's validation split has no labels)"
        else:
            ignored = ""
        log.info("split: valid is %s of train, stratified%s", params["valid_size"], ignored)
    with atomic_dir(out_dir) as tmp:
        raw_hashes = split_files.write_reordered(
            train_path, {tmp / f"{name}.parquet": index for name, index in outputs.items()}
        )
        hashes = {name: raw_hashes[index] for name, index in outputs.items()}
        for name, raw_name in copies.items():
            raw_path = raw_dir / f"{raw_name}.parquet"
            split_files.read_split_labels(raw_path, len(label_names))  # checked, then copied
            shutil.copyfile(raw_path, tmp / f"{name}.parquet")
            hashes[name] = split_files.text_hashes(raw_path)
        split_files.write_labels(tmp, label_names)
    sizes = {name: split_files.num_rows(out_dir / f"{name}.parquet") for name in split_files.SPLITS}
    log.info("split: train %d, valid %d, test %d rows -> %s", sizes["train"], sizes["valid"], sizes["test"], out_dir)
    data = leakage(hashes)
    counts = [
        f"{name} {data[name]['duplicates_of_train']} of {data[name]['rows']} ({data[name]['duplicate_share']:.2%})"
        for name in ("valid", "test")
    ]
    log.info("split: rows whose text is also a train text: %s", ", ".join(counts))
    if metrics_path is not None:
        write_json(Path(metrics_path), data)
    return sizes
