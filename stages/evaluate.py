"""Stage evaluate: models/model.pt + data/vectors -> metrics/metrics.json, metrics/plots/ (DVCLive), plots/evaluation/*.png."""
import _root  # noqa: F401  (first: imports textrnn from this checkout)
import logging
from pathlib import Path

import torch
from dvclive import Live

from textrnn.data import SPLITS, EncodedSplit
from textrnn.errors import UserError, cli_main
from textrnn.evaluation import log_test_plots, split_metrics
from textrnn.io import atomic_dir
from textrnn.model import load_checkpoint
from textrnn.params import load_params
from textrnn.training import predict_logits, resolve_device
from textrnn.vocab import Vocab

VECTORS, VOCAB, MODEL, METRICS, PLOTS = (Path("data/vectors"), Path("data/vocab.txt"), Path("models/model.pt"),
                                         Path("metrics"), Path("plots/evaluation"))
log = logging.getLogger("evaluate")


@cli_main
def main() -> None:
    params = load_params("evaluate")
    device = resolve_device(params["device"])
    model, label_names, metadata = load_checkpoint(MODEL)
    vocab_size = len(Vocab.load(VOCAB))
    if vocab_size != model.config.vocabulary_size:
        raise UserError(f"{MODEL} was trained on {model.config.vocabulary_size} tokens but {VOCAB} has "
                        f"{vocab_size}; retrain with `dvc repro train`")
    model.to(device)
    metrics, test = {}, None
    for name in SPLITS:
        split = EncodedSplit.load(VECTORS / f"{name}.npz", vocab_size)
        if split.label_names != label_names:
            raise UserError(f"{MODEL} predicts classes {label_names} but {VECTORS / f'{name}.npz'} has "
                            f"{split.label_names}; retrain with `dvc repro train`")
        logits = predict_logits(model, split, params["batch_size"], device, metadata.get("max_tokens"))
        metrics[name] = split_metrics(logits, split.labels)
        test = (logits, split.labels)
        log.info("evaluate: %s: %s", name, metrics[name])
    with atomic_dir(METRICS) as live_dir, atomic_dir(PLOTS) as png_dir:
        live = Live(str(live_dir), dvcyaml=False, save_dvc_exp=False)
        live.summary = metrics
        live.make_summary()
        log_test_plots(live, png_dir, *test, label_names)
    log.info("evaluate: -> %s (model trained on %s)", METRICS / "metrics.json", metadata.get("train_device"))


if __name__ == "__main__":
    main()
