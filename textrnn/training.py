"""Training and scoring: length-bucketed batches, the fused RNN call, a guard against non-finite steps."""
from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from textrnn import accel, distributed
from textrnn.data import EncodedSplit, length_buckets, pad_batch
from textrnn.errors import UserError
from textrnn.model import RNN, loss_function, predicted_labels
from textrnn.vocab import PAD_ID

log = logging.getLogger(__name__)


# Padded tokens per scoring batch at most (states: budget x hidden floats, 256 MB at hidden 64).
SCORING_TOKEN_BUDGET = 1 << 20


@dataclass(frozen=True)
class TrainConfig:
    lr: float
    batch_size: int
    epochs: int
    seed: int
    clip_grad_norm: Optional[float] = None
    valid_batch_size: int = 256


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    valid_loss: float
    valid_accuracy: float
    skipped_steps: int
    seconds: float
    tokens: int


@dataclass
class TrainResult:
    best_state: Dict[str, torch.Tensor]
    best_epoch: int
    history: List[EpochStats] = field(default_factory=list)


class NonFiniteLoss(UserError):
    pass


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class SequenceModel(nn.Module):
    """The RNN's fused sequence path as ``forward``, so that DistributedDataParallel can wrap it."""

    def __init__(self, rnn: RNN):
        super().__init__()
        self.rnn = rnn

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.rnn.forward_sequence(tokens, lengths)


@dataclass
class Batch:
    tokens: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    global_rows: int  # rows in this batch across all ranks


def make_batches(split: EncodedSplit, batch_size: int, device: torch.device,
                 rng: Optional[np.random.Generator] = None, rank: int = 0, world_size: int = 1) -> List[Batch]:
    """Pad every length bucket once; rank r keeps rows r, r + world_size, ... of each bucket."""
    batches = []
    for rows in length_buckets(split.lengths, batch_size, rng):
        share = rows[rank::world_size]
        tokens, lengths = pad_batch(split.ids, split.offsets, share, PAD_ID)
        tensors = [torch.from_numpy(a) for a in (tokens, lengths, split.labels[share])]
        if device.type == "cuda":
            tensors = [t.pin_memory().to(device, non_blocking=True) for t in tensors]
        batches.append(Batch(*tensors, global_rows=len(rows)))
    return batches


def _gradient_norm(parameters: List[torch.Tensor], clip: Optional[float]) -> torch.Tensor:
    grads = [p.grad for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm(grads)
    if clip is not None and torch.isfinite(norm):
        torch.nn.utils.clip_grads_with_norm_(parameters, clip, norm)
    return norm


@torch.inference_mode()
def score(model: RNN, batches: List[Batch]) -> Dict[str, float]:
    """Summed loss, correct predictions and rows over ``batches`` (the caller reduces them)."""
    model.eval()
    criterion = loss_function(model.config.num_classes, reduction="sum")
    loss = torch.zeros((), dtype=torch.float64, device=model.U.weight.device)
    correct = torch.zeros((), dtype=torch.int64, device=loss.device)
    rows = 0
    for batch in batches:
        if len(batch.labels) == 0:
            continue
        logits = model.forward_sequence(batch.tokens, batch.lengths)
        loss += criterion(logits, batch.labels).double()
        correct += (predicted_labels(logits) == batch.labels).sum()
        rows += len(batch.labels)
    return {"loss": loss.item(), "correct": correct.item(), "rows": rows}


@torch.inference_mode()
def predict_logits(model: RNN, split: EncodedSplit, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits of every review of ``split``, in the split's order, scored in length-bucketed batches."""
    model.eval()
    split = split.last_tokens(model.config.max_tokens)
    shape = (len(split),) if model.config.num_classes == 2 else (len(split), model.config.num_classes)
    logits = torch.empty(shape, dtype=torch.float32)
    for bucket in length_buckets(split.lengths, batch_size):
        # The kernel keeps every step's state: cap rows x width so that very long reviews stay in memory.
        width = max(int(split.lengths[bucket].max(initial=0)), 1)
        rows_per_batch = max(1, SCORING_TOKEN_BUDGET // width)
        for start in range(0, len(bucket), rows_per_batch):
            rows = bucket[start : start + rows_per_batch]
            tokens, lengths = pad_batch(split.ids, split.offsets, rows, PAD_ID)
            out = model.forward_sequence(torch.from_numpy(tokens).to(device), torch.from_numpy(lengths).to(device))
            logits[torch.from_numpy(rows)] = out.float().cpu()
    return logits


def train_model(model: RNN, train_split: EncodedSplit, valid_split: EncodedSplit, config: TrainConfig,
                device: torch.device, on_epoch: Optional[Callable[[EpochStats], None]] = None) -> TrainResult:
    """Train with RMSprop; keep the weights of the epoch with the lowest valid loss."""
    rank, world_size = distributed.rank(), distributed.world_size()
    max_tokens = model.config.max_tokens
    model.to(device)
    network = distributed.wrap(SequenceModel(model), device)
    parameters = list(model.parameters())
    optimizer = accel.RMSprop(parameters, lr=config.lr)  # torch's RMSprop, one pass per tensor on CPU
    criterion = loss_function(model.config.num_classes, reduction="sum")

    rng = np.random.default_rng(config.seed)
    train_batches = make_batches(train_split.last_tokens(max_tokens), config.batch_size, device, rng, rank, world_size)
    valid_batches = make_batches(valid_split.last_tokens(max_tokens), config.valid_batch_size, device,
                                 rank=rank, world_size=world_size)
    tokens_per_epoch = int(train_split.last_tokens(max_tokens).lengths.sum())  # all ranks' tokens

    result = TrainResult(best_state={}, best_epoch=0)
    best_loss = math.inf
    with accel.cpu_settings(device):
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            network.train()
            total_loss = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            skipped = 0
            order = rng.permutation(len(train_batches))
            progress = tqdm(order, desc=f"epoch {epoch}/{config.epochs}", unit="batch", leave=False,
                            disable=None if rank == 0 else True)  # None: bars on a terminal, none in log files
            for step, index in enumerate(progress, start=1):
                batch = train_batches[index]
                optimizer.zero_grad()  # None: backward stores each gradient, no zero fill + add over the embedding
                if len(batch.labels):
                    logits = network(batch.tokens, batch.lengths)
                    batch_loss = criterion(logits, batch.labels)
                    correct += (predicted_labels(logits.detach()) == batch.labels).sum()
                else:  # this rank's share of a tiny batch is empty; it still runs DDP's forward and backward,
                    # or the other ranks would wait forever in their gradient all-reduce
                    empty = torch.full((1, 1), PAD_ID, device=device), torch.zeros(1, dtype=torch.long, device=device)
                    batch_loss = network(*empty).sum() * 0.0
                # A sum over this rank's rows / the global rows * world size: DDP's gradient average is the global mean.
                loss = batch_loss * (world_size / batch.global_rows)
                # Every rank must take this decision together, or the others would wait forever in backward.
                if distributed.any_rank(not torch.isfinite(batch_loss)):
                    value = batch_loss.item() if not torch.isfinite(batch_loss) else "not finite on another rank"
                    raise NonFiniteLoss(
                        f"training loss is {value} at epoch {epoch}, batch {step}; "
                        f"lower train.lr or set train.clip_grad_norm"
                    )
                loss.backward()
                if torch.isfinite(_gradient_norm(parameters, config.clip_grad_norm)):
                    optimizer.step()
                else:
                    skipped += 1  # as AMP's GradScaler does: an overflowed step is dropped, not applied
                total_loss += batch_loss.detach().double()
            progress.close()

            train_rows, valid = len(train_split), score(model, valid_batches)
            sums = distributed.all_reduce_sum([total_loss.item(), correct.item(), valid["loss"], valid["correct"], valid["rows"]])
            stats = EpochStats(
                epoch=epoch,
                train_loss=sums[0] / train_rows,
                train_accuracy=sums[1] / train_rows,
                valid_loss=sums[2] / sums[4],
                valid_accuracy=sums[3] / sums[4],
                skipped_steps=skipped,
                seconds=time.perf_counter() - started,
                tokens=tokens_per_epoch,
            )
            result.history.append(stats)
            if stats.valid_loss < best_loss:
                best_loss = stats.valid_loss
                result.best_epoch = epoch
                result.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            if on_epoch is not None:
                on_epoch(stats)
    if not result.best_state:
        raise NonFiniteLoss("no epoch gave a finite valid loss; lower train.lr or set train.clip_grad_norm")
    return result


def run_metadata(result: TrainResult, device: torch.device) -> Dict[str, object]:
    """What a checkpoint records about the run that made it."""
    return {
        "best_epoch": result.best_epoch,
        "train_device": f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "cpu",
        "world_size": distributed.world_size(),
        "torch_version": str(torch.__version__),
        "skipped_steps": sum(s.skipped_steps for s in result.history),
    }
