"""Tokenizing on several cores (threads for the C++ tokenizer, processes for Python's): the same
results as one worker, in order, and no hang."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter

import numpy as np
import pytest
from conftest import ROOT, synthetic_reviews

from textrnn.core.errors import UserError
from textrnn.text import fast_tokenizer
from textrnn.text.encoding import chunked, count_tokens, encode_texts, ordered_map
from textrnn.text.tokenizer import tokenize
from textrnn.text.vocab import Vocab

TEXTS = synthetic_reviews(5000, seed=4)["text"].tolist()


@pytest.mark.parametrize("tokenizer_code", ["C++ in threads", "Python in processes"])
def test_two_workers_count_and_encode_exactly_as_one(tokenizer_code, monkeypatch):
    if tokenizer_code.startswith("Python"):
        monkeypatch.setattr(fast_tokenizer, "_loaded", None)
        monkeypatch.setattr(fast_tokenizer, "_tried", True)
    elif fast_tokenizer.library() is None:
        pytest.skip("the C++ tokenizer cannot be built here")
    counts = count_tokens(TEXTS, workers=2)
    expected = Counter(token for text in TEXTS for token in tokenize(text))
    assert list(counts.items()) == list(expected.items())  # the order tokens first occur in, too
    assert list(count_tokens(TEXTS, workers=1).items()) == list(expected.items())
    vocab = Vocab.build(counts, min_freq=3)
    ids, offsets = encode_texts(TEXTS, vocab, workers=2)
    one_ids, one_offsets = encode_texts(TEXTS, vocab, workers=1)
    assert np.array_equal(ids, one_ids) and np.array_equal(offsets, one_offsets)
    assert ids.dtype == np.int32 and offsets[-1] == len(ids)
    assert ids[offsets[7] : offsets[8]].tolist() == vocab.encode(tokenize(TEXTS[7]))


def test_the_cpp_tokenizer_runs_in_threads_of_this_process():
    fast = fast_tokenizer.library()
    if fast is None:
        pytest.skip("the C++ tokenizer cannot be built here")
    seen = set()

    def count(state, chunk):
        seen.add(threading.current_thread().name.split("_")[0])
        assert not multiprocessing.active_children()
        counts = state.counts()
        counts.add_texts(*chunk)
        return counts.counter()

    results = list(ordered_map(count, chunked(TEXTS[:300], size=50), workers=2, state=fast, threads=True))
    assert seen == {"textrnn-tokenize"} and len(results) == 6
    assert results[1] == Counter(token for text in TEXTS[50:100] for token in tokenize(text))


def test_tables_of_consecutive_chunks_added_in_turn_equal_one_table_of_all():
    fast = fast_tokenizer.library()
    if fast is None:
        pytest.skip("the C++ tokenizer cannot be built here")
    merged = fast.counts()
    for chunk in chunked(TEXTS, size=700):
        part = fast.counts()
        part.add_texts(*chunk)
        merged.add_counts(part)
    one = fast.counts()
    for chunk in chunked(TEXTS, size=700):
        one.add_texts(*chunk)
    assert list(merged.counter().items()) == list(one.counter().items())
    with pytest.raises(ValueError, match="its own counts"):
        merged.add_counts(merged)


def _square(state, chunk):
    return [x * x + state for x in chunk]


@pytest.mark.parametrize("threads", [False, True])
def test_ordered_map_keeps_the_input_order_and_reads_a_stream_lazily(threads):
    pulled = []

    def chunks():
        for i in range(40):
            pulled.append(i)
            yield [i, i + 1]

    results = ordered_map(_square, chunks(), workers=2, state=1, threads=threads)
    first = next(results)
    assert first == [1, 2] and len(pulled) <= 5  # at most two chunks per worker in flight, plus one
    assert [first, *results] == [[i * i + 1, (i + 1) * (i + 1) + 1] for i in range(40)]


def _die(state, chunk):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_that_dies_ends_in_one_line_not_a_hang():
    with pytest.raises(UserError, match="a tokenizer worker process died"):
        list(ordered_map(_die, [[1], [2], [3]], workers=2))


@pytest.mark.slow
def test_many_short_pools_never_hang_with_our_signal_handlers_installed():
    """Workers used to inherit the stages' SIGTERM handler and swallow Pool.terminate's SIGTERM: a hang
    within about 80 pools. Here 300 pools in a row under the handlers must all finish."""
    script = textwrap.dedent("""
        from textrnn.core import signals
        from textrnn.text.encoding import count_tokens
        signals.install()
        texts = ["a b c d"] * 4100  # enough for two workers
        for _ in range(300):
            assert count_tokens(texts, workers=2)["a"] == 4100
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]
