"""Compile C++ sources with the system compiler into a checked cache folder, and load them with ctypes.

No torch here: the preprocessing stages load their tokenizer (csrc/tokenize.cpp) through it too.
A library is built once per sources, compiler and flags; a cached copy is used only when the
checksum written beside it holds, so a build cut short is rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textrnn.core.cpu_dispatch import cpu_flags

log = logging.getLogger("textrnn.core.native")

T = TypeVar("T")

BUILD_DIR = "TEXTRNN_BUILD_DIR"  # the cache folder; default ~/.cache/torch_extensions/textrnn
COMMON_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-shared", "-fPIC"]

# The x86-64 psABI levels the libraries are built for, best first, with the /proc/cpuinfo flags each needs.
_X86_64_V2 = {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"}
X86_LEVELS = [
    ("x86-64-v3", _X86_64_V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ("x86-64-v2", _X86_64_V2),
]


def isa_flags(machine: str, flags: set[str]) -> list[str]:
    """The ``-march`` for a CPU: the best of a fixed few levels it runs, never ``-march=native``.

    The level only changes speed (vector width), never results. x86-64-v3 is AVX2 + FMA; v2
    is SSE4.2; plain x86-64 runs everywhere; aarch64's baseline has NEON.
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


def build(
    command: list[str],
    flags: list[str],
    directory: Path,
    sources: list[Path],
    name: str,
    what: str = "native",
    logger: logging.Logger = log,
) -> Path:
    """The library for these sources, compiler and flags: the cached one when its checksum holds, else a new build.

    A build says so in one line on ``logger``, prefixed with ``what``.

    Concurrent processes (DDP ranks, tests) each build into a file of their own and rename it into
    place, so none ever loads half a file; the checksum beside it is written last.
    """
    version = subprocess.run([*command, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(
        "\0".join([*(path.read_text(encoding="utf-8") for path in sources), version, " ".join(flags)]).encode()
    ).hexdigest()[:16]
    library = directory / f"{name}_{key}.so"
    if _intact(library):
        return library
    damaged = library.exists()
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=library.stem, suffix=".so.tmp", dir=directory)
    os.close(handle)
    try:
        result = subprocess.run(
            [*command, *flags, "-o", temporary, *map(str, sources)], capture_output=True, text=True, timeout=300
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
        logger.info("%s: rebuilt %s: the cached copy failed its checksum", what, library)
    else:
        logger.info("%s: compiled %s (%s)", what, library, " ".join(flags))
    return library


def load(
    sources: list[Path],
    name: str,
    make: Callable[[Path], T],
    prefix: str,
    what: str,
    fallback: str,
    logger: logging.Logger = log,
) -> T | None:
    """``make(library)`` for the library of ``sources`` (built on first use), or None where it cannot
    be built, loaded or made, with one log line: ``<prefix>: ... <what> ..., <fallback>``."""
    command = compiler()
    if not command or shutil.which(command[0]) is None:
        logger.info("%s: no C++ compiler %r on PATH, %s", prefix, " ".join(command), fallback)
        return None
    try:
        return make(build(command, compile_flags(), build_dir(), sources, name, prefix, logger))
    except Exception as error:  # any failure here only means the slower code is used
        logger.info("%s: %s not available (%s: %s), %s", prefix, what, type(error).__name__, error, fallback)
        return None
