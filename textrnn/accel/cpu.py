"""The CPU settings training runs under: denormals flushed to zero, freed memory kept for reuse."""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator

import torch


def _keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse (no-op elsewhere).

    Every batch allocates MB-sized temporaries (the states, their gradients, the embedding's
    gradient); returned to the OS, each comes back as fresh pages, one fault each. This is
    process-wide and stays set (glibc cannot report the previous values): it only changes where
    freed memory goes, never a result.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest: blocks up to 32 MB come from the heap
        libc.mallopt(m_trim_threshold, 1 << 30)  # and the heap keeps up to 1 GB free
    except (OSError, AttributeError):
        pass


def flushes_denormals() -> bool:
    """Whether this thread's float arithmetic flushes denormals to zero (torch has no getter for it)."""
    smallest = torch.tensor([1], dtype=torch.int32).view(torch.float32)  # 1.4e-45, made without arithmetic
    return (smallest * 1.0).view(torch.int32).item() == 0


@contextlib.contextmanager
def cpu_settings(device: torch.device) -> Iterator[None]:
    """The CPU settings training needs to run at full speed; nothing on other devices.

    Gradients that vanish through hundreds of tanh steps reach float32's denormal range (below
    1.2e-38), where CPU arithmetic, a square root most of all, is many times slower: inside the
    block they are flushed to zero (values that small change nothing); the previous setting comes
    back after it. Like torch.set_flush_denormal, this holds for the calling thread.
    """
    if device.type != "cpu":
        yield
        return
    _keep_freed_memory()
    previous = flushes_denormals()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(previous)
