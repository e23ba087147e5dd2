"""The download stage's work: a source's splits as standardized split files, streamed batch by batch.

Every labelled split becomes ``text`` (str) and ``label`` (0..k-1). Rows whose text is null, empty
or whitespace only are dropped and counted. The labels are read twice: once (the label column
alone) to decide the classes for the whole dataset, then with the texts to write the splits.

The label contract, decided here once for every file of every split:

- **Names.** Class names come from the ClassLabel names of the files that declare them (Hugging
  Face writes them into each parquet file's schema metadata, file by file; the Hub, split by
  split). Every file must declare the same set of distinct strings. The ids follow the first file
  that declares names, in the order train, valid, test (so the train files' order); a file that
  lists the same names in another order has its ids mapped by name. A file without names beside
  files with names holds ids in that order.
- **No names anywhere.** The classes are the sorted distinct labels of the labelled splits:
  integers (floats that are whole numbers read as integers) or strings, one kind for all files.
- **Missing labels.** A null or NaN, or -1 (Hugging Face's "no label"), unless -1 is a class: no
  names anywhere, and -1 among other labels in train.
- **Unlabelled splits.** A split whose labels are all missing (GLUE's test splits), a split other
  than train without the label column, or a split named unsupervised / unlabelled, is unlabelled:
  never a class, never scored. Its texts go to ``unlabelled.parquet`` (``text``, ``split``: valid,
  test or unlabelled); the split stage decides what becomes test (``split.test_from``). train must
  be labelled; a labelled split with some missing labels is refused, with the counts.
- **Classes and rows.** A class that names declare but no labelled row holds is dropped (logged)
  and the ids closed up; a class with rows in valid or test but none in train is refused.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textrnn.core.errors import UserError
from textrnn.data import arrow
from textrnn.data.sources import UNLABELLED, LabelPart, Source, SplitSource
from textrnn.data.splits import UNLABELLED_FILE, UNLABELLED_SCHEMA, SplitWriter, write_labels

log = logging.getLogger(__name__)

# The order in which files are looked at for the class names (the first named one sets the ids).
SPLIT_ORDER = ("train", "valid", "test")
# Per-class counts shown in a split's log line (beyond them: "and N more").
CLASSES_SHOWN = 10
MISSING = -1  # Hugging Face's id for "no label"


# ---------------------------------------------------------------- one batch of labels


def _text_column(column: pa.Array, where: str, text_column: str) -> pa.Array:
    """A batch's texts as an arrow string array; any other type is refused (an int is no text)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type) or pa.types.is_null(column.type):
        return pc.cast(column, pa.string())
    raise UserError(
        f"{where}: column {text_column!r} holds {column.type}, not text; "
        f"set download.text_column to the column of texts"
    )


def _label_values(column: pa.Array, where: str, label_column: str) -> tuple[str | None, object, np.ndarray]:
    """A batch's labels as (kind, values, missing).

    ``kind`` is ``"int"`` (``values``: int64 numpy, floats that are whole numbers included) or ``"str"``
    (``values``: an arrow string array), or None when every label is null. ``missing``: the rows that
    are null or NaN (-1 is decided later: it may be a class).
    """
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    kind_of = column.type
    if pa.types.is_null(kind_of):
        return None, None, np.ones(len(column), dtype=bool)
    if pa.types.is_boolean(kind_of):
        raise UserError(
            f"{where}: column {label_column!r} holds booleans, not class ids or names; store the labels as "
            f"integers (0, 1) or strings, or set download.label_column"
        )
    if pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of):
        missing = ~arrow.to_numpy(pc.is_valid(column))
        return "str", pc.cast(column, pa.string()), missing
    if not (pa.types.is_integer(kind_of) or pa.types.is_floating(kind_of)):
        raise UserError(
            f"{where}: column {label_column!r} holds {kind_of}, not class ids or names; set "
            f"download.label_column to a column of integers or strings"
        )
    if column.null_count:
        missing = ~arrow.to_numpy(pc.is_valid(column))
        column = column.fill_null(0)
    else:
        missing = np.zeros(len(column), dtype=bool)
    values = arrow.to_numpy(column)
    if values.dtype.kind == "f":
        missing |= np.isnan(values)
        bad = ~missing & ((values != np.floor(values)) | ~np.isfinite(values))
        if bad.any():
            raise UserError(
                f"{where}: label {values[bad][0].item()!r} in column {label_column!r} is not a whole number; "
                f"class ids are integers 0..k-1: map the labels to integers or strings, or set download.label_column"
            )
        values = np.where(missing, 0, values)
    # Beyond 2**53 a float is no exact integer; beyond int64 an unsigned id does not fit: no class id either way.
    huge = np.abs(values) > 2**53 if values.dtype.kind == "f" else values > np.iinfo(np.int64).max
    if huge.any():
        raise UserError(
            f"{where}: label {values[huge][0].item()!r} in column {label_column!r} is not a class id; "
            f"class ids are integers 0..k-1: map the labels to integers or strings, or set download.label_column"
        )
    return "int", values.astype(np.int64), missing


# ---------------------------------------------------------------- the survey: what each file holds


@dataclass
class _PartLabels:
    """What one part of a split (a file, or a Hub split) holds in its label column: every row, blank texts included."""

    part: LabelPart
    rows: int = 0
    null: int = 0  # null or NaN
    kind: str | None = None  # "int" or "str"; None while only nulls were seen
    counts: Counter = field(default_factory=Counter)  # label -> rows (-1 included)

    def missing(self, minus_one_is_class: bool) -> int:
        return self.null + (0 if minus_one_is_class or self.kind != "int" else self.counts.get(MISSING, 0))


def _parts_of(split: SplitSource, description: str) -> list[LabelPart]:
    return split.label_parts or [LabelPart(f"{description} split {split.name!r}", split.num_rows, None)]


def _part_batches(split: SplitSource, columns: list[str], description: str) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``split``'s record batches, each cut at the bounds of its label parts: (part index, batch)."""
    if not split.label_parts:
        for batch in split.batches(columns):
            yield 0, batch
        return
    ends = np.cumsum([part.rows for part in split.label_parts]).tolist()
    part, start = 0, 0
    for batch in split.batches(columns):
        offset = 0
        while offset < len(batch):
            while part < len(ends) and start >= ends[part]:
                part += 1
            if part == len(ends):
                raise UserError(
                    f"{description} split {split.name!r}: holds more rows than its files declare "
                    f"({ends[-1]}); replace the damaged file"
                )
            take = min(len(batch) - offset, ends[part] - start)
            yield part, batch.slice(offset, take)
            offset, start = offset + take, start + take


def _survey(split: SplitSource, label_column: str, description: str) -> list[_PartLabels]:
    """The labels of each part of ``split`` (the label column alone, streamed)."""
    surveys = [_PartLabels(part) for part in _parts_of(split, description)]
    for index, batch in _part_batches(split, [label_column], description):
        survey = surveys[index]
        kind, values, missing = _label_values(batch.column(0), survey.part.where, label_column)
        survey.rows += len(batch)
        survey.null += int(missing.sum())
        if kind is None or missing.all():
            continue
        if survey.kind not in (None, kind):
            raise UserError(
                f"{survey.part.where}: column {label_column!r} mixes integers and strings; give it one type"
            )
        survey.kind = kind
        if kind == "int":
            assert isinstance(values, np.ndarray)  # _label_values gives int labels as numpy
            labels, counts = np.unique(values[~missing], return_counts=True)
            survey.counts.update(dict(zip(labels.tolist(), counts.tolist(), strict=True)))
        else:
            present = pc.filter(values, arrow.bool_array(~missing))
            survey.counts.update({pair["values"]: pair["counts"] for pair in pc.value_counts(present).to_pylist()})
    return surveys


# ---------------------------------------------------------------- the decision: classes and ids


def _checked_names(part: LabelPart) -> list[str]:
    names = part.names
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        raise UserError(
            f"{part.where}: its ClassLabel names {names!r} are not a list of strings; write the file again "
            f"with string class names (or without a ClassLabel)"
        )
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise UserError(
            f"{part.where}: the ClassLabel names {names} give {twice!r} twice; give each class its own name"
        )
    return names


@dataclass
class LabelPlan:
    """The classes of a dataset and how each part's labels become their ids."""

    names: list[str]  # final class names, in id order
    unlabelled: dict[str, str]  # split -> why it has no labels
    # Per split, per part: how a batch's label values become final ids (int kind: a lookup table
    # over the part's own ids, or the sorted values; str kind: the sorted strings).
    tables: dict[str, list[np.ndarray | None]]
    values: np.ndarray | pa.Array | None  # without names: the sorted class values (int64 or strings)


def _decide(surveys: dict[str, list[_PartLabels]], description: str) -> LabelPlan:
    """The classes of the whole dataset from what each part holds; refuse what would silently mislead."""
    candidates = [s for s in SPLIT_ORDER if s in surveys]
    # -1 means "no label" wherever a file has ClassLabel names (Hugging Face's convention), even one
    # of a split that turns out unlabelled; without names it is a class when train has it among others.
    any_names = any(survey.part.names is not None for s in candidates for survey in surveys[s])
    train_values = set().union(*(survey.counts for survey in surveys["train"]))
    minus_one_is_class = not any_names and MISSING in train_values and len(train_values) > 1
    if minus_one_is_class:
        log.info(
            "download: %s: label -1 is a class here (train holds it among others, no ClassLabel names)", description
        )

    unlabelled = {name: "named unsupervised or unlabelled" for name in surveys if name == UNLABELLED}
    for name in candidates:
        rows = sum(s.rows for s in surveys[name])
        missing = sum(s.missing(minus_one_is_class) for s in surveys[name])
        if rows and missing == rows:
            if name == "train":
                raise UserError(
                    f"{description} split 'train': none of its {rows} rows has a label (every one null, NaN "
                    f"or -1); a classifier needs labelled train rows: check download.label_column or the data"
                )
            unlabelled[name] = f"all {rows} rows null, NaN or -1"
        elif missing:
            worst = max(surveys[name], key=lambda s: s.missing(minus_one_is_class))
            raise UserError(
                f"{description} split {name!r}: {missing} of {rows} rows have no label (null, NaN or -1; "
                f"{worst.missing(minus_one_is_class)} in {worst.part.where}); drop those rows, or, if the split "
                f"has no labels at all, name its files unsupervised"
            )
    labelled = [name for name in candidates if name not in unlabelled]
    parts = [survey for name in labelled for survey in surveys[name]]

    # Names are taken from the labelled splits' files (an unlabelled split's names label nothing).
    named = any(survey.part.names is not None for survey in parts)
    if named:
        reference = next(survey.part for survey in parts if survey.part.names is not None)
        order = _checked_names(reference)
    kinds = {survey.kind for survey in parts if survey.rows}
    if len(kinds) > 1:
        raise UserError(
            f"{description}: the labels are integers in some files and strings in others "
            f"({', '.join(f'{s.part.where}: {s.kind}' for s in parts if s.rows)}); give them one type"
        )

    tables: dict[str, list[np.ndarray | None]] = {}
    values = None
    if named:
        if "str" in kinds:
            where = next(s.part.where for s in parts if s.kind == "str")
            raise UserError(
                f"{where}: its labels are strings, but {reference.where} declares ClassLabel names {order} for "
                f"ids 0..{len(order) - 1}; give every file class ids, or no ClassLabel"
            )
        used = np.zeros(len(order), dtype=np.int64)
        own_tables: dict[int, np.ndarray] = {}
        for survey in parts:
            part = survey.part
            if part.names is None:
                own = np.arange(len(order))
            else:
                names = _checked_names(part)
                if set(names) != set(order):
                    raise UserError(
                        f"{part.where}: its ClassLabel names {names} differ from {reference.where}'s {order}; "
                        f"every file of a dataset must name the same classes: write it again with those names"
                    )
                own = np.array([order.index(name) for name in names], dtype=np.int64)
                if names != order:
                    log.info(
                        "download: %s lists the classes in another order (%s); its ids are mapped by name to %s",
                        part.where,
                        names,
                        order,
                    )
            labels = np.array(list(survey.counts), dtype=np.int64)
            outside = (labels < 0) | (labels >= len(own))
            if outside.any():
                rows = sum(survey.counts[label] for label in labels[outside].tolist())
                raise UserError(
                    f"{part.where}: label {labels[outside][0].item()!r} is outside the classes "
                    f"{[order[i] for i in own]} (0..{len(own) - 1}) in {rows} of its {survey.rows} rows; "
                    f"check download.label_column or the data"
                )
            for label, count in survey.counts.items():
                used[own[label]] += count
            own_tables[id(survey)] = own
        kept = np.flatnonzero(used)
        dropped = [order[i] for i in np.flatnonzero(used == 0)]
        if dropped:
            log.warning(
                "download: %s: classes %s are declared by the ClassLabel names but no labelled row holds them; "
                "left out of the classes (ids closed up)",
                description,
                dropped,
            )
        final = np.full(len(order), -1, dtype=np.int64)
        final[kept] = np.arange(len(kept))
        names = [order[i] for i in kept]
        for name in labelled:
            tables[name] = [final[own_tables[id(survey)]] for survey in surveys[name]]
    else:
        distinct = set().union(*(survey.counts for survey in parts))
        ordered = sorted(distinct)
        names = [str(value) for value in ordered]
        values = pa.array(ordered, pa.string()) if "str" in kinds else np.array(ordered, dtype=np.int64)
        for name in labelled:
            tables[name] = [None for _ in surveys[name]]
    if len(names) < 2:
        raise UserError(f"{description}: found {len(names)} class; a classifier needs at least 2")
    return LabelPlan(names, unlabelled, tables, values)


def _ids(plan: LabelPlan, table: np.ndarray | None, column: pa.Array, where: str, label_column: str) -> np.ndarray:
    """A batch's labels as final class ids (the survey has checked them)."""
    kind, values, _ = _label_values(column, where, label_column)
    if table is not None:  # ClassLabel names: the plan refused string labels, so these are int ids
        return table[cast(np.ndarray, values)]
    if kind == "str":
        return arrow.to_numpy(pc.index_in(values, value_set=plan.values)).astype(np.int64)
    # int labels: plan.values are the sorted int64 class values
    return np.searchsorted(cast(np.ndarray, plan.values), cast(np.ndarray, values)).astype(np.int64)


# ---------------------------------------------------------------- writing


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


@dataclass
class _Written:
    rows: int = 0
    dropped: int = 0
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # rows per class (labelled splits)


def _write_labelled(
    split: SplitSource, plan: LabelPlan, columns: tuple[str, str], out: SplitWriter, description: str, stop
) -> _Written:
    """Write ``split``'s rows with their class ids to ``out``. Ends early once ``stop`` is set."""
    text_column, label_column = columns
    written = _Written(counts=np.zeros(len(plan.names), dtype=np.int64))
    parts = _parts_of(split, description)
    for index, batch in _part_batches(split, [text_column, label_column], description):
        if stop.is_set():
            break
        where = parts[index].where
        texts = _text_column(batch.column(0), where, text_column)
        labels = _ids(plan, plan.tables[split.name][index], batch.column(1), where, label_column)
        blank = _blank(texts)
        written.dropped += int(blank.sum())
        keep = ~blank
        kept_labels = labels[keep]
        out.write(pc.filter(texts, arrow.bool_array(keep)), arrow.int64_array(kept_labels))
        written.counts += np.bincount(kept_labels, minlength=len(plan.names))
    written.rows = out.rows
    return written


def _write_unlabelled(splits: list[SplitSource], text_column: str, out: SplitWriter, description: str, stop) -> dict:
    """Append the texts of each split without labels to ``out`` (with the split's name), one split after another."""
    result: dict[str, _Written] = {}
    for split in splits:
        written = _Written()
        parts = _parts_of(split, description)
        for index, batch in _part_batches(split, [text_column], description):
            if stop.is_set():
                return result
            texts = _text_column(batch.column(0), parts[index].where, text_column)
            blank = _blank(texts)
            written.dropped += int(blank.sum())
            kept = pc.filter(texts, arrow.bool_array(~blank))
            out.write(kept, pa.array([split.name] * len(kept), pa.string()))
            written.rows += len(kept)
        result[split.name] = written
    return result


def _write_splits(source: Source, plan: LabelPlan, columns: tuple[str, str], out_dir: Path) -> dict[str, _Written]:
    """Each labelled split into ``out_dir/<split>.parquet``, the others into ``out_dir/unlabelled.parquet``.

    The labelled splits are written at once, in threads (reading, compressing and writing parquet
    release the GIL), beside one thread for the unlabelled ones, in the source's split order. The
    first task in order that fails raises; the others stop at their next batch.
    """
    stop = threading.Event()
    description = source.description

    def write(split: SplitSource) -> dict[str, _Written]:
        with SplitWriter(out_dir / f"{split.name}.parquet") as out:
            return {split.name: _write_labelled(split, plan, columns, out, description, stop)}

    def write_unlabelled(splits: list[SplitSource]) -> dict[str, _Written]:
        with SplitWriter(out_dir / UNLABELLED_FILE, UNLABELLED_SCHEMA) as out:
            return _write_unlabelled(splits, columns[0], out, description, stop)

    labelled = [split for name, split in source.splits.items() if name not in plan.unlabelled]
    unlabelled = [split for name, split in source.splits.items() if name in plan.unlabelled]
    tasks = len(labelled) + bool(unlabelled)
    pool = ThreadPoolExecutor(min(tasks, os.cpu_count() or 1), thread_name_prefix="textrnn-download")
    try:
        futures = [pool.submit(write, split) for split in labelled]
        if unlabelled:
            futures.append(pool.submit(write_unlabelled, unlabelled))
        written = {}
        for future in futures:
            written.update(future.result())
        return written
    finally:
        stop.set()  # after an error or an interrupt, the splits still running end at their next batch
        pool.shutdown(wait=True, cancel_futures=True)


def _class_counts(names: list[str], counts: np.ndarray) -> str:
    shown = [f"{name} {int(count)}" for name, count in zip(names[:CLASSES_SHOWN], counts[:CLASSES_SHOWN], strict=True)]
    more = f", and {len(names) - CLASSES_SHOWN} more" if len(names) > CLASSES_SHOWN else ""
    return ", ".join(shown) + more


def _check_train_has_every_class(description: str, names: list[str], written: dict[str, _Written]) -> None:
    in_train = written["train"].counts
    for label in np.flatnonzero(in_train == 0).tolist():
        elsewhere = {s: int(written[s].counts[label]) for s in ("valid", "test") if s in written}
        elsewhere = {s: n for s, n in elsewhere.items() if n}
        where = " and ".join(f"{n} in {s}" for s, n in elsewhere.items()) or "only rows without a text"
        raise UserError(
            f"{description}: class {names[label]!r} has no row in train ({where}); a model cannot learn a class it "
            f"never sees: add train rows of it, or remove its rows from the other splits"
        )


def _relative(path: Path, folder: str) -> str:
    path = Path(path)
    return path.relative_to(folder).as_posix() if path.is_relative_to(folder) else str(path)


def write_raw(source: Source, text_column: str, label_column: str, out_dir: Path) -> dict[str, int]:
    """Write ``<split>.parquet`` for each labelled split of ``source``, ``labels.json`` and, when the
    dataset has splits without labels, ``unlabelled.parquet`` into ``out_dir``.

    Returns the rows written per labelled split.
    """
    if text_column == label_column:
        raise UserError(
            f"download.text_column and download.label_column are both {text_column!r}: the label "
            f"would be read from the text itself; name two different columns"
        )
    if "train" not in source.splits:
        raise UserError(f"{source.description}: no train split (found {sorted(source.splits)})")
    for split in source.splits.values():
        if split.num_rows == 0:  # checked first: an empty JSON lines file has no columns either
            if not split.files:
                raise UserError(f"{source.description} split {split.name!r}: holds no rows; check the dataset")
            files = ", ".join(_relative(path, source.description) for path in split.files)
            raise UserError(
                f"{source.description} split {split.name!r}: its files hold no rows ({files}); fill them, or move "
                f"them out of the folder"
            )
    # A split other than train without the label column has no labels (a test file of texts alone).
    without_labels = [
        name
        for name, split in source.splits.items()
        if name not in ("train", UNLABELLED)
        and text_column in split.column_names
        and label_column not in split.column_names
    ]
    for split in source.splits.values():
        needed = (text_column,) if split.name == UNLABELLED else (text_column, label_column)
        missing = [c for c in needed if c not in split.column_names]
        if missing and split.name not in without_labels:
            raise UserError(
                f"{source.description} split {split.name!r}: no column {missing[0]!r} "
                f"(columns: {split.column_names}); set download.text_column / download.label_column"
            )
    surveys = {
        name: _survey(split, label_column, source.description)
        for name, split in source.splits.items()
        if name != UNLABELLED and name not in without_labels
    }
    if UNLABELLED in source.splits:
        surveys[UNLABELLED] = []
    plan = _decide(surveys, source.description)
    plan.unlabelled.update({name: f"no column {label_column!r}" for name in without_labels})
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    written = _write_splits(source, plan, (text_column, label_column), Path(out_dir))
    rows = {}
    for name, result in written.items():
        if result.dropped:
            log.warning(
                "%s split %r: dropped %d rows with a null, empty or whitespace-only text",
                source.description,
                name,
                result.dropped,
            )
        if name in plan.unlabelled:
            log.info(
                "download: %s split %r has no labels (%s): its %d texts are kept in %s as unlabelled text, "
                "never a class nor scored",
                source.description,
                name,
                plan.unlabelled[name],
                result.rows,
                UNLABELLED_FILE,
            )
            continue
        if result.rows == 0:
            raise UserError(
                f"{source.description} split {name!r}: no row has a text ({result.dropped} blank of "
                f"{source.splits[name].num_rows}); check download.text_column or the data"
            )
        rows[name] = result.rows
    _check_train_has_every_class(source.description, plan.names, {n: w for n, w in written.items() if n in rows})
    for name in rows:
        log.info(
            "download: %s split %r: %d rows, %d classes (%s)",
            source.description,
            name,
            rows[name],
            int(np.count_nonzero(written[name].counts)),
            _class_counts(plan.names, written[name].counts),
        )
    write_labels(out_dir, plan.names)
    return rows
