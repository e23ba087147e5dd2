"""Training speed of each model option on real IMDB reviews: tokens/s of train_model's step (forward, backward,
RMSprop), per cell, direction and size, with the full-IMDB epoch time it implies.

The reviews are a random sample of the IMDB train parquet, tokenized and encoded as the pipeline
does (textrnn.text.encoding), with a vocabulary built from the whole file at the pipeline's
min_freq, so the embedding (and its RMSprop step) has the pipeline's size. Each row times a
width-stratified sample of one epoch's length-bucketed batches (benchmarks/train_speed.py's
``bucketed_steps``, which is train_model's inner loop). "epoch s" is the pipeline's train split
(80 % of the file's tokens) divided by the rate; "10 epochs s" is the default run's training time
without validation scoring; "cost" is the first row's rate over this row's, in CPU time (the
first row is the notebook's model by default), the figure that carries over to a quieter machine.

    python benchmarks/model_speed.py                                   # ../shared/imdb/train.parquet
    python benchmarks/model_speed.py --cells rnn --sizes 32,64,32 --batches 60
    python benchmarks/model_speed.py --cells rnn --no-cpu-kernel                  # torch.rnn_tanh instead
    python benchmarks/model_speed.py --cells rnn --readout max --dropout 0.3      # other options' overhead
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without `pip install -e .`

from train_speed import bucketed_steps, timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

from textrnn import accel  # noqa: E402
from textrnn.data.vectors import EncodedSplit  # noqa: E402
from textrnn.model import CELLS, READOUTS, RNN, ModelConfig  # noqa: E402
from textrnn.text.encoding import count_tokens, encode_texts  # noqa: E402
from textrnn.text.vocab import Vocab  # noqa: E402

TRAIN_SHARE = 0.8  # params.yaml split.valid_size = 0.2: train is 80 % of the file


def size(text: str):
    embedding, hidden, batch = (int(part) for part in text.split(","))
    return embedding, hidden, batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "imdb" / "train.parquet")
    parser.add_argument("--reviews", type=int, default=4000, help="reviews sampled from the file")
    parser.add_argument("--batches", type=int, default=40, help="timed batches per row (stratified by width)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0 = torch's default)")
    parser.add_argument("--min-freq", type=int, default=5, help="the pipeline's vocab.min_freq")
    parser.add_argument("--cells", nargs="+", default=list(CELLS), choices=list(CELLS))
    parser.add_argument("--directions", nargs="+", default=["uni", "bi"], choices=["uni", "bi"])
    parser.add_argument("--readout", default="last", choices=READOUTS)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument(
        "--sizes", nargs="+", type=size, default=[(32, 64, 32), (128, 128, 64)], metavar="EMB,HIDDEN,BATCH"
    )
    parser.add_argument("--epochs", type=int, default=10, help="epochs for the 'epochs s' column (params.yaml)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-cpu-kernel",
        action="store_true",
        help="the rnn cell on torch.rnn_tanh instead of textrnn.accel's kernel",
    )
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = pd.read_parquet(args.data, columns=["text"])["text"].tolist()
    started = time.perf_counter()
    counts = count_tokens(texts)
    vocab = Vocab.build(counts, min_freq=args.min_freq)
    sample = np.random.default_rng(args.seed).choice(len(texts), size=min(args.reviews, len(texts)), replace=False)
    ids, offsets = encode_texts([texts[i] for i in sample], vocab)
    split = EncodedSplit(ids, offsets, np.arange(len(sample), dtype=np.int64) % 2, ["neg", "pos"])
    epoch_tokens = TRAIN_SHARE * sum(counts.values())
    print(
        f"machine: {platform.machine()}, nproc {os.cpu_count()}, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, python {platform.python_version()}; "
        f"accel kernel {'available' if accel.available() else 'NOT available'}"
    )
    print(
        f"data: {args.data}: {len(texts)} reviews, {sum(counts.values())} tokens, vocab {len(vocab)} "
        f"(min_freq {args.min_freq}); sample {len(sample)} reviews, mean length {split.lengths.mean():.0f}, "
        f"longest {split.lengths.max()} ({time.perf_counter() - started:.0f} s to prepare); "
        f"epoch = {epoch_tokens / 1e6:.2f}M tokens; readout {args.readout}, dropout {args.dropout}"
        f"{'; rnn on torch.rnn_tanh' if args.no_cpu_kernel else ''}"
    )
    print(
        f"\n{'cell':<5} {'dir':<4} {'emb':>4} {'hid':>4} {'batch':>5} {'batches':>7} {'tokens':>8} {'wall s':>7} "
        f"{'tokens/s':>9} {'epoch s':>7} {f'{args.epochs} epochs s':>11} | {'cpu s':>6} {'tok/cpu-s':>9} {'cost':>5}"
    )
    first = None
    for (embedding, hidden, batch_size), cell, direction in itertools.product(args.sizes, args.cells, args.directions):
        torch.manual_seed(args.seed)
        model = RNN(
            ModelConfig(
                len(vocab),
                embedding,
                hidden,
                2,
                cell=cell,
                bidirectional=direction == "bi",
                readout=args.readout,
                dropout=args.dropout,
            )
        )
        with accel.cpu_settings(torch.device("cpu")), accel.enabled(not args.no_cpu_kernel):
            steps = bucketed_steps(copy.deepcopy(model), split, args.batches, args.seed, batch_size)
            tokens, wall, cpu = timed(steps, args.warmup)
        rate = tokens / wall
        first = first or tokens / cpu
        print(
            f"{cell:<5} {direction:<4} {embedding:>4} {hidden:>4} {batch_size:>5} {len(steps):>7} {tokens:>8} "
            f"{wall:>7.2f} {rate:>9.0f} {epoch_tokens / rate:>7.1f} {args.epochs * epoch_tokens / rate:>11.0f} | "
            f"{cpu:>6.2f} {tokens / cpu:>9.0f} {first / (tokens / cpu):>4.1f}x",
            flush=True,
        )
    print(
        "\ntokens: real (non-pad) tokens of the timed batches; wall s / tokens/s: wall clock; "
        "cpu: this process's CPU time (steadier than wall time on a shared machine)"
    )


if __name__ == "__main__":
    main()
