"""The vectorize stage's work, as a function of its params section and its paths (stages/vectorize.py calls it)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from textrnn.core.filesystem import atomic_dir
from textrnn.data import splits as split_files
from textrnn.data.vectors import SplitVectorsWriter, write_meta
from textrnn.text import tokenizer
from textrnn.text.encoding import CHUNK_TEXTS, encode_chunks, resolve_workers
from textrnn.text.vocab import UNK_ID, Vocab

log = logging.getLogger("textrnn")


def run(params: dict[str, Any], split_dir: Path, vocab_path: Path, out_dir: Path) -> dict[str, dict[str, int]]:
    """Every split as token ids (a folder of .npy files per split, see textrnn.data.vectors)."""
    split_dir = Path(split_dir)
    vocab = Vocab.load(vocab_path)
    label_names = split_files.read_labels(split_dir)
    stats: dict[str, dict[str, int]] = {}
    with atomic_dir(out_dir) as tmp:
        for name in split_files.SPLITS:
            path = split_dir / f"{name}.parquet"
            labels = split_files.read_split_labels(path, len(label_names))
            writer = SplitVectorsWriter(tmp / name)
            unknown, longest = 0, 0
            workers = resolve_workers(params["workers"], len(labels))
            chunks = split_files.iter_text_chunks(path, CHUNK_TEXTS)
            for ids, lengths in encode_chunks(chunks, vocab, workers):
                writer.append(ids, lengths)
                unknown += int(np.count_nonzero(ids == UNK_ID))
                longest = max(longest, int(lengths.max(initial=0)))
            reviews = writer.close(labels)
            stats[name] = {"reviews": reviews, "tokens": writer.tokens}
            log.info(
                "vectorize: %s: %d reviews, %d tokens (%.1f%% <unk>), longest %d -> %s",
                name,
                reviews,
                writer.tokens,
                100 * unknown / writer.tokens if writer.tokens else 0.0,
                longest,
                Path(out_dir) / name,
            )
        write_meta(tmp, label_names, vocab.fingerprint(), tokenizer.fingerprint(), stats)
    return stats
