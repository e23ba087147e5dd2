"""Preprocessing speed: download (from a local copy), split, build_vocab and vectorize, in a temporary folder.

Two modes:
  library (default)  the library calls each stage script makes, timed in this one process
  --scripts          the stage scripts themselves (`python stages/<stage>.py`), one process each,
                     as `dvc repro` runs them: Python start-up and imports count

    python benchmarks/preprocess_speed.py                          # dataset ../shared/imdb
    python benchmarks/preprocess_speed.py --scripts --dataset /work/shared/imdb
    python benchmarks/preprocess_speed.py --warm-hf-cache           # datasets' cache already holds the dataset
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without `pip install -e .`

from textrnn.params import load_params  # noqa: E402

STAGES = ("download", "split", "build_vocab", "vectorize")


def library_steps(params: Dict[str, dict]) -> Dict[str, Callable[[], str]]:
    """Each stage's work as the stage script does it, with the paths relative to the current folder."""
    from textrnn.data import (SPLITS, EncodedSplit, label_names_from_features, load_hf_dataset, read_labels,
                              read_split, standardize_splits, stratified_split, write_split_dir)
    from textrnn.preprocess import count_tokens, encode_texts, resolve_workers
    from textrnn.vocab import Vocab

    def download() -> str:
        p = params["download"]
        splits, features = load_hf_dataset(p["dataset"], p["revision"])
        names = label_names_from_features(features, p["label_column"])
        frames, names = standardize_splits(splits, p["text_column"], p["label_column"], names, p["dataset"])
        write_split_dir(Path("data/raw"), frames, names)
        return ", ".join(f"{k} {len(v)}" for k, v in frames.items())

    def split() -> str:
        p = params["split"]
        names = read_labels(Path("data/raw"))
        train = read_split(Path("data/raw/train.parquet"), len(names))
        test = read_split(Path("data/raw/test.parquet"), len(names))
        train, valid = stratified_split(train, p["valid_size"], p["seed"], "valid", "data/raw/train.parquet")
        write_split_dir(Path("data/split"), {"train": train, "valid": valid, "test": test}, names)
        return f"train {len(train)}, valid {len(valid)}, test {len(test)}"

    def build_vocab() -> str:
        p = params["vocab"]
        train = read_split(Path("data/split/train.parquet"), len(read_labels(Path("data/split"))))
        counts = count_tokens(train["text"].tolist(), resolve_workers(p["workers"]))
        vocab = Vocab.build(counts, min_freq=p["min_freq"], max_size=p["max_size"])
        vocab.save(Path("data/vocab.txt"))
        return f"{len(counts)} distinct tokens, {len(vocab)} kept"

    def vectorize() -> str:
        vocab = Vocab.load(Path("data/vocab.txt"))
        names = read_labels(Path("data/split"))
        total = 0
        for name in SPLITS:
            frame = read_split(Path(f"data/split/{name}.parquet"), len(names))
            ids, offsets = encode_texts(frame["text"].tolist(), vocab, resolve_workers(params["vectorize"]["workers"]))
            EncodedSplit(ids, offsets, frame["label"].to_numpy(np.int64), names).save(Path(f"data/vectors/{name}.npz"))
            total += len(ids)
        return f"{total} tokens"

    return {"download": download, "split": split, "build_vocab": build_vocab, "vectorize": vectorize}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str((REPO / "../shared/imdb").resolve()),
                        help="a local folder of parquet files (download.dataset)")
    parser.add_argument("--scripts", action="store_true", help="run the stage scripts, one process each")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    parser.add_argument("--warm-hf-cache", action="store_true",
                        help="use the user's Hugging Face datasets cache (default: an empty one, as on a first run)")
    args = parser.parse_args()

    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["download"]["dataset"] = str(Path(args.dataset).resolve())
    work = Path(tempfile.mkdtemp(prefix="textrnn-preprocess-"))
    if not args.warm_hf_cache:  # datasets converts the parquet files into its cache on a first load
        os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    print(f"machine: {platform.machine()}, nproc {os.cpu_count()}, python {platform.python_version()}; "
          f"workers {params['vocab']['workers']}/{params['vectorize']['workers']}; dataset {args.dataset}; "
          f"mode {'stage scripts' if args.scripts else 'library calls'}; "
          f"HF cache {'warm (yours)' if args.warm_hf_cache else 'empty'}; folder {work}")
    previous = Path.cwd()
    os.chdir(work)
    try:
        checked = {section: load_params(section) for section in ("download", "split", "vocab", "vectorize")}
        steps = library_steps(checked)
        total = 0.0
        for stage in STAGES:
            started = time.perf_counter()
            if args.scripts:
                subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py")], check=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO), TQDM_DISABLE="1"))
                what = "stage script"
            else:
                what = steps[stage]()
            seconds = time.perf_counter() - started
            total += seconds
            print(f"{stage:<12} {seconds:7.2f} s   {what}", flush=True)
        print(f"{'total':<12} {total:7.2f} s")
    finally:
        os.chdir(previous)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
