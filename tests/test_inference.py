"""Scoring (textrnn.inference, RNN.score): the same logits as forward over the same batches, bit for bit, for
every model option; the last-state kernel is what runs where it applies; buffers are reused; batches stay in budget."""

import itertools

import numpy as np
import pytest
import torch

from textrnn import accel
from textrnn.batching import pad_batch
from textrnn.data.vectors import EncodedSplit
from textrnn.inference import predict_logits, scoring_batches
from textrnn.model import READOUTS, RNN, ModelConfig
from textrnn.model.cells import CELLS, RNNCell, Scratch

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


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("options", OPTIONS, ids=option_id)
def test_score_is_forward_bit_for_bit_with_and_without_scratch(options, num_classes):
    model = make_model(num_classes, **options)
    split = make_split(LENGTHS)
    tokens, lengths = (torch.from_numpy(a) for a in pad_batch(split.ids, split.offsets, np.arange(len(split))))
    scratch = Scratch(tokens.numel())
    with torch.inference_mode():
        expected = model(tokens, lengths)
        assert torch.equal(model.score(tokens, lengths), expected)
        assert torch.equal(model.score(tokens, lengths, scratch), expected)
        assert torch.equal(model.score(tokens, lengths, scratch), expected)  # a used scratch changes nothing


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
        assert not model.cell.has_last_state(model.U)
        assert torch.equal(predict_logits(model, split, 16, CPU), forward_over_scoring_batches(model, split, 16))


def test_score_in_training_mode_is_forward():
    model = make_model(dropout=0.5).train()
    tokens, lengths = (torch.from_numpy(a) for a in pad_batch(*_all_rows(make_split(LENGTHS))))
    torch.manual_seed(3)
    expected = model(tokens, lengths)
    torch.manual_seed(3)
    assert torch.equal(model.score(tokens, lengths), expected)


def _all_rows(split):
    return split.ids, split.offsets, np.arange(len(split))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_scoring_keeps_only_the_last_states_where_the_readout_reads_nothing_else(monkeypatch, bidirectional):
    model = make_model(bidirectional=bidirectional)
    expected = forward_over_scoring_batches(model, make_split(LENGTHS), 16)
    calls = []
    monkeypatch.setattr(RNNCell, "sequence", lambda *args: pytest.fail("every step's state was kept"))
    original = accel.rnn_tanh_last
    monkeypatch.setattr(accel, "rnn_tanh_last", lambda *args: calls.append(args[0].shape) or original(*args))
    assert torch.equal(predict_logits(model, make_split(LENGTHS), 16, CPU), expected)
    assert len(calls) == len(list(scoring_batches(make_split(LENGTHS).lengths, 16))) * (2 if bidirectional else 1)


def test_the_kernels_rows_split_over_threads_give_the_same_logits(monkeypatch):
    model = make_model(bidirectional=True)
    split = make_split(LENGTHS * 2)
    one = predict_logits(model, split, 64, CPU)
    chunks = []
    original = accel.rnn._row_chunks
    monkeypatch.setattr(accel.rnn, "_row_chunks", lambda rows, threads: chunks.append(threads) or original(rows, 4))
    assert torch.equal(predict_logits(model, split, 64, CPU), one)
    assert chunks and len(original(64, 4)) == 4


def test_scratch_buffers_are_allocated_once_per_run(monkeypatch):
    model = make_model(bidirectional=True)
    pointers = {}
    original = Scratch.take

    def take(self, name, shape, like):
        view = original(self, name, shape, like)
        pointers.setdefault(name, set()).add(view.data_ptr())
        return view

    monkeypatch.setattr(Scratch, "take", take)
    predict_logits(model, make_split(LENGTHS), 8, CPU)
    assert set(pointers) == {"embedded", "flipped", "projected"}
    assert all(len(found) == 1 for found in pointers.values()), pointers


def test_scratch_take_reuses_a_buffer_that_fits_and_replaces_one_that_does_not():
    scratch, like = Scratch(rows=10), torch.zeros(1)
    first = scratch.take("a", (10, 4), like)
    assert first.shape == (10, 4) and scratch.take("a", (3, 4), like).data_ptr() == first.data_ptr()
    larger = scratch.take("a", (11, 4), like)
    assert larger.shape == (11, 4) and larger.data_ptr() != first.data_ptr()
    assert scratch.take("a", (2, 3), torch.zeros(1, dtype=torch.float64)).dtype == torch.float64


def test_scoring_cuts_long_buckets_to_the_token_budget(monkeypatch):
    model = make_model()
    split = make_split([3, 5000, 7, 4000, 1, 0, 4500])
    whole = predict_logits(model, split, 64, CPU)
    monkeypatch.setattr("textrnn.inference.SCORING_TOKEN_BUDGET", 5000)
    widths = []
    original = model.score
    monkeypatch.setattr(model, "score", lambda t, n, s=None: widths.append(t.numel()) or original(t, n, s))
    cut = predict_logits(model, split, 64, CPU)
    assert max(widths) <= 5000 and len(widths) > 1
    assert torch.equal(cut, forward_over_scoring_batches(model, split, 64))
    # Other batches, other row counts in torch's matrix products: the same logits to float32 rounding only.
    torch.testing.assert_close(cut, whole, atol=1e-6, rtol=0)
