"""Training on small synthetic data: it learns, it is seeded, and it guards against non-finite steps."""

import contextlib
import math

import numpy as np
import pytest
import torch
from conftest import synthetic_reviews
from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN, ModelConfig
from textrnn.scoring.inference import predict_logits, scoring_batches
from textrnn.text.encoding import count_tokens, encode_texts
from textrnn.text.vocab import Vocab
from textrnn.training.batching import make_batches
from textrnn.training.loop import NonFiniteLoss, TrainConfig, train_model

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def splits():
    train_frame = synthetic_reviews(400, seed=0)
    valid_frame = synthetic_reviews(160, seed=1)
    vocab = Vocab.build(count_tokens(train_frame["text"].tolist()))

    def encode(frame):
        ids, offsets = encode_texts(frame["text"].tolist(), vocab)
        return EncodedSplit(ids, offsets, frame["label"].to_numpy(), ["neg", "pos"])

    return vocab, encode(train_frame), encode(valid_frame)


def new_model(vocab, seed=0, **sizes):
    torch.manual_seed(seed)
    return RNN(ModelConfig(len(vocab), sizes.get("embedding", 8), sizes.get("hidden", 16)))


@contextlib.contextmanager
def on_every_optimizer_step(callback):
    """Call ``callback()`` before each optimizer step of the block, once per step.

    A step may call another hooked step inside (textrnn's RMSprop takes torch's own step for a
    parameter's first update): only the outermost call counts.
    """
    depth = [0]

    def before(optimizer, args, kwargs):
        depth[0] += 1
        if depth[0] == 1:
            callback()

    def after(optimizer, args, kwargs):
        depth[0] -= 1

    handles = [register_optimizer_step_pre_hook(before), register_optimizer_step_post_hook(after)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


CONFIG = TrainConfig(lr=0.005, batch_size=16, epochs=5, seed=2)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Steps this small run fastest on one thread, and other tests or processes share the cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_lowers_the_loss_and_learns_the_easy_task(splits):
    vocab, train, valid = splits
    model = new_model(vocab, seed=2)
    seen = []
    result = train_model(model, train, valid, CONFIG, CPU, on_epoch=seen.append)
    history = result.history
    assert [s.epoch for s in history] == [1, 2, 3, 4, 5]
    assert seen == history
    assert history[0].metrics["train/loss"] > history[-1].metrics["train/loss"] + 0.2, [
        s.metrics["train/loss"] for s in history
    ]
    # The kept checkpoint (lowest valid loss) classifies the easy task well.
    model.load_state_dict(result.best_state)
    logits = predict_logits(model, valid, 64, CPU)
    accuracy = ((logits > 0).numpy() == valid.labels).mean()
    assert accuracy > 0.8, (accuracy, [s.metrics["valid/accuracy"] for s in history])
    assert accuracy == pytest.approx(history[result.best_epoch - 1].metrics["valid/accuracy"], abs=1e-12)
    assert all(s.skipped_steps == 0 for s in history)
    assert history[0].tokens == int(train.lengths.sum())
    # The best state is the epoch with the lowest valid loss, and it is a copy, not the live weights.
    best = min(history, key=lambda s: s.metrics["valid/loss"])
    assert result.best_epoch == best.epoch
    assert set(result.best_state) == set(model.state_dict())
    assert all(t.device.type == "cpu" for t in result.best_state.values())


def test_reported_valid_metrics_match_a_fresh_scoring(splits):
    vocab, train, valid = splits
    model = new_model(vocab)
    config = TrainConfig(lr=0.01, batch_size=16, epochs=1, seed=3)
    stats = train_model(model, train, valid, config, CPU).history[-1]
    logits = predict_logits(model, valid, 7, CPU)
    labels = torch.from_numpy(valid.labels.copy())
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.double(), labels.double()).item()
    accuracy = ((logits > 0).long() == labels).double().mean().item()
    assert stats.metrics["valid/loss"] == pytest.approx(loss, abs=1e-5)
    assert stats.metrics["valid/accuracy"] == pytest.approx(accuracy, abs=1e-12)


def test_predict_logits_keeps_the_split_order(splits):
    vocab, _, valid = splits
    model = new_model(vocab).eval()
    logits = predict_logits(model, valid, 32, CPU)
    with torch.no_grad():
        for i in (0, 5, 77, len(valid) - 1):
            review = torch.from_numpy(valid.sequence(i).astype(np.int64))[None]
            alone = model(review, torch.tensor([review.shape[1]]))
            assert abs(logits[i].item() - alone.item()) <= 1e-6


def test_same_seed_gives_identical_weights(splits):
    vocab, train, valid = splits
    config = TrainConfig(lr=0.01, batch_size=16, epochs=2, seed=11)
    first, second = new_model(vocab, seed=2), new_model(vocab, seed=2)
    a = train_model(first, train, valid, config, CPU)
    b = train_model(second, train, valid, config, CPU)
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, second.state_dict()[name]), name
    assert [s.metrics["train/loss"] for s in a.history] == [s.metrics["train/loss"] for s in b.history]
    # A different training seed changes the batch order, and so the weights.
    third = new_model(vocab, seed=2)
    train_model(third, train, valid, TrainConfig(lr=0.01, batch_size=16, epochs=2, seed=12), CPU)
    assert not torch.equal(third.U.weight, first.U.weight)


def test_a_non_finite_gradient_step_is_skipped_and_counted(splits):
    vocab, train, valid = splits
    model = new_model(vocab)
    calls = {"n": 0}

    def overflow_once(grad):
        calls["n"] += 1
        return grad * math.inf if calls["n"] == 3 else grad

    model.U.weight.register_hook(overflow_once)
    updates = []

    with on_every_optimizer_step(lambda: updates.append(model.U.weight.detach().clone())):
        result = train_model(model, train, valid, TrainConfig(lr=0.01, batch_size=16, epochs=2, seed=3), CPU)
    steps = len(make_batches(train, 16, CPU))
    assert calls["n"] == 2 * steps
    assert [s.skipped_steps for s in result.history] == [1, 0]
    assert len(updates) == 2 * steps - 1  # the optimizer never saw the overflowed step
    for name, tensor in model.state_dict().items():
        assert torch.isfinite(tensor).all(), name
    for name, tensor in result.best_state.items():
        assert torch.isfinite(tensor).all(), name


def test_a_nan_loss_stops_training_naming_epoch_batch_and_params(splits):
    vocab, train, valid = splits
    model = new_model(vocab)
    steps = len(make_batches(train, 16, CPU))
    calls = {"n": 0}

    def nan_on_third_batch_of_epoch_two(module, inputs, output):
        if not module.training:
            return output
        calls["n"] += 1
        return output * math.nan if calls["n"] == steps + 3 else output

    model.V.register_forward_hook(nan_on_third_batch_of_epoch_two)
    with pytest.raises(NonFiniteLoss) as error:
        train_model(model, train, valid, TrainConfig(lr=0.01, batch_size=16, epochs=3, seed=3), CPU)
    message = str(error.value)
    assert "epoch 2" in message
    assert "batch 3" in message
    assert "train.lr" in message and "train.clip_grad_norm" in message


def test_clip_grad_norm_bounds_every_update(splits):
    vocab, train, valid = splits

    def applied_norms(clip):
        model = new_model(vocab)
        norms = []

        def record():
            grads = [p.grad for p in model.parameters() if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())

        config = TrainConfig(lr=0.01, batch_size=16, epochs=1, seed=3, clip_grad_norm=clip)
        with on_every_optimizer_step(record):
            train_model(model, train, valid, config, CPU)
        return norms

    unclipped = applied_norms(None)
    clipped = applied_norms(0.05)
    assert max(unclipped) > 0.1  # clipping has something to do
    assert len(clipped) == len(unclipped)
    assert max(clipped) <= 0.05 * (1 + 1e-5)
    assert max(clipped) > 0.04  # the clipped steps sit at the bound, not at zero


def test_multiclass_training_learns(splits):
    frame = synthetic_reviews(300, seed=0, n_classes=3)
    vocab = Vocab.build(count_tokens(frame["text"].tolist()))
    ids, offsets = encode_texts(frame["text"].tolist(), vocab)
    split = EncodedSplit(ids, offsets, frame["label"].to_numpy(), ["a", "b", "c"])
    torch.manual_seed(0)
    model = RNN(ModelConfig(len(vocab), 8, 16, num_classes=3))
    result = train_model(model, split, split, TrainConfig(lr=0.01, batch_size=16, epochs=4, seed=0), CPU)
    assert result.history[0].metrics["train/loss"] > result.history[-1].metrics["train/loss"] + 0.2
    assert result.history[-1].metrics["valid/accuracy"] > 0.6


def test_scoring_splits_long_buckets_over_the_token_budget_with_the_same_logits(monkeypatch):
    torch.manual_seed(0)
    model = RNN(ModelConfig(50, 8, 16))
    lengths = np.array([3, 5000, 7, 4000, 1, 0, 4500])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.random.default_rng(0).integers(0, 50, offsets[-1]).astype(np.int32)
    split = EncodedSplit(ids, offsets, np.zeros(len(lengths), np.int64), ["a", "b"])
    whole = predict_logits(model, split, 64, torch.device("cpu"))
    widths = []
    original = scoring_batches
    monkeypatch.setattr(
        "textrnn.scoring.inference.scoring_batches",
        lambda lengths, size: [widths.append(len(r) * lengths[r].max()) or r for r in original(lengths, size)],
    )
    monkeypatch.setattr("textrnn.scoring.inference.SCORING_TOKEN_BUDGET", 5000)
    cut = predict_logits(model, split, 64, torch.device("cpu"))
    torch.testing.assert_close(cut, whole, atol=1e-6, rtol=0)
    assert max(widths) <= 5000 and len(widths) > 1


def test_patience_stops_once_valid_loss_has_not_improved_for_that_many_epochs(splits):
    vocab, train, valid = splits
    # Valid labels drawn at random: nothing carries over from train, so valid loss soon rises for good.
    shuffled = EncodedSplit(valid.ids, valid.offsets, np.random.default_rng(0).integers(0, 2, len(valid.labels)),
                            valid.label_names)  # fmt: skip
    every = train_model(new_model(vocab), train, shuffled, TrainConfig(lr=0.03, batch_size=16, epochs=5, seed=0), CPU)
    losses = [stats.metrics["valid/loss"] for stats in every.history]
    assert len(losses) == 5 and every.best_epoch < 4  # patience null: every epoch, whatever valid does
    assert min(losses[every.best_epoch :]) >= losses[every.best_epoch - 1]  # the best epoch is never beaten later
    stopped = train_model(
        new_model(vocab), train, shuffled, TrainConfig(lr=0.03, batch_size=16, epochs=5, seed=0, patience=2), CPU
    )
    assert len(stopped.history) == stopped.best_epoch + 2  # two epochs without a lower valid loss, then stop
    assert stopped.best_epoch == every.best_epoch  # the same run up to there: same seed, same steps
    for mine, theirs in zip(stopped.history, every.history, strict=False):
        assert mine.metrics == theirs.metrics
