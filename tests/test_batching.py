"""Padding, length buckets, and cutting reviews to their last tokens."""

import numpy as np
import pytest

from textrnn.data.vectors import EncodedSplit
from textrnn.training.batching import length_buckets, pad_batch

PAD = 1


def encoded(reviews, labels=None, label_names=("neg", "pos")) -> EncodedSplit:
    lengths = [len(r) for r in reviews]
    ids = np.array([t for r in reviews for t in r], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if labels is None:
        labels = [i % 2 for i in range(len(reviews))]
    return EncodedSplit(ids, offsets, np.array(labels, dtype=np.int64), list(label_names))


REVIEWS = [[5, 6, 7], [8], [9, 10, 11, 12, 13], [], [14, 15]]


def test_pad_batch_right():
    split = encoded(REVIEWS)
    tokens, lengths = pad_batch(split.ids, split.offsets, np.array([0, 1, 2, 3, 4]), PAD, "right")
    assert tokens.dtype == np.int64 and lengths.dtype == np.int64
    assert tokens.tolist() == [
        [5, 6, 7, 1, 1],
        [8, 1, 1, 1, 1],
        [9, 10, 11, 12, 13],
        [1, 1, 1, 1, 1],
        [14, 15, 1, 1, 1],
    ]
    assert lengths.tolist() == [3, 1, 5, 0, 2]


def test_pad_batch_left():
    split = encoded(REVIEWS)
    tokens, lengths = pad_batch(split.ids, split.offsets, np.array([0, 1, 2, 3, 4]), PAD, "left")
    assert tokens.tolist() == [
        [1, 1, 5, 6, 7],
        [1, 1, 1, 1, 8],
        [9, 10, 11, 12, 13],
        [1, 1, 1, 1, 1],
        [1, 1, 1, 14, 15],
    ]
    assert lengths.tolist() == [3, 1, 5, 0, 2]


def test_pad_batch_takes_the_rows_asked_in_their_order_and_pads_to_their_longest():
    split = encoded(REVIEWS)
    tokens, lengths = pad_batch(split.ids, split.offsets, np.array([4, 1]), 0)
    assert tokens.tolist() == [[14, 15], [8, 0]]
    assert lengths.tolist() == [2, 1]


def test_pad_batch_of_empty_reviews_only():
    split = encoded([[], [], [3]])
    tokens, lengths = pad_batch(split.ids, split.offsets, np.array([0, 1]), PAD)
    assert tokens.tolist() == [[1], [1]]
    assert lengths.tolist() == [0, 0]
    empty = encoded([[], []])
    tokens, lengths = pad_batch(empty.ids, empty.offsets, np.array([0, 1]), PAD, "left")
    assert tokens.tolist() == [[1], [1]] and lengths.tolist() == [0, 0]


def test_pad_batch_rejects_an_unknown_side():
    split = encoded(REVIEWS)
    with pytest.raises(ValueError, match="side"):
        pad_batch(split.ids, split.offsets, np.array([0]), PAD, "middle")


LENGTHS = np.array([7, 3, 3, 9, 1, 3, 0, 12, 5, 5, 2, 8, 3, 6])


def test_length_buckets_without_rng_are_sorted_by_length_and_fixed():
    batches = length_buckets(LENGTHS, 4)
    assert [len(b) for b in batches] == [4, 4, 4, 2]
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(LENGTHS)))
    assert LENGTHS[flat].tolist() == sorted(LENGTHS.tolist())
    # Stable: equal lengths keep the order of the rows.
    assert flat.tolist() == np.argsort(LENGTHS, kind="stable").tolist()
    assert [b.tolist() for b in length_buckets(LENGTHS, 4)] == [b.tolist() for b in batches]


def test_length_buckets_with_rng_cover_every_row_once_in_similar_length_batches():
    lengths = np.random.default_rng(0).integers(0, 200, size=103)
    batches = length_buckets(lengths, 10, np.random.default_rng(5))
    assert sorted(len(b) for b in batches) == [3] + [10] * 10
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(103))
    # A batch is a run of the sorted lengths: no other batch has a length strictly inside its range.
    ranges = sorted((lengths[b].min(), lengths[b].max()) for b in batches)
    for (_, high), (low, _) in zip(ranges, ranges[1:], strict=False):
        assert high <= low


def test_length_buckets_same_seed_same_batches_different_seed_different_order():
    lengths = np.random.default_rng(0).integers(0, 50, size=200)
    first = [b.tolist() for b in length_buckets(lengths, 16, np.random.default_rng(3))]
    again = [b.tolist() for b in length_buckets(lengths, 16, np.random.default_rng(3))]
    other = [b.tolist() for b in length_buckets(lengths, 16, np.random.default_rng(4))]
    assert first == again
    assert first != other
    assert first != [b.tolist() for b in length_buckets(lengths, 16)]


def test_last_tokens_keeps_the_last_n_tokens_of_each_review():
    split = encoded(REVIEWS)
    cut = split.last_tokens(2)
    assert [cut.sequence(i).tolist() for i in range(len(cut))] == [[6, 7], [8], [12, 13], [], [14, 15]]
    assert cut.offsets.tolist() == [0, 2, 3, 5, 5, 7]
    assert cut.offsets.dtype == np.int64 and cut.ids.dtype == np.int32
    assert cut.labels.tolist() == split.labels.tolist() and cut.label_names == split.label_names
    # The original is untouched.
    assert split.sequence(2).tolist() == [9, 10, 11, 12, 13]


@pytest.mark.parametrize("max_tokens", [None, 5, 100])
def test_last_tokens_leaves_short_reviews_intact(max_tokens):
    split = encoded(REVIEWS)
    cut = split.last_tokens(max_tokens)
    assert cut.ids.tolist() == split.ids.tolist()
    assert cut.offsets.tolist() == split.offsets.tolist()


def test_last_tokens_one():
    split = encoded(REVIEWS)
    cut = split.last_tokens(1)
    assert [cut.sequence(i).tolist() for i in range(len(cut))] == [[7], [8], [13], [], [15]]
