"""The training loop: length-bucketed batches, one optimizer step per batch, the best epoch by valid loss.

Read top to bottom, ``train_model`` is the course notebook's loop (docs/model.md) with three additions: batches of
similar length (almost no padding), a guard that skips a step whose gradients are not finite
(as AMP's GradScaler does), and per-epoch metrics reduced over DDP ranks when there are several.

With ``class_weight="balanced"`` each row's loss counts its class's weight (``balanced_class_weights``
of the train split) in what the steps minimise and in the valid loss that picks the best epoch
(``valid/weighted_loss``); ``train/loss`` and ``valid/loss`` stay the unweighted mean, comparable
across runs.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from textrnn import accel
from textrnn.core.errors import UserError
from textrnn.core.params import CLASS_WEIGHTS
from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN, loss_function, predicted_labels
from textrnn.text.vocab import PAD_ID
from textrnn.training import distributed
from textrnn.training.batching import Batch, make_batches

log = logging.getLogger(__name__)

OPTIMIZERS = ("rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "linear", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    lr: float
    batch_size: int
    epochs: int
    seed: int
    clip_grad_norm: float | None = None
    valid_batch_size: int = 512
    max_tokens: int | None = None  # reviews are cut to their last max_tokens tokens
    optimizer: str = "rmsprop"  # the course notebook's optimizer
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # the course notebook's (a fixed lr); linear / cosine decay to 0 over all steps
    patience: int | None = None  # stop after this many epochs without a lower valid loss; None: run every epoch
    class_weight: str = "none"  # none (the course notebook's loss) or balanced: see balanced_class_weights


@dataclass
class EpochStats:
    epoch: int
    metrics: dict[str, float]  # "train/loss", "train/accuracy", "valid/loss", "valid/accuracy"
    skipped_steps: int
    seconds: float
    tokens: int


@dataclass
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: list[EpochStats] = field(default_factory=list)


class NonFiniteLoss(UserError):
    pass


def balanced_class_weights(labels: np.ndarray, label_names: list[str]) -> np.ndarray:
    """[classes] float64: class c weighs n / (k * n_c), with n rows, k classes and n_c rows of c in ``labels``
    (sklearn's compute_class_weight("balanced")), so that every class weighs n / k in all, and the rows n."""
    counts = np.bincount(labels, minlength=len(label_names))
    if not counts.all():
        missing = int(np.flatnonzero(counts == 0)[0])
        raise UserError(
            f"train.class_weight = 'balanced' needs every class in the train split, but class {missing} "
            f"({label_names[missing]!r}) has no row there; add rows of it, or set train.class_weight: none"
        )
    return len(labels) / (len(label_names) * counts.astype(np.float64))


def class_weight_tensor(config: TrainConfig, train_split: EncodedSplit, device: torch.device) -> torch.Tensor | None:
    """The weights of ``config.class_weight`` [classes] (float32, on ``device``), from the whole train split,
    so every DDP rank has the same ones; None for ``none``."""
    if config.class_weight == "none":
        return None
    if config.class_weight != "balanced":
        raise ValueError(f"unknown class weight {config.class_weight!r}; use one of {CLASS_WEIGHTS}")
    weights = balanced_class_weights(train_split.labels, train_split.label_names)
    return torch.tensor(weights, dtype=torch.float32, device=device)


def global_batch_weights(batches: list[Batch], class_weights: torch.Tensor) -> list[float]:
    """Each batch's summed row weights over all ranks: what its weighted loss is divided by (its rows, unweighted)."""
    local = {str(i): class_weights[batch.labels].double().sum().item() for i, batch in enumerate(batches)}
    sums = distributed.all_reduce_sum(local)
    return [sums[str(i)] for i in range(len(batches))]


def make_optimizer(parameters: Sequence[torch.Tensor], config: TrainConfig) -> torch.optim.Optimizer:
    """RMSprop (the course notebook's; one fused pass per tensor on CPU), Adam or AdamW."""
    if config.optimizer == "rmsprop":
        return accel.RMSprop(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    raise ValueError(f"unknown optimizer {config.optimizer!r}; use one of {OPTIMIZERS}")


def learning_rate_factor(schedule: str, step: int, steps: int) -> float:
    """The learning rate's multiplier at ``step`` of ``steps``: constant, or a linear or cosine decay to 0."""
    if schedule == "constant":
        return 1.0
    if schedule == "linear":
        return 1.0 - step / steps
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / steps))
    raise ValueError(f"unknown lr schedule {schedule!r}; use one of {SCHEDULES}")


def _clip_and_check(parameters: Sequence[torch.Tensor], clip: float | None) -> bool:
    """Clip the gradient's norm to ``clip`` (when set); whether every gradient is finite."""
    norm = torch.nn.utils.get_total_norm([p.grad for p in parameters if p.grad is not None])
    finite = bool(torch.isfinite(norm))
    if clip is not None and finite:
        torch.nn.utils.clip_grads_with_norm_(parameters, clip, norm)
    return finite


def train_step(
    network: torch.nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    criterion,
    parameters: Sequence[torch.Tensor],
    clip: float | None,
    where: tuple[int, int] = (0, 0),
    objective=None,
    total_weight: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
    """One optimizer step on ``batch``: (summed loss, summed objective, correct predictions, whether it stepped).

    The step minimises ``criterion``'s summed loss over the batch's global rows, or, given one,
    ``objective``'s (a class-weighted sum) over ``total_weight``, the batch's summed row weights
    on all ranks. A step whose gradients are not finite is dropped, as AMP's GradScaler does; a
    loss that is itself not finite stops training (``where``: epoch and batch, for the message).
    """
    world_size = distributed.world_size()
    device = batch.tokens.device
    optimizer.zero_grad()
    if len(batch.labels):
        logits = network(batch.tokens, batch.lengths)
        batch_loss = criterion(logits, batch.labels)
        minimised = batch_loss if objective is None else objective(logits, batch.labels)
        correct = (predicted_labels(logits.detach()) == batch.labels).sum()
    else:  # this rank's share of a tiny batch is empty; it still runs DDP's forward and backward,
        # or the other ranks would wait forever in their gradient all-reduce
        empty = torch.full((1, 1), PAD_ID, device=device), torch.zeros(1, dtype=torch.long, device=device)
        batch_loss = minimised = network(*empty).sum() * 0.0
        correct = torch.zeros((), dtype=torch.int64, device=device)
    # Every rank must take this decision together, or the others would wait forever in backward.
    if distributed.any_rank(not torch.isfinite(minimised)):
        value = minimised.item() if not torch.isfinite(minimised) else "not finite on another rank"
        raise NonFiniteLoss(
            f"training loss is {value} at epoch {where[0]}, batch {where[1]}; "
            f"lower train.lr or set train.clip_grad_norm"
        )
    # This rank's sum / the global rows (or weight) * world size: DDP's gradient average is the global
    # (weighted) mean, sum_i w_i loss_i / sum_i w_i over the batch's rows on every rank.
    total = batch.global_rows if total_weight is None else total_weight
    (minimised * (world_size / total)).backward()
    stepped = _clip_and_check(parameters, clip)
    if stepped:
        optimizer.step()
    return batch_loss.detach().double(), minimised.detach().double(), correct, stepped


@torch.inference_mode()
def score(model: RNN, batches: list[Batch], class_weights: torch.Tensor | None = None) -> dict[str, float]:
    """Summed loss, correct predictions and rows over ``batches`` (the caller divides, after reducing ranks);
    given ``class_weights``, also the summed weighted loss and row weights."""
    model.eval()
    criterion = loss_function(model.config.num_classes, reduction="sum")
    loss = torch.zeros((), dtype=torch.float64, device=model.V.weight.device)
    correct = torch.zeros((), dtype=torch.int64, device=loss.device)
    rows = 0
    if class_weights is not None:
        weighted_criterion = loss_function(model.config.num_classes, reduction="sum", class_weights=class_weights)
        weighted = torch.zeros((), dtype=torch.float64, device=loss.device)
        weight = torch.zeros((), dtype=torch.float64, device=loss.device)
    for batch in batches:
        if len(batch.labels):
            logits = model(batch.tokens, batch.lengths)
            loss += criterion(logits, batch.labels).double()
            correct += (predicted_labels(logits) == batch.labels).sum()
            rows += len(batch.labels)
            if class_weights is not None:
                weighted += weighted_criterion(logits, batch.labels).double()
                weight += class_weights[batch.labels].double().sum()
    scores = {"loss": loss.item(), "accuracy": correct.item(), "rows": rows}
    if class_weights is not None:
        scores.update(weighted_loss=weighted.item(), weight=weight.item())
    return scores


def train_model(
    model: RNN,
    train_split: EncodedSplit,
    valid_split: EncodedSplit,
    config: TrainConfig,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train ``model``; keep the weights of the epoch with the lowest valid loss (weighted, with class weights)."""
    rank, world_size = distributed.rank(), distributed.world_size()
    model.to(device)
    network = distributed.wrap(model, device)  # DDP averages the ranks' gradients; one process: the model itself
    parameters = list(model.parameters())
    criterion = loss_function(model.config.num_classes, reduction="sum")
    class_weights = class_weight_tensor(config, train_split, device)
    objective = (
        None if class_weights is None else loss_function(model.config.num_classes, "sum", class_weights=class_weights)
    )
    # The loss that picks the best epoch (and that patience watches): the one the steps minimise.
    picked_by = "valid/loss" if class_weights is None else "valid/weighted_loss"

    rng = np.random.default_rng(config.seed)
    train_split, valid_split = train_split.last_tokens(config.max_tokens), valid_split.last_tokens(config.max_tokens)
    train_batches = make_batches(train_split, config.batch_size, device, rng, rank, world_size)
    valid_batches = make_batches(valid_split, config.valid_batch_size, device, rank=rank, world_size=world_size)
    batch_weights = None if class_weights is None else global_batch_weights(train_batches, class_weights)
    optimizer = make_optimizer(parameters, config)
    steps, total_steps = 0, config.epochs * len(train_batches)

    result = TrainResult(best_state={}, best_epoch=0)
    best_loss = math.inf
    with accel.cpu_settings(device):
        for epoch in range(1, config.epochs + 1):
            started = time.perf_counter()
            network.train()
            train_loss = torch.zeros((), dtype=torch.float64, device=device)
            train_correct = torch.zeros((), dtype=torch.int64, device=device)
            train_weighted = torch.zeros((), dtype=torch.float64, device=device)
            skipped = 0
            order = rng.permutation(len(train_batches))
            # Bars on a terminal only (disable=None), and on rank 0 only.
            progress = tqdm(
                order,
                desc=f"epoch {epoch}/{config.epochs}",
                unit="batch",
                leave=False,
                disable=None if rank == 0 else True,
            )
            for step, index in enumerate(progress, start=1):
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * learning_rate_factor(config.lr_schedule, steps, total_steps)
                steps += 1
                batch_loss, minimised, correct, stepped = train_step(
                    network,
                    train_batches[index],
                    optimizer,
                    criterion,
                    parameters,
                    config.clip_grad_norm,
                    where=(epoch, step),
                    objective=objective,
                    total_weight=None if batch_weights is None else batch_weights[index],
                )
                train_loss += batch_loss
                if objective is not None:
                    train_weighted += minimised
                train_correct += correct
                skipped += not stepped
            progress.close()
            if skipped == len(train_batches):
                raise NonFiniteLoss(
                    f"every training step of epoch {epoch} had non-finite gradients ({skipped} of {skipped} skipped), "
                    f"so the model never changed: the initial weights or the learning rate are too large; lower "
                    f"train.embedding_init_std (now the embeddings start at that scale) or train.lr, or set "
                    f"train.clip_grad_norm"
                )

            valid = score(model, valid_batches, class_weights)
            local = {
                "train/loss": train_loss.item(),
                "train/accuracy": train_correct.item(),
                "valid/loss": valid["loss"],
                "valid/accuracy": valid["accuracy"],
                "valid/rows": valid["rows"],
            }
            if class_weights is not None:
                local.update(
                    {
                        "train/weighted_loss": train_weighted.item(),
                        "valid/weighted_loss": valid["weighted_loss"],
                        "valid/weight": valid["weight"],
                    }
                )
            sums = distributed.all_reduce_sum(local)
            sums["train/rows"] = len(train_split)  # every rank trains on a share of it; the shares add up to it
            metrics = {
                f"{split}/{name}": sums[f"{split}/{name}"] / sums[f"{split}/rows"]
                for split in ("train", "valid")
                for name in ("loss", "accuracy")
            }
            if batch_weights is not None:  # class weights given: the weighted means: sum_i w_i loss_i / sum_i w_i
                metrics["train/weighted_loss"] = sums["train/weighted_loss"] / sum(batch_weights)
                metrics["valid/weighted_loss"] = sums["valid/weighted_loss"] / sums["valid/weight"]
            stats = EpochStats(
                epoch, metrics, skipped, time.perf_counter() - started, tokens=int(train_split.lengths.sum())
            )
            result.history.append(stats)
            if metrics[picked_by] < best_loss:
                best_loss = metrics[picked_by]
                result.best_epoch = epoch
                result.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
            if on_epoch is not None:
                on_epoch(stats)
            if config.patience is not None and epoch - result.best_epoch >= config.patience:
                log.info(
                    "train: stopped after epoch %d: %s has not improved since epoch %d (patience %d)",
                    epoch,
                    "valid loss" if class_weights is None else "weighted valid loss",
                    result.best_epoch,
                    config.patience,
                )
                break
    if not result.best_state:
        raise NonFiniteLoss("no epoch gave a finite valid loss; lower train.lr or set train.clip_grad_norm")
    return result
