"""train.class_weight and baseline.class_weight: balanced weights as sklearn's, the weighted loss by hand,
and on a 95/5 set, balanced finds the minority class that none misses."""

import json
import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT, make_project, run, synthetic_reviews, write_hf_parquet
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score
from sklearn.utils.class_weight import compute_class_weight

from textrnn import baseline
from textrnn.core.errors import UserError
from textrnn.core.params import load_params, validate
from textrnn.data.vectors import EncodedSplit
from textrnn.model import RNN, ModelConfig, load_checkpoint, loss_function
from textrnn.pipeline import build_vocab, download, split, train, vectorize
from textrnn.scoring.inference import predict_logits
from textrnn.text.encoding import count_tokens, encode_texts
from textrnn.text.vocab import Vocab
from textrnn.training.batching import Batch
from textrnn.training.loop import TrainConfig, balanced_class_weights, train_model, train_step

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def imbalanced_reviews(n: int, seed: int, minority: float = 0.05, max_len: int = 20) -> pd.DataFrame:
    """``n`` synthetic reviews, a share ``minority`` of them positive (class 1), in a shuffled order."""
    frame = synthetic_reviews(4 * n, seed, max_len=max_len)
    positives = round(n * minority)
    parts = [frame[frame.label == 0].head(n - positives), frame[frame.label == 1].head(positives)]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


# ---------------------------------------------------------------- the weights and the loss


@pytest.mark.parametrize("k", [2, 5])
def test_balanced_weights_are_sklearns(k):
    labels = np.random.default_rng(k).choice(k, size=97, p=np.arange(1, k + 1) / (k * (k + 1) / 2))
    weights = balanced_class_weights(labels, [f"c{c}" for c in range(k)])
    np.testing.assert_array_equal(weights, compute_class_weight("balanced", classes=np.arange(k), y=labels))
    assert weights[labels].sum() == pytest.approx(len(labels), rel=1e-12)  # the rows weigh n in all


def test_balanced_weights_refuse_a_class_missing_from_train():
    with pytest.raises(UserError) as error:
        balanced_class_weights(np.array([0, 0, 2]), ["a", "b", "c"])
    assert str(error.value) == (
        "train.class_weight = 'balanced' needs every class in the train split, but class 1 ('b') has no row "
        "there; add rows of it, or set train.class_weight: none"
    )


def test_weighted_binary_loss_is_the_weighted_mean_of_the_rows_bce():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 1.5], dtype=torch.float64)
    labels = torch.tensor([1, 0, 0, 1, 1])
    weights = torch.tensor([0.625, 2.5], dtype=torch.float64)
    # BCE of a logit x: -log sigmoid(x) for class 1, -log(1 - sigmoid(x)) for class 0.
    rows = [
        -math.log(1 / (1 + math.exp(-x))) if y else -math.log(1 - 1 / (1 + math.exp(-x)))
        for x, y in zip(logits.tolist(), labels.tolist(), strict=True)
    ]
    w = [weights[y].item() for y in labels.tolist()]
    weighted_sum = sum(wi * r for wi, r in zip(w, rows, strict=True))
    assert loss_function(2, "sum", weights)(logits, labels).item() == pytest.approx(weighted_sum, rel=1e-12)
    assert loss_function(2, "mean", weights)(logits, labels).item() == pytest.approx(weighted_sum / sum(w), rel=1e-12)
    # Equal weights give the unweighted mean back: the same scale as the default loss.
    ones = torch.ones(2, dtype=torch.float64)
    assert loss_function(2, "mean", ones)(logits, labels).item() == pytest.approx(
        loss_function(2)(logits, labels).item(), rel=1e-12
    )


def test_weighted_k_class_loss_is_the_weighted_mean_of_the_rows_cross_entropy():
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.2, 0.3, 2.0], [-0.5, 1.5, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 2, 2, 1])
    weights = torch.tensor([0.5, 3.0, 1.25], dtype=torch.float64)
    rows = [
        -row[y] + math.log(sum(math.exp(v) for v in row))
        for row, y in zip(logits.tolist(), labels.tolist(), strict=True)
    ]
    w = [weights[y].item() for y in labels.tolist()]
    expected = sum(wi * r for wi, r in zip(w, rows, strict=True)) / sum(w)
    assert loss_function(3, "mean", weights)(logits, labels).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_a_balanced_step_follows_the_gradient_of_the_weighted_mean_loss(k):
    # train_step divides the weighted sum by the batch's summed weights (over every DDP rank): the step of
    # plain SGD with lr 1 must move each weight by minus the gradient of loss_function(k, "mean", weights).
    torch.manual_seed(k)
    model = RNN(ModelConfig(12, 4, 5, num_classes=k))
    tokens = torch.randint(1, 12, (6, 7))
    lengths = torch.tensor([7, 3, 5, 1, 6, 2])
    labels = torch.tensor([0, 1, 0, 0, k - 1, 0])
    weights = torch.tensor([0.4, 2.0, 3.0][:k])
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    loss_function(k, "mean", weights)(model(tokens, lengths), labels).backward()
    expected = {name: before[name] - p.grad for name, p in model.named_parameters()}
    model.zero_grad()

    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    batch = Batch(tokens, lengths, labels, global_rows=6)
    unweighted, minimised, _, stepped = train_step(
        model,
        batch,
        optimizer,
        loss_function(k, "sum"),
        list(model.parameters()),
        None,
        objective=loss_function(k, "sum", weights),
        total_weight=weights[labels].sum().item(),
    )
    assert stepped
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-6, atol=1e-7)
    # What it reports: the unweighted and the weighted sums of the rows' losses.
    with torch.no_grad():
        model.load_state_dict(before)
        logits = model(tokens, lengths)
        assert unweighted.item() == pytest.approx(loss_function(k, "sum")(logits, labels).item(), rel=1e-6)
        assert minimised.item() == pytest.approx(loss_function(k, "sum", weights)(logits, labels).item(), rel=1e-6)


# ---------------------------------------------------------------- what it changes


@pytest.fixture(scope="module")
def imbalanced_splits():
    frames = [imbalanced_reviews(400, 0), imbalanced_reviews(200, 1), imbalanced_reviews(200, 2)]
    vocab = Vocab.build(count_tokens(frames[0]["text"].tolist()))

    def encode(frame):
        ids, offsets = encode_texts(frame["text"].tolist(), vocab)
        return EncodedSplit(ids, offsets, frame["label"].to_numpy(), ["neg", "pos"])

    return vocab, *map(encode, frames)


def test_balanced_finds_the_minority_class_that_none_misses(imbalanced_splits):
    vocab, train_split, valid, test = imbalanced_splits
    scores = {}
    for class_weight in ("none", "balanced"):
        torch.manual_seed(0)
        model = RNN(ModelConfig(len(vocab), 8, 16))
        config = TrainConfig(lr=0.005, batch_size=16, epochs=3, seed=0, class_weight=class_weight)
        result = train_model(model, train_split, valid, config, CPU)
        model.load_state_dict(result.best_state)
        predicted = (predict_logits(model, test, 64, CPU) > 0).numpy().astype(int)
        scores[class_weight] = (recall_score(test.labels, predicted), f1_score(test.labels, predicted, average="macro"))
        history = result.history
        if class_weight == "balanced":  # the best epoch is the one of the lowest weighted valid loss
            assert result.best_epoch == min(history, key=lambda s: s.metrics["valid/weighted_loss"]).epoch
            assert set(history[0].metrics) == {
                f"{s}/{m}" for s in ("train", "valid") for m in ("loss", "accuracy", "weighted_loss")
            }
        else:
            assert set(history[0].metrics) == {f"{s}/{m}" for s in ("train", "valid") for m in ("loss", "accuracy")}
    (none_recall, none_f1), (balanced_recall, balanced_f1) = scores["none"], scores["balanced"]
    assert none_recall == 0.0  # the defaults predict the majority class only
    assert balanced_recall >= 0.5 and balanced_f1 > none_f1 + 0.05, scores


def test_the_train_stage_passes_class_weight_and_its_checkpoint_loads_as_any(tmp_path, monkeypatch):
    monkeypatch.setattr(train, "plot_history", lambda *args: None)
    dataset = tmp_path / "dataset"
    write_hf_parquet(dataset / "train.parquet", imbalanced_reviews(300, 0), ["neg", "pos"])
    write_hf_parquet(dataset / "test.parquet", imbalanced_reviews(100, 1), ["neg", "pos"])
    params = {s: load_params(s, ROOT / "params.yaml") for s in ("download", "split", "vocab", "vectorize", "train")}
    download.run(dict(params["download"], dataset=str(dataset), hub=None), tmp_path / "raw")
    split.run(params["split"], tmp_path / "raw", tmp_path / "split")
    build_vocab.run(dict(params["vocab"], min_freq=1, workers=1), tmp_path / "split", tmp_path / "vocab.txt")
    vectorize.run(
        dict(params["vectorize"], workers=1), tmp_path / "split", tmp_path / "vocab.txt", tmp_path / "vectors"
    )
    small = {"embedding_size": 8, "hidden_size": 16, "epochs": 2, "batch_size": 16, "device": "cpu", "threads": 1}
    train_params = params["train"] | small | {"class_weight": "balanced"}
    train.run(train_params, tmp_path / "vectors", tmp_path / "vocab.txt", tmp_path / "model.pt", tmp_path / "plots")
    checkpoint = load_checkpoint(tmp_path / "model.pt")
    assert checkpoint.model.config == ModelConfig(checkpoint.model.config.vocabulary_size, 8, 16)  # no trace of it
    summary = json.loads((tmp_path / "plots" / "metrics.json").read_text())  # the best epoch's, weighted loss too
    assert {split: set(summary[split]) for split in ("train", "valid")} == {
        split: {"loss", "accuracy", "weighted_loss"} for split in ("train", "valid")
    }


# ---------------------------------------------------------------- the baseline


class _FixedModel:
    """A fitted model stand-in whose valid predictions are fixed: its C picks them."""

    def __init__(self, C, predictions):
        self.C, self.predictions = C, predictions


@pytest.mark.parametrize("class_weight, kept", [("none", 1.0), ("balanced", 4.0)])
def test_balanced_picks_c_by_valid_macro_f1_not_accuracy(monkeypatch, class_weight, kept):
    """90 rows of class 0 and 10 of class 1: C=1 answers 0 everywhere (accuracy 0.9, macro-F1 0.47);
    C=4 finds 8 of the 10 at the cost of 12 others (accuracy 0.86, macro-F1 0.73)."""
    valid_labels = np.array([0] * 90 + [1] * 10)
    leaning = np.array([0] * 78 + [1] * 12 + [1] * 8 + [0] * 2)
    predictions = {1.0: np.zeros(100, dtype=np.int64), 4.0: leaning}
    monkeypatch.setattr(baseline, "fit_model", lambda features, labels, C, weight: _FixedModel(C, predictions[C]))
    monkeypatch.setattr(baseline, "decision_logits", lambda model, features: model.predictions - 0.5)
    model, scores = baseline.pick_model(None, None, None, valid_labels, [1.0, 4.0], class_weight)
    assert kept == model.C
    if class_weight == "balanced":
        assert scores == pytest.approx({C: f1_score(valid_labels, p, average="macro") for C, p in predictions.items()})
    else:
        assert scores == {1.0: 0.9, 4.0: 0.86}


def test_baseline_balanced_is_sklearns_balanced_logistic_regression():
    frame = imbalanced_reviews(300, 3, minority=0.1, max_len=8)
    vectorizer = baseline.NgramTfidf()
    features = vectorizer.fit_transform(frame["text"].tolist())
    labels = frame["label"].to_numpy()
    ours = baseline.fit_model(features, labels, 1.0, "balanced")
    theirs = LogisticRegression(
        C=1.0, class_weight="balanced", solver=baseline.SOLVER, tol=baseline.TOLERANCE, max_iter=baseline.MAX_ITER
    ).fit(features, labels)
    np.testing.assert_array_equal(ours.predict(features), theirs.predict(features))
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-12, atol=1e-12)
    # ... and not the unweighted fit: balanced moves predictions towards the minority class.
    plain = baseline.fit_model(features, labels, 1.0, "none")
    assert ours.predict(features).sum() > plain.predict(features).sum()


# ---------------------------------------------------------------- the params


@pytest.mark.parametrize("section", ["train", "baseline"])
def test_class_weight_takes_none_or_balanced_only(section):
    values = load_params(section, ROOT / "params.yaml")
    assert values["class_weight"] == "none"
    assert validate(section, {**values, "class_weight": "balanced"})["class_weight"] == "balanced"
    for wrong in ("auto", "Balanced", None):
        with pytest.raises(UserError) as error:
            validate(section, {**values, "class_weight": wrong})
        assert str(error.value) == (
            f"params.yaml: {section}.class_weight = {wrong!r} is not allowed; use 'none' or 'balanced'"
        )


# ---------------------------------------------------------------- DDP


@pytest.mark.slow  # the train stage under torchrun
def test_two_gloo_processes_train_the_balanced_weights_of_one_process(tmp_path):
    """Each rank weighs its rows with the whole train split's weights and divides by the batch's weight on
    every rank: two processes take one process's steps. Batches of 29 leave the last one a single row."""
    dataset = tmp_path / "dataset"
    write_hf_parquet(dataset / "train.parquet", imbalanced_reviews(400, 0), ["neg", "pos"])
    write_hf_parquet(dataset / "test.parquet", imbalanced_reviews(40, 1), ["neg", "pos"])
    overrides = {"train": {"epochs": 1, "batch_size": 29, "lr": 0.001, "class_weight": "balanced"}}
    project = make_project(tmp_path / "project", dataset, overrides, git=False)
    for stage in ("download", "split", "build_vocab", "vectorize"):
        run([sys.executable, f"stages/{stage}.py"], project)
    states = []
    for nproc in (1, 2):
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["train"]["nproc"] = nproc
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        assert f"x{nproc}," in run([sys.executable, "stages/train.py"], project).stderr
        states.append(torch.load(project / "models" / "model.pt", weights_only=True)["state_dict"])
    for name in states[0]:
        torch.testing.assert_close(states[1][name], states[0][name], atol=1e-5, rtol=0, msg=name)
