"""Tokenize many texts in worker processes: count their tokens, or turn them into token ids.

Texts come in chunks (lists of strings) from any iterable, so a corpus of any size streams
through with a bounded number of chunks in flight; results come back in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from textrnn import signals
from textrnn.errors import UserError
from textrnn.tokenizer import tokenize
from textrnn.vocab import UNK_ID, Vocab

# Below this many texts per worker a process pool costs more than it saves.
MIN_TEXTS_PER_WORKER = 2000
CHUNK_TEXTS = 1000

_worker_stoi: dict[str, int] = {}


def resolve_workers(workers, total: int | None = None) -> int:
    """``"auto"`` means one worker per CPU core; fewer when ``total`` texts would not keep them busy."""
    count = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    if total is not None:
        count = min(count, total // MIN_TEXTS_PER_WORKER)
    return max(1, count)


def chunked(texts: Iterable[str], size: int = CHUNK_TEXTS) -> Iterator[list[str]]:
    chunk: list[str] = []
    for text in texts:
        chunk.append(text)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _count_chunk(texts: list[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def _encode_chunk(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    get = _worker_stoi.get
    lengths = np.empty(len(texts), dtype=np.int64)
    ids: list[int] = []
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        lengths[i] = len(tokens)
        ids.extend([get(token, UNK_ID) for token in tokens])
    return np.array(ids, dtype=np.int32), lengths


def _start_worker(stoi: dict[str, int]) -> None:
    global _worker_stoi
    signals.default_in_worker()
    _worker_stoi = stoi


def ordered_map(func: Callable, chunks: Iterable, workers: int, stoi: dict[str, int] | None = None) -> Iterator:
    """``func`` over ``chunks`` in ``workers`` forked processes, yielding results in input order.

    At most two chunks per worker are in flight, so the input may be a stream of any length.
    """
    if workers <= 1:
        _start_worker_inline(stoi)
        for chunk in chunks:
            yield func(chunk)
        return
    # fork: the workers inherit the vocabulary without pickling it, and start in milliseconds.
    executor = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker, initargs=(stoi or {},)
    )
    pending: list[Future] = []
    try:
        for chunk in chunks:
            pending.append(executor.submit(func, chunk))
            if len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    except BrokenProcessPool:
        raise UserError(
            "a tokenizer worker process died (out of memory, or killed); rerun with fewer "
            "workers (vocab.workers / vectorize.workers)"
        ) from None
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _start_worker_inline(stoi: dict[str, int] | None) -> None:
    global _worker_stoi
    _worker_stoi = stoi or {}


def count_tokens(texts: Iterable[str], workers: int = 1) -> Counter:
    """How often each token occurs in ``texts``."""
    total: Counter = Counter()
    for counts in ordered_map(_count_chunk, chunked(texts), workers):
        total.update(counts)
    return total


def encode_chunks(
    chunks: Iterable[list[str]], vocab: Vocab, workers: int = 1
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each chunk of texts, in order: its token ids concatenated (int32) and each text's length."""
    return ordered_map(_encode_chunk, chunks, workers, stoi=vocab.stoi)


def encode_texts(texts: Sequence[str], vocab: Vocab, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all texts, concatenated (int32), and each text's start offset (n + 1 entries)."""
    parts = list(encode_chunks(chunked(texts), vocab, workers))
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    lengths = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets
