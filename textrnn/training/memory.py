"""Say that a model or its batches will not fit in memory before allocating them, from an estimate."""

from __future__ import annotations

import torch

from textrnn.core.errors import UserError
from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN, ModelConfig

GIB = 1 << 30
_OPTIMIZER_STATES = {"rmsprop": 1, "adam": 2, "adamw": 2}


def available_bytes(device: torch.device) -> int | None:
    """Memory that can still be allocated on ``device`` (None where it cannot be told)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def parameter_count(config: ModelConfig) -> int:
    with torch.device("meta"):  # shapes only: nothing is allocated
        return sum(p.numel() for p in RNN(config).parameters())


def training_bytes(config: ModelConfig, optimizer: str, batch_size: int, valid_batch_size: int, longest: int) -> int:
    """About what training needs at its peak: weights, gradients, optimizer state, one batch's activations."""
    weights = parameter_count(config) * (2 + _OPTIMIZER_STATES.get(optimizer, 2))
    directions = 2 if config.bidirectional else 1
    gates = {"rnn": 1, "gru": 3, "lstm": 4}.get(config.cell, 4)
    per_token = config.embedding_size * 2 + directions * config.hidden_size * gates * 4
    tokens = max(batch_size, valid_batch_size) * max(longest, 1)
    return 4 * (weights + tokens * per_token)


def check_training_fits(
    config: ModelConfig, train_config, train: EncodedSplit, valid: EncodedSplit, device: torch.device
) -> None:
    longest = max(int(split.lengths.max(initial=0)) for split in (train, valid))
    if train_config.max_tokens is not None:
        longest = min(longest, train_config.max_tokens)
    need = training_bytes(
        config, train_config.optimizer, train_config.batch_size, train_config.valid_batch_size, longest
    )
    have = available_bytes(device)
    if have is not None and need > have:
        raise UserError(
            f"training needs about {need / GIB:.1f} GiB ({parameter_count(config):,} weights with their gradients and "
            f"optimizer state, and batches of up to {longest} tokens) but {have / GIB:.1f} GiB are free on {device}; "
            f"lower train.embedding_size / train.hidden_size / train.batch_size / train.valid_batch_size, "
            f"or set train.max_tokens"
        )
