"""textrnn pins ATen's and MKL's CPU code paths when imported, before torch picks them, unless the user chose."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from textrnn.core import cpu_dispatch

ROOT = Path(__file__).resolve().parents[1]

# The bytes of a matrix product as training runs them (linear, its two gradients) and of torch's vector math.
PROBE = """
import hashlib, os, sys
{first}
import numpy as np, torch
torch.set_num_threads(1)
def values(n, seed):
    i = np.arange(n)
    return torch.from_numpy((((i * 2654435761 + seed) % 20011 - 10005).astype(np.float32) / np.float32(3001)))
x, w, g = values(8640 * 32, 1).view(8640, 32), values(64 * 32, 2).view(64, 32), values(8640 * 64, 3).view(8640, 64)
out = [torch.nn.functional.linear(x, w), g.t().mm(x), g.mm(w), (x / 8).exp(), x.tanh()]
print(torch.backends.cpu.get_cpu_capability(), os.environ.get("MKL_CBWR", "unset"),
      hashlib.sha256(b"".join(t.contiguous().numpy().tobytes() for t in out)).hexdigest()[:16])
"""


def probe(first: str, **env: str) -> list:
    environment = {k: v for k, v in os.environ.items() if k not in cpu_dispatch.PINS}
    environment.update(env, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)], env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


AVX2_PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "COMPATIBLE"}


@pytest.mark.parametrize(
    "machine, flags, expected",
    [
        ("x86_64", {"avx", "avx2", "fma", "avx512f"}, AVX2_PINS),
        ("x86_64", {"avx", "avx2", "fma"}, AVX2_PINS),
        ("x86_64", {"sse4_2", "avx"}, {"MKL_CBWR": "COMPATIBLE"}),  # ATen runs its DEFAULT kernels there anyway
        ("aarch64", {"asimd", "sve"}, {}),  # no MKL; ATen's levels there are others
    ],
)
def test_the_pins_for_each_cpu(machine, flags, expected):
    assert cpu_dispatch.pins(machine, flags) == expected


@pytest.mark.slow  # subprocesses that import torch
def test_importing_textrnn_pins_torch_before_its_first_op():
    expected = cpu_dispatch.pins(os.uname().machine, cpu_dispatch.cpu_flags())
    if "ATEN_CPU_CAPABILITY" not in expected:
        pytest.skip("pins ATen only on x86-64 CPUs with AVX2 and FMA")
    # torch imported first, as stages/train.py does: textrnn's import still comes before any op
    pinned = probe("import torch, textrnn")
    by_hand = probe("", MKL_CBWR="COMPATIBLE", ATEN_CPU_CAPABILITY="avx2")
    assert pinned == by_hand == ["AVX2", "COMPATIBLE", by_hand[2]]


@pytest.mark.slow  # subprocesses that import torch
def test_a_value_the_user_set_is_kept():
    chosen = probe("import textrnn", MKL_CBWR="AUTO", ATEN_CPU_CAPABILITY="default")
    assert chosen[:2] == ["DEFAULT", "AUTO"]
    assert chosen == probe("", MKL_CBWR="AUTO", ATEN_CPU_CAPABILITY="default")


LSTM_PROBE = """
import hashlib, torch, textrnn
from textrnn.model import RNN, ModelConfig
torch.set_num_threads(1)
torch.manual_seed(0)
model = RNN(ModelConfig(300, 16, 32, 2, cell="lstm", bidirectional=True, readout="max"))
tokens, lengths = torch.randint(2, 300, (8, 30)), torch.arange(23, 31)
model(tokens, lengths).sum().backward()
print(hashlib.sha256(b"".join(p.grad.numpy().tobytes() for p in model.parameters())).hexdigest())
"""


@pytest.mark.slow  # subprocesses that import torch
def test_onednn_which_runs_the_lstm_is_pinned_too():
    if "ONEDNN_MAX_CPU_ISA" not in cpu_dispatch.pins(os.uname().machine, cpu_dispatch.cpu_flags()):
        pytest.skip("pins oneDNN only on x86-64 CPUs with AVX2 and FMA")

    def gradients(**env):
        environment = {k: v for k, v in os.environ.items() if k not in cpu_dispatch.PINS}
        environment.update(env, PYTHONPATH=str(ROOT))
        result = subprocess.run(
            [sys.executable, "-c", LSTM_PROBE], env=environment, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    pinned = gradients()
    assert pinned == gradients(ONEDNN_MAX_CPU_ISA="AVX2")
    assert pinned != gradients(ONEDNN_MAX_CPU_ISA="SSE41")  # oneDNN's kernels round per ISA: the pin matters
