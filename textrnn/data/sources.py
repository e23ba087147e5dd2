"""Where the data comes from: a local folder of data files, or a dataset on the Hugging Face Hub.

Both are read in record batches, so a dataset of any size streams through in bounded memory.
A local folder (parquet, CSV or JSON lines) is read from its files every time (no cache keyed on
path or time can serve old rows); which files make each split, and how each format is read, is
``textrnn.data.files``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from textrnn.core.errors import UserError
from textrnn.data import files as data_files

log = logging.getLogger(__name__)

# The split of texts without labels (the Hub's IMDB ``unsupervised``): kept as text, never a class.
UNLABELLED = "unlabelled"
# Our split name -> the words that name it in a file name (as in datasets.data_files) or a Hub split's name.
SPLIT_WORDS = {
    "train": ("train", "training"),
    "valid": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
    UNLABELLED: ("unsupervised", "unlabelled", "unlabeled"),
}
BATCH_ROWS = 10_000


@dataclass
class LabelPart:
    """A run of a split's rows that declares its own class names: one parquet file, or one Hub split.

    Hugging Face keeps ClassLabel names per file, so two files of one dataset can disagree;
    ``textrnn.data.raw`` checks them all and maps each part's ids by name.
    """

    where: str  # the file, or the Hub split, as an error message names it
    rows: int  # its rows: the split's batches read the parts' rows one part after the other
    names: object = None  # its ClassLabel names as declared (unchecked: raw.py checks them); None: none


@dataclass
class SplitSource:
    """One split's rows, readable in record batches of chosen columns."""

    name: str
    num_rows: int
    column_names: list[str]
    read_batches: Callable[[list[str], int], Iterator[pa.RecordBatch]]
    files: list[Path] = field(default_factory=list)
    label_parts: list[LabelPart] = field(default_factory=list)  # empty: the whole split, without names

    def batches(self, columns: list[str], batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
        return self.read_batches(columns, batch_rows)


@dataclass
class Source:
    """A dataset: its splits (train, and valid / test / unlabelled where it has them)."""

    description: str
    splits: dict[str, SplitSource]


def find_split_files(folder: Path) -> dict[str, list[Path]]:
    """The data files of each split, by the words in their paths (``train-0000.parquet``, ``data/test.csv``)."""
    return data_files.find_split_files(Path(folder), SPLIT_WORDS)


def _class_label_names(schema: pa.Schema, label_column: str) -> object:
    """The ClassLabel names that Hugging Face writes into a parquet file's schema metadata, as written
    (raw.py checks that they are distinct strings); None when the file declares none."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        features = json.loads(raw)["info"]["features"]
        return features[label_column].get("names")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _read_batches(files: list[data_files.DataFile]) -> Callable[[list[str], int], Iterator[pa.RecordBatch]]:
    def read_batches(columns_wanted: list[str], batch_rows: int) -> Iterator[pa.RecordBatch]:
        for data in files:
            yield from data.batches(columns_wanted, batch_rows)

    return read_batches


def local_source(folder: Path, label_column: str) -> Source:
    """A folder of parquet, CSV or JSON lines files, read from disk on every call."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"download.dataset: local folder '{folder}' does not exist")
    splits = {}
    for name, files in data_files.open_split_files(folder, SPLIT_WORDS, label_column).items():
        parts = [LabelPart(str(d.path), d.num_rows, _class_label_names(d.schema, label_column)) for d in files]
        log.info(data_files.describe_split(folder, name, files))
        rows = sum(d.num_rows for d in files)
        splits[name] = SplitSource(
            name, rows, files[0].column_names, _read_batches(files), [d.path for d in files], parts
        )
    return Source(str(folder), splits)


def hub_source(dataset_id: str, revision: str | None, label_column: str, config: str | None = None) -> Source:
    """A Hugging Face Hub dataset (its configuration ``config``, for datasets that have several, such as
    GLUE's tasks), downloaded (and cached) by ``datasets`` at ``revision``."""
    from huggingface_hub.utils import logging as hub_logging

    import datasets  # slow to import: only the Hub path needs it

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()  # "Generating train split" bars would bury a one-line error
    hub_logging.set_verbosity_error()
    try:
        if config is None:
            loaded = datasets.load_dataset(dataset_id, revision=revision)
        else:
            loaded = datasets.load_dataset(dataset_id, config, revision=revision)
    except ConnectionError:
        raise UserError(
            f"cannot reach the Hugging Face Hub for {dataset_id!r}; use a local folder of parquet, CSV or JSON "
            f"lines files instead: `dvc exp run -S download.hub=null -S download.dataset=path/to/folder`"
        ) from None
    except Exception as error:  # datasets raises many types; each is the user's data problem here
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        advice = ""
        if "config name is missing" in detail.lower():  # datasets' words for a dataset of several configurations
            advice = "; name one with download.config (e.g. `-S download.config=sst2` for nyu-mll/glue)"
        raise UserError(f"cannot load dataset {dataset_id!r}: {type(error).__name__}: {detail}{advice}") from None
    splits = {}
    for hub_name, split in loaded.items():
        ours = next((s for s, words in SPLIT_WORDS.items() if hub_name.lower() in words), None)
        if ours is None or ours in splits:
            log.info(
                "download: %s: split %r is not train, validation, test or unsupervised (or a second one); left out",
                dataset_id,
                hub_name,
            )
            continue
        names = getattr(split.features.get(label_column), "names", None)
        part = LabelPart(f"{dataset_id} split {hub_name!r}", split.num_rows, names)

        def read_batches(columns_wanted, batch_rows, split=split):
            for table in split.select_columns(columns_wanted).with_format("arrow").iter(batch_size=batch_rows):
                yield from table.to_batches()

        splits[ours] = SplitSource(ours, split.num_rows, list(split.column_names), read_batches, label_parts=[part])
    name = dataset_id if config is None else f"{dataset_id} ({config})"
    return Source(f"{name}@{revision or 'latest'}", splits)
