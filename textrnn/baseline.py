"""The bag-of-words baseline: TF-IDF of word 1-2 grams (sublinear tf) + logistic regression.

Fit on train; C is picked on valid (the best accuracy, the first listed on ties); scored with the
RNN's metrics (textrnn.scoring.metrics), its decision function standing for the logits.
"""

from __future__ import annotations

import functools
import itertools
import logging
import re
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from textrnn.core.errors import UserError
from textrnn.scoring import metrics

log = logging.getLogger("textrnn")

# newton-cg: a few Newton steps on sparse data, for two classes or k (multinomial) alike, at
# sklearn's default tolerance; lbfgs needs many more cheap steps to the same point (docs/decisions.md).
SOLVER, TOLERANCE, MAX_ITER = "newton-cg", 1e-4, 1000

# sklearn's default token_pattern, applied to the lowercased text, as TfidfVectorizer does.
WORD = re.compile(r"(?u)\b\w\w+\b")
CHUNK_TEXTS = 4096  # texts whose word lists are held at once


class NgramTfidf:
    """TF-IDF of word 1-2 grams with sublinear tf: the matrix of sklearn's
    ``TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)``, columns in its order (tested equal).

    TfidfVectorizer looks every n-gram up in a dict in Python; here each word is looked up once,
    and word pairs are counted as integer codes with numpy (benchmarks/baseline_speed.py compares them).
    """

    def __init__(self) -> None:
        self.word_ids: dict[str, int] = {}
        self.pair_codes = np.zeros(0, np.int64)  # sorted codes first * words + second of the pairs seen in fit
        self.column_of = np.zeros(0, np.int64)  # column of word i, then of pair j at len(word_ids) + j
        self.tfidf = TfidfTransformer(sublinear_tf=True)

    @property
    def features(self) -> int:
        return len(self.column_of)

    def fit_transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        chunks = []
        for start in range(0, len(texts), CHUNK_TEXTS):
            words = self._words(texts[start : start + CHUNK_TEXTS])
            for word in dict.fromkeys(itertools.chain.from_iterable(words)):  # the chunk's words, once each
                if word not in self.word_ids:
                    self.word_ids[word] = len(self.word_ids)
            chunks.append(self._ids(words))
        if not self.word_ids:
            raise UserError(
                "the train split has no word of two or more letters or digits: the baseline has nothing to learn from"
            )
        pairs = [self._pairs(ids, lengths) for ids, lengths in chunks]
        codes = np.concatenate(pairs)
        order = np.argsort(codes)
        ordered = codes[order]
        first_of_run = np.r_[True, ordered[1:] != ordered[:-1]]
        place = np.empty(len(codes), np.int64)
        place[order] = np.cumsum(first_of_run) - 1  # each pair's index among the distinct codes
        distinct = ordered[first_of_run]
        offset = int(distinct[0] < 0) if len(distinct) else 0  # -1 (no pair) is not a feature
        self.pair_codes = distinct[offset:]
        self.column_of = self._sorted_columns()
        counts, start = [], 0
        for (ids, lengths), chunk_pairs in zip(chunks, pairs, strict=True):
            counts.append(self._counts(ids, lengths, chunk_pairs, place[start : start + len(chunk_pairs)] - offset))
            start += len(chunk_pairs)
        counts = sparse.vstack(counts, "csr")
        return self.tfidf.fit(counts).transform(counts)

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        counts = []
        for start in range(0, len(texts), CHUNK_TEXTS):
            ids, lengths = self._ids(self._words(texts[start : start + CHUNK_TEXTS]))
            pairs = self._pairs(ids, lengths)
            counts.append(self._counts(ids, lengths, pairs, self._pair_index.get_indexer(pairs)))
        return self.tfidf.transform(sparse.vstack(counts, "csr"))

    @staticmethod
    def _words(texts: Sequence[str]) -> list[list[str]]:
        return [WORD.findall(text.lower()) for text in texts]

    def _ids(self, words: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Every word's id (-1 when unseen in fit), and each text's number of words."""
        lengths = np.fromiter(map(len, words), np.int64, len(words))
        every_word = itertools.chain.from_iterable(words)
        ids = np.fromiter(map(self.word_ids.get, every_word, itertools.repeat(-1)), np.int64, int(lengths.sum()))
        return ids, lengths

    def _pairs(self, ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The code of each word and the next one in its text (-1 at a text's end or for unseen words)."""
        if len(ids) < 2:
            return np.zeros(0, np.int64)
        codes = ids[:-1] * len(self.word_ids) + ids[1:]
        last = (np.cumsum(lengths) - 1)[lengths > 0]
        codes[last[last < len(codes)]] = -1
        codes[(ids[:-1] < 0) | (ids[1:] < 0)] = -1
        return codes

    def _sorted_columns(self) -> np.ndarray:
        """Columns in the order of the n-grams' text, as TfidfVectorizer sorts its vocabulary."""
        words = list(self.word_ids)
        first, second = np.divmod(self.pair_codes, len(words))
        names = words + [f"{words[a]} {words[b]}" for a, b in zip(first.tolist(), second.tolist(), strict=True)]
        order = sorted(range(len(names)), key=names.__getitem__)
        column_of = np.empty(len(names), np.int64)
        column_of[order] = np.arange(len(names))
        return column_of

    def _counts(
        self, ids: np.ndarray, lengths: np.ndarray, pairs: np.ndarray, pair_place: np.ndarray
    ) -> sparse.csr_matrix:
        """Counts [texts, features]; ``pair_place``: each pair's index in ``pair_codes``, -1 if not there."""
        text_of_word = np.repeat(np.arange(len(lengths)), lengths)
        known_word, known_pair = ids >= 0, (pairs >= 0) & (pair_place >= 0)
        rows = np.concatenate([text_of_word[known_word], text_of_word[: len(pairs)][known_pair]])
        columns = self.column_of[np.concatenate([ids[known_word], len(self.word_ids) + pair_place[known_pair]])]
        counts = sparse.csr_matrix((np.ones(len(rows)), (rows, columns)), shape=(len(lengths), self.features))
        counts.sum_duplicates()  # also sorts each row's columns
        return counts

    @functools.cached_property
    def _pair_index(self) -> pd.Index:
        return pd.Index(self.pair_codes)  # a hash table: faster than a binary search per pair


def decision_logits(model: LogisticRegression, features: sparse.spmatrix) -> np.ndarray:
    """The decision function: [n] log-odds of class 1 for two classes, [n, k] whose softmax is
    predict_proba otherwise; the RNN's logits have the same shapes and meaning."""
    return model.decision_function(features).astype(np.float64)


def fit_model(
    features: sparse.spmatrix, labels: np.ndarray, C: float, class_weight: str = "none"
) -> LogisticRegression:
    """``class_weight``: none, or balanced (each row weighs n / (k * n_c) of the train labels, sklearn's)."""
    model = LogisticRegression(
        C=C,
        solver=SOLVER,
        tol=TOLERANCE,
        max_iter=MAX_ITER,
        class_weight=None if class_weight == "none" else class_weight,
    )
    # One thread: on shared cores OpenMP's threads spin while they wait for each other (docs/decisions.md),
    # and the result does not depend on the core count.
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(features, labels)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning("baseline: the logistic regression with C=%s did not converge in %d iterations", C, MAX_ITER)
    return model


def pick_model(
    train_features: sparse.spmatrix,
    train_labels: np.ndarray,
    valid_features: sparse.spmatrix,
    valid_labels: np.ndarray,
    Cs: Sequence[float],
    class_weight: str = "none",
) -> tuple[LogisticRegression, dict[float, float]]:
    """One model per C fit on train; the one with the best valid score (the first on ties), and every C's.

    The score is the valid accuracy; with ``class_weight: balanced`` it is the valid macro-F1, which
    weighs every class alike as the fit does (accuracy would pick the C that leans to the majority).
    """
    measure = "macro-F1" if class_weight == "balanced" else "accuracy"
    best, scores = None, {}
    for C in Cs:
        model = fit_model(train_features, train_labels, C, class_weight)
        predicted = metrics.predicted_labels(decision_logits(model, valid_features))
        if class_weight == "balanced":
            scores[C] = metrics.f1_macro(valid_labels, predicted)
        else:
            scores[C] = float(np.mean(predicted == valid_labels))
        log.info("baseline: C=%s: valid %s %.4f", C, measure, scores[C])
        if best is None or scores[C] > scores[best.C]:
            best = model
    return best, scores


def fit_and_score(
    texts: Mapping[str, Sequence[str]],
    labels: dict[str, np.ndarray],
    label_names: list[str],
    Cs: Sequence[float],
    class_weight: str = "none",
) -> dict[str, object]:
    """Fit on ``train``, pick C on ``valid``, score every split: the content of the metrics file.

    ``{"C": the C kept, "features": n-grams seen in train, split: textrnn.scoring.metrics.split_metrics}``;
    warns in one line when the test predictions are (nearly) one class (metrics.one_class_warning).
    """
    missing = np.setdiff1d(np.arange(len(label_names)), labels["train"])
    if len(missing):
        raise UserError(
            f"class {missing[0]} ({label_names[missing[0]]!r}) has no row in the train split, so the "
            f"baseline cannot learn it; add rows of it to the dataset's train split"
        )
    vectorizer = NgramTfidf()
    features = {"train": vectorizer.fit_transform(texts["train"])}
    features.update({name: vectorizer.transform(split) for name, split in texts.items() if name != "train"})
    model, _ = pick_model(features["train"], labels["train"], features["valid"], labels["valid"], Cs, class_weight)
    logits = {name: decision_logits(model, features[name]) for name in texts}
    warning = metrics.one_class_warning(labels["test"], metrics.predicted_labels(logits["test"]), label_names, "test")
    if warning:
        log.warning("baseline: %s", warning)
    scores = {name: metrics.split_metrics(logits[name], labels[name]) for name in texts}
    return {"C": model.C, "features": vectorizer.features, **scores}
