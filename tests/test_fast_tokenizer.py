"""The C++ tokenizer: exactly tokenizer.tokenize's tokens, ids and counts, on any text; Python where it cannot build."""

from __future__ import annotations

import logging
import random
import sys
from collections import Counter
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_reviews

from textrnn.data import splits
from textrnn.text import encoding, fast_tokenizer, tokenizer
from textrnn.text.vocab import Vocab

# Every character a rule looks at, Unicode whitespace, casing oddities (final sigma, dotted I), control bytes.
ALPHABET = list(
    "aZ \"'.,()!?;:<br/>\t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u1680\u2000\u200a\u200b\u2028\u2029\u202f\u205f\u3000"
    "\u03a3\u03c3\u03c2\u0130I\u00e9\u00c9\x00\x01\ud800"
) + ["<br />", "<BR />", '<br "/>', "\u03a3\u0391\u03a3", "caf\u00e9"]


@pytest.fixture(scope="module")
def fast():
    library = fast_tokenizer.library()
    assert library is not None, "the C++ tokenizer did not build here (g++ on PATH? see the log line)"
    return library


def fast_tokens(fast, texts: list[str]) -> list[list[str]]:
    """What the C++ side makes of ``texts``: tokens per text, read back through a vocabulary of every token."""
    expected = [tokenizer.tokenize_reference(text) for text in texts]
    itos = list(dict.fromkeys(chain.from_iterable(expected)))
    ids, lengths = fast.encode(fast.vocabulary(itos), *fast_tokenizer.utf8_texts(texts), -1)
    tokens = [itos[i] for i in ids.tolist()]
    bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
    return [tokens[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def test_random_texts_give_the_reference_tokens_and_counts(fast):
    rng = random.Random(0)
    texts = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    assert fast_tokens(fast, texts) == [tokenizer.tokenize_reference(text) for text in texts]
    assert fast.count(texts) == Counter(chain.from_iterable(map(tokenizer.tokenize_reference, texts)))


@pytest.mark.parametrize("low, high", [(0, 0x3100), (0x3100, sys.maxunicode + 1)])
def test_every_character_splits_or_joins_as_in_python(fast, low, high):
    """Whitespace is whatever str.split() splits on; every other character stays inside its token."""
    characters = [chr(c) for c in range(low, high) if not 0xD800 <= c <= 0xDFFF]
    if low > 0:  # beyond U+3100: every whitespace character, and a sample of the rest
        characters = [c for c in characters if c.isspace()] + characters[::97]
    texts = [f"a{c}B.{c}{c}x" for c in characters]
    assert fast_tokens(fast, texts) == [tokenizer.tokenize_reference(text) for text in texts]


def test_lowercasing_that_changes_the_byte_count_keeps_every_text_in_place(fast):
    texts = ["\u0130stanbul Is", "plain ASCII", "\u1e9e \u03a3\u0391\u03a3!", "", "x" * 3, "\u0130" * 50]
    assert [len(t.lower().encode()) for t in texts[:1]] != [len(t.encode()) for t in texts[:1]]
    assert fast_tokens(fast, texts) == [tokenizer.tokenize_reference(text) for text in texts]


def test_counts_keep_the_order_tokens_first_occur_in(fast):
    texts = ["b a b", "c a", "d"]
    assert list(fast.count(texts).items()) == [("b", 2), ("a", 2), ("c", 1), ("d", 1)]


def test_a_vocabulary_with_a_token_twice_is_refused(fast):
    with pytest.raises(ValueError, match="each token once"):
        fast.vocabulary(["<unk>", "<pad>", "a", "a"])


def python_only(monkeypatch):
    monkeypatch.setattr(fast_tokenizer, "_loaded", None)
    monkeypatch.setattr(fast_tokenizer, "_tried", True)


def test_the_pipeline_functions_give_the_same_ids_and_counts_either_way(fast, monkeypatch):
    texts = synthetic_reviews(3000, seed=7)["text"].tolist() + ["Caf\u00c9 \u0130 \u03a3!", "", " \u3000 "]
    counts = encoding.count_tokens(texts, workers=2)
    vocab = Vocab.build(counts, min_freq=2)
    ids, offsets = encoding.encode_texts(texts, vocab, workers=2)
    python_only(monkeypatch)
    python_counts = encoding.count_tokens(texts, workers=1)
    assert list(counts.items()) == list(python_counts.items())
    python_ids, python_offsets = encoding.encode_texts(texts, vocab, workers=1)
    assert ids.dtype == python_ids.dtype == np.int32
    assert np.array_equal(ids, python_ids) and np.array_equal(offsets, python_offsets)


@pytest.mark.parametrize(
    "setting, reason",
    [
        ({"CXX": "no-such-compiler-textrnn"}, "no C++ compiler"),
        ({fast_tokenizer.SWITCH: "0"}, "TEXTRNN_FAST_TOKENIZER=0"),
    ],
)
def test_without_the_library_tokens_come_from_python_with_one_log_line(monkeypatch, caplog, setting, reason):
    for name, value in setting.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(fast_tokenizer, "_tried", False)
    monkeypatch.setattr(fast_tokenizer, "_loaded", None)
    with caplog.at_level(logging.INFO, logger="textrnn.text.tokenizer"):
        assert fast_tokenizer.library() is None
        assert fast_tokenizer.library() is None  # tried once
        counts = encoding.count_tokens(["It's <br />GREAT!", "great"])
    lines = [r.getMessage() for r in caplog.records if r.name == "textrnn.text.tokenizer"]
    assert len(lines) == 1 and reason in lines[0], lines
    assert counts == Counter({"great": 2, "it": 1, "'": 1, "s": 1, "!": 1})


def test_split_file_chunks_are_the_texts_read_from_the_column_buffers(tmp_path):
    texts = ["first", "", "caf\u00e9 \u0130", "x" * 1000] + [f"text {i}" for i in range(40)]
    path = tmp_path / "train.parquet"
    table = pa.table({"text": pa.array(texts, pa.string()), "label": pa.array([0] * len(texts), pa.int64())})
    pq.write_table(table, path, row_group_size=7)  # chunks cross row groups and start inside arrow's buffers
    chunks = list(splits.iter_text_chunks(path, rows=5))
    assert all(offsets[0] == 0 and offsets[-1] == len(data) for data, offsets in chunks)
    assert list(chain.from_iterable(fast_tokenizer.decode_texts(*c) for c in chunks)) == texts
    assert list(splits.iter_texts(path)) == texts


def test_texts_with_a_token_per_byte_are_encoded_whole(fast):
    """Punctuation runs give a token per byte: more than the first buffer holds, so it is redone larger."""
    texts = ["!?.,()'" * 200, "a.b.c.d", "", "word " * 50]
    assert fast_tokens(fast, texts) == [tokenizer.tokenize_reference(text) for text in texts]
