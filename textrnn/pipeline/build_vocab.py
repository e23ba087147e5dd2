"""The build_vocab stage's work, as a function of its params section and its paths (stages/build_vocab.py calls it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from textrnn.data import splits as split_files
from textrnn.text.encoding import CHUNK_TEXTS, count_chunks, resolve_workers
from textrnn.text.vocab import Vocab

log = logging.getLogger("textrnn")

# A train split whose tokens are <unk> more often than this gets a warning: the vocabulary is too small.
HIGH_UNKNOWN_RATE = 0.05


def run(params: dict[str, Any], split_dir: Path, vocab_path: Path) -> Vocab:
    """The vocabulary of the train split: tokens seen at least ``min_freq`` times, by descending count."""
    train_path = Path(split_dir) / "train.parquet"
    split_files.read_labels(split_dir)
    workers = resolve_workers(params["workers"], split_files.num_rows(train_path))
    counts = count_chunks(split_files.iter_text_chunks(train_path, CHUNK_TEXTS), workers)
    vocab = Vocab.build(counts, min_freq=params["min_freq"], max_size=params["max_size"])
    vocab.save(vocab_path)
    total = sum(counts.values())
    unknown = total - sum(counts[token] for token in vocab.itos if token in counts)
    rate = unknown / total if total else 0.0
    log.info(
        "build_vocab: %d distinct tokens in train, %d kept (min_freq %d, max_size %s); %.1f%% of train "
        "tokens become <unk> -> %s",
        len(counts),
        len(vocab),
        params["min_freq"],
        params["max_size"],
        100 * rate,
        vocab_path,
    )
    if rate > HIGH_UNKNOWN_RATE:
        log.warning(
            "build_vocab: %.1f%% of the train tokens are <unk>: the model cannot see them; lower "
            "vocab.min_freq (now %d) or raise vocab.max_size",
            100 * rate,
            params["min_freq"],
        )
    return vocab
