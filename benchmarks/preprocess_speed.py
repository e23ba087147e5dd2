"""Preprocessing speed, side by side in one run: the notebook's own preprocessing and textrnn's.

Rows (each in a fresh process, so Python start-up and imports count, as a user meets them):

  notebook       the notebook as written, in one process: load_dataset of the folder, a stratified
                 train/valid split (sklearn), torchtext's basic_english regexes, a Counter vocabulary
                 with min_freq, and a LongTensor per review for train, valid and test
  dvc repro      `dvc repro vectorize` in a fresh copy of the project: download, split, build_vocab,
                 vectorize as users run them (DVC's own work counted)
  <stage>        each stage's library function (textrnn.pipeline.<stage>.run), timed in one process

    python benchmarks/preprocess_speed.py                 # the embedded IMDB (datasets/imdb)
    python benchmarks/preprocess_speed.py --repeat 3      # each row three times, in turns
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

REPO = Path(__file__).resolve().parents[1]
STAGES = ("download", "split", "build_vocab", "vectorize")

NOTEBOOK = """
import sys
from collections import Counter
import datasets, torch
from sklearn.model_selection import train_test_split
from textrnn.text.tokenizer import tokenize_reference as tokenizer  # torchtext's basic_english regexes
from textrnn.text.vocab import Vocab
datasets.disable_progress_bars()
dataset = datasets.load_dataset(sys.argv[1])
train_df = dataset["train"].to_pandas()
test_df = dataset["test"].to_pandas()
train_df, valid_df = train_test_split(train_df, test_size=0.2, stratify=train_df["label"], random_state=42)
counter = Counter()
for text in train_df["text"]:
    counter.update(tokenizer(text))
vocabulary = Vocab.build(counter, min_freq=5)  # torchtext's vocab(counter, min_freq=5, specials=[...])
def text_pipeline(text):
    return torch.tensor([vocabulary[token] for token in tokenizer(text)], dtype=torch.long)
X_train = [text_pipeline(text) for text in train_df["text"]]
X_valid = [text_pipeline(text) for text in valid_df["text"]]
X_test = [text_pipeline(text) for text in test_df["text"]]
print(len(vocabulary), sum(len(x) for x in X_train))
"""


def timed(command: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started


def fresh_project(work: Path, dataset: Path, env: dict) -> Path:
    project = work / "project"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    for name in ("dvc.yaml", "params.yaml", "stages", "textrnn", ".dvcignore"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, project / name)
    params = (project / "params.yaml").read_text(encoding="utf-8")
    (project / "params.yaml").write_text(params.replace("dataset: datasets/imdb", f"dataset: {dataset}"))
    for command in (
        ["git", "init", "-q"],
        [sys.executable, "-m", "dvc", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "b"],
    ):
        subprocess.run(command, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
    return project


def library_seconds(work: Path, dataset: Path, env: dict) -> dict[str, float]:
    script = (
        "import json, sys, time\nfrom pathlib import Path\nfrom textrnn.core.params import load_params\n"
        "from textrnn.pipeline import download, split, build_vocab, vectorize\n"
        "p = {s: load_params(s, Path(sys.argv[1])) for s in ('download', 'split', 'vocab', 'vectorize')}\n"
        "p['download']['dataset'] = sys.argv[2]\nw = Path(sys.argv[3])\nout = {}\n"
        "steps = [('download', lambda: download.run(p['download'], w / 'raw')),\n"
        "         ('split', lambda: split.run(p['split'], w / 'raw', w / 'split')),\n"
        "         ('build_vocab', lambda: build_vocab.run(p['vocab'], w / 'split', w / 'vocab.txt')),\n"
        "         ('vectorize', lambda: vectorize.run(p['vectorize'], w / 'split', w / 'vocab.txt', w / 'vectors'))]\n"
        "for name, step in steps:\n    t = time.perf_counter(); step(); out[name] = time.perf_counter() - t\n"
        "print(json.dumps(out))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(REPO / "params.yaml"), str(dataset), str(work / "lib")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=str(REPO / "datasets" / "imdb"), help="a folder of parquet files")
    parser.add_argument("--repeat", type=int, default=1, help="run each row this many times, in turns")
    args = parser.parse_args()
    dataset = Path(args.dataset).resolve()
    work = Path(tempfile.mkdtemp(prefix="textrnn-preprocess-"))
    # DVC runs `python stages/...`: this interpreter first on PATH.
    env = dict(
        os.environ,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        TQDM_DISABLE="1",
        HF_DATASETS_CACHE=str(work / "hf-cache"),
        # DVC's usage report runs in a process of its own after each command: on 2 cores it would
        # slow whichever row runs next.
        DVC_NO_ANALYTICS="1",
    )
    # Python caches compiled modules (__pycache__) unless told not to: as users run it, the first
    # stage compiles the fresh copy's modules and the later ones load them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}; "
        f"dataset {dataset}; each row in a fresh process"
    )
    rows: dict[str, list[float]] = {}
    try:
        for _ in range(args.repeat):
            shutil.rmtree(work / "hf-cache", ignore_errors=True)  # the notebook's first load_dataset, every time
            rows.setdefault("notebook", []).append(timed([sys.executable, "-c", NOTEBOOK, str(dataset)], work, env))
            project = fresh_project(work, dataset, env)
            rows.setdefault("dvc repro", []).append(
                timed([sys.executable, "-m", "dvc", "repro", "vectorize"], project, env)
            )
            shutil.rmtree(work / "lib", ignore_errors=True)
            for stage, seconds in library_seconds(work, dataset, env).items():
                rows.setdefault(stage, []).append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    notebook = min(rows["notebook"])
    print(f"{'row':<12} {'best s':>7}  {'runs':<24} {'x notebook':>10}")
    for name, values in rows.items():
        print(
            f"{name:<12} {min(values):7.2f}  {' '.join(f'{v:.2f}' for v in values):<24} {notebook / min(values):9.1f}x"
        )


if __name__ == "__main__":
    main()
