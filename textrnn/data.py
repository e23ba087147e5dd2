"""Datasets on disk: raw splits from HF, stratified splits, and encoded id arrays (npz)."""
from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from textrnn.errors import UserError
from textrnn.io import atomic_dir, atomic_path, write_json

log = logging.getLogger(__name__)

RAW_SPLITS = ("train", "test")
SPLITS = ("train", "valid", "test")
LABELS_FILE = "labels.json"


# ---------------------------------------------------------------- download

def load_hf_dataset(dataset: str, revision: Optional[str]) -> Tuple[Dict[str, pd.DataFrame], Dict[str, object]]:
    """Load ``dataset`` (a hub id or a local folder of parquet files): its splits and its features."""
    import datasets  # slow to import: only this stage needs it
    from huggingface_hub.utils import logging as hub_logging

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()  # "Generating train split" bars would bury a one-line error
    hub_logging.set_verbosity_error()
    local = Path(dataset).expanduser()
    try:
        if local.is_dir():
            loaded = datasets.load_dataset(str(local))
        elif dataset.startswith((".", "/", "~")):
            raise UserError(f"download.dataset: local folder {dataset!r} does not exist")
        else:
            loaded = datasets.load_dataset(dataset, revision=revision)
    except UserError:
        raise
    except ConnectionError:
        raise UserError(
            f"cannot reach the Hugging Face Hub for {dataset!r}; point download.dataset at a local "
            f"folder of parquet files, e.g. `dvc exp run -S download.dataset=../shared/imdb`"
        ) from None
    except Exception as error:  # datasets raises many types; each is the user's data problem here
        detail = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        raise UserError(f"cannot load dataset {dataset!r}: {type(error).__name__}: {detail}") from None
    splits = {name: split.to_pandas() for name, split in loaded.items()}
    features = {name: split.features for name, split in loaded.items()}
    return splits, next(iter(features.values()), {})


def label_names_from_features(features, label_column: str) -> Optional[List[str]]:
    feature = features.get(label_column) if hasattr(features, "get") else None
    names = getattr(feature, "names", None)
    return list(names) if names else None


def standardize_splits(splits: Dict[str, pd.DataFrame], text_column: str, label_column: str,
                       label_names: Optional[List[str]], source: str) -> Tuple[Dict[str, pd.DataFrame], List[str]]:
    """Keep train (and test, when present) as columns ``text`` (str), ``label`` (0..k-1).

    Rows with a null, empty or whitespace-only text are dropped and counted in the log.
    Labels must lie in the ClassLabel's classes; without a ClassLabel, the sorted distinct
    values become the classes.
    """
    if "train" not in splits:
        raise UserError(f"{source}: no 'train' split (found {sorted(splits)})")
    kept = {name: splits[name] for name in RAW_SPLITS if name in splits}
    for name, frame in kept.items():
        missing = [c for c in (text_column, label_column) if c not in frame.columns]
        if missing:
            raise UserError(
                f"{source} split {name!r}: no column {missing[0]!r} (columns: {list(frame.columns)}); "
                f"set download.text_column / download.label_column"
            )
    if label_names is None:
        values = pd.concat([f[label_column] for f in kept.values()])
        if values.isna().any():
            raise UserError(f"{source}: column {label_column!r} has missing labels")
        label_names = [str(v) for v in sorted(values.unique())]
        mapping = {v: i for i, v in enumerate(sorted(values.unique()))}
    else:
        mapping = None
    out = {}
    for name, frame in kept.items():
        text = frame[text_column]
        blank = text.isna() | text.astype(str).str.strip().eq("")
        if blank.any():
            log.warning("%s split %r: dropped %d rows with a null, empty or whitespace-only text",
                        source, name, int(blank.sum()))
        frame = frame.loc[~blank]
        if mapping is not None:
            labels = frame[label_column].map(mapping).to_numpy(dtype=np.int64)
        else:
            labels = pd.to_numeric(frame[label_column], errors="coerce")
            bad = labels.isna() | ~labels.isin(range(len(label_names)))
            if bad.any():
                value = frame[label_column][bad].iloc[0]
                value = value.item() if isinstance(value, np.generic) else value
                raise UserError(
                    f"{source} split {name!r}: label {value!r} is outside the classes {label_names} "
                    f"(0..{len(label_names) - 1}) in {int(bad.sum())} of {len(frame)} rows"
                )
            labels = labels.to_numpy(dtype=np.int64)
        out[name] = pd.DataFrame({"text": frame[text_column].astype(str).to_numpy(), "label": labels})
    if len(label_names) < 2:
        raise UserError(f"{source}: found {len(label_names)} class; a classifier needs at least 2")
    return out, label_names


def write_split_dir(directory: Path, frames: Dict[str, pd.DataFrame], label_names: List[str]) -> None:
    """Replace ``directory`` with ``<split>.parquet`` for each frame and ``labels.json``, all at once."""
    with atomic_dir(Path(directory)) as tmp:
        for name, frame in frames.items():
            frame.to_parquet(tmp / f"{name}.parquet", index=False)
        write_json(tmp / LABELS_FILE, {"names": label_names})


def read_labels(directory: Path) -> List[str]:
    path = Path(directory) / LABELS_FILE
    try:
        names = json.loads(path.read_text(encoding="utf-8"))["names"]
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage that writes it (`dvc repro`)") from None
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path}: not a textrnn labels file; rerun `dvc repro -f`") from None
    return [str(n) for n in names]


def read_split(path: Path, n_classes: int) -> pd.DataFrame:
    """Read one ``text``/``label`` parquet file and check it."""
    path = Path(path)
    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run the stage that writes it (`dvc repro`)") from None
    except Exception as error:
        raise UserError(f"{path}: not a readable parquet file ({type(error).__name__}); "
                        f"rerun the stage that writes it") from None
    for column in ("text", "label"):
        if column not in frame.columns:
            raise UserError(f"{path}: no column {column!r} (columns: {list(frame.columns)})")
    labels = frame["label"]
    if labels.isna().any() or not labels.isin(range(n_classes)).all():
        bad = labels[labels.isna() | ~labels.isin(range(n_classes))].iloc[0]
        bad = bad.item() if isinstance(bad, np.generic) else bad
        raise UserError(f"{path}: label {bad!r} is outside the classes 0..{n_classes - 1}")
    if frame["text"].isna().any():
        raise UserError(f"{path}: {int(frame['text'].isna().sum())} null texts; rerun `dvc repro -f download`")
    return frame


# ---------------------------------------------------------------- split

def stratified_split(frame: pd.DataFrame, size: float, seed: int, what: str, source: str,
                     label_names: Optional[List[str]] = None) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``frame`` into (rest, part) with ``size`` of it in part, stratified on ``label``.

    Every class (each of ``label_names`` when given) must keep at least one row on both sides.
    """
    from sklearn.model_selection import train_test_split

    counts = frame["label"].value_counts()
    n_part = int(np.ceil(size * len(frame)))
    if n_part < len(counts) or len(frame) - n_part < len(counts):
        raise UserError(
            f"{source}: {len(frame)} rows cannot give every one of {len(counts)} classes a row in both "
            f"train and {what} with size {size}; use more data or change split.{what}_size"
        )
    if counts.min() < 2:
        raise UserError(
            f"{source}: class {int(counts.idxmin())} has {int(counts.min())} row; a stratified {what} split "
            f"needs at least 2 per class"
        )
    rest, part = train_test_split(frame, test_size=size, random_state=seed, stratify=frame["label"])
    classes = range(len(label_names)) if label_names is not None else counts.index
    for label in classes:
        rows = {"train": int((rest["label"] == label).sum()), what: int((part["label"] == label).sum())}
        empty = [side for side, n in rows.items() if n == 0]
        if empty:
            name = f"{label} ({label_names[label]!r})" if label_names is not None else f"{label}"
            raise UserError(
                f"{source}: class {name} would have no row in {empty[0]} ({int(counts.get(label, 0))} rows "
                f"of it in all); add rows of this class, or change split.{what}_size"
            )
    return rest.reset_index(drop=True), part.reset_index(drop=True)


# ---------------------------------------------------------------- encoded splits

@dataclass
class EncodedSplit:
    """Reviews as token ids: review *i* is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray  # int32, all reviews concatenated
    offsets: np.ndarray  # int64, n + 1 entries
    labels: np.ndarray  # int64, n entries
    label_names: List[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def save(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, ids=self.ids, offsets=self.offsets, labels=self.labels,
                         label_names=np.array(self.label_names, dtype=str))

    @classmethod
    def load(cls, path: Path, vocab_size: Optional[int] = None) -> "EncodedSplit":
        """Read and check ``path``; with ``vocab_size``, every id must lie in the vocabulary."""
        path = Path(path)
        try:
            # Each key of an NpzFile reads from disk again: take every array out exactly once.
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in ("ids", "offsets", "labels", "label_names")}
        except FileNotFoundError:
            raise UserError(f"{path}: not found; run `dvc repro vectorize`") from None
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as error:
            raise UserError(f"{path}: corrupt or not a textrnn vector file ({type(error).__name__}); "
                            f"rerun `dvc repro -f vectorize`") from None
        split = cls(arrays["ids"], arrays["offsets"], arrays["labels"], [str(n) for n in arrays["label_names"]])
        offsets = split.offsets
        if (offsets.ndim != 1 or len(offsets) != len(split.labels) + 1 or offsets[0] != 0
                or offsets[-1] != len(split.ids) or np.any(np.diff(offsets) < 0)):
            raise UserError(f"{path}: offsets do not match ids and labels; rerun `dvc repro -f vectorize`")
        ids = split.ids
        if vocab_size is not None and len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
            raise UserError(f"{path}: token ids exceed the vocabulary ({vocab_size} tokens); "
                            f"rerun `dvc repro -f vectorize`")
        return split

    def last_tokens(self, max_tokens: Optional[int]) -> "EncodedSplit":
        """The same reviews, each cut to its last ``max_tokens`` tokens (None keeps all)."""
        if max_tokens is None or len(self) == 0 or self.lengths.max() <= max_tokens:
            return self
        starts = np.maximum(self.offsets[:-1], self.offsets[1:] - max_tokens)
        lengths = self.offsets[1:] - starts
        index = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return EncodedSplit(self.ids[index], offsets, self.labels, self.label_names)


# ---------------------------------------------------------------- batches

def length_buckets(lengths: np.ndarray, batch_size: int, rng: Optional[np.random.Generator] = None) -> List[np.ndarray]:
    """Row indices grouped into batches of similar length.

    With ``rng``, reviews of equal length are shuffled before sorting and the batch order is
    shuffled (training draws the buckets once per run and reshuffles their order every epoch).
    Without it, the order is fixed: shortest first.
    """
    order = np.arange(len(lengths))
    if rng is not None:
        order = rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_batch(ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_id: int,
              side: str = "right") -> Tuple[np.ndarray, np.ndarray]:
    """The reviews ``rows`` as a [batch, longest] int64 matrix padded with ``pad_id``, and their lengths."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    width = max(int(lengths.max()) if len(rows) else 0, 1)
    position = np.arange(width)[None, :]
    if side == "right":
        real = position < lengths[:, None]
        source = starts[:, None] + position
    elif side == "left":
        real = position >= (width - lengths)[:, None]
        source = starts[:, None] + position - (width - lengths)[:, None]
    else:
        raise ValueError(f"side is 'left' or 'right', got {side!r}")
    tokens = np.where(real, ids[np.where(real, source, 0)] if len(ids) else 0, pad_id).astype(np.int64)
    return tokens, lengths.astype(np.int64)
