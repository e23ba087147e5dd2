"""The RNN: the fused sequence path equals the per-step loop, batch invariance, checkpoints."""
import math

import numpy as np
import pytest
import torch

from textrnn.data import pad_batch
from textrnn.errors import UserError
from textrnn.model import RNN, ModelConfig, load_checkpoint, save_checkpoint
from textrnn.vocab import PAD_ID

VOCAB = 50


def make_model(seed=0, num_classes=2, dtype=torch.float32, hidden=12, embedding=6):
    torch.manual_seed(seed)
    model = RNN(ModelConfig(VOCAB, embedding, hidden, num_classes)).to(dtype)
    # Larger weights than the default init, so that the state saturates and differences would show.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)
    return model


def padded(reviews):
    ids = np.array([t for r in reviews for t in r], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in reviews])]).astype(np.int64)
    tokens, lengths = pad_batch(ids, offsets, np.arange(len(reviews)), PAD_ID)
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def random_reviews(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, VOCAB, size=n).tolist() for n in lengths]


MIXED = [7, 1, 0, 13, 4, 1, 9, 0, 13]


def logits_and_grads(model, path, tokens, lengths, labels):
    model.zero_grad()
    logits = getattr(model, path)(tokens, lengths)
    # A loss that weighs every review differently, so that each one's gradient counts.
    weights = torch.linspace(0.5, 1.5, len(labels), dtype=logits.dtype)
    if logits.dim() == 1:
        loss = (weights * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels.to(logits.dtype), reduction="none")).sum()
    else:
        loss = (weights * torch.nn.functional.cross_entropy(logits, labels, reduction="none")).sum()
    loss.backward()
    return logits.detach().clone(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_fused_sequence_equals_step_loop_logits_and_gradients(dtype, tolerance, num_classes):
    model = make_model(dtype=dtype, num_classes=num_classes)
    model.train()
    tokens, lengths = padded(random_reviews(MIXED))
    labels = torch.arange(len(MIXED)) % num_classes
    loop_logits, loop_grads = logits_and_grads(model, "forward_loop", tokens, lengths, labels)
    fused_logits, fused_grads = logits_and_grads(model, "forward_sequence", tokens, lengths, labels)
    assert fused_logits.dtype == dtype
    assert torch.allclose(fused_logits, loop_logits, atol=tolerance, rtol=0), (fused_logits - loop_logits).abs().max()
    assert set(loop_grads) == {"embedding.weight", "W.weight", "W.bias", "U.weight", "U.bias", "V.weight", "V.bias"}
    for name, grad in loop_grads.items():
        assert grad.abs().max() > 0, name  # every parameter takes part
        difference = (fused_grads[name] - grad).abs().max().item()
        assert difference <= tolerance, f"{name}: {difference}"


def test_empty_review_gives_the_output_of_the_initial_state():
    model = make_model()
    tokens, lengths = padded([[3, 4, 5], []])
    with torch.no_grad():
        expected = model.V(model.init_hidden(1)).squeeze(-1)
        assert torch.equal(model.forward_sequence(tokens, lengths)[1:], expected)
        assert torch.equal(model.forward_loop(tokens, lengths)[1:], expected)


def test_notebook_step_chain_equals_sequence_path_on_one_review():
    model = make_model(dtype=torch.float64)
    review = random_reviews([17], seed=3)[0]
    with torch.no_grad():
        hidden = model.init_hidden(1)
        for token in review:
            logits, hidden = model(torch.tensor([token]), hidden)
        fused = model.forward_sequence(torch.tensor([review]), torch.tensor([len(review)]))
    assert logits.shape == (1, 1) and hidden.shape == (1, 12)
    assert abs(logits.item() - fused.item()) < 1e-12


def test_a_review_scores_the_same_alone_and_beside_longer_reviews():
    model = make_model()
    model.eval()
    short, *long_ones = random_reviews([3, 60, 45, 80], seed=4)
    with torch.no_grad():
        alone = model.forward_sequence(*padded([short]))[0]
        positions = []
        for position in range(4):
            batch = list(long_ones)
            batch.insert(position, short)
            positions.append(model.forward_sequence(*padded(batch))[position])
    for logit in positions:
        assert abs(logit.item() - alone.item()) <= 1e-6
    # Left padding with biases would move the state: the check above could fail.
    tokens = torch.tensor([[PAD_ID] * 77 + short])
    with torch.no_grad():
        left_padded = model.forward_sequence(tokens, torch.tensor([tokens.shape[1]]))[0]
    assert abs(left_padded.item() - alone.item()) > 1e-4


def test_init_hidden_is_zeros_of_the_right_shape():
    model = make_model(hidden=12)
    hidden = model.init_hidden(5)
    assert hidden.shape == (5, 12)
    assert hidden.dtype == torch.float32
    assert torch.count_nonzero(hidden) == 0
    assert make_model(dtype=torch.float64).init_hidden(2).dtype == torch.float64


def test_shapes_binary_and_multiclass():
    tokens, lengths = padded(random_reviews([4, 2, 6]))
    with torch.no_grad():
        assert make_model(num_classes=2).forward_sequence(tokens, lengths).shape == (3,)
        assert make_model(num_classes=2).forward_loop(tokens, lengths).shape == (3,)
        assert make_model(num_classes=3).forward_sequence(tokens, lengths).shape == (3, 3)
        assert make_model(num_classes=3).forward_loop(tokens, lengths).shape == (3, 3)
    assert make_model(num_classes=2).V.out_features == 1
    assert make_model(num_classes=3).V.out_features == 3


@pytest.mark.parametrize("num_classes", [2, 3])
def test_checkpoint_round_trip(tmp_path, num_classes):
    model = make_model(seed=5, num_classes=num_classes)
    path = tmp_path / "models" / "model.pt"
    save_checkpoint(path, model, model.state_dict(), ["a", "b", "c"][:num_classes], {"best_epoch": 3, "train_device": "cpu"})
    # Plain tensors, dicts and strings only: loads without executing anything.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["config"] == {"vocabulary_size": VOCAB, "embedding_size": 6, "hidden_size": 12,
                                 "num_classes": num_classes, "max_tokens": None}
    loaded, label_names, metadata = load_checkpoint(path)
    assert label_names == ["a", "b", "c"][:num_classes]
    assert metadata == {"best_epoch": 3, "train_device": "cpu"}
    assert loaded.config == model.config
    assert not loaded.training
    tokens, lengths = padded(random_reviews(MIXED))
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.forward_sequence(tokens, lengths), model.forward_sequence(tokens, lengths))
    assert list(tmp_path.joinpath("models").iterdir()) == [path]  # no temporary file left behind


def test_save_checkpoint_refuses_nan_weights(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.U.weight[0, 0] = math.nan
    path = tmp_path / "model.pt"
    with pytest.raises(RuntimeError, match="U.weight"):
        save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {})
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_refuses_infinite_weights(tmp_path):
    model = make_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["embedding.weight"][3, 1] = math.inf
    with pytest.raises(RuntimeError, match="embedding.weight"):
        save_checkpoint(tmp_path / "model.pt", model, state, ["neg", "pos"], {})


def test_loading_a_file_that_is_not_a_checkpoint_names_it(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
