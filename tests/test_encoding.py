"""Tokenizing in worker processes: the same results as one process, in order, and no hang."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest
from conftest import ROOT, synthetic_reviews

from textrnn.encoding import count_tokens, encode_texts, ordered_map
from textrnn.errors import UserError
from textrnn.tokenizer import tokenize
from textrnn.vocab import Vocab

TEXTS = synthetic_reviews(5000, seed=4)["text"].tolist()


def test_two_workers_count_and_encode_exactly_as_one_process():
    counts = count_tokens(TEXTS, workers=2)
    assert counts == Counter(token for text in TEXTS for token in tokenize(text))
    vocab = Vocab.build(counts, min_freq=3)
    ids, offsets = encode_texts(TEXTS, vocab, workers=2)
    one_ids, one_offsets = encode_texts(TEXTS, vocab, workers=1)
    assert np.array_equal(ids, one_ids) and np.array_equal(offsets, one_offsets)
    assert ids.dtype == np.int32 and offsets[-1] == len(ids)
    assert ids[offsets[7] : offsets[8]].tolist() == vocab.encode(tokenize(TEXTS[7]))


def _square(chunk):
    return [x * x for x in chunk]


def test_ordered_map_keeps_the_input_order_and_reads_a_stream_lazily():
    pulled = []

    def chunks():
        for i in range(40):
            pulled.append(i)
            yield [i, i + 1]

    results = ordered_map(_square, chunks(), workers=2)
    first = next(results)
    assert first == [0, 1] and len(pulled) <= 5  # at most two chunks per worker in flight, plus one
    assert [first, *results] == [[i * i, (i + 1) * (i + 1)] for i in range(40)]


def _die(chunk):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_that_dies_ends_in_one_line_not_a_hang():
    with pytest.raises(UserError, match="a tokenizer worker process died"):
        list(ordered_map(_die, [[1], [2], [3]], workers=2))


@pytest.mark.slow
def test_many_short_pools_never_hang_with_our_signal_handlers_installed():
    """Workers used to inherit the stages' SIGTERM handler and swallow Pool.terminate's SIGTERM: a hang
    within about 80 pools. Here 300 pools in a row under the handlers must all finish."""
    script = textwrap.dedent("""
        from textrnn import signals
        from textrnn.encoding import count_tokens
        signals.install()
        texts = ["a b c d"] * 4100  # enough for two workers
        for _ in range(300):
            assert count_tokens(texts, workers=2)["a"] == 4100
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0 and result.stdout.strip() == "done", result.stderr[-2000:]
