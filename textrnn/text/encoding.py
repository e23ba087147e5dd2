"""Tokenize many texts on several cores: count their tokens, or turn them into token ids.

Texts come in chunks from any iterable, so a corpus of any size streams through with a bounded
number of chunks in flight; results come back in input order. Each chunk is tokenized by the C++
tokenizer (``textrnn.text.fast_tokenizer``) where it is available, in threads (its calls release the
GIL, so nothing is copied to another process), else by ``tokenizer.tokenize`` in forked worker
processes: the same tokens either way.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np

from textrnn.core import signals
from textrnn.core.errors import UserError
from textrnn.text import fast_tokenizer
from textrnn.text.fast_tokenizer import decode_texts, utf8_texts
from textrnn.text.tokenizer import tokenize
from textrnn.text.vocab import UNK_ID, Vocab

# Below this many texts per worker a pool costs more than it saves.
MIN_TEXTS_PER_WORKER = 2000
CHUNK_TEXTS = 1000

# A chunk of texts as UTF-8 back to back, and each one's byte offset (n + 1 entries, from 0): bytes
# and an array pickle to a worker in one copy, and arrow's string columns are already this.
Chunk = tuple[bytes, np.ndarray]


class _Encoder:
    """What encoding needs: the vocabulary as a dict, and as the C++ tokenizer's table.

    Threads share the table: lookups only read it.
    """

    def __init__(self, vocab: Vocab):
        self.stoi = vocab.stoi
        fast = fast_tokenizer.library()
        self.fast = (fast, fast.vocabulary(vocab.itos)) if fast is not None else None


# Set in each worker process (inherited through fork).
_worker_state: Any = None


def resolve_workers(workers, total: int | None = None) -> int:
    """``"auto"`` means one worker per CPU core; fewer when ``total`` texts would not keep them busy."""
    count = (os.cpu_count() or 1) if workers == "auto" else int(workers)
    if total is not None:
        count = min(count, total // MIN_TEXTS_PER_WORKER)
    return max(1, count)


def chunked(texts: Iterable[str], size: int = CHUNK_TEXTS) -> Iterator[Chunk]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield utf8_texts(batch)
            batch = []
    if batch:
        yield utf8_texts(batch)


def _count_chunk(_: None, chunk: Chunk) -> Counter:
    counts: Counter = Counter()
    for text in decode_texts(*chunk):
        counts.update(tokenize(text))
    return counts


def _count_chunk_fast(fast: fast_tokenizer.FastTokenizer, chunk: Chunk) -> fast_tokenizer.Counts:
    counts = fast.counts()
    counts.add_texts(*chunk)
    return counts


def _encode_chunk(encoder: _Encoder, chunk: Chunk) -> tuple[np.ndarray, np.ndarray]:
    if encoder.fast is not None:
        fast, table = encoder.fast
        return fast.encode(table, *chunk, UNK_ID)
    texts = decode_texts(*chunk)
    get = encoder.stoi.get
    lengths = np.empty(len(texts), dtype=np.int64)
    ids: list[int] = []
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        lengths[i] = len(tokens)
        ids.extend([get(token, UNK_ID) for token in tokens])
    return np.array(ids, dtype=np.int32), lengths


def _start_worker(state: Any) -> None:
    global _worker_state
    signals.default_in_worker()
    _worker_state = state


def _with_worker_state(func: Callable, chunk: Any) -> Any:
    return func(_worker_state, chunk)


def ordered_map(func: Callable, chunks: Iterable, workers: int, state: Any = None, threads: bool = False) -> Iterator:
    """``func(state, chunk)`` for each of ``chunks``, in ``workers`` threads (for a ``func`` that
    releases the GIL) or forked processes, yielding results in input order.

    At most two chunks per worker are in flight, so the input may be a stream of any length.
    """
    if workers <= 1:
        for chunk in chunks:
            yield func(state, chunk)
        return
    if threads:
        executor: Executor = ThreadPoolExecutor(workers, thread_name_prefix="textrnn-tokenize")
        yield from _in_order(executor, chunks, workers, lambda chunk: executor.submit(func, state, chunk))
        return
    # fork: the workers inherit the state (a vocabulary) without pickling it.
    executor = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker, initargs=(state,)
    )
    try:
        yield from _in_order(executor, chunks, workers, lambda chunk: executor.submit(_with_worker_state, func, chunk))
    except BrokenProcessPool:
        raise UserError(
            "a tokenizer worker process died (out of memory, or killed); rerun with fewer "
            "workers (vocab.workers / vectorize.workers)"
        ) from None


def _in_order(executor: Executor, chunks: Iterable, workers: int, submit: Callable[[Any], Future]) -> Iterator:
    pending: deque[Future] = deque()
    try:
        for chunk in chunks:
            pending.append(submit(chunk))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def count_chunks(chunks: Iterable[Chunk], workers: int = 1) -> Counter:
    """How often each token occurs in the texts of ``chunks``, in the order tokens first occur."""
    fast = fast_tokenizer.library()  # built or loaded here, once, before any worker starts
    if fast is not None:
        merged = fast.counts()
        for counts in ordered_map(_count_chunk_fast, chunks, workers, state=fast, threads=True):
            merged.add_counts(counts)  # in chunk order: the order one pass over the texts gives
        return merged.counter()
    total: Counter = Counter()
    for counts in ordered_map(_count_chunk, chunks, workers):
        total.update(counts)
    return total


def count_tokens(texts: Iterable[str], workers: int = 1) -> Counter:
    """How often each token occurs in ``texts``."""
    return count_chunks(chunked(texts), workers)


def encode_chunks(chunks: Iterable[Chunk], vocab: Vocab, workers: int = 1) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """For each chunk of texts, in order: its token ids concatenated (int32) and each text's length."""
    encoder = _Encoder(vocab)
    return ordered_map(_encode_chunk, chunks, workers, state=encoder, threads=encoder.fast is not None)


def encode_texts(texts: Sequence[str], vocab: Vocab, workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all texts, concatenated (int32), and each text's start offset (n + 1 entries)."""
    parts = list(encode_chunks(chunked(texts), vocab, workers))
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    lengths = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets
