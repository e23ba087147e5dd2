"""A hand-written fused tanh RNN for the CPU (csrc/rnn_tanh.cpp): forward and BPTT over a whole sequence.

Also a one-pass RMSprop step (csrc/rmsprop.cpp) for float32 CPU tensors, as ``RMSprop``.

PyTorch's CPU ``rnn_tanh`` pays ~80-100 us of per-step operator overhead for ~5 us of arithmetic
at the notebook's sizes; this kernel runs every step of a batch in one call. It is compiled with
g++ on first use (3.5 s measured here) into a cache folder, loaded through ctypes, and used by
``RNN.forward_sequence`` for float32 CPU tensors whose hidden size is a multiple of 16 (up to 256).
Where it cannot be built or loaded (no compiler, a failed build), or ``TEXTRNN_FUSED_CPU=0`` is
set, the model silently keeps PyTorch's kernel; one log line says why.
"""
from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Optional

import torch
from torch.autograd.function import once_differentiable
from torch.optim.optimizer import _get_scalar_dtype

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).resolve().parent / "csrc" / name for name in ("rnn_tanh.cpp", "rmsprop.cpp")]
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC"]
SWITCH = "TEXTRNN_FUSED_CPU"  # "0" keeps torch.rnn_tanh everywhere
BUILD_DIR = "TEXTRNN_BUILD_DIR"  # where the compiled library is cached; default ~/.cache/torch_extensions/textrnn

_lock = threading.Lock()
_library: Optional[ctypes.CDLL] = None
_tried = False
_enabled = True


@contextlib.contextmanager
def enabled(flag: bool) -> Iterator[None]:
    """Use (True) or bypass (False) the kernel inside the block; benchmarks and tests compare both."""
    global _enabled
    previous, _enabled = _enabled, flag
    try:
        yield
    finally:
        _enabled = previous


def build_dir() -> Path:
    if os.environ.get(BUILD_DIR):
        return Path(os.environ[BUILD_DIR])
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(base) / "textrnn"


def _cpu_flags() -> str:
    """The CPU's feature flags: -march=native code built on one CPU must not be loaded on another."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        return os.uname().machine


def _build(compiler: str) -> Path:
    """Compile SOURCES unless these sources, compiler, flags and CPU already have a library in the cache."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    key = hashlib.sha256("\0".join([*(path.read_text(encoding="utf-8") for path in SOURCES), version,
                                    " ".join(FLAGS), _cpu_flags()]).encode()).hexdigest()[:16]
    directory = build_dir()
    library = directory / f"textrnn_rnn_tanh_{key}.so"
    if library.exists():
        return library
    directory.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: concurrent processes (DDP ranks, tests) never load half a file.
    handle, temporary = tempfile.mkstemp(prefix=library.stem, suffix=".so.tmp", dir=directory)
    os.close(handle)
    try:
        result = subprocess.run([compiler, *FLAGS, "-o", temporary, *map(str, SOURCES)], capture_output=True,
                                text=True, timeout=300)
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:200])
            raise RuntimeError(f"{compiler} failed: {first.strip()}")
        os.replace(temporary, library)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    log.info("fused_cpu: compiled %s", library)
    return library


def _load() -> Optional[ctypes.CDLL]:
    if os.environ.get(SWITCH, "1") == "0":
        log.info("fused_cpu: %s=0, using torch.rnn_tanh", SWITCH)
        return None
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        log.info("fused_cpu: no C++ compiler %r on PATH, using torch.rnn_tanh", compiler)
        return None
    try:
        library = ctypes.CDLL(str(_build(compiler)))
        pointers = [ctypes.c_void_p] * 5
        library.textrnn_rnn_tanh_forward.argtypes = pointers[:4] + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_backward.argtypes = pointers + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_forward.restype = library.textrnn_rnn_tanh_backward.restype = ctypes.c_int
        library.textrnn_max_hidden.restype = ctypes.c_int
        library.textrnn_rmsprop_step.argtypes = pointers[:3] + [ctypes.c_int64] + [ctypes.c_float] * 4
        library.textrnn_rmsprop_step.restype = None
    except Exception as error:  # any failure here only means the slower kernel is used
        log.info("fused_cpu: kernel not available (%s: %s), using torch.rnn_tanh", type(error).__name__, error)
        return None
    return library


def available() -> bool:
    """Whether the kernel is built and loaded (the first call builds it)."""
    global _library, _tried
    with _lock:
        if not _tried:
            _library, _tried = _load(), True
    return _library is not None


def applies(like: torch.Tensor, hidden: int) -> bool:
    """Whether ``rnn_tanh`` takes inputs on ``like``'s device and dtype with this hidden size."""
    return (_enabled and like.device.type == "cpu" and like.dtype == torch.float32 and hidden % 16 == 0
            and available() and hidden <= _library.textrnn_max_hidden())


def _pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(tensor.data_ptr())


class _RNNTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        inputs, h0, weight = inputs.contiguous(), h0.contiguous(), weight.contiguous()
        batch, steps, hidden = inputs.shape
        states = torch.empty_like(inputs)
        status = _library.textrnn_rnn_tanh_forward(_pointer(inputs), _pointer(h0), _pointer(weight),
                                                  _pointer(states), batch, steps, hidden)
        if status != 0:
            raise RuntimeError(f"fused_cpu: hidden size {hidden} is not supported")
        ctx.save_for_backward(states, h0, weight)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states: torch.Tensor):
        states, h0, weight = ctx.saved_tensors
        grad_states = grad_states.contiguous()
        batch, steps, hidden = states.shape
        grad_inputs, grad_h0 = torch.empty_like(states), torch.empty_like(h0)
        _library.textrnn_rnn_tanh_backward(_pointer(grad_states), _pointer(states), _pointer(weight),
                                           _pointer(grad_inputs), _pointer(grad_h0), batch, steps, hidden)
        grad_weight = None
        if ctx.needs_input_grad[2]:
            # dL/dU = sum over rows and steps of dz_t h_{t-1}^T: one matrix product over all of them.
            previous = torch.cat([h0[:, None], states[:, :-1]], dim=1)
            grad_weight = grad_inputs.reshape(-1, hidden).t().mm(previous.reshape(-1, hidden))
        return grad_inputs, grad_h0 if ctx.needs_input_grad[1] else None, grad_weight


def rnn_tanh(inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """All states h_t = tanh(inputs_t + weight h_{t-1}) [batch, time, hidden] of a batch-first sequence.

    ``inputs`` already hold x_t W^T and both biases; check ``applies(inputs, hidden)`` first.
    """
    return _RNNTanh.apply(inputs, h0, weight)


class RMSprop(torch.optim.RMSprop):
    """torch.optim.RMSprop whose step is one fused pass per float32 CPU tensor (csrc/rmsprop.cpp).

    Same state (``step``, ``square_avg``) and the same formula; results agree with torch's to the
    last bit or two. Momentum, centered, weight decay, maximize, other devices or dtypes, and a
    kernel that did not build all take torch's own step.
    """

    def _fused(self) -> bool:
        if not _enabled:
            return False
        for group in self.param_groups:
            if (group["momentum"] or group["centered"] or group["weight_decay"] or group["maximize"]
                    or group["differentiable"] or group["capturable"] or torch.is_tensor(group["lr"])):
                return False
            for p in group["params"]:
                if p.grad is not None and not (p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
                                               and p.grad.layout == torch.strided and p.grad.is_contiguous()
                                               and p.grad.dtype == torch.float32):
                    return False
        return available()  # last: on a GPU machine the kernel is never built for nothing

    @torch.no_grad()
    def step(self, closure=None):
        if closure is not None or not self._fused():
            return super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # as torch initialises it, so that either step can continue the other's state
                    state["step"] = torch.zeros((), dtype=_get_scalar_dtype())
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                _library.textrnn_rmsprop_step(_pointer(p), _pointer(p.grad), _pointer(state["square_avg"]),
                                              p.numel(), group["lr"], group["alpha"], 1 - group["alpha"], group["eps"])
        return None
