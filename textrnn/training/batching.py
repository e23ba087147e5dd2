"""Batches of similar length: length buckets, right padding, and tensors on the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from textrnn.data.vectors import EncodedSplit
from textrnn.text.vocab import PAD_ID


def length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
    """Row indices grouped into batches of similar length.

    With ``rng``, reviews of equal length are shuffled before sorting and the batch order is
    shuffled (training draws the buckets once per run and reshuffles their order every epoch).
    Without it, the order is fixed: shortest first.
    """
    order = np.arange(len(lengths))
    if rng is not None:
        order = rng.permutation(len(lengths))
    order = order[np.argsort(lengths[order], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_batch(
    ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray, pad_id: int = PAD_ID, side: str = "right"
) -> tuple[np.ndarray, np.ndarray]:
    """The reviews ``rows`` as a [batch, longest] int64 matrix padded with ``pad_id``, and their lengths."""
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    width = max(int(lengths.max()) if len(rows) else 0, 1)
    position = np.arange(width)[None, :]
    if side == "right":
        real = position < lengths[:, None]
        source = starts[:, None] + position
    elif side == "left":
        real = position >= (width - lengths)[:, None]
        source = starts[:, None] + position - (width - lengths)[:, None]
    else:
        raise ValueError(f"side is 'left' or 'right', got {side!r}")
    tokens = np.where(real, ids[np.where(real, source, 0)] if len(ids) else 0, pad_id).astype(np.int64)
    return tokens, lengths.astype(np.int64)


@dataclass
class Batch:
    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    global_rows: int  # rows in this batch across all ranks


def make_batches(
    split: EncodedSplit,
    batch_size: int,
    device: torch.device,
    rng: np.random.Generator | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> list[Batch]:
    """Pad every length bucket once; rank r keeps rows r, r + world_size, ... of each bucket."""
    batches = []
    for rows in length_buckets(split.lengths, batch_size, rng):
        share = rows[rank::world_size]
        tokens, lengths = pad_batch(split.ids, split.offsets, share, PAD_ID)
        tensors = [torch.from_numpy(a) for a in (tokens, lengths, split.labels[share])]
        if device.type == "cuda":
            tensors = [t.pin_memory().to(device, non_blocking=True) for t in tensors]
        token_ids, row_lengths, row_labels = tensors
        batches.append(Batch(token_ids, row_lengths, row_labels, global_rows=len(rows)))
    return batches
