"""The baseline stage: TF-IDF word 1-2 grams + logistic regression, C picked on valid, the RNN's metric names."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_reviews
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from textrnn import baseline
from textrnn.core.errors import UserError
from textrnn.data.splits import SCHEMA, write_labels
from textrnn.pipeline import baseline as stage
from textrnn.scoring import metrics

ON = {"enabled": True, "C": [1, 4, 16], "class_weight": "none"}
EDGE_TEXTS = ["", "a b c", "I", "Ünïcode wörds, ok ok OK!", "re-run re-run <br /> 3.5 x 10", "the the the the"]


def write_split_dir(directory, n_classes=2, noise=0.25, sizes=(240, 80, 80), seed=0):
    """Split files of synthetic reviews, a share ``noise`` of their labels redrawn at random."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    for offset, (name, n) in enumerate(zip(("train", "valid", "test"), sizes, strict=True)):
        frame = synthetic_reviews(n, seed=seed + offset, n_classes=n_classes)
        noisy = rng.random(n) < noise
        frame.loc[noisy, "label"] = rng.integers(0, n_classes, noisy.sum())
        pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), directory / f"{name}.parquet")
    write_labels(directory, ["neg", "pos"] if n_classes == 2 else [f"class{c}" for c in range(n_classes)])
    return directory


def read_split(directory, name):
    frame = pd.read_parquet(directory / f"{name}.parquet")
    return frame["text"].tolist(), frame["label"].to_numpy()


def reference_fit(directory, C):
    """The same baseline, written with sklearn's own vectorizer."""
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    texts, labels = read_split(directory, "train")
    model = LogisticRegression(C=C, solver=baseline.SOLVER, tol=baseline.TOLERANCE, max_iter=baseline.MAX_ITER)
    return vectorizer, model.fit(vectorizer.fit_transform(texts), labels)


def strict_json(path):
    def refuse(constant):
        raise ValueError(constant)

    return json.loads(path.read_text(), parse_constant=refuse)


# ---------------------------------------------------------------- the vectorizer


def test_ngram_tfidf_is_sklearns_tfidf_vectorizer():
    train = synthetic_reviews(300, seed=0)["text"].tolist() + EDGE_TEXTS
    other = synthetic_reviews(100, seed=1)["text"].tolist() + EDGE_TEXTS + ["words never seen before", "great"]
    reference = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    expected = {"train": reference.fit_transform(train), "other": reference.transform(other)}
    ours = baseline.NgramTfidf()
    got = {"train": ours.fit_transform(train), "other": ours.transform(other)}
    assert ours.features == len(reference.vocabulary_)
    for name in got:
        want = expected[name].tocsr()
        want.sort_indices()
        assert got[name].shape == want.shape, name
        assert np.array_equal(got[name].indptr, want.indptr) and np.array_equal(got[name].indices, want.indices), name
        # sklearn normalizes fit_transform's rows before sorting their columns: the sums differ in the last bit
        assert np.allclose(got[name].data, want.data, rtol=1e-15, atol=0), name


def test_ngram_tfidf_refuses_a_train_split_without_words():
    with pytest.raises(UserError, match="no word of two or more letters or digits"):
        baseline.NgramTfidf().fit_transform(["a b", "", "!"])


@pytest.mark.parametrize("n_classes", [2, 3])
def test_decision_logits_are_logits_of_the_rnns_shape(tmp_path, n_classes):
    directory = write_split_dir(tmp_path / "split", n_classes)
    vectorizer, model = reference_fit(directory, 4.0)
    texts, labels = read_split(directory, "test")
    features = vectorizer.transform(texts)
    logits = baseline.decision_logits(model, features)
    assert logits.shape == ((len(labels),) if n_classes == 2 else (len(labels), n_classes))
    expected_loss = log_loss(labels, model.predict_proba(features))
    assert metrics.mean_loss(logits, labels) == pytest.approx(expected_loss, abs=1e-12)
    assert np.array_equal(metrics.predicted_labels(logits), model.predict(features))


# ---------------------------------------------------------------- the stage


@pytest.mark.parametrize("n_classes", [2, 3])
def test_stage_writes_the_metrics_of_the_c_with_the_best_valid_accuracy(tmp_path, n_classes):
    directory = write_split_dir(tmp_path / "split", n_classes)
    result = stage.run(ON, directory, tmp_path / "metrics/baseline.json")
    assert strict_json(tmp_path / "metrics/baseline.json") == result

    valid_texts, valid_labels = read_split(directory, "valid")
    valid_accuracy = {}
    for C in ON["C"]:
        vectorizer, model = reference_fit(directory, C)
        valid_accuracy[C] = model.score(vectorizer.transform(valid_texts), valid_labels)
    assert len(set(valid_accuracy.values())) > 1, "the data must let C matter"
    best = max(ON["C"], key=valid_accuracy.get)  # the first of the best
    vectorizer, model = reference_fit(directory, best)
    names = {"accuracy", "loss", "f1_macro", "majority", "roc_auc" if n_classes == 2 else "roc_auc_macro"}
    assert result["enabled"] is True and result["C"] == best and result["features"] == len(vectorizer.vocabulary_)
    assert set(result) == {"enabled", "C", "features", "train", "valid", "test"}
    for split in ("train", "valid", "test"):
        texts, labels = read_split(directory, split)
        expected = metrics.split_metrics(model.decision_function(vectorizer.transform(texts)), labels)
        assert set(result[split]) == names, split
        assert result[split] == pytest.approx(expected, abs=2e-6), split


def test_c_is_picked_on_valid_never_on_test(tmp_path):
    directory = write_split_dir(tmp_path / "split")
    first = stage.run(ON, directory, tmp_path / "first.json")
    texts, labels = read_split(directory, "test")  # the same test texts with every label flipped
    frame = pd.DataFrame({"text": texts, "label": 1 - labels})
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), directory / "test.parquet")
    second = stage.run(ON, directory, tmp_path / "second.json")
    assert second["C"] == first["C"] and second["valid"] == first["valid"] and second["train"] == first["train"]
    assert second["test"]["accuracy"] == pytest.approx(1 - first["test"]["accuracy"], abs=1e-6)


def test_ties_keep_the_first_c_listed(tmp_path):
    directory = write_split_dir(tmp_path / "split", noise=0.0)  # every C classifies valid perfectly
    assert stage.run({**ON, "C": [16, 1, 4]}, directory, tmp_path / "b.json")["C"] == 16
    assert stage.run({**ON, "C": [4, 16]}, directory, tmp_path / "b.json")["C"] == 4


def test_off_switch_writes_a_file_that_says_so_and_reads_nothing(tmp_path):
    path = tmp_path / "metrics/baseline.json"
    assert stage.run({"enabled": False, "C": [1], "class_weight": "none"}, tmp_path / "no such folder", path) == {
        "enabled": False
    }
    assert strict_json(path) == {"enabled": False}


def test_a_class_missing_from_train_is_refused_and_nothing_is_written(tmp_path):
    directory = write_split_dir(tmp_path / "split", n_classes=3)
    texts, labels = read_split(directory, "train")
    keep = labels != 2
    frame = pd.DataFrame({"text": np.array(texts)[keep], "label": labels[keep]})
    pq.write_table(pa.Table.from_pandas(frame, schema=SCHEMA, preserve_index=False), directory / "train.parquet")
    with pytest.raises(UserError, match=r"class 2 \('class2'\) has no row in the train split"):
        stage.run(ON, directory, tmp_path / "baseline.json")
    assert not (tmp_path / "baseline.json").exists()


def test_a_baseline_that_predicts_one_class_is_warned_about(caplog):
    # Test words never seen in train: every test text scores the intercept, i.e. train's majority class.
    texts = {
        "train": [f"trainword{i} common" for i in range(40)],
        "valid": ["validword common"] * 10,
        "test": [f"testword{i}" for i in range(20)],
    }
    labels = {"train": np.array([0] * 36 + [1] * 4), "valid": np.array([0] * 9 + [1]), "test": np.array([0, 1] * 10)}
    result = baseline.fit_and_score(texts, labels, ["neg", "pos"], [1.0])
    assert result["test"]["accuracy"] == 0.5 and result["test"]["majority"] == 0.5
    assert result["test"]["roc_auc"] == 0.5  # one score for all: every pair ties
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "baseline: the model predicts 'neg' for 100.0% of the test rows, whose most frequent class 'neg' is "
        "only 50.0% of them: it has learnt little beyond the class shares (see f1_macro)"
    ]
