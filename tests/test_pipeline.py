"""End to end on a tiny dataset: dvc repro, an experiment, metrics/params/plots diffs, determinism."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import reproduced_project, run

from textrnn.data.vectors import open_split, read_meta
from textrnn.model import load_checkpoint
from textrnn.scoring.inference import predict_logits
from textrnn.text import tokenizer
from textrnn.text.encoding import count_tokens, encode_texts
from textrnn.text.vocab import Vocab

pytestmark = pytest.mark.slow  # end to end: dvc repro, dvc exp run

DVC = [sys.executable, "-m", "dvc"]
EPOCHS = 3  # conftest.SMALL_PARAMS
STAGES = 7  # download, split, build_vocab, vectorize, train, evaluate, baseline
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    return reproduced_project(tmp_path_factory.mktemp("pipeline"))


def test_repro_creates_every_output(project):
    metrics = json.loads((project / "metrics/metrics.json").read_text())
    assert set(metrics) == {"train", "valid", "test"}
    for split, values in metrics.items():
        assert list(values) == ["accuracy", "loss", "f1_macro", "majority", "roc_auc"], split
        assert 0 <= values["accuracy"] <= 1 and 0 < values["loss"] < 1, (split, values)

    for name in ("train", "test"):
        assert (project / f"data/raw/{name}.parquet").is_file()
    splits = {name: pd.read_parquet(project / f"data/split/{name}.parquet") for name in ("train", "valid", "test")}
    assert {name: len(frame) for name, frame in splits.items()} == {"train": 192, "valid": 48, "test": 120}
    assert json.loads((project / "data/split/labels.json").read_text()) == {"names": ["neg", "pos"]}

    # The vocabulary is built from the train split only, with min_freq 1.
    vocab = Vocab.load(project / "data/vocab.txt")
    expected = Vocab.build(count_tokens(splits["train"]["text"].tolist()), min_freq=1)
    assert vocab.itos == expected.itos
    for name, frame in splits.items():
        vectors = open_split(project / "data/vectors", name, len(vocab))
        ids, offsets = encode_texts(frame["text"].tolist(), vocab)
        assert np.array_equal(vectors.ids, ids) and np.array_equal(vectors.offsets, offsets), name
        assert np.array_equal(vectors.labels, frame["label"].to_numpy()), name
        assert vectors.label_names == ["neg", "pos"]
    meta = read_meta(project / "data/vectors")
    assert meta["vocab_sha256"] == vocab.fingerprint() and meta["tokenizer"] == tokenizer.fingerprint()
    assert meta["splits"] == {
        name: {"reviews": len(frame), "tokens": int(sum(len(tokenizer.tokenize(t)) for t in frame["text"]))}
        for name, frame in splits.items()
    }

    checkpoint = load_checkpoint(project / "models/model.pt")
    model = checkpoint.model
    assert (model.config.vocabulary_size, model.config.embedding_size, model.config.hidden_size) == (len(vocab), 8, 16)
    assert checkpoint.label_names == ["neg", "pos"] and checkpoint.metadata["train_device"] == "cpu"
    assert checkpoint.inputs == {
        "vocab_sha256": vocab.fingerprint(),
        "tokenizer": tokenizer.fingerprint(),
        "max_tokens": None,
    }
    # metrics.json holds what the saved checkpoint scores.
    test = open_split(project / "data/vectors", "test")
    logits = predict_logits(model, test, 64, torch.device("cpu"))
    assert metrics["test"]["accuracy"] == round(float(((logits > 0).numpy() == test.labels).mean()), 6)

    for split in ("train", "valid"):
        for metric in ("loss", "accuracy"):
            table = pd.read_csv(project / f"plots/training/plots/metrics/{split}/{metric}.tsv", sep="\t")
            assert list(table.columns) == ["step", metric]
            assert table["step"].tolist() == list(range(1, EPOCHS + 1))
            assert table[metric].between(0, 10).all()
    for png in (
        "plots/training/loss.png",
        "plots/training/accuracy.png",
        "plots/evaluation/confusion.png",
        "plots/evaluation/roc.png",
    ):
        assert (project / png).read_bytes()[:8] == PNG, png
    confusion = json.loads((project / "metrics/plots/confusion.json").read_text())
    cells = [(row["actual"], row["predicted"]) for row in confusion]  # the diagonal, then non-zero cells off it
    assert cells[:2] == [("neg", "neg"), ("pos", "pos")]
    assert cells[2:] == [cell for cell in [("neg", "pos"), ("pos", "neg")] if cell in cells[2:]]
    assert all(row["count"] > 0 for row in confusion[2:])
    assert sum(row["count"] for row in confusion) == 120
    roc = json.loads((project / "metrics/plots/roc.json").read_text())
    assert {row["class"] for row in roc} == {"pos"}
    assert (roc[0]["fpr"], roc[0]["tpr"], roc[-1]["fpr"], roc[-1]["tpr"]) == (0.0, 0.0, 1.0, 1.0)
    baseline = json.loads((project / "metrics/baseline.json").read_text())
    assert baseline["enabled"] is True and list(baseline["test"]) == list(metrics["test"])  # the same names


def test_repro_with_nothing_changed_runs_no_stage(project):
    output = run(DVC + ["repro"], project)
    text = output.stdout + output.stderr
    assert "Running stage" not in text
    assert "Data and pipelines are up to date" in text


def test_forced_repro_gives_identical_metrics_bytes(project):
    before = (project / "metrics/metrics.json").read_bytes()
    output = run(DVC + ["repro", "-f"], project)
    assert output.stdout.count("Running stage") == STAGES
    assert (project / "metrics/metrics.json").read_bytes() == before


def test_training_again_gives_the_same_bytes_so_dvc_sees_nothing_new(project):
    lock = (project / "dvc.lock").read_bytes()
    model = (project / "models/model.pt").read_bytes()
    run([sys.executable, "stages/train.py"], project)
    assert (project / "models/model.pt").read_bytes() == model
    output = run(DVC + ["repro", "-f", "train"], project)
    assert "Running stage 'train'" in output.stdout
    assert "Running stage 'evaluate'" not in output.stdout
    assert (project / "dvc.lock").read_bytes() == lock  # every output's hash, the checkpoint's included
    assert json.loads(run(DVC + ["status", "--json"], project).stdout) == {}
    assert "Running stage" not in run(DVC + ["repro"], project).stdout  # evaluate has nothing new to score


TRAINING_STAGES = ("download", "split", "build_vocab", "vectorize", "train")


def test_an_empty_dvc_lock_is_recovered_from_git_or_from_the_run_cache(project, tmp_path):
    """A SIGKILL while DVC writes dvc.lock can leave it empty; DVC then refuses every command."""
    copy = Path(shutil.copytree(project, tmp_path / "copy", symlinks=True))
    run(["git", "add", "-A"], copy)
    run(["git", "commit", "-qm", "reproduced"], copy)
    lock = (copy / "dvc.lock").read_bytes()
    (copy / "dvc.lock").write_bytes(b"")
    for command in (["status"], ["checkout"], ["repro"]):
        result = run(DVC + command, copy, check=False)
        assert result.returncode != 0, command
        assert "'./dvc.lock' validation failed" in result.stdout + result.stderr, command

    run(["git", "checkout", "dvc.lock"], copy)  # the last committed one
    assert json.loads(run(DVC + ["status", "--json"], copy).stdout) == {}

    (copy / "dvc.lock").write_bytes(b"")
    (copy / "dvc.lock").unlink()  # or none at all: the run cache knows every stage that ran
    output = run(DVC + ["repro"], copy).stdout
    for name in TRAINING_STAGES:
        assert f"Stage '{name}' is cached - skipping run, checking out outputs" in output, name
    assert "Running stage 'train'" not in output  # nothing is trained again
    assert (copy / "dvc.lock").read_bytes() == lock
    assert json.loads(run(DVC + ["status", "--json"], copy).stdout) == {}
