"""Golden results: the exact metrics of small training runs, pinned, so that no change moves results unnoticed.

A rounding change can move a run's figures on one dataset and not on another (a854e83 moved
trec6's and left IMDB's bytes equal, docs/reproducibility.md): each case below is one dataset
shape (binary, k classes, a few tokens per text, a dataset with its own validation split) or one
cell, trained by the train stage's own code for a few epochs on synthetic data made here, then
scored by the evaluate stage's code. Its metrics are compared digit for digit with GOLDEN (as
metrics.json writes them, rounded to 6 decimals), and the best epoch's weights by their sha256.

The pins hold where the project promises the same bytes (x86-64 with AVX2 and FMA, textrnn's
kernels built, the pinned torch, one thread); elsewhere the test skips and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from conftest import ROOT, synthetic_reviews, write_hf_parquet

from textrnn import accel
from textrnn.core import cpu_dispatch
from textrnn.core.params import load_params
from textrnn.data.vectors import open_split
from textrnn.model import cells, load_checkpoint
from textrnn.pipeline import baseline, build_vocab, download, split, train, vectorize
from textrnn.scoring.inference import predict_logits
from textrnn.scoring.metrics import split_metrics

PINNED_TORCH = next(
    line.split("==")[1].strip()
    for line in (ROOT / "requirements.txt").read_text().splitlines()
    if line.startswith("torch==")
)
MOVED = (
    "results moved: if on purpose, update GOLDEN in tests/test_golden.py and say so in the commit message, "
    "and rerun `textrnn results` (README.md's Results table)"
)


def _skip_reason() -> str | None:
    pins = cpu_dispatch.describe()
    if pins.get("ATEN_CPU_CAPABILITY") != "avx2" or pins.get("MKL_CBWR") != "COMPATIBLE":
        return f"the pinned figures are those of x86-64 with AVX2 and FMA (pins here: {pins})"
    if not accel.available() or os.environ.get(accel.SWITCH) == "0":
        return "textrnn's kernels are off or not built here (no C++ compiler): other rounding"
    if torch.__version__.split("+")[0] != PINNED_TORCH:
        return f"torch {torch.__version__}, not requirements.txt's {PINNED_TORCH}: other kernels"
    return None


SKIP_REASON = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

# Each case: how its dataset is made, and the train params it changes from params.yaml's.
SHAPES = {
    # The notebook's cell and readout (the accel kernels' path), two classes: one logit, BCE.
    "binary": {"data": {"n_classes": 2, "min_len": 3, "max_len": 40}, "train": {}},
    # Six classes of long texts: k logits, cross-entropy, macro-F1.
    "six_classes": {"data": {"n_classes": 6, "min_len": 3, "max_len": 40}, "train": {}},
    # trec6's shape: six classes, a few tokens each.
    "short_texts": {"data": {"n_classes": 6, "min_len": 2, "max_len": 8}, "train": {}},
    # The dataset's own validation split (no stratified carving of train).
    "own_validation": {"data": {"n_classes": 2, "min_len": 3, "max_len": 40, "validation": True}, "train": {}},
    # Other cells and readouts: a bidirectional GRU read by its mean, and the preset's LSTM read by its max.
    "gru_bidirectional_mean": {
        "data": {"n_classes": 2, "min_len": 3, "max_len": 16},
        "train": {"cell": "gru", "bidirectional": True, "readout": "mean"},
    },
    "lstm_max_preset": {
        "data": {"n_classes": 6, "min_len": 2, "max_len": 8},
        "train": {"cell": "lstm", "readout": "max", "dropout": 0.3, "optimizer": "adam", "lr": 0.003, "max_tokens": 6},
    },
}
SMALL = {"embedding_size": 8, "hidden_size": 16, "epochs": 6, "batch_size": 16, "lr": 0.01}
# 333 train rows: carved or not, the last batch of each epoch holds a few rows (trec6's 4,361 leave 9),
# so that its rows x steps is not a multiple of 4 (docs/reproducibility.md: what a854e83 changed).
ROWS = {"train": 333, "test": 120, "validation": 80}

GOLDEN: dict[str, dict] = {
    "binary": {
        "best_epoch": 6,
        "metrics": {
            "train": {
                "accuracy": 0.988722,
                "loss": 0.048342,
                "f1_macro": 0.988722,
                "majority": 0.5,
                "roc_auc": 0.999661,
            },
            "valid": {"accuracy": 1.0, "loss": 0.027003, "f1_macro": 1.0, "majority": 0.507463, "roc_auc": 1.0},
            "test": {"accuracy": 0.95, "loss": 0.154411, "f1_macro": 0.95, "majority": 0.5, "roc_auc": 0.981389},
        },
        "state_sha256": "b02a78fad4bce5c80e6d72b1595f1788e4da29396171c373e9ff85e1bb180950",
    },
    "six_classes": {
        "best_epoch": 6,
        "metrics": {
            "train": {
                "accuracy": 0.725564,
                "loss": 0.876689,
                "f1_macro": 0.724318,
                "majority": 0.169173,
                "roc_auc_macro": 0.934701,
            },
            "valid": {
                "accuracy": 0.492537,
                "loss": 1.350381,
                "f1_macro": 0.48774,
                "majority": 0.179104,
                "roc_auc_macro": 0.820617,
            },
            "test": {
                "accuracy": 0.383333,
                "loss": 1.588141,
                "f1_macro": 0.375085,
                "majority": 0.166667,
                "roc_auc_macro": 0.75575,
            },
        },
        "state_sha256": "a5b653ff53a0edb0c5504c227dfe5711a9a6cb1c7a03f16552c26b1f6acc6cc2",
    },
    "short_texts": {
        "best_epoch": 6,
        "metrics": {
            "train": {
                "accuracy": 0.676692,
                "loss": 0.959751,
                "f1_macro": 0.678318,
                "majority": 0.169173,
                "roc_auc_macro": 0.920411,
            },
            "valid": {
                "accuracy": 0.343284,
                "loss": 1.566141,
                "f1_macro": 0.354228,
                "majority": 0.179104,
                "roc_auc_macro": 0.735083,
            },
            "test": {
                "accuracy": 0.458333,
                "loss": 1.526073,
                "f1_macro": 0.461051,
                "majority": 0.166667,
                "roc_auc_macro": 0.73975,
            },
        },
        "state_sha256": "551f4b75009d78dd15a5c55c308fa4c960000547ad50aa49071d7fc7fa24e373",
    },
    "own_validation": {
        "best_epoch": 6,
        "metrics": {
            "train": {
                "accuracy": 0.987988,
                "loss": 0.067664,
                "f1_macro": 0.987985,
                "majority": 0.501502,
                "roc_auc": 0.989503,
            },
            "valid": {"accuracy": 0.9875, "loss": 0.075221, "f1_macro": 0.987498, "majority": 0.5, "roc_auc": 0.996875},
            "test": {
                "accuracy": 0.991667,
                "loss": 0.062149,
                "f1_macro": 0.991666,
                "majority": 0.5,
                "roc_auc": 0.988611,
            },
        },
        "state_sha256": "0598d1a834f6b7a7ccf718ef53856adfcf2a6dd188468a30764b154e60536f0f",
    },
    "gru_bidirectional_mean": {
        "best_epoch": 5,
        "metrics": {
            "train": {
                "accuracy": 0.992481,
                "loss": 0.026418,
                "f1_macro": 0.992481,
                "majority": 0.5,
                "roc_auc": 0.999887,
            },
            "valid": {
                "accuracy": 0.985075,
                "loss": 0.047892,
                "f1_macro": 0.985075,
                "majority": 0.507463,
                "roc_auc": 0.998217,
            },
            "test": {"accuracy": 0.975, "loss": 0.063662, "f1_macro": 0.974998, "majority": 0.5, "roc_auc": 0.997778},
        },
        "state_sha256": "d96ad35a053cf97cd3ec62875233152af9712e0450f5738cc30008a1f3f155c5",
    },
    "lstm_max_preset": {
        "best_epoch": 6,
        "metrics": {
            "train": {
                "accuracy": 0.477444,
                "loss": 1.719413,
                "f1_macro": 0.461377,
                "majority": 0.169173,
                "roc_auc_macro": 0.743271,
            },
            "valid": {
                "accuracy": 0.343284,
                "loss": 1.739751,
                "f1_macro": 0.291295,
                "majority": 0.179104,
                "roc_auc_macro": 0.648593,
            },
            "test": {
                "accuracy": 0.466667,
                "loss": 1.735969,
                "f1_macro": 0.428468,
                "majority": 0.166667,
                "roc_auc_macro": 0.710667,
            },
        },
        "state_sha256": "b839159dad3b96bbd1d23369bcd2e825f3feeab0bef0201f9e4c17e30d23dc4b",
    },
}
GOLDEN_BASELINE = {
    "enabled": True,
    "C": 1,
    "features": 570,
    "train": {
        "accuracy": 0.973684,
        "loss": 0.73204,
        "f1_macro": 0.973811,
        "majority": 0.169173,
        "roc_auc_macro": 0.999608,
    },
    "valid": {
        "accuracy": 0.80597,
        "loss": 0.889353,
        "f1_macro": 0.799048,
        "majority": 0.179104,
        "roc_auc_macro": 0.973485,
    },
    "test": {"accuracy": 0.9, "loss": 0.892606, "f1_macro": 0.899958, "majority": 0.166667, "roc_auc_macro": 0.977167},
}


def make_dataset(directory: Path, n_classes: int, min_len: int, max_len: int, validation: bool = False) -> Path:
    names = ["neg", "pos"] if n_classes == 2 else [f"class{c}" for c in range(n_classes)]
    splits = {"train": 0, "test": 1} | ({"validation": 2} if validation else {})
    for name, seed in splits.items():
        frame = synthetic_reviews(ROWS[name], seed, n_classes, min_len, max_len)
        write_hf_parquet(directory / f"{name}.parquet", frame, names)
    return directory


def state_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def prepare(work: Path, shape: dict) -> Path:
    """download -> split -> build_vocab -> vectorize at params.yaml's values, min_freq 1; the vectors' folder."""
    dataset = make_dataset(work / "dataset", **shape["data"])
    params = {s: load_params(s, ROOT / "params.yaml") for s in ("download", "split", "vocab", "vectorize")}
    download.run(dict(params["download"], dataset=str(dataset), hub=None), work / "raw")
    split.run(params["split"], work / "raw", work / "split")
    build_vocab.run(dict(params["vocab"], min_freq=1, workers=1), work / "split", work / "vocab.txt")
    vectorize.run(dict(params["vectorize"], workers=1), work / "split", work / "vocab.txt", work / "vectors")
    return work / "vectors"


def train_and_score(work: Path, shape: dict) -> dict:
    """The train stage's run (the PNGs of its curves left out: 1.6 s, and no figure), then evaluate's scoring."""
    vectors = prepare(work, shape)
    params = load_params("train", ROOT / "params.yaml") | SMALL | {"device": "cpu", "threads": 1} | shape["train"]
    train.run(params, vectors, work / "vocab.txt", work / "model.pt", work / "plots")
    checkpoint = load_checkpoint(work / "model.pt")
    metrics = {}
    for name in ("train", "valid", "test"):
        data = open_split(vectors, name, checkpoint.model.config.vocabulary_size)
        logits = predict_logits(checkpoint.model, data, 512, torch.device("cpu"), checkpoint.inputs["max_tokens"])
        metrics[name] = split_metrics(logits, data.labels)
    return {
        "best_epoch": checkpoint.metadata["best_epoch"],
        "metrics": metrics,
        "state_sha256": state_sha256(checkpoint.model.state_dict()),
    }


@pytest.mark.parametrize("name", list(SHAPES))
def test_training_results_are_the_pinned_ones(tmp_path, monkeypatch, name):
    monkeypatch.setattr(train, "plot_history", lambda *args: None)
    got = train_and_score(tmp_path, SHAPES[name])
    print(name, json.dumps(got))
    assert got == GOLDEN[name], MOVED


def test_baseline_results_are_the_pinned_ones(tmp_path):
    shape = SHAPES["short_texts"]
    dataset = make_dataset(tmp_path / "dataset", **shape["data"])
    params = {s: load_params(s, ROOT / "params.yaml") for s in ("download", "split", "baseline")}
    download.run(dict(params["download"], dataset=str(dataset), hub=None), tmp_path / "raw")
    split.run(params["split"], tmp_path / "raw", tmp_path / "split")
    got = baseline.run(params["baseline"], tmp_path / "split", tmp_path / "baseline.json")
    print(json.dumps(got))
    assert got == GOLDEN_BASELINE, MOVED
    assert json.loads((tmp_path / "baseline.json").read_text()) == GOLDEN_BASELINE


def test_the_pins_catch_a_rounding_change_like_a854e83s(tmp_path, monkeypatch):
    """The projection W x_t + b by MKL's product, as before a854e83: other bits in the last rows of a batch
    whose rows x steps is not a multiple of 4, as trec6's last batch of 9 rows; the short texts' run moves."""
    monkeypatch.setattr(train, "plot_history", lambda *args: None)
    monkeypatch.setattr(cells, "_projected", lambda x, W, U: torch.nn.functional.linear(x, W.weight, W.bias + U.bias))
    got = train_and_score(tmp_path, SHAPES["short_texts"])
    assert got["state_sha256"] != GOLDEN["short_texts"]["state_sha256"]
    assert got["metrics"] != GOLDEN["short_texts"]["metrics"]
