"""Shared test helpers: small synthetic datasets and throwaway copies of the project."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# The files a fresh clone has; everything a test repo needs to run the pipeline.
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "textrnn", "presets", ".dvcignore"]

POSITIVE = ["great", "wonderful", "superb", "loved", "brilliant", "moving", "fun", "best"]
NEGATIVE = ["awful", "boring", "terrible", "hated", "worst", "dull", "waste", "bad"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "scene", "story", "a", "was", "and", "it", "this"]


def synthetic_reviews(n: int, seed: int = 0, n_classes: int = 2, min_len: int = 3, max_len: int = 40) -> pd.DataFrame:
    """Reviews whose label is readable from their words: class c draws from its own word list."""
    rng = np.random.default_rng(seed)
    class_words = (
        [NEGATIVE, POSITIVE]
        if n_classes == 2
        else [[f"{w}{c}" for w in ("alpha", "beta", "gamma", "delta", "omega")] for c in range(n_classes)]
    )
    texts, labels = [], []
    for i in range(n):
        label = i % n_classes
        length = int(rng.integers(min_len, max_len + 1))
        own = class_words[label]
        # words[rng.integers(len(words))] draws as rng.choice(words) does, without making an array each word
        words = [
            own[rng.integers(len(own))] if rng.random() < 0.35 else NEUTRAL[rng.integers(len(NEUTRAL))]
            for _ in range(length)
        ]
        punctuation = rng.choice(["", ".", "!", " <br />"], size=length)
        texts.append(" ".join(w + p for w, p in zip(words, punctuation, strict=True)).capitalize())
        labels.append(label)
    return pd.DataFrame({"text": texts, "label": np.array(labels, dtype=np.int64)})


def write_hf_parquet(path: Path, frame: pd.DataFrame, label_names: list[str] | None = None) -> None:
    """Write ``frame`` as HF datasets writes parquet: with a ClassLabel in the schema metadata when named."""
    import json

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if label_names is not None:
        features = {
            "text": {"dtype": "string", "_type": "Value"},
            "label": {"names": label_names, "_type": "ClassLabel"},
        }
        table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def make_dataset_dir(
    directory: Path,
    n_train: int = 240,
    n_test: int = 120,
    n_classes: int = 2,
    label_names: list[str] | None = None,
    with_test: bool = True,
) -> Path:
    """A local HF-style dataset folder (train.parquet, test.parquet) of synthetic reviews."""
    if label_names is None:
        label_names = ["neg", "pos"] if n_classes == 2 else [f"class{c}" for c in range(n_classes)]
    write_hf_parquet(directory / "train.parquet", synthetic_reviews(n_train, 0, n_classes), label_names)
    if with_test:
        write_hf_parquet(directory / "test.parquet", synthetic_reviews(n_test, 1, n_classes), label_names)
    return directory


# Tests of CPU behaviour say so (device: cpu): on a machine with a GPU, `auto` would pick cuda.
SMALL_PARAMS: dict[str, dict[str, object]] = {
    "vocab": {"min_freq": 1},
    "train": {"embedding_size": 8, "hidden_size": 16, "epochs": 3, "batch_size": 16, "lr": 0.01, "device": "cpu"},
    "evaluate": {"batch_size": 64, "device": "cpu"},
}


def run(cmd: list[str], cwd: Path, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command with the test's Python first on PATH (so DVC stages use it) and capture its output."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("DVC_EXP_BASELINE_REV", None)
    env.update(kwargs.pop("env", {}))
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_project(
    directory: Path, dataset: Path, overrides: dict[str, dict[str, object]] | None = None, git: bool = True
) -> Path:
    """A copy of the project in ``directory`` that trains on ``dataset``, as a git + DVC repo with one commit."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy2(source, directory / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["download"]["dataset"] = str(dataset)
    for layer in (SMALL_PARAMS, overrides or {}):  # overrides change single keys, not whole sections
        for section, values in layer.items():
            params[section].update(values)
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    if git:
        run(["git", "init", "-q"], directory)
        run(["git", "config", "user.email", "test@example.com"], directory)
        run(["git", "config", "user.name", "test"], directory)
        run([sys.executable, "-m", "dvc", "init", "-q"], directory)
        shutil.copy2(ROOT / ".dvc" / "config", directory / ".dvc" / "config")  # plots.html_template: the offline page
        run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], directory)
    shutil.copytree(ROOT / ".dvc" / "plots", directory / ".dvc" / "plots", dirs_exist_ok=True)  # plot templates
    if git:
        run(["git", "add", "-A"], directory)
        run(["git", "commit", "-qm", "project"], directory)
    return directory


def reproduced_project(root: Path) -> Path:
    """A fresh git + DVC copy of the project in ``root`` on 240 train / 120 test synthetic reviews, reproduced once."""
    dataset = make_dataset_dir(root / "dataset", n_train=240, n_test=120)
    directory = make_project(root / "project", dataset)
    run([sys.executable, "-m", "dvc", "repro"], directory)
    return directory


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    return make_dataset_dir(tmp_path / "dataset")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One torch thread for the tests run in this process: their tensors are tiny, and on a shared
    machine a second OpenMP thread mostly waits for a core (a test then runs many times slower)."""
    torch = sys.modules.get("torch")  # imported by the test modules that need it; no import otherwise
    if torch is not None:
        torch.set_num_threads(1)
    yield


# Slow tests in modules whose owners are still changing them: marked here rather than in the module.
# `pytest -m "not slow"` leaves them out; `pytest` runs them.
SLOW_ELSEWHERE = {
    "test_accel.py::test_kernel_equals_torch_rnn_tanh_on_long_reviews",
    "test_accel.py::test_kernel_equals_step_loop_logits_and_every_gradient[2-256]",
    "test_accel.py::test_kernel_equals_step_loop_logits_and_every_gradient[3-256]",
    "test_accel.py::test_every_isa_level_gives_the_same_bytes",  # builds the kernels once per ISA level
    "test_accel.py::test_a_fresh_build_compiles_once_then_loads_from_the_cache",  # subprocesses that build
    "test_accel.py::test_a_damaged_cached_library_is_rebuilt_not_loaded",
    "test_accel.py::test_concurrent_first_builds_share_one_intact_library",
    "test_encoding.py::test_many_short_pools_never_hang_with_our_signal_handlers_installed",
    "test_evaluation.py::test_plot_data_is_small_and_strict_for_many_rows[20-20000]",
}


# Under pytest-xdist (--dist loadfile) each file runs whole on one worker, in collection order:
# the longest files go first, so that no worker is left alone with a long one at the end.
LONGEST_FIRST = (
    "test_pipeline.py",
    "test_dvc_experiments.py",
    "test_faults.py",
    "test_distributed.py",
    "test_multiclass.py",
    "test_remote.py",
    "test_predict.py",
    "test_accel.py",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if {f"{item.path.name}::{item.name}", f"{item.path.name}::{item.originalname}"} & SLOW_ELSEWHERE:
            item.add_marker(pytest.mark.slow)
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept
