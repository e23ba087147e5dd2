"""Peak memory of download and split against the input's row groups: IMDB 1x and 8x, written by pandas.

pandas (through pyarrow) writes parquet in row groups of up to 1,048,576 rows, so IMDB repeated 8
times (200,000 rows per split) is a single row group per file. For each size N this writes such a
folder (IMDB's train and test, every row N times, `DataFrame.to_parquet` at its defaults), copies
the project, runs `stages/download.py` then `stages/split.py` in their own processes, and prints
each one's wall seconds and peak memory: the kernel's peak resident set (`ru_maxrss`) and the peak
anonymous resident memory (`RssAnon` of /proc/PID/status, sampled every 20 ms: the heap, arrow's
buffers; not the mapped libraries and files).

    python benchmarks/rowgroups.py                   # 1x and 8x
    python benchmarks/rowgroups.py --sizes 1 8 16
    python benchmarks/rowgroups.py --format csv      # the same rows as CSV (or jsonl): read in blocks too
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("download", "split")


def pandas_dataset(source: Path, target: Path, times: int, format_: str) -> list[str]:
    """``source``'s parquet files with every row ``times`` times, written by pandas at its defaults; their layouts."""
    import pandas as pd
    import pyarrow.parquet as pq

    target.mkdir(parents=True, exist_ok=True)
    layouts = []
    for path in sorted(source.glob("*.parquet")):
        frame = pd.concat([pd.read_parquet(path)] * times, ignore_index=True)
        written = target / path.with_suffix(f".{format_}").name
        if format_ == "parquet":
            frame.to_parquet(written, index=False)
            metadata = pq.ParquetFile(written).metadata
            layouts.append(f"{written.name}: {metadata.num_rows} rows in {metadata.num_row_groups} row group(s)")
        else:
            if format_ == "csv":
                frame.to_csv(written, index=False)
            else:
                frame.to_json(written, orient="records", lines=True, force_ascii=False)
            layouts.append(f"{written.name}: {len(frame)} rows, {written.stat().st_size / 2**20:.0f} MB")
    return layouts


def top_level(*names: str):
    """A copytree ``ignore`` that leaves out these names at the repository's top level only (not textrnn/data)."""
    return lambda directory, entries: [e for e in entries if Path(directory) == REPO and e in names]


def anonymous_mb(pid: int) -> float:
    """``RssAnon`` of process ``pid``, in MB (0 once it has ended)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_stage(project: Path, stage: str) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MB, the kernel's) and peak anonymous RSS (MB, sampled) of one stage script."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, f"stages/{stage}.py"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], anonymous_mb(process.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    log = process.stderr.read()  # drained as it comes: a full pipe would block the stage
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    if status != 0:
        raise SystemExit(f"{stage} failed:\n{log[-3000:]}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024, peak[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--dataset", type=Path, default=REPO / "datasets" / "imdb")
    parser.add_argument("--format", choices=["parquet", "csv", "jsonl"], default="parquet")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="textrnn-rowgroups-"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}", flush=True)
    results: dict[int, dict[str, tuple[float, float, float]]] = {}
    try:
        for size in args.sizes:
            dataset = work / f"imdb-{size}x"
            # in a fresh process: a stage forked from a large benchmark process would count its pages in ru_maxrss
            with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as writer:
                layouts = writer.submit(pandas_dataset, args.dataset, dataset, size, args.format).result()
            for layout in layouts:
                print(f"{size:>3}x {layout}", flush=True)
            project = work / f"project-{size}x"
            left_out = top_level(".git", ".venv", ".dvc", "data", "models", "plots", "datasets")
            shutil.copytree(REPO, project, ignore=left_out)
            params = (project / "params.yaml").read_text(encoding="utf-8")
            (project / "params.yaml").write_text(params.replace("dataset: datasets/imdb", f"dataset: {dataset}"))
            results[size] = {}
            for stage in STAGES:
                results[size][stage] = run_stage(project, stage)
                seconds, rss, anonymous = results[size][stage]
                print(
                    f"{size:>3}x {stage:<9} {seconds:6.1f} s  peak RSS {rss:5.0f} MB  "
                    f"peak anonymous {anonymous:5.0f} MB",
                    flush=True,
                )
            shutil.rmtree(project)
            shutil.rmtree(dataset)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first = args.sizes[0]
    print(f"\nbound: peak anonymous at Nx within max(1.5 x, +300 MB) of {first}x's")
    for stage in STAGES:
        base = results[first][stage][2]
        bound = max(1.5 * base, base + 300)
        for size in args.sizes[1:]:
            anonymous = results[size][stage][2]
            verdict = "within" if anonymous <= bound else "OVER"
            print(
                f"{stage:<9} {size}x: {anonymous:.0f} MB against {first}x's {base:.0f} MB (bound {bound:.0f}): ", end=""
            )
            print(verdict)


if __name__ == "__main__":
    main()
