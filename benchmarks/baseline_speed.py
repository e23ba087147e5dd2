"""Baseline stage speed: textrnn's NgramTfidf against sklearn's TfidfVectorizer, then the logistic regressions.

Reads the split files of a preprocessed project (run the download and split stages first):

    python benchmarks/baseline_speed.py                       # data/split of this checkout
    python benchmarks/baseline_speed.py --split /path/to/project/data/split --rounds 2

The two vectorizers run in turns (A, B, A, B, ...) so that a busy machine slows both alike; the
load average is printed beside each figure.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without `pip install -e .`

from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402

from textrnn import baseline  # noqa: E402
from textrnn.data import splits as split_files  # noqa: E402


def timed(work):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def vectorize(vectorizer, texts):
    return [vectorizer.fit_transform(texts["train"])] + [vectorizer.transform(texts[s]) for s in ("valid", "test")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", type=Path, default=REPO / "data/split")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--C", type=float, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    names = split_files.read_labels(args.split)
    texts = {s: list(split_files.iter_texts(args.split / f"{s}.parquet")) for s in split_files.SPLITS}
    labels = {s: split_files.read_split_labels(args.split / f"{s}.parquet", len(names)) for s in split_files.SPLITS}
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, python {platform.python_version()}")
    print("rows: " + ", ".join(f"{s} {len(t)}" for s, t in texts.items()))
    candidates = {
        "textrnn NgramTfidf": baseline.NgramTfidf,
        "sklearn TfidfVectorizer": lambda: TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
    }
    matrices = {}
    for round_ in range(1, args.rounds + 1):
        for name, make in candidates.items():
            load = os.getloadavg()[0]
            matrices[name], wall, cpu = timed(lambda make=make: vectorize(make(), texts))
            print(
                f"round {round_}: {name:24s} vectorize train+valid+test: {wall:6.1f} s wall, {cpu:6.1f} s CPU "
                f"(load {load:.1f})"
            )
    ours, theirs = matrices.values()
    assert all(a.shape == b.shape and a.nnz == b.nnz for a, b in zip(ours, theirs, strict=True))
    print(f"features: {ours[0].shape[1]}, train non-zeros: {ours[0].nnz} (the same in both)")
    for C in args.C:
        model, wall, cpu = timed(lambda C=C: baseline.fit_model(ours[0], labels["train"], C))
        valid = float(np.mean(model.predict(ours[1]) == labels["valid"]))
        print(
            f"logistic regression C={C}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
            f"{int(np.max(model.n_iter_))} iterations, valid accuracy {valid:.4f}"
        )


if __name__ == "__main__":
    main()
