"""Scoring (textrnn.scoring.inference, RNN.scorer): the same logits as forward over the same batches, bit for bit, for
every model option; the last-state kernel is what runs where it applies, with nothing padded; batches stay in budget."""

import itertools

import numpy as np
import pytest
import torch

from textrnn import accel
from textrnn.data.vectors import EncodedSplit
from textrnn.model import READOUTS, RNN, ModelConfig
from textrnn.model.cells import CELLS, RNNCell
from textrnn.model.classifier import Scorer
from textrnn.scoring.inference import predict_logits, scoring_batches
from textrnn.training.batching import pad_batch

VOCAB = 60
CPU = torch.device("cpu")
OPTIONS = [
    dict(cell=cell, readout=readout, bidirectional=bidirectional)
    for cell, readout, bidirectional in itertools.product(CELLS, READOUTS, (False, True))
]


def option_id(options):
    return "-".join(
        f"{value}" if key != "bidirectional" else ("bi" if value else "uni") for key, value in options.items()
    )


def make_model(num_classes=2, hidden=32, seed=0, **options):
    torch.manual_seed(seed)
    model = RNN(ModelConfig(VOCAB, 8, hidden, num_classes, **options))
    with torch.no_grad():  # larger than the default init: states saturate, so that rounding differences would show
        for parameter in model.parameters():
            parameter.mul_(2.0)
    return model.eval()


def make_split(lengths, seed=0):
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(2, VOCAB, offsets[-1]).astype(np.int32)
    return EncodedSplit(ids, offsets, np.zeros(len(lengths), np.int64), ["a", "b"])


# Empty, one-token and long reviews, more than one bucket, buckets that are not a multiple of the kernel's row block.
LENGTHS = np.random.default_rng(1).integers(0, 120, 75).tolist() + [0, 1, 1, 300, 0, 2, 299]


@torch.inference_mode()
def forward_over_scoring_batches(model, split, batch_size):
    """predict_logits as it was: each scoring batch through model.forward."""
    logits = torch.empty((len(split),) if model.config.num_classes == 2 else (len(split), model.config.num_classes))
    for rows in scoring_batches(split.lengths, batch_size):
        tokens, lengths = pad_batch(split.ids, split.offsets, rows)
        logits[torch.from_numpy(rows)] = model(torch.from_numpy(tokens), torch.from_numpy(lengths))
    return logits


def has_scorer(options):
    return options["cell"] == "rnn" and options["readout"] == "last"


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_the_scorer_is_forward_bit_for_bit_on_any_batch(options, num_classes):
    model = make_model(num_classes, **options)
    split = make_split(LENGTHS)
    scorer = model.scorer(split.ids)
    if not has_scorer(options):  # forward keeps every state for these: scoring runs forward itself
        assert scorer is None
        return
    starts, lengths = split.offsets[:-1], split.lengths
    every_row, odd_rows, one_row = np.arange(len(split)), np.arange(1, len(split), 2)[::-1], np.array([76])
    for rows in (every_row, odd_rows, one_row):
        tokens, row_lengths = (torch.from_numpy(a) for a in pad_batch(split.ids, split.offsets, rows))
        with torch.inference_mode():
            expected = model(tokens, row_lengths)
        assert torch.equal(scorer.logits(scorer.features(starts[rows], lengths[rows])), expected)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_a_scorer_of_a_few_reviews_projects_only_their_ids_with_the_same_logits(bidirectional):
    model = make_model(bidirectional=bidirectional)
    split = make_split([5, 0, 9, 3])  # 17 tokens, fewer than the 60 ids
    few = model.scorer(split.ids)
    many = model.scorer(np.concatenate([split.ids, np.arange(VOCAB, dtype=np.int32)]))
    assert all(len(table) == len(np.unique(split.ids)) for table in few.tables)
    assert all(len(table) == VOCAB for table in many.tables)
    starts, lengths = split.offsets[:-1], split.lengths
    assert torch.equal(few.features(starts, lengths), many.features(starts, lengths))
    for outside in (VOCAB, -1):
        with pytest.raises(ValueError, match="a token id lies outside the vocabulary's 60 ids"):
            model.scorer(np.array([3, outside, 5], dtype=np.int32))


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_predict_logits_equals_forward_over_the_same_batches_bit_for_bit(options, num_classes):
    model = make_model(num_classes, **options)
    split = make_split(LENGTHS)
    assert torch.equal(predict_logits(model, split, 16, CPU), forward_over_scoring_batches(model, split, 16))


@pytest.mark.parametrize("hidden", [20, 32], ids=["torch-rnn_tanh", "kernel-switched-off"])
def test_where_the_kernel_does_not_run_scoring_is_forward(hidden):
    model = make_model(hidden=hidden, bidirectional=True)
    split = make_split(LENGTHS)
    with accel.enabled(hidden != 32):
        assert not model.cell.has_last_state(model.U) and model.scorer(split.ids) is None
        assert torch.equal(predict_logits(model, split, 16, CPU), forward_over_scoring_batches(model, split, 16))


def test_a_model_in_training_mode_has_no_scorer():
    model = make_model(dropout=0.5)
    assert model.scorer(make_split(LENGTHS).ids) is not None
    assert model.train().scorer(make_split(LENGTHS).ids) is None  # dropout draws: forward's alone


@pytest.mark.parametrize("bidirectional", [False, True])
def test_scoring_keeps_only_the_last_states_where_the_readout_reads_nothing_else(monkeypatch, bidirectional):
    model = make_model(bidirectional=bidirectional)
    expected = forward_over_scoring_batches(model, make_split(LENGTHS), 16)
    calls = []
    monkeypatch.setattr(RNNCell, "sequence", lambda *args: pytest.fail("every step's state was kept"))
    original = accel.rnn_tanh_last
    monkeypatch.setattr(accel, "rnn_tanh_last", lambda *args: calls.append(args[0].shape) or original(*args))
    assert torch.equal(predict_logits(model, make_split(LENGTHS), 16, CPU), expected)
    assert len(calls) == (2 if bidirectional else 1)  # every batch's states in one call per direction


def test_the_kernels_rows_split_over_threads_give_the_same_logits(monkeypatch):
    model = make_model(bidirectional=True)
    split = make_split(LENGTHS * 2)
    one = predict_logits(model, split, 64, CPU)
    chunks = []
    original = accel.rnn._row_chunks
    monkeypatch.setattr(
        accel.rnn, "_row_chunks", lambda rows, threads, cost=None: chunks.append(threads) or original(rows, 4, cost)
    )
    assert torch.equal(predict_logits(model, split, 64, CPU), one)
    assert chunks and len(original(64, 4)) == 4


def test_the_threads_get_about_equal_tokens():
    lengths = np.array([1] * 90 + [100] * 10)  # sorted by length, as scoring sends them
    halves = accel.rnn._row_chunks(100, 2, cost=lengths + 1)  # 2 x 90 + 101 x 10: 584 and 606
    assert [(half.start, half.stop) for half in halves] == [(0, 94), (94, 100)]
    assert [(third.start, third.stop) for third in accel.rnn._row_chunks(100, 3)] == [(0, 33), (33, 66), (66, 100)]
    lopsided = accel.rnn._row_chunks(100, 2, cost=np.array([0] * 99 + [5]))  # one row holds all the work
    assert [(run.start, run.stop) for run in lopsided] == [(0, 99), (99, 100)]


def test_the_scorer_runs_groups_of_batches_with_the_same_logits(monkeypatch):
    model = make_model(bidirectional=True)
    split = make_split(LENGTHS)
    expected = forward_over_scoring_batches(model, split, 8)
    sizes = []
    original = Scorer.features
    monkeypatch.setattr(Scorer, "features", lambda self, s, n: sizes.append(len(s)) or original(self, s, n))
    assert torch.equal(predict_logits(model, split, 8, CPU), expected)
    assert sizes == [len(split)]  # every batch in one call
    sizes.clear()
    monkeypatch.setattr("textrnn.scoring.inference.SCORER_ROWS", 20)
    assert torch.equal(predict_logits(model, split, 8, CPU), expected)
    assert sum(sizes) == len(split) and max(sizes) <= 20 and len(sizes) >= len(split) // 20


@pytest.mark.parametrize("num_classes", [2, 3])
def test_logits_do_not_depend_on_the_thread_count(num_classes):
    """Evaluate runs on every core: a projection rounded by MKL's row split would change with the core count."""
    model = make_model(num_classes, hidden=64, bidirectional=True)
    split = make_split([37] * 30 + LENGTHS, seed=2)  # batches of 3 x 37 tokens: no row count a multiple of 4
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = predict_logits(model, split, 3, CPU)
        for threads in (2, 3, 5):
            torch.set_num_threads(threads)
            assert torch.equal(predict_logits(model, split, 3, CPU), one), threads
    finally:
        torch.set_num_threads(previous)


def test_scoring_pads_nothing_and_refuses_ids_outside_the_vocabulary(monkeypatch):
    model = make_model(bidirectional=True)
    split = make_split(LENGTHS)
    monkeypatch.setattr("textrnn.scoring.inference.pad_batch", lambda *args: pytest.fail("a batch was padded"))
    predict_logits(model, split, 16, CPU)
    split.ids[3] = VOCAB
    with pytest.raises(ValueError, match="a token id lies outside the table's 60 rows"):
        predict_logits(model, split, 16, CPU)


def test_scoring_cuts_long_buckets_to_the_token_budget(monkeypatch):
    model = make_model()
    split = make_split([3, 5000, 7, 4000, 1, 0, 4500])
    whole = predict_logits(model, split, 64, CPU)
    monkeypatch.setattr("textrnn.scoring.inference.SCORING_TOKEN_BUDGET", 5000)
    widths = []
    original = scoring_batches
    monkeypatch.setattr(
        "textrnn.scoring.inference.scoring_batches",
        lambda lengths, size: [widths.append(len(r) * lengths[r].max()) or r for r in original(lengths, size)],
    )
    cut = predict_logits(model, split, 64, CPU)
    assert max(widths) <= 5000 and len(widths) > 1
    assert torch.equal(cut, forward_over_scoring_batches(model, split, 64))
    # Other batches, other row counts in V's matrix product: the same logits to float32 rounding only.
    torch.testing.assert_close(cut, whole, atol=1e-6, rtol=0)
