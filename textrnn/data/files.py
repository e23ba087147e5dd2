"""A dataset folder's data files: which files make each split, and reading them in record batches.

Formats, as ``datasets.load_dataset(folder)`` reads them: parquet (``.parquet``), CSV (``.csv``,
and ``.tsv`` separated by tabs; the first line names the columns) and JSON lines (``.jsonl``,
``.ndjson``, and ``.json`` holding JSON lines: one object per line). A folder holds one format:
files of two formats are refused (which one is the data would be a guess).

Which files make each split (``find_split_files``):

- the data files lie at one level: directly in the folder (``train.csv``), in its ``data/``
  subfolder as the Hub stores them (``data/train-00000-of-00002.parquet``), or in subfolders named
  after their split (``train/0000.parquet``, as the Hub's parquet conversion stores them). Any
  other subfolder (``old/train.parquet``), or files at two of these levels, is refused;
- a file's split is the split word in its path (``SPLIT_WORDS``: ``dev`` and ``validation`` name the
  valid split); when no file names a split, every file is train;
- several files make one split only when their paths differ in digits alone: the shards of one
  split (``train-00000-of-00002``, ``train-00001-of-00002``), read in name order, and every shard of
  an ``-of-N`` set must be there. Two different names for one split (``dev.parquet`` and
  ``validation.parquet``, or ``train.parquet`` and ``train_old.parquet``) are refused.

Hidden files and folders (``.cache/``), and the metadata files the Hub keeps beside the data
(``dataset_info.json``, ...), are not data.

Every file is read in record batches, never whole: parquet through a buffered stream (pages read as
they are decoded, so memory does not grow with a row group's size), CSV and JSON lines in blocks.
CSV cells are read as text: every column but the label is a string column (a column of digits
stays text), and the label column is int64 when every label of the folder is an integer, float64
when every one is a number, else text; an empty cell is missing. A JSON lines file is scanned once
for its fields' JSON types (pyarrow's own reader takes them from its first block, and fails on a
field that comes later or is null there), then read by pyarrow with those types: a field keeps one
type (integers and numbers together are numbers).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from textrnn.core.errors import UserError
from textrnn.core.filesystem import access_fault
from textrnn.data.splits import READ_BUFFER_BYTES

FORMATS = {
    ".parquet": "parquet",
    ".csv": "CSV",
    ".tsv": "CSV",
    ".jsonl": "JSON lines",
    ".ndjson": "JSON lines",
    ".json": "JSON lines",
}
# Files the Hub keeps beside the data (datasets.data_files.FILES_TO_IGNORE): never data.
NOT_DATA = {"config.json", "dataset_info.json", "dataset_infos.json", "dataset_dict.json"}
# Where data files may lie, besides directly in the folder.
HUB_DATA_FOLDER = "data"
SHARD = re.compile(r"(\d+)-of-(\d+)")
# Bytes of text parsed at once by the CSV and JSON lines readers.
BLOCK_BYTES = 1 << 20


def _words(relative: Path) -> list[str]:
    """The words of a path inside the dataset folder, lower case, its extension left out."""
    return [w for w in re.split(r"[-._ /0-9]+", relative.with_suffix("").as_posix().lower()) if w]


def _split_of(relative: Path, split_words: dict[str, tuple[str, ...]]) -> str | None:
    words = set(_words(relative))
    found = [split for split, names in split_words.items() if words & set(names)]
    if len(found) > 1:
        raise UserError(
            f"download.dataset: {relative}: its name fits the splits {found}; rename it so that it names one"
        )
    return found[0] if found else None


def _is_data(relative: Path) -> bool:
    hidden = any(part.startswith((".", "__")) for part in relative.parts)
    return not hidden and relative.suffix.lower() in FORMATS and relative.name.lower() not in NOT_DATA


def _level(relative: Path, split_words: dict[str, tuple[str, ...]]) -> str:
    """Where a data file lies: ``.`` (directly in the folder), ``data/`` or ``<split>/``; refused elsewhere."""
    if len(relative.parts) == 1:
        return "."
    every_word = {word for words in split_words.values() for word in words}
    if len(relative.parts) == 2 and (relative.parts[0] == HUB_DATA_FOLDER or relative.parts[0].lower() in every_word):
        return f"{relative.parts[0]}/" if relative.parts[0] == HUB_DATA_FOLDER else "<split>/"
    raise UserError(
        f"download.dataset: {relative} lies in a subfolder that is neither {HUB_DATA_FOLDER}/ nor named after a "
        f"split; data files lie directly in the folder, in {HUB_DATA_FOLDER}/, or in train/ validation/ test/: "
        f"move it there or out of the folder (or point download.dataset at its folder)"
    )


def _files_below(folder: Path) -> list[Path]:
    """The files below ``folder``, relative to it. A symlinked folder inside it is refused: DVC, which
    hashes the folder as download's dependency, does not look inside one, so a change behind the link
    would never rerun the pipeline (a linked file, or ``folder`` itself a link, it follows)."""
    files = []
    for directory, subdirectories, names in os.walk(folder):
        relative = Path(directory).relative_to(folder)
        for name in subdirectories:
            linked = relative / name
            if (Path(directory) / name).is_symlink() and not any(p.startswith((".", "__")) for p in linked.parts):
                raise UserError(
                    f"download.dataset: {linked.as_posix()} is a symbolic link to a folder, which DVC does not look "
                    f"inside (a change there would not rerun download); point download.dataset at a folder that "
                    f"holds the files (a link to the whole dataset folder works), or link the files one by one"
                )
        files += [relative / name for name in names if (Path(directory) / name).is_file()]
    return files


def find_split_files(folder: Path, split_words: dict[str, tuple[str, ...]]) -> dict[str, list[Path]]:
    """The data files of each split (in the order splits first appear by path; files in name order).

    ``split_words`` maps each split to the words that name it in a path (sources.SPLIT_WORDS).
    """
    found = sorted(_files_below(folder))
    relatives = [r for r in found if _is_data(r)]
    if not relatives:
        others = [r.as_posix() for r in found][:5]
        raise UserError(
            f"download.dataset: {folder} holds no data files (found {others}); give a folder of parquet, CSV or "
            f"JSON lines files such as train.parquet and test.parquet ({', '.join(FORMATS)})"
        )
    formats: dict[str, Path] = {}
    for relative in relatives:
        formats.setdefault(FORMATS[relative.suffix.lower()], relative)
    if len(formats) > 1:
        named = " and ".join(f"{relative} ({name})" for name, relative in formats.items())
        raise UserError(
            f"download.dataset: {folder} mixes data formats: {named}; keep the files of one format in the folder "
            f"and move the others out"
        )
    levels: dict[str, Path] = {}
    for relative in relatives:
        levels.setdefault(_level(relative, split_words), relative)
    if len(levels) > 1:
        first, second = list(levels.values())[:2]
        raise UserError(
            f"download.dataset: {folder} holds data files at two levels ({first} and {second}); keep them all "
            f"directly in the folder, all in {HUB_DATA_FOLDER}/, or all in folders named after their split"
        )
    splits: dict[str, list[Path]] = {}
    unnamed = []
    for relative in relatives:
        split = _split_of(relative, split_words)
        if split is None:
            unnamed.append(relative)
        else:
            splits.setdefault(split, []).append(relative)
    if not splits:  # as datasets does: when no file names a split, every file is train
        return {"train": [folder / relative for relative in relatives]}
    if unnamed:
        names = ", ".join(words[0] for words in split_words.values())
        raise UserError(
            f"download.dataset: cannot tell which split {unnamed[0]} belongs to; "
            f"name each file after its split ({names})"
        )
    for split, members in splits.items():
        _check_one_name(split, members)
    return {split: [folder / relative for relative in members] for split, members in splits.items()}


def _check_one_name(split: str, members: list[Path]) -> None:
    """The files of one split differ in digits only (shards), and no shard of an ``-of-N`` set is missing."""
    names = {re.sub(r"\d+", "#", relative.as_posix().lower()): relative for relative in members}
    if len(names) > 1:
        first, second = list(names.values())[:2]
        raise UserError(
            f"download.dataset: {first} and {second} would both be the {split} split; keep one of them (move the "
            f"other out of the folder), or name them as shards of one split (train-00000-of-00002, ...)"
        )
    shards = [match for relative in members if (match := SHARD.search(relative.name))]
    if len(shards) == len(members):
        total = max(int(match.group(2)) for match in shards)
        missing = sorted(set(range(total)) - {int(match.group(1)) for match in shards})
        if missing:
            raise UserError(
                f"download.dataset: the {split} split's shards are incomplete ({members[0]}: "
                f"{total - len(missing)} of {total} present, missing index {missing[:5]}); fetch every shard"
            )


# ---------------------------------------------------------------- reading


@dataclass
class DataFile:
    """One data file: its columns (names; types as they will be read), rows, and batches of chosen columns."""

    path: Path
    format: str
    schema: pa.Schema  # parquet: the file's own, metadata included
    num_rows: int
    column_types: dict[str, pa.DataType] = field(default_factory=dict)  # CSV / JSON lines: the type to read as
    mixed: dict[str, str] = field(default_factory=dict)  # JSON lines: a field of two types -> what they are

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def batches(self, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Record batches of ``columns``, in this order, of at most ``batch_rows`` rows."""
        if self.format == "parquet":
            return _parquet_batches(self, columns, batch_rows)
        for column in columns:
            if column in self.mixed:
                raise UserError(f"{self.path}: field {column!r} holds {self.mixed[column]}; give it one JSON type")
        reader = _csv_batches if self.format == "CSV" else _json_batches
        return _rechunk(reader(self, columns), batch_rows)


def open_parquet(path: Path) -> pq.ParquetFile:
    """A parquet file read through a buffered stream, not pre-buffered: memory bounded by a page, not a row group."""
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    except (OSError, pa.ArrowException) as error:
        raise access_fault(path, error) or UserError(
            f"{path}: not a readable parquet file ({type(error).__name__}); replace it"
        ) from None


def _parquet_batches(data: DataFile, columns: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
    try:
        yield from open_parquet(data.path).iter_batches(batch_size=batch_rows, columns=columns)
    except (OSError, pa.ArrowException) as error:
        raise access_fault(data.path, error) or UserError(
            f"{data.path}: not a readable parquet file ({type(error).__name__}: {str(error)[:200]}); replace it"
        ) from None


def _csv_options(path: Path) -> pa_csv.ParseOptions:
    return pa_csv.ParseOptions(delimiter="\t" if path.suffix.lower() == ".tsv" else ",", newlines_in_values=True)


def _open_csv(path: Path, columns: list[str], types: dict[str, pa.DataType]) -> pa_csv.CSVStreamingReader:
    convert = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=columns,
        null_values=[""],  # only an empty cell is missing: a text "NA" or "null" stays text
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    return pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=_csv_options(path),
        convert_options=convert,
    )


def _unreadable(path: Path, what: str, error: Exception) -> UserError:
    place = access_fault(path, error)  # permissions, a folder in the file's place: not the content's fault
    if place is not None:
        return place
    detail = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
    return UserError(f"{path}: not readable as {what} ({detail}); fix or replace the file")


# The label column's type in CSV, narrowest first: each later one reads every value of the ones before.
CSV_LABEL_TYPES = (pa.int64(), pa.float64(), pa.string())
_INTEGER = r"^-?[0-9]+$"


def _csv_label_type(values: pa.Array) -> pa.DataType:
    values = values.drop_null()
    if pc.all(pc.match_substring_regex(values, _INTEGER)).as_py() is not False:
        return pa.int64()
    try:
        pc.cast(values, pa.float64())
    except pa.ArrowInvalid:
        return pa.string()
    return pa.float64()


def _scan_csv(path: Path, label_column: str) -> DataFile:
    """A CSV file's columns and rows, and its label column's type: one pass reading the labels only."""
    try:
        header = pa_csv.open_csv(
            path, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES), parse_options=_csv_options(path)
        ).schema.names
        counted = label_column if label_column in header else header[0]
        rows, label_type = 0, pa.int64()
        for batch in _open_csv(path, [counted], {counted: pa.string()}):
            rows += len(batch)
            found = _csv_label_type(batch.column(0))
            label_type = max(label_type, found, key=CSV_LABEL_TYPES.index)
    except (OSError, pa.ArrowException) as error:
        raise _unreadable(path, "CSV", error) from None
    types = {name: pa.string() for name in header}
    if label_column in header:
        types[label_column] = label_type
    return DataFile(path, "CSV", pa.schema([(name, types[name]) for name in header]), rows, types)


def _csv_batches(data: DataFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    try:
        yield from _open_csv(data.path, columns, {c: data.column_types[c] for c in columns})
    except (OSError, pa.ArrowException) as error:
        raise _unreadable(data.path, "CSV", error) from None


def read_csv_as_text(path: Path) -> tuple[list[str], Iterator[pa.RecordBatch]]:
    """A CSV file's column names (read now), and its record batches with every column as text and an
    empty cell missing: this module's CSV dialect, for a reader with no label column to type (predict)."""
    try:
        names = pa_csv.open_csv(
            path, read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES), parse_options=_csv_options(path)
        ).schema.names
    except (OSError, pa.ArrowException) as error:
        raise _unreadable(path, "CSV", error) from None

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            yield from _open_csv(path, names, {name: pa.string() for name in names})
        except (OSError, pa.ArrowException) as error:
            raise _unreadable(path, "CSV", error) from None

    return names, batches()


_JSON_KINDS = {str: "strings", bool: "booleans", int: "integers", float: "numbers", list: "arrays", dict: "objects"}
# What a line holds when it is JSON but not an object.
_NOT_AN_OBJECT = {str: "a string", bool: "a boolean", int: "a number", float: "a number", list: "an array"}
_JSON_TYPES = {"strings": pa.string(), "booleans": pa.bool_(), "integers": pa.int64(), "numbers": pa.float64()}


def _scan_json(path: Path) -> DataFile:
    """A JSON lines file's fields (in order of first appearance), their JSON types and its rows: one pass."""
    kinds: dict[str, dict[str, int]] = {}  # field -> JSON type -> the first line holding it
    examples: dict[str, object] = {}  # field -> its first array or object, to type it
    rows = 0
    try:
        with open(path, "rb") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line.decode("utf-8"))
                except UnicodeDecodeError:
                    raise UserError(f"{path}: line {number} is not UTF-8; save the file as UTF-8") from None
                except ValueError as error:
                    raise UserError(
                        f"{path}: line {number} is not JSON ({error.args[0].split(':')[0]}); give one JSON object "
                        f"per line"
                    ) from None
                if not isinstance(record, dict):
                    raise UserError(
                        f"{path}: line {number} is not a JSON object but {_NOT_AN_OBJECT.get(type(record), 'null')}; "
                        f'give one object per line ({{"text": ..., "label": ...}}): JSON lines, not one JSON document'
                    )
                rows += 1
                for name, value in record.items():
                    if value is None:
                        kinds.setdefault(name, {})
                        continue
                    kind = _JSON_KINDS[type(value)]
                    kinds.setdefault(name, {}).setdefault(kind, number)
                    if kind in ("arrays", "objects"):
                        examples.setdefault(name, value)
    except OSError as error:
        raise _unreadable(path, "JSON lines", error) from None
    types, mixed = {}, {}
    for name, seen in kinds.items():
        if set(seen) == {"integers", "numbers"}:
            types[name] = pa.float64()
        elif len(seen) > 1:
            mixed[name] = " and ".join(f"{kind} (line {line})" for kind, line in seen.items())
            types[name] = pa.string()
        elif seen:
            kind = next(iter(seen))
            types[name] = _JSON_TYPES.get(kind) or pa.array([examples[name]]).type
        else:
            types[name] = pa.string()  # every value null
    return DataFile(path, "JSON lines", pa.schema(list(types.items())), rows, types, mixed)


def _json_batches(data: DataFile, columns: list[str]) -> Iterator[pa.RecordBatch]:
    if data.num_rows == 0:
        return
    parse = pa_json.ParseOptions(
        explicit_schema=pa.schema([(c, data.column_types[c]) for c in columns]),
        unexpected_field_behavior="ignore",
    )
    try:
        read = pa_json.ReadOptions(block_size=BLOCK_BYTES)
        for batch in pa_json.open_json(data.path, read_options=read, parse_options=parse):
            yield batch.select(columns)
    except (OSError, pa.ArrowException) as error:
        raise _unreadable(data.path, "JSON lines", error) from None


def _rechunk(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """``batches`` (blocks of any size) as batches of exactly ``batch_rows`` rows, the last one smaller."""
    held: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        held.append(batch)
        count += len(batch)
        while count >= batch_rows:
            table = pa.Table.from_batches(held).combine_chunks()
            yield table.slice(0, batch_rows).to_batches()[0]
            rest = table.slice(batch_rows)
            held = rest.to_batches() if len(rest) else []
            count = len(rest)
    if count:
        yield pa.Table.from_batches(held).combine_chunks().to_batches()[0]


def open_data_file(path: Path, label_column: str) -> DataFile:
    """``path`` opened for reading (CSV and JSON lines: scanned once for their columns' types and rows)."""
    format_ = FORMATS[path.suffix.lower()]
    if format_ == "parquet":
        handle = open_parquet(path)
        return DataFile(path, format_, handle.schema_arrow, handle.metadata.num_rows)
    if format_ == "CSV":
        return _scan_csv(path, label_column)
    return _scan_json(path)


def open_split_files(
    folder: Path, split_words: dict[str, tuple[str, ...]], label_column: str
) -> dict[str, list[DataFile]]:
    """Every split's data files, opened; CSV label columns read as one type across the folder."""
    splits = {
        split: [open_data_file(path, label_column) for path in paths]
        for split, paths in find_split_files(folder, split_words).items()
    }
    every = [data for files in splits.values() for data in files]
    csv_labels = [data.column_types[label_column] for data in every if label_column in data.column_types]
    if every[0].format == "CSV" and csv_labels:
        widest = max(csv_labels, key=CSV_LABEL_TYPES.index)
        for data in every:
            if label_column in data.column_types:
                data.column_types[label_column] = widest
                data.schema = data.schema.set(data.schema.get_field_index(label_column), pa.field(label_column, widest))
    for files in splits.values():
        for data in files[1:]:
            if set(data.column_names) != set(files[0].column_names):
                raise UserError(
                    f"{data.path}: columns {data.column_names} differ from {files[0].path.name}'s "
                    f"{files[0].column_names}; give every file of a split the same columns"
                )
    return splits


def describe_split(folder: Path, split: str, files: list[DataFile]) -> str:
    """One log line: the files behind a split, with their rows (the first and last few when there are many)."""
    shown = [f"{data.path.relative_to(folder)} ({data.num_rows:,} rows)" for data in files]
    if len(shown) > 6:
        shown = [*shown[:3], f"... {len(shown) - 6} more ...", *shown[-3:]]
    total = f": {sum(data.num_rows for data in files):,} rows in {len(files)} files" if len(files) > 1 else ""
    return f"download: {split} <- {', '.join(shown)}{total}"
