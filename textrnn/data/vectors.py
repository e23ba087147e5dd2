"""Encoded splits on disk: a folder of ``.npy`` files per split that training and evaluation memory-map.

::

    <vectors>/meta.json          {"label_names", "vocab_sha256", "tokenizer", "splits": {name: {"reviews", "tokens"}}}
    <vectors>/<split>/ids.npy     int32, every review's token ids concatenated
    <vectors>/<split>/offsets.npy int64, n + 1 entries: review i is ids[offsets[i]:offsets[i + 1]]
    <vectors>/<split>/labels.npy  int64, n entries

``ids.npy`` is written as it streams in: its header is reserved first and filled in at the end.
No file holds pickled objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from textrnn.core.errors import UserError
from textrnn.core.filesystem import read_fault, write_json

META_FILE = "meta.json"
_HEADER_BYTES = 128  # a 1-D array's .npy header always fits: magic, version, length, dict, padding


@dataclass
class EncodedSplit:
    """Reviews as token ids: review *i* is ``ids[offsets[i]:offsets[i + 1]]``."""

    ids: np.ndarray  # int32, all reviews concatenated (memory-mapped when opened from disk)
    offsets: np.ndarray  # int64, n + 1 entries
    labels: np.ndarray  # int64, n entries
    label_names: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def sequence(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def last_tokens(self, max_tokens: int | None) -> EncodedSplit:
        """The same reviews, each cut to its last ``max_tokens`` tokens (None keeps all)."""
        if max_tokens is None or len(self) == 0 or self.lengths.max() <= max_tokens:
            return self
        starts = np.maximum(self.offsets[:-1], self.offsets[1:] - max_tokens)
        lengths = self.offsets[1:] - starts
        index = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return EncodedSplit(self.ids[index], offsets, self.labels, self.label_names)


def _npy_header(dtype: npt.DTypeLike, length: int) -> bytes:
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": (length,)}
    text = repr(header).encode("latin1")
    prefix = np.lib.format.MAGIC_PREFIX + bytes([1, 0])
    padding = _HEADER_BYTES - len(prefix) - 2 - len(text) - 1
    text = text + b" " * padding + b"\n"
    return prefix + len(text).to_bytes(2, "little") + text


class SplitVectorsWriter:
    """Write one split's ids chunk by chunk, then its offsets and labels."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ids = open(self.directory / "ids.npy", "wb")  # noqa: SIM115 (closed by close(), after every append)
        self._ids.write(b"\0" * _HEADER_BYTES)
        self._lengths: list[np.ndarray] = []
        self.tokens = 0

    def append(self, ids: np.ndarray, lengths: np.ndarray) -> None:
        self._ids.write(np.ascontiguousarray(ids, dtype=np.int32).tobytes())
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.tokens += len(ids)

    def close(self, labels: np.ndarray) -> int:
        """Finish the files; return the number of reviews."""
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, np.int64)
        if len(lengths) != len(labels):
            raise ValueError(f"{len(lengths)} encoded reviews for {len(labels)} labels")
        self._ids.seek(0)
        self._ids.write(_npy_header(np.int32, self.tokens))
        self._ids.close()
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        np.save(self.directory / "offsets.npy", offsets)
        np.save(self.directory / "labels.npy", np.asarray(labels, dtype=np.int64))
        return len(lengths)


def write_meta(
    directory: Path, label_names: list[str], vocab_sha256: str, tokenizer: str, splits: dict[str, dict[str, int]]
) -> None:
    write_json(
        Path(directory) / META_FILE,
        {"label_names": list(label_names), "vocab_sha256": vocab_sha256, "tokenizer": tokenizer, "splits": splits},
    )


def read_meta(directory: Path) -> dict[str, Any]:  # parsed JSON
    path = Path(directory) / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not {"label_names", "vocab_sha256", "tokenizer"} <= set(meta):
            raise ValueError
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run `dvc repro vectorize`") from None
    except OSError as error:
        raise read_fault(path, error) from None
    except (ValueError, UnicodeDecodeError):
        raise UserError(f"{path}: not a textrnn vectors file; rerun `dvc repro -f vectorize`") from None
    return meta


def _load(path: Path, dtype, mmap: bool) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"{path}: not found; run `dvc repro vectorize`") from None
    except OSError as error:
        if error.errno is not None:  # the file is there but cannot be read: rerunning vectorize would not help
            raise read_fault(path, error) from None
        raise UserError(
            f"{path}: corrupt or not a textrnn vector file ({type(error).__name__}); rerun `dvc repro -f vectorize`"
        ) from None
    except (ValueError, EOFError) as error:
        raise UserError(
            f"{path}: corrupt or not a textrnn vector file ({type(error).__name__}); rerun `dvc repro -f vectorize`"
        ) from None
    if array.dtype != np.dtype(dtype) or array.ndim != 1:
        raise UserError(
            f"{path}: holds {array.dtype} of {array.ndim} dimensions, not a 1-D {np.dtype(dtype)} "
            f"array; rerun `dvc repro -f vectorize`"
        )
    return array


def open_split(directory: Path, name: str, vocab_size: int | None = None) -> EncodedSplit:
    """Memory-map one split of ``directory`` and check it; with ``vocab_size``, every id must be below it."""
    meta = read_meta(directory)
    folder = Path(directory) / name
    ids = _load(folder / "ids.npy", np.int32, mmap=True)
    offsets = _load(folder / "offsets.npy", np.int64, mmap=False)
    labels = _load(folder / "labels.npy", np.int64, mmap=False)
    if len(offsets) != len(labels) + 1 or offsets[0] != 0 or offsets[-1] != len(ids) or np.any(np.diff(offsets) < 0):
        raise UserError(f"{folder}: offsets do not match ids and labels; rerun `dvc repro -f vectorize`")
    label_names = [str(n) for n in meta["label_names"]]
    if len(labels) and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise UserError(f"{folder}: labels outside the {len(label_names)} classes; rerun `dvc repro -f vectorize`")
    if vocab_size is not None and len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise UserError(
            f"{folder}: token ids exceed the vocabulary ({vocab_size} tokens); rerun `dvc repro -f vectorize`"
        )
    return EncodedSplit(ids, offsets, labels, label_names)
