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
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

from textrnn.cpu_dispatch import cpu_flags

log = logging.getLogger("textrnn.accel")

SWITCH = "TEXTRNN_FUSED_CPU"  # "0" keeps PyTorch's kernels everywhere
BUILD_DIR = "TEXTRNN_BUILD_DIR"  # the cache folder; default ~/.cache/torch_extensions/textrnn
SOURCES = [Path(__file__).resolve().parent / "csrc" / name for name in ("rnn_tanh.cpp", "rmsprop.cpp")]
COMMON_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]

# The x86-64 psABI levels this kernel is built for, best first, with the /proc/cpuinfo flags each needs.
_X86_64_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
X86_LEVELS = [
    ("x86-64-v3", _X86_64_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v2", _X86_64_V2),
]

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


def isa_flags(machine: str, flags: set[str]) -> list[str]:
    """The ``-march`` for a CPU: the best of a fixed few levels it runs, never ``-march=native``.

    The level only changes speed (vector width), never results. x86-64-v3 is AVX2 + FMA (since
    2013-2015); v2 is SSE4.2; plain x86-64 runs everywhere; aarch64's baseline has NEON.
    """
    if machine in ("x86_64", "AMD64"):
        level = next((name for name, needs in X86_LEVELS if needs <= flags), "x86-64")
        return [f"-march={level}"]
    if machine in ("aarch64", "arm64"):
        return ["-march=armv8-a"]
    return []  # another architecture: the compiler's default target


def compile_flags() -> list[str]:
    return COMMON_FLAGS + isa_flags(platform.machine(), cpu_flags())


def compiler() -> list[str]:
    """The C++ compiler's command: $CXX (e.g. ``ccache g++``), else g++."""
    return shlex.split(os.environ.get("CXX") or "g++")


def build_dir() -> Path:
    if os.environ.get(BUILD_DIR):
        return Path(os.environ[BUILD_DIR])
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(base) / "textrnn"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(library: Path) -> bool:
    """Whether ``library`` is the complete file its build wrote (a truncated .so kills the loader with SIGBUS)."""
    try:
        return Path(f"{library}.sha256").read_text(encoding="utf-8").strip() == _sha256(library)
    except OSError:
        return False


def _replace_durably(temporary: str, target: Path) -> None:
    """Rename ``temporary`` over ``target`` once its bytes are on disk: a crash leaves the old file or the new one."""
    with open(temporary, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def build(command: list[str], flags: list[str], directory: Path) -> Path:
    """The library for these sources, compiler and flags: the cached one when its checksum holds, else a new build.

    Concurrent processes (DDP ranks, tests) each build into a file of their own and rename it into
    place, so none ever loads half a file; the checksum beside it is written last.
    """
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(
        "\0".join([*(path.read_text(encoding="utf-8") for path in SOURCES), version, " ".join(flags)]).encode()
    ).hexdigest()[:16]
    library = directory / f"textrnn_kernels_{key}.so"
    if _intact(library):
        return library
    damaged = library.exists()
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=library.stem, suffix=".so.tmp", dir=directory)
    os.close(handle)
    try:
        result = subprocess.run(
            [*command, *flags, "-o", temporary, *map(str, SOURCES)], capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:200])
            raise RuntimeError(f"{command[0]} failed: {first.strip()}")
        digest = _sha256(Path(temporary))
        _replace_durably(temporary, library)
        handle, temporary = tempfile.mkstemp(prefix=library.stem, suffix=".sha256.tmp", dir=directory)
        with os.fdopen(handle, "w", encoding="utf-8") as checksum:
            checksum.write(digest + "\n")
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from other users of a shared cache
        _replace_durably(temporary, Path(f"{library}.sha256"))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    if damaged:
        log.info("accel: rebuilt %s: the cached copy failed its checksum", library)
    else:
        log.info("accel: compiled %s (%s)", library, " ".join(flags))
    return library


def _pointer(tensor: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(tensor.data_ptr())


class Kernels:
    """The library's functions on contiguous float32 CPU tensors (the callers check)."""

    def __init__(self, path: Path):
        library = ctypes.CDLL(str(path))
        pointers = [ctypes.c_void_p] * 5
        library.textrnn_rnn_tanh_forward.argtypes = pointers[:4] + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_backward.argtypes = pointers + [ctypes.c_int64] * 3
        library.textrnn_rnn_tanh_forward.restype = library.textrnn_rnn_tanh_backward.restype = ctypes.c_int
        library.textrnn_rnn_tanh_last.argtypes = pointers + [ctypes.c_int64] * 3
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

    def rnn_tanh_last(
        self, inputs: torch.Tensor, h0: torch.Tensor, weight: torch.Tensor, lengths: torch.Tensor, last: torch.Tensor
    ) -> None:
        """last[b] = rnn_tanh_forward's states[b, lengths[b] - 1] (h0[b] where lengths[b] is 0), bit for bit."""
        batch, steps, hidden = inputs.shape
        status = self._library.textrnn_rnn_tanh_last(
            _pointer(inputs), _pointer(h0), _pointer(weight), _pointer(lengths), _pointer(last), batch, steps, hidden
        )
        if status == -2:
            raise ValueError(f"accel: lengths must lie in 0 .. {steps}, the inputs' steps")
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
    command = compiler()
    if not command or shutil.which(command[0]) is None:
        log.info("accel: no C++ compiler %r on PATH, using PyTorch's kernels", " ".join(command))
        return None
    try:
        return Kernels(build(command, compile_flags(), build_dir()))
    except Exception as error:  # any failure here only means the slower kernels are used
        log.info("accel: kernels not available (%s: %s), using PyTorch's kernels", type(error).__name__, error)
        return None


def loaded() -> Kernels | None:
    """The kernels (the first call builds or loads them), or None where they are not available."""
    global _kernels, _tried
    with _lock:
        if not _tried:
            _kernels, _tried = _load(), True
    return _kernels


def available() -> bool:
    return loaded() is not None
