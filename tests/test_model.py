"""The model: the defaults are the notebook's RNN to the bit; every option's fused path equals its step loop,
is exact under right padding and batch invariant; empty reviews, dropout, the notebook's step, checkpoints."""

import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from textrnn import accel
from textrnn.core.errors import UserError
from textrnn.model import CHECKPOINT_FORMAT, READOUTS, RNN, ModelConfig, initialize, load_checkpoint, save_checkpoint
from textrnn.model.cells import CELLS
from textrnn.text.vocab import PAD_ID
from textrnn.training.batching import pad_batch

VOCAB = 50
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---------------------------------------------------------------- today's RNN, frozen (before model options)


class FrozenRNN(nn.Module):
    """textrnn/model.py's RNN as it was before the model options, kept verbatim as the reference for the
    defaults (but for the kernel path's input projection, below)."""

    def __init__(self, vocabulary_size, embedding_size, hidden_size, num_classes=2):
        super().__init__()
        self.num_classes = num_classes
        self.embedding = nn.Embedding(vocabulary_size, embedding_size)
        self.W = nn.Linear(embedding_size, hidden_size)
        self.U = nn.Linear(hidden_size, hidden_size)
        self.V = nn.Linear(hidden_size, 1 if num_classes == 2 else num_classes)
        self.activation = nn.Tanh()

    def init_hidden(self, batch_size):
        return torch.zeros(batch_size, self.U.in_features, device=self.U.weight.device, dtype=self.U.weight.dtype)

    def forward(self, x, hidden):
        hidden = self.activation(self.W(self.embedding(x)) + self.U(hidden))
        return self.V(hidden), hidden

    def forward_loop(self, tokens, lengths):
        hidden = self.init_hidden(tokens.shape[0])
        for t in range(tokens.shape[1]):
            _, stepped = self(tokens[:, t], hidden)
            hidden = torch.where((t < lengths)[:, None], stepped, hidden)
        return self._output(hidden)

    def forward_sequence(self, tokens, lengths):
        import warnings

        batch = tokens.shape[0]
        h0 = self.init_hidden(batch)
        embedded = self.embedding(tokens)
        if accel.applies(embedded, self.U.in_features):
            # Since the projection got a fixed rounding (each row alone, as a table row), accel's; it was
            # nn.functional.linear, whose rows MKL rounds by the batch's row count and threads.
            projected = accel.project(embedded, self.W.weight, self.W.bias + self.U.bias)
            states = accel.rnn_tanh(projected, h0, self.U.weight)
        else:
            weights = [self.W.weight, self.U.weight, self.W.bias, self.U.bias]
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
                states, _ = torch.rnn_tanh(embedded, h0[None], weights, True, 1, 0.0, self.training, False, True)
        last = states[torch.arange(batch, device=tokens.device), (lengths - 1).clamp(min=0)]
        last = torch.where((lengths > 0)[:, None], last, h0)
        return self._output(last)

    def _output(self, hidden):
        logits = self.V(hidden)
        return logits.squeeze(-1) if self.num_classes == 2 else logits


# ---------------------------------------------------------------- helpers


def make_model(seed=0, num_classes=2, dtype=torch.float32, hidden=12, embedding=6, scale=2.0, **options):
    torch.manual_seed(seed)
    model = RNN(ModelConfig(VOCAB, embedding, hidden, num_classes, **options)).to(dtype)
    # Larger weights than the default init, so that the state saturates and differences would show.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def padded(reviews, extra_pads=0):
    ids = np.array([t for r in reviews for t in r], dtype=np.int32)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in reviews])]).astype(np.int64)
    tokens, lengths = pad_batch(ids, offsets, np.arange(len(reviews)), PAD_ID)
    tokens = np.pad(tokens, ((0, 0), (0, extra_pads)), constant_values=PAD_ID)
    return torch.from_numpy(tokens), torch.from_numpy(lengths)


def random_reviews(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, VOCAB, size=n).tolist() for n in lengths]


MIXED = [7, 1, 0, 13, 4, 1, 9, 0, 13]


def loss_of(logits, labels):
    # A loss that weighs every review differently, so that each one's gradient counts.
    weights = torch.linspace(0.5, 1.5, len(labels), dtype=logits.dtype, device=logits.device)
    if logits.dim() == 1:
        losses = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    else:
        losses = nn.functional.cross_entropy(logits, labels, reduction="none")
    return (weights * losses).sum()


def logits_and_grads(model, run, tokens, lengths, labels):
    model.zero_grad()
    logits = run(tokens, lengths)
    loss_of(logits, labels).backward()
    return logits.detach().clone(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_close(a, b, tolerance, check_every_parameter=True):
    (logits_a, grads_a), (logits_b, grads_b) = a, b
    assert logits_a.dtype == logits_b.dtype
    difference = (logits_a - logits_b).abs().max().item()
    assert difference <= tolerance, f"logits differ by {difference}"
    assert set(grads_a) == set(grads_b)
    for name, grad in grads_a.items():
        if check_every_parameter:
            assert grad.abs().max() > 0, name  # every parameter takes part
        difference = (grads_b[name] - grad).abs().max().item()
        assert difference <= tolerance, f"{name}: gradients differ by {difference}"


def option_id(options):
    direction = "bi" if options.get("bidirectional") else "uni"
    return f"{options.get('cell', 'rnn')}-{direction}-{options.get('readout', 'last')}"


# The fast suite (-m "not slow") takes one combination per cell, which together read both ways with
# every readout; the full suite takes all 18.
REPRESENTATIVE = {"rnn-uni-last", "gru-bi-mean", "lstm-bi-max"}
OPTIONS = [
    pytest.param(options, id=option_id(options), marks=() if option_id(options) in REPRESENTATIVE else pytest.mark.slow)
    for options in (
        dict(cell=cell, bidirectional=bidirectional, readout=readout)
        for cell, bidirectional, readout in itertools.product(CELLS, [False, True], READOUTS)
    )
]


def parameter_names(options):
    names = ["embedding.weight", "W.weight", "W.bias", "U.weight", "U.bias", "V.weight", "V.bias"]
    if options.get("bidirectional"):
        names += ["W_reverse.weight", "W_reverse.bias", "U_reverse.weight", "U_reverse.bias"]
    return set(names)


# ---------------------------------------------------------------- the defaults: the notebook's RNN to the bit


def frozen_and_new(seed, num_classes, hidden, embedding=6):
    torch.manual_seed(seed)
    frozen = FrozenRNN(VOCAB, embedding, hidden, num_classes)
    torch.manual_seed(seed)
    new = RNN(ModelConfig(VOCAB, embedding, hidden, num_classes))
    return frozen, new


@pytest.mark.parametrize("hidden", [16, 12], ids=["cpu-kernel", "torch-rnn_tanh"])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_defaults_give_the_frozen_rnn_bit_for_bit_weights_logits_and_gradients(hidden, num_classes):
    frozen, new = frozen_and_new(7, num_classes, hidden)
    assert list(new.state_dict()) == list(frozen.state_dict())  # same names in the same order
    for name, tensor in frozen.state_dict().items():
        assert torch.equal(new.state_dict()[name], tensor), name
    assert accel.applies(new.U.weight, hidden) == (hidden == 16)
    tokens, lengths = padded(random_reviews(MIXED + [40, 3], seed=1))
    labels = torch.arange(len(lengths)) % num_classes
    for frozen_run, new_run in [(frozen.forward_sequence, new.forward), (frozen.forward_loop, new.forward_loop)]:
        for mode in (True, False):
            frozen.train(mode), new.train(mode)
            expected = logits_and_grads(frozen, frozen_run, tokens, lengths, labels)
            state = torch.get_rng_state()
            got = logits_and_grads(new, new_run, tokens, lengths, labels)
            assert torch.equal(torch.get_rng_state(), state)  # no dropout draws
            assert torch.equal(got[0], expected[0]), new_run.__name__
            for name, grad in expected[1].items():
                assert torch.equal(got[1][name], grad), f"{new_run.__name__}: {name}"


def test_defaults_step_is_the_frozen_notebook_forward_bit_for_bit():
    frozen, new = frozen_and_new(3, 2, 64, embedding=32)
    review = random_reviews([25], seed=2)[0]
    hidden_frozen, hidden_new = frozen.init_hidden(2), new.init_hidden(2)
    assert torch.equal(hidden_new, hidden_frozen)
    for token in review:
        x = torch.tensor([token, (token * 7) % VOCAB])
        logits_frozen, hidden_frozen = frozen(x, hidden_frozen)
        logits_new, hidden_new = new.step(x, hidden_new)
        assert torch.equal(logits_new, logits_frozen) and torch.equal(hidden_new, hidden_frozen)


def test_defaults_initialize_as_before():
    frozen, new = frozen_and_new(5, 2, 16)
    torch.manual_seed(9)
    with torch.no_grad():  # the old initialize("orthogonal", 0.1), verbatim
        nn.init.orthogonal_(frozen.U.weight)
        nn.init.normal_(frozen.embedding.weight, std=0.1)
    torch.manual_seed(9)
    initialize(new, "orthogonal", 0.1)
    for name, tensor in frozen.state_dict().items():
        assert torch.equal(new.state_dict()[name], tensor), name


# ---------------------------------------------------------------- every option: fused == loop, exact, invariant


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_fused_path_equals_step_loop_logits_and_every_gradient(options, num_classes, dtype, tolerance):
    # hidden 16: the rnn cell's float32 fused path is textrnn.accel's kernel; float64 is torch's.
    model = make_model(num_classes=num_classes, dtype=dtype, hidden=16, scale=1.5, **options).train()
    assert set(dict(model.named_parameters())) == parameter_names(options)
    tokens, lengths = padded(random_reviews(MIXED))
    labels = torch.arange(len(MIXED)) % num_classes
    loop = logits_and_grads(model, model.forward_loop, tokens, lengths, labels)
    fused = logits_and_grads(model, model.forward, tokens, lengths, labels)
    assert fused[0].shape == ((len(MIXED),) if num_classes == 2 else (len(MIXED), num_classes))
    assert_close(loop, fused, tolerance)


@pytest.mark.parametrize("options", OPTIONS)
def test_a_review_scores_the_same_alone_and_beside_longer_reviews(options):
    model = make_model(num_classes=3, **options).eval()
    short, *long_ones = random_reviews([3, 60, 45, 80], seed=4)
    with torch.no_grad():
        alone = model(*padded([short]))[0]
        for position in range(4):
            batch = list(long_ones)
            batch.insert(position, short)
            beside = model(*padded(batch))[position]
            assert (beside - alone).abs().max().item() <= 1e-6, position
        # Left padding would put pads before the review: the check above could fail.
        tokens = torch.tensor([[PAD_ID] * 77 + short])
        left_padded = model(tokens, torch.tensor([tokens.shape[1]]))[0]
    assert (left_padded - alone).abs().max().item() > 1e-4


@pytest.mark.parametrize("options", OPTIONS)
def test_appending_pads_changes_no_logit_and_no_gradient(options):
    model = make_model(hidden=16, **options).train()
    reviews = random_reviews(MIXED, seed=5)
    labels = torch.arange(len(MIXED)) % 2
    for run in (model.forward, model.forward_loop):
        tight = logits_and_grads(model, run, *padded(reviews), labels)
        loose = logits_and_grads(model, run, *padded(reviews, extra_pads=11), labels)
        assert_close(tight, loose, 1e-6)


@pytest.mark.parametrize("options", OPTIONS)
def test_empty_reviews_read_as_zero_features_so_their_logits_are_v_bias(options):
    model = make_model(num_classes=3, **options).train()
    tokens, lengths = padded(random_reviews([0, 5, 0, 9, 0], seed=6))
    only_empty = padded([[], []])
    assert only_empty[0].shape == (2, 1)  # one column of pads
    for run in (model.forward, model.forward_loop):
        logits = run(tokens, lengths)
        assert torch.equal(logits[[0, 2, 4]], model.V.bias.detach().expand(3, 3))
        assert torch.equal(run(*only_empty), model.V.bias.detach().expand(2, 3))
        model.zero_grad()
        loss_of(logits, torch.tensor([0, 1, 2, 0, 1])).backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_readouts_read_what_they_say():
    """last, mean and max of the forward states computed by hand, with the reverse direction's state."""
    torch.manual_seed(0)
    reviews = random_reviews([4, 7, 2], seed=7)
    tokens, lengths = padded(reviews)
    models = {readout: make_model(scale=1.0, bidirectional=True, readout=readout).eval() for readout in READOUTS}
    model = models["last"]
    with torch.no_grad():
        for row, review in enumerate(reviews):
            hidden = model.init_hidden(1)
            forward_states = []
            for token in review:
                hidden = torch.tanh(model.W(model.embedding(torch.tensor([token]))) + model.U(hidden))
                forward_states.append(hidden[0])
            hidden = model.init_hidden(1)
            reverse_states = []
            for token in reversed(review):
                hidden = torch.tanh(model.W_reverse(model.embedding(torch.tensor([token]))) + model.U_reverse(hidden))
                reverse_states.insert(0, hidden[0])
            states = torch.stack([torch.cat([f, r]) for f, r in zip(forward_states, reverse_states, strict=True)])
            expected = {
                "last": torch.cat([forward_states[-1], reverse_states[0]]),
                "mean": states.mean(dim=0),
                "max": states.amax(dim=0),
            }
            for readout, features in expected.items():
                got = models[readout](tokens, lengths)[row]
                assert abs(got.item() - models[readout].V(features).item()) <= 1e-6, readout


# ---------------------------------------------------------------- dropout


@pytest.mark.parametrize(
    "options",
    [
        dict(cell="rnn"),
        dict(cell="lstm", bidirectional=True, readout="mean"),
        dict(cell="gru", bidirectional=True, readout="max"),
    ],
    ids=option_id,
)
def test_dropout_is_seeded_the_same_in_both_paths_and_off_in_eval(options):
    model = make_model(hidden=16, dropout=0.3, **options)
    plain = make_model(hidden=16, **options)
    tokens, lengths = padded(random_reviews(MIXED, seed=8))
    labels = torch.arange(len(MIXED)) % 2
    model.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(model(tokens, lengths), plain(tokens, lengths))
        assert torch.equal(model.forward_loop(tokens, lengths), plain.forward_loop(tokens, lengths))
    model.train()
    runs = {}
    for name, run, seed in [
        ("fused", model.forward, 1),
        ("again", model.forward, 1),
        ("loop", model.forward_loop, 1),
        ("other seed", model.forward, 2),
    ]:
        torch.manual_seed(seed)
        runs[name] = logits_and_grads(model, run, tokens, lengths, labels)
    assert torch.equal(runs["fused"][0], runs["again"][0])
    assert_close(runs["loop"], runs["fused"], 1e-5)
    assert (runs["other seed"][0] - runs["fused"][0]).abs().max() > 1e-3
    with torch.no_grad():
        assert (runs["fused"][0] - plain(tokens, lengths)).abs().max() > 1e-3  # dropout did drop something


def test_dropout_zeroes_embedded_inputs_and_readout_features_at_its_rate():
    model = make_model(embedding=64, hidden=64, dropout=0.25, readout="mean", scale=1.0).train()
    seen = {"W": [], "V": []}
    for name in seen:
        getattr(model, name).register_forward_pre_hook(lambda module, args, name=name: seen[name].append(args[0]))
    tokens, lengths = padded(random_reviews([40] * 50, seed=9))
    with torch.no_grad():
        model.forward_loop(tokens, lengths)
        inputs, features = torch.stack(seen["W"]), seen["V"][0]
        clean = model.embedding(tokens).transpose(0, 1)
    dropped = inputs == 0
    assert abs(dropped.float().mean().item() - 0.25) < 0.01
    torch.testing.assert_close(inputs[~dropped], clean[~dropped] / 0.75, rtol=1e-6, atol=0)  # the rest scaled up
    assert abs((features == 0).float().mean().item() - 0.25) < 0.05


# ---------------------------------------------------------------- the notebook's step


@pytest.mark.parametrize("cell", list(CELLS))
def test_notebook_step_chain_equals_the_sequence_path_on_one_review(cell):
    model = make_model(dtype=torch.float64, cell=cell).eval()
    review = random_reviews([17], seed=3)[0]
    with torch.no_grad():
        hidden = model.init_hidden(1)
        for token in review:
            logits, hidden = model.step(torch.tensor([token]), hidden)
        fused = model(torch.tensor([review]), torch.tensor([len(review)]))
    assert logits.shape == (1, 1) and model.cell.output(hidden).shape == (1, 12)
    assert abs(logits.item() - fused.item()) < 1e-12


@pytest.mark.parametrize("options", [dict(bidirectional=True), dict(readout="mean"), dict(readout="max")])
def test_step_refuses_models_it_cannot_run_one_token_at_a_time(options):
    model = make_model(**options)
    with pytest.raises(ValueError, match="only for unidirectional models with readout 'last'"):
        model.step(torch.tensor([3]), model.init_hidden(1))


def test_init_hidden_is_zeros_of_the_right_shape():
    hidden = make_model(hidden=12).init_hidden(5)
    assert hidden.shape == (5, 12) and hidden.dtype == torch.float32
    assert torch.count_nonzero(hidden) == 0
    assert make_model(dtype=torch.float64).init_hidden(2).dtype == torch.float64
    h, c = make_model(cell="lstm").init_hidden(3)
    assert h.shape == c.shape == (3, 12) and torch.count_nonzero(h) == torch.count_nonzero(c) == 0


def test_shapes_and_weight_layouts():
    tokens, lengths = padded(random_reviews([4, 2, 6]))
    with torch.no_grad():
        assert make_model(num_classes=2)(tokens, lengths).shape == (3,)
        assert make_model(num_classes=3).forward_loop(tokens, lengths).shape == (3, 3)
    for cell, gates in [("rnn", 1), ("gru", 3), ("lstm", 4)]:
        model = make_model(cell=cell, bidirectional=True, embedding=6, hidden=12)
        assert model.W.weight.shape == model.W_reverse.weight.shape == (gates * 12, 6)
        assert model.U.weight.shape == model.U_reverse.weight.shape == (gates * 12, 12)
        assert model.V.weight.shape == (1, 24)
    assert make_model(num_classes=3).V.out_features == 3


@pytest.mark.parametrize("cell", list(CELLS))
def test_orthogonal_init_makes_every_gate_block_of_every_u_a_rotation(cell):
    model = make_model(cell=cell, bidirectional=True, hidden=12, scale=1.0)
    initialize(model, "orthogonal")
    for U in (model.U, model.U_reverse):
        for block in U.weight.detach().chunk(CELLS[cell].gates):
            assert torch.allclose(block @ block.t(), torch.eye(12), atol=1e-5)
    with pytest.raises(ValueError, match="unknown recurrent init 'xavier'"):
        initialize(model, "xavier")


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cell", "gru2", "ModelConfig.cell must be one of rnn, gru, lstm, got 'gru2'"),
        ("readout", "first", "ModelConfig.readout must be one of last, mean, max, got 'first'"),
        ("dropout", 1.0, r"ModelConfig.dropout must be a number in \[0, 1\), got 1.0"),
        ("bidirectional", "yes", "ModelConfig.bidirectional must be true or false, got 'yes'"),
        ("hidden_size", 0, "ModelConfig.hidden_size must be an integer >= 1, got 0"),
        ("num_classes", 1, "ModelConfig.num_classes must be an integer >= 2, got 1"),
    ],
)
def test_config_refuses_unknown_options_naming_the_field(field, value, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        ModelConfig(**{"vocabulary_size": VOCAB, "embedding_size": 6, "hidden_size": 12, field: value})


# ---------------------------------------------------------------- on a GPU (cuDNN)


@pytest.fixture
def full_float32_cudnn():
    """cuDNN's RNNs in float32 arithmetic: torch lets them use TF32 by default, ~1e-3 off float32's results."""
    allowed = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = allowed


@pytest.mark.gpu
@CUDA
@pytest.mark.parametrize("options", OPTIONS)
def test_on_cuda_the_fused_path_equals_the_step_loop_and_the_cpu(options, full_float32_cudnn):
    cpu = make_model(num_classes=3, hidden=16, scale=1.5, **options).train()
    gpu = make_model(num_classes=3, hidden=16, scale=1.5, **options).train().cuda()
    tokens, lengths = padded(random_reviews(MIXED))
    labels = torch.arange(len(MIXED)) % 3
    on_gpu = [t.cuda() for t in (tokens, lengths, labels)]
    fused = logits_and_grads(gpu, gpu.forward, *on_gpu)
    loop = logits_and_grads(gpu, gpu.forward_loop, *on_gpu)
    assert_close(loop, fused, 1e-5)
    fused_cpu_side = logits_and_grads(cpu, cpu.forward, tokens, lengths, labels)
    assert_close(fused_cpu_side, (fused[0].cpu(), {n: g.cpu() for n, g in fused[1].items()}), 1e-5)
    gpu.eval()
    short, *long_ones = random_reviews([3, 60, 45], seed=4)
    with torch.no_grad():
        alone = gpu(*[t.cuda() for t in padded([short])])[0]
        beside = gpu(*[t.cuda() for t in padded(long_ones + [short])])[2]
    assert (alone - beside).abs().max().item() <= 1e-6


# ---------------------------------------------------------------- checkpoints

INPUTS = {"vocab_sha256": "ab" * 32, "tokenizer": "0123456789abcdef", "max_tokens": None}


@pytest.mark.parametrize(
    "num_classes, options", [(2, {}), (3, dict(cell="lstm", bidirectional=True, readout="max", dropout=0.2))]
)
def test_checkpoint_round_trip(tmp_path, num_classes, options):
    model = make_model(seed=5, num_classes=num_classes, **options)
    path = tmp_path / "models" / "model.pt"
    inputs = {**INPUTS, "max_tokens": 7}
    save_checkpoint(
        path, model, model.state_dict(), ["a", "b", "c"][:num_classes], {"best_epoch": 3, "train_device": "cpu"}, inputs
    )
    # Plain tensors, dicts and strings only: loads without executing anything.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    assert payload["format"] == CHECKPOINT_FORMAT == "textrnn-checkpoint-v2"
    assert payload["inputs"] == inputs
    assert payload["config"] == {
        "vocabulary_size": VOCAB,
        "embedding_size": 6,
        "hidden_size": 12,
        "num_classes": num_classes,
        "cell": "rnn",
        "bidirectional": False,
        "readout": "last",
        "dropout": 0.0,
        **options,
    }
    assert set(payload["state_dict"]) == parameter_names(options)
    checkpoint = load_checkpoint(path)
    loaded = checkpoint.model
    assert checkpoint.label_names == ["a", "b", "c"][:num_classes]
    assert checkpoint.metadata == {"best_epoch": 3, "train_device": "cpu"}
    assert checkpoint.inputs == inputs
    assert loaded.config == model.config
    assert not loaded.training
    tokens, lengths = padded(random_reviews(MIXED))
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(tokens, lengths), model(tokens, lengths))
    assert list(tmp_path.joinpath("models").iterdir()) == [path]  # no temporary file left behind


def test_the_same_weights_give_the_same_checkpoint_bytes(tmp_path):
    model = make_model(seed=5, cell="gru", bidirectional=True)
    paths = [tmp_path / "a" / "model.pt", tmp_path / "b" / "other-name.pt"]
    for path in paths:  # other folders and names: torch would put the file's name inside its zip
        save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {"best_epoch": 1}, INPUTS)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    with torch.no_grad():
        model.V.bias.add_(1e-3)
    save_checkpoint(paths[1], model, model.state_dict(), ["neg", "pos"], {"best_epoch": 1}, INPUTS)
    assert paths[0].read_bytes() != paths[1].read_bytes()  # the comparison above can fail


def test_a_checkpoint_whose_config_is_invalid_is_a_user_error(tmp_path):
    model = make_model()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {}, INPUTS)
    payload = torch.load(path, weights_only=True)
    payload["config"]["cell"] = "transformer"
    torch.save(payload, path)
    with pytest.raises(UserError, match="checkpoint does not match the model .*ModelConfig.cell must be one of"):
        load_checkpoint(path)


def test_save_checkpoint_refuses_nan_weights(tmp_path):
    model = make_model()
    with torch.no_grad():
        model.U.weight[0, 0] = math.nan
    path = tmp_path / "model.pt"
    with pytest.raises(RuntimeError, match="U.weight"):
        save_checkpoint(path, model, model.state_dict(), ["neg", "pos"], {}, INPUTS)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_refuses_infinite_weights(tmp_path):
    model = make_model()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["embedding.weight"][3, 1] = math.inf
    with pytest.raises(RuntimeError, match="embedding.weight"):
        save_checkpoint(tmp_path / "model.pt", model, state, ["neg", "pos"], {}, INPUTS)


def test_loading_a_file_that_is_not_a_checkpoint_names_it(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"garbage")
    with pytest.raises(UserError) as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)
