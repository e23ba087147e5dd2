"""Cost against data size: each stage's wall time and peak memory on IMDB repeated 1x, 4x and 20x.

For each size N this writes a dataset folder holding IMDB's train and test splits N times over
(the same reviews: fine for cost, meaningless for accuracy), copies the project, and runs each
stage script in its own process, as `dvc repro` does, with `train.epochs: 1`. It prints each
stage's wall seconds and peak RSS (the process's maximum resident set, from the kernel), how
much faster than the data each grew against 1x, and the evaluate stage's time against the one
training epoch's (as the train stage logs it).

    python benchmarks/scale.py                       # 1x, 4x, 20x
    python benchmarks/scale.py --sizes 1 4 --keep    # keep the work folder (its path is printed)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
STAGES = ("download", "split", "build_vocab", "vectorize", "train", "evaluate")


def repeated_dataset(source: Path, target: Path, times: int) -> None:
    """``source``'s parquet files with every row ``times`` times, written batch by batch."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(source.glob("*.parquet")):
        handle = pq.ParquetFile(path)
        with pq.ParquetWriter(target / path.name, handle.schema_arrow) as writer:
            for _ in range(times):
                for batch in handle.iter_batches(batch_size=10_000):
                    writer.write_batch(batch)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` and all its descendants (the stage's worker processes), in MB."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            total += process.memory_info().rss
    return total / 2**20


def run_stage(project: Path, stage: str, env: dict) -> tuple[float, float, float, str]:
    """Wall seconds, peak RSS of the largest process (MB, from the kernel), peak RSS of the whole
    process tree (MB, sampled every 0.1 s) and the log (stderr) of one stage script."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, f"stages/{stage}.py"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_tree = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak_tree[0] = max(peak_tree[0], tree_rss_mb(process.pid))
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = process.stderr.read()  # drained as it comes: a full pipe would block the stage
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{stage} failed at this size:\n{stderr[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, peak_tree[0], stderr


def epoch_seconds(train_log: str) -> float:
    """The seconds of the last epoch in the train stage's log ("epoch 1/1: ... | 15.2 s, ...")."""
    found = re.findall(r"^epoch \d+/\d+: .*\| ([0-9.]+) s,", train_log, flags=re.MULTILINE)
    if not found:
        raise SystemExit(f"no epoch line in the train stage's log:\n{train_log[-2000:]}")
    return float(found[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 20])
    parser.add_argument("--dataset", type=Path, default=REPO / "datasets" / "imdb")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="textrnn-scale-"))
    env = dict(os.environ, TQDM_DISABLE="1")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
        f"train.epochs 1; each stage a fresh process; work folder {work}",
        flush=True,
    )
    table: dict[int, dict[str, tuple[float, float, float]]] = {}
    epochs: dict[int, float] = {}
    try:
        for size in args.sizes:
            dataset = work / f"imdb-{size}x"
            repeated_dataset(args.dataset, dataset, size)
            project = work / f"project-{size}x"
            shutil.copytree(
                REPO,
                project,
                ignore=shutil.ignore_patterns(
                    ".git", ".venv", "data", "models", "plots", "metrics", "datasets", "__pycache__", ".dvc"
                ),
            )
            params = (project / "params.yaml").read_text(encoding="utf-8")
            params = params.replace("dataset: datasets/imdb", f"dataset: {dataset}").replace("epochs: 10", "epochs: 1")
            (project / "params.yaml").write_text(params, encoding="utf-8")
            table[size] = {}
            for stage in STAGES:
                seconds, rss, tree, log = run_stage(project, stage, env)
                table[size][stage] = seconds, rss, tree
                if stage == "train":
                    epochs[size] = epoch_seconds(log)
                print(
                    f"{size:>3}x {stage:<12} {seconds:8.1f} s {rss:8.0f} MB largest process {tree:8.0f} MB all",
                    flush=True,
                )
            shutil.rmtree(project / "data")  # the next size needs the disk more than this one's outputs
            shutil.rmtree(dataset)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    first = args.sizes[0]
    print(
        "\n| stage | "
        + " | ".join(f"{n}x: s, MB (largest process / all)" for n in args.sizes)
        + " | "
        + " | ".join(f"{n}x/{first}x time per row" for n in args.sizes[1:])
        + " |"
    )
    print("|---" * (1 + 2 * len(args.sizes) - 1) + "|")
    for stage in STAGES:
        cells = [f"{table[n][stage][0]:.1f} s, {table[n][stage][1]:.0f} / {table[n][stage][2]:.0f}" for n in args.sizes]
        growth = [f"{table[n][stage][0] / table[first][stage][0] / (n / first):.2f}" for n in args.sizes[1:]]
        print(f"| {stage} | " + " | ".join(cells + growth) + " |")
    print("\ntime per row: time growth divided by data growth (1.0 = linear; the target is at most 1.2)")
    for n in args.sizes:
        evaluate = table[n]["evaluate"][0]
        print(
            f"{n}x: the evaluate stage {evaluate:.1f} s against a training epoch of {epochs[n]:.1f} s: "
            f"{evaluate / epochs[n]:.2f} epoch"
        )


if __name__ == "__main__":
    main()
