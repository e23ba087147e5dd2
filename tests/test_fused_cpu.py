"""The hand-written CPU kernel (textrnn.fused_cpu): equal to the step loop and to torch.rnn_tanh, and its fallback."""
import logging

import numpy as np
import pytest
import torch

from textrnn import fused_cpu
from textrnn.data import pad_batch
from textrnn.model import RNN, ModelConfig
from textrnn.vocab import PAD_ID

VOCAB = 60


@pytest.fixture
def kernel():
    assert fused_cpu.available(), "the fused CPU kernel did not build here (g++ on PATH? see the log line)"
    return fused_cpu


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """fused_cpu as in a new process (nothing loaded yet), caching into tmp_path."""
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_tried", False)
    monkeypatch.setenv(fused_cpu.BUILD_DIR, str(tmp_path / "build"))
    return fused_cpu


def make_model(hidden, num_classes=2, embedding=8, seed=0, scale=2.0):
    torch.manual_seed(seed)
    model = RNN(ModelConfig(VOCAB, embedding, hidden, num_classes))
    with torch.no_grad():  # larger than the default init, so that the state saturates and differences show
        for p in model.parameters():
            p.mul_(scale)
    return model.train()


def batch(lengths, seed=0):
    rng = np.random.default_rng(seed)
    reviews = [rng.integers(2, VOCAB, size=n) for n in lengths]
    ids = np.concatenate(reviews).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens, lengths = pad_batch(ids, offsets, np.arange(len(reviews)), PAD_ID)
    labels = torch.arange(len(reviews)) % 2
    return torch.from_numpy(tokens), torch.from_numpy(lengths), labels


def logits_and_grads(model, path, tokens, lengths, labels):
    model.zero_grad()
    logits = getattr(model, path)(tokens, lengths)
    weights = torch.linspace(0.5, 1.5, len(labels))  # every review's gradient weighs differently
    if logits.dim() == 1:
        losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
    else:
        losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    (weights * losses).sum().backward()
    return logits.detach().clone(), {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def assert_same(a, b, tolerance=1e-5):
    (logits_a, grads_a), (logits_b, grads_b) = a, b
    difference = (logits_a - logits_b).abs().max().item()
    assert difference <= tolerance, f"logits differ by {difference}"
    assert set(grads_a) == {"embedding.weight", "W.weight", "W.bias", "U.weight", "U.bias", "V.weight", "V.bias"}
    for name, grad in grads_a.items():
        assert grad.abs().max() > 0, name  # every parameter takes part
        difference = (grads_b[name] - grad).abs().max().item()
        assert difference <= tolerance, f"{name}: gradients differ by {difference}"


# Batch sizes that are not a multiple of the kernel's row block; empty, one-token and full-width reviews.
LENGTHS = [37, 1, 0, 50, 12, 50, 3, 29, 44, 8, 0]


@pytest.mark.parametrize("hidden", [16, 64, 80, 256])
@pytest.mark.parametrize("num_classes", [2, 3])
def test_kernel_equals_step_loop_logits_and_every_gradient(kernel, hidden, num_classes):
    model = make_model(hidden, num_classes, scale=1.0 if hidden == 256 else 2.0)
    tokens, lengths, labels = batch(LENGTHS)
    labels = labels % num_classes
    assert kernel.applies(model.U.weight, hidden)
    loop = logits_and_grads(model, "forward_loop", tokens, lengths, labels)
    fused = logits_and_grads(model, "forward", tokens, lengths, labels)
    assert_same(loop, fused)


def test_kernel_equals_torch_rnn_tanh_on_long_reviews(kernel):
    model = make_model(64, scale=1.0)
    tokens, lengths, labels = batch([300, 257, 120, 299, 1, 64] * 6, seed=3)
    fused = logits_and_grads(model, "forward", tokens, lengths, labels)
    with kernel.enabled(False):
        assert not kernel.applies(model.U.weight, 64)
        reference = logits_and_grads(model, "forward", tokens, lengths, labels)
    assert_same(reference, fused)


def test_kernel_gives_every_state_and_the_gradient_of_h0(kernel):
    torch.manual_seed(1)
    inputs = torch.randn(5, 9, 32, requires_grad=True)
    h0 = torch.randn(5, 32, requires_grad=True)
    weight = (torch.randn(32, 32) * 0.3).requires_grad_()
    states = kernel.rnn_tanh(inputs, h0, weight)
    upstream = torch.randn_like(states)
    (states * upstream).sum().backward()
    got = [states.detach(), inputs.grad, h0.grad, weight.grad]

    for tensor in (inputs, h0, weight):
        tensor.grad = None
    hidden, expected_states = h0, []
    for t in range(inputs.shape[1]):
        hidden = torch.tanh(inputs[:, t] + hidden @ weight.t())
        expected_states.append(hidden)
    expected_states = torch.stack(expected_states, dim=1)
    (expected_states * upstream).sum().backward()
    expected = [expected_states.detach(), inputs.grad, h0.grad, weight.grad]
    for name, a, b in zip(["states", "inputs", "h0", "weight"], got, expected):
        # float32 sums of up to 45 terms of size ~10: relative to the largest value
        assert (a - b).abs().max().item() <= 1e-5 * max(1.0, b.abs().max().item()), name


def test_kernel_tanh_is_within_half_a_micro_of_float64(kernel):
    x = torch.linspace(-20, 20, 16 * 4001).reshape(4001, 1, 16)
    states = kernel.rnn_tanh(x, torch.zeros(4001, 16), torch.zeros(16, 16))  # U = 0: states = tanh(inputs)
    error = (states.double() - torch.tanh(x.double())).abs().max().item()
    assert error <= 5e-7, error
    assert torch.equal(kernel.rnn_tanh(torch.zeros(1, 1, 16), torch.zeros(1, 16), torch.zeros(16, 16)),
                       torch.zeros(1, 1, 16))


def test_kernel_scores_in_inference_mode(kernel):
    model = make_model(32)
    tokens, lengths, _ = batch(LENGTHS)
    with torch.inference_mode():
        fused = model(tokens, lengths)
        loop = model.forward_loop(tokens, lengths)
    assert (fused - loop).abs().max().item() <= 1e-5


def test_sizes_the_kernel_does_not_take_use_torch_rnn_tanh(kernel):
    assert not kernel.applies(torch.zeros(1), 20)  # not a multiple of 16
    assert not kernel.applies(torch.zeros(1), 272)  # over 256
    assert not kernel.applies(torch.zeros(1, dtype=torch.float64), 64)
    model = make_model(20)
    tokens, lengths, labels = batch(LENGTHS)
    assert_same(logits_and_grads(model, "forward_loop", tokens, lengths, labels),
                logits_and_grads(model, "forward", tokens, lengths, labels))


@pytest.mark.parametrize("compiler, reason", [("no-such-compiler-textrnn", "no C++ compiler"),
                                              ("false", "kernel not available")])
def test_a_failed_build_falls_back_to_torch_with_one_log_line(fresh_loader, monkeypatch, caplog, compiler, reason):
    monkeypatch.setenv("CXX", compiler)
    with caplog.at_level(logging.INFO, logger="textrnn.fused_cpu"):
        assert not fresh_loader.available()
        assert not fresh_loader.available()  # tried once, not again
    lines = [r.getMessage() for r in caplog.records if r.name == "textrnn.fused_cpu"]
    assert len(lines) == 1 and reason in lines[0] and "using torch.rnn_tanh" in lines[0], lines
    model = make_model(64)
    tokens, lengths, labels = batch(LENGTHS)
    assert not fresh_loader.applies(model.U.weight, 64)
    assert_same(logits_and_grads(model, "forward_loop", tokens, lengths, labels),
                logits_and_grads(model, "forward", tokens, lengths, labels))


def test_the_switch_turns_the_kernel_off(fresh_loader, monkeypatch):
    monkeypatch.setenv(fused_cpu.SWITCH, "0")
    assert not fresh_loader.available()


def test_a_fresh_build_compiles_once_then_loads_from_the_cache(fresh_loader, tmp_path):
    assert fresh_loader.available()
    built = list((tmp_path / "build").glob("textrnn_rnn_tanh_*.so"))
    assert len(built) == 1 and not list((tmp_path / "build").glob("*.tmp"))
    stamp = built[0].stat().st_mtime_ns
    assert fresh_loader._build("g++") == built[0]
    assert built[0].stat().st_mtime_ns == stamp


def optimizer_run(optimizer_class, steps=25, **options):
    """Parameters and state after ``steps`` steps on fixed gradients: dense, zero rows, and one parameter without any."""
    torch.manual_seed(0)
    params = [torch.randn(300, 8, requires_grad=True), torch.randn(16, requires_grad=True),
              torch.randn(4, 4, requires_grad=True)]
    optimizer = optimizer_class(params, lr=0.01, **options)
    generator = torch.Generator().manual_seed(1)
    for step in range(steps):
        embedding_grad = torch.zeros(300, 8)
        rows = torch.randint(0, 300, (20,), generator=generator)
        embedding_grad[rows] = torch.randn(20, 8, generator=generator) * 10.0 ** -(step % 4)
        params[0].grad, params[1].grad = embedding_grad, torch.randn(16, generator=generator)
        optimizer.step()
    return params, optimizer


def test_fused_rmsprop_follows_torch_rmsprop(kernel):
    ours, fused = optimizer_run(kernel.RMSprop)
    theirs, reference = optimizer_run(torch.optim.RMSprop)
    assert fused._fused()
    for mine, torch_param in zip(ours, theirs):
        # 25 updates of up to lr / sqrt(1 - alpha) = 0.1 each, each one rounded: a few float32 ulps of |param| ~ 2
        assert torch.allclose(mine, torch_param, rtol=0, atol=2e-6), (mine - torch_param).abs().max()
    assert not fused.state[ours[2]] and not reference.state[theirs[2]]  # no gradient, no state, untouched
    assert torch.equal(ours[2], theirs[2])
    for mine, torch_param in zip(ours[:2], theirs[:2]):
        a, b = fused.state[mine], reference.state[torch_param]
        assert set(a) == set(b) == {"step", "square_avg"} and a["step"].dtype == b["step"].dtype
        assert a["step"].item() == b["step"].item() == 25
        assert torch.allclose(a["square_avg"], b["square_avg"], rtol=1e-6, atol=0)
    untouched = fused.state[ours[0]]["square_avg"] == 0  # embedding rows no step had a gradient for
    assert untouched.any() and torch.equal(untouched, reference.state[theirs[0]]["square_avg"] == 0)


def test_fused_rmsprop_takes_torch_step_where_it_does_not_apply(kernel):
    ours, _ = optimizer_run(kernel.RMSprop, momentum=0.9)
    theirs, _ = optimizer_run(torch.optim.RMSprop, momentum=0.9)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    with kernel.enabled(False):
        ours, _ = optimizer_run(kernel.RMSprop)
    theirs, _ = optimizer_run(torch.optim.RMSprop)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
