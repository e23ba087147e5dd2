"""DistributedDataParallel under torchrun; a plain single process when torchrun is not in use."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from textrnn.core.errors import UserError
from textrnn.core.runtime import RANK_FAULTS, RELAUNCHED, say


def launched_by_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def relaunch_with_torchrun(script: str, nproc: int, device: torch.device) -> int:
    """Run ``script`` again as ``nproc`` DDP processes on this machine; return torchrun's exit code.

    torchrun runs in a session of its own, so a Ctrl-C in the terminal reaches this process
    alone: it stops torchrun with SIGTERM, waits, and reports the interrupt in one line.
    """
    if device.type == "cuda" and nproc > torch.cuda.device_count():
        raise UserError(
            f"train.nproc = {nproc} needs one GPU per process but {torch.cuda.device_count()} "
            f"are visible; lower train.nproc or set train.device: cpu"
        )
    # torchrun's own main, minus its log lines, tracebacks and failure banner: rank 0 says what went wrong.
    launcher = (
        "import logging, sys\nlogging.disable(logging.ERROR)\nfrom torch.distributed.run import main\n"
        "from torch.distributed.elastic.multiprocessing.api import SignalException\n"
        "from torch.distributed.elastic.multiprocessing.errors import ChildFailedError\n"
        "try:\n    main(sys.argv[1:])\nexcept (ChildFailedError, SignalException, KeyboardInterrupt):\n"
        "    sys.exit(1)\n"
    )
    command = [sys.executable, "-c", launcher, "--standalone", f"--nproc_per_node={nproc}", script]
    # One OpenMP thread per process unless the user set it: torchrun's default, without its warning.
    with tempfile.TemporaryDirectory(prefix="textrnn-ranks-") as folder:
        faults = Path(folder) / "faults.txt"
        env = {"OMP_NUM_THREADS": "1", **os.environ, RELAUNCHED: "1", RANK_FAULTS: str(faults)}
        process = subprocess.Popen(command, env=env, start_new_session=True)
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGTERM)  # torchrun stops its ranks, instead of leaving them orphaned
            process.wait()
            raise
        if code != 0 and faults.is_file():
            said = faults.read_text(encoding="utf-8", errors="replace").splitlines()
            if said:
                say(said[0])
        return code


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Join the process group torchrun describes (nccl on GPU, gloo on CPU) for the block."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
        # Leave together: a gloo rank that tears down while a peer still works can abort (SIGABRT).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """Each rank of a multi-GPU run takes the GPU of its local rank."""
    if device.type == "cuda" and launched_by_torchrun():
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    if not dist.is_initialized():
        return module
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def any_rank(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank."""
    return all_reduce_sum({"flag": float(flag)})["flag"] > 0 if dist.is_initialized() else bool(flag)


def all_reduce_sum(values: dict[str, float]) -> dict[str, float]:
    """Sum each value over all ranks (float64, so counts stay exact)."""
    if not dist.is_initialized():
        return dict(values)
    keys = sorted(values)
    backend_device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    tensor = torch.tensor([float(values[key]) for key in keys], dtype=torch.float64, device=backend_device)
    dist.all_reduce(tensor)
    return dict(zip(keys, tensor.tolist(), strict=True))
