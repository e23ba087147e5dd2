"""textrnn.accel: the hand-written kernels equal the step loop and torch, give the same bytes at every
ISA level, build once into a checked cache, and fall back to PyTorch's kernels where they cannot build."""

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from textrnn import accel
from textrnn.accel import cpu
from textrnn.accel import kernel as kernels_module
from textrnn.model import RNN, ModelConfig
from textrnn.text.vocab import PAD_ID
from textrnn.training.batching import pad_batch

ROOT = Path(__file__).resolve().parents[1]
VOCAB = 60


@pytest.fixture
def kernel():
    assert accel.available(), "the CPU kernels did not build here (g++ on PATH? see the log line)"
    return accel


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """textrnn.accel as in a new process (nothing loaded yet), caching into tmp_path."""
    monkeypatch.setattr(kernels_module, "_kernels", None)
    monkeypatch.setattr(kernels_module, "_tried", False)
    monkeypatch.setenv(kernels_module.BUILD_DIR, str(tmp_path / "build"))
    return kernels_module


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
    for name, a, b in zip(["states", "inputs", "h0", "weight"], got, expected, strict=True):
        # float32 sums of up to 45 terms of size ~10: relative to the largest value
        assert (a - b).abs().max().item() <= 1e-5 * max(1.0, b.abs().max().item()), name


def test_kernel_tanh_is_within_half_a_micro_of_float64(kernel):
    x = torch.linspace(-20, 20, 16 * 4001).reshape(4001, 1, 16)
    states = kernel.rnn_tanh(x, torch.zeros(4001, 16), torch.zeros(16, 16))  # U = 0: states = tanh(inputs)
    error = (states.double() - torch.tanh(x.double())).abs().max().item()
    assert error <= 5e-7, error
    assert torch.equal(
        kernel.rnn_tanh(torch.zeros(1, 1, 16), torch.zeros(1, 16), torch.zeros(16, 16)), torch.zeros(1, 1, 16)
    )


def test_kernel_scores_in_inference_mode(kernel):
    model = make_model(32)
    tokens, lengths, _ = batch(LENGTHS)
    with torch.inference_mode():
        fused = model.forward(tokens, lengths)
        loop = model.forward_loop(tokens, lengths)
    assert (fused - loop).abs().max().item() <= 1e-5


def token_rows(lengths, vocabulary, generator):
    """Reviews of random ids as one ids array with each review's start, with a gap before each."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.cumsum(lengths + 3) - lengths  # 3 ids between reviews that no review reads
    ids = torch.randint(0, vocabulary, (int(starts[-1] + lengths[-1]) + 2,), generator=generator)
    return ids.numpy().astype(np.int32), starts, lengths


def padded_inputs(table, ids, starts, lengths, reverse):
    """table[token] [rows, longest, hidden] of each review's tokens (reversed when ``reverse``), zeros after them."""
    inputs = torch.zeros(len(starts), max(int(lengths.max()), 1), table.shape[1])
    for b, (start, n) in enumerate(zip(starts, lengths, strict=True)):
        tokens = torch.from_numpy(ids[start : start + n].astype(np.int64))
        inputs[b, :n] = table[tokens.flip(0) if reverse else tokens]
    return inputs


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("hidden", [16, 48, 64, 80, 256])
def test_kernel_last_state_is_the_full_forward_state_at_each_rows_length_bit_for_bit(kernel, hidden, reverse):
    generator = torch.Generator().manual_seed(hidden)
    # 11 rows: blocks of 2 or 4 rows and a remainder; rows of one block end at different steps
    ids, starts, lengths = token_rows([40, 0, 1, 17, 40, 39, 2, 0, 25, 8, 33], 37, generator)
    table = torch.randn(37, hidden, generator=generator) * 3
    weight = torch.randn(hidden, hidden, generator=generator) * 1.5 / hidden**0.5
    inputs = padded_inputs(table, ids, starts, lengths, reverse)
    rows, at = torch.arange(11), torch.from_numpy(lengths)
    with torch.no_grad():
        states = kernel.rnn_tanh(inputs, torch.zeros(11, hidden), weight)
        last = kernel.rnn_tanh_last(table, ids, starts, lengths, weight, reverse)
        # a row's answer does not depend on the rows beside it
        alone = [kernel.rnn_tanh_last(table, ids, starts[b : b + 1], lengths[b : b + 1], weight, reverse) for b in rows]
    expected = torch.where((at > 0)[:, None], states[rows, (at - 1).clamp(min=0)], 0.0)
    assert torch.equal(last, expected)
    assert torch.equal(torch.cat(alone), expected)


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_kernel_last_state_does_not_depend_on_the_threads(kernel, threads):
    generator = torch.Generator().manual_seed(threads)
    ids, starts, lengths = token_rows(torch.randint(0, 31, (61,), generator=generator).numpy(), 50, generator)
    table, weight = torch.randn(50, 64, generator=generator) * 2, torch.randn(64, 64, generator=generator) * 0.2
    with torch.no_grad():
        one = kernel.rnn_tanh_last(table, ids, starts, lengths, weight, threads=1)
        several = kernel.rnn_tanh_last(table, ids, starts, lengths, weight, threads=threads)
    assert len(accel.rnn._row_chunks(61, threads)) == threads  # each thread has rows to run
    assert torch.equal(one, several)


def test_kernel_last_state_refuses_rows_outside_the_ids_ids_outside_the_table_and_a_gradient(kernel):
    table, weight, ids = torch.zeros(4, 16), torch.zeros(16, 16), np.array([0, 1, 2, 3, 4], dtype=np.int32)
    one = np.array([1])
    with torch.no_grad():
        for starts, lengths in [([3], [3]), ([-1], [1]), ([0], [-1])]:
            with pytest.raises(ValueError, match="a row's tokens lie outside the 5 ids"):
                kernel.rnn_tanh_last(table, ids, np.array(starts), np.array(lengths), weight)
        with pytest.raises(ValueError, match="a token id lies outside the table's 4 rows"):
            kernel.rnn_tanh_last(table, ids, one * 2, one * 3, weight)  # reads id 4
        with pytest.raises(ValueError, match="a token id lies outside the table's 4 rows"):
            kernel.rnn_tanh_last(table, -ids, one, one, weight)
        assert kernel.rnn_tanh_last(table, ids, one * 0, one * 4, weight).shape == (1, 16)  # ids 0 .. 3 are fine
    with pytest.raises(RuntimeError, match="rnn_tanh_last has no gradient"):
        kernel.rnn_tanh_last(table, ids, one, one, weight.requires_grad_())


def projection_in_order(x, weight, bias):
    """The projection's definition in numpy: products summed over k in order, each rounded, then the bias."""
    x, weight, bias = (t.detach().numpy() for t in (x, weight, bias))
    total = np.zeros((len(x), len(weight)), dtype=np.float32)
    for k in range(x.shape[1]):
        total = total + x[:, k : k + 1] * weight[:, k][None, :]
    return torch.from_numpy(total + bias)


@pytest.mark.parametrize("hidden, inputs", [(16, 1), (48, 8), (64, 32), (80, 7), (256, 300)])
def test_projection_sums_in_order_and_each_row_rounds_alone(kernel, hidden, inputs):
    generator = torch.Generator().manual_seed(hidden)
    x = torch.randn(203, inputs, generator=generator) * 2
    x[0, :1] = 0.0
    weight, bias = torch.randn(hidden, inputs, generator=generator), torch.randn(hidden, generator=generator)
    expected = projection_in_order(x, weight, bias)
    previous_threads = torch.get_num_threads()
    with torch.no_grad():
        assert torch.equal(kernel.project(x, weight, bias), expected)
        for rows in (1, 2, 3, 5, 13, 64):  # other batch shapes and thread counts, the same rows
            for threads in (1, 2, 3):
                torch.set_num_threads(threads)
                try:
                    assert torch.equal(kernel.project(x[:rows], weight, bias), expected[:rows])
                finally:
                    torch.set_num_threads(previous_threads)
        batched = kernel.project(x[:60].view(4, 15, inputs), weight, bias)
    assert batched.shape == (4, 15, hidden) and torch.equal(batched.view(60, hidden), expected[:60])


def test_projection_gradients_are_linears_bit_for_bit(kernel):
    generator = torch.Generator().manual_seed(0)
    x = (torch.randn(7, 13, 32, generator=generator)).requires_grad_()
    weight = torch.randn(64, 32, generator=generator).requires_grad_()
    bias = torch.randn(64, generator=generator).requires_grad_()
    grad = torch.randn(7, 13, 64, generator=generator)
    ours = torch.autograd.grad(kernel.project(x, weight, bias), (x, weight, bias), grad)
    linears = torch.autograd.grad(torch.nn.functional.linear(x, weight, bias), (x, weight, bias), grad)
    for a, b in zip(ours, linears, strict=True):
        assert torch.equal(a, b)


def test_sizes_the_kernel_does_not_take_use_torch_rnn_tanh(kernel):
    assert not kernel.applies(torch.zeros(1), 20)  # not a multiple of 16
    assert not kernel.applies(torch.zeros(1), 272)  # over 256
    assert not kernel.applies(torch.zeros(1, dtype=torch.float64), 64)
    model = make_model(20)
    tokens, lengths, labels = batch(LENGTHS)
    assert_same(
        logits_and_grads(model, "forward_loop", tokens, lengths, labels),
        logits_and_grads(model, "forward", tokens, lengths, labels),
    )


# ---------------------------------------------------------------- the same bytes on every CPU


def kernel_outputs(kernels):
    """Every output of every kernel function on fixed inputs: hidden sizes of both blockings, tanh's
    clamp and its small-|x| branch, a batch that is not a multiple of the row block, RMSprop on
    zero, tiny and large gradients over a length that is not a multiple of any vector width."""
    generator = torch.Generator()
    outputs = {}
    for hidden in (16, 48, 64, 80, 256):
        generator.manual_seed(hidden)
        inputs = torch.randn(11, 40, hidden, generator=generator) * 3
        inputs[0, 0, :8] = torch.tensor([0.0, -0.0, 1e-5, -3e-4, 9.0, -12.0, 1e-30, 7.99])
        h0 = torch.randn(11, hidden, generator=generator)
        weight = torch.randn(hidden, hidden, generator=generator) * 1.5 / hidden**0.5
        grad_states = torch.randn(11, 40, hidden, generator=generator)
        states, grad_inputs, grad_h0 = torch.empty_like(inputs), torch.empty_like(inputs), torch.empty_like(h0)
        kernels.rnn_tanh_forward(inputs, h0, weight, states)
        kernels.rnn_tanh_backward(grad_states, states, weight, grad_inputs, grad_h0)
        ids, starts, lengths = token_rows([40, 0, 1, 17, 40, 39, 2, 0, 25, 8, 33], 37, generator)
        x, w = torch.randn(37, 20, generator=generator), torch.randn(hidden, 20, generator=generator)
        table = torch.empty(37, hidden)
        kernels.project(x, w, torch.randn(hidden, generator=generator), table)
        last, last_reversed = torch.empty(11, hidden), torch.empty(11, hidden)
        kernels.rnn_tanh_last(table, ids, starts, lengths, False, weight, last)
        kernels.rnn_tanh_last(table, ids, starts, lengths, True, weight, last_reversed)
        outputs.update(
            {
                f"states {hidden}": states,
                f"grad_inputs {hidden}": grad_inputs,
                f"grad_h0 {hidden}": grad_h0,
                f"table {hidden}": table,
                f"last {hidden}": last,
                f"last reversed {hidden}": last_reversed,
            }
        )
    param, square_avg = torch.randn(1001, generator=generator), torch.zeros(1001)
    for step in range(20):
        grad = torch.randn(1001, generator=generator) * 10.0 ** (2 - step % 6)
        grad[::7] = 0
        kernels.rmsprop_step(param, grad, square_avg, lr=0.01, alpha=0.99, eps=1e-8)
    outputs.update({"rmsprop param": param, "rmsprop square_avg": square_avg})
    return {name: tensor.numpy().tobytes() for name, tensor in outputs.items()}


def levels_this_cpu_runs():
    flags = kernels_module.cpu_flags()
    if os.uname().machine != "x86_64":
        return []
    return ["x86-64"] + [name for name, needs in reversed(kernels_module.X86_LEVELS) if needs <= flags]


def test_every_isa_level_gives_the_same_bytes(kernel, tmp_path):
    levels = levels_this_cpu_runs()
    if len(levels) < 2:
        pytest.skip("needs an x86-64 CPU that runs two ISA levels")
    common = [flag for flag in kernels_module.compile_flags() if not flag.startswith("-march=")]
    results = {}
    for level in levels:
        path = kernels_module.build(kernels_module.compiler(), common + [f"-march={level}"], tmp_path / level)
        results[level] = kernel_outputs(kernels_module.Kernels(path))
    results["this process's build"] = kernel_outputs(kernels_module.loaded())
    baseline = results["x86-64"]
    differing = {
        level: [name for name in baseline if outputs[name] != baseline[name]] for level, outputs in results.items()
    }
    assert not any(differing.values()), differing


@pytest.mark.parametrize(
    "machine, flags, expected",
    [
        ("x86_64", set(), ["-march=x86-64"]),
        ("x86_64", kernels_module.X86_LEVELS[1][1], ["-march=x86-64-v2"]),
        ("x86_64", kernels_module.X86_LEVELS[0][1], ["-march=x86-64-v3"]),
        (
            "x86_64",
            kernels_module.X86_LEVELS[0][1] | {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
            ["-march=x86-64-v3"],
        ),
        ("x86_64", kernels_module.X86_LEVELS[0][1] - {"fma"}, ["-march=x86-64-v2"]),
        ("aarch64", {"fp", "asimd", "sve"}, ["-march=armv8-a"]),
        ("riscv64", set(), []),
    ],
)
def test_the_isa_level_is_one_of_a_fixed_few(machine, flags, expected):
    assert kernels_module.isa_flags(machine, flags) == expected
    assert "-ffp-contract=off" in kernels_module.compile_flags()


# ---------------------------------------------------------------- building, caching, falling back


@pytest.mark.parametrize(
    "compiler, reason", [("no-such-compiler-textrnn", "no C++ compiler"), ("false", "kernels not available")]
)
def test_a_failed_build_falls_back_to_torch_with_one_log_line(fresh_loader, monkeypatch, caplog, compiler, reason):
    monkeypatch.setenv("CXX", compiler)
    with caplog.at_level(logging.INFO, logger="textrnn.accel"):
        assert not fresh_loader.available()
        assert not fresh_loader.available()  # tried once, not again
    lines = [r.getMessage() for r in caplog.records if r.name == "textrnn.accel"]
    assert len(lines) == 1 and reason in lines[0] and "using PyTorch's kernels" in lines[0], lines
    model = make_model(64)
    tokens, lengths, labels = batch(LENGTHS)
    assert not accel.applies(model.U.weight, 64)
    assert_same(
        logits_and_grads(model, "forward_loop", tokens, lengths, labels),
        logits_and_grads(model, "forward", tokens, lengths, labels),
    )


def test_the_switch_turns_the_kernels_off(fresh_loader, monkeypatch, caplog):
    monkeypatch.setenv(accel.SWITCH, "0")
    with caplog.at_level(logging.INFO, logger="textrnn.accel"):
        assert not fresh_loader.available()
    assert [r.getMessage() for r in caplog.records] == ["accel: TEXTRNN_FUSED_CPU=0, using PyTorch's kernels"]


def compiler_named_c_plus_plus(tmp_path):
    """g++ under another name, as CXX=c++ or a toolchain wrapper gives it: its --version line differs."""
    link = tmp_path / "bin" / "c++"
    link.parent.mkdir()
    link.symlink_to(shutil.which("g++"))
    return str(link)


@pytest.mark.parametrize("cxx", ["unset", "c++"])
def test_a_fresh_build_compiles_once_then_loads_from_the_cache(fresh_loader, monkeypatch, tmp_path, caplog, cxx):
    if cxx == "unset":
        monkeypatch.delenv("CXX", raising=False)
    else:
        monkeypatch.setenv("CXX", compiler_named_c_plus_plus(tmp_path))
    with caplog.at_level(logging.INFO, logger="textrnn.accel"):
        assert fresh_loader.available()
    files = sorted(path.name for path in (tmp_path / "build").iterdir())
    assert len(files) == 2 and files[0].endswith(".so") and files[1] == files[0] + ".sha256", files
    library = tmp_path / "build" / files[0]
    stamp = library.stat().st_mtime_ns
    monkeypatch.setattr(fresh_loader, "_tried", False)  # as a second process would
    with caplog.at_level(logging.INFO, logger="textrnn.accel"):
        assert fresh_loader.available()
    assert fresh_loader.loaded().path == library and library.stat().st_mtime_ns == stamp
    assert sorted(path.name for path in (tmp_path / "build").iterdir()) == files
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [f"accel: compiled {library}"]


SMOKE = """import logging, torch
logging.basicConfig(level=logging.INFO, format="%(message)s")
from textrnn import accel
assert accel.available()
print(accel.rnn_tanh(torch.ones(1, 2, 16), torch.zeros(1, 16), torch.eye(16)).sum().item())
"""


def run_smoke(build_dir):
    env = dict(os.environ, TEXTRNN_BUILD_DIR=str(build_dir), PYTHONPATH=str(ROOT))
    env.pop(accel.SWITCH, None)
    return subprocess.run([sys.executable, "-c", SMOKE], env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory):
    """A cache folder as a first run leaves it, and what that run printed."""
    directory = tmp_path_factory.mktemp("cache")
    first = run_smoke(directory)
    assert first.returncode == 0, first.stderr
    return directory, first.stdout


@pytest.mark.parametrize("damage", ["truncated", "no checksum"])
def test_a_damaged_cached_library_is_rebuilt_not_loaded(built_cache, tmp_path, damage):
    directory = tmp_path / "cache"
    shutil.copytree(built_cache[0], directory)
    (library,) = directory.glob("*.so")
    if damage == "truncated":  # as a crash or a full disk leaves it; loading it would die of SIGBUS
        library.write_bytes(library.read_bytes()[: library.stat().st_size // 2])
    else:  # as a build interrupted between the library and its checksum leaves it
        Path(f"{library}.sha256").unlink()
    second = run_smoke(directory)
    assert second.returncode == 0, f"exit {second.returncode}: {second.stderr[-500:]}"
    assert second.stdout == built_cache[1]
    assert second.stderr.splitlines() == [f"accel: rebuilt {library}: the cached copy failed its checksum"]
    assert kernels_module._intact(library)


def test_concurrent_first_builds_share_one_intact_library(tmp_path):
    """As DDP ranks or parallel test workers start on an empty cache: each builds, none loads half a file."""
    environment = dict(os.environ, TEXTRNN_BUILD_DIR=str(tmp_path), PYTHONPATH=str(ROOT))
    environment.pop(accel.SWITCH, None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", SMOKE], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], [err for _, err in outputs]
    assert len({out for out, _ in outputs}) == 1
    (library,) = tmp_path.glob("*.so")
    assert sorted(path.name for path in tmp_path.iterdir()) == [library.name, f"{library.name}.sha256"]
    assert kernels_module._intact(library)


# ---------------------------------------------------------------- RMSprop


def optimizer_run(optimizer_class, steps=25, **options):
    """Parameters and state after ``steps`` steps on fixed gradients: dense, zero rows, one parameter without any."""
    torch.manual_seed(0)
    params = [
        torch.randn(300, 8, requires_grad=True),
        torch.randn(16, requires_grad=True),
        torch.randn(4, 4, requires_grad=True),
    ]
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
    for mine, torch_param in zip(ours, theirs, strict=True):
        # 25 updates of up to lr / sqrt(1 - alpha) = 0.1 each, each one rounded: a few float32 ulps of |param| ~ 2
        assert torch.allclose(mine, torch_param, rtol=0, atol=2e-6), (mine - torch_param).abs().max()
    assert not fused.state[ours[2]] and not reference.state[theirs[2]]  # no gradient, no state, untouched
    assert torch.equal(ours[2], theirs[2])
    for mine, torch_param in zip(ours[:2], theirs[:2], strict=True):
        a, b = fused.state[mine], reference.state[torch_param]
        assert set(a) == set(b) == {"step", "square_avg"} and a["step"].dtype == b["step"].dtype
        assert a["step"].item() == b["step"].item() == 25
        assert torch.allclose(a["square_avg"], b["square_avg"], rtol=1e-6, atol=0)
    untouched = fused.state[ours[0]]["square_avg"] == 0  # embedding rows no step had a gradient for
    assert untouched.any() and torch.equal(untouched, reference.state[theirs[0]]["square_avg"] == 0)


@pytest.mark.parametrize("default_dtype", [torch.float32, torch.float64])
def test_fused_rmsprop_creates_the_state_torch_creates(kernel, default_dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(default_dtype)
    try:
        states = []
        for optimizer_class in (kernel.RMSprop, torch.optim.RMSprop):
            param = torch.ones(5, dtype=torch.float32, requires_grad=True)
            optimizer = optimizer_class([param], lr=0.01)
            param.grad = torch.ones(5, dtype=torch.float32)
            assert optimizer_class is torch.optim.RMSprop or optimizer._fused()
            optimizer.step()
            states.append(optimizer.state[param])
    finally:
        torch.set_default_dtype(previous)
    ours, theirs = states
    assert set(ours) == set(theirs) == {"step", "square_avg"}
    for name in ours:
        assert (ours[name].dtype, ours[name].shape, ours[name].device) == (
            theirs[name].dtype,
            theirs[name].shape,
            theirs[name].device,
        ), name


def test_either_rmsprop_continues_the_others_state(kernel):
    """5 steps of one optimizer, then its state_dict loaded into the other for 5 more: as 10 steps of torch's."""
    for first, second in ((kernel.RMSprop, torch.optim.RMSprop), (torch.optim.RMSprop, kernel.RMSprop)):
        params, optimizer = optimizer_run(first, steps=5)
        successor = second(params, lr=0.01)
        successor.load_state_dict(optimizer.state_dict())
        generator = torch.Generator().manual_seed(2)
        for _ in range(5):
            params[0].grad, params[1].grad = (torch.randn(p.shape, generator=generator) for p in params[:2])
            if second is kernel.RMSprop:
                assert successor._fused()  # the kernel steps on the state torch created
            successor.step()
        reference, reference_optimizer = optimizer_run(torch.optim.RMSprop, steps=5)
        generator = torch.Generator().manual_seed(2)
        for _ in range(5):
            reference[0].grad, reference[1].grad = (torch.randn(p.shape, generator=generator) for p in reference[:2])
            reference_optimizer.step()
        for p, q in zip(params, reference, strict=True):
            assert torch.allclose(p, q, rtol=0, atol=2e-6), (p - q).abs().max()
            assert set(successor.state[p]) == set(reference_optimizer.state[q])
        assert successor.state[params[0]]["step"].item() == 10


def test_fused_rmsprop_runs_the_step_hooks_once_per_step(kernel):
    calls = []
    handle = register_optimizer_step_pre_hook(lambda *args: calls.append(1))
    try:
        torch.optim.RMSprop([torch.zeros(1, requires_grad=True)])  # torch wraps RMSprop.step with the hooks too
        optimizer_run(kernel.RMSprop, steps=3)
    finally:
        handle.remove()
    assert len(calls) == 3


def test_fused_rmsprop_takes_torch_step_where_it_does_not_apply(kernel):
    ours, _ = optimizer_run(kernel.RMSprop, momentum=0.9)
    theirs, _ = optimizer_run(torch.optim.RMSprop, momentum=0.9)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    with kernel.enabled(False):
        ours, _ = optimizer_run(kernel.RMSprop)
    theirs, _ = optimizer_run(torch.optim.RMSprop)
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


# ---------------------------------------------------------------- CPU settings


@pytest.mark.parametrize("before", [False, True])
def test_cpu_settings_flush_denormals_inside_and_restore_the_previous_setting(before):
    torch.set_flush_denormal(before)
    try:
        assert cpu.flushes_denormals() == before
        with accel.cpu_settings(torch.device("cpu")):
            assert cpu.flushes_denormals()
            tiny = torch.tensor([1e-30]) * torch.tensor([1e-10])
            assert tiny.item() == 0.0
        assert cpu.flushes_denormals() == before
    finally:
        torch.set_flush_denormal(False)
