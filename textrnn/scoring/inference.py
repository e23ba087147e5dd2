"""Scoring with a trained model, shared by the evaluate stage and the predict command."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN
from textrnn.training.batching import length_buckets, pad_batch

# Padded tokens per scoring batch at most, so that a bucket of very long reviews is cut into smaller
# batches where forward pads them (the scorer pads nothing, but scores the same batches).
SCORING_TOKEN_BUDGET = 1 << 20


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def scoring_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """The rows of each scoring batch: ``batch_size`` length buckets, each cut to SCORING_TOKEN_BUDGET padded tokens."""
    for bucket in length_buckets(lengths, batch_size):
        width = max(int(lengths[bucket].max(initial=0)), 1)
        rows_per_batch = max(1, SCORING_TOKEN_BUDGET // width)  # very long reviews: fewer rows, bounded memory
        for start in range(0, len(bucket), rows_per_batch):
            yield bucket[start : start + rows_per_batch]


# Reviews whose states the scorer computes in one call at most: their features stay a few tens of MB.
SCORER_ROWS = 1 << 16


def _groups(batches: Iterator[np.ndarray], rows: int) -> Iterator[list[np.ndarray]]:
    """Consecutive batches in groups of at most ``rows`` rows (a larger batch alone)."""
    group: list[np.ndarray] = []
    size = 0
    for batch in batches:
        if group and size + len(batch) > rows:
            yield group
            group, size = [], 0
        group.append(batch)
        size += len(batch)
    if group:
        yield group


@torch.inference_mode()
def predict_logits(
    model: RNN, split: EncodedSplit, batch_size: int, device: torch.device, max_tokens: int | None = None
) -> torch.Tensor:
    """Logits of every review of ``split`` (each cut to its last ``max_tokens`` tokens), in the split's order.

    Reviews are scored in length-bucketed batches (``scoring_batches``): forward's logits on each
    batch, bit for bit, through the model's ``Scorer`` where it has one (no padding, only each
    review's last state kept), else through forward itself.
    """
    model.eval()
    split = split.last_tokens(max_tokens)
    shape = (len(split),) if model.config.num_classes == 2 else (len(split), model.config.num_classes)
    logits = torch.empty(shape, dtype=torch.float32)
    starts, lengths = split.offsets[:-1], split.lengths
    scorer = model.scorer(split.ids)
    batches = scoring_batches(lengths, batch_size)
    if scorer is None:
        for rows in batches:
            tokens, row_lengths = pad_batch(split.ids, split.offsets, rows)
            out = model(torch.from_numpy(tokens).to(device), torch.from_numpy(row_lengths).to(device))
            logits[torch.from_numpy(rows)] = out.float().cpu()
        return logits
    # The scorer's states in one call per group of batches (its threads then share out similar work,
    # and wait for each other once); V per batch, as forward does it.
    for group in _groups(batches, SCORER_ROWS):
        rows = np.concatenate(group)
        features = scorer.features(starts[rows], lengths[rows])
        for rows, batch_features in zip(group, features.split([len(rows) for rows in group]), strict=True):
            logits[torch.from_numpy(rows)] = scorer.logits(batch_features)
    return logits
