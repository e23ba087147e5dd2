"""Tokenize many texts in worker processes: count tokens, or turn texts into id arrays."""
from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tqdm.auto import tqdm

from textrnn.tokenizer import tokenize
from textrnn.vocab import UNK_ID, Vocab

# Below this many texts a process pool costs more than it saves.
_MIN_TEXTS_PER_WORKER = 2000

_worker_stoi: Dict[str, int] = {}


def resolve_workers(workers) -> int:
    """``"auto"`` means one worker per CPU core."""
    return (os.cpu_count() or 1) if workers == "auto" else int(workers)


def _count_chunk(texts: List[str]) -> Counter:
    counts: Counter = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def _encode_chunk(texts: List[str]) -> Tuple[np.ndarray, np.ndarray]:
    get = _worker_stoi.get
    lengths = np.empty(len(texts), dtype=np.int64)
    ids: List[int] = []
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        lengths[i] = len(tokens)
        ids.extend([get(token, UNK_ID) for token in tokens])
    return np.array(ids, dtype=np.int32), lengths


def _set_worker_stoi(stoi: Dict[str, int]) -> None:
    global _worker_stoi
    _worker_stoi = stoi


def _map_chunks(func: Callable, texts: Sequence[str], workers: int, desc: str,
                stoi: Optional[Dict[str, int]] = None) -> list:
    """Apply ``func`` to consecutive chunks of ``texts``; results come back in order."""
    texts = list(texts)
    workers = max(1, min(workers, len(texts) // _MIN_TEXTS_PER_WORKER))
    n_chunks = max(1, min(len(texts), workers * 8))
    bounds = np.linspace(0, len(texts), n_chunks + 1).astype(int)
    chunks = [texts[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    progress = tqdm(total=len(texts), desc=desc, unit="text", leave=False, disable=None)
    results = []
    if workers == 1:
        _set_worker_stoi(stoi or {})
        for chunk in chunks:
            results.append(func(chunk))
            progress.update(len(chunk))
    else:
        # fork: the workers inherit the vocabulary without pickling it, and start in milliseconds.
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, initializer=_set_worker_stoi, initargs=(stoi or {},)) as pool:
            for chunk, result in zip(chunks, pool.imap(func, chunks)):
                results.append(result)
                progress.update(len(chunk))
    progress.close()
    return results


def count_tokens(texts: Sequence[str], workers: int = 1) -> Counter:
    """How often each token occurs in ``texts``."""
    total: Counter = Counter()
    for counts in _map_chunks(_count_chunk, texts, workers, "counting tokens"):
        total.update(counts)
    return total


def encode_texts(texts: Sequence[str], vocab: Vocab, workers: int = 1) -> Tuple[np.ndarray, np.ndarray]:
    """Token ids of all texts, concatenated (int32), and each text's start offset (n + 1 entries)."""
    parts = _map_chunks(_encode_chunk, texts, workers, "vectorizing", stoi=vocab.stoi)
    ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    lengths = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return ids, offsets
