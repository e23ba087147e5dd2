"""Pin the CPU code paths of PyTorch's own kernels, so that CPU results do not depend on the CPU model.

ATen picks its vectorized kernels (DEFAULT, AVX2, AVX512) and MKL its code path (matrix products,
and the vector math behind torch.exp, tanh, ...) from the CPU at run time, so an AVX-512 Xeon and
an AVX2 EPYC round differently. Each reads an environment variable once, at its first use; textrnn
sets them when it is imported, before any torch op has run, unless they are already set:

    ATEN_CPU_CAPABILITY=avx2   on x86-64 CPUs with AVX2 and FMA: AVX-512 CPUs run ATen's AVX2 kernels
    ONEDNN_MAX_CPU_ISA=AVX2    the same for oneDNN, which runs the lstm cell's recurrence on CPU
    MKL_CBWR=COMPATIBLE        on x86-64: MKL's SSE2 code path, the same on Intel and AMD CPUs

Set either yourself to choose otherwise (e.g. ``MKL_CBWR=AUTO``, MKL's fastest path for the CPU);
``describe()`` says what is in force.
"""

from __future__ import annotations

import os
import platform

PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")


def cpu_flags() -> set[str]:
    """The CPU's feature flags as Linux lists them (empty where /proc/cpuinfo is not readable)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            line = next((line for line in handle if line.startswith(("flags", "Features"))), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def pins(machine: str, flags: set[str]) -> dict[str, str]:
    """The variables textrnn sets on a CPU: none where MKL and these ATen levels do not exist."""
    if machine not in ("x86_64", "AMD64"):
        return {}
    chosen = {"MKL_CBWR": "COMPATIBLE"}
    if {"avx2", "fma"} <= flags:
        chosen["ATEN_CPU_CAPABILITY"] = "avx2"
        chosen["ONEDNN_MAX_CPU_ISA"] = "AVX2"
    return chosen


def pin() -> None:
    """Set the pins the user has not set; it must run before torch runs its first CPU op."""
    for name, value in pins(platform.machine(), cpu_flags()).items():
        os.environ.setdefault(name, value)


def describe() -> dict[str, str]:
    """The pins in force, for run metadata: each variable's value, or 'unset'."""
    return {name: os.environ.get(name, "unset") for name in PINS}
