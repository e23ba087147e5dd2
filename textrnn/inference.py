"""Scoring with a trained model, shared by the evaluate stage and the predict command."""

from __future__ import annotations

import numpy as np
import torch

from textrnn.batching import length_buckets, pad_batch
from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN

# Padded tokens per scoring batch at most: the fused call keeps every step's state (budget x hidden floats).
SCORING_TOKEN_BUDGET = 1 << 20


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.inference_mode()
def predict_logits(model: RNN, split: EncodedSplit, batch_size: int, device: torch.device,
                   max_tokens: int | None = None) -> torch.Tensor:
    """Logits of every review of ``split`` (each cut to its last ``max_tokens`` tokens), in the split's order.

    Reviews are scored in length-bucketed batches; a review's logits do not depend on its batch.
    """
    model.eval()
    split = split.last_tokens(max_tokens)
    shape = (len(split),) if model.config.num_classes == 2 else (len(split), model.config.num_classes)
    logits = torch.empty(shape, dtype=torch.float32)
    lengths = split.lengths
    for bucket in length_buckets(lengths, batch_size):
        width = max(int(lengths[bucket].max(initial=0)), 1)
        rows_per_batch = max(1, SCORING_TOKEN_BUDGET // width)  # very long reviews: fewer rows, bounded memory
        for start in range(0, len(bucket), rows_per_batch):
            rows = bucket[start : start + rows_per_batch]
            tokens, row_lengths = pad_batch(split.ids, split.offsets, rows)
            out = model(torch.from_numpy(tokens).to(device), torch.from_numpy(row_lengths).to(device))
            logits[torch.from_numpy(rows)] = out.float().cpu()
    return logits
