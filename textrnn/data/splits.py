"""Split files (parquet: ``text`` str, ``label`` int64) and their ``labels.json``; stratified splits;
the unlabelled texts (``unlabelled.parquet``: ``text``, ``split``); texts as 64-bit hashes.

A split file is written and read in record batches. The stratified split is sklearn's
``train_test_split(..., stratify=labels)`` computed from the labels alone (tested equal), so
rows can be routed to their outputs in a stream and reordered in bounded memory.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from textrnn.core.errors import UserError
from textrnn.core.filesystem import access_fault, write_json
from textrnn.data import arrow

SPLITS = ("train", "valid", "test")
LABELS_FILE = "labels.json"
SCHEMA = pa.schema([("text", pa.string()), ("label", pa.int64())])
# The texts of the dataset's splits without labels (never a class, never scored), and the split each came from.
UNLABELLED_FILE = "unlabelled.parquet"
UNLABELLED_SCHEMA = pa.schema([("text", pa.string()), ("split", pa.string())])
BATCH_ROWS = 10_000
# Rows reordered in memory at once by ``write_reordered`` (bounds its memory whatever the data size).
REORDER_ROWS = 100_000


def write_labels(directory: Path, label_names: list[str]) -> None:
    write_json(Path(directory) / LABELS_FILE, {"names": list(label_names)})


def read_labels(directory: Path) -> list[str]:
    path = Path(directory) / LABELS_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["names"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage that writes it (`dvc repro`)") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a textrnn labels file; rerun `dvc repro -f`") from None
    # A list of distinct names (strings; integers from files written before names were strings).
    valid = isinstance(names, list) and all(isinstance(n, (str, int)) and not isinstance(n, bool) for n in names)
    if not valid or len({str(n) for n in names}) != len(names):
        raise UserError(f"{path}: not a textrnn labels file; rerun `dvc repro -f`")
    return [str(n) for n in names]


class SplitWriter:
    """Append record batches of ``text``/``label`` (the columns of ``schema``) to one parquet file."""

    def __init__(self, path: Path, schema: pa.Schema = SCHEMA):
        self.path = Path(path)
        self.rows = 0
        self.schema = schema
        self._writer = pq.ParquetWriter(self.path, schema)

    def write(self, *columns: pa.Array) -> None:
        if len(columns[0]):
            self._writer.write_batch(pa.record_batch(list(columns), schema=self.schema))
            self.rows += len(columns[0])

    def write_table(self, table: pa.Table) -> None:
        """Append ``table``'s columns of the schema, a row group per BATCH_ROWS rows at most."""
        for batch in table.select(self.schema.names).to_batches(BATCH_ROWS):
            self.write(*batch.columns)

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Parquet is read through a buffered stream of this many bytes: its pages are read as they are
# decoded, not a whole column chunk (a row group's column) at once.
READ_BUFFER_BYTES = 1 << 20


def _open(path: Path) -> pq.ParquetFile:
    try:
        # pre_buffer (pyarrow's default) keeps every row group it has read cached until the file is
        # closed: memory that grows with the file. buffer_size bounds a row group's read to a page.
        handle = pq.ParquetFile(path, pre_buffer=False, buffer_size=READ_BUFFER_BYTES)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage that writes it (`dvc repro`)") from None
    except (OSError, pa.ArrowException) as error:
        raise access_fault(path, error) or UserError(
            f"{path}: not a readable parquet file ({type(error).__name__}); rerun the stage that writes it"
        ) from None
    missing = [c for c in ("text", "label") if c not in handle.schema_arrow.names]
    if missing:
        raise UserError(f"{path}: no column {missing[0]!r} (columns: {handle.schema_arrow.names})")
    return handle


def num_rows(path: Path) -> int:
    return _open(path).metadata.num_rows


def read_split_labels(path: Path, n_classes: int) -> np.ndarray:
    """The ``label`` column of a split file, checked against the classes."""
    labels = np.concatenate(
        [arrow.to_numpy(batch.column(0)) for batch in iter_batches(path, ["label"])] or [np.zeros(0, np.int64)]
    )
    if labels.dtype.kind not in "iu" or (len(labels) and (labels.min() < 0 or labels.max() >= n_classes)):
        bad = labels[~np.isin(labels, np.arange(n_classes))][0] if labels.dtype.kind in "iuf" else labels[0]
        raise UserError(
            f"{path}: label {bad.item() if isinstance(bad, np.generic) else bad!r} is outside "
            f"the classes 0..{n_classes - 1}; rerun `dvc repro -f download`"
        )
    return labels.astype(np.int64)


def iter_batches(path: Path, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Record batches of ``columns`` of a split file, checked as they stream."""
    handle = _open(path)
    try:
        for batch in handle.iter_batches(batch_size=batch_rows, columns=columns):
            if "text" in columns and batch.column(columns.index("text")).null_count:
                raise UserError(f"{path}: null texts; rerun `dvc repro -f download`")
            yield batch
    except (OSError, pa.ArrowException) as error:
        raise UserError(
            f"{path}: not a readable parquet file ({type(error).__name__}); rerun the stage that writes it"
        ) from None


def iter_texts(path: Path, batch_rows: int = BATCH_ROWS) -> Iterator[str]:
    """Every text of a split file, streamed."""
    for batch in iter_batches(path, ["text"], batch_rows):
        yield from batch.column(0).to_pylist()


def unlabelled_splits(directory: Path) -> dict[str, int]:
    """The splits kept as texts without labels in ``directory/unlabelled.parquet``, and their rows ({} without one)."""
    path = Path(directory) / UNLABELLED_FILE
    if not path.exists():
        return {}
    try:
        handle = pq.ParquetFile(path, pre_buffer=False)
        counts: dict[str, int] = {}
        for batch in handle.iter_batches(batch_size=BATCH_ROWS, columns=["split"]):
            for pair in pc.value_counts(batch.column(0)).to_pylist():
                counts[pair["values"]] = counts.get(pair["values"], 0) + pair["counts"]
    except (OSError, pa.ArrowException, KeyError) as error:
        raise UserError(
            f"{path}: not a readable textrnn file ({type(error).__name__}); rerun `dvc repro -f download`"
        ) from None
    return counts


def _text_bytes(column: pa.Array, where: Path) -> tuple[bytes, np.ndarray]:
    """A string column's texts as UTF-8 back to back, and each one's byte offset (n + 1), from its own buffers."""
    if pa.types.is_large_string(column.type):
        column = column.cast(pa.string())
    if not pa.types.is_string(column.type):
        raise UserError(f"{where}: column 'text' holds {column.type}, not text; rerun `dvc repro -f download`")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset : column.offset + len(column) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = column.buffers()[2].slice(start, end - start).to_pybytes() if end > start else b""
    return data, offsets.astype(np.int64) - start


def hash_texts(column: pa.Array | pa.ChunkedArray, where: Path) -> np.ndarray:
    """A 64-bit hash of each text of a string column: int64, one per row.

    Python's own hash of the UTF-8 bytes (SipHash, keyed per process: compare hashes made in one
    process only). Equal texts have equal hashes; two of a million different texts collide with
    odds of about 1 in 10^7 (n^2 / 2^65), so counts of shared texts are exact but for such a collision.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    hashes = [np.zeros(0, np.int64)]
    for chunk in chunks:
        data, offsets = _text_bytes(chunk, where)
        bounds = offsets.tolist()
        pairs = zip(bounds[:-1], bounds[1:], strict=True)
        hashes.append(np.fromiter((hash(data[a:b]) for a, b in pairs), dtype=np.int64, count=len(chunk)))
    return np.concatenate(hashes)


def text_hashes(path: Path) -> np.ndarray:
    """``hash_texts`` of every text of a split file, in row order."""
    return np.concatenate(
        [np.zeros(0, np.int64)] + [hash_texts(batch.column(0), path) for batch in iter_batches(path, ["text"])]
    )


def iter_text_chunks(path: Path, rows: int) -> Iterator[tuple[bytes, np.ndarray]]:
    """The texts of a split file, up to ``rows`` at a time, as UTF-8 back to back and each one's byte offset.

    Read from the column's own buffers: no Python string is made (see ``textrnn.text.encoding.Chunk``).
    """
    for batch in iter_batches(path, ["text"], rows):
        yield _text_bytes(batch.column(0), path)


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """sklearn.utils.extmath._approximate_mode: how many rows each class gives, ties broken by ``rng``."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (indices,) = np.where(remainder == value)
            add_now = min(len(indices), need_to_add)
            indices = rng.choice(indices, size=add_now, replace=False)
            floored[indices] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_indices(
    labels: np.ndarray, size: float, seed: int, what: str, source: str, label_names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (rest, part) with ``size`` of the rows in part, stratified on ``labels``.

    The same rows in the same order as ``sklearn.model_selection.train_test_split(rows,
    test_size=size, random_state=seed, stratify=labels)``. Every class (each of ``label_names``
    when given) must keep at least one row on both sides.
    """
    n = len(labels)
    classes, class_of_row, class_counts = np.unique(labels, return_inverse=True, return_counts=True)
    n_part = math.ceil(size * n)
    n_rest = n - n_part
    if n_part < len(classes) or n_rest < len(classes):
        raise UserError(
            f"{source}: {n} rows cannot give every one of {len(classes)} classes a row in both "
            f"train and {what} with size {size}; use more data or change split.{what}_size"
        )
    if class_counts.min() < 2:
        raise UserError(
            f"{source}: class {int(classes[class_counts.argmin()])} has {int(class_counts.min())} row; "
            f"a stratified {what} split needs at least 2 per class"
        )
    class_rows = np.split(np.argsort(class_of_row, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_rest_per_class = _approximate_mode(class_counts, n_rest, rng)
    n_part_per_class = _approximate_mode(class_counts - n_rest_per_class, n_part, rng)
    rest_rows: list[np.intp] = []
    part_rows: list[np.intp] = []
    for rows, n_rest_i, n_part_i, count in zip(
        class_rows, n_rest_per_class, n_part_per_class, class_counts, strict=True
    ):
        shuffled = rows.take(rng.permutation(count), mode="clip")
        rest_rows.extend(shuffled[:n_rest_i])
        part_rows.extend(shuffled[n_rest_i : n_rest_i + n_part_i])
    rest, part = rng.permutation(rest_rows), rng.permutation(part_rows)
    wanted = range(len(label_names)) if label_names is not None else classes
    for label in wanted:
        sides = {"train": int(np.sum(labels[rest] == label)), what: int(np.sum(labels[part] == label))}
        empty = [side for side, count in sides.items() if count == 0]
        if empty:
            name = f"{label} ({label_names[label]!r})" if label_names is not None else f"{label}"
            raise UserError(
                f"{source}: class {name} would have no row in {empty[0]} ({int(np.sum(labels == label))} rows "
                f"of it in all); add rows of this class, or change split.{what}_size"
            )
    return rest.astype(np.int64), part.astype(np.int64)


def write_reordered(source: Path, outputs: dict[Path, np.ndarray], reorder_rows: int = REORDER_ROWS) -> np.ndarray:
    """Write each output file as ``source``'s rows at the given indices, in that order; return the
    ``hash_texts`` of ``source``'s texts, in its row order (from the same read).

    Streams ``source`` once, routing every row to a temporary part of its output that holds at
    most ``reorder_rows`` rows; then each part is put in order in memory and appended.
    """
    total = num_rows(source)
    if total <= reorder_rows:  # no more rows than one part holds: reordered in memory, no temporary parts
        table = pa.Table.from_batches(list(iter_batches(source, ["text", "label"])), SCHEMA)
        for path, indices in outputs.items():
            with SplitWriter(path) as out:
                out.write_table(table.take(arrow.int64_array(indices)))
        return hash_texts(table.column("text"), source)
    hashes = []
    destination = np.full(total, -1, dtype=np.int64)  # which output part each source row goes to
    position = np.zeros(total, dtype=np.int64)  # its place in the output
    paths = list(outputs)
    parts_per_output = [max(1, math.ceil(len(indices) / reorder_rows)) for indices in outputs.values()]
    first_part = np.concatenate([[0], np.cumsum(parts_per_output)])
    for k, indices in enumerate(outputs.values()):
        destination[indices] = first_part[k] + np.arange(len(indices)) // reorder_rows
        position[indices] = np.arange(len(indices))
    with tempfile.TemporaryDirectory(dir=Path(paths[0]).parent, prefix=".reorder.") as scratch:
        part_paths = [Path(scratch) / f"{p}.arrow" for p in range(first_part[-1])]
        writers: dict[int, pa.ipc.RecordBatchFileWriter] = {}
        schema = pa.schema([("text", pa.string()), ("label", pa.int64()), ("position", pa.int64())])
        start = 0
        try:
            for batch in iter_batches(source, ["text", "label"]):
                hashes.append(hash_texts(batch.column(0), source))
                rows = np.arange(start, start + len(batch))
                start += len(batch)
                parts = destination[rows]
                for part in np.unique(parts[parts >= 0]):
                    take = np.flatnonzero(parts == part)
                    if part not in writers:
                        writers[part] = pa.ipc.new_file(str(part_paths[part]), schema)
                    indices = arrow.int64_array(take)
                    columns = [batch.column(0).take(indices), batch.column(1).take(indices)]
                    writers[part].write_batch(
                        pa.record_batch([*columns, arrow.int64_array(position[rows[take]])], schema=schema)
                    )
        finally:
            for writer in writers.values():
                writer.close()
        for k, path in enumerate(paths):
            with SplitWriter(path) as out:
                for part in range(first_part[k], first_part[k + 1]):
                    if part not in writers:
                        continue
                    # memory-mapped: the part's pages are file-backed, not anonymous memory that grows with the part
                    table = pa.ipc.open_file(pa.memory_map(str(part_paths[part]))).read_all()
                    table = table.take(arrow.int64_array(np.argsort(arrow.to_numpy(table.column("position")))))
                    out.write_table(table)
                    part_paths[part].unlink()
    return np.concatenate(hashes)
