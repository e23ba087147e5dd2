"""The download stage's work: a source's splits as standardized split files, streamed batch by batch.

Every split becomes ``text`` (str) and ``label`` (0..k-1). Rows whose text is null, empty or
whitespace only are dropped and counted. Class names come from the label's ClassLabel when the
source has one, else from the sorted distinct values of the label column.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textrnn.data import arrow
from textrnn.data.sources import Source, SplitSource
from textrnn.data.splits import SplitWriter, write_labels
from textrnn.errors import UserError

log = logging.getLogger(__name__)


def _distinct_labels(source: Source, label_column: str) -> list[object]:
    values = set()
    for split in source.splits.values():
        for batch in split.batches([label_column]):
            column = batch.column(0)
            if column.null_count:
                raise UserError(f"{source.description}: column {label_column!r} has missing labels")
            values.update(pc.unique(column).to_pylist())
    try:
        return sorted(values)
    except TypeError:
        raise UserError(
            f"{source.description}: column {label_column!r} mixes types "
            f"({sorted({type(v).__name__ for v in values})}); give it one type"
        ) from None


def _labels_from_classes(column: pa.Array, n_classes: int, label_names: list[str], where: str) -> np.ndarray:
    values = arrow.to_numpy(column)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    if values.dtype.kind not in "iu":
        bad = values[0]
        raise UserError(f"{where}: label {bad!r} is not a class id; the classes are {label_names} (0..{n_classes - 1})")
    outside = (values < 0) | (values >= n_classes)
    if outside.any():
        raise UserError(
            f"{where}: label {values[outside][0].item()!r} is outside the classes {label_names} "
            f"(0..{n_classes - 1}) in {int(outside.sum())} rows of a batch of {len(values)}"
        )
    return values.astype(np.int64)


# A text holding one of these characters (printable ASCII other than the space) is not blank:
# str.strip keeps them. Most texts hold one; only the others are looked at in Python.
_SURELY_KEPT = "[!-~]"


def _blank(texts: pa.Array) -> np.ndarray:
    """Which texts are null, empty or whitespace only (as Python's ``str.strip`` sees whitespace)."""
    matched = pc.match_substring_regex(texts, _SURELY_KEPT)  # null for a null text
    kept = pc.and_kleene(matched, pc.is_valid(matched))  # null and false is false (fill_null would import pandas)
    blank = ~arrow.to_numpy(kept)
    unsure = np.flatnonzero(blank)
    if len(unsure):
        # str.strip and str.split agree on what whitespace is, so a kept text always has a token.
        values = texts.take(arrow.int64_array(unsure)).to_pylist()
        blank[unsure] = [text is None or not text.strip() for text in values]
    return blank


def _standardize_split(
    split: SplitSource,
    text_column: str,
    label_column: str,
    label_names: list[str],
    mapping: dict[object, int] | None,
    out: SplitWriter,
    description: str,
    stop: threading.Event,
) -> int:
    """Write ``split``'s rows to ``out``; return how many were dropped as blank. Ends early once ``stop`` is set."""
    where = f"{description} split {split.name!r}"
    dropped = 0
    for batch in split.batches([text_column, label_column]):
        if stop.is_set():
            break
        texts_column, labels_column = batch.column(0), batch.column(1)
        if not pa.types.is_string(texts_column.type):
            try:
                texts_column = pc.cast(texts_column, pa.string())
            except pa.ArrowException:
                raise UserError(
                    f"{where}: column {text_column!r} holds {texts_column.type}, not text; set download.text_column"
                ) from None
        blank = _blank(texts_column)
        dropped += int(blank.sum())
        keep = arrow.bool_array(~blank)
        labels_kept = pc.filter(labels_column, keep)
        if mapping is not None:
            labels = np.array([mapping[value] for value in labels_kept.to_pylist()], dtype=np.int64)
        else:
            if labels_kept.null_count:
                raise UserError(f"{where}: column {label_column!r} has missing labels")
            labels = _labels_from_classes(labels_kept, len(label_names), label_names, where)
        out.write(pc.filter(texts_column, keep), arrow.int64_array(labels))
    return dropped


def _write_splits(source: Source, out_dir: Path, *columns_and_classes) -> dict[str, tuple[int, int]]:
    """Each split standardized into ``out_dir/<split>.parquet``; the rows written and dropped, per split.

    The splits are written at once, in threads: reading, compressing and writing parquet release
    the GIL. The first split in order that fails raises; the others stop at their next batch.
    """
    stop = threading.Event()

    def write(split: SplitSource) -> tuple[int, int]:
        with SplitWriter(out_dir / f"{split.name}.parquet") as out:
            dropped = _standardize_split(split, *columns_and_classes, out, source.description, stop)
        return out.rows, dropped

    pool = ThreadPoolExecutor(min(len(source.splits), os.cpu_count() or 1), thread_name_prefix="textrnn-download")
    try:
        futures = {name: pool.submit(write, split) for name, split in source.splits.items()}
        return {name: future.result() for name, future in futures.items()}
    finally:
        stop.set()  # after an error or an interrupt, the splits still running end at their next batch
        pool.shutdown(wait=True, cancel_futures=True)


def write_raw(source: Source, text_column: str, label_column: str, out_dir: Path) -> dict[str, int]:
    """Write ``<split>.parquet`` for each split of ``source`` and ``labels.json`` into ``out_dir``.

    Returns the rows written per split.
    """
    if text_column == label_column:
        raise UserError(
            f"download.text_column and download.label_column are both {text_column!r}: the label "
            f"would be read from the text itself; name two different columns"
        )
    if "train" not in source.splits:
        raise UserError(f"{source.description}: no train split (found {sorted(source.splits)})")
    for split in source.splits.values():
        missing = [c for c in (text_column, label_column) if c not in split.column_names]
        if missing:
            raise UserError(
                f"{source.description} split {split.name!r}: no column {missing[0]!r} "
                f"(columns: {split.column_names}); set download.text_column / download.label_column"
            )
    label_names, mapping = source.label_names, None
    if label_names is None:
        values = _distinct_labels(source, label_column)
        label_names = [str(v) for v in values]
        mapping = {v: i for i, v in enumerate(values)}
    if len(label_names) < 2:
        raise UserError(f"{source.description}: found {len(label_names)} class; a classifier needs at least 2")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = _write_splits(source, Path(out_dir), text_column, label_column, label_names, mapping)
    rows = {}
    for name, (count, dropped) in written.items():
        if dropped:
            log.warning(
                "%s split %r: dropped %d rows with a null, empty or whitespace-only text",
                source.description,
                name,
                dropped,
            )
        if count == 0:
            raise UserError(
                f"{source.description} split {name!r}: no row has a text ({dropped} blank of "
                f"{source.splits[name].num_rows}); check download.text_column or the data"
            )
        rows[name] = count
    write_labels(out_dir, label_names)
    return rows
