"""class_weight none against balanced on an imbalanced synthetic set: the minority class's recall and macro-F1.

The reviews are tests/conftest.py's synthetic ones (each class draws a share of its words from its
own list), kept so that a share ``--minority`` of every split is positive. The RNN trains at
params.yaml's train section (model sizes, optimizer, lr, batch size) for ``--epochs`` epochs, once per
seed and class weight; the baseline (TF-IDF + logistic regression, baseline.C) fits once per class weight.

    python benchmarks/class_weight.py                     # 2,000 train rows, 5% positive, seeds 1 2 3
    python benchmarks/class_weight.py --minority 0.1 --epochs 3 --seeds 1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without `pip install -e .`
sys.path.insert(0, str(REPO / "tests"))  # conftest's synthetic reviews

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import f1_score, recall_score  # noqa: E402

from textrnn import baseline  # noqa: E402
from textrnn.core.params import CLASS_WEIGHTS, load_params  # noqa: E402
from textrnn.data.vectors import EncodedSplit  # noqa: E402
from textrnn.model import RNN, ModelConfig, initialize  # noqa: E402
from textrnn.pipeline.train import MODEL_KEYS, TRAIN_KEYS  # noqa: E402
from textrnn.scoring.inference import predict_logits  # noqa: E402
from textrnn.text.encoding import count_tokens, encode_texts  # noqa: E402
from textrnn.text.vocab import Vocab  # noqa: E402
from textrnn.training.loop import TrainConfig, train_model  # noqa: E402

CPU = torch.device("cpu")


def imbalanced_reviews(n: int, seed: int, minority: float) -> pd.DataFrame:
    from conftest import synthetic_reviews

    frame = synthetic_reviews(int(2 * n / min(minority, 1 - minority)) + 10, seed, max_len=20)
    positives = round(n * minority)
    parts = [frame[frame.label == 0].head(n - positives), frame[frame.label == 1].head(positives)]
    return pd.concat(parts).sample(frac=1, random_state=seed).reset_index(drop=True)


def scores(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    return recall_score(labels, predicted, zero_division=0.0), f1_score(labels, predicted, average="macro")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000, help="train rows (valid: a quarter, test: a half)")
    parser.add_argument("--minority", type=float, default=0.05, help="share of positive rows in every split")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    torch.set_num_threads(1)
    params = load_params("train", REPO / "params.yaml")
    frames = {
        name: imbalanced_reviews(rows, seed, args.minority)
        for name, rows, seed in [("train", args.train, 0), ("valid", args.train // 4, 1), ("test", args.train // 2, 2)]
    }
    vocab = Vocab.build(count_tokens(frames["train"]["text"].tolist()))
    splits = {}
    for name, frame in frames.items():
        ids, offsets = encode_texts(frame["text"].tolist(), vocab)
        splits[name] = EncodedSplit(ids, offsets, frame["label"].to_numpy(), ["neg", "pos"])
    test_labels = splits["test"].labels
    print(
        f"{args.train} train rows, {args.minority:.0%} positive in every split; test: {len(test_labels)} rows, "
        f"{int(test_labels.sum())} positive; RNN: params.yaml's train section, {args.epochs} epochs"
    )
    print("| model | class_weight | seed | best epoch | test recall of the minority class | test macro-F1 |")
    print("|---|---|---|---|---|---|")
    for class_weight in CLASS_WEIGHTS:
        for seed in args.seeds:
            torch.manual_seed(seed)
            model = RNN(ModelConfig(len(vocab), **{k: params[k] for k in MODEL_KEYS}))
            initialize(model, params["recurrent_init"], params["embedding_init_std"])
            config = TrainConfig(
                **{k: params[k] for k in TRAIN_KEYS}
                | {"epochs": args.epochs, "seed": seed, "class_weight": class_weight}
            )
            result = train_model(model, splits["train"], splits["valid"], config, CPU)
            model.load_state_dict(result.best_state)
            predicted = (predict_logits(model, splits["test"], 512, CPU) > 0).numpy().astype(int)
            recall, f1 = scores(test_labels, predicted)
            print(f"| RNN | {class_weight} | {seed} | {result.best_epoch} | {recall:.3f} | {f1:.3f} |", flush=True)
    Cs = load_params("baseline", REPO / "params.yaml")["C"]
    texts = {name: frame["text"].tolist() for name, frame in frames.items()}
    vectorizer = baseline.NgramTfidf()
    features = {"train": vectorizer.fit_transform(texts["train"])}
    features |= {name: vectorizer.transform(texts[name]) for name in ("valid", "test")}
    for class_weight in CLASS_WEIGHTS:
        labels = {name: split.labels for name, split in splits.items()}
        model, _ = baseline.pick_model(
            features["train"], labels["train"], features["valid"], labels["valid"], Cs, class_weight
        )
        recall, f1 = scores(test_labels, model.predict(features["test"]))
        print(f"| baseline (C={model.C}) | {class_weight} | - | - | {recall:.3f} | {f1:.3f} |", flush=True)


if __name__ == "__main__":
    main()
