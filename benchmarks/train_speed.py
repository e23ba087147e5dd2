"""Training speed side by side in one process: the notebook's loop against our reference and default paths.

Every row trains a copy of the same initial model (forward, backward, RMSprop step) on batches of
the same vectorized train split and reports real (non-pad) tokens per second:

  notebook   the course notebook's loop as written: sklearn-shuffled batches padded on the left to
             their longest review, one Python step per token through forward(x_t, hidden)
  loop       our readable reference, RNN.forward_loop, on length-bucketed right-padded batches
  rnn_tanh   our batching (make_batches + forward_sequence) on PyTorch's own fused torch.rnn_tanh and
             torch.optim.RMSprop: the default where the CPU kernel cannot be built
  kernel     our default path, as train_model runs it: textrnn.accel's hand-written kernel and
             its one-pass RMSprop step (when the kernel builds here)

Each row times a sample of one epoch's batches that is stratified by batch width (every k-th
batch of the epoch sorted by width), so it sees the epoch's mix of short and long batches; the
projected epoch time is the split's real tokens divided by the measured rate.

    python benchmarks/train_speed.py                      # defaults: data/vectors, data/vocab.txt
    python benchmarks/train_speed.py --notebook-batches 10 --default-batches 100 --threads 2
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from sklearn.utils import shuffle
from torch import nn

from textrnn import accel
from textrnn.data.vectors import EncodedSplit, open_split
from textrnn.model import RNN, ModelConfig, loss_function
from textrnn.text.vocab import PAD_ID, Vocab
from textrnn.training.batching import make_batches
from textrnn.training.loop import TrainConfig, train_model, train_step

REPO = Path(__file__).resolve().parents[1]


def default_path(relative: str) -> Path:
    """The pipeline's output in this checkout (run `dvc repro vectorize` first)."""
    return REPO / relative


def stratified(widths: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` batches spread evenly over the batches sorted by width (all when count is larger)."""
    order = np.argsort(widths, kind="stable")
    if count >= len(order):
        return order
    return order[((np.arange(count) + 0.5) * len(order) / count).astype(int)]


def timed(steps: list[Callable[[], int]], warmup: int) -> tuple[int, float, float]:
    """Run ``warmup`` steps untimed, then all steps timed: (real tokens, wall seconds, CPU seconds)."""
    for step in steps[:warmup]:
        step()
    tokens, wall, cpu = 0, time.perf_counter(), time.process_time()
    for step in steps:
        tokens += step()
    return tokens, time.perf_counter() - wall, time.process_time() - cpu


# ---------------------------------------------------------------- (a) the notebook, as written


def notebook_steps(model: RNN, split: EncodedSplit, count: int, seed: int) -> list[Callable[[], int]]:
    """The notebook's data_generator + training-loop body, one closure per sampled batch."""
    X = [torch.from_numpy(split.sequence(i).astype(np.int64)) for i in range(len(split))]
    y = split.labels.tolist()
    X, y = shuffle(X, y, random_state=seed)  # the notebook's sklearn shuffle, seeded here
    batch_size, pad_id = 32, PAD_ID
    starts = np.arange(0, len(X), batch_size)
    widths = np.array([max(len(x) for x in X[i : i + batch_size]) for i in starts])
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.001)
    device = "cpu"

    def step(i: int) -> int:
        # data_generator's body for one batch
        batch_X = X[i : i + batch_size]
        batch_y = y[i : i + batch_size]
        max_len = max([len(x) for x in batch_X])
        batch_X = torch.stack(
            [torch.cat([torch.ones(max_len - len(x), dtype=torch.long) * pad_id, x]) for x in batch_X]
        )
        batch_y = torch.tensor(batch_y, dtype=torch.long)
        # the training loop's body
        batch_X = batch_X.to(device)
        batch_y = batch_y.to(device)
        hidden = model.init_hidden(batch_size=batch_X.shape[0]).to(device)
        optimizer.zero_grad()
        for t in range(batch_X.shape[1]):
            output, hidden = model.step(batch_X[:, t], hidden)
        loss = criterion(output, batch_y.float().unsqueeze(1))
        loss.backward()
        optimizer.step()
        loss.item()
        return int(sum(len(x) for x in X[i : i + batch_size]))

    model.train()
    return [lambda i=int(starts[k]): step(i) for k in stratified(widths, count)]


# ---------------------------------------------------------------- (b), (c), (d): train_model's step


def bucketed_steps(
    model: RNN,
    split: EncodedSplit,
    count: int,
    seed: int,
    batch_size: int,
    optimizer_class=accel.RMSprop,
    reference: bool = False,
) -> list[Callable[[], int]]:
    """train_model's step (textrnn.training.loop.train_step) on a width-stratified sample of one epoch's buckets.

    ``reference``: the step runs the readable step loop (forward_loop) instead of the fused path.
    """
    batches = make_batches(split, batch_size, torch.device("cpu"), np.random.default_rng(seed))
    widths = np.array([b.tokens.shape[1] for b in batches])
    parameters = list(model.parameters())
    optimizer = optimizer_class(parameters, lr=0.001)
    criterion = loss_function(model.config.num_classes, reduction="sum")
    network = _Loop(model) if reference else model

    def step(batch) -> int:
        train_step(network, batch, optimizer, criterion, parameters, clip=None)
        return int(batch.lengths.sum())

    model.train()
    return [lambda b=batches[k]: step(b) for k in stratified(widths, count)]


class _Loop(nn.Module):
    def __init__(self, model: RNN):
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.model.forward_loop(tokens, lengths)


ROWS = ["notebook", "loop", "rnn_tanh", "kernel"]
KERNEL_ROWS = ("kernel",)


def row_settings(key: str) -> contextlib.ExitStack:
    """The kernel on or off; our rows under train_model's CPU settings, the notebook's loop as it is."""
    stack = contextlib.ExitStack()
    stack.enter_context(accel.enabled(key in KERNEL_ROWS))
    if key != "notebook":
        stack.enter_context(accel.cpu_settings(torch.device("cpu")))
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--vectors",
        type=Path,
        default=default_path("data/vectors"),
        help="the vectorize stage's output (its train split is timed)",
    )
    parser.add_argument("--vocab", type=Path, default=default_path("data/vocab.txt"))
    parser.add_argument("--notebook-batches", type=int, default=60, help="timed batches of the notebook's loop")
    parser.add_argument("--loop-batches", type=int, default=30, help="timed batches of forward_loop")
    parser.add_argument("--default-batches", type=int, default=150, help="timed batches of each fused path")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before each row")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0 = torch's default)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--embedding-size", type=int, default=32)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=ROWS)
    parser.add_argument("--profile", choices=ROWS, help="also run this row under torch.profiler and print its top ops")
    parser.add_argument(
        "--epochs",
        action="store_true",
        help="also time one whole epoch of train_model itself, with the kernel and with torch.rnn_tanh",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    vocab_size = len(Vocab.load(args.vocab))
    split = open_split(args.vectors, "train", vocab_size)
    torch.manual_seed(args.seed)
    initial = RNN(ModelConfig(vocab_size, args.embedding_size, args.hidden_size, len(split.label_names)))
    epoch_tokens = int(split.lengths.sum())

    started = time.perf_counter()
    fused_available = accel.available()
    build_seconds = time.perf_counter() - started
    print(
        f"machine: {platform.machine()}, nproc {os.cpu_count()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, python {platform.python_version()}"
    )
    print(
        f"data: {args.vectors}/train ({len(split)} reviews, {epoch_tokens} tokens, longest {split.lengths.max()}), "
        f"vocab {vocab_size}; batch {args.batch_size}, emb {args.embedding_size}, hidden {args.hidden_size}"
    )
    print(
        f"textrnn.accel kernel: {'available' if fused_available else 'NOT available'} "
        f"(load/build {build_seconds:.1f} s)"
    )

    n = args.default_batches
    rows = [
        (
            "notebook",
            "notebook loop, random left-padded batches",
            lambda m: notebook_steps(m, split, args.notebook_batches, args.seed),
        ),
        (
            "loop",
            "forward_loop, length buckets",
            lambda m: bucketed_steps(m, split, args.loop_batches, args.seed, args.batch_size, reference=True),
        ),
        (
            "rnn_tanh",
            "torch.rnn_tanh + torch RMSprop, buckets",
            lambda m: bucketed_steps(m, split, n, args.seed, args.batch_size, torch.optim.RMSprop),
        ),
        (
            "kernel",
            "default: textrnn.accel kernel + RMSprop, buckets",
            lambda m: bucketed_steps(m, split, n, args.seed, args.batch_size),
        ),
    ]
    results = {}
    print(
        f"\n{'row':<10} {'what':<46} {'batches':>7} {'tokens':>8} {'wall s':>7} {'tokens/s':>9} {'x nb':>6} "
        f"{'epoch s':>7} | {'cpu s':>6} {'tok/cpu-s':>9} {'x nb':>6} {'epoch cpu-s':>11}"
    )
    for key, what, build in rows:
        if key in args.skip or (key in KERNEL_ROWS and not fused_available):
            continue
        with row_settings(key):
            steps = build(copy.deepcopy(initial))
            tokens, wall, cpu = timed(steps, args.warmup)
        results[key] = rates = (tokens / wall, tokens / cpu)
        if "notebook" in results:  # skipped: no ratio to show
            ratios = [f"{rate / base:.1f}x" for rate, base in zip(rates, results["notebook"], strict=True)]
        else:
            ratios = ["-", "-"]
        print(
            f"{key:<10} {what:<46} {len(steps):>7} {tokens:>8} {wall:>7.2f} {rates[0]:>9.0f} {ratios[0]:>6} "
            f"{epoch_tokens / rates[0]:>7.1f} | {cpu:>6.2f} {rates[1]:>9.0f} {ratios[1]:>6} "
            f"{epoch_tokens / rates[1]:>11.1f}",
            flush=True,
        )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        key, what, build = next(row for row in rows if row[0] == args.profile)
        with row_settings(key):
            steps = build(copy.deepcopy(initial))
            for step in steps[: args.warmup]:
                step()
            with profile(activities=[ProfilerActivity.CPU]) as profiler:
                for step in steps:
                    step()
        print(f"\nprofile of {key} ({what}), {len(steps)} batches:")
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    if args.epochs:
        # The real thing: train_model over the whole split (valid: 256 reviews, scored once).
        valid = EncodedSplit(
            split.ids[: split.offsets[256]], split.offsets[:257], split.labels[:256], split.label_names
        )
        config = TrainConfig(lr=0.001, batch_size=args.batch_size, epochs=1, seed=args.seed)
        print()
        for kernel in (True, False) if fused_available else (False,):
            with accel.enabled(kernel):
                stats = train_model(copy.deepcopy(initial), split, valid, config, torch.device("cpu")).history[0]
            print(
                f"train_model, one epoch, {'textrnn.accel kernel' if kernel else 'torch.rnn_tanh'}: "
                f"{stats.seconds:.1f} s, "
                f"{stats.tokens / stats.seconds:.0f} tokens/s, "
                f"{stats.tokens / stats.seconds / results['notebook'][0]:.1f}x the notebook's wall rate"
                if "notebook" in results
                else f"train_model, one epoch: {stats.seconds:.1f} s",
                flush=True,
            )
    print(
        "\ntokens: real (non-pad) tokens of the timed batches; epoch s: the split's tokens / the rate; "
        "cpu: this process's CPU time (steadier than wall time on a shared machine)"
    )


if __name__ == "__main__":
    main()
