"""The C++ kernels of csrc/: compiled with g++ on first use into a cache folder, checked, loaded with ctypes.

Their results do not depend on the CPU they run on: every float operation is rounded on its own
(``-ffp-contract=off``: no ``a * b + c`` fused into one FMA where the ISA has it), the ISA level
is one of a fixed few (``isa_flags``, never ``-march=native``), and csrc/ gives each output the
same sequence of operations at every vector width. Where they cannot be built or loaded (no
compiler, a failed build) or ``TEXTRNN_FUSED_CPU=0`` is set, callers keep PyTorch's own kernels;
one log line says why.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from textrnn.core import native
from textrnn.core.cpu_dispatch import cpu_flags  # noqa: F401  (tests patch it here)
from textrnn.core.native import (  # noqa: F401  (the kernels' build settings, here too: tests read them here)
    BUILD_DIR,
    X86_LEVELS,
    _intact,
    build_dir,
    compile_flags,
    compiler,
    isa_flags,
)

log = logging.getLogger("textrnn.accel")

SWITCH = "TEXTRNN_FUSED_CPU"  # "0" keeps PyTorch's kernels everywhere
SOURCES = [Path(__file__).resolve().parent / "csrc" / name for name in ("rnn_tanh.cpp", "rmsprop.cpp")]

_lock = threading.Lock()
_kernels: Kernels | None = None
_tried = False
_enabled = True


@contextlib.contextmanager
def enabled(flag: bool) -> Iterator[None]:
    """Use (True) or bypass (False) the kernels inside the block; tests and benchmarks compare both."""
    global _enabled
    previous, _enabled = _enabled, flag
    try:
        yield
    finally:
        _enabled = previous


def is_enabled() -> bool:
    return _enabled


def build(command: list[str], flags: list[str], directory: Path) -> Path:
    """The kernels' library for this compiler and flags (see ``textrnn.core.native.build``)."""
    return native.build(command, flags, directory, SOURCES, "textrnn_kernels", "accel", log)


def _pointer(array: torch.Tensor | np.ndarray) -> ctypes.c_void_p:
    if isinstance(array, np.ndarray):
        return ctypes.c_void_p(array.ctypes.data)
    return ctypes.c_void_p(array.data_ptr())


class Kernels:
    """The library's functions on contiguous float32 CPU tensors (the callers check)."""

    def __init__(self, path: Path):
        library = ctypes.CDLL(str(path))
        pointers = [ctypes.c_void_p] * 5
        library.textrnn_rnn_tanh_forward.argtypes = pointers[:4] + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_backward.argtypes = pointers + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_forward.restype = library.textrnn_rnn_tanh_backward.restype = ctypes.c_int
        library.textrnn_project.argtypes = pointers[:4] + [ctypes.c_int64] * 3
        library.textrnn_project.restype = ctypes.c_int
        library.textrnn_rnn_tanh_last.argtypes = [
            ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
        ]  # fmt: skip
        library.textrnn_rnn_tanh_last.restype = ctypes.c_int
        library.textrnn_max_hidden.restype = ctypes.c_int
        library.textrnn_rmsprop_step.argtypes = pointers[:3] + [ctypes.c_int64] + [ctypes.c_float] * 4
        library.textrnn_rmsprop_step.restype = None
        self.path, self._library = path, library
        self.max_hidden = library.textrnn_max_hidden()

    def rnn_tanh_forward(
        self, inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor, states: torch.Tensor
    ) -> None:
        """states[:, t] = tanh(inputs[:, t] + states[:, t - 1] weight^T), states[:, -1] being h0."""
        batch, steps, hidden = inputs.shape
        status = self._library.textrnn_rnn_tanh_forward(
            _pointer(inputs), _pointer(h0), _pointer(weight), _pointer(states), batch, steps, hidden
        )
        if status != 0:
            raise ValueError(f"accel: hidden size {hidden} is not supported")

    def project(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, out: torch.Tensor) -> None:
        """out = x weight^T + bias ([N, K] -> [N, H]): each output summed over k in order, then the bias added."""
        (rows, inputs), hidden = x.shape, weight.shape[0]
        status = self._library.textrnn_project(
            _pointer(x), _pointer(weight), _pointer(bias), _pointer(out), rows, inputs, hidden
        )
        if status != 0:
            raise ValueError(f"accel: hidden size {hidden} is not supported")

    def rnn_tanh_last(
        self,
        table: torch.Tensor,
        ids: np.ndarray,
        starts: np.ndarray,
        lengths: np.ndarray,
        reverse: bool,
        weight: torch.Tensor,
        last: torch.Tensor,
    ) -> None:
        """last[b] = the state after row b's tokens ids[starts[b] : starts[b] + lengths[b]] (read backwards
        when ``reverse``), their inputs looked up in ``table``, from the zero state: rnn_tanh_forward's
        states[b, lengths[b] - 1] over those inputs, bit for bit (zeros where lengths[b] is 0)."""
        vocabulary, hidden = table.shape
        status = self._library.textrnn_rnn_tanh_last(
            _pointer(table), vocabulary, _pointer(ids), len(ids), _pointer(starts), _pointer(lengths),
            int(reverse), _pointer(weight), _pointer(last), len(starts), hidden,
        )  # fmt: skip
        if status == -2:
            raise ValueError(f"accel: a row's tokens lie outside the {len(ids)} ids")
        if status == -3:
            raise ValueError(f"accel: a token id lies outside the table's {vocabulary} rows")
        if status != 0:
            raise ValueError(f"accel: hidden size {hidden} is not supported")

    def rnn_tanh_backward(
        self,
        grad_states: torch.Tensor,
        states: torch.Tensor,
        weight: torch.Tensor,
        grad_inputs: torch.Tensor,
        grad_h0: torch.Tensor,
    ) -> None:
        batch, steps, hidden = states.shape
        status = self._library.textrnn_rnn_tanh_backward(
            _pointer(grad_states),
            _pointer(states),
            _pointer(weight),
            _pointer(grad_inputs),
            _pointer(grad_h0),
            batch,
            steps,
            hidden,
        )
        if status != 0:
            raise ValueError(f"accel: hidden size {hidden} is not supported")

    def rmsprop_step(
        self, param: torch.Tensor, grad: torch.Tensor, square_avg: torch.Tensor, lr: float, alpha: float, eps: float
    ) -> None:
        # 1 - alpha in double, as torch computes it (1 - 0.99 in float32 is 1e-6 off)
        self._library.textrnn_rmsprop_step(
            _pointer(param), _pointer(grad), _pointer(square_avg), param.numel(), lr, alpha, 1 - alpha, eps
        )


def _load() -> Kernels | None:
    if os.environ.get(SWITCH, "1") == "0":
        log.info("accel: %s=0, using PyTorch's kernels", SWITCH)
        return None
    return native.load(SOURCES, "textrnn_kernels", Kernels, "accel", "kernels", "using PyTorch's kernels", log)


def loaded() -> Kernels | None:
    """The kernels (the first call builds or loads them), or None where they are not available."""
    global _kernels, _tried
    with _lock:
        if not _tried:
            _kernels, _tried = _load(), True
    return _kernels


def required() -> Kernels:
    """The kernels, for a caller that checked ``available()`` first."""
    kernels = loaded()
    assert kernels is not None, "accel: the kernels are used only where available() is True"
    return kernels


def available() -> bool:
    return loaded() is not None
